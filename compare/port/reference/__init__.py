"""The reference side of a check: what the torch port is compared against.

Two implementations of one interface (``params``, ``dtype``, ``run``,
``loss``, ``predict``, ``gradient``, ``batch``, ``description``,
``check_training``, ``training_reference``): ``live.NumpySide``, the user's
NumPy model run on a deep copy, and ``golden.GoldenSide``, a golden file's
recording. This module is the only one that knows both; the check and the
training ask it for a side and use whichever it gives.
"""
from .golden import GoldenFile, GoldenSide, is_golden_path
from .live import NumpySide


def open_reference(model):
    """A golden file's path opened as a ``GoldenFile``; any other model as it is."""
    return GoldenFile(model) if is_golden_path(model) else model


def reference_side(model, dtype=None):
    """The NumPy side of a check: a live model, or a golden file's recording."""
    if isinstance(model, GoldenFile):
        return GoldenSide(model, dtype)
    return NumpySide(model, dtype)


__all__ = ["reference_side", "open_reference", "GoldenFile", "NumpySide", "is_golden_path"]
