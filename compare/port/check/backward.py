"""Phase 4, backward: each parameter's gradient, and the gradient flowing into each paired
layer, nearest the loss first.

The NumPy gradient is its ``gradient`` (backprop) when it has one
(``analytic``); else the torch gradient is checked against central
differences of the NumPy ``loss`` along random directions (``numerical``),
or against a golden file's recorded element-wise differences. Where a backprop
row is the first to part, the NumPy backprop is taken against its own loss
(``reference_gradient``): it may be the wrong side. The known
differences between the two gradients are added to the NumPy side (in the
numerical check, the torch claim is moved by them to the NumPy loss's kind).
"""
import numpy as np

from .. import known
from ..numerical import check_gradient_directions
from ..pairing import numpy_layout
from ..report import Check, compare_arrays
from ..targets import PortSetupError
from ..layers import numpy_kind, torch_kind
from .inside_rows import gradient_twins
from ..tolerance import within, port_tolerance, summed_tolerance
from .reference_gradient import check_reference_gradient
from .state import np_layer


def check_backward(run):
    t_grads = numpy_layout(run.pairing, run.t_grads)
    unused = [p for p in run.pairing if t_grads[p.numpy] is None]
    for p in unused:
        t_grads[p.numpy] = np.zeros_like(run.np.params[p.numpy])
    run.unused_torch = {p.numpy for p in unused}
    numerical = run.numpy_gradient == "numerical" or (
        run.numpy_gradient == "auto" and not run.np.has_gradient)
    found = known.at_backward(run, t_grads, numerical)
    if run.numpy_gradient == "backprop" and not run.np.has_gradient:
        raise PortSetupError("numpy side: numpy_gradient='backprop' but the model has no gradient(x, t)")
    run.apply_known(found)
    if numerical:
        _numerical(run, t_grads, found)
    else:
        _analytic(run, t_grads, found)
        check_reference_gradient(run, t_grads, found)


def _order(run):
    """Backward order: for each paired layer from the last, its output's gradient then
    its parameters; parameters of no paired layer last, from the last."""
    np_recs = run.np_capture.records
    t_recs = run.t_capture.records
    seen, order = set(), []
    inside = getattr(run, "inside", None)
    pairs = inside["pairs"] if inside is not None else run.layer_pairs
    twins = getattr(run, "gradient_twins", {})
    for i, j in reversed(pairs):
        if inside is None:
            order.append(("layer", i, j))
        elif j in twins:  # the NumPy gradient's own array at this layer's output
            order.append(("inside", twins[j], j))
        owned = list(np_recs[i].param_names) if inside is None else []
        torch_owned = set(t_recs[j].param_names)
        owned += [p.numpy for p in run.pairing if p.torch in torch_owned and p.numpy not in owned]
        for name in owned:
            if name not in seen:
                seen.add(name)
                order.append(("param", name))
    order += [("param", p.numpy) for p in reversed(run.pairing) if p.numpy not in seen]
    return order


def _param_order(run):
    return [item[1] for item in _order(run) if item[0] == "param"]


def _analytic(run, t_grads, found):
    np_recs, t_recs = run.np_capture.records, run.t_capture.records
    run.gradient_twins = gradient_twins(run, found)
    for item in _order(run):
        if item[0] == "inside":
            _, k, j = item
            a, b = run.inside["numpy"][k], t_recs[j]
            shift, shift_name = found.shift(("layer", j))
            if shift is not None and within(a.output, b.grad_output, run.dtype):
                shift = shift_name = None  # paired without it
            run.add(compare_arrays("backward", a.key, f"{b.key} (output)", a.output, b.grad_output,
                                   port_tolerance(a.output, run.dtype), shift=shift,
                                   shift_name=shift_name),
                    expected=a.output, actual=b.grad_output, made=a.made)
        elif item[0] == "layer":
            _, i, j = item
            a, b = np_recs[i], t_recs[j]
            if a.grad_output is None or b.grad_output is None:
                continue
            shift, shift_name = found.shift(("layer", j))
            run.add(compare_arrays("backward", f"{a.key} (output)", f"{b.key} (output)",
                                   a.grad_output, b.grad_output,
                                   port_tolerance(a.grad_output, run.dtype), shift=shift,
                                   shift_name=shift_name),
                    expected=a.grad_output, actual=b.grad_output, known=found.hint(("layer", j)))
        else:
            name = item[1]
            shift, shift_name = found.shift(("param", name))
            run.add(compare_arrays("backward", name, run.torch_name(name),
                                   run.np_grads[name], t_grads[name],
                                   summed_tolerance(run.np_grads[name], run.dtype, gradient_terms(run, name)),
                                   shift=shift, shift_name=shift_name),
                    expected=run.np_grads[name], actual=t_grads[name], param=name,
                    known=found.hint(("param", name)))
    run.report.settings["gradients"] = f"NumPy backprop vs torch {run.t_source}"


def gradient_terms(run, name):
    """The size of the terms the gradient of ``name`` sums, as its layer kind knows it: from
    the NumPy layer's record, else (a model whose layers are not recognised) from the port's
    layer that holds its twin, whose input and output gradient autograd recorded."""
    rec = next((r for r in reversed(run.np_capture.records) if name in r.param_names), None)
    kind = None if rec is None else numpy_kind(rec.kind)
    if kind is not None:
        found = kind.gradient_scale(rec, np_layer(run.np, rec.key), run.np.params[name])
        if found is not None:
            return found
    torch_name = next(p.torch for p in run.pairing if p.numpy == name)
    rec = next((r for r in reversed(run.t_capture.records) if torch_name in r.param_names), None)
    kind = None if rec is None else torch_kind(rec.kind)
    value = run.t_grads.get(torch_name) if rec is not None else None
    if kind is None or value is None:
        return None
    return kind.gradient_scale(rec, None, value)


