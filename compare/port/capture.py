"""Record what each layer computes, on either side, without changing the model.

Two ways in:

* book-style layers (objects with ``forward`` and ``backward``, as in the
  book's chapter-5 nets, in NumPy or in a literal torch port): their methods
  are wrapped on the instance for the length of one pass;
* ``nn.Module`` leaves: a forward hook records input and output, and a
  tensor hook on the output records the gradient that flows into it.

Each record holds copies (book layers write into the arrays they are handed:
``Relu.backward`` zeroes ``dout`` in place), as NumPy arrays in the run's
own dtype.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LayerRecord:
    """One call of one layer: its key, its class, its input and output, and later
    the gradient of the loss with respect to its output."""
    key: str
    kind: str
    input: np.ndarray = None
    output: np.ndarray = None
    grad_output: np.ndarray = None
    param_names: tuple = ()
    mask: np.ndarray = None  # a boolean ``mask`` the layer kept (the book's Dropout, Relu)
    # the initial hidden state a recurrent layer is handed beside its input (nn.LSTM's
    # h0 of (h0, c0); cs231n's lstm_forward(x, h0, ...)); None where it is given none
    state: np.ndarray = None
    state_given: bool = True

    @property
    def shape(self):
        return None if self.output is None else tuple(self.output.shape)


@dataclass
class Capture:
    records: list = field(default_factory=list)
    float32: bool = False  # a float32 tensor took part in the pass (trace.py sees its calls)
    losses: list = field(default_factory=list)  # (name, kind, loss) of each loss function called


def _to_numpy(value):
    if value is None:
        return None
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (tuple, list)) and value:
        return _to_numpy(value[0])
    try:
        arr = np.array(value)
    except Exception:
        return None
    return arr if np.issubdtype(arr.dtype, np.number) else None


def forward_output(layer, x, **kwargs):
    """``layer.forward(x)``: what it returns, or the ``.output`` it sets."""
    out = layer.forward(x, **kwargs)
    return getattr(layer, "output", None) if out is None else out


def layer_items(layers):
    """``[(key, layer)]`` from an ordered dict, a dict or a list of layer objects."""
    if layers is None:
        return []
    items = list(layers.items()) if hasattr(layers, "items") else list(enumerate(layers))
    return [(str(k), v) for k, v in items if callable(getattr(v, "forward", None))]


def param_owners(items, params):
    """Which layer holds which parameter: book layers keep references to the arrays
    of ``params`` (``Affine.W is params['W1']``)."""
    ids = {id(v): name for name, v in params.items()}
    owners = {}
    for key, layer in items:
        for held in vars(layer).values() if hasattr(layer, "__dict__") else ():
            # the book's second volume keeps a layer's arrays in its own list (self.params)
            for value in held if isinstance(held, (list, tuple)) else (held,):
                name = ids.get(id(value))
                if name is not None:
                    owners.setdefault(name, key)
    return owners


@contextmanager
def book_layer_capture(items, owners=None):
    """Wrap each layer's ``forward``/``backward`` for one pass; yields the ``Capture``."""
    capture = Capture()
    owned = {}
    for name, key in (owners or {}).items():
        owned.setdefault(key, []).append(name)
    open_calls = {}  # key -> records whose backward has not been seen yet (a stack)
    saved = []
    for key, layer in items:
        forward = layer.forward
        backward = getattr(layer, "backward", None)

        def wrapped_forward(*args, _key=key, _layer=layer, _forward=forward, **kwargs):
            returned = _forward(*args, **kwargs)
            # a layer may keep its output rather than return it (Neural Networks from
            # Scratch's forward sets self.output)
            out = getattr(_layer, "output", None) if returned is None else returned
            record = LayerRecord(_key, type(_layer).__name__, _to_numpy(args[0] if args else None),
                                 _to_numpy(out), param_names=tuple(owned.get(_key, ())))
            mask = getattr(_layer, "mask", None)
            if isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == np.shape(out):
                record.mask = mask.copy()
            capture.records.append(record)
            open_calls.setdefault(_key, []).append(record)
            return returned

        def wrapped_backward(dout, *args, _key=key, _backward=backward, **kwargs):
            pending = open_calls.get(_key)
            if pending:
                pending.pop().grad_output = _to_numpy(dout)  # copied before the layer writes to it
            return _backward(dout, *args, **kwargs)

        saved.append((layer, "forward" in vars(layer), forward, "backward" in vars(layer), backward))
        layer.forward = wrapped_forward
        if backward is not None:
            layer.backward = wrapped_backward
    try:
        yield capture
    finally:
        for layer, had_forward, forward, had_backward, backward in saved:
            # put back exactly what was there: an instance attribute, or nothing
            if had_forward:
                layer.forward = forward
            else:
                del layer.forward
            if backward is not None:
                if had_backward:
                    layer.backward = backward
                else:
                    del layer.backward


# torch's recurrent modules (over a sequence) and their cells (one step): handed an
# initial state beside their input
RECURRENT = ("RNN", "LSTM", "GRU")
CELLS = ("RNNCell", "LSTMCell", "GRUCell")


def is_torch_recurrent(module, cells=True):
    """``module`` is one of torch's own recurrent modules (or, with ``cells``, their cells)."""
    names = RECURRENT + CELLS if cells else RECURRENT
    return type(module).__name__ in names and type(module).__module__.split(".")[0] == "torch"


def module_leaves(module):
    """``[(name, module)]`` of the modules that hold no other modules, in registration order."""
    return [(name, m) for name, m in module.named_modules()
            if name and not any(True for _ in m.children())]


