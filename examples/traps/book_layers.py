"""Layer objects in the book's style (``forward(x)``, ``backward(dout)``, the gradients of
the parameters kept as ``dW``, ``db``, ``dgamma``, ``dbeta``), for the activations and the
layer norm a learner adds to the book's net, and ``LayerNet``, the book's net built from a
list of them.

    python -m compare port examples/traps/book_layers.py:leaky_net \\
                           examples/traps/ports.py:leaky_default_slope
"""
import math
from collections import OrderedDict

import numpy as np


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return dout @ self.W.T


class Tanh:
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1 - self.out ** 2)


class LeakyRelu:
    def __init__(self, alpha=0.1):
        self.alpha = alpha

    def forward(self, x):
        self.negative = x <= 0
        return np.where(self.negative, self.alpha * x, x)

    def backward(self, dout):
        return np.where(self.negative, self.alpha * dout, dout)


class Elu:
    def __init__(self, alpha=1.0):
        self.alpha = alpha

    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, self.alpha * (np.exp(np.minimum(x, 0)) - 1))

    def backward(self, dout):
        return dout * np.where(self.x > 0, 1.0, self.alpha * np.exp(np.minimum(self.x, 0)))


class Gelu:
    """GELU as the GPT-2 code writes it: the tanh approximation."""
    C = math.sqrt(2 / math.pi)

    def forward(self, x):
        self.x = x
        self.t = np.tanh(self.C * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1 + self.t)

    def backward(self, dout):
        x, t = self.x, self.t
        return dout * (0.5 * (1 + t) + 0.5 * x * (1 - t ** 2) * self.C * (1 + 3 * 0.044715 * x ** 2))


class LayerNorm:
    """Each sample normalised over ``axis`` (its features: the last axis)."""

    def __init__(self, gamma, beta, eps=1e-5, axis=-1):
        self.gamma, self.beta, self.eps, self.axis = gamma, beta, eps, axis

    def forward(self, x):
        mu = x.mean(axis=self.axis, keepdims=True)
        self.std = np.sqrt(x.var(axis=self.axis, keepdims=True) + self.eps)
        self.xhat = (x - mu) / self.std
        return self.gamma * self.xhat + self.beta

    def backward(self, dout):
        reduce = tuple(a for a in range(dout.ndim) if a != dout.ndim - 1)  # gamma is per feature
        self.dgamma = (dout * self.xhat).sum(axis=reduce)
        self.dbeta = dout.sum(axis=reduce)
        d = dout * self.gamma
        return (d - d.mean(axis=self.axis, keepdims=True)
                - self.xhat * (d * self.xhat).mean(axis=self.axis, keepdims=True)) / self.std


class SoftmaxWithLoss:
    def forward(self, x, t):
        if t.ndim == 2:  # one-hot
            t = t.argmax(axis=1)
        shifted = x - x.max(axis=1, keepdims=True)
        self.y = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        self.t = t
        return -np.log(self.y[np.arange(len(t)), t]).mean()

    def backward(self, dout=1):
        dx = self.y.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dout * dx / len(self.t)


class LayerNet:
    """``Affine -> [LayerNorm] -> activation -> Affine -> SoftmaxWithLoss`` (``t``: labels,
    or one-hot rows as the book's MNIST gives them).

    ``activation``: a layer object; ``norm_eps``: a layer norm after the first affine."""

    def __init__(self, activation, sizes=(784, 12, 10), norm_eps=None, norm_axis=-1, seed=0):
        rng = np.random.RandomState(seed)
        (n_in, n_h, n_out) = sizes
        self.params = {"W1": rng.randn(n_in, n_h) / np.sqrt(n_in), "b1": rng.randn(n_h) * 0.5,
                       "W2": rng.randn(n_h, n_out) / np.sqrt(n_h), "b2": rng.randn(n_out) * 0.1}
        self.layers = OrderedDict(Affine1=Affine(self.params["W1"], self.params["b1"]))
        if norm_eps is not None:
            self.params["gamma"] = 1 + 0.2 * rng.randn(n_h)
            self.params["beta"] = 0.2 * rng.randn(n_h)
            self.layers["LayerNorm"] = LayerNorm(self.params["gamma"], self.params["beta"],
                                                 norm_eps, norm_axis)
        self.layers["Activation"] = activation
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward()
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for k in ("1", "2"):
            grads["W" + k], grads["b" + k] = self.layers["Affine" + k].dW, self.layers["Affine" + k].db
        if "LayerNorm" in self.layers:
            grads["gamma"], grads["beta"] = self.layers["LayerNorm"].dgamma, self.layers["LayerNorm"].dbeta
        return grads


def leaky_net():
    return LayerNet(LeakyRelu(0.1))


def tanh_net():
    return LayerNet(Tanh())


def gelu_net():
    return LayerNet(Gelu())


def elu_net():
    return LayerNet(Elu(0.5))


def layer_norm_net():
    return LayerNet(Tanh(), norm_eps=1e-3)


def batch_axis_norm_net():  # each feature normalised over the batch (axis 0), eps 1e-5
    return LayerNet(Tanh(), norm_eps=1e-5, norm_axis=0)
