"""``write_port``: the torch port of a NumPy model, written from what its layers are.

The NumPy model goes through the check's own door (``reference.NumpySide``, on a
copy), runs one training-mode pass of its loss on the batch the check takes by
default (each layer's input and output recorded, the random stream put back after), and
each layer is handed to its kind's writer (``layers``' ``write``); the layer that
is the loss, held beside ``layers`` (the book's ``last_layer``), likewise. A model
whose layers are module-level functions (cs231n's ``affine_forward``,
``batchnorm_forward``, ...: ``layer_functions.py``) is written from the calls of
that pass, in the order they ran, each call handed to its kind's writer as a
``FunctionLayer``; the loss function it called (``softmax_loss``) is the port's loss.
A weight-decay penalty in the loss is read off the model: its loss minus its loss
layer's loss of its own scores (in evaluation mode; for layer functions, the loss
function's own return on the same training pass), fitted as ``0.5 * lambda *
sum(W**2)`` over the weights (the book's, and cs231n's ``0.5 * reg``).
``source.py`` lays the file out. Nothing here names a kind.
"""
from dataclasses import dataclass
from keyword import iskeyword

import numpy as np

from ..copying import deep_copy
from ..data import command_batch
from ..known.weight_decay import fitted_lambda, penalty, weights_of
from ..layer_functions import function_kind
from ..layers import written_kind
from ..layers.written import CannotWrite, Seen
from ..reference import NumpySide, reference_side
from ..reference.list_door import ListDoor, is_transpose, role_of
from ..targets import PortSetupError
from .source import source_of


STYLES = ("modules", "functional")


@dataclass
class WrittenPort:
    source: str
    class_name: str
    decay: float = None  # the weight decay's lambda, written in make_optimizer

    @property
    def has_optimizer(self):
        return self.decay is not None


def write_port(numpy_model, x=None, t=None, style="modules"):
    """The source of the torch port of ``numpy_model`` (a file that imports torch only:
    the port class, ``make_port()``, ``load_numpy_params(port, params)``), written from one
    pass on ``x, t`` (default: the batch ``compare port`` takes by default; token ids for a
    language model). ``style``: ``"modules"`` (``nn.Linear``, ``nn.Conv2d``, ...) or
    ``"functional"`` (``F.linear``, ``F.conv2d``, ... on ``nn.Parameter`` attributes). Raises
    ``CannotWrite`` naming the layer whose kind has no writer, and its place."""
    return written_port(numpy_model, x, t, style=style).source


def written_port(numpy_model, x=None, t=None, data=None, style="modules"):
    """``WrittenPort`` of ``numpy_model``, from one pass on ``x, t``, else on the batch
    ``compare port --data data`` takes first."""
    if style not in STYLES:
        raise CannotWrite(f"style {style!r}: the styles are {', '.join(STYLES)}")
    side = reference_side(numpy_model)
    if not isinstance(side, NumpySide):
        raise CannotWrite("a golden file holds no layer objects to write a port from")
    if not side.items and not side.functions:
        raise CannotWrite(f"{side.description} has no 'layers' of layer objects and calls no layer "
                          f"functions (affine_forward, relu_forward, ...): the port is written layer "
                          f"by layer, from the objects of model.layers or the calls of those functions")
    if x is None or t is None:
        x, t = command_batch(side.batch_params, side.dtype.name, data=data)
    layers, loss, decay = (_from_objects if side.items else _from_functions)(side, x, t, style)
    class_name = _identifier(type(_model(side)).__name__, "Model") + "Port"
    return WrittenPort(source_of(class_name, side.description, layers, loss, decay, side.dtype.name),
                       class_name, decay)


def _from_objects(side, x, t, style):
    records = _training_pass(side, x, t)
    layers = []
    for key, layer in side.items:
        record = records.get(key)
        seen = Seen(key, layer, _held(layer, side.params), side.params,
                    None if record is None else record.input, None if record is None else record.output,
                    _transposed(layer, side.params), style)
        layers.append((key, type(layer).__name__, _written(seen, f"layers[{key!r}]")))
    loss_layer = _loss_layer(side)
    loss = None
    if loss_layer is not None:
        name, layer = loss_layer
        loss = _written(Seen(name, layer, {}, side.params, style=style), name, required=False)
    return layers, loss, _decay(side, x, t, loss_layer)


def _from_functions(side, x, t, style):
    """The layers as the calls of one training pass, in the order they ran: each call's
    arguments are its ``FunctionLayer``'s attributes (``w``, ``gamma``, a ``bn_param``'s
    ``eps``), its record the input and output the writer reads settings off."""
    state = np.random.get_state()
    try:
        with side.capture() as capture:
            whole = side.loss(x, t, "train")
    finally:
        np.random.set_state(state)
    layers = []
    for record in capture.records:
        layer = side.function_layers[record.key]
        name = getattr(layer.fn, "__name__", record.kind)
        seen = Seen(record.key, layer, _held(layer, side.params), side.params, record.input,
                    record.output, style=style)
        layers.append((record.key, name, _written(seen, f"the call {record.key} ({name})",
                                                  function_kind(layer.stem), name)))
    if not layers:
        raise CannotWrite(f"{side.description} called no layer function on a training pass")
    loss, decay = None, None
    if capture.losses:
        name, kind, value = capture.losses[0]
        loss = _written(Seen(name, None, {}, side.params, style=style), name, kind, name, required=False)
        decay = _decay_of(whole - float(value), whole, side.params)
    return layers, loss, decay


