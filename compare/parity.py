"""Compare two gradient dicts parameter by parameter, under a written-down tolerance.

The criterion is ``torch.testing.assert_close``'s, element by element::

    |actual - expected| <= atol + rtol * |expected| (+ |allowance|)

``allowance`` is a known, named difference (the SPEC's 1e-7 gap, below)
that is allowed for in its own column instead of being folded into the
tolerance.

Tolerance policy
================
Three kinds of pair, each with a bound derived from where its error comes
from (``eps``: 2.2e-16 in float64, 1.2e-7 in float32; the numbers in the
table are for the default steps ``h``: 1e-4 in float64, 1e-2 in float32).

=====================  ===================================  =========================  =========================
kind                   error source                         float64 (h=1e-4)           float32 (h=1e-2)
=====================  ===================================  =========================  =========================
``analytic``           round-off of a few matmuls           rtol 1e-10, atol 1e-12     rtol 1e-4, atol 1e-7
``numerical-pair``     + round-off of the loss, over ``h``  atol += 4 eps L / h        (2.2e-11 / 1.2e-4)
``numerical``          + truncation ``h**2 |f'''| / 6``     atol += 1.7e-10            atol += 1.7e-6
=====================  ===================================  =========================  =========================

``analytic`` (backprop vs backprop vs autograd vs the nn.Module). Each
gradient entry is a sum of at most 784 products (the longest reduction),
whose relative round-off is at most ``784 eps``: 1.7e-13 in float64, 9.3e-5
in float32, hence rtol 1e-10 (float64, 600x headroom for what the softmax
and the backward pass add) and 1e-4 (float32). Where the sum cancels to
nearly 0 the relative error is meaningless and the absolute one is about
``eps * sum |terms|``, with terms below 0.1 here: atol 1e-12 in float64
(measured on MNIST: 2e-17) and 1e-7 in float32 (measured: 1.4e-8).

``numerical-pair`` (NumPy's numerical gradient vs torch's). Both take the
same central differences of the same loss, so they differ by the round-off
in each loss value, ``~eps * L`` with ``L`` the loss (``LOSS_SCALE`` = 2.5,
just above ln 10, its value at initialisation), divided by ``2h``, for each
of two values: ``4 eps L / h`` leaves 2x headroom over ``2 eps L / h``
(measured in float64: 6e-12 between the fast and the loop method, 4e-13
between the two sides' fast methods, against the 2.3e-11 allowed).

``numerical`` (a numerical gradient vs the exact gradient of the *same*
loss). Adds the truncation error of the central difference,
``h**2 |f'''| / 6``. Along any parameter the loss is a mean of
log-softmax terms whose third derivative is at most
``max p(1 - p)(1 - 2p) = 0.096`` (``THIRD_DERIVATIVE`` = 0.1; inputs,
``sigmoid`` and weights are at most 1 in size), so the truncation is at most
1.7e-10 at ``h = 1e-4`` (measured on ``b2`` at initialisation: 1.26e-10)
and 1.7e-6 at ``h = 1e-2``. In float32 the book's ``h = 1e-4`` makes the
round-off term ``4 eps L / h`` = 1.2e-2, larger than most gradient entries
(about 2e-2 relative to the largest): use ``h = 1e-2`` there.

Truncation estimated from the differences (Richardson)
======================================================
The ``numerical`` bound above needs ``|f'''|``, known for the two-layer
net's loss but not for a user's function: ``-log(y + 1e-7)`` at
``y = 0.003`` has ``|f'''|`` near 1e7, and a bound of 1 is off by seven
orders of magnitude. The differences themselves tell the truncation:
``D(h) = f' + c h**2 + O(h**4)``, so ``D(2h) - D(h) = 3 c h**2`` and
``|D(2h) - D(h)| / 3`` estimates the truncation of ``D(h)``, for two more
evaluations of ``f`` per difference. With ``R = 4 eps |f| / h`` the
round-off of ``D(h)`` (``D(2h)`` has ``R / 2``), the estimate is itself
noisy by up to ``(R + R/2) / 3 = R / 2``, and ``richardson_truncation``
bounds the truncation by ``2 (|D(2h) - D(h)| / 3 + R / 2)``: the factor 2
covers that noise (if the true truncation ``t`` exceeds ``R`` the estimate
is at least ``t - R/2``, and ``2 (t - R/2) + R >= t``; if not, ``R``
covers it) and the ``h**4`` term while it is small (``D(h) = f' + c h**2 +
d h**4``: the estimate is ``c h**2 + 5 d h**4``, and 2x covers
``c h**2 + d h**4`` while ``11 |d| h**2 <= |c|``). The total is
``R + 2 (|D(2h) - D(h)| / 3 + R / 2)`` on top of the analytic tolerance,
and no bound on ``f'''`` is asked. ``compare.testing.assert_same_op`` uses
it element by element; ``compare.port.numerical`` along random directions.

The 1e-7 gap
============
The book's ``loss`` is ``-log(y + 1e-7)``; its backprop ``(y - t) / N`` is
the exact gradient of the cross-entropy *without* the 1e-7. A numerical
gradient (of ``loss``) therefore differs from backprop by about
``1e-7 / y``: near 1e-8 absolute, 1e-6 relative, at initialisation. That
is not round-off and not truncation, so it is not hidden in the tolerances
above: ``compare.ch4.gap.book_gap`` computes it in closed form, and a check of
numerical against backprop takes it as a named ``allowance``, shown in its
own column (see ``compare.ch4.paths``).
"""
import json
import math
from dataclasses import dataclass, field

