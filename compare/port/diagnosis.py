"""Name the usual porting bug behind a mismatch, when one fits.

``diagnose(expected, actual)`` takes the first pair of arrays that differ
(the NumPy side's, the torch side's) and tests each usual bug as a
hypothesis: it fits when ``actual`` equals the correspondingly transformed
``expected`` within the comparison's tolerance. Every hypothesis that fits
is returned, best first, as ``{"code", "text", ...}``:

=========  ================================================  ===============================
code       fits when                                         usual cause
=========  ================================================  ===============================
transpose  ``actual ~ expected.T`` (same or swapped shape)   ``nn.Linear`` stores (out, in)
sign       ``actual ~ -expected``                            ``t - y`` for ``y - t``
scale      ``actual ~ c expected``, ``c`` by least squares   ``/ batch_size`` lost or doubled
offset     ``actual ~ expected + s``, one ``s`` for all      a constant term on one side
log_eps    ``actual - expected ~ +-known["log_eps"]``        an eps in a log, ``log(y + 1e-7)``
axis       softmax / log-softmax / sum / mean of             ``dim=0`` for ``dim=-1``
           ``inputs`` over another axis than ``expected``
unused     one side all zeros, the other not                 a parameter cut from the graph
dtype      a float32 array, or float32 round-off, in a       ``.float()``, a float32 tensor
           float64 run
=========  ================================================  ===============================

The tolerance
=============
"Equals" is ``|x - y| <= atol + rtol max(|x|, |y|)`` element by element,
with the caller's ``(rtol, atol)`` (the comparison that found the mismatch)
or ``compare.parity``'s analytic one for ``dtype`` (1e-10, 1e-12 in
float64; 1e-4, 1e-7 in float32). With the default, ``atol`` is raised to
``rtol`` times the arrays' largest entry: parity's atol is written for
entries below 0.1, and an element that cancels to near 0 carries the
round-off of the terms it was summed from, which the largest entry
measures. A hypothesis needs the arrays to differ under the same criterion
(a correct array gets nothing).

``scale``: ``c = <a, e> / <e, e>``, the best factor; it fits when
``a ~ c e``. ``c = -1`` is reported as ``sign`` alone. ``c`` within 1e-3
of one of the caller's named ``scales`` (``compare.port.losses.loss_scales``:
the book's ``0.5 * sum`` against a mean is ``N * k / 2``) is explained by
its text; else ``c`` within 1e-3 of ``batch_size`` (or of its inverse) is
named as a missing (or extra) ``/ batch_size``. For a single number any factor "fits", so there only
``sign`` and a factor of ``batch_size`` are reported, and ``offset`` never.

``log_eps``: ``known["log_eps_value"]`` is the eps the gap is of (the book's 1e-7 by
default), named in the text and as ``eps``.

``dtype``: strong evidence is an array of dtype float32 in a float64 run, or
``actual`` whose every value is a float32 number (it rounds to itself)
while ``expected``'s are not, with the difference within float32's analytic
tolerance: a float32 result converted back. Weak evidence, reported only
when nothing else fits, is a difference between ``eps32 / 16`` and
``8 eps32`` of the largest entry (a few float32 roundings, far above
float64's): the size of float32 round-off, though not proof of it. A port check
(``compare.port.check.verify``) keeps it only where a float32 array or tensor took
part in the run: an eps in a log, or any other small difference, is no float32.

``axis``: with ``inputs`` (what fed the layer on the NumPy side), each side
is matched against softmax, log-softmax, sum and mean of ``inputs`` over
each axis; it fits when both sides match the same operation over different
axes. Without ``inputs``, a probability table is recognised by its sums: one
side's slices sum to 1 along one axis, the other's along another.
"""
import math

import numpy as np

from ..parity import EPS, dtype_name
from ..parity import tolerance as parity_tolerance

CODES = ("transpose", "sign", "scale", "offset", "log_eps", "axis", "unused", "dtype")
NAMING = 1e-3  # c this close (relatively) to N or 1/N is named as batch size
FLOAT32_WINDOW = (1 / 16, 8)  # weak dtype evidence: max |a - e| in eps32 x max |e|
SUMS_TO_ONE = 1e-6  # a probability table's slices sum to 1 within this


class _Tol:
    """``|x - y| <= atol + rtol max(|x|, |y|)``, atol raised to the arrays' scale by default."""

    def __init__(self, rtol, atol, scaled):
        self.rtol, self.atol, self.scaled = float(rtol), float(atol), scaled

    def ratio(self, x, y):
        """max of error / allowed: at most 1 means x equals y."""
        x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
        if x.size == 0:
            return 0.0
        size = np.maximum(np.abs(x), np.abs(y))
        atol = max(self.atol, self.rtol * float(size.max())) if self.scaled else self.atol
        err = np.abs(x - y)
        allowed = atol + self.rtol * size
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(err == 0, 0.0, err / allowed)
        return float(r.max())

    def fits(self, x, y):
        return self.ratio(x, y) <= 1


