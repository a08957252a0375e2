"""The initial parameters of a spec, in its layout, bias shape, dtype and dict order."""
import numpy as np


def bias_shape(n, bias):
    return {"flat": (n,), "row": (1, n), "col": (n, 1)}[bias]


def init_params(spec, features_first=False):
    rng = np.random.RandomState(spec.seed)
    dims = [(spec.D, spec.H), (spec.H, spec.C)]
    values = {}
    for i, (a, b) in enumerate(dims, start=1):
        shape = (b, a) if features_first else (a, b)
        values[f"W{i}"] = rng.randn(*shape) / np.sqrt(a)
        # biases away from zero: a bias copied in the wrong shape or order shows
        values[f"b{i}"] = 0.1 * rng.randn(*bias_shape(b, spec.bias))
    if spec.bn or spec.ln:
        # a features-first layer norm's gamma and beta are columns, as its biases are
        shape = bias_shape(spec.H, spec.bias) if spec.ln and features_first else (spec.H,)
        values["gamma1"] = 1 + 0.1 * rng.randn(*shape)
        values["beta1"] = 0.1 * rng.randn(*shape)
    if spec.res:
        # drawn after the others, so that a spec without it keeps its parameters
        values["W_res"] = rng.randn(spec.H, spec.H) / np.sqrt(spec.H)
        values["b_res"] = 0.1 * rng.randn(*bias_shape(spec.H, spec.bias))
    return {name: values[name].astype(spec.dtype) for name in spec.order}


def batch(spec):
    """``(x, t)`` batch first, as ``check_port`` takes them: labels for the loss's kind."""
    rng = np.random.RandomState(spec.seed + 1)
    x = rng.randn(spec.N, spec.D).astype(spec.dtype)
    if spec.loss == "softmax_ce":
        labels = rng.randint(0, spec.C, spec.N)
        t = labels if spec.labels == "index" else np.eye(spec.C, dtype=spec.dtype)[labels]
    elif spec.loss == "bce":
        t = (rng.rand(spec.N, 1) < 0.5).astype(spec.dtype)
    else:
        t = rng.randn(spec.N, spec.C).astype(spec.dtype)
    return x, t
