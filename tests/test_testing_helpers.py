"""``compare.testing``: the helpers users write their own parity tests with.

Used here on the functions of both sides (each checked against autograd
and a NumPy gradient), and shown to fail, with the table, on broken ops.
"""
import numpy as np
import pytest
import torch

import numpy_impl as N
import torch_impl as T
from compare.testing import assert_same_net_gradients, assert_same_op


def away_from_zero(shape, seed=1):
    """N(0, 1) draws pushed at least 0.1 from 0, where relu and step have their kink."""
    x = np.random.RandomState(seed).randn(*shape)
    return x + 0.1 * np.sign(x)


# --- the book's functions, both sides ---------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_against_its_hand_derivative(dtype):
    reports = assert_same_op(N.sigmoid, T.sigmoid, [(4, 5)], np_grad_fn=N.sigmoid_grad, dtype=dtype)
    assert reports["backward"].rows[0].shape_actual == (4, 5)


def test_sigmoid_grad_and_relu_grad_match_both_ways():
    assert_same_op(N.sigmoid_grad, T.sigmoid_grad, [(3, 4)], grad=False)
    assert_same_op(N.relu_grad, T.relu_grad, [away_from_zero((3, 4))], grad=False)


def test_relu_against_relu_grad():
    assert_same_op(N.relu, T.relu, [away_from_zero((6, 3))], np_grad_fn=N.relu_grad)


def test_softmax_against_the_numerical_gradient():
    # each row of a softmax sums to 1: both gradients are 0 up to round-off
    assert_same_op(N.softmax, T.softmax, [(5, 10)])
    assert_same_op(N.softmax, T.softmax, [(7,)])  # one vector


@pytest.mark.parametrize("labels", ["index", "one-hot"])
def test_cross_entropy_error_both_label_forms(labels):
    rng = np.random.RandomState(0)
    y = rng.rand(5, 10) + 0.1
    t = np.array([1, 2, 3, 4, 5])
    if labels == "one-hot":
        t = np.eye(10)[t]
    # a known bound still replaces the estimate where given:
    # f = -(1/5) sum log(y_t + 1e-7): |f'''| = 2 / (5 y^3) <= 2 / (5 * 0.1^3) = 400
    assert_same_op(N.cross_entropy_error, T.cross_entropy_error, [y, t], wrt=[0],
                   third_derivative=400.0)


def test_softmax_loss_and_sum_squared_error():
    t = np.array([3, 1, 0, 2])
    assert_same_op(N.softmax_loss, T.softmax_loss, [(4, 5), t], wrt=[0])
    y, target = np.random.RandomState(2).rand(3, 4), np.eye(4)[[0, 1, 2]]
    # 0.5 sum (y - t)^2 has gradient y - t in each argument (with opposite signs)
    assert_same_op(N.sum_squared_error, T.sum_squared_error, [y, target],
                   np_grad_fn=lambda y, t: (y - t, t - y))


def test_function_1_and_function_2():
    assert_same_op(N.function_1, T.function_1, [np.array([5.0, 10.0, -3.0])],
                   np_grad_fn=lambda x: 0.02 * x + 0.1)
    assert_same_op(N.function_2, T.function_2, [np.array([3.0, 4.0])],
                   np_grad_fn=lambda x: 2 * x)
    assert_same_op(N.function_2, T.function_2, [(6, 2)], np_grad_fn=lambda X: 2 * X)  # row-wise


def test_step_and_identity():
    assert_same_op(N.step_function, T.step_function, [away_from_zero((4, 4))], grad=False)
    assert_same_op(N.identity_function, T.identity_function, [(3,)],
                   np_grad_fn=lambda x: np.ones_like(x))


# --- the helper fails, with the table, on broken ops ------------------------------------

def test_wrong_axis_is_caught_in_the_forward_pass():
    with pytest.raises(AssertionError, match="FAIL") as info:
        assert_same_op(N.softmax, lambda x: torch.softmax(x, dim=0), [(3, 4)])
    assert "forward" in str(info.value) and "out" in str(info.value)


def test_float32_leak_is_caught():
    with pytest.raises(AssertionError, match="float32"):
        assert_same_op(N.sigmoid, lambda x: torch.sigmoid(x.float()), [(3,)], grad=False)


def test_wrong_gradient_is_caught_in_the_backward_pass():
    def leaky(x):  # right values, wrong gradient: the book's relu with a leak in backward
        return torch.where(x > 0, x, 0.01 * x - (0.01 * x).detach())
    with pytest.raises(AssertionError, match="gradient of sum") as info:
        assert_same_op(N.relu, leaky, [away_from_zero((4, 4))], np_grad_fn=N.relu_grad)
    assert "d/dx0" in str(info.value)


def test_a_detached_torch_op_is_refused_for_gradients():
    with pytest.raises(AssertionError, match="autograd"):
        assert_same_op(N.sigmoid, lambda x: torch.sigmoid(x.detach()), [(3,)])


def test_numerical_fallback_catches_a_wrong_hand_gradient():
    with pytest.raises(AssertionError):
        assert_same_op(N.sigmoid, lambda x: torch.sigmoid(x) ** 2, [(3,)])


# --- whole nets ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def batch(mnist_batch):
    x, t = mnist_batch
    return x[:20], t[:20]


