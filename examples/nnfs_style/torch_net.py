"""PyTorch ports of ``numpy_net.py``'s layers, the two ways a reader of the book writes them.

* ``make_net``: modules, ``nn.Linear, nn.ReLU, nn.Linear``. ``nn.Linear``
  stores ``weight`` as ``(out, in)``, the transpose of ``Layer_Dense``'s
  ``weights``, and ``bias`` as ``(out,)`` where ``biases`` is ``(1, out)``.
  It returns the scores; softmax and the cross-entropy are
  ``F.cross_entropy``'s, outside the module.
* ``FunctionalNet``: the book's own layout kept, ``weights1``
  ``(n_inputs, n_neurons)`` and ``biases1`` ``(1, n_neurons)`` as
  parameters, ``inputs @ weights + biases`` and ``F.relu``, no layer modules.

The book clips probabilities to ``[1e-7, 1 - 1e-7]`` before the log;
``F.cross_entropy`` does not. They differ only where a probability leaves
that interval.
"""
import torch
import torch.nn.functional as F
from torch import nn


def make_net(n_inputs=784, n_hidden=64, n_outputs=10):
    return nn.Sequential(nn.Linear(n_inputs, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_outputs))


class FunctionalNet(nn.Module):
    def __init__(self, n_inputs=784, n_hidden=64, n_outputs=10):
        super().__init__()
        self.weights1 = nn.Parameter(0.01 * torch.randn(n_inputs, n_hidden))
        self.biases1 = nn.Parameter(torch.zeros(1, n_hidden))
        self.weights2 = nn.Parameter(0.01 * torch.randn(n_hidden, n_outputs))
        self.biases2 = nn.Parameter(torch.zeros(1, n_outputs))

    def forward(self, inputs):
        hidden = F.relu(inputs @ self.weights1 + self.biases1)
        return hidden @ self.weights2 + self.biases2
