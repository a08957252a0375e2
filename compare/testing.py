"""Helpers for parity tests of your own, in the spirit of tinygrad's ``helper_test_op``.

``assert_same_op(np_fn, torch_fn, inputs)`` runs a NumPy function and its
PyTorch port on the same inputs and compares the outputs; then it compares
torch autograd's gradient of ``sum(output)`` with a NumPy gradient (one you
give, or the NumPy side's own central difference). ``assert_same_net_gradients``
does the same for a NumPy net and its torch port. Both raise
``AssertionError`` with the parity table (``compare.parity``) on failure and
return the reports on success. A thin layer over ``compare.port``: the op
comparison itself is ``compare.port.op.compare_op``, the model check
``compare.port.check_port``.

    from compare.testing import assert_same_op
    import numpy_impl, torch_impl
    assert_same_op(numpy_impl.sigmoid, torch_impl.sigmoid, [(4, 3)],
                   np_grad_fn=lambda x: numpy_impl.sigmoid_grad(x))
"""
import numpy as np

from numpy_impl.validation import as_float_array, check_step

from .ch4.gap import book_gap
from .parity import Tolerance, compare_gradients, default_h, dtype_name, to_numpy
from .port import check_port
from .port.op import OpComparison, _torch, compare_op  # noqa: F401  (compare_op is public here)


def assert_same_op(np_fn, torch_fn, inputs, *, grad=True, np_grad_fn=None, wrt=None,
                   dtype="float64", device="cpu", rtol=None, atol=None, h=None,
                   third_derivative=None, seed=0, label=None):
    """Run ``np_fn`` and ``torch_fn`` on the same inputs; compare values and gradients.

    ``inputs``: arrays, or shapes (tuples of ints) to fill with seeded
    N(0, 1) draws; float inputs are cast to ``dtype``, other inputs (class
    indices) pass as they are. The outputs (one value or a tuple) must agree
    in shape, dtype and value: ``analytic`` tolerance (round-off), unless
    ``rtol``/``atol`` are given; integer outputs must be equal.

    With ``grad``, torch autograd's gradient of ``sum(outputs)`` with respect
    to each float input in ``wrt`` (default: all of them) is compared with
    ``np_grad_fn(*inputs)`` (the NumPy gradient of that same sum: one array,
    or a tuple, one per input in ``wrt``) under the ``analytic`` tolerance,
    or, without ``np_grad_fn``, with ``numpy_impl.numerical_gradient`` of the
    NumPy function at step ``h`` (default 1e-4 in float64, 1e-2 in
    float32). Its error is allowed for element by element: the round-off
    ``4 eps |f| / h`` (``|f|`` the sum of the outputs' sizes) plus the
    truncation estimated from the differences themselves, with a second
    gradient at ``2h`` (``compare.parity.richardson_truncation``, shown in
    the table's "allowed truncation" column); no bound on the function's
    third derivative is needed. ``third_derivative``, a bound on ``|f'''|``
    where you know one, replaces that estimate by the ``numerical``
    tolerance's fixed ``h**2 |f'''| / 6``. Keep inputs away from kinks
    (``relu`` at 0) and other singularities by more than ``2h``.

    Returns ``{"forward": report, "backward": report or None}``.
    """
    result = compare_op(np_fn, torch_fn, inputs, grad=grad, np_grad_fn=np_grad_fn, wrt=wrt,
                        dtype=dtype, device=device, rtol=rtol, atol=atol, h=h,
                        third_derivative=third_derivative, seed=seed, label=label,
                        backward_after_failure=False)
    result.raise_if_failed()
    return {"forward": result.forward, "backward": result.backward}


def _numpy_params(net):
    params = net.to_params() if hasattr(net, "to_params") else net.params
    return {k: to_numpy(v) for k, v in params.items()}


