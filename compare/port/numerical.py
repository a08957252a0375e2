"""Check a claimed gradient against central differences of a loss, a few directions at a time.

A NumPy model that has only a ``loss`` gives its gradient only through
differences, and the book's loop (two losses per element: 2 x 39,760 for the
784-50-10 net) is slow. Here each parameter's claimed gradient ``g`` is
tested along a few random directions ``v`` instead: the central difference of
``loss`` along ``v`` must match ``g . v``. Four loss evaluations per
direction (two step sizes), and element-by-element work only where a
direction fails, or everywhere on request.

The directions
==============
``v[i] = s[i] u[i]``: a random sign ``s`` times a magnitude ``u`` uniform in
[1/2, 1], so every element moves by between ``h/2`` and ``h`` (the book's
element-wise step is ``h``), and

* a wrong gradient shows: an error vector ``d`` (claimed minus true) gives
  ``d . v``, which has a density, so it is 0 with probability 0 (pure signs,
  ``u = 1``, would cancel two equal errors of opposite sign with
  probability 1/2 per direction), and one wrong element ``d[i]`` shows as at
  least ``|d[i]| / 2`` however many elements there are;
* the round-off of the claimed gradient adds up like a random walk, not like
  a worst case (below).

The step actually taken is what is stored: ``x+ = fl(p + h v)`` and
``x- = fl(p - h v)`` round, so the claimed value is taken along the actual
step, ``claimed . (x+ - x-) / 2h``, and the rounding of the perturbation
leaves no trace in the comparison. (``x+ - x-`` is exact for float32
parameters, in float64; within ``eps/2`` of itself for float64 ones.)

The tolerance of one directional difference
===========================================
``D(h) = (f(x+) - f(x-)) / 2h`` against ``C = claimed . (x+ - x-) / 2h``;
``e(h) = D(h) - C`` must satisfy ``|e(h)| <= R + T + A (+ allowance)``:

``R``, round-off of the two loss values: ``K eps S / h`` (``compare.parity.roundoff``).
    One loss value is within ``K eps S / 2`` of the exact one, ``S`` the
    size of what the loss is computed from, so ``D(h)`` is within
    ``K eps S / h``. For a loss that is a mean of positive per-sample terms
    (the cross-entropy), ``sum |terms| / N = |f|``; but the terms are
    ``-log y``, whose error is *absolute* (``log(y (1 + d)) = log y + d``),
    about ``eps`` each even when ``|f|`` is near 0 (a trained net). Hence
    ``S = max(|f|, value_scale)``, ``|f|`` the largest loss value seen,
    ``value_scale`` = 1 unless given (give it for a loss that cancels large
    terms). Measured on the 784-50-10 net (100 MNIST images) against the
    same forward pass in extended precision, over 30 perturbed points: one
    loss value errs by at most 2.0 eps in float64 (``|f|`` = 2.31) and 3.4
    eps in float32 (``|f|`` = 2.35), i.e. up to 1.5 eps ``|f|``. ``K`` = 4
    allows 2 eps ``S`` per value (1.4x over the worst seen, and the same
    ``4 eps |f| / h`` as ``compare.parity``'s numerical round-off): 2.0e-11
    in float64 at h = 1e-4, 1.1e-4 in float32 at h = 1e-2.

``T``, truncation, estimated from the differences (Richardson).
    ``D(h) = f' + c h**2 + O(h**4)`` with ``c = f'''(v, v, v) / 6``, so
    ``e(2h) - e(h) = 3 c h**2 + O(h**4)``: the claimed term, taken along the
    steps actually made, drops out, so the estimate does not depend on the
    claimed gradient being right. ``compare.parity.richardson_truncation``
    turns it into the bound ``T = 2 (|e(2h) - e(h)| / 3 + R / 2)`` (the
    derivation is in ``compare.parity``: the factor 2 covers the estimate's
    own round-off, ``R / 2``, and the next term of the series at the default
    steps). No bound on ``f'''`` is asked of the user. Measured on the
    784-50-10 net: ``|e(h)|`` is 0.4 to 0.5 ``T`` wherever truncation
    dominates, i.e. the estimate is the error seen (float64: W1's ``T`` is
    2e-9 to 2e-8 against directional derivatives near 1e-2).

``A``, round-off of the claimed gradient, from ``compare.parity``'s analytic tolerance.
    Each claimed element errs by at most ``b[i] = rtol |g[i]| + atol``
    (rtol, atol = 1e-10, 1e-12 in float64; 1e-4, 1e-7 in float32). Those
    errors are fixed before the signs are drawn, so their sum along ``v`` is
    a Rademacher sum: by Hoeffding's inequality it exceeds
    ``8 sqrt(sum (b[i] u[i])**2)`` with probability below ``2 exp(-32)``
    (3e-14). ``A`` is that, or the worst case ``sum b[i] u[i]`` if smaller
    (one element: ``A = b``).

``allowance``: a known, named difference ``a`` (the gradient of ``loss``
minus the claimed one, e.g. ``compare.ch4.gap.book_gap`` for the book's
``1e-7``): ``|a . (x+ - x-) / 2h|`` is allowed for, shown in its own column,
never folded into the tolerance.

Cost and location
=================
``4 x directions`` loss evaluations per parameter, plus one in all (the loss
at the given point, for ``S`` and the one-sided slopes). Where a direction fails, the bad elements
are located by group testing: a block of elements (a contiguous range of
the flattened parameter) is tested like a direction restricted to it, a
failing block is halved and both halves tested, the worse half first
(depth first, so the first bad element is reached after ``ceil(log2 n)``
levels). A block of one element is the book's element-wise difference
(``v = 1``), with the same tolerance. Finding ``k`` bad elements among ``n``
costs about ``8 k log2(n)`` evaluations (120 for one element of W1's 39,200,
against the book's 78,400); where both halves of a block fail, halves of up
to 16 elements are swept instead (``_locate_blocks``); when everything is
wrong the search stops after
``max_locate`` evaluations per parameter (default 2,000) and reports the
worst elements reached. A block whose errors happen to cancel can hide a bad
element from this search: it locates, the directions decide.

``locate="all"`` computes every element's difference instead (4 evaluations
per element, the book's loop twice over) and fails a parameter on any bad
element. ``numerical_gradient_of`` returns that element-wise gradient, with
each element's error bound ``R + T``.

Points where the loss has no derivative
=======================================
At a ReLU input of exactly 0, or a max-pool tie, the loss has a kink *at*
the point: along ``v`` its one-sided derivatives ``R = lim (f(x+sv) - f(x))
/ s`` and ``L = lim (f(x) - f(x-sv)) / s`` differ. The central difference
tends to ``(R + L) / 2`` at every step, and the claim is whatever the
implementation chose at the kink. Under the book's zero-initialised conv
bias, MNIST's blank patches give pre-activations of exactly 0 (752,370 of
the 1,728,000 conv outputs of ``SimpleConvNet`` on the first 100 images);
only ``b1[c]`` moves them, all the same way, so their kinks all switch on on
one side, and relu'(0) = 0 (the book's mask ``x <= 0``, torch's ``relu``)
claims the slope of the other side: ``L``, off the central difference by
``(R - L) / 2`` at every step. No ``h`` and no kink retry can meet it.

Detection, from the values the differences take anyway:
``R(s) = (f(x+) - f(x)) / s`` and ``L(s) = (f(x) - f(x-)) / s``, with
``f(x)`` taken once, add no evaluation. Each is first-order,
``R(s) = R + a s + b s**2``, and ``R(2s) - R(s)`` estimates its truncation:
the bracket ``R(s) +- (r + T)``, ``T = 2 (|R(2s) - R(s)| + r)``, is derived
in ``_one_sided``. The slopes are *apart* when the two brackets do not meet.
A smooth loss has ``R = L`` and ``R(s) - L(s) = f''(v, v) s + O(s**3)``,
while each slope moves by half of that from ``2s`` to ``s``
(``R(2s) - R(s) = f'' s / 2``): ``T_R + T_L`` exceeds twice the gap and the
brackets meet. The test reads no claim, so no claim can make a loss look
kinked. A kink at a distance ``d`` under about ``s / 2`` makes the slopes
apart too, so the kink must also be *settled*: each slope moved by under
``SETTLED`` = 10% of the gap from ``2s`` to ``s``. A kink of size ``J`` at
``d`` moves ``R(s)`` by ``J d / 2s`` against a gap ``J (1 - d / s)``, so
only one nearer than ``s / 6`` passes for one at the point. (The many small
kinks near MNIST's blank patches move the slopes of ``SimpleConvNet``'s
conv bias by 0.8% to 60% of the gap at ``h``, median 5%: the elements above
10% are taken again at ``h / 10``.) A direction's retries stop where two
steps a decade apart show the same kink (``_same_kink``: a kink nearer
than ``s / 90`` would pass), and it is taken for one with a kink at the
point where the smallest step tried shows one.

Judgement, one element at a time. Along one element the loss's
generalised derivatives at a kink form the interval between ``L`` and
``R`` (its Clarke subdifferential in one dimension): the claim ``c`` is
right inside it or at an end. With ``e_R = R(s) - c`` and ``e_L = L(s) -
c`` (the claim taken along the steps actually made), it lies outside when
both exceed their tolerances (bracket, claim's round-off, allowance) with
one sign. relu'(0) = 0 gives ``L`` exactly; relu'(0) = 1 (``x * (x >= 0)``)
gives ``R`` where each unit at a kink reaches the loss through smooth layers
only (one hidden layer), but behind another kink at the point (a second
ReLU at 0 fed by the first, a max-pool tie among zeros) its choice is
multiplied by the other's and can leave the interval; relu'(0) = 1/2
(``torch.maximum``'s split) meets the central difference itself. Kinks
*near* the point blur the slopes as they blur the central difference (on
MNIST the conv pre-activations crowd 0: hundreds within 1e-4 of it per
channel, one at 2.3e-8), and the kink retry sorts them the same way: a
claim outside at a step is retried at ``h / 10**k``; the same distance
outside at two steps (``SAME``, within round-off) is the claim's own, a bad
element; inside at a smaller step with the distance ``SHRINKS`` times
smaller is right; outside at every step by distances that kept changing is
left unjudged, counted, never a failure.

The rest. An element at a kink fails the central difference, so the block
search reaches it like a bad one (4 evaluations where its claim lies
between slopes apart at ``h``, since a smaller step cannot change a kink at
the point; 8 or more where near kinks blur them). The same directions are
then taken again with those elements' entries set to 0 and judged as
before (``4 x directions`` evaluations more). A failing direction whose
slopes are still apart and settled (its kink in elements that each passed
within their own tolerance, or not searched within ``max_locate``) is not
judged: counted, never a failure. With ``locate="none"`` no element is
searched, and every failing direction with a kink at the point is not
judged. Not judged either: how the claims of kinked elements combine. A
port that hands a max's gradient to every tied input claims each element's
right slope, each inside its interval, and passes here (at ties among the
zeros of a ReLU it makes no difference: relu'(0) = 0 stops it).

Measured on the book's ``SimpleConvNet`` (``examples/ch7_conv``, 30 filters
5x5, seeds 0 and 1) on three batches of 100 MNIST images, with the exact
gradient of its loss: all pass, where before ``b1`` failed with 29 "bad
elements". 28 to 30 of ``b1``'s 30 elements are found at a kink (every
channel has exact zeros; a channel whose kink lies within its own
tolerance at ``h`` passes on its own, and a direction through it is then
not judged). ``b1`` costs 270 to 320 loss evaluations (directions and
their retries about 70, 4 to 20 per element, median 8, as near kinks need
smaller steps), the whole check 430 to 500 (921 before, 764 of them for
``b1``); the other parameters cost what they did.

The loss's own noise
====================
``R`` assumes each loss value is within ``2 eps S`` of its exact value. A
loss that cancels is not: a logistic regression's ``log(1 - y)`` at a
saturated logit (``|z|`` 15 to 20, ``1 - y`` of 1e-7 to 2e-9) errs by
``eps e**|z| / N``, 1e-12 to 1e-10 on a loss of 3, and ``D(h)`` then misses
by 1e-8 to 1e-6 against an ``R`` of 2e-11. So a direction still failing
after the kink retry (and not at a kink) is judged again against the noise
measured along it (``_rejudge_noise``):

* ``sigma_f``: the loss at 16 seeded random points within ``2h`` of ``x``
  (the span of ``D(h)`` and ``D(2h)``), a degree-4 polynomial fitted by least
  squares, ``sigma_f`` the residual deviation (12 degrees of freedom, ``f(x)``
  joining them); and again within ``2h / 10``. Noise has one
  size at both spans; a kink's residual shrinks with the span (2.9 to 300
  times for a ReLU hinge anywhere in the narrow span, above 4 in 999 of
  1,000), so the two must agree within ``NOISE_SPREAD`` = 4 (independent
  noise differs more in 2 of 100,000 draws), and the larger is taken. Where
  they do not, nothing changes: the failure stands. Random points, because
  on a lattice (Moré and Wild's ECnoise) the sawtooth of a rounding that
  moves linearly along ``v`` aliases into a smooth curve.
* ``R`` becomes ``NOISE_SIGMAS sigma_f / h``, ``NOISE_SIGMAS`` = 5, where that
  is larger. ``D(h)``'s noise is ``(n+ - n-) / 2h``; ``|n+ - n-| / 2 sigma_f``,
  with ``sigma_f`` the larger of the two estimates, is 3.5 at its
  1-in-100,000 quantile for Gaussian noise and at most 3.9 in 400,000 draws
  (uniform, as rounding is: 2.4 and 2.7), so 5 leaves a margin for noise
  that is not quite stationary over the span. ``T`` keeps Richardson's estimate with this ``R`` in its
  round-off share (``D(2h)``'s noise is half of ``D(h)``'s).
* Where that bound exceeds the directional derivative itself (the claim and
  the difference both), a claim of 0 would pass: the direction is not
  judged, counted and said in the row's note, never passed as right.

A wrong gradient still fails: its error does not shrink with the noise.
Measured on seeded saturated models (``W`` of scale 3 on 5 features, 40
samples, 0/1 targets at random): in float64, ``|z|`` up to 22, 262 with one
output and 46 with five, every exact gradient passes and every sum-for-mean,
sign and transposed ``W`` fails at its parameter; in float32, ``|z|`` up to
9, 64 of 64 pass (91 of 92 up to 10). Beyond ``|z|`` of about 25 in float64
(10 in float32) ``1 - y`` is a few ulps of 1: the loss is a staircase whose
steps are wider than the narrow span or than ``h``, its slope there is not
the gradient's, and the failure stands.

Cost: only a direction (or, once a direction found noise, an element)
that still fails pays, ``2 x 16`` evaluations; passing directions pay
nothing, so a check that passes costs what it did.

Measured on the 784-50-10 net
=============================
``TwoLayerNet(784, 50, 10, seed=0)`` on the first 100 MNIST training images,
claimed = backprop + the 1e-7 gap (the exact gradient of ``loss``), 4
directions, seed 0: the largest ``|e(h)|`` against the tolerance of that
direction, and the size of the directional derivatives.

=====  =========================  ==============  =========================  ==============
param  float64 ``|e|`` / tol      ``|g . v|``     float32 ``|e|`` / tol      ``|g . v|``
=====  =========================  ==============  =========================  ==============
W1     9.8e-9 / 2.1e-8            3e-3 .. 1e-2    8.9e-5 / 5.5e-4            3e-3 .. 1e-2
b1     1.5e-12 / 8.1e-11          3e-4 .. 1e-3    1.6e-5 / 2.4e-4            3e-4 .. 1e-3
W2     2.0e-8 / 4.1e-8            5e-3 .. 0.48    2.3e-4 / 8.1e-4            5e-3 .. 0.48
b2     4.8e-10 / 1.0e-9           0.03 .. 0.08    9.6e-6 / 2.4e-4            0.03 .. 0.08
=====  =========================  ==============  =========================  ==============

65 loss evaluations in all. In float64 the tolerance is dominated by the
truncation estimate (W1, W2, b2; ``|e|`` is 0.4 to 0.5 of it, as derived)
or by round-off (b1); it sees the 1e-7 gap: backprop alone fails on all
four parameters (b2: ``|e|`` 7.1e-8 against 1.0e-10), and passes with the
gap as a named allowance. In float32 round-off over ``h = 1e-2`` sets the
floor (1.1e-4), so the check sees errors above roughly 5% of W1's
directional derivatives, and the gap (at most 5e-7) is invisible; the
report notes a parameter whose tolerance exceeds a tenth of what it
measures. Located: one doubled element of W1 in 120 more evaluations; a
factor 100 on W1 stops at the 2,000 cap with a few hundred bad elements
found.
"""
import functools
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..parity import (EPS, TRUNCATION_SAFETY, default_h, dtype_name, richardson_truncation,
                      roundoff, tolerance)
