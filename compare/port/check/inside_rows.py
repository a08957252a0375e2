"""Forward rows for a NumPy model without layers: the arrays its own code made
(``reference/inside.py``) against the port's recorded layers.

The NumPy side keeps what it keeps: a ``z1`` the port computes too, a ``mu`` it
does not, an ``x @ W + b`` written inside a larger expression that no local holds.
So arrays pair with the port's records only where their values agree, in order of
execution (the longest such matching), and those rows pass by construction: they
say how far the two passes go together. A NumPy array with no twin, or a torch
record with none, is no failure.

Where the port's output parts from the NumPy one, the pass is located: the torch
records after the last one that agreed are the suspects, the NumPy arrays made after
the last that agreed their twins. A layer kind's trap (``layers/``) or a skip
connection (``residual``) that, rerun on the recorded layer, reproduces a NumPy array
names the pair and the bug; else the row is the first suspect whose input agreed,
against the first NumPy array of its shape. The row is added before the output's
row, so it is the first mismatch, and it names the NumPy expression and the line that
made it.
"""
from dataclasses import replace

import numpy as np

from ..layers import Site, torch_kind
from ..layers.activations import SHOWN, numpy_function
from ..reference import inside
from ..report import compare_arrays
from ..tolerance import port_tolerance, within
from ..unit_axes import same_values
from .residual import batch_record, residual_traps

SUSPECTS = 8  # torch records after the last agreement tried against...
TWINS = 16  # ...the NumPy arrays made after it


def batch_first(run, array):
    """A NumPy array as the port holds it: a features-first model's ``(features, batch)``
    transposed."""
    if getattr(run.np, "layout", None) == "features-first" and np.ndim(array) == 2:
        return array.T
    return array


def _agree(run, a, b):
    if a.output is None or b.output is None or not same_values(a.output.shape, b.output.shape):
        return False
    return within(a.output, b.output, run.dtype)


