"""*Neural Networks from Scratch*'s style: layer objects that set ``.output`` and
``.dinputs`` (``Layer_Dense``, ``Activation_ReLU``, ``Layer_Dropout`` drawing
``np.random.binomial``), no model class; an adapter gives the checker's door
(``params``, ``layers``, ``loss``, ``gradient``, ``predict``)."""
import numpy as np

from . import core
from .params import init_params


class Layer_Dense:
    def __init__(self, weights, biases, bias):
        self.weights, self.biases, self.bias = weights, biases, bias

    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.dot(inputs, self.weights) + core.as_row(self.biases)

    def backward(self, dvalues):
        self.dweights = np.dot(self.inputs.T, dvalues)
        self.dbiases = core.bias_grad(dvalues, self.bias)
        self.dinputs = np.dot(dvalues, self.weights.T)


class Activation_ReLU:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0


class Activation_Function:
    """The other activations as nnfs writes its own: ``.output``, ``.dinputs``."""

    def __init__(self, spec):
        self.spec = spec

    def forward(self, inputs):
        self.inputs = inputs
        self.output = core.act_forward(inputs, self.spec)

    def backward(self, dvalues):
        self.dinputs = core.act_backward(dvalues, self.inputs, self.output, self.spec)


class Activation_Tanh(Activation_Function):
    pass


class Activation_Sigmoid(Activation_Function):
    pass


class Activation_LeakyReLU(Activation_Function):
    def __init__(self, spec):
        super().__init__(spec)
        self.alpha = spec.act_param


class Activation_ELU(Activation_LeakyReLU):
    pass


class Activation_GELU(Activation_Function):
    def __init__(self, spec):
        super().__init__(spec)
        self.approximate = "tanh" if spec.act == "gelu_tanh" else "none"


ACTIVATIONS = {"relu": Activation_ReLU, "tanh": Activation_Tanh, "sigmoid": Activation_Sigmoid,
               "leaky_relu": Activation_LeakyReLU, "elu": Activation_ELU, "gelu": Activation_GELU,
               "gelu_tanh": Activation_GELU}


class Layer_Dropout:
    def __init__(self, spec):
        self.spec = spec
        self.rate = 1 - spec.p  # nnfs keeps the keep rate

    def forward(self, inputs, training=True):
        self.inputs = inputs
        if not training:
            self.output = inputs.copy()
            return
        self.binary_mask = core.draw_mask(inputs.shape, self.spec, inputs.dtype, how="binomial")
        self.output = inputs * self.binary_mask

    def backward(self, dvalues):
        self.dinputs = dvalues * self.binary_mask


class Loss_Head:
    """The output activation and the loss in one object, as nnfs's combined softmax loss."""

    def __init__(self, spec):
        self.spec = spec

    def forward(self, inputs, y_true):
        self.output = core.head(inputs, self.spec)
        loss, self.dinputs = core.loss_and_dz(inputs, y_true, self.spec)
        return loss


class Adapter:
    def __init__(self, spec):
        self.spec = spec
        values = init_params(spec)
        dense1 = Layer_Dense(values["W1"], values["b1"], spec.bias)
        dense2 = Layer_Dense(values["W2"], values["b2"], spec.bias)
        act = Activation_ReLU() if spec.act == "relu" else ACTIVATIONS[spec.act](spec)
        self.layers = {"dense1": dense1, "relu1" if spec.act == "relu" else "activation1": act}
        if spec.dropout:
            self.layers["dropout1"] = Layer_Dropout(spec)
        self.layers["dense2"] = dense2
        self.head = Loss_Head(spec)
        arrays = {"W1": dense1.weights, "b1": dense1.biases, "W2": dense2.weights, "b2": dense2.biases}
        self.params = {name: arrays[name] for name in spec.order}  # the layers' own arrays

    def _forward(self, x, training):
        for layer in self.layers.values():
            if isinstance(layer, Layer_Dropout):
                layer.forward(x, training=training)
            else:
                layer.forward(x)
            x = layer.output
        return x

    def predict(self, x, training=False):
        return core.head(self._forward(x, training), self.spec)

    def loss(self, x, t, training=False):
        return self.head.forward(self._forward(x, training), t)

    def gradient(self, x, t):
        self.loss(x, t, training=True)
        dvalues = self.head.dinputs
        for layer in reversed(list(self.layers.values())):
            layer.backward(dvalues)
            dvalues = layer.dinputs
        dense1, dense2 = self.layers["dense1"], self.layers["dense2"]
        grads = {"W1": dense1.dweights, "b1": dense1.dbiases, "W2": dense2.dweights, "b2": dense2.dbiases}
        return {name: grads[name] for name in self.params}
