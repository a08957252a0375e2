"""``compare.port.diagnosis``: each usual porting bug is named on its own, and nothing else is.

The arrays are real: the book's two-layer net's gradients on 100 MNIST
images, its float32 twin's, the 1e-7 gap in closed form, and torch's own
softmax and reductions for the wrong-axis bugs.
"""
import json

import numpy as np
import pytest
import torch

import numpy_impl as N
from compare import book_gap
from compare.port.diagnosis import CODES, diagnose


@pytest.fixture(scope="module")
def grads(mnist_batch):
    x, t = mnist_batch
    net = N.TwoLayerNet(784, 50, 10, seed=0)
    return net.gradient(x, t), book_gap(net.params, x, t)


def codes(found):
    json.dumps(found, allow_nan=False)  # JSON-safe, always
    assert all(h["code"] in CODES and h["text"] for h in found)
    return [h["code"] for h in found]


# --- nothing to name ----------------------------------------------------------------------

def test_a_correct_array_gets_nothing(grads):
    g, _ = grads
    rng = np.random.RandomState(0)
    for name, e in g.items():
        assert diagnose(e, e.copy()) == []
        # float64 round-off of a different summation order
        assert diagnose(e, e * (1 + 1e-15 * rng.randn(*e.shape))) == [], name


@pytest.mark.parametrize("relative", [1e-3, 1e-1])
def test_a_random_error_is_not_a_scale_or_anything_else(grads, relative):
    g, _ = grads
    rng = np.random.RandomState(1)
    for name, e in g.items():
        assert diagnose(e, e * (1 + relative * rng.randn(*e.shape)), batch_size=100) == [], name
        assert diagnose(e, e + relative * np.abs(e).max() * rng.randn(*e.shape)) == [], name


# --- one bug each -------------------------------------------------------------------------

def test_a_missing_division_by_the_batch_size(grads):
    g, _ = grads
    found = diagnose(g["W1"], g["W1"] * 100, batch_size=100)
    assert codes(found) == ["scale"]
    assert found[0]["factor"] == pytest.approx(100) and found[0]["batch_size"] is True
    assert "missing / batch_size" in found[0]["text"] and "100" in found[0]["text"]


def test_an_extra_division_and_a_plain_factor(grads):
    g, _ = grads
    extra = diagnose(g["b1"], g["b1"] / 100, batch_size=100)
    assert codes(extra) == ["scale"] and "extra / batch_size" in extra[0]["text"]
    half = diagnose(g["W2"], g["W2"] * 0.5, batch_size=100)
    assert codes(half) == ["scale"] and half[0]["batch_size"] is False
    assert half[0]["factor"] == pytest.approx(0.5)


def test_a_sign_flip_is_sign_and_not_also_a_scale_of_minus_one(grads):
    g, _ = grads
    found = diagnose(g["b2"], -g["b2"], batch_size=100)
    assert codes(found) == ["sign"] and found[0]["factor"] == -1


def test_a_transposed_weight_square_or_not(mnist_batch):
    x, t = mnist_batch
    square = N.TwoLayerNet(784, 10, 10, seed=0).gradient(x, t)["W2"]
    assert not np.allclose(square, square.T)
    found = diagnose(square, square.T.copy())
    assert codes(found) == ["transpose"] and "square" in found[0]["text"]
    w1 = N.TwoLayerNet(784, 50, 10, seed=0).gradient(x, t)["W1"]
    found = diagnose(w1, w1.T.copy())
    assert codes(found) == ["transpose"]
    assert found[0]["actual_shape"] == [50, 784] and found[0]["expected_shape"] == [784, 50]


def test_a_constant_shift(grads):
    g, _ = grads
    found = diagnose(g["b1"], g["b1"] + 0.01)
    assert codes(found) == ["offset"] and found[0]["shift"] == pytest.approx(0.01)


def test_one_side_all_zeros_is_unused(grads):
    g, _ = grads
    found = diagnose(g["b1"], np.zeros(50))
    assert codes(found) == ["unused"] and found[0]["side"] == "actual"
    found = diagnose(np.zeros((50, 10)), g["W2"])
    assert codes(found) == ["unused"] and found[0]["side"] == "expected"
    assert diagnose(np.zeros(3), np.zeros(3)) == []


