"""The bugs of a port's output head, each named only where its hypothesis, applied,
reproduces what was seen.

* ``double_softmax`` (at the loss or a gradient): the port's output already holds the head
  (softmax or sigmoid probabilities) that its loss applies again, or its loss applies the
  head to the scores before a loss that applies it again. Applied: the port with the extra
  head dropped (its output taken back to logits, ``heads.to_logits``, or the loss's own
  head undone) and its own loss, whatever it is (a ``torch.nn.functional`` loss, a function with its own reduction,
  the port's ``loss(x, t)`` with its penalty). Named when the loss applies the head (its
  gradient at the output is ``k`` times the head's cross-entropy's, at the port's output and
  at the logits: ``k`` is the loss's reduction), and the port without the extra head gives
  the NumPy loss and the NumPy gradients, with what is known to part two right sides
  composed in: an eps inside the NumPy log (fitted and written, as ``known.log_eps``
  fits it), a weight-decay penalty the port's optimizer holds instead.
* ``axis`` (at the output row): the port's softmax or log-softmax normalises over another
  axis than the classes. Applied: the NumPy output taken back to scores (up to the
  constant per row a softmax leaves free) and normalised over the other axis; named when
  that gives the port's output.

``numpy_loss_without_eps`` gives the diagnosis the NumPy loss with the eps in its log taken
off, where the torch loss is of no eps family: a factor between the losses (a sum against
a mean) is then tested on it.
"""
from contextlib import contextmanager

import numpy as np

from .. import heads
from ..known import log_eps
from ..known.weight_decay import penalty, weights_of
from ..pairing import numpy_layout
from .verify import gradients_part


def traps(run, row, ctx):
    """The output head's hypotheses that fit at ``row``: ``[hypothesis]`` or ``[]``."""
    try:
        if row.phase == "forward" and ctx.get("head_row"):
            return axis(ctx, run.dtype)
        if row.phase in ("loss", "backward"):
            return double_head(run)
    except Exception:  # a hypothesis the port's own loss cannot be computed on says nothing
        pass
    return []


# --- the softmax over the wrong axis ----------------------------------------------------------

OPS = {"log_softmax": lambda z, k: _log_softmax(z, k), "softmax": lambda z, k: np.exp(_log_softmax(z, k))}


