"""torch_impl.gradient and torch_impl.descent: the book's values, NumPy's results, autograd.

Polynomials (function_1, function_2) are evaluated with the same IEEE
operations in the same order on both sides, so their differences, and the
descent built on them, come out bit for bit equal; the tests say so with
``assert_array_equal``. Functions with ``sin``/``exp`` differ by an ulp of
``f``, which the central difference divides by ``2h``: there the derived
bound is ``2 eps |f| / (2h)`` per side.
"""
import warnings

import numpy as np
import pytest
import torch

import numpy_impl as npi
import torch_impl as ti

EPS64 = float(np.finfo(np.float64).eps)
H = 1e-4


def f64(values):
    return torch.tensor(values, dtype=torch.float64)


# -- the book's values --------------------------------------------------------

def test_numerical_diff_matches_book():
    d5 = ti.numerical_diff(ti.function_1, 5)
    assert isinstance(d5, torch.Tensor) and d5.dtype == torch.float64
    assert float(d5) == pytest.approx(0.1999999999990898, abs=1e-12)
    assert float(ti.numerical_diff(ti.function_1, 10)) == pytest.approx(0.2999999999986347, abs=1e-12)


@pytest.mark.parametrize("point, expected", [([3.0, 4.0], [6, 8]), ([0.0, 2.0], [0, 4]),
                                             ([3.0, 0.0], [6, 0])])
def test_numerical_gradient_matches_book(point, expected):
    # f = x0^2 + x1^2 has f''' = 0: only round-off, eps * 25 / h ~ 6e-11
    grad = ti.numerical_gradient(ti.function_2, f64(point))
    assert grad.dtype == torch.float64
    np.testing.assert_allclose(grad.numpy(), expected, atol=1e-9)
    np.testing.assert_array_equal(grad.numpy(),
                                  npi.numerical_gradient(npi.function_2, np.array(point)))


def test_gradient_descent_matches_book_and_numpy():
    init = f64([-3.0, 4.0])
    x = ti.gradient_descent(ti.function_2, init, lr=0.1, step_num=100)
    np.testing.assert_allclose(x.numpy(), [-6.11110793e-10, 8.14814391e-10], rtol=1e-8)
    with pytest.warns(RuntimeWarning, match="vanished"):
        big = ti.gradient_descent(ti.function_2, init, lr=10.0, step_num=100)
    np.testing.assert_allclose(big.numpy(), [-2.58983747e+13, -1.29524862e+12], rtol=1e-8)
    tiny = ti.gradient_descent(ti.function_2, init, lr=1e-10, step_num=100)
    np.testing.assert_allclose(tiny.numpy(), [-2.99999994, 3.99999992], rtol=1e-8)
    np.testing.assert_array_equal(init.numpy(), [-3.0, 4.0])  # init_x untouched
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for lr, got in ((0.1, x), (10.0, big), (1e-10, tiny)):
            expected = npi.gradient_descent(npi.function_2, np.array([-3.0, 4.0]), lr=lr)
            np.testing.assert_array_equal(got.numpy(), expected)


def test_gradient_descent_history_equals_numpy():
    init = f64([-3.0, 4.0])
    x, hist = ti.gradient_descent(ti.function_2, init, lr=0.1, step_num=20, history=True)
    assert hist.shape == (20, 2) and hist.dtype == torch.float64
    np.testing.assert_array_equal(hist[0].numpy(), init.numpy())
    # each step multiplies x by (1 - 2 lr) = 0.8 for f = x0^2 + x1^2
    np.testing.assert_allclose(hist[5].numpy(), init.numpy() * 0.8 ** 5, rtol=1e-8)
    x_np, hist_np = npi.gradient_descent(npi.function_2, np.array([-3.0, 4.0]), lr=0.1,
                                         step_num=20, history=True)
    np.testing.assert_array_equal(hist.numpy(), hist_np)
    np.testing.assert_array_equal(x.numpy(), x_np)


def test_gradient_descent_reports_divergence():
    # f = exp(x^2) has gradient 2x exp(x^2): one step of lr = 1 from 3 lands
    # near -5e4 and the next exp overflows
    f = lambda x: torch.exp(torch.sum(x ** 2))  # noqa: E731
    with pytest.warns(RuntimeWarning, match="diverged"):
        x, hist = ti.gradient_descent(f, f64([3.0]), lr=1.0, step_num=10, history=True)
    assert not torch.isfinite(x).all()
    assert not torch.isfinite(hist[-1]).all()  # the rows after it carry the non-finite x


def test_gradient_descent_keeps_a_float32_point_float32():
    x = ti.gradient_descent(ti.function_2, torch.tensor([-3.0, 4.0]), lr=0.1)
    assert x.dtype == torch.float32
    # float32 x + h and f in float32: the same IEEE operations as NumPy's
    # float32 path, so the same numbers
    expected = npi.gradient_descent(npi.function_2, np.array([-3.0, 4.0], np.float32), lr=0.1)
    np.testing.assert_array_equal(x.numpy(), expected)


# -- against NumPy and against analytic derivatives ---------------------------

def test_numerical_diff_tracks_analytic_derivative():
    # f'(x) = 0.02 x + 0.1; f''' = 0 so only round-off remains: eps |f| / h ~ 1e-11
    for x in (-3.0, 0.0, 5.0, 10.0):
        assert float(ti.numerical_diff(ti.function_1, x)) == pytest.approx(0.02 * x + 0.1, abs=1e-10)
        assert float(ti.numerical_diff(ti.function_1, x)) == npi.numerical_diff(npi.function_1, x)


