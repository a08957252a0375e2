"""Checkpoints of a training run, and a run that survives Ctrl-C, in NumPy.

One file format for both sides: ``torch_impl.checkpoint`` converts its
tensors at the edges and goes through this module's file layer and resumable
run (``Nets`` says what differs between the sides). The file is a NumPy
``.npz`` archive, read without pickles, holding

* ``W1``, ``b1``, ``W2``, ``b2``: the parameters, in the network's dtype;
* ``history.<key>``: each list of the history (``train_loss``, ``train_acc``,
  ``test_acc``, ``eval_iters``), and ``history_json`` for its other entries
  (``diverged``, ``diverged_at``);
* ``rng_keys``, ``rng_pos``, ``rng_has_gauss``, ``rng_cached_gaussian``: the
  batch stream's ``RandomState``, so a resumed run draws the batches the
  uninterrupted run would have drawn;
* ``iteration``: the next iteration to run;
* ``dtype``, ``format`` and ``meta_json`` (learning rate, batch size,
  gradient kind, seed, ...).

Files are written atomically: a temporary file in the same folder, flushed
and fsync'ed, then ``os.replace``'d over the old one, so a crash or a second
Ctrl-C mid-write leaves the previous checkpoint whole.
"""
import json
import os
import signal
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np

from .random_stream import BookRandomStream
from .train import _check_gradient, new_history, train
from .two_layer_net import PARAM_NAMES
from .validation import check_learning_rate, check_positive_int

FORMAT = "dlfs-ch4-checkpoint/1"
# What a resumed run must share with the run that wrote the checkpoint for its
# history to continue the same curve.
RUN_SETTINGS = ("learning_rate", "batch_size", "gradient", "seed", "eval_every")


# -- the file ---------------------------------------------------------------

def _state_arrays(params, history, stream_state, iteration, dtype, meta):
    """The archive's entries, from plain NumPy values."""
    name, keys, pos, has_gauss, cached = stream_state
    if name != "MT19937":
        raise ValueError(f"stream state is from a {name} generator; only MT19937 is supported")
    arrays = {"format": np.array(FORMAT), "dtype": np.array(dtype),
              "iteration": np.array(iteration, dtype=np.int64),
              "rng_keys": np.asarray(keys, dtype=np.uint32),
              "rng_pos": np.array(pos, dtype=np.int64),
              "rng_has_gauss": np.array(has_gauss, dtype=np.int64),
              "rng_cached_gaussian": np.array(cached, dtype=np.float64)}
    for key in PARAM_NAMES:
        arrays[key] = params[key]
    scalars = {}
    for key, value in history.items():
        if isinstance(value, list):
            # float64 keeps every Python float bit for bit; ints stay int64
            ints = value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            arrays[f"history.{key}"] = np.array(value, dtype=np.int64 if ints else np.float64)
        else:
            scalars[key] = value
    try:
        arrays["history_json"] = np.array(json.dumps(scalars))
        arrays["meta_json"] = np.array(json.dumps(meta))
    except TypeError as exc:
        raise TypeError(f"checkpoint metadata must be JSON-serialisable (numbers, strings, "
                        f"None): {exc}") from exc
    return arrays


