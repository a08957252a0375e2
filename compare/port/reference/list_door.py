"""The book's second volume seen through the book's door.

*Deep Learning from Scratch 2* keeps a model's parameters as lists: ``params``
and ``grads`` of the same length, ``forward(x, t)`` returning the loss,
``backward(dout=1)`` filling ``grads`` in place (``self.grads[0][...] = dW``),
``predict(x)`` optional, and ``layers`` a list of layer objects, each with its
own ``params`` and ``grads`` lists. ``ListDoor`` is such a model as the book's
first-volume shape:

* ``params``: a dict named by layer and role (``Affine0.W``, ``Affine0.b``,
  ``Sigmoid0`` holding none), the model's own arrays, not copies; an array
  listed twice, or once and once as its transpose (tied weights: chapter 6's
  ``TimeAffine(embed_W.T, b)``), is one parameter, named where it is first listed;
* ``loss(x, t)``: ``forward(x, t)``;
* a stateful model's hidden state put back before each pass (``hidden_state.py``);
* ``gradient(x, t)``: ``forward``, then ``backward()``, then ``grads`` read
  (copies), the gradients of an array listed twice summed, a transpose's
  gradient added transposed, as the book's ``remove_duplicate`` sums them;
* a deep copy of the door keeps each transpose a view of its array's copy (a plain
  ``deepcopy`` would copy the view into an array of its own, and the tie would part:
  a change to the parameter, the numerical check's steps, would not reach the layer
  that computes with the transpose);
* ``layers``: the layer objects keyed by the same names, for the layer rows.

The arrays keep the dtype the model made them in: the book's ``'f'`` makes
a float32 check, with float32's derived tolerances.
"""
import copy

import numpy as np

from ..targets import PortSetupError

SIDE = "numpy side"

# the roles the book's layers list their arrays in, where the layer keeps them only in
# ``params`` (its ``Affine`` unpacks ``W, b = self.params`` in each pass)
ROLES = {
    "affine": ("W", "b"), "timeaffine": ("W", "b"),
    "embedding": ("W",), "timeembedding": ("W",), "embeddingdot": ("W",),
    "rnn": ("Wx", "Wh", "b"), "timernn": ("Wx", "Wh", "b"),
    "lstm": ("Wx", "Wh", "b"), "timelstm": ("Wx", "Wh", "b"),
    "gru": ("Wx", "Wh", "b"), "timegru": ("Wx", "Wh", "b"),
}


def is_list_model(model):
    """The book's second-volume shape: its parameters a list."""
    return isinstance(getattr(model, "params", None), (list, tuple))


def through_list_door(model):
    """``model`` as the book's first-volume shape where it keeps its parameters in a list
    (``ListDoor``); any other model as it is."""
    if not is_list_model(model):
        return model
    params, grads = model.params, getattr(model, "grads", None)
    name = type(model).__name__
    if not isinstance(grads, (list, tuple)):
        raise PortSetupError(f"{SIDE}: {name}.params is a list but {name}.grads is "
                             f"{type(grads).__name__}; a model with list params keeps "
                             f"grads as a list of the same length, filled by backward()")
    if len(grads) != len(params):
        raise PortSetupError(f"{SIDE}: {name}.params has {len(params)} arrays but {name}.grads "
                             f"has {len(grads)}; backward() must fill one gradient per parameter")
    for what in ("forward", "backward"):
        if not callable(getattr(model, what, None)):
            raise PortSetupError(f"{SIDE}: {name}.params is a list but {name} has no {what}(); "
                                 f"a model with list params offers forward(x, t) returning the "
                                 f"loss and backward(dout=1) filling grads")
    return ListDoor(model)


def role_of(layer, value, position):
    """The role of the array a layer lists at ``position``: the attribute that also holds
    it, else the role the book's layer of that class lists there (``Wx``, ``Wh``, ``b``)."""
    for attr, held in vars(layer).items() if hasattr(layer, "__dict__") else ():
        if held is value and attr not in ("params", "grads"):
            return attr
    roles = ROLES.get(type(layer).__name__.lower(), ())
    return roles[position] if position < len(roles) else f"params[{position}]"


def is_transpose(a, b):
    """``a`` is ``b.T``: the same memory read with the axes swapped."""
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.ndim == b.ndim == 2
            and a.shape == b.shape[::-1] and a.strides == b.strides[::-1]
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _shared_memory(params, first):
    """A pair of distinct parameters of ``params`` over the same memory, neither the other
    nor its transpose (a slice of another): the deep copy the check works on would part them."""
    for i, a in enumerate(params):
        for j in range(i + 1, len(params)):
            b = params[j]
            if first[j] == j and first[i] == i and np.shares_memory(a, b):
                return i, j
    return None


