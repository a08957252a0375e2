"""The parity table: what passes, what fails and how the failure is named."""
import json

import numpy as np
import pytest
import torch

import numpy_impl
from compare import assert_gradients_close, book_gap, compare_gradients, tolerance
from compare.ch4.gap import target_probabilities
from compare.parity import EPS, Tolerance


def grads(seed=0, dtype=np.float64):
    rng = np.random.RandomState(seed)
    return {"W1": rng.randn(6, 4).astype(dtype), "b1": rng.randn(4).astype(dtype),
            "W2": rng.randn(4, 3).astype(dtype), "b2": rng.randn(3).astype(dtype)}


def copy(g):
    return {k: v.copy() for k, v in g.items()}


# --- the criterion ----------------------------------------------------------------------

def test_identical_dicts_pass_with_zero_error():
    g = grads()
    report = assert_gradients_close(copy(g), g)
    assert report.passed and report.failed == []
    assert all(row.max_abs == 0 and row.max_rel == 0 for row in report.rows)


def test_combined_atol_rtol_criterion_at_its_edge():
    # |a - e| <= atol + rtol |e|: with e = 2, rtol 1e-3, atol 1e-3 the bound is 3e-3.
    tol = Tolerance(rtol=1e-3, atol=1e-3)
    e = {"b2": np.array([2.0])}
    assert compare_gradients({"b2": np.array([2.0 + 2.9e-3])}, e, tol=tol).passed
    assert not compare_gradients({"b2": np.array([2.0 + 3.1e-3])}, e, tol=tol).passed


def test_the_failing_parameter_is_named_with_its_worst_element():
    g = grads()
    bad = copy(g)
    bad["W1"][3, 2] += 1e-6  # far above round-off (1e-12 + 1e-10 |e|)
    report = compare_gradients(bad, g)
    assert report.failed == ["W1"]
    row = report.rows[0]
    assert row.worst_index == (3, 2)
    assert row.worst_actual == bad["W1"][3, 2] and row.worst_expected == g["W1"][3, 2]
    assert row.max_abs == pytest.approx(1e-6, rel=1e-6)
    with pytest.raises(AssertionError) as info:
        assert_gradients_close(bad, g)
    message = str(info.value)
    assert "W1" in message and "(3, 2)" in message and "FAIL" in message
    for line in message.splitlines():  # the others are listed as fine
        if line.startswith(("b1 ", "W2 ", "b2 ")):
            assert line.rstrip().endswith("ok")


def test_relative_error_skips_exact_zeros_but_flags_a_nonzero_against_zero():
    e = {"b1": np.array([0.0, 1.0])}
    same = compare_gradients({"b1": np.array([0.0, 1.0])}, e)
    assert same.rows[0].max_rel == 0.0
    off = compare_gradients({"b1": np.array([1e-3, 1.0])}, e)
    assert off.rows[0].max_rel == float("inf") and not off.passed


@pytest.mark.parametrize("problem, make, words", [
    ("shape", lambda g: {**g, "W2": g["W2"].T.copy()}, ["W2", "shape (3, 4) != expected (4, 3)"]),
    ("dtype", lambda g: {**g, "b1": g["b1"].astype(np.float32)}, ["b1", "float32"]),
    ("missing", lambda g: {k: v for k, v in g.items() if k != "b2"}, ["b2", "missing"]),
    ("extra", lambda g: {**g, "W3": np.zeros(2)}, ["W3", "unexpected"]),
    ("nan", lambda g: {**g, "W1": np.where(np.arange(24).reshape(6, 4) == 5, np.nan, g["W1"])},
     ["W1", "NaN", "(1, 1)"]),
    ("inf", lambda g: {**g, "b2": np.array([np.inf, 0.0, 0.0])}, ["b2", "infinity"]),
])
def test_structural_problems_fail_and_are_named(problem, make, words):
    g = grads()
    report = compare_gradients(make(copy(g)), g, dtype="float64")
    assert not report.passed
    text = report.to_text()
    for word in words:
        assert word in text, (problem, text)
    assert len(report.failed) == 1


def test_a_float32_leak_fails_a_float64_run_even_when_the_values_are_close():
    g = grads()
    leaked = {**copy(g), "W1": g["W1"].astype(np.float32).astype(np.float64)}
    # values rounded to float32 are 1e-8 off: out of round-off tolerance as well
    assert compare_gradients(leaked, g).failed == ["W1"]
    leaked["W1"] = g["W1"].astype(np.float32)
    report = compare_gradients(leaked, g, dtype="float64")
    assert report.failed == ["W1"]
    assert "actual dtype is float32 in a float64 run" in report.rows[0].problem


def test_torch_tensors_are_accepted_on_either_side():
    g = grads()
    tensors = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in g.items()}
    assert compare_gradients(tensors, g, dtype=torch.float64).passed
    assert compare_gradients(g, tensors).passed


def test_a_port_mixing_arrays_and_tensors_fails_on_that_key():
    g = grads()
    mixed = {k: torch.from_numpy(v.copy()) for k, v in g.items()}
    mixed["b2"] = g["b2"].copy()  # one NumPy array among tensors
    report = compare_gradients(mixed, g)
    assert report.failed == ["b2"]
    assert "numpy value among torch ones" in report.rows[-1].problem


def test_non_dicts_and_non_arrays_are_refused():
    with pytest.raises(TypeError, match="dicts"):
        compare_gradients([1.0], {"a": 1.0})
    with pytest.raises(TypeError, match="NumPy arrays or torch tensors"):
        compare_gradients({"a": [1.0, 2.0]}, {"a": np.zeros(2)})


