"""A loss that loses precision: the directional check judges a failing direction against
the loss's own noise, measured along it, never against a widened tolerance.

The NumPy model is a newcomer's logistic regression, ``y = sigmoid(x @ w + b)`` and the
binary cross-entropy written from its formula, ``-mean(t log y + (1 - t) log(1 - y))``.
With saturated logits (weights of scale 3 on 5 features, ``|z|`` 10 to 20) ``1 - y``
cancels: one misclassified sample's ``log(1 - y)`` carries an error of ``eps e**|z|``,
far above ``eps |f|``. The port is ``nn.Linear(5, 1)`` with
``binary_cross_entropy_with_logits``, right; the wrong ports have a gradient hook
(the sum instead of the mean, a sign, a transposed weight) and the same forward pass.
Truth for the noise estimate comes from noise put in by hand and from the rounding of
an expression whose exact value is known.
"""
import numpy as np
import pytest
import torch
from torch import nn

from compare import check_port, cli
from compare.port.numerical import (NOISE_POINTS, check_gradient_directions,
                                    noise_level)

HERE = "tests/test_port_noisy_loss.py"
SATURATED = (3, 5, 10, 17, 20)  # seeds whose largest misclassified |z| is 15 to 20
SATURATED_FLOAT32 = (4, 21, 28)  # 9.5 to 10: beyond, 1 - y in float32 is a few ulps of 1


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


class LogisticRegression:
    """The loss from its formula, ``log(1 - y)`` as written; no backprop."""

    def __init__(self, d=5, k=1, seed=0, scale=3.0):
        rng = np.random.RandomState(seed)
        self.params = {"w": scale * rng.randn(d, k), "b": 0.3 * rng.randn(k)}

    def predict(self, x):
        return _sigmoid(x @ self.params["w"] + self.params["b"])

    def loss(self, x, t):
        y = self.predict(x).reshape(t.shape)
        return -np.mean(t * np.log(y) + (1 - t) * np.log(1 - y))


class WithBackprop(LogisticRegression):
    def gradient(self, x, t):
        y = self.predict(x).reshape(t.shape)
        dz = (y - t).reshape(len(x), -1) / t.size  # the mean over every target
        return {"w": x.T @ dz, "b": dz.sum(axis=0)}


def batch(seed, d=5, k=1, n=40):
    """The inputs and 0/1 targets of the seed's model (drawn after its parameters)."""
    rng = np.random.RandomState(seed)
    rng.randn(d, k), rng.randn(k)
    x = rng.randn(n, d)
    t = (rng.rand(n, k) < 0.5).astype(np.float64)
    return x, t[:, 0] if k == 1 else t


def exact_gradient(model, x, t):
    """``x.T (y - t) / N`` with ``y`` from the logits: the gradient of the exact loss."""
    return WithBackprop.gradient(model, x, t)


def loss_of(model, x, t):
    return lambda: model.loss(x, t)


def saturation(model, x, t):
    """The largest ``|z|`` of a misclassified sample: there ``1 - y`` (or ``y``) cancels."""
    z = (x @ model.params["w"] + model.params["b"]).reshape(t.shape)
    return float(np.max(np.abs(z[(z > 0) != (t > 0.5)])))


class Hooked(nn.Linear):
    """``nn.Linear`` whose weight gradient is changed on its way back: a wrong port with
    the right forward pass."""

    def __init__(self, d, k, bug):
        super().__init__(d, k)
        self.bug = bug

    def forward(self, x):
        weight = self.weight
        if self.bug and torch.is_grad_enabled():
            weight = weight.clone()
            weight.register_hook({"sum": lambda g: g * 40, "sign": lambda g: -g,
                                  "transpose": lambda g: g.T}[self.bug])
        return nn.functional.linear(x, weight, self.bias)


def make_numpy(seed=3):
    return LogisticRegression(seed=seed)


def make_port():
    return nn.Linear(5, 1)


