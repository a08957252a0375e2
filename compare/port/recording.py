"""Writing golden files: the NumPy side run once, and what a check needs stored.

``python -m compare record NUMPY --out ref.npz``; the format (keys, how a long
training is summarised) is described in ``compare.port.reference.golden``,
which reads the files back.
"""
import json
from pathlib import Path

import numpy as np

from numpy_impl.random_stream import BookRandomStream

from .numerical import numerical_gradient_of
from .data import as_input
from .draws import seeded
from .optimizers import numpy_optimizer_of, optimizer_name
from .reference.golden import FORMAT, batches_digest, summary
from .reference.live import NumpySide
from .targets import PortSetupError, call_side

MAX_TRAINING_BYTES = 32 * 2**20
SAMPLES = 64
OPTIONS = ("data", "batch", "seed", "dtype", "labels", "input_shape", "steps", "lr",
           "numpy_optimizer", "time_size", "max_grad_norm")


def sample_index(size, seed=0):
    rng = np.random.RandomState(seed)
    return np.sort(rng.choice(size, min(size, SAMPLES), replace=False)).astype(np.int64)


def record(numpy_model, x, t, *, options, training=None, numpy_gradient="auto"):
    """The arrays of a golden file for ``numpy_model`` on ``(x, t)``.

    ``training``: ``None``, or ``{"x": x_train, "t": t_train, "steps", "batch_size",
    "lr", "seed", "optimizer"}`` to record a training run as well.
    """
    side = NumpySide(numpy_model, options.get("dtype"))
    dtype = side.dtype.name
    x = as_input(np.asarray(x), dtype)
    t = _targets(t, dtype)
    arrays = {"x": x, "t": t}
    for name, value in side.params.items():
        arrays[f"param/{name}"] = value.copy()
    with seeded(options.get("seed") or 0):  # the draws a live check makes with this seed
        capture, loss, grads = side.run(x, t)
    tape = getattr(side, "tape", None)
    draws = None
    if tape:  # the dropout masks of the pass, which answer the port's draws on replay
        draws, drawn = tape.stored()
        arrays.update(drawn)
    gradient = "backprop"
    if grads is None or numpy_gradient == "numerical":
        grads = numerical_gradient_of(side.loss_function(x, t), side.params)
        for name, bound in grads.error.items():
            arrays[f"grad_error/{name}"] = np.asarray(bound, dtype=np.float64)
        # where the loss has no derivative a right claim is anywhere between the one-sided
        # slopes: they are kept, so a replay judges those elements as a live check does
        for name, kinked in grads.nondifferentiable.items():
            if np.any(kinked):
                arrays[f"grad_left/{name}"] = np.asarray(grads.left[name], dtype=np.float64)
                arrays[f"grad_right/{name}"] = np.asarray(grads.right[name], dtype=np.float64)
                arrays[f"grad_slope_error/{name}"] = np.asarray(grads.slope_error[name], dtype=np.float64)
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
            # cs231n's nets with modes predict in test mode only: their training scores
            # are the last layer's record, as in a live check
            "predicts_train": getattr(side, "predicts_train", True),
            "model": type(numpy_model).__name__, "dtype": dtype}
    if draws is not None:
        meta["draws"] = draws
    if training is not None:
        meta["training"] = _record_training(side, training, arrays, dtype)
    arrays["meta"] = np.array(json.dumps(meta))
    arrays["format"] = np.array(FORMAT)
    return arrays


def _targets(t, dtype):
    """Class indices (whole numbers, one per row) as int64, as a check hands them; any other
    targets (one-hot rows, real values) in the run's dtype."""
    t = np.asarray(t)
    if np.issubdtype(t.dtype, np.integer):  # class indices, or token ids (N, T)
        return t.astype(np.int64)
    whole = t.ndim == 1 and np.all(t == np.round(t))
    return t.astype(np.int64) if whole else t.astype(dtype)


