"""Gradient descent on a function of a point (book section 4.4.1), in PyTorch."""
import warnings

import torch

from .gradient import _numerical_gradient, _warn_vanished
from .validation import as_float_tensor, check_callable, check_learning_rate, check_positive_int


def gradient_descent(f, init_x, lr=0.01, step_num=100, history=False):
    """Take ``step_num`` steps ``x -= lr * grad f(x)`` from ``init_x``.

    Returns ``x``, or ``(x, x_history)`` with ``x_history`` of shape
    ``(step_num, *init_x.shape)`` (the point before each step, as the book
    records it) when ``history`` is true. ``init_x`` is left untouched.
    """
    check_callable(f)
    x = as_float_tensor(init_x, "init_x").detach().clone()
    lr = check_learning_rate(lr, "lr")
    step_num = check_positive_int(step_num, "step_num")
    x_history = torch.empty((step_num, *x.shape), dtype=x.dtype, device=x.device)
    frozen = None  # (step, index) where the step h first vanished against x
    for i in range(step_num):  # torch does not warn on overflow: no errstate needed
        x_history[i] = x
        grad, vanished = _numerical_gradient(f, x, 1e-4)
        if vanished is not None and frozen is None:
            frozen = (i, vanished)
        x -= lr * grad
        if not bool(torch.isfinite(x).all()):
            warnings.warn(
                f"gradient_descent diverged: x became non-finite at step {i} "
                f"with lr={lr!r}; returning it as it is", RuntimeWarning, stacklevel=2)
            x_history[i + 1:] = x
            break
    if frozen is not None:
        step, idx = frozen
        _warn_vanished(list(idx), x_history[step][idx].item(), 1e-4,
                       note=f" at step {step} (lr={lr!r}), freezing the descent there")
    if history:
        return x, x_history
    return x
