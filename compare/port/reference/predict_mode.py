"""The mode a NumPy ``predict`` without a mode flag runs in, read off the NumPy side alone.

A learner's ``predict(x)`` often hides its mode (an adapter calling ``forward(X,
train=False)``, the course's ``predict`` that leaves dropout out). Compared with the
port in training mode, an evaluation-mode ``predict`` fails a right port. What an
evaluation pass is, whatever the model: it draws no random numbers (no dropout mask)
and each row's output depends on that row alone (batch norm on its running statistics,
not the batch's). A training pass of a net with modes breaks one or the other. A
``predict`` that keeps both computes as the port's ``eval()`` does: for a net without
modes the two modes are one.

The probe leaves the NumPy random stream and the running statistics the check knows
as they were.
"""
from contextlib import contextmanager

import numpy as np

from ..draws import NUMPY_DRAWS
from ..tolerance import port_tolerance


@contextmanager
def _counted_draws():
    """``[count]`` of ``numpy.random`` draws made inside, the stream put back after."""
    state = np.random.get_state()
    saved = {name: getattr(np.random, name) for name in NUMPY_DRAWS}
    count = [0]

    def counted(draw):
        def drawn(*args, **kwargs):
            count[0] += 1
            return draw(*args, **kwargs)
        return drawn
    for name, draw in saved.items():
        setattr(np.random, name, counted(draw))
    try:
        yield count
    finally:
        for name, draw in saved.items():
            setattr(np.random, name, draw)
        np.random.set_state(state)


def runs_as_eval(predict, x, dtype):
    """True where ``predict(x)`` draws nothing and its rows equal those of ``predict`` on the
    two halves of the batch (to the round-off of one comparison row); False otherwise, and
    for a batch of one row, where nothing can tell."""
    if x.shape[0] < 2:
        return False
    half = x.shape[0] // 2
    with _counted_draws() as draws:
        whole = np.asarray(predict(x))
        parts = [np.asarray(predict(x[:half])), np.asarray(predict(x[half:]))]
    if draws[0] or whole.ndim == 0 or any(p.ndim != whole.ndim for p in parts):
        return False
    try:
        split = np.concatenate(parts, axis=0)
    except ValueError:
        return False
    if split.shape != whole.shape or not np.issubdtype(whole.dtype, np.floating):
        return False
    tol = port_tolerance(whole, dtype)
    return bool(np.all(np.abs(split - whole) <= tol.atol + tol.rtol * np.abs(whole)))