def _matching(run, np_recs, t_recs):
    """The longest order-keeping matching of arrays whose values agree."""
    n, m = len(np_recs), len(t_recs)
    agree = {}
    for j, b in enumerate(t_recs):
        for i, a in enumerate(np_recs):
            if b.output is not None and a.output is not None and same_values(a.output.shape, b.output.shape):
                agree[i, j] = _agree(run, a, b)
    score = np.zeros((n + 1, m + 1), dtype=np.int64)
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            score[i, j] = max(score[i + 1, j], score[i, j + 1],
                              1 + score[i + 1, j + 1] if agree.get((i, j)) else 0)
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if agree.get((i, j)) and score[i, j] == 1 + score[i + 1, j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif score[i, j] == score[i + 1, j]:
            i += 1
        else:
            j += 1
    return pairs


def _view(run, records):
    """The records with their arrays batch first (copies of the records, the capture kept)."""
    return [replace(r, output=batch_first(run, r.output)) for r in records]


def inside_rows(run):
    """The passing rows; keeps what the location needs in ``run.inside``."""
    np_recs = _view(run, run.np_capture.records)
    t_recs = run.t_capture.records
    pairs = _matching(run, np_recs, t_recs)
    run.inside = {"numpy": np_recs, "torch": t_recs, "pairs": pairs}
    for i, j in pairs:
        a, b = np_recs[i], t_recs[j]
        run.add(compare_arrays("forward", a.key, b.key, a.output, b.output,
                               port_tolerance(a.output, run.dtype), note=f"made at {a.made}"),
                expected=a.output, actual=b.output, inputs=b.input, np_record=a, t_record=b,
                made=a.made)
    if pairs or run.np_capture.records:
        kept = len(run.np_capture.records)
        note = (f"the NumPy model has no layers: its forward pass is followed from inside, "
                f"{kept} arrays its code made, {len(pairs)} of them paired by value with the "
                f"port's {len(t_recs)} recorded layers")
        if getattr(run.np_capture, "truncated", False):
            note += (f" (followed up to {inside.MAX_ARRAYS} arrays, {inside.MAX_BYTES // 2 ** 20} MiB copied "
                     f"and {inside.MAX_LINES} lines: what came later is not)")
        n = int(np.shape(run.x)[0])
        if not pairs and kept and not any(np.ndim(r.output) and np.shape(r.output)[0] == n
                                          for r in np_recs if r.output is not None):
            note += (f"; none of them holds the batch's {n} rows (a forward that loops over the "
                     f"samples one at a time): no layer can be paired, only the output, the loss "
                     f"and the gradients are compared")
        run.report.notes.append(note)


def locate(run, output_row, named_only=False):
    """Where the port's output parts (``output_row`` failed): the row of the first layer
    that parts, inserted before ``output_row``; nothing when no layer can be told.
    ``named_only``: at the loss, where no scores were compared (a loss may part for
    reasons of its own), only a layer a trap names."""
    inside = getattr(run, "inside", None)
    if inside is None or output_row.passed:
        return
    np_recs, t_recs, pairs = inside["numpy"], inside["torch"], inside["pairs"]
    last_np, last_t = pairs[-1] if pairs else (-1, -1)
    suspects = list(range(last_t + 1, len(t_recs)))[:SUSPECTS]
    twins = [i for i in range(last_np + 1, len(np_recs)) if np_recs[i].output is not None][:TWINS]
    skipped = None
    if pairs and last_t == len(t_recs) - 1 and twins:
        found, skipped = _stops_early(run, np_recs, t_recs, output_row)
    elif not suspects or not twins:
        return
    else:
        found = _named(run, np_recs, t_recs, suspects, twins)
        if found is None and not named_only:
            found = _first_suspect(run, np_recs, t_recs, suspects, twins)
    if found is None:
        return
    i, j, traps = found
    a, b = np_recs[i], t_recs[j]
    tol = port_tolerance(a.output, run.dtype)
    row = compare_arrays("forward", a.key, b.key, a.output, b.output, tol, note=f"made at {a.made}")
    if row.passed:  # agrees after all: the output's row stays the first mismatch
        return
    checks = run.report.checks
    run.add(row, expected=a.output, actual=b.output, inputs=b.input, np_record=a, t_record=b,
            made=a.made, inside_traps=traps, np_records=np_recs, output_row=output_row,
            **({"skipped": skipped} if skipped else {}))
    checks.remove(row)
    checks.insert(checks.index(output_row), row)


def _stops_early(run, np_recs, t_recs, output_row):
    """Every layer of the port agrees, and its output still parts: the port stops where the
    NumPy side goes on. Its last layer's output is a NumPy array made before the NumPy
    output; what the NumPy side computes after it, the port leaves out. ``((NumPy output,
    port's last layer, traps), what is left out)``, or ``(None, None)``; ``activation``
    where that step is an activation of the port's output."""
    raw = run.context.get(id(output_row), {}).get("raw")
    wanted = np.asarray(raw[0] if raw else run.context.get(id(output_row), {}).get("expected"))
    j = len(t_recs) - 1
    b = t_recs[j]
    out = next((k for k in range(len(np_recs) - 1, -1, -1) if np_recs[k].output is not None
                and np.shape(np_recs[k].output) == wanted.shape and within(wanted, np_recs[k].output, run.dtype)),
               None)
    stop = next((k for k, r in enumerate(np_recs) if r.output is not None and k != out
                 and same_values(r.output.shape, b.output.shape) and within(r.output, b.output, run.dtype)), None)
    if out is None or stop is None or stop >= out or np.shape(np_recs[out].output) != np.shape(b.output):
        return None, None
    a, p = np_recs[out], np_recs[stop]
    steps = [r.key for r in np_recs[stop + 1:out] if r.output is not None]
    through = f" through {', '.join(steps)}" if steps else ""
    skipped = (f"the port's output is the NumPy {p.key} (made at {p.made}); the NumPy side goes on"
               f"{through} to {a.key}: the port leaves that out")
    traps = []
    site = _site(run, a, replace(b, input=b.output))
    found = numpy_function(site, np.asarray(b.output, np.float64), np.asarray(a.output, np.float64))
    if found is not None and found[0] != "identity":
        name, setting = found
        shown = SHOWN[name] + (f" ({setting:g})" if setting is not None else "")
        traps = [{"code": "activation", "numpy_function": name, "torch_function": "identity",
                  "numpy_setting": setting, "torch_setting": None,
                  "text": f"the port leaves out the last activation: its output is the NumPy "
                          f"{p.key}, to which the NumPy side applies {shown} to make {a.key} "
                          f"(made at {a.made}); add it at the end of the port's forward"}]
    return (out, j, traps), skipped


def _site(run, a, b):
    """The pair as a kind's trap sees it: no NumPy layer object, the port's parameters as
    loaded (read once per check)."""
    tol = port_tolerance(a.output, run.dtype)
    if "torch_params" not in run.inside:
        run.inside["torch_params"] = {n: p.detach().cpu().numpy().astype(np.float64)
                                      for n, p in getattr(run.torch, "params", {}).items()
                                      if hasattr(p, "detach")}
    return Site(a, b, None, run.torch.layer_of(b.key), dtype=run.dtype, rtol=tol.rtol, atol=tol.atol,
                tape=getattr(run.np, "tape", None), torch_params=run.inside["torch_params"])


def _named(run, np_recs, t_recs, suspects, twins):
    """The first (suspect, twin) where a kind's trap or a skip connection reproduces the
    NumPy array."""
    pairs = getattr(run, "inside", {}).get("pairs") or []
    # what a skip connection can carry: the input, or an array the port computes too (a
    # layer's output); never an array of the NumPy side's own (its targets, a cache)
    earlier = [(-1, batch_record(run))] + [(i, np_recs[i]) for i, _ in pairs]  # (made at, array)
    last_np, last_t = pairs[-1] if pairs else (None, None)
    for j in suspects:
        b = t_recs[j]
        kind = torch_kind(b.kind)
        source = _input_twin(run, np_recs, b) if b.input is not None else None
        # a layer computed twice (an nn.Linear called, then its weight used raw): the array
        # the first call agreed with is the second's twin too
        again = [last_np] if last_t is not None and kind is not None and kind is torch_kind(t_recs[last_t].kind) else []
        for i in again + twins:
            a = np_recs[i]
            if source is not None and i <= source and i not in again:
                continue
            if a.output is None or b.output is None or np.ndim(a.output) != np.ndim(b.output):
                continue
            traps = _traps_at(run, i, a, b, kind, earlier)
            if not traps:
                continue
            # a layer written in steps that rebind one name (h = h * mask; h = h / keep):
            # its output is the last step a trap still fits, not a step on the way
            k = i + 1
            while k < len(np_recs) and np_recs[k].held == a.held and np.shape(np_recs[k].output) == np.shape(a.output):
                later = _traps_at(run, k, np_recs[k], b, kind, earlier)
                if not later:
                    break
                i, traps, k = k, later, k + 1
            return i, j, traps
    return None


def _traps_at(run, i, a, b, kind, earlier):
    """What a kind's trap, or a skip connection (carrying an array made before ``a``, the
    ``i``-th), names at the pair ``(a, b)``."""
    traps = []
    if kind is not None:
        try:
            traps = kind.traps(_site(run, a, b))
        except Exception:  # a trap that cannot be tested on these records says nothing
            traps = []
    return traps or residual_traps(run, a, b, [r for k, r in earlier if k < i])


def _first_suspect(run, np_recs, t_recs, suspects, twins):
    """The first suspect whose input agrees with an array the NumPy side made or was given,
    against the first NumPy array after the last agreement that has its shape."""
    for j in suspects:
        b = t_recs[j]
        # the port's last layer is its output, which the output's row compares already
        # (through the heads where the two stop at different ones)
        if b.input is None or b.output is None or j == len(t_recs) - 1:
            continue
        source = _input_twin(run, np_recs, b)
        if source is None:
            continue
        for i in twins:
            if i > source and same_values(np_recs[i].output.shape, b.output.shape):
                return i, j, []
        return None
    return None


def _input_twin(run, np_recs, b):
    """The index of the last NumPy array equal to the torch record's input (-1: the batch),
    or ``None``: the input agrees with nothing the NumPy side holds."""
    for k in range(len(np_recs) - 1, -1, -1):
        v = np_recs[k].output
        if v is not None and same_values(v.shape, b.input.shape) and within(v, b.input, run.dtype):
            return k
    x = np.asarray(run.x)
    if same_values(x.shape, b.input.shape) and within(x, b.input, run.dtype):
        return -1
    return None


def gradient_twins(run, found):
    """``{torch index: NumPy index}``: for each layer the forward rows paired, the array of
    the NumPy ``gradient`` (made after the forward arrays) that holds the gradient autograd
    (or the port's own gradient) gives at that layer's output. Only values that agree, with
    a known difference added where one applies there: a NumPy backprop that keeps no such
    array, or computes it otherwise, leaves the layer without a backward row."""
    inside = getattr(run, "inside", None)
    if inside is None or not inside["pairs"]:
        return {}
    np_recs, t_recs, pairs = inside["numpy"], inside["torch"], inside["pairs"]
    start = pairs[-1][0] + 1
    taken, twins = set(), {}
    for _, j in reversed(pairs):
        g = t_recs[j].grad_output
        if g is None:
            continue
        shift, _ = found.shift(("layer", j))
        for k in range(start, len(np_recs)):
            a = np_recs[k].output
            if k in taken or a is None or not same_values(a.shape, g.shape):
                continue
            if within(a, g, run.dtype) or (shift is not None and np.shape(shift) == a.shape
                                          and within(a + shift, g, run.dtype)):
                twins[j] = k
                taken.add(k)
                break
    return twins


def locate_blocked(run):
    """Where the port's own pass raises on the batch (a convolution that pads otherwise
    shrinks what the next layer takes): the layers it recorded before it raised, against
    the NumPy arrays seen from inside; ``(row, traps)`` where a trap names the layer that
    parts, else ``None``."""
    if not getattr(getattr(run, "np_capture", None), "inside", False):
        return None
    import torch
    from ..report import Check
    with torch.no_grad(), run.torch._capture(run.tx) as capture:
        try:
            run.torch.scores(run.tx)
        except Exception:  # the error is the check's finding; the records before it are kept
            pass
    np_recs, t_recs = _view(run, run.np_capture.records), capture.records
    pairs = _matching(run, np_recs, t_recs)
    run.inside = {"numpy": np_recs, "torch": t_recs, "pairs": pairs}
    last_np, last_t = pairs[-1] if pairs else (-1, -1)
    suspects = list(range(last_t + 1, len(t_recs)))[:SUSPECTS]
    twins = [i for i in range(last_np + 1, len(np_recs)) if np_recs[i].output is not None][:TWINS]
    found = _named(run, np_recs, t_recs, suspects, twins) if suspects and twins else None
    if found is None:
        return None
    i, j, traps = found
    a, b = np_recs[i], t_recs[j]
    row = Check("forward", a.key, b.key, passed=False,
                problem=f"{b.key} computes something else than the NumPy {a.key} (made at "
                        f"{a.made}), and the port's pass cannot go on after it")
    return row, traps
