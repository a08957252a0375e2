"""Shared fixtures: MNIST from ``$MNIST_ROOT`` (``../shared/mnist`` by default), loaded once."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MNIST_ROOT", str(ROOT.parent / "shared" / "mnist"))
os.environ.setdefault("MPLBACKEND", "Agg")


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