import numpy as np

from numpy_impl.validation import check_nonnegative, check_positive_real

EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}
DEFAULT_H = {"float64": 1e-4, "float32": 1e-2}
LOSS_SCALE = 2.5
THIRD_DERIVATIVE = 0.1
KINDS = ("analytic", "numerical-pair", "numerical")

_ANALYTIC = {  # (rtol, atol): see the module docstring
    "float64": (1e-10, 1e-12),
    "float32": (1e-4, 1e-7),
}


@dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol + rtol * |expected|``, and why."""
    rtol: float
    atol: float
    why: str = ""

    def __post_init__(self):
        # a NaN bound would pass every comparison (NaN <= x is False, and so is "out")
        check_nonnegative(self.rtol, "rtol")
        check_nonnegative(self.atol, "atol")

    def __str__(self):
        return f"rtol={self.rtol:.3g}, atol={self.atol:.3g}"


def dtype_name(dtype):
    """'float64' or 'float32' for a NumPy dtype, a torch dtype or a name."""
    name = str(dtype).replace("torch.", "")
    if name not in EPS:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            pass
    if name not in EPS:
        raise ValueError(f"dtype must be float64 or float32, got {dtype!r}")
    return name


def default_h(dtype):
    """The step the policy is written for: the book's 1e-4 in float64, 1e-2 in float32."""
    return DEFAULT_H[dtype_name(dtype)]


def tolerance(kind="analytic", dtype="float64", h=None, *, value_scale=LOSS_SCALE,
              third_derivative=THIRD_DERIVATIVE):
    """The policy's tolerance for a kind of pair, a dtype and (numerical kinds) a step ``h``.

    ``value_scale`` (the size of the function differentiated) and
    ``third_derivative`` (a bound on the size of its third derivative)
    default to the two-layer net's loss; give them for other functions.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = dtype_name(dtype)
    rtol, atol = _ANALYTIC[name]
    if kind == "analytic":
        return Tolerance(rtol, atol, f"round-off of a few matmuls in {name}")
    h = default_h(name) if h is None else check_positive_real(h, "h")
    value_scale = check_nonnegative(value_scale, "value_scale")
    third_derivative = check_nonnegative(third_derivative, "third_derivative")
    roundoff = 4 * EPS[name] * value_scale / h
    if kind == "numerical-pair":
        return Tolerance(rtol, atol + roundoff,
                         f"round-off of f over h={h:g} in {name} (4 eps |f| / h = {roundoff:.2g})")
    truncation = third_derivative * h ** 2 / 6
    return Tolerance(rtol, atol + roundoff + truncation,
                     f"central difference with h={h:g} in {name}: round-off {roundoff:.2g} "
                     f"+ truncation {truncation:.2g}")


TRUNCATION_SAFETY = 2


def roundoff(dtype, h=None, value_scale=LOSS_SCALE):
    """``4 eps |f| / h``: the round-off of one central difference ``D(h)``.

    ``value_scale`` is ``|f|``, or the sum of the sizes of the terms ``f``
    is computed from where those cancel.
    """
    name = dtype_name(dtype)
    h = default_h(name) if h is None else float(h)
    return 4 * EPS[name] * value_scale / h


def richardson_truncation(d_h, d_2h, roundoff_h):
    """A bound on the truncation of ``D(h)``, from ``D(h)`` and ``D(2h)``.

    ``2 (|D(2h) - D(h)| / 3 + R / 2)`` with ``R = roundoff_h``, the
    round-off of ``D(h)``; element by element on arrays (see the module
    docstring for the derivation).
    """
    estimate = np.abs(np.asarray(d_2h, dtype=np.float64) - np.asarray(d_h, dtype=np.float64)) / 3
    return TRUNCATION_SAFETY * (estimate + roundoff_h / 2)


# --- conversion -------------------------------------------------------------------------

def _is_tensor(value):
    # Duck-typed, so comparing NumPy results never imports torch.
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _as_array(value):
    """``(array, 'torch' | 'numpy')``; a tensor is detached and brought to the CPU."""
    if _is_tensor(value):
        return value.detach().cpu().numpy(), "torch"
    if isinstance(value, np.ndarray) and value.dtype == object:
        raise TypeError("gradients must be numeric arrays, got an object array")
    if isinstance(value, (np.ndarray, np.generic)):
        return np.asarray(value), "numpy"
    if isinstance(value, (float, int)) and not isinstance(value, bool):
        return np.asarray(value), "python"
    raise TypeError(f"gradients must be NumPy arrays or torch tensors, got {type(value).__name__}")


def to_numpy(value):
    """A NumPy array for an array, a tensor (detached, on the CPU) or a Python number."""
    return _as_array(value)[0]


def _odd_ones(values):
    """Keys whose library differs from most of the dict's (a port mixing arrays and tensors)."""
    libs = [lib for _, lib in values.values() if lib != "python"]
    if len(set(libs)) < 2:
        return {}
    common = max(sorted(set(libs)), key=libs.count)
    return {key: (lib, common) for key, (_, lib) in values.items() if lib not in ("python", common)}


