"""Own data and other losses: ``--data FILE.npz`` (class indices, one-hot rows or real
targets, any input shape), ``--loss`` by ``torch.nn.functional`` name or ``FILE.py:fn``,
targets converted to what the loss takes, the book's 0.5 * sum against a mean named as
its factor, and the one-line refusals (exit status 2).

The NumPy models here are written in the book's style (``params``, ``predict``,
``loss``), each loss written out from its formula in NumPy; the torch ports are plain
``nn.Sequential`` nets using the loss by name. Where a NumPy model has no backprop,
the torch gradient is checked against central differences of its loss.
"""
import json
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from compare import check_port, cli
from compare.port.losses import NAMED
from compare.port.targets import PortSetupError
from compare.port.training import check_training
from numpy_impl.random_stream import BookRandomStream
from courses import regression

ROOT = Path(__file__).resolve().parents[1]
REG = "tests/courses/regression.py"
PORTS = "tests/courses/torch_ports.py"
HERE = "tests/test_port_own_data.py"


@pytest.fixture(autouse=True)
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def port(capsys, *argv):
    code = cli.main(["port", *argv, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- NumPy models: Linear, tanh, Linear and a head; the loss from its formula ------------------

def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _one_hot_of(t, y):
    """Index labels against a many-column output as one-hot rows, as a user's loss would."""
    return np.eye(y.shape[1])[t] if t.ndim == 1 and y.ndim == 2 and y.shape[1] > 1 else t


def _huber(y, t):
    d = np.abs(y - t)
    return np.mean(np.where(d < 1, 0.5 * d ** 2, d - 0.5))


NUMPY_LOSSES = {  # name -> (head, per-batch loss of the head's output y and labels t)
    "mse_loss": (None, lambda y, t: np.mean((y - _one_hot_of(t, y)) ** 2)),
    "l1_loss": (None, lambda y, t: np.mean(np.abs(y - t))),
    "smooth_l1_loss": (None, _huber),
    "huber_loss": (None, _huber),
    "poisson_nll_loss": (None, lambda y, t: np.mean(np.exp(y) - t * y)),
    "binary_cross_entropy": ("sigmoid", lambda y, t: -np.mean(
        t * np.log(y) + (1 - t) * np.log(1 - y))),
    "binary_cross_entropy_with_logits": (None, lambda z, t: np.mean(
        np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z))))),
    "nll_loss": ("log_softmax", lambda y, t: -np.mean(
        y[np.arange(len(y)), t if t.ndim == 1 else t.argmax(axis=1)])),
    "cross_entropy": (None, lambda z, t: -np.mean(_log_softmax(z)[np.arange(len(z)), t])),
    "kl_div": ("log_softmax", lambda y, t: np.mean(
        np.where(t > 0, t * (np.log(np.where(t > 0, t, 1)) - y), 0.0))),
}
HEADS = {None: lambda z: z, "sigmoid": _sigmoid, "log_softmax": _log_softmax}
TORCH_HEADS = {None: nn.Identity, "sigmoid": nn.Sigmoid, "log_softmax": lambda: nn.LogSoftmax(dim=1)}


class SmallNet:
    """Linear, tanh, Linear, then the head; any input shape, flattened per sample."""

    def __init__(self, loss, d=4, h=8, k=2, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W1": 0.5 * rng.randn(d, h), "b1": 0.1 * rng.randn(h),
                       "W2": 0.5 * rng.randn(h, k), "b2": 0.1 * rng.randn(k)}
        self.head, self.reduce = NUMPY_LOSSES[loss]

    def predict(self, x):
        x = x.reshape(len(x), -1)
        z = np.tanh(x @ self.params["W1"] + self.params["b1"]) @ self.params["W2"] + self.params["b2"]
        return HEADS[self.head](z)

    def loss(self, x, t):
        return self.reduce(self.predict(x), t)


def small_port(loss, d=4, h=8, k=2):
    return nn.Sequential(nn.Flatten(), nn.Linear(d, h), nn.Tanh(), nn.Linear(h, k),
                         TORCH_HEADS[NUMPY_LOSSES[loss][0]]())


