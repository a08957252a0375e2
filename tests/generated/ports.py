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
        "inverted_dropout", "bn_eps", "bn_momentum", "weight_decay", "numpy_gradient",
        "activation_slope", "activation_function", "skip_forgotten", "skip_added", "ln_eps",
        "transpose_square")

TORCH_LN_EPS = 1e-5


def _port_activation(spec, bug):
    """``(function name, setting)`` the port computes: the spec's, or the bug's."""
    act, a = spec.act, spec.act_param
    if bug == "activation_slope":  # the slope or alpha left at torch's default
        a = {"leaky_relu": 0.01, "elu": 1.0}[act]
    if bug == "activation_function":
        act = {"tanh": "relu", "gelu_tanh": "gelu"}[act]
    return act, a


def activation_module(act, a):
    return {"relu": lambda: nn.ReLU(), "tanh": lambda: nn.Tanh(), "sigmoid": lambda: nn.Sigmoid(),
            "leaky_relu": lambda: nn.LeakyReLU() if a == 0.01 else nn.LeakyReLU(a),
            "elu": lambda: nn.ELU() if a == 1.0 else nn.ELU(alpha=a),
            "gelu": lambda: nn.GELU(), "gelu_tanh": lambda: nn.GELU(approximate="tanh")}[act]()


def activation_call(act, a, x):
    if act == "relu":
        return F.relu(x)
    if act == "tanh":
        return torch.tanh(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "leaky_relu":
        return F.leaky_relu(x) if a == 0.01 else F.leaky_relu(x, a)
    if act == "elu":
        return F.elu(x) if a == 1.0 else F.elu(x, a)
    if act == "gelu":
        return F.gelu(x)
    return F.gelu(x, approximate="tanh")


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
        if spec.ln:
            eps = TORCH_LN_EPS if bug == "ln_eps" else spec.ln_eps
            if spec.port_call == "module":
                self.ln1 = nn.LayerNorm(spec.H) if eps == TORCH_LN_EPS else nn.LayerNorm(spec.H, eps=eps)
            else:
                self.gamma1 = nn.Parameter(torch.ones(spec.H))
                self.beta1 = nn.Parameter(torch.zeros(spec.H))
            self.ln_eps = eps
        self.act = _port_activation(spec, bug)
        if spec.port_call == "module":
            self.act1 = activation_module(*self.act)
        if spec.res:
            self.res = nn.Linear(spec.H, spec.H)
            if spec.port_call == "module":
                self.act_res = activation_module(*self.act)
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
        if self.spec.ln:
            if self.spec.port_call == "module":
                h = self.ln1(h)
            elif self.ln_eps == TORCH_LN_EPS:
                h = F.layer_norm(h, (self.spec.H,), self.gamma1, self.beta1)
            else:
                h = F.layer_norm(h, (self.spec.H,), self.gamma1, self.beta1, eps=self.ln_eps)
        h = self._activation(h, "act1")
        if self.spec.dropout:
            h = self.dropout1(h)
        if self.spec.res:
            h = self._residual(h)
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

    def _activation(self, h, name):
        if self.spec.port_call == "module":
            return getattr(self, name)(h)
        return activation_call(*self.act, h)

    def _residual(self, h):
        if self.bug == "transpose_square":  # W_res as NumPy holds it, on torch's (out, in) weight
            q = F.linear(h, self.res.weight.T, self.res.bias)
        else:
            q = self.res(h)
        r = self._activation(q, "act_res")
        skip = self.spec.res == "skip"
        if self.bug in ("skip_forgotten", "skip_added"):
            skip = not skip
        return h + r if skip else r

    def loss(self, x, t):
        """The NumPy loss's penalty in the port's own loss (checked with ``loss="model"``)."""
        value = PortLoss(self.spec)(self(x), t)
        if self.bug != "weight_decay":
            weights = [self.fc1.weight, self.fc2.weight]
            value = value + 0.5 * self.spec.reg * sum(w.pow(2).sum() for w in weights)
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