# --- one parameter ----------------------------------------------------------------------

@dataclass
class ParamCheck:
    """One parameter's row of the table."""
    name: str
    shape_actual: tuple = None
    shape_expected: tuple = None
    dtype_actual: str = None
    dtype_expected: str = None
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    worst_index: tuple = None
    worst_actual: float = float("nan")
    worst_expected: float = float("nan")
    worst_ratio: float = float("nan")  # error / what is allowed there: > 1 fails
    max_allowance: float = 0.0
    passed: bool = False
    problem: str = None

    def to_dict(self):
        def clean(v):
            if isinstance(v, float) and not math.isfinite(v):
                return str(v)  # JSON has no NaN or infinity
            if isinstance(v, tuple):
                return list(v)
            return v
        return {key: clean(value) for key, value in self.__dict__.items()}


def _first(mask):
    return tuple(int(i) for i in np.argwhere(mask)[0]) if mask.ndim else ()


def elementwise_errors(actual, expected, tol, allowance=None):
    """``(err, rel, ratio, allowed)`` of float64 ``actual`` against ``expected``:
    ``|a - e|``, that over ``|e|``, and over what is allowed there,
    ``atol + rtol |e| (+ |allowance|)``; 0 wherever the two are equal."""
    err = np.abs(actual - expected)
    allowed = tol.atol + tol.rtol * np.abs(expected)
    if allowance is not None:
        allowed = allowed + np.abs(np.asarray(allowance, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(expected))
        ratio = np.where(err == 0, 0.0, err / allowed)
    return err, rel, ratio, allowed


def _check_param(name, a, e, tol, allowance, dtype, check_dtype=True):
    row = ParamCheck(name, tuple(a.shape), tuple(e.shape), a.dtype.name, e.dtype.name)
    problems = []
    if dtype is not None:
        for side, arr in (("actual", a), ("expected", e)):
            if arr.dtype.name != dtype:
                problems.append(f"{side} dtype is {arr.dtype.name} in a {dtype} run")
    elif check_dtype and a.dtype != e.dtype:
        problems.append(f"dtype {a.dtype.name} != expected {e.dtype.name}")
    if a.shape != e.shape:
        problems.append(f"shape {tuple(a.shape)} != expected {tuple(e.shape)}")
        row.problem = "; ".join(problems)
        return row
    for side, arr in (("actual", a), ("expected", e)):
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            problems.append(f"{side} has non-real dtype {arr.dtype}")
            row.problem = "; ".join(problems)
            return row
        bad = ~np.isfinite(arr) if np.issubdtype(arr.dtype, np.floating) else np.zeros(arr.shape, bool)
        if bad.any():
            kind = "NaN" if np.isnan(arr[bad]).any() else "infinity"
            problems.append(f"{kind} in {side} at {_first(bad)}")
    if allowance is not None and tuple(allowance.shape) != a.shape:
        problems.append(f"allowance shape {tuple(allowance.shape)} != {tuple(a.shape)}")
        allowance = None
    if any("NaN" in p or "infinity" in p for p in problems):
        row.problem = "; ".join(problems)
        return row

    a64, e64 = a.astype(np.float64), e.astype(np.float64)
    err, rel, ratio, allowed = elementwise_errors(a64, e64, tol, allowance)
    if allowance is not None:
        row.max_allowance = float(np.max(np.abs(allowance))) if np.size(allowance) else 0.0
    if err.size:
        worst = np.unravel_index(int(np.argmax(ratio)), err.shape)
        row.max_abs, row.max_rel = float(err.max()), float(rel.max())
        row.worst_index = tuple(int(i) for i in worst)
        row.worst_actual, row.worst_expected = float(a64[worst]), float(e64[worst])
        row.worst_ratio = float(ratio[worst])
    else:
        row.max_abs = row.max_rel = row.worst_ratio = 0.0
    if row.worst_ratio > 1:
        problems.append(f"{np.count_nonzero(err > allowed)} of {err.size} elements out of tolerance")
    row.problem = "; ".join(problems) or None
    row.passed = row.problem is None
    return row


# --- the report -------------------------------------------------------------------------

@dataclass
class ParityReport:
    """The table of one comparison: a row per parameter, and the verdict."""
    label: str
    actual_name: str
    expected_name: str
    kind: str
    tolerance: Tolerance
    rows: list = field(default_factory=list)
    allowance_name: str = None
    note: str = None

    @property
    def passed(self):
        return bool(self.rows) and all(row.passed for row in self.rows)

    @property
    def failed(self):
        """Names of the parameters that failed."""
        return [row.name for row in self.rows if not row.passed]

    def worst(self, key="max_abs"):
        values = [getattr(r, key) for r in self.rows if isinstance(getattr(r, key), float)]
        finite = [v for v in values if math.isfinite(v)]
        return max(finite) if finite else float("nan")

    def verdict(self):
        if self.passed:
            return f"PASS {self.label}"
        return f"FAIL {self.label}: " + "; ".join(
            f"{row.name}: {row.problem}" for row in self.rows if not row.passed)

    def to_text(self):
        pair = f"{self.actual_name} vs {self.expected_name}"
        head = self.label if self.label == pair else f"{self.label}: {pair}"
        head += f" [{self.kind}: {self.tolerance}]"
        cols = ["param", "shape", "dtype", "max abs err", "max rel err", "worst at",
                "actual", "expected"]
        if self.allowance_name:
            cols.append(f"allowed {self.allowance_name}")
        cols.append("verdict")
        lines = []
        for r in self.rows:
            shape = (str(r.shape_actual) if r.shape_actual == r.shape_expected
                     else f"{r.shape_actual} vs {r.shape_expected}")
            dtype = (str(r.dtype_actual) if r.dtype_actual == r.dtype_expected
                     else f"{r.dtype_actual} vs {r.dtype_expected}")
            cells = [r.name, shape, dtype, _fmt(r.max_abs), _fmt(r.max_rel),
                     "-" if r.worst_index is None else str(r.worst_index),
                     _fmt(r.worst_actual, 10), _fmt(r.worst_expected, 10)]
            if self.allowance_name:
                cells.append(_fmt(r.max_allowance))
            cells.append("ok" if r.passed else f"FAIL: {r.problem}")
            lines.append(cells)
        widths = [max(len(c), *(len(line[k]) for line in lines)) if lines else len(c)
                  for k, c in enumerate(cols)]
        fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        out = [head, fmt(cols), fmt(["-" * w for w in widths])] + [fmt(line) for line in lines]
        if self.note:
            out.append(self.note)
        out.append(self.verdict())
        return "\n".join(out)

    __str__ = to_text

    def to_dict(self):
        return {"label": self.label, "actual": self.actual_name, "expected": self.expected_name,
                "kind": self.kind, "rtol": self.tolerance.rtol, "atol": self.tolerance.atol,
                "why": self.tolerance.why, "allowance": self.allowance_name, "note": self.note,
                "passed": self.passed, "failed": self.failed,
                "params": [row.to_dict() for row in self.rows]}

    def to_json(self, **kwargs):
        return json.dumps(self.to_dict(), **kwargs)

    def raise_if_failed(self):
        if not self.passed:
            raise AssertionError("\n" + self.to_text())
        return self


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}g}"
    return str(value)


