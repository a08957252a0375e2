"""Phase 2, forward: both sides' recorded passes, each layer's output paired in order of
execution (``align``), then the scores.

The torch side's recorded pass also gives its gradients (the port's own
``gradient`` when it has one, else autograd of its loss), which the backward
phase compares.
"""
import numpy as np

from .. import heads
from ..align import align
from ..losses import BINARY_HINT, binary_loss_for, binary_on_one_output
from ..report import compare_arrays
from ..targets import PortSetupError
from ..tolerance import port_tolerance
from .inside_rows import inside_rows, locate


def check_forward(run):
    x, t = run.x, run.t
    run.np_capture, run.np_loss, run.np_grads = run.np.run(x, t)
    note = getattr(run.np_capture, "note", None)
    if note and note not in run.report.notes:
        run.report.notes.append(note)
    if not np.isfinite(run.np_loss):
        raise PortSetupError(f"numpy side: loss(x, t) is {run.np_loss}: the NumPy model "
                             f"cannot be the reference on this batch")
    if getattr(run, "loss_auto", False):
        _choose_loss(run)
    run.out = run.torch.outputs(run.tx, run.tt)
    if not np.isfinite(run.out["loss"]):
        raise PortSetupError(f"torch side: the {run.torch.loss_name} loss is {run.out['loss']} "
                             f"on this batch (NaN or infinity in the port's output)")
    chosen = "gradient" if run.torch.has_gradient else run.torch.loss_name
    run.t_capture, run.t_grads, run.t_scores_grad = run.torch.recorded_pass(run.tx, run.tt, chosen)
    run.t_source = "the port's gradient" if chosen == "gradient" else f"autograd of {chosen}"

    if getattr(run.np_capture, "inside", False):  # a NumPy model without layers
        run.layer_pairs, run.report.unpaired = [], {"numpy": [], "torch": []}
        inside_rows(run)
        before = len(run.report.checks)
        _scores(run)
        row = run.report.checks[before] if len(run.report.checks) > before else None
        # labels that agree say nothing of the scores: the loss is then the output compared
        labels = row is not None and run.context[id(row)].get("labels_row")
        run.inside["output_row"] = None if labels and row.passed else row
        if run.inside["output_row"] is not None:
            locate(run, run.inside["output_row"])
        return
    np_recs, t_recs = run.np_capture.records, run.t_capture.records
    run.layer_pairs, left_np, left_t = align(np_recs, t_recs)
    # A side that records no layer (a NumPy model without layers or layer functions, the
    # commonest kind) leaves the other side's layers nothing to pair with: they are not
    # unpaired, the check compares the scores and the gradients alone.
    run.report.unpaired = {"numpy": [np_recs[i].key for i in left_np] if t_recs else [],
                           "torch": [t_recs[j].key for j in left_t] if np_recs else []}
    for i, j in run.layer_pairs:
        a, b = np_recs[i], t_recs[j]
        run.add(compare_arrays("forward", a.key, b.key, a.output, b.output,
                               port_tolerance(a.output, run.dtype)),
                expected=a.output, actual=b.output, inputs=a.input, np_index=i, t_index=j)
    _scores(run)


def _choose_loss(run):
    """No loss given, 0/1 targets and a port of one output: not the default cross_entropy
    (one column per class) but the binary loss that gives the NumPy loss, said in a note;
    when none does, the loss to give, in one line."""
    import torch
    with torch.no_grad():
        output = run.torch.scores(run.tx)
    if output is None or not binary_on_one_output(tuple(output.shape), run.t):
        return
    tol = port_tolerance(np.array(run.np_loss), run.dtype)
    name, values = binary_loss_for(run.np_loss, output, run.tt, (tol.rtol, tol.atol))
    if name is None:
        tried = ", ".join(f"{k} {v:.6g}" for k, v in values.items())
        raise PortSetupError(f"no --loss given, and the port has one output against 0/1 targets, "
                             f"so cross_entropy (one column per class) cannot be the loss; none of "
                             f"the binary losses gives the NumPy loss {run.np_loss:.6g} ({tried}): "
                             f"{BINARY_HINT}, or another with --loss")
    run.torch.use_loss(name)
    run.report.settings["loss"] = name
    run.report.notes.append(f"no --loss given: the port has one output against 0/1 targets, and "
                            f"{name} is the binary loss that gives the NumPy loss "
                            f"({run.np_loss:.6g}) on this batch, so it is the loss checked; "
                            f"--loss chooses another")