from .unit_axes import as_shape

HOEFFDING_SIGMAS = 8
DEFAULT_MAX_LOCATE = 2000
LOCATE_MODES = ("failing", "all", "none")
EVALS_PER_TEST = 4  # f(x +- h v), f(x +- 2h v)


# --- one directional difference ---------------------------------------------------------

@dataclass
class Difference:
    """One comparison along ``v``: the central difference of ``loss`` and the claimed value.

    All values are in units of ``1 / 2h`` of the step: ``numerical`` is
    ``(f(x+) - f(x-)) / 2h``, ``claimed`` is ``claimed . (x+ - x-) / 2h``.
    """
    where: str
    size: int
    numerical: float
    numerical_2h: float
    claimed: float
    roundoff: float
    truncation: float
    analytic: float
    allowance: float = 0.0
    kink_h: float = None  # the smaller step at which a kink-crossing difference converged
    unresolved: bool = False  # at a kink: outside the slopes by distances that kept changing
    one_sided: "OneSided" = None  # the one-sided slopes at this difference's own step
    at_point: "OneSided" = None  # where the loss has no derivative along v: the smallest step's
    reproduced: bool = False  # the same error at a step ten times smaller: the claim's own
    noise: float = None  # the loss's noise measured along v where it failed; NaN: none seen
    eps_roundoff: float = None  # the round-off bound from eps, where the noise replaced it

    @property
    def error(self):
        return abs(self.numerical - self.claimed)

    @property
    def tolerance(self):
        return self.roundoff + self.truncation + self.analytic + self.allowance

    @property
    def ratio(self):
        """error / tolerance: above 1 fails."""
        if self.error == 0:
            return 0.0
        return self.error / self.tolerance if self.tolerance > 0 else math.inf

    @property
    def passed(self):
        return self.error <= self.tolerance

    @property
    def noise_limited(self):
        """Within a tolerance set by the loss's own noise that exceeds the derivative itself:
        a claim of 0 would have passed as well."""
        return (self.noise is not None and self.passed
                and self.roundoff >= max(abs(self.numerical), abs(self.claimed)))

    @property
    def not_judged(self):
        """Failed where the loss has no derivative along ``v``, or passed only within its
        noise: no step can judge it."""
        return (not self.passed and self.at_point is not None) or self.noise_limited

    def to_dict(self):
        out = {k: _clean(v) for k, v in self.__dict__.items() if k not in ("one_sided", "at_point")}
        out.update(error=_clean(self.error), tolerance=_clean(self.tolerance),
                   ratio=_clean(self.ratio), passed=self.passed,
                   at_point=self.at_point.to_dict() if self.at_point else None,
                   not_judged=self.not_judged, noise_limited=self.noise_limited)
        return out


