"""Every gradient path on the same parameters and batch, every pair that should agree.

Paths: NumPy backprop and numerical gradient, torch backprop, numerical
gradient and autograd, and the ``nn.Module`` (autograd of ``F.cross_entropy``,
and with ``loss="book"`` the autograd of the book's own loss, ``1e-7`` and
all). Each pair is checked with the tolerance its error sources deserve
(``compare.parity``):

* backprop, autograd and the module differentiate the same function:
  ``analytic``, round-off only;
* the two numerical gradients take the same differences of the same loss:
  ``numerical-pair``;
* a numerical gradient against the module's ``loss="book"`` gradient: the
  same loss, so ``numerical`` (truncation and round-off of ``h``) and
  nothing else;
* a numerical gradient against backprop: the same, plus the SPEC's 1e-7 gap,
  computed in closed form (``compare.gap``) and allowed for in its own column;
* the gap itself: the module's ``loss="book"`` gradient must equal backprop
  plus the closed-form gap to round-off.
"""
import time
from dataclasses import dataclass, field

import numpy as np

from numpy_impl.two_layer_net import PARAM_NAMES
from numpy_impl.validation import (as_float_array, check_batch, check_callable,
                                   check_positive_int, check_seed, check_step)

from .curves import check_data
from .gap import book_gap, check_params, target_probabilities
from ..parity import ParamCheck, ParityReport, compare_gradients, default_h, dtype_name, tolerance

PATHS = ("numpy backprop", "numpy numerical", "torch backprop", "torch numerical",
         "torch autograd", "module", "module[book]")
GAP = "backprop + 1e-7 gap"  # numpy backprop plus the closed-form gap: a derived reference

# (actual, expected, kind, allow the gap?)
PAIRS = (
    ("torch backprop", "numpy backprop", "analytic", False),
    ("torch autograd", "torch backprop", "analytic", False),
    ("torch autograd", "numpy backprop", "analytic", False),
    ("module", "torch autograd", "analytic", False),
    ("module", "numpy backprop", "analytic", False),
    ("torch numerical", "numpy numerical", "numerical-pair", False),
    ("numpy numerical", "module[book]", "numerical", False),
    ("torch numerical", "module[book]", "numerical", False),
    ("numpy numerical", "numpy backprop", "numerical", True),
    ("torch numerical", "torch backprop", "numerical", True),
    ("module[book]", GAP, "analytic", False),
)


def _torch_dtype(name):
    import torch
    return {"float64": torch.float64, "float32": torch.float32}[name]


def _sizes(params):
    return params["W1"].shape[0], params["W1"].shape[1], params["W2"].shape[1]


METHODS = ("fast", "loop")
LABELS = ("one-hot", "index")


def _check_request(params, x, t, dtype, device, h, method, classes):
    """Everything a gradient check is asked, checked before any path runs.

    A bad argument is the caller's error (``ValueError`` or ``TypeError``
    naming it), not a failure of every path in the table.
    """
    from torch_impl.validation import check_device

    name = dtype_name(dtype)
    device = check_device(device)
    h = default_h(name) if h is None else check_step(h, name)
    if method not in METHODS:
        raise ValueError(f"method must be 'fast' or 'loop', got {method!r}")
    params = check_params(params)
    for key, value in (("torch_net_class", classes[0]), ("module_class", classes[1])):
        if value is not None:
            check_callable(value, key)
    x = as_float_array(x, "x", allow_int=True, dtype=name)
    check_batch(x, t, params["W1"].shape[0], params["W2"].shape[1], name)
    return name, device, h


def _copy_params(params, dtype):
    return {key: np.array(params[key], dtype=dtype) for key in PARAM_NAMES}


