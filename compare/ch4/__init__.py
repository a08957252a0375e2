"""The chapter-4 checks: every gradient path of ``TwoLayerNet``, the 1e-7 gap, curve
parity, the book's figures, the report and the benchmarks against the book's code."""
