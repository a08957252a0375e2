"""Layers written as module-level functions (cs231n's ``affine_forward(x, w, b) -> (out,
cache)`` and ``affine_backward(dout, cache)``; the deeplearning.ai course's
``linear_forward``, ``relu``/``relu_backward``), recorded for one pass.

A model calls its layer functions through the globals of its own module (the
course's ``from .layers import *``), so they are wrapped there, in
``sys.modules[type(model).__module__]``, and in the module each one comes from
(where a combined ``affine_relu_forward`` finds ``affine_forward``). A function
is a layer when its name, less ``_forward`` (and a suffix such as ``_naive``),
is a layer kind's NumPy name (``affine``, ``batchnorm``, ``relu``, ``dropout``,
``linear``, ``conv``, ``max_pool``); a bare ``relu`` counts when a
``relu_backward`` sits beside it. A name made of two kinds (``affine_relu``)
is let through unrecorded: the calls it makes are the records. A loss
(``softmax_loss``) is no layer: each call is noted in ``capture.losses`` with the
loss it returned (what ``compare write-port`` writes as the port's loss).

Each call becomes a ``LayerRecord`` (kind: the name's stem; key: the stem and
its count, ``affine1``), its parameters found by identity among the model's
``params``; a ``*_backward(dout, cache)`` is matched to its forward call by the
identity of the cache, and ``dout`` is the record's ``grad_output``. A
features-first model's arrays are recorded transposed, batch first, as the
port computes them. ``FunctionLayer`` stands in for the layer object the
diagnosis reruns: the function with the other arguments of the call.
"""
import copy
import inspect
import sys
import types
from contextlib import contextmanager

import numpy as np

from .capture import Capture, LayerRecord, _to_numpy
from .layers import KINDS, norm_name

LOSS_KINDS = ("softmax_loss",)
# cs231n assignment 3's layers, recorded though no kind holds them (their rows pair with
# nn.Embedding, nn.RNN/nn.LSTM and nn.Linear by the outputs); a step function called inside
# rnn_forward/lstm_forward is no record of its own, the time layer is
TIME_LAYERS = ("word_embedding", "temporal_affine", "rnn", "lstm", "rnn_step", "lstm_step")
RECURRENT = ("rnn", "lstm", "rnn_step", "lstm_step")  # (x, h0 or prev_h, ...)
SUFFIXES = ("", "_naive", "_fast", "_vectorized", "_vec")


def _kind(stem):
    n = norm_name(stem)
    for kind in KINDS:
        if kind.name in LOSS_KINDS:
            continue
        if any(n == norm_name(name) for name in kind.numpy_names):
            return kind
    return None


def function_kind(stem):
    """The layer kind of a layer function's stem (``affine``, ``batchnorm``), or None."""
    return _kind(stem)


def loss_kind(name):
    """The loss kind a loss function's name is (``softmax_loss``), or None."""
    n = norm_name(name)
    return next((k for k in KINDS if k.name in LOSS_KINDS and
                 any(n == norm_name(m) for m in (k.name, *k.numpy_names))), None)


def _layer(stem):
    return _kind(stem) is not None or stem in TIME_LAYERS


def _composite(stem):
    """``affine_relu`` -> two kinds; None when the stem is not made of kinds."""
    parts = stem.split("_")
    for cut in range(1, len(parts)):
        head, tail = "_".join(parts[:cut]), "_".join(parts[cut:])
        if _layer(head) and (_layer(tail) or _composite(tail)):
            return True
    return False


def _stem(name, namespace):
    """``(stem, backward name)`` of a layer function's name, or None."""
    for suffix in SUFFIXES:
        if name.endswith("_forward" + suffix):
            stem = name[:-len("_forward" + suffix)]
            return stem, f"{stem}_backward{suffix}"
    if f"{name}_backward" in namespace:
        return name, f"{name}_backward"
    return None


