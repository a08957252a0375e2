"""The torch port of ``numpy_functions.py``: the same names, tensors in and out.

    python -m compare port examples/functions/numpy_functions.py \\
                           examples/functions/torch_functions.py
"""
import torch


def step_function(x):
    return (x > 0).to(torch.int64)


def sigmoid(x):
    return 1 / (1 + torch.exp(-x))


def relu(x):
    return torch.clamp(x, min=0)


def softmax(x):
    x = x - torch.amax(x, dim=-1, keepdim=True)  # overflow guard
    return torch.exp(x) / torch.sum(torch.exp(x), dim=-1, keepdim=True)


def sum_squared_error(y, t):
    return 0.5 * torch.sum((y - t) ** 2)


def cross_entropy_error(y, t):
    """Mean over the batch; ``t`` holds class indices."""
    if y.dim() == 1:
        y, t = y.reshape(1, -1), t.reshape(1)
    batch_size = y.shape[0]
    return -torch.sum(torch.log(y[torch.arange(batch_size), t] + 1e-7)) / batch_size
