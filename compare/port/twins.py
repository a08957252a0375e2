"""Twins by name: a NumPy module's functions against its torch port's, pair by pair.

    python -m compare port examples/functions/numpy_functions.py \\
                           examples/functions/torch_functions.py
    python -m compare port numpy_impl.functions torch_impl.functions --json out/twins.json

``check_twins(numpy_module, torch_module, *, dtype="float64", seed=0,
inputs=None)`` (modules, or ``path/to/file.py`` / ``package.module``
specs) returns a ``TwinsReport``: a row per pair, the names found on one
side only, ``passed``, ``to_text()``, ``to_dict()``, ``raise_if_failed()``,
``_repr_html_()`` for a notebook and a one-line ``repr``.

Which functions
---------------
The public functions of a module are the callables it defines itself
(``obj.__module__`` is the module's name: ``np.exp`` or a helper imported
from elsewhere is not one), whose names do not start with ``_``, classes
excluded. A NumPy function and a torch function of the same name are a
pair; the others are listed as "only in numpy" / "only in torch", which
does not fail the check: a NumPy module often has helpers its port does not
need.

Inputs
------
``PARITY_INPUTS``, a dict in the NumPy module, gives the inputs of the
functions that need particular ones; ``inputs=`` (same form) adds to it
and wins where both name a function. An entry is a list of inputs, one per
positional parameter, each an array (float arrays are cast to the run's
dtype, integer ones such as class labels pass as they are), a number, or a
shape (a tuple of ints) to fill with seeded N(0, 1) draws, as
``compare.testing.assert_same_op`` takes them::

    PARITY_INPUTS = {
        "cross_entropy_error": [probabilities, np.array([3, 0, 7, 1])],
        "softmax": [(4, 10)],
        "step_function": {"inputs": [(4, 10)], "grad": False},
    }

or a dict with ``inputs`` and any of ``grad`` (``False``: compare values
only), ``wrt`` (the positions of the inputs to differentiate), ``rtol`` /
``atol`` (replace the analytic tolerance), ``h`` (the central difference's
step) and ``kwargs`` (keyword arguments handed unchanged to both sides, for
an ``axis=1`` that must stay a Python int). An entry for a name the NumPy
module does not define is refused: a typo would otherwise leave the
function on default inputs without a word.

Any other function gets one N(0, 1) array of shape ``(4, 10)`` per
positional parameter without a default (``inspect.signature`` of the NumPy
side), drawn from ``numpy.random.RandomState(seed)`` afresh for each pair.
A function without such parameters is not called: a ``main()`` may train
for an hour; name it in ``PARITY_INPUTS`` (``[]``) to check it anyway.

Outcome of a pair
-----------------
- *not checked* (``status`` "skipped", ``passed`` null): either side raised
  when called with the inputs ("not callable with these inputs: numpy
  raised TypeError: ..."), both returned something that is not an array
  (``None``, a string), or the outputs are NaN on both sides everywhere, so
  nothing was compared. Not a failure, and not a pass either.
- *agree* (``status`` "passed"): the outputs have the same shapes and
  dtypes, and values within the analytic tolerance (``compare.parity``;
  integer and bool outputs exactly); NaN at the same places on both sides,
  and the same infinity at the same places, count as equal and are left out
  (NaN on one side only is a difference). Then, for float outputs, torch
  autograd's gradient of ``sum(output)`` (over the elements left in) is
  compared with the NumPy function's central differences, their truncation
  estimated from a second difference at ``2h`` (Richardson, as
  ``assert_same_op`` does it: no bound on a third derivative is asked).
  A torch output that autograd cannot differentiate is compared as a zero
  gradient: a piecewise-constant function (``relu_grad``) agrees with its
  zero numerical gradient, a detached port of a smooth one does not.
  Integer outputs (``step_function``) are checked forward only, and the
  row says so.
- *differ* (``status`` "failed"): anything else, including a check that
  raised after both calls had worked (torch autograd refusing an in-place
  operation, say), and one side returning an array where the other does not.

``passed`` is true when at least one pair was checked and none differs.
On the command line: exit 0 then, 1 when a pair differs, 2 when no pair
could be checked at all (nothing was compared, so nothing can be claimed),
as for a command that cannot run; the report is printed and written first.

Keep default inputs in mind when reading a pass: N(0, 1) draws are away
from most kinks (``relu`` at 0 by more than ``2h``, with high probability),
but a function that needs probabilities or labels gets NaN or nonsense
from them; that is what ``PARITY_INPUTS`` is for.
"""
import inspect
import math
import types
from dataclasses import dataclass, field

