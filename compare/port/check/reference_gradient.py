"""The NumPy backprop against its own loss: where the reference is the wrong side.

A learner's NumPy backward can be wrong for their own loss: a penalty
``0.5 * lam * sum(W**2)`` in the loss whose ``lam * W`` the backward forgets,
a loss that is a mean with the gradient of the sum. The port's autograd is then
right for the NumPy loss and parts from the NumPy backprop, and the usual
porting bugs, tested on the two arrays, would blame the port.

So where the first row out of tolerance is a backward one (a passing check, or
one that parts earlier, costs nothing), the parameters whose rows failed are
taken again against central differences of the NumPy ``loss``, along the
directions the loss-only check draws (``compare.port.numerical``, the same
seed, ``locate="none"``: ``4 x directions`` evaluations per parameter and
check, no element search; a direction through a kink at the point is not
judged, so a ReLU or a max-pool tie never makes a right backward look wrong;
a direction that crosses kinks near the point and no smaller step resolves
fails, and then clears no port). float32's step of 1e-2 crosses such kinks
often, so a float32 run takes the differences of a float64 copy of the NumPy
side (the same point exactly, checked to give the run's loss and to compute
in float64, ``_loss_side``) at float64's step, each claim keeping the
round-off bound of the float32 it was computed in:

1. the port's gradient, as the NumPy loss's: the known differences of known
   sign put back (the ``lam * W`` the port's optimizer adds at the step), and
   the book's 1e-7 (hinted at the row, ``Known.hints``: ``book -
   cross_entropy`` through the port) as far as the loss phase found the NumPy
   loss to hold it beyond the port's. Nothing is allowed beyond round-off and
   truncation. Where the port parts from the NumPy loss, it is (also) wrong:
   the check stops, and the diagnosis goes on as usual (the usual case, one
   check). The port's gap is a measure of the NumPy side's only where the port
   computes the NumPy loss, so the NumPy side comes second;
2. the NumPy backprop. The 1e-7 parts a right loss from a right backward
   (``-log(y + 1e-7)`` in the loss, ``y - t`` in the backward): the claim is
   centred between the backprop and the backprop plus the gap, with half the
   gap allowed along each direction and named, so one check admits exactly a
   backward with or without it.

Where the NumPy backprop fails for every parameter whose row failed, the NumPy
side is the wrong one: ``numpy_gradient`` is named with those parameters and
what was measured; the port's rows keep their comparison (parity does not
hold: the verdict is a FAIL, exit 1, for the user has a backward to fix before
the two can be trained side by side), each with a note that the port agrees
with the NumPy loss, and no porting bug is tested against them. The first
mismatch is the first of those parameters' rows.

Where the first row out of tolerance is the loss and every gradient row
agrees, the NumPy loss may hold ``0.5 * lam * sum(W**2)`` that the port left
out and the NumPy backward forgot: with ``lam`` fitted from the two losses
(with and without the hinted 1e-7), the weights' backprop must part from the
NumPy loss and the backprop plus ``lam * W`` agree with it. Then both are
named, ``numpy_gradient`` and ``weight_decay``: the two fixes together
reproduce the losses and the gradients.

The elementwise look of the NumPy error is then read off the two arrays, the
port's gradient standing for the loss's: a factor (``N`` for a missing ``/ N``)
or a missing ``lambda * W``, each said only where it reproduces the NumPy
gradient within the row's own tolerance.
"""
from dataclasses import dataclass

import numpy as np

from ..copying import deep_copy
from ..known.weight_decay import fitted_lambda, weights_of
from ..numerical import check_gradient_directions
from ...parity import dtype_name
from ..targets import PortSetupError
from ..tolerance import port_tolerance

CODE = "numpy_gradient"


@dataclass
class LossSide:
    """The NumPy loss the claims are judged against: its function of ``params`` (perturbed
    in place), the dtype its differences are taken in, and the dtype the claims were
    computed in (their round-off)."""
    loss: object
    params: dict
    dtype: str
    claim_dtype: str


@dataclass
class ReferenceWrong:
    """What the check found: the row that is the first mismatch, and the diagnosis."""
    row: object
    entries: list


