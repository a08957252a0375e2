"""Softmax with loss: the book's ``SoftmaxWithLoss`` (``-log(y + 1e-7)``) and
``F.cross_entropy`` / ``nn.CrossEntropyLoss`` (no 1e-7); over time, scores ``(N, T, V)``
against word ids ``(N, T)``, with the padding masked out.

The 1e-7 is the first known difference (``log_eps``): it is derived through
the port's own autograd and added before comparing (``compare.port.known``).

``loss_mask`` (``mask_trap``), on the port's whole pass: a masked loss over time reduced
otherwise than the NumPy one. cs231n's ``temporal_softmax_loss`` sums the cross-entropy
over the words that are not ``<NULL>`` and divides by the batch size N; the book's
``TimeSoftmaxWithLoss`` with ``ignore_label`` divides by the count of those words; a port
may divide by the other, or count the padding. The port's per-step cross-entropies are
taken off the scores its loss is computed from, with the targets its loss sees (the
batch's, or cs231n's ``captions[:, 1:]`` where the captions hold one more step); the
reduction that gives the port's loss is what the port computes, and one that gives the
NumPy loss and gradients through the port's autograd is what it should. Named only then.
"""
import numpy as np

from ..tolerance import within
from .base import LayerKind
from .written import KNOWN, Written, trap

LOSS = '''def loss(scores, t):
    """The port's loss: the cross-entropy of its scores, t class indices or one-hot rows."""
    return F.cross_entropy(scores, t if t.dim() == 1 else t.argmax(dim=1))
'''


class SoftmaxLoss(LayerKind):
    def loss_values(self, scores, t):
        """The mean cross-entropy of the softmax of ``scores`` (N, C) against ``t`` (class
        indices or one-hot rows): as written, with an eps in the log (the book's ``log(y +
        1e-7)``), and with the probabilities clipped (*Neural Networks from Scratch*):
        ``_of_picked``."""
        s = np.asarray(scores, np.float64)
        labels = _labels(s, t)
        if labels is None:
            return []
        shifted = s - s.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        picked = log_p[np.arange(len(s)), labels]
        return _of_picked(picked, np.exp(picked))

    def head(self, scores):
        """Softmax over each row: the head a NumPy model may end in (nnfs's
        ``Activation_Softmax`` before ``Loss_CategoricalCrossentropy``)."""
        s = np.asarray(scores, np.float64)
        if s.ndim != 2 or s.shape[1] < 2:
            return None
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def head_losses(self, probabilities, t):
        """The mean cross-entropy of softmax probabilities (N, C): as ``loss_values``, the
        log of the probability of each row's class taken as it is, with an eps, clipped."""
        p, labels = np.asarray(probabilities, np.float64), _labels(probabilities, t)
        if labels is None:
            return []
        picked = p[np.arange(len(p)), labels]
        with np.errstate(divide="ignore"):
            return _of_picked(np.log(picked), picked)

    def write(self, seen):
        if seen.layer is not None and self.head(seen.input) is not None and seen.output is not None:
            return Written(loss=LOSS, conventions=[
                ("the NumPy softmax before a cross-entropy of its probabilities is the loss's head, "
                 "not a layer: the port returns the scores it takes and F.cross_entropy (loss() "
                 "below) applies it; a port returning the probabilities into F.cross_entropy "
                 "would apply it twice", trap("double_softmax")),
                ("a clip or an eps in the NumPy log is a known difference, sized by the check "
                 "(log_eps)", KNOWN)])
        return Written(loss=LOSS, conventions=[
            ("the NumPy softmax-with-loss is the loss, not a layer: the port returns scores and "
             "F.cross_entropy (loss() below) takes them; an eps inside the NumPy log (the book's "
             "1e-7) is a known difference, sized by the check (log_eps)", KNOWN)])


def _labels(scores, t):
    """``t`` as class indices into the columns of ``scores`` (N, C); None where it is not."""
    s, t = np.asarray(scores), np.asarray(t)
    if s.ndim != 2 or len(t) != len(s) or t.ndim not in (1, 2):
        return None
    if t.ndim == 2 and (t.shape != s.shape or not np.isin(t, (0, 1)).all()
                        or not (t.sum(axis=1) == 1).all()):
        return None  # real targets, not one-hot rows
    labels = t if t.ndim == 1 else t.argmax(axis=1)
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= s.shape[1]:
        return None
    return labels


