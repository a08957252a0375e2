"""Layer norm: a learner's ``LayerNorm`` / ``LayerNormalization`` (each sample normalised over
its features, ``gamma * (x - mean) / sqrt(var + eps) + beta``) and ``nn.LayerNorm``,
``F.layer_norm`` (over the trailing ``normalized_shape`` axes, eps 1e-5 by default).

Trap ``ln_eps``: the normalisation each side computes, identified on the layer's
input with the port's own ``weight`` and ``bias`` (the NumPy gamma and beta, loaded):

* the port's: its axes and eps, read off the module or the call (``nn.BatchNorm*``
  paired against a NumPy layer norm: the batch axis, in training), rerun, must give
  the port's output;
* the NumPy side's: for each set of axes (the port's first, then the trailing axes,
  each single axis, batch norm's), the eps fitted from the NumPy output
  (``(x - mean) / xhat`` is ``sqrt(var + eps)``, so each element gives ``eps``;
  their median, then the number as written), inside the square root as torch adds
  it or beside the standard deviation (``(x - mean) / (std + eps)``); the first that
  gives the NumPy output within the row's tolerance.

Named where both are identified and differ (the eps, the axes, or where the eps is
added), with both values; it needs no NumPy layer object.
"""
import numpy as np

from ..tolerance import within
from .base import LayerKind, torch_shown
from .written import CannotWrite, Load, Written, functional, number, trap

TORCH_EPS = 1e-5


def normalise(u, axes, eps, weight=None, bias=None, outside=False):
    """``weight * (u - mean) / sqrt(var + eps) + bias`` over ``axes`` (``/ (std + eps)``
    where ``outside``); ``weight`` and ``bias`` already shaped to broadcast."""
    mean = u.mean(axis=axes, keepdims=True)
    var = u.var(axis=axes, keepdims=True)
    out = (u - mean) / (np.sqrt(var) + eps if outside else np.sqrt(var + eps))
    if weight is not None:
        out = out * weight
    return out if bias is None else out + bias


def _np(value):
    if value is None:
        return None
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, np.float64)


def _port(site, ndim):
    """``(axes, eps, weight, bias)`` of the port's normalisation, the weight and bias shaped
    to broadcast as the port's layer does; None where the record is no normalisation."""
    kind = "".join(c for c in str(site.torch_record.kind).lower() if c.isalnum())
    held = site.torch_module if site.torch_module is not None else getattr(site.torch_record, "call", None)
    params = site.torch_params or {}
    names = list(getattr(site.torch_record, "param_names", ()) or ())
    if site.torch_module is not None:
        weight, bias = _np(getattr(held, "weight", None)), _np(getattr(held, "bias", None))
    else:
        weight = _np(params.get(names[0])) if names else None
        bias = _np(params.get(names[1])) if len(names) > 1 else None
    eps = float(getattr(held, "eps", TORCH_EPS))
    if kind == "layernorm":
        shape = getattr(held, "normalized_shape", None) or ()
        shape = (shape,) if isinstance(shape, int) else tuple(shape)  # F.layer_norm(x, 12)
        if not shape or len(shape) > ndim:
            return None
        axes = tuple(range(ndim - len(shape), ndim))
        reshape = shape
    elif kind.startswith("batchnorm") and site.mode == "train" and ndim >= 2:
        axes = (0, *range(2, ndim))  # training: the batch's statistics, per channel
        reshape = (1, -1) + (1,) * (ndim - 2)
    else:
        return None
    shaped = [None if a is None else a.reshape(reshape) for a in (weight, bias)]
    return axes, eps, shaped[0], shaped[1]


def _candidate_axes(port_axes, ndim):
    trailing = [tuple(range(k, ndim)) for k in range(ndim - 1, 0, -1)]
    single = [(a,) for a in range(ndim)]
    batch = [(0, *range(2, ndim))] if ndim > 2 else []
    return list(dict.fromkeys([port_axes, *trailing, *single, *batch]))


