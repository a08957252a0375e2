"""The torch side's loss, by ``--loss``: what each takes as targets, and ``t`` made to fit.

``--loss`` is one of

* ``cross_entropy`` (default), ``book``, ``model``: the classification losses
  of ``torch_side`` and the port's own ``loss(x, t)``;
* a ``torch.nn.functional`` loss by name (``NAMED``), applied with its
  defaults to the port's output and ``t``: ``F.mse_loss(output, t)``;
* ``FILE.py:fn`` (or ``package.module:fn``; in Python, the function itself):
  ``fn(output, t)`` returning a scalar tensor, handed ``t`` as the batch
  holds it.

Targets follow the loss (``target_kind``), converted for the torch side
only; the NumPy side gets the batch as it is:

=============  =================================================  =========================================
kind           losses                                             ``t`` handed to the loss
=============  =================================================  =========================================
``classes``    ``cross_entropy``, ``book``                        class indices ``(N,)``, or one-hot /
                                                                  probability rows of the output's shape
``indices``    ``nll_loss``                                       class indices; one-hot rows -> their index
``real``       ``mse_loss``, ``l1_loss``, ``smooth_l1_loss``,     real targets of the output's shape;
               ``huber_loss``, ``poisson_nll_loss``               class indices against a ``(N, C)`` output
                                                                  -> one-hot rows (the book's squared error
                                                                  against one-hot labels)
``unit``       ``binary_cross_entropy``,                          as ``real``, every target in [0, 1]
               ``binary_cross_entropy_with_logits``
``probabilities``  ``kl_div``                                     as ``real``, every target >= 0
``any``        ``model``, ``FILE.py:fn``                          the batch's ``t`` as it is
=============  =================================================  =========================================

Shapes: ``t`` ``(N,)`` against an output ``(N, 1)`` is taken as ``(N, 1)``
(and ``(N, 1)`` against ``(N,)`` as ``(N,)``), never broadcast to
``(N, N)``; any other shape that is not the output's is refused. A target
that cannot fit the loss (real values for ``nll_loss``, values outside
[0, 1] for ``binary_cross_entropy``) is refused with the reason
(``PortSetupError``, exit status 2), never passed on to fail as a mismatch.

An eps inside a log (``known.log_eps``) is a matter of classification only:
``torch_side`` computes its references (``cross_entropy`` and ``book`` of the
scores, and the family ``eps_losses``) only where the loss is ``classes`` or
``indices``, or ``any`` with class labels that fit the output, or a binary
cross-entropy by name (``eps_losses``); no other loss is ever said to have or
lack one.

Class indices at or above the output's number of columns are refused in one
line; 0/1 targets against a one-output port name the binary losses to give.
Where no loss was given, ``binary_loss_for`` picks, for such a port, the one of
``BINARY_CHOICES`` that gives the NumPy loss on the batch (the check says which).

Scores ``(N, T, V)`` against integer targets ``(N, T)`` (token ids) are taken as
``N*T`` rows (``token_rows``): the default loss is the cross-entropy averaged
over the tokens.

``loss_scales`` names the factors by which two reductions of the same
per-element losses differ (the book's ``0.5 * sum`` against ``mse_loss``'s
mean is ``N * k / 2``), for the diagnosis of a ``scale`` mismatch.
"""
from dataclasses import dataclass

import numpy as np

from .targets import PortSetupError, call_side, load_attribute, split_spec

SIDE = "torch side"
OWN = ("cross_entropy", "book", "model")
NAMED = {
    "cross_entropy": "classes",
    "nll_loss": "indices",
    "mse_loss": "real",
    "l1_loss": "real",
    "smooth_l1_loss": "real",
    "huber_loss": "real",
    "poisson_nll_loss": "real",
    "binary_cross_entropy": "unit",
    "binary_cross_entropy_with_logits": "unit",
    "kl_div": "probabilities",
}
CLASS_KINDS = ("classes", "indices")
ELEMENTWISE = ("real", "unit", "probabilities")
# the per-element loss of a squared error, for the wording of a scale factor
SQUARED = ("mse_loss",)


@dataclass(frozen=True)
class LossSpec:
    """``name`` as the report shows it; ``kind`` its targets; ``fn(output, t)`` for a named or
    user's loss (None for ``cross_entropy``, ``book``, ``model``, computed by ``torch_side``);
    ``reduction``: ``"mean"`` where the loss is known to average its per-element losses."""
    name: str
    kind: str
    fn: object = None
    functional: str = None
    reduction: str = None

    @property
    def classification(self):
        return self.kind in CLASS_KINDS


