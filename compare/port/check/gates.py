"""Which NumPy gate block is which gate, read off the values.

A recurrent layer's fused weights hold their gate blocks in the order the NumPy code
slices them: the book's LSTM f,g,i,o, cs231n's i,f,o,g, many learners' i,f,g,o as torch.
The names cannot tell (``Wx`` in all three), the code's slicing is not read: the order is
the one under which the port, loaded with the NumPy values, computes the NumPy loss
(evaluation mode: nothing drawn). Every order is tried, the kind's conventions first; the
nearest is taken. Where none reproduces the NumPy loss, the kind's first convention stays
and the check's rows show where the passes part. The pairing line says the order taken.
"""
import numpy as np

from ..layers.recurrent import kind_of_pair, orders, with_order
from ..targets import PortSetupError


def _gated_kinds(pairing):
    kinds = []
    for pair in pairing:
        kind = kind_of_pair(pair) if pair.gates is not None and len(pair.gates) > 1 else None
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return kinds


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
    for kind in kinds:
        found = []
        for mine in orders(kind):
            trial = [with_order(p, mine) if p.gates is not None and kind_of_pair(p) == kind else p
                     for p in pairing]
            try:
                port.load(trial, run.np.params)
                loss = port.outputs(tx, tt)["loss"]
            except (PortSetupError, RuntimeError):
                return pairing
            gap = abs(loss - expected) / max(abs(expected), np.finfo(np.float64).tiny)
            found.append((gap if np.isfinite(gap) else np.inf, mine, trial))
        best = min(found, key=lambda f: f[0])  # the first of equals: conventions first
        pairing = best[2]
    return pairing
