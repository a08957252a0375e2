"""A functional torch port of ``residual_numpy.py``: ``nn.Parameter``s under the NumPy names,
``@`` and ``F.layer_norm``, ``F.leaky_relu``. ``make_port`` is right; ``make_port_transposed``
uses the square ``W_res`` transposed (``h @ W_res.T``), a bug the shapes cannot show.

    python -m compare port examples/traps/residual_numpy.py:make_numpy \\
                           examples/traps/residual_port.py:make_port_transposed
"""
import torch
import torch.nn.functional as F
from torch import nn


class ResidualPort(nn.Module):
    def __init__(self, n_in=784, n_hidden=16, n_out=10, slope=0.1, eps=1e-5, transposed=False):
        super().__init__()
        self.slope, self.eps, self.transposed = slope, eps, transposed
        shapes = {"W_in": (n_in, n_hidden), "b_in": (n_hidden,), "gamma": (n_hidden,),
                  "beta": (n_hidden,), "W_res": (n_hidden, n_hidden), "b_res": (n_hidden,),
                  "W_out": (n_hidden, n_out), "b_out": (n_out,)}
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape, dtype=torch.float64)))

    def forward(self, x):
        z = x @ self.W_in + self.b_in
        h = F.leaky_relu(F.layer_norm(z, z.shape[-1:], self.gamma, self.beta, eps=self.eps),
                         self.slope)
        w_res = self.W_res.T if self.transposed else self.W_res
        return (h + F.leaky_relu(h @ w_res + self.b_res, self.slope)) @ self.W_out + self.b_out


def make_port():
    return ResidualPort()


def make_port_transposed():
    return ResidualPort(transposed=True)
