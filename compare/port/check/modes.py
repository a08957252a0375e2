"""The phases of a net with modes (batch norm, dropout): its running statistics after one
training pass, and its evaluation-mode outputs.

``check_buffers`` (before the training-mode passes): the NumPy running statistics are
copied into the port, so both start from one state whatever each initialises to (the
book: zeros at the first pass; torch: mean 0, variance 1); one training pass on each
side; each buffer compared, with the known differences its kind derives from the
pass (``bn_unbiased_var``); then both put back as they were. ``add_buffer_rows``
reports them after the forward rows.

``check_eval`` (after them): the NumPy buffers copied in again, then ``predict`` in
evaluation mode (the book's ``train_flg=False``) against the port in ``eval()``,
layer by layer. Gradients are compared in training mode, as training uses them.
A ``predict`` without a flag that computes as evaluation does (``reference/predict_mode``)
is compared here alone. Where the port keeps running statistics no NumPy buffer pairs
with, each side would normalise with its own: evaluation mode is then not judged, and
the report says so.

``mode_trap``: at the scores, the NumPy ``predict`` given its flag for the other mode
reproduces the port's output: the port is left in the wrong mode.
"""
import numpy as np

from .. import heads
from ..align import align
from ..capture import LayerRecord, book_layer_capture
from ..known import Known, KnownDifference
from ..layers import Site, numpy_kind
from ..layers.dropout import is_dropout_record
from ..report import compare_arrays
from ..tolerance import port_tolerance, training_tolerance
from .forward import compare_scores, predict_in


def buffer_pairs(np_side, t_side, twin):
    """``[(numpy key, layer, numpy attribute, torch module name, torch buffer, kind)]``: each
    layer's running statistics and the port's module that owns the twins of its parameters."""
    if t_side.kind != "module":
        return []
    torch_buffers = t_side.buffers()
    pairs, used = [], set()
    for key, layer, attr in np_side.buffer_owners:
        kind = numpy_kind(type(layer).__name__)
        owned = [twin[n] for n, k in np_side.owners.items() if k == key and n in twin]
        modules = [name.rsplit(".", 1)[0] if "." in name else "" for name in owned]
        t_attr = dict(kind.buffers)[attr]
        name = next((m for m in modules if f"{m}.{t_attr}" in torch_buffers), None)
        if name is None:  # a norm without parameters: the next unused one of its kind, in order
            name = next((b.rsplit(".", 1)[0] for b in torch_buffers
                         if b.endswith("." + t_attr) and b.rsplit(".", 1)[0] not in used), None)
        if name is None:  # a functional batch norm's buffers, the port's own: running_mean1, ...
            own = next((b for b in torch_buffers if "." not in b and b.startswith(t_attr)
                        and b not in used), None)
            if own is not None:
                used.add(own)
                pairs.append((key, layer, attr, "", own, kind))
            continue
        used.add(name)
        pairs.append((key, layer, attr, name, t_attr, kind))
    return pairs


def buffer_name(module, attr):
    return f"{module}.{attr}" if module else attr


def judged(t_side, pair):
    """A buffer's update can be judged where its module says its momentum; a functional
    ``F.batch_norm`` takes it as an argument the check does not read."""
    return hasattr(t_side.model.get_submodule(pair[3]), "momentum")


def load_numpy_buffers(np_side, t_side, pairs, x):
    """The NumPy running statistics copied into the port (made first where the NumPy layer
    makes them at its first pass, as the book's does)."""
    if any(getattr(layer, attr, None) is None for _, layer, attr, *_ in pairs):
        np_side.predict(x, "eval")
    t_side.load_buffers({buffer_name(m, b): None if getattr(layer, attr, None) is None
                         else np.asarray(getattr(layer, attr))
                         for key, layer, attr, m, b, _ in pairs})