def test_numerical_gradient_of_a_transcendental_function():
    rng = np.random.RandomState(0)
    point = rng.randn(3, 4)
    f_np = lambda x: np.sum(np.sin(x) * x ** 3)  # noqa: E731
    f_t = lambda x: torch.sum(torch.sin(x) * x ** 3)  # noqa: E731
    got = ti.numerical_gradient(f_t, torch.from_numpy(point.copy()))
    expected = npi.numerical_gradient(f_np, point.copy())
    # f differs between the libraries by a few ulp of sum |terms| (sin within
    # 1 ulp, 12 terms summed in any order): 16 eps S per evaluation, S = sum |terms|;
    # two evaluations over 2h.
    S = np.sum(np.abs(np.sin(point) * point ** 3)) + 1.0
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=2 * 16 * EPS64 * S / (2 * H))
    # and both approximate the analytic gradient: truncation h^2 |f'''| / 6 < 1e-7 here
    analytic = np.cos(point) * point ** 3 + 3 * np.sin(point) * point ** 2
    np.testing.assert_allclose(got.numpy(), analytic, rtol=0, atol=1e-6)


def test_numerical_gradient_2d_rows_are_points():
    X = f64([[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]])
    grad = ti.numerical_gradient_2d(ti.function_2, X)
    np.testing.assert_allclose(grad.numpy(), [[6, 8], [0, 4], [6, 0]], atol=1e-9)
    expected = npi.numerical_gradient_2d(npi.function_2, X.numpy().copy())
    np.testing.assert_array_equal(grad.numpy(), expected)
    np.testing.assert_array_equal(X.numpy(), [[3.0, 4.0], [0.0, 2.0], [3.0, 0.0]])
    one = ti.numerical_gradient_2d(ti.function_2, f64([3.0, 4.0]))  # 1-D: one point
    np.testing.assert_allclose(one.numpy(), [6, 8], atol=1e-9)


def test_tangent_line_touches_and_has_the_slope():
    tf = ti.tangent_line(ti.function_1, 5)
    assert float(tf(5.0)) == pytest.approx(float(ti.function_1(5.0)), abs=1e-12)
    assert float(tf(6.0) - tf(5.0)) == pytest.approx(0.2, abs=1e-9)
    tf_np = npi.tangent_line(npi.function_1, 5.0)
    grid = np.linspace(0.0, 20.0, 9)
    np.testing.assert_array_equal(tf(torch.from_numpy(grid)).numpy(), tf_np(grid))


def test_numerical_gradient_of_a_parameter_is_autograds():
    # An nn.Parameter requires grad and may only be written in place outside
    # autograd. f is quadratic in W, so the central difference has no
    # truncation error and differs from autograd by round-off only: a few ulp
    # of f over 2h, 4 eps |f| / h.
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2, dtype=torch.float64)
    x = torch.randn(5, 3, dtype=torch.float64)
    before = layer.weight.detach().clone()
    f = lambda W: torch.sum(layer(x) ** 2)  # noqa: E731 (reads W through the layer)
    grad = ti.numerical_gradient(f, layer.weight)
    loss = f(None)
    loss.backward()
    np.testing.assert_allclose(grad.numpy(), layer.weight.grad.numpy(), rtol=0,
                               atol=4 * EPS64 * loss.detach().item() / H)
    assert torch.equal(layer.weight.detach(), before)
    assert layer.weight.requires_grad


# -- the in-place perturbation ------------------------------------------------

def test_non_contiguous_point_is_perturbed_through_its_view():
    # A transposed view: the nudges must reach the base that f reads.
    base = torch.from_numpy(np.random.RandomState(3).randn(3, 4))
    view = base.T
    assert not view.is_contiguous()
    weights = torch.arange(12, dtype=torch.float64).reshape(3, 4)
    f = lambda _: torch.sum(weights * base ** 2)  # noqa: E731 (reads base, not its argument)
    grad = ti.numerical_gradient(f, view)
    # d/d base = 2 weights base; truncation 0 (quadratic), round-off eps |f| / h
    np.testing.assert_allclose(grad.numpy(), (2 * weights * base).T.numpy(), rtol=0, atol=1e-8)


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_point_is_restored_exactly_when_f_raises(error):
    point = torch.from_numpy(np.random.RandomState(4).randn(2, 3))
    original = point.clone()
    calls = []

    def f(x):
        calls.append(1)
        if len(calls) == 5:  # in the middle of element 2, after its +h
            raise error("stop")
        return torch.sum(x ** 2)

    with pytest.raises(error):
        ti.numerical_gradient(f, point)
    assert torch.equal(point, original)  # bit for bit, the nudged element too


def test_point_is_restored_exactly_after_the_loop():
    # values whose x + h - h is not x in floating point
    point = f64([0.1, 1e-3, 12345.678, -7.7])
    original = point.clone()
    ti.numerical_gradient(ti.function_2, point)
    assert torch.equal(point, original)


def test_the_books_closure_idiom_sees_the_perturbation():
    # f ignores its argument and reads W through the closure
    W = f64([[1.0, 2.0], [3.0, 4.0]])
    grad = ti.numerical_gradient(lambda _: torch.sum(W ** 2), W)
    np.testing.assert_allclose(grad.numpy(), 2 * W.numpy(), atol=1e-8)


def test_scalar_point():
    grad = ti.numerical_gradient(lambda x: x ** 3, f64(2.0))
    assert grad.shape == ()
    assert float(grad) == pytest.approx(12.0, abs=1e-7)  # truncation h^2 * 6 / 6 = 1e-8
