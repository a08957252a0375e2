"""The phases of a net with modes (batch norm, dropout): its running statistics after one
training pass, and its evaluation-mode outputs.

``check_buffers`` (before the training-mode passes): the NumPy running statistics are
copied into the port, so both start from one state whatever each initialises to (the
book: zeros at the first pass; torch: mean 0, variance 1); one training pass on each
side; each buffer compared, with the known differences its kind derives from the
pass (``bn_unbiased_var``); then both put back as they were.

``check_eval`` (after them): the NumPy buffers copied in again, then ``predict`` in
evaluation mode (the book's ``train_flg=False``) against the port in ``eval()``,
layer by layer. Gradients are compared in training mode, as training uses them.
"""
import numpy as np

from ..align import align
from ..capture import LayerRecord, book_layer_capture
from ..known import Known, KnownDifference
from ..layers import numpy_kind
from ..report import compare_arrays
from ..tolerance import port_tolerance
from .forward import compare_scores


def buffer_pairs(run):
    """``[(numpy key, layer, numpy attribute, torch module name, torch buffer, kind)]``: each
    layer's running statistics and the port's module that owns the twins of its parameters."""
    if run.torch.kind != "module":
        return []
    torch_buffers = run.torch.buffers()
    pairs, used = [], set()
    for key, layer, attr in run.np.buffer_owners:
        kind = numpy_kind(type(layer).__name__)
        owned = [run.twin[n] for n, k in run.np.owners.items() if k == key and n in run.twin]
        modules = [name.rsplit(".", 1)[0] if "." in name else "" for name in owned]
        t_attr = dict(kind.buffers)[attr]
        name = next((m for m in modules if f"{m}.{t_attr}" in torch_buffers), None)
        if name is None:  # a norm without parameters: the next unused one of its kind, in order
            name = next((b.rsplit(".", 1)[0] for b in torch_buffers
                         if b.endswith("." + t_attr) and b.rsplit(".", 1)[0] not in used), None)
        if name is not None:
            used.add(name)
            pairs.append((key, layer, attr, name, t_attr, kind))
    return pairs


def _numpy_values(run, pairs):
    return {(key, attr): getattr(layer, attr, None) for key, layer, attr, *_ in pairs}


def _load(run, pairs):
    values = _numpy_values(run, pairs)
    run.torch.load_buffers({f"{m}.{b}": None if values[(key, attr)] is None else np.asarray(values[(key, attr)])
                            for key, _, attr, m, b, _ in pairs})


def check_buffers(run):
    pairs = buffer_pairs(run)
    run.buffer_pairs = pairs
    if not pairs:
        return
    if any(v is None for v in _numpy_values(run, pairs).values()):
        run.np.predict(run.x, "eval")  # the book makes its running statistics at the first pass
    _load(run, pairs)
    np_saved, t_saved = run.np.buffers(), run.torch.buffer_values()
    with book_layer_capture(run.np.items, run.np.owners) as capture:
        run.np.loss(run.x, run.t, "train")
    run.torch.outputs(run.tx, run.tt)
    inputs = {r.key: r.input for r in capture.records}
    after = run.torch.buffer_values()
    n = int(run.x.shape[0])
    for key, layer, attr, module, t_attr, kind in pairs:
        expected, actual = getattr(layer, attr, None), after.get(f"{module}.{t_attr}")
        before = np_saved.get((key, attr))
        if expected is None or actual is None:
            continue
        x = inputs.get(key)
        stat = None
        if x is not None:
            flat = np.asarray(x, np.float64).reshape(x.shape[0], -1)
            stat = flat.mean(axis=0) if attr == "running_mean" else flat.var(axis=0)
        site = {"before": before, "batch_stat": stat, "unbiased": n / (n - 1) if n > 1 else 1.0,
                "batch_size": n}
        np_record = LayerRecord(key, type(layer).__name__, x, np.asarray(expected))
        t_record = LayerRecord(module, type(run.torch.model.get_submodule(module)).__name__, None,
                               np.asarray(actual))
        shift = shift_name = None
        from ..layers import Site
        for found in kind.known(Site(np_record, t_record, layer, run.torch.model.get_submodule(module),
                                     what=attr, **site)):
            shift, shift_name = found["shift"], "N/(N-1)"
            run.apply_known(Known([KnownDifference(found["code"], shift_name, f"{key}.{attr}", {},
                                                   found["text"], found["size"])]))
        row = compare_arrays("forward", f"{key}.{attr}", f"{module}.{t_attr}", np.asarray(expected),
                             np.asarray(actual), port_tolerance(expected, run.dtype), shift=shift,
                             shift_name=shift_name, note="after one training pass")
        run.add(row, expected=np.asarray(expected) if shift is None else np.asarray(expected) + shift,
                actual=np.asarray(actual), np_record=np_record, t_record=t_record, what=attr,
                mode="train", site=site)
    run.np.restore_buffers(np_saved)
    run.torch.load_buffers(t_saved)


def check_eval(run):
    if not run.np.modal or run.np.model is None:
        return
    if getattr(run, "buffer_pairs", None):
        _load(run, run.buffer_pairs)
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