def layer_functions(namespace):
    """``{name: (stem, backward name or None, composite)}`` of the layer functions in a
    module's globals."""
    out = {}
    for name, fn in list(namespace.items()):
        if not isinstance(fn, types.FunctionType):
            continue
        found = _stem(name, namespace)
        if found is None:
            continue
        stem, backward = found
        composite = not _layer(stem)
        if composite and not _composite(stem):
            continue
        out[name] = (stem, backward if isinstance(namespace.get(backward), types.FunctionType) else None,
                     composite)
    return out


def model_namespaces(model):
    """The globals the model calls its layer functions through, and those of the modules
    those functions come from."""
    module = sys.modules.get(type(model).__module__)
    if module is None:
        return []
    spaces = [vars(module)]
    for name in layer_functions(vars(module)):
        g = vars(module)[name].__globals__
        if all(g is not s for s in spaces):
            spaces.append(g)
    return [s for s in spaces if layer_functions(s)]


def has_layer_functions(model):
    return any(not c for s in model_namespaces(model) for _, _, c in layer_functions(s).values())


def _t(a, features_first):
    return a.T.copy() if features_first and isinstance(a, np.ndarray) and a.ndim == 2 else a


class FunctionLayer:
    """One recorded call, as a layer object: ``forward(x)`` is the function on ``x`` with
    the call's other arguments (the parameters by reference, so a counterfactual that
    changes one in place is seen; settings dicts copied, so nothing the model keeps
    moves). Its arguments are its attributes, by the names of the function's signature
    (``w``, ``gamma``, ``beta``), and so are the entries of a settings dict (``eps``,
    ``momentum``, ``running_mean``); a cs231n dropout's ``p``, the probability of
    keeping, is ``keep_prob``."""

    def __init__(self, fn, stem, args, kwargs, features_first):
        self.fn, self.stem, self.features_first = fn, stem, features_first
        self.args = [a if isinstance(a, np.ndarray) else copy.deepcopy(a) for a in args]
        self.kwargs = copy.deepcopy(kwargs)
        try:
            names = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            names = []
        for name, value in zip(names, self.args):
            if isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(k, str) and k.isidentifier():
                        setattr(self, "keep_prob" if (k == "p" and _kind(stem) is not None
                                                      and _kind(stem).name == "dropout") else k, v)
            elif name.isidentifier() and not hasattr(self, name):
                setattr(self, name, value)

    def forward(self, x, train_flg=None):
        args = [copy.deepcopy(a) if isinstance(a, dict) else a for a in self.args[1:]]
        if train_flg is not None:
            for a in args:
                if isinstance(a, dict) and "mode" in a:
                    a["mode"] = "train" if train_flg else "test"
        out = self.fn(_t(np.asarray(x), self.features_first), *args, **copy.deepcopy(self.kwargs))
        out = out[0] if isinstance(out, tuple) else out
        return _t(np.asarray(out), self.features_first)