# the eps a NumPy cross-entropy writes inside its log or clips to (the book's 1e-7, the
# course's 1e-8, a blog's 0.001), for a loss known by its values; each verified by the writer
# at two sets of parameter values, and sized by the check as the known difference log_eps
WRITTEN_EPS = (1e-7, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8, 1e-9, 1e-10, 1e-12, 1e-15)


def _of_picked(log_picked, picked):
    """The mean cross-entropy of each row's class probability: its log as it is, then with
    each eps of ``WRITTEN_EPS`` inside (the book's ``log(y + 1e-7)``) and clipped to ``[eps,
    1 - eps]`` (*Neural Networks from Scratch*)."""
    out = [float(-log_picked.mean())]
    for eps in WRITTEN_EPS:
        out += [float(-np.log(picked + eps).mean()), float(-np.log(np.clip(picked, eps, 1 - eps)).mean())]
    return out


TIME_LOSS = '''def loss(scores, t):
    """The port's loss: the cross-entropy of its scores (N, T, V) against the word ids t (N, T),
    the mean over the N*T tokens{masked}."""
    return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), t.reshape(-1){ignore})
'''


class TimeSoftmaxLoss(LayerKind):
    """The book's ``TimeSoftmaxWithLoss``: the mean over the tokens whose target is not its
    ``ignore_label``, which ``F.cross_entropy``'s ``ignore_index`` leaves out alike."""

    def write(self, seen):
        ignore = seen.setting("ignore_label", "ignore_index")
        masked = isinstance(ignore, (int, np.integer)) and not isinstance(ignore, bool)
        source = TIME_LOSS.format(
            masked=f" whose id is not {int(ignore)} (the NumPy ignore_label)" if masked else "",
            ignore=f", ignore_index={int(ignore)}" if masked else "")
        return Written(loss=source, conventions=[
            ("the NumPy time softmax-with-loss is the loss, not a layer: the port returns scores "
             "(N, T, V) and F.cross_entropy (loss() below) takes them as N*T token rows, the mean "
             "over the tokens as the NumPy loss takes it", "docs/traps.md#scale-over-time")])


KIND = SoftmaxLoss("softmax_loss", numpy_names=("SoftmaxWithLoss", "SoftmaxLoss",
                                              "ActivationSoftmaxLossCategoricalCrossentropy"),
                 torch_modules=("CrossEntropyLoss",), torch_functions=("cross_entropy",))
TIME_KIND = TimeSoftmaxLoss("time_softmax_loss", numpy_names=("TimeSoftmaxWithLoss",))


# the NumPy model's own name for its padding id: cs231n's CaptioningRNN keeps ``_null``, the
# book's TimeSoftmaxWithLoss ``ignore_label``
NULL_NAMES = ("_null", "null", "NULL", "ignore_label", "ignore_index", "pad", "pad_idx",
              "padding_idx")
MASKED = ("sum / N", "token mean", "sum / (N*T)")
ALL = ("all / N", "all mean")


def _targets(t, scores):
    """The targets the loss takes at each step: ``t`` of the scores' ``(N, T)``, or the
    captions ``(N, T + 1)`` less their first word, as cs231n's loss splits them."""
    n, steps = scores.shape[:2]
    if t.dim() != 2 or t.is_floating_point() or t.shape[0] != n:
        return None
    if t.shape[1] == steps:
        return t
    if t.shape[1] == steps + 1:
        return t[:, 1:]
    return None


def _nulls(np_side, y):
    """The values that may mark padding, the likeliest first: the NumPy model's own, -1,
    then the values of the last step (padding fills the rows' ends); only those held."""
    found = []
    inner = getattr(np_side, "inner", None)
    for name in NULL_NAMES:
        value = getattr(inner, name, None)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            found.append(int(value))
    found.append(-1)
    values, counts = np.unique(y[:, -1], return_counts=True)
    found += [int(v) for v in values[np.argsort(-counts, kind="stable")]]
    held = set(np.unique(y).tolist())
    return [v for v in dict.fromkeys(found) if v in held][:4]


