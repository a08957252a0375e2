"""One function and its port on the same inputs: ``compare_op`` and its ``OpComparison``.

The comparison under ``compare.testing.assert_same_op`` (which raises what
it finds) and ``compare.port.twins`` (which tables it, pair by pair): the
outputs under the analytic tolerance, then torch autograd's gradient of
``sum(output)`` against a NumPy gradient given, or the NumPy side's own
central differences with their truncation estimated element by element.
"""
import numbers
from dataclasses import dataclass

import numpy as np

from numpy_impl.validation import check_callable, check_nonnegative, check_seed, check_step

from ..parity import (Tolerance, compare_gradients, default_h, dtype_name, richardson_truncation,
                      roundoff, to_numpy, tolerance, with_override)


def _torch():
    import torch
    return torch


def _check_inputs(inputs):
    """A list (or tuple) of arrays or shapes; a bare shape is the easy slip."""
    if not isinstance(inputs, (list, tuple)) or (
            inputs and all(isinstance(n, numbers.Integral) for n in inputs)):
        raise TypeError(f"inputs must be a list of arrays or shapes, e.g. [(4, 10)], got "
                        f"{inputs!r}")
    return inputs


def _check_wrt(wrt, arrays):
    floats = [k for k, a in enumerate(arrays) if np.issubdtype(a.dtype, np.floating)]
    for k in wrt:
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k not in floats:
            raise ValueError(f"wrt must list positions of float inputs (here {floats}), got "
                             f"{list(wrt)!r}")
    return wrt


def _make_inputs(inputs, dtype, seed):
    """Arrays as given (floats cast to ``dtype``); a shape (tuple of ints) draws N(0, 1) values."""
    rng = np.random.RandomState(seed)
    arrays = []
    for value in inputs:
        if isinstance(value, tuple) and all(isinstance(n, int) for n in value):
            value = rng.randn(*value)
        arr = np.array(value)  # a copy: the functions under test may write to it
        if np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(dtype)
        arrays.append(arr)
    return arrays


def _as_outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _is_float(value):
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return value.is_floating_point()
    return np.issubdtype(np.asarray(value).dtype, np.floating)


@dataclass
class OpComparison:
    """What ``compare_op`` found: the forward and backward reports, and why one is missing.

    ``problem`` is a finding that has no table (the two sides return
    different numbers of outputs, or the torch output is detached where a
    gradient was asked for); ``backward_note`` says why ``backward`` is
    ``None`` when that is no failure (``grad=False``, integer outputs).
    ``nonfinite_equal`` counts the output elements left out of the
    comparison because they are NaN, or the same infinity, on both sides
    (``equal_nan``), ``size`` the output elements in all.
    """
    label: str
    forward: object = None
    backward: object = None
    problem: str = None
    backward_note: str = None
    nonfinite_equal: int = 0
    size: int = 0

    @property
    def passed(self):
        return (self.problem is None and self.forward is not None and self.forward.passed
                and (self.backward is None or self.backward.passed))

    def raise_if_failed(self):
        """``AssertionError`` for the first failure, in the order the checks ran."""
        if self.forward is None:
            raise AssertionError(f"{self.label}: {self.problem}")
        self.forward.raise_if_failed()
        if self.problem is not None:
            raise AssertionError(f"{self.label}: {self.problem}")
        if self.backward is not None:
            self.backward.raise_if_failed()
        return self


def _nonfinite_equal(np_out, t_out):
    """Per output, a mask of the elements NaN (or the same infinity) on both sides, or None."""
    masks = []
    for e, a in zip(np_out, t_out):
        e, a = to_numpy(e), to_numpy(a)
        if (e.shape != a.shape or not np.issubdtype(e.dtype, np.floating)
                or not np.issubdtype(a.dtype, np.floating)):
            masks.append(None)
            continue
        with np.errstate(invalid="ignore"):
            same = (np.isnan(e) & np.isnan(a)) | (np.isinf(e) & (e == a))
        same = np.asarray(same)
        masks.append(same if same.any() else None)
    return masks


def _finite_abs_sum(value):
    value = np.abs(to_numpy(value))
    return float(np.sum(value[np.isfinite(value)]))