def compare_buffers(np_side, t_side, pairs, inputs, before, dtype, *, carried=None, step=None,
                    phase="forward", updates=1):
    """One row per buffer after a training pass: ``[(row, context, known differences)]`` and
    the known differences to carry to the next step (``{(key, attr): array}``)."""
    after = t_side.buffer_values()
    out, carry = [], {}
    for key, layer, attr, module, t_attr, kind in pairs:
        if not judged(t_side, (key, layer, attr, module, t_attr, kind)):
            continue
        expected, actual = getattr(layer, attr, None), after.get(buffer_name(module, t_attr))
        if expected is None or actual is None:
            continue
        x = inputs.get(key)
        stat = None
        if x is not None:
            flat = np.asarray(x, np.float64).reshape(x.shape[0], -1)
            stat = flat.mean(axis=0) if attr == "running_mean" else flat.var(axis=0)
        n = None if x is None else int(x.shape[0])
        module_obj = t_side.model.get_submodule(module)
        m_t = float(getattr(module_obj, "momentum", 0.0) or 0.0)
        previous = (carried or {}).get((key, attr), 0.0)
        site = {"before": before.get((key, attr)), "batch_stat": stat, "batch_size": n,
                "unbiased": n / (n - 1) if n and n > 1 else 1.0, "carried": (1 - m_t) * previous}
        np_record = LayerRecord(key, type(layer).__name__, x, np.asarray(expected))
        t_record = LayerRecord(module, type(module_obj).__name__, None, np.asarray(actual))
        tol = port_tolerance(expected, dtype) if step is None else training_tolerance(expected, dtype, updates)
        found = kind.known(Site(np_record, t_record, layer, module_obj, what=attr, dtype=dtype,
                                rtol=port_tolerance(expected, dtype).rtol, atol=tol.atol, **site))
        shift, label = None, None
        differences = []
        for d in found:
            shift, label = d["shift"], d.get("label", "N/(N-1)")
            carry[(key, attr)] = shift
            differences.append(KnownDifference(d["code"], label, f"{key}.{attr}", {}, d["text"], d["size"]))
        row = compare_arrays(phase, f"{key}.{attr}", buffer_name(module, t_attr), np.asarray(expected),
                             np.asarray(actual), tol, shift=shift, shift_name=label,
                             step=step, note=None if step is not None else "after one training pass")
        ctx = dict(expected=np.asarray(expected) if shift is None else np.asarray(expected) + shift,
                   actual=np.asarray(actual), np_record=np_record, t_record=t_record, what=attr,
                   mode="train", site=site)
        out.append((row, ctx, differences))
    return out, carry


def check_buffers(run):
    pairs = buffer_pairs(run.np, run.torch, run.twin)
    run.buffer_pairs = pairs
    if not pairs:
        return
    unjudged = [buffer_name(p[3], p[4]) for p in pairs if not judged(run.torch, p)]
    if unjudged:
        run.report.notes.append(
            f"{len(unjudged)} running statistics of a functional batch norm ({', '.join(unjudged)}) "
            f"are copied in for the evaluation rows but not compared after a training pass: "
            f"F.batch_norm takes its momentum as an argument, which the check cannot read")
    load_numpy_buffers(run.np, run.torch, pairs, run.x)
    np_saved, t_saved = run.np.buffers(), run.torch.buffer_values()
    with _np_capture(run.np) as capture:
        run.np.loss(run.x, run.t, "train")
    if getattr(run.np, "tape", None) is not None:  # the port's dropout draws the same masks
        run.np.tape.keep_masks(capture.records, is_dropout_record)
    run.torch.outputs(run.tx, run.tt)
    inputs = {r.key: r.input for r in capture.records}
    run.buffer_rows, _ = compare_buffers(run.np, run.torch, pairs, inputs, np_saved, run.dtype)
    run.np.restore_buffers(np_saved)
    run.torch.load_buffers(t_saved)
    run.torch_buffers_at_forward = t_saved


