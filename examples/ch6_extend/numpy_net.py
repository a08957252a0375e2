"""A multi-layer net in the book's chapter-6 style: batch norm, dropout, weight decay.

Written here, in NumPy, as a learner writes it from the book. The conventions
a port has to meet are the book's:

* ``BatchNormalization``: eps ``10e-7`` (that is 1e-6); ``momentum`` (0.9) is the
  weight of the *old* running value; the running variance is the *biased* batch
  variance; both running arrays start as zeros, made at the first forward pass;
  a 4-D input is normalised per activation, reshaped to ``(N, C*H*W)``;
* ``Dropout``: not inverted: in training ``x * mask`` with ``mask = rand > ratio``
  (drawn from ``np.random``), at test time ``x * (1 - ratio)``;
* weight decay: ``0.5 * lambda * sum(W**2)`` over the weights in the loss and
  ``lambda * W`` in their gradients, never on the biases, gamma or beta.

``params`` holds ``W1, b1, ..., W{n}, b{n}`` and then, with batch norm,
``gamma1, beta1, ...``: the order the book fills it in, which is not the order
of the layers. The layers keep references to these arrays
(``layers['BatchNorm1'].gamma is params['gamma1']``).

    python -m compare port examples/ch6_extend/numpy_net.py:make_batchnorm_net \\
                           examples/ch6_extend/torch_net.py:make_batchnorm_net
"""
from collections import OrderedDict

import numpy as np

WEIGHT_DECAY_LAMBDA = 0.1  # the value the book's weight-decay experiment uses
DROPOUT_RATION = 0.2  # likewise for its dropout experiment


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return np.exp(x) / np.sum(np.exp(x), axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    if t.size == y.size:  # one-hot rows: their argmax is the class
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t] + 1e-7)) / batch_size


class Affine:
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


class Sigmoid:
    def __init__(self):
        self.out = None

    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * self.out * (1.0 - self.out)


class BatchNormalization:
    """Per activation: a 4-D input ``(N, C, H, W)`` is normalised as ``(N, C*H*W)``."""

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        self.gamma, self.beta = gamma, beta
        self.momentum = momentum
        self.input_shape = None
        self.running_mean, self.running_var = running_mean, running_var
        self.batch_size = self.xc = self.xn = self.std = None
        self.dgamma = self.dbeta = None

    def forward(self, x, train_flg=True):
        self.input_shape = x.shape
        x = x.reshape(x.shape[0], -1)
        if self.running_mean is None:  # the book starts both running arrays at zero
            self.running_mean = np.zeros(x.shape[1], dtype=x.dtype)
            self.running_var = np.zeros(x.shape[1], dtype=x.dtype)
        if train_flg:
            mu = x.mean(axis=0)
            xc = x - mu
            var = np.mean(xc ** 2, axis=0)  # biased: divided by N
            std = np.sqrt(var + 10e-7)
            self.batch_size, self.xc, self.std = x.shape[0], xc, std
            self.xn = xc / std
            xn = self.xn
            self.running_mean = self.momentum * self.running_mean + (1 - self.momentum) * mu
            self.running_var = self.momentum * self.running_var + (1 - self.momentum) * var
        else:
            xn = (x - self.running_mean) / np.sqrt(self.running_var + 10e-7)
        return (self.gamma * xn + self.beta).reshape(*self.input_shape)

    def backward(self, dout):
        dout = dout.reshape(dout.shape[0], -1)
        self.dbeta = dout.sum(axis=0)
        self.dgamma = np.sum(self.xn * dout, axis=0)
        dxn = self.gamma * dout
        # the mean and the variance depend on every row: the two sums carry that back
        n = self.batch_size
        dx = (n * dxn - dxn.sum(axis=0) - self.xn * np.sum(dxn * self.xn, axis=0)) / (n * self.std)
        return dx.reshape(*self.input_shape)


class Dropout:
    """Not inverted: training keeps each unit with probability ``1 - ratio`` and leaves
    it unscaled; the test-time output is scaled by ``1 - ratio`` instead."""

    def __init__(self, dropout_ration=0.5):
        self.dropout_ration = dropout_ration
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = np.random.rand(*x.shape) > self.dropout_ration
            return x * self.mask
        return x * (1.0 - self.dropout_ration)

    def backward(self, dout):
        return dout * self.mask


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


ACTIVATIONS = {"relu": Relu, "sigmoid": Sigmoid}