def _written(seen, place, kind=None, cls=None, required=True):
    cls = cls or type(seen.layer).__name__
    kind = kind or written_kind(cls)
    if kind is None:
        if not required:
            return None
        raise CannotWrite(f"{place} ({cls}) is of no layer kind the checker knows, so it has "
                          f"no writer")
    try:
        written = kind.write(seen)
    except CannotWrite as exc:
        raise CannotWrite(f"{place} ({cls}, kind {kind.name}): {exc}") from None
    if written is None and required:
        raise CannotWrite(f"{place} ({cls}) is of kind {kind.name}, which has no "
                          f"{'functional ' if seen.functional else ''}writer yet")
    return written


def _training_pass(side, x, t):
    """``{layer key: its first record}`` of one training-mode pass of the loss, the global
    random stream put back after (a dropout draws from it)."""
    state = np.random.get_state()
    try:
        with side.capture() as capture:
            side.loss(x, t, "train")
    finally:
        np.random.set_state(state)
    records = {}
    for record in capture.records:
        records.setdefault(record.key, record)
    return records


def _held(layer, params):
    """``{attribute: NumPy parameter name}``: the arrays of ``params`` the layer keeps, in
    its attributes or in a ``params`` list (the book's second volume: by the role the list
    position has, ``Wx``, ``Wh``, ``b``)."""
    ids = {id(v): name for name, v in params.items()}
    held = {role: ids[id(v)] for role, v in _arrays(layer) if id(v) in ids}
    return held


def _transposed(layer, params):
    """``{role: NumPy parameter name}``: the arrays the layer holds as the transpose of a
    parameter (``TimeAffine(embed_W.T, b)``: its weight tied to the embedding's)."""
    ids = {id(v) for v in params.values()}
    return {role: name for role, v in _arrays(layer) if id(v) not in ids
            for name, p in params.items() if is_transpose(v, p)}


def _arrays(layer):
    """``[(role, array)]``: the arrays a layer keeps in its attributes, then in its
    ``params`` list."""
    if not hasattr(layer, "__dict__"):
        return []
    out = [(attr, v) for attr, v in vars(layer).items() if isinstance(v, np.ndarray)]
    listed = getattr(layer, "params", None)
    if isinstance(listed, (list, tuple)):
        out += [(role_of(layer, v, i), v) for i, v in enumerate(listed) if isinstance(v, np.ndarray)]
    return out


def _model(side):
    """The user's model (not the door the check sees a list-params model through)."""
    return side.inner.inner if isinstance(side.inner, ListDoor) else side.inner


def _loss_layer(side):
    """``(attribute, object)``: the layer object beside ``layers`` whose kind is known (the
    book's ``last_layer``), or None."""
    in_layers = {id(layer) for _, layer in side.items}
    model = _model(side)
    for attr, value in vars(model).items() if hasattr(model, "__dict__") else ():
        if id(value) not in in_layers and callable(getattr(value, "forward", None)) \
                and written_kind(type(value).__name__) is not None:
            return attr, value
    return None


def _decay(side, x, t, loss_layer):
    """The lambda of a weight-decay penalty ``0.5 * lambda * sum(W**2)`` in the NumPy loss:
    the loss less its loss layer's loss of the model's own scores, in evaluation mode (no
    draw), where it is that penalty to the digits written; None where there is none."""
    if loss_layer is None or not side.has_predict:
        return None
    try:
        scores = side.predict(x, "eval")
        whole = side.loss(x, t, "eval")
        of_scores = float(deep_copy(loss_layer[1]).forward(scores, t))
    except (PortSetupError, TypeError, ValueError):
        return None
    return _decay_of(whole - of_scores, whole, side.params)


def _decay_of(difference, whole, params):
    """Lambda where ``difference`` (the loss less the loss of the scores) is ``0.5 * lambda *
    sum(W**2)`` over the weights to the digits written; else None."""
    if abs(difference) <= 1e-12 * max(1.0, abs(whole)):
        return None
    lam = fitted_lambda(difference, params)
    if lam is None or lam <= 0:
        return None
    lam = float(f"{lam:.6g}")
    written = penalty(params, {name: lam for name in weights_of(params)})
    return lam if np.isclose(written, difference, rtol=1e-5, atol=0) else None


def _identifier(name, default):
    name = "".join(c for c in str(name) if c.isalnum() or c == "_")
    return name if name.isidentifier() and not iskeyword(name) else default
