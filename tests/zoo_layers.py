"""Ports of the chapter-6 and chapter-7 nets to check: right ones that must pass, and
broken ones, each with one bug a porter really makes and the diagnosis code the
check should give it.

The NumPy references are ``examples/ch6_extend/numpy_net.py`` (``MultiLayerNetExtend``)
and ``examples/ch7_conv/numpy_net.py`` (``SimpleConvNet``), plus two nets written
here from their layers: a conv net with batch norm after the convolution, and a
conv net of stride 2. Every function takes no argument it needs (the command line
calls it bare); the keywords let a test make the nets smaller.

===========================  ======================================  =====================
port                         the bug                                 code
===========================  ======================================  =====================
bn_eps                       ``BatchNorm1d(h)``: eps 1e-5            ``bn_eps``
bn_momentum                  ``momentum=0.9`` copied from the book   ``bn_momentum``
bn_per_channel               ``BatchNorm2d`` after the conv          ``bn_per_channel``
inverted_dropout             ``nn.Dropout(p)``                       ``inverted_dropout``
inverted_dropout_functional  ``F.dropout(x, p, self.training)``      ``inverted_dropout``
flatten_order                ``permute(0, 2, 3, 1)`` before flatten  ``flatten_order``
weight_decay_all             ``SGD(weight_decay=)`` on every param   ``weight_decay``
weight_decay_wrong_lambda    weights only, lambda 0.01 for 0.1       ``weight_decay``
weight_decay_forgotten       no decay anywhere on the torch side     ``weight_decay``
mode_frozen_batchnorm        ``train()`` keeps batch norm in eval    ``mode``
mode_train_flg               the book's ``train_flg=False`` kept     ``mode``
mode_always_train            dropout without an eval branch          ``mode``
conv_stride                  ``stride=2`` for the book's 1           ``stride``
conv_padding                 ``padding=2`` for the book's 0          ``padding``
conv_padding_same_shapes     ``padding=1`` for 0, shapes still meet  ``padding``
===========================  ======================================  =====================

``stride`` and ``padding`` are the names these ports suggest; the issue leaves them
open.

The NumPy side of each: ``ch6_numpy.make_batchnorm_net`` for ``bn_eps``,
``bn_momentum``, ``mode_frozen_batchnorm`` and ``batchnorm_right``;
``make_dropout_net`` for the dropout ports and ``mode_train_flg``,
``mode_always_train``; ``make_weight_decay_net`` for the optimizers
(``weight_decay_all``, ``weight_decay_wrong_lambda``, ``weight_decay_right``, given
to ``--torch-optimizer`` with ``--steps``), ``weight_decay_forgotten`` and
``weight_decay_loss_right`` (``--loss model``); ``make_full_net`` for ``full_right``;
``ch7_numpy.make_small_net`` for ``conv_right``, ``conv_functional_right``,
``flatten_order``, ``conv_stride`` and ``conv_padding``; ``conv_batchnorm_numpy``
for ``conv_batchnorm_right`` and ``bn_per_channel``; ``conv_stride2_numpy`` for
``conv_stride2_right`` and ``conv_padding_same_shapes``.
"""
import importlib.util
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _example(folder, stem):
    """An example file as a module of its own name: the chapter folders all hold a
    ``numpy_net.py`` and a ``torch_net.py``, which one ``sys.path`` cannot tell apart."""
    name = f"_examples_{folder}_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / folder / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ch6_numpy = _example("ch6_extend", "numpy_net")
ch6_torch = _example("ch6_extend", "torch_net")
ch7_numpy = _example("ch7_conv", "numpy_net")
ch7_torch = _example("ch7_conv", "torch_net")

HIDDEN = ch6_numpy.HIDDEN
LAMBDA = ch6_numpy.WEIGHT_DECAY_LAMBDA
RATIO = ch6_numpy.DROPOUT_RATION
SMALL = dict(input_dim=(1, 28, 28), conv_param=ch7_numpy.SMALL_CONV,
             hidden_size=ch7_numpy.SMALL_HIDDEN)
