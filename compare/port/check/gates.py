"""Which NumPy gate block is which gate, read off the values.

A recurrent layer's fused weights hold their gate blocks in the order the NumPy code
slices them: the book's LSTM f,g,i,o, cs231n's i,f,o,g, many learners' i,f,g,o as torch.
The names cannot tell (``Wx`` in all three), the code's slicing is not read: the order is
the one under which the port, loaded with the NumPy values, computes the NumPy loss
(evaluation mode: nothing drawn) within the run's tolerance, there and at two other
sets of values (the NumPy parameters moved by noise: one scalar loss may agree by chance,
three do not). Every order is tried, the kinds' conventions first. Where none reproduces
the NumPy loss (the port computes something else), the order the NumPy layer's code implies stays (the book's classes f,g,i,o; cs231n's
functions i,f,o,g; else the kind's first convention): the nearest loss of a wrong port says
nothing of the gates, and another order would part a right layer from its twin. The
pairing line says the order taken.
"""
import itertools

import numpy as np

from ..layers.recurrent import kind_of_pair, numpy_convention, orders, with_order
from ..targets import PortSetupError
from ..tolerance import within

_MAX_TRIALS = 200  # orders tried, over every recurrent kind of the model together


def _gated_kinds(pairing):
    kinds = []
    for pair in pairing:
        kind = kind_of_pair(pair) if pair.gates is not None and len(pair.gates) > 1 else None
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return kinds


def _perturbed(params, points=2, seed=0):
    """``points`` other sets of parameter values, each array moved by noise of its own size
    (0.1 where it is all zeros): an order that gives the NumPy loss by chance at the given
    values does not at these, where the right one gives it at every point."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(points):
        moved = {}
        for name, value in params.items():
            size = float(np.std(value)) or 0.1
            moved[name] = (value + size * rng.standard_normal(np.shape(value))).astype(value.dtype)
        out.append(moved)
    return out


def _numpy_loss_at(run, values):
    """The NumPy loss with its parameters set to ``values`` in place, then put back."""
    saved = {name: np.array(a, copy=True) for name, a in run.np.params.items()}
    try:
        for name, a in run.np.params.items():
            a[...] = values[name]
        return run.np.loss(run.x, run.t, mode="eval")
    finally:
        for name, a in run.np.params.items():
            a[...] = saved[name]


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
    others = None  # [(values, NumPy loss)] at other points, made at the first candidate

    def gives(trial, values, loss):
        port.load(trial, values)
        return within(loss, port.outputs(tx, tt)["loss"], run.dtype)

    choices = itertools.islice(itertools.product(*(orders(kind) for kind in kinds)), _MAX_TRIALS)
    for chosen in choices:  # the first that reproduces: conventions first
        mine = dict(zip(kinds, chosen))
        trial = [with_order(p, mine[kind_of_pair(p)]) if p.gates is not None
                 and kind_of_pair(p) in mine else p for p in pairing]
        try:
            if not gives(trial, run.np.params, expected):
                continue
            if others is None:
                others = [(v, _numpy_loss_at(run, v)) for v in _perturbed(run.np.params)]
                others = [(v, loss) for v, loss in others if np.isfinite(loss)]
            if all(gives(trial, v, loss) for v, loss in others):
                return trial
        except (PortSetupError, RuntimeError):
            return pairing
        finally:
            port.load(pairing, run.np.params)
    return [with_order(p, numpy_convention(run, kind_of_pair(p), p.numpy))
            if p.gates is not None and kind_of_pair(p) in kinds else p for p in pairing]