def check_reference_gradient(run, t_grads, found):
    """After the analytic backward rows: ``run.reference_wrong`` set where the NumPy backprop,
    not the port, is what parts from the NumPy loss."""
    run.reference_wrong = None
    failed = [c for c in run.report.checks if not c.passed]
    if not failed or getattr(run.np, "model", None) is None:
        return
    if failed[0].phase == "loss" and not any(c.phase == "backward" for c in failed):
        return _penalty_in_neither_gradient(run, found, failed[0])
    if failed[0].phase != "backward":
        return
    param_rows = [c for c in failed if run.context.get(id(c), {}).get("param") is not None]
    names = list(dict.fromkeys(run.context[id(c)]["param"] for c in param_rows))
    if not names:
        return
    side = _loss_side(run)
    claim = {n: _port_claim(run, found, t_grads, n) for n in names}
    own_claims = {n: _numpy_claim(run, found, n) for n in names}
    half = {n: np.zeros(np.shape(c[0])) if c[1] is None else c[1] for n, c in own_claims.items()}
    codes = sorted({code for n in names for code in _gaps(run, found, n)})
    hint_name = " + ".join(codes) if codes else None
    try:
        # the port first: where it parts from the NumPy loss too, it is (also) wrong, and the
        # gap it derives for the 1e-7 is no measure of the NumPy side's
        port = []
        for n in names:  # one at a time: a wrong port stops at its first (nearest the loss)
            report = _directions(run, [n], {n: claim[n]}, None, None, side)
            if not report.passed:
                return
            port += report.rows
        own = _directions(run, names, {n: c[0] for n, c in own_claims.items()},
                          half if codes else None, hint_name, side)
        if codes and set(own.failed) == set(names):
            # the hinted gap runs from one side's kind of loss to the other's, so its sign
            # follows which side holds the eps: the backward without it lies either way
            turned = {n: own_claims[n][0] - 2 * half[n] for n in names}
            other = _directions(run, names, turned, {n: -half[n] for n in names}, hint_name, side)
            if set(other.failed) != set(names):
                own = other
    except (ValueError, TypeError, ArithmeticError, PortSetupError):
        return  # a loss that cannot be taken at the perturbed points says nothing here
    if set(own.failed) != set(names):
        return  # a row the NumPy backprop is right for fails: the two sides part elsewhere
    rows = {n: next(c for c in param_rows if run.context[id(c)]["param"] == n) for n in names}
    looks = [_look(run, n, claim[n], 2 * half[n], rows[n]) for n in names]
    entry = {"code": CODE, "parameters": names,
             "text": _text(run, names, own, port, looks, hint_name),
             "measured": {n: _measured(own, port, n) for n in names}}
    factors = [lk["factor"] for lk in looks if "factor" in lk]
    if len(factors) == len(names):
        entry["factor"] = float(np.mean(factors))
    lams = [lk["lambda"] for lk in looks if "lambda" in lk]
    if lams:
        entry["lambda"] = float(np.mean(lams))
    for c in failed:
        if c.phase == "backward":
            c.note = ("the NumPy side's: the port's gradient agrees with the NumPy loss "
                      "(numpy_gradient)" if run.context.get(id(c), {}).get("param") else
                      "the NumPy side's: downstream of its wrong backward (numpy_gradient)")
    run.reference_wrong = ReferenceWrong(rows[names[0]], [entry])


def _penalty_in_neither_gradient(run, found, loss_row):
    """The losses part, the gradients agree: the NumPy loss may hold a penalty
    ``0.5 * lam * sum(W**2)`` that the port lacks and that the NumPy backward forgets too.
    Named only where the NumPy backprop of the weights parts from its own loss and the
    backprop plus ``lam * W`` (``lam`` fitted from the two losses) agrees with it: the
    penalty applied to the port, and its gradient to the NumPy backward, reproduce both
    the losses and the gradients."""
    shift, _ = run.known.shift("loss")
    difference = float(run.np_loss) + (0.0 if shift is None else float(shift)) - float(run.out["loss"])
    weights = weights_of(run.np.params)
    # the 1e-7 the NumPy loss may hold beyond the port's, unapplied where the penalty hid it
    gaps = [0.0] + [float(np.asarray(g)) for g in (run.known.hint("loss") or {}).values()]
    lams = [lam for lam in (fitted_lambda(difference - g, run.np.params) for g in gaps)
            if lam is not None and lam > 0]
    if not lams or not weights:
        return
    claims = {n: _numpy_claim(run, found, n) for n in weights}
    half = {n: np.zeros(np.shape(c[0])) if c[1] is None else c[1] for n, c in claims.items()}
    codes = sorted({code for n in weights for code in _gaps(run, found, n)})
    hint_name = " + ".join(codes) if codes else None
    allowance = half if codes else None
    side = _loss_side(run)
    try:
        plain = _directions(run, weights, {n: c[0] for n, c in claims.items()}, allowance, hint_name,
                            side)
        if set(plain.failed) != set(weights):
            return
        for lam in lams:  # the backprop plus lam * W against the NumPy loss
            fixed = _directions(run, weights, {n: c[0] + lam * np.asarray(run.np.params[n], np.float64)
                                               for n, c in claims.items()}, allowance, hint_name,
                                side)
            if fixed.passed:
                break
        else:
            return
    except (ValueError, TypeError, ArithmeticError, PortSetupError):
        return
    entries = [
        {"code": CODE, "parameters": weights, "lambda": lam,
         "measured": {n: {"numpy_max_abs": r.max_abs,
                          "numpy_tolerance": r.worst.tolerance if r.worst else None}
                      for n, r in ((r.name, r) for r in plain.rows)},
         "text": f"the NumPy loss holds a penalty 0.5 * lambda * sum(W**2) (lambda = {lam:.6g}, "
                 f"fitted from the two losses) whose gradient, lambda * W, the NumPy backward "
                 f"leaves out in {', '.join(weights)}: its gradient disagrees with central "
                 f"differences of its own loss along {run.directions} random directions "
                 f"({_measured_text(plain, weights)}), and agrees with them once lambda * W is "
                 f"added; the port's gradients equal the NumPy backprop, so they lack it too: fix "
                 f"the NumPy backward first"},
        {"code": "weight_decay", "lambda": lam,
         "text": f"the port's loss lacks the NumPy loss's penalty 0.5 * lambda * sum(W**2) with "
                 f"lambda = {lam:.6g}: add it to the port's loss (--loss model), or give its "
                 f"optimizer weight_decay={lam:.6g} for the weights alone and check with "
                 f"--torch-optimizer"}]
    run.reference_wrong = ReferenceWrong(loss_row, entries)


