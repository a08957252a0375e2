"""Convolution: the book's im2col ``Convolution`` (``W`` (FN, C, FH, FW), ``stride``, ``pad``)
and ``nn.Conv2d`` / ``F.conv2d`` (``weight`` (out, in, kh, kw): the same layout, paired
without transposing; both compute a cross-correlation).

Settings that differ (``stride``, ``padding``) are named with both values.
"""
import numpy as np

from .base import LayerKind, attribute, summed_scale


def _pair(value):
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value), int(value))


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

    def settings(self, numpy_layer, torch_module):
        out = []
        for setting, np_names, t_name in (("stride", ("stride",), "stride"),
                                          ("padding", ("pad", "padding"), "padding")):
            a = _pair(attribute(numpy_layer, *np_names))
            b = _pair(attribute(torch_module, t_name))
            if a is not None and b is not None and a != b:
                out.append((setting, a, b))
        return out


KIND = Convolution("convolution", numpy_names=("Convolution", "Conv"),
                   torch_modules=("Conv1d", "Conv2d", "Conv3d"), torch_functions=("conv1d", "conv2d", "conv3d"))
