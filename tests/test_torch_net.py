"""SimpleNet and TwoLayerNet on the torch side, against the book, NumPy and autograd.

Tolerances. Every float64 gradient path computes the same function's
gradient; they differ only in the order of the sums inside matrix products.
The longest is over the 784 pixels, so by Higham's bound each result is
within ``gamma_784 = 784 eps`` (1.7e-13) of exact arithmetic relative to the
sum of absolute terms: the brief's 1e-10 relative holds with room to spare.
"""
import numpy as np
import pytest
import torch

import numpy_impl as npi
import torch_impl as ti

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
H = 1e-4
BOOK_W = [[0.47355232, 0.9977393, 0.84668094], [0.85557411, 0.03563661, 0.69422093]]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


def max_rel(got, expected):
    """max |got - expected| / max |expected|: the error relative to the gradient's scale."""
    got, expected = np.asarray(got), np.asarray(expected)
    return np.max(np.abs(got - expected)) / np.max(np.abs(expected))


def tensors(*arrays):
    return [torch.from_numpy(a) for a in arrays]


# -- SimpleNet ----------------------------------------------------------------

def test_simple_net_matches_book():
    net = ti.SimpleNet(torch.tensor(BOOK_W, dtype=torch.float64))
    x, t = torch.tensor([0.6, 0.9], dtype=torch.float64), torch.tensor([0, 0, 1])
    np.testing.assert_allclose(net.predict(x).numpy(), [1.05414809, 0.63071653, 1.1328074], atol=1e-8)
    assert float(net.loss(x, t)) == pytest.approx(0.92806829, abs=1e-8)
    book_dW = [[0.21924763, 0.14356247, -0.36281009], [0.32887144, 0.2153437, -0.54421514]]
    np.testing.assert_allclose(net.numerical_gradient(x, t).numpy(), book_dW, atol=1e-7)
    np.testing.assert_allclose(net.gradient(x, t).numpy(), book_dW, atol=1e-7)
    np.testing.assert_array_equal(net.W.numpy(), BOOK_W)  # the perturbation left W as it was


def test_simple_net_equals_numpy():
    for seed in (0, 7):
        assert torch.equal(ti.SimpleNet(seed=seed).W, torch.from_numpy(npi.SimpleNet(seed=seed).W))
    rng = np.random.RandomState(1)
    x, t = rng.rand(5, 2), rng.randint(0, 3, 5)
    ours, theirs = ti.SimpleNet(seed=3), npi.SimpleNet(seed=3)
    assert float(ours.loss(*tensors(x, t))) == pytest.approx(float(theirs.loss(x, t)), rel=1e-12)
    np.testing.assert_allclose(ours.gradient(*tensors(x, t)).numpy(), theirs.gradient(x, t),
                               rtol=1e-12)
    # the central differences of a loss that differs by an ulp: eps |loss| / h
    np.testing.assert_allclose(ours.numerical_gradient(*tensors(x, t)).numpy(),
                               theirs.numerical_gradient(x, t), rtol=0,
                               atol=4 * EPS64 * float(theirs.loss(x, t)) / H)


# -- TwoLayerNet: the same numbers as NumPy -----------------------------------

@pytest.mark.parametrize("seed", [0, 1, 42])
def test_same_seed_same_initial_params_bit_for_bit(seed):
    ours, theirs = ti.TwoLayerNet(784, 50, 10, seed=seed), npi.TwoLayerNet(784, 50, 10, seed=seed)
    for key in npi.PARAM_NAMES:
        assert ours.params[key].dtype == torch.float64
        assert torch.equal(ours.params[key], torch.from_numpy(theirs.params[key])), key
    small32 = ti.TwoLayerNet(6, 4, 3, weight_init_std=0.5, seed=seed, dtype=torch.float32)
    theirs32 = npi.TwoLayerNet(6, 4, 3, weight_init_std=0.5, seed=seed, dtype=np.float32)
    for key in npi.PARAM_NAMES:
        assert small32.params[key].dtype == torch.float32
        assert torch.equal(small32.params[key], torch.from_numpy(theirs32.params[key])), key


