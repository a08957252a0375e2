"""Weight decay: the book puts it in the loss, torch in the optimizer.

The book's ``MultiLayerNet(weight_decay_lambda=...)`` adds ``0.5 * lambda * sum(W**2)``
over its weights to the loss, and so ``lambda * W`` to each weight's gradient (not
the biases'). A torch port gives ``weight_decay=lambda`` to its optimizer, which adds
``lambda * p`` to the gradient of each parameter it decays, at the step: its loss
and its autograd gradients hold no penalty.

So where the port's optimizer decays (the check is given it: ``torch_optimizer``),
the penalty is a known difference of the single-batch phases, derived through the
port: ``0.5 * sum(lambda_p * |p|**2)`` over the parameters the optimizer decays,
each ``lambda_p`` read from its parameter group, taken off the NumPy loss, and
``lambda_p * p`` off each of their gradients. Lambda is also fitted from the two
losses (``2 * difference / sum(W**2)``) and must agree with the optimizer's, or
nothing is applied and the comparison shows the difference. Training then compares
the updates, where decay on a bias (torch's default when every parameter is given
to one group) parts from the book. Without the optimizer, a loss that differs by a
penalty is diagnosed (``trap``), with the fitted lambda.
"""
import numpy as np

from ..roles import SHIFT

from ..tolerance import port_tolerance
from .difference import Known, KnownDifference

CODE = "weight_decay"
LABEL = "weight decay"


def decays_of(optimizer, params, pairing):
    """``{numpy name: lambda}`` of the parameters the torch ``optimizer`` decays (``params``:
    the port's ``{name: tensor}``)."""
    by_id = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            by_id[id(p)] = float(group.get("weight_decay", 0.0) or 0.0)
    out = {}
    for pair in pairing:
        lam = by_id.get(id(params[pair.torch]), 0.0)
        if lam:
            out[pair.numpy] = lam
    return out


def penalty(params, decays):
    return float(sum(0.5 * lam * np.sum(np.asarray(params[n], np.float64) ** 2) for n, lam in decays.items()))


def weights_of(params, weights=None):
    """The parameters the book decays: its weights, the arrays of two or more axes (or
    ``weights``, where the port tells them)."""
    if weights is not None:
        return [n for n in params if n in weights]
    return [n for n, v in params.items() if np.ndim(v) >= 2]


def run_weights(run):
    """The NumPy parameters whose torch twins are weights (two or more axes): a bias held as
    (1, H) or (H, 1) is no weight, though its array has two axes."""
    pairs = getattr(run, "pairing", None) or ()
    if not pairs:
        return None
    out, roles = [], None
    for p in pairs:
        t = run.torch.params[p.torch]
        if t.dim() < 2:
            continue
        if 1 in tuple(t.shape):  # (1, H) is a bias held as a row, or a weight of one output
            if roles is None:
                roles = _roles(run)
            if roles.get(p.torch) == SHIFT:  # added, as a bias is
                continue
        out.append(p.numpy)
    return out


def _roles(run):
    """``{torch name: role}``: what the port's forward pass first computes with each."""
    cached = getattr(run, "_torch_roles", None)
    if cached is None:
        try:
            cached = dict(run.torch.use_order(run.x))
        except Exception:  # a pass that cannot be followed tells no roles
            cached = {}
        run._torch_roles = cached
    return cached


def fitted_lambda(difference, params, weights=None):
    total = sum(float(np.sum(np.asarray(params[n], np.float64) ** 2)) for n in weights_of(params, weights))
    return None if total == 0 else 2 * difference / total


def slack(out, np_loss, dtype):
    """What else may part the losses: round-off, and the book's 1e-7 (named by its own source)."""
    tol = port_tolerance(np.array(np_loss), dtype)
    losses = out.get("losses") or {}
    gap = abs(losses.get("book", 0.0) - losses.get("cross_entropy", 0.0)) if losses else 0.0
    return tol.atol + tol.rtol * abs(np_loss) + gap


def at_loss(np_loss, out, loss_name, dtype, context=None):
    context = context or {}
    decays, params = context.get("decays") or {}, context.get("params")
    if not decays or params is None:
        return Known()
    difference = float(np_loss) - float(out["loss"])
    # the optimizer's decays, or those on the weights alone: the loss is taken before the
    # step, on parameters both sides share, so a bias the optimizer also decays is left to
    # the comparison of the updates, where it shows
    weights = {n: lam for n, lam in decays.items() if np.ndim(params[n]) >= 2}
    for candidate in (decays, weights):
        p = penalty(params, candidate)
        if candidate and abs(difference - p) <= slack(out, np_loss, dtype) + 1e-12 * abs(p):
            decays = candidate
            break
    else:
        return Known()
    lam = fitted_lambda(difference, params)
    given = sorted(set(decays.values()))
    text = (f"loss: the NumPy loss holds the book's weight-decay penalty 0.5 * lambda * sum(W**2) "
            f"(lambda fitted from the two losses: {lam:.6g}), the torch loss none: the port's "
            f"optimizer decays {', '.join(decays)} with weight_decay={', '.join(f'{g:g}' for g in given)}; "
            f"the penalty, {p:.6g} here, and lambda * W in those gradients are taken off the NumPy "
            f"side before comparing")
    found = KnownDifference(CODE, LABEL, "loss", {"loss": np.array(-p)}, text, p)
    found.decays = decays  # the gradients take off what the loss did, no more
    return Known([found])


