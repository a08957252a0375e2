"""``compare.port.numerical``: directional gradient checks of any NumPy model.

Truth comes from elsewhere: derivatives written out by hand for toy losses,
the book's backprop plus the 1e-7 gap in closed form (``book_gap``) for the
two-layer net.
"""
import json

import numpy as np
import pytest

import numpy_impl as N
from compare import book_gap
from compare.port.numerical import (EVALS_PER_TEST, NOISE_POINTS, check_gradient_directions,
                                    numerical_gradient_of)


# --- toy losses with known gradients ------------------------------------------------------

def toy(dtype=np.float64, seed=0):
    """f = sum(c x^3) + sum(x, 0) @ M @ y + sum(sin y); its gradient written out."""
    rng = np.random.RandomState(seed)
    params = {"x": rng.randn(5, 3).astype(dtype), "y": rng.randn(4).astype(dtype)}
    c, M = rng.randn(5, 3), rng.randn(3, 4)

    def loss():
        x, y = params["x"].astype(np.float64), params["y"].astype(np.float64)
        return float(np.sum(c * x ** 3) + x.sum(axis=0) @ M @ y + np.sum(np.sin(y)))

    def grad():
        x, y = params["x"].astype(np.float64), params["y"].astype(np.float64)
        return {"x": 3 * c * x ** 2 + (M @ y)[None, :], "y": M.T @ x.sum(axis=0) + np.cos(y)}

    return params, loss, grad


def snapshot(params):
    return {k: v.tobytes() for k, v in params.items()}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_cubic_with_its_exact_gradient_passes(dtype):
    params, loss, grad = toy(dtype)
    before = snapshot(params)
    report = check_gradient_directions(loss, params, grad(), directions=6)
    assert report.passed, report.to_text()
    assert report.evaluations == 1 + 2 * 6 * EVALS_PER_TEST
    assert snapshot(params) == before


def test_the_richardson_estimate_is_the_cubic_truncation():
    # f = sum(c x^3): D(h) - f'.v = h^2 sum(c v^3) exactly, and D(2h) - D(h) is
    # three times that, so the error seen equals the estimate |D(2h) - D(h)| / 3.
    rng = np.random.RandomState(3)
    params, c = {"x": rng.randn(40)}, rng.randn(40)
    loss = lambda: float(np.sum(c * params["x"] ** 3))  # noqa: E731
    report = check_gradient_directions(loss, params, {"x": 3 * c * params["x"] ** 2},
                                       h=1e-2, directions=5)
    assert report.passed
    for d in report.rows[0].directions:
        estimate = abs(d.numerical_2h - d.numerical) / 3
        assert d.error == pytest.approx(estimate, rel=1e-6)
        assert d.error > 100 * d.roundoff  # it is truncation that was measured, not noise


def test_a_missing_factor_in_a_toy_gradient_fails():
    params, loss, grad = toy()
    wrong = grad()
    wrong["x"] = wrong["x"] / 3 * 2  # d(x^3)/dx written 2x^2
    report = check_gradient_directions(loss, params, wrong)
    assert report.failed == ["x"]


def test_no_bound_on_the_third_derivative_is_needed():
    # -mean log(y_t + 1e-7) with a target probability near 0.003: |f'''| ~ 2e7,
    # so h^2 |f'''| / 6 ~ 0.03 at h = 1e-4, far above round-off; the estimate
    # from the differences covers it, and a wrong eps still fails.
    rng = np.random.RandomState(0)
    y = rng.rand(4, 10) + 0.05
    y[0, 3] = 0.003
    y /= y.sum(axis=1, keepdims=True)
    t = np.array([3, 1, 4, 1])
    params = {"y": y}
    loss = lambda: N.cross_entropy_error(params["y"], t)  # noqa: E731

    def claimed(eps):
        g = np.zeros_like(y)
        g[np.arange(4), t] = -1 / (4 * (y[np.arange(4), t] + eps))
        return {"y": g}

    report = check_gradient_directions(loss, params, claimed(1e-7), directions=8)
    assert report.passed, report.to_text()
    row = report.rows[0]
    assert max(d.truncation for d in row.directions) > 1e3 * row.worst.roundoff
    assert not check_gradient_directions(loss, params, claimed(1e-3)).passed


