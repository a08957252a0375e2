"""What both sides share: MNIST, the random stream, the parity harness, the CLI."""
from numpy_impl.random_stream import BookRandomStream, book_initial_params

from .mnist import load_mnist

__all__ = ["load_mnist", "BookRandomStream", "book_initial_params"]
