"""Property tests: numerical derivatives against analytic ones, softmax and the
cross-entropy on extreme inputs, and the two sides against each other.

Modest ``max_examples`` and no deadline keep the file fast and steady on a
loaded machine.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import numpy_impl
import torch_impl

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).smallest_subnormal)  # the rounding step below 2.2e-308
H = 1e-4  # the book's step, the default of both sides
SIDES = {"numpy": numpy_impl, "torch": torch_impl}
PROPERTY = settings(max_examples=30, deadline=None)


def lib(side):
    """The array library of a side, for writing test functions once."""
    return np if side == "numpy" else torch


def native(side, value):
    value = np.asarray(value, dtype=np.float64)
    return value if side == "numpy" else torch.from_numpy(value.copy())


def to_np(value):
    return value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


moderate = st.floats(-2.0, 2.0, allow_nan=False)


@st.composite
def smooth_functions(draw):
    """f(x) = sum a sin(b x) + sum c x**2 + d exp(k w.x), with its gradient and bounds.

    Returns the coefficients, a point x, and for each element the bound on
    |d3f/dx_i3| near x (for the truncation error) and on |f| (for round-off).
    """
    n = draw(st.integers(1, 5))
    vec = st.lists(moderate, min_size=n, max_size=n).map(np.array)
    a, b, c, w, x = (draw(vec) for _ in range(5))
    d = draw(moderate)
    k = draw(st.floats(-0.5, 0.5))
    # |x_i +- h| <= |x_i| + h: bound the exponential over the whole stencil
    exp_max = math.exp(abs(k) * float(np.sum(np.abs(w) * (np.abs(x) + H))))
    third = np.abs(a) * np.abs(b) ** 3 + abs(d) * np.abs(k * w) ** 3 * exp_max
    f_max = float(np.sum(np.abs(a)) + np.sum(np.abs(c) * (np.abs(x) + H) ** 2) + abs(d) * exp_max)
    return (a, b, c, d, k, w), x, third, f_max


def smooth_f(side, coeffs):
    a, b, c, d, k, w = (native(side, v) if isinstance(v, np.ndarray) else v for v in coeffs)
    L = lib(side)
    return lambda x: L.sum(a * L.sin(b * x)) + L.sum(c * x ** 2) + d * L.exp(k * L.sum(w * x))


def smooth_grad(coeffs, x):
    a, b, c, d, k, w = coeffs
    return a * b * np.cos(b * x) + 2 * c * x + d * k * w * math.exp(k * float(np.sum(w * x)))


def central_difference_tolerance(third, f_max, n):
    """|numerical - analytic| for the central difference with step H.

    Truncation: f(x+h) - f(x-h) = 2h f' + h**3/3 f'''(xi), so the error is at
    most h**2/6 |f'''|. Round-off: each f carries at most (3n + 4) rounding
    errors (n sines, products and squares, the sums, the exponential) of
    eps * f_max each, or of the subnormal spacing where the values are that
    small; the difference holds two of them and is divided by 2h. A factor of
    2 covers the libraries' sin/exp being up to an ulp off.
    """
    return 2 * (H ** 2 / 6 * third + (3 * n + 4) * (EPS * f_max + TINY) / H)


@pytest.mark.parametrize("side", SIDES)
@PROPERTY
@given(smooth_functions())
def test_numerical_gradient_matches_the_analytic_one(side, case):
    coeffs, x, third, f_max = case
    grad = SIDES[side].numerical_gradient(smooth_f(side, coeffs), native(side, x))
    err = np.abs(to_np(grad) - smooth_grad(coeffs, x))
    assert np.all(err <= central_difference_tolerance(third, f_max, x.size)), err


@pytest.mark.parametrize("side", SIDES)
@PROPERTY
@given(a=moderate, b=moderate, c=moderate, x=st.floats(-3.0, 3.0))
def test_numerical_diff_matches_the_analytic_derivative(side, a, b, c, x):
    L = lib(side)
    f = lambda v: a * L.sin(b * v) + c * v ** 2  # noqa: E731
    d = float(SIDES[side].numerical_diff(f, x))
    exact = a * b * math.cos(b * x) + 2 * c * x
    third = abs(a) * abs(b) ** 3
    f_max = abs(a) + abs(c) * (abs(x) + H) ** 2
    assert abs(d - exact) <= central_difference_tolerance(third, f_max, 1)


extreme = st.floats(-1e300, 1e300, allow_nan=False)


@st.composite
def matrices(draw, elements, max_rows=6, max_cols=12, min_cols=1):
    rows, cols = draw(st.integers(1, max_rows)), draw(st.integers(min_cols, max_cols))
    flat = draw(st.lists(elements, min_size=rows * cols, max_size=rows * cols))
    return np.array(flat, dtype=np.float64).reshape(rows, cols)


@pytest.mark.parametrize("side", SIDES)
@PROPERTY
@given(matrices(extreme))
def test_softmax_rows_sum_to_one_and_stay_finite(side, x):
    # an overflow or a NaN would raise here, not pass silently (exp's underflow
    # to 0 for the far-below-max entries is the right answer)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = to_np(SIDES[side].softmax(native(side, x)))
    assert np.all(np.isfinite(y)) and np.all(y >= 0) and np.all(y <= 1)
    # Each y_j = e_j / s: exp costs about an ulp, the sum s of n terms up to
    # n - 1 roundings, the division one; summing the n outputs adds n - 1
    # more. So |sum - 1| <= (2n + 2) eps, with a factor 2 for the libraries.
    n = x.shape[1]
    assert np.all(np.abs(y.sum(axis=1) - 1) <= 2 * (2 * n + 2) * EPS)
    # the largest input keeps the largest probability (the max-shift is exact for it)
    assert np.all(y[np.arange(len(x)), x.argmax(axis=1)] >= 1 / n * (1 - 2 * (2 * n + 2) * EPS))


@st.composite
def probabilities_with_zeros(draw):
    """Rows of probabilities, some exactly 0 at the true class; index labels."""
    # two classes at least: with one, index labels and one-hot have the same size
    x = draw(matrices(st.floats(-50, 50), max_cols=10, min_cols=2))
    y = np.exp(x - x.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    t = np.array(draw(st.lists(st.integers(0, x.shape[1] - 1), min_size=len(x),
                               max_size=len(x))))
    zero = np.array(draw(st.lists(st.booleans(), min_size=len(x), max_size=len(x))))
    y[np.arange(len(x))[zero], t[zero]] = 0.0
    return y, t


@pytest.mark.parametrize("side", SIDES)
@PROPERTY
@given(probabilities_with_zeros())
def test_cross_entropy_is_finite_for_zero_probabilities(side, case):
    y, t = case
    t_side = t if side == "numpy" else torch.from_numpy(t)
    loss = float(SIDES[side].cross_entropy_error(native(side, y), t_side))
    # 0 <= y <= 1 puts each -log(y + 1e-7) in [-log(1 + 1e-7), -log(1e-7)],
    # and so their mean; a few ulps of slack for the log and the mean
    assert math.isfinite(loss)
    assert -math.log1p(1e-7) - 1e-14 <= loss <= -math.log(1e-7) * (1 + 8 * EPS)
    expected = float(np.mean(-np.log(y[np.arange(len(t)), t] + 1e-7)))
    assert abs(loss - expected) <= 8 * EPS * max(abs(expected), 1.0)


# -- the two sides agree ------------------------------------------------------

@PROPERTY
@given(matrices(st.floats(-700, 700)))
def test_sides_agree_on_the_elementwise_functions(x):
    # sigmoid and softmax are a handful of correctly-rounded-or-nearly steps
    # (exp within an ulp in both libraries, then +, / and a sum of <= 12
    # terms): 2 * (12 + 4) ulps relative covers the worst chain.
    rtol = 2 * (12 + 4) * EPS
    for name in ("sigmoid", "softmax", "relu", "step_function", "sigmoid_grad"):
        a = to_np(getattr(numpy_impl, name)(x))
        b = to_np(getattr(torch_impl, name)(torch.from_numpy(x)))
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-300, err_msg=name)


@PROPERTY
@given(probabilities_with_zeros())
def test_sides_agree_on_the_cross_entropy(case):
    y, t = case
    a = float(numpy_impl.cross_entropy_error(y, t))
    b = float(torch_impl.cross_entropy_error(torch.from_numpy(y), torch.from_numpy(t)))
    # the same n logs (an ulp each, log's results are <= 16.2) and a mean of n
    # <= 6 terms: (n + 2) ulps of the largest term
    assert abs(a - b) <= (6 + 2) * EPS * -math.log(1e-7)


@PROPERTY
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=8).map(np.array))
def test_sides_agree_on_numerical_gradients(x):
    a = numpy_impl.numerical_gradient(numpy_impl.function_2, x.copy())
    b = to_np(torch_impl.numerical_gradient(torch_impl.function_2, torch.from_numpy(x.copy())))
    # function_2 sums n squares; the libraries may add them in other orders,
    # so each f differs by up to n eps sum(x**2) (plus the squares' own
    # rounding), and the difference quotient divides two of them by 2h.
    f_max = float(np.sum((np.abs(x) + H) ** 2))
    assert np.all(np.abs(a - b) <= 2 * (x.size + 1) * EPS * f_max / (2 * H) * 2)
    # and both are the analytic 2x to the central difference's round-off
    # (truncation is 0 for a quadratic)
    assert np.all(np.abs(a - 2 * x) <= 2 * (x.size + 2) * EPS * f_max / H)