def _hook_sequence(record, out, h_n, add, view=lambda a: a):
    """A recurrent module's output gradient: what reaches ``out`` plus what reaches the
    last step through ``h_n`` (``layers/recurrent.last_state``), as either arrives; in the
    layout the record keeps (``view``: a time-major module's turned batch first)."""
    parts = {}

    def hook(name):
        def keep(grad):
            parts[name] = _to_numpy(grad)
            record.grad_output = view(add(parts.get("out"), parts.get("h_n")))
        return keep
    for name, tensor in (("out", out), ("h_n", h_n)):
        if getattr(tensor, "requires_grad", False):
            tensor.register_hook(hook(name))


@contextmanager
def module_capture(module, batch=None):
    """Forward hooks on every leaf module; the gradient into each output through a
    tensor hook (it fires inside ``autograd.grad`` as well as ``backward``)."""
    capture = Capture()
    param_ids = {}
    for name, p in module.named_parameters():
        param_ids.setdefault(id(p), name)
    handles = []
    for name, leaf in module_leaves(module):
        names = tuple(param_ids[id(p)] for p in leaf.parameters(recurse=False) if id(p) in param_ids)

        def hook(mod, inputs, output, _name=name, _names=names):
            # a time-major recurrent module's (T, N, .) recorded batch first, as NumPy keeps it
            view = _batch_first_view(mod, inputs, batch)
            record = LayerRecord(_name, type(mod).__name__, view(_to_numpy(inputs[0] if inputs else None)),
                                 view(_to_numpy(output)), param_names=_names)
            if is_torch_recurrent(mod):
                given = len(inputs) > 1 and inputs[1] is not None
                # h0 of (h0, c0); none given: torch starts from zeros of h's shape (h_n of
                # (output, h_n) and (output, (h_n, c_n)); a cell's own output, h of (h, c))
                h = output if type(mod).__name__.endswith("Cell") else output[1]
                record.state = _to_numpy(inputs[1]) if given else np.zeros_like(_to_numpy(h))
                record.state_given = given
            capture.records.append(record)
            tensor = output[0] if isinstance(output, (tuple, list)) else output
            from .layers.recurrent import last_state
            state = last_state(mod, output)
            if state is not None:  # the last step's h also handed on as h_n
                _hook_sequence(record, tensor, *state, view=view)
            elif hasattr(tensor, "requires_grad") and tensor.requires_grad:
                def grad_hook(grad, _record=record):
                    _record.grad_output = view(_to_numpy(grad))
                tensor.register_hook(grad_hook)

        handles.append(leaf.register_forward_hook(hook))
    try:
        yield capture
    finally:
        for handle in handles:
            handle.remove()


def _batch_first_view(module, inputs, batch=None):
    """``nn.RNN``/``nn.LSTM``/``nn.GRU`` with ``batch_first=False`` on a 3-D input that holds
    the batch on its second axis (``batch`` where known): its input and output swapped to
    ``(N, T, .)``, the layout the NumPy time layers keep. A batch handed in as ``(N, T, D)``
    (the ``batch_first`` trap) is recorded as it is, so its row pairs and parts."""
    x = inputs[0] if inputs else None
    time_major = (type(module).__name__ in RECURRENT and not getattr(module, "batch_first", True)
                  and getattr(x, "dim", lambda: 0)() == 3
                  and (batch is None or int(x.shape[1]) == batch))
    if not time_major:
        return lambda a: a
    return lambda a: None if a is None or a.ndim != 3 else np.swapaxes(a, 0, 1).copy()


class StepsRecord:
    """The calls of one cell in a loop (``nn.LSTMCell`` once per time step) as one record of
    the whole sequence, ``(N, T, H)``, as a NumPy time layer records it: each step's input
    and output stacked on axis 1."""

    def __init__(self, steps):
        self.steps = steps
        first = steps[0]
        self.key, self.kind, self.param_names = first.key, first.kind, first.param_names
        self.mask = None

    def _stacked(self, what):
        parts = [getattr(s, what) for s in self.steps]
        if any(p is None for p in parts) or len({p.shape for p in parts}) != 1:
            return None
        return np.stack(parts, axis=1)

    @property
    def input(self):
        return self._stacked("input")

    @property
    def output(self):
        return self._stacked("output")

    @property
    def state(self):  # the initial state: the first step's
        return getattr(self.steps[0], "state", None)

    @property
    def state_given(self):
        return getattr(self.steps[0], "state_given", True)

    @property
    def grad_output(self):
        # autograd's gradient into a step's h holds the next step's share as well, where the
        # NumPy time layer's backward is handed only what the layers above send: not the same
        # quantity, so no row (the parameters' gradients are compared as they are)
        return None

    @property
    def shape(self):
        out = self.output
        return None if out is None else tuple(out.shape)


def steps_as_sequences(records):
    """Each cell called more than once in a pass, its calls as one ``StepsRecord`` at the place
    of its first; every other record as it is."""
    calls = {}
    for r in records:
        if r.kind in CELLS:
            calls.setdefault(r.key, []).append(r)
    merged = {k: StepsRecord(v) for k, v in calls.items()
              if len(v) > 1 and len({None if s.output is None else s.output.shape for s in v}) == 1}
    out = []
    for r in records:
        if r.key in merged:
            if merged[r.key] is not None:
                out.append(merged[r.key])
                merged[r.key] = None  # placed
            continue
        out.append(r)
    return out
