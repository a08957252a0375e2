"""Phase 5, verdict and diagnosis: the first row out of tolerance is the *first mismatch*;
the usual porting bugs are tested against it.

Where the NumPy backprop is the wrong side (``reference_gradient``), its finding
is the diagnosis (``numpy_gradient``, the first mismatch at the first of its
parameters' rows) and no porting bug is tested against the port. Otherwise,
three kinds of evidence: a torch parameter autograd never reaches (``unused``);
counterfactuals, the NumPy layer where the forward parts rerun with a usual
bug applied to one of its parameters; and the general hypotheses of
``compare.port.diagnosis`` on the two arrays (with the known differences'
hints; at the loss, also against the NumPy loss without the eps in its log where the
torch loss is of no eps family). A forward mismatch is also located: inside the torch module, or
before it, between modules.
"""
from dataclasses import replace

import numpy as np

from .. import known
from ..capture import forward_output
from ..diagnosis import diagnose
from ..layers import Site, numpy_kind, torch_kind
from ..layers.dropout import pass_traps
from ..layers.attention import pass_traps as attention_traps
from ..layers.recurrent import pass_traps as recurrent_traps
from ..layers.softmax_loss import mask_trap
from ..pairing import numpy_layout
from ..tolerance import port_tolerance, within
from ..torch_side import to_numpy
from ..trace import OUT_IN, layout_text
from ..unit_axes import as_shape
from ..known.log_eps import eps_text
from .concat_order import concat_order_trap
from .kernel_order import kernel_order_traps
from .modes import mode_trap
from .residual import between_layers
from .output_head import axis_on_pass, numpy_loss_without_eps, traps as output_head_traps
from .state import np_layer, pairing_trap, settings_differences, settings_text
from .unjudged import leave_unjudged
from .verify import unexplained, verified


def verdict(run):
    report = run.report
    leave_unjudged(run)
    report.passed = all(c.passed for c in report.checks)
    first = next((c for c in report.checks if not c.passed), None)
    if first is None:
        return report
    wrong = getattr(run, "reference_wrong", None)
    if wrong is not None:  # the NumPy backprop parts from its own loss
        first = wrong.row
    report.first_mismatch = {"phase": first.phase, "where": first.where, "torch": first.torch,
                             "step": first.step, "max_abs": first.max_abs, "max_rel": first.max_rel}
    ctx = run.context.get(id(first), {})
    if wrong is not None:
        report.diagnosis = list(wrong.entries)
    else:
        report.diagnosis, rejected = _diagnose(run, first, ctx)
        output_row = ctx.get("output_row")
        # a step the port leaves out (said in the detail) explains the output: no factor
        # fitted on it is the bug
        if not report.diagnosis and output_row is not None and not ctx.get("skipped"):
            # a layer located from inside with no trap of its own: the hypotheses on the
            # whole output (a mode, a head) may still name what made it part
            report.diagnosis, more = _diagnose(run, output_row, run.context.get(id(output_row), {}))
            rejected += more
        if not report.diagnosis:
            report.first_mismatch["unexplained"] = unexplained(first, rejected)
    made = f"{first.where} is made at {ctx['made']}" if "made" in ctx else None
    detail = "; ".join(filter(None, [made, ctx.get("skipped"), _locate_forward(run, first, ctx),
                                     _settings(run, ctx)]))
    if detail:
        report.first_mismatch["detail"] = detail
    return report


def _records(run, ctx):
    """The two recorded layer calls of a forward row (either mode's pass)."""
    if "np_record" in ctx:
        return ctx["np_record"], ctx["t_record"]
    if "np_index" not in ctx:
        return None, None
    return run.np_capture.records[ctx["np_index"]], run.t_capture.records[ctx["t_index"]]


def site_of(run, ctx, row):
    """The paired layer a row compares, for its kind's traps."""
    a, b = _records(run, ctx)
    if a is None:
        return None, None
    kind = numpy_kind(a.kind) or torch_kind(b.kind)
    if kind is None:
        return None, None
    tol = port_tolerance(ctx.get("actual", b.output), run.dtype)
    site = Site(a, b, np_layer(run.np, a.key), run.torch.layer_of(b.key), mode=ctx.get("mode", "train"),
                dtype=run.dtype, rtol=tol.rtol, atol=tol.atol, what=ctx.get("what", "output"),
                tape=getattr(run.np, "tape", None),
                torch_buffers=getattr(run, "torch_buffers_at_forward", None),
                torch_params={n: np.asarray(to_numpy(p), np.float64) for n, p in run.torch.params.items()})
    for key, value in ctx.get("site", {}).items():
        setattr(site, key, value)
    return kind, site


