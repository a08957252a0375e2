"""Convolution: the book's im2col ``Convolution`` (``W`` (FN, C, FH, FW), ``stride``, ``pad``)
and ``nn.Conv2d`` / ``F.conv2d`` (``weight`` (out, in, kh, kw): the same layout, paired
without transposing; both compute a cross-correlation).

Settings that differ (``stride``, ``padding``) are named with both values.

Trap ``padding``: the port's convolution, given the NumPy layer's padding, computes
the NumPy layer's output (and, as it is, does not). Tested where the parameters
cannot pair (a padding that changes the image's size changes what the layers after
it take) on a probe image through both, and at a forward row on the recorded input.
"""
import numpy as np

from ..capture import forward_output
from ..copying import deep_copy
from .base import LayerKind, attribute, summed_scale
from .written import CannotWrite, Load, Written, functional, trap


def _pair(value):
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value), int(value))


def _literal(pair):
    """``5`` for ``(5, 5)``, as a PyTorch user writes a square size; else the pair."""
    return str(pair[0]) if pair[0] == pair[1] else str(tuple(pair))


class Convolution(LayerKind):
    def gradient_scale(self, record, layer, value):
        g, x = record.grad_output, record.input
        if g is None or np.ndim(g) != 4:
            return None
        if np.ndim(value) == 1:  # db sums dout over (N, H, W)
            return summed_scale(g, (0, 2, 3))
        if x is not None:  # each dW element sums N * OH * OW products of x and dout
            count = g.shape[0] * g.shape[2] * g.shape[3]
            return float(2 * count * np.abs(g).max() * np.abs(x).max())
        return None

    def write(self, seen):
        w_name, w = seen.param("W", "weights", "weight")
        b_name, _ = seen.param("b", "biases", "bias")
        if w is None or np.ndim(w) != 4:
            raise CannotWrite("it holds no 4-D filter W (FN, C, FH, FW) among the NumPy parameters")
        n_f, c, fh, fw = w.shape
        stride, pad = _pair(seen.setting("stride", default=1)), _pair(seen.setting("pad", "padding", default=0))
        if seen.functional:
            written = functional(
                [f"x = F.conv2d(x, {{p}}weight{', {p}bias' if b_name else ''}, stride={_literal(stride)}, "
                 f"padding={_literal(pad)})"],
                [("weight", f"0.01 * torch.randn({n_f}, {c}, {fh}, {fw})")] +
                ([("bias", f"torch.zeros({n_f})")] if b_name else []),
                loads=[Load("weight", w_name)],
                conventions=[("the NumPy filters are (FN, C, FH, FW), F.conv2d's layout: loaded as "
                              "they are; stride and padding carried over", trap("padding"))])
            if b_name:
                written.loads.append(Load("bias", b_name, "{p}.reshape(-1)",
                                          "F.conv2d's bias is (FN,), whatever shape the NumPy b has"))
            return written
        written = Written(
            f"nn.Conv2d({c}, {n_f}, {_literal((fh, fw))}, stride={_literal(stride)}, "
            f"padding={_literal(pad)}{'' if b_name else ', bias=False'})",
            [Load("weight", w_name)],
            [("the NumPy filters are (FN, C, FH, FW), nn.Conv2d's layout: loaded as they are; "
              "stride and padding carried over", trap("padding"))])
        if b_name:
            written.loads.append(Load("bias", b_name, "{p}.reshape(-1)",
                                      "nn.Conv2d.bias is (FN,), whatever shape the NumPy b has"))
        return written

    def settings(self, numpy_layer, torch_module):
        out = []
        for setting, np_names, t_name in (("stride", ("stride",), "stride"),
                                          ("padding", ("pad", "padding"), "padding")):
            a = _pair(attribute(numpy_layer, *np_names))
            b = _pair(attribute(torch_module, t_name))
            if a is not None and b is not None and a != b:
                out.append((setting, a, b))
        return out


    def pairing_trap(self, key, layer, params, owners, module_name, module):
        found = self._padding(key, layer, module_name, module, None, None)
        if found is not None:
            found["problem"] = (f"{module_name} pads by {found['torch_padding']}, {key} by "
                                f"{found['numpy_padding']}: the port computes another "
                                f"convolution, whose image differs in size, and so does what "
                                f"the layers after it take")
        return found

    def traps(self, site):
        if site.what != "output":
            return []
        if site.numpy_layer is None:  # an array seen from inside: the port's layer rerun
            found = _padding_from_port(site)
            return [] if found is None else [found]
        if site.numpy_record.input is None:
            return []
        found = self._padding(site.numpy_record.key, site.numpy_layer, site.torch_record.key,
                              site.torch_module, np.asarray(site.numpy_record.input), site.expected)
        return [] if found is None else [found]

    def _padding(self, key, layer, module_name, module, x, expected):
        """The ``padding`` hypothesis: the port's convolution with the NumPy padding
        reproduces the NumPy output on ``x`` (a probe image when None), and as it is
        does not."""
        pad_n = _pair(attribute(layer, "pad", "padding"))
        pad_t = _pair(attribute(module, "padding"))
        weight = attribute(layer, "W", "w", "weight")
        if pad_n is None or pad_t is None or pad_n == pad_t or np.ndim(weight) != 4 \
                or not all(hasattr(module, a) for a in ("stride", "dilation", "groups")):
            return None
        import torch
        import torch.nn.functional as F
        weight = np.asarray(weight, np.float64)
        bias = attribute(layer, "b", "bias")
        if x is None:
            size = max(weight.shape[2:]) + 2 * max(_pair(attribute(layer, "stride")) or (1, 1)) + 3
            x = np.random.RandomState(0).randn(2, weight.shape[1], size, size)
        try:
            if expected is None:
                expected = forward_output(deep_copy(layer), x.copy())
            expected = np.asarray(expected, np.float64)

            def conv(padding):
                with torch.no_grad():
                    return F.conv2d(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(weight),
                                    None if bias is None else torch.from_numpy(
                                        np.asarray(bias, np.float64).reshape(-1)),
                                    stride=module.stride, padding=padding, dilation=module.dilation,
                                    groups=module.groups).numpy()
            with_numpy, as_port = conv(pad_n), conv(pad_t)
        except Exception:  # a layer that cannot be rerun so tells nothing
            return None
        scale = max(float(np.max(np.abs(expected))), 1e-30) if expected.size else 1.0

        def reproduces(out):
            return out.shape == expected.shape and bool(
                np.all(np.abs(out - expected) <= 1e-9 * scale))
        if not reproduces(with_numpy) or reproduces(as_port):
            return None
        shown = pad_n[0] if pad_n[0] == pad_n[1] else pad_n
        fix = "nn.Conv2d(..., padding=" if type(module).__name__ == "Conv2d" else "F.conv2d(x, ..., padding="
        return {"code": "padding", "numpy_padding": pad_n, "torch_padding": pad_t,
                "text": f"{module_name} pads by {pad_t}, the NumPy {key} by {pad_n}: with the NumPy "
                        f"padding the port's convolution computes {key}'s output; give the port "
                        f"{fix}{shown})"}


