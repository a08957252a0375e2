"""Which NumPy gate block is which gate, read off the values.

A recurrent layer's fused weights hold their gate blocks in the order the NumPy code
slices them: the book's LSTM f,g,i,o, cs231n's i,f,o,g, many learners' i,f,g,o as torch.
The names cannot tell (``Wx`` in all three), the code's slicing is not read: the order is
the one under which the port, loaded with the NumPy values, computes what the NumPy model
computes (evaluation mode: nothing drawn). Every order is tried, the kind's conventions
first.

Where both sides give scores (a NumPy ``predict``), the scores decide: the first order
whose scores equal the NumPy ones within the forward tolerance is taken, and where none
does (the port parts elsewhere too: ``batch_first``, a step left out) the kinds' first
conventions stay, so that the check's rows and traps see the port as the NumPy code's
convention loads it. The loss cannot decide there: a port whose loss differs for another
reason (a sum over the tokens, a penalty only the NumPy loss holds) gives every order a
loss as far off, and the nearest is then any. Without scores to compare, the order whose
loss is nearest the NumPy loss is taken. The pairing line says the order taken.
"""
import itertools

import numpy as np

from ..heads import fits, match
from ..layers.recurrent import kind_of_pair, orders, with_order
from ..targets import PortSetupError


def _gated_kinds(pairing):
    kinds = []
    for pair in pairing:
        kind = kind_of_pair(pair) if pair.gates is not None and len(pair.gates) > 1 else None
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return kinds


def _with_orders(pairing, chosen):
    """``pairing`` with each kind's gated pairs taken in the order ``chosen[kind]``."""
    return [with_order(p, chosen[kind_of_pair(p)])
            if p.gates is not None and kind_of_pair(p) in chosen else p for p in pairing]


def _numpy_scores(run):
    """The NumPy scores in evaluation mode, where the model gives them; else None."""
    if not getattr(run.np, "has_predict", False):
        return None
    try:
        out = np.asarray(run.np.predict(run.x, mode="eval"))
    except (PortSetupError, TypeError, ValueError):
        return None
    if not np.issubdtype(out.dtype, np.floating) or not np.all(np.isfinite(out)):
        return None
    return out


def read_gate_order(run):
    """``run.pairing`` with each recurrent kind's NumPy gate order read off the values."""
    pairing = run.pairing
    kinds = _gated_kinds(pairing)
    if not kinds:
        return pairing
    try:
        expected = run.np.loss(run.x, run.t, mode="eval")
    except PortSetupError:
        return pairing
    port = run.torch.copy()
    port.mode = "eval"
    tx, tt = port.tensor(run.x), port.tensor(run.t)

    def outputs(chosen):
        trial = _with_orders(pairing, chosen)
        port.load(trial, run.np.params)
        return trial, port.outputs(tx, tt)

    scores = _numpy_scores(run)
    try:
        if scores is not None:
            by_scores = _by_scores(run, kinds, outputs, scores)
            if by_scores is not None:
                return by_scores
        return _by_loss(kinds, outputs, expected)
    except (PortSetupError, RuntimeError):
        return pairing


def _by_scores(run, kinds, outputs, scores):
    """The first combination of orders (conventions first) whose port scores are the NumPy
    scores; the kinds' first conventions where none is; None where the two outputs cannot
    be compared (no scores, another shape, heads no conversion brings together: a NumPy
    ``predict`` ending in a softmax over a time axis), and the loss decides."""
    first = {kind: orders(kind)[0] for kind in kinds}
    for combo in itertools.product(*(orders(kind) for kind in kinds)):
        chosen = dict(zip(kinds, combo))
        trial, out = outputs(chosen)
        if out["scores"] is None:
            return None
        np_out, t_out, _, heads = match(scores, out["scores"], run.dtype)
        if np.shape(np_out) != np.shape(t_out) or (
                heads["numpy"] != heads["torch"] and heads["converted"] is None):
            return None
        if fits(t_out, np_out, run.dtype):
            return trial
    return outputs(first)[0]


def _by_loss(kinds, outputs, expected):
    """Kind by kind, the order whose port loss is nearest the NumPy loss (the first of
    equals: conventions first)."""
    chosen, trial = {}, None
    for kind in kinds:
        found = []
        for mine in orders(kind):
            trial, out = outputs({**chosen, kind: mine})
            loss = out["loss"]
            gap = abs(loss - expected) / max(abs(expected), np.finfo(np.float64).tiny)
            found.append((gap if np.isfinite(gap) else np.inf, mine))
        chosen[kind] = min(found, key=lambda f: f[0])[1]
    return outputs(chosen)[0]
