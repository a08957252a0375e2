"""A small regression net in NumPy, in the book's style: Linear, tanh, Linear, squared error.

``params`` holds ``W1`` ``(d, h)``, ``b1`` ``(h,)``, ``W2`` ``(h, k)``,
``b2`` ``(k,)``; ``predict(x)`` gives the outputs ``(N, k)``, ``loss(x, t)``
the error against real targets ``t`` ``(N, k)``, ``gradient(x, t)`` its
gradient by backprop.

Two losses, the two ways such a net is written:

* ``RegressionNet``: the mean squared error over all ``N * k`` elements,
  ``mean((y - t)**2)``, what ``F.mse_loss`` computes by default;
* ``RegressionNetHalfSum``: the book's ``sum_squared_error``,
  ``0.5 * sum((y - t)**2)``, not divided by the batch. It is
  ``N * k / 2`` times the mean, and so is its gradient: a port using
  ``mse_loss`` against it is a ``scale`` mismatch of exactly that factor.

``write_npz`` writes a data file for ``--data FILE.npz``: arrays ``x``
``(N, d)`` and ``t`` ``(N, k)``, real targets.

    python -m compare port tests/courses/regression.py:make_net \\
                           tests/courses/torch_ports.py:RegressionPort --data FILE.npz --loss mse_loss
"""
from pathlib import Path

import numpy as np


class RegressionNet:
    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.5, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {
            "W1": weight_init_std * rng.randn(input_size, hidden_size),
            "b1": np.zeros(hidden_size),
            "W2": weight_init_std * rng.randn(hidden_size, output_size),
            "b2": np.zeros(output_size),
        }

    def _forward(self, x):
        z1 = np.tanh(np.dot(x, self.params["W1"]) + self.params["b1"])
        y = np.dot(z1, self.params["W2"]) + self.params["b2"]
        return z1, y

    def predict(self, x):
        return self._forward(x)[1]

    def loss(self, x, t):
        y = self.predict(x)
        return np.mean((y - t) ** 2)

    def _dy(self, y, t):
        return 2 * (y - t) / y.size

    def gradient(self, x, t):
        z1, y = self._forward(x)
        dy = self._dy(y, t)
        grads = {"W2": np.dot(z1.T, dy), "b2": np.sum(dy, axis=0)}
        da1 = np.dot(dy, self.params["W2"].T) * (1 - z1 ** 2)  # tanh' = 1 - tanh**2
        grads["W1"] = np.dot(x.T, da1)
        grads["b1"] = np.sum(da1, axis=0)
        return grads


class RegressionNetHalfSum(RegressionNet):
    """The same net with the book's ``sum_squared_error``: ``0.5 * sum((y - t)**2)``."""

    def loss(self, x, t):
        y = self.predict(x)
        return 0.5 * np.sum((y - t) ** 2)

    def _dy(self, y, t):
        return y - t


INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE = 4, 16, 2


def make_data(n=100, d=INPUT_SIZE, k=OUTPUT_SIZE, seed=0):
    """``(x, t)``: ``x`` ``(n, d)`` standard normal, ``t`` ``(n, k)`` a smooth function of it plus noise."""
    rng = np.random.RandomState(seed)
    x = rng.randn(n, d)
    mixing = rng.randn(d, k) / np.sqrt(d)
    t = np.sin(x @ mixing) + 0.1 * rng.randn(n, k)
    return x, t


def write_npz(path, n=100, d=INPUT_SIZE, k=OUTPUT_SIZE, seed=0):
    """Write ``make_data``'s arrays to ``path`` as ``x`` and ``t``; return the path written
    (``np.savez`` adds ``.npz`` to a name without it)."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    x, t = make_data(n, d, k, seed)
    np.savez(path, x=x, t=t)
    return path


def make_net():
    return RegressionNet(INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE)


def make_half_sum_net():
    return RegressionNetHalfSum(INPUT_SIZE, HIDDEN_SIZE, OUTPUT_SIZE)