import numpy as np

from ..jsonable import jsonable
from ..parity import default_h, dtype_name, tolerance
from .notebook import twins_html, twins_repr
from .op import _as_outputs, _make_inputs, compare_op
from .targets import PortSetupError, load_module, split_spec

DEFAULT_SHAPE = (4, 10)
OPTIONS = ("inputs", "grad", "wrt", "rtol", "atol", "h", "kwargs")
STATUSES = ("passed", "failed", "skipped")


def public_functions(module):
    """``{name: function}`` for the functions ``module`` defines itself, in definition order."""
    found = {}
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.isclass(obj) or not callable(obj):
            continue
        if getattr(obj, "__module__", None) == module.__name__:
            found[name] = obj
    return found


def resolve_module(module, side):
    """A module object as it is; a ``file.py`` or ``package.module`` spec imported."""
    if isinstance(module, types.ModuleType):
        return module
    if not isinstance(module, str):
        raise PortSetupError(f"{side}: expected a module or 'path/to/file.py' / 'package.module', "
                             f"got {type(module).__name__}")
    module_part, name = split_spec(module)
    if name is not None:
        raise PortSetupError(f"{side}: {module!r} names an object; twins by name take two "
                             f"modules: drop ':{name}'")
    return load_module(module_part, side)


def _entry(name, value, where):
    """One ``PARITY_INPUTS`` entry as a dict of options, or a ``PortSetupError`` saying why not."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(OPTIONS))
        if unknown:
            raise PortSetupError(f"{where}[{name!r}] has unknown keys {unknown}; allowed: "
                                 f"{', '.join(OPTIONS)}")
        if "inputs" not in value:
            raise PortSetupError(f"{where}[{name!r}] needs 'inputs': a list, one input per "
                                 f"positional parameter")
        options = dict(value)
    else:
        options = {"inputs": value}
    inputs = options["inputs"]
    if isinstance(inputs, tuple) and inputs and all(isinstance(n, int) for n in inputs):
        raise PortSetupError(f"{where}[{name!r}] is {inputs!r}, read as {len(inputs)} numbers; "
                             f"for one array of that shape write [{inputs!r}]")
    if not isinstance(inputs, (list, tuple)):
        raise PortSetupError(f"{where}[{name!r}] must be a list of inputs, one per positional "
                             f"parameter, got {type(inputs).__name__}")
    if not isinstance(options.get("kwargs", {}), dict):
        raise PortSetupError(f"{where}[{name!r}]['kwargs'] must be a dict")
    wrt = options.get("wrt")
    if wrt is not None and not (isinstance(wrt, (list, tuple)) and all(
            isinstance(k, int) and 0 <= k < len(inputs) for k in wrt)):
        raise PortSetupError(f"{where}[{name!r}]['wrt'] must list positions among the "
                             f"{len(inputs)} inputs, got {wrt!r}")
    options["inputs"] = list(inputs)
    return options


def _given_inputs(np_module, numpy_functions, inputs):
    given = {}
    for where, table in (("PARITY_INPUTS", getattr(np_module, "PARITY_INPUTS", None)),
                         ("inputs", inputs)):
        if table is None:
            continue
        if not isinstance(table, dict):
            raise PortSetupError(f"{where} must be a dict of function name to inputs, got "
                                 f"{type(table).__name__}")
        for name, value in table.items():
            if name not in numpy_functions:
                raise PortSetupError(f"{where} names {name!r}, which is not a public function "
                                     f"of the NumPy module")
            given[name] = _entry(name, value, where)
    return given


def _default_inputs(fn, shape):
    """One shape per positional parameter without a default, or ``(None, why not)``."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None, "no signature to draw inputs from; give its inputs in PARITY_INPUTS"
    needed = [p for p in params if p.default is p.empty
              and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if not needed:
        return None, ("takes no arguments, so it is not called (it might do anything); "
                      "name it in PARITY_INPUTS with [] to check it")
    return [tuple(shape)] * len(needed), None


# --- one pair -------------------------------------------------------------------------------

@dataclass
class TwinRow:
    """One pair's outcome: ``status`` is "passed", "failed" or "skipped" (not checked)."""
    name: str
    status: str
    reason: str = None
    note: str = None
    inputs: list = field(default_factory=list)
    output: str = None
    forward: object = None   # ParityReport
    backward: object = None  # ParityReport, or None when only the values were compared

    @property
    def passed(self):
        return None if self.status == "skipped" else self.status == "passed"

    def _worst(self, report, key):
        return None if report is None else report.worst(key)

    def to_dict(self):
        def tol(report):
            return None if report is None else {"kind": report.kind, "rtol": report.tolerance.rtol,
                                                "atol": report.tolerance.atol,
                                                "why": report.tolerance.why}
        return {
            "name": self.name, "passed": self.passed, "status": self.status,
            "reason": self.reason, "note": self.note, "inputs": self.inputs,
            "output": self.output,
            "forward_max_abs": self._worst(self.forward, "max_abs"),
            "forward_max_rel": self._worst(self.forward, "max_rel"),
            "backward_max_abs": self._worst(self.backward, "max_abs"),
            "backward_max_rel": self._worst(self.backward, "max_rel"),
            "tolerance": {"forward": tol(self.forward), "backward": tol(self.backward)},
            "forward": None if self.forward is None else self.forward.to_dict(),
            "backward": None if self.backward is None else self.backward.to_dict(),
        }


def _describe(value):
    from ..parity import to_numpy
    arr = to_numpy(value)
    return f"{tuple(arr.shape)} {arr.dtype.name}"


def _short(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}{'...' if len(text) > 200 else ''}"


def _is_numeric(value):
    return isinstance(value, (np.ndarray, np.generic, int, float, bool))


def _numpy_outputs(out):
    """The NumPy side's outputs as arrays (a Python float or bool as a 0-d array)."""
    values = _as_outputs(out)
    return [np.asarray(v) if _is_numeric(v) else v for v in values]


def _kind(value, torch):
    if isinstance(value, torch.Tensor):
        return "a tensor"
    if isinstance(value, np.ndarray):
        return "a NumPy array"
    return type(value).__name__


def _check_pair(name, np_fn, t_fn, options, *, dtype, seed, device):
    import torch

    inputs, kwargs = options["inputs"], options.get("kwargs") or {}
    np_in = _make_inputs(inputs, dtype, seed)
    row = TwinRow(name, "skipped", inputs=[_describe(a) for a in np_in])
    failures = []
    np_out = t_out = None
    try:
        np_out = _numpy_outputs(np_fn(*[a.copy() for a in np_in], **kwargs))
    except Exception as exc:
        failures.append(f"numpy raised {_short(exc)}")
    try:
        with torch.no_grad():
            t_out = _as_outputs(t_fn(*[torch.from_numpy(a.copy()).to(device) for a in np_in],
                                     **kwargs))
    except Exception as exc:
        failures.append(f"torch raised {_short(exc)}")
    if failures:
        row.reason = "not callable with these inputs: " + "; ".join(failures)
        return row

    np_ok = all(isinstance(v, np.ndarray) for v in np_out)
    t_ok = all(isinstance(v, torch.Tensor) for v in t_out)
    kinds = (f"numpy returned {', '.join(_kind(v, torch) for v in np_out)}, torch "
             f"{', '.join(_kind(v, torch) for v in t_out)}")
    if not np_ok and not t_ok:
        row.reason = f"nothing to compare: {kinds}"
        return row
    if not np_ok or not t_ok:
        row.status, row.reason = "failed", kinds
        return row
    row.output = ", ".join(_describe(v) for v in t_out)

    def numpy_side(*args):
        return _numpy_outputs(np_fn(*args, **kwargs))

    def torch_side(*args):
        return t_fn(*args, **kwargs)

    grad = options.get("grad", True)
    try:
        result = compare_op(numpy_side, torch_side, inputs, grad=grad, wrt=options.get("wrt"),
                            dtype=dtype, device=device, rtol=options.get("rtol"),
                            atol=options.get("atol"), h=options.get("h"), seed=seed, label=name,
                            equal_nan=True, detached="zero")
    except Exception as exc:
        row.status, row.reason = "failed", f"the check raised {_short(exc)}"
        return row
    if result.size and result.nonfinite_equal == result.size:
        row.reason = ("nothing to compare: the outputs are NaN (or infinite) everywhere on both "
                      "sides with these inputs")
        return row
    row.forward, row.backward = result.forward, result.backward
    notes = []
    if result.nonfinite_equal:
        notes.append(f"{result.nonfinite_equal} of {result.size} output elements NaN or infinite "
                     f"at the same places on both sides, left out")
    if result.backward is None:
        why = {"integer outputs: no gradient": "integer output"}.get(result.backward_note,
                                                                     result.backward_note)
        notes.append(f"forward only: {why}")
    elif result.backward.note and "detached" in result.backward.note:
        notes.append("torch output not differentiable by autograd: compared as a zero gradient")
    elif result.backward.note:
        notes.append("NaN in torch's gradient where NumPy's is 0, taken as 0")
    row.note = "; ".join(notes) or None
    if result.passed:
        row.status = "passed"
        return row
    row.status = "failed"
    problems = [result.problem] if result.problem else []
    for phase, report in (("forward", result.forward), ("backward", result.backward)):
        if report is not None and not report.passed:
            problems.append(f"{phase}: " + "; ".join(f"{r.name}: {r.problem}" for r in report.rows
                                                     if not r.passed))
    row.reason = "; ".join(problems)
    return row


# --- the report -----------------------------------------------------------------------------

@dataclass
class TwinsReport:
    """Every pair's row, the names on one side only, and the verdict."""
    rows: list = field(default_factory=list)
    only_numpy: list = field(default_factory=list)
    only_torch: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def _with(self, status):
        return [r for r in self.rows if r.status == status]

    @property
    def checked(self):
        return [r for r in self.rows if r.status != "skipped"]

    @property
    def nothing_checked(self):
        return not self.checked

    @property
    def passed(self):
        return bool(self.checked) and not self._with("failed")

    def verdict(self):
        agree, differ, skipped = (len(self._with(s)) for s in STATUSES)
        counts = (f"{agree} pair{'s' * (agree != 1)} agree, {skipped} not checked, "
                  f"{differ} differ")
        one_side = len(self.only_numpy) + len(self.only_torch)
        extra = f"; {one_side} name{'s' * (one_side != 1)} on one side only" if one_side else ""
        if self.nothing_checked:
            what = (f"none of the {len(self.rows)} pairs could be checked" if self.rows else
                    "no function is defined in both modules")
            return f"NOT CHECKED: {what}{extra}"
        if self.passed:
            return f"PASS: {counts}{extra}"
        names = ", ".join(r.name for r in self._with("failed"))
        return f"FAIL: {counts} ({names}){extra}"

    def to_text(self):
        s = self.settings
        dtype = s.get("dtype", "float64")
        h = default_h(dtype)
        tol = tolerance("analytic", dtype)
        lines = [(f"twins by name: {s.get('numpy', 'numpy')} vs {s.get('torch', 'torch')} "
                  f"[{dtype}, seed {s.get('seed', 0)}; default inputs N(0, 1) of shape "
                  f"{s.get('shape', DEFAULT_SHAPE)} per positional parameter]"),
                 (f"forward: torch vs numpy [analytic: {tol}; integer outputs exactly]; backward: "
                  f"torch autograd vs numpy central differences, gradient of sum(output) "
                  f"[h={h:g}, truncation estimated from D(2h) - D(h)]")]
        head = ["name", "inputs", "output", "fwd max abs", "fwd max rel", "bwd max abs",
                "bwd max rel", "verdict"]
        body = []
        for r in self.rows:
            verdict = {"passed": "ok", "failed": f"FAIL: {r.reason}",
                       "skipped": f"not checked: {r.reason}"}[r.status]
            if r.note and r.status != "skipped":
                verdict += f" ({r.note})"
            body.append([r.name, "; ".join(r.inputs) or "-", r.output or "-",
                         _g(r._worst(r.forward, "max_abs")), _g(r._worst(r.forward, "max_rel")),
                         _g(r._worst(r.backward, "max_abs")), _g(r._worst(r.backward, "max_rel")),
                         verdict])
        widths = [max([len(col)] + [len(b[k]) for b in body]) for k, col in enumerate(head)]

        def fmt(cells):
            return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()
        lines += [fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body]
        lines.append("only in numpy: " + (", ".join(self.only_numpy) or "-"))
        lines.append("only in torch: " + (", ".join(self.only_torch) or "-"))
        lines.append(self.verdict())
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self):
        return twins_repr(self)

    def _repr_html_(self):
        return twins_html(self)

    def to_dict(self):
        return jsonable({
            "passed": self.passed,
            "pairs": [r.to_dict() for r in self.rows],
            "only_numpy": list(self.only_numpy),
            "only_torch": list(self.only_torch),
            "counts": {s: len(self._with(s)) for s in STATUSES},
            "verdict": self.verdict(),
            "settings": self.settings,
        })

    def raise_if_failed(self):
        if not self.passed:
            # the verdict first: the first line is all pytest's short summary shows
            raise AssertionError(f"{self.verdict()}\n\n{self.to_text()}")
        return self


