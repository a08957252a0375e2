"""An eps inside the log of any classification loss is a known difference, fitted and named;
a cause is named only when its hypothesis, applied, reproduces the loss and the gradients.

The NumPy models here are written in the styles that showed the false verdicts: the
deeplearning.ai course's features-first binary net whose cost has ``log(AL + eps)`` (its
backward without it), a softmax net with ``-log(p + eps)`` in its loss and backward, a
regression with the book's ``0.5 * sum`` of squares, and backprops off by a factor. The
expected sizes are computed here from the formulas, in NumPy.
"""
import math

import numpy as np
import pytest
from torch import nn

from compare import check_port
from compare.port.tolerance import port_tolerance
from courses import dlai_deep_net as dlai
from courses import regression
from courses.torch_ports import DlaiPort, RegressionPort

DIMS = (6, 5, 1)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


class EpsCostNet(dlai.DeepNet):
    """The course's binary net with an eps in its cost: ``log(AL + eps)`` (and, ``both``,
    ``log(1 - AL + eps)``); its backward is the course's, without the eps."""

    def __init__(self, eps, both=False, backprop=True, spread=12.0):
        super().__init__(DIMS)
        self.eps, self.both = eps, both
        # a wide output, so that some examples are confidently right or wrong and the eps
        # shows above float64's round-off
        self.params["W2"] *= spread
        self.params["b2"][:] = -3
        if not backprop:
            self.gradient = None  # no backprop: central differences of the cost

    def cost(self, X, Y, eps, both):
        AL, _ = dlai.L_model_forward(X, self.params)
        m = Y.shape[1]
        return float(np.squeeze(-np.sum(Y * np.log(AL + eps) + (1 - Y) * np.log(1 - AL + (eps if both else 0))) / m))

    def loss(self, X, Y):
        return self.cost(X, Y, self.eps, self.both)


def binary_batch(n=60, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, DIMS[0]), (rng.rand(n, 1) < 0.5).astype(float)


def _log_eps(report):
    return [k for k in report.known if k["code"] == "log_eps"]


@pytest.mark.parametrize("eps, both", [(1e-10, False), (1e-8, False), (1e-12, False), (1e-7, False),
                                       (1e-8, True), (1e-7, True)])
def test_a_right_port_with_an_eps_in_the_binary_cost_passes_and_the_eps_is_named(eps, both):
    x, t = binary_batch()
    net = EpsCostNet(eps, both)
    report = check_port(net, DlaiPort(DIMS), x, t, loss="binary_cross_entropy")
    assert report.passed, report.to_text()
    # the gap, from the formula in NumPy: the cost without the eps minus the cost with it
    X, Y = x.T, t.T
    gap = net.cost(X, Y, 0.0, False) - net.cost(X, Y, eps, both)
    loss_tol = port_tolerance(np.array(net.cost(X, Y, 0.0, False)), "float64")
    assert gap > 10 * (loss_tol.atol + loss_tol.rtol * abs(net.cost(X, Y, eps, both))), \
        "the batch must show the eps above round-off"
    (known,) = _log_eps(report)
    assert known["text"].startswith("loss:")
    # the size derived through the port equals the NumPy gap to the round-off of two losses
    assert abs(known["size"] - gap) <= 2 * (loss_tol.atol + loss_tol.rtol * abs(gap))
    shown = f"1e-{-int(round(math.log10(eps)))}"
    assert f"log(p + {shown})" in known["text"]
    assert ("log(1 - p + " + shown + ")" in known["text"]) == both
    # the course's backward has no eps: the gradients agree as they are
    assert all(c.allowance is None for c in report.checks if c.phase == "backward")


def test_an_eps_in_both_logs_without_backprop_passes_by_central_differences():
    x, t = binary_batch(seed=1)
    # outputs no nearer 0 or 1 than 1e-3: central differences of the cost stay accurate
    net = EpsCostNet(1e-7, both=True, backprop=False, spread=2.0)
    AL, _ = dlai.L_model_forward(x.T, net.params)
    assert min(AL.min(), 1 - AL.max()) > 1e-3
    report = check_port(net, DlaiPort(DIMS), x, t, loss="binary_cross_entropy")
    assert report.passed, report.to_text()
    assert "central differences" in report.settings["gradients"]
    assert "log(1 - p + 1e-7)" in _log_eps(report)[0]["text"]