def _traps(run, row, ctx):
    kind, site = site_of(run, ctx, row)
    if kind is None:
        return []
    try:
        return kind.traps(site)
    except Exception:  # a trap that cannot be tested on these records says nothing
        return []


def _skip_traps(run, row, ctx):
    """A skip connection forgotten or added between two layers of a model with layers (rows
    read from inside test it where they pair: ``inside_traps``)."""
    if row.phase != "forward" or "inside_traps" in ctx or ctx.get("what", "output") != "output":
        return []
    a, b = _records(run, ctx)
    if a is None or b is None:
        return []
    try:
        return between_layers(run, a, b, ctx.get("np_records", run.np_capture.records))
    except Exception:  # a rerun these records cannot take says nothing
        return []


def _settings(run, ctx):
    """The settings both sides hold (stride, padding, eps, momentum, p) that differ."""
    differ = settings_differences(run.np, run.torch, run.tx)
    return settings_text(differ) if differ else None


def blocked_verdict(run):
    """A check stopped at the pairing by a kind's trap: its row, its diagnosis."""
    row, found, why = run.blocked
    run.add(row)
    report = run.report
    report.passed = False
    report.first_mismatch = {"phase": row.phase, "where": row.where, "torch": row.torch,
                             "step": None, "max_abs": row.max_abs, "max_rel": row.max_rel,
                             "detail": _blocked_detail(row, why)}
    report.diagnosis = [{k: v for k, v in d.items() if k != "problem"} for d in found]
    return report


def _blocked_detail(row, why):
    if row.phase == "parameters":
        return f"the parameters cannot pair ({why})"
    return f"the port's forward pass cannot run on the NumPy parameters: it computes something else ({why})"


def _diagnose(run, row, ctx):
    found = []
    for name in sorted(run.unused_torch, key=list(run.twin).index):
        # an unused parameter explains a forward mismatch as well as its own gradient
        if row.phase != "backward" or ctx.get("param") == name:
            found.append({"code": "unused", "parameter": name,
                          "text": f"the torch loss does not reach {run.twin[name]} (autograd "
                                  f"gives it no gradient): the port never uses it"})
    # a double softmax, where it fits, explains the loss and the gradients, and a softmax
    # over the wrong axis the output: no other hypothesis is left anything to explain
    traps, rejected = output_head_traps(run, row, ctx), []
    counterfactuals = _counterfactuals(run, row, ctx)
    if not traps:
        # each hypothesis applied to the rest of what was measured (loss, gradients): one
        # that does not reproduce it is dropped, with the reason
        traps, rejected = verified(run, row, ctx, list(ctx.get("inside_traps", ())) + _traps(run, row, ctx)
                                    + _skip_traps(run, row, ctx) + known.traps(run, row, ctx)
                                    + mode_trap(run, row, ctx))
        if not traps and not counterfactuals:
            # no layer row, or nothing at it (a row seen from inside has no layer object to
            # rerun): the bug may lie between the rows (a square weight used transposed in an
            # inline step no layer holds); each hypothesis is applied to the whole pass,
            # verified as it is found
            traps = _pass_traps(run)
        if not traps:  # a kernel paired by a shape that fits two orders: the values decide
            traps = kernel_order_traps(run)
        if row.phase == "forward" and not traps:
            traps = _setting_traps(run)  # reruns the layer with the NumPy setting
    found += traps + counterfactuals
    expected, actual = ctx.get("expected"), ctx.get("actual")
    if expected is not None:
        actual = as_shape(actual, np.shape(expected))
    # a kind's trap names the bug; the general hypotheses would only restate its arithmetic
    if expected is not None and actual is not None and not traps and ctx.get("what", "output") == "output" \
            and not ctx.get("skipped"):
        general = []
        for d in diagnose(np.asarray(expected), np.asarray(actual), dtype=run.dtype,
                          batch_size=int(run.x.shape[0]), inputs=ctx.get("inputs"),
                          known=ctx.get("known"),
                          scales=run.loss_scales if row.phase in ("loss", "backward") else None):
            general.append(d)
        general, dropped = verified(run, row, ctx, general)
        if row.phase == "loss" and not general:
            general, more = _factor_without_numpy_eps(run, row, ctx, actual)
            dropped += more
        found += general
        rejected += dropped
    unique = []
    for d in found:  # one entry per bug: the general test adds nothing to a named parameter's
        same = [u for u in unique if u["code"] == d["code"]]
        if not same or (d.get("parameter") and all(u.get("parameter") not in (None, d["parameter"])
                                                    for u in same)):
            unique.append(d)
    return unique, rejected


