"""Chapter 4 of *Deep Learning from Scratch*, in PyTorch, name for name with numpy_impl.

From ``numpy_impl`` it takes only the book's random stream, so both sides
start from the same weights and see the same batches.
"""
from .descent import gradient_descent
from .functions import (cross_entropy_error, function_1, function_2, identity_function, relu,
                        relu_grad, sigmoid, sigmoid_grad, softmax, softmax_loss, step_function,
                        sum_squared_error)
from .gradient import numerical_diff, numerical_gradient, numerical_gradient_2d, tangent_line
from .module import TwoLayerNetModule
from .random_stream import BookRandomStream, book_initial_params
from .sampler import BookBatchSampler
from .simple_net import SimpleNet
from .train import train
from .two_layer_net import PARAM_NAMES, TwoLayerNet

__all__ = [
    "identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad",
    "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss", "function_1",
    "function_2", "numerical_diff", "numerical_gradient", "numerical_gradient_2d",
    "tangent_line", "gradient_descent", "SimpleNet", "TwoLayerNet", "PARAM_NAMES", "train",
    "BookRandomStream", "book_initial_params", "TwoLayerNetModule", "BookBatchSampler",
]
