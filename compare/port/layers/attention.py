"""The attention of the book's chapter 8, against a port's attention: traps on its softmax.

The book's ``AttentionWeight`` takes the dot products of the decoder's ``h`` with each of the
encoder's ``hs`` and a softmax over the encoder's time, with no scaling. A port's attention
is a few functional calls (``bmm``, ``softmax``), with no module for a hook to record, so
each hypothesis is applied to the port's whole pass, at its softmax calls over the
encoder's time (a softmax whose input has an axis of the source's length):

* ``attention_scale``: the scores divided by ``sqrt(H)`` (the Transformer's habit), for H
  the hidden size of one of the port's recurrent modules: the softmax taken of the scores
  times ``sqrt(H)``;
* ``attention_axis``: the softmax over another axis (the decoder's time): taken over each
  other axis in turn.

Each is named where the port's pass then gives the NumPy loss and gradients.
"""
import math


def _softmax_calls():
    import torch
    import torch.nn.functional as F
    return {torch.softmax, F.softmax, torch.Tensor.softmax, torch.special.softmax}


def _dim_of(args, kwargs):
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    x = args[0]
    return None if dim is None else dim % x.dim()


def _changed_softmax(source_length, change):
    """A ``TorchFunctionMode`` that hands each softmax over an input with an axis of
    ``source_length`` (not the batch's) to ``change(x, dim)``; ``seen`` the calls' inputs'
    shapes and axes."""
    import torch
    from torch.overrides import TorchFunctionMode
    calls = _softmax_calls()

    class Mode(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.seen = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in calls and args and isinstance(args[0], torch.Tensor):
                x, dim = args[0], _dim_of(args, kwargs)
                if dim is not None and x.dim() >= 2 and source_length in tuple(x.shape)[1:]:
                    self.seen.append((tuple(x.shape), dim))
                    return change(x, dim)
            return func(*args, **kwargs)
    return Mode()


def _try(run, rerun, reproduces, change):
    mode = _changed_softmax(int(run.x.shape[1]), change)
    try:
        with mode:
            out, grads = rerun()
        return bool(mode.seen) and reproduces(out, grads), mode.seen
    except Exception:  # a pass the hypothesis cannot run says nothing
        return False, mode.seen


def _hidden_sizes(run):
    if run.torch.kind != "module":
        return []
    return sorted({int(m.hidden_size) for m in run.torch.model.modules()
                   if isinstance(getattr(m, "hidden_size", None), int) and m.hidden_size > 1})


def attention_scale_trap(run, rerun, reproduces):
    import torch
    for H in _hidden_sizes(run):
        hit, seen = _try(run, rerun, reproduces,
                         lambda x, dim, f=math.sqrt(H): torch.softmax(x * f, dim))
        if hit:
            return [{"code": "attention_scale", "factor": 1 / math.sqrt(H),
                     "text": f"the port's attention divides its scores by sqrt(H) = "
                             f"{math.sqrt(H):.4g} (H = {H}, the Transformer's scaling) before "
                             f"the softmax over the encoder's time, where the NumPy attention "
                             f"(the book's AttentionWeight) takes the softmax of the plain dot "
                             f"products: with the scores unscaled, the port's pass gives the "
                             f"NumPy loss and gradients; drop the / sqrt(H)"}]
    return []


def attention_axis_trap(run, rerun, reproduces):
    import torch
    _, seen = _try(run, rerun, lambda *a: False, lambda x, dim: torch.softmax(x, dim))
    for shape, dim in sorted(set(seen)):
        for other in range(1, len(shape)):
            if other == dim or shape[other] == 1:
                continue
            hit, _ = _try(run, rerun, reproduces,
                          lambda x, d, s=shape, was=dim, o=other:
                          torch.softmax(x, o if (tuple(x.shape), d) == (s, was) else d))
            if hit:
                return [{"code": "attention_axis", "dim": dim, "expected_dim": other,
                         "text": f"the port's attention takes its softmax over axis {dim} of "
                                 f"its scores {shape}, where the NumPy attention normalises "
                                 f"over the encoder's time (axis {other} there): with the "
                                 f"softmax over axis {other}, the port's pass gives the NumPy "
                                 f"loss and gradients; write softmax(scores, dim={other})"}]
    return []


def pass_traps(run, rerun, reproduces):
    return attention_scale_trap(run, rerun, reproduces) or attention_axis_trap(run, rerun, reproduces)
