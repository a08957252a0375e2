"""The NumPy model as the book writes one, seen through one narrow door.

The door (what any NumPy model offers, or an adapter of a few lines gives it):

* ``params``: a dict of float arrays, the parameters (required);
* ``loss(x, t)``: the loss, a number, on a batch ``x`` ``(N, ...)`` and its labels
  or targets ``t`` (required);
* ``gradient(x, t)``: a dict keyed like ``params`` (backprop; else the check takes
  central differences of ``loss``);
* ``predict(x)``: the scores ``(N, C)`` (compared with the port's output);
* ``layers``: an ordered dict (or list) of layer objects with ``forward(x)``
  (returning the output, or setting ``.output``) and ``backward(dout)``, holding
  references to the arrays of ``params``: the layer-by-layer rows.

Nothing else is assumed: the last layer may be called anything or be absent.
cs231n's ``loss(X, y=None, ...)`` and the features-first layout are recognised
and seen through this door (``shapes``), and so are the book's second volume's
``params`` and ``grads`` lists (``list_door``); a model with neither ``layers`` nor
layer objects has its module-level layer functions recorded
(``compare.port.layer_functions``).

The check works on a deep copy, so the user's model is never changed: not its
parameters, not the caches its layers keep. The copy's parameters can be cast
to the run's dtype: ``deepcopy``'s memo maps each original array to its cast,
so every layer that held a reference to ``params["W1"]`` holds the cast
array in the copy. What cannot be copied and is no state of the check's (the
module an adapter computes with, a lock, an open file) is shared (``copying``).
"""
import numpy as np

from ..capture import book_layer_capture, layer_items, param_owners
from ..copying import deep_copy
from ..layer_functions import function_capture, has_layer_functions
from .inside import existing_arrays, inside_capture
from ..draws import DrawTape
from ..layers import numpy_kind
from ..layers.dropout import drop_probability, is_dropout_record
from ..optimizers import numpy_optimizer_of, optimizer_name
from ..targets import PortSetupError, call_side, mode_keyword
from ..unit_axes import as_shape
from .predict_mode import runs_as_eval
from .uses import use_order
from .list_door import ListDoor, through_list_door
from .shapes import (LAYOUTS, Shaped, check_kwargs, cs231n_buffers, detect_layout, is_cs231n,
                     modal_cs231n, parse_kwargs, returns_loss_and_grads)

SIDE = "numpy side"


def _call(what, fn, *args):
    return call_side(SIDE, what, fn, *args)


def _float_array(value, name):
    if not isinstance(value, np.ndarray):
        raise PortSetupError(f"{SIDE}: params[{name!r}] is a {type(value).__name__}, expected a "
                             f"NumPy array (is this the torch model?)")
    if not np.issubdtype(value.dtype, np.floating):
        raise PortSetupError(f"{SIDE}: params[{name!r}] has dtype {value.dtype}, expected floats")
    return value


def _loss_value(value):
    """The loss of a ``(loss, grads)`` pair that the door did not see coming (a captioning
    model's loss handing its pair on from another call): its gradients are then taken by
    central differences, as for a model without ``gradient``."""
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
        return value[0]
    return value


def _not_finite(value):
    try:
        return np.ndim(value) == 0 and not np.isfinite(value)
    except TypeError:  # not a number: the numerical check says so
        return False