class MultiLayerNetExtend:
    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0, use_dropout=False,
                 dropout_ration=0.5, use_batchnorm=False, seed=0):
        self.input_size, self.output_size = input_size, output_size
        self.hidden_size_list = list(hidden_size_list)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout, self.use_batchnorm = use_dropout, use_batchnorm
        self.params = {}
        self.__init_weight(weight_init_std, np.random.RandomState(seed))

        activation_layer = ACTIVATIONS[activation]
        name = activation.capitalize()
        self.layers = OrderedDict()
        for idx in range(1, self.hidden_layer_num + 1):
            self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
            if use_batchnorm:
                size = self.hidden_size_list[idx - 1]
                self.params[f"gamma{idx}"] = np.ones(size)
                self.params[f"beta{idx}"] = np.zeros(size)
                self.layers[f"BatchNorm{idx}"] = BatchNormalization(self.params[f"gamma{idx}"],
                                                                    self.params[f"beta{idx}"])
            self.layers[f"{name}{idx}"] = activation_layer()
            if use_dropout:
                self.layers[f"Dropout{idx}"] = Dropout(dropout_ration)
        idx = self.hidden_layer_num + 1
        self.layers[f"Affine{idx}"] = Affine(self.params[f"W{idx}"], self.params[f"b{idx}"])
        self.last_layer = SoftmaxWithLoss()

    def __init_weight(self, weight_init_std, rng):
        sizes = [self.input_size] + self.hidden_size_list + [self.output_size]
        for idx in range(1, len(sizes)):
            scale = weight_init_std
            if str(weight_init_std).lower() in ("relu", "he"):
                scale = np.sqrt(2.0 / sizes[idx - 1])  # He: ReLU halves the variance
            elif str(weight_init_std).lower() in ("sigmoid", "xavier"):
                scale = np.sqrt(1.0 / sizes[idx - 1])
            self.params[f"W{idx}"] = scale * rng.randn(sizes[idx - 1], sizes[idx])
            self.params[f"b{idx}"] = np.zeros(sizes[idx])

    def predict(self, x, train_flg=False):
        for key, layer in self.layers.items():
            if "Dropout" in key or "BatchNorm" in key:
                x = layer.forward(x, train_flg)
            else:
                x = layer.forward(x)
        return x

    def loss(self, x, t, train_flg=False):
        y = self.predict(x, train_flg)
        weight_decay = 0
        for idx in range(1, self.hidden_layer_num + 2):
            W = self.params[f"W{idx}"]
            weight_decay += 0.5 * self.weight_decay_lambda * np.sum(W ** 2)
        return self.last_layer.forward(y, t) + weight_decay

    def accuracy(self, x, t):
        y = np.argmax(self.predict(x, train_flg=False), axis=1)
        if t.ndim != 1:
            t = np.argmax(t, axis=1)
        return np.sum(y == t) / float(x.shape[0])

    def gradient(self, x, t):
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)

        grads = {}
        for idx in range(1, self.hidden_layer_num + 2):
            affine = self.layers[f"Affine{idx}"]
            grads[f"W{idx}"] = affine.dW + self.weight_decay_lambda * affine.W
            grads[f"b{idx}"] = affine.db
            if self.use_batchnorm and idx != self.hidden_layer_num + 1:
                grads[f"gamma{idx}"] = self.layers[f"BatchNorm{idx}"].dgamma
                grads[f"beta{idx}"] = self.layers[f"BatchNorm{idx}"].dbeta
        return grads


HIDDEN = (100, 100)


def make_net(hidden_size_list=HIDDEN, seed=0):
    """784 -> 100 -> 100 -> 10, ReLU, He init: none of the chapter's additions."""
    return MultiLayerNetExtend(784, hidden_size_list, 10, seed=seed)


def make_batchnorm_net(hidden_size_list=HIDDEN, seed=0):
    """Batch norm after each hidden Affine, before its ReLU."""
    return MultiLayerNetExtend(784, hidden_size_list, 10, use_batchnorm=True, seed=seed)


def make_dropout_net(hidden_size_list=HIDDEN, seed=0, dropout_ration=DROPOUT_RATION):
    """Dropout after each hidden ReLU, ratio 0.2."""
    return MultiLayerNetExtend(784, hidden_size_list, 10, use_dropout=True,
                               dropout_ration=dropout_ration, seed=seed)


def make_weight_decay_net(hidden_size_list=HIDDEN, seed=0, weight_decay_lambda=WEIGHT_DECAY_LAMBDA):
    """Weight decay lambda 0.1 on the three weights."""
    return MultiLayerNetExtend(784, hidden_size_list, 10,
                               weight_decay_lambda=weight_decay_lambda, seed=seed)


def make_full_net(hidden_size_list=HIDDEN, seed=0):
    """All three together: Affine, BatchNorm, Relu, Dropout per hidden layer; lambda 0.1."""
    return MultiLayerNetExtend(784, hidden_size_list, 10, use_batchnorm=True, use_dropout=True,
                               dropout_ration=DROPOUT_RATION,
                               weight_decay_lambda=WEIGHT_DECAY_LAMBDA, seed=seed)