@dataclass
class OneSided:
    """The one-sided slopes of ``loss`` along ``v`` at step ``s``, and the claim among them.

    ``right = (f(x+) - f(x)) / s`` and ``left = (f(x) - f(x-)) / s``, in the
    units of ``Difference`` (per ``s`` of the step); each is within its
    ``*_bound`` (round-off and first-order truncation) of its limit as
    ``s -> 0``. ``claimed_*`` is the claim along the step actually taken on
    that side, ``tol_*`` the bound plus the claim's round-off and the
    allowance. ``up`` and ``down`` are the steps actually taken when one
    element moves (``x+ - x``, ``x - x-``), for slopes per unit.
    """
    step: float
    left: float
    right: float
    left_bound: float
    right_bound: float
    claimed_left: float
    claimed_right: float
    tol_left: float
    tol_right: float
    left_change: float = 0.0  # L(2s) - L(s)
    right_change: float = 0.0  # R(2s) - R(s)
    roundoff: float = 0.0  # of one slope
    analytic: float = 0.0  # the claim's round-off, the larger side's
    up: float = None
    down: float = None

    @property
    def apart(self):
        """The two slopes' brackets do not meet: their limits differ."""
        return abs(self.right - self.left) > self.left_bound + self.right_bound

    @property
    def settled(self):
        """Each slope changed from ``2s`` to ``s`` by under ``SETTLED`` of their gap."""
        return (abs(self.left_change) + abs(self.right_change)
                <= SETTLED * abs(self.right - self.left))

    @property
    def kink(self):
        """Apart and settled: the loss has no derivative along ``v`` at the point."""
        return self.apart and self.settled

    @property
    def excess(self):
        """How far the claim lies outside ``[left, right]``, in tolerances; 0 inside (or at) it."""
        e_right, e_left = self.right - self.claimed_right, self.left - self.claimed_left
        if e_right * e_left <= 0:
            return 0.0  # one slope on each side of the claim (or one equal to it)
        return min(abs(e_right) / self.tol_right if self.tol_right else math.inf,
                   abs(e_left) / self.tol_left if self.tol_left else math.inf)

    @property
    def outside(self):
        return self.excess > 1

    @property
    def distance(self):
        """The claim's distance from the nearer slope when both lie on one side of it, else 0."""
        e_right, e_left = self.right - self.claimed_right, self.left - self.claimed_left
        return 0.0 if e_right * e_left <= 0 else min(abs(e_right), abs(e_left))

    def to_dict(self):
        out = {k: _clean(v) for k, v in self.__dict__.items()}
        out.update(kink=self.kink, outside=self.outside)
        return out


def _clean(value):
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)  # JSON has no NaN or infinity
    if isinstance(value, tuple):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    return value


class _Probe:
    """Calls ``loss``, counts the calls, refuses non-finite values, tracks ``S``."""

    def __init__(self, loss, dtype, value_scale):
        if not callable(loss):
            raise TypeError(f"loss must be a zero-argument callable, got {type(loss).__name__}")
        self.loss, self.dtype, self.scale_floor = loss, dtype, float(value_scale)
        self.evaluations = 0
        self.f0 = None  # the loss at the given parameters: the one-sided slopes start from it

    def start(self):
        """The loss at the given parameters, once; it raises the floor of ``S`` to ``|f|``."""
        self.f0 = self.value("at the given parameters")
        self.scale_floor = max(self.scale_floor, abs(self.f0))
        return self.f0

    def value(self, where):
        self.evaluations += 1
        value = self.loss()
        if getattr(value, "ndim", 0) != 0:
            raise ValueError(f"loss must return a scalar, it returned shape {tuple(value.shape)}")
        try:
            value = float(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"loss must return a number, it returned "
                             f"{type(value).__name__}") from exc
        if not math.isfinite(value):
            raise ValueError(f"loss returned {value} {where}")
        return value


def _moves(probe, p, saved, ix, v, steps, where):
    """``(f(x+), f(x-), x+ - x-, x+ - x, x - x-)`` for each step ``s``, ``x+- = fl(p[ix] +- s v)``.

    Writes into ``p`` in place (layers may hold references to it) and puts
    the saved values back after each pair, also when ``loss`` raises.
    """
    base = saved[ix]
    x0 = np.array(base, dtype=np.float64)
    out = []
    try:
        for s in steps:
            p[ix] = base + s * v
            x_plus = np.array(p[ix], dtype=np.float64)  # the values actually stored
            f_plus = probe.value(f"with {where} moved by +{s:g} along v")
            p[ix] = base - s * v
            x_minus = np.array(p[ix], dtype=np.float64)
            f_minus = probe.value(f"with {where} moved by -{s:g} along v")
            p[ix] = base
            out.append((f_plus, f_minus, x_plus - x_minus, x_plus - x0, x0 - x_minus))
    finally:
        p[ix] = base
    return out


KINK_RETREATS = 4  # steps tried below h: h / 10 ... h / 10**4
SHRINKS = 4  # a kink's error must fall at least this much before the difference is trusted
SAME = 1e-3  # a retried error this close to the first (relative) is the gradient's own
SETTLED = 0.1  # one-sided slopes that change less than this share of their gap have converged