def _scores(run):
    t_scores = run.out["scores"]
    if t_scores is None:
        return
    # a model whose train-mode scores only its loss computes (cs231n's with modes): its
    # last layer's record
    predicts = run.np.has_predict and getattr(run.np, "predicts_train", True)
    eval_scores = _predict_in_eval(run, t_scores) if predicts else None
    if eval_scores is not None:
        run.predict_in_eval = True  # compared with the port in eval() (check_eval), not here
        _heads(run, run.np.predict(run.x), eval_scores)  # each side's head, in one mode
        return
    # an array seen from inside is not known to be the scores: the last layer's record is
    np_scores = run.np.predict(run.x) if predicts else (
        run.np_capture.records[-1].output
        if run.np_capture.records and not getattr(run.np_capture, "inside", False) else None)
    if np_scores is None:
        return
    compare_scores(run, np_scores, t_scores)
    if predicts and getattr(run.np, "predict_mode", None) is not None:
        run.context[id(run.report.checks[-1])]["other_mode"] = ("eval", lambda: predict_in(run, "eval"))


def predict_in(run, mode):
    """The NumPy ``predict`` given its flag for ``mode``, on the recorded draws, its running
    statistics put back as they were."""
    saved = run.np.buffers()
    try:
        return np.asarray(run.np.predict(run.x, mode))
    finally:
        run.np.restore_buffers(saved)


def _predict_in_eval(run, t_scores):
    """The port's scores in eval mode where the NumPy ``predict`` computes as evaluation
    does (no flag, and ``predict_mode``'s probe finds it so) and the port's two modes part
    on this batch: training's scores are not what it gives; else None. A net without
    modes on either side keeps its one row here."""
    mode_on = getattr(run.np, "predict_mode_on", None)
    if mode_on is None or getattr(run.np, "predict_mode", None) is not None:
        return None
    import torch
    run.torch.mode = "eval"
    try:
        with torch.no_grad():
            eval_scores = run.torch.scores(run.tx)
    finally:
        run.torch.mode = "train"
    if eval_scores is None:
        return None
    eval_scores = eval_scores.detach().cpu().numpy()
    tol = port_tolerance(t_scores, run.dtype)
    parts = eval_scores.shape != t_scores.shape or np.any(
        np.abs(eval_scores - t_scores) > tol.atol + tol.rtol * np.abs(t_scores))
    # the port's modes first: a port without them spares the NumPy side the probe
    return eval_scores if parts and mode_on(run.x) == "eval" else None


def _heads(run, np_scores=None, t_scores=None, found=None):
    """The heads the two outputs stop at, kept for the double softmax at the loss, and said."""
    if found is None:
        found = heads.match(np_scores, t_scores, run.dtype)[3]
    run.heads = found
    said = heads.head_note(found["torch"], run.torch.loss_name, run.torch.kind == "module")
    if said and said not in run.report.notes:
        run.report.notes.append(said)


def compare_scores(run, np_scores, t_scores, suffix=""):
    """The NumPy ``predict`` (or last layer) against the port's scores, in one mode; where
    the two stop at different heads (scores, probabilities, log-probabilities), compared at
    the later one (``heads.match``), and the note says so."""
    if heads.are_labels(np_scores, t_scores):
        return _labels(run, np_scores, t_scores, suffix)
    raw = (np_scores, t_scores)
    np_scores, t_scores, note, found = heads.match(np_scores, t_scores, run.dtype)
    if not suffix:
        _heads(run, found=found)
    if not np.all(np.isfinite(t_scores)):
        raise PortSetupError("torch side: the scores hold NaN or infinity on this batch")
    name = "forward" if run.torch.kind == "module" else "predict"
    predicts = run.np.has_predict and (suffix or getattr(run.np, "predicts_train", True))
    run.add(compare_arrays("forward", ("predict" if predicts else "scores") + suffix,
                           name + suffix, np_scores, t_scores, port_tolerance(np_scores, run.dtype),
                           note=note),
            expected=np_scores, actual=t_scores, mode="eval" if suffix else "train",
            head_row=True, raw=raw)


def _labels(run, labels, t_scores, suffix):
    """A NumPy ``predict`` that gives class labels, against the argmax of the port's output.
    A label that differs only where the port's two best scores are within round-off of each
    other is a tie either side may break: counted in the note, not failed."""
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    t_scores = np.asarray(t_scores, np.float64)
    t_labels, ties = heads.argmax_with_ties(t_scores, port_tolerance(t_scores, run.dtype))
    judged = np.where(ties & (labels != t_labels), labels, t_labels)
    note = "NumPy predict gives class labels: compared with the argmax of the port's output"
    tied = int(np.sum(ties & (labels != t_labels)))
    if tied:
        note += f"; {tied} rows whose two best scores tie within round-off take the NumPy label"
    name = "forward" if run.torch.kind == "module" else "predict"
    run.add(compare_arrays("forward", "predict" + suffix, name + suffix, labels.astype(np.float64),
                           judged.astype(np.float64), port_tolerance(labels.astype(np.float64), run.dtype),
                           note=note),
            expected=labels, actual=judged, mode="eval" if suffix else "train", labels_row=True)
