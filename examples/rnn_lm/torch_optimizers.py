"""torch's optimizers set as the book's list optimizers (``book_optimizers.py``) are.

Each is ``--torch-optimizer examples/rnn_lm/torch_optimizers.py:NAME``, called with the
port's parameters and ``lr``. The book adds ``1e-7`` where torch's AdaGrad and RMSprop
add their ``eps``: set to it, the two rules are one. The book's Adam adds ``1e-7`` after
the bias correction of ``v``, torch's ``eps`` before it: no fixed ``eps`` makes them one
(the check names and sizes that difference, ``adam_eps``).
"""
import torch


def sgd(params, lr):
    return torch.optim.SGD(params, lr=lr)


def momentum(params, lr):
    # torch keeps buf = 0.9 buf + g and steps -lr buf; the book's v is -lr buf
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def adagrad(params, lr):
    return torch.optim.Adagrad(params, lr=lr, eps=1e-7)


def rmsprop(params, lr):
    return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-7)


def adam(params, lr):
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999))


def sgd_by_layer(model, lr):
    """A trap (``tied_weights``): each layer's parameters listed in turn, so a tensor tied
    between two layers (``fc.weight = embed.weight``) is handed to the optimizer twice, and
    moves twice at every step. ``model.parameters()`` lists it once."""
    params = []
    for layer in model.children():
        params += [p for p in layer.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=lr)