def test_an_unused_parameter():
    params, loss, grad = toy()
    params["unused"] = np.ones(3)
    right = dict(grad(), unused=np.zeros(3))
    assert check_gradient_directions(loss, params, right).passed
    report = check_gradient_directions(loss, params, dict(grad(), unused=np.full(3, 0.5)))
    assert report.failed == ["unused"]
    assert {e.index for e in report.rows[-1].bad_elements} == {(0,), (1,), (2,)}


# --- the book's two-layer net on MNIST ----------------------------------------------------

@pytest.fixture(scope="module", params=["float64", "float32"])
def net_case(request, mnist_batch):
    dtype = np.dtype(request.param)
    x, t = mnist_batch
    x = x.astype(dtype)
    net = N.TwoLayerNet(784, 50, 10, seed=0, dtype=dtype)
    backprop = net.gradient(x, t)
    gap = book_gap(net.params, x, t)
    exact = {k: backprop[k].astype(np.float64) + gap[k] for k in backprop}
    return net, (lambda: net.loss(x, t)), backprop, gap, exact


def test_the_net_passes_with_the_gradient_of_its_own_loss_in_a_few_dozen_evaluations(net_case):
    net, loss, _, _, exact = net_case
    before = snapshot(net.params)
    report = check_gradient_directions(loss, net.params, exact)
    assert report.passed, report.to_text()
    assert report.evaluations == 1 + 4 * 4 * EVALS_PER_TEST  # 65, not 2 x 39,760
    assert all(row.located is None for row in report.rows)
    assert snapshot(net.params) == before


@pytest.mark.slow  # a few seconds: with the full suite
def test_the_1e7_gap_is_seen_in_float64_and_allowed_when_named(net_case):
    net, loss, backprop, gap, _ = net_case
    bare = check_gradient_directions(loss, net.params, backprop, locate="none")
    named = check_gradient_directions(loss, net.params, backprop, allowance=gap,
                                      allowance_name="1e-7 gap", locate="none")
    assert named.passed, named.to_text()
    assert "allowed 1e-7 gap" in named.to_text()
    if net.dtype == np.float64:  # 1e-6 relative: well above float64's tolerance
        assert bare.failed == ["W1", "b1", "W2", "b2"]
        assert all(row.worst.allowance > 0 for row in named.rows)
    else:  # far below float32's round-off over h = 1e-2
        assert bare.passed


@pytest.mark.slow
def test_a_missing_division_by_the_batch_size_is_caught_and_located(net_case):
    net, loss, _, _, exact = net_case
    wrong = dict(exact, W1=exact["W1"] * 100)
    report = check_gradient_directions(loss, net.params, wrong, max_locate=600)
    assert report.failed == ["W1"]
    row = report.rows[0]
    assert row.located == "blocks" and 500 < row.locate_evaluations <= 600
    worst = row.worst_element
    truth = exact["W1"][worst.index]
    assert worst.claimed == pytest.approx(100 * truth)
    assert worst.numerical == pytest.approx(truth, rel=0.05, abs=1e-6)
    assert row.unresolved > 0  # everything is wrong: the search stopped at its cap
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.slow
def test_a_sign_flip_on_b2_is_caught(net_case):
    net, loss, _, _, exact = net_case
    report = check_gradient_directions(loss, net.params, dict(exact, b2=-exact["b2"]))
    assert report.failed == ["b2"]
    bad = {e.index[0] for e in report.rows[3].bad_elements}
    assert bad == set(range(10))  # every b2 entry is 0.01 or more, far above tolerance
    assert "FAIL" in report.to_text() and "b2" in report.to_text()


@pytest.mark.slow
def test_one_wrong_element_of_w1_is_located_exactly(net_case):
    net, loss, _, _, exact = net_case
    wrong = {k: v.copy() for k, v in exact.items()}
    wrong["W1"][428, 7] *= 2  # the largest entry, 9e-4
    report = check_gradient_directions(loss, net.params, wrong)
    row = report.rows[0]
    assert report.failed == ["W1"]
    assert [e.index for e in row.bad_elements] == [(428, 7)]
    assert row.worst_element.numerical == pytest.approx(exact["W1"][428, 7], rel=0.01)
    # about 8 log2(39,200) evaluations to find it, against the book's 78,400, plus the
    # one kink retry (4 evaluations) of each failing direction and of the bad element, and
    # the noise measured along each of them where it still fails
    noise = 2 * NOISE_POINTS
    assert row.locate_evaluations <= 8 * 16 + 4 + noise
    assert report.evaluations <= 1 + 4 * 4 * 4 + 4 * 4 + 8 * 16 + 4 + 5 * noise