def _converged(probe, p, saved, ix, v, claimed, allowance, h, rtol, atol, where,
               interval=False, noise=True):
    """``_retried``; with ``noise``, a difference still failing and not at a kink is judged
    again against the loss's noise measured along ``v`` (``_rejudge_noise``). An error
    reproduced at a step ten times smaller is no proof against noise: the noise at ``h / 10``
    lands within the retry's window of the first error by chance (measured: 1 in 1,600
    directions of a saturated logistic regression)."""
    result = _retried(probe, p, saved, ix, v, claimed, allowance, h, rtol, atol, where, interval)
    d = result[0]
    if noise and not (d.passed or d.at_point is not None):
        _rejudge_noise(probe, p, saved, ix, v, d, h, where)
    return result


def _retried(probe, p, saved, ix, v, claimed, allowance, h, rtol, atol, where, interval=False):
    """``_difference`` at ``h``; where it fails, again at smaller steps, for a kink.

    A piecewise-linear loss (ReLU, max pooling) whose kink lies within ``h`` of
    the point along ``v`` gives a difference quotient that mixes the slopes on
    both sides, an error that Richardson's estimate cannot see when the kink is
    much nearer than ``h`` (both ``D(h)`` and ``D(2h)`` straddle it). Such an
    error belongs to the step: it changes erratically with the step (each kink
    crossed adds its own share; measured on MNIST, 5e-5 at h = 1e-4 became 3e-4
    at 1e-5 and 1e-4 at 1e-6), and at a step below the nearest kink's distance
    it vanishes. A wrong gradient's error does not depend on the step: it is
    the same to within round-off (and the smooth truncation, a small part of
    it once the difference fails). So a failing difference is retried at
    ``h / 10**k`` while the round-off there stays below a tenth of the error
    seen, and accepted only where it passes with an error at least
    ``SHRINKS`` times smaller than the first: a wrong gradient's error never
    falls below half its first size, so it is never accepted. An error equal
    to the first within both round-offs and ``SAME`` of itself stops the
    retries at once (one retry, 4 evaluations); a kink's rarely stays that
    close (one of 16 MNIST directions kept 4%, and fell 1e5-fold two steps on).

    A kink *at* the point is neither: its error stays at every step. The
    returned difference's ``at_point`` holds the one-sided slopes of the
    smallest step tried where the loss has no derivative along ``v`` there
    (apart and settled: see the module docstring); the same kink at two
    steps a decade apart ends the retries (``_same_kink``).

    With ``interval`` (one element moved) the claim is judged against the
    one-sided slopes at the first step where they are apart: between them (or
    at one), it is right. Outside them, the kinks *near* the point blur the
    slopes as they blur the central difference, and the same retry sorts
    them: the claim's distance outside is the claim's own if it is the same
    at two steps (``SAME``, within round-off), and an inside found at a
    smaller step is accepted only with the distance ``SHRINKS`` times
    smaller. Outside at every step by distances that kept changing, the
    element is left unjudged (``unresolved``).
    """
    def at(step):
        return _difference(probe, p, saved, ix, v, claimed, allowance, step, rtol, atol, where)

    first = at(h)
    d0, a0 = first[0], first[0].one_sided
    kinked = interval and a0.kink
    if kinked and not a0.outside or d0.passed and not kinked:
        d0.at_point = a0 if a0.kink else None
        return first
    tried = [d0]
    outside = [a0] if kinked else []  # steps where the claim lay outside slopes apart
    ref = None if kinked else d0  # the central difference later ones are compared with
    for k in range(1, KINK_RETREATS + 1):
        if not interval and len(tried) >= 2 and _same_kink(tried[-2].one_sided,
                                                             tried[-1].one_sided):
            break  # a kink at the point: no smaller step changes its error
        small = h / 10 ** k
        if roundoff(probe.dtype, small, probe.scale_floor) * 10 > \
                (outside[0].distance if outside else d0.error):
            break
        again = at(small)
        d, a = again[0], again[0].one_sided
        tried.append(d)
        if interval and a.kink:
            if not a.outside and (not outside or a.distance * SHRINKS <= outside[0].distance):
                d0.at_point = a  # the near kinks left the step: between the slopes
                return first
            if a.outside:
                if outside and _same_distance(outside[-1], a):
                    d0.at_point = a  # outside by the same distance at two steps: the claim's own
                    return first
                outside.append(a)
            continue
        if ref is not None and abs(d.error - ref.error) <= \
                SAME * ref.error + ref.roundoff + d.roundoff + ref.analytic + d.analytic:
            d0.reproduced = True
            break  # the same error at another step: the gradient's own
        if d.passed and d.error * SHRINKS <= d0.error:
            d.kink_h = small
            return again
        ref = ref or d  # where the slopes were apart before: the central difference from here
    if interval and tried[-1].one_sided.kink and outside:
        d0.at_point, d0.unresolved = outside[-1], True
        return first
    last = tried[-1].one_sided
    d0.at_point = last if last.kink else None
    return first


def _same_kink(a, b):
    """The same kink at the point at two steps a decade apart: each settled, and the slopes
    of the one within ``SETTLED`` of the gap of the other. A kink at ``d`` from the point
    moves a slope by ``J (1 - d / s)`` between the steps ``s`` and ``s / 10`` when
    ``s / 10 < d < s``, and by ``9 J d / s`` when ``d < s / 10``: only one nearer than
    ``s / 90`` passes."""
    return a.kink and b.kink and (abs(a.left - b.left) + abs(a.right - b.right)
                                  <= SETTLED * abs(a.right - a.left))


def _same_distance(a, b):
    """The claim's distance outside the slopes equal at two steps, within round-off."""
    return abs(a.distance - b.distance) <= SAME * max(a.distance, b.distance) + \
        a.roundoff + b.roundoff + a.analytic + b.analytic


NOISE_POINTS = 16  # f at x + s v, s drawn uniformly in a span around x
NOISE_DEGREE = 4  # the smooth part fitted there: its residual is (4h)**5 f^(5) / 5!
NOISE_ZOOM = 10  # the second span, 2h / 10: a kink's residual shrinks with it, noise does not
NOISE_SPREAD = 4  # the two spans' sigma_f agree within this where it is noise
NOISE_SIGMAS = 5  # |n+ - n-| <= 2 NOISE_SIGMAS sigma_f (the module docstring)


def noise_level(s, values, degree=NOISE_DEGREE):
    """The noise ``sigma_f`` of ``values`` of ``f`` at the points ``s``, or None where none
    shows: the residual deviation of a least-squares polynomial of ``degree`` (the smooth
    part), ``sqrt(RSS / (n - degree - 1))``. None where the residual is 0 (a polynomial)."""
    s = np.asarray(s, dtype=np.float64)
    f = np.asarray(values, dtype=np.float64)
    scale = np.max(np.abs(s))
    basis = np.vander(s / scale, degree + 1)
    coef = np.linalg.lstsq(basis, f - np.mean(f), rcond=None)[0]
    residual = f - np.mean(f) - basis @ coef
    sigma = math.sqrt(float(np.sum(residual ** 2)) / (f.size - degree - 1))
    return sigma if sigma > 0 else None


def _noise_along(probe, p, saved, ix, v, h, where):
    """``sigma_f`` along ``v``, or NaN where what varies is no noise (a kink, or nothing).

    Read at ``NOISE_POINTS`` seeded random points within ``2h`` of ``x`` (the
    span of ``D(h)`` and ``D(2h)``), and again within ``2h / NOISE_ZOOM``:
    noise has the same size at both, a kink's residual shrinks with the span
    (measured on a ReLU hinge anywhere in the narrow span: 2.9 to 300 times,
    above 4 in 999 of 1,000), a smooth part's like its fifth power. So the
    two must agree within ``NOISE_SPREAD``; the larger is taken. Where the
    loss's rounding is a staircase whose steps are wider than a tenth of the
    narrow span (a float32 sigmoid beyond ``|z|`` = 10: ``1 - y`` a few ulps
    of 1), it reads smaller there, no noise is taken, and the failure stands.

    Random points, not Moré and Wild's equally spaced ones (ECnoise): the
    rounding of a loss that moves linearly along ``v`` is a sawtooth, and on a
    lattice its samples alias into a smooth curve (measured: a bias direction
    of the saturated logistic regression whose difference table read 6.6e-14
    where ``D(h)`` was off by 2.4e-7). At random points the sawtooth's phases
    are independent, so the residual measures its size.
    ``NOISE_POINTS`` evaluations per span (``f(x)`` is known)."""
    rng = np.random.default_rng(zlib.crc32(where.encode()))
    base = saved[ix]
    found = []
    try:
        for span in (2 * h, 2 * h / NOISE_ZOOM):
            steps = np.concatenate([[0.0], rng.uniform(-span, span, NOISE_POINTS)])
            values = [probe.f0]
            for step in steps[1:]:
                p[ix] = base + step * v
                values.append(probe.value(f"with {where} moved by {step:+g} along v (noise)"))
            found.append(noise_level(steps, values))
    finally:
        p[ix] = base
    if None in found or max(found) > NOISE_SPREAD * min(found):
        return math.nan
    return max(found)


