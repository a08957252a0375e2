"""The shapes a NumPy model comes in, each seen through the book's door.

* the book's: ``loss(x, t)`` a number, ``gradient(x, t)`` a dict, ``predict(x)``
  scores, ``t`` one-hot rows or class indices as the batch holds them;
* cs231n's (``loss(X, y=None, ...)``: its second parameter defaults to None):
  ``loss(X)`` gives the scores (in test mode, where the model sets its
  ``bn_param``/``dropout_param`` modes from ``y``), ``loss(X, y)`` gives
  ``(loss, grads)`` in train mode; ``y`` are class indices, whatever the batch
  holds; its ``predict`` gives labels and is never called;
* cs231n's assignment 3 (``CaptioningRNN.loss(features, captions)``: both
  required, the method returning a pair, ``return loss, grads``):
  ``(loss, grads)`` on the batch as it is (``t`` the captions, integer word ids
  the model splits itself); no scores come out of it (its ``sample`` decodes);
* features first (the deeplearning.ai course: ``W1`` ``(n_h, n_x)`` with ``b1``
  ``(n_h, 1)``, inputs ``(features, examples)``): the batch handed over
  transposed, ``x.T``, labels as ``(classes, m)`` or ``(1, m)``; what comes back
  (scores) transposed to batch first. A sequence ``(m, T, n_x)`` goes as the course's
  ``(n_x, m, T_x)``, its token targets ``(m, T)`` one-hot as ``(n_y, m, T_y)``, and its
  ``y_pred`` ``(n_y, m, T_y)`` comes back as ``(m, T_y, n_y)``.

``Shaped`` is the model as the book's shape: ``params``, ``layers``, ``loss(x, t)``,
``gradient(x, t)``, ``predict(x, train_flg=...)``. Keywords for the NumPy ``loss``
(``numpy_kwargs``: cs231n's ``reg``) go to every call of it.
"""
import ast
import inspect
import re
import textwrap

import numpy as np

from ..targets import PortSetupError, mode_keyword

LAYOUTS = ("batch-first", "features-first")


def _signature(fn):
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):
        return None


def is_cs231n(model):
    """``loss(X, y=None, ...)``: the label parameter may be left out."""
    sig = _signature(getattr(model, "loss", None))
    if sig is None:
        return False
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(params) >= 2 and params[1].default is None


def _returns(fn):
    """The ``return`` statements of ``fn``'s own body (not of functions defined in it), or
    None where its source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    top = tree.body[0] if tree.body and isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)) else None
    if top is None:
        return None
    found, todo = [], list(top.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Return):
            found.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def returns_loss_and_grads(model):
    """cs231n's assignment 3: ``loss(features, captions)``, both required, returning a pair
    (``return loss, grads``; an early ``return`` of something else, for a call the check never
    makes, aside); a model with a ``gradient`` of its own keeps the book's door."""
    fn = getattr(model, "loss", None)
    sig = _signature(fn)
    if sig is None or callable(getattr(model, "gradient", None)):
        return False
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) < 2 or any(p.default is not p.empty for p in params[:2]):
        return False
    returns = _returns(fn)
    return any(isinstance(r.value, ast.Tuple) and len(r.value.elts) == 2 for r in returns or ())


def _partners(shapes):
    """``[(weight, bias)]``: each matrix with its bias, by name where the names number them
    (``W1``/``b1``, ``weights2``/``biases2``), else every matrix with every vector-like array."""
    def split(name):
        match = re.fullmatch(r"([A-Za-z_]*?)_?(\d*)", name)
        return (match.group(1).lower(), match.group(2)) if match else (name.lower(), "")
    matrices = {k: s for k, s in shapes.items() if len(s) == 2 and split(k)[0].startswith("w")}
    biases = {k: s for k, s in shapes.items() if split(k)[0].startswith("b") and len(s) in (1, 2)}
    named = [(w, b) for w in matrices for b in biases if split(w)[1] == split(b)[1]]
    if named:
        return [(shapes[w], shapes[b]) for w, b in named]
    vectors = [s for s in shapes.values() if len(s) in (1, 2) and 1 in s or len(s) == 1]
    return [(w, b) for w in shapes.values() if len(w) == 2 and 1 not in w for b in vectors]


