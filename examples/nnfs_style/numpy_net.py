"""A classifier in the style of *Neural Networks from Scratch*, in NumPy.

Written here as the book's code is laid out: layer objects and no model
class. ``Layer_Dense`` keeps ``weights`` ``(n_inputs, n_neurons)``, drawn as
``0.01 * randn``, and ``biases`` ``(1, n_neurons)``, zeros; ``forward``
sets ``self.output``, ``backward(dvalues)`` sets ``self.dweights``,
``self.dbiases`` and ``self.dinputs``. The softmax and the categorical
cross-entropy are one object whose ``forward(inputs, y_true)`` returns the
loss and whose ``backward(dvalues, y_true)`` takes the softmax outputs;
labels are class indices or one-hot rows.

The loss clips the probabilities to ``[1e-7, 1 - 1e-7]`` before the log,
as the book does; the combined backward is the gradient of the unclipped
loss. The two agree, and agree with ``F.cross_entropy``, while every
probability lies inside that interval (at initialisation, all of them lie
near ``1 / n_classes``).

A pass, as the book writes it inline::

    dense1, activation1, dense2, loss_activation = build_layers(seed=0)
    dense1.forward(X)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    loss = loss_activation.forward(dense2.output, y)
    loss_activation.backward(loss_activation.output, y)
    dense2.backward(loss_activation.dinputs)
    activation1.backward(dense2.dinputs)
    dense1.backward(activation1.dinputs)
"""
import numpy as np


class Layer_Dense:
    def __init__(self, n_inputs, n_neurons):
        self.weights = 0.01 * np.random.randn(n_inputs, n_neurons)
        self.biases = np.zeros((1, n_neurons))

    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.dot(inputs, self.weights) + self.biases

    def backward(self, dvalues):
        self.dweights = np.dot(self.inputs.T, dvalues)
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True)
        self.dinputs = np.dot(dvalues, self.weights.T)


class Activation_ReLU:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0


class Activation_Softmax:
    def forward(self, inputs):
        self.inputs = inputs
        exp_values = np.exp(inputs - np.max(inputs, axis=1, keepdims=True))
        self.output = exp_values / np.sum(exp_values, axis=1, keepdims=True)


class Loss:
    def calculate(self, output, y):
        sample_losses = self.forward(output, y)
        return np.mean(sample_losses)


class Loss_CategoricalCrossentropy(Loss):
    def forward(self, y_pred, y_true):
        samples = len(y_pred)
        # a probability of exactly 0 would give log(0); the book clips both ends alike
        y_pred_clipped = np.clip(y_pred, 1e-7, 1 - 1e-7)
        if len(y_true.shape) == 1:
            correct_confidences = y_pred_clipped[range(samples), y_true]
        else:
            correct_confidences = np.sum(y_pred_clipped * y_true, axis=1)
        return -np.log(correct_confidences)


class Activation_Softmax_Loss_CategoricalCrossentropy:
    def __init__(self):
        self.activation = Activation_Softmax()
        self.loss = Loss_CategoricalCrossentropy()

    def forward(self, inputs, y_true):
        self.activation.forward(inputs)
        self.output = self.activation.output
        return self.loss.calculate(self.output, y_true)

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        if len(y_true.shape) == 2:
            y_true = np.argmax(y_true, axis=1)
        self.dinputs = dvalues.copy()
        self.dinputs[range(samples), y_true] -= 1
        self.dinputs = self.dinputs / samples


def build_layers(seed=0, n_inputs=784, n_hidden=64, n_outputs=10):
    """``(dense1, activation1, dense2, loss_activation)``, the weights drawn after
    seeding NumPy's global generator, as the book's ``nnfs.init()`` does."""
    np.random.seed(seed)
    dense1 = Layer_Dense(n_inputs, n_hidden)
    activation1 = Activation_ReLU()
    dense2 = Layer_Dense(n_hidden, n_outputs)
    loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
    return dense1, activation1, dense2, loss_activation


if __name__ == "__main__":
    dense1, activation1, dense2, loss_activation = build_layers()
    X = np.random.rand(100, 784)
    y = np.random.randint(0, 10, size=100)

    dense1.forward(X)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    loss = loss_activation.forward(dense2.output, y)
    accuracy = np.mean(np.argmax(loss_activation.output, axis=1) == y)
    print("loss:", loss, "acc:", accuracy)

    loss_activation.backward(loss_activation.output, y)
    dense2.backward(loss_activation.dinputs)
    activation1.backward(dense2.dinputs)
    dense1.backward(activation1.dinputs)
    print("dweights1:", dense1.dweights.shape, "dweights2:", dense2.dweights.shape)
