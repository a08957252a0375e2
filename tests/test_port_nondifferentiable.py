"""``compare.port.numerical`` where the loss has no derivative at the point.

Small nets in the book's chapter-5 style, written here: affine layers with
zero biases fed rows that are all zero, so the hidden pre-activations of
those rows are exactly the bias, 0, and sit at the ReLU's kink (the
analogue of the blank MNIST patches under a zero conv bias). Truth is
worked out by hand from each net's layers: the one-sided slopes of the
loss along each bias element, and which elements sit at a kink.
"""
import json

import numpy as np
import pytest

from compare.port.numerical import check_gradient_directions, numerical_gradient_of


# --- a chapter-5 net, its backprop with a choice of relu'(0) --------------------------------

class Affine:
    def __init__(self, W, b):
        self.W, self.b = W, b
        self.x = None

    def forward(self, x):
        self.x = x
        return x @ self.W + self.b

    def backward(self, dout):
        self.dW, self.db = self.x.T @ dout, dout.sum(axis=0)
        return dout @ self.W.T


class Relu:
    """``at_zero`` is the slope backward uses at an input of exactly 0: the book's
    mask ``x <= 0`` gives 0 (as torch's relu does), ``clamp(min=0)`` gives 1."""

    def __init__(self, at_zero=0.0):
        self.at_zero = at_zero

    def forward(self, x):
        self.x = x
        return np.maximum(x, 0.0)

    def backward(self, dout):
        slope = np.where(self.x > 0, 1.0, np.where(self.x == 0, self.at_zero, 0.0))
        return dout * slope


class PairMax:
    """Max pooling over neighbouring pairs of units; backward routes to the first maximum
    (``np.argmax``, as the book's ``Pooling`` and torch's ``MaxPool`` do)."""

    def forward(self, x):
        pairs = x.reshape(x.shape[0], -1, 2)
        self.first = np.argmax(pairs, axis=2)
        return pairs.max(axis=2)

    def backward(self, dout):
        dx = np.zeros(dout.shape + (2,))
        np.put_along_axis(dx, self.first[..., None], dout[..., None], axis=2)
        return dx.reshape(dout.shape[0], -1)


class SoftmaxWithLoss:
    """Mean cross-entropy of the softmax, without the book's 1e-7: backprop's
    ``(y - t) / N`` is then its exact gradient."""

    def forward(self, s, t):
        self.t = t
        s = s - s.max(axis=1, keepdims=True)
        log_y = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        self.y = np.exp(log_y)
        return float(-np.mean(log_y[np.arange(len(t)), t]))

    def backward(self):
        dx = self.y.copy()
        dx[np.arange(len(self.t)), self.t] -= 1
        return dx / len(self.t)


