"""The shared MNIST loader: broken data is a clear error, good data comes back independent.

Each broken case is a temporary ``MNIST/raw`` folder holding the real files
(linked, they are only read) with one of them missing, cut short, padded or
replaced; ``download=False`` keeps the tests off the network.
"""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from compare import load_mnist
from compare.mnist import RAW_FILES

REAL_RAW = Path(os.environ["MNIST_ROOT"]) / "MNIST" / "raw"
IMAGES, LABELS = "train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"


def mnist_copy(root, replace=None):
    """``root/MNIST/raw`` holding the real files; ``replace`` maps a file's name
    to new bytes, or to None to leave it out."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True)
    replace = replace or {}
    for name in RAW_FILES:
        if name not in replace:
            os.symlink(REAL_RAW / name, raw / name)
        elif replace[name] is not None:
            (raw / name).write_bytes(replace[name])
    return raw


def real(name):
    return (REAL_RAW / name).read_bytes()


@pytest.mark.parametrize("name", list(RAW_FILES))
def test_missing_file_names_the_folder_and_mnist_root(tmp_path, name):
    raw = mnist_copy(tmp_path, {name: None})
    with pytest.raises(FileNotFoundError) as exc:
        load_mnist(tmp_path, download=False)
    message = str(exc.value)
    assert str(raw) in message and "MNIST_ROOT" in message and name in message


def test_empty_folder_through_mnist_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError) as exc:
        load_mnist(download=False)
    assert str(tmp_path / "MNIST" / "raw") in str(exc.value)


@pytest.mark.parametrize("name", [IMAGES, LABELS])
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_file_is_refused(tmp_path, name, keep):
    data = real(name)
    raw = mnist_copy(tmp_path, {name: data[: int(len(data) * keep)]})
    with pytest.raises(ValueError, match="truncated") as exc:
        load_mnist(tmp_path, download=False)
    assert str(raw / name) in str(exc.value)


def test_padded_file_is_refused(tmp_path):
    raw = mnist_copy(tmp_path, {LABELS: real(LABELS) + b"\0"})
    with pytest.raises(ValueError, match="padded") as exc:
        load_mnist(tmp_path, download=False)
    assert str(raw / LABELS) in str(exc.value)


@pytest.mark.parametrize("content", [
    b"",                                   # empty
    b"\x00\x00",                           # shorter than any header
    b"<html>404 Not Found</html>" * 10,    # what a failed download may leave
    b"\x1f\x8b\x08\x00" + bytes(100),      # still gzipped
])
def test_non_idx_file_is_refused(tmp_path, content):
    raw = mnist_copy(tmp_path, {IMAGES: content})
    with pytest.raises(ValueError, match="not an MNIST IDX file") as exc:
        load_mnist(tmp_path, download=False)
    assert str(raw / IMAGES) in str(exc.value)


def test_swapped_files_are_refused(tmp_path):
    # a labels file (magic 2049) where the images (magic 2051) belong
    mnist_copy(tmp_path, {IMAGES: real("train-labels-idx1-ubyte")})
    with pytest.raises(ValueError, match="not an MNIST IDX file"):
        load_mnist(tmp_path, download=False)


@pytest.mark.parametrize("dims", [(10, 28, 28), (60000, 14, 56)])
def test_consistent_file_of_the_wrong_shape_is_refused(tmp_path, dims):
    # Header and size agree, so only the shape shows the file is not MNIST's:
    # 10 images would meet 60000 labels, 14x56 would reshape into wrong 28x28s.
    data = real(IMAGES)
    header = (2051).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    raw = mnist_copy(tmp_path, {IMAGES: header + data[16: 16 + int(np.prod(dims))]})
    with pytest.raises(ValueError, match="shape") as exc:
        load_mnist(tmp_path, download=False)
    assert str(raw / IMAGES) in str(exc.value)


def test_real_copy_loads_like_the_shared_data(tmp_path, mnist):
    # The good case: real bytes copied to a new folder (not linked) load as the book's shapes.
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        shutil.copy(REAL_RAW / name, raw / name)
    (x_train, t_train), (x_test, t_test) = load_mnist(tmp_path, download=False)
    assert x_train.shape == (60000, 784) and x_train.dtype == np.float32
    assert t_train.shape == (60000,) and t_train.dtype == np.uint8
    assert x_test.shape == (10000, 784) and t_test.shape == (10000,)
    (x0, t0), (x1, t1) = mnist
    assert np.array_equal(x_train, x0) and np.array_equal(t_train, t0)
    assert np.array_equal(x_test, x1) and np.array_equal(t_test, t1)


@pytest.mark.parametrize("options", [{}, {"normalize": False, "flatten": False,
                                          "one_hot_label": True}])
def test_outputs_are_independent(options, mnist):
    """No output shares memory with another, and writing to one call's arrays
    leaves the next call's untouched (no cache hands out the same buffer)."""
    first = [a for pair in load_mnist(download=False, **options) for a in pair]
    for i, a in enumerate(first):
        assert a.flags.writeable
        for b in first[i + 1:]:
            assert not np.shares_memory(a, b)
    for a in first:
        a[...] = 7
    second = [a for pair in load_mnist(download=False, **options) for a in pair]
    (x0, t0), (x1, t1) = mnist  # normalize=True, flatten=True, index labels
    if options.get("normalize", True):
        assert np.array_equal(second[0].reshape(-1, 784), x0)
        assert np.array_equal(second[2].reshape(-1, 784), x1)
    else:
        assert np.array_equal(second[0].reshape(-1, 784), np.rint(x0 * 255).astype(np.uint8))
    labels = second[1].argmax(axis=1) if options.get("one_hot_label") else second[1]
    assert np.array_equal(labels, t0)
    for a in first:
        assert not any(np.shares_memory(a, b) for b in second)
