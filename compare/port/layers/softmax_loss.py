"""Softmax with loss: the book's ``SoftmaxWithLoss`` (``-log(y + 1e-7)``) and
``F.cross_entropy`` / ``nn.CrossEntropyLoss`` (no 1e-7).

The 1e-7 is the first known difference (``log_eps``): it is derived through
the port's own autograd and added before comparing (``compare.port.known``).
"""
from .base import LayerKind

KIND = LayerKind("softmax_loss", numpy_names=("SoftmaxWithLoss", "SoftmaxLoss",
                                              "ActivationSoftmaxLossCategoricalCrossentropy"),
                 torch_modules=("CrossEntropyLoss",), torch_functions=("cross_entropy",))
