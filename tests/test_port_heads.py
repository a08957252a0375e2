"""Output heads: a NumPy ``predict`` and a port that stop at different heads (scores,
softmax or sigmoid probabilities, log-probabilities) are compared at the later one and
said so; the loss judged is the one training computes from the port's own output, so a
port ending in softmax (or sigmoid) fed to a loss that applies it again fails, named
``double_softmax``; a one-output port on 0/1 targets without ``--loss`` is checked with
the binary loss that gives the NumPy loss, or refused in one line.

The NumPy models are written here the way newcomers write them: a ``params`` dict,
``predict``, and a loss from its formula (no backprop: the torch gradients are checked
against central differences of that loss). The ports are plain ``nn.Sequential`` nets.
"""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compare import check_port, cli

ROOT = Path(__file__).resolve().parents[1]
HERE = "tests/test_port_heads.py"


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


class TanhMLP:
    """Linear, tanh, Linear; ``predict`` gives the scores, or a head of them."""

    def __init__(self, d=6, h=12, k=4, head="scores", seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W1": 0.5 * rng.randn(d, h), "b1": 0.1 * rng.randn(h),
                       "W2": 0.5 * rng.randn(h, k), "b2": 0.1 * rng.randn(k)}
        self.head = head

    def scores(self, x):
        p = self.params
        return np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def predict(self, x):
        z = self.scores(x)
        return {"scores": z, "softmax": np.exp(_log_softmax(z)), "log_softmax": _log_softmax(z),
                "sigmoid": _sigmoid(z)}[self.head]

    def loss(self, x, t):  # the softmax cross-entropy, mean over the batch
        return -np.mean(_log_softmax(self.scores(x))[np.arange(len(x)), t])


class LogisticRegression:
    """``predict`` is ``sigmoid(x @ w + b)``; the loss the binary cross-entropy of it."""

    def __init__(self, d=5, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"w": 0.5 * rng.randn(d, 1), "b": 0.3 * rng.randn(1)}

    def logits(self, x):
        return x @ self.params["w"] + self.params["b"]

    def predict(self, x):
        return _sigmoid(self.logits(x))

    def loss(self, x, t):
        y = _sigmoid(self.logits(x))[:, 0]
        return -np.mean(t * np.log(y) + (1 - t) * np.log(1 - y))


class LogitRegression(LogisticRegression):
    """The same model whose ``predict`` gives the logits."""

    def predict(self, x):
        return self.logits(x)


class SquaredLogistic(LogisticRegression):
    """Sigmoid output trained with the squared error: no cross-entropy at all."""

    def loss(self, x, t):
        y = _sigmoid(self.logits(x))[:, 0]
        return np.mean((y - t) ** 2) + 0.5 * np.sum(self.params["w"] ** 2)


def mlp_port(d=6, h=12, k=4, head=None):
    layers = [nn.Linear(d, h), nn.Tanh(), nn.Linear(h, k)]
    return nn.Sequential(*layers, *([head] if head is not None else []))


def batch(n=30, d=6, k=4, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d), rng.randint(0, k, n)


def binary_batch(n=40, d=5, seed=2):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d), (rng.rand(n) < 0.5).astype(np.float64)


def codes(report):
    return [d["code"] for d in report.diagnosis]


def loaded(port, net, transposed=("W1", "W2")):
    """The port holding the NumPy model's values, as the check loads them."""
    port = port.double()
    linears = [m for m in port if isinstance(m, nn.Linear)]
    names = [("W1", "b1"), ("W2", "b2")] if "W1" in net.params else [("w", "b")]
    with torch.no_grad():
        for m, (w, b) in zip(linears, names):
            m.weight.copy_(torch.from_numpy(net.params[w].T.copy()))
            m.bias.copy_(torch.from_numpy(net.params[b].reshape(-1).copy()))
    return port


# --- right ports at other heads pass, each conversion said -------------------------------

