"""The NumPy side can be the wrong one: a backward that is wrong for its own loss.

The models (``tests/wrong_numpy_backward.py``, written here): the book's layers with
``0.5 * lam * sum(W**2)`` in the loss and a backward that forgets ``lam * W``; a mean
loss whose backward is the gradient of the sum. Their torch ports are right for the
NumPy loss. Truth is independent of the check: the model's own ``lam`` and batch size,
central differences of the NumPy loss taken here element by element, and the right
NumPy model (``forget=False``) against the same port.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import port_zoo as zoo
import wrong_numpy_backward as w
from compare import check_port, cli
from compare.port.check import reference_gradient
from compare.port.numerical import numerical_gradient_of

# the codes that say the port computes something wrong
PORT_BLAME = {"transpose", "scale", "sign", "offset", "dtype", "log_eps", "axis", "unused",
              "weight_decay", "flatten_order", "double_softmax"}


@pytest.fixture
def batch():
    return w.batch()


def codes(report):
    json.dumps(report.to_dict(), allow_nan=False)
    return [d["code"] for d in report.diagnosis]


def loss_gradient(model, x, t):
    """Every element's central difference of the NumPy loss (independent of the check)."""
    return numerical_gradient_of(lambda: model.loss(x, t), model.params)


def test_the_models_are_what_they_claim(batch):
    """The truth the tests below stand on: each NumPy backward is off its own loss as planted,
    and the ports' autograd is the loss's gradient."""
    x, t = batch
    forgot, summed = w.make_l2_forgotten(), w.make_sum_gradient()
    forgot.last_layer.eps = 0.0  # the 1e-7 aside, its backward is exact for the rest
    g, num = forgot.gradient(x, t), loss_gradient(forgot, x, t)
    for k in ("W1", "W2"):
        np.testing.assert_allclose(g[k] + w.LAMBDA * forgot.params[k], num[k], atol=1e-6)
    for k in ("b1", "b2"):
        np.testing.assert_allclose(g[k], num[k], atol=1e-6)
    g, num = summed.gradient(x, t), loss_gradient(summed, x, t)
    for k in g:
        np.testing.assert_allclose(g[k] / w.N, num[k], atol=1e-8)


# torch's first optimizer in a process imports for seconds (3.5 s measured here)
ROUTES = ["port's loss", pytest.param("port's optimizer", marks=pytest.mark.slow)]


@pytest.mark.parametrize("route", ROUTES)
def test_a_forgotten_penalty_gradient_is_the_numpy_sides(batch, route):
    kw = dict(loss="model") if route == "port's loss" else dict(torch_optimizer=w.weights_decay)
    port = w.make_port() if route == "port's loss" else w.make_plain_port()
    report = check_port(w.make_l2_forgotten(), port, *batch, **kw)
    assert not report.passed
    assert codes(report) == ["numpy_gradient"]  # and nothing aimed at the port
    (found,) = report.diagnosis
    assert sorted(found["parameters"]) == ["W1", "W2"]  # the weights, not the biases
    assert found["lambda"] == pytest.approx(w.LAMBDA, rel=1e-6)
    assert "lambda * W" in found["text"] and "wrong side" in found["text"]
    fm = report.first_mismatch
    assert fm["phase"] == "backward" and fm["where"] in ("W1", "W2")
    failed = {c.where for c in report.checks if not c.passed}
    assert failed == {"W1", "W2"}  # the two gradients do differ: parity does not hold
    assert all("the NumPy side's" in c.note for c in report.checks if not c.passed)
    assert "likely: numpy_gradient" in report.verdict()


