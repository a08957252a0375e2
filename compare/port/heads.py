"""Output heads: what a model's last output is, how two heads are compared, and the
double softmax.

A model ends in one of four heads, told by the values:

=========================  =================================================
head                       its values
=========================  =================================================
``probabilities``          rows (N, C), C > 1, non-negative, summing to 1
``log-probabilities``      rows (N, C), C > 1, at most 0, ``exp`` summing to 1
``sigmoid probabilities``  every value in [0, 1] (not rows summing to 1)
``scores``                 anything else: logits
=========================  =================================================

Two right implementations may stop at different heads (a NumPy ``predict``
ending in softmax or sigmoid, a port returning the logits its loss takes).
``match`` brings the side whose head comes earlier to the other's (softmax,
log-softmax or sigmoid of the scores; ``exp`` of log-probabilities) to
compare the outputs, and says so. It never changes what is judged: the loss
is the one training computes from the port's own output (``torch_side``).

A port whose output is already probabilities, fed to a loss that applies the
softmax (``cross_entropy``, ``book``) or the sigmoid
(``binary_cross_entropy_with_logits``) again, is a double softmax: ``trap``
names it only when the hypothesis, applied to the NumPy output, gives the
port's loss and its gradient at the output, and the loss without the extra
head gives the NumPy one.
"""
import numpy as np

from .tolerance import port_tolerance

SCORES = "scores"
PROBABILITIES = "probabilities"
LOG_PROBABILITIES = "log-probabilities"
SIGMOID = "sigmoid probabilities"

# the loss that applies a head again, and that head
APPLIES = {"cross_entropy": PROBABILITIES, "book": PROBABILITIES,
           "binary_cross_entropy_with_logits": SIGMOID}


def _slack(a, scale=1.0):
    eps = np.finfo(a.dtype).eps if np.issubdtype(a.dtype, np.floating) else 0.0
    return 16 * eps * a.shape[-1] * scale