@pytest.mark.parametrize("np_head, port_head, loss, said", [
    ("softmax", None, "cross_entropy", "compared with softmax of the port's output"),
    ("log_softmax", None, "cross_entropy", "compared with log_softmax of the port's output"),
    ("scores", nn.LogSoftmax(dim=1), "nll_loss", "compared with log_softmax of the NumPy output"),
    ("softmax", nn.LogSoftmax(dim=1), "nll_loss", "compared with exp of the port's output"),
    ("log_softmax", nn.LogSoftmax(dim=1), "nll_loss", None),
])
def test_right_ports_at_other_heads_pass(np_head, port_head, loss, said):
    x, t = batch()
    report = check_port(TanhMLP(head=np_head), mlp_port(head=port_head), x, t, loss=loss)
    assert report.passed, report.to_text()
    (row,) = [c for c in report.checks if c.where == "predict"]
    assert (row.note is None) if said is None else (said in row.note)


def test_sigmoid_probabilities_against_a_logit_port_with_bce_with_logits():
    """The logistic regression's predict is sigmoid(x @ w + b); the port nn.Linear(5, 1)."""
    x, t = binary_batch()
    report = check_port(LogisticRegression(), nn.Linear(5, 1), x, t,
                        loss="binary_cross_entropy_with_logits")
    assert report.passed, report.to_text()
    (row,) = [c for c in report.checks if c.where == "predict"]
    assert "compared with sigmoid of the port's output" in row.note
    assert row.max_abs < 1e-12


class SmallLogits(LogisticRegression):
    """Logits that all lie in [0, 1] on the batch: by their values alone they read as
    sigmoid probabilities."""

    def __init__(self, d=5, seed=0):
        super().__init__(d, seed)
        self.params["w"] *= 0.05
        self.params["b"][:] = 0.5


class SmallLogitsPredicted(SmallLogits):
    def predict(self, x):
        return self.logits(x)


@pytest.mark.parametrize("net, port, loss", [
    (SmallLogits, lambda: nn.Linear(5, 1), "binary_cross_entropy_with_logits"),
    (SmallLogitsPredicted, lambda: nn.Sequential(nn.Linear(5, 1), nn.Sigmoid()), "binary_cross_entropy"),
])
def test_logits_within_zero_and_one_are_still_scores_to_the_other_head(net, port, loss):
    x, t = binary_batch()
    model = net()
    logits = model.logits(x)
    assert logits.min() >= 0 and logits.max() <= 1  # the case itself: they read as probabilities
    report = check_port(model, port(), x, t, loss=loss)
    assert report.passed, report.to_text()
    (row,) = [c for c in report.checks if c.where == "predict"]
    assert "compared with sigmoid of the" in row.note and row.max_abs < 1e-12


def test_logits_against_a_sigmoid_port_with_bce():
    x, t = binary_batch()
    report = check_port(LogitRegression(), nn.Sequential(nn.Linear(5, 1), nn.Sigmoid()), x, t,
                        loss="binary_cross_entropy")
    assert report.passed, report.to_text()
    (row,) = [c for c in report.checks if c.where == "predict"]
    assert "compared with sigmoid of the NumPy output" in row.note


def test_log_softmax_output_with_cross_entropy_is_no_double_softmax():
    """log_softmax(log_softmax(z)) = log_softmax(z): cross_entropy of a LogSoftmax output
    is the cross-entropy of the scores, loss and gradients; the check passes it and says why."""
    x, t = batch()
    net, port = TanhMLP(), mlp_port(head=nn.LogSoftmax(dim=1))
    ready = loaded(mlp_port(head=nn.LogSoftmax(dim=1)), net)
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    assert F.cross_entropy(ready(tx), tt).item() == pytest.approx(net.loss(x, t), rel=1e-12)
    report = check_port(net, port, x, t)
    assert report.passed, report.to_text()
    assert any("no double softmax" in n for n in report.notes)


# --- the double softmax fails, at the loss, named ------------------------------------------

