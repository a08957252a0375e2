"""The binary cross-entropy of sigmoid outputs, as a loss known by its values (``by_value.py``).

A features-first net of the deeplearning.ai course ends in ``AL = sigmoid(Z)`` and its cost is
``-(Y log AL + (1 - Y) log(1 - AL)) / m``; Michael Nielsen's ``CrossEntropyCost`` sums that over
the outputs too (one-hot ``y``), and a blog's MLP writes ``log(AL + 0.001)``. The sigmoid before
such a cost is the loss's head: the port returns the logits it takes and
``F.binary_cross_entropy_with_logits`` applies it, summed over the outputs and meaned over the
examples (for one output, the usual mean). An eps inside the NumPy logs is a known difference
(``log_eps``), sized by the check; here it is one of the written numbers, verified at two sets of
parameter values by the writer.
"""
import numpy as np

from .base import LayerKind
from .softmax_loss import WRITTEN_EPS
from .written import KNOWN, Written, trap

LOSS = '''def loss(scores, t):
    """The port's loss: the binary cross-entropy of its logits (N, k), summed over the k
    outputs and meaned over the N examples; t 0/1 targets, or class indices for k > 1."""
    if t.dim() == 1 and scores.shape[1] > 1:
        t = F.one_hot(t.long(), scores.shape[1])
    target = t.reshape(scores.shape).to(scores.dtype)
    return F.binary_cross_entropy_with_logits(scores, target, reduction="sum") / scores.shape[0]
'''

# the eps a NumPy binary cost writes inside its logs (0: none), in both logs or clipped
EPS = (0.0, *WRITTEN_EPS)


class BinaryLoss(LayerKind):
    def head(self, scores):
        s = np.asarray(scores, np.float64)
        return None if s.ndim != 2 else 0.5 * (1 + np.tanh(0.5 * s))

    def head_losses(self, probabilities, t):
        """The cross-entropy of sigmoid probabilities (N, k) against 0/1 targets (or class
        indices, one-hot, for k > 1), summed over the outputs and meaned over the examples:
        as it is, with each eps of ``EPS`` in both logs, and clipped to ``[eps, 1 - eps]``."""
        p = np.asarray(probabilities, np.float64)
        y = _targets(p, t)
        if y is None:
            return []
        out = []
        with np.errstate(divide="ignore", invalid="ignore"):
            for eps in EPS:
                for a, b in ((p + eps, 1 - p + eps), (np.clip(p, eps, 1 - eps),) * 2):
                    b = 1 - a if b is a else b
                    terms = -(y * np.log(a) + (1 - y) * np.log(b))
                    value = float(np.nan_to_num(terms).sum() / len(p))
                    if np.isfinite(value):
                        out.append(value)
        return out

    def loss_values(self, scores, t):
        """The same of the logits: ``head_losses`` of their sigmoid, with no eps."""
        p = self.head(scores)
        return [] if p is None else self.head_losses(p, t)[:1]

    def write(self, seen):
        # one output: torch's own mean, which the check sizes an eps in the NumPy logs against
        single = seen.input is not None and np.ndim(seen.input) == 2 and np.shape(seen.input)[1] == 1
        given = "binary_cross_entropy_with_logits" if single else "loss"
        return Written(loss=LOSS, loss_given=given, conventions=[
            ("the NumPy sigmoid before a binary cross-entropy of its outputs is the loss's head, "
             "not a layer: the port returns the logits and F.binary_cross_entropy_with_logits "
             "(loss() below) applies it", trap("double_softmax")),
            ("an eps in the NumPy logs is a known difference, sized by the check (log_eps)", KNOWN)])


def _targets(p, t):
    """``t`` as 0/1 targets of the shape of ``p`` (N, k); None where it is not such."""
    t = np.asarray(t)
    if p.ndim != 2 or len(t) != len(p):
        return None
    if t.ndim == 1 and p.shape[1] > 1:
        if not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= p.shape[1]:
            return None
        return np.eye(p.shape[1])[t]
    if t.size != p.size or not np.isin(t, (0, 1)).all():
        return None
    return t.reshape(p.shape).astype(np.float64)


KIND = BinaryLoss("binary_loss", numpy_names=())
