"""A three-layer MLP without layer objects whose ``params`` list every weight, then every
bias: ``W1, W2, W3, b1, b2, b3``. Its forward pass uses them layer by layer, as the port's
``nn.Linear`` modules run. ``hidden`` sizes that are equal make ``b1`` and ``b2`` the same
shape: only the order the forward pass uses them in tells them apart.
"""
import numpy as np
import torch
from torch import nn

D_IN, CLASSES = 10, 4


class GroupedParamsMLP:
    def __init__(self, hidden=(9, 7), seed=0):
        rng = np.random.RandomState(seed)
        dims = (D_IN, *hidden, CLASSES)
        weights = {f"W{i + 1}": 0.4 * rng.randn(dims[i], dims[i + 1]) for i in range(3)}
        biases = {f"b{i + 1}": 0.1 * rng.randn(dims[i + 1]) for i in range(3)}
        self.params = {**weights, **biases}

    def _forward(self, x):
        p = self.params
        h1 = np.tanh(x @ p["W1"] + p["b1"])
        h2 = np.tanh(h1 @ p["W2"] + p["b2"])
        return h1, h2, h2 @ p["W3"] + p["b3"]

    def predict(self, x):
        return self._forward(x)[2]

    def _probs(self, scores):
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def loss(self, x, t):
        y = self._probs(self.predict(x))
        return -np.mean(np.log(y[np.arange(len(t)), t]))

    def gradient(self, x, t):
        p = self.params
        h1, h2, scores = self._forward(x)
        d = self._probs(scores)
        d[np.arange(len(t)), t] -= 1
        d /= len(t)
        g = {"W3": h2.T @ d, "b3": d.sum(axis=0)}
        d = (d @ p["W3"].T) * (1 - h2 ** 2)
        g.update(W2=h1.T @ d, b2=d.sum(axis=0))
        d = (d @ p["W2"].T) * (1 - h1 ** 2)
        g.update(W1=x.T @ d, b1=d.sum(axis=0))
        return g


def make_net():
    return GroupedParamsMLP()


def make_equal_hidden_net():
    return GroupedParamsMLP(hidden=(8, 8))


def make_port(hidden=(9, 7), last=nn.Tanh):
    return nn.Sequential(nn.Linear(D_IN, hidden[0]), nn.Tanh(), nn.Linear(*hidden), last(),
                         nn.Linear(hidden[1], CLASSES)).double()


def make_equal_hidden_port():
    return make_port(hidden=(8, 8))


def make_relu_bug_port():
    """The second activation written as a ReLU."""
    return make_port(last=nn.ReLU)


def batch(n=12, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randn(n, D_IN), rng.randint(0, CLASSES, n)
