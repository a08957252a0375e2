"""The activations: ``Relu``, ``Sigmoid``, ``Tanh`` and their torch twins (``nn.ReLU``,
``F.relu``, ``torch.clamp(min=0)``; ``nn.Sigmoid``; ``nn.Tanh``).

ReLU has no derivative at 0: the book's backward and autograd both take 0
there, and a pre-activation of exactly 0 (a zero bias on a blank patch) is a
point the numerical check counts as not differentiable and does not judge.
"""
from .base import LayerKind

KINDS = (
    LayerKind("relu", numpy_names=("Relu", "ReLU", "ActivationReLU"), torch_modules=("ReLU",),
              torch_functions=("relu", "relu_", "clamp")),
    LayerKind("sigmoid", numpy_names=("Sigmoid", "ActivationSigmoid"), torch_modules=("Sigmoid",),
              torch_functions=("sigmoid",)),
    LayerKind("tanh", numpy_names=("Tanh", "ActivationTanh"), torch_modules=("Tanh",),
              torch_functions=("tanh",)),
)
