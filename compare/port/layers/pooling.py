"""Pooling: the book's im2col ``Pooling`` (max over ``pool_h`` x ``pool_w`` windows,
``stride``, ``pad``) and ``nn.MaxPool2d`` / ``nn.AvgPool2d`` / ``F.max_pool2d``.

A window holding two equal maxima (a tie: blank MNIST patches are all 0) has
no derivative there; the numerical check counts such points and judges the
rest. Settings that differ (window, stride, padding) are named.
"""
from .base import LayerKind, attribute
from .convolution import _literal, _pair
from .written import CannotWrite, Written, functional


def _is_average(layer):
    return "avg" in type(layer).__name__.lower() or "average" in type(layer).__name__.lower()


class Pooling(LayerKind):
    def write(self, seen):
        ph, pw = seen.setting("pool_h"), seen.setting("pool_w")
        if ph is None or pw is None:
            raise CannotWrite("it holds no window size (pool_h, pool_w)")
        stride = _pair(seen.setting("stride", default=1))
        pad = _pair(seen.setting("pad", "padding", default=0))
        module = "nn.AvgPool2d" if _is_average(seen.layer) else "nn.MaxPool2d"
        if seen.functional:
            call = "F.avg_pool2d" if _is_average(seen.layer) else "F.max_pool2d"
            return functional([f"x = {call}(x, {_literal((int(ph), int(pw)))}, stride={_literal(stride)}, "
                               f"padding={_literal(pad)})"])
        return Written(f"{module}({_literal((int(ph), int(pw)))}, stride={_literal(stride)}, "
                       f"padding={_literal(pad)})")

    def settings(self, numpy_layer, torch_module):
        out = []
        ph, pw = attribute(numpy_layer, "pool_h"), attribute(numpy_layer, "pool_w")
        window = None if ph is None or pw is None else (int(ph), int(pw))
        for setting, a, b in (("kernel_size", window, _pair(attribute(torch_module, "kernel_size"))),
                              ("stride", _pair(attribute(numpy_layer, "stride")),
                               _pair(attribute(torch_module, "stride"))),
                              ("padding", _pair(attribute(numpy_layer, "pad", "padding")),
                               _pair(attribute(torch_module, "padding")))):
            if a is not None and b is not None and a != b:
                out.append((setting, a, b))
        kind = type(torch_module).__name__ if torch_module is not None else ""
        if numpy_layer is not None and "Avg" in kind and "avg" not in type(numpy_layer).__name__.lower():
            out.append(("reduction", "max", "average"))
        return out


KIND = Pooling("pooling", numpy_names=("Pooling", "MaxPool", "Pool"),
               torch_modules=("MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d"),
               torch_functions=("max_pool1d", "max_pool2d", "avg_pool2d"))
