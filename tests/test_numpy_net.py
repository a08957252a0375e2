"""TwoLayerNet on the NumPy side: backprop against central differences on real MNIST."""
import numpy as np
import pytest

import numpy_impl as npi
from numpy_impl.random_stream import BookRandomStream


def test_backprop_matches_numerical_gradient_on_mnist(mnist_batch):
    # Float64, h = 1e-4: truncation h^2|f'''|/6 and round-off eps|f|/h are both
    # ~1e-11 here; the loss's 1e-7 adds ~1e-7 * |dL/dy| / y ~ 1e-8 (the SPEC's
    # gap between the loss with and without it). 1e-7 absolute holds both.
    x, t = mnist_batch
    net = npi.TwoLayerNet(784, 50, 10, seed=0)
    analytic = net.gradient(x, t)
    numerical = net.numerical_gradient(x, t)
    for key in npi.PARAM_NAMES:
        assert analytic[key].shape == net.params[key].shape
        np.testing.assert_allclose(numerical[key], analytic[key], rtol=0, atol=1e-7, err_msg=key)


@pytest.mark.slow  # a whole process or a long run: seconds
def test_fast_numerical_gradient_equals_the_books_loop(mnist_batch):
    # The same central differences, organised differently: they can differ only
    # by round-off in the loss, eps*|loss|/h ~ 2.2e-16*2.3/1e-4 ~ 5e-12.
    x, t = mnist_batch
    net = npi.TwoLayerNet(784, 4, 10, weight_init_std=0.1, seed=3)
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    for key in npi.PARAM_NAMES:
        np.testing.assert_allclose(fast[key], loop[key], rtol=0, atol=1e-9, err_msg=key)
    assert np.count_nonzero(fast["W1"]) > 100  # the comparison is not of zeros


@pytest.mark.slow
def test_fast_numerical_gradient_equals_the_books_loop_full_network(mnist_batch):
    x, t = mnist_batch
    net = npi.TwoLayerNet(784, 50, 10, seed=0)
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    for key in npi.PARAM_NAMES:
        np.testing.assert_allclose(fast[key], loop[key], rtol=0, atol=1e-9, err_msg=key)


def test_one_hot_and_index_labels_agree(mnist_batch):
    x, t = mnist_batch
    one_hot = np.eye(10)[t]
    net = npi.TwoLayerNet(784, 50, 10, seed=1)
    assert net.loss(x, t) == net.loss(x, one_hot)
    assert net.accuracy(x, t) == net.accuracy(x, one_hot)
    for key, value in net.gradient(x, t).items():
        np.testing.assert_allclose(value, net.gradient(x, one_hot)[key], rtol=1e-13, atol=1e-17)


def test_seeded_weights_are_the_books_draws():
    # The book: np.random.seed(S); W1 = 0.01 * randn(784, 50); W2 = 0.01 * randn(50, 10).
    rng = np.random.RandomState(7)
    W1, W2 = 0.01 * rng.randn(784, 50), 0.01 * rng.randn(50, 10)
    net = npi.TwoLayerNet(784, 50, 10, seed=7)
    np.testing.assert_array_equal(net.params["W1"], W1)
    np.testing.assert_array_equal(net.params["W2"], W2)
    np.testing.assert_array_equal(net.params["b1"], np.zeros(50))
    # and the training stream continues where the weights stopped
    stream = BookRandomStream.for_training(7, 784, 50, 10)
    np.testing.assert_array_equal(stream.batch_indices(60000, 100), rng.choice(60000, 100))


def test_initial_loss_is_log_10(mnist_batch):
    # Tiny weights make every class nearly equally likely: logits are
    # sum_j z_j W2[j, k] with z ~ 0.5 and W2 ~ 0.01 randn, so they spread by
    # about 0.5 * 0.01 * sqrt(50) ~ 0.035 and the loss stays within a few
    # hundredths of -log(0.1).
    x, t = mnist_batch
    net = npi.TwoLayerNet(784, 50, 10, seed=0)
    assert net.loss(x, t) == pytest.approx(-np.log(0.1 + 1e-7), abs=0.03)


def test_float32_network_stays_float32(mnist_batch):
    x, t = mnist_batch
    net = npi.TwoLayerNet(784, 50, 10, seed=0, dtype=np.float32)
    grads = net.gradient(x, t)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert net.predict(x).dtype == np.float32