def add_buffer_rows(run):
    """The buffers' rows, after the layers' outputs: a difference that starts in a layer
    shows at its output first, and in the running statistics of the layers after it."""
    for row, ctx, differences in getattr(run, "buffer_rows", ()):
        if differences:
            run.apply_known(Known(differences))
        run.add(row, **ctx)


def _np_capture(side):
    capture = getattr(side, "capture", None)
    return capture() if capture is not None else book_layer_capture(side.items, side.owners)


def unpaired_statistics(t_side, pairs):
    """The port's running statistics no NumPy buffer was paired with (a NumPy batch norm
    the check does not recognise keeps its own where the check cannot see them)."""
    paired = {buffer_name(m, b) for _, _, _, m, b, _ in pairs or ()}
    return [n for n in t_side.buffers() if n not in paired and "running" in n.rsplit(".", 1)[-1]]


def unpaired_note(unpaired, what):
    return (f"evaluation mode not judged: the port's running statistics ({', '.join(unpaired)}) "
            f"pair with no NumPy buffer the check can copy in, so {what} not compared; training "
            f"mode is judged through the loss and the gradients")


def check_eval(run):
    deferred = getattr(run, "predict_in_eval", False)
    if not (run.np.modal or deferred) or run.np.model is None:
        return
    unpaired = unpaired_statistics(run.torch, getattr(run, "buffer_pairs", None))
    if unpaired:
        # each side would normalise with its own running statistics: two states, not one port
        run.report.notes.append(unpaired_note(
            unpaired, "the NumPy predict, which computes as evaluation does, is" if deferred
            else "predict in evaluation mode is"))
        return
    if getattr(run, "buffer_pairs", None):
        load_numpy_buffers(run.np, run.torch, run.buffer_pairs, run.x)
    run.torch.mode = "eval"
    try:
        np_capture, np_scores = run.np.recorded_predict(run.x, "eval") if run.np.has_predict else (None, None)
        t_capture, t_scores = run.torch.recorded_scores(run.tx)
    finally:
        run.torch.mode = "train"
    if np_capture is None or t_scores is None:
        return
    np_recs, t_recs = np_capture.records, t_capture.records
    pairs, _, _ = align(np_recs, t_recs)
    for i, j in pairs:
        a, b = np_recs[i], t_recs[j]
        run.add(compare_arrays("forward", f"{a.key} [eval]", f"{b.key} [eval]", a.output, b.output,
                               port_tolerance(a.output, run.dtype)),
                expected=a.output, actual=b.output, inputs=a.input, np_record=a, t_record=b,
                np_records=np_recs, mode="eval")
    compare_scores(run, np.asarray(np_scores), t_scores, suffix=" [eval]")
    if getattr(run.np, "predict_mode", None) is not None:
        run.context[id(run.report.checks[-1])]["other_mode"] = ("train", lambda: predict_in(run, "train"))


def mode_trap(run, row, ctx):
    """At the scores: the port's output is the NumPy ``predict`` given its flag for the other
    mode (a dropout or batch norm that ``train()`` or ``eval()`` does not reach)."""
    other = ctx.get("other_mode")
    if other is None or ctx.get("actual") is None or row.passed:
        return []
    other_mode, scores = other
    expected, actual, _, _ = heads.match(scores(), ctx["actual"], run.dtype)
    if np.shape(expected) != np.shape(actual):
        return []
    tol = port_tolerance(expected, run.dtype)
    if np.any(np.abs(np.asarray(actual) - expected) > tol.atol + tol.rtol * np.abs(expected)):
        return []
    mode = "eval" if other_mode == "train" else "train"
    return [{"code": "mode", "mode": mode,
             "text": f"in {mode} mode the port computes what the NumPy predict computes in "
                     f"{other_mode} mode: the port is left in the wrong mode (a dropout or batch "
                     f"norm that {'model.eval()' if mode == 'eval' else 'model.train()'} does not "
                     f"reach, or a training= flag fixed in its forward)"}]