def compute_paths(params, x, t, *, dtype="float64", device="cpu", h=None, method="fast",
                  torch_net_class=None, module_class=None, paths=PATHS):
    """Run each path in ``paths``; returns ``(gradients, seconds)``, both keyed by path.

    ``params``, ``x`` and ``t`` are NumPy values; each side gets its own copy
    in ``dtype`` (and the torch side on ``device``). ``torch_net_class`` and
    ``module_class`` replace ``torch_impl.TwoLayerNet`` and
    ``torch_impl.TwoLayerNetModule`` (a port under test, or a broken one).
    """
    import torch

    import numpy_impl
    import torch_impl

    name = dtype_name(dtype)
    h = default_h(name) if h is None else h
    params = _copy_params(params, name)
    x = np.asarray(x, dtype=name)
    t = np.asarray(t)
    t = t.astype(name) if t.ndim == 2 else t.astype(np.int64)
    sizes = _sizes(params)
    tdtype = _torch_dtype(name)
    tx, tt = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    tparams = {key: torch.from_numpy(value.copy()).to(device) for key, value in params.items()}

    def numpy_net():
        net = numpy_impl.TwoLayerNet(*sizes, dtype=name)
        net.params = _copy_params(params, name)
        return net

    def torch_net():
        net = (torch_net_class or torch_impl.TwoLayerNet)(*sizes, dtype=tdtype, device=device)
        net.params = {key: value.clone() for key, value in tparams.items()}
        return net

    def module(loss):
        cls = module_class or torch_impl.TwoLayerNetModule
        return cls.from_params(tparams, dtype=tdtype, device=device, loss=loss)

    run = {
        "numpy backprop": lambda: numpy_net().gradient(x, t),
        "numpy numerical": lambda: numpy_net().numerical_gradient(x, t, h=h, method=method),
        "torch backprop": lambda: torch_net().gradient(tx, tt),
        "torch numerical": lambda: torch_net().numerical_gradient(tx, tt, h=h, method=method),
        "torch autograd": lambda: torch_net().autograd_gradient(tx, tt),
        "module": lambda: module("cross_entropy").gradient(tx, tt),
        "module[book]": lambda: module("book").gradient(tx, tt),
    }
    grads, seconds = {}, {}
    for path in paths:
        start = time.perf_counter()
        grads[path] = run[path]()
        seconds[path] = time.perf_counter() - start
    return grads, seconds


@dataclass
class PathsResult:
    """All the pair tables of one gradient check, and what the 1e-7 gap came to."""
    settings: dict
    pairs: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    gap: dict = field(default_factory=dict)
    gradients: dict = field(default_factory=dict, repr=False)

    @property
    def passed(self):
        return bool(self.pairs) and all(p.passed for p in self.pairs)

    @property
    def failed(self):
        """``{pair label: [failed parameters]}``."""
        return {p.label: p.failed for p in self.pairs if not p.passed}

    def verdict(self):
        n = len(self.pairs)
        if self.passed:
            return f"PASS: all {n} gradient pairs agree within tolerance ({self.settings['dtype']})"
        parts = [f"{label} [{', '.join(params)}]" for label, params in self.failed.items()]
        return f"FAIL: {len(parts)} of {n} gradient pairs disagree: " + "; ".join(parts)

    def summary_lines(self):
        """One line per pair: the largest error, the tolerance, the verdict."""
        lines = []
        for p in self.pairs:
            gap = f", gap allowed up to {p.worst('max_allowance'):.2g}" if p.allowance_name else ""
            lines.append(f"{'ok  ' if p.passed else 'FAIL'} {p.label:<44} max abs {p.worst('max_abs'):.3g}"
                         f", max rel {p.worst('max_rel'):.3g} [{p.kind}: {p.tolerance}{gap}]")
        return lines

    def gap_line(self):
        g = self.gap
        if not g:
            return ""
        return ("The SPEC's 1e-7 gap (numerical gradient of the loss with 1e-7 vs backprop of the "
                "loss without it): max |gap| " + ", ".join(f"{k} {v:.3g}" for k, v in g["max_abs"].items())
                + f"; smallest y[t] in the batch {g['min_target_probability']:.3g}, so 1e-7/y up to "
                f"{g['predicted_relative']:.3g} relative")

    def to_text(self, full=True):
        s = self.settings
        head = (f"gradient check: {s['dtype']} on {s['device']}, batch {s['batch_size']}, "
                f"h={s['h']:g}, numerical method {s['method']}")
        out = [head, ""]
        if full:
            for p in self.pairs:
                out += [p.to_text(), ""]
        out += self.summary_lines()
        if self.gap:
            out.append(self.gap_line())
        out.append("timings: " + ", ".join(f"{k} {v:.3g} s" for k, v in self.seconds.items()))
        out.append(self.verdict())
        return "\n".join(out)

    __str__ = to_text

    def to_dict(self):
        return {"settings": self.settings, "passed": self.passed, "verdict": self.verdict(),
                "gap": self.gap, "seconds": self.seconds,
                "pairs": [p.to_dict() for p in self.pairs]}

    def raise_if_failed(self):
        if not self.passed:
            raise AssertionError("\n" + self.to_text())
        return self