def test_a_sum_gradient_under_a_mean_loss_is_the_numpy_sides_not_a_scale_of_the_port(batch):
    report = check_port(w.make_sum_gradient(), w.make_plain_port(), *batch)
    assert not report.passed
    assert codes(report) == ["numpy_gradient"]
    (found,) = report.diagnosis
    assert sorted(found["parameters"]) == ["W1", "W2", "b1", "b2"]
    assert found["factor"] == pytest.approx(w.N, rel=1e-6)
    assert f"N = {w.N}" in found["text"]
    # located at a parameter, where the NumPy gradient is shown wrong, not at a layer's output
    assert report.first_mismatch["phase"] == "backward"
    assert report.first_mismatch["where"] in found["parameters"]
    for key, m in found["measured"].items():
        assert m["numpy_max_abs"] > 100 * m["numpy_tolerance"], key
        assert m["port_worst_ratio"] <= 1, key


@pytest.mark.parametrize("route", ROUTES)
def test_the_right_numpy_model_passes_with_the_same_port(batch, route):
    kw = dict(loss="model") if route == "port's loss" else dict(torch_optimizer=w.weights_decay)
    port = w.make_port() if route == "port's loss" else w.make_plain_port()
    report = check_port(w.make_l2_right(), port, *batch, **kw)
    assert report.passed, report.to_text()


def test_a_penalty_neither_gradient_holds_names_both_sides(batch):
    """The port left the penalty out and the NumPy backward forgot its gradient: the losses
    part, the gradients agree. Both fixes are named, each with the model's own lambda."""
    report = check_port(w.make_l2_forgotten(), w.make_plain_port(), *batch)
    assert report.first_mismatch["phase"] == "loss"
    assert codes(report) == ["numpy_gradient", "weight_decay"]
    found, decay = report.diagnosis
    assert sorted(found["parameters"]) == ["W1", "W2"]
    assert found["lambda"] == pytest.approx(w.LAMBDA, rel=1e-9)
    assert decay["lambda"] == pytest.approx(w.LAMBDA, rel=1e-9)
    # the right NumPy model against the same port: the port's penalty alone
    right = check_port(w.make_l2_right(), w.make_plain_port(), *batch)
    assert codes(right) == ["weight_decay"]


class FlipGradient(torch.autograd.Function):
    """The identity forward, the negated gradient backward: a hand-written backward's slip."""

    @staticmethod
    def forward(ctx, value):
        return value.view_as(value)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class SignFlippedBias(w.Port):
    """A port bug autograd cannot make by itself: fc1's bias gets the opposite gradient."""

    def __init__(self):
        super().__init__(lam=0.0)

    def forward(self, x):
        h = F.linear(x, self.fc1.weight, FlipGradient.apply(self.fc1.bias))
        return self.fc2(F.relu(h))


def spy(monkeypatch):
    """The self-check's directional checks, as they are made: ``[(names, passed)]``."""
    made = []
    real = reference_gradient._directions

    def recorded(run, names, *args):
        result = real(run, names, *args)
        made.append((list(names), result.passed))
        return result
    monkeypatch.setattr(reference_gradient, "_directions", recorded)
    return made


def test_a_wrong_port_on_a_right_numpy_model_is_still_the_ports(batch, monkeypatch):
    """The book's loss with its 1e-7, a right backward without it: the port check fails
    first, the NumPy side is never taken for the wrong one, the usual code is named."""
    made = spy(monkeypatch)
    report = check_port(w.BookL2Net(lam=0.0, forget=False), SignFlippedBias(), *batch)
    assert report.first_mismatch["where"] == "b1"
    assert "sign" in codes(report) and "numpy_gradient" not in codes(report)
    assert made == [(["b1"], False)]  # one check, the port's, and it failed


class StepRelu(w.Port):
    """relu'(0) = 1 (``h * (h >= 0)``), where the NumPy backward takes 0: both right at a
    kink, and their bias gradients differ there."""

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h * (h >= 0))


def test_kinks_never_make_a_right_numpy_backward_look_wrong(monkeypatch):
    net = w.BookL2Net(lam=0.0, forget=False)
    net.params["b1"][:8] = 0.0
    x, t = w.batch()
    x[:10] = 0.0  # their hidden pre-activations are the bias: 0 for 8 units, at the kink
    made = spy(monkeypatch)
    report = check_port(net, StepRelu(lam=0.0), x, t)
    assert not report.passed  # the two choices at the kink differ
    assert "numpy_gradient" not in codes(report)
    # the port's b1 cleared (its directions cross the kinks: not judged), then the NumPy
    # side's, passed in the same way
    assert made == [(["b1"], True), (["b1"], True)]