def _float_array(value, name):
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or \
            np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def _fmt(x):
    return f"{x:.4g}"


def _hyp(code, text, ratio, **extra):
    out = {"code": code, "text": text}
    for key, value in extra.items():
        if isinstance(value, (float, np.floating)):
            value = float(value)
            value = value if math.isfinite(value) else str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    out["_ratio"] = ratio
    return out


# --- the hypotheses ---------------------------------------------------------------------

def _unused(e, a):
    e_zero, a_zero = not np.any(e), not np.any(a)
    if e_zero == a_zero:
        return []
    side, other, values = ("actual", "expected", e) if a_zero else ("expected", "actual", a)
    cause = ("the torch side's parameter gets no gradient: it is not used in the forward pass, "
             "or the graph is cut (.detach(), .data, a NumPy round trip)" if a_zero else
             "the NumPy side never sees this parameter: it is not used in its forward pass, "
             "or its gradient is never written")
    return [_hyp("unused", f"{side} is all zeros where {other} is not (max |{other}| = "
                 f"{_fmt(np.abs(values).max())}): {cause}", 0.0, side=side)]


def _transpose(e, a, tol):
    if e.ndim < 2 or a.shape != e.shape[::-1] or (e.shape == a.shape and tol.fits(a, e)):
        return []
    r = tol.ratio(a, e.T)
    if r > 1:
        return []
    shapes = (f"shape {a.shape} against {e.shape}" if a.shape != e.shape
              else f"square {a.shape}, so the shapes agree and only the values show it")
    return [_hyp("transpose", f"actual = expected transposed ({shapes}): a weight stored as "
                 f"(out, in), as nn.Linear does, used or compared without .T", r,
                 expected_shape=e.shape, actual_shape=a.shape, residual=_resid(a, e.T))]


def _resid(x, y):
    if not np.size(x):
        return 0.0
    return float(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)).max())


def _sign_scale(e, a, tol, batch_size, scales=None):
    denom = float(np.vdot(e, e))
    if denom == 0:
        return []
    r_sign = tol.ratio(a, -e)
    if r_sign <= 1:
        return [_hyp("sign", "actual = -expected everywhere: a sign flip (t - y written for "
                     "y - t, a minus lost, or a step taken up the gradient)", r_sign,
                     factor=-1.0, residual=_resid(a, -e))]
    c = float(np.vdot(a, e)) / denom
    r = tol.ratio(a, c * e)
    if r > 1:
        return []
    named = None
    explained = [s for s in scales or () if abs(c / s["factor"] - 1) <= NAMING]
    if explained:  # the likeliest explanations of the factor, when several give it
        best = min(s.get("likely", 0) for s in explained)
        explained = [s for s in explained if s.get("likely", 0) == best]
        shown = f"{_fmt(c)} x expected" if abs(c) >= 1 else f"expected / {_fmt(1 / c)}"
        return [_hyp("scale", f"actual = {shown}: " + "; or ".join(s["text"] for s in explained),
                     r, factor=c, batch_size=False, expression=explained[0]["expression"],
                     residual=_resid(a, c * e))]
    if batch_size:
        n = float(batch_size)
        for target, kind in ((n, "missing"), (-n, "missing"), (1 / n, "extra"), (-1 / n, "extra")):
            if abs(c / target - 1) <= NAMING:
                named = kind
    if e.size == 1 and named is None:
        return []  # one number is a multiple of any other
    sign = ", and of the opposite sign" if c < 0 else ""
    if named == "missing":
        why = (f"(the batch size is {batch_size}{sign}): a missing / batch_size on the torch "
               f"side (a sum where the NumPy side takes the mean)")
    elif named == "extra":
        why = (f"(1 / the batch size {batch_size}{sign}): an extra / batch_size on the torch "
               f"side (a mean where the NumPy side sums)")
    else:
        why = "everywhere: a constant factor on one side (0.5 in a squared error, a mean vs a sum)"
    shown = f"{_fmt(c)} x expected" if abs(c) >= 1 else f"expected / {_fmt(1 / c)}"
    return [_hyp("scale", f"actual = {shown} {why}", r, factor=c, batch_size=named is not None,
                 residual=_resid(a, c * e))]


def _offset(e, a, tol):
    if e.size < 2:
        return []
    s = float(np.mean(a - e))
    r = tol.ratio(a, e + s)
    if r > 1 or tol.fits(a, e):
        return []
    return [_hyp("offset", f"actual = expected + ({_fmt(s)}) everywhere: a constant shift "
                 f"(a constant term, or a bias, added on one side only)", r, shift=s,
                 residual=_resid(a, e + s))]