def test_gradients_of_every_path_agree_on_mnist(mnist_batch):
    # NumPy backprop, torch backprop, torch autograd (cross-entropy without the
    # 1e-7) and the nn.Module's autograd (F.cross_entropy): one gradient.
    x, t = mnist_batch
    reference = npi.TwoLayerNet(784, 50, 10, seed=0).gradient(x, t)
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    module = ti.TwoLayerNetModule.from_params(net.params, loss="cross_entropy")
    paths = {"backprop": net.gradient(*tensors(x, t)),
             "autograd": net.autograd_gradient(*tensors(x, t)),
             "module": module.gradient(*tensors(x, t))}
    for name, grads in paths.items():
        assert list(grads) == list(npi.PARAM_NAMES)
        for key in npi.PARAM_NAMES:
            assert grads[key].shape == net.params[key].shape and grads[key].dtype == torch.float64
            assert max_rel(grads[key].numpy(), reference[key]) < 1e-10, (name, key)


def test_predict_loss_accuracy_equal_numpy(mnist):
    (x_train, t_train), _ = mnist
    x, t = x_train[:500], t_train[:500]
    ours, theirs = ti.TwoLayerNet(784, 50, 10, seed=2), npi.TwoLayerNet(784, 50, 10, seed=2)
    np.testing.assert_allclose(ours.predict(torch.from_numpy(x)).numpy(), theirs.predict(x),
                               rtol=1e-12)
    loss = ours.loss(*tensors(x, t))
    assert isinstance(loss, torch.Tensor) and loss.shape == ()
    assert float(loss) == pytest.approx(float(theirs.loss(x, t)), rel=1e-12)
    acc = ours.accuracy(*tensors(x, t))
    # a Python float from count / N, as NumPy's float64 (not torch's float32 division)
    assert type(acc) is float and acc == theirs.accuracy(x, t)


def test_one_hot_and_index_labels_agree(mnist_batch):
    x, t = tensors(*mnist_batch)
    one_hot = torch.eye(10, dtype=torch.float64)[t]
    net = ti.TwoLayerNet(784, 50, 10, seed=1)
    assert float(net.loss(x, t)) == float(net.loss(x, one_hot))
    assert net.accuracy(x, t) == net.accuracy(x, one_hot)
    by_index, by_one_hot = net.gradient(x, t), net.gradient(x, one_hot)
    auto_index, auto_one_hot = net.autograd_gradient(x, t), net.autograd_gradient(x, one_hot)
    for key in npi.PARAM_NAMES:
        # y - onehot and y with 1 taken off in place are the same subtraction
        assert torch.equal(by_index[key], by_one_hot[key]), key
        assert torch.equal(auto_index[key], auto_one_hot[key]), key


def test_float32_input_meets_float64_weights(mnist):
    # NumPy promotes float32 @ float64; torch's matmul refuses mixed dtypes, so
    # the checked methods convert x to the network's dtype first (exactly:
    # every float32 is a float64).
    (x_train, t_train), _ = mnist
    x32, t = torch.from_numpy(x_train[:100]), torch.from_numpy(t_train[:100])
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    assert float(net.loss(x32, t)) == float(net.loss(x32.double(), t))
    for key, value in net.gradient(x32, t).items():
        assert value.dtype == torch.float64
        assert torch.equal(value, net.gradient(x32.double(), t)[key])


def test_float32_network_equals_numpy_float32(mnist):
    # Both sides in float32. Each side is within gamma_784 = 784 eps of exact
    # arithmetic (the 784-pixel dot product is the longest sum), relative to
    # the largest entry; the two sides within twice that.
    (x_train, t_train), _ = mnist
    x, t = x_train[:100], t_train[:100].astype(np.int64)
    ours = ti.TwoLayerNet(784, 50, 10, seed=0, dtype=torch.float32)
    theirs = npi.TwoLayerNet(784, 50, 10, seed=0, dtype=np.float32)
    grads, expected = ours.gradient(*tensors(x, t)), theirs.gradient(x, t)
    for key in npi.PARAM_NAMES:
        assert grads[key].dtype == torch.float32
        assert max_rel(grads[key].numpy(), expected[key]) < 2 * 784 * EPS32, key
    assert float(ours.loss(*tensors(x, t))) == pytest.approx(float(theirs.loss(x, t)),
                                                              rel=2 * 784 * EPS32)


# -- numerical gradients --------------------------------------------------------