class Net:
    """Layers in order, the parameters by name (the arrays the layers hold)."""

    def __init__(self, params, layers):
        self.params, self.layers, self.last = params, layers, SoftmaxWithLoss()

    def loss(self, x, t):
        for layer in self.layers:
            x = layer.forward(x)
        return self.last.forward(x, t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last.backward()
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads, k = {}, 1
        for layer in self.layers:
            if isinstance(layer, Affine):
                grads[f"W{k}"], grads[f"b{k}"] = layer.dW.copy(), layer.db.copy()
                k += 1
        return grads


ZERO_ROWS = [1, 4, 6, 9]  # all-zero inputs: their pre-activations are the bias
ZERO_BIAS = [0, 2, 3, 5, 7]  # hidden units whose bias is 0; the others carry +-0.1 or so


def data(n=12, d=5, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, d)
    x[ZERO_ROWS] = 0.0
    return x, rng.randint(0, classes, size=n)


def two_layer(at_zero=0.0, hidden=8, d=5, classes=3, seed=1):
    rng = np.random.RandomState(seed)
    b1 = 0.1 * rng.choice([-1.0, 1.0], size=hidden) * rng.uniform(0.5, 1.5, size=hidden)
    b1[ZERO_BIAS] = 0.0
    params = {"W1": rng.randn(d, hidden), "b1": b1,
              "W2": rng.randn(hidden, classes), "b2": 0.1 * rng.randn(classes)}
    return Net(params, [Affine(params["W1"], params["b1"]), Relu(at_zero),
                        Affine(params["W2"], params["b2"])])


def check(net, x, t, claimed, **kw):
    return check_gradient_directions(lambda: net.loss(x, t), net.params, claimed, **kw)


def hand_slopes(net, x, t):
    """The one-sided slopes of the loss along each ``b1[j]``, from the layers by hand.

    Moving ``b1[j]`` by ``+s`` turns on unit ``j`` in every row where its
    pre-activation is exactly 0 (its output becomes ``s``); by ``-s`` it stays
    off. So the left slope is the gradient with those rows' unit ``j`` off, and
    the right slope adds ``K_j = sum over those rows of dL/d(output)``.
    """
    a = x @ net.params["W1"] + net.params["b1"]
    net.loss(x, t)
    delta = net.last.backward() @ net.params["W2"].T  # dL / d(hidden output)
    at_kink = a == 0
    left = np.sum(delta * (a > 0), axis=0)
    return left, left + np.sum(delta * at_kink, axis=0), at_kink


def test_the_hand_slopes_are_the_losss():
    # the truth the other tests use, against the loss itself at steps far above round-off
    x, t = data()
    net = two_layer()
    left, right, _ = hand_slopes(net, x, t)
    f0, b1, s = net.loss(x, t), net.params["b1"], 1e-6
    for j in range(b1.size):
        b1[j] += s
        up = (net.loss(x, t) - f0) / s
        b1[j] -= 2 * s
        down = (f0 - net.loss(x, t)) / s
        b1[j] += s
        assert up == pytest.approx(right[j], abs=1e-6) and down == pytest.approx(left[j], abs=1e-6)


# --- right claims pass, the elements counted ------------------------------------------------

@pytest.mark.parametrize("at_zero", [0.0, 1.0])
def test_a_right_gradient_passes_with_the_kinks_counted(at_zero):
    """relu'(0) = 0 (the book's ``x <= 0`` mask, torch's relu) claims the left slope of each
    bias element at a kink, relu'(0) = 1 (``clamp(min=0)``) the right one: each unit at a
    kink reaches the loss through smooth layers only. Both lie in the interval."""
    x, t = data()
    net = two_layer(at_zero)
    claimed = net.gradient(x, t)
    left, right, at_kink = hand_slopes(net, x, t)
    kinked = np.flatnonzero(at_kink.any(axis=0) & (left != right))
    assert list(kinked) == ZERO_BIAS  # every zero-bias unit, nothing else
    assert np.all(np.abs(right - left)[kinked] > 1e-4)  # kinks far above the tolerances
    assert np.allclose(claimed["b1"][kinked], (right if at_zero else left)[kinked])

    report = check(net, x, t, claimed)
    assert report.passed, report.to_text()
    row = {r.name: r for r in report.rows}["b1"]
    found = row.nondifferentiable
    assert sorted(e.index[0] for e in found) == list(kinked)
    for e in found:
        j = e.index[0]
        # within the element's own bounds (round-off and the slopes' first-order truncation)
        assert abs(e.left - left[j]) <= e.tolerance and abs(e.right - right[j]) <= e.tolerance
        assert abs(e.numerical - (left[j] + right[j]) / 2) <= e.tolerance
        assert e.tolerance < 0.1 * abs(right[j] - left[j])  # the interval is resolved
        assert not e.bad and e.error == 0
    # the rest is judged along the same directions without the kinked elements
    assert len(row.set_aside) == 4 and not all(d.passed for d in row.set_aside)
    assert len(row.directions) == 4 and all(d.passed for d in row.directions)
    assert all(len(r.nondifferentiable) == 0 for r in report.rows if r.name != "b1")
    assert f"{len(kinked)} elements not differentiable at this point" in row.note
    assert "judged the rest" in row.note and "no derivative" in report.to_text()
    out = report.to_dict()
    json.dumps(out, allow_nan=False)
    assert out["nondifferentiable"] == {"b1": len(kinked)}
    b1 = next(p for p in out["params"] if p["name"] == "b1")
    assert b1["nondifferentiable"] == len(kinked) and b1["nondifferentiable_outside"] == 0


def test_float32_kinks_are_counted_and_a_claim_outside_them_fails():
    # float32's h = 1e-2 crosses any kink within 2e-2 of the point: these draws keep every
    # other pre-activation 0.28 or more from 0 and every kink above 0.04, so the one-sided
    # slopes are resolved over float32's round-off (5.5e-5 at that step)
    x, t = data(seed=16)
    rng_net = two_layer(seed=15)
    a = x @ rng_net.params["W1"] + rng_net.params["b1"]
    assert np.abs(np.delete(a, ZERO_ROWS, axis=0)).min() > 0.28
    left, right, _ = hand_slopes(rng_net, x, t)
    assert np.abs(right - left)[ZERO_BIAS].min() > 0.04
    params = {k: v.astype(np.float32) for k, v in rng_net.params.items()}
    net = Net(params, [Affine(params["W1"], params["b1"]), Relu(),
                       Affine(params["W2"], params["b2"])])
    x = x.astype(np.float32)
    claimed = net.gradient(x, t)
    report = check(net, x, t, claimed)
    assert report.passed and report.dtype == "float32", report.to_text()
    assert sorted(e.index[0] for e in report.rows[1].nondifferentiable) == ZERO_BIAS
    j = ZERO_BIAS[2]
    claimed["b1"][j] = min(left[j], right[j]) - abs(right[j] - left[j])
    report = check(net, x, t, claimed)
    assert report.failed == ["b1"] and [e.index for e in report.rows[1].outside] == [(j,)]


def test_a_claim_between_the_slopes_passes():
    # relu'(0) = 1/2 (torch.maximum(x, 0)'s split at a tie): the central difference itself
    x, t = data()
    net = two_layer(0.5)
    report = check(net, x, t, net.gradient(x, t))
    assert report.passed, report.to_text()


def test_the_count_is_reported_with_locate_all():
    x, t = data()
    net = two_layer()
    report = check(net, x, t, net.gradient(x, t), locate="all")
    assert report.passed, report.to_text()
    counts = {r.name: len(r.nondifferentiable) for r in report.rows}
    assert counts == {"W1": 0, "b1": len(ZERO_BIAS), "W2": 0, "b2": 0}


# --- wrong claims fail ----------------------------------------------------------------------

def test_a_claim_outside_the_one_sided_slopes_fails_and_is_located():
    x, t = data()
    net = two_layer()
    claimed = net.gradient(x, t)
    left, right, _ = hand_slopes(net, x, t)
    j = ZERO_BIAS[1]
    width = abs(right[j] - left[j])
    claimed["b1"][j] = min(left[j], right[j]) - width  # a whole interval below it
    report = check(net, x, t, claimed)
    assert report.failed == ["b1"]
    row = report.rows[1]
    assert [e.index for e in row.bad_elements] == [(j,)]
    assert [e.index for e in row.outside] == [(j,)]
    bad = row.bad_elements[0]
    assert abs(bad.error - width) <= bad.tolerance < 1e-3 * width
    assert "outside the one-sided slopes" in row.problem
    assert len(row.nondifferentiable) == len(ZERO_BIAS)  # the others still counted, and right


def test_a_claim_just_outside_fails_and_just_inside_passes():
    # the interval's edge is the left slope itself (relu'(0) = 0): a claim 1% of the
    # interval beyond it fails, 1% inside it passes
    x, t = data()
    net = two_layer()
    left, right, _ = hand_slopes(net, x, t)
    j = ZERO_BIAS[0]
    inward = np.sign(right[j] - left[j]) * 0.01 * abs(right[j] - left[j])
    for shift, passes in ((-inward, False), (inward, True)):
        claimed = net.gradient(x, t)
        claimed["b1"][j] += shift
        report = check(net, x, t, claimed)
        assert report.passed is passes, report.to_text()


def test_a_wrong_differentiable_element_of_the_same_parameter_fails():
    x, t = data()
    net = two_layer()
    claimed = net.gradient(x, t)
    j = next(k for k in range(8) if k not in ZERO_BIAS)
    claimed["b1"][j] *= 1.5
    report = check(net, x, t, claimed)
    assert report.failed == ["b1"]
    row = report.rows[1]
    assert [e.index for e in row.bad_elements] == [(j,)]
    assert not row.bad_elements[0].nondifferentiable
    assert len(row.nondifferentiable) == len(ZERO_BIAS)
    # the directions without the kinked elements see it too
    assert not all(d.passed for d in row.directions)


def test_a_small_error_over_the_rest_is_seen_by_the_directions_without_the_kinks():
    # 1e-6 relative on every differentiable element of b1: located one by one, and the
    # directions without the kinked elements fail too, as full ones would without kinks
    x, t = data()
    net = two_layer()
    claimed = net.gradient(x, t)
    rest = [k for k in range(8) if k not in ZERO_BIAS]
    claimed["b1"][rest] *= 1 + 1e-6
    report = check(net, x, t, claimed)
    assert report.failed == ["b1"]
    row = report.rows[1]
    assert sorted(e.index[0] for e in row.bad_elements) == rest
    assert len(row.directions) == 4 and not any(d.passed for d in row.directions)
    assert "without the 5 elements where the loss has no derivative" in row.problem


def test_a_wrong_weight_still_fails():
    x, t = data()
    net = two_layer()
    claimed = net.gradient(x, t)
    claimed["W1"][2, 4] += 0.05
    report = check(net, x, t, claimed)
    assert report.failed == ["W1"]
    assert [e.index for e in report.rows[0].bad_elements] == [(2, 4)]
    assert report.rows[1].passed and len(report.rows[1].nondifferentiable) == len(ZERO_BIAS)


def test_locate_none_says_the_kinked_directions_cannot_be_judged():
    x, t = data()
    net = two_layer()
    report = check(net, x, t, net.gradient(x, t), locate="none")
    row = report.rows[1]
    assert report.passed, report.to_text()  # never a failure for a right claim
    assert row.not_judged and "not judged" in row.note and "locate='failing'" in row.note


# --- a deeper net: where relu'(0) = 1 leaves the interval -------------------------------------

def three_layer(at_zero, seed=2, d=5, hidden=6, classes=3):
    rng = np.random.RandomState(seed)
    params = {"W1": rng.randn(d, hidden), "b1": np.zeros(hidden),
              "W2": rng.randn(hidden, hidden), "b2": np.zeros(hidden),
              "W3": rng.randn(hidden, classes), "b3": 0.1 * rng.randn(classes)}
    return Net(params, [Affine(params["W1"], params["b1"]), Relu(at_zero),
                        Affine(params["W2"], params["b2"]), Relu(at_zero),
                        Affine(params["W3"], params["b3"])])


def test_relu_prime_one_behind_a_second_kink_is_outside_where_derived():
    """A zero row under zero biases sits at the kink of both ReLU layers. Moving
    ``b1[j]`` up turns on unit j, whose output ``s`` reaches the second layer as
    ``s W2[j, k]``: only the ``k`` with ``W2[j, k] > 0`` turn on. Moving it down changes
    nothing. So the right slope adds ``sum_{k: W2[j,k] > 0} W2[j, k] g_k`` (``g_k``: the
    gradient at the second layer's output, summed over the zero rows) and the left adds
    nothing; relu'(0) = 1 at both layers claims ``sum_k W2[j, k] g_k``, every ``k``, which
    lies outside ``[left, right]`` wherever the negative ``W2[j, k]`` outweigh. relu'(0) = 0
    claims the left slope and passes."""
    x, t = data()
    net = three_layer(0.0)
    report = check(net, x, t, net.gradient(x, t))
    assert report.passed, report.to_text()
    assert {r.name: len(r.nondifferentiable) for r in report.rows if r.nondifferentiable} == \
        {"b1": 6, "b2": 6}

    net = three_layer(1.0)
    claimed = net.gradient(x, t)
    net.loss(x, t)
    g = (net.last.backward() @ net.params["W3"].T)[ZERO_ROWS].sum(axis=0)
    W2 = net.params["W2"]
    turned_on = (W2 * (W2 > 0)) @ g  # right slope minus left, per b1[j]
    claimed_extra = W2 @ g  # relu'(0) = 1's claim minus the left slope
    outside = np.flatnonzero((claimed_extra - turned_on) * claimed_extra > 0)
    assert 0 < len(outside) < 6  # this draw has both kinds
    report = check(net, x, t, claimed)
    assert report.failed == ["b1"], report.to_text()
    row = report.rows[1]
    assert sorted(e.index[0] for e in row.outside) == list(outside)
    assert len(row.nondifferentiable) == 6
    assert report.rows[3].passed  # b2's claim is its right slope: inside


# --- max-pool ties ----------------------------------------------------------------------------

TIED_PAIRS = [0, 1]  # pairs (0, 1) and (2, 3) of b1 hold equal values


def pooled(seed=3, d=5, pairs=4, classes=3):
    rng = np.random.RandomState(seed)
    b1 = np.array([0.0, 0.0, 0.2, 0.2, 0.1, -0.1, 0.0, 0.05])
    params = {"W1": rng.randn(d, 2 * pairs), "b1": b1,
              "W2": rng.randn(pairs, classes), "b2": 0.1 * rng.randn(classes)}
    return Net(params, [Affine(params["W1"], params["b1"]), PairMax(),
                        Affine(params["W2"], params["b2"])])


def test_a_max_pool_tie_passes_with_both_tied_elements_counted():
    """On a zero row the pair ``(b1[2k], b1[2k+1])`` is tied: moving either element up
    makes it the maximum (the right slope carries the pair's gradient), moving it down
    leaves the other (the left slope does not). The first maximum gets the gradient: its
    claim is the right slope, the other's the left one."""
    x, t = data()
    net = pooled()
    claimed = net.gradient(x, t)
    report = check(net, x, t, claimed)
    assert report.passed, report.to_text()
    row = report.rows[1]
    tied = sorted(2 * k + i for k in TIED_PAIRS for i in (0, 1))
    assert sorted(e.index[0] for e in row.nondifferentiable) == tied
    net.loss(x, t)
    g = (net.last.backward() @ net.params["W2"].T)[ZERO_ROWS].sum(axis=0)  # per pair
    for e in row.nondifferentiable:
        j = e.index[0]
        first = j % 2 == 0
        assert abs(abs(e.right - e.left) - abs(g[j // 2])) <= 2 * e.tolerance
        assert abs(e.claimed - (e.right if first else e.left)) <= e.tolerance


def test_a_max_pool_tie_given_twice_the_gradient_fails():
    x, t = data()
    net = pooled()
    claimed = net.gradient(x, t)
    net.loss(x, t)
    g = (net.last.backward() @ net.params["W2"].T)[ZERO_ROWS].sum(axis=0)
    claimed["b1"][2] += g[1]  # the tie's share counted twice at the first maximum
    report = check(net, x, t, claimed)
    assert report.failed == ["b1"]
    assert [e.index for e in report.rows[1].bad_elements] == [(2,)]
    assert report.rows[1].bad_elements[0].nondifferentiable


# --- the element-wise numerical gradient --------------------------------------------------------

def test_numerical_gradient_of_marks_the_elements_without_a_derivative():
    x, t = data()
    net = two_layer()
    left, right, _ = hand_slopes(net, x, t)
    result = numerical_gradient_of(lambda: net.loss(x, t), net.params)
    assert list(np.flatnonzero(result.nondifferentiable["b1"])) == ZERO_BIAS
    assert not any(result.nondifferentiable[k].any() for k in ("W1", "W2", "b2"))
    kinked = result.nondifferentiable["b1"]
    # one-sided slopes at h = 1e-4, within their own bounds (first-order truncation)
    bound = result.slope_error["b1"][kinked]
    assert np.all(np.abs(result.left["b1"][kinked] - left[kinked]) <= bound)
    assert np.all(np.abs(result.right["b1"][kinked] - right[kinked]) <= bound)
    assert np.all(bound < 0.1 * np.abs(right - left)[kinked])
    assert np.all(np.isnan(result.left["b1"][~kinked]))


# --- a kink near the point is not one at it ----------------------------------------------------

@pytest.mark.parametrize("claim, passes", [(0.0, True), (0.5, False), (-0.05, False)])
def test_a_kink_near_the_point_is_judged_by_the_kink_retry(claim, passes):
    """``relu(b - 3e-5) + b**2 / 2`` at ``b = 0`` has the derivative 0: the kink is 0.3 h
    away. At ``h`` the one-sided slopes are apart (about 0 and 0.7), but the right one
    moves by a fifth of their gap from ``2h`` to ``h`` (a kink at ``d`` moves it by
    ``d / 2(h - d)``): not settled, not a kink at the point. So a claim of 0.5, between
    the slopes at ``h``, is still wrong, and the retry at ``h / 10`` shows it."""
    p = {"b": np.array([0.0, 0.3])}

    def loss():
        b = p["b"]
        return float(max(b[0] - 3e-5, 0.0) + b[0] ** 2 / 2 + np.sin(b[1]))

    report = check_gradient_directions(loss, p, {"b": np.array([claim, np.cos(0.3)])})
    assert report.passed is passes, report.to_text()
    row = report.rows[0]
    assert not row.nondifferentiable
    if not passes:
        assert [e.index for e in row.bad_elements] == [(0,)]
