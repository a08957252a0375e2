"""Timings of the project against the book's own code, NumPy against torch, float64 against float32.

Everything is timed in one process on the same data, so the ratios compare
like with like; the machine is described next to the numbers. Speed is
measured here, never in tests.
"""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import book_reference as book
from ..mnist import load_mnist
from ..parity import to_numpy
from ..timing import (PROJECT, interleaved, machine_info, process_env, save,  # noqa: F401
                      timed_process, to_markdown)


def _sync(device):
    if device and str(device).startswith("cuda"):
        import torch
        torch.cuda.synchronize()


def timed(fn, repeats=5, warmup=1, device=None):
    """Median wall time of ``fn()`` over ``repeats`` runs, and its last result."""
    result = None
    for _ in range(warmup):
        result = fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def _max_abs(a, b):
    return max(float(np.max(np.abs(to_numpy(a[k]) - to_numpy(b[k])))) for k in a)


def bench_numerical_gradient(data=None, repeats=5, loop_repeats=1, device=None, seed=0,
                             batch_size=100):
    """One numerical gradient of 784-50-10 on a batch: the book's loop vs the fast paths."""
    import torch

    import numpy_impl
    import torch_impl

    (x_train, t_train), _ = data or load_mnist()
    x = x_train[:batch_size].astype(np.float64)
    t = t_train[:batch_size].astype(np.int64)
    t_onehot = np.eye(10)[t]
    rows = []

    ref = book.BookTwoLayerNet(784, 50, 10, rng=np.random.RandomState(seed))
    loop_s, _, loop_grads = timed(lambda: ref.numerical_gradient(x, t_onehot), loop_repeats, 0)
    rows.append({"what": "book nditer loop (NumPy)", "seconds": loop_s})

    np_nets = {}
    for name, dtype in (("float64", np.float64), ("float32", np.float32)):
        net = np_nets[name] = numpy_impl.TwoLayerNet(784, 50, 10, seed=seed, dtype=dtype)
        xd = x.astype(dtype)  # cast outside the timing, as the torch rows are
        s, _, g = timed(lambda: net.numerical_gradient(xd, t), repeats)
        rows.append({"what": f"fast, NumPy {name}", "seconds": s,
                     "max_abs_vs_loop": _max_abs(g, loop_grads) if name == "float64" else None})
    devices = ["cpu"] + ([device] if device and device != "cpu" else [])
    for dev in devices:
        for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
            net = torch_impl.TwoLayerNet(784, 50, 10, seed=seed, dtype=dtype, device=dev)
            xt = torch.from_numpy(x).to(dev, dtype)
            tt = torch.from_numpy(t).to(dev)
            s, _, g = timed(lambda: net.numerical_gradient(xt, tt), repeats, device=dev)
            rows.append({"what": f"fast, torch {dev} {name}", "seconds": s,
                         "max_abs_vs_loop": _max_abs(g, loop_grads) if name == "float64" else None})
    s, _, _ = timed(lambda: np_nets["float64"].gradient(x, t), 50)
    rows.append({"what": "backprop, NumPy float64 (for scale)", "seconds": s})
    for row in rows:
        row["speedup_vs_loop"] = loop_s / row["seconds"]
    return {"benchmark": "numerical_gradient", "batch_size": batch_size, "rows": rows}


