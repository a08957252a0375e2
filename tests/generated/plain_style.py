"""No ``layers`` at all: one forward with local variables, its backward written out,
dropout drawn inline, ``predict``/``loss`` taking a ``training`` flag."""
import numpy as np

from . import core
from .params import init_params


class PlainNet:
    def __init__(self, spec):
        self.spec = spec
        self.params = init_params(spec)

    def _forward(self, x, training):
        p, spec = self.params, self.spec
        a1 = x @ p["W1"] + core.as_row(p["b1"])
        ln = None
        if spec.ln:
            mu = a1.mean(axis=1, keepdims=True)
            var = a1.var(axis=1, keepdims=True)
            xn = (a1 - mu) / np.sqrt(var + spec.ln_eps)
            n1 = p["gamma1"] * xn + p["beta1"]
            ln = (n1, (xn, np.sqrt(var + spec.ln_eps), p["gamma1"], 1))
            h = core.act_forward(n1, spec)
        else:
            h = np.maximum(a1, 0) if spec.act == "relu" else core.act_forward(a1, spec)
        act = (a1 if ln is None else ln[0], h)
        mask = None
        if spec.dropout:
            if training:
                mask = core.draw_mask(h.shape, spec, h.dtype)
                h = h * mask
            else:
                h = h * core.eval_scale(spec)
        res = None
        if spec.res:
            q = h @ p["W_res"] + core.as_row(p["b_res"])
            r = core.act_forward(q, spec)
            res = (h, q, r)
            h = h + r if spec.res == "skip" else r
        z = h @ p["W2"] + core.as_row(p["b2"])
        return z, (act, h, mask, ln, res)

    def predict(self, x, training=False):
        return core.head(self._forward(x, training)[0], self.spec)

    def loss(self, x, t, training=False):
        z, _ = self._forward(x, training)
        return core.loss_and_dz(z, t, self.spec)[0] + core.penalty(self.params, self.spec)

    def gradient(self, x, t):
        p, spec = self.params, self.spec
        z, (act, h, mask, ln, res) = self._forward(x, True)
        _, dz = core.loss_and_dz(z, t, spec)
        grads = {"W2": h.T @ dz + core.decay(p, "W2", spec), "b2": core.bias_grad(dz, spec.bias)}
        dh = dz @ p["W2"].T
        if res is not None:
            h_in, q, r = res
            dq = core.act_backward(dh, q, r, spec)
            grads["W_res"], grads["b_res"] = h_in.T @ dq, core.bias_grad(dq, spec.bias)
            dh = dq @ p["W_res"].T + (dh if spec.res == "skip" else 0)
        if mask is not None:
            dh = dh * mask
        da1 = core.act_backward(dh, *act, spec)
        if ln is not None:
            da1, grads["gamma1"], grads["beta1"] = core.ln_backward(da1, ln[1])
        grads["W1"] = x.T @ da1 + core.decay(p, "W1", spec)
        grads["b1"] = core.bias_grad(da1, spec.bias)
        return {name: grads[name] for name in p}