@pytest.mark.slow
def test_a_gradient_claimed_as_all_zeros_fails(net_case):
    net, loss, _, _, exact = net_case
    report = check_gradient_directions(loss, net.params, dict(exact, b1=np.zeros(50)))
    assert report.failed == ["b1"]
    row = report.rows[1]
    assert row.bad_elements and all(e.claimed == 0 for e in row.bad_elements)
    assert row.to_dict()["max_rel"] == "inf"
    json.dumps(report.to_dict(), allow_nan=False)


@pytest.mark.slow  # a whole process or a long run: seconds
def test_a_transposed_square_weight_is_caught(mnist_batch):
    x, t = mnist_batch
    net = N.TwoLayerNet(784, 10, 10, seed=0)
    loss = lambda: net.loss(x, t)  # noqa: E731
    exact = {k: g + gap for (k, g), gap in zip(net.gradient(x, t).items(),
                                                book_gap(net.params, x, t).values())}
    assert check_gradient_directions(loss, net.params, exact).passed
    report = check_gradient_directions(loss, net.params, dict(exact, W2=exact["W2"].T))
    assert report.failed == ["W2"]


def test_locate_all_checks_every_element(mnist_batch):
    x, t = mnist_batch
    net = N.TwoLayerNet(20, 5, 3, seed=0)
    x = x[:10, 300:320]
    t = t[:10] % 3
    loss = lambda: net.loss(x, t)  # noqa: E731
    exact = {k: g + gap for (k, g), gap in zip(net.gradient(x, t).items(),
                                                book_gap(net.params, x, t).values())}
    wrong = {k: v.copy() for k, v in exact.items()}
    wrong["W2"][1, 2] += 1e-6  # too small for 4 directions to notice? either way, located
    report = check_gradient_directions(loss, net.params, wrong, locate="all")
    n = sum(p.size for p in net.params.values())
    failing = sum(not d.passed for row in report.rows for d in row.directions)
    bad = sum(len(row.bad_elements) for row in report.rows)
    measured = sum(d.noise is not None for row in report.rows for d in row.directions) + \
        sum(e.noise is not None for row in report.rows for e in row.elements)
    # every element once, one kink retry for each failing direction or element, and the
    # noise measured along each failing one
    assert report.evaluations == 1 + 4 * 4 * EVALS_PER_TEST + n * EVALS_PER_TEST + \
        EVALS_PER_TEST * (failing + bad) + 2 * NOISE_POINTS * measured
    assert failing <= measured <= failing + bad  # elements only where a direction found noise
    assert report.failed == ["W2"]
    assert [e.index for e in report.rows[2].bad_elements] == [(1, 2)]
    assert all(len(row.elements) == net.params[row.name].size for row in report.rows)


# --- the parameters are left as they were -------------------------------------------------

@pytest.mark.parametrize("fail_at", [1, 5, 40])  # the first value, a direction, the locating step
def test_parameters_are_restored_bit_for_bit_when_loss_raises(fail_at):
    params, loss, grad = toy()
    params["x"][0, 0] = -0.0  # a signed zero must come back as it was
    wrong = dict(grad(), x=np.zeros((5, 3)))
    before = snapshot(params)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == fail_at:
            raise RuntimeError("boom")
        return loss()

    with pytest.raises(RuntimeError, match="boom"):
        check_gradient_directions(flaky, params, wrong)
    assert snapshot(params) == before


def test_layers_holding_references_see_the_perturbation():
    # The model reads its arrays through an object, not through params[name]:
    # the check must write into those very arrays.
    class Layer:
        def __init__(self, w):
            self.w = w

    w = np.array([0.5, -1.5, 2.0])
    layer = Layer(w)
    report = check_gradient_directions(lambda: float(np.sum(layer.w ** 2)), {"w": w},
                                       {"w": 2 * w})
    assert report.passed and layer.w is w
    # a non-contiguous view (a layer that stores W and is handed W.T) is written through too
    W = np.arange(6.0).reshape(2, 3) / 10
    before = W.tobytes()
    report = check_gradient_directions(lambda: float(np.sum(W ** 3)), {"WT": W.T},
                                       {"WT": 3 * W.T ** 2}, locate="all")
    assert report.passed and W.tobytes() == before


