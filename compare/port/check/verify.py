"""A cause is named only when its hypothesis, applied, reproduces what was seen: the loss
and the gradients, within tolerance.

A hypothesis fitted on the first mismatch reproduces that row by construction; this
module applies it to the rest of what the check measured:

* a factor ``c`` between the two losses (``scale``, ``sign`` at the loss row): the torch
  gradients must be ``c`` times the NumPy ones;
* a factor in the gradients while the two losses agree (``scale``, ``sign`` at a backward
  row): no reduction of the loss can make it, so it is said to be in a gradient
  computation, and every other gradient must agree or show the same factor;
* a penalty in the NumPy loss (``weight_decay``, fitted lambda; negative where the port's
  penalty is the larger): the NumPy gradients must be the torch ones plus ``lambda * W``,
  on the parameters whose torch twins are weights;
* an eps in the log (``log_eps``) named at the loss: the gradients must agree, with the
  known differences applied;
* float32 round-off (``dtype``, weak evidence): float32 must have taken part, an array of
  that dtype on either side.

A hypothesis at a forward row (a layer kind's trap, a counterfactual, the general ones on
a layer's output) is tested by rerunning or transforming that layer: it reproduces the
first output that parts, and the loss and gradients after it follow from that output.

The NumPy gradients the hypotheses predict are checked as the backward phase checks
them: against the NumPy backprop, or central differences of the NumPy loss along
random directions (``numerical``), or a golden file's recorded differences. A
hypothesis that does not reproduce them is dropped, with the reason; when none is left
``diagnosis`` stays empty (no code is made up for it) and ``first_mismatch["unexplained"]``
says so, with the sizes measured and the hypotheses dropped.
"""
import numpy as np

from ..known.penalty_with_eps import port_gradients
from ..known.weight_decay import fitted_lambda, penalty, run_weights, slack as weight_decay_slack, weights_of
from ..numerical import check_gradient_directions
from ..pairing import numpy_layout
from ..tolerance import port_tolerance, summed_tolerance
from .backward import gradient_terms

FACTOR_CODES = ("scale", "sign")


def verified(run, row, ctx, found):
    """``(kept, rejected)``: the hypotheses that reproduce the loss and the gradients, and
    ``"code: why"`` for each dropped."""
    kept, rejected = [], []
    for d in found:
        why = _contradiction(run, row, ctx, d)
        if why is None:
            kept.append(d)
        else:
            rejected.append(f"{d['code']} ({why})")
    return kept, rejected


def unexplained(row, rejected):
    """The first mismatch's line when no hypothesis is left."""
    text = (f"unexplained: no usual porting bug, applied, reproduces the loss and the gradients; "
            f"measured at {row.where}: max abs {row.max_abs:.3g}, max rel {row.max_rel:.3g}"
            if row.max_abs is not None else
            f"unexplained: no usual porting bug, applied, reproduces what {row.where} shows")
    if rejected:
        text += "; tried and dropped: " + "; ".join(rejected)
    return text


def _contradiction(run, row, ctx, d):
    code = d["code"]
    if code == "dtype" and d.get("evidence") == "float32 round-off" and not float32_took_part(run):
        return "no float32 array took part in this float64 run"
    if row.phase == "loss" and code in FACTOR_CODES and "factor" in d:
        return _gradients_fail(run, lambda name, g: g / d["factor"],
                               f"the losses differ by the factor {d['factor']:.4g}, the gradients not")
    if row.phase == "loss" and code == "weight_decay" and d.get("eps"):
        return _penalty_beside_eps(run, d)
    if row.phase == "loss" and code == "weight_decay":
        lam = d["lambda"]
        # lambda is known to within what else may part the losses (round-off, an eps)
        weights = weights_of(run.np.params, run_weights(run))
        spread = abs(fitted_lambda(weight_decay_slack(run.out, run.np_loss, run.dtype), run.np.params,
                                   weights) or 0.0)
        if abs(lam) <= spread:
            return (f"lambda = {lam:.3g} is not told from 0: round-off and an eps in the log "
                    f"could part the losses by as much (lambda within {spread:.3g})")
        return _gradients_fail(run, lambda name, g: g + (lam * np.asarray(run.np.params[name], np.float64)
                                                         if name in weights else 0.0),
                               f"lambda = {lam:.4g} fits the losses, lambda * W not the gradients",
                               spread=spread)
    if row.phase == "loss" and code == "log_eps":
        if any(not c.passed for c in run.report.checks if c.phase == "backward"):
            return "the eps fits the losses, the gradients differ beyond it"
    if row.phase == "backward" and code in FACTOR_CODES and "factor" in d:
        return _gradient_factor(run, d)
    return None


def _penalty_beside_eps(run, d):
    """A penalty fitted with an eps in the NumPy log: the port's loss with that eps and the
    penalty gives the NumPy loss, and its autograd plus lambda * W the NumPy gradients."""
    lam, eps, variant = d["lambda"], d["eps"], d["eps_variant"]
    weights = weights_of(run.np.params, run_weights(run))
    family = run.out.get("eps_losses") or {}
    if variant not in family:
        return "the port's loss has no eps family to compose the penalty with"
    expected = float(run.np_loss) - penalty(run.np.params, {n: lam for n in weights})
    tol = port_tolerance(np.array(run.np_loss), run.dtype)
    if abs(family[variant](eps) - expected) > tol.atol + tol.rtol * abs(float(run.np_loss)):
        return f"lambda = {lam:.4g} with the eps {eps:g} does not give the NumPy loss"
    for backward_eps in (eps, 0.0):  # a NumPy backward may leave the eps out (p - t)
        grads = port_gradients(run, variant, backward_eps)
        predicted = {n: g + (lam * np.asarray(run.np.params[n], np.float64) if n in weights else 0.0)
                     for n, g in grads.items()}
        worst = gradients_part(run, predicted)
        if worst is None:
            return None
    return f"lambda = {lam:.4g} with the eps {eps:g} fits the loss, not the gradients: {worst}"


