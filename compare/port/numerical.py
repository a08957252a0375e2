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
at the given point, for ``S``). Where a direction fails, the bad elements
are located by group testing: a block of elements (a contiguous range of
the flattened parameter) is tested like a direction restricted to it, a
failing block is halved and both halves tested, the worse half first
(depth first, so the first bad element is reached after ``ceil(log2 n)``
levels). A block of one element is the book's element-wise difference
(``v = 1``), with the same tolerance. Finding ``k`` bad elements among ``n``
costs about ``8 k log2(n)`` evaluations (120 for one element of W1's 39,200,
against the book's 78,400); when everything is wrong the search stops after
``max_locate`` evaluations per parameter (default 2,000) and reports the
worst elements reached. A block whose errors happen to cancel can hide a bad
element from this search: it locates, the directions decide.

``locate="all"`` computes every element's difference instead (4 evaluations
per element, the book's loop twice over) and fails a parameter on any bad
element. ``numerical_gradient_of`` returns that element-wise gradient, with
each element's error bound ``R + T``.

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
import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..parity import EPS, default_h, dtype_name, richardson_truncation, roundoff, tolerance

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

    def to_dict(self):
        out = {k: _clean(v) for k, v in self.__dict__.items()}
        out.update(error=_clean(self.error), tolerance=_clean(self.tolerance),
                   ratio=_clean(self.ratio), passed=self.passed)
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
    """``(f(x+), f(x-), x+ - x-)`` for each step ``s``, with ``x+- = fl(p[ix] +- s v)``.

    Writes into ``p`` in place (layers may hold references to it) and puts
    the saved values back after each pair, also when ``loss`` raises.
    """
    base = saved[ix]
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
            out.append((f_plus, f_minus, x_plus - x_minus))
    finally:
        p[ix] = base
    return out


KINK_RETREATS = 4  # steps tried below h: h / 10 ... h / 10**4
SHRINKS = 4  # a kink's error must fall at least this much before the difference is trusted
SAME = 1e-3  # a retried error this close to the first (relative) is the gradient's own


def _converged(probe, p, saved, ix, v, claimed, allowance, h, rtol, atol, where):
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
    """
    first = _difference(probe, p, saved, ix, v, claimed, allowance, h, rtol, atol, where)
    d0 = first[0]
    if d0.passed:
        return first
    for k in range(1, KINK_RETREATS + 1):
        small = h / 10 ** k
        if roundoff(probe.dtype, small, probe.scale_floor) * 10 > d0.error:
            break
        again = _difference(probe, p, saved, ix, v, claimed, allowance, small, rtol, atol, where)
        d = again[0]
        if abs(d.error - d0.error) <= SAME * d0.error + d0.roundoff + d.roundoff + d0.analytic + d.analytic:
            break  # the same error at another step: the gradient's own
        if d.passed and d.error * SHRINKS <= d0.error:
            d.kink_h = small
            return again
    return first


def _difference(probe, p, saved, ix, v, claimed, allowance, h, rtol, atol, where):
    """Test ``claimed`` (the claimed gradient at ``ix``) along ``v``: 4 evaluations."""
    (fp1, fm1, step1), (fp2, fm2, step2) = _moves(probe, p, saved, ix, v, (h, 2 * h), where)
    claimed = np.asarray(claimed, dtype=np.float64)
    num1, num2 = (fp1 - fm1) / (2 * h), (fp2 - fm2) / (4 * h)
    # fsum: the sum itself adds no round-off worth counting
    cl1 = math.fsum((claimed * step1).ravel()) / (2 * h)
    cl2 = math.fsum((claimed * step2).ravel()) / (4 * h)
    scale = max(probe.scale_floor, abs(fp1), abs(fm1), abs(fp2), abs(fm2))
    r = roundoff(probe.dtype, h, scale)
    truncation = float(richardson_truncation(num1 - cl1, num2 - cl2, r))
    bound = (rtol * np.abs(claimed) + atol) * np.abs(step1) / (2 * h)
    analytic = min(float(bound.sum()), HOEFFDING_SIGMAS * float(np.sqrt(np.sum(bound ** 2))))
    allowed = 0.0
    if allowance is not None:
        allowed = abs(math.fsum((np.asarray(allowance, np.float64) * step1).ravel())) / (2 * h)
    return Difference(where, int(np.size(v)), num1, num2, cl1, r, truncation, analytic,
                      allowed), step1


# --- one parameter ----------------------------------------------------------------------

@dataclass
class Element:
    """One element's central difference: ``numerical`` is ``(f(x+) - f(x-)) / (x+ - x-)``."""
    index: tuple
    claimed: float
    numerical: float
    error: float
    tolerance: float
    bad: bool

    def to_dict(self):
        return {k: _clean(v) for k, v in self.__dict__.items()}


@dataclass
class ParamDirections:
    """One parameter's row: its directions, and what the locating step found."""
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

    @property
    def worst(self):
        return max(self.directions, key=lambda d: d.ratio) if self.directions else None

    @property
    def max_abs(self):
        return max((d.error for d in self.directions), default=0.0)

    @property
    def max_rel(self):
        rel = [d.error / abs(d.claimed) if d.claimed else (math.inf if d.error else 0.0)
               for d in self.directions]
        return max(rel, default=0.0)

    @property
    def bad_elements(self):
        return [e for e in self.elements if e.bad]

    @property
    def worst_element(self):
        pool = self.bad_elements or self.elements
        return max(pool, key=lambda e: e.error / e.tolerance if e.tolerance else math.inf,
                   default=None)

    @property
    def passed(self):
        return all(d.passed for d in self.directions) and not self.bad_elements

    @property
    def problem(self):
        failing = [d for d in self.directions if not d.passed]
        parts = []
        if failing:
            parts.append(f"{len(failing)} of {len(self.directions)} directions out of tolerance")
        if self.located:
            bad = len(self.bad_elements)
            found = f"{bad} bad element{'s' if bad != 1 else ''} found"
            if bad:
                w = self.worst_element
                found += (f", worst at {w.index}: claimed {w.claimed:.6g}, "
                          f"numerical {w.numerical:.6g}")
            if self.unresolved:
                found += f" ({self.unresolved} elements left unsearched after max_locate)"
            if bad or failing:
                parts.append(found)
        return "; ".join(parts) or None

    def to_dict(self, max_elements=50):
        worst = self.worst
        elements = sorted(self.elements, key=lambda e: -(e.error / e.tolerance
                                                         if e.tolerance else math.inf))
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
        }