def targets(loss, n, k, rng):
    """Targets of the kind each loss takes."""
    if loss in ("nll_loss", "cross_entropy"):
        return rng.randint(0, k, n)
    if loss == "kl_div":
        p = rng.rand(n, k)
        return p / p.sum(axis=1, keepdims=True)
    if loss == "poisson_nll_loss":
        return rng.poisson(1.5, (n, k)).astype(float)
    if loss.startswith("binary"):
        return rng.rand(n, k)
    return rng.randn(n, k)


def test_every_loss_by_name_has_a_numpy_model_here():
    assert set(NAMED) <= set(NUMPY_LOSSES)


@pytest.mark.parametrize("loss", sorted(NUMPY_LOSSES))
def test_a_right_port_passes_with_each_loss_by_name(loss):
    rng = np.random.RandomState(1)
    k = 3
    x, t = rng.randn(40, 2, 2), targets(loss, 40, k, rng)
    report = check_port(SmallNet(loss, k=k), small_port(loss, k=k), x, t, loss=loss)
    assert report.passed, report.to_text()
    loss_row = next(c for c in report.checks if c.phase == "loss")
    assert loss_row.torch == loss
    # central differences of the NumPy loss: the NumPy model has no backprop
    assert "central differences" in report.settings["gradients"]
    # the book's 1e-7 is a matter of classification only
    assert report.known == [] and "log_eps" not in json.dumps(report.to_dict()["known"])


@pytest.mark.parametrize("loss, planted, code", [
    ("l1_loss", lambda y, t: 0.5 * np.mean(np.abs(y - t)), "scale"),
])
def test_other_losses_never_hear_of_the_book_s_1e7(loss, planted, code):
    """A regression loss off from the port's (halved): the mismatch is found, and no known
    difference or diagnosis speaks of an eps in a log (a binary cross-entropy with one is
    tests/test_port_diagnosis_rules.py's)."""
    rng = np.random.RandomState(2)
    net = SmallNet(loss, k=3)
    net.reduce = planted
    report = check_port(net, small_port(loss, k=3), rng.randn(40, 4), targets(loss, 40, 3, rng),
                        loss=loss)
    codes = [d["code"] for d in report.diagnosis]
    assert report.known == [] and "log_eps" not in codes
    if code is not None:
        assert not report.passed and codes[0] == code


# --- targets follow the loss --------------------------------------------------------------

def test_one_hot_rows_become_indices_for_nll_loss():
    rng = np.random.RandomState(3)
    t = np.eye(3)[rng.randint(0, 3, 40)]
    report = check_port(SmallNet("nll_loss", k=3), small_port("nll_loss", k=3), rng.randn(40, 4), t,
                        loss="nll_loss")
    assert report.passed, report.to_text()


def test_index_labels_become_one_hot_rows_for_mse_against_a_many_way_output():
    """The book's squared error against one-hot labels: index labels with mse_loss and a
    3-way output are its one-hot rows (the NumPy loss one-hots them itself)."""
    rng = np.random.RandomState(4)
    report = check_port(SmallNet("mse_loss", k=3), small_port("mse_loss", k=3), rng.randn(40, 4),
                        rng.randint(0, 3, 40), loss="mse_loss")
    assert report.passed, report.to_text()


class ColumnNet(SmallNet):
    """One output column, targets (N,) taken as that column."""

    def loss(self, x, t):
        return self.reduce(self.predict(x), t.reshape(-1, 1))


@pytest.mark.parametrize("loss, make_t", [
    ("binary_cross_entropy", lambda rng: rng.randint(0, 2, 40)),
    ("mse_loss", lambda rng: rng.randn(40)),
])
def test_targets_n_against_an_n_by_1_output_are_its_column_never_broadcast(loss, make_t):
    rng = np.random.RandomState(5)
    t = make_t(rng)
    report = check_port(ColumnNet(loss, k=1), small_port(loss, k=1), rng.randn(40, 4), t, loss=loss)
    assert report.passed, report.to_text()
    # (N, 1) - (N,) broadcast to (N, N) would give another loss than the column's
    assert report.checks[[c.phase for c in report.checks].index("loss")].passed


