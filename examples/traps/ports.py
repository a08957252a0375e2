"""Torch ports of ``book_layers.py``'s nets, right and with one bug each, written both ways a
PyTorch user writes them: ``nn.Sequential`` of modules, and functional (``nn.Parameter``s
under the NumPy names, ``x @ W1 + b1``, ``F.*`` calls).

    python -m compare port examples/traps/book_layers.py:leaky_net \\
                           examples/traps/ports.py:leaky_default_slope
"""
import torch
import torch.nn.functional as F
from torch import nn


class FunctionalPort(nn.Module):
    """``x @ W1 + b1 -> [F.layer_norm] -> activation -> @ W2 + b2``."""

    def __init__(self, activation, sizes=(784, 12, 10), norm=None):
        super().__init__()
        n_in, n_h, n_out = sizes
        self.activation, self.norm = activation, norm
        shapes = {"W1": (n_in, n_h), "b1": (n_h,), "W2": (n_h, n_out), "b2": (n_out,)}
        if norm is not None:
            shapes.update(gamma=(n_h,), beta=(n_h,))
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape, dtype=torch.float64)))

    def forward(self, x):
        h = x @ self.W1 + self.b1
        if self.norm is not None:
            h = self.norm(h, self.gamma, self.beta)
        return self.activation(h) @ self.W2 + self.b2


def sequential(activation, sizes=(784, 12, 10), norm=None):
    n_in, n_h, n_out = sizes
    return nn.Sequential(nn.Linear(n_in, n_h), *([norm] if norm is not None else []),
                         activation, nn.Linear(n_h, n_out)).double()


# --- right ports ----------------------------------------------------------------------------

def leaky_right():
    return FunctionalPort(lambda h: F.leaky_relu(h, negative_slope=0.1))


def gelu_right():
    return sequential(nn.GELU(approximate="tanh"))


def layer_norm_right():
    return FunctionalPort(torch.tanh, norm=lambda h, g, b: F.layer_norm(h, h.shape[-1:], g, b, eps=1e-3))


# --- one bug each ---------------------------------------------------------------------------

def leaky_default_slope():  # F.leaky_relu's default slope, 0.01, where the NumPy side's is 0.1
    return FunctionalPort(F.leaky_relu)


def relu_for_tanh():  # the book's ReLU net ported onto a tanh net
    return sequential(nn.ReLU())


def gelu_exact():  # nn.GELU() computes the exact GELU; the NumPy side the tanh approximation
    return sequential(nn.GELU())


def elu_default_alpha():  # nn.ELU's alpha 1.0 where the NumPy side's is 0.5
    return sequential(nn.ELU())


def layer_norm_default_eps():  # nn.LayerNorm's default eps 1e-5 where the NumPy side's is 1e-3
    return sequential(nn.Tanh(), norm=nn.LayerNorm(12))


def layer_norm_per_sample():  # F.layer_norm over each sample's features, torch's eps 1e-5
    return FunctionalPort(torch.tanh, norm=lambda h, g, b: F.layer_norm(h, h.shape[-1:], g, b))