def _flat_index(shape, lo, hi):
    if lo == 0 and hi == math.prod(shape):
        return Ellipsis
    return np.unravel_index(np.arange(lo, hi), shape)


class _Param:
    """A parameter under test: its array, saved copy, claimed gradient and allowance."""

    def __init__(self, probe, name, p, claimed, allowance, h, rtol, atol, rng, kinks=True):
        self.probe, self.name, self.p, self.h, self.rng = probe, name, p, h, rng
        self.differ = _converged if kinks else _difference  # no claim to converge to: plain
        self.saved = p.copy()
        self.claimed = np.asarray(claimed, dtype=np.float64)
        self.allowance = None if allowance is None else np.asarray(allowance, dtype=np.float64)
        self.rtol, self.atol = rtol, atol

    def direction(self, shape):
        return self.rng.choice([-1.0, 1.0], size=shape) * self.rng.uniform(0.5, 1.0, size=shape)

    def test(self, ix, v, where, kinks=True):
        allowance = None if self.allowance is None else self.allowance[ix]
        differ = self.differ if kinks else _difference
        return differ(self.probe, self.p, self.saved, ix, v, self.claimed[ix], allowance,
                      self.h, self.rtol, self.atol, f"{self.name}{where}")[0]

    def element(self, flat):
        """The book's difference at one element (``v = 1``), as an ``Element``."""
        index = tuple(int(i) for i in np.unravel_index(flat, self.p.shape))
        ix = index if index else Ellipsis
        allowance = None if self.allowance is None else self.allowance[ix]
        d, step = self.differ(self.probe, self.p, self.saved, ix, np.float64(1.0),
                              self.claimed[ix], allowance, self.h, self.rtol, self.atol,
                              f"{self.name}[{', '.join(map(str, index))}]")
        step = float(step)
        h = d.kink_h or self.h
        numerical = d.numerical * 2 * h / step if step else d.numerical
        return Element(index, float(self.claimed[ix]), numerical, d.error, d.tolerance,
                       not d.passed), d