def _record_training(side, training, arrays, dtype):
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
        t = _targets(t_train[idx], dtype)
        batches.append((x, t))
        losses.append(side.loss(x, t))
        call_side("numpy optimizer", "update", optimizer.update, side.params, side.gradient(x, t))
        for n in names:
            value = side.params[n]
            track[n].append(value.copy() if full else summary(value, index[n]))
    arrays["train/loss"] = np.array(losses)
    for n in names:
        arrays[(f"train/param/{n}" if full else f"train/summary/{n}")] = np.stack(track[n])
        if not full:
            arrays[f"train/sample_index/{n}"] = index[n]
    return {"steps": steps, "batch_size": batch, "lr": training["lr"], "seed": training["seed"],
            "optimizer": optimizer_name(optimizer), "storage": "full" if full else "summary",
            "storage_text": ("the parameters after every step" if full else
                             f"per step and parameter: max |value|, sum, norm and {SAMPLES} "
                             f"sampled elements (the full parameters would take "
                             f"{steps * size / 2**20:.0f} MiB)"),
            "batches_sha256": batches_digest(batches)}


def record_windows(numpy_model, corpus, *, options, steps, batch_size, time_size, lr,
                   max_grad_norm=None, numpy_optimizer=None, seed=0):
    """The arrays of a golden file for a training over ``steps`` windows of ``corpus``
    (``window_training.py``): the first window's check as ``record`` stores it, then each
    window, the draws made on it, the loss, the parameters after the update and the state
    carried into the next window."""
    import copy

    from .adam_eps import numpy_betas
    from .corpus import windows
    from .draws import DrawTape
    from .reference import reference_side
    from .reference.list_door import ListDoor
    from .window_training import NumpyWindows, optimizer_interface

    cut = windows(corpus, batch_size, time_size, steps)
    side = reference_side(numpy_model, options.get("dtype"))
    if not isinstance(side.model, ListDoor):
        raise PortSetupError("numpy side: training over a corpus's windows takes the book's "
                             "list-interface model (params and grads lists, forward(xs, ts), "
                             "backward())")
    # the door's copy keeps a tied transpose a view; recording the first window moves the state
    door = copy.deepcopy(side.model)
    arrays = record(numpy_model, *cut[0], options=options)
    meta = json.loads(str(arrays["meta"]))
    optimizer = numpy_optimizer_of(numpy_optimizer, lr) if numpy_optimizer is not None else None
    if optimizer is not None:
        optimizer_interface(optimizer, door)
    run = NumpyWindows(door, lr, max_grad_norm, optimizer=optimizer)
    losses, track, states, draws = [], {n: [] for n in door.params}, [], []
    with seeded(seed):  # the draws a live check makes with this seed
        for k, (x, t) in enumerate(cut):
            tape = DrawTape()
            loss, values, state = run.step(x, t, tape)
            losses.append(loss)
            for n, v in values.items():
                track[n].append(v)
            states.append(state)
            for i, (_, a) in enumerate(tape.numpy):
                arrays[f"train/draw/{k}/{i}"] = np.asarray(a)
            for i, m in enumerate(tape.masks):
                arrays[f"train/mask/{k}/{i}"] = np.asarray(m)
            draws.append({"numpy": [name for name, _ in tape.numpy],
                          "keeps": [None if p is None else float(p) for p in tape.keeps]})
    if list(track) != meta["params"]:
        raise PortSetupError(f"numpy side: its parameters train as {list(track)}, and were "
                             f"recorded as {meta['params']}")
    arrays["train/window/x"] = np.stack([x for x, _ in cut])
    arrays["train/window/t"] = np.stack([t for _, t in cut])
    arrays["train/loss"] = np.array(losses)
    for n, values in track.items():
        arrays[f"train/param/{n}"] = np.stack(values)
    names = [name for name, _ in states[0]]
    for i in range(len(names)):
        arrays[f"train/state/{i}"] = np.stack([state[i][1] for state in states])
    betas = numpy_betas(optimizer, run.interface) if optimizer is not None else None
    meta["training"] = {
        "windows": True, "steps": steps, "batch_size": batch_size, "time_size": time_size,
        "lr": lr, "max_grad_norm": max_grad_norm, "seed": seed,
        "optimizer": optimizer_name(optimizer) if optimizer is not None else "SGD",
        "storage": "full", "storage_text": "every window, its draws, and the parameters and "
                                           "state after each",
        "state_names": names, "draws": draws, "book_adam": list(betas) if betas else None}
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def save(arrays, path):
    """Write atomically: a damaged half-file never takes the name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    tmp.replace(path)
    return path
