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
from .shapes import parse_kwargs


def open_reference(model):
    """A golden file's path opened as a ``GoldenFile``; any other model as it is."""
    return GoldenFile(model) if is_golden_path(model) else model


def reference_side(model, dtype=None, numpy_kwargs=None, numpy_layout=None):
    """The NumPy side of a check: a live model, or a golden file's recording.
    ``numpy_kwargs`` (keywords for the NumPy ``loss``) and ``numpy_layout``
    (``batch-first|features-first``, detected when None) apply to a live model."""
    if isinstance(model, GoldenFile):
        if numpy_kwargs or numpy_layout:
            from ..targets import PortSetupError
            raise PortSetupError("--numpy-kwargs and --numpy-layout apply to a live NumPy model; "
                                 "give them to 'compare record' instead of to a golden file")
        return GoldenSide(model, dtype)
    return NumpySide(model, dtype, numpy_kwargs, numpy_layout)


__all__ = ["reference_side", "open_reference", "GoldenFile", "NumpySide", "is_golden_path", "parse_kwargs"]
