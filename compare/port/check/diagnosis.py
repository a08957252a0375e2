"""Phase 5, verdict and diagnosis: the first row out of tolerance is the *first mismatch*;
the usual porting bugs are tested against it.

Three kinds of evidence: a torch parameter autograd never reaches (``unused``);
counterfactuals, the NumPy layer where the forward parts rerun with a usual
bug applied to one of its parameters; and the general hypotheses of
``compare.port.diagnosis`` on the two arrays (with the known differences'
hints). A forward mismatch is also located: inside the torch module, or
before it, between modules.
"""
import numpy as np

from ..diagnosis import diagnose
from ..tolerance import port_tolerance
from ..trace import layout_text


def verdict(run):
    report = run.report
    report.passed = all(c.passed for c in report.checks)
    first = next((c for c in report.checks if not c.passed), None)
    if first is None:
        return report
    report.first_mismatch = {"phase": first.phase, "where": first.where, "torch": first.torch,
                             "step": first.step, "max_abs": first.max_abs, "max_rel": first.max_rel}
    ctx = run.context.get(id(first), {})
    report.diagnosis = _diagnose(run, first, ctx)
    detail = _locate_forward(run, first, ctx)
    if detail:
        report.first_mismatch["detail"] = detail
    return report


def _diagnose(run, row, ctx):
    found = []
    for name in sorted(run.unused_torch, key=list(run.twin).index):
        # an unused parameter explains a forward mismatch as well as its own gradient
        if row.phase != "backward" or ctx.get("param") == name:
            found.append({"code": "unused", "parameter": name,
                          "text": f"the torch loss does not reach {run.twin[name]} (autograd "
                                  f"gives it no gradient): the port never uses it"})
    found += _counterfactuals(run, row, ctx)
    expected, actual = ctx.get("expected"), ctx.get("actual")
    if expected is not None and actual is not None:
        for d in diagnose(np.asarray(expected), np.asarray(actual), dtype=run.dtype,
                          batch_size=int(run.x.shape[0]), inputs=ctx.get("inputs"),
                          known=ctx.get("known")):
            found.append(d)
    unique = []
    for d in found:  # one entry per bug: the general test adds nothing to a named parameter's
        same = [u for u in unique if u["code"] == d["code"]]
        if not same or (d.get("parameter") and all(u.get("parameter") not in (None, d["parameter"])
                                                    for u in same)):
            unique.append(d)
    return unique


def _counterfactuals(run, row, ctx):
    """Rerun the NumPy layer where the forward parts, on its own recorded input, with a
    usual bug applied to one of its parameters (in place, restored bit for bit): a
    square weight transposed, a parameter left out (zeroed). A bug that reproduces the
    torch output is the port's."""
    if row.phase != "forward" or "np_index" not in ctx:
        return []
    rec = run.np_capture.records[ctx["np_index"]]
    layer = dict(run.np.items).get(rec.key)
    if layer is None or rec.input is None:
        return []
    actual = np.asarray(ctx["actual"], dtype=np.float64)
    tol = port_tolerance(ctx["actual"], run.dtype)
    found = []
    for name in rec.param_names:
        value = run.np.params[name]
        trials = []
        if value.ndim == 2 and value.shape[0] == value.shape[1]:
            how = _layout_hint(run, ctx, name)
            trials.append(("transpose", value.T.copy(),
                           f"{row.torch} computes {rec.key} with {name} transposed: a square "
                           f"weight used without its transpose (torch {run.twin[name]})"
                           + (f"; {how}" if how else "")))
        if np.any(value != 0):
            trials.append(("unused", np.zeros_like(value),
                           f"{row.torch} computes {rec.key} as if {name} were zero: the port "
                           f"never uses {run.twin[name]}"))
        for code, replacement, text in trials:
            saved = value.copy()
            try:
                value[...] = replacement
                out = layer.forward(rec.input.copy())
            except Exception:
                continue
            finally:
                value[...] = saved
            out = np.asarray(out, dtype=np.float64)
            if out.shape == actual.shape and np.all(
                    np.abs(out - actual) <= tol.atol + tol.rtol * np.abs(actual)):
                found.append({"code": code, "text": text, "parameter": name})
    return found


def _locate_forward(run, row, ctx):
    """Where a forward mismatch starts: at the torch module itself, or before it,
    in a functional call between modules (a skipped or extra operation)."""
    if row.phase != "forward" or "t_index" not in ctx:
        return None
    a = run.np_capture.records[ctx["np_index"]]
    b = run.t_capture.records[ctx["t_index"]]
    if a.input is None or b.input is None or a.input.shape != b.input.shape:
        return None
    tol = port_tolerance(a.input, run.dtype)
    if np.all(np.abs(a.input - b.input) <= tol.atol + tol.rtol * np.abs(a.input)):
        return (f"{b.key} receives the same input as {a.key}: the difference arises inside "
                f"{b.key}")
    text = (f"{b.key}'s input already differs from {a.key}'s: the difference arises between "
            f"modules, in a functional call no hook sees")
    earlier = run.np_capture.records[:ctx["np_index"]]
    for k in range(len(earlier) - 1, -1, -1):
        r = earlier[k]
        if r.output is not None and r.output.shape == b.input.shape and np.all(
                np.abs(r.output - b.input) <= tol.atol + tol.rtol * np.abs(r.output)):
            skipped = [e.key for e in earlier[k + 1:]]
            if skipped:
                text += (f"; it equals the output of {r.key}, so the port skips "
                         f"{', '.join(skipped)}")
            break
    return text


def _layout_hint(run, ctx, name):
    """How a functional call of the port uses the twin of weight ``name``, when that is
    not how the twin holds it: the line of the port to change."""
    traced = ctx.get("t_record")
    if traced is None and "t_index" in ctx:
        traced = run.t_capture.records[ctx["t_index"]]
    pair = next((p for p in run.pairing if p.numpy == name), None)
    if traced is None or pair is None:
        return None
    return layout_text(traced, pair.torch, name, pair.transposed)
