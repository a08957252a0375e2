"""A convolutional net in the book's chapter-7 style: Conv, Relu, Pool, Affine, Relu, Affine.

Written here, in NumPy, as a learner writes it from the book. ``im2col`` lays
every receptive field out as a row, so a convolution is one matrix product
and a max pool one row-wise max; ``col2im`` adds the rows back into the
image for the backward pass. Filters are ``(FN, C, FH, FW)``, as torch's
``Conv2d.weight``; ``Affine`` flattens a 4-D input in ``(C, H, W)`` order.

    python -m compare port examples/ch7_conv/numpy_net.py:make_small_net \\
                           examples/ch7_conv/torch_net.py:make_small_net
"""
from collections import OrderedDict

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_output_size(size, filter_size, stride=1, pad=0):
    return (size + 2 * pad - filter_size) // stride + 1


def im2col(input_data, filter_h, filter_w, stride=1, pad=0):
    """``(N, C, H, W)`` -> ``(N * out_h * out_w, C * filter_h * filter_w)``: one row per
    output position, its receptive field in ``(C, FH, FW)`` order."""
    N, C, H, W = input_data.shape
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    windows = sliding_window_view(img, (filter_h, filter_w), axis=(2, 3))[:, :, ::stride, ::stride]
    out_h = conv_output_size(H, filter_h, stride, pad)
    out_w = conv_output_size(W, filter_w, stride, pad)
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(N * out_h * out_w, -1)


