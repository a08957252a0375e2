"""The book's ``simpleNet`` (ch04/gradient_simplenet.py), in PyTorch."""
import torch

from .functions import cross_entropy_error, softmax
from .gradient import numerical_gradient
from .random_stream import BookRandomStream
from .validation import as_float_tensor, as_tensor


class SimpleNet:
    """One 2x3 weight matrix, softmax and cross-entropy."""

    def __init__(self, W=None, *, seed=None):
        if W is None:
            # numpy_impl's draw (np.random.randn(2, 3) from a RandomState(seed)),
            # so a seed gives the same W on both sides
            W = torch.from_numpy(BookRandomStream(seed).rng.randn(2, 3))
        W = as_float_tensor(W, "W")
        if W.shape != (2, 3):
            raise ValueError(f"W must have shape (2, 3), got {tuple(W.shape)}")
        self.W = W.clone()

    def predict(self, x):
        # matmul does not promote: x takes W's dtype first, as np.dot would give
        return torch.matmul(as_float_tensor(x, "x", allow_int=True, dtype=self.W.dtype), self.W)

    def loss(self, x, t):
        z = self.predict(x)
        y = softmax(z)
        loss = cross_entropy_error(y, t)
        return loss

    def numerical_gradient(self, x, t, h=1e-4):
        """``dW`` as the book computes it: ``numerical_gradient(lambda w: net.loss(x, t), net.W)``."""
        f = lambda w: self.loss(x, t)  # noqa: E731 (the book's idiom)
        return numerical_gradient(f, self.W, h)

    def gradient(self, x, t):
        """``dW`` by the chain rule: ``outer(x, softmax(xW) - t)`` averaged over the batch."""
        x = torch.atleast_2d(as_float_tensor(x, "x", dtype=self.W.dtype))
        y = softmax(torch.matmul(x, self.W))
        t = as_tensor(t, "t")
        if t.numel() != y.numel():
            t = torch.eye(y.shape[1], dtype=y.dtype)[t.reshape(-1).to(torch.int64)]
        t = t.reshape(y.shape)
        return torch.matmul(x.T, y - t) / x.shape[0]
