"""An epsilon inside the log of a classification loss: ``-log(y + eps)`` on one side, none
(or another) on the other.

The book writes ``-log(y + 1e-7)``, the deeplearning.ai course ``log(AL + 1e-10)`` or
``1e-8`` in both logs of a binary cross-entropy; ``F.cross_entropy`` and
``F.binary_cross_entropy_with_logits`` have none. The port's own output gives the
family ``L(eps)`` of its loss with ``eps`` in the log (``TorchSide.eps_losses``: softmax
cross-entropy; binary cross-entropy with the eps in ``log(p)`` alone or in both logs).

Each side's loss is classified: without an eps (within the tolerance of ``L(0)``), or
with the eps fitted from it (``L(eps) = loss``, solved on a log scale). A fit is
accepted only when the eps is a number one writes (one significant digit, ``1e-10``,
``5e-8``, or float32's or float64's machine epsilon) within what the loss's tolerance
leaves of it, and that number, applied, gives the loss: an arbitrary offset of a loss
is no eps. The gradients are classified the same way, against the port's own autograd
of ``L(0)`` and of ``L(eps)`` (a backward may leave the eps out, as the course's
``dAL = -(Y / AL - (1 - Y) / (1 - AL))`` does). Where the two sides are of different
kinds, the difference, derived through the port, is added to the NumPy value before
comparing, and named with the eps's value. The diagnosis is handed the same gap at
every row (``hints``), so a mismatch equal to it is named.

Against a regression loss this source finds nothing and hints nothing.
"""
import math

import numpy as np

from ..pairing import numpy_layout
from ..targets import PortSetupError
from ..tolerance import port_tolerance
from .difference import Known, KnownDifference

CODE = "log_eps"
BOOK_EPS = 1e-7
# machine epsilons one may write as the eps: np.finfo(np.float32).eps, np.finfo(float).eps
MACHINE = (float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps))
SEARCH = (1e-30, 0.5)  # the eps a loss is fitted within (log scale)


def has_references(out):
    """The port's classification references were taken (the loss is a classification one
    and ``t`` class labels, ``compare.port.losses``)."""
    return out["losses"] is not None and "book" in out["losses"]


def eps_text(eps):
    """``1e-7``, ``5e-10``, ``1.19e-07``: an eps as one writes it."""
    if eps == 0:
        return "0"
    k = math.floor(math.log10(eps))
    m = eps / 10 ** k
    if abs(m - round(m)) < 1e-9 * m:
        return f"{round(m)}e{k}"
    return f"{eps:.3g}"


def label(eps):
    return f"{eps_text(eps)} gap"


def _family(out):
    return out.get("eps_losses") or {}


def _fit(fn, value, zero):
    """The eps with ``fn(eps) = value`` (``fn`` decreasing from ``zero = fn(0)``), or None."""
    lo, hi = math.log(SEARCH[0]), math.log(SEARCH[1])
    if not value < zero or fn(math.exp(hi)) > value or fn(math.exp(lo)) < value:
        return None
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if fn(math.exp(mid)) > value:
            lo = mid
        else:
            hi = mid
    return math.exp(0.5 * (lo + hi))


def _written(eps, spread):
    """The number one writes that ``eps`` is, within ``spread``: one significant digit, or a
    machine epsilon; None when none is that near."""
    k = math.floor(math.log10(eps))
    candidates = [round(eps / 10 ** k) * 10 ** k, 10 ** (k + 1)] + list(MACHINE)
    near = [c for c in candidates if abs(c - eps) <= spread]
    return min(near, key=lambda c: abs(c - eps)) if near else None


def _close(a, b, tol):
    return abs(a - b) <= tol.atol + tol.rtol * abs(b)


def classify(value, family, dtype):
    """Which loss of the family ``value`` is: ``(variant, eps)``, eps 0.0 where it is within
    the tolerance of the loss without one (``variant`` None then), or None when no written
    eps of any variant gives it."""
    if not family:
        return None
    tol = port_tolerance(np.array(value), dtype)
    zero = next(iter(family.values()))(0.0)
    if _close(value, zero, tol):
        return (None, 0.0)
    found = []
    for variant, fn in family.items():
        eps = _fit(fn, value, zero)
        if eps is None:
            continue
        # how far eps may be from the fit for the loss to stay within its tolerance
        slope = abs(fn(eps * 1.01) - fn(eps * 0.99)) / (0.02 * eps)
        allowed = tol.atol + tol.rtol * abs(value)
        written = _written(eps, allowed / slope if slope else math.inf)
        if written is not None and _close(value, fn(written), tol):
            found.append((abs(written - eps) / written, variant, written))
    if not found:
        return None
    _, variant, eps = min(found)
    return (variant, eps)


