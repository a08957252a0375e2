"""Ports to check: right ones that must pass, and broken ones, each with one bug a
porter really makes. The NumPy references are the book's chapter-5 layer net
(``examples/layer_net/numpy_net.py``) and ``numpy_impl.TwoLayerNet``."""
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import numpy_impl
import torch_impl

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "layer_net"
sys.path.insert(0, str(EXAMPLES))
import numpy_net  # noqa: E402  (the worked example a learner copies)
import torch_net  # noqa: E402


def layer_net(input_size=784, hidden_size=50, output_size=10, seed=0):
    return numpy_net.TwoLayerNet(input_size, hidden_size, output_size, seed=seed)


LossOnly = numpy_net.LossOnly  # params and loss, nothing else


# --- right ports ---------------------------------------------------------------------------

def sequential(input_size=784, hidden_size=50, output_size=10):
    return nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, output_size))


def functional_relu(input_size=784, hidden_size=50, output_size=10):
    return torch_net.TwoLayerNet(input_size, hidden_size, output_size)


class Affine(nn.Module):
    """The book's ``x @ W + b`` as a module, ``W`` stored (in, out) like the book."""

    def __init__(self, n_in, n_out, *, transpose=False, bias=True):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(n_in, n_out, dtype=torch.float64))
        self.b = nn.Parameter(torch.zeros(n_out, dtype=torch.float64))
        self.transpose, self.bias = transpose, bias

    def forward(self, x):
        W = self.W.T if self.transpose else self.W  # the bug: a square W used transposed
        return x @ W + self.b if self.bias else x @ W


class AffineNet(nn.Module):
    def __init__(self, input_size, hidden_size, output_size, *, transpose=False, bias1=True):
        super().__init__()
        self.affine1 = Affine(input_size, hidden_size, transpose=transpose, bias=bias1)
        self.affine2 = Affine(hidden_size, output_size)

    def forward(self, x):
        return self.affine2(torch.relu(self.affine1(x)))


# --- broken ports --------------------------------------------------------------------------

class SkipsRelu(torch_net.TwoLayerNet):
    def forward(self, x):
        return self.fc2(self.fc1(x))  # the F.relu forgotten


class Float32Trip(torch_net.TwoLayerNet):
    def forward(self, x):
        h = F.relu(self.fc1(x)).float().double()  # one float32 round trip
        return self.fc2(h)


def literal_backprop(net, x, t, *, divide=True, flip=None):
    """``torch_impl.TwoLayerNet``'s backprop, as a porter writes it, with optional bugs."""
    W1, b1, W2, b2 = (net.params[k] for k in ("W1", "b1", "W2", "b2"))
    a1 = x @ W1 + b1
    z1 = torch_impl.sigmoid(a1)
    y = torch_impl.softmax(z1 @ W2 + b2)
    t = t if t.dim() == 2 else F.one_hot(t, y.shape[1]).to(y.dtype)
    dy = (y - t) / x.shape[0] if divide else (y - t)
    grads = {"W2": z1.T @ dy, "b2": dy.sum(0)}
    dz1 = torch_impl.sigmoid_grad(a1) * (dy @ W2.T)
    grads["W1"], grads["b1"] = x.T @ dz1, dz1.sum(0)
    if flip:
        grads[flip] = -grads[flip]
    return grads


class NoBatchDivide(torch_impl.TwoLayerNet):
    def gradient(self, x, t):
        return literal_backprop(self, x, t, divide=False)


class FlippedBiasGradient(torch_impl.TwoLayerNet):
    def gradient(self, x, t):
        return literal_backprop(self, x, t, flip="b1")


class SoftmaxWrongAxis(torch_impl.TwoLayerNet):
    def predict(self, x):
        a2 = torch_impl.sigmoid(x @ self.params["W1"] + self.params["b1"]) @ self.params["W2"] \
            + self.params["b2"]
        return torch.softmax(a2, dim=0)  # over the batch, not the classes


def literal(cls=torch_impl.TwoLayerNet):
    return cls(784, 50, 10, seed=5)


def book_net():
    return numpy_impl.TwoLayerNet(784, 50, 10, seed=0)


def no_batch_divide():
    """For the command line, which calls a zero-argument factory."""
    return literal(NoBatchDivide)
