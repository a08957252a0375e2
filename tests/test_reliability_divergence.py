"""Divergence is reported, not buried, on both sides.

What diverges on this network. The book's ``lr=10`` does not: the backprop
step is bounded (``|y - t| / N <= 1/N`` per sample, sigmoid outputs in
(0, 1), pixels in [0, 1]), the sigmoid saturates and ``log(y + 1e-7)`` caps
the loss at ``-log(1e-7) = 16.1``, so the run stays finite however bad it
is; it stays finite up to ``lr=1e306`` (measured: 200 iterations on 2000
MNIST images).
Only an update ``lr * grad`` beyond the float64 maximum (1.8e308) makes a
parameter infinite: ``lr=1e308`` diverges at once.
"""
import math
import warnings

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def small_mnist(mnist):
    """1000 training and 200 test images, float64 (the nets' dtype), index labels."""
    (x_train, t_train), (x_test, t_test) = mnist
    return (x_train[:1000].astype(np.float64), t_train[:1000].astype(np.int64),
            x_test[:200].astype(np.float64), t_test[:200].astype(np.int64))


def on_side(side, data):
    return [side.arr(v) for v in data]


def numpy_warnings(record):
    """NumPy's own floating-point warnings ("overflow encountered in ...")."""
    return [w for w in record if "encountered" in str(w.message)]


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
def test_the_books_lr_10_stays_finite(side, small_mnist):
    net = side.mod.TwoLayerNet(784, 50, 10, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not one warning: nothing overflows
        history = side.mod.train(net, *on_side(side, small_mnist), iters_num=60,
                                 batch_size=100, learning_rate=10.0, seed=0)
    assert not history["diverged"] and history["diverged_at"] is None
    assert len(history["train_loss"]) == 60
    # y <= 1 and y >= 0 bound every loss in [-log(1 + 1e-7), -log(1e-7)]
    assert all(-1e-7 <= loss <= -math.log(1e-7) for loss in history["train_loss"])


@pytest.mark.parametrize("dtype_name, lr", [("float64", 1e308), ("float32", 3e38)])
def test_overflowing_rate_stops_with_one_warning_and_the_history_so_far(side, small_mnist,
                                                                        dtype_name, lr):
    dtype = getattr(np, dtype_name) if side.name == "numpy" else getattr(torch, dtype_name)
    data = on_side(side, small_mnist)
    net = side.mod.TwoLayerNet(784, 50, 10, seed=0, dtype=dtype)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        history = side.mod.train(net, *data, iters_num=50, batch_size=100, learning_rate=lr,
                                 seed=0, eval_every=1)
    assert history["diverged"] is True
    stop = history["diverged_at"]
    assert stop is not None and stop < 5  # "quickly"
    # exactly one warning, ours, with the iteration and the rate; no NumPy flood
    assert len(record) == 1, [str(w.message) for w in record]
    message = str(record[0].message)
    assert record[0].category is RuntimeWarning
    assert f"iteration {stop}" in message and repr(lr) in message
    # the history runs up to and including the diverged iteration, nothing after
    assert len(history["train_loss"]) == stop + 1
    assert all(math.isfinite(v) for v in history["train_loss"][:stop])
    params_finite = all(bool(np.isfinite(side.np(p)).all()) for p in net.params.values())
    assert not (params_finite and math.isfinite(history["train_loss"][stop]))
    assert history["eval_iters"] == list(range(stop))  # evaluated after every finite iteration

    # and what it kept is what the same run stopped one iteration earlier records
    if stop > 0:
        again = side.mod.TwoLayerNet(784, 50, 10, seed=0, dtype=dtype)
        before = side.mod.train(again, *data, iters_num=stop, batch_size=100, learning_rate=lr,
                                seed=0, eval_every=1)
        assert not before["diverged"]
        for key in ("train_loss", "train_acc", "test_acc", "eval_iters"):
            assert history[key][:len(before[key])] == before[key]


def test_gradient_descent_reports_a_non_finite_x(side):
    # x <- x - lr * 2x: with lr = 1e300, x is 6e300 after one step and f(x)
    # = x**2 overflows at the next, so x turns NaN at step 1.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        x, x_history = side.mod.gradient_descent(side.mod.function_2, side.arr([-3.0, 4.0]),
                                                 lr=1e300, step_num=20, history=True)
    diverged = [str(w.message) for w in record if "diverged" in str(w.message)]
    assert len(diverged) == 1 and "step 1 " in diverged[0] and "lr=1e+300" in diverged[0]
    x, x_history = side.np(x), side.np(x_history)
    assert not np.isfinite(x).all()
    # the points before the divergence are kept as they were
    np.testing.assert_array_equal(x_history[0], [-3.0, 4.0])
    assert np.isfinite(x_history[1]).all() and abs(x_history[1][0]) > 1e300


@pytest.mark.parametrize("lr", [1e300, 1e308])
def test_gradient_descent_overflow_warnings_do_not_grow_with_steps(side, lr):
    """A diverged descent stops, so NumPy's overflow warnings come from its last
    steps only: as many for 10 steps as for 1000, not one per step."""
    counts = []
    for step_num in (10, 1000):
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            side.mod.gradient_descent(side.mod.function_2, side.arr([-3.0, 4.0]), lr=lr,
                                      step_num=step_num)
        counts.append(len(numpy_warnings(record)))
        assert sum("diverged" in str(w.message) for w in record) == 1
    assert counts[0] == counts[1] <= 6
