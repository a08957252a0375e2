"""A cause is named only where its hypothesis, applied, reproduces what was seen (issue 20):
the softmax over the wrong axis at the output, and the double softmax (or sigmoid) wherever
the port's loss is, composed with what is known to part two right sides (weight decay in the
NumPy loss, an eps in its log, the loss's reduction).

The NumPy models are written here as learners write them without layers: a ``params`` dict,
one forward of local variables, its backward written out; a penalty ``0.5 * reg * sum W**2``
in the loss (the nnfs and cs231n habit), an eps in the log (the course's), a sum where the
book takes the mean. The ports are small ``nn.Module`` nets with the usual slips.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compare import check_port


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


class PlainNet:
    """``x @ W1 + b1``, ReLU, ``@ W2 + b2``; a softmax cross-entropy (or, with one output, a
    binary one) taken from the probabilities, with ``eps`` in the log, ``reg`` as a penalty,
    a ``sum`` or a mean; ``predict`` gives the scores or the probabilities."""

    def __init__(self, d=4, h=7, k=3, reg=0.0, eps=None, reduction="mean", head="scores", seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W1": 0.6 * rng.randn(d, h), "b1": 0.1 * rng.randn(h),
                       "W2": 0.6 * rng.randn(h, k), "b2": 0.1 * rng.randn(k)}
        self.reg, self.eps, self.reduction, self.head = reg, eps, reduction, head

    def _forward(self, x):
        p = self.params
        a = x @ p["W1"] + p["b1"]
        h = np.maximum(a, 0)
        return a, h, h @ p["W2"] + p["b2"]

    def _probs(self, z):
        return _sigmoid(z) if z.shape[1] == 1 else _softmax(z)

    def predict(self, x):
        z = self._forward(x)[2]
        return z if self.head == "scores" else self._probs(z)

    def _targets(self, t, z):
        return t.reshape(z.shape).astype(float) if z.shape[1] == 1 else np.eye(z.shape[1])[t]

    def _div(self, z):
        return 1 if self.reduction == "sum" else (z.size if z.shape[1] == 1 else z.shape[0])

    def loss(self, x, t):
        z = self._forward(x)[2]
        p, T = self._probs(z), self._targets(t, z)
        eps = self.eps or 0.0
        if z.shape[1] == 1:
            value = -np.sum(T * np.log(p + eps) + (1 - T) * np.log(1 - p + eps))
        else:
            value = -np.sum(T * np.log(p + eps))
        penalty = 0.5 * self.reg * (np.sum(self.params["W1"] ** 2) + np.sum(self.params["W2"] ** 2))
        return value / self._div(z) + penalty

    def gradient(self, x, t):
        p = self.params
        a, h, z = self._forward(x)
        dz = (self._probs(z) - self._targets(t, z)) / self._div(z)  # the eps left out, as usual
        dh = dz @ p["W2"].T * (a > 0)
        return {"W1": x.T @ dh + self.reg * p["W1"], "b1": dh.sum(axis=0),
                "W2": h.T @ dz + self.reg * p["W2"], "b2": dz.sum(axis=0)}


class Port(nn.Module):
    """The same net; ``head`` appended to the output, ``inner`` applied inside ``loss``;
    ``loss`` adds the same penalty (checked with ``loss="model"``)."""

    def __init__(self, d=4, h=7, k=3, reg=0.0, head=None, inner=None, reduction="mean"):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, k)
        self.head, self.inner, self.reg, self.reduction = head, inner, reg, reduction
        self.double()

    def forward(self, x):
        z = self.fc2(F.relu(self.fc1(x)))
        if self.head == "softmax":
            return F.softmax(z, dim=1)
        if self.head == "sigmoid":
            return torch.sigmoid(z)
        if self.head == "log_softmax_batch":  # the slip: the batch axis for the classes'
            return F.log_softmax(z, dim=0)
        if self.head == "log_softmax":
            return F.log_softmax(z, dim=1)
        if self.head == "log_softmax_hot":  # another slip: twice the scores
            return F.log_softmax(2 * z, dim=1)
        return z

    def loss(self, x, t):
        out = self(x)
        if self.inner == "softmax":
            out = F.softmax(out, dim=1)
        if out.shape[1] == 1:
            value = F.binary_cross_entropy_with_logits(out, t.reshape(out.shape).to(out.dtype),
                                                       reduction=self.reduction)
        else:
            value = F.cross_entropy(out, t.long(), reduction=self.reduction)
        return value + 0.5 * self.reg * (self.fc1.weight.pow(2).sum() + self.fc2.weight.pow(2).sum())


def batch(n=24, d=4, k=3, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d), rng.randint(0, 2 if k == 1 else k, n)


def codes(report):
    return [d["code"] for d in report.diagnosis]


def sum_ce(out, t):
    return F.cross_entropy(out, t.long(), reduction="sum")


def nll_without_log(out, t):  # the probabilities fed to nll_loss: the log forgotten
    return F.nll_loss(out, t.long())


# --- the softmax over the batch axis ---------------------------------------------------------

@pytest.mark.parametrize("np_head", ["scores", "probs"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_log_softmax_over_the_batch_is_named_axis_at_the_output(np_head, dtype):
    x, t = batch()
    report = check_port(PlainNet(head=np_head), Port(head="log_softmax_batch"), x, t,
                        loss="nll_loss", dtype=dtype)
    assert not report.passed
    assert report.first_mismatch["phase"] == "forward"
    assert report.first_mismatch["where"] == "predict"
    assert codes(report) == ["axis"]
    d = report.diagnosis[0]
    assert d["expected_axis"] == 1 and d["actual_axis"] == 0 and "dim=1" in d["text"]


def test_the_log_softmax_over_the_classes_passes():
    x, t = batch()
    report = check_port(PlainNet(head="probs"), Port(head="log_softmax"), x, t, loss="nll_loss")
    assert report.passed, report.to_text()


def test_another_slip_at_the_output_is_not_called_axis():
    """A log-softmax over the classes of twice the scores: no axis, applied to the NumPy
    output, gives it, so none is named."""
    x, t = batch()
    for np_head in ("scores", "probs"):
        report = check_port(PlainNet(head=np_head), Port(head="log_softmax_hot"), x, t, loss="nll_loss")
        assert not report.passed and report.first_mismatch["where"] == "predict"
        assert "axis" not in codes(report)


# --- the double softmax, composed with what is known --------------------------------------

DOUBLE = {
    # the port's own loss with the NumPy penalty, the softmax at the output
    "penalty, output": (dict(reg=0.1), dict(reg=0.1, head="softmax"), "model", "output"),
    # the softmax inside the port's loss, before F.cross_entropy (nnfs's Model)
    "penalty, in the loss": (dict(reg=0.1), dict(reg=0.1, inner="softmax"), "model", "loss"),
    # the NumPy loss a sum, the port's F.cross_entropy(..., reduction="sum")
    "sum": (dict(reduction="sum"), dict(head="softmax"), sum_ce, "output"),
    # an eps in the NumPy log (the course's 1e-8)
    "eps": (dict(eps=1e-8), dict(head="softmax"), "cross_entropy", "output"),
    "eps and penalty": (dict(eps=1e-8, reg=0.1), dict(reg=0.1, head="softmax"), "model", "output"),
}


@pytest.mark.parametrize("case, dtype", [(c, "float64") for c in DOUBLE] + [("eps and penalty", "float32")])
def test_a_double_softmax_is_named_with_what_is_known(case, dtype):
    np_kw, port_kw, loss, where = DOUBLE[case]
    x, t = batch()
    report = check_port(PlainNet(**np_kw), Port(**port_kw), x, t, loss=loss, dtype=dtype)
    assert not report.passed
    assert report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["double_softmax"], report.to_text()
    assert report.diagnosis[0]["where"] == where
    # the fix the hypothesis applies passes: the port without the extra softmax
    port_kw = {k: v for k, v in port_kw.items() if k not in ("head", "inner")}
    fixed = check_port(PlainNet(**np_kw), Port(**port_kw), x, t, loss=loss, dtype=dtype)
    assert fixed.passed, fixed.to_text()


@pytest.mark.parametrize("np_kw, loss", [(dict(reg=0.1, eps=1e-7), "model"), (dict(), None),
                                         (dict(reduction="sum"), "sum")])
def test_a_double_sigmoid_is_named_double_softmax(np_kw, loss):
    x, t = batch(k=1)
    reduction = np_kw.get("reduction", "mean")
    port = Port(k=1, reg=np_kw.get("reg", 0.0), head="sigmoid", reduction=reduction)
    if loss is None:
        loss = "binary_cross_entropy_with_logits"
    elif loss == "sum":
        loss = "model"
    report = check_port(PlainNet(k=1, **np_kw), port, x, t.astype(float), loss=loss)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["double_softmax"], report.to_text()
    assert report.diagnosis[0]["head"] == "sigmoid probabilities"
    assert "drop the final sigmoid" in report.diagnosis[0]["text"]


def test_probabilities_fed_to_nll_loss_are_not_a_double_softmax():
    """The log forgotten, not a softmax too many: the port's loss does not apply the softmax,
    so the hypothesis does not hold and is not named."""
    x, t = batch()
    report = check_port(PlainNet(), Port(head="softmax"), x, t, loss=nll_without_log)
    assert not report.passed
    assert "double_softmax" not in codes(report)


def test_a_sum_against_a_mean_is_a_scale_not_a_double_softmax():
    x, t = batch()
    report = check_port(PlainNet(), Port(), x, t, loss=sum_ce)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert "double_softmax" not in codes(report)
    assert "scale" in codes(report)


def test_a_double_softmax_against_another_penalty_is_not_named():
    """The port's penalty twice the NumPy one as well as the extra softmax: the port without
    the softmax still parts from the NumPy loss, so the double softmax is not the cause."""
    x, t = batch()
    report = check_port(PlainNet(reg=0.1), Port(reg=0.2, inner="softmax"), x, t, loss="model")
    assert not report.passed
    assert "double_softmax" not in codes(report)


# --- a factor, a penalty, an eps: composed where they are found together -------------------

class SigmoidOutputs(PlainNet):
    """A sigmoid on each of k outputs against one-hot labels, the binary cross-entropy summed
    over the outputs and averaged over the examples (the habit of learners who follow
    Nielsen's book)."""

    def _probs(self, z):
        return _sigmoid(z)

    def _div(self, z):
        return 1 if self.reduction == "sum" else z.shape[0]

    def loss(self, x, t):
        z = self._forward(x)[2]
        p, T = _sigmoid(z), np.eye(z.shape[1])[t]
        return -np.sum(T * np.log(p) + (1 - T) * np.log(1 - p)) / self._div(z)


class OutputsPort(Port):
    """Its loss: the binary cross-entropy with logits, meaned over all N*k elements."""

    def loss(self, x, t):
        out = self(x)
        return F.binary_cross_entropy_with_logits(out, F.one_hot(t.long(), out.shape[1]).to(out.dtype))


def test_a_mean_over_n_times_k_is_named_scale_k():
    x, t = batch()
    report = check_port(SigmoidOutputs(), OutputsPort(), x, t, loss="model")
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["scale"], report.to_text()
    assert report.diagnosis[0]["factor"] == pytest.approx(1 / 3, rel=1e-9)
    assert "k = 3" in report.diagnosis[0]["text"]


def binary_sum(out, t):
    return F.binary_cross_entropy(out, t.reshape(out.shape).to(out.dtype), reduction="sum")


def test_a_sum_against_a_mean_with_an_eps_in_both_logs_is_named_scale():
    """The NumPy loss ``-mean(t log(p + 1e-3) + (1 - t) log(1 - p + 1e-3))`` (a blog's MLP),
    its backward without the eps; the port's loss the sum: the factor N, once the eps the
    NumPy loss holds is taken off, and the gradients N times the NumPy ones."""
    x, t = batch(k=1)
    net = PlainNet(k=1, eps=1e-3)
    report = check_port(net, Port(k=1, head="sigmoid"), x, t.astype(float), loss=binary_sum)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["scale"], report.to_text()
    d = report.diagnosis[0]
    assert d["factor"] == pytest.approx(len(x), rel=1e-9) and d["eps"] == pytest.approx(1e-3)
    # an eps no one writes is no eps: nothing is named
    report = check_port(PlainNet(k=1, eps=3.7e-3), Port(k=1, head="sigmoid"), x, t.astype(float),
                        loss=binary_sum)
    assert not report.passed and "scale" not in codes(report)


class TwicePenaltyPort(Port):
    def loss(self, x, t):
        return super().loss(x, t) + 0.5 * self.reg * (self.fc1.weight.pow(2).sum()
                                                       + self.fc2.weight.pow(2).sum())


class BiasPenaltyPort(Port):
    def loss(self, x, t):
        return super().loss(x, t) + 0.5 * self.reg * (self.fc1.bias.pow(2).sum() + self.fc2.bias.pow(2).sum())


def test_a_port_penalty_twice_the_numpy_one_is_named_weight_decay():
    """``reg * sum(W**2)`` in the port for the NumPy ``0.5 * reg * sum(W**2)``: the port's loss
    exceeds by a penalty of lambda = reg, and its weight gradients by reg * W."""
    x, t = batch()
    report = check_port(PlainNet(reg=0.1), TwicePenaltyPort(reg=0.1), x, t, loss="model")
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["weight_decay"], report.to_text()
    d = report.diagnosis[0]
    assert d["lambda"] == pytest.approx(-0.1, rel=1e-6) and d["side"] == "torch"
    # a penalty on the biases as well: no lambda * W gives the gradients, nothing is named
    report = check_port(PlainNet(reg=0.1), BiasPenaltyPort(reg=0.1), x, t, loss="model")
    assert not report.passed and "weight_decay" not in codes(report)


class RowBiasNet(PlainNet):
    """Biases held as (1, H) rows, as cs231n's and nnfs's code holds them."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.params["b1"] = self.params["b1"].reshape(1, -1)
        self.params["b2"] = self.params["b2"].reshape(1, -1)

    def gradient(self, x, t):
        g = super().gradient(x, t)
        return {k: v.reshape(self.params[k].shape) for k, v in g.items()}


def test_weight_decay_is_fitted_on_the_weights_not_on_row_biases():
    x, t = batch()
    report = check_port(RowBiasNet(reg=0.1), Port(), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["weight_decay"], report.to_text()
    assert report.diagnosis[0]["lambda"] == pytest.approx(0.1, rel=1e-6)


# --- causes named on the port's whole pass: no layer rows, dropout drawn inline ---------------

class InlineDropoutNet(PlainNet):
    """``PlainNet`` with inverted dropout drawn inline on the hidden layer in ``loss`` and
    ``gradient`` (``np.random.rand(...) < keep``), none in ``predict``: no layer objects, so
    the training pass has no row but its loss."""

    def __init__(self, keep=0.7, **kw):
        super().__init__(**kw)
        self.keep = keep

    def _train(self, x):
        p = self.params
        a = x @ p["W1"] + p["b1"]
        mask = (np.random.rand(*a.shape) < self.keep) / self.keep
        h = np.maximum(a, 0) * mask
        return a, mask, h, h @ p["W2"] + p["b2"]

    def loss(self, x, t):
        z = self._train(x)[3]
        value = -np.sum(self._targets(t, z) * np.log(_softmax(z) + (self.eps or 0.0)))
        return value / self._div(z)

    def gradient(self, x, t):
        p = self.params
        a, mask, h, z = self._train(x)
        dz = (_softmax(z) - self._targets(t, z)) / self._div(z)
        dh = dz @ p["W2"].T * mask * (a > 0)
        return {"W1": x.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}


class DropoutPort(nn.Module):
    """The same net with ``nn.Dropout``; its output log-probabilities for ``nll_loss``."""

    def __init__(self, d=4, h=4, k=3, p=0.3, slip=None):
        super().__init__()
        self.fc1, self.fc2, self.drop = nn.Linear(d, h), nn.Linear(h, k), nn.Dropout(p)
        self.slip = slip
        self.double()

    def forward(self, x):
        if self.slip == "transpose":  # the NumPy (in, out) habit on torch's (out, in) weight
            a = F.linear(x, self.fc1.weight.T, self.fc1.bias)
        else:
            a = self.fc1(x)
        z = self.fc2(self.drop(F.relu(a)))
        return F.log_softmax(z, dim=0 if self.slip == "axis" else 1)


def sum_nll(out, t):
    return F.nll_loss(out, t.long(), reduction="sum")


@pytest.mark.parametrize("slip,code", [(None, None), ("transpose", "transpose"), ("axis", "axis")])
def test_a_slip_seen_first_at_the_loss_is_named_on_the_whole_pass(slip, code):
    """A square first weight used transposed (located at its layer, seen from inside), a
    log-softmax over the batch (seen first at the loss: the draws replayed on the port), named where the port rerun with the fix gives the
    NumPy loss (its eps of 1e-7 fitted again on the rerun) and gradients."""
    x, t = batch(d=4)
    net = InlineDropoutNet(h=4, eps=1e-7, reduction="sum")
    report = check_port(net, DropoutPort(slip=slip), x, t, loss=sum_nll)
    if slip is None:
        assert report.passed, report.to_text()
        return
    assert not report.passed, report.to_text()
    assert codes(report) == [code], report.to_text()
    if code == "transpose":
        # the forward followed from inside locates it at the array the weight makes
        assert (report.first_mismatch["phase"], report.first_mismatch["where"]) == ("forward", "a")
    else:
        assert report.first_mismatch["phase"] == "loss", report.to_text()


def test_a_scaled_output_at_the_loss_is_neither_transpose_nor_axis():
    class HotPort(DropoutPort):
        def forward(self, x):
            return F.log_softmax(2 * self.fc2(self.drop(F.relu(self.fc1(x)))), dim=1)
    x, t = batch(d=4)
    report = check_port(InlineDropoutNet(h=4, reduction="sum"), HotPort(), x, t, loss=sum_nll)
    assert not report.passed and not {"transpose", "axis"} & set(codes(report)), report.to_text()


# --- a penalty the port lacks beside an eps in the NumPy log --------------------------------

WITH_LOGITS = "binary_cross_entropy_with_logits"


def test_a_missing_penalty_beside_an_eps_is_named_weight_decay_with_the_eps():
    """The NumPy loss holds ``0.5 * 0.1 * sum(W**2)`` and an eps of 1e-7 in both logs, its
    backward ``p - t`` with ``0.1 * W``; the port neither: lambda and the eps are told apart
    by the gradients (the biases' hold no penalty), and named where both reproduce them."""
    x, t = batch(k=1)
    report = check_port(PlainNet(k=1, reg=0.1, eps=1e-7), Port(k=1), x, t.astype(float),
                        loss=WITH_LOGITS)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["weight_decay"], report.to_text()
    d = report.diagnosis[0]
    # with the eps's share of the loss taken off, lambda is the written one to round-off
    assert d["lambda"] == pytest.approx(0.1, rel=1e-9) and d["eps"] == pytest.approx(1e-7)


class BiasPenaltyNet(PlainNet):
    """A NumPy penalty on the biases too: no lambda * W alone gives its gradients."""

    def loss(self, x, t):
        return super().loss(x, t) + 0.5 * self.reg * sum(np.sum(self.params[b] ** 2) for b in ("b1", "b2"))

    def gradient(self, x, t):
        g = super().gradient(x, t)
        return {n: v + (self.reg * self.params[n] if n.startswith("b") else 0.0) for n, v in g.items()}


@pytest.mark.parametrize("net", [PlainNet(k=1, reg=0.1, eps=3.7e-3), BiasPenaltyNet(k=1, reg=0.1, eps=1e-7)],
                         ids=["an eps no one writes", "a penalty on the biases"])
def test_a_missing_penalty_beside_an_eps_is_not_named_where_it_does_not_reproduce(net):
    x, t = batch(k=1)
    report = check_port(net, Port(k=1), x, t.astype(float), loss=WITH_LOGITS)
    assert not report.passed and "weight_decay" not in codes(report), report.to_text()


# an eps inside the log of a loss summed over the batch, beside a penalty, against the port's
# own loss(x, t) without the eps: the reduction is read off the gradient, the eps is named
SUMMED_WITH_EPS = {
    "softmax_ce": dict(style="cs231n", dtype="float64", N=36, D=3, H=4, C=3, seed=377, bias="flat",
                       order=("W2", "gamma1", "beta1", "W1", "b1", "b2"), head="scores",
                       loss="softmax_ce", log_from="probs", eps=1e-8, reduction="sum",
                       labels="index", bn="row", bn_eps=1e-6, reg=0.05, port_head="logprobs"),
    "bce": dict(style="plain", dtype="float64", N=32, D=6, H=6, C=1, seed=421, bias="col",
                order=("b1", "W1", "b2", "W2"), head="probs", loss="bce", log_from="probs",
                eps=1e-7, reduction="sum", reg=0.1, port_head="probs"),
}


def _generated_case(fields, bug=None):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generated.build import build_case
    from generated.spec import Spec
    return build_case(Spec(**fields), bug)


@pytest.mark.parametrize("name", sorted(SUMMED_WITH_EPS))
def test_a_summed_loss_with_an_eps_beside_a_penalty_passes_with_log_eps_named(name):
    case = _generated_case(SUMMED_WITH_EPS[name])
    report = check_port(case.numpy_model, case.port, case.x, case.t, **case.options)
    assert report.passed, str(report)
    assert "known difference [log_eps]" in str(report)


@pytest.mark.parametrize("name", sorted(SUMMED_WITH_EPS))
@pytest.mark.parametrize("bug", ["weight_decay", "numpy_gradient"])
def test_a_wrong_port_of_a_summed_loss_with_an_eps_still_fails(name, bug):
    case = _generated_case(SUMMED_WITH_EPS[name], bug)
    report = check_port(case.numpy_model, case.port, case.x, case.t, **case.options)
    assert not report.passed, str(report)
