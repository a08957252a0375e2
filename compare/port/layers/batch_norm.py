"""Batch normalisation: the book's ``BatchNormalization`` and ``nn.BatchNorm1d`` / ``2d``.

=================  ===================================  ===================================
                   the book                             torch
=================  ===================================  ===================================
eps                ``10e-7`` (= 1e-6), in the code      ``eps=1e-5``
momentum           ``0.9``, the weight of the OLD       ``0.1``, the weight of the NEW
                   running value                        batch statistic
running variance   the biased batch variance            the unbiased one (``N / (N - 1)``)
running init       zeros (mean and variance), at the    mean 0, variance 1, at construction
                   first forward pass
4-D input          per activation: ``(N, C*H*W)``       ``BatchNorm2d``: per channel
parameters         ``gamma``, ``beta``                  ``weight``, ``bias``
buffers            ``running_mean``, ``running_var``    the same names
=================  ===================================  ===================================

So a right port is ``BatchNorm1d(D, eps=1e-6, momentum=0.1)``; the check
copies the NumPy running statistics in before it compares (so the two start
from the same state, whatever each initialises to), and then:

* ``bn_unbiased_var`` (known difference): after a training pass the torch
  running variance exceeds the book's by ``(1 - m) var_B / (N - 1)``
  (``m`` the book's momentum, ``var_B`` the biased batch variance of the
  layer's recorded input): derived from the pass, added before comparing;
* trap ``bn_eps``: the torch output is the batch norm of the NumPy input
  with torch's eps (both values named);
* trap ``bn_momentum``: the torch running statistics follow
  ``(1 - m_t) old + m_t batch`` with the book's 0.9 copied across;
* trap ``bn_per_channel``: ``BatchNorm2d`` against the book's
  per-activation norm of a 4-D input (``gamma`` of ``C*H*W`` against
  ``weight`` of ``C``);
* trap ``mode``: the port computes the other mode's output.
"""
import numpy as np

from ..capture import LayerRecord
from .base import LayerKind, attribute, other_mode_trap, summed_scale
from .written import KNOWN, CannotWrite, Held, Load, Written, functional, number, trap

BOOK_EPS = 10e-7

FLAT_BATCH_NORM = '''class FlatBatchNorm1d(nn.BatchNorm1d):
    """The book's batch norm of a 4-D input: per activation, (N, C, H, W) normalised as (N, C*H*W)."""

    def forward(self, x):
        return super().forward(x.flatten(1)).view_as(x)
'''
TORCH_EPS = 1e-5  # nn.BatchNorm1d's default
# the eps an inline batch norm is tried with, torch's first: where two give the values
# alike, the pass cannot tell them apart and the first is written
USUAL_EPS = (TORCH_EPS, 1e-6, 1e-7, 1e-8)


def _flat(a):
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(a.shape[0], -1) if a.ndim > 2 else a


def normalise(x, gamma, beta, eps, mean=None, var=None):
    """Per activation of ``(N, D)`` (the book's; a 4-D input flattened): batch statistics
    unless ``mean`` and ``var`` (the running ones) are given."""
    x = _flat(x)
    mu = x.mean(axis=0) if mean is None else np.asarray(mean, np.float64).reshape(-1)
    v = x.var(axis=0) if var is None else np.asarray(var, np.float64).reshape(-1)
    return np.asarray(gamma, np.float64).reshape(-1) * (x - mu) / np.sqrt(v + eps) \
        + np.asarray(beta, np.float64).reshape(-1)


def per_channel(x, weight, bias, eps):
    """``BatchNorm2d``'s training output: statistics over (N, H, W) for each channel."""
    x = np.asarray(x, np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mu, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True)
    return np.asarray(weight, np.float64).reshape(shape) * (x - mu) / np.sqrt(v + eps) \
        + np.asarray(bias, np.float64).reshape(shape)


