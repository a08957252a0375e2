"""Shared fixtures: MNIST from ``$MNIST_ROOT`` (``../shared/mnist`` by default), loaded once."""
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Absolute from here on: tests link the raw files into temporary folders and
# start processes in other folders, where a relative root (the README's
# ``../shared/mnist``) would name nothing. xdist's workers inherit it.
os.environ["MNIST_ROOT"] = str(
    Path(os.environ.get("MNIST_ROOT") or ROOT.parent / "shared" / "mnist").expanduser().resolve())
os.environ.setdefault("MPLBACKEND", "Agg")
# The loader keeps its arrays in the per-user cache when the data folder is
# read-only; the tests' go to one temporary folder, made by the first process
# of the run (xdist's workers inherit it) and removed by that process.
_OWN_CACHE = "DLFS_TEST_CACHE" not in os.environ
if _OWN_CACHE:
    os.environ["DLFS_TEST_CACHE"] = tempfile.mkdtemp(prefix="dlfs-ch4-test-cache-")
os.environ["XDG_CACHE_HOME"] = os.environ["DLFS_TEST_CACHE"]


def pytest_configure(config):
    # One intra-op thread: on 2 shared cores torch's thread pool spins against
    # NumPy's BLAS and other processes (measured 3-10x slower under load), and
    # the tests time nothing; benchmarks set their own thread counts.
    import torch

    torch.set_num_threads(int(os.environ.get("TEST_TORCH_THREADS", "1")))


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ.pop("DLFS_TEST_CACHE"), ignore_errors=True)


@pytest.fixture(scope="session")
def mnist():
    """((x_train, t_train), (x_test, t_test)): float32 in [0, 1], uint8 labels."""
    from compare import load_mnist

    return load_mnist(download=False)


@pytest.fixture(scope="session")
def mnist_batch(mnist):
    """The first 100 training images in float64 and their labels (index form)."""
    import numpy as np

    (x_train, t_train), _ = mnist
    return x_train[:100].astype(np.float64), t_train[:100].astype(np.int64)


class ImplSide:
    """One implementation (``numpy_impl`` or ``torch_impl``) and how to hand it
    arrays of its own kind (``arr``) or of the other side's (``foreign``)."""

    def __init__(self, name):
        import numpy_impl
        import torch_impl

        self.name = name
        self.mod = numpy_impl if name == "numpy" else torch_impl

    def arr(self, value, dtype=None):
        import numpy as np
        import torch

        value = np.array(value, dtype=dtype)
        return value if self.name == "numpy" else torch.from_numpy(value)

    def foreign(self, value, dtype=None):
        import numpy as np
        import torch

        value = np.array(value, dtype=dtype)
        return torch.from_numpy(value) if self.name == "numpy" else value

    @staticmethod
    def np(value):
        """Back to NumPy, without a copy where possible."""
        import numpy as np
        import torch

        return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)

    def net(self, input_size=4, hidden_size=3, output_size=2, **kwargs):
        return self.mod.TwoLayerNet(input_size, hidden_size, output_size, seed=0, **kwargs)

    def batch(self, n=5):
        """A valid batch for ``net()``: x (n, 4) in [0, 1), class indices in {0, 1}."""
        import numpy as np

        rng = np.random.RandomState(1)
        return self.arr(rng.rand(n, 4)), self.arr(rng.randint(0, 2, n))


@pytest.fixture(params=["numpy", "torch"])
def impl_side(request):
    """Each test that takes it runs once on the NumPy side and once on the torch side."""
    return ImplSide(request.param)


@pytest.fixture
def side(impl_side):
    """``impl_side`` under the shorter name the reliability and validation tests use."""
    return impl_side


@pytest.fixture
def ctrl_c_delivered():
    """SIGINT raises ``KeyboardInterrupt`` during the test, as in a terminal.

    A process started with SIGINT ignored (``cmd &`` from a script, ``nohup``,
    some CI runners) hands ``SIG_IGN`` down to pytest and to xdist's workers,
    and the checkpoint code rightly leaves an ignored SIGINT ignored: the
    tests that press Ctrl-C would then press it in vain. The previous
    disposition comes back after the test. Processes the test starts meanwhile
    get SIGINT's default action too: exec resets a caught signal to its
    default, only an ignored one is inherited.
    """
    assert threading.current_thread() is threading.main_thread(), "signals need the main thread"
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        # None: the previous handler was not set from Python (it was the default)
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
