"""The SPEC's 1e-7 gap of the two-layer net, in closed form.

The book's loss is ``L = -(1/N) sum_n log(y[n, t_n] + 1e-7)`` with
``y = softmax(a2)``; its backprop ``(y - t) / N`` is the exact gradient of the
cross-entropy *without* the ``1e-7``. Differentiating ``L`` itself:

    dL/da2[n, k] = r_n (y[n, k] - t[n, k]) / N,   r_n = y[n, t_n] / (y[n, t_n] + 1e-7)

so the gradient a numerical difference of ``L`` approximates is backprop
with each sample's output delta scaled by ``r_n``. The gap is what
``r_n - 1 = -1e-7 / (y[n, t_n] + 1e-7)`` pushes back through the same
layers: about ``1e-7 / y`` of each sample's share, 1e-6 relative at
initialisation where every ``y`` is near 0.1, more once the network is
confident and wrong (small ``y[n, t_n]``).

Written here from the formula above, in NumPy and independently of either
side's backprop, so the harness can name the gap rather than widen a
tolerance to hide it.
"""
import numpy as np

from numpy_impl.two_layer_net import PARAM_NAMES
from numpy_impl.validation import as_float_array, check_batch, check_nonnegative

BOOK_EPSILON = 1e-7


def check_params(params):
    """A two-layer net's ``params`` dict of finite float arrays of matching shapes."""
    if not isinstance(params, dict) or any(key not in params for key in PARAM_NAMES):
        raise TypeError(f"params must be a dict with keys {PARAM_NAMES}, got "
                        f"{sorted(params) if isinstance(params, dict) else type(params).__name__}")
    arrays = {key: as_float_array(params[key], f"params[{key!r}]") for key in PARAM_NAMES}
    W1, b1, W2, b2 = (arrays[key] for key in PARAM_NAMES)
    if (W1.ndim != 2 or W2.ndim != 2 or W2.shape[0] != W1.shape[1]
            or b1.shape != (W1.shape[1],) or b2.shape != (W2.shape[1],)):
        raise ValueError(f"params do not make a two-layer net: W1 {W1.shape}, b1 {b1.shape}, "
                         f"W2 {W2.shape}, b2 {b2.shape}")
    return arrays


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _indices(t):
    t = np.asarray(t)
    return t.astype(np.int64) if t.ndim == 1 else t.argmax(axis=1)


def _forward(params, x):
    a1 = x @ params["W1"] + params["b1"]
    z1 = _sigmoid(a1)
    a2 = z1 @ params["W2"] + params["b2"]
    e = np.exp(a2 - a2.max(axis=1, keepdims=True))
    return z1, e / e.sum(axis=1, keepdims=True)


def target_probabilities(params, x, t):
    """``y[n, t_n]``: the probability each sample gives its own class."""
    _, y = _forward(params, x)
    return y[np.arange(x.shape[0]), _indices(t)]


def book_gap(params, x, t, epsilon=BOOK_EPSILON):
    """``gradient of the book's loss - backprop``, keyed like ``params`` (NumPy arrays)."""
    params = check_params(params)
    check_nonnegative(epsilon, "epsilon")
    x = as_float_array(x, "x", allow_int=True, dtype=params["W1"].dtype)
    x, t = check_batch(x, t, params["W1"].shape[0], params["W2"].shape[1], params["W1"].dtype)
    n = x.shape[0]
    idx = _indices(t)
    z1, y = _forward(params, x)
    y_t = y[np.arange(n), idx]
    onehot = np.zeros_like(y)
    onehot[np.arange(n), idx] = 1
    delta = (-epsilon / (y_t + epsilon))[:, None] * (y - onehot) / n  # (r_n - 1)(y - t) / N
    dz1 = (delta @ params["W2"].T) * z1 * (1 - z1)
    return {"W1": x.T @ dz1, "b1": dz1.sum(axis=0), "W2": z1.T @ delta, "b2": delta.sum(axis=0)}
