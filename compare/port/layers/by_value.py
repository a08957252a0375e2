"""Layers known by their values, for ``compare write-port``.

A kind is recognised by the class name of a NumPy layer (``Affine``, ``Relu``). Code written
otherwise has no such name: a layer object of the user's own class (``Layer_Dense``, weights
``(n_in, n_out)`` and biases ``(1, n_out)``), or a forward written inline with no layer at all
(``hidden = np.maximum(0, X.dot(W1) + b1)``), whose arrays the inside pass records
(``reference/inside.py``). Such a step is known by what it computes instead: the kind whose
operation (``computes``), applied to the step's input and to parameters of the model,
reproduces the recorded output within the port's round-off tolerance, alone or followed by a
kind without parameters (an affine then its activation, one line). A step of several lines
(a batch norm's ``mu``, ``var``, ``X_norm``, then ``out``) is known at its last: the arrays
before it that no kind makes are its intermediates, where it is made from the last array
known. A kind is named only where
its operation reproduces the values, and only one way of reproducing them may remain: where
two differ on this pass (a ReLU on an input with no negative entry, two weights of one shape
and one value), the step is refused rather than guessed (an inline pass is first followed
again at its parameters negated, where a last affine whose outputs all kept one sign flips
it). The loss likewise: the model's loss is a loss kind's value of the last scores
(``loss_values``), or that plus a weight-decay penalty the writer fits and verifies.

A loss kind's head (``head``: softmax rows, a sigmoid) the NumPy model computes before its loss
is the loss's, not a layer: where the last array is the head of the one before and the model's
loss is one of that kind's ``head_losses`` of it, the port returns the array before.

The writer then hands each step to its kind's own ``write``, as it does a layer known by name.
"""
import numpy as np

from ..tolerance import within
from .written import CannotWrite


def steps_of(x, output, params, dtype, every=False):
    """``[(kind, held)]``: the one or two steps (a kind with parameters, then one without on
    its output) that reproduce ``output`` on ``x`` from parameters of ``params``; ``every``:
    only those that use every array of ``params`` (a layer object's own arrays). ``None``
    where none does; ``CannotWrite`` where two that differ do."""
    from . import KINDS
    if x is None or output is None or not np.issubdtype(np.asarray(x).dtype, np.floating):
        return None
    found = []
    for kind in KINDS:
        for held, value in kind.computes(x, params):
            if np.shape(value) != np.shape(output):
                continue
            if within(output, value, dtype):
                found.append(((kind, held),))
            if held:
                for then in KINDS:
                    for _, after in then.computes(value, {}):
                        if within(output, after, dtype):
                            found.append(((kind, held), (then, {})))
    if every:
        found = [f for f in found if {n for _, held in f for n in held.values()} == set(params)]
    found = _distinct(found)
    if not found:
        return None
    most = max(len(_used(f)) for f in found)  # a bias that is there is used (b = 0 or not)
    found = [f for f in found if len(_used(f)) == most]
    if len(found) > 1:
        shown = " and ".join(_shown(f) for f in found[:2])
        raise CannotWrite(f"its values are reproduced by {shown} alike on this batch, so they "
                          f"cannot tell which it is")
    return list(found[0])


def _distinct(found):
    """One of the steps that use the same parameters in the same roles: the values of each
    reproduce the output alike, so the settings they differ by (an eps of 1e-7 or 1e-8 on
    a wide variance) are not told apart by this pass, and the first, the usual one, is kept."""
    out, seen = [], []
    for steps in found:
        key = [(kind.name, dict(held)) for kind, held in steps]
        if key not in seen:
            seen.append(key)
            out.append(steps)
    return out


def _used(steps):
    return {n for _, held in steps for n in held.values()}


def _shown(steps):
    return " then ".join(f"{kind.name}({', '.join(held.values())})" if held else kind.name
                         for kind, held in steps)


