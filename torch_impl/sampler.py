"""The book's batch stream as a ``torch.utils.data`` sampler and loader.

The book draws each mini-batch with ``np.random.choice(train_size,
batch_size)`` from the generator that drew the weights. ``BookBatchSampler``
yields those same index batches, drawn lazily from a shared
``BookRandomStream``, so a ``DataLoader`` over it feeds a module exactly the
batches the NumPy loop sees, and the stream's position after ``i`` batches is
the loop's (what a checkpoint saves).
"""
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from .validation import check_positive_int


class BookBatchSampler(Sampler):
    """``num_batches`` index batches, each ``stream.batch_indices(train_size, batch_size)``."""

    def __init__(self, stream, train_size, batch_size, num_batches):
        if not callable(getattr(stream, "batch_indices", None)):
            raise TypeError(f"stream must be a BookRandomStream, got {type(stream).__name__}")
        self.stream = stream
        self.train_size = check_positive_int(train_size, "train_size")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_batches = check_positive_int(num_batches, "num_batches", minimum=0)

    def __iter__(self):
        for _ in range(self.num_batches):
            # drawn on demand: a loader without workers asks for one batch at a time
            yield torch.from_numpy(self.stream.batch_indices(self.train_size, self.batch_size))

    def __len__(self):
        return self.num_batches


def book_loader(x, t, stream, batch_size, num_batches):
    """A ``DataLoader`` yielding ``(x[batch], t[batch])`` in the book's order.

    ``batch_size=None`` hands each index batch to the dataset whole, so a
    batch is one gather (``x[idx]``), not ``batch_size`` lookups and a stack.
    """
    sampler = BookBatchSampler(stream, x.shape[0], batch_size, num_batches)
    return DataLoader(TensorDataset(x, t), sampler=sampler, batch_size=None)
