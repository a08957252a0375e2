"""A NumPy ConvNet written as many learners write one: every bias is a row ``(1, H)``
(``(1, FN)`` for the convolution), and each backward returns ``db`` as ``(H,)``
(``np.sum(dout, axis=0)``). A 3x3 convolution with ``pad=1`` keeps the image's size.

``Conv(pad=1) - Relu - Pool(2) - Affine - Relu - Affine - softmax``, layer objects in
``layers``; ``gradient`` gives each ``db`` as its layer computed it.
"""
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

C, SIZE, FILTERS, K, HIDDEN, CLASSES = 2, 6, 3, 3, 8, 4


def im2col(x, k, pad):
    x = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    w = sliding_window_view(x, (k, k), axis=(2, 3))  # (N, C, OH, OW, k, k)
    n, c, oh, ow = w.shape[:4]
    return w.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * k * k), (oh, ow)


def col2im(col, shape, k, pad):
    n, c, h, w = shape
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    col = col.reshape(n, oh, ow, c, k, k)
    img = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for dy in range(k):
        for dx in range(k):
            img[:, :, dy:dy + oh, dx:dx + ow] += col[:, :, :, :, dy, dx].transpose(0, 3, 1, 2)
    return img[:, :, pad:pad + h, pad:pad + w]


class Convolution:
    def __init__(self, W, b, pad):
        self.W, self.b, self.pad, self.stride = W, b, pad, 1

    def forward(self, x):
        fn, _, k, _ = self.W.shape
        self.x = x
        self.col, (oh, ow) = im2col(x, k, self.pad)
        out = self.col @ self.W.reshape(fn, -1).T + self.b  # b (1, FN) broadcasts over rows
        return out.reshape(x.shape[0], oh, ow, fn).transpose(0, 3, 1, 2)

    def backward(self, dout):
        fn, c, k, _ = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, fn)
        self.db = np.sum(dout, axis=0)
        self.dW = (dout.T @ self.col).reshape(self.W.shape)
        return col2im(dout @ self.W.reshape(fn, -1), self.x.shape, k, self.pad)


class Pooling:
    def forward(self, x):
        n, c, h, w = x.shape
        self.x = x
        win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
        self.arg = win.argmax(axis=-1)
        return win.max(axis=-1)

    def backward(self, dout):
        n, c, h, w = self.x.shape
        d = np.zeros(self.arg.shape + (4,))
        np.put_along_axis(d, self.arg[..., None], dout[..., None], axis=-1)
        return d.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h, w)


class Relu:
    def forward(self, x):
        self.mask = x <= 0
        return np.where(self.mask, 0.0, x)

    def backward(self, dout):
        return np.where(self.mask, 0.0, dout)


class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b

    def forward(self, x):
        self.shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return self.x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, np.sum(dout, axis=0)
        return (dout @ self.W.T).reshape(self.shape)


class SoftmaxWithLoss:
    def forward(self, x, t):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y, self.t = e / e.sum(axis=1, keepdims=True), t
        return -np.mean(np.log(self.y[np.arange(len(t)), t.argmax(axis=1)] + 1e-7))

    def backward(self, dout=1):
        return (self.y - self.t) / len(self.t)