def with_override(tol, rtol=None, atol=None):
    """``tol`` with the caller's ``rtol`` and ``atol`` in place of its own, where given."""
    if not isinstance(tol, Tolerance):
        raise TypeError(f"tol must be a compare.parity.Tolerance, got {type(tol).__name__}")
    if rtol is None and atol is None:
        return tol
    return Tolerance(tol.rtol if rtol is None else rtol, tol.atol if atol is None else atol,
                     "given by the caller")


def compare_gradients(actual, expected, *, kind="analytic", dtype=None, h=None, rtol=None,
                      atol=None, tol=None, allowance=None, allowance_name="1e-7 gap",
                      label=None, actual_name="actual", expected_name="expected", note=None,
                      device=None, check_dtype=True):
    """Compare two gradient dicts and return the ``ParityReport`` (no raising).

    ``dtype`` names the run's dtype: both sides must have it (a float32
    leak into a float64 run fails). Without it the two sides must agree on
    their dtype, unless ``check_dtype=False`` (comparing a float32 run with a
    float64 reference, say). The tolerance is the policy's for ``kind``, ``dtype`` and
    ``h`` unless ``tol`` or ``rtol``/``atol`` are given. ``allowance`` is a
    dict of known differences (``compare.ch4.gap.book_gap``), allowed for
    element by element and named ``allowance_name``. ``device`` (say
    ``"cuda:0"``) requires every tensor to be there: a path that quietly
    computed on the CPU fails.
    """
    if not isinstance(actual, dict) or not isinstance(expected, dict):
        raise TypeError(f"gradients must be dicts keyed by parameter, got "
                        f"{type(actual).__name__} and {type(expected).__name__}")
    if allowance is not None and not isinstance(allowance, dict):
        raise TypeError(f"allowance must be a dict keyed like the gradients, or None, got "
                        f"{type(allowance).__name__}")
    if device is not None:
        from torch_impl.validation import check_device  # a device named: torch is in play
        device = check_device(device)
    a_vals = {k: _as_array(v) for k, v in actual.items()}
    e_vals = {k: _as_array(v) for k, v in expected.items()}
    run_dtype = dtype_name(dtype) if dtype is not None else None
    if tol is None:
        ref = run_dtype or _lowest_precision(list(a_vals.values()) + list(e_vals.values()))
        tol = with_override(tolerance(kind, ref, h), rtol, atol)
    report = ParityReport(label or f"{actual_name} vs {expected_name}", actual_name, expected_name,
                          kind, tol, allowance_name=allowance_name if allowance else None, note=note)
    odd = {"actual": _odd_ones(a_vals), "expected": _odd_ones(e_vals)}
    for name in list(expected) + [k for k in actual if k not in expected]:
        if name not in actual:
            report.rows.append(ParamCheck(name, problem="missing from actual"))
            continue
        if name not in expected:
            report.rows.append(ParamCheck(name, problem="unexpected key (not in expected)"))
            continue
        gap = None
        if allowance is not None and name in allowance:
            gap = _as_array(allowance[name])[0]
        row = _check_param(name, a_vals[name][0], e_vals[name][0], tol, gap, run_dtype,
                           check_dtype)
        for side, values in (("actual", actual), ("expected", expected)):
            where = _device_of(values[name])
            if device is not None and where is not None and where != _device_name(device):
                row.problem = "; ".join(filter(None, [
                    row.problem, f"{side} is on {where}, the run is on {_device_name(device)}"]))
                row.passed = False
            if name in odd[side]:
                lib, common = odd[side][name]
                row.problem = "; ".join(filter(None, [
                    row.problem, f"{side} is a {lib} value among {common} ones"]))
                row.passed = False
        report.rows.append(row)
    return report


def _device_of(value):
    return _device_name(value.device) if _is_tensor(value) else None


def _device_name(device):
    """'cpu' or 'cuda:N' ('cuda' alone means the current device)."""
    name = str(device)
    if name == "cuda":
        import torch  # only reached when a CUDA run was asked for
        name = f"cuda:{torch.cuda.current_device()}"
    return name


def _lowest_precision(arrays):
    return "float32" if any(arr.dtype == np.float32 for arr, _ in arrays) else "float64"


def assert_gradients_close(actual, expected, **kwargs):
    """``compare_gradients``, raising ``AssertionError`` with the table on failure.

    Returns the report when everything agrees, so callers can print it.
    """
    return compare_gradients(actual, expected, **kwargs).raise_if_failed()
