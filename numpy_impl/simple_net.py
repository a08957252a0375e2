"""The book's ``simpleNet`` (ch04/gradient_simplenet.py), in NumPy."""
import numpy as np

from .functions import cross_entropy_error, softmax
from .gradient import numerical_gradient
from .validation import as_float_array


class SimpleNet:
    """One 2x3 weight matrix, softmax and cross-entropy."""

    def __init__(self, W=None, *, seed=None):
        if W is None:
            W = np.random.RandomState(seed).randn(2, 3)  # the book: np.random.randn(2, 3)
        W = as_float_array(W, "W")
        if W.shape != (2, 3):
            raise ValueError(f"W must have shape (2, 3), got {W.shape}")
        self.W = W.copy()

    def predict(self, x):
        return np.dot(x, self.W)

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
        x = np.atleast_2d(as_float_array(x, "x"))
        y = softmax(np.dot(x, self.W))
        t = np.asarray(t)
        if t.size != y.size:
            t = np.eye(y.shape[1], dtype=y.dtype)[t.reshape(-1)]
        t = t.reshape(y.shape)
        return np.dot(x.T, y - t) / x.shape[0]