def test_a_softmax_port_fed_to_cross_entropy_fails_as_a_double_softmax():
    x, t = batch()
    net = TanhMLP()
    report = check_port(net, mlp_port(head=nn.Softmax(dim=1)), x, t)
    assert not report.passed
    assert report.first_mismatch["phase"] == "loss"
    assert codes(report)[0] == "double_softmax"
    assert "drop the final softmax" in report.diagnosis[0]["text"]
    # the loss judged is the one training computes: F.cross_entropy(port(x), t)
    ready = loaded(mlp_port(head=nn.Softmax(dim=1)), net)
    trained = F.cross_entropy(ready(torch.from_numpy(x)), torch.from_numpy(t)).item()
    (loss_row,) = [c for c in report.checks if c.phase == "loss"]
    assert loss_row.worst_actual == pytest.approx(trained, rel=1e-12)
    assert loss_row.worst_expected == pytest.approx(net.loss(x, t), rel=1e-12)
    assert abs(trained - net.loss(x, t)) > 1e-3
    # the outputs themselves agree once the NumPy scores go through softmax
    assert next(c for c in report.checks if c.where == "predict").passed
    as_json = json.loads(json.dumps(report.to_dict()))
    assert as_json["first_mismatch"]["phase"] == "loss"
    assert as_json["diagnosis"][0]["code"] == "double_softmax"


def test_a_softmax_port_against_a_softmax_predict_is_a_double_softmax_too():
    x, t = batch()
    report = check_port(TanhMLP(head="softmax"), mlp_port(head=nn.Softmax(dim=1)), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["double_softmax"]


def test_a_sigmoid_port_fed_to_bce_with_logits_fails_as_a_double_sigmoid():
    x, t = binary_batch()
    net = LogisticRegression()
    port = nn.Sequential(nn.Linear(5, 1), nn.Sigmoid())
    report = check_port(net, port, x, t, loss="binary_cross_entropy_with_logits")
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report)[0] == "double_softmax"
    assert "drop the final sigmoid" in report.diagnosis[0]["text"]
    ready = loaded(nn.Sequential(nn.Linear(5, 1), nn.Sigmoid()), net)
    out = ready(torch.from_numpy(x))
    trained = F.binary_cross_entropy_with_logits(out, torch.from_numpy(t).reshape(-1, 1)).item()
    (loss_row,) = [c for c in report.checks if c.phase == "loss"]
    assert loss_row.worst_actual == pytest.approx(trained, rel=1e-12)


@pytest.mark.parametrize("net, port, loss, batch_of", [
    (TanhMLP, lambda: mlp_port(head=nn.Softmax(dim=1)), None, batch),
    (LogisticRegression, lambda: nn.Sequential(nn.Linear(5, 1), nn.Sigmoid()),
     "binary_cross_entropy_with_logits", binary_batch),
])
def test_the_double_softmax_is_named_in_float32_too(net, port, loss, batch_of):
    report = check_port(net(), port(), *batch_of(), loss=loss, dtype="float32")
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["double_softmax"]


def test_a_softmax_port_against_another_loss_is_not_called_a_double_softmax():
    """NumPy's loss is no cross-entropy (squared error and a penalty): the softmax port
    fails, and the extra softmax, which would not give the NumPy loss, is not named."""
    x, t = binary_batch()
    port = nn.Sequential(nn.Linear(5, 1), nn.Sigmoid())
    report = check_port(SquaredLogistic(), port, x, t, loss="binary_cross_entropy_with_logits")
    assert not report.passed
    assert "double_softmax" not in codes(report)


# --- a one-output port on 0/1 targets, no --loss -----------------------------------------

def test_no_loss_given_picks_the_binary_loss_that_gives_the_numpy_loss():
    x, t = binary_batch()
    report = check_port(LogisticRegression(), nn.Linear(5, 1), x, t)
    assert report.passed, report.to_text()
    assert report.settings["loss"] == "binary_cross_entropy_with_logits"
    assert any("no --loss given" in n for n in report.notes)
    report = check_port(LogitRegression(), nn.Sequential(nn.Linear(5, 1), nn.Sigmoid()), x, t)
    assert report.passed and report.settings["loss"] == "binary_cross_entropy"


