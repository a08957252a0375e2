"""cs231n's style: module-level layer functions (``affine_forward``/``affine_backward``,
``relu_*``, ``batchnorm_*`` with a ``bn_param`` holding the running statistics,
``dropout_*`` with a ``dropout_param``, ``softmax_loss``) and a model whose
``loss(X, y=None)`` gives the scores in test mode or ``(loss, grads)`` in train mode."""
import numpy as np

from . import core
from .params import init_params


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0).reshape(b.shape)
    return dx, dw, db


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    keep = bn_param.get("keepdims", False)
    D = x.shape[1]
    shape = (1, D) if keep else (D,)
    running_mean = bn_param.get("running_mean", np.zeros(shape, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(shape, dtype=x.dtype))
    if mode == "train":
        mu = x.mean(axis=0, keepdims=keep)
        var = x.var(axis=0, keepdims=keep)
        xn = (x - mu) / np.sqrt(var + eps)
        out = gamma * xn + beta
        cache = (xn, np.sqrt(var + eps), gamma, keep)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        xn = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * xn + beta
        cache = None
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    xn, std, gamma, keep = cache
    # a (1, D) gradient for a (D,) gamma, as solutions kept with keepdims return it
    return core.bn_backward(dout, (xn, std, gamma), keepdims=keep)


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]  # p: the probability of keeping
    if mode == "train":
        mask = ((np.random.rand(*x.shape) < p) / p).astype(x.dtype)
        return x * mask, (dropout_param, mask)
    return x, (dropout_param, None)


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    return dout * mask if dropout_param["mode"] == "train" else dout


def softmax_loss(x, y):
    return core.loss_and_dz(x, y, softmax_loss.spec)


class FullyConnectedNet:
    def __init__(self, spec):
        self.spec = spec
        self.reg = spec.reg
        self.params = init_params(spec)
        self.use_dropout = spec.dropout is not None
        self.dropout_param = {"mode": "train", "p": 1.0 - spec.p} if self.use_dropout else {}
        self.bn_params = ([{"mode": "train", "eps": spec.bn_eps, "keepdims": spec.bn == "row"}]
                          if spec.bn else [])

    def loss(self, X, y=None):
        spec = self.spec
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        p = self.params
        out, fc1 = affine_forward(X, p["W1"], p["b1"])
        if spec.bn:
            out, bn_cache = batchnorm_forward(out, p["gamma1"], p["beta1"], self.bn_params[0])
        out, relu_cache = relu_forward(out)
        if self.use_dropout:
            out, drop_cache = dropout_forward(out, self.dropout_param)
        scores, fc2 = affine_forward(out, p["W2"], p["b2"])
        if mode == "test":
            return scores
        softmax_loss.spec = spec
        loss, dscores = softmax_loss(scores, y)
        loss += core.penalty(p, spec)
        grads = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, fc2)
        if self.use_dropout:
            dh = dropout_backward(dh, drop_cache)
        dh = relu_backward(dh, relu_cache)
        if spec.bn:
            dh, grads["gamma1"], grads["beta1"] = batchnorm_backward(dh, bn_cache)
        _, grads["W1"], grads["b1"] = affine_backward(dh, fc1)
        for name in ("W1", "W2"):
            grads[name] = grads[name] + core.decay(p, name, spec)
        return loss, {name: grads[name] for name in p}
