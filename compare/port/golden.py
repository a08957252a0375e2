"""Golden files: the NumPy side recorded once, checked later without NumPy code.

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
                           ``grad_error/NAME`` holds each element's error bound)
``train/loss``             the loss at each training step (``--steps``)
``train/param/NAME``       the parameters after each step, ``(steps, *shape)``, or,
``train/summary/NAME``     when that would pass ``MAX_TRAINING_BYTES``, a summary per
                           step: max ``|value|``, sum, norm and ``SAMPLES`` elements
                           at the flat indices ``train/sample_index/NAME``
=========================  ==========================================================

Training batches are not stored: they are drawn again from the recorded
options (MNIST, or seeded noise, and the book's stream for ``seed``) and
checked against a SHA-256 of all of them kept in ``meta``.
"""
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from .capture import Capture, LayerRecord
from .targets import PortSetupError

FORMAT = "dlfs-port-golden/1"
MAX_TRAINING_BYTES = 32 * 2**20
SAMPLES = 64
OPTIONS = ("data", "batch", "seed", "dtype", "labels", "input_shape", "steps", "lr",
           "numpy_optimizer")


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


def sample_index(size, seed=0):
    rng = np.random.RandomState(seed)
    return np.sort(rng.choice(size, min(size, SAMPLES), replace=False)).astype(np.int64)


# --- writing -------------------------------------------------------------------------------

def record(numpy_model, x, t, *, options, training=None, numpy_gradient="auto"):
    """The arrays of a golden file for ``numpy_model`` on ``(x, t)``.

    ``training``: ``None``, or ``{"x": x_train, "t": t_train, "steps", "batch_size",
    "lr", "seed", "optimizer"}`` to record a training run as well.
    """
    from .numpy_side import NumpySide
    side = NumpySide(numpy_model, options.get("dtype"))
    dtype = side.dtype.name
    x = np.asarray(x).astype(dtype)
    t = np.asarray(t)
    t = t.astype(np.int64) if t.ndim == 1 else t.astype(dtype)
    arrays = {"x": x, "t": t}
    for name, value in side.params.items():
        arrays[f"param/{name}"] = value.copy()
    capture, loss, grads = side.run(x, t)
    gradient = "backprop"
    if grads is None or numpy_gradient == "numerical":
        from .numerical import numerical_gradient_of
        grads = numerical_gradient_of(lambda: side.model.loss(x, t), side.params)
        for name, bound in grads.error.items():
            arrays[f"grad_error/{name}"] = np.asarray(bound, dtype=np.float64)
        gradient = "numerical"
    layers = []
    for i, rec in enumerate(capture.records):
        layers.append({"key": rec.key, "kind": rec.kind, "params": list(rec.param_names),
                       "grad_output": rec.grad_output is not None, "input": rec.input is not None})
        arrays[f"layer/{i}/output"] = rec.output
        if rec.input is not None:
            arrays[f"layer/{i}/input"] = rec.input
        if rec.grad_output is not None:
            arrays[f"layer/{i}/grad_output"] = rec.grad_output
    arrays["loss"] = np.array(loss)
    if side.has_predict:
        arrays["predict"] = side.predict(x)
    for name, g in grads.items():
        arrays[f"grad/{name}"] = np.asarray(g, dtype=dtype)
    meta = {"options": {k: options.get(k) for k in OPTIONS}, "params": list(side.params),
            "layers": layers, "gradient": gradient, "has_predict": side.has_predict,
            "model": type(numpy_model).__name__, "dtype": dtype}
    if training is not None:
        meta["training"] = _record_training(side, training, arrays, dtype)
    arrays["meta"] = np.array(json.dumps(meta))
    arrays["format"] = np.array(FORMAT)
    return arrays


def _record_training(side, training, arrays, dtype):
    from numpy_impl.random_stream import BookRandomStream

    from .training import numpy_optimizer_of
    if not side.has_gradient:
        raise PortSetupError("numpy side: recording training needs the model's gradient(x, t)")
    optimizer = numpy_optimizer_of(training.get("optimizer"), training["lr"])
    steps, batch = training["steps"], training["batch_size"]
    x_train, t_train = training["x"], training["t"]
    stream = BookRandomStream(training["seed"])
    size = sum(v.size * v.itemsize for v in side.params.values())
    full = steps * size <= MAX_TRAINING_BYTES
    names = list(side.params)
    track = {n: [] for n in names}
    index = {n: sample_index(side.params[n].size, k) for k, n in enumerate(names)}
    losses, batches = [], []
    for _ in range(steps):
        idx = stream.batch_indices(x_train.shape[0], batch)
        x = x_train[idx].astype(dtype)
        t = t_train[idx]
        t = t.astype(np.int64) if t.ndim == 1 else t.astype(dtype)
        batches.append((x, t))
        losses.append(side.loss(x, t))
        optimizer.update(side.params, side.gradient(x, t))
        for n in names:
            value = side.params[n]
            track[n].append(value.copy() if full else summary(value, index[n]))
    arrays["train/loss"] = np.array(losses)
    for n in names:
        arrays[(f"train/param/{n}" if full else f"train/summary/{n}")] = np.stack(track[n])
        if not full:
            arrays[f"train/sample_index/{n}"] = index[n]
    return {"steps": steps, "batch_size": batch, "lr": training["lr"], "seed": training["seed"],
            "optimizer": type(optimizer).__name__, "storage": "full" if full else "summary",
            "storage_text": ("the parameters after every step" if full else
                             f"per step and parameter: max |value|, sum, norm and {SAMPLES} "
                             f"sampled elements (the full parameters would take "
                             f"{steps * size / 2**20:.0f} MiB)"),
            "batches_sha256": batches_digest(batches)}


def save(arrays, path):
    """Write atomically: a damaged half-file never takes the name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)
    return path


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
            self.grads = {n: self.arrays[f"grad/{n}"] for n in self.meta["params"]}
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
    """The recorded NumPy side, with ``NumpySide``'s interface."""

    model = None
    items = ()

    def __init__(self, golden, dtype=None):
        if dtype is not None and np.dtype(dtype).name != golden.meta["dtype"]:
            raise PortSetupError(f"{golden.path} was recorded in {golden.meta['dtype']}, not {np.dtype(dtype).name}")
        self.golden = golden
        self.dtype = np.dtype(golden.meta["dtype"])
        self.params = {k: v.copy() for k, v in golden.params.items()}
        self.owners = {name: rec.key for rec in golden.records for name in rec.param_names}
        self.has_gradient = golden.meta["gradient"] == "backprop"
        self.has_predict = golden.meta["has_predict"]

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

    def loss(self, x, t):
        self._same_batch(x, t)
        return self.golden.loss

    def predict(self, x):
        self._same_batch(x, self.golden.t)
        return self.golden.arrays["predict"]

    def gradient(self, x, t):
        self._same_batch(x, t)
        return {k: v.copy() for k, v in self.golden.grads.items()}


def is_golden_path(spec):
    return isinstance(spec, (str, Path)) and str(spec).endswith(".npz")