def test_a_non_finite_loss_names_the_parameter_and_direction():
    params = {"a": np.array([1.0, 2.0]), "p": np.array([5e-5, 1.0])}
    loss = lambda: float(np.sum(params["a"]) + np.sum(np.log(params["p"])))  # noqa: E731
    claimed = {"a": np.ones(2), "p": 1 / params["p"]}
    with np.errstate(invalid="ignore", divide="ignore"), \
            pytest.raises(ValueError, match=r"nan with p \(direction 0\) moved by -0.0001"):
        check_gradient_directions(loss, params, claimed)
    assert params["p"][0] == 5e-5


def test_bad_arguments_are_refused():
    params, loss, grad = toy()
    with pytest.raises(ValueError, match="no gradient for"):
        check_gradient_directions(loss, params, {"x": grad()["x"]})
    with pytest.raises(ValueError, match="shape"):
        check_gradient_directions(loss, params, dict(grad(), y=np.zeros(5)))
    with pytest.raises(ValueError, match="locate"):
        check_gradient_directions(loss, params, grad(), locate="some")
    with pytest.raises(TypeError, match="float32 or float64"):
        check_gradient_directions(loss, {"x": np.arange(3)}, {"x": np.zeros(3)})
    with pytest.raises(ValueError, match="scalar"):
        check_gradient_directions(lambda: params["y"].copy(), params, grad())


# --- the element-wise gradient ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numerical_gradient_of_is_within_its_own_error_bound(dtype):
    params, loss, grad = toy(dtype)
    before = snapshot(params)
    result = numerical_gradient_of(loss, params)
    truth = grad()
    assert result.evaluations == 1 + EVALS_PER_TEST * 19
    assert snapshot(params) == before
    for name in params:
        err = np.abs(result[name] - truth[name])
        assert np.all(err <= result.error[name]), name
        assert np.all(result.error[name] < 1e-2 * np.abs(truth[name]).max())


def test_numerical_gradient_of_the_net_matches_its_backprop_plus_gap(mnist_batch):
    x, t = mnist_batch
    x = x[:20, 200:230]
    t = t[:20]
    net = N.TwoLayerNet(30, 6, 10, seed=0)
    result = numerical_gradient_of(lambda: net.loss(x, t), net.params)
    exact = {k: g + gap for (k, g), gap in zip(net.gradient(x, t).items(),
                                                book_gap(net.params, x, t).values())}
    for name in net.params:
        assert np.all(np.abs(result[name] - exact[name]) <= result.error[name] + 1e-12), name


# --- kinks --------------------------------------------------------------------------------

@pytest.mark.slow  # a whole process or a long run: seconds
def test_relu_kinks_crossed_by_a_step_are_not_taken_for_a_wrong_gradient(mnist_batch):
    """A ReLU net: along a direction of all 39,200 elements of W1, a step of 1e-4 moves
    some pre-activations across 0; the difference mixes two slopes. At a smaller step
    the error vanishes; a wrong gradient's would not."""
    import port_zoo as zoo
    x, t = mnist_batch
    t = np.eye(10)[t]
    net = zoo.layer_net()
    exact = {k: v.copy() for k, v in net.gradient(x, t).items()}

    def loss():  # the cross-entropy without the 1e-7, whose exact gradient backprop is
        s = net.predict(x)
        s = s - s.max(axis=1, keepdims=True)
        return -np.mean(np.sum(t * (s - np.log(np.exp(s).sum(axis=1, keepdims=True))), axis=1))

    report = check_gradient_directions(loss, net.params, exact, directions=8, locate="none")
    assert report.passed, report.to_text()
    kinked = [d for row in report.rows for d in row.directions if d.kink_h]
    assert kinked and all(d.kink_h < 1e-4 for d in kinked)
    assert "crossed a kink" in report.rows[0].note
    wrong = check_gradient_directions(loss, net.params, dict(exact, W1=exact["W1"] * 1.001),
                                      directions=8, locate="none")
    assert wrong.failed == ["W1"]  # a 0.1% error persists at every step
