"""Known differences, from every source the run knows, by phase.

Each source is a module with ``at_loss(np_loss, out, loss_name, dtype)`` and
``at_backward(run, t_grads, numerical)``, each returning a ``Known``; the
phases of the check and training ask this module, never a source by name.
Today's one source is the book's 1e-7 (``log_eps``); the next ones (batch
norm's running variance, weight decay in the loss) are added to ``SOURCES``.
"""
from . import log_eps
from .difference import Known, KnownDifference

SOURCES = (log_eps,)


def at_loss(np_loss, out, loss_name, dtype):
    """The known differences between the two losses on one batch (``out``:
    ``TorchSide.outputs``'s or ``training_pass``'s)."""
    known = Known()
    for source in SOURCES:
        known = known + source.at_loss(np_loss, out, loss_name, dtype)
    return known


def at_backward(run, t_grads, numerical):
    """The known differences between the two gradients of a check's ``run`` (its state),
    ``t_grads`` the torch ones in the NumPy layout; ``numerical``: the NumPy gradient is
    central differences of its loss (so it is of its loss's kind)."""
    known = Known()
    for source in SOURCES:
        known = known + source.at_backward(run, t_grads, numerical)
    return known


__all__ = ["Known", "KnownDifference", "SOURCES", "at_loss", "at_backward"]