def detect_layout(params):
    """``features-first`` when the weights are ``(out, in)`` with their biases ``(out, 1)``:
    every weight with its bias (by name, else by shape) votes, whatever order the dict lists
    them in; a bias that is a row ``(1, in)`` or ``(in,)`` of a weight votes batch first."""
    shapes = {k: tuple(np.shape(v)) for k, v in params.items()}
    first = later = 0
    for w, b in _partners(shapes):
        if w[0] == w[1]:
            continue  # a square weight with its bias says nothing of the layout
        if b == (w[0], 1) and w[0] != 1:
            first += 1
        elif b in ((1, w[1]), (w[1],)) or (b == (w[1], 1) and w[1] != 1):
            later += 1
    if not first and not later:  # square weights alone: a column bias is the course's habit
        first = sum(1 for w, b in _partners(shapes) if w[0] == w[1] and b == (w[0], 1) and w[0] != 1)
    return "features-first" if first > later else "batch-first"


def output_size(params):
    """The last layer's outputs of a features-first model: the one ``(out, in)`` weight whose
    ``out`` no other weight takes in; else the first axis of the dict's last array."""
    shapes = [tuple(np.shape(v)) for v in params.values()]
    weights = [tuple(np.shape(v)) for k, v in params.items()
               if np.ndim(v) == 2 and k.lower().startswith("w")]
    matrices = weights or [s for s in shapes if len(s) == 2 and 1 not in s]
    ends = {s[0] for s in matrices} - {s[1] for s in matrices}
    if len(ends) == 1:
        return ends.pop()
    return int(shapes[-1][0])


