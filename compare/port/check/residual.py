"""``residual``: a skip connection the port forgets, or adds, where the NumPy side has
none.

A skip connection is an addition, and no hook records an addition: the port's layer
after it simply takes another input. The hypothesis: the port's recorded layer, rerun
on its own input plus (or minus) an array the NumPy pass made earlier, gives the NumPy
array that parts from it (or the port's output plus that array gives it, where the
skip is the last thing added). Named only when that rerun reproduces the NumPy array
within the row's tolerance, and the layer as it ran does not.

Tested where the rows are read from inside a forward (``inside_rows``), and, in a
model of layer objects or functions, where a layer's row parts with its input already
different from the NumPy layer's (``between_layers``): the skip lies between the layers.
"""
import numpy as np

from ..layers import torch_kind
from ..tolerance import within
from ..trace import IN_OUT, TracedRecord
from ..unit_axes import same_values

CANDIDATES = 48  # earlier arrays tried, nearest first
ELEMENTWISE = {"ReLU": lambda u: np.maximum(u, 0), "Tanh": np.tanh,
               "Sigmoid": lambda u: 1 / (1 + np.exp(-u))}


def rerun_record(run, record, u):
    """The port's recorded layer on another input ``u`` (NumPy, float64), or ``None``
    where it cannot be rerun so (a layer that draws or keeps statistics, a call it does
    not know)."""
    kind = torch_kind(record.kind)
    if kind is not None and (kind.has_modes or kind.draws):
        return None
    if isinstance(record, TracedRecord):
        if record.kind in ELEMENTWISE:
            return ELEMENTWISE[record.kind](u)
        if record.kind == "Linear":
            return _linear(run, record, u)
        return None
    import torch
    module = run.torch.layer_of(record.key)
    if not isinstance(module, torch.nn.Module):  # a literal port's layer object: not rerun
        return None
    param = next(iter(module.parameters()), None)
    dtype = param.dtype if param is not None else torch.float64
    try:
        with torch.no_grad():
            out = module(torch.as_tensor(np.asarray(u), dtype=dtype, device=param.device if param is not None else None))
    except Exception:  # an input the layer cannot take tells nothing
        return None
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out.detach().cpu().numpy().astype(np.float64)


def _linear(run, record, u):
    params = getattr(run.torch, "params", {})
    values = {n: params[n].detach().cpu().numpy().astype(np.float64) for n in record.param_names
              if n in params and hasattr(params[n], "detach")}
    weights = [n for n, v in values.items() if v.ndim == 2]
    if len(weights) != 1:
        return None
    w = weights[0]
    matrix = values[w] if record.layouts.get(w) == IN_OUT else values[w].T
    out = np.asarray(u, np.float64) @ matrix
    for n, v in values.items():
        if n != w:
            out = out + v.reshape(-1)
    return out


def batch_record(run):
    """The batch as a record: the first array a skip connection can carry."""
    from ..capture import LayerRecord
    return LayerRecord("x", "", None, np.asarray(run.x))


def between_layers(run, a, b, np_recs):
    """``residual_traps`` for the paired layer records ``a`` (NumPy) and ``b`` (port) of a
    model with layers, where ``b``'s input is not ``a``'s: the arrays a skip can carry are
    the batch and the outputs of the NumPy layers that ran before ``a``."""
    if a.input is None or b.input is None or np.shape(a.input) != np.shape(b.input):
        return []
    if within(np.asarray(a.input, np.float64), np.asarray(b.input, np.float64), run.dtype):
        return []  # the same input: the difference arises inside the layer
    index = next((k for k, r in enumerate(np_recs) if r is a), None)
    if index is None:
        return []
    return residual_traps(run, a, b, [batch_record(run)] + list(np_recs[:index]))


def residual_traps(run, a, b, earlier):
    """``[{"code": "residual", ...}]`` where a skip connection explains the NumPy array
    ``a`` against the port's record ``b``; ``earlier``: the NumPy pass's arrays made before
    ``a``, batch first."""
    u, expected = b.input, a.output
    if u is None or b.output is None or expected is None:
        return []
    u = np.asarray(u, np.float64)
    candidates = [r for r in reversed(earlier) if r.output is not None
                  and r.output.shape == u.shape and np.any(r.output != 0)
                  and not within(r.output, u, run.dtype)][:CANDIDATES]
    for r in candidates:
        s = np.asarray(r.output, np.float64)
        for sign, word in ((1, "forgets"), (-1, "adds")):
            out = rerun_record(run, b, u + sign * s)
            if out is not None and same_values(out.shape, expected.shape) and within(expected, out, run.dtype):
                return [_found(run, a, b, r, word, before=True)]
    # the skip added after the port's last recorded layer: its output plus an earlier array
    out = np.asarray(b.output, np.float64)
    for r in reversed(earlier):
        if r.output is None or r.output.shape != out.shape or not np.any(r.output != 0):
            continue
        for sign, word in ((1, "forgets"), (-1, "adds")):
            if within(expected, out + sign * np.asarray(r.output, np.float64), run.dtype):
                return [_found(run, a, b, r, word, before=False)]
    return []


def _found(run, a, b, skipped, word, before):
    held = f"{skipped.key} (made at {skipped.made})" if hasattr(skipped, "made") else skipped.key
    if word == "forgets":
        where = (f"{b.key}'s input lacks it: with {skipped.key} added to its input, {b.key} gives "
                 f"the NumPy {a.key}" if before else
                 f"{b.key}'s output lacks it: its output plus {skipped.key} is the NumPy {a.key}")
        text = (f"the port forgets a skip connection: the NumPy side adds {held}, and {where}; "
                f"add it in the port's forward")
    else:
        where = (f"with {skipped.key} taken off its input, {b.key} gives the NumPy {a.key}" if before
                 else f"its output less {skipped.key} is the NumPy {a.key}")
        text = (f"the port adds a skip connection the NumPy side does not have: {b.key} gets "
                f"{held} added; {where}")
    return {"code": "residual", "where": a.key, "torch": b.key, "skip": skipped.key,
            "direction": "forgotten" if word == "forgets" else "added", "text": text}
