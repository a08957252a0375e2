"""The ports of ``numpy_net.MultiLayerNetExtend`` as a PyTorch user writes them.

What changes on the way, and why each of these ports is right:

* batch norm: ``nn.BatchNorm1d(h, eps=1e-6, momentum=0.1)``. The book's eps is
  ``10e-7`` (torch's default is 1e-5); the book's ``momentum=0.9`` weighs the old
  running value where torch's ``momentum`` weighs the new one, so the book's 0.9
  is torch's 0.1. One difference remains, and it is not a bug: torch keeps the
  *unbiased* batch variance as its running variance, the book the biased one
  (a factor ``N / (N - 1)`` on each update). Torch also starts its running
  variance at ones, the book at zeros.
* dropout: ``nn.Dropout`` is inverted (training ``x * mask / (1 - p)``, eval
  ``x``); the book's is not. ``BookDropout`` is the book's, as a module.
* weight decay: torch puts it in the optimizer, not the loss. The book decays the
  weights only, so the optimizer gets two parameter groups (``weight_decay_sgd``).

    python -m compare port examples/ch6_extend/numpy_net.py:make_weight_decay_net \\
        examples/ch6_extend/torch_net.py:make_weight_decay_net --steps 20 \\
        --torch-optimizer examples/ch6_extend/torch_net.py:weight_decay_sgd
"""
import torch
import torch.nn.functional as F
from torch import nn

WEIGHT_DECAY_LAMBDA = 0.1
DROPOUT_RATION = 0.2
HIDDEN = (100, 100)


class BookDropout(nn.Module):
    """The book's dropout: training ``x * (rand > p)``, unscaled; eval ``x * (1 - p)``."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.training:
            mask = torch.rand(x.shape, dtype=x.dtype, device=x.device) > self.p
            return x * mask
        return x * (1.0 - self.p)

    def extra_repr(self):
        return f"p={self.p}"


def batch_norm(size):
    """The book's batch norm in torch's terms: eps 10e-7, momentum 1 - 0.9."""
    return nn.BatchNorm1d(size, eps=1e-6, momentum=0.1)


class MultiLayerNetExtend(nn.Module):
    def __init__(self, input_size=784, hidden_size_list=HIDDEN, output_size=10, *,
                 activation="relu", use_batchnorm=False, use_dropout=False, dropout_ration=0.5):
        super().__init__()
        act = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
        layers, n_in = [], input_size
        for size in hidden_size_list:
            layers.append(nn.Linear(n_in, size))
            if use_batchnorm:
                layers.append(batch_norm(size))
            layers.append(act())
            if use_dropout:
                layers.append(BookDropout(dropout_ration))
            n_in = size
        layers.append(nn.Linear(n_in, output_size))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class WeightDecayInLoss(MultiLayerNetExtend):
    """The book's way, in torch: the penalty in the port's own loss (``--loss model``),
    so no optimizer needs a ``weight_decay``."""

    def __init__(self, *args, weight_decay_lambda=WEIGHT_DECAY_LAMBDA, **kwargs):
        super().__init__(*args, **kwargs)
        self.weight_decay_lambda = weight_decay_lambda

    def loss(self, x, t):
        t = t if t.dim() == 1 else t.argmax(dim=1)
        weights = [m.weight for m in self.modules() if isinstance(m, nn.Linear)]
        penalty = sum((w ** 2).sum() for w in weights)
        return F.cross_entropy(self(x), t) + 0.5 * self.weight_decay_lambda * penalty


def weight_decay_sgd(params, lr=0.1, weight_decay=WEIGHT_DECAY_LAMBDA):
    """``torch.optim.SGD`` with the book's decay on the weights alone.

    ``compare port --torch-optimizer`` hands over the port's parameters as a list of
    tensors, so the weights are told apart by their rank: a ``Linear`` or ``Conv2d``
    weight has two or more dimensions; biases and batch norm's gamma and beta have one,
    and the book decays none of them. (In a training script, where
    ``named_parameters()`` is at hand, the names serve as well.)
    """
    params = list(params)
    decay = [p for p in params if p.dim() > 1]
    no_decay = [p for p in params if p.dim() <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def make_net(hidden_size_list=HIDDEN):
    return MultiLayerNetExtend(784, hidden_size_list, 10)


def make_batchnorm_net(hidden_size_list=HIDDEN):
    return MultiLayerNetExtend(784, hidden_size_list, 10, use_batchnorm=True)


def make_dropout_net(hidden_size_list=HIDDEN, dropout_ration=DROPOUT_RATION):
    return MultiLayerNetExtend(784, hidden_size_list, 10, use_dropout=True,
                               dropout_ration=dropout_ration)


def make_weight_decay_net(hidden_size_list=HIDDEN):
    """The module has no weight decay of its own: it is in ``weight_decay_sgd``."""
    return MultiLayerNetExtend(784, hidden_size_list, 10)


def make_weight_decay_loss_net(hidden_size_list=HIDDEN, weight_decay_lambda=WEIGHT_DECAY_LAMBDA):
    return WeightDecayInLoss(784, hidden_size_list, 10, weight_decay_lambda=weight_decay_lambda)


def make_full_net(hidden_size_list=HIDDEN):
    """Batch norm and the book's dropout; the decay goes in ``weight_decay_sgd``."""
    return MultiLayerNetExtend(784, hidden_size_list, 10, use_batchnorm=True, use_dropout=True,
                               dropout_ration=DROPOUT_RATION)
