"""Which NumPy gate block is which gate, read off the values.

A recurrent layer's fused weights hold their gate blocks in the order the NumPy code
slices them: the book's LSTM f,g,i,o, cs231n's i,f,o,g, many learners' i,f,g,o as torch.
The names cannot tell (``Wx`` in all three), the code's slicing is not read: the order is
the one under which the port, loaded with the NumPy values, computes the NumPy loss
(evaluation mode: nothing drawn) within the run's tolerance. Every order is tried, the
kind's conventions first. Where none reproduces the NumPy loss (the port computes something
else), the order the NumPy layer's code implies stays (the book's classes f,g,i,o; cs231n's
functions i,f,o,g; else the kind's first convention): the nearest loss of a wrong port says
nothing of the gates, and another order would part a right layer from its twin. The
pairing line says the order taken.
"""
from ..layers.recurrent import kind_of_pair, numpy_convention, orders, with_order
from ..targets import PortSetupError
from ..tolerance import within


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
        for mine in orders(kind):  # the first that reproduces: conventions first
            trial = [with_order(p, mine) if p.gates is not None and kind_of_pair(p) == kind else p
                     for p in pairing]
            try:
                port.load(trial, run.np.params)
                loss = port.outputs(tx, tt)["loss"]
            except (PortSetupError, RuntimeError):
                return pairing
            if within(expected, loss, run.dtype):
                pairing = trial
                break
        else:
            pairing = [with_order(p, numpy_convention(run, kind, p.numpy))
                       if p.gates is not None and kind_of_pair(p) == kind else p for p in pairing]
    return pairing