class RowBiasConvNet:
    def __init__(self, pad=1, seed=0):
        rng = np.random.RandomState(seed)
        flat = FILTERS * ((SIZE + 2 * pad - K + 1) // 2) ** 2
        self.params = {"W1": 0.3 * rng.randn(FILTERS, C, K, K), "b1": 0.1 * rng.randn(1, FILTERS),
                       "W2": 0.3 * rng.randn(flat, HIDDEN), "b2": 0.1 * rng.randn(1, HIDDEN),
                       "W3": 0.3 * rng.randn(HIDDEN, CLASSES), "b3": 0.1 * rng.randn(1, CLASSES)}
        p = self.params
        self.layers = OrderedDict(conv1=Convolution(p["W1"], p["b1"], pad), relu1=Relu(), pool1=Pooling(),
                                  affine1=Affine(p["W2"], p["b2"]), relu2=Relu(),
                                  affine2=Affine(p["W3"], p["b3"]))
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
        L = self.layers
        return {"W1": L["conv1"].dW, "b1": L["conv1"].db, "W2": L["affine1"].dW, "b2": L["affine1"].db,
                "W3": L["affine2"].dW, "b3": L["affine2"].db}


def make_net():
    return RowBiasConvNet()


class ConvPort(nn.Module):
    def __init__(self, padding=1):
        super().__init__()
        flat = FILTERS * ((SIZE + 2 * padding - K + 1) // 2) ** 2
        self.conv1 = nn.Conv2d(C, FILTERS, K, padding=padding)
        self.fc1, self.fc2 = nn.Linear(flat, HIDDEN), nn.Linear(HIDDEN, CLASSES)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def make_port():
    return ConvPort().double()


def make_no_padding_port():
    """``padding=1`` forgotten: the image shrinks by 2, and so does what ``fc1`` takes."""
    return ConvPort(padding=0).double()


def batch(n=6, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randn(n, C, SIZE, SIZE), np.eye(CLASSES)[rng.randint(0, CLASSES, n)]


class FixedWidthNoPadding(ConvPort):
    """``padding=1`` forgotten, ``fc1`` sized for the padded image as the NumPy net is."""

    def __init__(self):
        super().__init__(padding=1)
        self.conv1 = nn.Conv2d(C, FILTERS, K)


def make_fixed_width_no_padding_port():
    return FixedWidthNoPadding().double()


class GlobalAverage:
    def forward(self, x):
        self.shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dout):
        n, c, h, w = self.shape
        return np.broadcast_to(dout[:, :, None, None] / (h * w), self.shape).copy()


class AveragedConvNet(RowBiasConvNet):
    """``Conv(pad=1) - Relu - global average - Affine``: a padding forgotten changes no
    parameter's shape here, only the values."""

    def __init__(self, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W1": 0.3 * rng.randn(FILTERS, C, K, K), "b1": 0.1 * rng.randn(1, FILTERS),
                       "W2": 0.3 * rng.randn(FILTERS, CLASSES), "b2": 0.1 * rng.randn(1, CLASSES)}
        p = self.params
        self.layers = OrderedDict(conv1=Convolution(p["W1"], p["b1"], 1), relu1=Relu(),
                                  average=GlobalAverage(), affine1=Affine(p["W2"], p["b2"]))
        self.last_layer = SoftmaxWithLoss()

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward()
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        L = self.layers
        return {"W1": L["conv1"].dW, "b1": L["conv1"].db, "W2": L["affine1"].dW, "b2": L["affine1"].db}


def make_averaged_net():
    return AveragedConvNet()


class AveragedPort(nn.Module):
    def __init__(self, padding=1):
        super().__init__()
        self.conv1 = nn.Conv2d(C, FILTERS, K, padding=padding)
        self.fc1 = nn.Linear(FILTERS, CLASSES)

    def forward(self, x):
        return self.fc1(F.relu(self.conv1(x)).mean(dim=(2, 3)))


def make_averaged_port():
    return AveragedPort().double()


def make_averaged_no_padding_port():
    return AveragedPort(padding=0).double()


class FunctionalConvPort(nn.Module):
    """The parameters held as they are named in NumPy, the layers called as functions."""

    def __init__(self, padding=1):
        super().__init__()
        self.padding = padding
        flat = FILTERS * ((SIZE + 2 * padding - K + 1) // 2) ** 2
        self.W1 = nn.Parameter(0.3 * torch.randn(FILTERS, C, K, K, dtype=torch.float64))
        self.b1 = nn.Parameter(torch.zeros(FILTERS, dtype=torch.float64))
        self.W2 = nn.Parameter(0.3 * torch.randn(HIDDEN, flat, dtype=torch.float64))
        self.b2 = nn.Parameter(torch.zeros(HIDDEN, dtype=torch.float64))
        self.W3 = nn.Parameter(0.3 * torch.randn(CLASSES, HIDDEN, dtype=torch.float64))
        self.b3 = nn.Parameter(torch.zeros(CLASSES, dtype=torch.float64))

    def forward(self, x):
        x = F.conv2d(x, self.W1, self.b1, padding=self.padding) if self.padding else F.conv2d(x, self.W1, self.b1)
        x = F.max_pool2d(F.relu(x), 2)
        return F.linear(F.relu(F.linear(x.flatten(1), self.W2, self.b2)), self.W3, self.b3)


def make_functional_port():
    return FunctionalConvPort()


def make_functional_no_padding_port():
    return FunctionalConvPort(padding=0)