@contextmanager
def function_capture(model, params, features_first=False, layers=None):
    """Wrap the model's layer functions for one pass; yields the ``Capture``. ``layers``
    (a dict) receives a ``FunctionLayer`` per record key."""
    capture = Capture()
    ids = {id(v): name for name, v in params.items()}
    counts, caches, depth = {}, {}, [0]
    saved = []

    def forward_wrapper(fn, stem, composite):
        def wrapped(*args, **kwargs):
            if composite or depth[0]:
                return fn(*args, **kwargs)
            depth[0] += 1
            try:
                out = fn(*args, **kwargs)
            finally:
                depth[0] -= 1
            counts[stem] = counts.get(stem, 0) + 1
            key = f"{stem}{counts[stem]}"
            value = out[0] if isinstance(out, tuple) else out
            names = tuple(dict.fromkeys(ids[id(a)] for a in list(args) + list(kwargs.values())
                                        if isinstance(a, np.ndarray) and id(a) in ids))
            record = LayerRecord(key, stem, _t(_to_numpy(args[0]) if args else None, features_first),
                                 _t(_to_numpy(value), features_first), param_names=names)
            if stem in RECURRENT and len(args) > 1 and isinstance(args[1], np.ndarray):
                record.state = _t(args[1].copy(), features_first)
            cache = out[1] if isinstance(out, tuple) and len(out) == 2 else None
            if cache is not None:
                caches[id(cache)] = (cache, record)  # the cache kept alive, so its id stays its own
                for part in cache if isinstance(cache, tuple) else ():
                    if isinstance(part, np.ndarray) and part.dtype == bool and \
                            part.shape == np.shape(value):
                        record.mask = _t(part.copy(), features_first)
            capture.records.append(record)
            if layers is not None:
                layers[key] = FunctionLayer(fn, stem, args, kwargs, features_first)
            return out
        return wrapped

    ratios = []  # dW / (the dW of dout as the gradient), at each affine layer

    def backward_wrapper(fn, stem):
        affine = getattr(_kind(stem), "name", None) == "affine"

        def wrapped(dout, cache, *args, **kwargs):
            found = caches.get(id(cache))
            if found is not None and found[0] is cache and found[1].grad_output is None:
                found[1].grad_output = _t(_to_numpy(dout), features_first)
            out = fn(dout, cache, *args, **kwargs)
            if affine:
                ratios.append(_dw_ratio(dout, cache, out, features_first))
            return out
        return wrapped

    def loss_wrapper(fn, name, kind):
        def wrapped(*args, **kwargs):
            out = fn(*args, **kwargs)
            capture.losses.append((name, kind, out[0] if isinstance(out, tuple) else out))
            return out
        return wrapped

    for space in model_namespaces(model):
        for name, fn in list(space.items()):
            if isinstance(fn, types.FunctionType) and loss_kind(name) is not None:
                saved.append((space, name, fn))
                space[name] = loss_wrapper(fn, name, loss_kind(name))
        for name, (stem, backward, composite) in layer_functions(space).items():
            saved.append((space, name, space[name]))
            space[name] = forward_wrapper(space[name], stem, composite)
            if backward is not None and not composite:
                saved.append((space, backward, space[backward]))
                space[backward] = backward_wrapper(space[backward], stem)
    try:
        yield capture
    finally:
        for space, name, fn in reversed(saved):
            space[name] = fn
    _summed_cost(capture, ratios)


def _dw_ratio(dout, cache, out, features_first):
    """``dW`` as returned over ``dW`` as ``dout`` makes it (``A.T @ dout``; features first
    ``dout @ A.T``): 1 where ``dout`` is the gradient of the loss, ``1/m`` where it is that of
    the summed cost (the deeplearning.ai course's ``dZ``, its ``1/m`` kept for ``dW``)."""
    try:
        a, w = cache[0], cache[1]
        dw = out[1]
        a2 = a if features_first else a.reshape(a.shape[0], -1)
        e = np.asarray(dout) @ a2.T if features_first else a2.T @ np.asarray(dout)
        if e.shape != np.shape(dw) or np.shape(dw) != np.shape(w):
            return None
        ee = float(np.sum(e * e))
        return None if ee == 0 else float(np.sum(np.asarray(dw) * e)) / ee
    except Exception:
        return None


def _summed_cost(capture, ratios):
    """Where every affine layer's ``dW`` is ``1/m`` of what its ``dout`` makes, the ``dout``s
    are gradients of the summed cost: the records hold them divided by ``m``, the gradient
    of the loss (the port's autograd), and ``capture.note`` says so."""
    m = next((r.output.shape[0] for r in capture.records if r.output is not None and r.output.ndim), None)
    if not ratios or m is None or m == 1 or any(r is None for r in ratios):
        return
    if all(abs(r * m - 1) <= 1e-6 for r in ratios):
        for r in capture.records:
            if r.grad_output is not None:
                r.grad_output = r.grad_output / m
        capture.note = (f"the NumPy model's dout (dZ, dA) are gradients of the summed cost, its "
                        f"1/m applied in dW and db (as the deeplearning.ai course writes them): "
                        f"the layers' gradients are compared divided by m = {m}")