def _factor_without_numpy_eps(run, row, ctx, actual):
    """A factor between the losses (their reductions) where the NumPy loss also holds an eps in
    its log that the torch loss's family does not: tested on the NumPy loss with the eps taken
    off, and verified on the gradients as any factor is."""
    try:
        without = numpy_loss_without_eps(run)
    except Exception:  # a hypothesis that cannot be computed on these outputs says nothing
        return [], []
    if without is None:
        return [], []
    value, eps, variant = without
    found = [d for d in diagnose(np.asarray(value), np.asarray(actual), dtype=run.dtype,
                                 batch_size=int(run.x.shape[0]), scales=run.loss_scales)
             if d["code"] in ("scale", "sign")]
    where = "both logs" if variant == "both" else "its log"
    for d in found:
        d["text"] += (f" (against the NumPy loss without the eps of {eps_text(eps)} inside {where}, "
                      f"{value:.6g}: the eps fitted from the NumPy loss and checked to give it)")
        d["eps"] = eps
    return verified(run, row, ctx, found)


def _pass_traps(run):
    """The hypotheses tested on the port's whole pass (dropout drawn inline, a softmax over
    the batch axis): named where the fix, applied, reproduces the NumPy loss (with the known
    differences added) and, where there is one, its gradient."""
    if getattr(run.np, "tape", None) is None:
        return []
    chosen = "gradient" if run.torch.has_gradient else run.torch.loss_name

    def rerun():
        return run.torch.outputs(run.tx, run.tt), run.torch.recorded_pass(run.tx, run.tt, chosen)[1]

    def reproduces(out, grads, pairing=run.pairing):
        return _reproduced(run, out, grads, pairing)
    missed = len(run.np.tape.missed)
    try:
        # the port's own loss: the hypotheses on its scores have nothing to act on
        on_scores = run.torch.loss_name != "model"
        return ((on_scores and (pass_traps(run.np.tape, rerun, reproduces)
                                or axis_on_pass(rerun, reproduces)
                                or _transposed_on_pass(run, rerun, reproduces)))
                or recurrent_traps(run, rerun, reproduces) or attention_traps(run, rerun, reproduces)
                or concat_order_trap(run, rerun, reproduces) or mask_trap(run, reproduces))
    finally:
        del run.np.tape.missed[missed:]  # the hypotheses' passes are no part of the check


class _Rerun:
    """The run as the hypothesis's pass leaves it: its outputs and pairing, the rest the run's."""

    def __init__(self, run, out, pairing):
        self._run, self.out, self.pairing = run, out, pairing

    def __getattr__(self, name):
        return getattr(self._run, name)


def _reproduced(run, out, grads, pairing):
    """The port's pass with a hypothesis applied (``out``, its gradients ``grads``) gives the
    NumPy loss and gradients, with the known differences found again on that pass (an eps in
    the NumPy log is fitted on the port's output, which the hypothesis changed)."""
    found = known.at_loss(run.np_loss, out, run.torch.loss_name, run.dtype,
                          {"params": run.np.params, "decays": run.decays})
    shift, _ = found.shift("loss")
    expected = np.asarray(run.np_loss, np.float64) + (0.0 if shift is None else shift)
    if not within(expected, out["loss"], run.dtype):
        return False
    if run.np_grads is None:
        return True
    grads = numpy_layout(pairing, grads)
    if any(grads.get(name) is None for name in run.np_grads):
        return False
    numerical = run.numpy_gradient == "numerical" or (
        run.numpy_gradient == "auto" and not run.np.has_gradient)
    back = known.at_backward(_Rerun(run, out, pairing), grads, numerical)
    for name in run.np_grads:
        shift, _ = back.shift(("param", name))
        expected = np.asarray(run.np_grads[name], np.float64) + (0.0 if shift is None else shift)
        if not within(expected, grads[name], run.dtype):
            return False
    return True


def _transposed_on_pass(run, rerun, reproduces):
    """A square weight the port uses transposed, where no layer row holds it: each square
    weight loaded into the port transposed in turn, named where the port's pass then gives the
    NumPy loss and gradients (its gradient read back in the same layout)."""
    found, saved = [], run.torch.buffer_values()
    try:
        for pair in run.pairing:
            shape = np.shape(run.np.params[pair.numpy])
            if pair.permute is not None or len(shape) != 2 or shape[0] != shape[1]:
                continue
            pairing = [replace(p, transposed=not p.transposed) if p is pair else p
                       for p in run.pairing]
            run.torch.load(pairing, run.np.params)
            try:
                loss, grads = rerun()
            except Exception:  # a pass that cannot be rerun so says nothing
                continue
            if reproduces(loss, grads, pairing):
                # the traced call that uses it, where there is one: the line of the port to change
                how = next(filter(None, (layout_text(r, pair.torch, pair.numpy, pair.transposed)
                                         for r in getattr(run.t_capture, "records", ()))), None)
                found.append({"code": "transpose", "parameter": pair.numpy,
                              "text": f"the port computes with {pair.torch} transposed: a square "
                                      f"weight used without its transpose (with {pair.numpy} "
                                      f"loaded into {pair.torch} transposed, the port's pass gives "
                                      f"the NumPy loss and gradients); "
                                      + (how or "use it in the forward pass in the layout it is "
                                                "held in")})
    finally:
        run.torch.load(run.pairing, run.np.params)
        run.torch.load_buffers(saved)
    return found