def _g(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "0" if value == 0 else f"{value:.3g}"


def check_twins(numpy_module, torch_module, *, dtype="float64", seed=0, inputs=None,
                shape=DEFAULT_SHAPE, device="cpu"):
    """Pair the two modules' public functions by name and compare each pair (see the module
    docstring); returns a ``TwinsReport``. ``PortSetupError`` when a module cannot be loaded
    or an input entry is malformed."""
    name = dtype_name(dtype)
    np_module = resolve_module(numpy_module, "numpy side")
    t_module = resolve_module(torch_module, "torch side")
    np_funcs, t_funcs = public_functions(np_module), public_functions(t_module)
    given = _given_inputs(np_module, np_funcs, inputs)
    report = TwinsReport(only_numpy=[n for n in np_funcs if n not in t_funcs],
                         only_torch=[n for n in t_funcs if n not in np_funcs],
                         settings={"numpy": _spec_text(numpy_module), "torch": _spec_text(torch_module),
                                   "dtype": name, "seed": seed, "shape": tuple(shape),
                                   "device": str(device)})
    with np.errstate(all="ignore"):  # NaN from log(-1) on purpose is no news
        for fname, np_fn in np_funcs.items():
            if fname not in t_funcs:
                continue
            options = given.get(fname)
            if options is None:
                drawn, why = _default_inputs(np_fn, shape)
                if drawn is None:
                    report.rows.append(TwinRow(fname, "skipped", reason=why))
                    continue
                options = {"inputs": drawn}
            report.rows.append(_check_pair(fname, np_fn, t_funcs[fname], options, dtype=name,
                                           seed=seed, device=device))
    return report


def _spec_text(module):
    return module.__name__ if isinstance(module, types.ModuleType) else str(module)


def wants_twins(numpy_spec, torch_spec):
    """Whether a ``port`` command compares two modules twin by twin (neither names an object);
    ``PortSetupError`` when one side names an object and the other does not."""
    from .reference import is_golden_path
    if is_golden_path(numpy_spec):
        return False
    np_name, t_name = split_spec(numpy_spec)[1], split_spec(torch_spec)[1]
    if (np_name is None) == (t_name is None):
        return np_name is None
    plain, named = (("numpy side", numpy_spec), ("torch side", torch_spec)) if np_name is None \
        else (("torch side", torch_spec), ("numpy side", numpy_spec))
    raise PortSetupError(f"{plain[0]}: {plain[1]!r} names no model, while the {named[0]} names one "
                         f"({named[1]}): give both as file.py:NAME to compare models, or both as "
                         f"modules without :NAME to compare their functions twin by twin")
