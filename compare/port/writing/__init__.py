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
from ..tolerance import within
from .source import source_of


STYLES = ("modules", "functional")


@dataclass
class WrittenPort:
    source: str
    class_name: str
    decay: float = None  # the weight decay's lambda, written in make_optimizer
    loss_given: str = None  # the --loss the check is handed ("loss": the loss() written here)

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


def written_port(numpy_model, x=None, t=None, data=None, style="modules", numpy_kwargs=None,
                 input_shape=None):
    """``WrittenPort`` of ``numpy_model``, from one pass on ``x, t``, else on the batch
    ``compare port --data data`` takes first; ``numpy_kwargs``: keywords for its loss, as
    ``compare port --numpy-kwargs`` takes them."""
    if style not in STYLES:
        raise CannotWrite(f"style {style!r}: the styles are {', '.join(STYLES)}")
    side = reference_side(numpy_model, None, numpy_kwargs)
    if not isinstance(side, NumpySide):
        raise CannotWrite("a golden file holds no layer objects to write a port from")
    if x is None or t is None:
        x, t = command_batch(side.batch_params, side.dtype.name, data=data, input_shape=input_shape)
    build = _from_objects if side.items else _from_functions if side.functions else _from_inside
    layers, loss, decay = build(side, x, t, style)
    class_name = _identifier(type(_model(side)).__name__, "Model") + "Port"
    return WrittenPort(source_of(class_name, side.description, layers, loss, decay, side.dtype.name),
                       class_name, decay, None if loss is None else loss.loss_given)


def _from_objects(side, x, t, style):
    records, whole = _training_pass(side, x, t)
    layers, head = [], None
    for i, (key, layer) in enumerate(side.items):
        record = records.get(key)
        held = _held(layer, side.params)
        if written_kind(type(layer).__name__) is None and record is not None:
            if i == len(side.items) - 1 and not held:
                try:
                    head = _head(side, key, layer, record, x, t, whole, style)
                except CannotWrite as exc:
                    # a head whose loss is not its kind's: a layer of its own, if a kind
                    # reproduces it (a sigmoid before a squared error), else refused as a head
                    try:
                        layers += _by_values(side, key, layer, held, record, style)
                    except CannotWrite:
                        raise exc from None
                    continue
                if head is not None:
                    break
            layers += _by_values(side, key, layer, held, record, style)
            continue
        seen = Seen(key, layer, held, side.params,
                    None if record is None else record.input, None if record is None else record.output,
                    _transposed(layer, side.params), style)
        layers.append((key, type(layer).__name__, _written(seen, f"layers[{key!r}]")))
    if head is not None:
        return layers, *head
    loss_layer = _loss_layer(side)
    loss = None
    if loss_layer is not None:
        name, layer = loss_layer
        loss = _written(Seen(name, layer, {}, side.params, style=style), name, required=False)
    return layers, loss, _decay(side, x, t, loss_layer)


