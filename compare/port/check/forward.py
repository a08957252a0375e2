"""Phase 2, forward: both sides' recorded passes, each layer's output paired in order of
execution (``align``), then the scores.

The torch side's recorded pass also gives its gradients (the port's own
``gradient`` when it has one, else autograd of its loss), which the backward
phase compares.
"""
import numpy as np

from ..align import align
from ..report import compare_arrays
from ..targets import PortSetupError
from ..tolerance import port_tolerance
from ..torch_side import are_probabilities


def check_forward(run):
    x, t = run.x, run.t
    run.np_capture, run.np_loss, run.np_grads = run.np.run(x, t)
    note = getattr(run.np_capture, "note", None)
    if note and note not in run.report.notes:
        run.report.notes.append(note)
    if not np.isfinite(run.np_loss):
        raise PortSetupError(f"numpy side: loss(x, t) is {run.np_loss}: the NumPy model "
                             f"cannot be the reference on this batch")
    run.out = run.torch.outputs(run.tx, run.tt)
    if not np.isfinite(run.out["loss"]):
        raise PortSetupError(f"torch side: the {run.torch.loss_name} loss is {run.out['loss']} "
                             f"on this batch (NaN or infinity in the port's output)")
    chosen = "gradient" if run.torch.has_gradient else run.torch.loss_name
    run.t_capture, run.t_grads, run.t_scores_grad = run.torch.recorded_pass(run.tx, run.tt, chosen)
    run.t_source = "the port's gradient" if chosen == "gradient" else f"autograd of {chosen}"

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


def _scores(run):
    t_scores = run.out["scores"]
    if t_scores is None:
        return
    # a model whose train-mode scores only its loss computes (cs231n's with modes): its
    # last layer's record
    predicts = run.np.has_predict and getattr(run.np, "predicts_train", True)
    np_scores = run.np.predict(run.x) if predicts else (
        run.np_capture.records[-1].output if run.np_capture.records else None)
    if np_scores is None:
        return
    compare_scores(run, np_scores, t_scores)


def compare_scores(run, np_scores, t_scores, suffix=""):
    """The NumPy ``predict`` (or last layer) against the port's scores, in one mode."""
    np_p, t_p = are_probabilities(np_scores), are_probabilities(t_scores)
    note = None
    # one side's logits against the other's probabilities: the same thing once the
    # logits go through softmax; outputs in [0, 1] are no logits (a softmax over the
    # wrong axis stays as it is, for the diagnosis to see)
    if np_p and not t_p and (t_scores < 0).any():
        t_scores, note = _softmax(t_scores), "NumPy predict gives probabilities: compared with softmax of the torch scores"
    elif t_p and not np_p and (np_scores < 0).any():
        np_scores, note = _softmax(np_scores), "torch gives probabilities: compared with softmax of the NumPy scores"
    if not np.all(np.isfinite(t_scores)):
        raise PortSetupError("torch side: the scores hold NaN or infinity on this batch")
    name = "forward" if run.torch.kind == "module" else "predict"
    predicts = run.np.has_predict and (suffix or getattr(run.np, "predicts_train", True))
    run.add(compare_arrays("forward", ("predict" if predicts else "scores") + suffix,
                           name + suffix, np_scores, t_scores, port_tolerance(np_scores, run.dtype),
                           note=note),
            expected=np_scores, actual=t_scores, mode="eval" if suffix else "train")


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
