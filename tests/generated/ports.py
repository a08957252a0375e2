"""The torch port of a spec: an ``nn.Module``, batch first, and the ``loss`` option the
user would give ``check_port``; right, or with one bug of ``BUGS``.

The port returns what its loss takes: scores for ``F.cross_entropy`` and
``binary_cross_entropy_with_logits``, log-probabilities for ``nll_loss``,
probabilities for ``binary_cross_entropy``; a NumPy sum is a loss function with
``reduction="sum"``, a NumPy penalty the port's own ``loss`` (``loss="model"``).
"""
import torch
import torch.nn.functional as F
from torch import nn

BUGS = ("transpose", "missing_n", "sign", "softmax_axis", "double_softmax", "double_sigmoid",
        "inverted_dropout", "bn_eps", "bn_momentum", "weight_decay", "numpy_gradient")


class BookDropout(nn.Module):
    """The book's dropout: training ``x * (rand > p)``, unscaled; eval ``x * (1 - p)``."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.training:
            return x * (torch.rand(x.shape, dtype=x.dtype, device=x.device) > self.p)
        return x * (1.0 - self.p)


def _indices(t):
    return t.argmax(dim=1) if t.dim() == 2 else t.long()


class PortLoss:
    """``fn(output, t)``: the spec's loss on the port's output, the batch's ``t`` as it is."""

    def __init__(self, spec, sign=1.0, reduction=None):
        self.spec, self.sign = spec, sign
        self.reduction = reduction or spec.reduction

    def __call__(self, out, t):
        spec, red = self.spec, self.reduction
        if spec.loss == "softmax_ce":
            if spec.port_head == "logprobs":
                value = F.nll_loss(out, _indices(t), reduction=red)
            elif t.dim() == 2:
                value = F.cross_entropy(out, t.to(out.dtype), reduction=red)
            else:
                value = F.cross_entropy(out, t.long(), reduction=red)
        elif spec.loss == "bce":
            t = t.reshape(out.shape).to(out.dtype)
            fn = F.binary_cross_entropy if spec.port_head == "probs" else F.binary_cross_entropy_with_logits
            value = fn(out, t, reduction=red)
        else:
            value = F.mse_loss(out, t.reshape(out.shape).to(out.dtype), reduction=red)
        return self.sign * value

    def __repr__(self):
        return f"PortLoss({self.spec.loss}, {self.reduction}, sign={self.sign:+g})"


NAMED = {("softmax_ce", "scores"): "cross_entropy", ("softmax_ce", "logprobs"): "nll_loss",
         ("bce", "scores"): "binary_cross_entropy_with_logits", ("bce", "probs"): "binary_cross_entropy",
         ("mse", "scores"): "mse_loss"}


class Port(nn.Module):
    def __init__(self, spec, bug=None):
        super().__init__()
        self.spec, self.bug = spec, bug
        self.fc1 = nn.Linear(spec.D, spec.H)
        if spec.bn:
            eps, momentum = spec.bn_eps, 0.1  # torch's momentum weighs the batch: 1 - 0.9
            if bug == "bn_eps":
                eps = 1e-5 if spec.bn_eps != 1e-5 and spec.dtype == "float64" else 1e-3
            if bug == "bn_momentum":
                momentum = 0.9
            self.bn1 = nn.BatchNorm1d(spec.H, eps=eps, momentum=momentum)
        self.relu1 = nn.ReLU()
        if spec.dropout:
            inverted = spec.inverted or bug == "inverted_dropout"
            self.dropout1 = nn.Dropout(spec.p) if inverted else BookDropout(spec.p)
        self.fc2 = nn.Linear(spec.H, spec.C)
        self.to(getattr(torch, spec.dtype))

    def forward(self, x):
        if self.bug == "transpose":  # the NumPy (in, out) habit on torch's (out, in) weight
            h = F.linear(x, self.fc1.weight.T, self.fc1.bias)
        else:
            h = self.fc1(x)
        if self.spec.bn:
            h = self.bn1(h)
        h = self.relu1(h)
        if self.spec.dropout:
            h = self.dropout1(h)
        z = self.fc2(h)
        if self.bug == "double_softmax":
            return F.softmax(z, dim=1)
        if self.bug == "double_sigmoid":
            return torch.sigmoid(z)
        if self.spec.port_head == "logprobs":
            return F.log_softmax(z, dim=0 if self.bug == "softmax_axis" else 1)
        if self.spec.port_head == "probs":
            return torch.sigmoid(z)
        return z

    def loss(self, x, t):
        """The NumPy loss's penalty in the port's own loss (checked with ``loss="model"``)."""
        value = PortLoss(self.spec)(self(x), t)
        if self.bug != "weight_decay":
            value = value + 0.5 * self.spec.reg * (self.fc1.weight.pow(2).sum() + self.fc2.weight.pow(2).sum())
        return value


def loss_option(spec, bug=None):
    """What the user passes as ``loss=``: a name where torch's default reduction is the
    NumPy one, else a function; ``"model"`` where the port's own loss carries a penalty."""
    if spec.reg and bug != "weight_decay":
        return "model"
    if bug == "sign":
        return PortLoss(spec, sign=-1.0)
    if bug == "missing_n":
        return PortLoss(spec, reduction="sum")
    if spec.reduction == "mean":
        return NAMED[(spec.loss, spec.port_head)]
    return PortLoss(spec)


def make_port(spec, bug=None):
    return Port(spec, bug)
