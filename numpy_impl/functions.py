"""Activation, output and loss functions of chapters 3 and 4, in NumPy."""
import numpy as np

from .validation import _is_tensor, as_float_array, check_labels


def identity_function(x):
    return x


def step_function(x):
    return np.array(np.asarray(x) > 0, dtype=np.int64)


def sigmoid(x):
    # exp(-x) overflows to inf for x < -709; 1 / (1 + inf) is the right 0,
    # so the overflow warning is noise.
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def sigmoid_grad(x):
    return (1.0 - sigmoid(x)) * sigmoid(x)


def relu(x):
    return np.maximum(0, x)


def relu_grad(x):
    # 1 where x > 0, as autograd has it; the book writes x >= 0.
    x = np.asarray(x)
    return (x > 0).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)  # overflow guard
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def sum_squared_error(y, t):
    return 0.5 * np.sum((y - t) ** 2)


def cross_entropy_error(y, t):
    """Mean cross-entropy of a batch; ``t`` one-hot or class indices.

    Keeps the book's ``+ 1e-7`` inside the log, so a zero probability gives
    a finite ``-log(1e-7)`` instead of infinity.
    """
    return _cross_entropy_error(*_targets(y, t))


def _targets(y, t):
    """``y`` as a (batch, classes) array of probabilities, and ``t`` checked
    against it: one-hot (or soft) rows of ``y``'s shape, or one class index
    per row. A 1-D ``y`` is one sample, as in the book."""
    y = as_float_array(y, "y")
    if _is_tensor(t):  # np.asarray would take it silently
        raise TypeError("t is a torch.Tensor, but numpy_impl works on NumPy arrays")
    t = np.asarray(t)
    if y.ndim == 1:
        t = t.reshape(1, t.size)
        y = y.reshape(1, y.size)
    if y.ndim != 2:
        raise ValueError(f"y must be 1-D or 2-D (batch, classes), got shape {y.shape}")
    if y.shape[0] == 0 or y.shape[1] == 0:
        raise ValueError(f"y is empty (shape {y.shape})")
    negative = y < 0
    if negative.any():  # log of a negative is NaN
        where = tuple(int(i) for i in np.argwhere(negative)[0])
        raise ValueError(f"y must be probabilities (a softmax output), got {y[where].item()!r} "
                         f"at {where}")
    if t.ndim == 2 and (t.shape == y.shape or t.shape[1] != 1):  # one-hot or soft rows
        return y, check_labels(t, y.shape[0], y.shape[1])
    # class indices
    return y, check_labels(t.reshape(-1), y.shape[0], y.shape[1])


def _cross_entropy_error(y, t):
    # Unchecked, for the networks' hot paths (and so a diverging run can
    # report its NaN loss instead of raising on it).
    if t.shape == y.shape:  # one-hot labels: turn them into class indices
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def softmax_loss(X, t):
    y = softmax(X)
    return cross_entropy_error(y, t)


def function_1(x):
    return 0.01 * x ** 2 + 0.1 * x


def function_2(x):
    if np.ndim(x) == 1:
        return np.sum(x ** 2)
    return np.sum(x ** 2, axis=-1)  # one value per row
