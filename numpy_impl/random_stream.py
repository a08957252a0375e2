"""The book's random numbers: seeded initial weights and batch indices.

The book seeds NumPy's global generator once (``np.random.seed(S)``), then
``TwoLayerNet.__init__`` draws ``W1`` and ``W2`` with ``randn`` and the
training loop draws one ``np.random.choice(train_size, batch_size)`` per
iteration from the same stream. ``BookRandomStream`` replays exactly that
sequence from a private ``RandomState``, so both sides of this project and
the book see identical numbers, and a checkpoint can save its position.
"""
import numpy as np

from .validation import check_nonnegative, check_positive_int, check_seed


class BookRandomStream:
    """One ``numpy.random.RandomState`` drawn from in the book's order."""

    def __init__(self, seed=None):
        self.seed = check_seed(seed)
        self.rng = np.random.RandomState(seed)

    def initial_weights(self, input_size, hidden_size, output_size, weight_init_std=0.01):
        """``W1`` then ``W2``, ``weight_init_std * randn``, as the book draws them."""
        weight_init_std = check_nonnegative(weight_init_std, "weight_init_std")
        W1 = weight_init_std * self.rng.randn(input_size, hidden_size)
        W2 = weight_init_std * self.rng.randn(hidden_size, output_size)
        return W1, W2

    def batch_indices(self, train_size, batch_size):
        """The next mini-batch, ``choice(train_size, batch_size)`` (with replacement).

        ``choice(n, k)`` with replacement is ``randint(0, n, k)`` inside
        NumPy; calling that directly skips choice's argument checks, which cost
        as much as the draw (tests/test_backprop_step.py holds them equal).
        """
        return self.rng.randint(0, train_size, batch_size)

    def get_state(self):
        return self.rng.get_state()

    def set_state(self, state):
        self.rng.set_state(state)

    @classmethod
    def for_training(cls, seed, input_size, hidden_size, output_size):
        """The stream as the training loop finds it after the book's __init__.

        ``TwoLayerNet(..., seed=S)`` drew the weights from a stream seeded with
        ``S``; ``train(..., seed=S)`` must continue that same stream, so the
        weight draws are replayed and discarded here.
        """
        stream = cls(seed)
        if seed is not None:
            stream.initial_weights(input_size, hidden_size, output_size)
        return stream


def book_initial_params(input_size, hidden_size, output_size, weight_init_std=0.01,
                        seed=None, dtype=np.float64):
    """The book's initial ``params`` dict for a seed, as NumPy arrays."""
    check_positive_int(input_size, "input_size")
    check_positive_int(hidden_size, "hidden_size")
    check_positive_int(output_size, "output_size")
    W1, W2 = BookRandomStream(seed).initial_weights(
        input_size, hidden_size, output_size, weight_init_std)
    return {
        "W1": W1.astype(dtype, copy=False),
        "b1": np.zeros(hidden_size, dtype=dtype),
        "W2": W2.astype(dtype, copy=False),
        "b2": np.zeros(output_size, dtype=dtype),
    }