def _choices():
    return (f"{', '.join(OWN)}, a torch.nn.functional loss by name "
            f"({', '.join(n for n in NAMED if n != 'cross_entropy')}) or FILE.py:fn")


def resolve_loss(loss):
    """``--loss`` (a name, ``FILE.py:fn``, or a function) -> ``LossSpec``; ``PortSetupError``
    naming the choices for anything else."""
    if callable(loss):
        return LossSpec(getattr(loss, "__name__", type(loss).__name__), "any", _user_loss(loss))
    if not isinstance(loss, str) or not loss:
        raise PortSetupError(f"loss must be {_choices()}, got {loss!r}")
    name = loss[2:] if loss.startswith("F.") else loss
    if name == "book":  # -log(softmax + 1e-7) averaged over the batch, as the book's
        return LossSpec(name, "classes", reduction="mean")
    if name == "model":
        return LossSpec(name, "any")
    if name == "cross_entropy":  # torch_side's own, which also takes probabilities
        return LossSpec(name, "classes", functional=name, reduction="mean")
    if name in NAMED:
        import torch.nn.functional as F
        return LossSpec(name, NAMED[name], getattr(F, name), functional=name, reduction="mean")
    if split_spec(loss)[1] is not None:
        fn = load_attribute(loss, "torch loss", "loss function")
        if not callable(fn):
            raise PortSetupError(f"torch loss: {loss} is a {type(fn).__name__}, not a function "
                                 f"fn(output, t)")
        return LossSpec(loss, "any", _user_loss(fn))
    import torch.nn.functional as F
    if callable(getattr(F, name, None)) and name.endswith(("_loss", "_div", "entropy")):
        raise PortSetupError(f"--loss {name}: torch.nn.functional.{name} takes more than "
                             f"(output, target) or targets the check does not convert; write it "
                             f"as FILE.py:fn, a function fn(output, t) returning a scalar tensor")
    raise PortSetupError(f"--loss must be {_choices()}, got {loss!r}")


def _user_loss(fn):
    def loss(output, t):
        import torch
        value = fn(output, t)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            what = (f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor)
                    else type(value).__name__)
            raise PortSetupError(f"{SIDE}: the loss function returned {what}, expected a "
                                 f"scalar tensor (autograd takes the gradient through it)")
        return value.reshape(())
    return loss


def target_kind(loss):
    """The kind of targets ``loss`` takes, before it is resolved (``"any"`` for what the
    check cannot tell: the port's own loss, a user's function, a name it will refuse)."""
    if callable(loss):
        return "any"
    name = loss[2:] if isinstance(loss, str) and loss.startswith("F.") else loss
    return "classes" if name == "book" else NAMED.get(name, "any")


def token_rows(scores, t):
    """Scores ``(N, T, ..., V)`` against integer targets ``(N, T, ...)`` as the rows
    ``(N*T..., V)`` and targets ``(N*T...,)`` a classification loss takes: the
    cross-entropy is then averaged over the tokens, as ``F.cross_entropy(scores.reshape(-1,
    V), t.reshape(-1))``. Any other pair is returned as it is."""
    if (scores.dim() >= 3 and not t.is_floating_point() and t.dim() == scores.dim() - 1
            and tuple(t.shape) == tuple(scores.shape[:-1])):
        return scores.reshape(-1, scores.shape[-1]), t.reshape(-1)
    return scores, t


def _shape(t):
    return tuple(t.shape)


def _one_hot(spec, output, t):
    import torch
    classes = output.shape[-1]
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= classes):
        raise PortSetupError(f"--loss {spec.name}: t holds class indices from {int(t.min())} to "
                             f"{int(t.max())}, and the output has {classes} columns")
    return torch.nn.functional.one_hot(t, classes).to(output.dtype)


def _is_one_hot(t):
    return bool(((t == 0) | (t == 1)).all() and (t.sum(dim=-1) == 1).all())