@pytest.mark.parametrize("port, code", [(zoo.no_batch_divide, "scale"),
                                         (lambda: zoo.literal(zoo.FlippedBiasGradient), "sign")])
@pytest.mark.slow  # MNIST's 784-50-10 twice: a second or two each
def test_the_books_net_with_a_wrong_port_keeps_its_diagnosis(mnist_batch, port, code, monkeypatch):
    made = spy(monkeypatch)
    report = check_port(zoo.book_net(), port(), *mnist_batch)
    assert code in codes(report) and "numpy_gradient" not in codes(report)
    assert len(made) == 1 and made[0][1] is False


def test_a_check_that_passes_takes_no_extra_loss(batch, monkeypatch):
    made = spy(monkeypatch)
    assert check_port(w.make_l2_right(), w.make_port(), *batch, loss="model").passed
    assert made == []


def test_a_failure_before_the_backward_takes_no_extra_loss(batch, monkeypatch):
    made = spy(monkeypatch)

    class NoRelu(w.Port):
        def forward(self, x):
            return self.fc2(self.fc1(x))
    report = check_port(w.make_sum_gradient(), NoRelu(lam=0.0), *batch)
    assert report.first_mismatch["phase"] == "forward"
    assert made == [] and "numpy_gradient" not in codes(report)