@pytest.mark.parametrize("loss, t, expected", [
    ("nll_loss", lambda rng: rng.rand(40, 3), "--loss nll_loss takes class indices (N,) or "
                                              "one-hot rows; t holds real values"),
    ("nll_loss", lambda rng: rng.randn(40, 3), "real targets need a regression loss such as mse_loss"),
    ("binary_cross_entropy", lambda rng: 2 * rng.rand(40, 3), "takes targets in [0, 1]; t holds "
                                                              "values from"),
    ("mse_loss", lambda rng: rng.randn(40, 5), "takes targets of the output's shape (40, 3); t "
                                               "has shape (40, 5)"),
    ("kl_div", lambda rng: rng.randn(40, 3), "takes probabilities as targets"),
    ("mse_loss", lambda rng: rng.randint(0, 7, 40), "t holds class indices from 0 to 6, and the "
                                                    "output has 3 columns"),
    ("cross_entropy", lambda rng: rng.rand(40, 3), "real targets need a regression loss such as "
                                                   "mse_loss"),
    ("cross_entropy", lambda rng: rng.randn(40), "real targets need a regression loss such as "
                                                 "mse_loss"),
])
def test_targets_that_cannot_fit_the_loss_are_refused(loss, t, expected):
    rng = np.random.RandomState(6)
    net = SmallNet(loss, k=3)
    net.reduce = lambda y, t: float(np.mean(y ** 2))  # takes any t: the torch side refuses
    with pytest.raises(PortSetupError) as info:
        check_port(net, small_port(loss, k=3), rng.randn(40, 4), t(rng), loss=loss)
    assert expected in str(info.value)


def test_a_function_of_output_and_t_is_a_loss():
    """``loss=fn`` (Python) and ``--loss FILE.py:fn``: the book's 0.5 * sum of squares
    written for the port passes against RegressionNetHalfSum."""
    x, t = regression.make_data(50)
    report = check_port(regression.make_half_sum_net(), _regression_port(), x, t, loss=half_sse)
    assert report.passed, report.to_text()
    assert report.settings["loss"] == "half_sse"


def half_sse(output, t):
    return 0.5 * ((output - t) ** 2).sum()


def not_a_scalar(output, t):
    return (output - t) ** 2


def _regression_port():
    from courses.torch_ports import RegressionPort
    return RegressionPort()


# --- the factor of a reduction, explained ---------------------------------------------------

class PerExampleSum(regression.RegressionNet):
    """Squared errors summed over each example's outputs, averaged over the batch."""

    def loss(self, x, t):
        return np.sum((self.predict(x) - t) ** 2) / len(x)

    def _dy(self, y, t):
        return 2 * (y - t) / len(y)


class PlainSum(regression.RegressionNet):
    def loss(self, x, t):
        return np.sum((self.predict(x) - t) ** 2)

    def _dy(self, y, t):
        return 2 * (y - t)


def plain_sum_net():
    return PlainSum(regression.INPUT_SIZE, regression.HIDDEN_SIZE, regression.OUTPUT_SIZE)


def per_example_sum_net():
    return PerExampleSum(regression.INPUT_SIZE, regression.HIDDEN_SIZE, regression.OUTPUT_SIZE)


def _numpy_loss(net, path, batch, seed=0):
    with np.load(path) as f:
        x, t = f["x"], f["t"]
    idx = BookRandomStream(seed).batch_indices(len(x), batch)
    return net.loss(x[idx], t[idx])