def bench_training(data=None, iters=10000, device=None, seed=0, include_book=True, rounds=1):
    """The book's backprop run (batch 100, lr 0.1, accuracy every epoch), end to end.

    With ``rounds`` > 1 every run is repeated that many times, interleaved
    (book, NumPy, torch, book, ...) so a noisy stretch of the machine hits
    them alike; seconds are medians and each row lists its rounds.
    """
    import torch

    import numpy_impl
    import torch_impl

    (x_train, t_train), (x_test, t_test) = data or load_mnist()
    runs = []  # (what, run() -> test accuracy, device)
    if include_book:
        onehot_train, onehot_test = np.eye(10)[t_train], np.eye(10)[t_test]
        runs.append(("book loop (float32 x, float64 W, one-hot)", lambda: book.book_train(
            x_train, onehot_train, x_test, onehot_test, iters, seed)["test_acc"][-1], None))

    def numpy_run(dtype):
        net = numpy_impl.TwoLayerNet(784, 50, 10, seed=seed, dtype=dtype)
        return numpy_impl.train(net, x_train, t_train, x_test, t_test, iters, seed=seed)["test_acc"][-1]

    for name, dtype in (("float64", np.float64), ("float32", np.float32)):
        runs.append((f"numpy_impl {name}", lambda dtype=dtype: numpy_run(dtype), None))

    xs = [torch.from_numpy(a) for a in (x_train, t_train.astype(np.int64), x_test, t_test.astype(np.int64))]

    def torch_run(cls, dtype, dev):
        net = cls(784, 50, 10, seed=seed, dtype=dtype, device=dev)
        return torch_impl.train(net, *[a.to(dev) for a in xs], iters, seed=seed)["test_acc"][-1]

    for dev in ["cpu"] + ([device] if device and device != "cpu" else []):
        for impl, cls in (("literal", torch_impl.TwoLayerNet), ("module", torch_impl.TwoLayerNetModule)):
            for name, dtype in (("float64", torch.float64), ("float32", torch.float32)):
                runs.append((f"torch_impl {impl} {dev} {name}",
                             lambda cls=cls, dtype=dtype, dev=dev: torch_run(cls, dtype, dev), dev))

    times = {what: [] for what, _, _ in runs}
    accuracy = {}
    for _ in range(rounds):
        for what, run, dev in runs:
            start = time.perf_counter()
            accuracy[what] = run()
            _sync(dev)
            times[what].append(time.perf_counter() - start)
    rows = [{"what": what, "seconds": statistics.median(times[what]), "test_acc": accuracy[what]}
            for what, _, _ in runs]
    if rounds > 1:
        for row in rows:
            row["rounds"] = times[row["what"]]
    if include_book:
        for row in rows:
            row["fraction_of_book"] = row["seconds"] / rows[0]["seconds"]
    return {"benchmark": "training", "iters": iters, "rounds": rounds, "rows": rows}


def bench_numerical_training(data=None, iters=10000, side="numpy", seed=0, device=None):
    """The book's commented-out line: training with numerical gradients, end to end."""
    (x_train, t_train), (x_test, t_test) = data or load_mnist()
    if side == "numpy":
        import numpy_impl as impl
        net = impl.TwoLayerNet(784, 50, 10, seed=seed)
        args = (x_train, t_train, x_test, t_test)
    else:
        import torch

        import torch_impl as impl
        net = impl.TwoLayerNet(784, 50, 10, seed=seed, device=device)
        args = [torch.from_numpy(a).to(device or "cpu")
                for a in (x_train, t_train.astype(np.int64), x_test, t_test.astype(np.int64))]
    start = time.perf_counter()
    progress = _progress_bar(iters, f"{side} numerical-gradient training")
    hist = impl.train(net, *args, iters, seed=seed, gradient="numerical", progress=progress)
    progress.close()
    return {"benchmark": "numerical_training", "iters": iters, "side": side, "history": hist,
            "rows": [{"what": f"{side} numerical-gradient training", "device": device or "cpu",
                      "seconds": time.perf_counter() - start, "test_acc": hist["test_acc"][-1],
                      "train_acc": hist["train_acc"][-1]}]}


# -- whole processes, as a user runs them --------------------------------------
# The book's rows run compare/ch4/book_reference.py as a file, so they import
# what the book's code imports and nothing of this project.


SCRIPTS = {
    "book": "the book's ch04/train_neuralnet.py (pickle loader, matplotlib plot)",
    "book-no-plot": "the book's script without matplotlib and its plot",
    "numpy": "python -m numpy_impl.train_neuralnet (warm .npy cache)",
    "torch": "python -m torch_impl.train_neuralnet (warm .npy cache)",
}
LOADERS = {
    "book": "the book's load_mnist (its pickle, made once)",
    "first": "compare.load_mnist, first load (torchvision; writes the .npy cache)",
    "later": "compare.load_mnist, later load (the .npy cache)",
}
# each loads MNIST as the training scripts do (normalized, one-hot), then exits
_LOAD_OURS = ("import sys; from compare.mnist import load_mnist; "
              "load_mnist(sys.argv[1], one_hot_label=True, download=False)")