def _fitted_eps(u, axes, expected, weight, bias, outside):
    """The eps each element implies, their median: ``(u - mean) / xhat`` is
    ``sqrt(var + eps)`` (``std + eps`` where ``outside``), ``xhat`` the NumPy output with
    the affine taken off; the elements far from the mean say it best."""
    w = 1.0 if weight is None else weight
    b = 0.0 if bias is None else bias
    with np.errstate(divide="ignore", invalid="ignore"):
        xhat = (expected - b) / w
        d = u - u.mean(axis=axes, keepdims=True)
        var = np.broadcast_to(u.var(axis=axes, keepdims=True), u.shape)
        root = d / xhat
        each = root - np.sqrt(var) if outside else root ** 2 - var
    each = np.broadcast_to(each, u.shape)
    weight_ok = np.broadcast_to(np.abs(w) > 0, u.shape)
    usable = np.isfinite(each) & weight_ok & (np.abs(d) >= np.median(np.abs(d)))
    return float(np.median(each[usable])) if np.any(usable) else None


def _eps_candidates(fitted, port_eps):
    out = [port_eps]
    if fitted is not None:
        written = float(f"{fitted:.2g}")  # 1e-3 as written, not 0.0010000000000002
        out += [written, fitted] if fitted > 0 else [0.0]
    return list(dict.fromkeys(out))


def numpy_normalisation(site, u, expected, port):
    """``(axes, eps, outside)`` of the normalisation that gives ``expected``, with the
    port's weight and bias; None where none does."""
    axes_t, eps_t, weight, bias = port
    for axes in _candidate_axes(axes_t, u.ndim):
        for outside in (False, True):
            fitted = _fitted_eps(u, axes, expected, weight, bias, outside)
            for eps in _eps_candidates(fitted, eps_t):
                out = normalise(u, axes, eps, weight, bias, outside)
                if site.close(expected, out):
                    return axes, eps, outside
    return None


def _axes_text(axes, ndim):
    if axes == (ndim - 1,):
        return "the last axis (-1, the features)"
    if axes == (0,):
        return "axis 0 (the batch)"
    if axes == tuple(range(1, ndim)):
        return f"axes {axes} (all but the batch)"
    if ndim > 2 and axes == (0, *range(2, ndim)):
        return f"axes {axes} (the batch, per channel)"
    return f"axes {axes}"


def _fix(site, axes, eps, shape):
    ndim = len(shape)
    if axes and axes[-1] == ndim - 1 and axes == tuple(range(axes[0], ndim)):
        if site.torch_module is None:
            return f"write F.layer_norm(x, x.shape[{axes[0] - ndim}:], weight, bias, eps={eps:g})"
        sizes = shape[axes[0]:]
        return f"write nn.LayerNorm({sizes[0] if len(sizes) == 1 else tuple(sizes)}, eps={eps:g})"
    dims = axes[0] if len(axes) == 1 else axes
    return (f"normalise over {'axis' if len(axes) == 1 else 'axes'} {dims} as the NumPy side does ((x - x.mean({dims}, keepdim=True)) / "
            f"(x.var({dims}, unbiased=False, keepdim=True) + {eps:g}).sqrt())")


