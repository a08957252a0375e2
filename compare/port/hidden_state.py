"""A stateful model's hidden state, put back before each of the check's own passes.

The book's ``TimeLSTM(stateful=True)`` keeps ``h`` and ``c`` from one ``forward`` to the
next, and a port that carries ``(h, c)`` between calls does too. The check calls each side
many times on one batch (the recorded passes, the loss, every loss of the numerical check):
each of those must start from the state the model was handed in, or the second pass
computes on the first's state and two right ports part. So before each pass:

* ``reset_state()`` is called where the model has one (the book's models, ports written
  to match them);
* the attributes that held no value, or arrays (tensors), when the check began, on the
  model and on every object of it that holds a recurrent layer's state, are put back as
  they were (a port that keeps ``self.state`` without a ``reset_state``).

Parameters, buffers and running statistics are never touched: they are not held in plain
attributes of a recurrent layer (a module keeps them in ``_parameters`` and ``_buffers``).
"""
from contextlib import contextmanager

import numpy as np

SAVED = "_compare_saved_state"
# set while the port trains over consecutive windows: its state is its own to carry
CARRY = "_compare_carry_state"


def _statelike(value, torch=None):
    if value is None or isinstance(value, np.ndarray):
        return True
    if torch is not None and isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)) and value:
        return all(_statelike(v, torch) for v in value)
    return False


def _copy(value, torch=None):
    if isinstance(value, np.ndarray):
        return value.copy()
    if torch is not None and isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v, torch) for v in value)
    return value


def snapshot(objects, skip=(), torch=None):
    """``[(object, {attribute: value})]``: each object's state-like attributes, copied."""
    skip = {id(v) for v in skip}
    out = []
    for obj in objects:
        held = {}
        for name, value in vars(obj).items():
            if name.startswith("_") or name in ("training", "params", "grads", "layers") \
                    or id(value) in skip:
                continue
            if _statelike(value, torch):
                held[name] = _copy(value, torch)
        if held:
            out.append((obj, held))
    return out


def restore(saved, torch=None):
    for obj, held in saved:
        for name, value in held.items():
            setattr(obj, name, _copy(value, torch))


# --- the port: a forward pre-hook on the root module -------------------------------------

def keep_port_state(model):
    """Put the port's state back before every call of ``model`` (its own ``loss`` calling
    ``self(x)`` included). The snapshot lives on the model, so a deep copy of the model
    restores its own copy."""
    import torch
    from .capture import is_torch_recurrent
    recurrent = [m for m in model.modules() if is_torch_recurrent(m)]
    if not recurrent and not callable(getattr(model, "reset_state", None)):
        return False
    saved = {}
    for name, module in model.named_modules():
        held = dict(snapshot([module], torch=torch))
        if held:
            saved[name] = held[module]
    object.__setattr__(model, SAVED, saved)
    model.register_forward_pre_hook(_put_back)
    return True


@contextmanager
def carried(model):
    """Within: the port's own state goes on from call to call, as its code carries it
    (training over consecutive windows); the check's passes put it back again after."""
    object.__setattr__(model, CARRY, True)
    try:
        yield model
    finally:
        object.__setattr__(model, CARRY, False)


def start_state(model):
    """The port's state put back as the check found it, once (a pass outside the check's
    own, the pairing's, may have moved it), whether or not it is carrying it."""
    _restore(model)


def _put_back(model, args):
    if not getattr(model, CARRY, False):
        _restore(model)


def _restore(model):
    import torch
    reset = getattr(model, "reset_state", None)
    if callable(reset):
        reset()
    for name, held in getattr(model, SAVED, {}).items():
        module = model.get_submodule(name) if name else model
        for attr, value in held.items():
            object.__setattr__(module, attr, _copy(value, torch))


# --- the NumPy side --------------------------------------------------------------------

class NumpyState:
    """The NumPy model's hidden state as the check found it: ``put_back()`` before a pass."""

    def __init__(self, model, params=()):
        from .layers.recurrent import KINDS
        self.model = model
        holders = [model]
        raw = getattr(model, "layers", None) or []
        for layer in (raw.values() if hasattr(raw, "values") else raw):
            if any(k.is_numpy(type(layer).__name__) for k in KINDS):
                holders.append(layer)
        self.recurrent = len(holders) > 1
        self.saved = snapshot(holders, skip=params) if self.recurrent else []

    @property
    def active(self):
        return self.recurrent or callable(getattr(self.model, "reset_state", None))

    def put_back(self):
        reset = getattr(self.model, "reset_state", None)
        if callable(reset):
            reset()
        restore(self.saved)
