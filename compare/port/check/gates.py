"""Which NumPy gate block is which gate, read off the values.

A recurrent layer's fused weights hold their gate blocks in the order the NumPy code
slices them: the book's LSTM f,g,i,o, cs231n's i,f,o,g, many learners' i,f,g,o as torch.
The names cannot tell (``Wx`` in all three), the code's slicing is not read: the order is
the one under which the port, loaded with the NumPy values, computes the NumPy loss
(evaluation mode: nothing drawn). Every order is tried, the kind's conventions first.
Where none reproduces the NumPy loss (a port whose loss is wrong, the layer right), the
recurrent layer's own output decides: the first order under which the port's recorded
recurrent module gives the NumPy layer's output; where the layer parts under every order
(the port's initial state is what differs), the convention of the code's kind: cs231n's
layer functions i,f,o,g, the book's layer objects f,g,i,o; where no record tells, the
order whose loss is nearest. The check's rows then show where the passes part. The pairing line
says the order taken.
"""
import numpy as np

from ..align import align
from ..layers.recurrent import CONVENTIONS, TORCH_MODULES, kind_of_pair, orders, with_order
from ..targets import PortSetupError
from ..tolerance import within


def _gated_kinds(pairing):
    kinds = []
    for pair in pairing:
        kind = kind_of_pair(pair) if pair.gates is not None and len(pair.gates) > 1 else None
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return kinds


def _numpy_records(run):
    """The NumPy layers' records of one evaluation-mode pass (empty where it keeps none)."""
    try:
        with run.np.capture() as capture:
            run.np.loss(run.x, run.t, mode="eval")
    except PortSetupError:
        return []
    return capture.records


def _layer_agrees(run, port, np_records, kind, tx, tt):
    """The port's recorded modules of ``kind`` give the outputs of the NumPy records they
    pair with (None where no such pair is recorded)."""
    try:
        t_records = port.recorded_outputs(tx, tt)
    except (PortSetupError, RuntimeError):
        return None
    pairs = [(np_records[i], t_records[j]) for i, j in align(np_records, t_records)[0]
             if TORCH_MODULES.get(t_records[j].kind) == kind]
    if not pairs:
        return None
    return all(within(a.output, b.output, run.dtype) for a, b in pairs)


def _origin_convention(run, kind):
    """The gate order of where the NumPy code comes from, where it is known: cs231n writes
    its LSTM as module-level functions (i,f,o,g), the book as layer objects (f,g,i,o)."""
    if kind != "lstm":
        return None
    if getattr(run.np, "functions", False):
        return CONVENTIONS["lstm"][1]
    if getattr(run.np, "items", None):
        return CONVENTIONS["lstm"][0]
    return None


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
    np_records = None
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
        if not within(expected, expected * (1 + best[0]), run.dtype):
            # no order gives the NumPy loss: the loss may be what differs, not the layer
            np_records = _numpy_records(run) if np_records is None else np_records
            told = []
            for _, mine, trial in found:
                port.load(trial, run.np.params)
                told.append(_layer_agrees(run, port, np_records, kind, tx, tt))
                if told[-1]:
                    best = (None, mine, trial)
                    break
            else:
                if any(a is False for a in told):  # the layer itself parts under every order
                    origin = _origin_convention(run, kind)
                    best = next((f for f in found if f[1] == origin), best)
        pairing = best[2]
    return pairing
