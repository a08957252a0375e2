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
A layer object of a class no kind claims, and a model with no layers at all (its forward
followed from inside), are written by their values (``layers/by_value.py``): each step as
the kind whose operation, applied, reproduces it. ``source.py`` lays the file out. Nothing
here names a kind.
"""
from dataclasses import dataclass
from keyword import iskeyword

import numpy as np

from ..copying import deep_copy
from ..data import command_batch
from ..known.weight_decay import fitted_lambda, penalty, weights_of
from ..layer_functions import function_kind
from ..layers import by_value, written_kind
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


def written_port(numpy_model, x=None, t=None, data=None, style="modules", numpy_kwargs=None):
    """``WrittenPort`` of ``numpy_model``, from one pass on ``x, t``, else on the batch
    ``compare port --data data`` takes first; ``numpy_kwargs``: keywords for its loss, as
    ``compare port --numpy-kwargs`` takes them."""
    if style not in STYLES:
        raise CannotWrite(f"style {style!r}: the styles are {', '.join(STYLES)}")
    side = reference_side(numpy_model, None, numpy_kwargs)
    if not isinstance(side, NumpySide):
        raise CannotWrite("a golden file holds no layer objects to write a port from")
    if x is None or t is None:
        x, t = command_batch(side.batch_params, side.dtype.name, data=data)
    build = _from_objects if side.items else _from_functions if side.functions else _from_inside
    layers, loss, decay = build(side, x, t, style)
    class_name = _identifier(type(_model(side)).__name__, "Model") + "Port"
    return WrittenPort(source_of(class_name, side.description, layers, loss, decay, side.dtype.name),
                       class_name, decay)


def _from_objects(side, x, t, style):
    records = _training_pass(side, x, t)
    layers = []
    for key, layer in side.items:
        record = records.get(key)
        held = _held(layer, side.params)
        if written_kind(type(layer).__name__) is None and record is not None:
            layers += _by_values(side, key, layer, held, record, style)
            continue
        seen = Seen(key, layer, held, side.params,
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
        if side.layout == "features-first":
            # the course's W (out, in), b (out, 1): each call known by the values it gives
            layers += _by_values(side, record.key, layer, _held(layer, side.params), record, style,
                                 f"the call {record.key} ({name})", name)
            continue
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


def _by_values(side, key, layer, held, record, style, place=None, cls=None):
    """A layer object of a class no kind claims, written as the kinds whose operations, on its
    recorded input and with every array it holds, give its recorded output (``by_value``)."""
    cls, place = cls or type(layer).__name__, place or f"layers[{key!r}]"
    arrays = {name: side.params[name] for name in held.values()}
    try:
        steps = by_value.steps_of(record.input, record.output, arrays, side.dtype, every=True)
    except CannotWrite as exc:
        raise CannotWrite(f"{place} ({cls}): {exc}") from None
    if steps is None:
        held_text = f" and its arrays ({', '.join(arrays)})" if arrays else ""
        raise CannotWrite(f"{place} ({cls}) is of no kind known by name, and no known kind "
                          f"reproduces its output from its input{held_text}, so it has no writer")
    out, x = [], record.input
    for k, (kind, roles) in enumerate(steps):
        name = key if k == 0 else f"{key}_{kind.name}"
        output = record.output if k == len(steps) - 1 else _value_of(kind, roles, x, side.params)
        seen = Seen(name, layer, roles, side.params, x, output, style=style)
        out.append((name, cls, _written(seen, place, kind, cls)))
        x = output
    return out


def _from_inside(side, x, t, style):
    """A model with no layers: the arrays its own code makes on one training pass of its
    loss, followed from inside, each written as the known steps that make it from the array
    before (``by_value.chain``), on the writer's copy with its parameters moved so that a
    bias at 0 shows; the loss the loss kind whose value of the last one is the model's loss,
    less a weight decay fitted and verified."""
    if side.layout == "features-first":
        raise CannotWrite(f"{side.description} has no layers, and its forward is followed from "
                          f"inside only batch first")
    by_value.moved(side.params)
    state = np.random.get_state()
    try:
        with side.capture(inside=True, x=x, t=t) as capture:
            whole = side.loss(x, t, "train")
        steps, scores, stop = by_value.chain(capture.records, x, side.params, side.dtype)
        points = [(scores, whole, {n: np.array(v) for n, v in side.params.items()})]
        by_value.moved(side.params, seed=1)  # a second point, where a penalty must hold again
        points.append((by_value.scores_of(steps, x, side.params), side.loss(x, t, "train"),
                       side.params))
    finally:
        np.random.set_state(state)
    found = by_value.loss_of(points, t, side.dtype, weights_of(side.params))
    last = f"{steps[-1][0].key} ({steps[-1][0].made})" if steps else "the batch"
    if not steps or found is None:
        before = last.split(" (")[0]
        if stop is not None:
            raise CannotWrite(f"{side.description} has no layers; followed from inside, no known "
                              f"kind reproduces {stop.key}, made at {stop.made}, from {before} "
                              f"and the model's parameters (nor is its loss a known loss of "
                              f"{before})")
        raise CannotWrite(f"{side.description} has no layers; followed from inside, its loss is "
                          f"no known loss of {last}")
    used = {n for _, s, _ in steps for _, held in s for n in held.values()}
    if set(side.params) - used:
        raise CannotWrite(f"{side.description} has no layers; followed from inside, no known step "
                          f"up to {last} uses {', '.join(sorted(set(side.params) - used))}")
    layers, counts = [], {}
    for record, record_steps, before in steps:
        place = f"{record.key} ({record.made})"
        for k, (kind, roles) in enumerate(record_steps):
            counts[kind.name] = counts.get(kind.name, 0) + 1
            name = f"{kind.name}{counts[kind.name]}"
            output = record.output if k == len(record_steps) - 1 else \
                _value_of(kind, roles, before, side.params)
            seen = Seen(name, None, roles, side.params, before, output, style=style)
            layers.append((name, record.key, _written(seen, place, kind, record.key)))
            before = output
    loss_kind, lam = found
    decay = None if lam == 0 else float(f"{lam:.6g}")
    loss = _written(Seen("loss", None, {}, side.params, style=style), "the loss", loss_kind,
                    "the loss", required=False)
    return layers, loss, decay


def _value_of(kind, roles, x, params):
    """The first step's output of two, as its kind computes it."""
    return next(value for held, value in kind.computes(x, params) if held == roles)


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
