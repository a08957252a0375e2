"""One iteration of the book's backprop loop, in buffers allocated once.

``train`` repeats, ten thousand times on tensors of the same shapes::

    x_batch = x_train[batch_mask]; t_batch = t_train[batch_mask]
    grad = network.gradient(x_batch, t_batch)
    params[key] -= learning_rate * grad[key]
    loss = network.loss(x_batch, t_batch)

``BackpropStep`` does the same operations, in the same order and the same
dtype, into tensors it allocated once, so the hot loop allocates nothing:
the results are bit for bit those of ``TwoLayerNet._gradient`` and ``_loss``
(tests/test_backprop_step.py). Labels are kept one-hot: ``y - t`` is the
book's ``y[i, t_i] -= 1`` exactly, since ``y - 0.0 == y``.
"""
import torch

from .two_layer_net import PARAM_NAMES


class BackpropStep:
    def __init__(self, params, x_train, t_train, batch_size):
        W1, W2 = params["W1"], params["W2"]
        (input_size, hidden_size), output_size = W1.shape, W2.shape[1]
        dtype, device = W1.dtype, W1.device
        self.params = params
        self.x_train = x_train
        if t_train.dim() == 1:  # class indices: one-hot once, here, not per batch
            t_train = torch.eye(output_size, dtype=dtype, device=device)[t_train]
        self.t_train = t_train.to(dtype)
        self.labels = self.t_train.argmax(dim=1)  # what _cross_entropy_error takes

        def buffer(*shape):
            return torch.empty(shape, dtype=dtype, device=device)

        self.x_batch, self.t_batch = buffer(batch_size, input_size), buffer(batch_size, output_size)
        self.a1, self.z1, self.da1 = (buffer(batch_size, hidden_size) for _ in range(3))
        self.y = buffer(batch_size, output_size)
        self.row_max, self.row_sum = buffer(batch_size, 1), buffer(batch_size, 1)
        self.grads = {"W1": buffer(input_size, hidden_size), "b1": buffer(hidden_size),
                      "W2": buffer(hidden_size, output_size), "b2": buffer(output_size)}
        self.grad_list = [self.grads[key] for key in PARAM_NAMES]
        self.batch_labels = torch.empty(batch_size, dtype=torch.int64, device=device)
        self.rows = torch.arange(batch_size, device=device)

    def _predict(self, x):
        """``TwoLayerNet._predict`` into ``self.a1``, ``self.z1`` and ``self.y``."""
        p, a1, z1, y = self.params, self.a1, self.z1, self.y
        torch.matmul(x, p["W1"], out=a1)
        a1 += p["b1"]
        torch.neg(a1, out=z1)  # sigmoid: 1 / (1 + exp(-a1))
        z1.exp_()
        z1 += 1
        z1.reciprocal_()  # what `1 / tensor` calls
        torch.matmul(z1, p["W2"], out=y)
        y += p["b2"]
        torch.amax(y, dim=-1, keepdim=True, out=self.row_max)  # softmax
        y -= self.row_max
        y.exp_()
        torch.sum(y, dim=-1, keepdim=True, out=self.row_sum)
        y /= self.row_sum
        return y

    def __call__(self, batch_mask, learning_rate):
        """Update the parameters in place; return the loss after the update."""
        p, g, x, t = self.params, self.grads, self.x_batch, self.t_batch
        torch.index_select(self.x_train, 0, batch_mask, out=x)
        torch.index_select(self.t_train, 0, batch_mask, out=t)
        batch_num = x.shape[0]

        y = self._predict(x)
        dy = y  # y is not needed again before the next forward pass
        dy -= t
        dy /= batch_num
        torch.matmul(self.z1.T, dy, out=g["W2"])
        torch.sum(dy, dim=0, out=g["b2"])
        torch.matmul(dy, p["W2"].T, out=self.da1)
        dz1 = torch.neg(self.z1, out=self.a1)  # sigmoid_grad(a1) = (1 - z1) * z1
        dz1 += 1.0
        dz1 *= self.z1
        dz1 *= self.da1
        torch.matmul(x.T, dz1, out=g["W1"])
        torch.sum(dz1, dim=0, out=g["b1"])

        torch._foreach_mul_(self.grad_list, learning_rate)  # lr * grad, then param - it:
        torch._foreach_sub_([p[key] for key in PARAM_NAMES], self.grad_list)  # two roundings

        y = self._predict(x)
        labels = torch.index_select(self.labels, 0, batch_mask, out=self.batch_labels)
        return float(-torch.sum(torch.log(y[self.rows, labels] + 1e-7)) / batch_num)
