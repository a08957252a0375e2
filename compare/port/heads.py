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
compare the outputs, and says so. Logits that happen to lie in [0, 1] (a
one-output net with a sigmoid before its last layer) read as sigmoid
probabilities by value: an output so read is also tried as scores, converted
only where that makes the two agree. It never changes what is judged: the loss
is the one training computes from the port's own output (``torch_side``).

A port whose output is already probabilities, fed to a loss that applies the
softmax or the sigmoid again, is a double softmax; a softmax over the batch axis
is a softmax over the wrong axis: both are tested on a check's run in
``check/output_head.py``, with the conversions here.
"""
import numpy as np

from .tolerance import within

SCORES = "scores"
PROBABILITIES = "probabilities"
LOG_PROBABILITIES = "log-probabilities"
SIGMOID = "sigmoid probabilities"


def _slack(a, scale=1.0):
    eps = np.finfo(a.dtype).eps if np.issubdtype(a.dtype, np.floating) else 0.0
    return 16 * eps * a.shape[-1] * scale


def head_of(a):
    """The head of an output array (see the table above)."""
    a = np.asarray(a)
    if not np.issubdtype(a.dtype, np.floating) or a.ndim < 1 or not a.size \
            or not np.all(np.isfinite(a)):
        return SCORES
    # over the last axis: (N, C) rows, or a sequence's (N, T, V) tokens
    if a.ndim >= 2 and a.shape[-1] > 1:
        if (a >= 0).all() and np.all(np.abs(a.sum(axis=-1) - 1) <= _slack(a)):
            return PROBABILITIES
        # exp carries the round-off of the log-probabilities, relative to their size
        if (a <= 0).all() and np.all(np.abs(np.exp(a).sum(axis=-1) - 1)
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


def fits(a, e, dtype):
    """``a`` equals ``e`` within the port's tolerance for ``e``."""
    return np.shape(a) == np.shape(e) and within(e, a, dtype)


def readings(a):
    """The heads an output can be: its head by value, and scores too where every value lies
    in [0, 1] (logits that happen to, as a net with a sigmoid before its last layer gives)."""
    head = head_of(a)
    return (head, SCORES) if head == SIGMOID else (head,)


def match(np_out, t_out, dtype):
    """``(np_out, t_out, note, heads)``: the two outputs brought to one head where their
    heads differ and one is a step of the other; ``heads`` is ``{"numpy", "torch",
    "converted", "numpy_output"}`` (the side converted or None; the NumPy output in the
    port's head where that is the side converted or none is). A conversion is made where
    it makes the two agree; softmax of scores that hold negatives against probabilities
    also where it does not (a port's logits against a NumPy softmax are compared as
    probabilities, for the diagnosis). An output read as sigmoid probabilities is also
    tried as scores (``readings``), converted only where that makes the two agree."""
    np_head, t_head = head_of(np_out), head_of(t_out)
    heads = {"numpy": np_head, "torch": t_head, "converted": None, "numpy_output": np_out}
    if np.shape(np_out) != np.shape(t_out):
        return np_out, t_out, None, heads
    for side, source, target in (("torch", t_out, np_out), ("numpy", np_out, t_out)):
        for head in readings(source):
            for other in readings(target):
                found = CONVERSIONS.get((head, other))
                if found is None:
                    continue
                fn, name = found
                converted = fn(np.asarray(source, np.float64)).astype(np.result_type(source))
                a, e = (converted, np_out) if side == "torch" else (t_out, converted)
                if not (fits(a, e, dtype) or (name == "softmax" and (np.asarray(source) < 0).any())):
                    continue
                heads.update(converted=side, **{side: head, ("numpy" if side == "torch" else "torch"): other})
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


def are_labels(np_out, t_out):
    """A NumPy output of integer class labels, one per row, against the port's ``(N, C)``."""
    np_out, t_out = np.asarray(np_out), np.asarray(t_out)
    return (np_out.dtype.kind in "iu" and t_out.ndim == 2 and t_out.shape[1] > 1
            and np_out.size == t_out.shape[0] and np_out.ndim <= 2)


def argmax_with_ties(scores, tol):
    """``(labels, ties)``: each row's argmax, and where its two best scores are within the
    tolerance ``tol`` of each other (round-off may order them either way)."""
    labels = np.argmax(scores, axis=1)
    ordered = np.sort(scores, axis=1)
    top, second = ordered[:, -1], ordered[:, -2]
    ties = (top - second) <= 2 * (tol.atol + tol.rtol * np.abs(top))
    return labels, ties