def _conv_of(site):
    """``(weight, bias, stride, padding, dilation, groups)`` of the port's recorded convolution,
    from its module or its traced call; ``None`` where they cannot be read."""
    module, record = site.torch_module, site.torch_record
    if module is not None and hasattr(module, "weight"):
        weight = module.weight.detach().cpu().numpy().astype(np.float64)
        bias = None if module.bias is None else module.bias.detach().cpu().numpy().astype(np.float64)
        return weight, bias, module.stride, _pair(module.padding), module.dilation, module.groups
    call, params = getattr(record, "call", None), getattr(site, "torch_params", None) or {}
    values = [params[n] for n in record.param_names if n in params]
    weights = [v for v in values if np.ndim(v) == 4]
    if call is None or len(weights) != 1 or isinstance(call.padding[0], str):
        return None
    biases = [v for v in values if np.ndim(v) == 1]
    return (weights[0], biases[0] if biases else None, call.stride, _pair(call.padding),
            call.dilation, call.groups)


def _padding_from_port(site):
    """``padding`` where no NumPy layer object holds one: the port's convolution rerun on its
    own input (which agreed with the NumPy side's) with each other padding up to the kernel's
    size; the one that gives the NumPy array is the NumPy side's, and is named with the
    port's."""
    conv = _conv_of(site)
    u, expected = site.torch_record.input, site.expected
    if conv is None or u is None or np.ndim(u) != 4 or np.ndim(expected) != 4:
        return None
    weight, bias, stride, pad_t, dilation, groups = conv
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(np.asarray(u, np.float64))
    w = torch.from_numpy(weight)
    b = None if bias is None else torch.from_numpy(bias.reshape(-1))
    for p in range(max(weight.shape[2:]) + 1):
        if (p, p) == pad_t:
            continue
        try:
            with torch.no_grad():
                out = F.conv2d(x, w, b, stride=stride, padding=p, dilation=dilation, groups=groups).numpy()
        except Exception:  # a padding the layer cannot take tells nothing
            continue
        if out.shape == np.shape(expected) and site.close(expected, out):
            shown = pad_t[0] if pad_t[0] == pad_t[1] else pad_t
            fix = "nn.Conv2d(..., padding=" if site.torch_module is not None else "F.conv2d(x, ..., padding="
            return {"code": "padding", "numpy_padding": (p, p), "torch_padding": pad_t,
                    "text": f"{site.torch_record.key} pads by {shown}, the NumPy "
                            f"{site.numpy_record.key} by {p}: with padding {p} the port's "
                            f"convolution computes the NumPy {site.numpy_record.key}; give the "
                            f"port {fix}{p})"}
    return None


KIND = Convolution("convolution", numpy_names=("Convolution", "Conv"),
                   torch_modules=("Conv1d", "Conv2d", "Conv3d"), torch_functions=("conv1d", "conv2d", "conv3d"))
