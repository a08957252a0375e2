"""The batch a command-line check runs on: MNIST as the book loads it, or seeded noise.

MNIST: images in [0, 1] (float), the book's one-hot labels (or class
indices), the batch drawn by the book's stream for ``seed``; flattened to
(N, 784) unless the model's first parameter is a convolution's 4-D weight
or ``input_shape`` says otherwise. Random: the same ranges, seeded: inputs
uniform in [0, 1), labels uniform over the classes.
"""
import numpy as np

from numpy_impl.random_stream import BookRandomStream

from .targets import PortSetupError

DATA = ("mnist", "random")
LABELS = ("one-hot", "index")


def parse_shape(text):
    """``"784"`` or ``"1,28,28"`` -> a tuple of positive ints (one sample's shape)."""
    if text is None:
        return None
    try:
        shape = tuple(int(p) for p in str(text).replace("x", ",").split(",") if p.strip())
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


def make_batch(params, *, data="mnist", batch=100, seed=0, labels="one-hot", input_shape=None,
               classes=None, dtype="float64"):
    """``(x, t)`` as NumPy arrays."""
    if data not in DATA:
        raise PortSetupError(f"--data must be one of {DATA}, got {data!r}")
    if labels not in LABELS:
        raise PortSetupError(f"--labels must be one of {LABELS}, got {labels!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise PortSetupError(f"--batch must be a positive integer, got {batch!r}")
    shape = input_shape or infer_input_shape(params, data)
    if data == "mnist":
        if int(np.prod(shape)) != 784:
            raise PortSetupError(f"MNIST images have 784 pixels; the model takes {shape}")
        from ..mnist import load_mnist
        (x_train, t_train), _ = load_mnist(normalize=True)
        idx = BookRandomStream(seed).batch_indices(x_train.shape[0], batch)
        x = x_train[idx].reshape((batch,) + tuple(shape)).astype(dtype)
        t = t_train[idx].astype(np.int64)
        classes = 10
    else:
        if classes is None:
            last = list(params.values())[-1]
            classes = int(last.shape[-1])
        rng = np.random.RandomState(seed)
        x = rng.rand(batch, *shape).astype(dtype)
        t = rng.randint(0, classes, batch).astype(np.int64)
    if labels == "one-hot":
        t = np.eye(classes, dtype=dtype)[t]
    return x, t
