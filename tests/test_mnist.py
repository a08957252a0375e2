"""The shared MNIST loader: broken data is a clear error, good data comes back independent,
and the cache of torchvision's arrays is never served stale.

Each broken case is a temporary ``MNIST/raw`` folder holding the real files
(linked, they are only read) with one of them missing, cut short, padded or
replaced; ``download=False`` keeps the tests off the network.
"""
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from compare import load_mnist
from compare.mnist import RAW_FILES, default_root

PROJECT = Path(__file__).resolve().parents[1]
# absolute: the links made from it into temporary folders must point back here
REAL_ROOT = Path(os.environ["MNIST_ROOT"]).expanduser().resolve()
REAL_RAW = REAL_ROOT / "MNIST" / "raw"
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


def test_a_relative_mnist_root_keeps_naming_its_folder(tmp_path, monkeypatch):
    # As the README sets it: relative to the project folder the commands start in.
    monkeypatch.chdir(PROJECT)
    monkeypatch.setenv("MNIST_ROOT", os.path.relpath(REAL_ROOT, PROJECT))
    root = default_root()
    assert root.is_absolute() and root == REAL_ROOT
    # Links made from it elsewhere reach the real files, and they load.
    monkeypatch.chdir(tmp_path)
    copy = tmp_path / "copy"
    (copy / "MNIST" / "raw").mkdir(parents=True)
    for name in RAW_FILES:
        os.symlink(root / "MNIST" / "raw" / name, copy / "MNIST" / "raw" / name)
    (x_train, t_train), (x_test, _) = load_mnist(copy, normalize=False, download=False)
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert np.array_equal(t_train[:100], np.frombuffer(real("train-labels-idx1-ubyte")[8:108],
                                                       dtype=np.uint8))


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


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
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


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
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


# -- the cache of torchvision's arrays ----------------------------------------