def at_backward(run, t_grads, numerical, earlier=None):
    at_loss_found = [d for d in run.known.differences if d.code == CODE and hasattr(d, "decays")]
    if not at_loss_found:
        return Known()
    decays = at_loss_found[0].decays
    rows = {("param", n): -lam * np.asarray(run.np.params[n], np.float64) for n, lam in decays.items()}
    size = max(float(np.max(np.abs(v))) for v in rows.values())
    text = (f"gradient: lambda * W of the book's penalty in {', '.join(decays)} (at most {size:.3g}), "
            f"which the port's optimizer adds at the step, taken off the NumPy gradients before comparing")
    return Known([KnownDifference(CODE, LABEL, "gradient", rows, text, size)])


def trap(np_loss, t_loss, params, np_grads=None, t_grads=None, dtype="float64", slack=0.0,
         decays=None, cs231n=False, kwargs=None, weights=None, lam=None):
    """A loss larger by a weight-decay penalty (and weight gradients larger by lambda * W):
    ``{"code": "weight_decay", ...}`` or None. ``slack``: what else may part the two losses
    (the 1e-7), so lambda is known to within ``2 slack / sum(W**2)``."""
    difference = float(np_loss) - float(t_loss)
    lam = fitted_lambda(difference, params, weights) if lam is None else lam
    if lam is None or lam == 0:
        return None
    spread = abs(fitted_lambda(slack, params, weights) or 0.0)
    where = "loss"
    if np_grads is not None and t_grads is not None:
        for n in weights_of(params, weights):
            e = np.asarray(np_grads[n], np.float64) - lam * np.asarray(params[n], np.float64)
            a = np.asarray(t_grads[n], np.float64)
            tol = port_tolerance(np_grads[n], dtype)
            bound = 10 * (tol.atol + tol.rtol * np.abs(a)) + spread * np.abs(np.asarray(params[n]))
            if e.shape != a.shape or np.any(np.abs(e - a) > bound):
                return None
        where = "loss and in the weight gradients"
    if lam < 0:  # the port's loss holds the larger penalty
        return {"code": CODE, "lambda": lam, "side": "torch",
                "text": f"the port's {'loss exceeds' if where == 'loss' else 'loss and weight gradients exceed'} the NumPy ones by a "
                        f"weight-decay penalty: lambda/2 * sum(W**2) with lambda = {-lam:.6g} "
                        f"(fitted from the two losses), lambda * W in each weight's gradient: the "
                        f"port's penalty is larger than the NumPy one (reg * sum(W**2) written for "
                        f"0.5 * reg * sum(W**2), a penalty added twice, or a decay the NumPy side "
                        f"does not have); make the port's penalty the NumPy loss's"}
    given = sorted(set((decays or {}).values()))
    has = (f"the port's optimizer decays with weight_decay={', '.join(f'{g:g}' for g in given)}"
           if given else "the port has no decay")
    course = ""
    if cs231n:  # cs231n writes reg * sum(W**2) (assignment 1) or 0.5 * reg * sum(W**2) (assignment 2)
        given_reg = (kwargs or {}).get("reg")
        course = (f" (in cs231n's terms: reg * sum(W**2) with reg = lambda / 2 = {lam / 2:.6g}, as "
                  f"assignment 1 writes it, or 0.5 * reg * sum(W**2) with reg = {lam:.6g}, as "
                  f"assignment 2 does" + (f"; the NumPy loss was called with reg={given_reg!r}"
                                          if given_reg is not None else "") + ")")
    return {"code": CODE, "lambda": lam,
            "text": f"the NumPy side exceeds the port's, in its {where}, by a weight-decay penalty: lambda/2 * "
                    f"sum(W**2) with lambda = {lam:.6g} (fitted from the two losses){course}, lambda * W "
                    f"in each weight's gradient; {has}: give its optimizer "
                    f"weight_decay={lam:.6g} for the weights alone (a parameter group with "
                    f"weight_decay=0 for the biases) and check with --torch-optimizer, or add the "
                    f"penalty to the port's loss"}


def trap_at(run, row, ctx):
    """At a failing loss row of a check: the difference a penalty the port lacks would make."""
    if row.phase != "loss" or run.np_loss is None:
        return []
    t_grads = None
    if run.t_grads is not None and all(v is not None for v in run.t_grads.values()):
        from ..pairing import numpy_layout
        t_grads = numpy_layout(run.pairing, run.t_grads)
    others = Known([d for d in run.known.differences if d.code != CODE])
    shift, _ = others.shift("loss")
    t_loss = float(run.out["loss"]) - (0.0 if shift is None else float(shift))
    found = trap(run.np_loss, t_loss, run.np.params, run.np_grads, t_grads, run.dtype,
                 slack=slack(run.out, run.np_loss, run.dtype), decays=run.decays,
                 cs231n=getattr(run.np, "cs231n", False), kwargs=getattr(run.np, "kwargs", None),
                 weights=run_weights(run))
    if found is None and shift is None and t_grads is not None:
        found = _beside_eps(run)
    return [] if found is None else [found]


def _beside_eps(run):
    """The penalty the port lacks where an eps in the NumPy log parts the losses too."""
    from .penalty_with_eps import fit
    weights = weights_of(run.np.params, run_weights(run))
    fitted = fit(run, weights)
    if fitted is None:
        return None
    lam, variant, eps = fitted
    found = trap(run.np_loss, run.out["loss"], run.np.params, dtype=run.dtype, decays=run.decays,
                 cs231n=getattr(run.np, "cs231n", False), kwargs=getattr(run.np, "kwargs", None),
                 weights=weights, lam=lam)
    from .log_eps import eps_text
    found["text"] += (f" (with the NumPy log's eps of {eps_text(eps)}"
                      + (" in both logs" if variant == "both" else "")
                      + ", fitted with lambda from the loss and the gradients: the port's "
                        "loss with that eps, plus the penalty, gives the NumPy loss, and its "
                        "autograd, plus lambda * W, the NumPy gradients)")
    found.update(eps=eps, eps_variant=variant)
    return found