def _log_eps(e, a, tol, known):
    gap = known.get("log_eps") if known else None
    if gap is None:
        return []
    gap = np.asarray(gap, dtype=np.float64)
    if gap.shape != e.shape or not np.any(gap):
        return []
    eps = known.get("log_eps_value", 1e-7)
    shown = _eps_shown(eps)
    book = "the book's " if eps == 1e-7 else ""
    out = []
    for sign, holder, other in ((1, "actual", "expected"), (-1, "expected", "actual")):
        r = tol.ratio(a, e + sign * gap)
        if r <= 1:
            out.append(_hyp("log_eps", f"actual - expected = {'+' if sign > 0 else '-'}the "
                            f"{shown} gap (max {_fmt(np.abs(gap).max())}): {holder} has "
                            f"{book}log(y + {shown}) in its loss, {other} the loss without it "
                            f"(F.cross_entropy, F.binary_cross_entropy_with_logits)", r, sign=sign,
                            eps=float(eps), max_gap=float(np.abs(gap).max()),
                            residual=_resid(a, e + sign * gap)))
    return out


def _eps_shown(eps):
    k = math.floor(math.log10(eps))
    m = eps / 10 ** k
    return f"{round(m)}e{k}" if abs(m - round(m)) < 1e-9 * m else f"{eps:.3g}"


def _softmax(x, axis):
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


_OPS = {"softmax": _softmax, "log_softmax": _log_softmax,
        "sum": lambda x, k: x.sum(axis=k), "mean": lambda x, k: x.mean(axis=k)}


def _axis_name(axis, ndim):
    return f"axis {axis}" + (" (the last)" if axis == ndim - 1 else "")


def _axis(e, a, tol, inputs):
    out = []
    if inputs is not None and inputs.ndim >= 2:
        for op, fn in _OPS.items():
            matches = {"e": [], "a": []}
            for k in range(inputs.ndim):
                value = fn(inputs, k)
                for side, arr in (("e", e), ("a", a)):
                    if arr.shape == value.shape and tol.fits(arr, value):
                        matches[side].append((k, value))
            for ke, _ in matches["e"]:
                for ka, value in matches["a"]:
                    if ke != ka:
                        out.append(_hyp(
                            "axis", f"actual = {op} of this layer's input over "
                            f"{_axis_name(ka, inputs.ndim)}, expected = {op} over "
                            f"{_axis_name(ke, inputs.ndim)}: the {op} is taken over the wrong "
                            f"axis (dim={ka} for dim={ke})", tol.ratio(a, value), op=op,
                            expected_axis=ke, actual_axis=ka))
    if not out and e.shape == a.shape and e.ndim >= 2 and not tol.fits(a, e):
        out += _normalised_axis(e, a)
    return out


def _normalised_axis(e, a):
    """Without inputs: probability tables recognised by the axis their slices sum to 1 over."""
    for op, probs in (("softmax", lambda x: x), ("log_softmax", np.exp)):
        with np.errstate(over="ignore"):
            pe, pa = probs(e), probs(a)
        if (op == "softmax") and (e.min() < 0 or a.min() < 0):
            continue
        off_e = [float(np.abs(pe.sum(axis=k) - 1).max()) for k in range(e.ndim)]
        off_a = [float(np.abs(pa.sum(axis=k) - 1).max()) for k in range(a.ndim)]
        ones_e = [k for k, off in enumerate(off_e) if off <= SUMS_TO_ONE]
        ones_a = [k for k, off in enumerate(off_a) if off <= SUMS_TO_ONE]
        if len(ones_e) == 1 and len(ones_a) == 1 and ones_e != ones_a:
            ke, ka = ones_e[0], ones_a[0]
            fit = max(off_e[ke], off_a[ka]) / SUMS_TO_ONE
            return [_hyp("axis", f"actual sums to 1 over {_axis_name(ka, a.ndim)}, expected over "
                         f"{_axis_name(ke, e.ndim)}: a {op} (or normalisation) over the wrong "
                         f"axis (dim={ka} for dim={ke})", fit, op=op, expected_axis=ke,
                         actual_axis=ka)]
    return []


def _dtype_of_arrays(e_raw, a_raw, run):
    if run != "float64":
        return []
    return [_hyp("dtype", f"{side} is float32 in a float64 run: a .float(), or a tensor made "
                 f"without dtype=torch.float64, on that side", 0.0, evidence="dtype", side=side)
            for side, arr in (("actual", a_raw), ("expected", e_raw)) if arr.dtype == np.float32]


