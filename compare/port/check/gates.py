"""Which NumPy gate block is which gate, read off the values.

A recurrent layer's fused weights hold their gate blocks in the order the NumPy code
slices them: the book's LSTM f,g,i,o, cs231n's i,f,o,g, many learners' i,f,g,o as torch.
The names cannot tell (``Wx`` in all three), the code's slicing is not read: the order is
the one under which the port, loaded with the NumPy values, computes the NumPy loss
(evaluation mode: nothing drawn). Every order is tried, the kind's conventions first. One
is taken only where it is a clear winner (within 1e-3 of the NumPy loss, relatively, and ten
times nearer than any other): a port wrong elsewhere (a batch read time-major) makes every
order miss, and the nearest would then be noise. Without a winner the NumPy layer's own
convention stays (the book's classes f,g,i,o; cs231n's functions i,f,o,g; else the first),
the check's rows show where the passes part, and a trap on the port's whole pass reads the
order again with its hypothesis applied (``read_order``). The pairing line says the order.
"""
import numpy as np

from ..layers.recurrent import (CLEAR, CONVENTIONS, MARGIN, gated_kinds, kind_of_pair,
                                numpy_eval_loss, read_order, swap_concat, with_order)
from ..targets import PortSetupError


def own_convention(run, pairing):
    """Each gated pair with its NumPy layer's own convention, where its kind says one (the
    book's classes, cs231n's functions)."""
    owners = getattr(run.np, "owners", None) or {}
    out = []
    for p in pairing:
        kind = kind_of_pair(p) if p.gates is not None else None
        owner = str(owners.get(p.numpy, "") or p.numpy).lower()
        if kind == "lstm" and ("lstm_step" in owner or "lstm_forward" in owner):
            p = with_order(p, CONVENTIONS["lstm"][1])
        out.append(p)
    return out


def read_gate_order(run):
    """``run.pairing`` with each recurrent kind's NumPy gate order read off the values."""
    pairing = run.pairing
    if not gated_kinds(pairing):
        return read_concat(run)
    expected = numpy_eval_loss(run)
    if expected is None:
        return pairing
    port = run.torch.copy()
    port.mode = "eval"
    found, _ = read_order(expected, port, own_convention(run, pairing), run.np.params,
                          run.x, run.t)
    return found


def read_concat(run):
    """The course's gate matrices on ``[a_prev; x]`` or on ``[x; a_prev]``: the order under
    which the port gives the NumPy loss, where one clearly does (``[a_prev; x]``, the
    course's, otherwise)."""
    pairing = run.pairing
    if not any(p.concat for p in pairing):
        return pairing
    expected = numpy_eval_loss(run)
    if expected is None:
        return pairing
    port = run.torch.copy()
    port.mode = "eval"
    tx, tt = port.tensor(run.x), port.tensor(run.t)
    gaps = []
    for trial in (pairing, [swap_concat(p) for p in pairing]):
        try:
            port.load(trial, run.np.params)
            loss = port.outputs(tx, tt)["loss"]
        except (PortSetupError, RuntimeError):
            return pairing
        gap = abs(loss - expected) / max(abs(expected), np.finfo(np.float64).tiny)
        gaps.append((gap if np.isfinite(gap) else np.inf, trial))
    (best, chosen), (other, _) = sorted(gaps, key=lambda g: g[0])
    return chosen if best <= CLEAR and best * MARGIN <= other else pairing