def _rejudge_noise(probe, p, saved, ix, v, d, h, where):
    """``d`` judged with the round-off of the loss's measured noise, where it exceeds eps's.

    ``D(h)``'s noise is ``(n+ - n-) / 2h``; bounded by ``NOISE_SIGMAS sigma_f / h``
    (see the module docstring), it takes the place of ``R`` in the bound and in
    Richardson's truncation estimate, whose own noise it also is."""
    sigma = _noise_along(probe, p, saved, ix, v, h, where)
    d.noise = sigma
    r = NOISE_SIGMAS * sigma / h
    if not r > d.roundoff:  # NaN: no noise seen
        return
    estimate = max(d.truncation / TRUNCATION_SAFETY - d.roundoff / 2, 0.0)
    d.eps_roundoff, d.roundoff = d.roundoff, r
    d.truncation = TRUNCATION_SAFETY * (estimate + r / 2)


def _analytic(claimed, step, h, rtol, atol):
    """The claim's round-off along ``step / h``: Hoeffding's bound, or the worst case if smaller."""
    bound = (rtol * np.abs(claimed) + atol) * np.abs(step) / h
    return min(float(bound.sum()), HOEFFDING_SIGMAS * float(np.sqrt(np.sum(bound ** 2))))


def _along(values, step, h):
    return math.fsum((values * step).ravel()) / h  # fsum: the sum adds no round-off worth counting


def _difference(probe, p, saved, ix, v, claimed, allowance, h, rtol, atol, where):
    """Test ``claimed`` (the claimed gradient at ``ix``) along ``v``: 4 evaluations."""
    (fp1, fm1, step1, up1, down1), (fp2, fm2, step2, _, _) = _moves(probe, p, saved, ix, v,
                                                                   (h, 2 * h), where)
    claimed = np.asarray(claimed, dtype=np.float64)
    allowance = None if allowance is None else np.asarray(allowance, np.float64)
    num1, num2 = (fp1 - fm1) / (2 * h), (fp2 - fm2) / (4 * h)
    cl1, cl2 = _along(claimed, step1, 2 * h), _along(claimed, step2, 4 * h)
    scale = max(probe.scale_floor, abs(fp1), abs(fm1), abs(fp2), abs(fm2))
    r = roundoff(probe.dtype, h, scale)
    truncation = float(richardson_truncation(num1 - cl1, num2 - cl2, r))
    analytic = _analytic(claimed, step1, 2 * h, rtol, atol)
    allowed = 0.0 if allowance is None else abs(_along(allowance, step1, 2 * h))
    d = Difference(where, int(np.size(v)), num1, num2, cl1, r, truncation, analytic, allowed)
    d.one_sided = _one_sided(probe.f0, h, r, (fp1, fm1, fp2, fm2), up1, down1, claimed,
                             allowance, rtol, atol)
    return d, step1


def _one_sided(f0, h, r, values, up, down, claimed, allowance, rtol, atol):
    """The one-sided slopes at ``h`` from the four values ``_difference`` took and ``f0``.

    ``R(s) = R + a s + b s**2``: ``R(2s) - R(s) = a s + 3 b s**2`` estimates the
    truncation ``a s + b s**2`` of ``R(s)``. One loss value errs by at most
    ``r s / 2`` (``r = 4 eps S / s``), so ``R(s)`` by ``r`` and the estimate,
    ``e2 / 2s - e1 / s + e0 / 2s``, by ``r`` too; ``T = 2 (|R(2s) - R(s)| + r)``
    covers that noise (a truncation ``t`` above ``r`` gives an estimate of at
    least ``t - r``, and ``2 (t - r + r) >= t``; below ``r``, ``2 r`` covers it)
    and the ``s**2`` term while ``5 |b| s <= |a|``. The slope's bracket is
    ``R(s) +- (r + T)``.
    """
    fp1, fm1, fp2, fm2 = values
    right, left = (fp1 - f0) / h, (f0 - fm1) / h
    right2, left2 = (fp2 - f0) / (2 * h), (f0 - fm2) / (2 * h)
    right_bound = r + 2 * (abs(right2 - right) + r)
    left_bound = r + 2 * (abs(left2 - left) + r)
    a_right, a_left = _analytic(claimed, up, h, rtol, atol), _analytic(claimed, down, h, rtol, atol)
    tol_right, tol_left = right_bound + a_right, left_bound + a_left
    if allowance is not None:
        tol_right += abs(_along(allowance, up, h))
        tol_left += abs(_along(allowance, down, h))
    single = np.size(up) == 1
    return OneSided(h, left, right, left_bound, right_bound, _along(claimed, down, h),
                    _along(claimed, up, h), tol_left, tol_right, left2 - left, right2 - right,
                    r, max(a_right, a_left), float(np.sum(up)) if single else None,
                    float(np.sum(down)) if single else None)


# --- one parameter ----------------------------------------------------------------------

@dataclass
class Element:
    """One element's central difference: ``numerical`` is ``(f(x+) - f(x-)) / (x+ - x-)``.

    Where the loss has no derivative at the element (``left`` and ``right``,
    its one-sided slopes per unit, are given), ``error`` and ``tolerance`` are
    the claim's distance outside ``[left, right]`` (0 inside or at it) and the
    tolerance on that side; ``unjudged`` where kinks near the point kept
    moving the slopes at every step tried (never ``bad``).
    """
    index: tuple
    claimed: float
    numerical: float
    error: float
    tolerance: float
    bad: bool
    left: float = None
    right: float = None
    unjudged: bool = False  # outside the slopes by distances that changed at every step tried
    noise: float = None  # the loss's noise measured along the element where it failed

    @property
    def nondifferentiable(self):
        return self.left is not None

    def to_dict(self):
        out = {k: _clean(v) for k, v in self.__dict__.items()}
        out["nondifferentiable"] = self.nondifferentiable
        return out


