"""A weight-decay penalty the port's loss lacks, beside an eps inside the NumPy log that its
loss has none of: two unknowns, lambda and the eps, that the loss alone cannot tell apart.

The gradients tell them apart: the penalty adds ``lambda * W`` to the weights' gradients
only, the eps its own term to every gradient (the biases' too). Both are fitted by least
squares on the gradients to first order in the eps (the port's autograd of its own
``L(eps)`` at a small eps gives the slopes); the eps of the loss is then classified as
``log_eps`` classifies one (a written number that gives the NumPy loss with the fitted
penalty taken off), lambda fitted again from the loss with that eps, and the hypothesis
kept only where the port's autograd of ``L(eps)``, or of ``L(0)`` (a NumPy backward
without the eps), plus ``lambda * W`` gives the NumPy gradients (checked again by ``check/verify.py``)."""
import numpy as np

from ..pairing import numpy_layout
from . import log_eps

PROBE = 1e-9  # small enough that L(eps) is linear in eps there, far above round-off's reach


def port_gradients(run, variant, eps):
    """Autograd of the port's ``L(eps)``, in the NumPy layout, as float64."""
    _, grads = log_eps._grads(run, (variant, eps), variant)
    return {n: np.asarray(g, np.float64) for n, g in numpy_layout(run.pairing, grads).items()}


def fit(run, weights):
    """``(lambda, variant, eps)`` or None."""
    family = log_eps._family(run.out)
    if not family or run.np_grads is None or not weights:
        return None
    params = {n: np.asarray(v, np.float64) for n, v in run.np.params.items()}
    squares = sum(float(np.sum(params[n] ** 2)) for n in weights)
    if squares == 0:
        return None
    np_loss = float(run.np_loss)
    found = []
    for variant, loss_at in family.items():
        zero = port_gradients(run, variant, 0.0)
        probe = port_gradients(run, variant, PROBE)
        names = sorted(run.np_grads)
        # rows: each gradient element; columns: lambda, the eps of the NumPy backward (which
        # may keep the eps of its loss or not: the book's p - t does not)
        rows, rhs = [], []
        for n in names:
            slope = ((probe[n] - zero[n]) / PROBE).ravel()
            on_w = params[n].ravel() if n in weights else np.zeros_like(slope)
            rows += np.stack([on_w, slope], axis=1).tolist()
            rhs += (np.asarray(run.np_grads[n], np.float64) - zero[n]).ravel().tolist()
        (lam, _), *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(rhs), rcond=None)
        if not lam > 0:
            continue
        kind = log_eps.classify(np_loss - 0.5 * lam * squares, {variant: loss_at}, run.dtype)
        if kind is None or not kind[1]:
            continue
        eps = kind[1]
        lam = 2 * (np_loss - loss_at(eps)) / squares
        if lam > 0:
            found.append((lam, variant, eps))
    return found[0] if len(found) == 1 else None