STRIDE2_CONV = {"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 2}


# --- NumPy sides written here ---------------------------------------------------------------

class ConvBatchNormNet(ch7_numpy.SimpleConvNet):
    """``SimpleConvNet`` with the book's batch norm after the convolution: Conv1,
    BatchNorm1, Relu1, Pool1, Affine1, Relu2, Affine2. The book's layer normalises
    the conv output per activation, as ``(N, C*H*W)``: gamma1 has C*H*W entries."""

    def __init__(self, input_dim=(1, 28, 28), conv_param=ch7_numpy.SMALL_CONV,
                 hidden_size=ch7_numpy.SMALL_HIDDEN, output_size=10, weight_init_std=0.01, seed=0):
        super().__init__(input_dim, conv_param, hidden_size, output_size, weight_init_std, seed)
        conv = self.layers["Conv1"]
        fn = conv_param["filter_num"]
        k = conv_param["filter_size"]
        out_h = ch7_numpy.conv_output_size(input_dim[1], k, conv.stride, conv.pad)
        out_w = ch7_numpy.conv_output_size(input_dim[2], k, conv.stride, conv.pad)
        self.params["gamma1"] = np.ones(fn * out_h * out_w)
        self.params["beta1"] = np.zeros(fn * out_h * out_w)
        layers = OrderedDict()
        for key, layer in self.layers.items():
            layers[key] = layer
            if key == "Conv1":
                layers["BatchNorm1"] = ch6_numpy.BatchNormalization(self.params["gamma1"],
                                                                    self.params["beta1"])
        self.layers = layers

    def predict(self, x, train_flg=False):
        for key, layer in self.layers.items():
            x = layer.forward(x, train_flg) if "BatchNorm" in key else layer.forward(x)
        return x

    def loss(self, x, t, train_flg=False):
        return self.last_layer.forward(self.predict(x, train_flg), t)

    def gradient(self, x, t):
        self.loss(x, t, train_flg=True)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {"W1": self.layers["Conv1"].dW, "b1": self.layers["Conv1"].db,
                 "W2": self.layers["Affine1"].dW, "b2": self.layers["Affine1"].db,
                 "W3": self.layers["Affine2"].dW, "b3": self.layers["Affine2"].db}
        grads["gamma1"] = self.layers["BatchNorm1"].dgamma
        grads["beta1"] = self.layers["BatchNorm1"].dbeta
        return grads


def conv_batchnorm_numpy(**config):
    """4 filters 5x5 on 1x28x28, batch norm over the 4*24*24 = 2304 conv activations."""
    return ConvBatchNormNet(**config)


def conv_stride2_numpy(seed=0):
    """4 filters 5x5, stride 2, no padding: 28 -> 12, pooled to 6: 144 -> 20 -> 10."""
    return ch7_numpy.SimpleConvNet((1, 28, 28), STRIDE2_CONV, ch7_numpy.SMALL_HIDDEN, 10, seed=seed)


# --- the chapter-6 net: right ports ---------------------------------------------------------

def batchnorm_right(hidden_size_list=HIDDEN):
    """``BatchNorm1d(h, eps=1e-6, momentum=0.1)``: passes; the running variance differs
    by ``N/(N-1)`` (``bn_unbiased_var``, a known difference)."""
    return ch6_torch.make_batchnorm_net(hidden_size_list)


def dropout_right(hidden_size_list=HIDDEN):
    """``BookDropout``, drawing ``torch.rand(...) > p``: passes in both modes once the
    NumPy side's draw drives it."""
    return ch6_torch.make_dropout_net(hidden_size_list)


class BernoulliDropout(ch6_torch.BookDropout):
    """The book's dropout with the kept units drawn by ``torch.bernoulli``: the same
    layer, another way of drawing."""

    def forward(self, x):
        if self.training:
            return x * torch.bernoulli(torch.full_like(x, 1.0 - self.p))
        return x * (1.0 - self.p)


def _replace(net, kind, make):
    """The port with each ``kind`` module of ``net.layers`` made again by ``make(old)``."""
    for i, module in enumerate(net.layers):
        if isinstance(module, kind):
            net.layers[i] = make(module)
    return net


def dropout_bernoulli_right(hidden_size_list=HIDDEN):
    return _replace(ch6_torch.make_dropout_net(hidden_size_list), ch6_torch.BookDropout,
                    lambda m: BernoulliDropout(m.p))


def full_right(hidden_size_list=HIDDEN):
    """Batch norm, the book's dropout; with ``weight_decay_right`` as its optimizer."""
    return ch6_torch.make_full_net(hidden_size_list)


weight_decay_right = ch6_torch.weight_decay_sgd  # the weights alone, lambda 0.1


def weight_decay_loss_right(hidden_size_list=HIDDEN):
    """The penalty in the port's own ``loss``: passes with ``--loss model``, no optimizer."""
    return ch6_torch.make_weight_decay_loss_net(hidden_size_list)


# --- the chapter-6 net: broken ports --------------------------------------------------------

def bn_eps(hidden_size_list=HIDDEN):
    """``nn.BatchNorm1d(h)`` as it comes: eps 1e-5 where the book has ``10e-7`` (1e-6).
    Training-mode outputs differ at ``BatchNorm1``, by ``sqrt((var + 1e-6) / (var + 1e-5))``
    per activation. Code ``bn_eps`` (both values)."""
    return _replace(ch6_torch.make_batchnorm_net(hidden_size_list), nn.BatchNorm1d,
                    lambda m: nn.BatchNorm1d(m.num_features, momentum=0.1))


def bn_momentum(hidden_size_list=HIDDEN):
    """``momentum=0.9`` copied from the book, where torch's momentum weighs the new value:
    the training forward and gradients agree; the running mean and variance part after
    the first step (torch keeps 0.9 of the batch's, the book 0.1), and so does every
    eval-mode prediction after it. Code ``bn_momentum`` (name the convention: 1 - 0.9)."""
    return _replace(ch6_torch.make_batchnorm_net(hidden_size_list), nn.BatchNorm1d,
                    lambda m: nn.BatchNorm1d(m.num_features, eps=1e-6, momentum=0.9))


def inverted_dropout(hidden_size_list=HIDDEN, p=RATIO):
    """``nn.Dropout(p)``: with the mask shared, the training output at ``Dropout1`` is
    ``1 / (1 - p)`` (1.25 for p = 0.2) times the book's, and the eval output ``1 / (1 - p)``
    times it as well (``x`` against ``x * (1 - p)``). Code ``inverted_dropout``: p, the
    factor, and the fix (the book's dropout, or its ``x * (1 - p)`` at test time
    dropped on the NumPy side)."""
    return _replace(ch6_torch.make_dropout_net(hidden_size_list, p), ch6_torch.BookDropout,
                    lambda m: nn.Dropout(m.p))


class FunctionalDropoutNet(nn.Module):
    """Linear, ReLU, ``F.dropout(x, p, self.training)`` per hidden layer: no module
    stands for the dropout, the call is inside ``forward``."""

    def __init__(self, input_size=784, hidden_size_list=HIDDEN, output_size=10, p=RATIO):
        super().__init__()
        sizes = [input_size, *hidden_size_list, output_size]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.p = p

    def forward(self, x):
        for fc in self.fcs[:-1]:
            x = F.dropout(F.relu(fc(x)), self.p, self.training)
        return self.fcs[-1](x)


def inverted_dropout_functional(hidden_size_list=HIDDEN, p=RATIO):
    """``F.dropout``, inverted like ``nn.Dropout``. Code ``inverted_dropout``."""
    return FunctionalDropoutNet(784, hidden_size_list, 10, p)


def weight_decay_all(params, lr=0.1, weight_decay=LAMBDA):
    """``SGD(params, weight_decay=0.1)``: torch's default puts the decay on every
    parameter it is given, biases included; the book decays the weights alone. Each
    bias's update differs from the book's by ``lr * lambda * b``. The book starts its
    biases at zero, so against ``make_weight_decay_net`` with ``--steps`` the updates
    agree at step 0 and part at the biases at step 1; against ``make_full_net`` batch
    norm's gamma starts at one and parts at step 0 (by ``lr * lambda``). The weights
    agree. Code ``weight_decay``, with parameter groups as the fix."""
    return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)


