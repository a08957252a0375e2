"""The ports of ``numpy_net.SimpleConvNet`` as a PyTorch user writes them.

``nn.Conv2d.weight`` is ``(out_channels, in_channels, kH, kW)``, the book's
``(FN, C, FH, FW)``: it pairs with ``W1`` as it is. ``nn.Flatten`` flattens an
``(N, C, H, W)`` tensor in ``(C, H, W)`` order, as the book's ``Affine`` does,
so ``W2`` pairs with ``fc1.weight`` transposed, like every ``nn.Linear``.

    python -m compare port examples/ch7_conv/numpy_net.py:make_small_net \\
                           examples/ch7_conv/torch_net.py:make_small_net
"""
import torch
import torch.nn.functional as F
from torch import nn

BOOK_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
SMALL_CONV = {"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 1}
SMALL_HIDDEN = 20


def flat_size(input_dim, conv_param):
    """Channels times the pooled height and width: what ``fc1`` takes."""
    k, pad, stride = conv_param["filter_size"], conv_param["pad"], conv_param["stride"]
    conv_h = (input_dim[1] + 2 * pad - k) // stride + 1
    conv_w = (input_dim[2] + 2 * pad - k) // stride + 1
    return conv_param["filter_num"] * (conv_h // 2) * (conv_w // 2)


class SimpleConvNet(nn.Module):
    def __init__(self, input_dim=(1, 28, 28), conv_param=BOOK_CONV, hidden_size=100,
                 output_size=10):
        super().__init__()
        self.conv1 = nn.Conv2d(input_dim[0], conv_param["filter_num"], conv_param["filter_size"],
                               stride=conv_param["stride"], padding=conv_param["pad"])
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2, 2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(flat_size(input_dim, conv_param), hidden_size)
        self.relu2 = nn.ReLU()
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        return self.fc2(self.relu2(self.fc1(self.flatten(x))))


class FunctionalConvNet(nn.Module):
    """The same net with its parameters held directly and the layers called as functions."""

    def __init__(self, input_dim=(1, 28, 28), conv_param=BOOK_CONV, hidden_size=100,
                 output_size=10):
        super().__init__()
        fn, k = conv_param["filter_num"], conv_param["filter_size"]
        self.stride, self.pad = conv_param["stride"], conv_param["pad"]
        self.W1 = nn.Parameter(0.01 * torch.randn(fn, input_dim[0], k, k))
        self.b1 = nn.Parameter(torch.zeros(fn))
        # stored (out, in), as nn.Linear stores them, for F.linear
        self.W2 = nn.Parameter(0.01 * torch.randn(hidden_size, flat_size(input_dim, conv_param)))
        self.b2 = nn.Parameter(torch.zeros(hidden_size))
        self.W3 = nn.Parameter(0.01 * torch.randn(output_size, hidden_size))
        self.b3 = nn.Parameter(torch.zeros(output_size))

    def forward(self, x):
        x = F.conv2d(x, self.W1, self.b1, stride=self.stride, padding=self.pad)
        x = F.max_pool2d(F.relu(x), 2, 2)
        x = F.relu(F.linear(torch.flatten(x, 1), self.W2, self.b2))
        return F.linear(x, self.W3, self.b3)


def make_net():
    return SimpleConvNet()


def make_small_net():
    return SimpleConvNet((1, 28, 28), SMALL_CONV, SMALL_HIDDEN, 10)


def make_functional_net():
    return FunctionalConvNet()


def make_small_functional_net():
    return FunctionalConvNet((1, 28, 28), SMALL_CONV, SMALL_HIDDEN, 10)