def _reduced(ce, mask, n):
    """Each reduction of the per-step losses ``ce`` (N, T), by name."""
    steps = ce.numel()
    kept = (ce * mask).sum()
    return {"sum / N": kept / n, "token mean": kept / mask.sum(), "sum / (N*T)": kept / steps,
            "all / N": ce.sum() / n, "all mean": ce.sum() / steps}


def _described(name, null, count, n, steps):
    pad = f"the padding (target {null})"
    return {
        "sum / N": f"summed over the {count} words that are not padding (target {null}) and "
                   f"divided by the batch size N = {n}",
        "token mean": f"averaged over the {count} words that are not padding (target {null})",
        "sum / (N*T)": f"summed over the {count} words that are not padding (target {null}) "
                       f"and divided by N*T = {steps}",
        "all / N": f"summed over all N*T = {steps} steps, {pad} counted, and divided by N = {n}",
        "all mean": f"averaged over all N*T = {steps} steps, {pad} counted",
    }[name]


def _fix(port, numpy, null, n):
    if port in ALL and numpy in MASKED:
        how = {"sum / N": f"and divide the sum by N = {n}", "token mean": "and average over them",
               "sum / (N*T)": "and divide the sum by N*T"}[numpy]
        return (f"leave the padding out: weight each step's loss by (target != {null}) {how} "
                f"(F.cross_entropy(..., ignore_index={null}, reduction='sum') sums without it)")
    if port in MASKED and numpy in ALL:
        return "count every step, the padding too, as the NumPy loss does"
    return {"sum / N": f"divide the masked sum by the batch size N = {n} (features.shape[0]), "
                       f"not by the count of words",
            "token mean": "divide the masked sum by the count of words that are not padding "
                          "(mask.sum())",
            "sum / (N*T)": "divide the masked sum by N*T",
            "all / N": f"divide by N = {n}", "all mean": "take the mean over every step"}[numpy]


def mask_trap(run, reproduces):
    """``loss_mask`` on the port's whole pass (module docstring): ``[entry]`` or ``[]``.
    ``reproduces(out, grads)``: the port's outputs ``out`` and gradients ``grads`` (torch
    names) give the NumPy loss and gradients."""
    import torch
    side = run.torch
    try:
        with side.loss_with_scores(run.tx, run.tt) as (loss, scores):
            if scores is None or scores.dim() != 3 or not scores.is_floating_point():
                return []
            y = _targets(run.tt, scores)
            if y is None or not y.numel() or int(y.max()) >= scores.shape[-1]:
                return []
            n, steps = int(scores.shape[0]), int(y.numel())
            log_p = torch.log_softmax(scores, dim=-1)
            ce = -log_p.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            port_value = float(loss.detach())
            names, params = list(side.params), list(side.params.values())
            y_np = y.cpu().numpy()
            for null in _nulls(run.np, y_np):
                mask = (y != null).to(ce.dtype)
                reductions = _reduced(ce, mask, n)
                if null < 0:  # a negative target indexes nothing: the port cannot count it
                    reductions = {k: v for k, v in reductions.items() if k in MASKED}
                elif bool((y < 0).any()):
                    continue
                port = [k for k, v in reductions.items() if within(port_value, float(v.detach()), run.dtype)]
                if not port:
                    continue
                for name, value in reductions.items():
                    if name in port or within(port_value, float(value.detach()), run.dtype):
                        continue
                    if name not in MASKED and port[0] not in MASKED:
                        continue  # no mask on either side: a reduction's factor (scale)
                    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
                    grads = {k: None if g is None else g.detach().cpu().numpy() for k, g in zip(names, grads)}
                    if not reproduces({**run.out, "loss": float(value.detach())}, grads):
                        continue
                    count = int(mask.sum())
                    return [{"code": "loss_mask", "reduction": {"port": port[0], "numpy": name},
                             "null": null,
                             "text": f"the port's loss is the cross-entropy "
                                     f"{_described(port[0], null, count, n, steps)}; the NumPy "
                                     f"loss is the same cross-entropy "
                                     f"{_described(name, null, count, n, steps)} "
                                     f"(the port's per-step losses so reduced give the NumPy loss "
                                     f"and gradients): {_fix(port[0], name, null, n)}"}]
    except Exception:  # a pass the hypothesis cannot be computed on says nothing
        return []
    return []
