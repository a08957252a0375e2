"""The `parity` fixture in a test suite of your own (docs/python-api.md quotes its run)."""
import numpy as np

import numpy_impl
import torch_impl


def test_two_layer_net_port(parity):
    rng = np.random.RandomState(0)
    x, t = rng.rand(20, 784), rng.randint(0, 10, 20)
    parity.port(numpy_impl.TwoLayerNet(784, 50, 10, seed=0),
                torch_impl.TwoLayerNetModule(784, 50, 10), x, t)


def test_softmax(parity):
    parity.op(numpy_impl.softmax, torch_impl.softmax, [(4, 10)])