def ln_trap(site):
    """The ``ln_eps`` hypothesis (see the module's docstring)."""
    if site.what != "output" or site.input is None:
        return []
    u = np.asarray(site.input, np.float64)
    expected = np.asarray(site.expected, np.float64)
    actual = np.asarray(site.actual, np.float64)
    if u.shape != expected.shape or u.shape != actual.shape or u.ndim < 2:
        return []
    port = _port(site, u.ndim)
    if port is None:
        return []
    axes_t, eps_t, weight, bias = port
    as_port = normalise(u, axes_t, eps_t, weight, bias)
    if not site.close(actual, as_port) or site.close(expected, as_port):
        return []
    found = numpy_normalisation(site, u, expected, port)
    if found is None:
        return []
    axes_n, eps_n, outside = found
    t_key, n_key = torch_shown(site), site.numpy_record.key
    parts = []
    if axes_n != axes_t:
        parts.append(f"{t_key} normalises over {_axes_text(axes_t, u.ndim)}, the NumPy {n_key} "
                     f"over {_axes_text(axes_n, u.ndim)}")
    if outside:
        parts.append(f"the NumPy {n_key} adds eps={eps_n:g} to the standard deviation "
                     f"((x - mean) / (std + eps)), {t_key} eps={eps_t:g} to the variance, inside "
                     f"the square root")
        fix = (f"compute (x - mean) / (x.var(..., unbiased=False, keepdim=True).sqrt() + "
               f"{eps_n:g}) as the NumPy side does")
        with_numpy = "with the eps added to the standard deviation"
    else:
        if eps_n != eps_t:
            parts.append(f"{t_key} normalises with eps={eps_t:g}, the NumPy {n_key} with eps={eps_n:g}")
        fix = _fix(site, axes_n, eps_n, u.shape)
        with_numpy = " and ".join(filter(None, [
            f"over {_axes_text(axes_n, u.ndim)}" if axes_n != axes_t else "",
            f"with eps={eps_n:g}" if eps_n != eps_t else ""]))
    return [{"code": "ln_eps", "numpy_eps": eps_n, "torch_eps": eps_t,
             "numpy_axes": list(axes_n), "torch_axes": list(axes_t),
             "text": "; ".join(parts) + f": {with_numpy}, the port's normalisation gives the "
                                        f"NumPy output; {fix}"}]


def written_eps(seen, gamma, beta):
    """The eps the NumPy layer normalises its last axis with: its own setting, else torch's
    default, else fitted off the pass; the first whose normalisation gives the pass's output
    within float round-off. None where none does (another axis, or eps beside the std)."""
    u, out = seen.input, seen.output
    if u is None or out is None or np.ndim(u) < 2:
        return seen.setting("eps")
    u = np.asarray(u, np.float64)
    axes = (u.ndim - 1,)
    weight, bias = np.reshape(gamma, -1), np.reshape(beta, -1)
    fitted = _fitted_eps(u, axes, np.asarray(out, np.float64), weight, bias, False)
    for eps in dict.fromkeys([seen.setting("eps"), *_eps_candidates(fitted, TORCH_EPS)]):
        if eps is not None and eps >= 0 and within(out, normalise(u, axes, eps, weight, bias),
                                                   np.asarray(out).dtype):
            return float(eps)
    return None


class LayerNorm(LayerKind):
    def traps(self, site):
        return ln_trap(site)

    def write(self, seen):
        g_name, gamma = seen.param("gamma", "weight")
        b_name, beta = seen.param("beta", "bias")
        if g_name is None or b_name is None:
            raise CannotWrite("it holds no gamma and beta among the NumPy parameters")
        eps = written_eps(seen, gamma, beta)
        if eps is None:
            raise CannotWrite("no normalisation over the last axis, eps under the square root, "
                              "gives its output on the pass")
        d = np.size(gamma)
        loads = [Load(target, name, "{p}.reshape(-1)" if np.ndim(value) != 1 else "{p}",
                      "" if np.ndim(value) == 1 else f"nn.LayerNorm.{target} is (D,)")
                 for target, name, value in (("weight", g_name, gamma), ("bias", b_name, beta))]
        conventions = [(f"layer norm's eps is the NumPy layer's {number(eps)} " + (
            "(torch's default 1e-5)" if not np.isclose(eps, TORCH_EPS, rtol=1e-9, atol=0)
            else "(torch's default too)") + ", over the last axis", trap("ln_eps"))]
        if seen.functional:
            return functional([f"x = F.layer_norm(x, ({d},), {{p}}weight, {{p}}bias, eps={number(eps)})"],
                              [("weight", f"torch.ones({d})"), ("bias", f"torch.zeros({d})")],
                              loads=loads, conventions=conventions)
        return Written(f"nn.LayerNorm({d}, eps={number(eps)})", loads, conventions)


KIND = LayerNorm("layer_norm", numpy_names=("LayerNorm", "LayerNormalization"),
                 torch_modules=("LayerNorm",), torch_functions=("layer_norm",))
