"""The batch a command-line check runs on: MNIST as the book loads it, seeded noise, or
the user's own arrays.

MNIST: the training images in [0, 1] (float), the book's one-hot labels
(or class indices); flattened to (N, 784) unless the model's first
parameter is a convolution's 4-D weight or ``input_shape`` says otherwise.
Random: 1000 seeded samples in the same ranges, inputs uniform in [0, 1),
labels uniform over the classes. ``FILE.npz``: its arrays ``x`` (N, ...)
and ``t`` (N, ...), taken as they are (``x`` reshaped only to a given
``input_shape``): class indices, one-hot rows or real targets; ``labels``
given converts class labels between indices and one-hot rows, and leaves
them as stored when not. A check runs on the batch the book's stream draws
first for ``seed``, which is also training's first batch.

``command_batch`` is that batch as ``compare port`` draws it, the defaults
included: ``check_port`` without ``x, t`` runs on the same one.
"""
import zipfile
from pathlib import Path

import numpy as np

from numpy_impl.random_stream import BookRandomStream

from .targets import PortSetupError

DATA = ("mnist", "random")
LABELS = ("one-hot", "index")
# what the command's batch is when no option says otherwise
BATCH_DEFAULTS = {"data": "mnist", "batch": 100, "seed": 0, "labels": "one-hot"}


