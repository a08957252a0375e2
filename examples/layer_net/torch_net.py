"""The port of ``numpy_net.TwoLayerNet`` as a PyTorch user writes it.

``nn.Linear`` stores its weight as ``(out, in)``, the transpose of the
book's ``W``; autograd replaces the hand-written backward; the loss is
``F.cross_entropy`` of the scores, outside the module. ``compare port``
pairs ``W1`` with ``fc1.weight`` (transposed) by order and shape, copies the
NumPy values in, and compares every layer, the loss and every gradient.
"""
import torch.nn.functional as F
from torch import nn


class TwoLayerNet(nn.Module):
    def __init__(self, input_size=784, hidden_size=50, output_size=10):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))


def make_net():
    return TwoLayerNet(784, 50, 10)