def assert_same_net_gradients(numpy_net, torch_net, x, t, *, numerical=True, h=None,
                              method="fast", device=None):
    """A NumPy ``TwoLayerNet`` and its torch port, holding the same parameters, on one batch.

    ``torch_net`` is a ``torch_impl.TwoLayerNet``-like net (``params``,
    ``gradient``, optionally ``autograd_gradient`` and ``numerical_gradient``)
    or a ``TwoLayerNetModule``-like one (``to_params``, ``gradient``, and
    ``loss_name``). ``x`` and ``t`` are NumPy values; the torch side gets
    them as tensors on its device. Checks: the parameters are equal; backprop
    (and autograd) agree to round-off; with ``numerical``, the two numerical
    gradients agree, and each agrees with backprop up to finite-difference
    error plus the SPEC's 1e-7 gap (closed form, named in the table). A
    module with ``loss_name == "book"`` is checked against backprop plus
    that gap.

    Returns the list of reports; raises ``AssertionError`` with every table
    when any fails.
    """
    torch = _torch()
    from torch_impl.validation import as_float_tensor, check_device

    np_params = getattr(numpy_net, "params", None)
    if not isinstance(np_params, dict) or "W1" not in np_params:
        raise TypeError(f"numpy_net must be a numpy_impl.TwoLayerNet, got {type(numpy_net).__name__}")
    for key, value in np_params.items():  # a torch net in its place is named here
        as_float_array(value, f"numpy_net.params[{key!r}]")
    t_params = (torch_net.to_params() if hasattr(torch_net, "to_params")
                else getattr(torch_net, "params", None))
    if not isinstance(t_params, dict) or not callable(getattr(torch_net, "gradient", None)):
        raise TypeError(f"torch_net must be a torch_impl.TwoLayerNet or TwoLayerNetModule, "
                        f"got {type(torch_net).__name__}")
    for key, value in t_params.items():  # a NumPy net in its place is named here
        as_float_tensor(value, f"torch_net.params[{key!r}]")
    name = dtype_name(np_params["W1"].dtype)
    h = default_h(name) if h is None else check_step(h, name)
    if method not in ("fast", "loop"):
        raise ValueError(f"method must be 'fast' or 'loop', got {method!r}")
    device = check_device(getattr(torch_net, "device", "cpu") if device is None else device)
    x = np.asarray(x, dtype=name)
    t = np.asarray(t)
    t = t.astype(name) if t.ndim == 2 else t.astype(np.int64)
    tx, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    reports = []

    def check(actual, expected, **kw):
        reports.append(compare_gradients(actual, expected, dtype=name, h=h, **kw))

    check(_numpy_params(torch_net), np_params, tol=Tolerance(0.0, 0.0, "the same parameters"),
          label="parameters", actual_name="torch net", expected_name="numpy net")
    backprop = numpy_net.gradient(x, t)
    gap = book_gap(np_params, x, t)
    is_module = hasattr(torch_net, "to_params")
    torch_grad = torch_net.gradient(tx, tt)
    if is_module and getattr(torch_net, "loss_name", "cross_entropy") == "book":
        with_gap = {k: backprop[k] + gap[k] for k in backprop}
        check(torch_grad, with_gap, kind="analytic", device=device,
              actual_name="module[book] gradient", expected_name="numpy backprop + 1e-7 gap")
    else:
        check(torch_grad, backprop, kind="analytic", device=device,
              actual_name="torch " + ("module" if is_module else "backprop"),
              expected_name="numpy backprop")
    if hasattr(torch_net, "autograd_gradient"):
        check(torch_net.autograd_gradient(tx, tt), backprop, kind="analytic", device=device,
              actual_name="torch autograd", expected_name="numpy backprop")
    if numerical:
        np_num = numpy_net.numerical_gradient(x, t, h=h, method=method)
        check(np_num, backprop, kind="numerical", allowance=gap,
              actual_name="numpy numerical", expected_name="numpy backprop")
        if hasattr(torch_net, "numerical_gradient"):
            t_num = torch_net.numerical_gradient(tx, tt, h=h, method=method)
            check(t_num, np_num, kind="numerical-pair", device=device,
                  actual_name="torch numerical", expected_name="numpy numerical")
            check(t_num, backprop, kind="numerical", allowance=gap, device=device,
                  actual_name="torch numerical", expected_name="numpy backprop")
    failed = [r for r in reports if not r.passed]
    if failed:
        raise AssertionError("\n" + "\n\n".join(r.to_text() for r in failed))
    return reports


__all__ = ["assert_same_op", "compare_op", "OpComparison", "assert_same_net_gradients", "assert_port"]


def assert_port(numpy_model, torch_model, x, t, **options):
    """``compare.check_port``, raising ``AssertionError`` with the report's text when the
    port parts from its NumPy original; returns the report when it agrees."""
    return check_port(numpy_model, torch_model, x, t, **options).raise_if_failed()
