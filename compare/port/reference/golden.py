"""Golden files: the NumPy side recorded once, checked later without NumPy code.

This module reads them and serves one as the reference side of a check
(``GoldenSide``) and of a training (``GoldenReference``); ``compare.port.recording``
writes them.

``python -m compare record NUMPY --out ref.npz`` runs the NumPy model once and
stores what a check needs; ``python -m compare port ref.npz TORCH`` checks a
port against it with the same report as against live code.

The file is a plain ``.npz``, read with ``allow_pickle=False``:

=========================  ==========================================================
key                        what
=========================  ==========================================================
``format``                 ``"dlfs-port-golden/1"``
``meta``                   JSON: the options it was made with, parameter and layer
                           names, how the gradient and the training were stored
``x``, ``t``               the batch of the single-batch check
``param/NAME``             the parameters the NumPy model started from
``layer/I/{input,output,   each layer call of the recorded pass, in order of
grad_output}``             execution (when the model has ``layers``)
``predict``, ``loss``      its outputs on the batch
``grad/NAME``              its gradient: backprop, or central differences of the
                           loss (``meta["gradient"]`` says which; then
                           ``grad_error/NAME`` holds each element's error bound;
                           ``grad_left/NAME``, ``grad_right/NAME`` and
                           ``grad_slope_error/NAME`` the one-sided slopes where the
                           loss has no derivative, NaN elsewhere)
``draw/I``, ``mask/I``      the draws of the recorded pass (``meta["draws"]``: their
                           ``numpy.random`` names) and the dropout keep masks made of
                           them, which answer the port's draws on replay
``train/loss``             the loss at each training step (``--steps``)
``train/param/NAME``       the parameters after each step, ``(steps, *shape)``, or,
``train/summary/NAME``     when that would pass ``MAX_TRAINING_BYTES``, a summary per
                           step: max ``|value|``, sum, norm and ``SAMPLES`` elements
                           at the flat indices ``train/sample_index/NAME``
=========================  ==========================================================

Over a corpus's windows (``--time-size``, ``meta["training"]["windows"]``) the training
keeps ``train/window/{x,t}`` (each window), ``train/draw/K/I`` and ``train/mask/K/I`` (the
draws of window K), ``train/param/NAME`` and ``train/state/I`` (the state carried out of
each window, ``meta["training"]["state_names"]``), and the book's Adam's betas where its
eps differs from torch's (``book_adam``).

Other training batches are not stored: they are drawn again from the recorded
options (MNIST, or seeded noise, and the book's stream for ``seed``) and
checked against a SHA-256 of all of them kept in ``meta``.
"""
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from ..capture import Capture, LayerRecord
from ..draws import DrawTape
from ..targets import PortSetupError
from ..unit_axes import as_shape

FORMAT = "dlfs-port-golden/1"


def batches_digest(batches):
    h = hashlib.sha256()
    for x, t in batches:
        h.update(np.ascontiguousarray(x).tobytes())
        h.update(np.ascontiguousarray(t).tobytes())
    return h.hexdigest()


def summary(value, index):
    """max |value|, sum, norm, then the sampled elements: a step's parameter in brief."""
    flat = value.reshape(-1).astype(np.float64)
    return np.concatenate([[np.max(np.abs(flat)) if flat.size else 0.0, flat.sum(),
                            np.sqrt(np.sum(flat * flat))], flat[index]])


# --- reading -------------------------------------------------------------------------------

class GoldenFile:
    """A golden file, read and checked: ``meta``, ``options`` and the arrays."""

    def __init__(self, path):
        self.path = Path(path)
        what = f"{self.path} is not a readable golden file"
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                self.arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError:
            raise PortSetupError(f"numpy side: no such file {self.path}") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise PortSetupError(f"{what} ({type(exc).__name__}: {exc}); make it again with "
                                 f"python -m compare record") from exc
        tag = self.arrays.get("format")
        if tag is None or str(tag) != FORMAT:
            raise PortSetupError(f"{what}: its format tag is {None if tag is None else str(tag)!r}, "
                                 f"expected {FORMAT!r}")
        try:
            self.meta = json.loads(str(self.arrays["meta"]))
            self.options = self.meta["options"]
            self.params = {n: self.arrays[f"param/{n}"].copy() for n in self.meta["params"]}
            # a gradient recorded (1, D) for a parameter (D,) holds its values
            self.grads = {n: as_shape(self.arrays[f"grad/{n}"], self.params[n].shape)
                          for n in self.meta["params"]}
            self.x, self.t = self.arrays["x"], self.arrays["t"]
            self.loss = float(self.arrays["loss"])
            self.records = [LayerRecord(
                layer["key"], layer["kind"],
                self.arrays.get(f"layer/{i}/input"), self.arrays[f"layer/{i}/output"],
                self.arrays.get(f"layer/{i}/grad_output"), tuple(layer["params"]))
                for i, layer in enumerate(self.meta["layers"])]
            if "training" in self.meta:
                self._check_training()
        except (KeyError, ValueError, TypeError) as exc:
            raise PortSetupError(f"{what}: it is damaged or incomplete (missing or bad {exc})") from exc
        for name, value in list(self.params.items()) + list(self.grads.items()):
            if value.dtype.name != self.meta["dtype"]:
                raise PortSetupError(f"{what}: {name} is {value.dtype}, the file says {self.meta['dtype']}")
        for name in self.params:
            if self.grads[name].shape != self.params[name].shape:
                raise PortSetupError(f"{what}: grad/{name} has shape {self.grads[name].shape}, "
                                     f"param/{name} {self.params[name].shape}")

    def _check_training(self):
        tr = self.meta["training"]
        steps = tr["steps"]
        if self.arrays["train/loss"].shape != (steps,):
            raise ValueError("train/loss")
        for n in self.meta["params"]:
            key = f"train/param/{n}" if tr["storage"] == "full" else f"train/summary/{n}"
            if self.arrays[key].shape[0] != steps:
                raise ValueError(key)

    def agree(self, given):
        """Refuse options that differ from those the file was made with; fill the rest."""
        out = dict(self.options)
        for key, value in given.items():
            if value is None or key not in out:
                continue
            if out[key] is not None and value != out[key]:
                raise PortSetupError(
                    f"{self.path} was recorded with --{key.replace('_', '-')} {out[key]}, not "
                    f"{value}: run with the file's options, or record it again with these")
            out[key] = value
        return out


