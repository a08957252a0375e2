"""The batch a command-line check runs on: MNIST as the book loads it, or seeded noise.

MNIST: the training images in [0, 1] (float), the book's one-hot labels
(or class indices); flattened to (N, 784) unless the model's first
parameter is a convolution's 4-D weight or ``input_shape`` says otherwise.
Random: 1000 seeded samples in the same ranges, inputs uniform in [0, 1),
labels uniform over the classes. A check runs on the batch the book's
stream draws first for ``seed``, which is also training's first batch.

``command_batch`` is that batch as ``compare port`` draws it, the defaults
included: ``check_port`` without ``x, t`` runs on the same one.
"""
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
    """``(x, t)``: MNIST's training set, or ``rows`` seeded random samples."""
    if data not in DATA:
        raise PortSetupError(f"--data must be one of {DATA}, got {data!r}")
    if labels not in LABELS:
        raise PortSetupError(f"--labels must be one of {LABELS}, got {labels!r}")
    shape = input_shape or infer_input_shape(params, data)
    if data == "mnist":
        if int(np.prod(shape)) != 784:
            raise PortSetupError(f"MNIST images have 784 pixels; the model takes {shape}")
        from ..mnist import load_mnist
        (x, t), _ = load_mnist(normalize=True)
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


def first_batch(x, t, *, batch=100, seed=0):
    """The batch the book's stream draws first for ``seed`` (training's step 0)."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise PortSetupError(f"--batch must be a positive integer, got {batch!r}")
    idx = BookRandomStream(seed).batch_indices(x.shape[0], batch)
    return x[idx], t[idx]


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
    options = {**BATCH_DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    x, t = command_dataset(params, dtype, **options)
    x, t = first_batch(x, t, batch=options["batch"], seed=options["seed"])
    return x.astype(dtype), t