def numpy_eps(record, gamma, beta):
    """The eps the NumPy layer used, read back from its training-mode output."""
    if record.input is None or record.output is None or gamma is None or beta is None:
        return None
    x, y = _flat(record.input), _flat(record.output)
    g, b = np.asarray(gamma, np.float64).reshape(-1), np.asarray(beta, np.float64).reshape(-1)
    if x.shape != y.shape or g.size != x.shape[1]:
        return None
    xc = x - x.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        xn = (y - b) / g
        est = (xc / xn) ** 2 - x.var(axis=0)
    est = est[np.isfinite(est) & (np.abs(xn) > 0.5)]
    return float(np.median(est)) if est.size else None


class BatchNorm(LayerKind):
    def computes(self, x, params):
        """The training-mode normalisation of ``x`` over the batch axis (per activation, a
        4-D input flattened), ``gamma`` and ``beta`` two parameters of one value per
        activation (``(D,)`` or a row ``(1, D)``), with each of the usual eps (the setting
        the writer reads back from the step found)."""
        x = np.asarray(x, np.float64)
        if x.ndim < 2 or x.shape[0] < 2:
            return []
        d = _flat(x).shape[1]
        rows = [n for n, v in params.items() if np.shape(v) in ((d,), (1, d))]
        return [(Held({"gamma": g, "beta": b}, eps=eps),
                 normalise(x, params[g], params[b], eps).reshape(x.shape))
                for g in rows for b in rows if b != g for eps in USUAL_EPS]

    def write(self, seen):
        g_name, gamma = seen.param("gamma", "weight")
        b_name, beta = seen.param("beta", "bias")
        if g_name is None or b_name is None:
            raise CannotWrite("it holds no gamma and beta among the NumPy parameters")
        flat = seen.input is not None and np.ndim(seen.input) > 2
        if flat and np.size(gamma) != np.prod(np.shape(seen.input)[1:]):
            raise CannotWrite(f"its input is {np.ndim(seen.input)}-D and its gamma holds "
                              f"{np.size(gamma)} values, one per activation of no axis the writer knows")
        eps = seen.setting("eps")
        if eps is None:  # the book writes its eps in the code: read it back off the pass
            eps = numpy_eps(LayerRecord(seen.key, "", seen.input, seen.output), gamma, beta)
            eps = BOOK_EPS if eps is None or eps <= 0 else float(f"{eps:.2g}")
        momentum = seen.setting("momentum", default=0.9)
        loads = [Load(target, name, "{p}.reshape(-1)" if np.ndim(value) != 1 else "{p}",
                      "" if np.ndim(value) == 1 else f"nn.BatchNorm1d.{target} is (D,)")
                 for target, name, value in (("weight", g_name, gamma), ("bias", b_name, beta))]
        written = Written(
            f"{'FlatBatchNorm1d' if flat else 'nn.BatchNorm1d'}({np.size(gamma)}, eps={number(eps)}, "
            f"momentum={number(1 - float(momentum))})",
            loads,
            [(f"batch norm's eps is the NumPy layer's {number(eps)} " + (
                "(torch's default 1e-5)" if not np.isclose(eps, TORCH_EPS, rtol=1e-9, atol=0)
                else "(torch's default too)"), trap("bn_eps")),
             (f"the NumPy momentum {number(momentum)} weighs the old running value, torch's the new "
              f"batch statistic: momentum={number(1 - float(momentum))}", trap("bn_momentum")),
             ("torch keeps the unbiased batch variance in running_var, the NumPy layer the biased one: "
              "a known difference, sized by the check (bn_unbiased_var)", KNOWN)])
        if seen.functional:
            d, m = np.size(gamma), number(1 - float(momentum))
            source = "x.flatten(1)" if flat else "x"
            written = functional(
                [f"x = F.batch_norm({source}, self.running_mean_{{n}}, self.running_var_{{n}}, {{p}}weight, {{p}}bias, "
                 f"training=self.training, momentum={m}, eps={number(eps)})" + (".view_as(x)" if flat else "")],
                [("weight", f"torch.ones({d})"), ("bias", f"torch.zeros({d})")],
                [("running_mean", f"torch.zeros({d})"), ("running_var", f"torch.ones({d})")],
                loads, written.conventions)
        if flat and seen.functional:
            written.conventions.append(
                ("the NumPy batch norm of a 4-D input normalises each activation over the batch, "
                 "as (N, C*H*W): F.batch_norm on the input flattened and shaped back (per channel "
                 "it would normalise each channel)", trap("bn_per_channel")))
        elif flat:
            written.helpers["FlatBatchNorm1d"] = FLAT_BATCH_NORM
            written.conventions.append(
                ("the NumPy batch norm of a 4-D input normalises each activation over the batch, "
                 "as (N, C*H*W); nn.BatchNorm2d would normalise each channel: FlatBatchNorm1d, "
                 "nn.BatchNorm1d on the input flattened and shaped back", trap("bn_per_channel")))
        return written

    def settings(self, numpy_layer, torch_module):
        out = []
        m_n, m_t = attribute(numpy_layer, "momentum"), attribute(torch_module, "momentum")
        if m_n is not None and m_t is not None and not np.isclose(1 - float(m_n), float(m_t)):
            out.append(("momentum (weight of the new value)", 1 - float(m_n), float(m_t)))
        return out

    def gradient_scale(self, record, layer, value):
        g, x = record.grad_output, record.input
        if g is None or x is None:
            return None
        g, x = _flat(g), _flat(x)
        if value is attribute(layer, "beta"):
            return summed_scale(g, (0,))
        if value is attribute(layer, "gamma"):  # dgamma = sum over the batch of dout * xhat
            xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + BOOK_EPS)
            return summed_scale(g, (0,), xhat)
        return None

    def pairing_trap(self, key, layer, params, owners, module_name, module):
        """``BatchNorm2d`` (C weights) against the book's per-activation norm (C*H*W gammas)."""
        gamma = attribute(layer, "gamma")
        weight = attribute(module, "weight")
        if gamma is None or weight is None or "2d" not in type(module).__name__:
            return None
        c, d = int(weight.numel()), int(np.size(gamma))
        if d == c or d % c:
            return None
        found = per_channel_hypothesis(key, module_name, (None, c, d // c))
        found["problem"] = (f"shape {(c,)} (one per channel) cannot hold {key}'s gamma of shape "
                            f"{np.shape(gamma)} (one per activation)")
        return found

    def _gamma_beta(self, site):
        layer = site.numpy_layer
        if layer is None and site.torch_module is not None:
            # an array seen from inside: the port's weight and bias hold the NumPy values
            w, b = attribute(site.torch_module, "weight"), attribute(site.torch_module, "bias")
            return (None, None) if w is None or b is None else (_np(w), _np(b))
        return attribute(layer, "gamma"), attribute(layer, "beta")

    def traps(self, site):
        if site.what != "output":
            return self._buffer_traps(site)
        found = []
        module = site.torch_module
        x = site.input
        gamma, beta = self._gamma_beta(site)
        eps_t = attribute(module, "eps")
        if x is not None and module is not None and "2d" in type(module).__name__ and np.ndim(x) == 4:
            w, b = attribute(module, "weight"), attribute(module, "bias")
            if w is not None and site.close(per_channel(x, _np(w), _np(b), float(eps_t)), site.actual):
                found.append(per_channel_hypothesis(site.numpy_record.key, site.torch_record.key,
                                                    x.shape))
        if x is not None and eps_t is not None and gamma is not None:
            eps_n = numpy_eps(LayerRecord(site.numpy_record.key, "", x, site.expected), gamma, beta) if site.mode == "train" else None
            if site.mode == "train":
                candidate = normalise(x, gamma, beta, float(eps_t))
            else:
                mean, var = attribute(site.numpy_layer, "running_mean"), attribute(site.numpy_layer, "running_var")
                candidate = None if mean is None else normalise(x, gamma, beta, float(eps_t), mean, var)
            # the NumPy eps, read back, must give the NumPy output on this input: else the
            # input itself differs (a layer before parts) and no eps explains the row
            reproduced = eps_n is not None and site.close(
                normalise(x, gamma, beta, eps_n).reshape(np.shape(site.expected)), site.expected)
            if candidate is not None and site.close(candidate.reshape(site.actual.shape), site.actual) \
                    and (reproduced or (site.numpy_layer is not None and site.numpy_record.input is not None)):
                shown = f"{eps_n:.3g}" if eps_n is not None else "another"
                found.append({"code": "bn_eps", "torch_eps": float(eps_t), "numpy_eps": eps_n,
                              "text": f"{site.torch_record.key} normalises with eps={float(eps_t):g} "
                                      f"(torch's default), {site.numpy_record.key} with eps={shown} "
                                      f"(the book's 10e-7 = 1e-6): give the port "
                                      f"{type(module).__name__}(..., eps={eps_n or BOOK_EPS:g})"})
        if site.mode == "train" and x is not None and gamma is not None and module is not None:
            # evaluation mode in a training pass: the module's own running statistics
            mean, var = attribute(module, "running_mean"), attribute(module, "running_var")
            held = site.torch_buffers or {}  # as they were in the pass that parted
            mean = held.get(f"{site.torch_record.key}.running_mean", mean)
            var = held.get(f"{site.torch_record.key}.running_var", var)
            if mean is not None and var is not None:
                for eps in {float(eps_t or BOOK_EPS), BOOK_EPS}:
                    candidate = normalise(x, gamma, beta, eps, _np(mean), _np(var))
                    if site.close(candidate.reshape(site.actual.shape), site.actual):
                        return found + [{"code": "mode", "mode": "train",
                                         "text": f"{site.torch_record.key} normalises with its running "
                                                 f"statistics during a training pass, as in eval mode: "
                                                 f"the port's batch norm is left in eval (a train() "
                                                 f"that does not reach it); the book's training pass "
                                                 f"uses the batch's statistics"}]
        return found + other_mode_trap(site, "batch norm")

    def _buffer_traps(self, site):
        """At a running statistic after one training pass: ``site.extra`` holds the value
        before the pass and the batch statistic."""
        before, stat = site.before, site.batch_stat
        if before is not None and site.close(before, site.actual) and not site.close(before, site.expected):
            return [{"code": "mode", "mode": "train",
                     "text": f"{site.torch_record.key}.{site.what} did not move in a training pass, "
                             f"{site.numpy_record.key}'s did: the port's batch norm runs in eval mode "
                             f"during training (a train() that does not reach it, or "
                             f"track_running_stats=False)"}]
        m_t = attribute(site.torch_module, "momentum")
        if before is None or stat is None or m_t is None:
            return []
        m_t = float(m_t)
        torch_rule = (1 - m_t) * before + m_t * stat
        if not (site.close(torch_rule, site.actual) or (site.what == "running_var" and site.close(
                (1 - m_t) * before + m_t * stat * site.unbiased, site.actual))):
            return []
        # torch follows its own rule; the cause is its momentum only where the NumPy side
        # follows the same rule with another weight of the new value
        fitted = numpy_update(site)
        if fitted is None or np.isclose(fitted[0], m_t, rtol=1e-6, atol=0.0):
            return []
        new = fitted[0]
        return [{"code": "bn_momentum", "torch_momentum": m_t, "numpy_momentum": 1 - new,
                 "text": f"{site.torch_record.key}.{site.what} follows torch's rule with "
                         f"momentum={m_t:g}: torch's momentum weights the NEW batch statistic "
                         f"((1 - momentum) * running + momentum * batch), the book's the OLD "
                         f"running value (momentum * running + (1 - momentum) * batch); "
                         f"{site.numpy_record.key}'s momentum={1 - new:.3g} is torch's "
                         f"momentum={new:.3g}"}]

    def known(self, site):
        """``bn_unbiased_var`` at ``running_var`` after a training pass: the array to add to
        the NumPy value, its size and text. Where the NumPy running variance holds the eps
        (``std**2 = var + eps``, as some cs231n solutions keep it), that is the same
        buffer's other convention, named in the same entry with its own size."""
        if site.what != "running_var" or site.torch_module is None or site.batch_stat is None:
            return []
        m_t = attribute(site.torch_module, "momentum")
        if m_t is None:
            return []
        m_t, n = float(m_t), site.batch_size
        held = held_eps(site, m_t)
        unbiased = m_t * site.batch_stat * (site.unbiased - 1)
        gap = unbiased - m_t * (held or 0.0) + site.carried
        text = (f"{site.numpy_record.key}.running_var: the book keeps the biased batch "
                f"variance, torch the unbiased one (x N/(N-1) = {n}/{n - 1}); with torch's "
                f"momentum {m_t:g} that adds up to {float(np.max(np.abs(unbiased))):.3g} here")
        if held is not None:
            text += (f"; and {site.numpy_record.key} keeps var + eps (std**2) in its running "
                     f"variance, torch the variance alone: {m_t:g} x eps {held:g} = "
                     f"{m_t * held:.3g} less in torch's each pass, carried with the momentum")
        text += ", derived from the layer's recorded input and added before comparing"
        return [{"code": "bn_unbiased_var", "shift": gap, "size": float(np.max(np.abs(gap))),
                 "label": "N/(N-1)" + (" + eps" if held is not None else ""), "text": text}]


def numpy_update(site):
    """``(weight of the new value, eps held)`` of the NumPy running statistic's update,
    ``(1 - a) before + a (batch + e)`` (``e`` 0 for the mean), fitted on its elements and
    checked to give its value; None when it follows no such rule."""
    before, stat = np.ravel(np.asarray(site.before, np.float64)), np.ravel(np.asarray(site.batch_stat, np.float64))
    value = np.ravel(np.asarray(site.expected, np.float64))
    if before.shape != stat.shape or value.shape != stat.shape or stat.size < 2:
        return None
    columns = [stat - before] + ([np.ones_like(stat)] if site.what == "running_var" else [])
    coef = np.linalg.lstsq(np.stack(columns, axis=1), value - before, rcond=None)[0]
    a = float(coef[0])
    if not np.isfinite(a) or a == 0:
        return None
    e = float(coef[1]) / a if len(coef) > 1 else 0.0
    if not site.close((1 - a) * before + a * (stat + e), value):
        return None
    return a, e


def held_eps(site, m_t):
    """The eps the NumPy running variance holds, where it updates with torch's weight of the
    new value and its batch statistic is ``var + eps`` for a written eps (the layer's, the
    port's, the book's, or the fitted one written to two figures); else None."""
    before, stat, value = (np.asarray(a, np.float64) for a in (site.before, site.batch_stat, site.expected))
    if before.size != stat.size or value.size != stat.size:
        return None
    before, stat, value = before.reshape(stat.shape), stat, value.reshape(stat.shape)
    if site.close((1 - m_t) * before + m_t * stat, value):
        return None
    fitted = numpy_update(site)
    candidates = [attribute(site.numpy_layer, "eps"), attribute(site.torch_module, "eps"), BOOK_EPS]
    if fitted is not None and fitted[1] > 0:
        candidates.append(float(f"{fitted[1]:.2g}"))
    for eps in candidates:
        if eps is not None and float(eps) > 0 and site.close((1 - m_t) * before + m_t * (stat + float(eps)), value):
            return float(eps)
    return None


def per_channel_hypothesis(numpy_key, torch_key, shape):
    c = shape[1]
    rest = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return {"code": "bn_per_channel",
            "text": f"{torch_key} is a BatchNorm2d: it normalises each of the {c} channels over "
                    f"(N, H, W) and holds {c} weights; the NumPy {numpy_key} normalises each of the "
                    f"{c * rest} activations (the book flattens a 4-D input to (N, C*H*W)) and holds "
                    f"{c * rest} gammas: port it as nn.BatchNorm1d({c * rest}) on x.flatten(1) "
                    f"(and reshape back), or change the NumPy side to per-channel statistics"}


def _np(t):
    if t is None:
        return None
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


KIND = BatchNorm("batch_norm", numpy_names=("BatchNormalization", "BatchNorm", "Batchnorm"),
                 torch_modules=("BatchNorm1d", "BatchNorm2d", "BatchNorm3d"),
                 torch_functions=("batch_norm",),
                 buffers=(("running_mean", "running_mean"), ("running_var", "running_var")),
                 has_modes=True)