_LOAD_BOOK = ("import sys; sys.path.insert(0, sys.argv[2]); "
              "import gzip, urllib.request; "  # dataset/mnist.py's imports
              "from book_reference import book_load_mnist; "
              "book_load_mnist(sys.argv[1], normalize=True, one_hot_label=True)")


def _script_command(script, iters, seed, pickle_path):
    common = ["--iters", str(iters), "--seed", str(seed)]
    if script.startswith("book"):
        extra = ["--no-plot"] if script == "book-no-plot" else []
        return [sys.executable, book.__file__, "--pickle", str(pickle_path), *common, *extra]
    return [sys.executable, "-m", f"{script}_impl.train_neuralnet", *common]


def bench_script(iters=10000, rounds=3, seed=0, root=None, scripts=("book", "numpy"),
                 work_dir=None):
    """Whole training scripts as processes, wall time from start to exit.

    Every cache is made before the timing, as a user's second run finds it:
    this loader's ``.npy`` arrays, and the book's ``mnist.pkl`` (built once
    from the same raw files, in ``work_dir``, a temporary folder by default).
    Each script then runs once with ``--iters 1`` (so the files and libraries
    are in the OS cache for all alike), and ``rounds`` times interleaved
    (book, numpy, book, ...); seconds are medians. ``scripts`` are keys of
    ``SCRIPTS``; the fraction is over the first one's median.
    """
    from ..mnist import default_root

    root = Path(root) if root is not None else default_root()
    load_mnist(root)  # this loader's cache, as its first run leaves it
    env = process_env(root)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        pickle_path = Path(tmp) / "mnist.pkl"
        book.book_init_mnist(root / "MNIST" / "raw", pickle_path)
        for script in scripts:
            timed_process(_script_command(script, 1, seed, pickle_path), env)
        runs = {script: (lambda script=script: timed_process(
            _script_command(script, iters, seed, pickle_path), env)) for script in scripts}
        rows = interleaved(runs, rounds, SCRIPTS)
    return {"benchmark": "script", "iters": iters, "rounds": rounds, "seed": seed,
            "commands": {s: " ".join(["python", *_script_command(s, iters, seed, "mnist.pkl")[1:]])
                         .replace(str(PROJECT) + os.sep, "") for s in scripts},
            "rows": rows}


def bench_loader(rounds=5, root=None, work_dir=None):
    """Loading MNIST as the training scripts do, each load a whole process.

    Every round gives this loader a new data folder (links to the raw files of
    ``root``), so its first load reads through torchvision and writes the
    cache and its second reads the cache; the book's loader reads its pickle,
    made once before the rounds. The fraction is over the book's median.
    """
    from ..mnist import RAW_FILES, default_root

    root = Path(root) if root is not None else default_root()
    raw = (root / "MNIST" / "raw").resolve()
    env = process_env(root)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        pickle_path = Path(tmp) / "mnist.pkl"
        book.book_init_mnist(raw, pickle_path)
        book_cmd = [sys.executable, "-c", _LOAD_BOOK, str(pickle_path),
                    str(Path(book.__file__).parent)]
        timed_process(book_cmd, env)  # the OS cache, warm for all alike
        fresh = []

        def first():
            folder = Path(tempfile.mkdtemp(dir=tmp)) / "MNIST" / "raw"
            folder.mkdir(parents=True)
            for name in RAW_FILES:
                os.symlink(raw / name, folder / name)
            fresh.append(folder.parents[1])
            return timed_process([sys.executable, "-c", _LOAD_OURS, str(fresh[-1])], env)

        runs = {"book": lambda: timed_process(book_cmd, env), "first": first,
                "later": lambda: timed_process([sys.executable, "-c", _LOAD_OURS,
                                                 str(fresh[-1])], env)}
        rows = interleaved(runs, rounds, LOADERS)
    for row in rows:
        del row["last_line"]
    return {"benchmark": "loader", "rounds": rounds, "rows": rows}


class _progress_bar:
    def __init__(self, total, desc):
        from tqdm import tqdm
        self.bar = tqdm(total=total, desc=desc, mininterval=5)

    def __call__(self, i):
        self.bar.update(1)

    def close(self):
        self.bar.close()
