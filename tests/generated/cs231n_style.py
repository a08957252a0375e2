"""cs231n's style: module-level layer functions (``affine_forward``/``affine_backward``,
``relu_*``, ``batchnorm_*`` with a ``bn_param`` holding the running statistics,
``dropout_*`` with a ``dropout_param``, ``softmax_loss``) and a model whose
``loss(X, y=None)`` gives the scores in test mode or ``(loss, grads)`` in train mode."""
from dataclasses import replace

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


# the other activations, each with its cache as the assignments' ``relu_forward``; the way
# each is written (``core.ACT_FORMS``) is the model's spec's, set as the model runs
ACT_SPEC = None


def _forms(name, **setting):
    return replace(ACT_SPEC, act=name, **setting)


def tanh_forward(x):
    out = core.act_forward(x, _forms("tanh"))
    return out, (x, out, _forms("tanh"))


def sigmoid_forward(x):
    out = core.act_forward(x, _forms("sigmoid"))
    return out, (x, out, _forms("sigmoid"))


def leaky_relu_forward(x, alpha):
    spec = _forms("leaky_relu", act_param=alpha)
    out = core.act_forward(x, spec)
    return out, (x, out, spec)


def elu_forward(x, alpha):
    spec = _forms("elu", act_param=alpha)
    out = core.act_forward(x, spec)
    return out, (x, out, spec)


def gelu_forward(x, approximate=False):
    spec = _forms("gelu_tanh" if approximate else "gelu")
    out = core.act_forward(x, spec)
    return out, (x, out, spec)


def _act_backward(dout, cache):
    x, out, spec = cache
    return core.act_backward(dout, x, out, spec)


tanh_backward = sigmoid_backward = leaky_relu_backward = elu_backward = gelu_backward = _act_backward


def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    xn = (x - mu) / np.sqrt(var + eps)
    return gamma * xn + beta, (xn, np.sqrt(var + eps), gamma, 1)


def layernorm_backward(dout, cache):
    return core.ln_backward(dout, cache)


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

    def _act_forward(self, x):
        # looked up in the module's globals at each call, as a solution's own calls are
        spec = self.spec
        fn = globals()[("gelu" if spec.act == "gelu_tanh" else spec.act) + "_forward"]
        if spec.act in ("leaky_relu", "elu"):
            return fn(x, spec.act_param)
        if spec.act.startswith("gelu"):
            return fn(x, approximate=spec.act == "gelu_tanh")
        return fn(x)

    def _act_backward(self, dout, cache):
        spec = self.spec
        return globals()[("gelu" if spec.act == "gelu_tanh" else spec.act) + "_backward"](dout, cache)

    def loss(self, X, y=None):
        spec = self.spec
        global ACT_SPEC
        ACT_SPEC = spec
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        p = self.params
        out, fc1 = affine_forward(X, p["W1"], p["b1"])
        if spec.bn:
            out, bn_cache = batchnorm_forward(out, p["gamma1"], p["beta1"], self.bn_params[0])
        if spec.ln:
            out, ln_cache = layernorm_forward(out, p["gamma1"], p["beta1"], {"eps": spec.ln_eps})
        out, relu_cache = self._act_forward(out)
        if self.use_dropout:
            out, drop_cache = dropout_forward(out, self.dropout_param)
        if spec.res:
            q, res_fc = affine_forward(out, p["W_res"], p["b_res"])
            r, res_act = self._act_forward(q)
            out = out + r if spec.res == "skip" else r
        scores, fc2 = affine_forward(out, p["W2"], p["b2"])
        if mode == "test":
            return scores
        softmax_loss.spec = spec
        loss, dscores = softmax_loss(scores, y)
        loss += core.penalty(p, spec)
        grads = {}
        dh, grads["W2"], grads["b2"] = affine_backward(dscores, fc2)
        if spec.res:
            dq = self._act_backward(dh, res_act)
            dr, grads["W_res"], grads["b_res"] = affine_backward(dq, res_fc)
            dh = dh + dr if spec.res == "skip" else dr
        if self.use_dropout:
            dh = dropout_backward(dh, drop_cache)
        dh = self._act_backward(dh, relu_cache)
        if spec.bn:
            dh, grads["gamma1"], grads["beta1"] = batchnorm_backward(dh, bn_cache)
        if spec.ln:
            dh, grads["gamma1"], grads["beta1"] = layernorm_backward(dh, ln_cache)
        _, grads["W1"], grads["b1"] = affine_backward(dh, fc1)
        for name in ("W1", "W2"):
            grads[name] = grads[name] + core.decay(p, name, spec)
        return loss, {name: grads[name] for name in p}