def _held(obj):
    params = getattr(obj, "params", None)
    return [p for p in params if isinstance(p, np.ndarray)] if isinstance(params, (list, tuple)) else []


def _children(obj):
    """``[(attribute path, object)]``: the objects ``obj`` holds in its attributes (and in
    lists or dicts there) that keep a ``params`` list of their own."""
    out = []
    for attr, value in vars(obj).items() if hasattr(obj, "__dict__") else ():
        if attr in ("params", "grads") or attr.startswith("_"):
            continue
        items = (list(value.items()) if isinstance(value, dict) else
                 list(enumerate(value)) if isinstance(value, (list, tuple)) else [(None, value)])
        for key, item in items:
            if isinstance(getattr(item, "params", None), (list, tuple)) and item is not obj:
                out.append((attr if key is None else f"{attr}.{key}", item))
    return out


def _is_container(obj, children):
    """``obj``'s arrays are its parts' (an ``Encoder`` of an embedding and an LSTM): not when
    two or more parts each hold all of them (a ``TimeLSTM``'s steps after a pass)."""
    own = _held(obj)
    if not children or not own:
        return False
    ids = [{id(p) for p in _held(child)} for _, child in children]
    covered = set().union(*ids)
    whole = {id(p) for p in own}
    return whole <= covered and sum(whole <= i for i in ids) < 2


def _layers_by_attribute(model, depth=4):
    """``{attribute path: layer}``: the layers a model without a ``layers`` list holds in its
    attributes (the book's ``Seq2seq``: ``encoder.embed``, ``encoder.lstm``, ``decoder.affine``),
    found through the parts that only gather their parts' arrays."""
    found, seen = {}, set()

    def walk(obj, path, left):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        children = _children(obj)
        if path and not _is_container(obj, children):
            if _held(obj):
                found[path] = obj
            return
        if left:
            for attr, child in children:
                walk(child, f"{path}.{attr}" if path else attr, left - 1)
    walk(model, "", depth)
    return found


def _layer_like(obj):
    return isinstance(getattr(obj, "params", None), list) and callable(getattr(obj, "forward", None))


def found_layers(model):
    """A model without ``layers`` (the book's word2vec: ``in_layers``, ``ns_loss``): the layer
    objects its attributes hold, in order, lists of them included. A layer whose ``params``
    list gathers its sub-layers' (the book's ``NegativeSamplingLoss``) stands for them; one
    that shares its sub-layer's list (``EmbeddingDot`` holding an ``Embedding``) is a layer."""
    out, seen = [], set()

    def visit(obj, depth):
        for value in list(vars(obj).values()) if hasattr(obj, "__dict__") else ():
            for item in (value if isinstance(value, (list, tuple)) else (value,)):
                if not _layer_like(item) or id(item) in seen or item is model:
                    continue
                seen.add(id(item))
                subs = [v for v in vars(item).values()
                        if _layer_like(v) or (isinstance(v, (list, tuple)) and any(map(_layer_like, v)))]
                shares = any(getattr(v, "params", None) is item.params for v in vars(item).values())
                if subs and not shares and depth < 3:
                    visit(item, depth + 1)
                else:
                    out.append(item)
    visit(model, 0)
    return out