class SoftmaxEpsNet:
    """Linear, tanh, Linear, softmax and ``-log(p + eps)``, with its exact backprop: the
    gradient of ``-log(p_t + eps)`` is ``p_t / (p_t + eps)`` times the cross-entropy's."""

    def __init__(self, eps, seed=1):
        rng = np.random.RandomState(seed)
        self.eps = eps
        self.params = {"W1": rng.randn(6, 8), "b1": np.zeros(8), "W2": 3 * rng.randn(8, 4), "b2": np.zeros(4)}

    def _forward(self, x):
        h = np.tanh(x @ self.params["W1"] + self.params["b1"])
        z = h @ self.params["W2"] + self.params["b2"]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return h, e / e.sum(axis=1, keepdims=True)

    def predict(self, x):
        h = np.tanh(x @ self.params["W1"] + self.params["b1"])
        return h @ self.params["W2"] + self.params["b2"]

    def cost(self, x, t, eps):
        _, p = self._forward(x)
        return float(-np.mean(np.log(p[np.arange(len(t)), t] + eps)))

    def loss(self, x, t):
        return self.cost(x, t, self.eps)

    def gradient(self, x, t):
        h, p = self._forward(x)
        rows = np.arange(len(t))
        pt = p[rows, t]
        dz = p.copy()
        dz[rows, t] -= 1
        dz *= (pt / (pt + self.eps))[:, None] / len(t)
        dh = dz @ self.params["W2"].T * (1 - h ** 2)
        return {"W1": x.T @ dh, "b1": dh.sum(axis=0), "W2": h.T @ dz, "b2": dz.sum(axis=0)}


def softmax_port():
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4))


@pytest.mark.parametrize("eps", [1e-8, 1e-10])
def test_a_softmax_loss_with_an_eps_in_loss_and_backward_passes_and_is_never_dtype(eps):
    rng = np.random.RandomState(3)
    x, t = rng.randn(50, 6), rng.randint(0, 4, 50)
    net = SoftmaxEpsNet(eps)
    report = check_port(net, softmax_port(), x, t)
    assert report.passed, report.to_text()
    codes = [k["code"] for k in report.known]
    assert codes == ["log_eps", "log_eps"]  # the loss, and the gradients (backprop with the eps)
    loss_known, grad_known = report.known
    gap = net.cost(x, t, 0.0) - net.cost(x, t, eps)
    tol = port_tolerance(np.array(net.cost(x, t, 0.0)), "float64")
    assert abs(loss_known["size"] - gap) <= 2 * (tol.atol + tol.rtol * gap)
    assert f"log(p + 1e-{-int(round(math.log10(eps)))})" in loss_known["text"]
    # the gradients' gap, from the formula: this backprop minus the cross-entropy's
    with_eps = net.gradient(x, t)
    net.eps = 0.0
    without = net.gradient(x, t)
    size = max(float(np.max(np.abs(with_eps[k] - without[k]))) for k in with_eps)
    assert grad_known["size"] == pytest.approx(size, rel=1e-6)
    assert "dtype" not in str(report.diagnosis) + str(report.known)


