"""The book's ``simpleNet`` (ch04/gradient_simplenet.py), in PyTorch."""
import torch

from .functions import _targets, cross_entropy_error, softmax
from .gradient import numerical_gradient
from .random_stream import BookRandomStream
from .validation import as_float_tensor


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

    def _features(self, x):
        """One sample of 2 features, or a batch (N, 2), in W's dtype.

        matmul does not promote: x takes W's dtype first, as np.dot would give.
        """
        x = as_float_tensor(x, "x", allow_int=True, dtype=self.W.dtype)
        if x.dim() not in (1, 2) or x.shape[-1] != self.W.shape[0]:
            n = self.W.shape[0]
            raise ValueError(f"x must hold {n} features, shape ({n},) or (batch, {n}); "
                             f"got shape {tuple(x.shape)}")
        return x

    def predict(self, x):
        return torch.matmul(self._features(x), self.W)

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
        x = self._features(x)
        y = softmax(torch.matmul(x, self.W))  # 1-D for one sample: t is read as the book reads it
        y, t = _targets(y, t)
        if t.dim() == 1:  # class indices
            t = torch.eye(y.shape[1], dtype=y.dtype, device=y.device)[t]
        x = torch.atleast_2d(x)
        return torch.matmul(x.T, y - t) / x.shape[0]
