"""Check your own port: any NumPy model against its torch twin, layer by layer.

``check_port(numpy_model, torch_model, x, t, **options)`` returns a
``PortReport``: the parameter pairing, a row per compared output (forward,
loss, backward), the first mismatch and the likely bug.
"""
from .check import check_port
from .pairing import Pair, pair_parameters
from .report import Check, PortReport
from .targets import PortSetupError, load_target
from .training import check_training
from .twins import check_twins

__all__ = ["check_port", "check_training", "check_twins", "PortReport", "Check", "Pair", "pair_parameters", "PortSetupError",
           "load_target"]