def test_report_renders_as_json():
    g = grads()
    bad = copy(g)
    bad["b2"][0] = np.nan
    report = compare_gradients(bad, g)
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["passed"] is False and data["failed"] == ["b2"]
    assert [p["name"] for p in data["params"]] == ["W1", "b1", "W2", "b2"]
    assert data["rtol"] == report.tolerance.rtol


# --- the policy ---------------------------------------------------------------------------

def test_policy_numbers_follow_their_formulas():
    # analytic: 784 eps bounds the relative round-off of the longest sum
    assert tolerance("analytic", "float64").rtol >= 784 * EPS["float64"]
    assert tolerance("analytic", "float32").rtol >= 784 * EPS["float32"]
    # numerical: + 4 eps L / h + h^2 |f'''| / 6, L = 2.5, |f'''| <= 0.1
    t64 = tolerance("numerical", "float64", 1e-4)
    assert t64.atol == pytest.approx(1e-12 + 4 * EPS["float64"] * 2.5 / 1e-4 + 0.1 * 1e-8 / 6)
    assert tolerance("numerical", np.float32, 1e-2).atol < 2e-4
    # the book's h = 1e-4 in float32: round-off alone is near 1e-2
    assert tolerance("numerical", "float32", 1e-4).atol > 1e-2
    with pytest.raises(ValueError):
        tolerance("roughly", "float64")
    with pytest.raises(ValueError):
        tolerance("analytic", "float16")


@pytest.fixture(scope="module")
def net_and_batch(mnist_batch):
    x, t = mnist_batch
    return numpy_impl.TwoLayerNet(784, 50, 10, seed=0), x[:50], t[:50]


def test_float32_needs_the_wider_step(net_and_batch):
    """In float32 the book's h = 1e-4 loses the gradient to round-off; h = 1e-2 does not.

    Truth is the float64 gradient of the same loss (backprop plus the closed-form gap).
    """
    net64, x, t = net_and_batch
    truth = {k: v + book_gap(net64.params, x, t)[k] for k, v in net64.gradient(x, t).items()}
    net32 = numpy_impl.TwoLayerNet(784, 50, 10, seed=0, dtype=np.float32)
    x32 = x.astype(np.float32)
    wide = net32.numerical_gradient(x32, t, h=1e-2)
    book = net32.numerical_gradient(x32, t, h=1e-4)
    tol32 = tolerance("numerical", "float32", 1e-2)
    assert compare_gradients(wide, truth, tol=tol32, check_dtype=False).passed
    # 100x more round-off: out of the h = 1e-2 tolerance, within the one stated for 1e-4
    assert not compare_gradients(book, truth, tol=tol32, check_dtype=False).passed
    assert compare_gradients(book, truth, tol=tolerance("numerical", "float32", 1e-4),
                             check_dtype=False).passed
    scale = max(np.abs(v).max() for v in truth.values())
    worst = max(np.abs(book[k] - truth[k]).max() for k in truth)
    assert worst / scale > 1e-3  # percent-level error, as the policy says


# --- the 1e-7 gap ---------------------------------------------------------------------------

def _autograd(params, x, t, epsilon):
    """Plain torch autograd of -mean log(softmax(...)[t] + epsilon): independent of both sides."""
    p = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
    a2 = torch.sigmoid(torch.from_numpy(x) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    y = torch.softmax(a2, dim=1)[torch.arange(x.shape[0]), torch.from_numpy(t)]
    loss = -torch.log(y + epsilon).mean()
    return {k: g.numpy() for k, g in zip(p, torch.autograd.grad(loss, list(p.values())))}


def test_closed_form_gap_equals_autograd_of_the_two_losses(net_and_batch):
    net, x, t = net_and_batch
    with_eps = _autograd(net.params, x, t, 1e-7)
    without = _autograd(net.params, x, t, 0.0)
    expected = {k: with_eps[k] - without[k] for k in with_eps}
    gap = book_gap(net.params, x, t)
    # the gap is ~1e-6 of the gradient; a difference of two autograd results carries
    # round-off ~eps * |gradient| ~ 1e-18, so compare against that scale
    scale = max(np.abs(v).max() for v in without.values())
    assert compare_gradients(gap, expected, tol=Tolerance(1e-6, 1e-15 * scale)).passed
    # and the size the SPEC states: about 1e-7 / y of the gradient (y ~ 0.1 at init)
    min_y = target_probabilities(net.params, x, t).min()
    assert 0.05 < min_y < 0.15
    for k in gap:
        ratio = np.abs(gap[k]).max() / np.abs(without[k]).max()
        assert 0.3 * 1e-7 / min_y < ratio < 3 * 1e-7 / min_y


def test_the_gap_is_allowed_for_by_name_not_by_a_wider_tolerance(net_and_batch):
    net, x, t = net_and_batch
    numerical, backprop = net.numerical_gradient(x, t), net.gradient(x, t)
    plain = compare_gradients(numerical, backprop, kind="numerical", dtype="float64")
    assert not plain.passed  # the gap (1e-8) is far above finite-difference error (2e-10)
    named = compare_gradients(numerical, backprop, kind="numerical", dtype="float64",
                              allowance=book_gap(net.params, x, t))
    assert named.passed
    assert "allowed 1e-7 gap" in named.to_text()
    assert named.tolerance == plain.tolerance