def make_wrong_port():
    return Hooked(5, 1, "sign")


# --- the noise estimate against known noise -------------------------------------------------

@pytest.mark.parametrize("sigma", [1e-9, 1e-6])
def test_the_noise_level_is_the_noise_put_in(sigma):
    """A smooth curve plus seeded noise of known deviation, at random points of a span."""
    levels = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        s = rng.uniform(-2e-4, 2e-4, NOISE_POINTS + 1)
        f = np.log1p(np.exp(3 + 40 * s)) + sigma * rng.standard_normal(s.size)
        levels.append(noise_level(s, f) / sigma)
    assert 0.9 < np.mean(levels) < 1.1  # unbiased within its own spread over 200 draws
    assert 0.3 < min(levels) and max(levels) < 2


def test_the_noise_level_is_the_rounding_of_log_one_minus_sigmoid():
    """``log(1 - sigmoid(z))`` computed as written, against its exact value ``-softplus(z)``
    (``logaddexp``, to an ulp): the deviation of the rounding is the truth."""
    rng = np.random.default_rng(0)
    for z0 in (12.0, 18.0):
        s = rng.uniform(-2e-4, 2e-4, NOISE_POINTS + 1)
        naive = np.log(1 - _sigmoid(z0 + s))
        rounding = naive + np.logaddexp(0, z0 + s)
        assert np.std(rounding) > 1e3 * np.finfo(float).eps  # far above eps |f|
        assert 0.5 < noise_level(s, naive) / np.std(rounding) < 2


def test_a_smooth_curve_has_no_noise_above_its_rounding():
    s = np.random.default_rng(1).uniform(-2e-4, 2e-4, NOISE_POINTS + 1)
    f = np.log1p(np.exp(3 + 40 * s))  # accurate to an ulp: |f| 3
    assert noise_level(s, f) < 4 * np.finfo(float).eps * 3


# --- the directional check on the saturated model --------------------------------------------

@pytest.mark.parametrize("seed", SATURATED)
def test_the_exact_gradient_passes_against_the_noisy_loss(seed):
    model = LogisticRegression(seed=seed)
    x, t = batch(seed)
    assert saturation(model, x, t) > 15
    report = check_gradient_directions(loss_of(model, x, t), model.params,
                                       exact_gradient(model, x, t))
    assert report.passed, report.to_text()
    noisy = [d for row in report.rows for d in row.directions if d.eps_roundoff is not None]
    for d in noisy:  # the noise measured is far above eps's bound, and sized the tolerance
        assert d.roundoff > 100 * d.eps_roundoff
        assert d.error <= d.tolerance
    assert any(noisy), "no direction needed the noise: the case does not test it"


@pytest.mark.parametrize("seed", SATURATED)
def test_without_the_noise_the_same_check_fails(seed, monkeypatch):
    """The noise path is what changed the verdict: without it, eps |f| / h fails."""
    import compare.port.numerical as numerical
    monkeypatch.setattr(numerical, "_rejudge_noise", lambda *a: None)
    model = LogisticRegression(seed=seed)
    x, t = batch(seed)
    report = check_gradient_directions(loss_of(model, x, t), model.params,
                                       exact_gradient(model, x, t), locate="none")
    assert not report.passed


@pytest.mark.parametrize("seed", SATURATED)
@pytest.mark.parametrize("bug", ["sum", "sign", "transpose", "bias"])
def test_wrong_gradients_still_fail_at_their_parameter(seed, bug):
    k = 3 if bug == "transpose" else 1
    model = LogisticRegression(k=k, seed=seed)
    x, t = batch(seed, k=k)
    g = exact_gradient(model, x, t)
    wrong = {"sum": dict(g, w=g["w"] * 40), "sign": dict(g, w=-g["w"]),
             "transpose": dict(g, w=g["w"].reshape(k, 5).T.copy()),
             "bias": dict(g, b=g["b"] * 40)}[bug]
    if bug == "transpose":
        assert not np.allclose(wrong["w"], g["w"])
    report = check_gradient_directions(loss_of(model, x, t), model.params, wrong)
    assert report.failed == (["b"] if bug == "bias" else ["w"]), report.to_text()