def im2col_t(input_data, filter_h, filter_w, stride=1, pad=0):
    """``im2col``'s transpose, ``(C * filter_h * filter_w, N * out_h * out_w)``, filled one
    filter position at a time (the book's loop): each position is one strided slice."""
    N, C, H, W = input_data.shape
    out_h = conv_output_size(H, filter_h, stride, pad)
    out_w = conv_output_size(W, filter_w, stride, pad)
    img = np.pad(input_data, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.empty((C, filter_h, filter_w, N, out_h, out_w), dtype=input_data.dtype)
    for y in range(filter_h):
        for x in range(filter_w):
            col[:, y, x] = img[:, :, y:y + stride * out_h:stride, x:x + stride * out_w:stride].transpose(1, 0, 2, 3)
    return col.reshape(C * filter_h * filter_w, N * out_h * out_w)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The adjoint of ``im2col``: every row's entries added back where they were read
    (overlapping fields add up), the padding cut off."""
    N, C, H, W = input_shape
    out_h = conv_output_size(H, filter_h, stride, pad)
    out_w = conv_output_size(W, filter_w, stride, pad)
    col = col.reshape(N, out_h, out_w, C, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=col.dtype)
    for dy in range(filter_h):
        for dx in range(filter_w):
            rows = slice(dy, dy + stride * out_h, stride)
            cols = slice(dx, dx + stride * out_w, stride)
            img[:, :, rows, cols] += col[:, :, dy, dx]
    return img[:, :, pad:H + pad, pad:W + pad]


class Convolution:
    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b = W, b
        self.stride, self.pad = stride, pad
        self.x = self.col = self.col_W = None
        self.dW = self.db = None

    def forward(self, x):
        FN, C, FH, FW = self.W.shape
        N, _, H, W = x.shape
        out_h = conv_output_size(H, FH, self.stride, self.pad)
        out_w = conv_output_size(W, FW, self.stride, self.pad)
        col_t = im2col_t(x, FH, FW, self.stride, self.pad)
        col_W = self.W.reshape(FN, -1).T
        # (FN, N*out_h*out_w): the output comes out channel by channel, as (N, FN, OH, OW) wants it
        out = np.dot(col_W.T, col_t).reshape(FN, N, out_h, out_w).transpose(1, 0, 2, 3)
        self.x, self.col, self.col_W = x, col_t.T, col_W
        return out + self.b.reshape(1, FN, 1, 1)

    def backward(self, dout):
        FN, C, FH, FW = self.W.shape
        dout = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.db = np.sum(dout, axis=0)
        self.dW = np.dot(self.col.T, dout).T.reshape(FN, C, FH, FW)
        dcol = np.dot(dout, self.col_W.T)
        return col2im(dcol, self.x.shape, FH, FW, self.stride, self.pad)


class Pooling:
    """Max pooling; the gradient goes to the first maximum of each window."""

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h, self.pool_w = pool_h, pool_w
        self.stride, self.pad = stride, pad
        self.x = self.arg_max = None

    def forward(self, x):
        N, C, H, W = x.shape
        out_h = conv_output_size(H, self.pool_h, self.stride, self.pad)
        out_w = conv_output_size(W, self.pool_w, self.stride, self.pad)
        self.x = x
        if self.pad == 0 and self.stride == self.pool_h == self.pool_w and H % self.stride == 0 \
                and W % self.stride == 0:
            # windows that tile the image: the largest of the strided slices, one per
            # position in the window (the same maxima, without copying each window)
            out = x[:, :, ::self.stride, ::self.stride]
            for dy in range(self.pool_h):
                for dx in range(self.pool_w):
                    out = np.maximum(out, x[:, :, dy::self.stride, dx::self.stride])
            return out
        return self._windows().max(axis=1).reshape(N, out_h, out_w, C).transpose(0, 3, 1, 2)

    def _windows(self):
        """Each channel's windows as rows of their own, in (N, out_h, out_w, C) order."""
        col = im2col(self.x, self.pool_h, self.pool_w, self.stride, self.pad)
        return col.reshape(-1, self.pool_h * self.pool_w)

    def backward(self, dout):
        self.arg_max = np.argmax(self._windows(), axis=1)  # the first maximum of each window
        dout = dout.transpose(0, 2, 3, 1)
        pool_size = self.pool_h * self.pool_w
        dmax = np.zeros((dout.size, pool_size), dtype=dout.dtype)
        dmax[np.arange(self.arg_max.size), self.arg_max] = dout.ravel()
        dcol = dmax.reshape(dout.shape[0] * dout.shape[1] * dout.shape[2], -1)
        return col2im(dcol, self.x.shape, self.pool_h, self.pool_w, self.stride, self.pad)


class Relu:
    def __init__(self):
        self.mask = None

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out

    def backward(self, dout):
        dout[self.mask] = 0  # in place, as the book writes it
        return dout


class Affine:
    """``x @ W + b``; a 4-D input is flattened to ``(N, C*H*W)`` and its shape kept for
    the backward pass."""

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.x = self.original_x_shape = self.dW = self.db = None

    def forward(self, x):
        self.original_x_shape = x.shape
        self.x = x.reshape(x.shape[0], -1)
        return np.dot(self.x, self.W) + self.b

    def backward(self, dout):
        self.dW = np.dot(self.x.T, dout)
        self.db = np.sum(dout, axis=0)
        return np.dot(dout, self.W.T).reshape(*self.original_x_shape)


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


class SoftmaxWithLoss:
    def __init__(self):
        self.loss = self.y = self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        self.loss = cross_entropy_error(self.y, self.t)
        return self.loss

    def backward(self, dout=1):
        batch_size = self.t.shape[0]
        if self.t.size == self.y.size:
            return (self.y - self.t) / batch_size
        dx = self.y.copy()
        dx[np.arange(batch_size), self.t] -= 1
        return dx / batch_size


BOOK_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


class SimpleConvNet:
    def __init__(self, input_dim=(1, 28, 28), conv_param=BOOK_CONV, hidden_size=100,
                 output_size=10, weight_init_std=0.01, seed=0):
        filter_num, filter_size = conv_param["filter_num"], conv_param["filter_size"]
        pad, stride = conv_param["pad"], conv_param["stride"]
        conv_h = conv_output_size(input_dim[1], filter_size, stride, pad)
        conv_w = conv_output_size(input_dim[2], filter_size, stride, pad)
        pool_output_size = filter_num * (conv_h // 2) * (conv_w // 2)

        rng = np.random.RandomState(seed)
        self.params = {
            "W1": weight_init_std * rng.randn(filter_num, input_dim[0], filter_size, filter_size),
            "b1": np.zeros(filter_num),
            "W2": weight_init_std * rng.randn(pool_output_size, hidden_size),
            "b2": np.zeros(hidden_size),
            "W3": weight_init_std * rng.randn(hidden_size, output_size),
            "b3": np.zeros(output_size),
        }
        self.layers = OrderedDict()
        self.layers["Conv1"] = Convolution(self.params["W1"], self.params["b1"], stride, pad)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = Affine(self.params["W2"], self.params["b2"])
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = Affine(self.params["W3"], self.params["b3"])
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def accuracy(self, x, t, batch_size=100):
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        correct = 0
        for i in range(0, x.shape[0], batch_size):
            y = np.argmax(self.predict(x[i:i + batch_size]), axis=1)
            correct += np.sum(y == t[i:i + batch_size])
        return correct / x.shape[0]

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        return {"W1": self.layers["Conv1"].dW, "b1": self.layers["Conv1"].db,
                "W2": self.layers["Affine1"].dW, "b2": self.layers["Affine1"].db,
                "W3": self.layers["Affine2"].dW, "b3": self.layers["Affine2"].db}


SMALL_CONV = {"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 1}
SMALL_HIDDEN = 20


def make_net(seed=0):
    """The book's size: 30 filters 5x5 on 1x28x28, 4320 -> 100 -> 10 (W2 alone 432,000)."""
    return SimpleConvNet(seed=seed)


def make_small_net(seed=0):
    """For MNIST in a fraction of the time: 4 filters 5x5, 576 -> 20 -> 10."""
    return SimpleConvNet((1, 28, 28), SMALL_CONV, SMALL_HIDDEN, 10, seed=seed)


class LossOnly:
    """The same net seen through ``params`` and ``loss`` alone: no ``gradient``, no
    ``layers``. The check then takes the gradient from differences of this ``loss``."""

    def __init__(self, net):
        self.net = net
        self.params = net.params

    def loss(self, x, t):
        return self.net.loss(x, t)


def make_loss_only_net(seed=0):
    """The book's default ``SimpleConvNet`` with ``params`` and ``loss`` only."""
    return LossOnly(make_net(seed))


def make_small_loss_only_net(seed=0):
    return LossOnly(make_small_net(seed))