def targets_for(spec, output, t):
    """``t`` (a tensor of the batch) made into what ``spec``'s loss takes against ``output``;
    ``PortSetupError`` when it cannot be."""
    import torch
    kind, n = spec.kind, output.shape[0]
    if kind == "any":
        return t
    integer = not t.is_floating_point()
    if kind == "indices":
        if integer and t.dim() == 1:
            return _below_columns(spec, output, t)
        if not integer and t.dim() == 1 and bool((t == t.round()).all()):
            return _below_columns(spec, output, t.long())
        if t.dim() == 2 and _shape(t) == _shape(output) and _is_one_hot(t):
            return t.argmax(dim=1)
        raise PortSetupError(f"--loss {spec.name} takes class indices (N,) or one-hot rows; t "
                             f"holds {_describe(t)}: real targets need a regression loss such "
                             f"as mse_loss")
    if kind == "classes":
        if t.dim() == 1 and (integer or bool((t == t.round()).all())):
            return _below_columns(spec, output, t.long())
        if t.dim() == 2 and _shape(t) == _shape(output) and _probability_rows(t):
            return t
        if binary_on_one_output(_shape(output), t.cpu().numpy()):
            raise PortSetupError(f"--loss {spec.name} takes one column per class, and the port "
                                 f"has one output against 0/1 targets: {BINARY_HINT}")
        raise PortSetupError(f"--loss {spec.name} takes class indices (N,) or one-hot (or "
                             f"probability) rows of the output's shape {_shape(output)}; t holds "
                             f"{_describe(t)}: real targets need a regression loss such as "
                             f"mse_loss")
    # elementwise: the output's shape
    if integer and t.dim() == 1 and output.dim() == 2 and output.shape[1] > 1:
        t = _one_hot(spec, output, t)
    elif t.dim() == 1 and output.dim() == 2 and output.shape[1] == 1 and t.shape[0] == n:
        t = t.reshape(n, 1)
    elif t.dim() == 2 and t.shape[1] == 1 and output.dim() == 1 and t.shape[0] == n:
        t = t.reshape(n)
    if _shape(t) != _shape(output):
        raise PortSetupError(f"--loss {spec.name} takes targets of the output's shape "
                             f"{_shape(output)}; t has shape {_shape(t)}")
    t = t.to(output.dtype)
    if kind == "unit" and t.numel() and (float(t.min()) < 0 or float(t.max()) > 1):
        raise PortSetupError(f"--loss {spec.name} takes targets in [0, 1]; t holds values from "
                             f"{float(t.min()):.4g} to {float(t.max()):.4g}")
    if kind == "probabilities" and t.numel() and float(t.min()) < 0:
        raise PortSetupError(f"--loss {spec.name} takes probabilities as targets; t holds "
                             f"{float(t.min()):.4g}")
    return t


BINARY_HINT = ("give --loss binary_cross_entropy_with_logits (the port returns a logit) or "
               "binary_cross_entropy (it returns a probability)")


def binary_on_one_output(output_shape, t):
    """0/1 targets, one per example, against an output of one column: a binary net."""
    n = output_shape[0] if output_shape else None
    one = len(output_shape) == 1 or (len(output_shape) == 2 and output_shape[1] == 1)
    return bool(one and t.ndim in (1, 2) and t.shape[0] == n and t.size == n and t.size
                and np.isin(t, (0, 1)).all())


def _below_columns(spec, output, t):
    """Class indices each below the output's number of columns, as cross_entropy and
    nll_loss index them (else torch stops with an IndexError)."""
    if output.dim() != 2 or not t.numel() or int(t.max()) < output.shape[1]:
        return t
    columns = output.shape[1]
    if binary_on_one_output(_shape(output), t.cpu().numpy()):
        raise PortSetupError(f"--loss {spec.name} takes one column per class, and the port has "
                             f"one output against 0/1 targets: {BINARY_HINT}")
    raise PortSetupError(f"--loss {spec.name} takes class indices below the output's {columns} "
                         f"columns; t holds indices up to {int(t.max())}")


# the losses a one-output port on 0/1 targets is trained with, the likeliest first
BINARY_CHOICES = ("binary_cross_entropy_with_logits", "binary_cross_entropy", "mse_loss")
LOG_EPS = 1e-7  # the largest epsilon inside the log a right NumPy loss is taken to hold


def binary_log_eps_gap(p, t, eps=LOG_EPS):
    """How much ``eps`` inside both logs of a binary cross-entropy of probabilities ``p``
    against targets ``t`` (NumPy arrays) changes it: a NumPy loss written with one is right."""
    p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bare = -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p))
        held = -np.mean(t * np.log(p + eps) + (1 - t) * np.log(1 - p + eps))
    gap = abs(float(held - bare))
    return gap if np.isfinite(gap) else 0.0