def _setting_traps(run):
    """A layer whose setting differs (a convolution's padding) where the port's layer with
    the NumPy setting reproduces the NumPy layer: its shape may have kept the rows from
    pairing, so it is tested on its own."""
    found = pairing_trap(run.np, run.torch, x=run.tx)
    return [] if found is None else [{k: v for k, v in found[1].items() if k != "problem"}]


def _counterfactuals(run, row, ctx):
    """Rerun the NumPy layer where the forward parts, on its own recorded input, with a
    usual bug applied to one of its parameters (in place, restored bit for bit): a
    square weight transposed, a parameter left out (zeroed). A bug that reproduces the
    torch output is the port's."""
    rec, _ = _records(run, ctx)
    if row.phase != "forward" or rec is None or ctx.get("what", "output") != "output":
        return []
    layer = np_layer(run.np, rec.key)
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
                out = forward_output(layer, rec.input.copy())
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
    a, b = _records(run, ctx)
    if row.phase != "forward" or a is None or ctx.get("what", "output") != "output":
        return None
    if a.input is None or b.input is None or a.input.shape != b.input.shape:
        return None
    tol = port_tolerance(a.input, run.dtype)
    if np.all(np.abs(a.input - b.input) <= tol.atol + tol.rtol * np.abs(a.input)):
        state = _initial_state(run, a, b)
        if state is not None:
            return state
        return (f"{b.key} receives the same input as {a.key}: the difference arises inside "
                f"{b.key}")
    text = (f"{b.key}'s input already differs from {a.key}'s: the difference arises between "
            f"modules, in a functional call no hook sees")
    np_recs = ctx.get("np_records", run.np_capture.records)
    earlier = np_recs[:next(k for k, r in enumerate(np_recs) if r is a)]
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


def _initial_state(run, a, b):
    """A recurrent layer handed the same input but another initial state: where it differs,
    the difference arises before the layer, in the state it is given; where the port hands
    one the NumPy record does not hold, that it was not compared."""
    if getattr(b, "state", None) is None:
        return None
    if getattr(a, "state", None) is None:
        return (f"{b.key} receives the same input as {a.key} (its initial state is not "
                f"compared: the NumPy record holds none): the difference arises inside "
                f"{b.key} or in that state")
    expected = np.asarray(a.state, np.float64)
    if within(expected, b.state, run.dtype):
        return None
    actual = np.asarray(as_shape(np.asarray(b.state, np.float64), expected.shape))
    if not getattr(b, "state_given", True):
        given = "no initial hidden state (torch's default, zeros)"
    else:
        zero = " (all zero)" if actual.shape == expected.shape and not np.any(actual) else ""
        given = f"another initial hidden state{zero}"
    return (f"{b.key} receives the same input as {a.key} but {given}: the difference arises "
            f"before {b.key}, in the h0 it is handed (the NumPy h0 of {a.key} holds "
            f"{_sample(expected)})")


def _sample(values):
    flat = np.ravel(values)
    shown = ", ".join(f"{v:.4g}" for v in flat[:3])
    return f"[{shown}{', ...' if flat.size > 3 else ''}]"


def _layout_hint(run, ctx, name):
    """How a functional call of the port uses the twin of weight ``name``, when that is
    not how the twin holds it: the line of the port to change."""
    traced = ctx.get("t_record")
    if traced is None and "t_index" in ctx:
        traced = run.t_capture.records[ctx["t_index"]]
    pair = next((p for p in run.pairing if p.numpy == name), None)
    if traced is None or pair is None:
        return None
    if getattr(run.np, "layout", None) == "features-first" and not pair.transposed:
        # the NumPy W is (out, in) itself: held as it is, it is held as nn.Linear holds one
        used = getattr(traced, "layouts", {}).get(pair.torch)
        if used is None or used == OUT_IN:
            return None
        return (f"{traced.key} uses {pair.torch} as an {used} matrix, but it holds {name} as it "
                f"is, {OUT_IN} (features first, Z = W A + b): write x @ {pair.torch}.T, or "
                f"F.linear(x, {pair.torch}, bias)")
    return layout_text(traced, pair.torch, name, pair.transposed)