def _head(side, key, layer, record, x, t, whole, style):
    """``(loss, decay)`` where the last layer object, of a class no kind claims and with no
    arrays, is the head of the loss after it (nnfs's ``Activation_Softmax`` before
    ``Loss_CategoricalCrossentropy``): a loss kind's head makes its output of its input,
    and the model's loss is one of that kind's losses of those probabilities, or that plus
    a weight decay (``_decay_of``). The port then returns the head's input, the scores, and
    that kind's loss takes them. None where it is not such a head."""
    # the weights a penalty may be on: nnfs's biases (1, n) have two axes too, and torch's
    # nn.Linear bias, one, is decayed by no make_optimizer written here
    weights = {n: v for n, v in side.params.items() if np.ndim(v) >= 2 and 1 not in np.shape(v)}
    found, kinds = [], by_value.heads(record.input, record.output, side.dtype)
    for kind in kinds:
        for i, value in enumerate(kind.head_losses(record.output, t)):
            if within(np.array(whole), np.array(value), side.dtype):
                found.append((kind, None, i))
            else:
                decay = _decay_of(whole - value, whole, weights)
                if decay is not None:
                    found.append((kind, decay, i))
    if any(decay is not None for _, decay, _ in found):
        # a penalty fitted at one point must give the loss again at another
        by_value.moved(side.params, seed=1)
        again, whole_again = _training_pass(side, x, t)
        found = [(kind, decay, i) for kind, decay, i in found if decay is None or within(
            np.array(whole_again), np.array(kind.head_losses(again[key].output, t)[i] + penalty(
                weights, {n: decay for n in weights})), side.dtype)]
    if kinds and not found:
        found = _per_parameter(side, key, kinds, x, t)
    if kinds and not found:
        raise CannotWrite(f"layers[{key!r}] ({type(layer).__name__}) is the head of "
                          f"{kinds[0].name} (its output made of its input), but the model's loss "
                          f"is none of {kinds[0].name}'s losses of it, nor one plus a penalty "
                          f"0.5 * lambda * sum(p**2) on some of its parameters that holds at "
                          f"other sets of parameter values")
    if not found:
        return None
    if len({kind.name for kind, _, _ in found}) > 1:
        raise CannotWrite(f"layers[{key!r}] ({type(layer).__name__}): its values are the head of "
                          f"{found[0][0].name} and of {found[-1][0].name} alike on this batch, "
                          f"so they cannot tell which it is")
    kind, decay, _ = found[0]
    seen = Seen(key, layer, {}, side.params, record.input, record.output, style=style)
    return _written(seen, f"layers[{key!r}]", kind, type(layer).__name__), decay


def _per_parameter(side, key, kinds, x, t):
    """``[(kind, {parameter: lambda}, i)]``: a penalty ``0.5 * lambda_p * sum(p**2)`` with a
    lambda of each parameter's own (nnfs's per-layer ``weight_regularizer_l2`` and
    ``bias_regularizer_l2``), fitted by least squares over one pass more than there are
    parameters, each at parameter values moved anew, then rounded to the digits written and
    verified at every one of them; a lambda below a millionth of the largest is none."""
    names = list(side.params)

    def squares():
        return [float(np.sum(np.asarray(side.params[n], np.float64) ** 2)) for n in names]
    points = []
    for seed in range(2, len(names) + 4):
        by_value.moved(side.params, seed=seed)
        records, whole_k = _training_pass(side, x, t)
        points.append((whole_k, records[key].output, squares()))
    found = []
    for kind in kinds:
        per_point = [kind.head_losses(output, t) for _, output, _ in points]
        for i in range(min(map(len, per_point), default=0)):
            a = 0.5 * np.array([s for _, _, s in points])
            d = np.array([w - values[i] for (w, _, _), values in zip(points, per_point)])
            lam = np.linalg.lstsq(a, d, rcond=None)[0]
            top = float(np.max(lam)) if lam.size else 0.0
            lam = [0.0 if abs(v) <= 1e-6 * top else float(f"{v:.6g}") for v in lam]
            if top <= 0 or min(lam) < 0:
                continue
            if all(within(np.array(w), np.array(values[i] + float(np.dot(a_k, lam))), side.dtype)
                   for (w, _, _), values, a_k in zip(points, per_point, a)):
                found.append((kind, {n: v for n, v in zip(names, lam) if v}, i))
    return found