def _gradients_fail(run, predict, why, spread=0.0):
    """None when the NumPy gradients are ``predict(name, torch gradient)``, else ``why``
    and the size of what parts them."""
    if run.t_grads is None or any(v is None for v in run.t_grads.values()):
        return why + " (the port gives no gradient to test it on)"
    t_grads = numpy_layout(run.pairing, run.t_grads)
    predicted = {n: np.asarray(predict(n, np.asarray(g, np.float64)), np.float64) for n, g in t_grads.items()}
    worst = gradients_part(run, predicted, spread)
    if worst is None:
        return None
    return f"{why}: {worst}"


def _analytic(run):
    return run.np_grads is not None and str(run.report.settings.get("gradients", "")).startswith("NumPy backprop")


def _known(run, name):
    shift, _ = run.known.shift(("param", name))
    return 0.0 if shift is None else np.asarray(shift, np.float64)


def gradients_part(run, predicted, spread=0.0):
    """Where the predicted NumPy gradients part from the measured ones (None: nowhere)."""
    if _analytic(run):
        for name, p in predicted.items():
            e = np.asarray(run.np_grads[name], np.float64) + _known(run, name)
            # the backward phase's own tolerance: a sum that cancels is judged by what it sums
            tol = summed_tolerance(e, run.dtype, gradient_terms(run, name))
            bound = tol.atol + tol.rtol * np.abs(e) + spread * np.abs(np.asarray(run.np.params[name], np.float64))
            if e.shape != p.shape or np.any(np.abs(e - p) > bound):
                gap = float(np.max(np.abs(e - p))) if e.shape == p.shape else float("nan")
                return f"{name} off by {gap:.3g} from the prediction"
        return None
    if run.np.model is None and hasattr(run.np, "recorded_difference"):
        for name, p in predicted.items():
            grad, bound = run.np.recorded_difference(name)
            e = np.asarray(grad, np.float64) + _known(run, name)
            tol = port_tolerance(e, run.dtype)
            if np.any(np.abs(e - p) > np.abs(bound) + tol.atol + tol.rtol * np.abs(e)):
                return f"{name} off by {float(np.max(np.abs(e - p))):.3g} from the prediction"
        return None
    # central differences of the NumPy loss along the check's own directions
    claimed = {n: p - _known(run, n) for n, p in predicted.items()}
    result = check_gradient_directions(run.np.loss_function(run.x, run.t), run.np.params, claimed,
                                       directions=run.directions, seed=run.seed, locate="none")
    bad = [r for r in result.rows if not r.passed]
    if not bad:
        return None
    return (f"{bad[0].name}'s central differences part from the prediction by "
            f"{bad[0].max_abs:.3g} along a direction")


def _gradient_factor(run, d):
    """A factor in a gradient while the losses agree: in a gradient computation. Every other
    gradient agrees or shows the same factor; the text says where the factor is."""
    c = d["factor"]
    if _analytic(run) and run.t_grads is not None and all(v is not None for v in run.t_grads.values()):
        t_grads = numpy_layout(run.pairing, run.t_grads)
        for name, a in t_grads.items():
            a = np.asarray(a, np.float64)
            e = np.asarray(run.np_grads[name], np.float64) + _known(run, name)
            tol = port_tolerance(e, run.dtype)
            agrees = np.all(np.abs(a - e) <= tol.atol + tol.rtol * np.abs(e))
            scaled = np.all(np.abs(a - c * e) <= abs(c) * (tol.atol + tol.rtol * np.abs(e)))
            if not (agrees or scaled):
                return f"the factor {c:.4g} fits this gradient, not {name}'s"
    loss = next((r for r in run.report.checks if r.phase == "loss"), None)
    if loss is None or not loss.passed:
        return None
    side = ("the NumPy backward (the torch gradient is autograd of a loss that agrees with the "
            "NumPy one)" if str(getattr(run, "t_source", "")).startswith("autograd")
            else "a hand-written backward (the port's gradient, or the NumPy backprop)")
    shown = f"{c:.4g} x expected" if abs(c) >= 1 else f"expected / {1 / c:.4g}"
    if d.get("batch_size"):
        n = int(run.x.shape[0])
        side = (f"the factor is the batch size {n}: a / batch_size "
                f"{'lost' if abs(c) > 1 else 'added'} in " + side)
    if d["code"] == "sign":
        d["text"] = (f"actual = -expected in this gradient while the two losses agree: a sign lost "
                     f"in a gradient computation, {side}")
    else:
        d["text"] = (f"actual = {shown} in this gradient while the two losses agree: the factor is "
                     f"not in the loss's reduction but in a gradient computation (a / N or a "
                     f"factor lost or added), {side}")
    d.pop("expression", None)
    d["where"] = "gradient"
    return None


def float32_took_part(run):
    """An array of float32 on either side in this run: its parameters, recorded layers,
    gradients, the NumPy loss, or a tensor any call of the port's traced pass took."""
    if run.dtype == "float32":
        return True
    arrays = list(run.np.params.values()) + [np.asarray(run.np_loss)]
    arrays += list((run.np_grads or {}).values()) + [v for v in (run.t_grads or {}).values() if v is not None]
    for capture in (getattr(run, "np_capture", None), getattr(run, "t_capture", None)):
        if getattr(capture, "float32", False):
            return True
        for rec in getattr(capture, "records", []):
            arrays += [getattr(rec, k, None) for k in ("input", "output", "grad_output")]
    return any(getattr(a, "dtype", None) == np.float32 for a in arrays)