def test_literal_nets_agree(batch):
    reports = assert_same_net_gradients(N.TwoLayerNet(784, 50, 10, seed=1),
                                        T.TwoLayerNet(784, 50, 10, seed=1), *batch)
    labels = [r.label for r in reports]
    assert "torch numerical vs numpy numerical" in labels
    assert any(r.allowance_name == "1e-7 gap" for r in reports)


@pytest.mark.parametrize("loss", ["cross_entropy", "book"])
def test_module_agrees_with_numpy_backprop(batch, loss):
    assert_same_net_gradients(N.TwoLayerNet(784, 50, 10, seed=1),
                              T.TwoLayerNetModule(784, 50, 10, seed=1, loss=loss), *batch,
                              numerical=False)


def test_nets_with_different_parameters_are_refused(batch):
    with pytest.raises(AssertionError, match="parameters"):
        assert_same_net_gradients(N.TwoLayerNet(784, 50, 10, seed=1),
                                  T.TwoLayerNet(784, 50, 10, seed=2), *batch, numerical=False)


def test_a_broken_torch_net_is_named(batch):
    class Broken(T.TwoLayerNet):
        def _gradient(self, x, t):
            grads = super()._gradient(x, t)
            grads["b1"] = grads["b1"] * 2
            return grads

    with pytest.raises(AssertionError) as info:
        assert_same_net_gradients(N.TwoLayerNet(784, 50, 10, seed=1),
                                  Broken(784, 50, 10, seed=1), *batch, numerical=False)
    assert "FAIL torch backprop vs numpy backprop: b1" in str(info.value)


# --- the numerical fallback estimates its own truncation ----------------------------------

def probability_table():
    """Rows of 10 probabilities; sample 0's target has the smallest, 0.003383."""
    rng = np.random.RandomState(0)
    y = rng.rand(4, 10) + 0.2
    y[0, 3] = 0
    y /= y.sum(axis=1, keepdims=True)
    y[0] *= 1 - 0.003383
    y[0, 3] = 0.003383
    return y, np.array([3, 1, 4, 1])


def test_the_probability_table_is_what_the_issue_describes():
    y, _ = probability_table()
    assert np.allclose(y.sum(axis=1), 1) and y.min() == y[0, 3] == 0.003383
    # the exact gradient there, -1 / (4 (y + 1e-7)), is the issue's -73.90
    assert -1 / (4 * (y[0, 3] + 1e-7)) == pytest.approx(-73.90, abs=0.01)


@pytest.mark.parametrize("labels", ["index", "one-hot"])
def test_the_right_cross_entropy_port_passes_without_a_third_derivative_bound(labels):
    y, t = probability_table()
    if labels == "one-hot":
        t = np.eye(10)[t]
    reports = assert_same_op(N.cross_entropy_error, T.cross_entropy_error, [y, t], wrt=[0])
    row = reports["backward"].rows[0]
    # truncation h^2 |f'''| / 6 = 0.022 at y = 0.003383 is what the estimate allows for
    assert row.max_abs > 1e-2 and 0.02 < row.max_allowance < 0.1
    assert reports["backward"].allowance_name == "truncation"
    # a bound of 1 on |f'''| (the old default) is seven orders of magnitude short
    with pytest.raises(AssertionError, match="gradient of sum"):
        assert_same_op(N.cross_entropy_error, T.cross_entropy_error, [y, t], wrt=[0],
                       third_derivative=1.0)


def _with_gradient_of(value, surrogate):
    """``value`` as the output, ``surrogate``'s gradient: a port right forward, wrong backward."""
    return value.detach() + surrogate - surrogate.detach()


def _book_ce(y, t, eps=1e-7):
    idx = t if t.ndim == 1 else t.argmax(dim=1)
    return -torch.log(y[torch.arange(y.shape[0]), idx] + eps).sum() / y.shape[0]


@pytest.mark.parametrize("wrong", ["no mean in backward", "eps 1e-3 in backward",
                                   "1e-7 dropped in backward"])
def test_wrong_cross_entropy_gradients_still_fail(wrong):
    y, t = probability_table()
    surrogate = {
        "no mean in backward": lambda y, t: _book_ce(y, t) * y.shape[0],
        "eps 1e-3 in backward": lambda y, t: _book_ce(y, t, eps=1e-3),
        # off by 1e-7 / y relative: 1.5e-6 at y[3, 1] = 0.129, where the estimated
        # truncation (the numerical side's own error, 3.9e-7) is allowed for twice
        "1e-7 dropped in backward": lambda y, t: _book_ce(y, t, eps=0.0),
    }[wrong]
    port = lambda y, t: _with_gradient_of(_book_ce(y, t), surrogate(y, t))  # noqa: E731
    assert_same_op(N.cross_entropy_error, port, [y, t], wrt=[0], grad=False)  # forward is right
    with pytest.raises(AssertionError, match="gradient of sum"):
        assert_same_op(N.cross_entropy_error, port, [y, t], wrt=[0])


@pytest.mark.parametrize("wrong", ["sum, no mean", "eps 1e-3"])
def test_wrong_cross_entropy_values_fail_forward(wrong):
    y, t = probability_table()
    port = {"sum, no mean": lambda y, t: _book_ce(y, t) * y.shape[0],
            "eps 1e-3": lambda y, t: _book_ce(y, t, eps=1e-3)}[wrong]
    with pytest.raises(AssertionError, match="forward"):
        assert_same_op(N.cross_entropy_error, port, [y, t], wrt=[0])