@pytest.mark.parametrize("numpy, expression, words", [
    (f"{REG}:make_half_sum_net", "N*k/2", ["the book's 0.5 * sum of squares",
                                           "0.5 * F.mse_loss(output, t, reduction='sum')"]),
    (f"{HERE}:plain_sum_net", "N*k", ["the sum of the squared errors over the N*k = 100 elements",
                                 "F.mse_loss(output, t, reduction='sum')"]),
    (f"{HERE}:per_example_sum_net", "k", ["the sum over each example's k = 2 outputs",
                                    "F.mse_loss(output, t, reduction='sum') / N"]),
])
def test_a_reduction_against_mse_loss_is_a_scale_named_by_its_factor(numpy, expression, words,
                                                                      tmp_path, capsys):
    data = regression.write_npz(tmp_path / "reg.npz")
    code, out, _ = port(capsys, numpy, f"{PORTS}:RegressionPort", "--data", str(data),
                        "--loss", "mse_loss", "--batch", "50", "--json", str(tmp_path / "r.json"))
    assert code == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["first_mismatch"]["phase"] == "loss"
    scale = report["diagnosis"][0]
    assert scale["code"] == "scale" and scale["expression"] == expression
    # the factor against the two losses computed here: the NumPy one, and its mean
    net = {"N*k/2": regression.make_half_sum_net, "N*k": plain_sum_net,
           "k": per_example_sum_net}[expression]()
    np_loss = _numpy_loss(net, data, 50)
    mean = _numpy_loss(regression.make_net(), data, 50)
    assert scale["factor"] == pytest.approx(mean / np_loss, rel=1e-9)
    n, k = 50, 2
    assert 1 / scale["factor"] == pytest.approx({"N*k/2": n * k / 2, "N*k": n * k, "k": k}[expression])
    for w in words:
        assert w in scale["text"], scale["text"]
    assert "log_eps" not in out


