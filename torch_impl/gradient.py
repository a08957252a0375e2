"""Numerical differentiation (book section 4.3 and 4.4), in PyTorch.

Central differences, as the book writes them: ``(f(x+h) - f(x-h)) / 2h``.
The error of that formula is about ``h**2 |f'''| / 6`` (truncation) plus
``eps |f| / h`` (round-off), smallest near ``h = eps**(1/3)``: the book's
``h = 1e-4`` suits float64 (``eps**(1/3)`` is 6e-6), while its ``1e-50``
rounds ``x + h`` back to ``x`` and is refused here.
"""
import itertools
import warnings

import torch

from .validation import _is_ndarray, as_float_tensor, check_callable, check_step


def _warn_vanished(where, value, h, note=""):
    warnings.warn(
        f"the step h={h!r} vanished against x{where}={value!r} (x + h == x in "
        f"floating point){note}, so the difference there is computed from equal "
        f"points and comes out 0",
        RuntimeWarning, stacklevel=3)


def _point(x, name="x"):
    """A scalar or tensor point for ``numerical_diff`` (integers are promoted)."""
    if _is_ndarray(x):
        raise TypeError(f"{name} is a NumPy array; torch_impl works on tensors "
                        f"(pass torch.from_numpy({name}))")
    return as_float_tensor(x, name, allow_int=True)


def numerical_diff(f, x, h=1e-4):
    """Derivative of a scalar function at ``x`` by the central difference."""
    check_callable(f)
    x = _point(x)
    h = check_step(h, x.dtype)
    vanished = (x + h == x) | (x - h == x)
    if bool(vanished.any()):
        idx = tuple(int(i) for i in torch.nonzero(vanished)[0])
        _warn_vanished(list(idx) if x.dim() else "", x[idx].item(), h)
    return (f(x + h) - f(x - h)) / (2 * h)


def _scalar(value):
    if isinstance(value, torch.Tensor) and value.dim() != 0:
        raise ValueError(
            f"f must return a scalar, got a tensor of shape {tuple(value.shape)}; "
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
    if not isinstance(x, torch.Tensor):
        if _is_ndarray(x):
            raise TypeError("x is a NumPy array; torch_impl works on torch tensors "
                            "(pass torch.from_numpy(x))")
        raise TypeError(
            f"x must be a torch.Tensor (it is perturbed in place), got "
            f"{type(x).__name__}; pass torch.tensor(x, dtype=torch.float64)")
    as_float_tensor(x, "x")  # refuses integer, boolean, NaN and infinity
    h = check_step(h, x.dtype)
    grad = torch.zeros_like(x)
    vanished = None
    # No graph: the nudges are not part of any computation to differentiate,
    # and a leaf that requires grad (an nn.Parameter) may only be written in
    # place outside autograd.
    with torch.no_grad():
        # itertools.product over the shape is np.nditer's multi_index: x[idx]
        # is a view of any x, where x.reshape(-1) would copy a
        # non-contiguous x and the nudges would never reach f.
        for idx in itertools.product(*(range(n) for n in x.shape)):
            tmp_val = x[idx].clone()  # x[idx] is a view: it would follow the nudges
            try:
                x[idx] = tmp_val + h
                fxh1 = _scalar(f(x))  # f(x+h)
                x[idx] = tmp_val - h
                fxh2 = _scalar(f(x))  # f(x-h)
            finally:
                x[idx] = tmp_val  # restore, whatever happened
            if vanished is None and bool((tmp_val + h == tmp_val) | (tmp_val - h == tmp_val)):
                vanished = idx
            grad[idx] = (fxh1 - fxh2) / (2 * h)
    return grad, vanished


def numerical_gradient_2d(f, X, h=1e-4):
    """1-D ``X`` is one point; 2-D ``X`` is one point per row (book's gradient_2d)."""
    check_callable(f)
    if not isinstance(X, torch.Tensor):
        if _is_ndarray(X):
            raise TypeError("X is a NumPy array; torch_impl works on torch tensors "
                            "(pass torch.from_numpy(X))")
        raise TypeError(f"X must be a torch.Tensor (it is perturbed in place), got "
                        f"{type(X).__name__}; pass torch.tensor(X, dtype=torch.float64)")
    as_float_tensor(X, "X")  # refuses integer, boolean, NaN and infinity, naming X
    if X.dim() == 2:
        grad = torch.zeros_like(X)
        for idx, x in enumerate(X):  # rows are views: the nudges reach X
            grad[idx] = numerical_gradient(f, x, h)
        return grad
    return numerical_gradient(f, X, h)


def tangent_line(f, x):
    """The tangent of ``f`` at ``x``, as a function (book: ``tangent_line``)."""
    check_callable(f)
    x = _point(x)
    d = numerical_diff(f, x)
    y = f(x) - d * x
    return lambda t: d * t + y
