"""Train both sides from the same start on the same batches; compare the curves step by step.

``numpy_impl.train`` and ``torch_impl.train`` (the literal ``TwoLayerNet``
or the idiomatic ``TwoLayerNetModule``) start from the book's initial
weights for one seed and draw the same batch indices from the same stream,
so in exact arithmetic their loss curves would be identical. In floating
point they differ by round-off, which training carries forward from step
to step; the comparison reports how far it got.

Tolerances. Float64: every one of the losses within ``1e-9`` relative and
the accuracies identical. Each step adds round-off near ``eps = 2.2e-16``
relative, and the two sides round so nearly alike that after the book's
10000 steps the curves are at most 1.5e-15 apart (measured, seed 0), so
1e-9 leaves six orders of magnitude for other seeds and machines while any
real difference (a wrong learning rate, one skipped or repeated batch, a
missing update) leaves it at once: a port that never updates ``b1`` is out
of tolerance at iteration 0 (tests/test_broken_ports.py).
Float32: ``eps`` is 1.2e-7 and the 10000 steps leave the curves 8.6e-7
apart (measured, seed 0, about 7 eps), so the bound is 1e-4, a hundredfold
margin. An accuracy there may differ by an image whose two largest outputs
are within round-off of each other (none did in the measured run), so
accuracies must agree within 1e-3 (60 of 60000 images).

The module trains on ``F.cross_entropy`` (no ``1e-7``: the same gradient as
the book's backprop), so its own recorded loss differs from the book's by
the SPEC's ``1e-7 / y``. For a like-for-like curve the comparison records,
after each update, the book's loss of the module on the same batch, and
reports the raw difference separately as that gap.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from numpy_impl.validation import (check_callable, check_learning_rate, check_nonnegative,
                                   check_positive_int, check_seed)

from ..parity import dtype_name

IMPLS = ("literal", "module")
LOSS_RTOL = {"float64": 1e-9, "float32": 1e-4}
ACC_ATOL = {"float64": 0.0, "float32": 1e-3}


class _RecordingStream:
    """Remembers the last batch it handed out, so a callback can see that batch."""

    def __init__(self, stream):
        self.stream = stream
        self.last = None

    def batch_indices(self, train_size, batch_size):
        self.last = self.stream.batch_indices(train_size, batch_size)
        return self.last

    def __getattr__(self, name):  # get_state, set_state, seed, ...
        return getattr(self.stream, name)


def check_data(data):
    """``load_mnist()``'s shape of result: ``((x_train, t_train), (x_test, t_test))``.

    The arrays themselves are checked by ``train``, before its first iteration.
    """
    if not (isinstance(data, (tuple, list)) and len(data) == 2
            and all(isinstance(part, (tuple, list)) and len(part) == 2 for part in data)):
        raise TypeError(f"data must be ((x_train, t_train), (x_test, t_test)) as load_mnist "
                        f"returns it, got {type(data).__name__}")
    return data


def check_run(*, seed, iters, batch_size, lr, dtype, eval_every, impl=None, device=None):
    """Every setting of a training run, checked before any side starts."""
    check_seed(seed)
    check_positive_int(iters, "iters")
    check_positive_int(batch_size, "batch_size")
    check_learning_rate(lr, "lr")
    dtype_name(dtype)
    if eval_every is not None:
        check_positive_int(eval_every, "eval_every")
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"impl must be 'literal' or 'module', got {impl!r}")
    if device is not None:
        from torch_impl.validation import check_device
        check_device(device)


def _bar(total, desc, enabled):
    if not enabled:
        return None
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="it", leave=False, dynamic_ncols=True)


def _ticker(bar):
    return None if bar is None else (lambda i: bar.update(1))


def train_numpy(data, *, seed=0, iters=10000, batch_size=100, lr=0.1, dtype="float64",
                eval_every=None, callback=None, progress=True, hidden_size=50):
    """The book's training on the NumPy side; returns ``(history, seconds)``."""
    import numpy_impl

    (x_train, t_train), (x_test, t_test) = data
    net = numpy_impl.TwoLayerNet(x_train.shape[1], hidden_size, 10, seed=seed, dtype=dtype_name(dtype))
    bar = _bar(iters, "numpy", progress)
    start = time.perf_counter()
    try:
        history = numpy_impl.train(net, x_train, t_train, x_test, t_test, iters_num=iters,
                                   batch_size=batch_size, learning_rate=lr, seed=seed,
                                   eval_every=eval_every, callback=callback, progress=_ticker(bar))
    finally:
        if bar is not None:
            bar.close()
    return history, time.perf_counter() - start