def test_a_direction_the_noise_swamps_is_not_judged_and_said():
    """Noise of 1e-5 on a loss whose derivative is 1e-3: at h = 1e-4 the noise bound
    (5 sigma / h = 0.35) exceeds the derivative, so the check cannot judge: a claim of 0
    is not failed, and not passed for being right either; the report says why. (A
    direction that passes at once, its Richardson estimate swollen by the noise, is
    judged weakly, and said so too: it measures no noise, as passing directions never do.)"""
    p = {"b": np.array([0.2])}

    def loss():  # noise that is a function of the point, as rounding is
        return float(1e-3 * p["b"][0] + 1e-5 * np.sin(1e9 * p["b"][0]))

    for claim in (1e-3, 0.0):
        report = check_gradient_directions(loss, p, {"b": np.array([claim])})
        row = report.rows[0]
        assert report.passed, report.to_text()
        assert row.not_judged and all(d.noise_limited for d in row.not_judged)
        assert all(d.tolerance > abs(d.claimed) for d in row.judged)
        assert "weak check" in row.note if row.judged else True
        assert "not judged: the noise bound" in row.note
        assert "exceeds the directional derivative itself" in row.note


# --- through check_port and the command line ---------------------------------------------------

@pytest.mark.parametrize("seed", SATURATED)
@pytest.mark.parametrize("numpy_model, numpy_gradient", [
    (LogisticRegression, "auto"),  # loss only: the check is from its loss alone
    (WithBackprop, "numerical"),  # its backprop set aside: central differences asked for
])
def test_a_right_port_of_the_saturated_model_passes(seed, numpy_model, numpy_gradient):
    model = numpy_model(seed=seed)
    x, t = batch(seed)
    report = check_port(model, nn.Linear(5, 1), x, t, loss="binary_cross_entropy_with_logits",
                        numpy_gradient=numpy_gradient)
    assert report.passed, report.to_text()
    assert "judged against the loss's own noise" in report.to_text()


@pytest.mark.parametrize("seed", SATURATED_FLOAT32)
def test_a_right_port_of_the_saturated_model_passes_in_float32(seed):
    model = LogisticRegression(seed=seed)
    x, t = batch(seed)
    assert saturation(model, x, t) > 9
    report = check_port(model, nn.Linear(5, 1), x, t, loss="binary_cross_entropy_with_logits",
                        dtype="float32")
    assert report.passed, report.to_text()


@pytest.mark.parametrize("bug", ["sum", "sign"])
def test_a_wrong_port_of_the_saturated_model_fails_at_the_weight(bug):
    model = LogisticRegression(seed=3)
    x, t = batch(3)
    report = check_port(model, Hooked(5, 1, bug), x, t, loss="binary_cross_entropy_with_logits")
    assert not report.passed
    failed = [c for c in report.checks if not c.passed]
    assert [(c.phase, c.where) for c in failed] == [("backward", "w")], report.to_text()


def test_the_command_line_with_data_passes_the_right_port_and_fails_the_wrong_one(
        tmp_path, capsys, monkeypatch):
    from pathlib import Path
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    x, t = batch(3)
    data = tmp_path / "saturated.npz"
    np.savez(data, x=x, t=t)
    common = ["--loss", "binary_cross_entropy_with_logits", "--data", str(data), "--no-progress"]
    assert cli.main(["port", f"{HERE}:make_numpy", f"{HERE}:make_port", *common]) == 0
    out = capsys.readouterr().out
    assert "judged against the loss's own noise" in out
    assert cli.main(["port", f"{HERE}:make_numpy", f"{HERE}:make_wrong_port", *common]) == 1
