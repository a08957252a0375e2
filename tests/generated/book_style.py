"""The book's style: layer classes (``Affine``, ``Relu``, ``BatchNormalization``,
``Dropout``) in an ``OrderedDict`` ``layers``, a last layer for the loss, ``predict(x,
train_flg=False)``, ``loss(x, t, train_flg=False)``, ``gradient(x, t)`` by backprop."""
from collections import OrderedDict

import numpy as np

from . import core
from .params import init_params


class Affine:
    def __init__(self, W, b, bias):
        self.W, self.b, self.bias = W, b, bias

    def forward(self, x):
        self.x = x
        return np.dot(x, self.W) + core.as_row(self.b)

    def backward(self, dout):
        self.dW = np.dot(self.x.T, dout)
        self.db = core.bias_grad(dout, self.bias)
        return np.dot(dout, self.W.T)


class Relu:
    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout = dout.copy()
        dout[self.mask] = 0
        return dout


class Activation:
    """The book's ``Sigmoid`` keeps its output, ``Relu`` its mask; the others, their input."""

    def __init__(self, spec):
        self.spec = spec

    def forward(self, x):
        self.x = x
        self.out = core.act_forward(x, self.spec)
        return self.out

    def backward(self, dout):
        return core.act_backward(dout, self.x, self.out, self.spec)


class Sigmoid(Activation):
    pass


class Tanh(Activation):
    pass


class LeakyRelu(Activation):
    def __init__(self, spec):
        super().__init__(spec)
        self.alpha = spec.act_param


class Elu(LeakyRelu):
    pass


class Gelu(Activation):
    def __init__(self, spec):
        super().__init__(spec)
        self.approximate = spec.act == "gelu_tanh"


ACTIVATIONS = {"tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyRelu, "elu": Elu,
               "gelu": Gelu, "gelu_tanh": Gelu}


class LayerNorm:
    def __init__(self, gamma, beta, eps):
        self.gamma, self.beta, self.eps = gamma, beta, eps

    def forward(self, x):
        out, self.cache = core.ln_forward(x, self.gamma, self.beta, self.eps)
        return out

    def backward(self, dout):
        dx, self.dgamma, self.dbeta = core.ln_backward(dout, self.cache)
        return dx


class BatchNormalization:
    def __init__(self, gamma, beta, spec, momentum=0.9):
        self.gamma, self.beta, self.spec, self.momentum = gamma, beta, spec, momentum
        state = core.bn_state(spec, gamma.dtype)
        self.running_mean, self.running_var = state["running_mean"], state["running_var"]

    def forward(self, x, train_flg=True):
        state = {"running_mean": self.running_mean, "running_var": self.running_var}
        out, self.cache = core.bn_forward(x, self.gamma, self.beta, state, self.spec, train_flg,
                                          self.momentum)
        self.running_mean, self.running_var = state["running_mean"], state["running_var"]
        return out

    def backward(self, dout):
        dx, self.dgamma, self.dbeta = core.bn_backward(dout, self.cache)
        return dx


class Dropout:
    def __init__(self, spec):
        self.spec = spec
        self.dropout_ration = spec.p

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = core.draw_mask(x.shape, self.spec, x.dtype)
            return x * self.mask
        return x * core.eval_scale(self.spec)

    def backward(self, dout):
        return dout * self.mask


class LastLayer:
    """The head and the loss together, as ``SoftmaxWithLoss`` is."""

    def __init__(self, spec):
        self.spec = spec

    def forward(self, z, t):
        self.loss, self.dz = core.loss_and_dz(z, t, self.spec)
        return self.loss

    def backward(self, dout=1):
        return self.dz


class SoftmaxWithLoss(LastLayer):
    pass


class SigmoidWithLoss(LastLayer):
    pass


class IdentityWithLoss(LastLayer):
    pass


class BookNet:
    def __init__(self, spec):
        self.spec = spec
        self.params = init_params(spec)
        p = self.params
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(p["W1"], p["b1"], spec.bias)
        if spec.bn:
            self.layers["BatchNorm1"] = BatchNormalization(p["gamma1"], p["beta1"], spec)
        if spec.ln:
            self.layers["LayerNorm1"] = LayerNorm(p["gamma1"], p["beta1"], spec.ln_eps)
        if spec.act == "relu":
            self.layers["Relu1"] = Relu()
        else:
            cls = ACTIVATIONS[spec.act]
            self.layers[f"{cls.__name__}1"] = cls(spec)
        if spec.dropout:
            self.layers["Dropout1"] = Dropout(spec)
        self.layers["Affine2"] = Affine(p["W2"], p["b2"], spec.bias)
        last = {"softmax_ce": SoftmaxWithLoss, "bce": SigmoidWithLoss, "mse": IdentityWithLoss}
        self.last_layer = last[spec.loss](spec)

    def scores(self, x, train_flg=False):
        for key, layer in self.layers.items():
            if "Dropout" in key or "BatchNorm" in key:
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def predict(self, x, train_flg=False):
        return core.head(self.scores(x, train_flg), self.spec)

    def loss(self, x, t, train_flg=False):
        z = self.scores(x, train_flg)
        return self.last_layer.forward(z, t) + core.penalty(self.params, self.spec)

    def gradient(self, x, t):
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for i in (1, 2):
            affine = self.layers[f"Affine{i}"]
            grads[f"W{i}"] = affine.dW + core.decay(self.params, f"W{i}", self.spec)
            grads[f"b{i}"] = affine.db
        norm = self.layers.get("BatchNorm1") or self.layers.get("LayerNorm1")
        if norm is not None:
            grads["gamma1"], grads["beta1"] = norm.dgamma, norm.dbeta
        return {name: grads[name] for name in self.params}