def train_torch(data, *, seed=0, iters=10000, batch_size=100, lr=0.1, dtype="float64",
                impl="literal", device="cpu", eval_every=None, callback=None, progress=True,
                hidden_size=50, net_class=None):
    """The book's training on the torch side (``impl`` "literal" or "module").

    Returns ``(history, seconds)``. For the module the history also holds
    ``book_loss``: the book's loss (with the 1e-7) of the module on each
    batch after its update, the quantity the literal side records.
    """
    import torch

    import torch_impl
    from numpy_impl.random_stream import BookRandomStream

    check_run(seed=seed, iters=iters, batch_size=batch_size, lr=lr, dtype=dtype,
              eval_every=eval_every, impl=impl, device=device)
    if callback is not None:
        check_callable(callback, "callback")
    name = dtype_name(dtype)
    tdtype = {"float64": torch.float64, "float32": torch.float32}[name]
    (x_train, t_train), (x_test, t_test) = data
    # converted once here; train() then finds them in the net's dtype and device
    x_train, x_test = (torch.from_numpy(np.asarray(v)).to(device=device, dtype=tdtype)
                       for v in (x_train, x_test))
    t_train, t_test = (torch.from_numpy(np.asarray(v)).to(device) for v in (t_train, t_test))
    cls = net_class or (torch_impl.TwoLayerNet if impl == "literal" else torch_impl.TwoLayerNetModule)
    input_size, output_size = x_train.shape[1], 10
    net = cls(input_size, hidden_size, output_size, seed=seed, dtype=tdtype, device=device)
    stream = _RecordingStream(BookRandomStream.for_training(seed, input_size, hidden_size, output_size))
    book_loss = []

    def on_iteration(i, history, _stream):
        if impl == "module":
            idx = torch.from_numpy(stream.last).to(x_train.device)
            y = torch_impl.softmax(net(x_train[idx]))
            book_loss.append(float(torch_impl.cross_entropy_error(y, t_train[idx])))
        if callback is not None:
            callback(i, history, _stream)

    bar = _bar(iters, f"torch {impl}", progress)
    start = time.perf_counter()
    try:
        history = torch_impl.train(net, x_train, t_train, x_test, t_test, iters_num=iters,
                                   batch_size=batch_size, learning_rate=lr, seed=seed,
                                   eval_every=eval_every, stream=stream, callback=on_iteration,
                                   progress=_ticker(bar))
    finally:
        if bar is not None:
            bar.close()
    if impl == "module":
        history["book_loss"] = book_loss
    return history, time.perf_counter() - start