def _allowance(run, found):
    """The known differences as the NumPy loss's gradient minus the torch one's, per
    parameter (the numerical checks allow for it): ``(arrays or None, name)``."""
    shifts = {p.numpy: found.shift(("param", p.numpy)) for p in run.pairing}
    names = [name for _, name in shifts.values() if name]
    if not names:
        return None, None
    return ({k: (np.zeros_like(run.np.params[k]) if s is None else -s) for k, (s, _) in shifts.items()},
            names[0])


def _numerical(run, t_grads, found):
    """The torch gradient against central differences of the NumPy loss, along random
    directions; elements located where a direction fails."""
    allowance, allowance_name = _allowance(run, found)
    if run.np.model is None:
        return _recorded(run, t_grads, allowance, allowance_name)
    # a known difference is exact, derived through the port: the claim is moved by it to the
    # NumPy loss's kind rather than the tolerance widened by its size
    claimed = t_grads if allowance is None else {
        k: (np.asarray(g, np.float64) + allowance[k]).astype(np.asarray(g).dtype) for k, g in t_grads.items()}
    result = check_gradient_directions(run.np.loss_function(run.x, run.t), run.np.params, claimed,
                                       directions=run.directions, seed=run.seed,
                                       locate=run.locate)
    run.report.numerical = result.to_dict()
    by_name = {r.name: r for r in result.rows}
    for name in _param_order(run):
        r = by_name[name]
        worst = r.worst
        # statistics of directional differences, not of elements: no mean or median
        row = Check("backward", name, run.torch_name(name),
                    tuple(run.np.params[name].shape), max_abs=r.max_abs, max_rel=r.max_rel,
                    mean_abs=None, median_abs=None, mean_rel=None, median_rel=None,
                    worst_expected=None, worst_actual=None,
                    rtol=0.0, atol=worst.tolerance if worst else 0.0,
                    why=f"central differences of the NumPy loss along {run.directions} random "
                        f"directions: round-off + Richardson truncation + the claim's round-off; "
                        f"where the loss has no derivative, the claim between the one-sided slopes",
                    worst_ratio=worst.ratio if worst else 0.0, passed=r.passed,
                    problem=r.problem, note=r.note,
                    allowance=f"+{allowance_name}" if allowance else None,
                    max_allowance=float(np.max(np.abs(allowance[name]))) if allowance else 0.0)
        element = r.worst_element
        expected = None
        if element is not None:
            row.worst_index = tuple(int(i) for i in element.index)
            # at a kink the expected value is an interval: the slope nearer the claim
            nearest = element.numerical if not element.nondifferentiable else min(
                (element.left, element.right), key=lambda v: abs(v - element.claimed))
            # the torch value itself, without the known difference the claim was moved by
            row.worst_expected = nearest
            row.worst_actual = element.claimed - (float(allowance[name][row.worst_index]) if allowance else 0.0)
        kinked = r.nondifferentiable
        if kinked:
            run.report.notes.append(
                f"{name}: {len(kinked)} of {int(np.prod(r.shape))} elements not differentiable at this "
                f"point (one-sided slopes that differ at every step: a ReLU input or a max-pool tie "
                f"at exactly 0); each judged by whether its claim lies between them"
                + (f", {len(r.outside)} outside" if r.outside else "")
                + (f", {len(r.unjudged_elements)} that no step could judge" if r.unjudged_elements else "")
                + "; the rest judged along the directions without them")
        if r.located == "elements" and len(r.elements) == int(np.prod(r.shape)):
            expected = np.zeros(r.shape)
            for e in r.elements:
                expected[tuple(e.index)] = e.numerical if not e.nondifferentiable else min(
                    (e.left, e.right), key=lambda v: abs(v - e.claimed))
        # no hints for the diagnosis here: the expected values are differences, located
        run.add(row, expected=expected, actual=t_grads[name], param=name)
    run.report.settings["gradients"] = (f"central differences of the NumPy loss along "
                                        f"{run.directions} random directions vs torch "
                                        f"{run.t_source}")


def _recorded(run, t_grads, allowance, allowance_name):
    """A golden file's element-wise central differences, with their error bounds."""
    for name in _param_order(run):
        grad, bound = run.np.recorded_difference(name)
        if allowance is not None:
            bound = np.abs(bound) + np.abs(allowance[name])
        kinks = run.np.recorded_kinks(name) if hasattr(run.np, "recorded_kinks") else None
        if kinks is not None:
            # where the loss has no derivative the claim is judged against the interval of the
            # two one-sided slopes: the nearest point of it is what it is compared with
            left, right, err = kinks
            kinked = np.isfinite(left) & np.isfinite(right)
            lo, hi = np.fmin(left, right) - err, np.fmax(left, right) + err
            claim = np.asarray(t_grads[name], dtype=np.float64)
            grad = np.where(kinked, np.clip(claim, np.where(kinked, lo, 0), np.where(kinked, hi, 0)), grad)
            run.report.notes.append(
                f"{name}: {int(kinked.sum())} of {kinked.size} recorded elements not differentiable "
                f"at this point; each judged by whether its claim lies between its one-sided slopes")
        run.add(compare_arrays("backward", name, run.torch_name(name), grad, t_grads[name],
                               port_tolerance(grad, run.dtype), allowance=bound,
                               allowance_name="difference error" + (
                                   f" + {allowance_name}" if allowance else "")),
                expected=grad, actual=t_grads[name], param=name)
    run.report.settings["gradients"] = ("recorded central differences of the NumPy loss vs "
                                        f"torch {run.t_source}")
