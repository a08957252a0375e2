"""Argument checks shared by the public entry points of the NumPy side.

Every error names the argument it is about, so a user who passes the wrong
thing learns which thing and what to do. ``torch_impl.validation`` mirrors
this module check for check.
"""
import math
import numbers

import numpy as np

# Label rows must sum to 1 within ROW_SUM_EPS_FACTOR * n * eps (see check_distributions).
ROW_SUM_EPS_FACTOR = 100
_FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _is_tensor(value):
    # Detect a torch tensor without importing torch: this side never imports it.
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _given(value):
    """What was given, for a message: its repr (cut short, on one line) and its type."""
    text = " ".join(repr(value).split())
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def check_callable(f, name="f"):
    if not callable(f):
        raise TypeError(f"{name} must be a function, got {_given(f)}")
    return f


def check_real(value, name):
    """A real number (Python or NumPy scalar, not a bool), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_given(value)}")
    return float(value)


def check_nonnegative(value, name):
    """A finite real number >= 0, such as a standard deviation or a tolerance."""
    value = check_real(value, name)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and non-negative, got {value!r}")
    return value


def check_train_hooks(start_iter, history, callback, progress):
    """``train``'s resume and reporting arguments, which hold no arrays."""
    check_positive_int(start_iter, "start_iter", minimum=0)
    if history is not None and not isinstance(history, dict):
        raise TypeError(f"history must be a dict (a history train returned), got "
                        f"{type(history).__name__}")
    for name, hook in (("callback", callback), ("progress", progress)):
        if hook is not None:
            check_callable(hook, name)


def check_seed(seed, name="seed"):
    """None, or an integer ``numpy.random.RandomState`` accepts: [0, 2**32)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an integer or None, got {_given(seed)}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be in [0, 2**32), got {seed}")
    return int(seed)


def as_float_array(value, name, *, allow_int=False, dtype=None):
    """Return ``value`` as a floating NumPy array, refusing what would be wrong.

    Integer and boolean arrays are refused unless ``allow_int``: perturbing
    them in place truncates ``x + h`` (the book's ``[3, 4]`` gives
    ``[25000, 35000]``). NaN and infinity are refused.
    """
    if _is_tensor(value):
        raise TypeError(
            f"{name} is a torch.Tensor, but numpy_impl works on NumPy arrays; "
            f"pass {name}.detach().cpu().numpy() or use torch_impl")
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.floating):
        if not allow_int:
            raise TypeError(
                f"{name} has dtype {arr.dtype}; a floating array is needed "
                f"(an integer {name} would truncate x + h). Pass e.g. "
                f"np.asarray({name}, dtype=np.float64)")
        arr = arr.astype(np.float64 if dtype is None else dtype)
    elif dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    check_finite(arr, name)
    return arr


def check_finite(arr, name):
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        where = tuple(int(i) for i in bad[0]) if bad.size else ()
        raise ValueError(f"{name} contains NaN or infinity (first at index {where})")


def check_step(h, dtype, name="h"):
    """The finite-difference step must be finite, positive and >= machine eps."""
    h = check_real(h, name)
    eps = float(np.finfo(dtype).eps)
    if not math.isfinite(h) or h <= 0:
        raise ValueError(f"{name} must be finite and positive, got {h!r}")
    if h < eps:
        raise ValueError(
            f"{name}={h!r} is below the machine epsilon of {np.dtype(dtype).name} "
            f"({eps:.3g}): x + h rounds back to x and the difference is 0 "
            f"(the book's warning about h = 1e-50); use h=1e-4")
    return h


def check_positive_int(value, name, minimum=1):
    """An integer (not a bool) of at least ``minimum``, as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_given(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_positive_real(value, name):
    """A finite real number > 0, as a float."""
    value = check_real(value, name)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and positive, got {value!r}")
    return value


def check_learning_rate(lr, name="learning_rate"):
    return check_positive_real(lr, name)


def check_inputs(x, input_size, dtype, *, x_name="x"):
    """A 2-D, non-empty, finite float batch of ``input_size`` features, in ``dtype``."""
    x = as_float_array(x, x_name, dtype=dtype)
    if x.ndim != 2:
        raise ValueError(f"{x_name} must be 2-D (batch, {input_size}), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{x_name} is an empty batch (shape {x.shape})")
    if x.shape[1] != input_size:
        raise ValueError(f"{x_name} has {x.shape[1]} features per row, the network expects {input_size}")
    return x


def check_batch(x, t, input_size, output_size, dtype, *, x_name="x", t_name="t"):
    """Validate a network batch: 2-D float ``x``; ``t`` as indices or one-hot.

    Returns ``(x, t)`` with ``x`` in the network's dtype and ``t`` unchanged
    in form (index labels stay integers; one-hot labels take the network's
    dtype, exactly, so float64 labels cannot promote a float32 network).
    """
    x = check_inputs(x, input_size, dtype, x_name=x_name)
    t = check_labels(t, x.shape[0], output_size, t_name=t_name)
    if t.ndim == 2:
        t = t.astype(dtype, copy=False)
    return x, t


def check_labels(t, batch_size, output_size, *, t_name="t"):
    if _is_tensor(t):
        raise TypeError(f"{t_name} is a torch.Tensor, but numpy_impl works on NumPy arrays")
    t = t if isinstance(t, np.ndarray) else np.asarray(t)
    if t.ndim == 1:
        if not (np.issubdtype(t.dtype, np.integer)):
            raise TypeError(f"{t_name} as class indices must be integers, got dtype {t.dtype}")
        if t.shape[0] != batch_size:
            raise ValueError(f"{t_name} has {t.shape[0]} labels for a batch of {batch_size}")
        if t.size and (t.min() < 0 or t.max() >= output_size):
            raise ValueError(
                f"{t_name} holds class indices out of range [0, {output_size}): "
                f"min {int(t.min())}, max {int(t.max())}")
    elif t.ndim == 2:
        if t.dtype == bool or not np.issubdtype(t.dtype, np.number):
            raise TypeError(f"{t_name} one-hot labels must be numeric, got dtype {t.dtype}")
        if t.shape[0] != batch_size:
            raise ValueError(f"{t_name} has {t.shape[0]} rows for a batch of {batch_size}")
        if t.shape[1] != output_size:
            raise ValueError(f"{t_name} one-hot width is {t.shape[1]}, but there are {output_size} "
                             f"classes (outputs)")
        check_finite(t, t_name)
        check_distributions(t, t_name)
    else:
        raise ValueError(f"{t_name} must be 1-D class indices or 2-D one-hot, got shape {t.shape}")
    return t


def check_distributions(t, name="t"):
    """Rows of one-hot or soft (label-smoothed) labels: non-negative, each summing to 1.

    Anything else (all ones, counts, a row of zeros, pixel-scaled values)
    would be read through its argmax by ``loss`` and ``accuracy`` and give a
    number that means nothing.
    """
    if t.size == 0:
        return t
    negative = t < 0
    if negative.any():
        where = tuple(int(i) for i in np.argwhere(negative)[0])
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
    eps = float(np.finfo(t.dtype).eps) if np.issubdtype(t.dtype, np.floating) else 0.0
    tol = ROW_SUM_EPS_FACTOR * n * max(eps, _FLOAT32_EPS)
    sums = t.sum(axis=1)
    off = np.abs(sums - 1) > tol
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(
            f"{name}[{row}] sums to {sums[row].item()!r}, not 1 ({int(off.sum())} of "
            f"{t.shape[0]} rows are off by more than {tol:.2g}); one-hot (or soft) labels "
            f"are rows of non-negative values that sum to 1")
    return t