def chain(records, x, params, dtype):
    """The pass as known steps: ``(steps, scores, stop)``. ``steps``: ``[(record, [(kind,
    held)])]``, each array of the inside pass in order that known steps make from the last
    such array (the batch first), each parameter used once; an array of the same values as
    the one before (a copy, a reshape) is passed over. An array no known step makes is an
    intermediate of a step of several lines (a batch norm's ``mu``, ``var``, ``X_norm``)
    where a later array is made by a known step from the last known one; ``scores``: the
    last known array (or the batch); ``stop``: the first array after it that no known step
    makes (the loss's own computation, or what the writer cannot write), None where
    there is none."""
    current, unused, out, pending = x, dict(params), [], []
    for record in records:
        value = record.output
        if value is None:
            continue
        if np.size(value) == np.size(current) and within(
                np.reshape(np.asarray(current, np.float64), np.shape(value)), value, dtype):
            current, pending = value, []
            continue
        try:
            steps = steps_of(current, value, unused, dtype)
        except CannotWrite as exc:
            raise CannotWrite(f"{record.key}, made at {record.made}: {exc}") from None
        if steps is None:
            pending.append(record)
            continue
        pending = []
        for _, held in steps:
            for name in held.values():
                unused.pop(name, None)
        out.append((record, steps, current))
        current = value
    return out, current, pending[0] if pending else None


def loss_of(points, t, dtype, weights):
    """``(kind, lambda, head)``: the loss kind one of whose values of the scores, plus ``0.5 *
    lambda * sum(W**2)`` over ``weights`` (lambda 0: none), is the model's loss at every point.
    ``points``: ``[(scores, before, loss, params)]`` at two or more sets of parameter values;
    lambda is fitted at the first and must hold at the others, so a difference that is no
    penalty on the weights (another loss) is not taken for one. ``head``: the scores are the
    probabilities the kind's head makes of ``before`` (the array the last step took: a sigmoid
    before a binary cross-entropy), and its values are of those probabilities
    (``head_losses``); the head is then the loss's, not a layer. ``None``: none is."""
    from . import KINDS

    def squares(params):
        return sum(float(np.sum(np.asarray(params[n], np.float64) ** 2)) for n in weights)
    for head in (False, True):
        for kind in KINDS:
            if head and not all(_is_head(kind, before, scores, dtype)
                                for scores, before, _, _ in points):
                continue
            per_point = [kind.head_losses(scores, t) if head else kind.loss_values(scores, t)
                         for scores, _, _, _ in points]
            for i in range(min(map(len, per_point), default=0)):
                (_, _, whole, params), value = points[0], per_point[0][i]
                lam = 0.0
                if not within(np.array(whole), np.array(value), dtype):
                    total = squares(params)
                    lam = 2 * (whole - value) / total if total else 0.0
                    if lam <= 0:
                        continue
                if all(within(np.array(whole_k), np.array(values[i] + 0.5 * lam * squares(params_k)),
                              dtype)
                       for (_, _, whole_k, params_k), values in zip(points, per_point)):
                    return kind, lam, head
    return None


def _is_head(kind, before, scores, dtype):
    """``scores`` are the probabilities ``kind``'s head makes of ``before``."""
    made = None if before is None else kind.head(before)
    return made is not None and np.shape(made) == np.shape(scores) and within(scores, made, dtype)


def heads(x, output, dtype):
    """The loss kinds whose head makes ``output`` of ``x`` (softmax rows, a sigmoid)."""
    from . import KINDS
    return [kind for kind in KINDS if _is_head(kind, x, output, dtype)]


def outputs_of(steps, x, params):
    """Each known step's output recomputed on ``params`` (another point), in order."""
    out = []
    for _, record_steps, _ in steps:
        for kind, roles in record_steps:
            x = next(value for held, value in kind.computes(x, params) if held == roles)
            out.append(x)
    return out


def negated(params):
    """The parameters negated in place (on the writer's copy): a point where a step whose
    output kept one sign (a last affine whose bias outweighs the rest, all its outputs
    positive, so that a ReLU after it does nothing) has it flipped, and two candidates that
    gave the same values there part."""
    for value in params.values():
        value *= -1


def moved(params, seed=0):
    """The parameters moved in place by a seeded draw of a tenth of their own size (a
    0.01 for an array of zeros): biases that start at 0 then show in the values, and
    two parameters of one shape no longer hold the same values. On the writer's own copy."""
    rng = np.random.RandomState(seed)
    for value in params.values():
        size = float(np.sqrt(np.mean(np.asarray(value, np.float64) ** 2))) if value.size else 0.0
        value += (0.1 * (size or 0.1) * rng.standard_normal(value.shape)).astype(value.dtype)
