"""torch_impl.train and the training script, against numpy_impl's and the book's loop.

Tolerance for runs compared step by step: each gradient differs between the
sides by round-off only, at most gamma_784 = 784 eps relative (Higham's bound
for the longest, 784-pixel, dot product). Over ``n`` SGD steps of a
well-conditioned run those errors add up to at most ``n * 784 eps`` in the
parameters and the loss: 1e-11 for 60 steps, so ``rtol=1e-10``.
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import numpy_impl as npi
import torch_impl as ti

ROOT = Path(__file__).resolve().parents[1]
STEP_RTOL = 1e-10
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")


@pytest.fixture(scope="module")
def small(mnist):
    """3000 training and 500 test images: NumPy arrays and the same as tensors."""
    (x_train, t_train), (x_test, t_test) = mnist
    arrays = (x_train[:3000], t_train[:3000], x_test[:500], t_test[:500])
    return arrays, tuple(torch.from_numpy(a) for a in arrays)


def run_numpy(arrays, iters, seed, **kw):
    net = npi.TwoLayerNet(784, 50, 10, seed=seed)
    return net, npi.train(net, *arrays, iters_num=iters, seed=seed, **kw)


def run_torch(tensors, iters, seed, make=ti.TwoLayerNet, net_kw=None, **kw):
    net = make(784, 50, 10, seed=seed, **(net_kw or {}))
    return net, ti.train(net, *tensors, iters_num=iters, seed=seed, **kw)


def params_of(net):
    return net.to_params() if isinstance(net, ti.TwoLayerNetModule) else net.params


# -- the literal port against NumPy ---------------------------------------------

@pytest.mark.slow
def test_literal_training_equals_numpy_step_by_step(small):
    arrays, tensors = small
    numpy_net, expected = run_numpy(arrays, 60, seed=4, eval_every=20)
    net, hist = run_torch(tensors, 60, seed=4, eval_every=20)
    assert list(hist) == list(expected)  # the same keys, in the same order
    assert all(type(v) is float for v in hist["train_loss"])
    assert all(type(v) is float for v in hist["train_acc"] + hist["test_acc"])
    np.testing.assert_allclose(hist["train_loss"], expected["train_loss"], rtol=STEP_RTOL)
    assert hist["train_acc"] == expected["train_acc"]
    assert hist["test_acc"] == expected["test_acc"]
    assert hist["eval_iters"] == expected["eval_iters"] == [0, 20, 40]
    assert hist["diverged"] is False and hist["diverged_at"] is None
    for key in npi.PARAM_NAMES:
        expected_param = numpy_net.params[key]
        np.testing.assert_allclose(net.params[key].numpy(), expected_param, rtol=STEP_RTOL,
                                   atol=STEP_RTOL * np.abs(expected_param).max())


def test_training_replays_the_books_loop(small):
    # The book's ch04/train_neuralnet.py written out in torch after
    # np.random.seed(3): same weights, same batches, same update, bit for bit.
    _, (x_train, t_train, x_test, t_test) = small
    x_train = x_train[:2000].double()
    t_train = torch.eye(10, dtype=torch.float64)[t_train[:2000].long()]
    rng = np.random.RandomState(3)
    book = ti.TwoLayerNet(784, 50, 10)
    book.params = {"W1": torch.from_numpy(0.01 * rng.randn(784, 50)),
                   "b1": torch.zeros(50, dtype=torch.float64),
                   "W2": torch.from_numpy(0.01 * rng.randn(50, 10)),
                   "b2": torch.zeros(10, dtype=torch.float64)}
    losses = []
    for _ in range(30):
        mask = torch.from_numpy(rng.choice(2000, 100))
        grad = book.gradient(x_train[mask], t_train[mask])
        for key in npi.PARAM_NAMES:
            book.params[key] -= 0.1 * grad[key]
        losses.append(float(book.loss(x_train[mask], t_train[mask])))
    net = ti.TwoLayerNet(784, 50, 10, seed=3)
    hist = ti.train(net, x_train, t_train, x_test[:10], t_test[:10], iters_num=30, seed=3)
    assert hist["train_loss"] == losses
    for key in npi.PARAM_NAMES:
        assert torch.equal(net.params[key], book.params[key]), key


def test_history_layout_follows_the_book(small):
    _, (x_train, t_train, x_test, t_test) = small
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    hist = ti.train(net, x_train[:1000], t_train[:1000], x_test, t_test, iters_num=25,
                    batch_size=100, seed=0)
    # iter_per_epoch = 1000 / 100 = 10: accuracy after iterations 0, 10, 20
    assert hist["eval_iters"] == [0, 10, 20]
    assert len(hist["train_loss"]) == 25 and len(hist["test_acc"]) == 3


@pytest.mark.slow
def test_numerical_gradient_training_equals_numpys(small):
    # The fast numerical gradients of the two sides differ by ~1e-11 absolute
    # (an ulp of each sample loss over 2h); three steps of lr 0.1 move the
    # parameters apart by ~3e-12, far below 1e-9 of the loss.
    arrays, tensors = small
    _, expected = run_numpy(arrays, 3, seed=1, batch_size=50, eval_every=100,
                            gradient="numerical")
    _, hist = run_torch(tensors, 3, seed=1, batch_size=50, eval_every=100, gradient="numerical")
    np.testing.assert_allclose(hist["train_loss"], expected["train_loss"], rtol=1e-9)


def test_divergence_stops_where_numpys_does(small):
    # Sigmoid saturates, so only lr = 1e308 overflows the weights (as the
    # NumPy side's test measures).
    arrays, tensors = small
    with pytest.warns(RuntimeWarning, match="diverged at iteration"):
        _, expected = run_numpy(arrays, 200, seed=0, learning_rate=1e308, eval_every=1000)
    with pytest.warns(RuntimeWarning, match=r"diverged at iteration \d+ \(learning_rate=1e\+308\)"):
        _, hist = run_torch(tensors, 200, seed=0, learning_rate=1e308, eval_every=1000)
    assert hist["diverged"] and hist["diverged_at"] == expected["diverged_at"]
    assert len(hist["train_loss"]) == hist["diverged_at"] + 1 < 200
    with pytest.warns(RuntimeWarning, match="diverged at iteration"):
        _, module_hist = run_torch(tensors, 200, seed=0, make=ti.TwoLayerNetModule,
                                   learning_rate=1e308, eval_every=1000)
    assert module_hist["diverged"]
    assert len(module_hist["train_loss"]) == module_hist["diverged_at"] + 1 < 200


# -- the module ---------------------------------------------------------------------

def test_module_training_follows_the_literal_net(small):
    # F.cross_entropy has the book's backprop as its exact gradient and
    # SGD's update is the book's, so the parameters follow the literal run
    # to round-off; the recorded loss is the module's own, the cross-entropy
    # without the 1e-7, above the book's by mean log(1 + 1e-7 / y_t).
    _, tensors = small
    net, literal = run_torch(tensors, 60, seed=4, eval_every=20)
    module, hist = run_torch(tensors, 60, seed=4, make=ti.TwoLayerNetModule, eval_every=20)
    for key, value in module.to_params().items():
        np.testing.assert_allclose(value.numpy(), net.params[key].numpy(), rtol=STEP_RTOL,
                                   atol=STEP_RTOL * net.params[key].abs().max().item())
    assert hist["train_acc"] == literal["train_acc"] and hist["test_acc"] == literal["test_acc"]
    gap = np.array(hist["train_loss"]) / np.array(literal["train_loss"]) - 1
    assert np.all(gap > 0) and np.all(gap < 1e-5)


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
def test_module_with_the_books_loss_records_the_books_loss(small):
    # It differentiates the loss with the 1e-7, so its steps differ from the
    # backprop ones by the ~1e-8 gradient gap: losses within ~1e-6 relative.
    arrays, tensors = small
    _, expected = run_numpy(arrays, 30, seed=4, eval_every=100)
    _, hist = run_torch(tensors, 30, seed=4, make=ti.TwoLayerNetModule,
                        net_kw={"loss": "book"}, eval_every=100)
    assert hist["train_loss"][0] == pytest.approx(expected["train_loss"][0], rel=1e-7)
    np.testing.assert_allclose(hist["train_loss"], expected["train_loss"], rtol=1e-5)


def test_numerical_gradient_is_refused_for_the_module(small):
    _, tensors = small
    with pytest.raises(ValueError, match="gradient"):
        ti.train(ti.TwoLayerNetModule(784, 50, 10, seed=0), *tensors, iters_num=1,
                 gradient="numerical")


@pytest.mark.parametrize("make", [ti.TwoLayerNet, ti.TwoLayerNetModule])
def test_resuming_equals_one_run(small, make):
    _, tensors = small
    _, whole = run_torch(tensors, 20, seed=2, make=make, eval_every=5)
    net = make(784, 50, 10, seed=2)
    stream = ti.BookRandomStream.for_training(2, 784, 50, 10)
    seen = []
    first = ti.train(net, *tensors, iters_num=10, stream=stream, eval_every=5,
                     callback=lambda i, h, s: seen.append(i), progress=lambda i: seen.append(-i))
    assert seen == [v for i in range(10) for v in (-i, i)]  # progress, then callback, each step
    resumed = ti.train(net, *tensors, iters_num=20, stream=stream, start_iter=10,
                       history=first, eval_every=5)
    assert resumed == whole


# -- inputs ---------------------------------------------------------------------

def test_numpy_arrays_are_refused_by_name(small):
    arrays, tensors = small
    for position, name in enumerate(["x_train", "t_train", "x_test", "t_test"]):
        mixed = list(tensors)
        mixed[position] = arrays[position]
        with pytest.raises(TypeError, match=rf"{name} is a NumPy array.*torch.from_numpy"):
            ti.train(ti.TwoLayerNet(784, 50, 10, seed=0), *mixed, iters_num=1)


def test_batches_arrive_in_the_networks_dtype(small):
    # float32 x and uint8 labels in; every batch the loop sees is already
    # float64 and int64: train converts the data before the loop, and the
    # per-iteration gradient gets gathered rows of it.
    _, tensors = small
    assert tensors[0].dtype == torch.float32 and tensors[1].dtype == torch.uint8
    net = ti.TwoLayerNet(784, 50, 10, seed=0)
    seen = []
    original = net._gradient

    def spy(x, t):
        seen.append((x.dtype, t.dtype))
        return original(x, t)

    net._gradient = spy
    ti.train(net, *tensors, iters_num=5, eval_every=100, seed=0)
    assert seen == [(torch.float64, torch.int64)] * 5


# -- the scripts ----------------------------------------------------------------

def run_script(module, *args):
    env = {**os.environ,
           "MNIST_ROOT": os.environ.get("MNIST_ROOT", str(ROOT.parent / "shared" / "mnist"))}
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def numpy_script_output():
    return run_script("numpy_impl.train_neuralnet", "--iters", "2000", "--seed", "0")


@pytest.mark.slow
def test_both_scripts_print_the_same_accuracies(numpy_script_output):
    # float64 on both sides, the same weights and batches: the same predictions,
    # so the same printed accuracies, every digit (evaluations at 0, 600, 1200, 1800)
    got = run_script("torch_impl.train_neuralnet", "--iters", "2000", "--seed", "0")
    assert numpy_script_output.count("train acc, test acc | ") == 4
    assert got == numpy_script_output


@pytest.mark.slow
def test_module_script_prints_the_same_accuracies(numpy_script_output):
    # autograd of F.cross_entropy and torch.optim.SGD follow the book's
    # backprop and update to round-off: the same three evaluations
    got = run_script("torch_impl.train_neuralnet", "--iters", "1201", "--seed", "0",
                     "--impl", "module")
    assert got.count("train acc, test acc | ") == 3
    assert numpy_script_output.startswith(got)


# -- CUDA -----------------------------------------------------------------------

@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("make", [ti.TwoLayerNet, ti.TwoLayerNetModule])
def test_cuda_training_follows_cpu(small, make):
    _, tensors = small  # CPU tensors: train moves them to the network's device once
    _, expected = run_torch(tensors, 30, seed=4, make=make, eval_every=10)
    net, hist = run_torch(tensors, 30, seed=4, make=make, net_kw={"device": "cuda"}, eval_every=10)
    assert all(p.device.type == "cuda" for p in params_of(net).values())
    np.testing.assert_allclose(hist["train_loss"], expected["train_loss"], rtol=STEP_RTOL)
    assert hist["test_acc"] == expected["test_acc"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, diverged = run_torch(tensors, 200, seed=0, make=make, net_kw={"device": "cuda"},
                                learning_rate=1e308, eval_every=1000)
    assert diverged["diverged"]