def parse_shape(text):
    """``"784"`` or ``"1,28,28"`` -> a tuple of positive ints (one sample's shape)."""
    if text is None:
        return None
    if isinstance(text, (tuple, list)):
        text = ",".join(str(p) for p in text)
    try:
        shape = tuple(int(p) for p in str(text).split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise PortSetupError(f"--input-shape must be positive integers such as 784 or 1,28,28, "
                             f"got {text!r}")
    return shape


def infer_input_shape(params, data):
    """One sample's shape from the NumPy model's first parameter."""
    first = next(iter(params.values()))
    if first.ndim == 2:
        return (first.shape[0],)
    if first.ndim == 4 and data == "mnist":
        return (first.shape[1], 28, 28)
    raise PortSetupError(f"cannot tell the input shape from the first parameter "
                         f"({next(iter(params))} {first.shape}); give --input-shape, e.g. 1,28,28")


RANDOM_ROWS = 1000


def make_dataset(params, *, data="mnist", seed=0, labels="one-hot", input_shape=None,
                 classes=None, dtype="float64", rows=RANDOM_ROWS):
    """``(x, t)``: MNIST's training set, ``rows`` seeded random samples, or a file's arrays."""
    if labels is not None and labels not in LABELS:
        raise PortSetupError(f"--labels must be one of {LABELS}, got {labels!r}")
    if is_data_file(data):
        return load_npz(data, labels=labels, input_shape=input_shape, params=params)
    if data not in DATA:
        raise PortSetupError(f"--data must be one of {DATA} or FILE.npz, got {data!r}")
    labels = labels or "one-hot"
    shape = input_shape or infer_input_shape(params, data)
    if data == "mnist":
        if int(np.prod(shape)) != 784:
            raise PortSetupError(f"MNIST images have 784 pixels; the model takes {shape}")
        from ..mnist import load_mnist
        try:  # the loader's message names the folder it looked in and MNIST_ROOT
            (x, t), _ = load_mnist(normalize=True)
        except (FileNotFoundError, ValueError) as exc:
            raise PortSetupError(f"--data mnist: {exc}; or give --data random or FILE.npz") from exc
        x = x.reshape((x.shape[0],) + tuple(shape))
        classes = 10
    else:
        if classes is None:
            classes = int(list(params.values())[-1].shape[-1])
        rng = np.random.RandomState(seed)
        x = rng.rand(rows, *shape)
        t = rng.randint(0, classes, rows)
    t = t.astype(np.int64)
    if labels == "one-hot":
        t = np.eye(classes, dtype=dtype)[t]
    return x, t


def is_data_file(data):
    """``data`` names a file of arrays rather than ``mnist`` or ``random``."""
    return isinstance(data, (str, Path)) and str(data) not in DATA


def load_npz(path, *, labels=None, input_shape=None, params=None):
    """``(x, t)`` from ``path``'s arrays ``x`` and ``t``: one row per sample in each,
    numbers, finite. ``labels`` converts class labels (indices <-> one-hot rows, as many
    classes as the model's last parameter has columns, or as the labels need)."""
    path = Path(path).expanduser()
    if not str(path).endswith(".npz"):
        raise PortSetupError(f"--data must be mnist, random or a .npz file holding arrays x and "
                             f"t, got {str(path)!r}")
    if not path.is_file():
        raise PortSetupError(f"--data: no such file {str(path)!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            arrays = {k: npz[k] for k in ("x", "t") if k in names}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise PortSetupError(f"--data {path} is not a readable .npz file ({type(exc).__name__}: "
                             f"{exc}); write one with numpy.savez(path, x=x, t=t)") from None
    except AttributeError:  # a .npy file loads as one array
        raise PortSetupError(f"--data {path} holds one array, not an .npz archive; write one "
                             f"with numpy.savez(path, x=x, t=t)") from None
    missing = [k for k in ("x", "t") if k not in arrays]
    if missing:
        raise PortSetupError(f"--data {path} has no array {' or '.join(map(repr, missing))} (it "
                             f"has: {', '.join(names) or 'nothing'}); write it with "
                             f"numpy.savez(path, x=x, t=t)")
    x, t = arrays["x"], arrays["t"]
    for name, a in (("x", x), ("t", t)):
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or \
                np.issubdtype(a.dtype, np.complexfloating):
            raise PortSetupError(f"--data {path}: {name} must hold real numbers, got dtype {a.dtype}")
        if a.ndim < 1 or a.shape[0] < 1:
            raise PortSetupError(f"--data {path}: {name} must have one row per sample, got shape "
                                 f"{a.shape}")
        if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
            bad = int(np.sum(~np.isfinite(a)))
            raise PortSetupError(f"--data {path}: {name} holds NaN or infinity ({bad} of "
                                 f"{a.size} values)")
    if x.shape[0] != t.shape[0]:
        raise PortSetupError(f"--data {path}: x has {x.shape[0]} rows and t {t.shape[0]}; they "
                             f"must have one row per sample each")
    if x.ndim < 2:
        raise PortSetupError(f"--data {path}: x has shape {x.shape}; one feature per sample "
                             f"is x of shape (N, 1)")
    if input_shape is not None:
        if int(np.prod(input_shape)) != int(np.prod(x.shape[1:])):
            raise PortSetupError(f"--data {path}: x's samples have shape {x.shape[1:]}, which "
                                 f"--input-shape {tuple(input_shape)} cannot hold")
        x = x.reshape((x.shape[0],) + tuple(input_shape))
    if x.dtype == bool:
        x = x.astype(np.float64)
    # integer x stays integer: token ids, which an embedding looks up
    return x, _labels_as(t, labels, params, path)


def _labels_as(t, labels, params, path):
    if labels is None:
        return t
    whole = np.issubdtype(t.dtype, np.integer) or (
        np.issubdtype(t.dtype, np.floating) and np.all(t == np.round(t)))
    if t.ndim == 1 and whole and t.min() >= 0:
        if labels == "index":
            return t.astype(np.int64)
        width = int(list(params.values())[-1].shape[-1]) if params else 0
        classes = max(width, int(t.max()) + 1)
        return np.eye(classes)[t.astype(np.int64)]
    if t.ndim == 2 and whole and t.min() >= 0 and np.all(t.sum(axis=1) == 1):
        return t.argmax(axis=1).astype(np.int64) if labels == "index" else t
    raise PortSetupError(f"--labels {labels} converts class labels, and {path}'s t (shape "
                         f"{t.shape}, {t.dtype}) holds other targets: leave --labels out to hand "
                         f"them on as they are")


def first_batch(x, t, *, batch=100, seed=0):
    """The batch the book's stream draws first for ``seed`` (training's step 0)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise PortSetupError(f"--batch must be a positive integer, got {batch!r}")
    idx = BookRandomStream(seed).batch_indices(x.shape[0], batch)
    return x[idx], t[idx]


def fit_batch(batch, rows, data, *, given=True):
    """``(batch, note)``: the batch size to draw from ``rows`` rows. One larger than the
    rows would draw every row more than once on average, which no user asks for: a
    ``--batch`` given so is refused (exit status 2), the default is lowered to the rows
    there are, and ``note`` says so (else None)."""
    if batch <= rows:
        return batch, None
    source = "MNIST's training set" if data == "mnist" else f"--data {data}"
    if given:
        raise PortSetupError(f"--batch {batch} is more than the {rows} rows of {source}; "
                             f"give --batch {rows} or less")
    return rows, (f"batch of {rows}: {source} has {rows} rows, fewer than the default "
                  f"batch of {batch}")


def command_dataset(params, dtype, *, data="mnist", batch=100, seed=0, labels="one-hot",
                    input_shape=None):
    """The rows ``compare port`` draws its batches from (``--data``, ``--labels``,
    ``--input-shape`` as given, the shape else from the first parameter)."""
    return make_dataset(params, data=data, seed=seed, labels=labels,
                        input_shape=parse_shape(input_shape), dtype=dtype,
                        rows=max(RANDOM_ROWS, batch))


def command_batch(params, dtype, **options):
    """``(x, t)``: the batch ``compare port`` checks on, in ``dtype``; an option left out
    or None takes the command's default (``BATCH_DEFAULTS``)."""
    given = {k: v for k, v in options.items() if v is not None}
    options = {**BATCH_DEFAULTS, **given}
    if is_data_file(options["data"]) and "labels" not in given:
        options["labels"] = None  # a file's labels handed on as stored
    x, t = command_dataset(params, dtype, **options)
    x, t = first_batch(x, t, batch=options["batch"], seed=options["seed"])
    return as_input(x, dtype), t


def as_input(x, dtype):
    """``x`` in the run's ``dtype``; integer ``x`` (token ids) kept as it is."""
    return x if np.issubdtype(x.dtype, np.integer) else x.astype(dtype)
