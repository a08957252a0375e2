"""What following a NumPy forward from inside costs: one recorded pass of a model without
layers, with the line tracer and without, and one whole check.

    python benchmarks/bench_inside.py [--batch 100] [--repeats 7]

The model is written here as learners write one (784-100-50-10, leaky ReLU, its arrays in
locals and a dict, backprop by hand); the pass is the one the check records (``gradient``,
which runs the forward again). The two are timed in alternation, medians of ``--repeats``.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compare.port.reference.inside import existing_arrays, inside_capture  # noqa: E402


class LeakyNet:
    def __init__(self, sizes=(784, 100, 50, 10), seed=0):
        rng = np.random.RandomState(seed)
        self.params = {}
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
            self.params[f"W{i}"] = rng.randn(a, b) / np.sqrt(a)
            self.params[f"b{i}"] = np.zeros(b)

    def _forward(self, x):
        p, c = self.params, {"a0": x}
        for i in (1, 2):
            c[f"z{i}"] = c[f"a{i - 1}"] @ p[f"W{i}"] + p[f"b{i}"]
            c[f"a{i}"] = np.where(c[f"z{i}"] > 0, c[f"z{i}"], 0.1 * c[f"z{i}"])
        scores = c["a2"] @ p["W3"] + p["b3"]
        return scores, c

    def gradient(self, x, t):
        scores, c = self._forward(x)
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        dz = e / e.sum(axis=1, keepdims=True)
        dz[np.arange(len(t)), t] -= 1
        dz /= len(t)
        grads = {"W3": c["a2"].T @ dz, "b3": dz.sum(axis=0)}
        da = dz @ self.params["W3"].T
        for i in (2, 1):
            dz = da * np.where(c[f"z{i}"] > 0, 1.0, 0.1)
            grads[f"W{i}"], grads[f"b{i}"] = c[f"a{i - 1}"].T @ dz, dz.sum(axis=0)
            da = dz @ self.params[f"W{i}"].T
        return grads


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench_inside.py", description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.repeats < 1:
        print("error: --batch and --repeats must be at least 1", file=sys.stderr)
        return 2
    rng = np.random.RandomState(1)
    x, t = rng.randn(args.batch, 784), rng.randint(0, 10, args.batch)
    model = LeakyNet()

    def plain():
        model.gradient(x, t)

    def followed():
        with inside_capture(existing_arrays(model, x, t)) as capture:
            model.gradient(x, t)
        return capture

    records = len(followed().records)
    a, b = [], []
    for _ in range(args.repeats):  # alternated, so the machine's drift falls on both
        a += timed(plain, 1)
        b += timed(followed, 1)
    pa, pb = statistics.median(a), statistics.median(b)
    print(f"one recorded pass, 784-100-50-10, batch {args.batch} ({records} arrays noted), "
          f"median of {args.repeats}:")
    print(f"  without the tracer  {pa * 1e3:8.2f} ms")
    print(f"  followed from inside {pb * 1e3:7.2f} ms  ({pb / pa:.2f}x, +{(pb - pa) * 1e3:.2f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