def binary_loss_for(np_loss, output, t, tolerance):
    """The loss of ``BINARY_CHOICES`` that gives the NumPy loss ``np_loss`` on the port's
    ``output`` (a tensor, one column) and 0/1 targets ``t`` (a tensor), within
    ``tolerance`` (``(rtol, atol)``) and, for the cross-entropies, an epsilon in the log:
    ``(name or None, {name: value})``."""
    import torch
    rtol, atol = tolerance
    values = {}
    with torch.no_grad():
        for name in BINARY_CHOICES:
            spec = resolve_loss(name)
            try:
                target = targets_for(spec, output, t)
                value = float(spec.fn(output, target))
            except (PortSetupError, RuntimeError, ValueError):
                continue
            if not np.isfinite(value):
                continue
            values[name] = value
            slack = 0.0
            if name.startswith("binary"):
                p = output if name == "binary_cross_entropy" else torch.sigmoid(output)
                slack = binary_log_eps_gap(p.cpu().numpy(), target.cpu().numpy())
            if abs(value - np_loss) <= atol + rtol * abs(np_loss) + slack:
                return name, values
    return None, values


def _probability_rows(t):
    """Non-negative rows summing to 1, to the round-off of float32 labels summed over a row
    (labels may have been stored in float32 whatever the run's dtype)."""
    sums = t.sum(dim=1)
    slack = 16 * np.finfo(np.float32).eps * t.shape[1]
    return bool((t >= 0).all() and ((sums - 1).abs() <= slack).all())


def _describe(t):
    if not t.is_floating_point():
        return f"integers of shape {_shape(t)}"
    if t.numel() == 0:
        return f"an empty array of shape {_shape(t)}"
    return (f"real values of shape {_shape(t)} (from {float(t.min()):.4g} to "
            f"{float(t.max()):.4g})")


def apply(spec, output, t):
    """``spec``'s loss of ``output`` against ``t`` (converted), a scalar tensor."""
    target = targets_for(spec, output, t)
    return call_side(SIDE, spec.name, spec.fn, output, target)


def labels_fit(t, scores):
    """``t`` are class labels for ``scores`` (N, C): indices below C, or non-negative rows of
    its shape summing to 1. Only then are the classification references taken."""
    if scores.dim() != 2:
        return False
    if t.dim() == 1:
        if t.is_floating_point() and not bool((t == t.round()).all()):
            return False
        return t.numel() == 0 or (int(t.min()) >= 0 and int(t.max()) < scores.shape[1])
    return t.dim() == 2 and _shape(t) == _shape(scores) and _probability_rows(t)


# --- the factor between two reductions, named -----------------------------------------------

# how a loss reduces its per-element losses: (coefficient, power of N, power of k) of the sum
REDUCTIONS = {
    "sum": (1.0, 0, 0),
    "0.5 * sum": (0.5, 0, 0),
    "sum / N": (1.0, -1, 0),
    "0.5 * sum / N": (0.5, -1, 0),
    "mean": (1.0, -1, -1),
    "0.5 * mean": (0.5, -1, -1),
}


# how usual each reduction is in a loss as written: a factor two pairs explain alike is
# explained by the likelier pair (the sum or the mean before the book's 0.5 * sum)
LIKELY = {"sum": 0, "mean": 0, "0.5 * sum": 1, "sum / N": 2, "0.5 * mean": 3, "0.5 * sum / N": 3}


def _expression(coef, dn, dk, k="k"):
    """``N*k/2``, ``2*N``, ``k``... for ``coef * N**dn * k**dk`` (``k`` named T for steps)."""
    num = (["2"] if coef == 2 else []) + ["N"] * (dn > 0) + [k] * (dk > 0)
    den = (["2"] if coef == 0.5 else []) + ["N"] * (dn < 0) + [k] * (dk < 0)
    text = "*".join(num) or "1"
    if den:
        text += "/" + ("*".join(den) if len(den) == 1 else f"({'*'.join(den)})")
    return text


def _described(reduction, spec, n, k, side, unit="examples", each="outputs"):
    squared = spec.functional in SQUARED
    tokens = each == "steps"
    noun = ("squared errors" if squared else "per-token losses" if tokens else
            "per-element losses" if k > 1 else f"per-{unit[:-1]} losses")
    elements = (f"the N*T = {n * k} tokens" if tokens else
                f"the N*k = {n * k} elements" if k > 1 else f"the N = {n} {unit}")
    half = reduction.startswith("0.5")
    base = reduction[6:] if half else reduction
    if base == "sum" and half and (squared or spec.functional is None):
        text = ("the book's 0.5 * sum of squares (sum_squared_error, summed over the batch too)"
                if squared else f"0.5 * the sum of the {noun} over {elements} (the book's "
                                f"sum_squared_error, where they are squared errors)")
    elif base == "sum":
        text = f"the sum of the {noun} over {elements}"
    elif base == "sum / N":
        text = (f"the sum over each sequence's T = {k} steps, averaged over the N = {n} sequences"
                if tokens else
                f"the sum over each example's k = {k} outputs, averaged over the N = {n} examples")
    else:
        text = f"the mean over {elements}"
    if half and not text.startswith(("the book's", "0.5")):
        text = "0.5 * " + text
    if side == "torch" and spec.functional and reduction == "mean":
        text += f" ({spec.functional}'s default reduction='mean')"
    return text


