"""The training loop's in-place backprop step is the book's step, bit for bit.

``BackpropStep`` (numpy_impl/backprop_step.py, torch_impl/backprop_step.py)
replaces ``grad = net.gradient(...)``, ``params[key] -= lr * grad[key]`` and
``loss = net.loss(...)`` in ``train``. It claims the same operations in the
same order, so the comparison here is exact equality, not a tolerance.
"""
import numpy as np
import pytest
import torch

from numpy_impl.random_stream import BookRandomStream


def _dtype(side, name):
    return getattr(np if side.name == "numpy" else torch, name)


def _labels(t, form):
    if form == "indices":
        return t.astype(np.int64)
    one_hot = np.eye(10)[t]
    if form == "one-hot":
        return one_hot
    return 0.9 * one_hot + 0.01  # label smoothing: not one-hot, still a valid target


def _book_step(net, x_train, t_train, mask, learning_rate):
    x_batch, t_batch = x_train[mask], t_train[mask]
    grad = net._gradient(x_batch, t_batch)
    for key in ("W1", "b1", "W2", "b2"):
        net.params[key] -= learning_rate * grad[key]
    return float(net._loss(x_batch, t_batch))


@pytest.mark.parametrize("dtype", ["float64", pytest.param("float32", marks=pytest.mark.slow)])
@pytest.mark.parametrize("form", ["indices", "one-hot", "soft"])
def test_step_equals_gradient_update_and_loss(impl_side, mnist, dtype, form):
    side = impl_side
    (x_train, t_train), _ = mnist
    dt = _dtype(side, dtype)
    x = side.arr(x_train[:2000], dtype=dtype)
    t = _labels(t_train[:2000], form)
    t = side.arr(t, dtype=dtype if t.ndim == 2 else None)
    book, fast = side.net(784, 50, 10, dtype=dt), side.net(784, 50, 10, dtype=dt)
    step = side.mod.backprop_step.BackpropStep(fast.params, x, t, batch_size=100)

    rng = np.random.RandomState(4)
    for i in range(25):
        mask = side.arr(rng.randint(0, 2000, 100))
        expected = _book_step(book, x, t, mask, 0.1)
        assert step(mask, 0.1) == expected, f"loss differs at step {i}"
    for key in ("W1", "b1", "W2", "b2"):
        np.testing.assert_array_equal(side.np(fast.params[key]), side.np(book.params[key]),
                                      err_msg=key)


def test_step_keeps_no_state_between_batches(impl_side, mnist):
    # Each call must read only its batch: a step that reuses last batch's
    # labels or activations would still train, just wrongly.
    side = impl_side
    (x_train, t_train), _ = mnist
    x, t = side.arr(x_train[:500], dtype="float64"), side.arr(t_train[:500].astype(np.int64))
    first, second = side.net(784, 50, 10), side.net(784, 50, 10)
    a = side.mod.backprop_step.BackpropStep(first.params, x, t, batch_size=50)
    b = side.mod.backprop_step.BackpropStep(second.params, x, t, batch_size=50)
    mask = side.arr(np.arange(100, 150))
    a(side.arr(np.arange(50)), 0.1)  # a sees another batch first...
    for key in ("W1", "b1", "W2", "b2"):  # ...from the same parameters
        second.params[key][...] = first.params[key]
    assert a(mask, 0.1) == b(mask, 0.1)


def test_train_uses_the_nets_own_gradient_when_it_is_not_the_books(impl_side, mnist):
    # A subclass that changes the gradient (a port under test, a broken one)
    # must be trained through its own method, not the in-place copy of the book's.
    side = impl_side
    (x_train, t_train), (x_test, t_test) = mnist
    calls = []

    class Recorded(side.mod.TwoLayerNet):
        def _gradient(self, x, t):
            calls.append(x.shape[0])
            return super()._gradient(x, t)

    def run(cls):
        net = cls(784, 50, 10, seed=0)
        data = (side.arr(x_train[:1000]), side.arr(t_train[:1000].astype(np.int64)),
                side.arr(x_test[:100]), side.arr(t_test[:100].astype(np.int64)))
        return side.mod.train(net, *data, iters_num=12, batch_size=50, seed=0)

    recorded, plain = run(Recorded), run(side.mod.TwoLayerNet)
    assert calls == [50] * 12
    assert recorded == plain  # and the book's gradient gives the same run either way


def test_a_sum_that_overflows_is_not_divergence(impl_side, mnist):
    # train checks finiteness through one sum of the parameters; finite
    # weights whose sum overflows must fall through to the element-wise test.
    side = impl_side
    (x_train, t_train), (x_test, t_test) = mnist
    net = side.net(784, 50, 10)
    net.params["W1"][0, :2] = 1e308  # pixel 0 is always 0 in MNIST: the loss stays finite
    data = (side.arr(x_train[:1000]), side.arr(t_train[:1000].astype(np.int64)),
            side.arr(x_test[:100]), side.arr(t_test[:100].astype(np.int64)))
    hist = side.mod.train(net, *data, iters_num=3, batch_size=50, seed=0)
    assert not hist["diverged"] and len(hist["train_loss"]) == 3


@pytest.mark.parametrize("train_size, batch_size", [(60000, 100), (1000, 50), (7, 3), (1, 1)])
def test_batch_draws_are_the_books_choice(train_size, batch_size):
    # BookRandomStream draws with randint, which is what choice(n, k) calls
    # for a draw with replacement; the book calls choice.
    stream, book = BookRandomStream(11), np.random.RandomState(11)
    for _ in range(200):
        np.testing.assert_array_equal(stream.batch_indices(train_size, batch_size),
                                      book.choice(train_size, batch_size))
    after, book_after = stream.get_state(), book.get_state()
    np.testing.assert_array_equal(after[1], book_after[1])
    assert after[2:] == book_after[2:]
