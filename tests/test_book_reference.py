"""The book-style code the benchmarks time against computes what the project computes."""
import numpy as np
import pytest

import numpy_impl as npi
from compare.ch4 import book_reference as book


def test_book_training_loop_and_project_agree(mnist):
    # The book's float32 x meets float64 W, so NumPy promotes x exactly and both
    # loops do the same float64 arithmetic; only summation order may differ
    # (one-hot vs index labels), a few ulp of the loss.
    (x_train, t_train), (x_test, t_test) = mnist
    x_train, t_train, x_test, t_test = x_train[:3000], t_train[:3000], x_test[:500], t_test[:500]
    ref = book.book_train(x_train, np.eye(10)[t_train], x_test, np.eye(10)[t_test], 60, seed=4)
    net = npi.TwoLayerNet(784, 50, 10, seed=4)
    hist = npi.train(net, x_train, t_train, x_test, t_test, 60, seed=4)
    np.testing.assert_allclose(hist["train_loss"], ref["train_loss"], rtol=1e-12)
    assert hist["test_acc"] == ref["test_acc"] and hist["train_acc"] == ref["train_acc"]


def test_book_nditer_loop_and_project_numerical_gradient_agree(mnist_batch):
    x, t = mnist_batch
    x = x[:20]
    t = t[:20]
    ref = book.BookTwoLayerNet(784, 3, 10, weight_init_std=0.1, rng=np.random.RandomState(2))
    net = npi.TwoLayerNet(784, 3, 10, weight_init_std=0.1, seed=2)
    for key in npi.PARAM_NAMES:
        np.testing.assert_array_equal(net.params[key], ref.params[key])
    expected = ref.numerical_gradient(x, np.eye(10)[t])
    got = net.numerical_gradient(x, t)  # the fast path
    for key in npi.PARAM_NAMES:
        # round-off of the loss over 2h: eps * |loss| / h ~ 5e-12
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-9, err_msg=key)


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
def test_book_pickle_loader_gives_the_project_s_arrays(tmp_path, mnist):
    import os
    from pathlib import Path

    from compare import load_mnist

    pickle_path = tmp_path / "mnist.pkl"
    book.book_init_mnist(Path(os.environ["MNIST_ROOT"]) / "MNIST" / "raw", pickle_path)
    for options in ({"one_hot_label": True}, {"normalize": False, "flatten": False}):
        theirs = book.book_load_mnist(pickle_path, **options)
        ours = load_mnist(download=False, **options)
        for a, b in zip([a for pair in theirs for a in pair], [a for pair in ours for a in pair]):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.slow  # four whole processes
def test_script_benchmark_runs_the_book_s_script_and_the_project_s_alike():
    from compare.ch4 import benchmark

    result = benchmark.bench_script(iters=3, rounds=1, scripts=("book-no-plot", "numpy"))
    book_row, numpy_row = result["rows"]
    assert book_row["fraction_of_first"] == 1 and len(numpy_row["rounds"]) == 1
    # the same seed, the same batches, the same printed accuracies
    assert book_row["last_line"] == numpy_row["last_line"]
    assert book_row["last_line"].startswith("train acc, test acc | ")


@pytest.mark.slow  # three whole processes, one of them importing torchvision
def test_loader_benchmark_times_a_first_load_a_later_load_and_the_book_s():
    from compare.ch4 import benchmark

    result = benchmark.bench_loader(rounds=1)
    assert [row["what"] for row in result["rows"]] == list(benchmark.LOADERS.values())
    assert all(len(row["rounds"]) == 1 and row["seconds"] > 0 for row in result["rows"])