def test_fast_numerical_gradient_equals_numpys(mnist_batch):
    # The same central differences of per-sample losses; the libraries' exp and
    # log differ by an ulp or two of each loss: 4 eps max_n loss_n per
    # difference, over 2h.
    x, t = mnist_batch
    theirs = npi.TwoLayerNet(784, 50, 10, seed=0)
    ours = ti.TwoLayerNet(784, 50, 10, seed=0)
    expected = theirs.numerical_gradient(x, t)
    got = ours.numerical_gradient(*tensors(x, t))
    sample_losses = -np.log(theirs.predict(x)[np.arange(100), t] + 1e-7)
    atol = 2 * 4 * EPS64 * sample_losses.max() / (2 * H)
    for key in npi.PARAM_NAMES:
        assert got[key].dtype == torch.float64
        np.testing.assert_allclose(got[key].numpy(), expected[key], rtol=0, atol=atol, err_msg=key)
    assert np.count_nonzero(expected["W1"]) > 1000  # the comparison is not of zeros


def test_fast_numerical_gradient_equals_the_books_loop(mnist_batch):
    # The loop re-runs the forward pass twice per parameter; on a 50-pixel slice
    # and 10 hidden units that is 1240 passes (about 1 s on one idle core,
    # where the full 784-50-10 loop takes minutes). Both compute the
    # same differences; they differ by round-off in the loss, eps |loss| / h
    # ~ 5e-12, within the brief's 1e-9.
    x, t = mnist_batch
    x = torch.from_numpy(np.ascontiguousarray(x[:, 350:400]))  # the middle rows of the digits
    t = torch.from_numpy(t)
    net = ti.TwoLayerNet(50, 10, 10, weight_init_std=0.1, seed=3)
    params_before = {key: value.clone() for key, value in net.params.items()}
    fast = net.numerical_gradient(x, t, method="fast")
    loop = net.numerical_gradient(x, t, method="loop")
    for key in npi.PARAM_NAMES:
        np.testing.assert_allclose(fast[key].numpy(), loop[key].numpy(), rtol=0, atol=1e-9,
                                   err_msg=key)
        assert torch.equal(net.params[key], params_before[key])  # restored exactly
    assert torch.count_nonzero(fast["W1"]) > 100  # the comparison is not of zeros


def test_numerical_gradient_differs_from_backprop_by_the_1e7_only(mnist_batch):
    # Float64, h = 1e-4: truncation and round-off ~1e-11; the loss's 1e-7 adds
    # ~1e-7 |dL/dy| / y ~ 1e-8 (the SPEC's gap). 1e-7 absolute holds both.
    x, t = tensors(*mnist_batch)
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    numerical, backprop = net.numerical_gradient(x, t), net.gradient(x, t)
    gaps = [float((numerical[key] - backprop[key]).abs().max()) for key in npi.PARAM_NAMES]
    assert max(gaps) < 1e-7
    assert max(gaps) > 1e-10  # the gap is there: the two differentiate different losses


def test_unknown_numerical_method_is_refused(mnist_batch):
    net = ti.TwoLayerNet(784, 5, 10, seed=0)
    with pytest.raises(ValueError, match="method"):
        net.numerical_gradient(*tensors(*mnist_batch), method="vectorised")


def test_dtype_must_be_a_torch_float():
    with pytest.raises(TypeError, match="dtype"):
        ti.TwoLayerNet(4, 3, 2, dtype=torch.int64)


# -- CUDA -----------------------------------------------------------------------

@cuda
@pytest.mark.cuda
def test_cuda_network_equals_cpu(mnist_batch):
    x, t = tensors(*mnist_batch)
    cpu = ti.TwoLayerNet(784, 50, 10, seed=0)
    gpu = ti.TwoLayerNet(784, 50, 10, seed=0, device="cuda")
    for key in npi.PARAM_NAMES:
        assert gpu.params[key].device.type == "cuda"
        assert torch.equal(gpu.params[key].cpu(), cpu.params[key])
    # CPU tensors are moved to the network's device by the checked methods
    for method in ("gradient", "autograd_gradient"):
        got, expected = getattr(gpu, method)(x, t), getattr(cpu, method)(x, t)
        for key in npi.PARAM_NAMES:
            assert got[key].device.type == "cuda"
            assert max_rel(got[key].cpu().numpy(), expected[key].numpy()) < 1e-10, (method, key)
    got, expected = gpu.numerical_gradient(x, t), cpu.numerical_gradient(x, t)
    for key in npi.PARAM_NAMES:
        # as against NumPy: an ulp or two of each sample loss (< 20), over 2h
        np.testing.assert_allclose(got[key].cpu().numpy(), expected[key].numpy(), rtol=0,
                                   atol=2 * 4 * EPS64 * 20 / (2 * H))
    assert float(gpu.loss(x, t)) == pytest.approx(float(cpu.loss(x, t)), rel=1e-12)
    assert gpu.accuracy(x, t) == cpu.accuracy(x, t)