_TORCH_FORM = {"sum": "F.{f}(output, t, reduction='sum')",
               "0.5 * sum": "0.5 * F.{f}(output, t, reduction='sum')",
               "sum / N": "F.{f}(output, t, reduction='sum') / N",
               "0.5 * sum / N": "0.5 * F.{f}(output, t, reduction='sum') / N",
               "0.5 * mean": "0.5 * F.{f}(output, t)"}


def loss_scales(spec, output_shape, labels=False):
    """The factors ``torch loss / NumPy loss`` that two reductions of the same per-element
    losses make on an output of ``output_shape``, each with its explanation:
    ``[{"factor", "expression", "text", "likely"}]`` (``likely``: lower for the
    usual reductions). ``k``, the elements per example, is 1 for a
    classification loss (one loss per example) or class ``labels``. Where the torch loss
    is known to take the mean (a ``torch.nn.functional`` loss with its defaults, the
    book's), only its mean is the torch side's reduction."""
    if not output_shape:
        return []
    n = int(output_shape[0])
    outputs = int(np.prod(output_shape[1:], dtype=np.int64))
    k = 1 if (labels or spec.classification) else outputs
    if n < 1 or k < 1:
        return []
    if len(output_shape) >= 3 and (labels or spec.classification):
        # scores (N, T, V) of token ids: one loss per token (token_rows), T per sequence:
        # summed, averaged over the N sequences (cs231n's, the course's), or over the N*T tokens
        steps = int(np.prod(output_shape[1:-1], dtype=np.int64))
        if steps == 1:
            return _scales(spec, n, 1, unit="tokens")
        return _scales(spec, n, steps, unit="sequences", each="steps")
    found = _scales(spec, n, k)
    if labels and spec.kind == "any" and outputs > 1:
        # a loss of the user's own on class labels may still be per element of one-hot rows
        # (a binary cross-entropy over k outputs, meaned over the N*k of them): its factors,
        # less likely, where the per-example ones do not give the same
        for s in _scales(spec, n, outputs):
            if all(abs(s["factor"] / f["factor"] - 1) > 1e-12 for f in found):
                found.append({**s, "likely": s["likely"] + len(LIKELY)})
    return found


def _scales(spec, n, k, unit="examples", each="outputs"):
    names = [r for r in REDUCTIONS if k > 1 or "/ N" not in r]  # with k = 1, sum / N is the mean
    torch_names = ["mean"] if spec.reduction == "mean" else names
    found = []
    for np_r in names:
        for t_r in torch_names:
            (ca, na, ka), (cb, nb, kb) = REDUCTIONS[np_r], REDUCTIONS[t_r]
            if np_r == t_r or (ca == cb == 0.5):
                continue
            coef, dn, dk = cb / ca, nb - na, (kb - ka) if k > 1 else 0
            factor = coef * float(n) ** dn * float(k) ** dk
            if factor == 1:
                continue
            shown = (coef, dn, dk) if factor > 1 else (1 / coef, -dn, -dk)
            expression = _expression(*shown, k="T" if each == "steps" else "k")
            size = factor if factor > 1 else 1 / factor
            counts = (f"N = {n} {unit}" + (f", T = {k} {each} each" if each == "steps" else
                                           f", k = {k} {each} each" if k > 1 else ""))
            text = (f"the factor {expression} = {size:g} ({counts}): the NumPy loss is "
                    f"{_described(np_r, spec, n, k, 'numpy', unit, each)}, the torch loss "
                    f"{_described(t_r, spec, n, k, 'torch', unit, each)}")
            if spec.functional and t_r == "mean":
                form = "F.{f}(output, t)" if np_r == "mean" else _TORCH_FORM[np_r]
                text += (f"; use {form.format(f=spec.functional)} on the torch side, or the "
                         f"mean on the NumPy side")
            else:
                text += "; reduce both sides alike"
            found.append({"factor": factor, "expression": expression, "text": text,
                          "likely": LIKELY[np_r] + LIKELY[t_r]})
    return found