def check_gradient_paths(params, x, t, *, dtype="float64", device="cpu", h=None, method="fast",
                         torch_net_class=None, module_class=None, pairs=PAIRS):
    """Run every path on ``params`` and the batch ``(x, t)`` and cross-check the pairs.

    Returns a ``PathsResult`` (``.passed``, ``.to_text()``, ``.to_dict()``,
    ``.raise_if_failed()``). A path that raises fails its pairs, named.
    """
    name, device, h = _check_request(params, x, t, dtype, device, h, method,
                                     (torch_net_class, module_class))
    wanted = {p for a, e, _, _ in pairs for p in (a, e) if p != GAP}
    if any(e == GAP for _, e, _, _ in pairs):
        wanted.add("numpy backprop")
    paths = [p for p in PATHS if p in wanted]
    grads, seconds, errors = {}, {}, {}
    for path in paths:  # one at a time, so one broken path does not hide the others
        try:
            g, s = compute_paths(params, x, t, dtype=name, device=device, h=h, method=method,
                                 torch_net_class=torch_net_class, module_class=module_class,
                                 paths=(path,))
            grads.update(g)
            seconds.update(s)
        except Exception as exc:  # reported as that path's failure, not a crash
            errors[path] = f"{type(exc).__name__}: {exc}"

    x_arr = np.asarray(x, dtype=name)
    p_arr = _copy_params(params, name)
    gap = book_gap(p_arr, x_arr, t)
    min_y = float(target_probabilities(p_arr, x_arr, t).min())
    if "numpy backprop" in grads:
        grads[GAP] = {k: np.asarray(grads["numpy backprop"][k]) + gap[k] for k in PARAM_NAMES}
    settings = {"dtype": name, "device": str(device), "h": h, "method": method,
                "batch_size": int(np.shape(x)[0])}
    result = PathsResult(settings, seconds=seconds, gradients=grads, gap={
        "max_abs": {k: float(np.abs(v).max()) for k, v in gap.items()},
        "min_target_probability": min_y,
        "predicted_relative": 1e-7 / min_y,
    })
    for actual, expected, kind, allow_gap in pairs:
        label = f"{actual} vs {expected}"
        missing = [p for p in (actual, expected) if p not in grads]
        if missing:
            result.pairs.append(_broken_pair(label, actual, expected, kind, name, h,
                                             {p: errors.get(p, "not computed") for p in missing}))
            continue
        note = None
        if allow_gap:
            note = ("allowed: the SPEC's 1e-7 gap (the numerical gradient is of the loss with "
                    "log(y + 1e-7), backprop of the loss without it), in closed form")
        result.pairs.append(compare_gradients(
            grads[actual], grads[expected], kind=kind, dtype=name, h=h, label=label,
            actual_name=actual, expected_name=expected, allowance=gap if allow_gap else None,
            note=note, device=device))
    return result


def _broken_pair(label, actual, expected, kind, dtype, h, errors):
    report = ParityReport(label, actual, expected, kind, tolerance(kind, dtype, h))
    why = "; ".join(f"{p} raised {msg}" for p, msg in errors.items())
    report.rows = [ParamCheck(name, problem=why) for name in PARAM_NAMES]
    return report


def book_batch(data, *, seed=0, batch_size=100, hidden_size=50, labels="one-hot"):
    """The book's initial params for ``seed`` and the first batch its training draws.

    ``data`` is ``load_mnist()``'s ``((x_train, t_train), (x_test, t_test))``.
    Returns ``(params, x, t)`` as NumPy values (float64 params, float32 ``x``).
    """
    from numpy_impl.random_stream import BookRandomStream, book_initial_params

    (x_train, t_train), _ = data
    input_size, output_size = x_train.shape[1], 10
    params = book_initial_params(input_size, hidden_size, output_size, seed=seed)
    stream = BookRandomStream.for_training(seed, input_size, hidden_size, output_size)
    idx = stream.batch_indices(x_train.shape[0], batch_size)
    t = np.asarray(t_train[idx])
    if t.ndim == 1:
        t = t.astype(np.int64)
        if labels == "one-hot":
            t = np.eye(output_size)[t]
    elif labels == "index":
        t = t.argmax(axis=1)
    return params, x_train[idx], t


def gradcheck(data, *, seed=0, batch_size=100, dtype="float64", device="cpu", h=None,
              method="fast", labels="one-hot", **kwargs):
    """``check_gradient_paths`` on the book's initial params and first MNIST batch."""
    check_data(data)
    check_seed(seed)
    check_positive_int(batch_size, "batch_size")
    if labels not in LABELS:
        raise ValueError(f"labels must be 'one-hot' or 'index', got {labels!r}")
    params, x, t = book_batch(data, seed=seed, batch_size=batch_size, labels=labels)
    result = check_gradient_paths(params, x, t, dtype=dtype, device=device, h=h, method=method,
                                  **kwargs)
    result.settings.update(seed=seed, labels=labels)
    return result
