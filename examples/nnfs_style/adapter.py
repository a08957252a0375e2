"""The port checker's door for a network with no model class: ``numpy_net.py``'s layers
(*Neural Networks from Scratch* style) behind ``params``, ``layers``, ``loss(x, t)`` and
``gradient(x, t)``. The adapter is the class below, 20 lines.

* ``params``: the layers' own arrays (not copies), so the checker's values reach them;
* ``layers``: the layer objects in order; their ``forward`` sets ``.output`` and their
  ``backward(dvalues)`` takes the gradient of their output: the layer-by-layer rows;
* ``loss(x, t)``: a number; ``gradient(x, t)``: a dict keyed like ``params``.

    python -m compare port examples/nnfs_style/adapter.py:make_net \\
                           examples/nnfs_style/torch_net.py:make_net
"""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("nnfs_numpy_net", Path(__file__).with_name("numpy_net.py"))
numpy_net = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(numpy_net)


class NNFSNet:
    def __init__(self, seed=0):
        dense1, relu1, dense2, self.head = numpy_net.build_layers(seed)
        self.layers = {"dense1": dense1, "relu1": relu1, "dense2": dense2}
        self.params = {"W1": dense1.weights, "b1": dense1.biases,
                       "W2": dense2.weights, "b2": dense2.biases}

    def loss(self, x, t):
        for layer in self.layers.values():
            layer.forward(x)
            x = layer.output
        return self.head.forward(x, t)  # softmax and the cross-entropy, one object

    def gradient(self, x, t):
        self.loss(x, t)
        self.head.backward(self.head.output, t)
        dvalues = self.head.dinputs
        for layer in reversed(list(self.layers.values())):
            layer.backward(dvalues)
            dvalues = layer.dinputs
        dense1, _, dense2 = self.layers.values()
        return {"W1": dense1.dweights, "b1": dense1.dbiases, "W2": dense2.dweights, "b2": dense2.dbiases}


make_net = NNFSNet
