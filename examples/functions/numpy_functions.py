"""The book's activation, output and loss functions, in NumPy, as a learner writes them.

Check a torch port of a module like this one, function by function:

    python -m compare port examples/functions/numpy_functions.py \\
                           examples/functions/torch_functions.py

Functions of the same name are paired and run on the same inputs, forward
and backward (torch autograd against central differences of the NumPy
function). ``PARITY_INPUTS`` at the end gives the inputs of the functions
that need particular ones; every other function gets one seeded N(0, 1)
array of shape (4, 10) per parameter.
"""
import numpy as np


def step_function(x):
    return np.array(x > 0, dtype=np.int64)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def relu(x):
    return np.maximum(0, x)


def softmax(x):
    x = x - np.max(x, axis=-1, keepdims=True)  # overflow guard
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def sum_squared_error(y, t):
    return 0.5 * np.sum((y - t) ** 2)


def cross_entropy_error(y, t):
    """Mean over the batch; ``t`` holds class indices."""
    if y.ndim == 1:
        y, t = y.reshape(1, -1), np.reshape(t, 1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


def numerical_gradient(f, x, h=1e-4):
    # only on this side: the port has autograd, so the check lists it as "only in numpy"
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        tmp = x[idx]
        x[idx] = tmp + h
        fxh1 = f(x)
        x[idx] = tmp - h
        fxh2 = f(x)
        x[idx] = tmp
        grad[idx] = (fxh1 - fxh2) / (2 * h)
    return grad


_scores = np.random.RandomState(0).randn(4, 10)

PARITY_INPUTS = {
    # one list entry per positional parameter: an array, or a shape to fill with N(0, 1) draws
    "softmax": [(2, 3, 10)],
    # the loss takes probabilities and class labels: N(0, 1) draws would put log() on negatives
    "cross_entropy_error": [softmax(_scores), np.array([3, 0, 7, 1])],
    # relu's kink at 0 would spoil the central difference there: stay more than 2h away
    "relu": [np.array([[-2.0, -0.5, 0.5, 2.0], [1.5, -1.5, 0.25, -0.25]])],
    # a dict adds options: here values only (the step has no gradient to compare anyway)
    "step_function": {"inputs": [np.array([-1.0, -0.1, 0.1, 1.0])], "grad": False},
}