def _directions(run, names, claimed, allowance, allowance_name, side):
    return check_gradient_directions(
        side.loss, {n: side.params[n] for n in names}, claimed,
        directions=run.directions, seed=run.seed, locate="none", allowance=allowance,
        allowance_name=allowance_name, dtype=side.dtype, claim_dtype=side.claim_dtype)


def _loss_side(run):
    """The NumPy loss to take central differences of: in float64 where the run is float32
    and a float64 copy computes the same loss, else the run's own.

    float32's step (1e-2, against a round-off of ``4 eps |f| / h``) crosses the ReLU kinks
    near the point, and then no smaller step resolves them and no claim, right or wrong,
    is judged. The parameters cast to float64 are the same point exactly, so the loss's
    derivative there is the one the float32 claims stand for; its differences are taken at
    float64's step, while each claim keeps the round-off bound of the float32 it was
    computed in. The copy is used only where its loss came out float64 (a model that casts
    back to float32 would leave float32's noise in differences taken at float64's step)
    and equals the run's within the loss's float32 tolerance (the same function)."""
    own = LossSide(run.np.loss_function(run.x, run.t), run.np.params, dtype_name(run.dtype), None)
    if own.dtype != "float32" or not hasattr(run.np, "tape"):
        return own
    try:
        memo = {id(v): v.astype(np.float64) for v in run.np.params.values()}
        copy = deep_copy(run.np, memo)
        x = np.asarray(run.x)
        x = x.astype(np.float64) if np.issubdtype(x.dtype, np.floating) else x
        loss = copy.loss_function(x, run.t)
        value = loss()
        if np.result_type(value) != np.float64:
            return own
        value = float(value)
        expected = float(run.np_loss)
    except Exception:  # a copy that cannot be made or run: the run's own loss judges
        return own
    if not abs(value - expected) <= port_tolerance(expected, "float32").atol:
        return own
    params = {n: copy.params[n] for n in run.np.params}
    if any(p.dtype != np.float64 for p in params.values()):
        return own
    return LossSide(loss, params, "float64", "float32")


def _gaps(run, found, name):
    """``{code: array}``: the gaps a known difference may leave between a loss and a gradient
    that are both right (the book's 1e-7: ``book - cross_entropy`` through the port), hinted
    at ``name`` whether applied or not."""
    shape = np.shape(run.np.params[name])
    out = {}
    for code, value in (found.hint(("param", name)) or {}).items():
        value = np.asarray(value, np.float64)
        if value.shape == shape and np.any(value):
            out[code] = value
    return out


def _loss_sides(run):
    """``{code: r}``: the NumPy loss holds ``r`` times the hinted gap more than the port's
    loss (+1: the 1e-7 in the NumPy loss alone; -1: in the port's alone; 0: in both or
    neither), as the loss phase found it."""
    out = {}
    for code, value in (run.known.hint("loss") or {}).items():
        gap = float(np.asarray(value))
        shift = sum(float(np.asarray(d.rows["loss"])) for d in run.known.differences
                    if d.code == code and d.rows.get("loss") is not None)
        out[code] = 0.0 if gap == 0 else -shift / gap
    return out


