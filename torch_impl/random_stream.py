"""The book's random numbers, shared with the NumPy side.

The stream itself is ``numpy_impl.random_stream.BookRandomStream`` (one
``numpy.random.RandomState`` drawn from in the book's order), the one thing
this side imports from ``numpy_impl``: a ``torch.Generator`` draws other
numbers for the same seed, so both sides take the same NumPy draws and the
torch side wraps them with ``torch.from_numpy``.
"""
import torch

from numpy_impl.random_stream import BookRandomStream
from numpy_impl.random_stream import book_initial_params as _numpy_initial_params

from .validation import _dtype_name, check_nonnegative, check_positive_int, check_seed

__all__ = ["BookRandomStream", "book_initial_params"]


def book_initial_params(input_size, hidden_size, output_size, weight_init_std=0.01,
                        seed=None, dtype=torch.float64, device=None):
    """The book's initial ``params`` dict for a seed, as tensors: numpy_impl's arrays, bit for bit."""
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("output_size", output_size)):
        check_positive_int(value, name)
    check_nonnegative(weight_init_std, "weight_init_std")
    check_seed(seed)
    params = _numpy_initial_params(input_size, hidden_size, output_size, weight_init_std,
                                   seed=seed, dtype=_dtype_name(dtype))
    return {key: torch.from_numpy(value).to(device) for key, value in params.items()}