def _from_functions(side, x, t, style):
    """The layers as the calls of one training pass, in the order they ran: each call's
    arguments are its ``FunctionLayer``'s attributes (``w``, ``gamma``, a ``bn_param``'s
    ``eps``), its record the input and output the writer reads settings off."""
    capture, whole = _captured(side, x, t)
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
    loss, followed from inside (a features-first model's transposed, batch first), each
    written as the known steps that make it from the array before (``by_value.chain``), on
    the writer's copy with its parameters moved so that a bias at 0 shows; the loss the loss
    kind whose value of the last one (or, where the last step is that kind's head, a sigmoid
    before a binary cross-entropy, of the probabilities it makes) is the model's loss, less
    a weight decay fitted and verified."""
    by_value.moved(side.params)
    state = np.random.get_state()
    try:
        try:
            whole, (steps, scores, stop) = _followed(side, x, t)
        except CannotWrite as first:
            # two candidates alike at this point: followed again at the parameters negated,
            # where they may part; refused as first found where they do not
            by_value.negated(side.params)
            try:
                whole, (steps, scores, stop) = _followed(side, x, t)
            except CannotWrite:
                raise first from None
        outputs = by_value.outputs_of(steps, x, side.params)
        points = [(scores, _before(outputs, x), whole,
                   {n: np.array(v) for n, v in side.params.items()})]
        by_value.moved(side.params, seed=1)  # a second point, where a penalty must hold again
        outputs = by_value.outputs_of(steps, x, side.params)
        points.append((outputs[-1] if outputs else x, _before(outputs, x),
                       side.loss(x, t, "train"), side.params))
    finally:
        np.random.set_state(state)
    # a bias, gamma or beta held as a row (1, H) has two axes, but is no weight: the
    # port's make_optimizer decays none of them
    rows = {n for _, s, _ in steps for _, held in s for role, n in held.items()
            if role in ("b", "gamma", "beta")}
    found = by_value.loss_of(points, t, side.dtype,
                             [n for n in weights_of(side.params) if n not in rows])
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
    loss_kind, lam, head = found
    layers, counts = [], {}
    for r, (record, record_steps, before) in enumerate(steps):
        place = f"{record.key} ({record.made})"
        kept = record_steps[:-1] if head and r == len(steps) - 1 else record_steps
        for k, (kind, roles) in enumerate(kept):  # the loss's head left out: the port returns what it takes
            counts[kind.name] = counts.get(kind.name, 0) + 1
            name = f"{kind.name}{counts[kind.name]}"
            output = record.output if k == len(record_steps) - 1 else \
                _value_of(kind, roles, before, side.params)
            seen = Seen(name, None, roles, side.params, before, output, style=style)
            layers.append((name, record.key, _written(seen, place, kind, record.key)))
            before = output
    decay = None if lam == 0 else float(f"{lam:.6g}")
    loss = _written(Seen("loss", None, {}, side.params, before if head else scores, style=style),
                    "the loss", loss_kind, "the loss", required=False)
    return layers, loss, decay


def _followed(side, x, t):
    """``(loss, by_value.chain(...))`` of one training pass followed from inside."""
    with side.capture(inside=True, x=x, t=t) as capture:
        whole = side.loss(x, t, "train")
    return whole, by_value.chain(_as_port_holds(side, capture.records, x, t), x, side.params,
                                 side.dtype)


def _before(outputs, x):
    """The array the pass's last known step took."""
    return outputs[-2] if len(outputs) > 1 else x


def _as_port_holds(side, records, x, t):
    """The inside pass's arrays as the port holds them: a features-first model's ``(features,
    examples)`` transposed, batch first; the batch and the targets as its door hands them
    over (``x.T``, ``Y``) are no step of the forward and are passed over."""
    if side.layout != "features-first":
        return records
    handed = [side.model._x(x), side.model._t(t)]
    out = []
    for record in records:
        value = record.output
        if value is None or any(np.shape(value) == np.shape(h) and np.array_equal(value, h)
                                for h in handed):
            continue
        if np.ndim(value) == 2:
            record.output = np.asarray(value).T
        out.append(record)
    return out


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


def _captured(side, x, t):
    """``(capture, the loss)`` of one training-mode pass of the loss, the global random
    stream put back after (a dropout draws from it)."""
    state = np.random.get_state()
    try:
        with side.capture() as capture:
            whole = side.loss(x, t, "train")
    finally:
        np.random.set_state(state)
    return capture, whole


def _training_pass(side, x, t):
    """``({layer key: its first record}, the loss)`` of one training-mode pass (``_captured``)."""
    capture, whole = _captured(side, x, t)
    records = {}
    for record in capture.records:
        records.setdefault(record.key, record)
    return records, whole


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
