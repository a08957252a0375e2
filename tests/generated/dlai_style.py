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
    LN1 = None
    if spec.ln:  # each example normalised over its units: axis 0, features first
        L1, LN1 = core.ln_forward(Z1, column(parameters["gamma1"]), column(parameters["beta1"]),
                                  spec.ln_eps, axis=0)
        A1 = core.act_forward(L1, spec)
        act = (L1, A1)
    else:
        A1 = np.maximum(0, Z1) if spec.act == "relu" else core.act_forward(Z1, spec)
        act = (Z1, A1)
    D1 = None
    if spec.dropout and training:
        keep_prob = 1.0 - spec.p
        D1 = np.random.rand(A1.shape[0], A1.shape[1]) < keep_prob
        A1 = A1 * D1 / keep_prob
    RES = None
    if spec.res:
        Zr = np.dot(parameters["W_res"], A1) + column(parameters["b_res"])
        Ar = core.act_forward(Zr, spec)
        RES = (A1, Zr, Ar)
        A1 = A1 + Ar if spec.res == "skip" else Ar
    Z2 = np.dot(W2, A1) + column(b2)
    return Z2, (X, act, A1, D1, LN1, RES)


def compute_cost(Z2, Y, spec):
    """The cost and ``dZ2``, from ``AL`` as the course takes them (batch first inside)."""
    cost, dz = core.loss_and_dz(Z2.T, Y.T, spec)
    return cost, dz.T


def backward_propagation(dZ2, cache, parameters, spec):
    X, act, A1, D1, LN1, RES = cache
    grads = {"dW2": np.dot(dZ2, A1.T), "db2": np.sum(dZ2, axis=1, keepdims=True)}
    dA1 = np.dot(parameters["W2"].T, dZ2)
    if RES is not None:
        A_in, Zr, Ar = RES
        dZr = core.act_backward(dA1, Zr, Ar, spec)
        grads["dW_res"], grads["db_res"] = np.dot(dZr, A_in.T), np.sum(dZr, axis=1, keepdims=True)
        dA1 = np.dot(parameters["W_res"].T, dZr) + (dA1 if spec.res == "skip" else 0)
    if D1 is not None:
        dA1 = dA1 * D1 / (1.0 - spec.p)
    dZ1 = core.act_backward(dA1, *act, spec)
    if LN1 is not None:
        dZ1, grads["dgamma1"], grads["dbeta1"] = core.ln_backward(dZ1, LN1)
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