def name_parameters(model):
    """``(names, layers, first)``: a name per list position (layer class, its count among
    the layers of that class, role; or, for a model that lists no layers covering its
    arrays, the layer's attribute path and role, ``encoder.lstm.Wx``), the layer objects
    keyed by their names, and for each position the first position that lists the same
    array, or the array it is the transpose of."""
    params = list(model.params)
    first = []
    for i, value in enumerate(params):
        first.append(next(j for j in range(i + 1) if params[j] is value or
                          (first[j] == j and j < i and is_transpose(value, params[j]))))
    names = [None] * len(params)
    layers, counts = {}, {}
    raw = getattr(model, "layers", None) or []
    raw = list(raw.values() if hasattr(raw, "values") else raw)
    listed = {id(p) for layer in raw for p in _held(layer)}
    keyed = None
    if any(id(p) not in listed for p in params):
        keyed = _layers_by_attribute(model)
        if not {id(p) for p in params} <= {id(p) for layer in keyed.values() for p in _held(layer)}:
            keyed = None  # neither way names every array
        elif any(part.isdigit() for key in keyed for part in key.split(".")):
            # layers kept in a list, each on its own part of the batch (the book's word2vec:
            # in_layers[i] on context column i): their outputs pair with no module's
            keyed = None
    if keyed is not None:
        chosen = [(layer, key, True) for key, layer in keyed.items()]
    elif raw:
        chosen = [(layer, None, True) for layer in raw]
    else:
        # the layer objects name the arrays, and give no layer rows (called with two inputs,
        # or on one column of the batch each, their outputs pair with no module's by shape)
        chosen = [(layer, None, False) for layer in found_layers(model)]
    for layer, key, rows in chosen:
        kind = type(layer).__name__
        if key is None:
            key = f"{kind}{counts.get(kind, 0)}"
            counts[kind] = counts.get(kind, 0) + 1
        if rows:
            layers[key] = layer
        for position, value in enumerate(getattr(layer, "params", None) or ()):
            for i, listed_value in enumerate(params):
                if listed_value is value and names[first[i]] is None:
                    names[first[i]] = f"{key}.{role_of(layer, value, position)}"
    for i in range(len(params)):
        if names[first[i]] is None:  # an array no listed layer holds
            names[first[i]] = f"params[{first[i]}]"
        names[i] = names[first[i]]
    return names, layers, first


class ListDoor:
    """The list-params model as the book's first-volume shape (see the module's text)."""

    def __init__(self, model):
        self.inner = model
        names, self.layers, first = name_parameters(model)
        shared = _shared_memory(model.params, first)
        if shared is not None:
            i, j = shared
            raise PortSetupError(f"{SIDE}: params[{i}] ({names[i]}) and params[{j}] ({names[j]}) "
                                 f"share memory, and neither is the other nor its transpose: "
                                 f"one parameter read in part by another cannot be checked as "
                                 f"two; list the array itself (or its transpose .T)")
        # position -> the position whose array it is the transpose of
        self.transposes = {i: first[i] for i in range(len(first))
                           if first[i] != i and model.params[i] is not model.params[first[i]]}
        self.positions = {}  # name -> the list positions that hold it
        for i, name in enumerate(names):
            self.positions.setdefault(name, []).append(i)
        self.params = {name: model.params[at[0]] for name, at in self.positions.items()}
        # cast with the parameters where the check runs in another dtype, so that backward's
        # in-place writes keep the run's precision
        self.cast_along = list(model.grads)
        self._state = None  # the hidden state as the first pass found it (hidden_state.py)
        self.loss = Fresh(self, "forward")
        if callable(getattr(model, "predict", None)):
            self.predict = Fresh(self, "predict")

    def fresh(self):
        """A stateful model's hidden state put back as the check found it: each of the
        check's passes starts where the first did."""
        if self._state is None:
            from ..hidden_state import NumpyState
            self._state = NumpyState(self.inner, [*self.inner.params, *self.inner.grads])
        self._state.put_back()

    def gradient(self, x, t):
        self.fresh()
        self.inner.forward(x, t)
        self.inner.backward()
        grads = self.inner.grads
        out = {}
        for name, at in self.positions.items():
            total = np.array(grads[at[0]])
            for i in at[1:]:  # tied: the sum, as remove_duplicate makes it
                total = total + (grads[i].T if i in self.transposes else grads[i])
            out[name] = total
        return out

    def __deepcopy__(self, memo):
        params = self.inner.params
        for i, j in self.transposes.items():
            view, array = params[i], params[j]
            if id(array) not in memo and id(view) in memo:  # the view cast or copied already
                memo[id(array)] = memo[id(view)].T
            else:
                memo[id(view)] = copy.deepcopy(array, memo).T
            memo.setdefault(id(memo), []).append(view)  # its id stays its own while copying
        twin = type(self).__new__(type(self))
        memo[id(self)] = twin
        for name, value in vars(self).items():
            setattr(twin, name, copy.deepcopy(value, memo))
        return twin


class Fresh:
    """``model.forward`` or ``model.predict`` of the list-params model, its hidden state put
    back first; its signature the model's own (so its mode keyword, the book's
    ``train_flg``, is seen)."""

    def __init__(self, door, name):
        self.door, self.name = door, name

    @property
    def __signature__(self):
        import inspect
        return inspect.signature(getattr(self.door.inner, self.name))

    def __call__(self, *args, **kwargs):
        self.door.fresh()
        return getattr(self.door.inner, self.name)(*args, **kwargs)
