"""A batch-norm net in the style of a completed cs231n assignment 2 whose batch norm keeps
its statistics with ``keepdims=True``: the running mean and variance become ``(1, D)`` at
the first training pass (or are made so at construction), and ``batchnorm_backward``
returns ``dgamma`` and ``dbeta`` as ``(1, D)`` for a ``gamma`` and ``beta`` of ``(D,)``.
Right NumPy code: each holds the values a ``(D,)`` array would.

``affine - batchnorm - relu - affine - softmax``; ``loss(X)`` the scores in test mode,
``loss(X, y)`` ``(loss, grads)`` in train mode.
"""
import numpy as np
import torch
from torch import nn

D_IN, HIDDEN, CLASSES = 12, 40, 5


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1).dot(w) + b, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    return dout.dot(w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T.dot(dout), dout.sum(axis=0)


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    if mode == "train":
        mu = np.mean(x, axis=0, keepdims=True)
        var = np.var(x, axis=0, keepdims=True)
        std = np.sqrt(var + eps)
        x_hat = (x - mu) / std
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        std = np.sqrt(running_var + eps)
        x_hat = (x - running_mean) / std
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return gamma * x_hat + beta, (mode, x_hat, gamma, std)


def batchnorm_backward(dout, cache):
    mode, x_hat, gamma, std = cache
    dbeta = np.sum(dout, axis=0, keepdims=True)
    dgamma = np.sum(dout * x_hat, axis=0, keepdims=True)
    dx_hat = dout * gamma
    if mode != "train":
        return dx_hat / std, dgamma, dbeta
    dx = (dx_hat - dx_hat.mean(axis=0, keepdims=True)
          - x_hat * (dx_hat * x_hat).mean(axis=0, keepdims=True)) / std
    return dx, dgamma, dbeta


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return -log_probs[np.arange(n), y].sum() / n, dx / n


class KeepdimsBatchNormNet:
    def __init__(self, running_rows=False, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W1": 0.3 * rng.randn(D_IN, HIDDEN), "b1": 0.1 * rng.randn(HIDDEN),
                       "gamma1": 1 + 0.1 * rng.randn(HIDDEN), "beta1": 0.1 * rng.randn(HIDDEN),
                       "W2": 0.3 * rng.randn(HIDDEN, CLASSES), "b2": np.zeros(CLASSES)}
        self.bn_params = [{"mode": "train"}]
        if running_rows:  # kept as rows from the start, as some solutions initialise them
            self.bn_params[0].update(running_mean=np.zeros((1, HIDDEN)),
                                     running_var=np.ones((1, HIDDEN)))

    def loss(self, X, y=None):
        mode = "test" if y is None else "train"
        self.bn_params[0]["mode"] = mode
        p = self.params
        h, fc1 = affine_forward(X, p["W1"], p["b1"])
        h, bn1 = batchnorm_forward(h, p["gamma1"], p["beta1"], self.bn_params[0])
        h, r1 = relu_forward(h)
        scores, fc2 = affine_forward(h, p["W2"], p["b2"])
        if y is None:
            return scores
        loss, dout = softmax_loss(scores, y)
        grads = {}
        dout, grads["W2"], grads["b2"] = affine_backward(dout, fc2)
        dout = relu_backward(dout, r1)
        dout, grads["gamma1"], grads["beta1"] = batchnorm_backward(dout, bn1)
        _, grads["W1"], grads["b1"] = affine_backward(dout, fc1)
        return loss, grads


def make_net():
    return KeepdimsBatchNormNet()


def make_rows_net():
    return KeepdimsBatchNormNet(running_rows=True)


def make_port(momentum=0.1, eps=1e-5):
    return nn.Sequential(nn.Linear(D_IN, HIDDEN), nn.BatchNorm1d(HIDDEN, eps=eps, momentum=momentum),
                         nn.ReLU(), nn.Linear(HIDDEN, CLASSES)).double()


def make_momentum_bug_port():
    """The cs231n momentum 0.9 copied across: torch weights the NEW statistic by it."""
    return make_port(momentum=0.9)


def batch(n=16, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randn(n, D_IN), rng.randint(0, CLASSES, n)