def test_the_planted_sum_loss_is_named_n_times_k(tmp_path, capsys):
    """tests/courses' planted bug: reduction='sum' in the port's own loss against the mean."""
    data = regression.write_npz(tmp_path / "reg.npz")
    code, out, _ = port(capsys, f"{REG}:make_net", f"{PORTS}:RegressionSumLoss", "--data", str(data),
                        "--loss", "model", "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    scale = report["diagnosis"][0]
    assert code == 1 and scale["code"] == "scale" and scale["expression"] == "N*k"
    assert scale["factor"] == pytest.approx(100 * 2, rel=1e-9)
    assert "the torch loss the sum" in scale["text"] and "the NumPy loss is the mean" in scale["text"]


# --- --data FILE.npz ------------------------------------------------------------------------

class Classifier(SmallNet):
    """The book's classifier on any input: softmax and -log(y + 1e-7), index labels or one-hot
    rows, with backprop."""

    def __init__(self):
        super().__init__("cross_entropy", d=6, h=8, k=3)

    def predict(self, x):
        return np.exp(_log_softmax(SmallNet.predict(self, x)))

    def loss(self, x, t):
        y = self.predict(x)
        t = t.argmax(axis=1) if t.ndim == 2 else t
        return -np.sum(np.log(y[np.arange(len(y)), t] + 1e-7)) / len(y)

    def gradient(self, x, t):
        x = x.reshape(len(x), -1)
        p = self.params
        z1 = np.tanh(x @ p["W1"] + p["b1"])
        y = np.exp(_log_softmax(z1 @ p["W2"] + p["b2"]))
        t = np.eye(y.shape[1])[t] if t.ndim == 1 else t
        dy = (y - t) / len(y)
        da = dy @ p["W2"].T * (1 - z1 ** 2)
        return {"W1": x.T @ da, "b1": da.sum(axis=0), "W2": z1.T @ dy, "b2": dy.sum(axis=0)}


def classifier_port():
    return nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _class_data(path, one_hot=False, n=120):
    rng = np.random.RandomState(7)
    x, t = rng.randn(n, 2, 3), rng.randint(0, 3, n)  # samples (2, 3), taken as they are
    np.savez(path, x=x, t=np.eye(3)[t] if one_hot else t)
    return path


@pytest.mark.parametrize("stored, labels", [("index", None), ("one-hot", None),
                                            ("index", "one-hot"), ("one-hot", "index")])
def test_class_labels_from_a_file_pass_and_keep_the_book_s_1e7(stored, labels, tmp_path, capsys):
    data = _class_data(tmp_path / "c.npz", one_hot=stored == "one-hot")
    extra = [] if labels is None else ["--labels", labels]
    code, out, _ = port(capsys, f"{HERE}:Classifier", f"{HERE}:classifier_port", "--data", str(data),
                        "--batch", "30", "--json", str(tmp_path / "r.json"), *extra)
    assert code == 0, out
    report = json.loads((tmp_path / "r.json").read_text())
    # the NumPy loss has the book's 1e-7, the port's F.cross_entropy not: named, sized
    # (its backprop is the cross-entropy's, softmax - t, so only the loss differs)
    assert [k["code"] for k in report["known"]] == ["log_eps"]
    assert report["known"][0]["text"].startswith("loss:") and report["known"][0]["size"] > 0


def test_the_first_batch_is_the_book_s_stream_draw_from_the_file_s_rows(tmp_path, capsys):
    data = regression.write_npz(tmp_path / "reg.npz")
    code, _, _ = port(capsys, f"{REG}:make_net", f"{PORTS}:RegressionPort", "--data", str(data),
                      "--loss", "mse_loss", "--batch", "30", "--seed", "3",
                      "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    loss_row = next(c for c in report["checks"] if c["phase"] == "loss")
    assert code == 0
    assert loss_row["worst_expected"] == pytest.approx(
        _numpy_loss(regression.make_net(), data, 30, seed=3), rel=1e-12)


class ColumnRegression(regression.RegressionNet):
    """RegressionNet with one output and targets (N,), taken as its column."""

    def loss(self, x, t):
        return super().loss(x, t.reshape(-1, 1))

    def gradient(self, x, t):
        return super().gradient(x, t.reshape(-1, 1))


def test_training_on_own_data_with_real_targets_n(tmp_path):
    """Real targets (N,) reach both sides unrounded, batch after batch."""
    rng = np.random.RandomState(8)
    x, t = rng.randn(80, 4), rng.randn(80)
    net = ColumnRegression(regression.INPUT_SIZE, regression.HIDDEN_SIZE, 1)
    report = check_training(net, nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1)),
                            x, t, steps=3, batch_size=20, lr=0.1, loss="mse_loss")
    assert report.passed, report.to_text()
    idx = BookRandomStream(0).batch_indices(80, 20)
    assert report.training["loss_numpy"][0] == pytest.approx(net.loss(x[idx], t[idx]), rel=1e-12)


def test_training_steps_from_the_command_line_on_own_data(tmp_path, capsys):
    data = regression.write_npz(tmp_path / "reg.npz")
    code, out, _ = port(capsys, f"{REG}:make_net", f"{PORTS}:regression_sequential", "--data",
                        str(data), "--loss", "mse_loss", "--steps", "4", "--batch", "25")
    assert code == 0, out