def test_an_eps_that_differs_between_loss_and_backward_fails_and_names_no_dtype():
    """A loss with 1e-8, a backward with 1e-4: the loss's eps is named, the gradients part."""
    rng = np.random.RandomState(4)
    x, t = rng.randn(50, 6), rng.randint(0, 4, 50)
    net = SoftmaxEpsNet(1e-8)
    backward = SoftmaxEpsNet(1e-4)
    net.gradient = backward.gradient
    backward.params = net.params
    report = check_port(net, softmax_port(), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "backward"
    assert all(d["code"] != "dtype" for d in report.diagnosis)


def test_float32_sized_difference_in_a_float64_run_is_not_dtype():
    """A loss off by a relative 3e-8 (the size of float32 round-off) with nothing in float32:
    unexplained, with what was measured, never dtype."""
    rng = np.random.RandomState(5)
    x, t = rng.randn(50, 6), rng.randint(0, 4, 50)
    net = SoftmaxEpsNet(0.0)
    plain = net.loss
    net.loss = lambda x, t: plain(x, t) * (1 + 3e-8)
    report = check_port(net, softmax_port(), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert report.diagnosis == []
    assert report.first_mismatch["unexplained"].startswith("unexplained")
    assert "dtype" not in str(report.to_dict()["diagnosis"])


# --- a factor between the losses, or in the gradients alone --------------------------------

class HalfSumNoBackprop(regression.RegressionNetHalfSum):
    """The book's 0.5 * sum of squares with no backprop: checked by central differences."""

    gradient = None


@pytest.mark.slow
@pytest.mark.parametrize("backprop", [True, False])
def test_half_sum_against_mse_loss_on_500_rows_is_scale_500_never_weight_decay(backprop):
    x, t = regression.make_data(500)
    sizes = (regression.INPUT_SIZE, regression.HIDDEN_SIZE, regression.OUTPUT_SIZE)
    net = regression.RegressionNetHalfSum(*sizes) if backprop else HalfSumNoBackprop(*sizes)
    report = check_port(net, RegressionPort(), x, t, loss="mse_loss")
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    codes = [d["code"] for d in report.diagnosis]
    assert codes == ["scale"], report.to_text()
    # the factor from the formulas: the mean over N*k elements against half their sum
    y = net.predict(x)
    factor = np.mean((y - t) ** 2) / (0.5 * np.sum((y - t) ** 2))
    assert factor == pytest.approx(1 / 500, rel=1e-12)
    assert report.diagnosis[0]["factor"] == pytest.approx(factor, rel=1e-9)
    assert report.diagnosis[0]["expression"] == "N*k/2"


class SumGradient(regression.RegressionNet):
    """Loss the mean over N*k elements, gradient of the sum: off by N*k, the losses agree."""

    def _dy(self, y, t):
        return 2 * (y - t)


def test_a_gradient_off_by_n_k_with_agreeing_losses_is_not_a_loss_reduction():
    x, t = regression.make_data(50)
    net = SumGradient(regression.INPUT_SIZE, regression.HIDDEN_SIZE, regression.OUTPUT_SIZE)
    report = check_port(net, RegressionPort(), x, t, loss="mse_loss")
    loss_row = next(c for c in report.checks if c.phase == "loss")
    assert loss_row.passed and report.first_mismatch["phase"] == "backward"
    # the losses agree, so no reduction of the loss explains it: the NumPy gradient is the
    # one that parts from its own loss, by N*k
    (found,) = report.diagnosis
    n_k = x.shape[0] * regression.OUTPUT_SIZE
    assert found["code"] == "numpy_gradient"
    assert found["factor"] == pytest.approx(n_k, rel=1e-9)
    assert sorted(found["parameters"]) == ["W1", "W2", "b1", "b2"]
    assert "reduction" not in found["text"] and "the NumPy loss is" not in found["text"]


class OffsetLossNoBackprop(HalfSumNoBackprop):
    """The mean squared error plus a constant: no usual bug makes it."""

    def loss(self, x, t):
        return float(np.mean((self.predict(x) - t) ** 2)) + 0.05


def test_an_unfittable_mismatch_is_unexplained_and_names_no_code():
    x, t = regression.make_data(100)
    net = OffsetLossNoBackprop(regression.INPUT_SIZE, regression.HIDDEN_SIZE, regression.OUTPUT_SIZE)
    report = check_port(net, RegressionPort(), x, t, loss="mse_loss")
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    # a penalty 0.5 * lambda * sum(W**2) fits the loss alone; lambda * W does not fit the
    # gradients (the constant has none), so weight_decay is dropped
    assert report.diagnosis == []
    text = report.first_mismatch["unexplained"]
    assert "max abs 0.05" in text and "weight_decay" in text
    assert "likely cause: unexplained" in report.to_text()
    assert "unexplained: no usual porting bug" in report.to_markdown()
    assert "unexplained: no usual porting bug" in report._repr_html_()
    assert report.to_dict()["diagnosis"] == []


def test_a_loss_lowered_by_an_offset_that_no_written_eps_gives_fails():
    """A NumPy loss below the port's by an arbitrary constant: some eps would give it, but
    not one a person writes (one significant digit), so it is no known difference."""
    rng = np.random.RandomState(6)
    x, t = rng.randn(50, 6), rng.randint(0, 4, 50)
    net = SoftmaxEpsNet(0.0)
    plain = net.loss
    offset = 3.7e-4
    net.loss = lambda x, t: plain(x, t) - offset
    # the eps that would give it, solved here from the formula: far from any written number
    lo, hi = 1e-12, 1.0
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if net.cost(x, t, mid) > net.cost(x, t, 0.0) - offset else (lo, mid)
    digit = lo / 10 ** math.floor(math.log10(lo))
    assert abs(digit - round(digit)) > 0.05
    report = check_port(net, softmax_port(), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "loss"
    assert _log_eps(report) == []
