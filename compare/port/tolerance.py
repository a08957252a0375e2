"""Tolerances of a port check, derived as ``compare.parity`` derives the chapter-4 ones.

Both sides compute the same function from the same parameters in the same
dtype, so a right port differs from its original by round-off alone, and a
comparison is ``|actual - expected| <= atol + rtol |expected|`` with

* ``rtol``: the ``analytic`` rtol of ``compare.parity`` (1e-10 in float64,
  1e-4 in float32). A value that is a sum of ``K`` products errs by at most
  ``K eps`` relative (2e-13 for ``K = 1000`` in float64, 6e-5 in float32),
  and each layer passes on its input's error scaled by its condition; the
  float64 rtol leaves 500x headroom for that over a few layers;
* ``atol = rtol * max |expected|``: the networks the tool meets are of any
  scale, so the absolute floor is taken from the tensor itself. An element
  that a sum cancels to nearly 0 errs by about ``eps * sum |terms|``, and
  the terms of one tensor's elements are of the size of its largest
  elements, so this is the same bound written per tensor (``compare.parity``
  fixes it at 1e-12 for the two-layer net, whose values are below 0.1).

Parameters copied in must be equal bit for bit (tolerance 0): a port whose
copy is not exact stores them in another dtype or transforms them.

The loss is a scalar: ``rtol`` alone, with the same floor.

An eps inside a log (the book's ``log(y + 1e-7)``, the course's ``log(AL + 1e-10)``)
is no round-off: where one side's loss or gradient has it and the other's has not,
the difference is computed through the torch port (``L(eps) - L(0)`` of its output,
and its autograd) and allowed for in its own column, named, never folded into ``rtol``.
"""
import numpy as np

from ..parity import Tolerance, dtype_name, tolerance
from .unit_axes import as_shape

EXACT = Tolerance(0.0, 0.0, "parameters copied in are equal bit for bit")


def port_tolerance(expected, dtype):
    name = dtype_name(dtype)
    rtol = tolerance("analytic", name).rtol
    expected = np.asarray(expected)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    floor = np.finfo(name).tiny
    return Tolerance(rtol, max(rtol * scale, floor),
                     f"round-off in {name}: rtol {rtol:g}, atol rtol x max|expected|")


def within(expected, actual, dtype):
    """``actual`` equals ``expected`` within the port's tolerance for ``expected``, shapes
    that differ only by axes of length 1 taken as the same."""
    expected = np.asarray(expected, np.float64)
    actual = np.asarray(as_shape(np.asarray(actual, np.float64), expected.shape))
    if expected.shape != actual.shape:
        return False
    tol = port_tolerance(expected, dtype)
    return bool(np.all(np.abs(actual - expected) <= tol.atol + tol.rtol * np.abs(expected)))


def summed_tolerance(expected, dtype, terms):
    """``port_tolerance`` for a gradient that sums ``terms`` of a known size (``terms``:
    ``LayerKind.gradient_scale``): atol ``rtol x max(max|expected|, terms)``, so a sum that
    cancels to round-off is judged by the round-off of what it sums."""
    tol = port_tolerance(expected, dtype)
    if terms is None or not np.isfinite(terms) or terms * tol.rtol <= tol.atol:
        return tol
    return Tolerance(tol.rtol, tol.rtol * float(terms),
                     f"round-off in {dtype_name(dtype)}: rtol {tol.rtol:g}, atol rtol x the terms "
                     f"it sums ({float(terms):.3g})")


def training_tolerance(expected, dtype, updates):
    """After ``updates`` optimizer steps: ``max |actual - expected| <= updates * rtol * max |expected|``.

    Each step adds its own round-off to the parameters, at most the one-step
    bound above (``rtol * max |value|``: the gradient's relative round-off,
    times the learning rate, is far below it). The difference already there
    is carried by the update map, ``I - lr H`` for plain SGD: a training that
    is stable at all (``lr`` below ``2 / lambda_max`` of the loss's Hessian)
    does not expand it, so the differences add up at most linearly in the
    number of steps. Momentum and AdaGrad keep state whose own round-off
    adds up the same way. A port whose difference grows faster than linearly
    is not parting by round-off: its update rule differs.
    """
    name = dtype_name(dtype)
    rtol = tolerance("analytic", name).rtol
    expected = np.asarray(expected)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    k = max(int(updates), 1)
    return Tolerance(0.0, max(k * rtol * scale, np.finfo(name).tiny),
                     f"round-off over {k} step(s) in {name}: {k} x {rtol:g} x max|expected|")


def update_tolerance(expected, dtype, updates, lr, grad_atol):
    """``training_tolerance``, or, where larger, ``updates x lr x`` the gradient's own bound
    (a gradient that cancels, judged by the size of the terms it sums)."""
    tol = training_tolerance(expected, dtype, updates)
    if not grad_atol or updates * lr * grad_atol <= tol.atol:
        return tol
    return Tolerance(0.0, updates * lr * grad_atol,
                     f"round-off over {updates} step(s): {updates} x lr x the gradient's bound "
                     f"({grad_atol:.3g}, the size of the terms it sums)")