def test_record_with_own_data_then_check_against_the_file(tmp_path, capsys):
    data = regression.write_npz(tmp_path / "reg.npz")
    ref = tmp_path / "ref.npz"
    assert cli.main(["record", f"{REG}:make_net", "--out", str(ref), "--data", str(data),
                     "--batch", "40", "--steps", "2"]) == 0
    assert str(data) in capsys.readouterr().out
    with np.load(ref) as golden, np.load(data) as own:
        idx = BookRandomStream(0).batch_indices(len(own["x"]), 40)
        assert np.array_equal(golden["t"], own["t"][idx])  # real targets, as stored
    assert cli.main(["port", str(ref), f"{PORTS}:RegressionPort", "--loss", "mse_loss",
                     "--no-progress"]) == 0
    assert cli.main(["port", str(ref), f"{PORTS}:RegressionPort", "--loss", "mse_loss",
                     "--steps", "2", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["port", str(ref), f"{PORTS}:RegressionSumLoss", "--loss", "model",
                     "--no-progress"]) == 1


def test_a_custom_loss_file_from_the_command_line(tmp_path, capsys):
    data = regression.write_npz(tmp_path / "reg.npz")
    code, out, _ = port(capsys, f"{REG}:make_half_sum_net", f"{PORTS}:RegressionPort", "--data",
                        str(data), "--loss", f"{HERE}:half_sse")
    assert code == 0, out


# --- what cannot run: exit 2, one line ------------------------------------------------------

def _write(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize("make, expected", [
    (lambda p: str(p / "missing.npz"), "--data: no such file"),
    (lambda p: (p / "text.npz").write_text("x, t\n1, 2\n") and str(p / "text.npz"),
     "is not a readable .npz file"),
    (lambda p: str(p / "one.npy") if np.save(p / "one.npy", np.zeros((3, 2))) is None else "",
     "--data must be mnist, random or a .npz file"),
    (lambda p: _write(p / "xy.npz", x=np.zeros((10, 4)), y=np.zeros((10, 2))),
     "has no array 't' (it has: x, y)"),
    (lambda p: _write(p / "none.npz", inputs=np.zeros((10, 4))), "has no array 'x' or 't'"),
    (lambda p: _write(p / "rows.npz", x=np.zeros((10, 4)), t=np.zeros((9, 2))),
     "x has 10 rows and t 9"),
    (lambda p: _write(p / "nan_x.npz", x=np.full((10, 4), np.nan), t=np.zeros((10, 2))),
     "x holds NaN or infinity (40 of 40 values)"),
    (lambda p: _write(p / "nan_t.npz", x=np.zeros((10, 4)), t=np.array([[np.nan, 0]] * 10)),
     "t holds NaN or infinity (10 of 20 values)"),
    (lambda p: _write(p / "flat.npz", x=np.zeros(10), t=np.zeros(10)), "is x of shape (N, 1)"),
    (lambda p: _write(p / "words.npz", x=np.array([["a"] * 4] * 10), t=np.zeros((10, 2))),
     "x must hold real numbers"),
])
def test_a_data_file_that_cannot_be_used_exits_2_with_one_line(make, expected, tmp_path, capsys):
    data = make(tmp_path)
    for command in (["port", f"{REG}:make_net", f"{PORTS}:RegressionPort", "--loss", "mse_loss"],
                    ["record", f"{REG}:make_net", "--out", str(tmp_path / "ref.npz")]):
        code = cli.main([*command, "--data", data])
        err = capsys.readouterr().err
        assert code == 2 and expected in err, err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv, expected", [
    (["--loss", "no_such_loss"], "--loss must be cross_entropy, book, model, a torch.nn."),
    (["--loss", "margin_ranking_loss"], "write it as FILE.py:fn"),
    (["--loss", f"{HERE}:nothing_here"], "has no 'nothing_here'"),
    (["--loss", f"{HERE}:not_a_scalar"], "expected a scalar tensor"),
    (["--loss", "cross_entropy"], "real targets need a regression loss such as mse_loss"),
    (["--loss", "mse_loss", "--labels", "index"], "--labels index converts class labels"),
])
def test_a_loss_that_cannot_be_applied_exits_2_with_one_line(argv, expected, tmp_path, capsys):
    data = regression.write_npz(tmp_path / "reg.npz")
    code, _, err = port(capsys, f"{REG}:make_net", f"{PORTS}:RegressionPort", "--data", str(data),
                        *argv)
    assert code == 2 and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_input_shape_reshapes_a_file_s_samples_and_refuses_what_cannot_hold_them(tmp_path, capsys):
    rng = np.random.RandomState(9)
    np.savez(tmp_path / "flat.npz", x=rng.randn(60, 6), t=rng.randint(0, 3, 60))
    common = [f"{HERE}:Classifier", f"{HERE}:classifier_port", "--data", str(tmp_path / "flat.npz"),
              "--batch", "20"]
    code, out, _ = port(capsys, *common, "--input-shape", "2,3")
    assert code == 0, out
    code, _, err = port(capsys, *common, "--input-shape", "4,2")
    assert code == 2 and "which --input-shape (4, 2) cannot hold" in err