def head_of(a):
    """The head of an output array (see the table above)."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating) or a.ndim < 1 or not a.size \
            or not np.all(np.isfinite(a)):
        return SCORES
    if a.ndim == 2 and a.shape[1] > 1:
        if (a >= 0).all() and np.all(np.abs(a.sum(axis=1) - 1) <= _slack(a)):
            return PROBABILITIES
        # exp carries the round-off of the log-probabilities, relative to their size
        if (a <= 0).all() and np.all(np.abs(np.exp(a).sum(axis=1) - 1)
                                     <= _slack(a, max(1.0, float(np.abs(a).max())))):
            return LOG_PROBABILITIES
    if (a >= 0).all() and (a <= 1).all():
        return SIGMOID
    return SCORES


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def sigmoid(z):
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1 / (1 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1 + e)
    return out


# (the earlier head, the later one) -> (the function taking one to the other, its name)
CONVERSIONS = {
    (SCORES, PROBABILITIES): (softmax, "softmax"),
    (SCORES, LOG_PROBABILITIES): (log_softmax, "log_softmax"),
    (SCORES, SIGMOID): (sigmoid, "sigmoid"),
    (LOG_PROBABILITIES, PROBABILITIES): (np.exp, "exp"),
}


def match(np_out, t_out, dtype):
    """``(np_out, t_out, note, heads)``: the two outputs brought to one head where their
    heads differ and one is a step of the other; ``heads`` is ``{"numpy", "torch",
    "converted", "numpy_output"}`` (the side converted or None; the NumPy output in the
    port's head where that is the side converted or none is). A conversion is made where
    it makes the two agree; softmax of scores that hold negatives against probabilities
    also where it does not (a port's logits against a NumPy softmax are compared as
    probabilities, for the diagnosis)."""
    np_head, t_head = head_of(np_out), head_of(t_out)
    heads = {"numpy": np_head, "torch": t_head, "converted": None, "numpy_output": np_out}
    if np.shape(np_out) != np.shape(t_out):
        return np_out, t_out, None, heads
    for side, head, other in (("torch", t_head, np_head), ("numpy", np_head, t_head)):
        found = CONVERSIONS.get((head, other))
        if found is None:
            continue
        fn, name = found
        source = t_out if side == "torch" else np_out
        converted = fn(np.asarray(source, np.float64)).astype(np.result_type(source))
        a, e = (converted, np_out) if side == "torch" else (t_out, converted)
        if not (_fits(a, e, dtype) or (name == "softmax" and (np.asarray(source) < 0).any())):
            continue
        heads["converted"] = side
        if side == "torch":
            note = (f"NumPy predict gives {other}, the port {head}: compared with {name} of the "
                    f"port's output")
            return np_out, converted, note, heads
        heads["numpy_output"] = converted
        note = f"the port gives {other}, NumPy predict {head}: compared with {name} of the NumPy output"
        return converted, t_out, note, heads
    return np_out, t_out, None, heads


def head_note(t_head, loss_name, module):
    """What the loss does with a port's log-probabilities: ``cross_entropy`` takes
    log_softmax of them again, which leaves them as they are (no double softmax)."""
    if module and t_head == LOG_PROBABILITIES and loss_name in ("cross_entropy", "book"):
        return (f"the port returns log-probabilities and {loss_name} takes log_softmax of them "
                f"again, which leaves them as they are: the loss and its gradients are those of "
                f"the scores (no double softmax)")
    return None


def to_logits(head, a):
    """Scores that ``head`` is of: ``log p`` for probabilities (up to a constant per row,
    which softmax takes off), the logit of sigmoid probabilities."""
    a = np.asarray(a, np.float64)
    with np.errstate(divide="ignore"):
        if head == PROBABILITIES:
            return np.log(a)
        if head == SIGMOID:
            return np.log(a) - np.log1p(-a)
    return a


# --- the double softmax -------------------------------------------------------------------

def trap(run, row, ctx):
    """At a failing loss (or gradient) row of a check: the port's output already holds the
    head its loss applies again. ``[hypothesis]`` or ``[]``."""
    found = getattr(run, "heads", None)
    if row.phase not in ("loss", "backward") or found is None or run.np_loss is None:
        return []
    t_head, name = found["torch"], run.torch.loss_name
    if APPLIES.get(name) != t_head or found["converted"] == "torch" or run.t_scores_grad is None:
        return []
    if found["converted"] is None and found["numpy"] != t_head:
        return []  # the NumPy output is not in the port's head
    try:
        return _double(run, found, t_head, name)
    except Exception:  # a hypothesis that cannot be computed on these outputs says nothing
        return []


def _loss_of(run, output, name, grad=False):
    import torch
    y = torch.tensor(np.asarray(output), dtype=run.torch.torch_dtype, device=run.torch.device,
                     requires_grad=grad)
    with torch.enable_grad():
        losses = run.torch.losses_of(y, run.tt)
        value = losses[name]
        g = torch.autograd.grad(value, y)[0].detach().cpu().numpy() if grad else None
    return float(value.detach()), g, losses


def _fits(a, e, dtype):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    tol = port_tolerance(e, dtype)
    return a.shape == e.shape and bool(np.all(np.abs(a - e) <= tol.atol + tol.rtol * np.abs(e)))


def _eps_gap(run, logits, head, losses):
    """What an epsilon inside the NumPy loss's log (up to the book's 1e-7) would make."""
    if head == PROBABILITIES:
        return abs(float(losses["book"]) - float(losses["cross_entropy"])) if "book" in losses else 0.0
    import torch
    from .losses import binary_log_eps_gap, targets_for
    t = targets_for(run.torch.loss, torch.tensor(logits), run.tt).cpu().numpy()
    return binary_log_eps_gap(sigmoid(logits), t)


def _double(run, found, t_head, name):
    t_loss = float(run.out["loss"])
    # the hypothesis: the port is the NumPy model, and its loss applies the head again
    np_out = found["numpy_output"]
    h_loss, h_grad, _ = _loss_of(run, np_out, name, grad=True)
    if not (_fits(h_loss, t_loss, run.dtype) and _fits(h_grad, run.t_scores_grad, run.dtype)):
        return []
    # and the port's output taken back to scores gives the NumPy loss
    logits = to_logits(t_head, run.out["scores"])
    fixed, _, losses = _loss_of(run, logits, name)
    shift, _ = run.known.shift("loss")
    np_loss = float(run.np_loss) + (0.0 if shift is None else float(shift))
    tol = port_tolerance(np.array(np_loss), run.dtype)
    slack = _eps_gap(run, logits, t_head, losses)
    if not abs(np_loss - fixed) <= tol.atol + tol.rtol * abs(np_loss) + slack:
        return []
    if _fits(fixed, t_loss, run.dtype):
        return []  # the extra head changes nothing here: it is not what parts the losses
    if t_head == PROBABILITIES:
        what = ("already softmax probabilities (rows that sum to 1: an nn.Softmax, or softmax "
                "at the end of forward)")
        again = ("F.cross_entropy takes log_softmax of them again" if name == "cross_entropy"
                 else "the book's loss takes softmax of them again")
        fix = ("return the scores (drop the final softmax) and keep F.cross_entropy, or keep the "
               "probabilities and train with F.nll_loss(torch.log(output), t)")
    else:
        what = ("already sigmoid probabilities (values in [0, 1]: an nn.Sigmoid, or torch.sigmoid "
                "at the end of forward)")
        again = "F.binary_cross_entropy_with_logits takes sigmoid of them again"
        fix = ("return the logits (drop the final sigmoid) and keep "
               "binary_cross_entropy_with_logits, or keep the probabilities and train with "
               "F.binary_cross_entropy")
    extra = "softmax" if t_head == PROBABILITIES else "sigmoid"
    text = (f"the port's output is {what}, and {again} (a double {extra}): the loss training "
            f"computes from this output is {t_loss:.6g} against the NumPy {np_loss:.6g} (the NumPy "
            f"output with the extra {extra} gives the port's loss and its gradient at the output; "
            f"without it, the port's output gives {fixed:.6g}); {fix}")
    return [{"code": "double_softmax", "text": text, "where": "output", "head": t_head,
             "loss": name, "torch_loss": t_loss, "without_extra_head": fixed}]
