"""NumPy nets whose own backward is wrong for their own loss, and right torch ports of them.

Written here in the styles learners write: the book's layers with an L2 penalty in the
loss whose ``lambda * W`` the backward forgets, and a net whose loss is a mean while its
backward is the gradient of the sum. Each torch port is right for the NumPy *loss*; the
NumPy backprop is the wrong side. ``BookL2Net`` with ``forget=False`` is the right NumPy
model, for the checks that must not name the NumPy side.
"""
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SIZES = (12, 16, 4)
N = 32
LAMBDA = 0.1


def softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=1, keepdims=True)


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW = self.x.T @ dout
        self.db = dout.sum(axis=0)
        return dout @ self.W.T


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


class SoftmaxWithLoss:
    """The book's loss, ``-log(y + eps)`` averaged over the batch; its backward, ``y - t``
    without the eps, divides by the batch size unless ``backward_sum`` (the gradient of
    the summed loss)."""

    def __init__(self, backward_sum=False, eps=1e-7):
        self.backward_sum, self.eps = backward_sum, eps

    def forward(self, x, t):
        if t.ndim == 2:  # one-hot rows, as the book takes them too
            t = t.argmax(axis=1)
        self.y, self.t = softmax(x), t
        n = x.shape[0]
        return -np.sum(np.log(self.y[np.arange(n), t] + self.eps)) / n

    def backward(self, dout=1):
        n = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(n), self.t] -= 1
        return dx if self.backward_sum else dx / n


class BookL2Net:
    """Affine, Relu, Affine, SoftmaxWithLoss; ``loss`` adds ``0.5 * lam * sum(W**2)`` over
    the weights; ``gradient`` forgets ``lam * W`` when ``forget``."""

    def __init__(self, lam=LAMBDA, forget=True, seed=0, dtype=np.float64):
        rng = np.random.RandomState(seed)
        d, h, c = SIZES
        self.params = {"W1": 0.3 * rng.randn(d, h), "b1": 0.1 * rng.randn(h),
                       "W2": 0.3 * rng.randn(h, c), "b2": 0.1 * rng.randn(c)}
        self.params = {k: v.astype(dtype) for k, v in self.params.items()}
        self.lam, self.forget = lam, forget
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(self.params["W1"], self.params["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W2"], self.params["b2"])
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        penalty = 0.5 * self.lam * sum(np.sum(self.params[k] ** 2) for k in ("W1", "W2"))
        return self.last_layer.forward(self.predict(x), t) + penalty

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {"W1": self.layers["Affine1"].dW, "b1": self.layers["Affine1"].db,
                 "W2": self.layers["Affine2"].dW, "b2": self.layers["Affine2"].db}
        if not self.forget:
            for k in ("W1", "W2"):
                grads[k] = grads[k] + self.lam * self.params[k]
        return grads


class SumGradientNet(BookL2Net):
    """No penalty, no eps in the log; the loss is the batch mean, the backward the gradient
    of the sum."""

    def __init__(self, seed=0, dtype=np.float64):
        super().__init__(lam=0.0, forget=False, seed=seed, dtype=dtype)
        self.last_layer = SoftmaxWithLoss(backward_sum=True, eps=0.0)


class Port(nn.Module):
    """The right port: ``nn.Linear`` twice; with ``lam``, the penalty in its own ``loss``
    (``--loss model``)."""

    def __init__(self, lam=LAMBDA):
        super().__init__()
        d, h, c = SIZES
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, c)
        self.lam = lam

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

    def loss(self, x, t):
        penalty = self.fc1.weight.pow(2).sum() + self.fc2.weight.pow(2).sum()
        return F.cross_entropy(self(x), t) + 0.5 * self.lam * penalty


def weights_decay(params, lr=0.1):
    """The book's decay in the optimizer, on the weights alone (``--torch-optimizer``)."""
    params = list(params)
    return torch.optim.SGD([{"params": [p for p in params if p.dim() > 1], "weight_decay": LAMBDA},
                            {"params": [p for p in params if p.dim() == 1], "weight_decay": 0.0}],
                           lr=lr)


def batch(seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(N, SIZES[0]), rng.randint(0, SIZES[-1], size=N)


def make_l2_forgotten():
    return BookL2Net()


def make_l2_right():
    return BookL2Net(forget=False)


def make_sum_gradient():
    return SumGradientNet()


def make_port():
    return Port()


def make_plain_port():
    return Port(lam=0.0)
