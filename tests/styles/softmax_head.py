"""*Neural Networks from Scratch*'s model as a learner builds it: layer objects
(``Layer_Dense``, ``Activation_ReLU``) and ``Activation_Softmax`` as the last layer, then
``Loss_CategoricalCrossentropy`` on its probabilities (clipped to ``[1e-7, 1 - 1e-7]``); with
``l2``, the book's ``l2 * sum(W**2)`` on each dense layer's weights added to the loss.

The softmax layer is the head of the loss after it: a port returns the scores it takes and
``F.cross_entropy`` applies it.
"""
import numpy as np

from examples.nnfs_style.adapter import numpy_net as nn_

N_IN, HIDDEN, CLASSES = 2, 8, 3


class SoftmaxLayerNet:
    def __init__(self, l2=0.0, seed=0):
        dense1, relu1, dense2, _ = numpy_net_layers(seed)
        self.l2 = l2
        self.layers = {"dense1": dense1, "relu1": relu1, "dense2": dense2,
                       "softmax": nn_.Activation_Softmax()}
        self.params = {"W1": dense1.weights, "b1": dense1.biases,
                       "W2": dense2.weights, "b2": dense2.biases}
        self.loss_function = nn_.Loss_CategoricalCrossentropy()

    def predict(self, x):
        for layer in self.layers.values():
            layer.forward(x)
            x = layer.output
        return x

    def loss(self, x, t):
        data = self.loss_function.calculate(self.predict(x), t)
        reg = sum(self.l2 * np.sum(self.params[w] ** 2) for w in ("W1", "W2"))
        return data + reg


def numpy_net_layers(seed):
    rng = np.random.RandomState(seed)
    dense1, relu1, dense2, head = nn_.build_layers(seed, N_IN, HIDDEN, CLASSES)
    for dense in (dense1, dense2):  # biases that are not 0, weights of a size that shows
        dense.weights *= 30
        dense.biases[:] = 0.1 * rng.randn(*dense.biases.shape)
    return dense1, relu1, dense2, head


def batch(n=20, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, N_IN), rng.randint(0, CLASSES, n)