def parse_kwargs(text):
    """``"reg=0.05,mode='x'"`` -> ``{"reg": 0.05, "mode": "x"}`` (values as Python literals;
    a bare word stays a string)."""
    if text is None or isinstance(text, dict):
        return dict(text or {})
    out = {}
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.isidentifier():
            raise PortSetupError(f"--numpy-kwargs entries are KEY=VALUE (a Python literal), got {part!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def check_kwargs(model, kwargs):
    if not kwargs:
        return
    sig = _signature(model.loss)
    if sig is None:
        return
    params = sig.parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    unknown = [k for k in kwargs if k not in params and not takes_any]
    if unknown:
        raise PortSetupError(f"numpy side: --numpy-kwargs {', '.join(unknown)}: the NumPy loss takes "
                             f"no such keyword; its signature is loss{sig}")


class Shaped:
    """The user's (copied) model as the book's shape."""

    def __init__(self, model, *, cs231n=False, pair=False, layout="batch-first", kwargs=None):
        self.inner, self.cs231n, self.kwargs = model, cs231n, dict(kwargs or {})
        self.pair = pair  # loss(x, t) gives (loss, grads) and nothing gives scores
        self.features_first = layout == "features-first"
        self.sequence = False  # the batch is a sequence (N, T, D): set on the first 3-D x
        self.params = model.params
        # cs231n's scores in train mode exist only inside loss(X, y): the check reads them off
        # the last layer's record (a net without modes gives the same scores either way)
        self.predicts_train = not (cs231n and modal_cs231n(model))
        if self.cs231n or (not pair and callable(getattr(model, "predict", None))):
            self.predict = self._predict
        if self.cs231n or pair or callable(getattr(model, "gradient", None)):
            self.gradient = self._gradient

    @property
    def layers(self):
        return getattr(self.inner, "layers", None)

    def _x(self, x):
        if self.features_first and x.ndim == 3:  # a sequence: (n_x, m, T_x), the course's
            return x.transpose(2, 0, 1)
        return x.T if self.features_first and x.ndim == 2 else x

    def _t(self, t):
        if self.cs231n:  # one-hot rows to indices; captions (N, T) of token ids as they are
            one_hot = t.ndim == 2 and np.isin(t, (0, 1)).all() and (t.sum(axis=1) == 1).all()
            t = t.argmax(axis=1) if one_hot else t.astype(np.int64)
        if not self.features_first:
            return t
        classes = output_size(self.params)
        if t.ndim == 2 and np.issubdtype(t.dtype, np.integer) and self.sequence:
            # a token per step: one-hot (n_y, m, T_y), as the course's Y
            return np.eye(classes)[t].transpose(2, 0, 1)
        if t.ndim == 3:
            return t.transpose(2, 0, 1)
        if t.ndim == 2:
            return t.T
        if classes > 1 and np.issubdtype(t.dtype, np.integer):
            return np.eye(classes)[t].T
        return t.reshape(1, -1)

    def loss(self, x, t, **mode):
        self.sequence = self.sequence or np.ndim(x) == 3
        out = self.inner.loss(self._x(x), self._t(t), **mode, **self.kwargs)
        if self.cs231n or self.pair:
            if not (isinstance(out, tuple) and len(out) == 2):
                call = "loss(features, captions)" if self.pair else "loss(X, y)"
                raise PortSetupError(f"numpy side: {call} returned {type(out).__name__}, "
                                     f"expected (loss, grads) as cs231n's models return")
            return out[0]
        return out

    def _gradient(self, x, t):
        if self.cs231n or self.pair:
            out = self.inner.loss(self._x(x), self._t(t), **self.kwargs)
            return out[1] if isinstance(out, tuple) and len(out) == 2 else out
        self.sequence = self.sequence or np.ndim(x) == 3
        fn = self.inner.gradient
        sig = _signature(fn)
        extra = {k: v for k, v in self.kwargs.items() if sig is not None and k in sig.parameters}
        return fn(self._x(x), self._t(t), **extra)

    def _predict(self, x, **mode):
        """``mode``: the model's own flag (``train_flg``, ``training``, ``train``), passed on
        under the name the inner ``predict`` takes it by."""
        train = bool(next(iter(mode.values()), False))
        if self.cs231n:
            scores = self.inner.loss(self._x(x), **self.kwargs)  # y None: test mode, the scores
        else:
            keyword = mode_keyword(self.inner.predict)
            scores = self.inner.predict(self._x(x), **({} if keyword is None else {keyword: train}))
        scores = np.asarray(scores)
        if self.features_first and scores.ndim == 3:  # (n_y, m, T_y) back to (m, T_y, n_y)
            return scores.transpose(1, 2, 0)
        return scores.T if self.features_first and scores.ndim == 2 else scores


def modal_cs231n(model):
    return bool(getattr(model, "bn_params", None)) or bool(
        getattr(model, "use_dropout", False) or (getattr(model, "dropout_param", None) or {}).get("p", 1) != 1)


class BatchNormParams:
    """One ``bn_params[i]`` dict of cs231n's nets seen as a batch-norm layer: its running
    statistics as attributes (``None`` while the dict has none; ``None`` set takes the
    entry out, as before the first pass), its ``momentum`` (the old value's weight,
    0.9 by default) and ``eps`` (1e-5)."""

    def __init__(self, bn_param):
        object.__setattr__(self, "bn_param", bn_param)

    def __getattr__(self, name):
        if name in ("running_mean", "running_var"):
            return self.bn_param.get(name)
        if name == "momentum":
            return self.bn_param.get("momentum", 0.9)
        if name == "eps":
            return self.bn_param.get("eps", 1e-5)
        raise AttributeError(name)

    def __setattr__(self, name, value):
        if value is None:
            self.bn_param.pop(name, None)
        else:
            self.bn_param[name] = value


def cs231n_buffers(model, params):
    """``([(key, layer, attribute)], {param name: key})`` for cs231n's ``bn_params``: the
    i-th dict is the (i+1)-th batch-norm call's, with ``gamma{i+1}`` and ``beta{i+1}``."""
    owners, out = {}, []
    for i, bn_param in enumerate(getattr(model, "bn_params", None) or []):
        if not isinstance(bn_param, dict):
            continue
        key = f"batchnorm{i + 1}"
        layer = BatchNormParams(bn_param)
        out += [(key, layer, "running_mean"), (key, layer, "running_var")]
        for name in (f"gamma{i + 1}", f"beta{i + 1}"):
            if name in params:
                owners[name] = key
    return out, owners
