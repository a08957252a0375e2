"""The book's ``simpleNet`` (ch04/gradient_simplenet.py), in NumPy."""
import numpy as np

from .functions import _targets, cross_entropy_error, softmax
from .gradient import numerical_gradient
from .random_stream import BookRandomStream
from .validation import as_float_array


class SimpleNet:
    """One 2x3 weight matrix, softmax and cross-entropy."""

    def __init__(self, W=None, *, seed=None):
        if W is None:
            # the book: np.random.randn(2, 3); the stream checks the seed
            W = BookRandomStream(seed).rng.randn(2, 3)
        W = as_float_array(W, "W")
        if W.shape != (2, 3):
            raise ValueError(f"W must have shape (2, 3), got {W.shape}")
        self.W = W.copy()

    def _features(self, x):
        """One sample of 2 features, or a batch (N, 2), in W's dtype."""
        x = as_float_array(x, "x", allow_int=True, dtype=self.W.dtype)
        if x.ndim not in (1, 2) or x.shape[-1] != self.W.shape[0]:
            n = self.W.shape[0]
            raise ValueError(f"x must hold {n} features, shape ({n},) or (batch, {n}); "
                             f"got shape {x.shape}")
        return x

    def predict(self, x):
        return np.dot(self._features(x), self.W)

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
        y = softmax(np.dot(x, self.W))  # 1-D for one sample: t is read as the book reads it
        y, t = _targets(y, t)
        if t.ndim == 1:  # class indices
            t = np.eye(y.shape[1], dtype=y.dtype)[t]
        x = np.atleast_2d(x)
        return np.dot(x.T, y - t) / x.shape[0]
