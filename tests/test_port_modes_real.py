"""Nets with modes as learners write them, checked in one mode at a time.

* a NumPy net with batch norm and dropout and no layer objects, whose ``predict`` runs in
  evaluation mode unless told otherwise, by a flag named as the book (``train_flg``),
  ML-From-Scratch or nnfs (``training``) or hipsternet (``train``) name it;
* the same behind an adapter whose ``predict(x)`` takes no flag and runs evaluation;
* a features-first net (the course's layout) whose ``predict(X, training=False)`` takes one;
* the book's batch-norm net against a port whose own ``loss(x, t)`` calls ``self(x)``,
  checked with ``loss="model"``: its running statistics after one training pass.

Right ports pass; a port left in the wrong mode, or with torch's momentum where the book's
is meant, fails with its code.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo_layers as zoo
from compare import check_port

D, H, C, N = 6, 8, 3, 24
P_DROP = 0.3
EPS = 1e-5


def batch(n=N, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D))
    t = np.eye(C)[rng.integers(0, C, n)]
    return x, t


def softmax_ce(scores, t):
    z = scores - scores.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-(t * log_p).sum() / scores.shape[0])


# --- a NumPy net without layer objects ----------------------------------------------------------

class FlaggedNet:
    """affine - batch norm - relu - inverted dropout - affine, in one function; the running
    statistics kept as attributes (0.9 of the old value, as the book and cs231n do)."""

    def __init__(self, bn=True, dropout=True, seed=0, bias1=True):
        rng = np.random.default_rng(seed)
        self.bn, self.dropout = bn, dropout
        self.params = {"W1": rng.normal(0, 0.5, (D, H))}
        if bias1:
            self.params["b1"] = rng.normal(0, 0.1, H)
        if bn:
            self.params["gamma"] = 1 + rng.normal(0, 0.1, H)
            self.params["beta"] = rng.normal(0, 0.1, H)
        self.params["W2"] = rng.normal(0, 0.5, (H, C))
        self.params["b2"] = rng.normal(0, 0.1, C)
        self.running_mean, self.running_var = np.zeros(H), np.ones(H)

    def forward(self, x, train):
        p = self.params
        h = x @ p["W1"] + p.get("b1", 0)
        if self.bn:
            if train:
                mu, var = h.mean(axis=0), h.var(axis=0)
                self.running_mean = 0.9 * self.running_mean + 0.1 * mu
                self.running_var = 0.9 * self.running_var + 0.1 * var
            else:
                mu, var = self.running_mean, self.running_var
            h = p["gamma"] * (h - mu) / np.sqrt(var + EPS) + p["beta"]
        h = np.maximum(h, 0)
        if self.dropout and train:
            keep = 1 - P_DROP
            h = h * (np.random.rand(*h.shape) < keep) / keep
        return h @ p["W2"] + p["b2"]


class BookFlag(FlaggedNet):
    def predict(self, x, train_flg=False):
        return self.forward(x, train_flg)

    def loss(self, x, t, train_flg=False):
        return softmax_ce(self.forward(x, train_flg), t)


class TrainingFlag(FlaggedNet):
    def predict(self, x, training=False):
        return self.forward(x, training)

    def loss(self, x, t, training=True):
        return softmax_ce(self.forward(x, training), t)


class TrainFlag(FlaggedNet):
    def predict(self, x, train=False):
        return self.forward(x, train)

    def loss(self, x, t):
        return softmax_ce(self.forward(x, True), t)


class EvalAdapter:
    """An adapter that hides the flag: its ``predict(x)`` is evaluation's, its loss training's."""

    def __init__(self, net):
        self.net, self.params = net, net.params

    def predict(self, x):
        return self.net.forward(x, False)

    def loss(self, x, t):
        return softmax_ce(self.net.forward(x, True), t)


class Port(nn.Module):
    """The port: ``dropout`` says how its dropout runs (``"module"``: ``nn.Dropout``, in the
    module's mode; ``"always"`` / ``"never"``: a ``training=`` flag fixed in ``forward``)."""

    def __init__(self, bn=True, dropout="module", momentum=0.1, bias1=True):
        super().__init__()
        self.fc1 = nn.Linear(D, H, bias=bias1)
        self.bn = nn.BatchNorm1d(H, eps=EPS, momentum=momentum) if bn else None
        self.drop, self.mode = nn.Dropout(P_DROP), dropout
        self.fc2 = nn.Linear(H, C)

    def forward(self, x):
        h = self.fc1(x)
        if self.bn is not None:
            h = self.bn(h)
        h = torch.relu(h)
        if self.mode == "module":
            h = self.drop(h)
        elif self.mode is not None:
            h = F.dropout(h, P_DROP, training=self.mode == "always")
        return self.fc2(h)


FLAGS = [BookFlag, TrainingFlag, TrainFlag]


@pytest.mark.parametrize("net", FLAGS, ids=lambda c: c.__name__)
def test_flagged_net_with_batch_norm_and_dropout_passes(net):
    report = check_port(net(), Port(), *batch())
    assert report.passed, report.to_text()
    # the training-mode predict against the port's training pass, on the same draws
    predict = next(c for c in report.checks if c.where == "predict")
    assert predict.passed and predict.unjudged is None
    # the NumPy running statistics cannot be copied into the port: said, not failed
    assert any("evaluation mode not judged" in n for n in report.notes)


@pytest.mark.parametrize("net", FLAGS, ids=lambda c: c.__name__)
def test_flagged_net_with_dropout_passes_in_both_modes(net):
    report = check_port(net(bn=False), Port(bn=False), *batch())
    assert report.passed, report.to_text()
    assert [c.where for c in report.checks if c.where.startswith("predict")] == ["predict", "predict [eval]"]


@pytest.mark.parametrize("net", FLAGS, ids=lambda c: c.__name__)
def test_port_dropping_in_eval_fails_as_mode(net):
    report = check_port(net(bn=False), Port(bn=False, dropout="always"), *batch())
    assert not report.passed
    assert report.first_mismatch["where"] == "predict [eval]"
    assert [d["code"] for d in report.diagnosis] == ["mode"]


@pytest.mark.parametrize("net", FLAGS, ids=lambda c: c.__name__)
def test_port_never_dropping_fails_as_mode(net):
    report = check_port(net(bn=False), Port(bn=False, dropout="never"), *batch())
    assert not report.passed
    # located at the NumPy dropout's output, seen from inside the forward function
    assert report.first_mismatch["where"].startswith("h (line ")
    assert "np.random.rand(*h.shape) < keep" in report.first_mismatch["detail"]
    assert [d["code"] for d in report.diagnosis] == ["mode"]


@pytest.mark.slow
def test_port_without_dropout_in_training_fails_with_batch_norm():
    report = check_port(TrainingFlag(), Port(dropout="never"), *batch())
    assert not report.passed and report.first_mismatch["phase"] == "forward"


@pytest.mark.parametrize("bn", [True, False], ids=["bn+dropout", "dropout"])
def test_flagless_eval_predict_is_compared_with_eval(bn):
    report = check_port(EvalAdapter(TrainFlag(bn=bn)), Port(bn=bn), *batch())
    assert report.passed, report.to_text()
    wheres = [c.where for c in report.checks]
    assert "predict" not in wheres  # never against the port's training pass
    assert ("predict [eval]" in wheres) is not bn  # judged where no running statistic hides it


def test_flagless_eval_predict_against_a_port_dropping_in_eval_fails():
    # the port computes one thing in both modes: its one row, against what predict gives
    report = check_port(EvalAdapter(TrainFlag(bn=False)), Port(bn=False, dropout="always"), *batch())
    assert not report.passed and report.first_mismatch["where"] == "predict"


def test_flagless_predict_of_a_net_without_modes_keeps_its_row():
    report = check_port(EvalAdapter(TrainFlag(bn=False, dropout=False)), Port(bn=False, dropout=None),
                        *batch())
    assert report.passed, report.to_text()
    assert "predict" in [c.where for c in report.checks]


# --- features first, predict(X, training=False) --------------------------------------------------

class FeaturesFirst:
    """The course's layout grown into a class: ``W`` ``(out, in)``, ``b`` ``(out, 1)``, ``X``
    ``(features, m)``; dropout drawn inline, ``predict`` and ``loss`` taking ``training``."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"W1": rng.normal(0, 0.5, (H, D)), "b1": rng.normal(0, 0.1, (H, 1)),
                       "W2": rng.normal(0, 0.5, (C, H)), "b2": rng.normal(0, 0.1, (C, 1))}

    def _forward(self, X, training):
        p = self.params
        A1 = np.maximum(0, p["W1"] @ X + p["b1"])
        if training:
            keep_prob = 1 - P_DROP
            D1 = np.random.rand(A1.shape[0], A1.shape[1]) < keep_prob
            A1 = A1 * D1 / keep_prob
        return p["W2"] @ A1 + p["b2"]

    def predict(self, X, training=False):
        return self._forward(X, training)

    def loss(self, X, Y, training=True):
        return softmax_ce(self._forward(X, training).T, Y.T)


def test_features_first_predict_with_a_training_flag_passes():
    report = check_port(FeaturesFirst(), Port(bn=False), *batch())
    assert report.passed, report.to_text()
    assert {"predict", "predict [eval]"} <= {c.where for c in report.checks}


def test_features_first_port_dropping_in_eval_fails_as_mode():
    report = check_port(FeaturesFirst(), Port(bn=False, dropout="always"), *batch())
    assert not report.passed and report.first_mismatch["where"] == "predict [eval]"
    assert [d["code"] for d in report.diagnosis] == ["mode"]


# --- the book's batch norm net, the port's own loss calling self(x) ------------------------------

BOOK_HIDDEN = [10, 10]


def book_net():
    return zoo.ch6_numpy.MultiLayerNetExtend(D, BOOK_HIDDEN, C, use_batchnorm=True,
                                             weight_decay_lambda=0.1)


def book_port(cls=None, **kwargs):
    cls = cls or zoo.ch6_torch.WeightDecayInLoss
    return cls(D, BOOK_HIDDEN, C, use_batchnorm=True, weight_decay_lambda=0.1, **kwargs)


class TorchMomentum(zoo.ch6_torch.WeightDecayInLoss):
    """Batch norm with 0.9 as torch's momentum: the book's 0.9 is the old value's weight."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.momentum = 0.9


class FrozenNorm(zoo.ch6_torch.WeightDecayInLoss):
    """Batch norm put in eval mode inside forward: a train() that does not reach it."""

    def forward(self, x):
        for m in self.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.eval()
        return super().forward(x)


def running_rows(report):
    return [c for c in report.checks if "running_" in c.where and "[" not in c.where]


def test_port_loss_calling_self_updates_running_statistics_once():
    x, t = batch(32)
    report = check_port(book_net(), book_port(), x, t, loss="model")
    assert report.passed, report.to_text()
    rows = running_rows(report)
    assert len(rows) == 4 and all(r.passed for r in rows)


def test_port_loss_calling_self_with_torch_momentum_fails_as_bn_momentum():
    x, t = batch(32)
    report = check_port(book_net(), book_port(TorchMomentum), x, t, loss="model")
    assert not report.passed and "running_mean" in report.first_mismatch["where"]
    assert "bn_momentum" in [d["code"] for d in report.diagnosis]


def test_port_loss_calling_self_with_frozen_norm_fails_as_mode():
    x, t = batch(32)
    report = check_port(book_net(), book_port(FrozenNorm), x, t, loss="model")
    assert not report.passed
    assert "mode" in [d["code"] for d in report.diagnosis]


def test_port_loss_calling_self_trains_side_by_side():
    from compare.port import check_training
    x, t = batch(128)
    report = check_training(book_net(), book_port(), x, t, steps=3, batch_size=32, loss="model")
    assert report.passed, report.to_text()


class WithBackprop(BookFlag):
    """The book's flag, and its backprop written out (training side by side needs one)."""

    def forward(self, x, train):
        p = self.params
        h = x @ p["W1"] + p.get("b1", 0)
        cache = {"x": x}
        if self.bn:
            if train:
                mu, var = h.mean(axis=0), h.var(axis=0)
                self.running_mean = 0.9 * self.running_mean + 0.1 * mu
                self.running_var = 0.9 * self.running_var + 0.1 * var
            else:
                mu, var = self.running_mean, self.running_var
            cache["std"] = np.sqrt(var + EPS)
            cache["xhat"] = (h - mu) / cache["std"]
            h = p["gamma"] * cache["xhat"] + p["beta"]
        cache["y"] = h
        h = np.maximum(h, 0)
        cache["mask"] = np.ones_like(h)
        if self.dropout and train:
            keep = 1 - P_DROP
            cache["mask"] = (np.random.rand(*h.shape) < keep) / keep
            h = h * cache["mask"]
        cache["d"] = h
        self.cache = cache
        return h @ p["W2"] + p["b2"]

    def gradient(self, x, t):
        p, scores = self.params, self.forward(x, True)
        c, n = self.cache, x.shape[0]
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        ds = (e / e.sum(axis=1, keepdims=True) - t) / n
        g = {"W2": c["d"].T @ ds, "b2": ds.sum(axis=0)}
        dy = (ds @ p["W2"].T) * c["mask"] * (c["y"] > 0)
        if self.bn:
            xhat = c["xhat"]
            g["gamma"], g["beta"] = (dy * xhat).sum(axis=0), dy.sum(axis=0)
            dxhat = dy * p["gamma"]
            dy = (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0)) / (n * c["std"])
        g["W1"], g["b1"] = x.T @ dy, dy.sum(axis=0)
        return {k: g[k] for k in p}


@pytest.mark.parametrize("bn", [True, False], ids=["bn+dropout", "dropout"])
def test_flagged_net_trains_side_by_side(bn):
    from compare.port import check_training
    x, t = batch(48)
    # no bias before the batch norm: its gradient is 0 up to round-off, judged elsewhere
    report = check_training(WithBackprop(bn=bn, bias1=not bn), Port(bn=bn, bias1=not bn), x, t,
                            steps=2, batch_size=24)
    assert report.passed, report.to_text()
    # after the steps, evaluation is judged where no running statistic is left unpaired
    assert ("predict [eval]" in [c.where for c in report.checks if c.phase == "training"]) is not bn
