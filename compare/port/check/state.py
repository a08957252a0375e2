"""One check's state, shared by its phases: the two sides, the batch, the pairing, the
report, and what each row's diagnosis needs.

Built here: the sides (the reference side from ``compare.port.reference``, the
port from ``torch_side``), the batch validated and cast, the parameters
paired, the report's settings. Each phase then adds what it found: the
forward pass (``np_capture``, ``np_loss``, ``np_grads``, ``out``,
``t_capture``, ``t_grads``, ``t_source``, ``layer_pairs``), the known
differences (``known``), the unused torch parameters (``unused_torch``).
"""
import numpy as np

from ..known import Known
from ..pairing import pair_parameters
from ..reference import reference_side
from ..report import PortReport
from ..targets import PortSetupError
from ..torch_side import TorchSide

NUMPY_GRADIENT = ("auto", "backprop", "numerical")


def validate_batch(x, t, dtype):
    if not isinstance(x, np.ndarray):
        raise PortSetupError(f"x must be a NumPy array (the NumPy model's input), got {type(x).__name__}")
    if not isinstance(t, np.ndarray):
        raise PortSetupError(f"t must be a NumPy array of labels, got {type(t).__name__}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise PortSetupError(f"x must hold real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise PortSetupError(f"x must be a batch (N, ...) with N >= 1, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise PortSetupError("x holds NaN or infinity")
    if t.shape[:1] != x.shape[:1] or t.ndim not in (1, 2):
        raise PortSetupError(f"t must be (N,) class indices or (N, C) one-hot rows for the "
                             f"{x.shape[0]} rows of x, got shape {t.shape}")
    if t.ndim == 1:
        if not np.issubdtype(t.dtype, np.integer):
            if not (np.issubdtype(t.dtype, np.floating) and np.all(t == np.round(t))):
                raise PortSetupError(f"class indices t must be integers, got dtype {t.dtype}")
        if t.min() < 0:
            raise PortSetupError(f"class indices t must be >= 0, got {t.min()}")
        t = t.astype(np.int64)
    else:
        t = t.astype(dtype)
        if not np.all(np.isfinite(t)) or (t < 0).any():
            raise PortSetupError("one-hot t must be finite and non-negative")
    return x.astype(dtype), t


class RunState:
    """The state of one check, built up phase by phase."""

    def __init__(self, numpy_model, torch_model, x, t, *, dtype, loss, param_map, device,
                 numpy_gradient, directions, locate, seed):
        if numpy_gradient not in NUMPY_GRADIENT:
            raise PortSetupError(f"numpy_gradient must be one of {NUMPY_GRADIENT}, got {numpy_gradient!r}")
        self.np = reference_side(numpy_model, dtype)
        if self.np.batch is not None:  # a recording's own batch, unless another is given
            x = self.np.batch[0] if x is None else x
            t = self.np.batch[1] if t is None else t
        self.dtype = self.np.dtype.name
        self.x, self.t = validate_batch(x, t, self.dtype)
        self.torch = TorchSide(torch_model, self.dtype, device, loss)
        self.report = PortReport()
        self.numpy_gradient = numpy_gradient
        self.directions, self.locate, self.seed = directions, locate, seed
        np_shapes = {k: v.shape for k, v in self.np.params.items()}
        t_shapes = {k: tuple(v.shape) for k, v in self.torch.params.items()}
        self.pairing = pair_parameters(np_shapes, t_shapes, param_map=param_map,
                                       linear_weights=self.torch.linear_weights
                                       | self.torch.functional_linear_weights(self.x))
        self.report.pairing = self.pairing
        self.twin = {p.numpy: p.torch for p in self.pairing}
        extra = [k for k in t_shapes if k not in set(self.twin.values())]
        if extra:
            self.report.notes.append(f"torch parameters left unpaired (not checked): {extra}")
        self.report.settings = {
            "dtype": self.dtype, "loss": loss, "batch": int(self.x.shape[0]),
            "torch model": f"{type(torch_model).__name__} ({self.torch.kind})",
            "numpy model": self.np.description}
        self.tx, self.tt = self.torch.tensor(self.x), self.torch.tensor(self.t)
        self.known = Known()
        self.unused_torch = set()
        self.context = {}  # check id -> what the diagnosis needs

    def add(self, row, **context):
        self.report.checks.append(row)
        self.context[id(row)] = context
        return row

    def apply_known(self, known):
        """Hold the known differences a phase found, and name each in the report."""
        known.note(self.report)
        self.known = self.known + known

    def torch_name(self, name):
        """The torch twin of the NumPy parameter ``name``, as the rows show it."""
        pair = next(p for p in self.pairing if p.numpy == name)
        return pair.torch + (".T" if pair.transposed else "")