def _dtype(e_raw, a_raw, e, a, run, tol):
    """(strong, weak) float32 evidence in a float64 run."""
    strong, weak = _dtype_of_arrays(e_raw, a_raw, run), []
    if run != "float64" or strong or tol.fits(a, e):
        return strong, weak
    single = parity_tolerance("analytic", "float32")
    f32 = _Tol(single.rtol, single.atol, scaled=True)
    eps32 = EPS["float32"]
    for side, x, y in (("actual", a, e), ("expected", e, a)):
        if _float32_numbers(x) and not _float32_numbers(y) and f32.fits(x, y):
            strong.append(_hyp("dtype", f"every value of {side} is a float32 number while the "
                               f"other side's are not, and they agree to float32 precision (max "
                               f"difference {_fmt(_resid(a, e))}): {side}'s side computed in "
                               f"float32 and converted back", f32.ratio(x, y),
                               evidence="float32 values", side=side))
    scale = float(np.abs(e).max()) if e.size else 0.0
    diff = _resid(a, e)
    lo, hi = FLOAT32_WINDOW
    if not strong and scale and lo * eps32 * scale <= diff <= hi * eps32 * scale:
        weak.append(_hyp("dtype", f"actual differs from expected by at most "
                         f"{diff / scale:.2g} of the largest entry, the size of float32 "
                         f"round-off (eps = {eps32:.2g}) and far above float64's: consistent "
                         f"with part of one side computing in float32", diff / (hi * eps32 * scale),
                         evidence="float32 round-off", max_rel=diff / scale))
    return strong, weak


def _float32_numbers(x):
    """Every value rounds to itself in float32 (zeros aside, and not all zeros)."""
    nonzero = x[x != 0]
    if nonzero.size == 0:
        return False
    with np.errstate(over="ignore"):
        return bool(np.all(nonzero.astype(np.float32).astype(np.float64) == nonzero))


# --- the entry point --------------------------------------------------------------------

def diagnose(expected, actual, *, dtype="float64", batch_size=None, inputs=None, known=None,
             tolerance=None, scales=None):
    """The usual porting bugs that explain ``actual`` (torch side) against ``expected`` (NumPy).

    ``dtype``: the run's dtype. ``batch_size``: names a factor of N as
    ``/ batch_size``. ``inputs``: what fed this layer on the NumPy side
    (tests softmax, log-softmax, sum and mean over the other axes).
    ``known``: ``{"log_eps": gap}``, the difference the book's 1e-7 makes
    (``compare.ch4.gap.book_gap`` for the two-layer net). ``tolerance``:
    ``(rtol, atol)`` of the comparison that failed; default
    ``compare.parity``'s analytic tolerance for ``dtype``, scaled to the
    arrays. ``scales``: named factors ``[{"factor", "expression", "text"}]``
    (``compare.port.losses.loss_scales``) that explain a ``scale`` fit of that
    factor. Returns a list of ``{"code", "text", ...}``, best first, empty
    when nothing fits (or the arrays hold NaN or infinity).
    """
    run = dtype_name(dtype)
    e_raw, a_raw = _float_array(expected, "expected"), _float_array(actual, "actual")
    if known is not None:
        unknown = set(known) - {"log_eps", "log_eps_value"}
        if unknown:
            raise ValueError(f"known differences must be among ['log_eps'] (and its eps, "
                             f"'log_eps_value'), got {sorted(unknown)}")
    e, a = e_raw.astype(np.float64), a_raw.astype(np.float64)
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(a))):
        return []
    if tolerance is None:
        default = parity_tolerance("analytic", run)
        tol = _Tol(default.rtol, default.atol, scaled=True)
    else:
        rtol, atol = tolerance
        tol = _Tol(rtol, atol, scaled=False)
    x = None if inputs is None else _float_array(inputs, "inputs").astype(np.float64)

    found = []
    if e.shape != a.shape:
        found += _transpose(e, a, tol) + _axis(e, a, tol, x)
        return _ranked(found) + _ranked(_dtype_of_arrays(e_raw, a_raw, run))
    unused = _unused(e, a)
    if unused:
        return _ranked(unused) + _ranked(_dtype_of_arrays(e_raw, a_raw, run))
    if not tol.fits(a, e):
        found += _transpose(e, a, tol) + _sign_scale(e, a, tol, batch_size, scales) + _offset(e, a, tol)
        found += _log_eps(e, a, tol, known) + _axis(e, a, tol, x)
    strong, weak = _dtype(e_raw, a_raw, e, a, run, tol)
    return _ranked(found) + _ranked(strong) + ([] if found or strong else _ranked(weak))


def _ranked(hypotheses):
    hypotheses = sorted(hypotheses, key=lambda h: h["_ratio"])
    for h in hypotheses:
        h["fit"] = h.pop("_ratio")  # error / tolerance of the fitted transform: <= 1
    return hypotheses


__all__ = ["diagnose", "CODES"]
