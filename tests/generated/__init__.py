"""Generated NumPy models in the styles learners write, with their torch ports.

``spec``: the choices (style and conventions) and the hypothesis strategies
over them; ``core``: the arithmetic every style shares (heads, losses, batch
norm, dropout draws); one module per style builds a NumPy model from a spec;
``ports``: the torch port of the same choices, right or with one catalogued
bug; ``selftest``: each generated pair checked against independent truth.
"""
from .build import build_case  # noqa: F401