@dataclass
class ParamDirections:
    """One parameter's row: its directions, and what the locating step found.

    Where elements are found at which the loss has no derivative, ``directions``
    are the first ones with those elements' entries set to 0 (the rest judged
    as before), and ``set_aside`` the first ones as they were.
    """
    name: str
    shape: tuple
    dtype: str
    h: float
    directions: list = field(default_factory=list)  # of Difference
    located: str = None  # None, "blocks" or "elements"
    elements: list = field(default_factory=list)  # of Element, the ones computed
    unresolved: int = 0  # elements left in failing blocks when max_locate stopped the search
    evaluations: int = 0
    locate_evaluations: int = 0
    note: str = None
    set_aside: list = field(default_factory=list)  # of Difference, through kinked elements
    rejudge_evaluations: int = 0

    @property
    def judged(self):
        """The directions that judge the claim: not those failing where the loss has no
        derivative along them."""
        return [d for d in self.directions if not d.not_judged]

    @property
    def not_judged(self):
        return [d for d in self.directions if d.not_judged]

    @property
    def worst(self):
        return max(self.judged, key=lambda d: d.ratio) if self.judged else None

    @property
    def max_abs(self):
        return max((d.error for d in self.judged), default=0.0)

    @property
    def max_rel(self):
        rel = [d.error / abs(d.claimed) if d.claimed else (math.inf if d.error else 0.0)
               for d in self.judged]
        return max(rel, default=0.0)

    @property
    def bad_elements(self):
        return [e for e in self.elements if e.bad]

    @property
    def nondifferentiable(self):
        """The elements found where the loss has no derivative (the claim inside or not)."""
        return [e for e in self.elements if e.nondifferentiable]

    @property
    def outside(self):
        """Non-differentiable elements whose claim lies outside their one-sided slopes."""
        return [e for e in self.nondifferentiable if e.bad]

    @property
    def unjudged_elements(self):
        return [e for e in self.nondifferentiable if e.unjudged]

    @property
    def worst_element(self):
        pool = self.bad_elements or self.elements
        return max(pool, key=lambda e: e.error / e.tolerance if e.tolerance else math.inf,
                   default=None)

    @property
    def passed(self):
        return all(d.passed for d in self.judged) and not self.bad_elements

    @property
    def problem(self):
        failing = [d for d in self.judged if not d.passed]
        parts = []
        if failing:
            without = (f" (without the {len(self.nondifferentiable)} elements where the loss has "
                       f"no derivative)" if self.set_aside else "")
            parts.append(f"{len(failing)} of {len(self.directions)} directions out of "
                         f"tolerance{without}")
        if self.located:
            bad = len(self.bad_elements)
            found = f"{bad} bad element{'s' if bad != 1 else ''} found"
            if bad:
                w = self.worst_element
                if w.nondifferentiable:
                    found += (f", worst at {w.index}: claimed {w.claimed:.6g}, outside the "
                              f"one-sided slopes {w.left:.6g} and {w.right:.6g}")
                else:
                    found += (f", worst at {w.index}: claimed {w.claimed:.6g}, "
                              f"numerical {w.numerical:.6g}")
            outside = len(self.outside)
            if outside and not (bad == 1 and self.worst_element.nondifferentiable):
                found += (f"; {outside} of them where the loss has no derivative, the claim "
                          f"outside the one-sided slopes")
            if self.unresolved:
                found += f" ({self.unresolved} elements left unsearched after max_locate)"
            if bad or failing:
                parts.append(found)
        return "; ".join(parts) or None

    def to_dict(self, max_elements=50):
        worst = self.worst
        elements = sorted(self.elements, key=lambda e: -(e.error / e.tolerance
                                                         if e.tolerance else math.inf))
        nondiff = self.nondifferentiable
        return {
            "name": self.name, "shape": list(self.shape), "dtype": self.dtype, "h": self.h,
            "directions": len(self.directions), "max_abs": _clean(self.max_abs),
            "max_rel": _clean(self.max_rel),
            "tolerance": _clean(worst.tolerance) if worst else None,
            "roundoff": _clean(worst.roundoff) if worst else None,
            "truncation": _clean(worst.truncation) if worst else None,
            "analytic": _clean(worst.analytic) if worst else None,
            "allowance": _clean(worst.allowance) if worst else None,
            "worst_ratio": _clean(worst.ratio) if worst else None,
            "passed": self.passed, "problem": self.problem, "note": self.note,
            "evaluations": self.evaluations, "located": self.located,
            "locate_evaluations": self.locate_evaluations,
            "bad_count": len(self.bad_elements), "unresolved": self.unresolved,
            "worst_element": self.worst_element.to_dict() if self.worst_element else None,
            "elements_computed": len(self.elements),
            "elements": [e.to_dict() for e in elements[:max_elements]],
            "per_direction": [d.to_dict() for d in self.directions],
            "nondifferentiable": len(nondiff),
            "nondifferentiable_outside": len(self.outside),
            "nondifferentiable_unjudged": len(self.unjudged_elements),
            "nondifferentiable_elements": [e.to_dict() for e in nondiff[:max_elements]],
            "not_judged": len(self.not_judged),
            "set_aside": [d.to_dict() for d in self.set_aside],
            "rejudge_evaluations": self.rejudge_evaluations,
        }


def _flat_index(shape, lo, hi):
    if lo == 0 and hi == math.prod(shape):
        return Ellipsis
    return np.unravel_index(np.arange(lo, hi), shape)


class _Param:
    """A parameter under test: its array, saved copy, claimed gradient and allowance."""

    def __init__(self, probe, name, p, claimed, allowance, h, rtol, atol, rng, kinks=True):
        self.probe, self.name, self.p, self.h, self.rng = probe, name, p, h, rng
        self.kinks = kinks  # without a claim to converge to, plain differences
        self.saved = p.copy()
        self.claimed = np.asarray(claimed, dtype=np.float64)
        self.allowance = None if allowance is None else np.asarray(allowance, dtype=np.float64)
        self.rtol, self.atol = rtol, atol
        self.noisy = False  # a direction found the loss's noise above eps's: elements measure it too

    def direction(self, shape):
        return self.rng.choice([-1.0, 1.0], size=shape) * self.rng.uniform(0.5, 1.0, size=shape)

    def test(self, ix, v, where, kinks=True):
        allowance = None if self.allowance is None else self.allowance[ix]
        differ = _converged if kinks and self.kinks else _difference
        return differ(self.probe, self.p, self.saved, ix, v, self.claimed[ix], allowance,
                      self.h, self.rtol, self.atol, f"{self.name}{where}")[0]

    def element(self, flat):
        """The book's difference at one element (``v = 1``), as an ``Element``."""
        index = tuple(int(i) for i in np.unravel_index(flat, self.p.shape))
        ix = index if index else Ellipsis
        allowance = None if self.allowance is None else self.allowance[ix]
        differ = (functools.partial(_converged, interval=True, noise=self.noisy) if self.kinks
                  else _difference)
        d, step = differ(self.probe, self.p, self.saved, ix, np.float64(1.0), self.claimed[ix],
                         allowance, self.h, self.rtol, self.atol, _label(self.name, index))
        step = float(step)
        h = d.kink_h or self.h
        numerical = d.numerical * 2 * h / step if step else d.numerical
        claimed = float(self.claimed[ix])
        a = d.at_point
        if a is None or not (a.up and a.down):
            return Element(index, claimed, numerical, d.error, d.tolerance, not d.passed,
                           noise=d.noise), d
        # no derivative here: the claim is judged against the one-sided slopes, per unit step
        per_up, per_down = a.step / a.up, a.step / a.down
        left, right = a.left * per_down, a.right * per_up
        e_left, e_right = abs(left - claimed), abs(right - claimed)
        t_left, t_right = a.tol_left * per_down, a.tol_right * per_up
        if not a.outside:
            error, tol = 0.0, max(t_left, t_right)
        elif e_left / t_left <= e_right / t_right:
            error, tol = e_left, t_left
        else:
            error, tol = e_right, t_right
        return Element(index, claimed, numerical, error, tol, a.outside and not d.unresolved,
                       left, right, d.unresolved), d


DENSE_SWEEP = 16  # a dense failing block at most this large is swept, not halved


def _locate_blocks(param, budget):
    """Halve failing blocks depth first, the worse half first: ``(elements, unresolved)``.

    Blocks are tested at ``h`` alone (a kink that fails a block sends the search
    down a branch whose elements then pass); single elements get the kink retry
    of ``_converged``, so a bad one costs up to 8 evaluations, and ``budget``
    counts the evaluations actually made. Where both halves of a failing block
    fail, bad elements are dense there (a bias whose units all sit at a kink):
    halving a block of ``m`` elements that are all bad tests ``2m - 2`` blocks
    and elements, sweeping it ``m``, so halves of at most ``DENSE_SWEEP``
    elements are swept. A lone bad element never makes both halves fail and is
    halved down to as before (``8 log2 n``); two bad elements in the two halves
    of a block of 32 cost 128 evaluations swept against 64 halved, the worst
    case of the rule."""
    n = param.p.size
    elements = []
    stack = [(0, n, False)]
    start = param.probe.evaluations
    worst_test = 2 * EVALS_PER_TEST  # a failing element and its retry
    while stack:
        lo, hi, sweep = stack.pop()
        if sweep or hi - lo == 1:  # a one-element parameter: its block is its element
            for i in range(lo, hi):
                if param.probe.evaluations - start + worst_test > budget:
                    stack.append((i, hi, True))
                    return elements, sum(b - a for a, b, _ in stack)
                elements.append(param.element(i)[0])
            continue
        if param.probe.evaluations - start + 2 * worst_test > budget:
            stack.append((lo, hi, False))
            break
        mid = (lo + hi) // 2
        failing = []
        for a, b in ((lo, mid), (mid, hi)):
            if b - a == 1:
                elements.append(param.element(a)[0])
            else:
                d = param.test(_flat_index(param.p.shape, a, b), param.direction(b - a),
                               f" elements [{a}, {b})", kinks=False)
                if not d.passed:
                    failing.append((d.ratio, a, b))
        dense = len(failing) == 2
        stack.extend((a, b, dense and b - a <= DENSE_SWEEP)
                     for _, a, b in sorted(failing))  # the worst on top
    return elements, sum(b - a for a, b, _ in stack)