class GoldenSide:
    """The recorded NumPy side, with ``NumpySide``'s interface: no live model (``model`` is
    None, no layers to rerun), its own batch, and its gradient as recorded."""

    model = None
    items = ()
    modal = False  # a recording is of one mode: the training pass it was made in
    buffer_owners = ()

    def buffers(self):
        return {}

    def restore_buffers(self, saved):
        pass

    def __init__(self, golden, dtype=None):
        if dtype is not None and np.dtype(dtype).name != golden.meta["dtype"]:
            raise PortSetupError(f"{golden.path} was recorded in {golden.meta['dtype']}, not {np.dtype(dtype).name}")
        self.golden = golden
        self.dtype = np.dtype(golden.meta["dtype"])
        self.params = {k: v.copy() for k, v in golden.params.items()}
        self.owners = {name: rec.key for rec in golden.records for name in rec.param_names}
        self.has_gradient = golden.meta["gradient"] == "backprop"
        self.has_predict = golden.meta["has_predict"]
        self.predicts_train = golden.meta.get("predicts_train", True)
        self.batch = (golden.x, golden.t)
        self.description = f"golden file {golden.path} ({golden.meta['model']})"
        drawn = golden.meta.get("draws")
        if drawn:  # the recorded pass's draws answer the port's, as a live side's do
            self.tape = DrawTape.replayed(
                drawn["numpy"], [golden.arrays[f"draw/{i}"] for i in range(len(drawn["numpy"]))],
                [golden.arrays[f"mask/{i}"] for i in range(len(drawn["keeps"]))], drawn["keeps"],
                drawn.get("keep_by_key"), drawn.get("transpose", False))

    def _same_batch(self, x, t):
        if x.shape != self.golden.x.shape or not np.array_equal(x, self.golden.x) \
                or not np.array_equal(t, self.golden.t):
            raise PortSetupError(f"{self.golden.path} holds the NumPy side's results on its own "
                                 f"batch; check on that batch (x, t = the file's)")

    def run(self, x, t):
        self._same_batch(x, t)
        capture = Capture([LayerRecord(r.key, r.kind, r.input, r.output, r.grad_output,
                                       r.param_names) for r in self.golden.records])
        grads = {k: v.copy() for k, v in self.golden.grads.items()} if self.has_gradient else None
        return capture, self.golden.loss, grads

    def loss(self, x, t, mode="train"):
        self._same_batch(x, t)
        return self.golden.loss

    def predict(self, x, mode="train"):
        self._same_batch(x, self.golden.t)
        return self.golden.arrays["predict"]

    def gradient(self, x, t):
        self._same_batch(x, t)
        return {k: v.copy() for k, v in self.golden.grads.items()}

    def recorded_difference(self, name):
        """The recorded central difference of the loss for ``name`` and its error bound."""
        return self.golden.grads[name], self.golden.arrays[f"grad_error/{name}"]

    def recorded_kinks(self, name):
        """``(left, right, slope error)`` of the elements of ``name`` where the loss has no
        derivative (NaN elsewhere), or None: a recording without any."""
        a = self.golden.arrays
        if f"grad_left/{name}" not in a:
            return None
        return a[f"grad_left/{name}"], a[f"grad_right/{name}"], a[f"grad_slope_error/{name}"]

    def check_training(self):
        if "training" not in self.golden.meta:
            raise PortSetupError(f"{self.golden.path} holds no training: record it with --steps N")

    def training_reference(self, numpy_optimizer, lr, draw, steps):
        if numpy_optimizer is not None:
            raise PortSetupError(f"{self.golden.path} already holds the NumPy side's training; "
                                 f"--numpy-optimizer has nothing to do")
        return GoldenReference(self.golden, [draw(k) for k in range(steps)])


class GoldenReference:
    """The recorded training of a golden file, replayed step by step on the batches drawn
    again (checked against the digest of those it was recorded on)."""

    def __init__(self, golden, data):
        tr = golden.meta["training"]
        if batches_digest(data) != tr["batches_sha256"]:
            raise PortSetupError(f"{golden.path}: the batches drawn now differ from those it was "
                                 f"recorded on (other data, or other MNIST files); record it again")
        self.golden, self.storage, self.data = golden, tr["storage"], data
        self.name = f"{tr['optimizer']} (recorded)"
        self.index = {n: golden.arrays.get(f"train/sample_index/{n}") for n in golden.meta["params"]}

    def batch(self, k):
        return self.data[k]

    def step(self, k, x, t):
        a = self.golden.arrays
        key = "train/param/{}" if self.storage == "full" else "train/summary/{}"
        return float(a["train/loss"][k]), {n: a[key.format(n)][k] for n in self.golden.meta["params"]}

    def summary(self, name, value):
        """The torch side's ``value`` of ``name`` in the form the file keeps it."""
        return summary(value, self.index[name])


def is_golden_path(spec):
    return isinstance(spec, (str, Path)) and str(spec).endswith(".npz")
