"""MNIST for both sides, through ``torchvision.datasets.MNIST``, in the book's forms."""
import os
from pathlib import Path

import numpy as np

RAW_FILES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}


def default_root():
    """``$MNIST_ROOT``, else a per-user cache folder."""
    env = os.environ.get("MNIST_ROOT")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dlfs-ch4" / "mnist"


def _check_raw(raw):
    """Refuse truncated or non-IDX files before torchvision misreads them."""
    for name, shape in RAW_FILES.items():
        path = raw / name
        if not path.exists():
            continue
        header = 8 if len(shape) == 1 else 16
        with open(path, "rb") as fh:
            head = fh.read(header)
        magic = 2049 if len(shape) == 1 else 2051
        if len(head) < header or int.from_bytes(head[:4], "big") != magic:
            raise ValueError(f"{path} is not an MNIST IDX file (bad header); delete it or "
                             f"point MNIST_ROOT at a folder with the official files")
        dims = [int.from_bytes(head[4 + 4 * k: 8 + 4 * k], "big") for k in range(len(shape))]
        if tuple(dims) != shape:  # a consistent file of another shape would load "fine"
            raise ValueError(f"{path} holds an array of shape {tuple(dims)}, but MNIST's "
                             f"{name} has shape {shape}; replace it with the official file")
        expected = header + int(np.prod(dims))
        if path.stat().st_size != expected:
            raise ValueError(f"{path} is truncated or padded: {path.stat().st_size} bytes, "
                             f"its header promises {expected}")


def _load(root, train, download):
    from torchvision.datasets import MNIST  # imported here: the NumPy side never needs it

    raw = Path(root) / "MNIST" / "raw"
    _check_raw(raw)
    try:
        return MNIST(root=str(root), train=train, download=download)
    except RuntimeError as exc:
        missing = [n for n in RAW_FILES if not (raw / n).exists()]
        raise FileNotFoundError(
            f"MNIST not found in {raw} (missing: {', '.join(missing) or 'none'}) and it could "
            f"not be downloaded ({exc}). Put the four *-ubyte files there, or set MNIST_ROOT "
            f"to a folder that holds MNIST/raw/*-ubyte") from exc


def _one_hot(labels):
    out = np.zeros((labels.size, 10))
    out[np.arange(labels.size), labels] = 1
    return out


def load_mnist(root=None, *, normalize=True, flatten=True, one_hot_label=False, download=True):
    """``((x_train, t_train), (x_test, t_test))`` as NumPy arrays, shaped as the book's.

    ``normalize``: float32 in [0, 1] (else uint8 0..255); ``flatten``: (N, 784)
    (else (N, 1, 28, 28)); ``one_hot_label``: float64 (N, 10) (else uint8).
    ``root=None`` means ``$MNIST_ROOT``, else a per-user cache folder.
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder (str or os.PathLike) or None, got {root!r}")
    for name, flag in (("normalize", normalize), ("flatten", flatten),
                       ("one_hot_label", one_hot_label), ("download", download)):
        if not isinstance(flag, (bool, np.bool_)):  # "no" or 0 would silently mean something
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    root = default_root() if root is None else Path(root)
    out = []
    for train in (True, False):
        ds = _load(root, train, download)
        x = ds.data.numpy()
        t = ds.targets.numpy().astype(np.uint8)
        x = x.reshape(-1, 784) if flatten else x.reshape(-1, 1, 28, 28)
        if normalize:
            x = x.astype(np.float32) / 255.0
        if one_hot_label:
            t = _one_hot(t)
        out.append((x, t))
    return tuple(out)