def make_logistic():
    return LogisticRegression()


def make_squared():
    return SquaredLogistic()


def make_linear():
    torch.manual_seed(0)
    return nn.Linear(5, 1)


def make_softmax_port():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(dim=1))


class ThreeWay(TanhMLP):
    def __init__(self):
        super().__init__(d=5, h=8, k=3)


def test_the_command_line_exit_codes(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    x, t = binary_batch()
    data = tmp_path / "binary.npz"
    np.savez(data, x=x, t=t)

    def port(numpy, torch_port, *argv):
        code = cli.main(["port", f"{HERE}:{numpy}", f"{HERE}:{torch_port}", "--data", str(data),
                         "--batch", "40", "--no-progress", *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, err = port("make_logistic", "make_linear")
    assert code == 0, out + err
    assert "binary_cross_entropy_with_logits" in out
    code, out, err = port("make_squared", "make_linear")  # no binary loss gives the NumPy one
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "--loss binary_cross_entropy_with_logits" in err
    code, out, err = port("make_logistic", "make_linear", "--loss", "cross_entropy")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "one output" in err
    rng = np.random.RandomState(3)
    np.savez(data, x=rng.randn(40, 5), t=rng.randint(0, 3, 40))
    code, out, err = port("ThreeWay", "make_softmax_port", "--json", str(tmp_path / "r.json"))
    assert code == 1, out + err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["first_mismatch"]["phase"] == "loss"
    assert report["diagnosis"][0]["code"] == "double_softmax"


# --- a predict that gives class labels ---------------------------------------------------------

def test_a_numpy_predict_giving_labels_is_compared_with_the_ports_argmax():
    from styles import layerless as L

    class Labels(L.TanhNet):
        def predict(self, x):
            return np.argmax(L.TanhNet.predict(self, x), axis=1)

        def loss(self, x, t):
            return L._cross_entropy(L.TanhNet.predict(self, x), t)
    x, t = L.batch()
    report = check_port(Labels(), L.TanhPort(), x, t)
    assert report.passed, report.to_text()
    row = next(c for c in report.checks if c.where == "predict")
    assert "class labels" in row.note
    wrong = check_port(Labels(), L.TanhPort("relu"), x, t)
    assert not wrong.passed


def test_labels_whose_two_best_scores_tie_within_round_off_are_either_sides_to_break():
    from compare.port.heads import argmax_with_ties
    from compare.port.tolerance import port_tolerance
    scores = np.array([[1.0, 1.0 + 1e-14, 0.0], [0.0, 2.0, 1.0], [3.0, 2.9, 0.0]])
    labels, ties = argmax_with_ties(scores, port_tolerance(scores, "float64"))
    assert labels.tolist() == [1, 1, 0] and ties.tolist() == [True, False, False]


@pytest.mark.parametrize("predicts", ["labels", "nothing"])
def test_a_double_softmax_is_named_whatever_the_numpy_predict_gives(predicts):
    from styles import layerless as L

    class Net(L.TanhNet):
        gradient = None

        def loss(self, x, t):
            return L._cross_entropy(L.TanhNet.predict(self, x), t)
    if predicts == "labels":
        Net.predict = lambda self, x: np.argmax(L.TanhNet.predict(self, x), axis=1)
    else:
        Net.predict = None

    class SoftmaxOut(L.TanhPort):
        def forward(self, x):
            return torch.softmax(super().forward(x), dim=1)  # cross_entropy applies it again
    x, t = L.batch()
    report = check_port(Net(), SoftmaxOut(), x, t)
    assert not report.passed
    assert [d["code"] for d in report.diagnosis] == ["double_softmax"]
    assert check_port(Net(), L.TanhPort(), x, t).passed