def test_the_command_line_exits_1_and_writes_it_to_the_json(tmp_path, capsys, monkeypatch):
    x, t = w.batch()
    np.savez(tmp_path / "own.npz", x=x, t=t)
    here = w.__file__
    code = cli.main(["port", f"{here}:make_sum_gradient", f"{here}:make_plain_port", "--data",
                     str(tmp_path / "own.npz"), "--batch", str(w.N), "--json",
                     str(tmp_path / "port.json"), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1
    assert "[numpy_gradient] the NumPy backward is wrong for" in out
    report = json.loads((tmp_path / "port.json").read_text())
    assert report["passed"] is False and report["first_mismatch"]["phase"] == "backward"
    assert [d["code"] for d in report["diagnosis"]] == ["numpy_gradient"]
    assert not PORT_BLAME & {d["code"] for d in report["diagnosis"]}


def test_the_ports_autograd_is_the_loss_gradient_it_is_cleared_by(batch):
    """The port the check clears agrees, element by element, with the NumPy loss's central
    differences: the clearing is not the check's word alone."""
    x, t = batch
    model, port = w.make_sum_gradient(), w.make_plain_port().double()
    with torch.no_grad():
        port.fc1.weight.copy_(torch.from_numpy(model.params["W1"].T))
        port.fc1.bias.copy_(torch.from_numpy(model.params["b1"]))
        port.fc2.weight.copy_(torch.from_numpy(model.params["W2"].T))
        port.fc2.bias.copy_(torch.from_numpy(model.params["b2"]))
    F.cross_entropy(port(torch.from_numpy(x)), torch.from_numpy(t)).backward()
    num = loss_gradient(model, x, t)
    np.testing.assert_allclose(port.fc1.weight.grad.numpy().T, num["W1"], atol=1e-8)
    np.testing.assert_allclose(port.fc2.bias.grad.numpy(), num["b2"], atol=1e-8)


# --- float32: the NumPy loss differenced in float64 ---------------------------------------------
# float32's step (1e-2) crosses the ReLU kinks near the point, so its differences clear no
# port; these generated models (tests/generated) were left unexplained that way

def generated_case(**fields):
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from generated.build import build_case
    from generated.spec import Spec
    base = dict(dtype="float32", log_from="logits", eps=None, reduction="mean", labels="onehot",
                dropout=None, inverted=True, p=0.5, bn=None, bn_eps=1e-05, reg=0.0, np_bug=None,
                mode=None)
    return build_case(Spec(**{**base, **fields}), "numpy_gradient")


FLOAT32_WRONG_BACKWARDS = {
    "book, batch norm, sum for mean": dict(
        style="book", D=5, H=7, C=1, N=11, seed=179, bias="col",
        order=("W1", "beta1", "W2", "b1", "b2", "gamma1"), head="scores", loss="bce",
        bn="row", bn_eps=1e-06, port_head="probs"),
    "plain, penalty forgotten": dict(
        style="plain", D=5, H=7, C=1, N=34, seed=200, bias="col", order=("W2", "W1", "b2", "b1"),
        head="probs", loss="bce", reg=0.1, port_head="scores"),
}


@pytest.mark.parametrize("fields", FLOAT32_WRONG_BACKWARDS.values(), ids=FLOAT32_WRONG_BACKWARDS)
def test_a_float32_numpy_backward_wrong_for_its_loss_is_named(fields):
    case = generated_case(**fields)
    assert case.numpy_model.params["W1"].dtype == np.float32
    # the truth, independent of the check: the planted backward against the loss's own
    # central differences in float64
    x = case.x.astype(np.float64)
    model64 = generated_case(**{**fields, "dtype": "float64"}).numpy_model
    g, num = model64.gradient(x, case.t), loss_gradient(model64, x, case.t)
    assert max(float(np.max(np.abs(g[k] - num[k]))) for k in g) > 1e-2
    report = check_port(case.numpy_model, case.port, case.x, case.t, **case.options)
    assert not report.passed
    assert "numpy_gradient" in codes(report)
    assert not PORT_BLAME & set(codes(report))
    assert report.first_mismatch["phase"] in ("backward", "loss")


def test_a_wrong_float32_port_on_a_right_numpy_model_is_still_the_ports(batch, monkeypatch):
    x, t = batch
    made = spy(monkeypatch)
    report = check_port(w.BookL2Net(lam=0.0, forget=False), SignFlippedBias(),
                        x.astype(np.float32), t, dtype="float32")
    assert report.first_mismatch["where"] == "b1"
    assert "numpy_gradient" not in codes(report)
    assert made == [(["b1"], False)]


def test_float32_kinks_never_make_a_right_numpy_backward_look_wrong():
    net = w.BookL2Net(lam=0.0, forget=False)
    net.params["b1"][:8] = 0.0
    x, t = w.batch()
    x[:10] = 0.0
    report = check_port(net, StepRelu(lam=0.0), x.astype(np.float32), t, dtype="float32")
    assert not report.passed
    assert "numpy_gradient" not in codes(report)


class Float32Inside(w.SumGradientNet):
    """A loss that casts back to float32 whatever its parameters' dtype."""

    def loss(self, x, t):
        return np.float32(super().loss(np.asarray(x, np.float32), t))


def test_a_loss_computed_in_float32_whatever_its_parameters_is_differenced_as_it_is(batch):
    x, t = batch
    model = w.make_sum_gradient()
    inside = Float32Inside.__new__(Float32Inside)
    inside.__dict__.update(model.__dict__)

    class Run:
        pass
    from compare.port.reference import reference_side
    run = Run()
    run.np = reference_side(inside, "float32")
    run.dtype, run.x, run.t = "float32", x.astype(np.float32), t
    run.np_loss = run.np.loss(run.x, t)
    side = reference_gradient._loss_side(run)
    assert side.dtype == "float32" and side.params is run.np.params
    plain = Run()
    plain.np = reference_side(model, "float32")
    plain.dtype, plain.x, plain.t = "float32", x.astype(np.float32), t
    plain.np_loss = plain.np.loss(plain.x, t)
    side = reference_gradient._loss_side(plain)
    assert side.dtype == "float64" and side.claim_dtype == "float32"
    assert all(p.dtype == np.float64 for p in side.params.values())
    assert plain.np.params["W1"].dtype == np.float32  # the run's own side untouched
