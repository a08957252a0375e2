"""Phase 3, loss: the two losses on the batch, with the known differences between them
(``compare.port.known``) added to the NumPy one before comparing."""
import numpy as np

from .. import known
from ..report import compare_arrays
from ..tolerance import port_tolerance


def check_loss(run):
    np_loss, t_loss = np.array(run.np_loss), np.array(run.out["loss"])
    found = known.at_loss(run.np_loss, run.out, run.torch.loss_name, run.dtype,
                          {"params": run.np.params, "decays": run.decays})
    run.apply_known(found)
    shift, shift_name = found.shift("loss")
    run.add(compare_arrays("loss", "loss", run.torch.loss_name, np_loss, t_loss,
                           port_tolerance(np_loss, run.dtype), shift=shift, shift_name=shift_name),
            expected=np_loss, actual=t_loss, known=found.hint("loss"))
