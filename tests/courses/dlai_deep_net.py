"""An L-layer net in the style of the deeplearning.ai course, in NumPy, features first.

The course's layout, written here: inputs ``X`` are ``(features, examples)``,
labels ``Y`` are ``(1, m)`` (binary, sigmoid output) or ``(classes, m)``
one-hot (softmax output); ``parameters`` holds ``W1`` ``(n_1, n_x)``,
``b1`` ``(n_1, 1)``, ... ``WL``, ``bL``, each layer computing ``Z = W A + b``.
Hidden layers are ReLU. The cost is the mean binary cross-entropy over the
``m`` examples (or the mean categorical cross-entropy with softmax), and
the gradients ``dW = dZ A_prev.T / m``, ``db = sum(dZ, axis=1) / m``.

A PyTorch port of it is an ordinary batch-first module: ``nn.Linear``'s
weight ``(out, in)`` is ``W`` as it is, and its bias is ``b`` reshaped to
``(out,)``; the batches it takes are ``X.T``.

``DeepNet`` wraps the functions in a model object: ``params`` (the
parameters dict itself), ``loss(X, Y)`` and ``gradient(X, Y)`` (keyed like
``params``).

    python -m compare port tests/courses/dlai_deep_net.py:make_net \\
                           tests/courses/torch_ports.py:DlaiPort
"""
import numpy as np


def initialize_parameters_deep(layer_dims, seed=3):
    rng = np.random.RandomState(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        # scaled by 1 / sqrt(fan-in) so that deep ReLU stacks neither vanish nor explode
        parameters["W" + str(l)] = rng.randn(layer_dims[l], layer_dims[l - 1]) / np.sqrt(layer_dims[l - 1])
        parameters["b" + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def sigmoid(Z):
    A = 1 / (1 + np.exp(-Z))
    return A, Z


def relu(Z):
    A = np.maximum(0, Z)
    return A, Z


def softmax(Z):
    e = np.exp(Z - np.max(Z, axis=0, keepdims=True))  # classes along axis 0
    A = e / np.sum(e, axis=0, keepdims=True)
    return A, Z


def linear_forward(A, W, b):
    Z = np.dot(W, A) + b
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    Z, linear_cache = linear_forward(A_prev, W, b)
    if activation == "sigmoid":
        A, activation_cache = sigmoid(Z)
    elif activation == "relu":
        A, activation_cache = relu(Z)
    elif activation == "softmax":
        A, activation_cache = softmax(Z)
    else:
        raise ValueError(f"unknown activation {activation!r}")
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters, output_activation="sigmoid"):
    """``[LINEAR -> RELU] x (L - 1) -> LINEAR -> SIGMOID`` (or softmax); ``(AL, caches)``."""
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A, cache = linear_activation_forward(A, parameters["W" + str(l)], parameters["b" + str(l)], "relu")
        caches.append(cache)
    AL, cache = linear_activation_forward(A, parameters["W" + str(L)], parameters["b" + str(L)],
                                          output_activation)
    caches.append(cache)
    return AL, caches


def compute_cost(AL, Y):
    """Binary cross-entropy for ``Y`` ``(1, m)``, categorical for one-hot ``Y`` ``(classes, m)``."""
    m = Y.shape[1]
    if Y.shape[0] == 1:
        cost = -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
    else:
        cost = -np.sum(Y * np.log(AL)) / m
    cost = np.squeeze(cost)
    return cost


def linear_backward(dZ, cache):
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = np.dot(dZ, A_prev.T) / m
    db = np.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def relu_backward(dA, cache):
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def sigmoid_backward(dA, cache):
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 - s)


def linear_activation_backward(dA, cache, activation):
    linear_cache, activation_cache = cache
    if activation == "relu":
        dZ = relu_backward(dA, activation_cache)
    elif activation == "sigmoid":
        dZ = sigmoid_backward(dA, activation_cache)
    else:
        raise ValueError(f"unknown activation {activation!r}")
    return linear_backward(dZ, linear_cache)


def L_model_backward(AL, Y, caches, output_activation="sigmoid"):
    """Gradients ``dA{l}``, ``dW{l}``, ``db{l}`` of ``compute_cost(AL, Y)``."""
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    linear_cache, _ = caches[L - 1]
    if output_activation == "softmax":
        # softmax and the cross-entropy together: their Jacobians multiply out to AL - Y
        dA_prev, dW, db = linear_backward(AL - Y, linear_cache)
    else:
        dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
        dA_prev, dW, db = linear_activation_backward(dAL, caches[L - 1], "sigmoid")
    grads["dA" + str(L - 1)], grads["dW" + str(L)], grads["db" + str(L)] = dA_prev, dW, db
    for l in reversed(range(L - 1)):
        dA_prev, dW, db = linear_activation_backward(grads["dA" + str(l + 1)], caches[l], "relu")
        grads["dA" + str(l)], grads["dW" + str(l + 1)], grads["db" + str(l + 1)] = dA_prev, dW, db
    return grads


def update_parameters(parameters, grads, learning_rate):
    for key in parameters:
        parameters[key] = parameters[key] - learning_rate * grads["d" + key]
    return parameters


class DeepNet:
    """The course's functions as a model: ``params``, ``loss(X, Y)``, ``gradient(X, Y)``."""

    def __init__(self, layer_dims, seed=3, output_activation="sigmoid"):
        self.params = initialize_parameters_deep(layer_dims, seed)
        self.output_activation = output_activation

    def loss(self, X, Y):
        AL, _ = L_model_forward(X, self.params, self.output_activation)
        return compute_cost(AL, Y)

    def gradient(self, X, Y):
        AL, caches = L_model_forward(X, self.params, self.output_activation)
        grads = L_model_backward(AL, Y, caches, self.output_activation)
        return {key: grads["d" + key] for key in self.params}


# the second hidden layer is square: a weight used untransposed there still runs
LAYER_DIMS = (784, 20, 20, 1)
SOFTMAX_LAYER_DIMS = (784, 20, 10)


def make_net():
    """784-20-20-1, sigmoid output: a binary classifier."""
    return DeepNet(LAYER_DIMS)


def make_softmax_net():
    """784-20-10, softmax output, one-hot ``Y`` ``(10, m)``."""
    return DeepNet(SOFTMAX_LAYER_DIMS, output_activation="softmax")
