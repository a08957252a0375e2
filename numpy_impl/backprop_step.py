"""One iteration of the book's backprop loop, in buffers allocated once.

``train`` repeats, ten thousand times on arrays of the same shapes::

    x_batch = x_train[batch_mask]; t_batch = t_train[batch_mask]
    grad = network.gradient(x_batch, t_batch)
    params[key] -= learning_rate * grad[key]
    loss = network.loss(x_batch, t_batch)

``BackpropStep`` does the same operations, in the same order and the same
dtype, into arrays it allocated once, so the hot loop allocates (and
page-faults) nothing: the results are bit for bit those of
``TwoLayerNet._gradient`` and ``_loss`` (tests/test_backprop_step.py). Labels are
kept one-hot: ``y - t`` is the book's ``y[i, t_i] -= 1`` exactly, since
``y - 0.0 == y``.
"""
import numpy as np

from .two_layer_net import PARAM_NAMES


class BackpropStep:
    def __init__(self, params, x_train, t_train, batch_size):
        W1, W2 = params["W1"], params["W2"]
        (input_size, hidden_size), output_size = W1.shape, W2.shape[1]
        dtype = W1.dtype
        self.params = params
        self.x_train = x_train
        if t_train.ndim == 1:  # class indices: one-hot once, here, not per batch
            t_train = np.eye(output_size, dtype=dtype)[t_train]
        self.t_train = t_train.astype(dtype, copy=False)
        self.labels = self.t_train.argmax(axis=1)  # what _cross_entropy_error takes

        def buffer(*shape):
            return np.empty(shape, dtype=dtype)

        self.x_batch, self.t_batch = buffer(batch_size, input_size), buffer(batch_size, output_size)
        self.a1, self.z1, self.da1 = (buffer(batch_size, hidden_size) for _ in range(3))
        self.y = buffer(batch_size, output_size)
        self.row_max, self.row_sum = buffer(batch_size, 1), buffer(batch_size, 1)
        self.grads = {"W1": buffer(input_size, hidden_size), "b1": buffer(hidden_size),
                      "W2": buffer(hidden_size, output_size), "b2": buffer(output_size)}
        self.batch_labels = np.empty(batch_size, dtype=self.labels.dtype)
        self.rows = np.arange(batch_size)

    def _predict(self, x):
        """``TwoLayerNet._predict`` into ``self.a1``, ``self.z1`` and ``self.y``."""
        p, a1, z1, y = self.params, self.a1, self.z1, self.y
        np.dot(x, p["W1"], out=a1)
        a1 += p["b1"]
        np.negative(a1, out=z1)  # sigmoid: 1 / (1 + exp(-a1))
        np.exp(z1, out=z1)
        z1 += 1
        np.divide(1, z1, out=z1)
        np.dot(z1, p["W2"], out=y)
        y += p["b2"]
        np.maximum.reduce(y, axis=-1, keepdims=True, out=self.row_max)  # softmax
        y -= self.row_max
        np.exp(y, out=y)
        np.add.reduce(y, axis=-1, keepdims=True, out=self.row_sum)
        y /= self.row_sum
        return y

    def __call__(self, batch_mask, learning_rate):
        """Update the parameters in place; return the loss after the update."""
        p, g, x, t = self.params, self.grads, self.x_batch, self.t_batch
        # mode="clip" writes straight into `out`; "raise" would copy first.
        # `batch_mask` comes from randint, so nothing is ever clipped.
        np.take(self.x_train, batch_mask, axis=0, out=x, mode="clip")
        np.take(self.t_train, batch_mask, axis=0, out=t, mode="clip")
        batch_num = x.shape[0]

        y = self._predict(x)
        dy = y  # y is not needed again before the next forward pass
        dy -= t
        dy /= batch_num
        np.dot(self.z1.T, dy, out=g["W2"])
        np.add.reduce(dy, axis=0, out=g["b2"])
        np.dot(dy, p["W2"].T, out=self.da1)
        dz1 = np.subtract(1.0, self.z1, out=self.a1)  # sigmoid_grad(a1) = (1 - z1) * z1
        dz1 *= self.z1
        dz1 *= self.da1
        np.dot(x.T, dz1, out=g["W1"])
        np.add.reduce(dz1, axis=0, out=g["b1"])

        for key in PARAM_NAMES:
            g[key] *= learning_rate
            p[key] -= g[key]

        y = self._predict(x)
        labels = np.take(self.labels, batch_mask, out=self.batch_labels, mode="clip")
        return float(-np.add.reduce(np.log(y[self.rows, labels] + 1e-7)) / batch_num)