def _log_softmax(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def axis(ctx, dtype):
    """The port's output is the NumPy output normalised over the batch axis instead of the
    classes'."""
    if ctx.get("raw") is None:
        return []
    raw, actual = ctx["raw"]  # the two outputs as each side gives them (no head conversion)
    head = heads.head_of(raw)  # told in its own dtype's round-off
    raw, actual = np.asarray(raw, np.float64), np.asarray(actual, np.float64)
    if raw.ndim != 2 or raw.shape != actual.shape or min(raw.shape) < 2:
        return []
    if head == heads.SIGMOID:
        return []
    with np.errstate(divide="ignore"):
        scores = np.log(raw) if head == heads.PROBABILITIES else raw
    if not np.all(np.isfinite(scores)):
        return []
    # scores are known up to a constant per row where NumPy gives a softmax of them
    free = head != heads.SCORES
    for op, fn in OPS.items():
        if op == "softmax" and not (actual > 0).all():
            continue
        logged = actual if op == "log_softmax" else np.log(actual)
        shift = (logged - scores).mean(axis=1, keepdims=True) if free else 0.0
        hypothesis = fn(scores + shift, 0)
        if not heads.fits(hypothesis, actual, dtype) or heads.fits(fn(scores + shift, 1), actual, dtype):
            continue
        text = (f"the port's output is the {op} of the scores over axis 0, the batch, where the "
                f"NumPy model's is over axis 1, the classes (the NumPy output"
                f"{' taken back to scores' if free else ''} and normalised over axis 0 gives the "
                f"port's output): {op}(z, dim=0) written for dim=1; write F.{op}(z, dim=1) (or dim=-1)")
        return [{"code": "axis", "text": text, "where": "output", "op": op, "expected_axis": 1,
                 "actual_axis": 0}]
    return []


# --- the double softmax -----------------------------------------------------------------------

def double_head(run):
    found = getattr(run, "heads", None)
    if run.np_loss is None or run.out.get("scores") is None:
        return []
    if run.torch.kind != "module" and run.torch.loss_name != "model":
        return []  # a literal port's loss takes probabilities as such (-log p)
    y = np.asarray(run.out["scores"], np.float64)
    if found is None:
        # no NumPy output compared (no predict, or one giving labels): the port's head is
        # read off its own output, and the hypothesis must still give the NumPy loss and
        # gradients
        found = {"torch": heads.head_of(y), "numpy": None, "converted": None}
    t_head = found["torch"]
    if t_head in (heads.PROBABILITIES, heads.SIGMOID):
        if found["converted"] == "torch" or (found["converted"] is None and found["numpy"] not in (None, t_head)):
            return []  # the NumPy output is not in the port's head
        candidates = [(t_head, "output")]
    else:  # scores: the extra head may be inside the port's loss
        candidates = [(heads.PROBABILITIES, "loss")] if y.ndim == 2 and y.shape[1] > 1 else []
        candidates.append((heads.SIGMOID, "loss"))
    for head, where in candidates:
        hypothesis = _double(run, y, head, where)
        if hypothesis:
            return hypothesis
    return []


def _double(run, y, head, where):
    """The hypothesis that ``head`` is applied twice, once at ``where`` ("output": the port's
    output is already in it; "loss": the port's loss applies it before a loss that applies
    it again), applied: ``[hypothesis]`` or ``[]``."""
    targets = _targets(run.t, y, head)
    if targets is None:
        return []
    if where == "output":
        logits = heads.to_logits(head, y)
        points, twice = (logits, y), False
    else:
        logits = y
        points, twice = (y, 0.5 * y), True
    if not np.all(np.isfinite(logits)):
        return []
    # the port's loss is k times the cross-entropy that applies the head (twice, where the
    # loss applies it itself) plus what does not depend on the output (a penalty): its
    # gradient at the output is k times that cross-entropy's, at two points
    k, values = None, []
    for point in points:
        value, grad = _loss_at(run, point)
        if grad is None:
            return []
        _, ref = _reference(point, targets, head, twice)
        k = float(np.vdot(grad, ref) / np.vdot(ref, ref)) if k is None else k
        if not (k > 0 and heads.fits(grad, k * ref, run.dtype)):
            return []
        values.append(value)
    # the port without the extra head: its loss at the logits
    fixed = values[0] if not twice else values[0] + k * (
        _reference(y, targets, head, False)[0] - _reference(y, targets, head, True)[0])
    t_loss = float(run.out["loss"])
    if heads.fits(fixed, t_loss, run.dtype):
        return []  # the extra head changes nothing here: it is not what parts the losses
    composed = _composed_loss(run, fixed, logits, targets, head, k)
    if composed is None:
        return []
    eps, variant, decays = composed
    if not _gradients_reproduced(run, head, where, targets, k, eps, variant, decays):
        return []
    return [_double_text(head, where, run.torch.loss_name, t_loss, float(run.np_loss), fixed, eps,
                         variant, decays)]


def _targets(t, y, head):
    t = np.asarray(t)
    if head == heads.SIGMOID:
        return t.reshape(y.shape).astype(np.float64) if t.size == y.size else None
    if y.ndim != 2:
        return None
    if t.ndim == 1 and np.issubdtype(t.dtype, np.number) and np.all(t == np.round(t)) \
            and t.size == y.shape[0] and t.min() >= 0 and t.max() < y.shape[1]:
        return np.eye(y.shape[1])[t.astype(int)]
    if t.shape == y.shape:
        return t.astype(np.float64)
    return None


def _cross_entropy(z, targets, head, eps=0.0, variant=None):
    """The mean cross-entropy that applies ``head`` to the tensor ``z`` (softmax over its
    rows, or sigmoid of each element), with ``eps`` inside its log(s) where given."""
    import torch.nn.functional as F
    torch = _torch()
    t = torch.as_tensor(targets, dtype=z.dtype, device=z.device)
    if head == heads.SIGMOID:
        if not eps:
            return F.binary_cross_entropy_with_logits(z, t)
        p, q = torch.sigmoid(z), torch.sigmoid(-z)
        log_q = torch.log(q + eps) if variant == "both" else F.logsigmoid(-z)
        return -(t * torch.log(p + eps) + (1 - t) * log_q).mean()
    log_p = torch.log(torch.softmax(z, dim=-1) + eps) if eps else torch.log_softmax(z, dim=-1)
    return -(t * log_p).sum() / z.shape[0]


def _reference(z, targets, head, twice):
    """``(value, gradient)`` at ``z`` of the cross-entropy that applies ``head`` (twice: to the
    head of ``z``)."""
    torch = _torch()
    zt = torch.tensor(np.asarray(z, np.float64), requires_grad=True)
    with torch.enable_grad():
        inner = (torch.softmax(zt, dim=-1) if head == heads.PROBABILITIES else torch.sigmoid(zt)) \
            if twice else zt
        value = _cross_entropy(inner, targets, head)
        (grad,) = torch.autograd.grad(value, [zt])
    return float(value.detach()), grad.numpy()


def _composed_loss(run, fixed, logits, targets, head, k):
    """``(eps, variant, decays)``: the port without the extra head gives the NumPy loss, with
    an eps in the NumPy log (0.0 where none) and the penalty of the port's optimizer's decays
    (``{}`` where none); None where nothing known composes to it."""
    torch = _torch()
    shift, _ = run.known.shift("loss")
    np_loss = float(run.np_loss) + (0.0 if shift is None else float(shift))
    held = any(d.code == "weight_decay" for d in run.known.differences)
    options = [{}]
    if run.decays and not held:
        weights = {n: lam for n, lam in run.decays.items() if n in weights_of(run.np.params)}
        options += [d for d in (run.decays, weights) if d]
    z = torch.tensor(np.asarray(logits, np.float64))
    without = float(_cross_entropy(z, targets, head))

    def with_eps(variant):
        def value(eps):
            return fixed + k * (float(_cross_entropy(z, targets, head, eps, variant)) - without) \
                if eps else fixed
        return value
    variants = ("log(p + eps)", "both") if head == heads.SIGMOID else ("log(p + eps)",)
    family = {v: with_eps(v) for v in variants}
    for decays in options:
        kind = log_eps.classify(np_loss - penalty(run.np.params, decays), family, run.dtype)
        if kind is not None:
            return kind[1], kind[0], decays
    return None


def _gradients_reproduced(run, head, where, targets, k, eps, variant, decays):
    """The port without its extra head gives the NumPy gradients: autograd of its own loss,
    or of that loss with the fitted eps where the NumPy backward keeps it."""
    for with_eps in [None] + ([(variant, eps)] if eps else []):
        grads = _fixed_port_grads(run, head, where, targets, k, with_eps)
        if grads is None:
            return False
        grads = numpy_layout(run.pairing, grads)
        if any(g is None for g in grads.values()):
            return False
        predicted = {n: np.asarray(g, np.float64) + (decays[n] * np.asarray(run.np.params[n], np.float64)
                                                      if n in decays else 0.0)
                     for n, g in grads.items()}
        if gradients_part(run, predicted) is None:
            return True
    return False


def _to_logits_tensor(head, out):
    torch = _torch()
    if head == heads.SIGMOID:
        return torch.log(out) - torch.log1p(-out)
    return torch.log(out)


def _torch():
    import torch
    return torch


@contextmanager
def _output_replaced(run, replace):
    """The port's output (its ``forward``, a literal port's ``predict``) passed through
    ``replace`` for the calls inside; the running statistics and the draws it touches put
    back after."""
    side = run.torch
    name = "forward" if side.kind == "module" else "predict"
    model = side.model
    original = getattr(model, name)
    buffers = side.buffer_values()
    tape = getattr(side, "tape", None)
    missed = len(tape.missed) if tape is not None and hasattr(tape, "missed") else None
    own = model.__dict__.get(name)  # a predict set on the instance, not the class's
    setattr(model, name, lambda *a, **kw: replace(original, *a, **kw))
    try:
        yield
    finally:
        if own is None:
            delattr(model, name)
        else:
            setattr(model, name, own)
        side.load_buffers(buffers)
        if missed is not None:
            del tape.missed[missed:]  # the hypothesis's passes are no part of the check


def _port_loss(run):
    side = run.torch
    if side.loss_name == "model":
        return side.model_loss(run.tx, run.tt)
    scores = side.scores(run.tx)
    return side.losses_of(scores, run.tt)[side.loss_name]


def _loss_at(run, output):
    """The port's own loss with its output replaced by ``output``: ``(value, gradient at
    the output)``; gradient None where the loss does not reach the output."""
    torch = _torch()
    y = torch.tensor(np.asarray(output), dtype=run.torch.torch_dtype, device=run.torch.device,
                     requires_grad=True)
    with torch.enable_grad(), _output_replaced(run, lambda original, *a, **kw: y):
        loss = _port_loss(run)
        if not loss.requires_grad:
            return float(loss.detach()), None
        (grad,) = torch.autograd.grad(loss, [y], allow_unused=True)
    return float(loss.detach()), None if grad is None else grad.detach().cpu().numpy().astype(np.float64)


def _fixed_port_grads(run, head, where, targets, k, with_eps):
    """Autograd of the port's own loss with the extra head dropped: its output taken back to
    logits ("output"), or the loss's own head undone by ``k`` times the difference it makes
    ("loss"); plus ``k`` times the eps's term where ``with_eps`` is ``(variant, eps)``."""
    torch = _torch()
    kept = {}

    def replace(original, *a, **kw):
        out = original(*a, **kw)
        z = _to_logits_tensor(head, out) if where == "output" else out
        kept["z"] = z
        return z
    params = run.torch.params
    requires = {n: p.requires_grad for n, p in params.items()}
    try:
        for p in params.values():
            p.requires_grad_(True)
        with torch.enable_grad(), _output_replaced(run, replace):
            loss = _port_loss(run)
            if "z" not in kept:
                return None
            z = kept["z"]
            if where == "loss":
                inner = torch.softmax(z, dim=-1) if head == heads.PROBABILITIES else torch.sigmoid(z)
                loss = loss + k * (_cross_entropy(z, targets, head) - _cross_entropy(inner, targets, head))
            if with_eps is not None:
                variant, eps = with_eps
                loss = loss + k * (_cross_entropy(z, targets, head, eps, variant)
                                   - _cross_entropy(z, targets, head))
            if not loss.requires_grad:
                return None
            found = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    finally:
        for n, p in params.items():
            p.requires_grad_(requires[n])
    return {n: None if g is None else g.detach().cpu().numpy() for n, g in zip(params, found)}


def _double_text(head, where, name, t_loss, np_loss, fixed, eps, variant, decays):
    extra = "softmax" if head == heads.PROBABILITIES else "sigmoid"
    if where == "loss":
        what = (f"the port's output is the scores (logits), and its loss ({name}) takes {extra} "
                f"of them before a loss that takes {extra} again")
        fix = (f"drop the {extra} inside the loss: F.cross_entropy takes the scores themselves"
               if head == heads.PROBABILITIES else
               "drop the sigmoid inside the loss: F.binary_cross_entropy_with_logits takes the "
               "logits themselves")
    elif head == heads.PROBABILITIES:
        again = ("F.cross_entropy takes log_softmax of them again" if name == "cross_entropy"
                 else "the book's loss takes softmax of them again" if name == "book"
                 else f"its loss ({name}) takes softmax of them again")
        what = ("the port's output is already softmax probabilities (rows that sum to 1: an "
                f"nn.Softmax, or softmax at the end of forward), and {again}")
        fix = ("return the scores (drop the final softmax) and keep F.cross_entropy, or keep the "
               "probabilities and train with F.nll_loss(torch.log(output), t)")
    else:
        again = ("F.binary_cross_entropy_with_logits takes sigmoid of them again"
                 if name == "binary_cross_entropy_with_logits"
                 else f"its loss ({name}) takes sigmoid of them again")
        what = ("the port's output is already sigmoid probabilities (values in [0, 1]: an "
                f"nn.Sigmoid, or torch.sigmoid at the end of forward), and {again}")
        fix = ("return the logits (drop the final sigmoid) and keep "
               "binary_cross_entropy_with_logits, or keep the probabilities and train with "
               "F.binary_cross_entropy")
    known = []
    if eps:
        known.append(f"the NumPy log's eps of {log_eps.eps_text(eps)}"
                     + (" (in both logs)" if variant == "both" else ""))
    if decays:
        known.append(f"the weight-decay penalty of the port's optimizer ({', '.join(decays)})")
    composed = f", with {' and '.join(known)}" if known else ""
    text = (f"{what} (a double {extra}): the loss training computes is {t_loss:.6g} against the "
            f"NumPy {np_loss:.6g}; the port without the extra {extra} gives {fixed:.6g}, and the "
            f"NumPy loss and gradients{composed}; {fix}")
    entry = {"code": "double_softmax", "text": text, "where": where, "head": head,
             "loss": name, "torch_loss": t_loss, "without_extra_head": fixed}
    if eps:
        entry["eps"] = eps
    return entry


# --- an eps in the NumPy log, where the torch loss has none of its family --------------------

def numpy_loss_without_eps(run):
    """``(value, eps, variant)``: the NumPy loss with the eps inside its log taken off, where
    it is the mean cross-entropy of the port's output's head with a written eps (fitted as
    ``known.log_eps`` fits it) and the torch loss is of no such family (a sum of its own, the
    port's ``loss``); None otherwise. A factor between the torch loss and this value is the
    loss's reduction, with the eps composed in."""
    found = getattr(run, "heads", None)
    if found is None or run.np_loss is None or run.out.get("scores") is None:
        return None
    y = np.asarray(run.out["scores"], np.float64)
    t_head = found["torch"]
    head = heads.SIGMOID if (t_head == heads.SIGMOID or y.ndim == 1 or y.shape[-1] == 1) \
        else heads.PROBABILITIES
    targets = _targets(run.t, y, head)
    if targets is None:
        return None
    logits = heads.to_logits(head, y) if t_head == head else y
    if not np.all(np.isfinite(logits)):
        return None
    torch = _torch()
    z = torch.tensor(logits)
    shift, _ = run.known.shift("loss")
    np_loss = float(run.np_loss) + (0.0 if shift is None else float(shift))
    variants = ("log(p + eps)", "both") if head == heads.SIGMOID else ("log(p + eps)",)
    family = {v: (lambda eps, v=v: float(_cross_entropy(z, targets, head, eps, v))) for v in variants}
    kind = log_eps.classify(np_loss, family, run.dtype)
    if kind is None or not kind[1]:
        return None
    variant, eps = kind
    return np_loss - (family[variant](eps) - family[variant](0.0)), eps, variant


# --- the softmax over the wrong axis, on the port's whole pass --------------------------------

def axis_on_pass(rerun, reproduces):
    """The port rerun with each softmax or log-softmax it takes of a matrix over axis 0 (the
    batch) taken over axis 1 (the classes): named where that pass gives the NumPy loss and
    gradients. For a model with no layer rows and dropout drawn inline, where the output is
    first seen at the loss."""
    from torch.overrides import TorchFunctionMode
    torch = _torch()
    import torch.nn.functional as F
    ops = {F.softmax: "softmax", F.log_softmax: "log_softmax", torch.softmax: "softmax",
           torch.log_softmax: "log_softmax", torch.Tensor.softmax: "softmax",
           torch.Tensor.log_softmax: "log_softmax"}
    seen = []

    class OverClasses(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = dict(kwargs or {})
            if func in ops and args and getattr(args[0], "ndim", 0) == 2:
                dim = kwargs["dim"] if "dim" in kwargs else args[1] if len(args) > 1 else None
                if dim in (0, -2):
                    seen.append(ops[func])
                    if "dim" in kwargs:
                        kwargs["dim"] = 1
                    else:
                        args = (args[0], 1) + tuple(args[2:])
            return func(*args, **kwargs)
    try:
        with OverClasses():
            loss, grads = rerun()
    except Exception:  # a pass that cannot be rerun so says nothing
        return []
    if not seen or not reproduces(loss, grads):
        return []
    op = seen[0]
    text = (f"the port takes the {op} of the scores over axis 0, the batch, where the NumPy "
            f"model's is over axis 1, the classes (the port rerun with it over axis 1 gives the "
            f"NumPy loss and gradients): {op}(z, dim=0) written for dim=1; write "
            f"F.{op}(z, dim=1) (or dim=-1)")
    return [{"code": "axis", "text": text, "where": "output", "op": op, "expected_axis": 1,
             "actual_axis": 0}]
