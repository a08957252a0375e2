"""Which NumPy gate block is which gate, read off the values.

A recurrent layer's fused weights hold their gate blocks in the order the NumPy code
slices them: the book's LSTM f,g,i,o, cs231n's i,f,o,g, many learners' i,f,g,o as torch;
the course's gate matrices lie on ``[a_prev; x]`` or, in some learners' code, ``[x; a_prev]``.
The names cannot tell (``Wx`` in all three), the code's slicing is not read: the order is
the one under which the port, loaded with the NumPy values, computes what the NumPy model
computes (evaluation mode: nothing drawn). Every order is tried, the NumPy layer's own
convention first, then the kinds' (``layers/recurrent.py``: ``read_order``):

* where the NumPy model has a ``predict``, the first order whose port scores equal the
  NumPy scores within the forward tolerance;
* else (or where the scores cannot be compared), an order whose port loss is within 1e-3
  of the NumPy loss and ten times nearer than any other, and within 1e-3 again at two other
  sets of parameter values (the NumPy ones moved by noise): one number may agree by
  chance, three do not. A port whose loss differs for another reason (a sum over the
  tokens, a penalty only the NumPy loss holds) gives every order a loss as far off;
* else, the first order under which the port's recorded recurrent modules give the outputs
  of the NumPy layers they pair with (the loss, or a mask in it, may be what parts).

Where no order is taken, the order the NumPy layer's code implies stays (the book's classes
f,g,i,o, its GRU z,r,h~; cs231n's functions i,f,o,g; else the kind's first convention), the
check's rows show where the passes part, and a trap on the port's whole pass
(``batch_first``) reads the order again with its hypothesis applied. The pairing line says
the order taken.
"""
from ..layers.recurrent import (gated_kinds, kind_of_pair, numpy_convention, read_order,
                                references_of, with_order)


def own_convention(run, pairing):
    """Each gated pair in the order its NumPy layer's code implies."""
    return [with_order(p, numpy_convention(run, kind_of_pair(p), p.numpy))
            if p.gates is not None and kind_of_pair(p) is not None else p for p in pairing]


def read_gate_order(run):
    """``run.pairing`` with each recurrent kind's NumPy gate order (and the course's column
    order) read off the values."""
    pairing = run.pairing
    if not gated_kinds(pairing) and not any(p.concat for p in pairing):
        return pairing
    port = run.torch.copy()
    port.mode = "eval"
    return read_order(references_of(run), port, own_convention(run, pairing), run.np.params,
                      run.x, run.t, run.dtype)