def raw_copy(root, symlink=False):
    """``root/MNIST/raw`` with the real files, copied (so they may be touched) or linked."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES:
        (os.symlink if symlink else shutil.copy)(REAL_RAW / name, raw / name)
    return raw


def torchvision_arrays(root):
    from torchvision.datasets import MNIST

    out = []
    for train in (True, False):
        ds = MNIST(root=str(root), train=train, download=False)
        out.append((ds.data.numpy(), ds.targets.numpy()))
    return out


@pytest.fixture
def torchvision_reads(monkeypatch):
    """Counts the reads through torchvision."""
    import compare.mnist

    calls = []
    load = compare.mnist._load

    def counting(root, train, download):
        calls.append(train)
        return load(root, train, download)

    monkeypatch.setattr(compare.mnist, "_load", counting)
    return calls


def cached_files(folder):
    return sorted(p.name for p in Path(folder).glob("*.npy"))


def raw_form(data):
    return [a for pair in data for a in pair]


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
def test_a_later_load_reads_the_cache_and_gives_torchvision_s_arrays(tmp_path, torchvision_reads):
    raw_copy(tmp_path, symlink=True)
    first = load_mnist(tmp_path, normalize=False, flatten=False, download=False)
    assert torchvision_reads == [True, False]
    assert len(cached_files(tmp_path / "MNIST" / "cache")) == 4
    second = load_mnist(tmp_path, normalize=False, flatten=False, download=False)
    assert torchvision_reads == [True, False]  # no new read
    for (x, t), (x_tv, t_tv), got in zip(second, torchvision_arrays(tmp_path), (first, second)):
        assert x.shape == (len(t_tv), 1, 28, 28) and x.dtype == np.uint8 and t.dtype == np.uint8
        assert np.array_equal(x.reshape(x_tv.shape), x_tv) and np.array_equal(t, t_tv)
    assert all(np.array_equal(a, b) for a, b in zip(raw_form(first), raw_form(second)))
    # every form is made from the cache, bit for bit as from torchvision's arrays
    (x, t), _ = load_mnist(tmp_path, one_hot_label=True, download=False)
    x_tv, t_tv = torchvision_arrays(tmp_path)[0]
    assert np.array_equal(x.view(np.uint32),
                          (x_tv.reshape(-1, 784).astype(np.float32) / 255.0).view(np.uint32))
    assert t.dtype == np.float64 and np.array_equal(t.argmax(axis=1), t_tv)
    assert torchvision_reads == [True, False]


@pytest.mark.slow  # a whole process or a long run: seconds
def test_the_numpy_script_on_a_warm_cache_never_imports_torch(tmp_path):
    raw_copy(tmp_path, symlink=True)
    load_mnist(tmp_path, download=False)
    script = ("import runpy, sys\n"
              "sys.argv = ['train_neuralnet', '--iters', '1', '--seed', '0']\n"
              "try:\n"
              "    runpy.run_module('numpy_impl.train_neuralnet', run_name='__main__')\n"
              "except SystemExit as exc:\n"
              "    assert not exc.code, exc.code\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))\n")
    env = dict(os.environ, MNIST_ROOT=str(tmp_path), PYTHONPATH=str(Path(__file__).parents[1]))
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, check=False,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("train acc, test acc | ")
    assert lines[-1] == "[]"


@pytest.mark.slow  # a few seconds: with the full suite
def test_a_touched_or_replaced_raw_file_is_read_again(tmp_path, torchvision_reads):
    raw = raw_copy(tmp_path)
    cache = tmp_path / "MNIST" / "cache"
    (_, t_train), _ = load_mnist(tmp_path, download=False)
    before = cached_files(cache)
    labels = raw / "train-labels-idx1-ubyte"

    st = labels.stat()
    os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    (_, t_touched), _ = load_mnist(tmp_path, download=False)
    assert torchvision_reads == [True, False] * 2
    assert np.array_equal(t_touched, t_train)
    after = cached_files(cache)
    assert len(after) == 4 and after != before  # the old stamp's file is gone

    # same size, new bytes: the labels in reverse order
    data = labels.read_bytes()
    labels.write_bytes(data[:8] + data[8:][::-1])
    (_, t_replaced), _ = load_mnist(tmp_path, download=False)
    assert np.array_equal(t_replaced, t_train[::-1])
    (_, t_again), _ = load_mnist(tmp_path, download=False)
    assert np.array_equal(t_again, t_train[::-1])
    assert torchvision_reads == [True, False] * 3


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncate", "empty", "garble", "pad"])
def test_a_damaged_cache_file_is_rebuilt(tmp_path, torchvision_reads, damage):
    raw_copy(tmp_path, symlink=True)
    expected = raw_form(load_mnist(tmp_path, normalize=False, download=False))
    cache = tmp_path / "MNIST" / "cache"
    [images] = cache.glob("train-images-idx3-ubyte.*.npy")
    data = images.read_bytes()
    images.write_bytes({"truncate": data[: len(data) // 2], "empty": b"",
                        "garble": b"\x93NUMPY" + bytes(200), "pad": data + b"\0"}[damage])
    got = raw_form(load_mnist(tmp_path, normalize=False, download=False))
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))
    assert torchvision_reads == [True, False] * 2
    assert images.read_bytes() == data  # rewritten whole
    load_mnist(tmp_path, normalize=False, download=False)
    assert torchvision_reads == [True, False] * 2


@pytest.fixture
def read_only(tmp_path):
    """Marks folders read-only for one test, and writable again after it (for cleanup)."""
    marked = []

    def mark(folder):
        folder.chmod(0o555)
        marked.append(folder)

    yield mark
    for folder in marked:
        folder.chmod(0o755)


@pytest.mark.slow  # seconds of MNIST reading: in the full run
def test_a_read_only_data_folder_uses_the_per_user_cache(tmp_path, monkeypatch, read_only):
    import compare.mnist

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        raw_copy(root)
    # b's labels differ from a's but have a's size and modification time,
    # so only the folder tells the two caches apart
    a_labels, b_labels = (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte" for root in roots)
    data = a_labels.read_bytes()
    b_labels.write_bytes(data[:8] + data[8:][::-1])
    st = a_labels.stat()
    os.utime(b_labels, ns=(st.st_atime_ns, st.st_mtime_ns))
    for root in roots:
        read_only(root / "MNIST")
    first = [load_mnist(root, download=False)[1][1] for root in roots]
    assert np.array_equal(first[1], first[0][::-1])

    folders = sorted((tmp_path / "xdg" / "dlfs-ch4" / "mnist-arrays").iterdir())
    assert len(folders) == 2 and all(len(cached_files(f)) == 4 for f in folders)
    assert not any((root / "MNIST" / "cache").exists() for root in roots)
    monkeypatch.setattr(compare.mnist, "_load", lambda *a: pytest.fail("torchvision read again"))
    for root, t_test in zip(roots, first):
        assert np.array_equal(load_mnist(root, download=False)[1][1], t_test)


@pytest.mark.slow  # seconds of MNIST reading: in the full run
def test_loads_running_together_on_a_cold_cache_agree(tmp_path):
    raw_copy(tmp_path, symlink=True)
    results, errors = [None] * 3, []

    def load(i):
        try:
            results[i] = raw_form(load_mnist(tmp_path, normalize=False, download=False))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    cache = tmp_path / "MNIST" / "cache"
    assert len(cached_files(cache)) == 4 and not list(cache.glob(".*"))  # no temporary left
    reference = raw_form(load_mnist(tmp_path, normalize=False, download=False))
    for result in results:
        assert all(np.array_equal(a, b) for a, b in zip(result, reference))
