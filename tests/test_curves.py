"""Curve parity: both sides trained from the same start on the same batches."""
import time

import numpy as np
import pytest

from compare import compare_curves
from compare.ch4.curves import compare_histories


@pytest.fixture(scope="module")
def small(mnist):
    """2000 training and 500 test images: enough for the curves, quick to evaluate on."""
    (x_train, t_train), (x_test, t_test) = mnist
    eye = np.eye(10)
    return (x_train[:2000], eye[t_train[:2000]]), (x_test[:500], eye[t_test[:500]])


@pytest.mark.slow  # a few seconds each: with the full suite
@pytest.mark.parametrize("impl", ["literal", "module"])
def test_float64_curves_agree_to_round_off(small, impl):
    result = compare_curves(small, seed=3, iters=60, eval_every=20, impl=impl, progress=False)
    assert result.passed, result.to_text()
    assert len(result.numpy["train_loss"]) == len(result.torch["train_loss"]) == 60
    # 1e-9 is the target; each step adds round-off near 2.2e-16, so far less is expected
    assert result.max_rel <= 1e-9
    assert result.acc_equal and result.numpy["eval_iters"] == [0, 20, 40]
    if impl == "module":
        # the module's own loss lacks the 1e-7: it differs by about 1e-7 / y, not by drift
        assert 1e-8 < result.module_loss_gap < 1e-4


def test_float32_curves_within_the_float32_bound(small):
    result = compare_curves(small, seed=3, iters=40, eval_every=20, dtype="float32", progress=False)
    assert result.passed, result.to_text()
    assert result.max_rel <= 1e-4


def _history(losses, acc=(0.1, 0.5)):
    return {"train_loss": list(losses), "train_acc": list(acc), "test_acc": list(acc),
            "eval_iters": [0, 10], "diverged": False, "diverged_at": None}


SETTINGS = {"dtype": "float64", "iters": 20, "impl": "literal", "seed": 0, "batch_size": 100,
            "lr": 0.1, "device": "cpu", "eval_every": 10}


def test_the_first_iteration_out_of_tolerance_is_reported():
    a = np.linspace(2.3, 0.5, 20)
    b = a.copy()
    b[7] *= 1 + 2e-9  # just past 1e-9 relative
    b[12] *= 1 + 5e-9
    b[3] *= 1 + 5e-10  # within tolerance
    result = compare_histories(_history(a), _history(b), settings=SETTINGS)
    assert not result.passed
    assert result.first_out == 7 and result.worst_iter == 12
    assert result.max_rel == pytest.approx(5e-9, rel=1e-3)
    assert "2 of 20 losses" in result.verdict()


def test_accuracy_differences_fail_in_float64_and_are_reported():
    a = np.linspace(2.3, 0.5, 20)
    result = compare_histories(_history(a), _history(a, acc=(0.1, 0.5 + 1 / 60000)),
                               settings=SETTINGS)
    assert not result.passed and not result.acc_equal
    assert "accuracies differ" in result.verdict()


def test_different_lengths_nan_and_divergence_fail():
    a = np.linspace(2.3, 0.5, 20)
    short = compare_histories(_history(a), _history(a[:15]), settings=SETTINGS)
    assert "numpy recorded 20 losses, torch 15" in short.verdict()
    b = a.copy()
    b[4] = np.nan
    diverged = _history(b)
    diverged["diverged"], diverged["diverged_at"] = True, 4
    result = compare_histories(_history(a), diverged, settings=SETTINGS)
    assert not result.passed and result.first_out == 4
    assert "torch diverged at iteration 4" in result.verdict()


@pytest.mark.slow
def test_the_books_full_run_agrees_on_both_sides(mnist, capsys):
    """The book's run, 10000 iterations on all of MNIST in float64: every loss within
    1e-9 relative and every accuracy identical."""
    (x_train, t_train), (x_test, t_test) = mnist
    eye = np.eye(10)
    data = (x_train, eye[t_train]), (x_test, eye[t_test])
    start = time.perf_counter()
    result = compare_curves(data, seed=0, iters=10000, progress=False)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n{result.to_text()}\n(total {elapsed:.0f} s)")
    assert result.passed, result.to_text()
    assert len(result.numpy["train_loss"]) == 10000
    assert result.max_rel <= 1e-9 and result.acc_equal
    assert len(result.numpy["eval_iters"]) == 17  # iteration 0 and every 600
    assert result.numpy["test_acc"][-1] > 0.9  # the book reports about 0.95