def weight_decay_wrong_lambda(params, lr=0.1):
    """The weights alone, but lambda 0.01 where the book's net has 0.1. Code
    ``weight_decay``: the lambda fitted from the difference (0.1) against the
    optimizer's (0.01)."""
    return ch6_torch.weight_decay_sgd(params, lr=lr, weight_decay=0.01)


def weight_decay_forgotten(hidden_size_list=HIDDEN):
    """The plain port, checked against ``make_weight_decay_net`` with no torch optimizer:
    the loss differs by ``0.5 * 0.1 * sum(W**2)`` and each weight's gradient by
    ``0.1 * W``. Code ``weight_decay``, lambda fitted as 0.1."""
    return ch6_torch.make_weight_decay_net(hidden_size_list)


class FrozenBatchNormNet(ch6_torch.MultiLayerNetExtend):
    """``train()`` overridden to keep the batch norm layers in eval mode, as fine-tuning
    recipes freeze their statistics."""

    def train(self, mode=True):
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.eval()
        return self


def mode_frozen_batchnorm(hidden_size_list=HIDDEN):
    """After ``model.train()`` the ``BatchNorm1d`` leaves still say ``training=False``:
    the training-mode check normalises with the running statistics where the book's
    ``train_flg=True`` uses the batch's. The outputs at ``BatchNorm1`` are the book's
    layer in *eval* mode (with the running buffers the torch side holds). Code ``mode``."""
    return FrozenBatchNormNet(784, hidden_size_list, 10, use_batchnorm=True)