class NumpySide:
    def __init__(self, model, dtype=None, numpy_kwargs=None, numpy_layout=None):
        # the book's second volume keeps its parameters in lists: seen through the door first,
        # on the user's own arrays, so that the copy below copies the view with the model
        model = through_list_door(model)
        params = getattr(model, "params", None)
        if not isinstance(params, dict):
            raise PortSetupError(f"{SIDE}: the model ({type(model).__name__}) has no 'params' dict "
                                 f"(found {type(params).__name__}); a NumPy model keeps its "
                                 f"parameters in model.params = {{name: array}}")
        if not params:
            raise PortSetupError(f"{SIDE}: model.params is empty: nothing to compare")
        if not callable(getattr(model, "loss", None)):
            raise PortSetupError(f"{SIDE}: the model ({type(model).__name__}) has no loss(x, t)")
        for name, value in params.items():
            _float_array(value, name)
        first = next(iter(params.values())).dtype
        self.dtype = np.dtype(first if dtype is None else dtype)
        if self.dtype not in (np.float32, np.float64):
            raise PortSetupError(f"dtype must be float64 or float32, got {self.dtype}")
        along = [v for v in getattr(model, "cast_along", ()) if isinstance(v, np.ndarray)]
        memo = {id(v): v.astype(self.dtype) for v in [*params.values(), *along] if v.dtype != self.dtype}
        try:
            self.model = deep_copy(model, memo)
        except Exception as exc:
            raise PortSetupError(f"{SIDE}: the model cannot be copied ({type(exc).__name__}: "
                                 f"{exc}); the check never changes a user's model, so it needs "
                                 f"a copyable one") from exc
        self.params = self.model.params
        self.items = layer_items(getattr(self.model, "layers", None))
        self.owners = param_owners(self.items, self.params)
        self.description = type(model.inner if isinstance(model, ListDoor) else model).__name__
        # the book's chapter-6 nets take their mode as loss(x, t, train_flg=...) and
        # predict(x, train_flg=...); the check's gradients are training's
        self.loss_mode = mode_keyword(self.model.loss)
        self.predict_mode = mode_keyword(getattr(self.model, "predict", None))
        self.tape = DrawTape()
        self._shape(numpy_kwargs, numpy_layout)

    def _shape(self, numpy_kwargs, numpy_layout):
        """cs231n's protocol, a features-first layout, keywords for the loss: the copy seen
        through the book's door (``shapes.Shaped``); the book's own shape as it is."""
        kwargs = parse_kwargs(numpy_kwargs)
        check_kwargs(self.model, kwargs)
        if numpy_layout is not None and numpy_layout not in LAYOUTS:
            raise PortSetupError(f"--numpy-layout must be one of {LAYOUTS}, got {numpy_layout!r}")
        self.layout = numpy_layout or detect_layout(self.params)
        self.cs231n = is_cs231n(self.model)
        # cs231n's captioning models: loss(features, captions) -> (loss, grads), no scores
        self.pair_loss = not self.cs231n and returns_loss_and_grads(self.model)
        self.kwargs = kwargs
        self.function_layers = {}  # record key -> FunctionLayer, of the latest capture
        self.predicts_train = True
        inner = self.model
        self.functions = not self.items and has_layer_functions(inner)
        self.inner = inner
        if self.cs231n or self.pair_loss or self.layout == "features-first" or kwargs:
            self.model = Shaped(inner, cs231n=self.cs231n, pair=self.pair_loss, layout=self.layout,
                                kwargs=kwargs)
            self.predicts_train = self.model.predicts_train
            self.loss_mode = None if self.cs231n else mode_keyword(inner.loss)
            self.predict_mode = "train_flg" if self.cs231n else mode_keyword(getattr(inner, "predict", None))
            if self.cs231n:
                self.description += " (cs231n's loss(X, y=None): scores or (loss, grads))"
            if self.pair_loss:
                self.description += " (cs231n's loss(features, captions): (loss, grads))"
            if self.layout == "features-first":
                self.description += " (features first: x.T, W (out, in))"
        # the batch is handed over transposed, and so are the draws made on it, for the port
        self.tape.transpose = self.layout == "features-first"
        self._buffers, bn_owners = cs231n_buffers(inner, self.params) if self.functions else ([], {})
        for name, key in bn_owners.items():
            self.owners.setdefault(name, key)

    @property
    def batch_params(self):
        """The parameters in the batch-first layout, from which a batch's shape is drawn."""
        if self.layout != "features-first":
            return self.params
        return {k: v.T if v.ndim == 2 else v for k, v in self.params.items()}

    def capture(self, inside=False, x=None, t=None):
        """The recording of one pass: the layer objects' calls, or the layer functions';
        for a model with neither, with ``inside``, the arrays its own code makes
        (``inside.py``)."""
        if inside and not self.items and not self.functions:
            return inside_capture(existing_arrays(self.inner, x, t))
        if self.functions:
            self.function_layers = {}
            return function_capture(self.inner, self.params, self.layout == "features-first",
                                    self.function_layers)
        return book_layer_capture(self.items, self.owners)

    def layer_of(self, key):
        """The layer object behind a record's key (a ``FunctionLayer`` for a function's call)."""
        return dict(self.items).get(key) or self.function_layers.get(key)

    def drop_probability(self, record):
        return drop_probability(dict(self.items).get(record.key), None)

    @property
    def modal(self):
        """Training and evaluation compute different things (batch norm, dropout)."""
        if self.cs231n:
            return modal_cs231n(self.inner)
        return bool(self.loss_mode or self.predict_mode) or any(
            (k := numpy_kind(type(layer).__name__)) is not None and k.has_modes for _, layer in self.items)

    @property
    def buffer_owners(self):
        """``[(layer key, layer, numpy attribute)]`` of the running statistics the layers keep."""
        out = list(self._buffers)
        for key, layer in self.items:
            kind = numpy_kind(type(layer).__name__)
            for attr, _ in (kind.buffers if kind else ()):
                out.append((key, layer, attr))
        return out

    def buffers(self):
        """A copy of every buffer (``None`` where a layer has not made it yet)."""
        return {(key, attr): None if getattr(layer, attr, None) is None else np.array(getattr(layer, attr))
                for key, layer, attr in self.buffer_owners}

    def restore_buffers(self, saved):
        for key, layer, attr in self.buffer_owners:
            value = saved.get((key, attr))
            setattr(layer, attr, None if value is None else value.copy())

    def _kwargs(self, keyword, mode):
        return {} if keyword is None or mode is None else {keyword: mode == "train"}

    def loss_function(self, x, t, mode="train"):
        """The loss as a function of the parameters alone, on the recorded draw: what the
        numerical check differentiates."""
        kwargs = self._kwargs(self.loss_mode, mode)

        def loss():
            with self.tape.numpy_pass():
                value = _loss_value(call_side(SIDE, "loss", self.model.loss, x, t, **kwargs))
            if _not_finite(value):  # it was finite at the given point
                raise PortSetupError(f"{SIDE}: loss(x, t) is {float(value)} with the parameters "
                                     f"moved by the numerical check's small step: no central "
                                     f"differences of the NumPy loss can be taken there")
            return value
        return loss

    batch = None  # a live model is checked on the batch it is given

    @property
    def has_gradient(self):
        return callable(getattr(self.model, "gradient", None))

    @property
    def has_predict(self):
        return callable(getattr(self.model, "predict", None))

    def loss(self, x, t, mode="train"):
        with self.tape.numpy_pass():
            value = _loss_value(call_side(SIDE, "loss", self.model.loss, x, t,
                                          **self._kwargs(self.loss_mode, mode)))
        try:
            return float(value)
        except (TypeError, ValueError):
            raise PortSetupError(f"{SIDE}: loss(x, t) returned {type(value).__name__}, "
                                 f"expected a number") from None

    def predict(self, x, mode="train"):
        with self.tape.numpy_pass():
            return np.asarray(call_side(SIDE, "predict", self.model.predict, x,
                                        **self._kwargs(self.predict_mode, mode)))

    def predict_mode_on(self, x):
        """The mode ``predict`` computes in when the check asks it for training's scores:
        ``"train"`` where it takes a mode flag (given ``True``), else as a probe of the NumPy
        side finds it (``predict_mode.runs_as_eval``): ``"eval"`` for a ``predict`` that draws
        nothing and treats each row alone, as evaluation does."""
        if self.predict_mode is not None or not self.has_predict:
            return "train"
        if getattr(self, "_predict_runs", None) is None:
            saved = self.buffers()
            try:
                found = runs_as_eval(lambda a: call_side(SIDE, "predict", self.model.predict, a),
                                     x, self.dtype)
            finally:
                self.restore_buffers(saved)
            self._predict_runs = "eval" if found else "train"
        return self._predict_runs

    def gradient(self, x, t):
        with self.tape.numpy_pass():
            grads = _call("gradient", self.model.gradient, x, t)
        if not isinstance(grads, dict):
            raise PortSetupError(f"{SIDE}: gradient(x, t) returned {type(grads).__name__}, "
                                 f"expected a dict keyed like params")
        missing = [k for k in self.params if k not in grads]
        if missing:
            raise PortSetupError(f"{SIDE}: gradient(x, t) has no entry for {missing} "
                                 f"(it has {sorted(grads)})")
        # a gradient (1, D) of a parameter (D,) holds its values: kept in the parameter's shape
        return {k: as_shape(np.array(grads[k], dtype=self.dtype), self.params[k].shape)
                for k in self.params}

    def run(self, x, t):
        """One pass recorded layer by layer (backprop when the model has it, else the
        loss), then the loss alone, on the same draw, with the running statistics as one
        pass leaves them. Returns ``(capture, loss, gradients or None)``."""
        saved = self.buffers()
        with self.capture(inside=True, x=x, t=t) as capture:
            if self.has_gradient:
                grads = self.gradient(x, t)
            else:
                grads = None
                self.loss(x, t)
        self.tape.keep_masks(capture.records, is_dropout_record, self.drop_probability)
        after = self.buffers()
        self.restore_buffers(saved)
        loss = self.loss(x, t)
        self.restore_buffers(after)
        return capture, loss, grads

    def use_order(self, x, t):
        """``[(name, role)]``: what the forward pass first computes with each parameter, in
        order (``uses``)."""
        return use_order(self, x, t)

    def recorded_predict(self, x, mode):
        """``predict`` recorded layer by layer: ``(capture, scores)``."""
        with self.capture() as capture:
            scores = self.predict(x, mode)
        return capture, scores


    def check_training(self):
        """Nothing to refuse before the first batch: the gradient is asked for by the
        training itself."""

    def training_reference(self, numpy_optimizer, lr, draw, steps):
        return LiveReference(self, numpy_optimizer, lr, draw)


class LiveReference:
    """The NumPy model trained step by step with the book's ``update(params, grads)``."""

    storage = "full"

    def __init__(self, side, numpy_optimizer, lr, draw):
        if not side.has_gradient:
            raise PortSetupError("numpy side: training side by side needs the NumPy model's "
                                 "gradient(x, t) (backprop): one numerical gradient per step "
                                 "costs two loss evaluations per parameter element")
        self.side, self.draw = side, draw
        self.optimizer = numpy_optimizer_of(numpy_optimizer, lr)
        self.name = optimizer_name(self.optimizer)

    def batch(self, k):
        return self.draw(k)

    def step(self, k, x, t):
        """The loss on the batch, then the parameters after the update: one draw for the
        step, and the running statistics updated by one pass, as training updates them."""
        side = self.side
        side.tape.restart()
        saved = side.buffers()
        with side.capture() as capture:
            loss = side.loss(x, t)
        side.tape.keep_masks(capture.records, is_dropout_record, side.drop_probability)
        side.restore_buffers(saved)
        self.capture = capture
        call_side("numpy optimizer", "update", self.optimizer.update, side.params, side.gradient(x, t))
        return loss, {n: v.copy() for n, v in side.params.items()}
