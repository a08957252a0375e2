"""What both sides share: MNIST, the random stream, the parity harness, the CLI.

Its parts: ``mnist`` (the loader), ``parity`` (tolerances and tables),
``ch4`` (the chapter-4 checks), ``port`` (the checker for your own port),
``testing`` (assertions for pytest) and ``cli`` (``python -m compare``).
"""
from numpy_impl.random_stream import BookRandomStream, book_initial_params

from .ch4.curves import compare_curves
from .ch4.gap import book_gap
from .ch4.paths import check_gradient_paths, gradcheck
from .mnist import load_mnist
from .parity import Tolerance, assert_gradients_close, compare_gradients, tolerance
from .port import PortReport, PortSetupError, check_port
from .port.writing import write_port
from .testing import assert_port, assert_same_net_gradients, assert_same_op

__all__ = ["load_mnist", "BookRandomStream", "book_initial_params",
           "Tolerance", "tolerance", "compare_gradients", "assert_gradients_close", "book_gap",
           "check_gradient_paths", "gradcheck", "compare_curves",
           "assert_same_op", "assert_same_net_gradients", "assert_port",
           "check_port", "PortReport", "PortSetupError", "write_port"]