def _numpy_claim(run, found, name):
    """The NumPy backprop, and the gap its loss may hold beyond it: a right backward is the
    loss's own gradient or, the book's way, the gradient without the 1e-7 the loss holds.
    Centred between the two with half the gap allowed, one check admits exactly both."""
    g = np.asarray(run.np_grads[name], np.float64)
    gaps = _gaps(run, found, name)
    if not gaps:
        return g, None
    half = 0.5 * sum(gaps.values())
    return g + half, half


def _port_claim(run, found, t_grads, name):
    """The port's gradient as the gradient of the NumPy loss: the known differences of known
    sign put back (the ``lam * W`` the port's optimizer adds at the step), and each hinted
    gap as far as the loss phase found the NumPy loss to hold it beyond the port's."""
    claim = np.asarray(t_grads[name], np.float64) - _exact_shift(found, name)
    sides = _loss_sides(run)
    for code, gap in _gaps(run, found, name).items():
        claim = claim + sides.get(code, 0.0) * gap
    return claim


def _exact_shift(found, name):
    """The known differences of known sign at ``name`` (those no hint stands for): what is
    added to the NumPy gradient to make it the port's kind, so taken off the port's."""
    hinted = set((found.hint(("param", name)) or {}).keys())
    total = 0.0
    for d in found.differences:
        value = d.rows.get(("param", name))
        if value is not None and d.code not in hinted:
            total = total + np.asarray(value, np.float64)
    return total


def _look(run, name, truth, gap, row):
    """How the NumPy gradient of ``name`` differs from ``truth`` (the port's, which agrees with
    the loss; less ``gap`` for a backward without the loss's 1e-7), where one simple form
    reproduces it within the row's own tolerance: ``{"factor": k}`` or ``{"lambda": lam}``."""
    g = np.asarray(run.np_grads[name], np.float64)
    w = np.asarray(run.np.params[name], np.float64).reshape(g.shape)

    def fits(model):
        return bool(np.all(np.abs(g - model) <= row.atol + row.rtol * np.abs(g)))
    for base in (truth, truth - gap, truth + gap):  # the gap's sign: see check_reference_gradient
        base = np.asarray(base, np.float64).reshape(g.shape)
        bb, ww = float(np.sum(base * base)), float(np.sum(w * w))
        k = float(np.sum(g * base)) / bb if bb > 0 else 1.0
        if k != 1 and fits(k * base):
            return {"factor": k}
        lam = float(np.sum((base - g) * w)) / ww if ww > 0 else 0.0
        if lam != 0 and fits(base - lam * w):
            return {"lambda": lam}
    return {}


def _measured(own, port, name):
    a = next(r for r in own.rows if r.name == name)
    b = next(r for r in port if r.name == name)
    worst = a.worst
    return {"numpy_max_abs": a.max_abs, "numpy_tolerance": worst.tolerance if worst else None,
            "port_max_abs": b.max_abs, "port_worst_ratio": b.worst.ratio if b.worst else 0.0}


def _measured_text(check, names):
    parts = []
    for r in check.rows:
        if r.name in names and r.worst is not None:
            parts.append(f"{r.name}: off by {r.max_abs:.3g} against a tolerance of {r.worst.tolerance:.3g}")
    return "; ".join(parts)


def _text(run, names, own, port, looks, hint_name):
    n = int(run.x.shape[0])
    said = []
    factors = [lk.get("factor") for lk in looks]
    if all(f is not None for f in factors):
        k = float(np.mean(factors))
        why = ""
        if abs(k - n) <= 1e-6 * n:
            why = (f": the gradient of the sum over the N = {n} examples where the loss is their "
                   f"mean (a missing / N)")
        elif abs(k * n - 1) <= 1e-6:
            why = f": the gradient of the mean over the N = {n} examples where the loss is their sum"
        said.append(f"the NumPy gradient is {k:.6g} times the loss's{why}")
    lams = [(name, lk["lambda"]) for name, lk in zip(names, looks) if "lambda" in lk]
    if lams:
        said.append("it leaves out lambda * W, the gradient of a penalty 0.5 * lambda * sum(W**2) "
                    "in the loss, in " + ", ".join(f"{name} (lambda = {lam:.6g})" for name, lam in lams))
    worst_port = max((r.worst.ratio for r in port if r.worst), default=0.0)
    allowed = f", with or without the {hint_name} gap of its loss" if hint_name else ""
    return (f"the NumPy backward is wrong for {', '.join(names)}: its gradient disagrees with "
            f"central differences of the NumPy loss along {run.directions} random directions"
            f"{allowed} ({_measured_text(own, names)}), while the port's gradient agrees with "
            f"them (at worst {worst_port:.2g} of its tolerance): the reference is the wrong side, "
            f"and the port is right for the NumPy loss"
            + (f"; {'; '.join(said)}" if said else "")
            + "; fix the NumPy backward (or the loss) and check again")