def _locate_blocks(param, budget):
    """Halve failing blocks depth first, the worse half first: ``(elements, unresolved)``.

    Blocks are tested at ``h`` alone (a kink that fails a block sends the search
    down a branch whose elements then pass); single elements get the kink retry
    of ``_converged``, so a bad one costs up to 8 evaluations, and ``budget``
    counts the evaluations actually made."""
    n = param.p.size
    elements = []
    stack = [(0, n)]
    start = param.probe.evaluations
    worst_test = 2 * EVALS_PER_TEST  # a failing element and its retry
    while stack:
        spent = param.probe.evaluations - start
        lo, hi = stack.pop()
        if hi - lo == 1:  # a one-element parameter: its block is its element
            if spent + worst_test > budget:
                stack.append((lo, hi))
                break
            elements.append(param.element(lo)[0])
            continue
        if spent + 2 * worst_test > budget:
            stack.append((lo, hi))
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
        stack.extend((a, b) for _, a, b in sorted(failing))  # the worst on top
    return elements, sum(b - a for a, b in stack)


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
        arr = np.asarray(value, dtype=np.float64)
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
                              allowance_name="allowance", value_scale=1.0, dtype=None):
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
    docstring for the tolerance. Returns a ``DirectionalReport``.
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
    tol = tolerance("analytic", name)
    probe = _Probe(loss, name, value_scale)
    f0 = probe.value("at the given parameters")
    probe.scale_floor = max(probe.scale_floor, abs(f0))
    report = DirectionalReport(name, h, f0, float(value_scale), evaluations=0,
                               allowance_name=allowance_name if allowance else None)
    for pname, p in params.items():
        before = probe.evaluations
        rng = np.random.default_rng([seed, zlib.crc32(pname.encode())])
        param = _Param(probe, pname, p, claimed[pname], allowance.get(pname), h, tol.rtol,
                       tol.atol, rng)
        row = ParamDirections(pname, tuple(p.shape), p.dtype.name, h)
        try:
            for k in range(directions):
                row.directions.append(param.test(Ellipsis, param.direction(p.shape),
                                                 f" (direction {k})"))
            start = probe.evaluations
            if locate == "all":
                row.elements, _, row.unresolved = _sweep(param, max_locate)
                row.located = "elements"
            elif locate == "failing" and not all(d.passed for d in row.directions):
                row.elements, row.unresolved = _locate_blocks(param, max_locate)
                row.located = "blocks"
            row.locate_evaluations = probe.evaluations - start
        finally:
            p[...] = param.saved  # bit for bit, whatever happened
        row.evaluations = probe.evaluations - before
        kinks = [d for d in row.directions if d.kink_h]
        row.note = "; ".join(filter(None, [_weak_note(row), (
            f"{len(kinks)} of {len(row.directions)} directions crossed a kink at h={h:g} and "
            f"converged at h={min(d.kink_h for d in kinks):g}") if kinks else None]))
        report.rows.append(row)
    report.evaluations = probe.evaluations
    return report


def _weak_note(row):
    """Say so when the tolerance is a large part of what is measured: such a check sees little."""
    worst, share, size = None, 0.0, 0.0
    if not all(d.passed for d in row.directions):
        return None  # a failure says more than this note would
    for d in row.directions:
        here = max(abs(d.numerical), abs(d.claimed))
        if here and d.tolerance / here > share:
            worst, share, size = d, d.tolerance / here, here
    if worst is None or share <= 0.1:
        return None
    estimate = worst.truncation - worst.roundoff  # 2x the Richardson estimate
    cause = (f"the differences are not converged at h={row.h:g} (truncation bound "
             f"{worst.truncation:.3g}; points away from kinks, or a smaller h, would help)"
             if estimate > worst.roundoff + worst.analytic else
             f"round-off {worst.roundoff:.3g} and the claimed gradient's own {worst.analytic:.3g}")
    return (f"weak check: the tolerance is {100 * share:.0f}% of the directional derivative "
            f"({size:.3g}), so smaller errors go unseen; it comes from {cause}")


class NumericalGradient(dict):
    """Name -> element-wise central difference ``D(h)``; ``.error`` holds each element's bound."""

    def __init__(self, grads, error, h, evaluations):
        super().__init__(grads)
        self.error, self.h, self.evaluations = error, h, evaluations


def numerical_gradient_of(loss, params, h=None, *, value_scale=1.0, dtype=None):
    """Every element's central difference of ``loss`` (4 evaluations per element).

    Returns a ``NumericalGradient``: a dict name -> array (``(f(x+) - f(x-)) /
    (x+ - x-)`` at step ``h``), with ``.error`` the dict of per-element
    bounds ``R + T`` (round-off and Richardson-estimated truncation, as in
    the module docstring) and ``.evaluations``. ``params`` are perturbed in
    place and restored bit for bit.
    """
    _check_params(params)
    name = _run_dtype(params, dtype)
    h = default_h(name) if h is None else float(h)
    probe = _Probe(loss, name, value_scale)
    probe.scale_floor = max(probe.scale_floor, abs(probe.value("at the given parameters")))
    grads, errors = {}, {}
    for pname, p in params.items():
        param = _Param(probe, pname, p, np.zeros(p.shape), None, h, 0.0, 0.0, None, kinks=False)
        try:
            elements, diffs, _ = _sweep(param)
        finally:
            p[...] = param.saved
        grads[pname] = np.array([e.numerical for e in elements]).reshape(p.shape)
        errors[pname] = np.array([d.roundoff + d.truncation for d in diffs]).reshape(p.shape)
    return NumericalGradient(grads, errors, h, probe.evaluations)


__all__ = ["check_gradient_directions", "numerical_gradient_of", "DirectionalReport",
           "ParamDirections", "Difference", "Element", "NumericalGradient"]
