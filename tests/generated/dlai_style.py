"""The deeplearning.ai course's style, features first: ``W`` ``(n_h, n_x)``, ``b``
``(n_h, 1)`` (or ``(n_h,)``, added as a column), ``X`` ``(n_x, m)``, ``Y`` ``(classes, m)``
or ``(1, m)``; forward and backward as functions with caches, dropout drawn inline
as ``D1 = np.random.rand(n_h, m) < keep_prob``; the model's ``predict`` gives ``AL``
(without dropout), its ``loss`` is training's (with it), neither taking a mode."""
import numpy as np

from . import core
from .params import init_params


def column(b):
    return b.reshape(-1, 1)


def forward_propagation(X, parameters, spec, training):
    W1, b1, W2, b2 = (parameters[k] for k in ("W1", "b1", "W2", "b2"))
    Z1 = np.dot(W1, X) + column(b1)
    A1 = np.maximum(0, Z1)
    D1 = None
    if spec.dropout and training:
        keep_prob = 1.0 - spec.p
        D1 = np.random.rand(A1.shape[0], A1.shape[1]) < keep_prob
        A1 = A1 * D1 / keep_prob
    Z2 = np.dot(W2, A1) + column(b2)
    return Z2, (X, Z1, A1, D1)


def compute_cost(Z2, Y, spec):
    """The cost and ``dZ2``, from ``AL`` as the course takes them (batch first inside)."""
    cost, dz = core.loss_and_dz(Z2.T, Y.T, spec)
    return cost, dz.T


def backward_propagation(dZ2, cache, parameters, spec):
    X, Z1, A1, D1 = cache
    grads = {"dW2": np.dot(dZ2, A1.T), "db2": np.sum(dZ2, axis=1, keepdims=True)}
    dA1 = np.dot(parameters["W2"].T, dZ2)
    if D1 is not None:
        dA1 = dA1 * D1 / (1.0 - spec.p)
    dZ1 = dA1 * (Z1 > 0)
    grads["dW1"] = np.dot(dZ1, X.T)
    grads["db1"] = np.sum(dZ1, axis=1, keepdims=True)
    return grads


class DeepNet:
    def __init__(self, spec):
        self.spec = spec
        self.params = init_params(spec, features_first=True)

    def predict(self, X):
        """The course's ``predict``: no dropout."""
        Z2, _ = forward_propagation(X, self.params, self.spec, False)
        return core.head(Z2.T, self.spec).T  # AL

    def loss(self, X, Y):
        """The course's training cost: with dropout, when the model has it."""
        Z2, _ = forward_propagation(X, self.params, self.spec, True)
        return compute_cost(Z2, Y, self.spec)[0]

    def gradient(self, X, Y):
        Z2, cache = forward_propagation(X, self.params, self.spec, True)
        _, dZ2 = compute_cost(Z2, Y, self.spec)
        grads = backward_propagation(dZ2, cache, self.params, self.spec)
        return {k: grads["d" + k].reshape(self.params[k].shape) for k in self.params}


class DeepNetWithMode(DeepNet):
    """The same functions behind a model whose ``predict`` and ``loss`` take a ``training``
    flag, as a course model grown into a class often does."""

    def predict(self, X, training=False):
        Z2, _ = forward_propagation(X, self.params, self.spec, training)
        return core.head(Z2.T, self.spec).T

    def loss(self, X, Y, training=False):
        Z2, _ = forward_propagation(X, self.params, self.spec, training)
        return compute_cost(Z2, Y, self.spec)[0]
