"""MNIST for both sides, through ``torchvision.datasets.MNIST``, in the book's forms.

torchvision is the one reader that finds, downloads and parses the files. The
uint8 arrays it produces the first time are kept as plain ``.npy`` files, so
later loads, the NumPy side's training script among them, read those back
(memory-mapped) and never import torch. Each cached file is named after the
size and modification time of the raw file it came from: a raw file replaced
or touched no longer matches any cached name and is read through torchvision
again. One cache serves every option; ``normalize``, ``flatten`` and the
one-hot labels are made from it on each call.

The cache lies beside the data (``<root>/MNIST/cache``) or, when that folder
is read-only, in the per-user cache folder (``$XDG_CACHE_HOME``, else
``~/.cache``, under ``dlfs-ch4/mnist-arrays/``, one folder per data root).
"""
import hashlib
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

RAW_FILES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}
# (images, labels) of each split, as torchvision's MNIST(train=...) reads them
SPLITS = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _user_cache_home():
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlfs-ch4"


def default_root():
    """``$MNIST_ROOT``, else a per-user cache folder, as an absolute path.

    A relative ``$MNIST_ROOT`` (the README's ``../shared/mnist``) means the
    folder as seen from where it is read; made absolute here, it keeps naming
    that folder in a link made from it, in error messages and after a chdir.
    """
    env = os.environ.get("MNIST_ROOT")
    if env:
        return Path(env).expanduser().resolve()
    return _user_cache_home() / "mnist"


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
    from torchvision.datasets import MNIST  # imported here: a warm cache never needs it

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


# -- the cache of torchvision's arrays ----------------------------------------

def cache_folders(root):
    """Where the cached arrays of ``root`` may lie: beside the data, then per user."""
    root = Path(root).expanduser().resolve()
    # one folder per data root, so two roots never serve each other's arrays
    key = hashlib.sha256(os.fsencode(root)).hexdigest()[:16]
    return [root / "MNIST" / "cache", _user_cache_home() / "mnist-arrays" / key]


def _stamps(raw):
    """Each raw file's cache name stem, from its size and mtime; None if one is missing."""
    stamps = {}
    for name in RAW_FILES:
        try:
            st = (raw / name).stat()
        except OSError:
            return None
        stamps[name] = f"{name}.{st.st_size}-{st.st_mtime_ns}"
    return stamps


def _read_cached(folders, stem, shape):
    for folder in folders:
        path = folder / f"{stem}.npy"
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            size = path.stat().st_size
        except (OSError, ValueError, EOFError):
            continue  # absent, or cut short or garbled: torchvision reads it again
        if (array.shape == shape and array.dtype == np.uint8
                and size == array.offset + array.nbytes):
            return np.asarray(array)
    return None


def _writable(folder):
    """Whether ``folder`` (or, if absent, the folder that would hold it) may be written.

    Mode bits count, not only ``os.access``: a data folder marked read-only is
    left alone even by a user (root) whom the bits do not stop.
    """
    while not folder.exists():
        if folder.parent == folder:
            return False
        folder = folder.parent
    return (folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
            and bool(stat.S_IMODE(folder.stat().st_mode) & 0o222))


def _save(folder, stem, array):
    """``folder/stem.npy``, written whole or not at all; older stamps of the file removed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        # no fsync: a file damaged by a crash fails the checks above and is rebuilt
        os.replace(tmp, folder / f"{stem}.npy")
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    name = stem.split(".", 1)[0]
    for old in folder.glob(f"{name}.*.npy"):
        if old.name != f"{stem}.npy":
            try:
                old.unlink()
            except FileNotFoundError:  # another process got there first
                pass


def _write_cache(folders, stamps, arrays):
    """Keep ``arrays`` in the first folder that can take them; the cache is only a
    shortcut, so a folder nothing can be written to costs speed, not the load."""
    for folder in folders:
        if not _writable(folder):
            continue
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for name, array in arrays.items():
                _save(folder, stamps[name], array)
            return folder
        except OSError:
            continue
    return None


def _raw_arrays(root, download):
    """The four raw uint8 arrays, keyed by file name: from the cache, else torchvision."""
    raw = root / "MNIST" / "raw"
    folders = cache_folders(root)
    before = _stamps(raw)
    if before is not None:
        _check_raw(raw)
        arrays = {name: _read_cached(folders, before[name], shape)
                  for name, shape in RAW_FILES.items()}
        if all(a is not None for a in arrays.values()):
            return arrays
    arrays = {}
    for train, (images, labels) in SPLITS.items():
        ds = _load(root, train, download)
        arrays[images] = ds.data.numpy()
        arrays[labels] = ds.targets.numpy().astype(np.uint8)
    after = _stamps(raw)
    # a file replaced while torchvision read it: the arrays may be of either version
    if after is not None and (before is None or before == after):
        _write_cache(folders, after, arrays)
    return arrays


def _one_hot(labels):
    out = np.zeros((labels.size, 10))
    out[np.arange(labels.size), labels] = 1
    return out


def load_mnist(root=None, *, normalize=True, flatten=True, one_hot_label=False, download=True):
    """``((x_train, t_train), (x_test, t_test))`` as NumPy arrays, shaped as the book's.

    ``normalize``: float32 in [0, 1] (else uint8 0..255); ``flatten``: (N, 784)
    (else (N, 1, 28, 28)); ``one_hot_label``: float64 (N, 10) (else uint8).
    ``root=None`` means ``$MNIST_ROOT``, else a per-user cache folder. Every
    array returned is new and writable; none shares memory with the cache.
    """
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder (str or os.PathLike) or None, got {root!r}")
    for name, flag in (("normalize", normalize), ("flatten", flatten),
                       ("one_hot_label", one_hot_label), ("download", download)):
        if not isinstance(flag, (bool, np.bool_)):  # "no" or 0 would silently mean something
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    root = default_root() if root is None else Path(root)
    arrays = _raw_arrays(root, download)
    out = []
    for images, labels in SPLITS.values():
        x, t = arrays[images], arrays[labels]
        x = x.reshape(-1, 784) if flatten else x.reshape(-1, 1, 28, 28)
        # x / 255 in float32, as x.astype(np.float32) / 255.0, in one pass
        x = np.divide(x, np.float32(255.0), dtype=np.float32) if normalize else x.copy()
        t = _one_hot(t) if one_hot_label else t.copy()
        out.append((x, t))
    return tuple(out)