class TrainFlgDropout(ch6_torch.BookDropout):
    """The book's layer with the book's flag: ``forward(x, train_flg=False)``."""

    def forward(self, x, train_flg=False):
        if train_flg:
            return x * (torch.rand(x.shape, dtype=x.dtype, device=x.device) > self.p)
        return x * (1.0 - self.p)


class TrainFlgNet(ch6_torch.MultiLayerNetExtend):
    """``forward(x, train_flg=False)`` as the book's ``predict``: ``model.train()`` changes
    nothing, and ``model(x)`` is always the test-time net."""

    def forward(self, x, train_flg=False):
        for layer in self.layers:
            x = layer(x, train_flg) if isinstance(layer, TrainFlgDropout) else layer(x)
        return x


def mode_train_flg(hidden_size_list=HIDDEN, p=RATIO):
    """The dropout layers give ``x * (1 - p)`` in the training-mode check and draw
    nothing: the book's eval output where its training output is expected. Code ``mode``."""
    net = TrainFlgNet(784, hidden_size_list, 10, use_dropout=True, dropout_ration=p)
    return _replace(net, ch6_torch.BookDropout, lambda m: TrainFlgDropout(m.p))


class DropoutNoEval(ch6_torch.BookDropout):
    """The book's training branch alone: the test-time ``x * (1 - p)`` forgotten."""

    def forward(self, x):
        return x * (torch.rand(x.shape, dtype=x.dtype, device=x.device) > self.p)


def mode_always_train(hidden_size_list=HIDDEN, p=RATIO):
    """Right in training; in eval mode the layer still draws a mask and drops, where the
    book's gives ``x * (1 - p)``. Code ``mode`` (found by the eval-mode comparison)."""
    return _replace(ch6_torch.make_dropout_net(hidden_size_list, p), ch6_torch.BookDropout,
                    lambda m: DropoutNoEval(m.p))


# --- the chapter-7 net: right ports ---------------------------------------------------------

def conv_right(**config):
    return ch7_torch.SimpleConvNet(**{**SMALL, **config})


def conv_functional_right(**config):
    """``F.conv2d``, ``F.max_pool2d``, ``F.linear`` on parameters held directly; the
    linear weights stored ``(out, in)``, transposed from the book's."""
    return ch7_torch.FunctionalConvNet(**{**SMALL, **config})