def loss_kinds(np_loss, out, loss_name, dtype):
    """``(numpy kind, torch kind)`` of the two losses on one batch, each ``(variant, eps)``
    or None (``classify``); the torch one by name where its name says it."""
    family = _family(out)
    if not family:
        return None, None
    np_kind = classify(np_loss, family, dtype)
    if loss_name == "book":
        t_kind = ("log(p + eps)", BOOK_EPS)
    elif loss_name in ("cross_entropy", "nll_loss", "binary_cross_entropy",
                       "binary_cross_entropy_with_logits"):
        t_kind = (None, 0.0)
    else:
        t_kind = classify(out["loss"], family, dtype)
    if np_kind is None and (t_kind is None or t_kind[1] == 0.0):
        # both losses may hold a term of their own (a penalty the port's loss adds too): an
        # eps on one side is then what parts them, if anything
        tol = port_tolerance(np.array(np_loss), dtype)
        zero = next(iter(family.values()))(0.0)
        d = np_loss - out["loss"]
        for sign in (1, -1):
            kind = classify(zero + sign * d, family, dtype)
            if kind is not None and kind[1] and _close(sign * d, family[kind[0]](kind[1]) - zero, tol):
                return (kind, (None, 0.0)) if sign == 1 else ((None, 0.0), kind)
    return np_kind, t_kind


def _gap(kind_from, kind_to, value):
    """``value(kind_to) - value(kind_from)``: what to add to a value of ``kind_from`` so it
    is of ``kind_to``; None when nothing is to be added or either is unknown."""
    if kind_from is None or kind_to is None or kind_from[1] == kind_to[1]:
        return None
    return value(kind_to) - value(kind_from)


def _variant(*kinds):
    return next((k[0] for k in kinds if k is not None and k[0] is not None), None)


def _eps_words(kind):
    if kind[1] == 0.0:
        return "no eps in the log"
    shown = eps_text(kind[1])
    return f"log(p + {shown})" + (f" and log(1 - p + {shown})" if kind[0] == "both" else "")


def _difference(what, np_kind, t_kind, rows, size, how):
    eps = np_kind[1] or t_kind[1]
    text = (f"{what}: the NumPy side's has {_eps_words(np_kind)}, the torch side's "
            f"{_eps_words(t_kind)}: an eps of {eps_text(eps)} inside the log of the "
            f"loss (fitted from the two losses and checked to give them), which accounts for "
            f"{abs(size):.3g} here, derived through the port ({how}) and added before comparing")
    return KnownDifference(CODE, label(eps), what, rows, text, abs(size))


def _hint_kinds(np_kind, t_kind, family):
    """The two kinds a mismatch would be told apart by: the sides' own where they differ,
    else the book's 1e-7 against none (the usual one)."""
    if np_kind is not None and t_kind is not None and np_kind[1] != t_kind[1]:
        return np_kind, t_kind
    variant = _variant(np_kind, t_kind) or next(iter(family))
    return (None, 0.0), (variant, BOOK_EPS)


def at_loss(np_loss, out, loss_name, dtype, context=None):
    family = _family(out)
    if not family:
        return Known()
    np_kind, t_kind = loss_kinds(np_loss, out, loss_name, dtype)
    variant = _variant(np_kind, t_kind)

    def value(kind):
        return family[kind[0] or variant or next(iter(family))](kind[1])
    shift = _gap(np_kind, t_kind, value)
    if (context or {}).get("outputs_part"):
        shift = None  # the outputs part before the loss: its gap is no eps of a log
    found = [] if shift is None else [_difference("loss", np_kind, t_kind, {"loss": np.array(shift)},
                                                  float(shift), "L(eps) of its output")]
    a, b = _hint_kinds(np_kind, t_kind, family)
    hint = {"loss": {CODE: np.array(value(b) - value(a)), "log_eps_value": a[1] or b[1]}}
    return Known(found, hint)