def _sweep(param, budget=math.inf):
    """Every element's difference, in order, until the budget runs out."""
    elements, diffs = [], []
    for flat in range(param.p.size):
        if (len(elements) + 1) * EVALS_PER_TEST > budget:
            break
        element, d = param.element(flat)
        elements.append(element)
        diffs.append(d)
    return elements, diffs, param.p.size - len(elements)


# --- the report -------------------------------------------------------------------------

@dataclass
class DirectionalReport:
    """Every parameter's directional check, the verdict and what it cost."""
    dtype: str
    h: float
    loss_value: float
    value_scale: float
    rows: list = field(default_factory=list)
    evaluations: int = 0
    allowance_name: str = None
    label: str = "claimed gradient vs central differences of loss"

    @property
    def passed(self):
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def failed(self):
        return [r.name for r in self.rows if not r.passed]

    def verdict(self):
        if self.passed:
            return f"PASS {self.label}"
        return f"FAIL {self.label}: " + "; ".join(f"{r.name}: {r.problem}"
                                                  for r in self.rows if not r.passed)

    def to_text(self):
        head = (f"{self.label} [{self.dtype}, h={self.h:g} and {2 * self.h:g}, "
                f"{self.evaluations} loss evaluations]")
        cols = ["param", "shape", "dirs", "max abs err", "max rel err", "tolerance", "round-off",
                "truncation", "analytic"]
        if self.allowance_name:
            cols.append(f"allowed {self.allowance_name}")
        nondiff = any(r.nondifferentiable for r in self.rows)
        if nondiff:
            cols.append("no derivative")  # elements where the loss has none, judged on their own
        cols += ["evals", "verdict"]
        lines = []
        for r in self.rows:
            w = r.worst
            cells = [r.name, str(tuple(r.shape)), str(len(r.directions)), _fmt(r.max_abs),
                     _fmt(r.max_rel)]
            cells += [_fmt(getattr(w, k)) if w else "-"
                      for k in ("tolerance", "roundoff", "truncation", "analytic")]
            if self.allowance_name:
                cells.append(_fmt(w.allowance) if w else "-")
            if nondiff:
                cells.append(str(len(r.nondifferentiable)))
            cells += [str(r.evaluations), "ok" if r.passed else f"FAIL: {r.problem}"]
            lines.append(cells)
        widths = [max(len(c), *(len(line[k]) for line in lines)) if lines else len(c)
                  for k, c in enumerate(cols)]

        def fmt(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

        out = [head, fmt(cols), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines]
        out += [f"{r.name}: {r.note}" for r in self.rows if r.note]
        out.append(self.verdict())
        return "\n".join(out)

    __str__ = to_text

    def to_dict(self, max_elements=50):
        return {"label": self.label, "dtype": self.dtype, "h": self.h,
                "loss_value": _clean(self.loss_value), "value_scale": self.value_scale,
                "allowance": self.allowance_name, "evaluations": self.evaluations,
                "passed": self.passed, "failed": self.failed,
                "nondifferentiable": {r.name: len(r.nondifferentiable) for r in self.rows
                                      if r.nondifferentiable},
                "params": [r.to_dict(max_elements) for r in self.rows]}

    def raise_if_failed(self):
        if not self.passed:
            raise AssertionError("\n" + self.to_text())
        return self


def _fmt(value, digits=3):
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


# --- entry points -----------------------------------------------------------------------

def _check_params(params):
    if not isinstance(params, dict) or not params:
        raise TypeError("params must be a non-empty dict of name -> NumPy array")
    for name, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{name!r}] must be a NumPy array (it is perturbed in place), "
                            f"got {type(p).__name__}")
        if p.dtype not in (np.float32, np.float64):
            raise TypeError(f"params[{name!r}] has dtype {p.dtype}; float32 or float64 is needed")
        if not p.flags.writeable:
            raise ValueError(f"params[{name!r}] is read-only; it must be perturbed in place")
        if not np.all(np.isfinite(p)):
            raise ValueError(f"params[{name!r}] contains NaN or infinity")


def _matching(params, other, what):
    if other is None:
        return {}
    if not isinstance(other, dict):
        raise TypeError(f"{what} must be a dict keyed like params, got {type(other).__name__}")
    out = {}
    for name, value in other.items():
        if name not in params:
            raise ValueError(f"{what}[{name!r}] names no parameter (params: {list(params)})")
        arr = as_shape(np.asarray(value, dtype=np.float64), params[name].shape)
        if arr.shape != params[name].shape:
            raise ValueError(f"{what}[{name!r}] has shape {arr.shape}, "
                             f"the parameter {params[name].shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what}[{name!r}] contains NaN or infinity")
        out[name] = arr
    return out


def _run_dtype(params, dtype):
    if dtype is not None:
        return dtype_name(dtype)
    # the loss is only as precise as its least precise parameter
    return "float32" if any(p.dtype == np.float32 for p in params.values()) else "float64"


def check_gradient_directions(loss, params, claimed, *, directions=4, h=None, seed=0,
                              locate="failing", max_locate=None, allowance=None,
                              allowance_name="allowance", value_scale=1.0, dtype=None,
                              claim_dtype=None):
    """Test ``claimed`` (dict name -> gradient) along random directions of ``params``.

    ``loss()`` reads the arrays of ``params`` (the model's own arrays, which
    are perturbed in place and restored bit for bit, also when ``loss``
    raises). Per parameter, ``directions`` seeded directions, 4 loss
    evaluations each; ``locate``: "failing" (group testing where a direction
    fails), "all" (every element's difference, 4 evaluations per element) or
    "none". ``max_locate`` caps the locating step's evaluations per parameter
    (default 2000 for "failing", no cap for "all"). ``allowance`` (dict of
    known differences, gradient of ``loss`` minus ``claimed``) is allowed for
    and shown as ``allowance_name``. ``h`` defaults to 1e-4 in float64, 1e-2
    in float32 (the parameters' dtype, or ``dtype``); ``value_scale`` is the
    floor of ``S`` in the round-off ``4 eps S / h``. See the module
    docstring for the tolerance. ``claim_dtype``: the dtype ``claimed`` was computed in, where
    it is not the loss's (a float32 gradient against a float64 loss): its round-off ``A`` is
    that dtype's. Returns a ``DirectionalReport``.
    """
    if locate not in LOCATE_MODES:
        raise ValueError(f"locate must be one of {LOCATE_MODES}, got {locate!r}")
    if isinstance(directions, bool) or not isinstance(directions, int) or directions < 1:
        raise ValueError(f"directions must be a positive integer, got {directions!r}")
    _check_params(params)
    claimed = _matching(params, claimed, "claimed")
    missing = [name for name in params if name not in claimed]
    if missing:
        raise ValueError(f"claimed has no gradient for {missing}")
    allowance = _matching(params, allowance, "allowance")
    name = _run_dtype(params, dtype)
    h = default_h(name) if h is None else float(h)
    if not (math.isfinite(h) and h >= EPS[name]):
        raise ValueError(f"h must be finite and at least {name}'s eps ({EPS[name]:.3g}), got {h!r}")
    if max_locate is None:
        max_locate = DEFAULT_MAX_LOCATE if locate == "failing" else math.inf
    tol = tolerance("analytic", name if claim_dtype is None else dtype_name(claim_dtype))
    probe = _Probe(loss, name, value_scale)
    f0 = probe.start()
    report = DirectionalReport(name, h, f0, float(value_scale), evaluations=0,
                               allowance_name=allowance_name if allowance else None)
    for pname, p in params.items():
        before = probe.evaluations
        rng = np.random.default_rng([seed, zlib.crc32(pname.encode())])
        param = _Param(probe, pname, p, claimed[pname], allowance.get(pname), h, tol.rtol,
                       tol.atol, rng)
        row = ParamDirections(pname, tuple(p.shape), p.dtype.name, h)
        try:
            drawn = [param.direction(p.shape) for _ in range(directions)]
            for k, v in enumerate(drawn):
                row.directions.append(param.test(Ellipsis, v, f" (direction {k})"))
            param.noisy = any(d.eps_roundoff is not None for d in row.directions)
            start = probe.evaluations
            if locate == "all":
                row.elements, _, row.unresolved = _sweep(param, max_locate)
                row.located = "elements"
            elif locate == "failing" and not all(d.passed for d in row.directions):
                row.elements, row.unresolved = _locate_blocks(param, max_locate)
                row.located = "blocks"
            row.locate_evaluations = probe.evaluations - start
            if row.nondifferentiable:
                start = probe.evaluations
                _rejudge(param, row, drawn)
                row.rejudge_evaluations = probe.evaluations - start
        finally:
            p[...] = param.saved  # bit for bit, whatever happened
        row.evaluations = probe.evaluations - before
        kinks = [d for d in row.directions if d.kink_h]
        row.note = "; ".join(filter(None, [
            _nondifferentiable_note(row), _not_judged_note(row), _noise_note(row),
            _weak_note(row),
            (f"{len(kinks)} of {len(row.directions)} directions crossed a kink at h={h:g} and "
             f"converged at h={min(d.kink_h for d in kinks):g}") if kinks else None]))
        report.rows.append(row)
    report.evaluations = probe.evaluations
    return report


