"""Argument checks shared by the public entry points of the PyTorch side.

Every error names the argument it is about, so a user who passes the wrong
thing learns which thing and what to do. This module mirrors
``numpy_impl.validation`` check for check.
"""
import math
import numbers

import torch


def _is_ndarray(value):
    # Detect a NumPy array without importing numpy: this side works on tensors.
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def as_tensor(value, name):
    """``value`` as a tensor; Python floats become float64 (torch would pick float32)."""
    if _is_ndarray(value):
        raise TypeError(
            f"{name} is a NumPy array, but torch_impl works on torch tensors; "
            f"pass torch.from_numpy({name}) or use numpy_impl")
    if isinstance(value, torch.Tensor):
        return value
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"{name} must be a numeric tensor, got {type(value).__name__}") from exc
    if tensor.is_floating_point():
        tensor = torch.as_tensor(value, dtype=torch.float64)  # np.asarray's default
    return tensor


def _is_integer(tensor):
    return not (tensor.is_floating_point() or tensor.is_complex()) and tensor.dtype != torch.bool


def as_float_tensor(value, name, *, allow_int=False, dtype=None, device=None):
    """Return ``value`` as a floating tensor, refusing what would be wrong.

    Integer and boolean tensors are refused unless ``allow_int``: perturbing
    them in place truncates ``x + h`` (the book's ``[3, 4]`` gives
    ``[25000, 35000]``). NaN and infinity are refused.
    """
    tensor = as_tensor(value, name)
    if not tensor.is_floating_point():
        if not allow_int:
            raise TypeError(
                f"{name} has dtype {_dtype_name(tensor.dtype)}; a floating tensor is needed "
                f"(an integer {name} would truncate x + h). Pass e.g. "
                f"torch.as_tensor({name}, dtype=torch.float64)")
        if tensor.is_complex():
            raise TypeError(f"{name} must be a real tensor, got dtype {_dtype_name(tensor.dtype)}")
        dtype = torch.float64 if dtype is None else dtype
    tensor = tensor.to(device=device, dtype=dtype)  # one copy at most; None keeps either
    check_finite(tensor, name)
    return tensor


def check_finite(tensor, name):
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite)
        where = tuple(int(i) for i in bad[0]) if bad.numel() else ()
        raise ValueError(f"{name} contains NaN or infinity (first at index {where})")


def check_step(h, dtype):
    """The finite-difference step must be finite, positive and >= machine eps."""
    if isinstance(h, bool) or not isinstance(h, numbers.Real):
        raise TypeError(f"h must be a real number, got {type(h).__name__}")
    h = float(h)
    eps = float(torch.finfo(dtype).eps)
    if not math.isfinite(h) or h <= 0:
        raise ValueError(f"h must be finite and positive, got {h!r}")
    if h < eps:
        raise ValueError(
            f"h={h!r} is below the machine epsilon of {_dtype_name(dtype)} "
            f"({eps:.3g}): x + h rounds back to x and the difference is 0 "
            f"(the book's warning about h = 1e-50); use h=1e-4")
    return h


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def check_learning_rate(lr, name="learning_rate"):
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(lr).__name__}")
    lr = float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"{name} must be finite and positive, got {lr!r}")
    return lr


def check_inputs(x, input_size, dtype, *, x_name="x", device=None):
    """A 2-D, non-empty, finite float batch of ``input_size`` features, in ``dtype``.

    ``x`` is converted to the network's dtype and device here, once: torch's
    matmul refuses a float32 ``x`` against float64 weights where NumPy promotes.
    """
    x = as_float_tensor(x, x_name, dtype=dtype, device=device)
    if x.dim() != 2:
        raise ValueError(f"{x_name} must be 2-D (batch, {input_size}), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{x_name} is an empty batch (shape {tuple(x.shape)})")
    if x.shape[1] != input_size:
        raise ValueError(f"{x_name} has {x.shape[1]} features per row, the network expects {input_size}")
    return x


def check_batch(x, t, input_size, output_size, dtype, *, x_name="x", t_name="t", device=None):
    """Validate a network batch: 2-D float ``x``; ``t`` as indices or one-hot.

    Returns ``(x, t)`` with ``x`` in the network's dtype and ``t`` unchanged
    in form (index labels stay integers, as int64; one-hot labels take the
    network's dtype, exactly, so float64 labels cannot meet a float32
    network in a matmul), both on the network's device.
    """
    x = check_inputs(x, input_size, dtype, x_name=x_name, device=device)
    t = check_labels(t, x.shape[0], output_size, t_name=t_name, device=device)
    if t.dim() == 2:
        t = t.to(dtype)
    return x, t


def check_labels(t, batch_size, output_size, *, t_name="t", device=None):
    t = as_tensor(t, t_name)
    index_dtype = None
    if t.dim() == 1:
        if not _is_integer(t):
            raise TypeError(
                f"{t_name} as class indices must be integers, got dtype {_dtype_name(t.dtype)}")
        if t.shape[0] != batch_size:
            raise ValueError(f"{t_name} has {t.shape[0]} labels for a batch of {batch_size}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= output_size):
            raise ValueError(
                f"{t_name} holds class indices out of range [0, {output_size}): "
                f"min {int(t.min())}, max {int(t.max())}")
        index_dtype = torch.int64  # torch reads a uint8 index tensor (MNIST's labels) as a mask
    elif t.dim() == 2:
        if t.dtype == torch.bool or t.is_complex():
            raise TypeError(
                f"{t_name} one-hot labels must be numeric, got dtype {_dtype_name(t.dtype)}")
        if t.shape[0] != batch_size:
            raise ValueError(f"{t_name} has {t.shape[0]} rows for a batch of {batch_size}")
        if t.shape[1] != output_size:
            raise ValueError(f"{t_name} one-hot width is {t.shape[1]}, the network has {output_size} outputs")
        check_finite(t, t_name)
    else:
        raise ValueError(f"{t_name} must be 1-D class indices or 2-D one-hot, got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=index_dtype)
