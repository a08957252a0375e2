"""torch_impl.functions against numpy_impl.functions, the book's values and autograd.

Tolerances. Float64: the brief's 1e-12 relative. Both sides do the same IEEE
operations in the same order except inside ``exp``/``log`` (different
libraries, each within a couple of ulp) and sums (different order, at most
``(n - 1) eps`` apart for ``n`` terms), all far below 1e-12.

Float32 (``eps = 2**-23``): each side is bounded separately and the
difference is at most the sum of the two bounds. ``exp`` is within 3 ulp in
both libraries, ``+`` and ``/`` within 0.5 ulp, a sum of ``n`` terms within
``(n - 1) eps`` relative (recursive summation, the worst order).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import numpy_impl as npi
import torch_impl as ti

EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)
Y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
Y_WRONG = [0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0]
T = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]

ELEMENTWISE = ["identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu",
               "relu_grad", "function_1"]


def inputs(dtype):
    """Random values of every size the book meets, and the edge cases."""
    rng = np.random.RandomState(0)
    edges = np.array([0.0, -0.0, 1e-300, -1e-300, 1.0, -1.0, 20.0, -20.0, 40.0, -40.0,
                      700.0, -700.0, 710.0, -710.0, 800.0, -800.0, 1e4, -1e4, 1e-4, -1e-4])
    values = np.concatenate([rng.randn(200) * 3, rng.randn(200) * 30, edges])
    with np.errstate(over="ignore"):
        return values.astype(dtype).reshape(-1, 6)


def both(name, *arrays):
    with np.errstate(over="ignore"):
        expected = getattr(npi, name)(*arrays)
    got = getattr(ti, name)(*[torch.from_numpy(a) for a in arrays])
    assert isinstance(got, torch.Tensor), name
    return np.asarray(expected), got.numpy()


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_float64_equals_numpy(name):
    x = inputs(np.float64)
    expected, got = both(name, x)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if name == "sigmoid_grad":
        # (1 - s) s: where s rounds near 1, 1 - s has few significant bits, so
        # the relative error of the product is eps * e^x, not eps. Its absolute
        # error is |1 - 2s| |ds| <= 4 eps s (the s of each side within 2 ulp).
        atol = 4 * EPS64 * npi.sigmoid(x)
        assert np.all(np.abs(got - expected) <= 1e-12 * np.abs(expected) + atol)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0)


def test_elementwise_float32_within_derived_tolerance():
    x = inputs(np.float32)
    for name in ("identity_function", "step_function", "relu", "relu_grad", "function_1"):
        # the same single IEEE operations on both sides: equal
        expected, got = both(name, x)
        np.testing.assert_array_equal(got, expected, err_msg=name)
    # sigmoid = 1 / (1 + exp(-x)): exp's 3 ulp shrink by (1 - s) <= 1, then
    # + and / add 0.5 ulp each: 4 eps per side, 8 eps between the two sides.
    expected, got = both("sigmoid", x)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=8 * EPS32, atol=0)
    # sigmoid_grad: |1 - 2s| |ds| + the product's 1.5 ulp, per side <= 4 eps s + 1.5 eps |g|
    expected, got = both("sigmoid_grad", x)
    s = npi.sigmoid(x.astype(np.float64))
    assert np.all(np.abs(got - expected) <= 2 * (4 * EPS32 * s + 1.5 * EPS32 * np.abs(expected)))


@pytest.mark.parametrize("dtype, rtol", [
    (np.float64, 1e-12),
    # float32 over 6 entries: exp 3 ulp + sum of 6 terms 5 eps + / 0.5 ulp
    # = 8.5 eps per side, 17 eps between the sides
    (np.float32, 17 * EPS32),
])
def test_softmax_equals_numpy_and_torch_softmax(dtype, rtol):
    x = inputs(dtype)
    expected, got = both("softmax", x)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=float(np.finfo(dtype).tiny))
    # rows of 1e4 and 800 do not overflow: the max is subtracted first
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, F.softmax(torch.from_numpy(x), dim=-1).numpy(), rtol=rtol,
                               atol=float(np.finfo(dtype).tiny))


def test_softmax_of_a_single_vector_and_ties():
    v = np.array([1010.0, 1000.0, 990.0])
    expected, got = both("softmax", v)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    expected, got = both("softmax", np.array([2.0, 2.0]))
    np.testing.assert_array_equal(got, [0.5, 0.5])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_function_2_point_and_rows(dtype):
    x = inputs(dtype)
    expected, got = both("function_2", x[0])
    assert got.shape == () and got.dtype == dtype
    # 6 squares, each the same IEEE product on both sides; summed in another
    # order: at most 5 eps apart per side
    rtol = 1e-12 if dtype == np.float64 else 10 * EPS32
    np.testing.assert_allclose(got, expected, rtol=rtol)
    expected, got = both("function_2", x[:5] / 1e3)
    assert got.shape == (5,)  # one value per row
    np.testing.assert_allclose(got, expected, rtol=rtol)


def test_activation_gradients_are_autograds():
    # relu_grad is 1 where x > 0 and 0 at 0, as autograd has it (the book: >= 0)
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-300, 3.0], dtype=torch.float64, requires_grad=True)
    torch.relu(x).sum().backward()
    np.testing.assert_array_equal(ti.relu_grad(x.detach()).numpy(), x.grad.numpy())
    np.testing.assert_array_equal(ti.relu_grad(x.detach()).numpy(), [0, 0, 0, 1, 1])
    x = torch.linspace(-30, 30, 121, dtype=torch.float64, requires_grad=True)
    torch.sigmoid(x).sum().backward()
    np.testing.assert_allclose(ti.sigmoid_grad(x.detach()).numpy(), x.grad.numpy(),
                               rtol=1e-12, atol=4 * EPS64)


def test_sigmoid_saturates_without_warnings():
    x = torch.tensor([-1e4, -800.0, 800.0, 1e4], dtype=torch.float64)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ti.sigmoid(x)
    np.testing.assert_array_equal(s.numpy(), [0.0, 0.0, 1.0, 1.0])


def test_step_function_returns_integers():
    got = ti.step_function(torch.tensor([-1.0, 0.0, 2.0]))
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), [0, 0, 1])


def test_losses_match_book():
    # the book's printed values (section 4.2)
    y, y_wrong = torch.tensor(Y, dtype=torch.float64), torch.tensor(Y_WRONG, dtype=torch.float64)
    t = torch.tensor(T)
    assert float(ti.cross_entropy_error(y, t)) == pytest.approx(0.510825457099338, abs=1e-12)
    assert float(ti.cross_entropy_error(y_wrong, t)) == pytest.approx(2.302584092994546, abs=1e-12)
    assert float(ti.sum_squared_error(y, t)) == pytest.approx(0.0975, abs=1e-15)
    assert float(ti.sum_squared_error(y_wrong, t)) == pytest.approx(0.5975, abs=1e-15)
    # class index, batch of indices, and Python lists (floats become float64)
    assert float(ti.cross_entropy_error(y, torch.tensor(2))) == pytest.approx(0.510825457099338,
                                                                             abs=1e-12)
    batch = ti.cross_entropy_error(torch.stack([y, y_wrong]), torch.tensor([2, 2]))
    assert float(batch) == pytest.approx((0.510825457099338 + 2.302584092994546) / 2, abs=1e-12)
    from_lists = ti.cross_entropy_error(Y, T)
    assert from_lists.dtype == torch.float64
    assert float(from_lists) == pytest.approx(0.510825457099338, abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_losses_equal_numpy_on_random_batches(dtype):
    rng = np.random.RandomState(1)
    n = 20
    logits = (rng.randn(n, 10) * 5).astype(dtype)
    labels = rng.randint(0, 10, n)
    one_hot = np.eye(10, dtype=dtype)[labels]
    y = npi.softmax(logits)
    # float32: log within 3 ulp and + 1e-7 within 0.5, then a sum of n terms
    # in another order ((n - 1) eps) and / n: (n + 3) eps per side.
    rtol = 1e-12 if dtype == np.float64 else 2 * (n + 3) * EPS32
    for name, args in [("cross_entropy_error", (y, labels)), ("cross_entropy_error", (y, one_hot)),
                       ("cross_entropy_error", (y[0], labels[:1])),
                       ("softmax_loss", (logits, labels)), ("sum_squared_error", (y, one_hot))]:
        expected, got = both(name, *args)
        assert got.dtype == expected.dtype, name
        # softmax_loss also carries softmax's 17 eps through the log (|d log y| = |dy|/y)
        tol = rtol if name != "softmax_loss" else rtol + 17 * EPS32 * (dtype == np.float32)
        np.testing.assert_allclose(got, expected, rtol=tol, err_msg=name)


def test_cross_entropy_keeps_the_books_1e7():
    # a zero probability for the true class: -log(1e-7), finite
    y = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert float(ti.cross_entropy_error(y, torch.tensor([1]))) == pytest.approx(-np.log(1e-7))


def test_uint8_labels_are_class_indices_not_a_mask():
    # MNIST's labels are uint8, which torch indexing would read as a boolean mask
    y = torch.from_numpy(npi.softmax(np.random.RandomState(2).randn(4, 10)))
    t8 = torch.tensor([3, 0, 9, 1], dtype=torch.uint8)
    expected = npi.cross_entropy_error(y.numpy(), t8.numpy())
    assert float(ti.cross_entropy_error(y, t8)) == pytest.approx(float(expected), rel=1e-12)