def _rejudge(param, row, drawn):
    """The same directions again with the non-differentiable elements' entries set to 0.

    They judge every other element as strongly as before (the same draws, the
    same tolerance); the first directions, which crossed the elements' kinks,
    are kept in ``set_aside``."""
    keep = np.ones(param.p.shape)
    for e in row.nondifferentiable:
        keep[e.index] = 0.0
    row.set_aside, row.directions = row.directions, []
    if not keep.any():
        return  # every element was judged on its own
    m = len(row.nondifferentiable)
    for k, v in enumerate(drawn):
        row.directions.append(param.test(
            Ellipsis, v * keep, f" (direction {k} without the {m} non-differentiable elements)"))


def _label(name, index):
    return f"{name}[{', '.join(map(str, index))}]"


def _nondifferentiable_note(row):
    nondiff = row.nondifferentiable
    if not nondiff:
        return None
    k = len(nondiff)
    e = nondiff[0]
    outside, unjudged = len(row.outside), len(row.unjudged_elements)
    claims = (f"{outside} claimed outside them" if outside else
              "the claimed values lie between them, or at one")
    if unjudged:
        claims += (f"; {unjudged} not judged (the claim outside slopes that kinks near the "
                   f"point moved at every step tried)")
    rest = (f"judged the rest along {len(row.directions)} directions without them"
            if row.directions else "no element left to judge along directions")
    return (f"{k} element{'s' if k != 1 else ''} not differentiable at this point (one-sided "
            f"slopes differ at every step tried, e.g. {_label(row.name, e.index)}: "
            f"{e.left:.4g} and {e.right:.4g}); {claims}; {rest}")


def _not_judged_note(row):
    skipped = [d for d in row.not_judged if d.at_point is not None]
    if not skipped:
        return None
    a = skipped[0].at_point
    why = ("the elements it moves passed, alone or in blocks, within their own tolerance"
           if row.located and not row.unresolved else
           "the elements were not all searched (max_locate)" if row.located else
           "locate='failing' finds the elements and judges the rest")
    return (f"{len(skipped)} of {len(row.directions)} directions not judged: the loss has no "
            f"derivative along them at this point (one-sided slopes {a.left:.4g} and "
            f"{a.right:.4g} at h={a.step:g}); {why}")


def _noise_note(row):
    """The directions judged against the loss's measured noise, and those it left unjudged."""
    noisy = [d for d in row.directions if d.eps_roundoff is not None]
    if not noisy:
        return None
    loudest = max(noisy, key=lambda d: d.noise)
    text = (f"{len(noisy)} of {len(row.directions)} directions judged against the loss's own "
            f"noise, measured along them (sigma_f up to {loudest.noise:.3g}: round-off "
            f"{NOISE_SIGMAS} sigma_f / h = {loudest.roundoff:.3g} in place of 4 eps |f| / h = "
            f"{loudest.eps_roundoff:.3g})")
    limited = [d for d in noisy if d.noise_limited]
    if limited:
        d = limited[0]
        text += (f"; {len(limited)} not judged: the noise bound ({d.roundoff:.3g}) exceeds the "
                 f"directional derivative itself ({max(abs(d.numerical), abs(d.claimed)):.3g}), "
                 f"so no claim could fail there")
    return text


def _weak_note(row):
    """Say so when the tolerance is a large part of what is measured: such a check sees little."""
    worst, share, size = None, 0.0, 0.0
    if not all(d.passed for d in row.judged):
        return None  # a failure says more than this note would
    for d in row.judged:
        here = max(abs(d.numerical), abs(d.claimed))
        if here and d.tolerance / here > share:
            worst, share, size = d, d.tolerance / here, here
    if worst is None or share <= 0.1:
        return None
    estimate = worst.truncation - worst.roundoff  # 2x the Richardson estimate
    cause = (f"the differences are not converged at h={row.h:g} (truncation bound "
             f"{worst.truncation:.3g}; points away from kinks, or a smaller h, would help)"
             if estimate > worst.roundoff + worst.analytic else
             f"{'the loss noise' if worst.eps_roundoff is not None else 'round-off'} "
             f"{worst.roundoff:.3g} and the claimed gradient's own {worst.analytic:.3g}")
    return (f"weak check: the tolerance is {100 * share:.0f}% of the directional derivative "
            f"({size:.3g}), so smaller errors go unseen; it comes from {cause}")


class NumericalGradient(dict):
    """Name -> element-wise central difference ``D(h)``; ``.error`` holds each element's bound.

    ``.nondifferentiable``: name -> boolean array, the elements where the loss
    has no derivative (their one-sided slopes differ beyond their bounds, see
    the module docstring); there ``D(h)`` is the mean of the two one-sided
    slopes, ``.left`` and ``.right`` (name -> array, NaN elsewhere), each
    within ``.slope_error`` of its limit, and a claim is right anywhere
    between them.
    """

    def __init__(self, grads, error, h, evaluations, nondifferentiable=None, left=None,
                 right=None, slope_error=None):
        super().__init__(grads)
        self.error, self.h, self.evaluations = error, h, evaluations
        self.nondifferentiable = nondifferentiable or {}
        self.left, self.right = left or {}, right or {}
        self.slope_error = slope_error or {}


def numerical_gradient_of(loss, params, h=None, *, value_scale=1.0, dtype=None):
    """Every element's central difference of ``loss`` (4 evaluations per element).

    Returns a ``NumericalGradient``: a dict name -> array (``(f(x+) - f(x-)) /
    (x+ - x-)`` at step ``h``), with ``.error`` the dict of per-element
    bounds ``R + T`` (round-off and Richardson-estimated truncation, as in
    the module docstring), ``.nondifferentiable`` (with ``.left`` and
    ``.right``) and ``.evaluations``. ``params`` are perturbed in place and
    restored bit for bit.
    """
    _check_params(params)
    name = _run_dtype(params, dtype)
    h = default_h(name) if h is None else float(h)
    probe = _Probe(loss, name, value_scale)
    probe.start()
    grads, errors, nondiff, lefts, rights, slope_errors = {}, {}, {}, {}, {}, {}
    for pname, p in params.items():
        param = _Param(probe, pname, p, np.zeros(p.shape), None, h, 0.0, 0.0, None, kinks=False)
        try:
            elements, diffs, _ = _sweep(param)
        finally:
            p[...] = param.saved
        grads[pname] = np.array([e.numerical for e in elements]).reshape(p.shape)
        errors[pname] = np.array([d.roundoff + d.truncation for d in diffs]).reshape(p.shape)
        sides = [d.one_sided for d in diffs]
        kink = [a.kink and bool(a.up and a.down) for a in sides]
        nondiff[pname] = np.array(kink, dtype=bool).reshape(p.shape)
        lefts[pname] = np.array([a.left * a.step / a.down if k else np.nan
                                 for a, k in zip(sides, kink)]).reshape(p.shape)
        rights[pname] = np.array([a.right * a.step / a.up if k else np.nan
                                  for a, k in zip(sides, kink)]).reshape(p.shape)
        slope_errors[pname] = np.array([max(a.left_bound * a.step / a.down,
                                            a.right_bound * a.step / a.up) if k else np.nan
                                        for a, k in zip(sides, kink)]).reshape(p.shape)
    return NumericalGradient(grads, errors, h, probe.evaluations, nondiff, lefts, rights,
                             slope_errors)


__all__ = ["check_gradient_directions", "numerical_gradient_of", "DirectionalReport",
           "ParamDirections", "Difference", "OneSided", "Element", "NumericalGradient"]
