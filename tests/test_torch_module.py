"""TwoLayerNetModule: the idiomatic port, against the literal TwoLayerNet and autograd."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import numpy_impl as npi
import torch_impl as ti
from torch_impl.sampler import BookBatchSampler, book_loader

EPS64 = float(np.finfo(np.float64).eps)
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


def max_rel(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    return np.max(np.abs(got - expected)) / np.max(np.abs(expected))


@pytest.fixture(scope="module")
def batch(mnist_batch):
    return tuple(torch.from_numpy(a) for a in mnist_batch)


# -- parameters ---------------------------------------------------------------

def test_seeded_module_holds_the_books_params():
    module = ti.TwoLayerNetModule(784, 50, 10, seed=0)
    reference = npi.TwoLayerNet(784, 50, 10, seed=0).params
    params = module.to_params()
    for key in npi.PARAM_NAMES:
        assert torch.equal(params[key], torch.from_numpy(reference[key])), key
    # nn.Linear's layout is (out, in): the book's W transposed
    assert module.linear1.weight.shape == (50, 784)
    assert torch.equal(module.linear1.weight.detach(), params["W1"].T)
    assert module.dtype == torch.float64 and module.device.type == "cpu"


def test_from_params_and_to_params_round_trip():
    rng = np.random.RandomState(0)
    params = {"W1": rng.randn(6, 4), "b1": rng.randn(4), "W2": rng.randn(4, 3), "b2": rng.randn(3)}
    params = {key: torch.from_numpy(value) for key, value in params.items()}
    module = ti.TwoLayerNetModule.from_params(params)
    assert module.sizes == (6, 4, 3)
    out = module.to_params()
    for key in npi.PARAM_NAMES:
        assert torch.equal(out[key], params[key]), key
        assert out[key].is_contiguous()
    out["W1"][0, 0] = 123.0  # fresh tensors: editing them leaves the module alone
    assert module.linear1.weight[0, 0].item() == params["W1"][0, 0].item()
    module.load_params({key: value * 2 for key, value in params.items()})
    assert torch.equal(module.to_params()["b2"], params["b2"] * 2)
    f32 = ti.TwoLayerNetModule.from_params({key: value.float() for key, value in params.items()})
    assert f32.dtype == torch.float32


def test_bad_params_are_refused():
    module = ti.TwoLayerNetModule(6, 4, 3, seed=0)
    good = module.to_params()
    with pytest.raises(ValueError, match="keys"):
        module.load_params({"W1": good["W1"]})
    with pytest.raises(ValueError, match=r"params\['W2'\]"):
        module.load_params({**good, "W2": good["W2"].T})
    with pytest.raises(TypeError, match=r"params\['b1'\].*torch.from_numpy"):
        module.load_params({**good, "b1": good["b1"].numpy()})
    with pytest.raises(ValueError, match="loss"):
        ti.TwoLayerNetModule(6, 4, 3, loss="mse")


def test_module_follows_to():
    module = ti.TwoLayerNetModule(6, 4, 3, seed=0).to(torch.float32)
    assert module.dtype == torch.float32
    x = torch.rand(5, 6, dtype=torch.float64)
    assert module.predict(x).dtype == torch.float32  # x follows the module


# -- forward, loss, gradient ----------------------------------------------------

def test_forward_returns_logits_and_predict_equals_the_books(batch):
    x, t = batch
    module, net = ti.TwoLayerNetModule(784, 50, 10, seed=0), ti.TwoLayerNet(784, 50, 10, seed=0)
    logits = module(x)
    # x @ W1 + b1 or nn.Linear's addmm: the same sums in another order (784 eps)
    np.testing.assert_allclose(F.softmax(logits, dim=-1).detach().numpy(),
                               net.predict(x).numpy(), rtol=1e-12)
    np.testing.assert_allclose(module.predict(x).numpy(), net.predict(x).numpy(), rtol=1e-12)
    assert module.accuracy(x, t) == net.accuracy(x, t)


def test_the_two_losses_and_their_gap_on_mnist(batch):
    # F.cross_entropy is -mean log y_t; the book's is -mean log(y_t + 1e-7).
    # Their difference is exactly mean log(1 + 1e-7 / y_t), which at
    # initialisation (y_t near 0.1) is about 1e-6: 4.3e-7 relative, measured.
    x, t = batch
    default = ti.TwoLayerNetModule(784, 50, 10, seed=0)
    book = ti.TwoLayerNetModule(784, 50, 10, seed=0, loss="book")
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    ce, book_loss = default.loss(x, t).item(), book.loss(x, t).item()
    assert book_loss == pytest.approx(net.loss(x, t).item(), rel=1e-12)
    assert ce == pytest.approx(F.cross_entropy(net.predict(x).log(), t).item(), rel=1e-12)
    y_t = net.predict(x)[torch.arange(100), t]
    expected_gap = torch.log1p(1e-7 / y_t).mean().item()
    # the two logs are each within a few ulp of |log y| <= 3: 1e-14 absolute
    assert ce - book_loss == pytest.approx(expected_gap, abs=1e-14)
    relative = (ce - book_loss) / book_loss
    assert 1e-7 < relative < 1e-5  # about 1e-6, as the SPEC says


def test_module_gradient_is_autograds_and_the_books_backprop(batch):
    x, t = batch
    module = ti.TwoLayerNetModule(784, 50, 10, seed=0)
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    got = module.gradient(x, t)
    assert list(got) == list(npi.PARAM_NAMES)
    for key, expected in net.gradient(x, t).items():
        assert got[key].shape == net.params[key].shape
        assert max_rel(got[key].numpy(), expected.numpy()) < 1e-10, key
    # the gradient leaves .grad alone, like a pure function
    assert all(p.grad is None for p in module.parameters())
    # the book's loss, differentiated by autograd, is what the numerical
    # gradient approximates: truncation + round-off ~1e-11, not the 1e-8 gap
    book = ti.TwoLayerNetModule(784, 50, 10, seed=0, loss="book").gradient(x, t)
    numerical = net.numerical_gradient(x, t)
    for key in npi.PARAM_NAMES:
        np.testing.assert_allclose(numerical[key].numpy(), book[key].numpy(), rtol=0, atol=1e-9,
                                   err_msg=key)


def test_one_sgd_step_is_the_books_update(batch):
    # torch.optim.SGD's p.add_(g, alpha=-lr) and the book's p -= lr * g: the
    # same numbers up to the product's rounding, 1 ulp of lr * g.
    x, t = batch
    module = ti.TwoLayerNetModule(784, 50, 10, seed=0)
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    grads = net.gradient(x, t)
    for key in npi.PARAM_NAMES:
        net.params[key] -= 0.1 * grads[key]
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    module.loss(x, t).backward()
    optimizer.step()
    for key, value in module.to_params().items():
        np.testing.assert_allclose(value.numpy(), net.params[key].numpy(), rtol=1e-12, err_msg=key)


# -- the batch stream as a Sampler ----------------------------------------------

def test_sampler_yields_the_books_batches_lazily():
    stream = ti.BookRandomStream.for_training(5, 784, 50, 10)
    reference = ti.BookRandomStream.for_training(5, 784, 50, 10)
    sampler = BookBatchSampler(stream, 60000, 100, 3)
    assert len(sampler) == 3
    batches = iter(sampler)
    first = next(batches)
    assert first.dtype == torch.int64
    np.testing.assert_array_equal(first.numpy(), reference.batch_indices(60000, 100))
    # one batch drawn, one batch consumed: the stream is where the loop's would be
    assert stream.get_state()[2] == reference.get_state()[2]
    np.testing.assert_array_equal(stream.get_state()[1], reference.get_state()[1])
    rest = list(batches)
    assert len(rest) == 2


def test_loader_gathers_whole_batches():
    x = torch.arange(40, dtype=torch.float64).reshape(20, 2)
    t = torch.arange(20)
    loader = book_loader(x, t, ti.BookRandomStream(0), 4, 2)
    reference = ti.BookRandomStream(0)
    for x_batch, t_batch in loader:
        idx = torch.from_numpy(reference.batch_indices(20, 4))
        assert torch.equal(x_batch, x[idx]) and torch.equal(t_batch, t[idx])


# -- CUDA -----------------------------------------------------------------------

@cuda
@pytest.mark.cuda
def test_cuda_module_equals_cpu(batch):
    x, t = batch
    cpu = ti.TwoLayerNetModule(784, 50, 10, seed=0)
    gpu = ti.TwoLayerNetModule(784, 50, 10, seed=0, device="cuda")
    assert gpu.device.type == "cuda"
    got, expected = gpu.gradient(x, t), cpu.gradient(x, t)
    for key in npi.PARAM_NAMES:
        assert got[key].device.type == "cuda"
        assert max_rel(got[key].cpu().numpy(), expected[key].numpy()) < 1e-10, key
    assert gpu.accuracy(x, t) == cpu.accuracy(x, t)
    moved = ti.TwoLayerNetModule(784, 50, 10, seed=0).to("cuda")
    assert moved.device.type == "cuda" and moved.predict(x).device.type == "cuda"