class FlatBatchNorm1d(nn.BatchNorm1d):
    """The book's per-activation batch norm of a conv output: ``(N, C, H, W)`` normalised
    as ``(N, C*H*W)``."""

    def forward(self, x):
        return super().forward(x.flatten(1)).view_as(x)


class ConvBatchNormPort(ch7_torch.SimpleConvNet):
    def __init__(self, input_dim=(1, 28, 28), conv_param=ch7_numpy.SMALL_CONV,
                 hidden_size=ch7_numpy.SMALL_HIDDEN, output_size=10, *, per_channel=False):
        super().__init__(input_dim, conv_param, hidden_size, output_size)
        fn, k = conv_param["filter_num"], conv_param["filter_size"]
        out_h, out_w = (ch7_numpy.conv_output_size(n, k, conv_param["stride"], conv_param["pad"])
                        for n in input_dim[1:])
        self.bn1 = (nn.BatchNorm2d(fn, eps=1e-6, momentum=0.1) if per_channel
                    else FlatBatchNorm1d(fn * out_h * out_w, eps=1e-6, momentum=0.1))

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        return self.fc2(self.relu2(self.fc1(self.flatten(x))))


def conv_batchnorm_right(**config):
    """Against ``conv_batchnorm_numpy``: ``BatchNorm1d`` over the flattened conv output."""
    return ConvBatchNormPort(**config)


def conv_stride2_right():
    """Against ``conv_stride2_numpy``."""
    return ch7_torch.SimpleConvNet((1, 28, 28), STRIDE2_CONV, ch7_numpy.SMALL_HIDDEN, 10)


# --- the chapter-7 net: broken ports --------------------------------------------------------

def bn_per_channel(**config):
    """Against ``conv_batchnorm_numpy``: ``nn.BatchNorm2d(C)``, one mean and variance per
    channel over ``(N, H, W)``, where the book's layer has one per activation over ``N``.
    What the check meets first: gamma1 and beta1 have C*H*W entries (2304), the
    port's ``bn1.weight`` and ``bn1.bias`` C (4); the layer's input is 4-D. Code
    ``bn_per_channel``."""
    return ConvBatchNormPort(**config, per_channel=True)


class ChannelsLastFlatten(ch7_torch.SimpleConvNet):
    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # the bug: (H, W, C) order
        return self.fc2(self.relu2(self.fc1(x)))


def flatten_order(**config):
    """Against ``make_small_net``: the pooled maps flattened channels-last, so every
    parameter pairs and ``fc1`` gets the right numbers in another order. The first
    mismatch is ``Affine1``'s output; its input permuted ``(0, 2, 3, 1)`` gives the
    port's. Code ``flatten_order``."""
    return ChannelsLastFlatten(**{**SMALL, **config})


def conv_stride():
    """Against ``make_small_net``: ``Conv2d(stride=2)`` with ``fc1`` sized for it
    (4*6*6 = 144 inputs for the book's 576). W1 and b1 pair; W2 (576, 20) meets
    ``fc1.weight`` (20, 144). Code ``stride`` (2 against 1)."""
    return ch7_torch.SimpleConvNet((1, 28, 28), {**ch7_numpy.SMALL_CONV, "stride": 2},
                                   ch7_numpy.SMALL_HIDDEN, 10)


def conv_padding():
    """Against ``make_small_net``: ``padding=2`` (the "same" habit) with ``fc1`` sized for
    it (4*14*14 = 784 inputs for 576). Code ``padding`` (2 against 0)."""
    return ch7_torch.SimpleConvNet((1, 28, 28), {**ch7_numpy.SMALL_CONV, "pad": 2},
                                   ch7_numpy.SMALL_HIDDEN, 10)


def conv_padding_same_shapes():
    """Against ``conv_stride2_numpy``: ``padding=1`` where the book's has 0. The conv
    output is 13x13 for the book's 12x12, the 2x2 pool floors both to 6x6, so every
    parameter pairs and the first difference is ``Conv1``'s output shape. Code
    ``padding`` (1 against 0)."""
    return ch7_torch.SimpleConvNet((1, 28, 28), {**STRIDE2_CONV, "pad": 1},
                                   ch7_numpy.SMALL_HIDDEN, 10)
