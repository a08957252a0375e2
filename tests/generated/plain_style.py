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
        h = np.maximum(a1, 0)
        mask = None
        if spec.dropout:
            if training:
                mask = core.draw_mask(h.shape, spec, h.dtype)
                h = h * mask
            else:
                h = h * core.eval_scale(spec)
        z = h @ p["W2"] + core.as_row(p["b2"])
        return z, (a1, h, mask)

    def predict(self, x, training=False):
        return core.head(self._forward(x, training)[0], self.spec)

    def loss(self, x, t, training=False):
        z, _ = self._forward(x, training)
        return core.loss_and_dz(z, t, self.spec)[0] + core.penalty(self.params, self.spec)

    def gradient(self, x, t):
        p, spec = self.params, self.spec
        z, (a1, h, mask) = self._forward(x, True)
        _, dz = core.loss_and_dz(z, t, spec)
        grads = {"W2": h.T @ dz + core.decay(p, "W2", spec), "b2": core.bias_grad(dz, spec.bias)}
        dh = dz @ p["W2"].T
        if mask is not None:
            dh = dh * mask
        da1 = dh * (a1 > 0)
        grads["W1"] = x.T @ da1 + core.decay(p, "W1", spec)
        grads["b1"] = core.bias_grad(da1, spec.bias)
        return {name: grads[name] for name in p}
