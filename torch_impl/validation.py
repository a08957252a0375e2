"""Argument checks shared by the public entry points of the PyTorch side.

Every error names the argument it is about, so a user who passes the wrong
thing learns which thing and what to do. This module mirrors
``numpy_impl.validation`` check for check where arrays become tensors; the
checks of plain Python values (numbers, seeds, functions) are the NumPy
side's own, imported, so both sides refuse them in the same words.
"""
import math

import torch

from numpy_impl.validation import (  # noqa: F401  (re-exported: this side's names)
    _given, check_callable, check_learning_rate, check_nonnegative, check_positive_int,
    check_positive_real, check_real, check_seed, check_train_hooks)

# Label rows must sum to 1 within ROW_SUM_EPS_FACTOR * n * eps (see check_distributions).
ROW_SUM_EPS_FACTOR = 100
_FLOAT32_EPS = float(torch.finfo(torch.float32).eps)


def _is_ndarray(value):
    # Detect a NumPy array without importing numpy: this side works on tensors.
    return type(value).__module__ == "numpy" and type(value).__name__ == "ndarray"


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def check_device(device, name="device"):
    """``device`` as a ``torch.device`` this machine can use.

    Asking for CUDA, a CUDA index or MPS that is not there is an error, not
    a fallback to the CPU: a run on another device than the one asked for
    would report the wrong thing.
    """
    try:
        device = torch.device("cpu" if device is None else device)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{name} must name a torch device such as 'cpu' or 'cuda', "
                         f"got {_given(device)}") from exc
    text = str(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{name} {text!r} was asked for, but CUDA is not available on "
                             f"this machine (torch.cuda.is_available() is False); use 'cpu'")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ValueError(f"{name} {text!r} was asked for, but this machine has {count} "
                             f"CUDA device(s): cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"{name} {text!r} was asked for, but MPS is not available on this "
                             f"machine (torch.backends.mps.is_available() is False); use 'cpu'")
    elif device.type not in ("cpu", "meta"):
        try:  # any other backend: can torch put a tensor there?
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError) as exc:
            reason = " ".join(str(exc).split())
            raise ValueError(f"{name} {text!r} was asked for, but torch cannot use it on this "
                             f"machine: {reason}") from exc
    return device


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


def check_step(h, dtype, name="h"):
    """The finite-difference step must be finite, positive and >= machine eps."""
    h = check_real(h, name)
    eps = float(torch.finfo(dtype).eps)
    if not math.isfinite(h) or h <= 0:
        raise ValueError(f"{name} must be finite and positive, got {h!r}")
    if h < eps:
        raise ValueError(
            f"{name}={h!r} is below the machine epsilon of {_dtype_name(dtype)} "
            f"({eps:.3g}): x + h rounds back to x and the difference is 0 "
            f"(the book's warning about h = 1e-50); use h=1e-4")
    return h


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
            raise ValueError(f"{t_name} one-hot width is {t.shape[1]}, but there are {output_size} "
                             f"classes (outputs)")
        check_finite(t, t_name)
        check_distributions(t, t_name)
    else:
        raise ValueError(f"{t_name} must be 1-D class indices or 2-D one-hot, got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=index_dtype)


def check_distributions(t, name="t"):
    """Rows of one-hot or soft (label-smoothed) labels: non-negative, each summing to 1.

    Anything else (all ones, counts, a row of zeros, pixel-scaled values)
    would be read through its argmax by ``loss`` and ``accuracy`` and give a
    number that means nothing.
    """
    if t.numel() == 0:
        return t
    negative = t < 0
    if bool(negative.any()):
        where = tuple(int(i) for i in torch.nonzero(negative)[0])
        raise ValueError(
            f"{name} has a negative entry {t[where].item()!r} at {where}; one-hot (or soft) "
            f"labels are rows of non-negative values that sum to 1")
    n = t.shape[1]
    # Storing n entries and summing them errs by about 1.5 n eps at most, and
    # the arithmetic that made soft labels (smoothing, a softmax) adds a few
    # eps per entry; labels made in float32 keep float32's round-off when
    # cast to float64, so eps is at least float32's. A hundred times n eps
    # (1.2e-4 for MNIST's 10 classes) is ample for that, while a row that is
    # not a distribution (a smoothing that forgot a class is 1e-2 off; all
    # ones, counts or a row of zeros far more) is refused.
    eps = float(torch.finfo(t.dtype).eps) if t.is_floating_point() else 0.0
    tol = ROW_SUM_EPS_FACTOR * n * max(eps, _FLOAT32_EPS)
    sums = t.sum(dim=1)
    off = (sums - 1).abs() > tol
    if bool(off.any()):
        row = int(torch.nonzero(off)[0, 0])
        raise ValueError(
            f"{name}[{row}] sums to {sums[row].item()!r}, not 1 ({int(off.sum())} of "
            f"{t.shape[0]} rows are off by more than {tol:.2g}); one-hot (or soft) labels "
            f"are rows of non-negative values that sum to 1")
    return t
