"""Broken ports of ``examples/layer_net/numpy_net.py:make_net`` (784-50-10, ReLU), one bug
each, for the trap catalogue (docs/traps.md). Each is the worked port
(``examples/layer_net/torch_net.py``) with one line changed, as porters change it.

=====================  ==============================================  ==================
factory                the bug                                         code
=====================  ==============================================  ==================
make_offset_scores     the scores shifted by their largest value       ``offset``
make_unused_bias       ``fc1``'s bias never added                      ``unused``
make_double_softmax    ``nn.Softmax`` at the end, fed to cross_entropy ``double_softmax``
make_softmax_batch     a softmax output taken over the batch axis      ``axis``
make_flipped_gradient  a hand-written backward, one bias sign flipped  ``sign``
=====================  ==============================================  ==================
"""
import torch
import torch.nn.functional as F
from torch import nn


class TwoLayerNet(nn.Module):
    """The worked port, with switches for the bugs."""

    def __init__(self, bug=None, input_size=784, hidden_size=50, output_size=10):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.bug = bug

    def forward(self, x):
        if self.bug == "unused_bias":
            h = F.relu(F.linear(x, self.fc1.weight))  # the bias left out of the layer
        else:
            h = F.relu(self.fc1(x))
        z = self.fc2(h)
        if self.bug == "offset":
            # the "stable softmax" habit carried into the scores: a shift by one number
            return z - z.max()
        if self.bug == "double_softmax":
            return torch.softmax(z, dim=1)  # cross_entropy applies softmax again
        if self.bug == "softmax_batch":
            return torch.softmax(z, dim=0)  # over the batch, not the classes
        return z


def make_offset_scores():
    return TwoLayerNet("offset")


def make_unused_bias():
    return TwoLayerNet("unused_bias")


def make_double_softmax():
    return TwoLayerNet("double_softmax")


def make_softmax_batch():
    return TwoLayerNet("softmax_batch")


class LiteralNet:
    """A literal port: the NumPy names in a ``params`` dict of tensors, and the backward
    written out by hand, as the book writes it; ``b1``'s gradient with its sign flipped
    (``y - t`` for ``t - y`` in one place)."""

    def __init__(self, input_size=784, hidden_size=50, output_size=10):
        self.params = {"W1": torch.zeros(input_size, hidden_size, dtype=torch.float64),
                       "b1": torch.zeros(hidden_size, dtype=torch.float64),
                       "W2": torch.zeros(hidden_size, output_size, dtype=torch.float64),
                       "b2": torch.zeros(output_size, dtype=torch.float64)}

    def predict(self, x):
        p = self.params
        return torch.relu(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def loss(self, x, t):
        return F.cross_entropy(self.predict(x), _indices(t))

    def gradient(self, x, t):
        p = self.params
        a1 = x @ p["W1"] + p["b1"]
        h = torch.relu(a1)
        y = torch.softmax(h @ p["W2"] + p["b2"], dim=1)
        dy = (y - F.one_hot(_indices(t), y.shape[1]).to(y.dtype)) / x.shape[0]
        da1 = (dy @ p["W2"].T) * (a1 > 0)
        return {"W1": x.T @ da1, "b1": -da1.sum(0),  # the bug: the sign of b1's gradient
                "W2": h.T @ dy, "b2": dy.sum(0)}


def _indices(t):
    return t if t.dim() == 1 else t.argmax(dim=1)


def make_flipped_gradient():
    return LiteralNet()
