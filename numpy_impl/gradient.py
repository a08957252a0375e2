"""Numerical differentiation (book section 4.3 and 4.4), in NumPy.

Central differences, as the book writes them: ``(f(x+h) - f(x-h)) / 2h``.
The error of that formula is about ``h**2 |f'''| / 6`` (truncation) plus
``eps |f| / h`` (round-off), smallest near ``h = eps**(1/3)``: the book's
``h = 1e-4`` suits float64 (``eps**(1/3)`` is 6e-6), while its ``1e-50``
rounds ``x + h`` back to ``x`` and is refused here.
"""
import warnings

import numpy as np

from .validation import _is_tensor, as_float_array, check_callable, check_step


def _warn_vanished(where, value, h, note=""):
    warnings.warn(
        f"the step h={h!r} vanished against x{where}={value!r} (x + h == x in "
        f"floating point){note}, so the difference there is computed from equal "
        f"points and comes out 0",
        RuntimeWarning, stacklevel=3)


def _point(x, name="x"):
    """A scalar or array point for ``numerical_diff`` (integers are promoted)."""
    if _is_tensor(x):
        raise TypeError(f"{name} is a torch.Tensor; numpy_impl works on NumPy values")
    return as_float_array(x, name, allow_int=True)


def numerical_diff(f, x, h=1e-4):
    """Derivative of a scalar function at ``x`` by the central difference."""
    check_callable(f)
    arr = _point(x)
    h = check_step(h, arr.dtype)
    vanished = (arr + h == arr) | (arr - h == arr)
    if np.any(vanished):
        idx = np.argwhere(vanished)[0]
        _warn_vanished(list(idx) if arr.ndim else "", arr[tuple(idx)].item(), h)
    x = arr[()] if arr.ndim == 0 else arr
    return (f(x + h) - f(x - h)) / (2 * h)


def _scalar(value):
    if np.ndim(value) != 0:
        raise ValueError(
            f"f must return a scalar, got an array of shape {np.shape(value)}; "
            f"numerical_gradient treats the whole x as one point")
    return value


def numerical_gradient(f, x, h=1e-4):
    """Gradient of scalar ``f`` at the point ``x`` (any shape), book-style.

    ``x`` is perturbed in place, one element at a time, as in the book, so
    ``f`` may ignore its argument and read ``x`` through a closure (the
    ``lambda W: net.loss(x, t)`` idiom). ``x`` is restored exactly on return,
    also when ``f`` raises or the loop is interrupted.
    """
    check_callable(f)
    grad, vanished = _numerical_gradient(f, x, h)
    if vanished is not None:
        _warn_vanished(list(vanished), x[vanished].item(), h)
    return grad


def _numerical_gradient(f, x, h):
    """The book's loop; returns the gradient and the first index where h vanished."""
    if not isinstance(x, np.ndarray):
        if _is_tensor(x):
            raise TypeError("x is a torch.Tensor; numpy_impl works on NumPy arrays")
        raise TypeError(
            f"x must be a NumPy array (it is perturbed in place), got "
            f"{type(x).__name__}; pass np.array(x, dtype=np.float64)")
    as_float_array(x, "x")  # refuses integer, boolean, NaN and infinity
    h = check_step(h, x.dtype)
    grad = np.zeros_like(x)
    vanished = None
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    while not it.finished:
        idx = it.multi_index
        tmp_val = x[idx]
        try:
            x[idx] = tmp_val + h
            fxh1 = _scalar(f(x))  # f(x+h)
            x[idx] = tmp_val - h
            fxh2 = _scalar(f(x))  # f(x-h)
        finally:
            x[idx] = tmp_val  # restore, whatever happened
        if vanished is None and (tmp_val + h == tmp_val or tmp_val - h == tmp_val):
            vanished = idx
        grad[idx] = (fxh1 - fxh2) / (2 * h)
        it.iternext()
    return grad, vanished


def numerical_gradient_2d(f, X, h=1e-4):
    """1-D ``X`` is one point; 2-D ``X`` is one point per row (book's gradient_2d)."""
    check_callable(f)
    if not isinstance(X, np.ndarray):
        if _is_tensor(X):
            raise TypeError("X is a torch.Tensor; numpy_impl works on NumPy arrays")
        raise TypeError(f"X must be a NumPy array (it is perturbed in place), got "
                        f"{type(X).__name__}; pass np.array(X, dtype=np.float64)")
    as_float_array(X, "X")  # refuses integer, boolean, NaN and infinity, naming X
    if X.ndim == 2:
        grad = np.zeros_like(X)
        for idx, x in enumerate(X):
            grad[idx] = numerical_gradient(f, x, h)
        return grad
    return numerical_gradient(f, X, h)


def tangent_line(f, x):
    """The tangent of ``f`` at ``x``, as a function (book: ``tangent_line``)."""
    check_callable(f)
    d = numerical_diff(f, x)
    y = f(x) - d * x
    return lambda t: d * t + y