def _grads(run, kind, variant):
    """The port's own gradients of ``L(eps)`` (``kind``'s eps): ``(capture, grads)``."""
    capture, grads, _ = run.torch.recorded_pass(run.tx, run.tt, ("log_eps", kind[0] or variant, kind[1]))
    zeros = {k: np.zeros(tuple(v.shape)) for k, v in run.torch.params.items()}
    return capture, {k: zeros[k] if v is None else v for k, v in grads.items()}


def _grad_kind(grads, refs, dtype):
    """Which of ``refs`` (``{kind: grads}``) the gradient dict ``grads`` is: a kind, or
    ``"either"`` when it is all of them, None when none."""
    def close(g, r):
        if g is None or not np.all(np.isfinite(r)):
            return False
        tol = port_tolerance(r, dtype)
        return g is not None and g.shape == r.shape and np.all(np.abs(g - r) <= tol.atol + tol.rtol * np.abs(r))
    fits = [kind for kind, ref in refs.items() if all(close(grads[k], ref[k]) for k in grads)]
    if len(fits) == len(refs) > 1:
        return "either"
    return fits[0] if len(fits) == 1 else None


def _without_earlier(run, earlier):
    """The NumPy loss and gradients with the known differences of the sources before this
    one (weight decay's) taken off, for the classification."""
    others = Known([d for d in run.known.differences if d.code != CODE])
    loss_shift, _ = others.shift("loss")
    np_loss = run.np_loss + (0.0 if loss_shift is None else float(loss_shift))
    grads = run.np_grads
    if grads is not None and earlier is not None:
        grads = dict(grads)
        for name in list(grads):
            shift, _ = earlier.shift(("param", name))
            if shift is not None:
                grads[name] = grads[name] + shift
    return np_loss, grads


def at_backward(run, t_grads, numerical, earlier=None):
    family = _family(run.out)
    if run.out["scores"] is None or not family:
        return Known()
    np_loss, np_grads = _without_earlier(run, earlier)
    np_loss_kind, t_loss_kind = loss_kinds(np_loss, run.out, run.torch.loss_name, run.dtype)
    variant = _variant(np_loss_kind, t_loss_kind) or next(iter(family))
    # the kinds gradients are told apart by: none, and each eps a loss was fitted with
    kinds = {(None, 0.0)} | {k for k in (np_loss_kind, t_loss_kind) if k is not None}
    a, b = _hint_kinds(np_loss_kind, t_loss_kind, family)
    kinds |= {a, b}
    try:
        refs = {k: _grads(run, k, variant) for k in kinds}
    except PortSetupError:
        return Known()
    grads = {k: numpy_layout(run.pairing, g) for k, (_, g) in refs.items()}
    t_kind = t_loss_kind if run.t_source.startswith("autograd") else _grad_kind(t_grads, grads, run.dtype)
    np_kind = np_loss_kind if numerical else _grad_kind(np_grads, grads, run.dtype)
    rows, hints = {}, {}
    captures = {k: cap for k, (cap, _) in refs.items()}
    hint_value = a[1] or b[1]

    def layer_gap(j, k_from, k_to):
        x, y = captures[k_from].records[j].grad_output, captures[k_to].records[j].grad_output
        return None if x is None or y is None else y - x
    for j in range(len(captures[a].records)):
        gap = layer_gap(j, a, b)
        if gap is not None:
            hints[("layer", j)] = {CODE: gap, "log_eps_value": hint_value}
        if _shifts(np_kind, t_kind):
            rows[("layer", j)] = layer_gap(j, np_kind, t_kind)
    for name in grads[a]:
        hints[("param", name)] = {CODE: grads[b][name] - grads[a][name], "log_eps_value": hint_value}
        if _shifts(np_kind, t_kind):
            rows[("param", name)] = grads[t_kind][name] - grads[np_kind][name]
    found = []
    if _shifts(np_kind, t_kind):
        size = max(float(np.max(np.abs(v))) for k, v in rows.items() if k[0] == "param" and v is not None)
        found.append(_difference("gradient", np_kind, t_kind, rows, size,
                                 "autograd of L(eps) - L(eps') of its output"))
    return Known(found, hints)


def _shifts(np_kind, t_kind):
    return (isinstance(np_kind, tuple) and isinstance(t_kind, tuple) and np_kind[1] != t_kind[1])