@dataclass
class CurveComparison:
    """How far the two curves drifted apart, and whether that is within tolerance."""
    settings: dict
    numpy: dict = field(repr=False)
    torch: dict = field(repr=False)
    seconds: dict
    loss_rtol: float
    acc_atol: float
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    worst_iter: int = None
    first_out: int = None  # first iteration whose loss leaves tolerance
    final_rel: float = float("nan")
    acc_max_diff: float = float("nan")
    acc_equal: bool = False
    module_loss_gap: float = None  # the module's own loss vs the book's (the 1e-7 gap)
    problems: list = field(default_factory=list)

    @property
    def passed(self):
        return not self.problems

    def torch_losses(self):
        return self.torch.get("book_loss", self.torch["train_loss"])

    def verdict(self):
        s = self.settings
        what = (f"{s['iters']} iterations, {s['dtype']}, torch {s['impl']}: max relative loss "
                f"deviation {self.max_rel:.3g} (tolerance {self.loss_rtol:g}), accuracies "
                + ("identical" if self.acc_equal else f"differ by up to {self.acc_max_diff:.3g}"))
        if self.passed:
            return "PASS: " + what
        return "FAIL: " + what + "; " + "; ".join(self.problems)

    def to_text(self):
        s = self.settings
        lines = [f"curve comparison: seed {s['seed']}, {s['iters']} iterations, batch "
                 f"{s['batch_size']}, lr {s['lr']}, {s['dtype']} on {s['device']}, torch {s['impl']}",
                 f"  loss: max abs deviation {self.max_abs:.3g}, max rel {self.max_rel:.3g} at "
                 f"iteration {self.worst_iter}, final rel {self.final_rel:.3g}; first iteration out "
                 f"of tolerance: {'none' if self.first_out is None else self.first_out}"]
        if self.module_loss_gap is not None:
            lines.append(f"  the module's own loss (F.cross_entropy, no 1e-7) differs from the book's "
                         f"by up to {self.module_loss_gap:.3g} relative: the SPEC's 1e-7 gap, not drift")
        lines.append("  accuracy at iterations " + ", ".join(map(str, self.numpy["eval_iters"])))
        lines.append(f"  {'iter':>6}  {'numpy train':>11}  {'torch train':>11}  {'numpy test':>10}  "
                     f"{'torch test':>10}")
        for k, i in enumerate(self.numpy["eval_iters"]):
            row = [self.numpy["train_acc"][k], _get(self.torch["train_acc"], k),
                   self.numpy["test_acc"][k], _get(self.torch["test_acc"], k)]
            lines.append(f"  {i:>6}  " + "  ".join(f"{v:>11.4f}" if j < 2 else f"{v:>10.4f}"
                                                   for j, v in enumerate(row)))
        lines.append("  time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items()))
        lines.append(self.verdict())
        return "\n".join(lines)

    __str__ = to_text

    def to_dict(self):
        def clean(v):
            return v if not isinstance(v, float) or np.isfinite(v) else str(v)
        return {"settings": self.settings, "passed": self.passed, "verdict": self.verdict(),
                "loss_rtol": self.loss_rtol, "acc_atol": self.acc_atol,
                "max_abs": clean(self.max_abs), "max_rel": clean(self.max_rel),
                "worst_iter": self.worst_iter, "first_out": self.first_out,
                "final_rel": clean(self.final_rel), "acc_max_diff": clean(self.acc_max_diff),
                "acc_equal": self.acc_equal, "module_loss_gap": self.module_loss_gap,
                "problems": self.problems, "seconds": self.seconds,
                "numpy": self.numpy, "torch": self.torch}


def _get(values, k):
    return values[k] if k < len(values) else float("nan")


def compare_histories(np_hist, torch_hist, *, settings, seconds=None, loss_rtol=None,
                      acc_atol=None):
    """Compare two training histories (``train`` results) step by step."""
    name = settings["dtype"]
    loss_rtol = LOSS_RTOL[name] if loss_rtol is None else check_nonnegative(loss_rtol, "loss_rtol")
    acc_atol = ACC_ATOL[name] if acc_atol is None else check_nonnegative(acc_atol, "acc_atol")
    cmp = CurveComparison(settings, np_hist, torch_hist, seconds or {}, loss_rtol, acc_atol)
    a = np.asarray(np_hist["train_loss"], dtype=np.float64)
    b = np.asarray(cmp.torch_losses(), dtype=np.float64)
    n = min(a.size, b.size)
    if a.size != b.size:
        cmp.problems.append(f"numpy recorded {a.size} losses, torch {b.size}")
    for side, hist in (("numpy", np_hist), ("torch", torch_hist)):
        if hist.get("diverged"):
            cmp.problems.append(f"{side} diverged at iteration {hist.get('diverged_at')}")
    if n:
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.abs(a[:n] - b[:n])
            rel = err / np.abs(a[:n])
        bad = ~(err <= loss_rtol * np.abs(a[:n]))  # NaN counts as out
        cmp.max_abs, cmp.max_rel = float(np.nanmax(err)), float(np.nanmax(rel))
        cmp.worst_iter = int(np.nanargmax(rel))
        cmp.final_rel = float(rel[-1])
        if bad.any():
            cmp.first_out = int(np.argmax(bad))
            cmp.problems.append(f"{int(bad.sum())} of {n} losses out of tolerance, the first at "
                                f"iteration {cmp.first_out} (numpy {a[cmp.first_out]!r}, torch "
                                f"{b[cmp.first_out]!r})")
    if "book_loss" in torch_hist:
        own = np.asarray(torch_hist["train_loss"][:n])
        cmp.module_loss_gap = float(np.max(np.abs(own - a[:n]) / np.abs(a[:n]))) if n else None
    if np_hist["eval_iters"] != torch_hist["eval_iters"]:
        cmp.problems.append(f"accuracy taken at different iterations: numpy "
                            f"{np_hist['eval_iters']}, torch {torch_hist['eval_iters']}")
    diffs = [abs(x - y) for key in ("train_acc", "test_acc")
             for x, y in zip(np_hist[key], torch_hist[key])]
    cmp.acc_max_diff = max(diffs) if diffs else 0.0
    cmp.acc_equal = (np_hist["train_acc"] == torch_hist["train_acc"]
                     and np_hist["test_acc"] == torch_hist["test_acc"])
    if cmp.acc_max_diff > acc_atol:
        cmp.problems.append(f"accuracies differ by up to {cmp.acc_max_diff:.3g} "
                            f"(tolerance {acc_atol:g})")
    return cmp


def labels_in(data, dtype):
    """One-hot labels in the run's dtype, for both sides.

    NumPy would promote float32 outputs minus float64 labels to float64
    mid-backprop; torch refuses the mix. Casting the labels (exact: 0 and 1)
    keeps a float32 run in float32 on both sides.
    """
    def cast(t):
        t = np.asarray(t)
        return t.astype(dtype) if t.ndim == 2 else t
    (x_train, t_train), (x_test, t_test) = data
    return (x_train, cast(t_train)), (x_test, cast(t_test))


def compare_curves(data, *, seed=0, iters=10000, batch_size=100, lr=0.1, dtype="float64",
                   impl="literal", device="cpu", eval_every=None, progress=True,
                   loss_rtol=None, acc_atol=None, torch_net_class=None):
    """Train both sides on ``data`` (``load_mnist()``'s result, one-hot or index labels)."""
    # all of it before the NumPy side trains: a bad device would otherwise
    # show only when the torch side starts, minutes later
    check_run(seed=seed, iters=iters, batch_size=batch_size, lr=lr, dtype=dtype,
              eval_every=eval_every, impl=impl, device=device)
    for tol_name, value in (("loss_rtol", loss_rtol), ("acc_atol", acc_atol)):
        if value is not None:
            check_nonnegative(value, tol_name)
    if torch_net_class is not None:
        check_callable(torch_net_class, "torch_net_class")
    name = dtype_name(dtype)
    data = labels_in(check_data(data), name)
    settings = {"seed": seed, "iters": iters, "batch_size": batch_size, "lr": lr, "dtype": name,
                "impl": impl, "device": str(device), "eval_every": eval_every}
    common = dict(seed=seed, iters=iters, batch_size=batch_size, lr=lr, dtype=name,
                  eval_every=eval_every, progress=progress)
    np_hist, np_s = train_numpy(data, **common)
    t_hist, t_s = train_torch(data, impl=impl, device=device, net_class=torch_net_class, **common)
    return compare_histories(np_hist, t_hist, settings=settings,
                             seconds={"numpy": np_s, f"torch {impl}": t_s},
                             loss_rtol=loss_rtol, acc_atol=acc_atol)