def test_the_book_1e7_gap_either_way(grads):
    g, gap = grads
    for name in g:
        with_eps = g[name] + gap[name]
        found = diagnose(g[name], with_eps, known={"log_eps": gap[name]})
        assert codes(found) == ["log_eps"] and found[0]["sign"] == 1, name
        assert "actual has the book's log(y + 1e-7)" in found[0]["text"]
        found = diagnose(with_eps, g[name], known={"log_eps": gap[name]})
        assert codes(found) == ["log_eps"] and found[0]["sign"] == -1, name
    # a known gap does not explain a different error
    assert diagnose(g["W2"], g["W2"] + 3 * gap["W2"], known={"log_eps": gap["W2"]}) == []


def test_float32_in_a_float64_run(grads, mnist_batch):
    g, _ = grads
    x, t = mnist_batch
    found = diagnose(g["W1"], g["W1"].astype(np.float32))
    assert codes(found) == ["dtype"] and found[0]["evidence"] == "dtype"
    # the float32 net's own gradient, brought back to float64: float32 numbers throughout
    g32 = N.TwoLayerNet(784, 50, 10, seed=0, dtype=np.float32).gradient(x.astype(np.float32), t)
    for name in g:
        found = diagnose(g[name], g32[name].astype(np.float64))
        assert codes(found) == ["dtype"] and found[0]["evidence"] == "float32 values", name
    # round-off of float32 size in values that are not float32 numbers: weak evidence
    rng = np.random.RandomState(2)
    noisy = g["W2"] * (1 + 2e-7 * rng.randn(*g["W2"].shape))
    found = diagnose(g["W2"], noisy)
    assert codes(found) == ["dtype"] and found[0]["evidence"] == "float32 round-off"
    # a float32 run has no float32 leak to find
    assert diagnose(g["W2"], noisy, dtype="float32") == []


def test_softmax_over_the_wrong_axis(grads):
    rng = np.random.RandomState(3)
    logits = rng.randn(100, 10)
    right = N.softmax(logits)
    wrong = torch.softmax(torch.from_numpy(logits), dim=0).numpy()
    found = diagnose(right, wrong, inputs=logits)
    assert codes(found) == ["axis"]
    assert (found[0]["op"], found[0]["expected_axis"], found[0]["actual_axis"]) == ("softmax", 1, 0)
    # without the inputs, the sums still tell
    found = diagnose(right, wrong)
    assert codes(found) == ["axis"] and found[0]["actual_axis"] == 0
    log_wrong = torch.log_softmax(torch.from_numpy(logits), dim=0).numpy()
    found = diagnose(np.log(right), log_wrong, inputs=logits)
    assert codes(found) == ["axis"] and found[0]["op"] == "log_softmax"


def test_a_bias_gradient_summed_over_the_wrong_axis(grads):
    rng = np.random.RandomState(4)
    dy = rng.randn(100, 10)  # the output delta that feeds db2
    right, wrong = dy.sum(axis=0), torch.from_numpy(dy).sum(dim=1).numpy()
    found = diagnose(right, wrong, inputs=dy)
    assert codes(found) == ["axis"]
    assert (found[0]["op"], found[0]["expected_axis"], found[0]["actual_axis"]) == ("sum", 0, 1)
    # different shapes and no inputs: nothing to say
    assert diagnose(right, wrong) == []


def test_the_callers_tolerance_is_used(grads):
    g, _ = grads
    nearly = g["W2"] * 100 * (1 + 1e-6 * np.random.RandomState(5).randn(*g["W2"].shape))
    assert diagnose(g["W2"], nearly, batch_size=100) == []  # 1e-6 off a factor, in float64
    found = diagnose(g["W2"], nearly, batch_size=100, tolerance=(1e-5, 0.0))
    assert codes(found) == ["scale"]


def test_a_single_number_is_not_any_multiple_of_another():
    assert diagnose(np.float64(2.3), np.float64(4.1)) == []
    assert codes(diagnose(np.float64(2.3), np.float64(230.0), batch_size=100)) == ["scale"]
    assert codes(diagnose(np.float64(2.3), np.float64(-2.3))) == ["sign"]


def test_unknown_known_differences_are_refused():
    with pytest.raises(ValueError, match="log_eps"):
        diagnose(np.ones(2), np.zeros(2), known={"eps": np.ones(2)})
