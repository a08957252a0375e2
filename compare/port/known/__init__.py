"""Known differences, from every source the run knows, by phase.

Each source is a module with ``at_loss(np_loss, out, loss_name, dtype)`` and
``at_backward(run, t_grads, numerical)``, each returning a ``Known``; the
phases of the check and training ask this module, never a source by name.
The sources: weight decay in the loss (``weight_decay``), and an eps inside the log of a
classification loss (``log_eps``: the book's 1e-7, the course's 1e-10, any written eps,
fitted); batch norm's running variance is its layer kind's.
"""
from . import log_eps, weight_decay
from .difference import Known, KnownDifference

# in order: each later source sees the NumPy loss with the earlier ones taken off (the
# book's weight-decay penalty first, so the eps is classified on the loss without it)
SOURCES = (weight_decay, log_eps)


def at_loss(np_loss, out, loss_name, dtype, context=None):
    """The known differences between the two losses on one batch (``out``:
    ``TorchSide.outputs``'s or ``training_pass``'s; ``context``: what a source needs
    beyond them, ``{"params", "decays"}`` for weight decay)."""
    known = Known()
    for source in SOURCES:
        found = source.at_loss(np_loss, out, loss_name, dtype, context)
        shift, _ = found.shift("loss")
        if shift is not None:
            np_loss = float(np_loss) + float(shift)
        known = known + found
    return known


def at_backward(run, t_grads, numerical):
    """The known differences between the two gradients of a check's ``run`` (its state),
    ``t_grads`` the torch ones in the NumPy layout; ``numerical``: the NumPy gradient is
    central differences of its loss (so it is of its loss's kind)."""
    known = Known()
    for source in SOURCES:
        known = known + source.at_backward(run, t_grads, numerical, earlier=known)
    return known


def traps(run, row, ctx):
    """The bugs a source knows the look of (a penalty the port lacks), at a failing row."""
    found = []
    for source in SOURCES:
        trap_at = getattr(source, "trap_at", None)
        if trap_at is not None:
            found += trap_at(run, row, ctx)
    return found


__all__ = ["Known", "KnownDifference", "SOURCES", "at_loss", "at_backward", "traps"]
