"""The NumPy side against the numbers the book prints in chapter 4."""
import numpy as np
import pytest

import numpy_impl as npi

BOOK_W = np.array([[0.47355232, 0.9977393, 0.84668094],
                   [0.85557411, 0.03563661, 0.69422093]])
Y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
Y_WRONG = np.array([0.1, 0.05, 0.1, 0.0, 0.05, 0.1, 0.0, 0.6, 0.0, 0.0])
T = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0])


def test_numerical_diff_matches_book():
    assert npi.numerical_diff(npi.function_1, 5) == pytest.approx(0.1999999999990898, abs=1e-12)
    assert npi.numerical_diff(npi.function_1, 10) == pytest.approx(0.2999999999986347, abs=1e-12)


def test_numerical_diff_close_to_analytic():
    # f'(x) = 0.02 x + 0.1; f''' = 0 so only round-off remains: eps*|f|/h ~ 1e-11.
    for x in (-3.0, 0.0, 5.0, 10.0):
        assert npi.numerical_diff(npi.function_1, x) == pytest.approx(0.02 * x + 0.1, abs=1e-10)


@pytest.mark.parametrize("point, expected", [([3.0, 4.0], [6, 8]), ([0.0, 2.0], [0, 4]),
                                             ([3.0, 0.0], [6, 0])])
def test_numerical_gradient_matches_book(point, expected):
    grad = npi.numerical_gradient(npi.function_2, np.array(point))
    np.testing.assert_allclose(grad, expected, atol=1e-8)


def test_gradient_descent_matches_book():
    init = np.array([-3.0, 4.0])
    np.testing.assert_allclose(npi.gradient_descent(npi.function_2, init, lr=0.1, step_num=100),
                               [-6.11110793e-10, 8.14814391e-10], rtol=1e-8)
    with pytest.warns(RuntimeWarning, match="vanished"):
        big = npi.gradient_descent(npi.function_2, init, lr=10.0, step_num=100)
    np.testing.assert_allclose(big, [-2.58983747e+13, -1.29524862e+12], rtol=1e-8)
    np.testing.assert_allclose(npi.gradient_descent(npi.function_2, init, lr=1e-10, step_num=100),
                               [-2.99999994, 3.99999992], rtol=1e-8)
    np.testing.assert_array_equal(init, [-3.0, 4.0])  # init_x untouched


def test_gradient_descent_history_shape_and_first_row():
    init = np.array([-3.0, 4.0])
    x, hist = npi.gradient_descent(npi.function_2, init, lr=0.1, step_num=20, history=True)
    assert hist.shape == (20, 2)
    np.testing.assert_array_equal(hist[0], init)
    # Each step multiplies x by (1 - 2 lr) = 0.8 exactly for f = x0^2 + x1^2.
    np.testing.assert_allclose(hist[5], init * 0.8 ** 5, rtol=1e-8)
    np.testing.assert_allclose(x, init * 0.8 ** 20, rtol=1e-7)


def test_losses_match_book():
    assert npi.cross_entropy_error(Y, T) == pytest.approx(0.510825457099338, abs=1e-12)
    assert npi.cross_entropy_error(Y_WRONG, T) == pytest.approx(2.302584092994546, abs=1e-12)
    assert npi.cross_entropy_error(Y, np.array(2)) == pytest.approx(0.510825457099338, abs=1e-12)
    assert npi.cross_entropy_error(np.stack([Y, Y_WRONG]), np.array([2, 2])) == pytest.approx(
        (0.510825457099338 + 2.302584092994546) / 2, abs=1e-12)
    assert npi.sum_squared_error(Y, T) == pytest.approx(0.0975)
    assert npi.sum_squared_error(Y_WRONG, T) == pytest.approx(0.5975)


def test_simple_net_matches_book():
    net = npi.SimpleNet(BOOK_W)
    x, t = np.array([0.6, 0.9]), np.array([0, 0, 1])
    np.testing.assert_allclose(net.predict(x), [1.05414809, 0.63071653, 1.1328074], atol=1e-8)
    assert net.loss(x, t) == pytest.approx(0.92806829, abs=1e-8)
    book_dW = [[0.21924763, 0.14356247, -0.36281009], [0.32887144, 0.2153437, -0.54421514]]
    np.testing.assert_allclose(net.numerical_gradient(x, t), book_dW, atol=1e-7)
    np.testing.assert_allclose(net.gradient(x, t), book_dW, atol=1e-7)
    np.testing.assert_array_equal(net.W, BOOK_W)  # the perturbation left W as it was


def test_tangent_line_touches_and_has_the_slope():
    tf = npi.tangent_line(npi.function_1, 5.0)
    assert tf(5.0) == pytest.approx(npi.function_1(5.0), abs=1e-12)
    assert tf(6.0) - tf(5.0) == pytest.approx(0.2, abs=1e-9)


def test_numerical_gradient_2d_rows_are_points():
    X = np.array([[3.0, 4.0], [0.0, 2.0], [-1.5, 0.5]])
    np.testing.assert_allclose(npi.numerical_gradient_2d(npi.function_2, X), 2 * X, atol=1e-8)
    np.testing.assert_allclose(npi.numerical_gradient_2d(npi.function_2, X[0]), 2 * X[0], atol=1e-8)


def test_integer_point_is_a_type_error_not_a_wrong_answer():
    # The book's open issue: int [3, 4] silently gives [25000, 35000].
    with pytest.raises(TypeError, match="x"):
        npi.numerical_gradient(npi.function_2, np.array([3, 4]))


def test_the_books_tiny_step_is_refused():
    with pytest.raises(ValueError, match="h"):
        npi.numerical_diff(npi.function_1, 5.0, h=1e-50)


def test_elementwise_functions_against_definitions():
    x = np.array([-2.0, -0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(npi.step_function(x), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(npi.relu(x), [0, 0, 0, 0.5, 3.0])
    np.testing.assert_array_equal(npi.relu_grad(x), [0, 0, 0, 1, 1])  # 0 at 0, as autograd
    np.testing.assert_allclose(npi.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(npi.sigmoid_grad(x), s * (1 - s), rtol=1e-15)
    assert npi.sigmoid(np.array([-1000.0]))[0] == 0.0  # no overflow to NaN
    p = npi.softmax(np.array([[1010.0, 1000.0, 990.0], [0.3, 2.9, 4.0]]))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p[1], np.exp([0.3, 2.9, 4.0]) / np.exp([0.3, 2.9, 4.0]).sum())
    np.testing.assert_array_equal(npi.identity_function(x), x)
    assert npi.function_2(np.array([3.0, 4.0])) == 25.0
    np.testing.assert_array_equal(npi.function_2(np.array([[3.0, 4.0], [1.0, 1.0]])), [25.0, 2.0])
