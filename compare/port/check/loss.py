"""Phase 3, loss: the two losses on the batch, with the known differences between them
(``compare.port.known``) added to the NumPy one before comparing. The factors two
reductions of the same losses would make (``losses.loss_scales``) go to the diagnosis
of this row and the gradients'."""
import numpy as np

from .. import known
from ..known.log_eps import has_references
from ..losses import loss_scales
from ..report import compare_arrays
from ..tolerance import port_tolerance
from .inside_rows import locate


def check_loss(run):
    np_loss, t_loss = np.array(run.np_loss), np.array(run.out["loss"])
    # where the outputs already part, a gap between the losses is theirs: no eps in a log
    # is fitted to it (a wrong port's loss matches some written eps within float32's
    # tolerance)
    parted = any(not c.passed for c in run.report.checks if c.phase == "forward")
    found = known.at_loss(run.np_loss, run.out, run.torch.loss_name, run.dtype,
                          {"params": run.np.params, "decays": run.decays,
                           "outputs_part": parted})
    run.apply_known(found)
    shift, shift_name = found.shift("loss")
    scores = run.out["scores"]
    run.loss_scales = loss_scales(run.torch.loss, None if scores is None else scores.shape,
                                  labels=has_references(run.out))
    run.add(compare_arrays("loss", "loss", run.torch.loss_name, np_loss, t_loss,
                           port_tolerance(np_loss, run.dtype), shift=shift, shift_name=shift_name),
            expected=np_loss, actual=t_loss, known=found.hint("loss"))
    inside = getattr(run, "inside", None)
    if inside is not None and inside.get("output_row") is None:
        # a NumPy model without layers or predict: the loss is its first output compared
        locate(run, run.report.checks[-1], named_only=True)
