"""Nothing lost: inputs come back bit for bit, on both sides.

``numerical_gradient`` perturbs its point in place (the book's idiom needs
it), so it must restore it exactly also when ``f`` raises or Ctrl-C arrives;
every other public function leaves its arguments alone.
"""
import numpy as np
import pytest
import torch


def snapshot(side, value):
    """The exact bytes (and shape and dtype) of an array or tensor."""
    arr = side.np(value)
    return arr.shape, arr.dtype, arr.tobytes()


def tricky(dtype):
    """Values whose restore is easy to get wrong: -0.0 (== 0.0 but other bits),
    the smallest subnormal, 1e17 (x + h - h != x), 0.1 (inexact), huge and tiny."""
    info = np.finfo(dtype)
    return np.array([0.1, -0.0, info.smallest_subnormal, 1e17, -3.0, info.max / 4, 2.5,
                     -info.tiny], dtype=dtype)


class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
# the call that raises: f(x+h) or f(x-h), of the first, second, fourth and last element
@pytest.mark.parametrize("fail_at", [1, 2, 3, 8, 16])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numerical_gradient_restores_x_when_f_raises(side, error, fail_at, dtype):
    x = side.arr(tricky(dtype).reshape(2, 4))
    before = snapshot(side, x)
    calls = []

    def f(v):
        calls.append(1)
        if len(calls) == fail_at:
            raise error("inside f")
        return (v * 0).sum()

    with pytest.raises(error, match="inside f"):
        side.mod.numerical_gradient(f, x, h=1e-3)
    assert snapshot(side, x) == before


def test_numerical_gradient_restores_a_view_and_its_base(side):
    base = side.arr(np.arange(12, dtype=np.float64).reshape(3, 4) / 7)
    before = snapshot(side, base)
    view = base[:, ::2]  # not contiguous: the nudges must reach the base and leave it as it was

    def f(v):
        if float(v[2, 1]) != float(base[2, 2]):  # the view and the base must agree
            raise AssertionError("the nudge did not reach the base")
        return (v ** 2).sum()

    grad = side.mod.numerical_gradient(f, view)
    assert snapshot(side, base) == before
    # the gradient of sum(v**2) is 2v; a quadratic has no truncation error, round-off eps*|f|/h
    np.testing.assert_allclose(side.np(grad), 2 * side.np(view), rtol=0, atol=1e-9)


def test_numerical_gradient_restores_x_on_success(side):
    x = side.arr(tricky(np.float64).reshape(2, 4))
    before = snapshot(side, x)
    with pytest.warns(RuntimeWarning, match=r"vanished against x\[0, 3\]"):  # the 1e17
        side.mod.numerical_gradient(lambda v: (v * 0).sum(), x, h=1e-3)
    assert snapshot(side, x) == before


def test_gradient_descent_leaves_init_x_alone(side):
    init_x = side.arr([-3.0, 4.0])
    before = snapshot(side, init_x)
    x = side.mod.gradient_descent(side.mod.function_2, init_x, lr=0.1, step_num=100)
    assert snapshot(side, init_x) == before
    assert abs(float(x[0])) < 1e-6  # it did descend (to about 6e-10, as the book prints)


def test_network_methods_leave_params_and_batch_alone(side):
    net = side.net(6, 5, 3)
    rng = np.random.RandomState(2)
    x, t = side.arr(rng.rand(7, 6)), side.arr(rng.randint(0, 3, 7))
    one_hot = side.arr(np.eye(3)[side.np(t)])
    params = {key: snapshot(side, value) for key, value in net.params.items()}
    batch = [snapshot(side, v) for v in (x, t, one_hot)]
    calls = [lambda: net.predict(x), lambda: net.loss(x, t), lambda: net.accuracy(x, one_hot),
             lambda: net.gradient(x, t), lambda: net.gradient(x, one_hot),
             lambda: net.numerical_gradient(x, t),
             lambda: net.numerical_gradient(x, one_hot, method="loop")]
    if side.name == "torch":
        calls.append(lambda: net.autograd_gradient(x, t))
    for call in calls:
        call()
        assert {key: snapshot(side, value) for key, value in net.params.items()} == params
        assert [snapshot(side, v) for v in (x, t, one_hot)] == batch


def test_simple_net_gradient_leaves_w_alone(side):
    net = side.mod.SimpleNet(side.arr([[0.47355232, 0.9977393, 0.84668094],
                                       [0.85557411, 0.03563661, 0.69422093]]))
    before = snapshot(side, net.W)
    x, t = side.arr([0.6, 0.9]), side.arr([0.0, 0.0, 1.0])
    net.numerical_gradient(x, t)
    net.gradient(x, t)
    assert snapshot(side, net.W) == before


def test_functions_leave_their_inputs_alone(side):
    rng = np.random.RandomState(3)
    y = side.arr(rng.rand(4, 3))
    t = side.arr([0, 2, 1, 1])
    before = [snapshot(side, y), snapshot(side, t)]
    side.mod.softmax(y)
    side.mod.sigmoid(y)
    side.mod.cross_entropy_error(y, t)
    side.mod.cross_entropy_error(y[0], t[:1])
    side.mod.softmax_loss(y, t)
    assert [snapshot(side, y), snapshot(side, t)] == before


@pytest.mark.parametrize("labels", ["index", "one_hot"])
def test_train_leaves_the_data_alone(side, labels):
    rng = np.random.RandomState(4)
    # float64 data, the net's own dtype: the arrays themselves reach the loop, not copies
    x_train, x_test = side.arr(rng.rand(50, 4)), side.arr(rng.rand(20, 4))
    t_train, t_test = rng.randint(0, 2, 50), rng.randint(0, 2, 20)
    if labels == "one_hot":
        t_train, t_test = np.eye(2)[t_train], np.eye(2)[t_test]
    t_train, t_test = side.arr(t_train), side.arr(t_test)
    data = (x_train, t_train, x_test, t_test)
    before = [snapshot(side, v) for v in data]
    net = side.net()
    side.mod.train(net, *data, iters_num=20, batch_size=5, learning_rate=0.5, seed=0)
    assert [snapshot(side, v) for v in data] == before


def test_train_leaves_the_shared_mnist_alone(mnist):
    """float32 MNIST is converted for a float64 net: the caller's arrays stay as they were."""
    import numpy_impl
    import torch_impl

    (x_train, t_train), (x_test, t_test) = mnist
    x_train, t_train = x_train[:500], t_train[:500]
    x_test, t_test = x_test[:100], t_test[:100]
    before = [v.tobytes() for v in (x_train, t_train, x_test, t_test)]
    numpy_impl.train(numpy_impl.TwoLayerNet(784, 10, 10, seed=0), x_train, t_train, x_test,
                     t_test, iters_num=5, batch_size=10, seed=0)
    tensors = [torch.from_numpy(v) for v in (x_train, t_train, x_test, t_test)]
    torch_impl.train(torch_impl.TwoLayerNet(784, 10, 10, seed=0), *tensors, iters_num=5,
                     batch_size=10, seed=0)
    assert [v.tobytes() for v in (x_train, t_train, x_test, t_test)] == before