def _write_atomically(path, arrays):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # also Ctrl-C: never leave a half-written file behind
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _check_path(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


def load_checkpoint(path):
    """Read a checkpoint written by either side.

    Returns a dict: ``params`` (NumPy arrays), ``history``, ``stream_state``
    (for ``BookRandomStream.set_state``), ``iteration`` (the next one to run),
    ``dtype`` (a name, ``"float64"``) and ``meta``.
    """
    path = _check_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            files = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        # not a zip archive, one cut short, or one holding pickles
        raise ValueError(f"{path} is not a checkpoint (not a readable .npz archive: "
                         f"{exc})") from exc
    missing = [key for key in ("format", "dtype", "iteration", "rng_keys", "rng_pos",
                               "rng_has_gauss", "rng_cached_gaussian", "history_json",
                               "meta_json", *PARAM_NAMES) if key not in files]
    if missing:
        raise ValueError(f"{path} is not a checkpoint: it lacks {', '.join(missing)}")
    if str(files["format"]) != FORMAT:
        raise ValueError(f"{path} has format {str(files['format'])!r}; this version "
                         f"reads {FORMAT!r}")
    dtype = str(files["dtype"])
    params = {key: files[key] for key in PARAM_NAMES}
    for key, value in params.items():
        if value.dtype.name != dtype:
            raise ValueError(f"{path}: {key} is {value.dtype.name} but the checkpoint says {dtype}")
    history = {}
    for key, value in files.items():
        if key.startswith("history."):
            history[key[len("history."):]] = value.tolist()  # Python floats and ints again
    history.update(json.loads(str(files["history_json"])))
    stream_state = ("MT19937", files["rng_keys"], int(files["rng_pos"]),
                    int(files["rng_has_gauss"]), float(files["rng_cached_gaussian"]))
    return {"params": params, "history": history, "stream_state": stream_state,
            "iteration": int(files["iteration"]), "dtype": dtype,
            "meta": json.loads(str(files["meta_json"]))}


# -- a resumable run --------------------------------------------------------

class _LastCompleted:
    """The run as it stood after its last completed iteration.

    A ``KeyboardInterrupt`` can arrive in the middle of an iteration (a second
    Ctrl-C, or one raised by a callback), when the batch is drawn but the
    update not yet made; the checkpoint then comes from this copy, which is
    always consistent. The history only grows, so its lengths suffice.
    """

    def __init__(self, nets, net, history, stream, iteration):
        self.nets = nets
        self.take(net, history, stream, iteration)

    def take(self, net, history, stream, iteration):
        self.iteration = iteration
        self.params = self.nets.snapshot(net)
        self.lengths = {key: len(v) for key, v in history.items() if isinstance(v, list)}
        self.scalars = {key: v for key, v in history.items() if not isinstance(v, list)}
        self.stream_state = stream.get_state()

    def save(self, path, live_history, dtype, meta):
        history = {key: live_history[key][:n] for key, n in self.lengths.items()}
        history.update(self.scalars)
        _write_atomically(path, _state_arrays(self.nets.snapshot_to_numpy(self.params), history,
                                              self.stream_state, self.iteration,
                                              self.nets.dtype_name(dtype), meta))


class _CtrlC:
    """While active, the first Ctrl-C asks the run to stop after the current
    iteration (a second one stops at once). Only the main thread receives
    signals, so elsewhere this does nothing; a SIGINT that the process
    ignores stays ignored."""

    def __init__(self):
        self.requested = False
        self._installed = False

    def _handler(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        sys.stderr.write("\ninterrupt: saving a checkpoint after this iteration "
                         "(Ctrl-C again to stop at once)\n")

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            self._old = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc):
        if self._installed:
            # None: the old handler was not set from Python; Python's own is the default
            signal.signal(signal.SIGINT, signal.default_int_handler if self._old is None
                          else self._old)
        return False


def _settings(learning_rate, batch_size, gradient, seed, eval_every):
    """The run's settings, checked, as plain JSON values."""
    BookRandomStream(seed)  # checks the seed
    _check_gradient(gradient)
    return {"learning_rate": check_learning_rate(learning_rate),
            "batch_size": check_positive_int(batch_size, "batch_size"),
            "gradient": gradient, "seed": None if seed is None else int(seed),
            "eval_every": None if eval_every is None
            else check_positive_int(eval_every, "eval_every")}


def _restore(nets, net, checkpoint, settings, path):
    """Put the checkpoint's parameters into ``net``; return its stream, history, iteration."""
    meta = checkpoint["meta"]
    for key in RUN_SETTINGS:
        if key in meta and meta[key] != settings[key]:
            raise ValueError(
                f"{key}={settings[key]!r} differs from the checkpoint's {meta[key]!r} ({path}); "
                f"resume with the settings of the interrupted run")
    dtype = nets.dtype_name(net.dtype)
    if checkpoint["dtype"] != dtype:
        raise ValueError(f"net has dtype {dtype} but the checkpoint {path} holds "
                         f"{checkpoint['dtype']} parameters")
    shapes = nets.shapes(net)
    for key in PARAM_NAMES:
        if checkpoint["params"][key].shape != shapes[key]:
            raise ValueError(f"net.params[{key!r}] has shape {shapes[key]} but the "
                             f"checkpoint {path} holds {checkpoint['params'][key].shape}")
    nets.load(net, checkpoint["params"])
    stream = BookRandomStream(settings["seed"])
    stream.set_state(checkpoint["stream_state"])
    history = new_history()
    history.update(checkpoint["history"])
    return stream, history, checkpoint["iteration"]


# -- one side's networks ----------------------------------------------------

class Nets:
    """One side's networks, as saving and resuming see them: the NumPy side's.

    ``torch_impl.checkpoint`` subclasses this for tensors, devices and
    ``TwoLayerNetModule``, and so saves and resumes through the same code
    and the same file.
    """

    train = staticmethod(train)

    @staticmethod
    def dtype_name(dtype):
        return np.dtype(dtype).name

    @staticmethod
    def numpy_params(net):
        """``net``'s parameters as NumPy arrays, refused if not finite (a
        checkpoint is for resuming, and a diverged run cannot be resumed)."""
        params = {}
        for key in PARAM_NAMES:
            value = net.params[key]
            if not isinstance(value, np.ndarray):
                raise TypeError(f"net.params[{key!r}] is a {type(value).__name__}; numpy_impl "
                                f"saves NumPy networks (use torch_impl.checkpoint for tensors)")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"net.params[{key!r}] contains NaN or infinity; a diverged run "
                                 f"cannot be checkpointed for resuming")
            params[key] = value
        return params

    @staticmethod
    def snapshot(net):
        """A copy of the parameters that later updates leave alone."""
        return {key: net.params[key].copy() for key in PARAM_NAMES}

    @staticmethod
    def snapshot_to_numpy(params):
        return params

    @staticmethod
    def shapes(net):
        return {key: tuple(net.params[key].shape) for key in PARAM_NAMES}

    @staticmethod
    def load(net, params):
        """Put a checkpoint's NumPy ``params`` into ``net``."""
        for key in PARAM_NAMES:
            net.params[key] = params[key].copy()

    @classmethod
    def save_checkpoint(cls, path, net, history, stream, iteration, **meta):
        """Write ``net``'s parameters, ``history``, ``stream``'s position and the
        next ``iteration`` to ``path`` (atomically); ``meta`` is stored as JSON.

        Returns the path. Non-finite parameters are refused: a checkpoint is for
        resuming, and a diverged run cannot be resumed.
        """
        path = _check_path(path)
        if not isinstance(history, dict):
            raise TypeError(f"history must be the dict train() returns, "
                            f"got {type(history).__name__}")
        if (isinstance(iteration, bool) or not isinstance(iteration, (int, np.integer))
                or iteration < 0):
            raise ValueError(f"iteration must be a non-negative integer, got {iteration!r}")
        _write_atomically(path, _state_arrays(cls.numpy_params(net), history, stream.get_state(),
                                              int(iteration), cls.dtype_name(net.dtype), meta))
        return path

    @classmethod
    def train_resumable(cls, net, x_train, t_train, x_test, t_test, iters_num=10000,
                        batch_size=100, learning_rate=0.1, *, seed=None, gradient="backprop",
                        eval_every=None, checkpoint_path, checkpoint_every=None, resume=False,
                        callback=None, progress=None):
        """``train`` that saves a checkpoint every ``checkpoint_every`` iterations,
        at the end, and on Ctrl-C; ``resume=True`` continues from ``checkpoint_path``.

        Built on ``train``'s hooks. Ctrl-C (SIGINT, in the main thread) becomes a
        stop at the end of the current iteration: that iteration's checkpoint is
        saved and ``KeyboardInterrupt`` raised again. A ``KeyboardInterrupt``
        from anywhere else saves the last completed iteration. A resumed run's
        history is bit for bit the uninterrupted run's. ``iters_num`` may grow
        between runs; the other settings must match the checkpoint's. A diverged
        run saves nothing more, so the file keeps the last finite state.
        """
        path = _check_path(checkpoint_path)
        if checkpoint_every is not None:
            checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
        iters_num = check_positive_int(iters_num, "iters_num")
        settings = _settings(learning_rate, batch_size, gradient, seed, eval_every)
        meta = dict(settings, iters_num=iters_num)
        if resume:
            stream, history, start_iter = _restore(cls, net, load_checkpoint(path), settings,
                                                   path)
        else:
            input_size, hidden_size, output_size = net.sizes
            stream = BookRandomStream.for_training(seed, input_size, hidden_size, output_size)
            history, start_iter = new_history(), 0

        last = _LastCompleted(cls, net, history, stream, start_iter)
        saved_at = start_iter if resume else None

        def save():
            nonlocal saved_at
            if saved_at != last.iteration:
                last.save(path, history, net.dtype, meta)
                saved_at = last.iteration

        def at_end_of(i):
            # train calls both hooks after iteration i is complete, in either order
            if last.iteration != i + 1:
                last.take(net, history, stream, i + 1)

        def on_progress(i):
            at_end_of(i)
            if progress is not None:
                progress(i)

        def on_iteration(i, hist, strm):
            at_end_of(i)
            if callback is not None:
                callback(i, hist, strm)
            if checkpoint_every is not None and (i + 1) % checkpoint_every == 0:
                save()
            if ctrl_c.requested:
                raise KeyboardInterrupt(f"interrupted after iteration {i}; "
                                        f"checkpoint in {path}")

        with _CtrlC() as ctrl_c:
            try:
                cls.train(net, x_train, t_train, x_test, t_test, iters_num, batch_size,
                          learning_rate, seed=seed, gradient=gradient, eval_every=eval_every,
                          stream=stream, start_iter=start_iter, history=history,
                          callback=on_iteration, progress=on_progress)
            except KeyboardInterrupt:
                save()
                raise
            if not history["diverged"]:
                save()
            if ctrl_c.requested:  # Ctrl-C after the last hook: saved above, now stop
                raise KeyboardInterrupt(f"interrupted after the last iteration; "
                                        f"checkpoint in {path}")
        return history


save_checkpoint = Nets.save_checkpoint
train_resumable = Nets.train_resumable
