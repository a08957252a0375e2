"""The book's training loop on the NumPy side."""
import numpy as np
import pytest

import numpy_impl as npi


def _run(mnist, iters, seed, **kw):
    (x_train, t_train), (x_test, t_test) = mnist
    net = npi.TwoLayerNet(784, 50, 10, seed=seed)
    return net, npi.train(net, x_train, t_train, x_test, t_test, iters_num=iters, seed=seed, **kw)


@pytest.mark.slow  # a whole process or a long run: seconds
def test_seeded_runs_are_bit_identical(mnist):
    _, a = _run(mnist, 120, seed=5, eval_every=60)
    _, b = _run(mnist, 120, seed=5, eval_every=60)
    assert a == b
    _, c = _run(mnist, 120, seed=6, eval_every=60)
    assert c["train_loss"] != a["train_loss"]


def test_history_layout_follows_the_book(mnist):
    (x_train, t_train), (x_test, t_test) = mnist
    small = (x_train[:1000], t_train[:1000], x_test[:500], t_test[:500])
    net = npi.TwoLayerNet(784, 50, 10, seed=0)
    hist = npi.train(net, *small, iters_num=25, batch_size=100, seed=0)
    # iter_per_epoch = 1000 / 100 = 10: accuracy after iterations 0, 10, 20
    assert hist["eval_iters"] == [0, 10, 20]
    assert len(hist["train_loss"]) == 25 and len(hist["test_acc"]) == 3
    assert not hist["diverged"] and hist["diverged_at"] is None
    assert all(isinstance(v, float) for v in hist["train_loss"])


@pytest.mark.slow
def test_training_replays_the_books_loop(mnist):
    # Written out as the book writes ch04/train_neuralnet.py, after np.random.seed(3).
    (x_train, t_train), (x_test, t_test) = mnist
    x_train = x_train[:2000].astype(np.float64)
    t_train = np.eye(10)[t_train[:2000]]
    rng = np.random.RandomState(3)
    params = {"W1": 0.01 * rng.randn(784, 50), "b1": np.zeros(50),
              "W2": 0.01 * rng.randn(50, 10), "b2": np.zeros(10)}
    book = npi.TwoLayerNet(784, 50, 10)
    book.params = params
    losses = []
    for _ in range(30):
        mask = rng.choice(2000, 100)
        grad = book.gradient(x_train[mask], t_train[mask])
        for key in ("W1", "b1", "W2", "b2"):
            params[key] -= 0.1 * grad[key]
        losses.append(book.loss(x_train[mask], t_train[mask]))
    net = npi.TwoLayerNet(784, 50, 10, seed=3)
    hist = npi.train(net, x_train, t_train, x_test[:10], t_test[:10], iters_num=30, seed=3)
    assert hist["train_loss"] == losses
    for key in params:
        np.testing.assert_array_equal(net.params[key], params[key])


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
def test_divergence_stops_and_keeps_the_history(mnist):
    # Sigmoid saturates and the gradient vanishes, so this network does not blow
    # up for any lr up to 1e307 (measured); lr = 1e308 overflows the weights.
    with pytest.warns(RuntimeWarning, match="diverged at iteration"):
        _, hist = _run(mnist, 200, seed=0, learning_rate=1e308, eval_every=1000)
    assert hist["diverged"]
    assert len(hist["train_loss"]) == hist["diverged_at"] + 1 < 200


@pytest.mark.slow
def test_full_book_run_reaches_the_books_accuracy(mnist):
    # The book reports a test accuracy of 0.9465 after 10000 iterations.
    _, hist = _run(mnist, 10000, seed=0)
    assert hist["test_acc"][-1] >= 0.94
    assert hist["train_acc"][-1] >= 0.94
    assert hist["eval_iters"][-1] == 9600 and len(hist["test_acc"]) == 17


@pytest.mark.slow  # a whole process or a long run: seconds
def test_numerical_gradient_training_follows_backprop(mnist):
    # Same start, same batches: numerical and backprop updates differ by the
    # ~1e-8 gradient gap, so a few steps keep the losses within ~1e-7.
    _, a = _run(mnist, 3, seed=1, eval_every=100)
    _, b = _run(mnist, 3, seed=1, eval_every=100, gradient="numerical")
    np.testing.assert_allclose(b["train_loss"], a["train_loss"], rtol=1e-7)
