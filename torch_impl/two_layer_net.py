"""The book's two-layer network (ch04/two_layer_net.py), in PyTorch."""
import torch

from .fast_numerical_gradient import two_layer_numerical_gradient
from .functions import _cross_entropy_error, sigmoid, sigmoid_grad, softmax
from .gradient import numerical_gradient
from .random_stream import book_initial_params
from .validation import (check_batch, check_device, check_inputs, check_nonnegative,
                         check_positive_int, check_step)

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def _dtype(dtype):
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
    return dtype


def _device(device):
    """``device`` as a ``torch.device``; asking for CUDA without it is an error, not a fallback."""
    return check_device(device)


def _as_indices(t):
    return t if t.dim() == 1 else t.argmax(dim=1)


class TwoLayerNet:
    """784-50-10 in the book: affine, sigmoid, affine, softmax."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01,
                 *, seed=None, dtype=torch.float64, device=None):
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("output_size", output_size)):
            check_positive_int(value, name)
        check_nonnegative(weight_init_std, "weight_init_std")
        self.dtype = _dtype(dtype)
        self.device = _device(device)
        # numpy_impl's arrays, bit for bit: both sides start from the book's draw
        self.params = book_initial_params(input_size, hidden_size, output_size,
                                          weight_init_std, seed=seed, dtype=self.dtype,
                                          device=self.device)

    @property
    def sizes(self):
        return self.params["W1"].shape[0], self.params["W1"].shape[1], self.params["W2"].shape[1]

    def _check(self, x, t):
        input_size, _, output_size = self.sizes
        return check_batch(x, t, input_size, output_size, self.dtype, device=self.device)

    # The unchecked forms below serve the training loop, which validates its
    # data once instead of once per iteration.
    def _predict(self, x):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        a1 = torch.matmul(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = torch.matmul(z1, W2) + b2
        return softmax(a2)

    def _loss(self, x, t):
        return _cross_entropy_error(self._predict(x), t)

    def _accuracy(self, x, t):
        y = torch.argmax(self._predict(x), dim=1)
        # count / N in Python: an int64 tensor / N would give float32
        return torch.sum(y == _as_indices(t)).item() / float(x.shape[0])

    def _gradient(self, x, t):
        W1, W2 = self.params["W1"], self.params["W2"]
        b1, b2 = self.params["b1"], self.params["b2"]
        grads = {}
        batch_num = x.shape[0]

        # forward
        a1 = torch.matmul(x, W1) + b1
        z1 = sigmoid(a1)
        a2 = torch.matmul(z1, W2) + b2
        y = softmax(a2)

        # backward: (y - t) / batch is the exact gradient of the cross-entropy
        # without the loss's 1e-7
        if t.dim() == 1:
            dy = y.clone()
            dy[torch.arange(batch_num, device=y.device), t] -= 1
            dy /= batch_num
        else:
            dy = (y - t) / batch_num
        grads["W2"] = torch.matmul(z1.T, dy)
        grads["b2"] = torch.sum(dy, dim=0)

        da1 = torch.matmul(dy, W2.T)
        dz1 = sigmoid_grad(a1) * da1
        grads["W1"] = torch.matmul(x.T, dz1)
        grads["b1"] = torch.sum(dz1, dim=0)
        return {key: grads[key] for key in PARAM_NAMES}

    def _numerical_gradient(self, x, t, h=1e-4, method="fast"):
        if method == "fast":
            return two_layer_numerical_gradient(self.params, x, _as_indices(t), h)
        if method == "loop":
            loss_W = lambda W: self._loss(x, t)  # noqa: E731 (the book's idiom)
            return {key: numerical_gradient(loss_W, self.params[key], h) for key in PARAM_NAMES}
        raise ValueError(f"method must be 'fast' or 'loop', got {method!r}")

    def _autograd_gradient(self, x, t):
        params = {key: value.detach().requires_grad_(True) for key, value in self.params.items()}
        with torch.enable_grad():
            a1 = torch.matmul(x, params["W1"]) + params["b1"]
            z1 = sigmoid(a1)
            a2 = torch.matmul(z1, params["W2"]) + params["b2"]
            y = softmax(a2)
            t = _as_indices(t)
            batch_num = x.shape[0]
            # the cross-entropy without the 1e-7: the function `gradient` differentiates
            loss = -torch.sum(torch.log(y[torch.arange(batch_num, device=y.device), t])) / batch_num
        grads = torch.autograd.grad(loss, [params[key] for key in PARAM_NAMES])
        return dict(zip(PARAM_NAMES, grads))

    def predict(self, x):
        """Softmax probabilities for a 2-D batch ``x``."""
        return self._predict(check_inputs(x, self.sizes[0], self.dtype, device=self.device))

    def loss(self, x, t):
        """The book's loss: cross-entropy with ``log(y + 1e-7)``."""
        return self._loss(*self._check(x, t))

    def accuracy(self, x, t):
        return self._accuracy(*self._check(x, t))

    def numerical_gradient(self, x, t, *, h=1e-4, method="fast"):
        """Central differences of ``loss`` for every parameter.

        ``method="fast"`` uses the network's structure
        (``fast_numerical_gradient``); ``method="loop"`` is the book's loop over
        every element, kept as the reference. Both compute the same differences.
        """
        x, t = self._check(x, t)
        return self._numerical_gradient(x, t, check_step(h, self.dtype), method)

    def gradient(self, x, t):
        """Hand-written backprop, as the book's ``gradient``."""
        return self._gradient(*self._check(x, t))

    def autograd_gradient(self, x, t):
        """``torch.autograd`` through the same forward pass, on the cross-entropy
        without the ``1e-7``: the function whose exact gradient ``gradient``
        writes out by hand, so the two agree to round-off. (The numerical
        gradient differentiates ``loss``, with the ``1e-7``, and differs from
        both by about ``1e-7 / y``.)
        """
        return self._autograd_gradient(*self._check(x, t))