def _masked(value, mask):
    """``value`` with the masked elements set to 0 (a copy; a tensor stays a tensor)."""
    if mask is None:
        return value
    torch = _torch()
    if isinstance(value, torch.Tensor):
        return torch.where(torch.from_numpy(mask).to(value.device), torch.zeros_like(value), value)
    value = np.array(value, copy=True)
    value[mask] = 0
    return value


def compare_op(np_fn, torch_fn, inputs, *, grad=True, np_grad_fn=None, wrt=None,
               dtype="float64", device="cpu", rtol=None, atol=None, h=None,
               third_derivative=None, seed=0, label=None, equal_nan=False, detached="fail",
               backward_after_failure=True):
    """``assert_same_op``'s comparison, returned as an ``OpComparison`` instead of raised.

    The arguments up to ``label`` are ``assert_same_op``'s. Three more:

    ``equal_nan``: output elements NaN on both sides, or the same infinity
    on both, count as equal and are left out (NaN on one side only still
    fails). The gradient is then that of the sum of the outputs left in,
    and where torch autograd gives NaN at an input whose NumPy gradient is
    exactly 0, it is taken as that 0: it is ``0 x`` a NaN derivative at an
    input that reaches only left-out outputs (``sqrt`` of a negative).

    ``detached``: when the torch output does not depend on the inputs
    through autograd, ``"fail"`` records it as the problem (what
    ``assert_same_op`` raises); ``"zero"`` takes torch's gradient as 0 and
    compares it with the NumPy one (a detached port of a differentiable
    function then fails, a piecewise-constant one passes), and integer
    outputs get no backward check at all (``backward_note`` says so).

    ``backward_after_failure``: ``False`` stops after a failing forward
    comparison, as ``assert_same_op`` does.

    Errors of the functions themselves (a call that raises) propagate.
    """
    if detached not in ("fail", "zero"):
        raise ValueError(f"detached must be 'fail' or 'zero', got {detached!r}")
    torch = _torch()
    from torch_impl.validation import check_device

    check_callable(np_fn, "np_fn")
    check_callable(torch_fn, "torch_fn")
    if np_grad_fn is not None:
        check_callable(np_grad_fn, "np_grad_fn")
    name = dtype_name(dtype)
    device = check_device(device)
    seed = check_seed(seed)
    if third_derivative is not None:  # None: estimated from the differences
        third_derivative = check_nonnegative(third_derivative, "third_derivative")
    with_override(tolerance("analytic", name), rtol, atol)  # refuses a bad rtol or atol now
    label = label or getattr(np_fn, "__name__", "op")
    if h is not None:
        h = check_step(h, name)
    result = OpComparison(label)
    np_in = _make_inputs(_check_inputs(inputs), name, seed)
    if wrt is None:
        wrt = [k for k, a in enumerate(np_in) if np.issubdtype(a.dtype, np.floating)]
    else:
        wrt = _check_wrt(list(wrt), np_in)
    t_in = [torch.from_numpy(a.copy()).to(device) for a in np_in]
    want_grad = grad and bool(wrt)
    for k in wrt:
        t_in[k].requires_grad_(want_grad)

    with torch.set_grad_enabled(want_grad):
        t_out = _as_outputs(torch_fn(*t_in))
    np_out = _as_outputs(np_fn(*[a.copy() for a in np_in]))
    if len(t_out) != len(np_out):
        result.problem = f"torch returned {len(t_out)} outputs, NumPy {len(np_out)}"
        return result
    masks = _nonfinite_equal(np_out, t_out) if equal_nan else [None] * len(np_out)
    result.nonfinite_equal = sum(int(m.sum()) for m in masks if m is not None)
    result.size = sum(int(np.size(to_numpy(v))) for v in np_out)
    note = (f"{result.nonfinite_equal} of {result.size} output elements NaN (or the same "
            f"infinity) on both sides, left out" if result.nonfinite_equal else None)
    keys = ["out"] if len(t_out) == 1 else [f"out[{i}]" for i in range(len(t_out))]
    exact = not all(_is_float(v) for v in np_out + t_out)
    tol = (Tolerance(0.0, 0.0, "integer outputs must be equal") if exact else
           with_override(tolerance("analytic", name), rtol, atol))
    result.forward = compare_gradients(
        dict(zip(keys, [_masked(v, m) for v, m in zip(t_out, masks)])),
        dict(zip(keys, [_masked(v, m) for v, m in zip(np_out, masks)])), tol=tol,
        label=f"{label}: forward", actual_name="torch", expected_name="numpy", device=device,
        note=note)
    if not want_grad:
        result.backward_note = "grad=False" if wrt else "no float input"
        return result
    if not result.forward.passed and not backward_after_failure:
        return result

    float_out = [(v, m) for v, m in zip(t_out, masks) if v.is_floating_point()]
    connected = any(v.requires_grad for v, _ in float_out)
    if detached == "zero" and not float_out:
        result.backward_note = "integer outputs: no gradient"
        return result
    if not connected and detached == "fail":
        result.problem = ("the torch output does not depend on the inputs through autograd "
                          "(detached, or an integer result); pass grad=False")
        return result
    if connected:
        total = sum((v if m is None else v[torch.from_numpy(np.array(~m)).to(v.device)]).sum()
                    for v, m in float_out)
        t_grads = torch.autograd.grad(total, [t_in[k] for k in wrt], allow_unused=True)
        t_grads = {f"d/dx{k}": (torch.zeros_like(t_in[k]) if g is None else g)
                   for k, g in zip(wrt, t_grads)}
    else:
        t_grads = {f"d/dx{k}": torch.zeros_like(t_in[k]).detach() for k in wrt}

    def np_total(args):
        return sum(float(np.sum(v if m is None else np.asarray(v)[~m]))
                   for v, m in zip(_as_outputs(np_fn(*args)), masks) if _is_float(v))

    truncation = None
    if np_grad_fn is not None:
        given = _as_outputs(np_grad_fn(*[a.copy() for a in np_in]))
        if len(given) != len(wrt):
            raise ValueError(f"np_grad_fn returned {len(given)} gradients for {len(wrt)} inputs")
        np_grads = {f"d/dx{k}": np.asarray(g) for k, g in zip(wrt, given)}
        kind, btol = "analytic", with_override(tolerance("analytic", name), rtol, atol)
    else:
        import numpy_impl
        h = default_h(name) if h is None else h
        args = [a.copy() for a in np_in]
        np_grads = {}
        for k in wrt:
            np_grads[f"d/dx{k}"] = numpy_impl.numerical_gradient(lambda _: np_total(args), args[k], h)
        # the round-off of each f(x +- h) is about eps * sum |terms|, not eps * |sum|
        # (over the finite outputs: NaN on one side only has already failed forward)
        scale = max(sum(_finite_abs_sum(_masked(v, m)) for v, m in zip(np_out, masks)
                        if _is_float(v)), 1.0)
        kind = "numerical"
        if third_derivative is not None:
            btol = with_override(tolerance("numerical", name, h, value_scale=scale,
                                           third_derivative=third_derivative), rtol, atol)
        else:
            truncation = {}
            r = roundoff(name, h, scale)
            for k in wrt:
                d_2h = numpy_impl.numerical_gradient(lambda _: np_total(args), args[k], 2 * h)
                key = f"d/dx{k}"
                truncation[key] = richardson_truncation(np_grads[key], d_2h, r)
            analytic = tolerance("analytic", name)
            btol = with_override(Tolerance(
                analytic.rtol, analytic.atol + r,
                f"central difference with h={h:g} in {name}: round-off 4 eps |f| / h = {r:.2g}, "
                f"truncation estimated per element from D(2h) - D(h)"), rtol, atol)
    bnote = None
    if not connected:
        bnote = "the torch output is detached from the inputs: its gradient taken as 0"
    elif result.nonfinite_equal:
        zeroed = 0
        for key, g in t_grads.items():
            stray = torch.isnan(g) & torch.from_numpy(np.asarray(np_grads[key]) == 0).to(g.device)
            if stray.any():
                zeroed += int(stray.sum())
                t_grads[key] = torch.where(stray, torch.zeros_like(g), g)
        if zeroed:
            bnote = (f"{zeroed} torch gradient elements NaN where the NumPy one is 0 (inputs that "
                     f"reach only left-out outputs), taken as 0")
    result.backward = compare_gradients(t_grads, np_grads, tol=btol, kind=kind,
                                        allowance=truncation, allowance_name="truncation",
                                        label=f"{label}: gradient of sum(output)",
                                        actual_name="torch autograd",
                                        expected_name="numpy " + ("gradient" if np_grad_fn else "numerical"),
                                        device=device, note=bnote)
    return result
