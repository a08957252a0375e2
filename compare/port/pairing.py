"""Parameter twins: which torch parameter holds which NumPy parameter.

In this order:

1. ``param_map`` (``--param-map W1=fc1.weight,b1=fc1.bias``): as given; a
   ``.T`` suffix says the torch tensor is the transpose, and a 2-D pair
   whose shapes are each other's transpose is taken as transposed anyway;
2. the same names on both sides (a literal port): paired by name;
3. by use (``pair_by_use``): what each side's forward pass first computes
   with each parameter (``reference/uses.py``, ``torch_uses.py``): within each
   role (a product's ``matrix``, an added ``shift``, a multiplied ``scale``)
   and group of shapes that can hold each other (as they are, transposed, or
   but for axes of length 1), the i-th parameter one pass uses with the i-th
   the other uses. A dict's order never enters: ``W1, W2, W3, b1, b2, b3``
   or ``b2, beta1, W1, ...`` pair the same. Where the roles pair one way and
   the order of use alone another, refused as ambiguous;
4. where the passes cannot be followed, by order and shape: the i-th NumPy
   parameter (in the order of its layers) with the i-th torch one, equal
   shapes as they are and transposed 2-D shapes as transposed; ``nn.Linear``
   stores ``W.T``, so its (square) weight is transposed even when the shapes
   cannot tell. A dict's order (no layer objects: ``ordered`` false) pairs
   only groups of one: a group of several is refused, with its names and a
   ``--param-map`` to give, never guessed.

A convolution kernel written channels last, ``(h, w, c_in, n_f)`` (Keras's layout), pairs
with ``nn.Conv2d``'s ``(n_f, c_in, h, w)`` by the axis permutation (``Pair.permute``; shown
as ``conv.weight.permute(2, 3, 1, 0)``, and so written in ``--param-map``, where a ``.T``
of a kernel is taken as this layout). Where the shape also fits another order (``h == w``,
``c_in == n_f``), ``Pair.also_fits`` lists them: the check's values decide
(``check/kernel_order.py``).

A bias held as a column or a row (the course's ``b1`` ``(n_h, 1)``, Neural
Networks from Scratch's ``biases`` ``(1, n)``) pairs with a torch bias ``(n,)``
reshaped (``Pair.reshape``: the NumPy shape). In a features-first model
(``W`` ``(out, in)``), ``nn.Linear.weight`` is ``W`` as it is: no weight is
taken as transposed unless the shapes say so.

What cannot be paired is refused with both sides listed.
"""
import re
from dataclasses import dataclass

import numpy as np

from .targets import PortSetupError
from .unit_axes import same_values, squeezed


@dataclass(frozen=True)
class Pair:
    numpy: str
    torch: str
    transposed: bool = False
    reshape: tuple = None  # the NumPy shape, where the torch tensor holds it in another
    permute: tuple = None  # the NumPy axes in the torch tensor's order (a channels-last kernel)
    also_fits: tuple = ()  # other axis orders the shapes allow: the forward's values decide
    # a recurrent layer's fused gates: the torch tensor's first axis holds len(gates) blocks,
    # block k the NumPy block gates[k]; gate_names: (NumPy letters, torch letters)
    gates: tuple = None
    gate_names: tuple = None
    gate_axis: int = 0  # the torch tensor's axis the blocks lie along
    # torch tensors the NumPy value is the sum with (``bias_hh`` beside ``bias_ih``): loaded
    # with zeros, their values added when read back; their gradient is this one's
    summed: tuple = ()
    # the NumPy array cut across torch tensors (the course's Wf (H, H+D) is rows of
    # weight_hh and of weight_ih): (torch name, first row, end row, first column, end column
    # or None for a vector, zero) each; a zero piece is loaded with zeros and added when read
    # (bias_hh beside bias_ih). ``torch`` is then the first piece's tensor, ``reshape`` the
    # NumPy shape
    pieces: tuple = ()
    concat: str = None  # the order of the NumPy matrix's columns: "[a_prev; x]" or "[x; a_prev]"

    def to_dict(self):
        out = {"numpy": self.numpy, "torch": self.torch, "transposed": self.transposed}
        if self.reshape is not None:
            out["reshaped"] = list(self.reshape)
        if self.permute is not None:
            out["layout"] = self.view
        if self.gates is not None:
            out["gates"] = self.gate_text
        if self.summed:
            out["summed"] = list(self.summed)
        return out

    @property
    def view(self):
        """The torch tensor as it holds the NumPy value: ``fc1.weight.T``,
        ``conv.weight.permute(2, 3, 1, 0)``, ``lstm.bias_ih_l0 + lstm.bias_hh_l0``."""
        if self.permute is not None:
            return f"{self.torch}.permute({', '.join(str(a) for a in inverse(self.permute))})"
        if self.pieces:
            cut = lambda p: f"{p[0]}[{p[1]}:{p[2]}]"
            kept = [cut(p) for p in self.pieces if not p[5]]
            added = [cut(p) for p in self.pieces if p[5]]
            if added:
                return " + ".join((*kept, *added))
            return " | ".join(kept)
        if self.summed:
            return " + ".join((self.torch, *self.summed))
        return self.torch + (".T" if self.transposed else "")

    @property
    def torch_names(self):
        """Every torch tensor this pair reads or writes."""
        return tuple(dict.fromkeys((self.torch, *self.summed, *(p[0] for p in self.pieces))))

    def to_pieces(self, value):
        """``[(torch name, first row, end row, array or None for zeros)]``: the NumPy value cut
        into the torch tensors' rows."""
        out = []
        for name, start, stop, c0, c1, zero in self.pieces:
            part = None if zero else (value[:, c0:c1] if c1 is not None else value.reshape(-1))
            out.append((name, start, stop, part))
        return out

    def from_pieces(self, values, zeros=True):
        """The NumPy value put together from the torch tensors' rows (``values``: name ->
        array); ``zeros``: the zero pieces added (a value), or left out (a gradient, which
        each piece of a sum has whole). None where a piece's tensor has none."""
        parts = [(values.get(p[0]), p) for p in self.pieces if zeros or not p[5]]
        if any(v is None for v, _ in parts):
            return None
        out = np.zeros(self.reshape, dtype=np.result_type(*[v for v, _ in parts]))
        for value, (name, start, stop, c0, c1, zero) in parts:
            if c1 is None:
                out.reshape(-1)[...] += value[start:stop]
            else:
                out[:, c0:c1] += value[start:stop]
        return out

    @property
    def gate_text(self):
        if self.gates is None:
            return ""
        if self.gate_names is None:
            return f"gate blocks {list(self.gates)} of the NumPy value in the port's order"
        mine, theirs = self.gate_names
        return f"gate blocks {','.join(mine)} (NumPy) -> {','.join(theirs)} (torch)"

    def to_torch(self, value, torch_shape):
        """A NumPy value in the torch tensor's layout."""
        if self.permute is not None:
            return value.transpose(self.permute)
        value = value.T if self.transposed else value
        value = value.reshape(torch_shape) if self.reshape is not None else value
        return value if self.gates is None else gate_blocks(value, self.gates, self.gate_axis)

    def to_numpy(self, value):
        """A torch value (as an array) in the NumPy layout."""
        if self.permute is not None:
            return value.transpose(inverse(self.permute))
        if self.gates is not None:
            value = gate_blocks(value, inverse(self.gates), self.gate_axis)
        if self.reshape is not None:
            return value.reshape(self.reshape)
        return value.T if self.transposed else value

    def __str__(self):
        shown = f" reshaped to {tuple(self.reshape)}" if self.reshape is not None else ""
        if self.summed:
            shown += f" ({', '.join(self.summed)} = 0)"
        if self.gates is not None:
            shown += f", {self.gate_text}"
        if self.concat is not None:
            shown += f", the NumPy columns {self.concat}"
        return f"{self.numpy} <-> {self.view}{shown}"


def gate_blocks(value, order, axis=0):
    """``value``'s ``axis`` cut into ``len(order)`` equal blocks, block k of the result
    block ``order[k]`` of ``value``."""
    size = value.shape[axis] // len(order)
    return np.take(value, [b * size + i for b in order for i in range(size)], axis=axis)


# a convolution kernel written channels last, (h, w, c_in, n_f) as Keras keeps it, in
# torch's (n_f, c_in, h, w): the one permutation tried where the shapes are not equal
CHANNELS_LAST = (3, 2, 0, 1)
# what a kernel's shape alone cannot tell apart from it: h and w, or c_in and n_f, swapped
KERNEL_ORDERS = ((3, 2, 1, 0), (2, 3, 0, 1), (2, 3, 1, 0))


def inverse(perm):
    return tuple(sorted(range(len(perm)), key=lambda a: perm[a]))


def _permuted(n_shape, t_shape):
    """The channels-last pair of two kernel shapes, with the other orders that also fit."""
    if len(n_shape) != 4 or len(t_shape) != 4 or tuple(n_shape) == tuple(t_shape):
        return None
    fits = lambda perm: tuple(n_shape[a] for a in perm) == tuple(t_shape)
    if not fits(CHANNELS_LAST):
        return None
    return CHANNELS_LAST, tuple(p for p in KERNEL_ORDERS if fits(p))


def _listing(np_shapes, torch_shapes):
    left = ", ".join(f"{k} {tuple(s)}" for k, s in np_shapes.items())
    right = ", ".join(f"{k} {tuple(s)}" for k, s in torch_shapes.items())
    return f"NumPy: {left or 'none'}; torch: {right or 'none'}"


UNFOLLOWED = "what the forward passes compute with them could not be followed"


def parse_param_map(text):
    """``"W1=fc1.weight.T,b1=fc1.bias"`` -> ``{"W1": ("fc1.weight", True), ...}``; a sum
    (``b=rnn.bias_ih_l0+rnn.bias_hh_l0``) kept as one name, cut by ``_summands``."""
    if text is None:
        return None
    if isinstance(text, dict):
        items = text.items()
    else:
        items = []
        # a comma inside permute(...) belongs to it
        for part in filter(None, (p.strip() for p in re.split(r",(?![^()]*\))", str(text)))):
            numpy_name, sep, torch_name = part.partition("=")
            if not sep or not numpy_name.strip() or not torch_name.strip():
                raise PortSetupError(f"--param-map entries are NUMPY=TORCH (TORCH may end in .T or "
                                     f".permute(...), or be a sum A+B), "
                                     f"got {part!r}")
            items.append((numpy_name.strip(), torch_name.strip()))
    out = {}
    for numpy_name, torch_name in items:
        match = PERMUTE.fullmatch(torch_name)
        if match is not None:  # the torch tensor's axes in the NumPy order
            axes = tuple(int(a) for a in match.group(2).replace(" ", "").split(",") if a)
            if sorted(axes) != list(range(len(axes))):
                raise PortSetupError(f"--param-map: {numpy_name}={torch_name}: permute takes each "
                                     f"axis once, got {axes}")
            out[numpy_name] = (match.group(1), inverse(axes))
            continue
        torch_name = torch_name.replace(" ", "")  # a sum, "bias_ih_l0 + bias_hh_l0", kept whole
        transposed = torch_name.endswith(".T")
        out[numpy_name] = (torch_name[:-2] if transposed else torch_name, transposed)
    return out


def _summands(t_name):
    """``"rnn.bias_ih_l0+rnn.bias_hh_l0"`` -> ``["rnn.bias_ih_l0", "rnn.bias_hh_l0"]``: a NumPy
    value that is the sum of torch tensors (torch's two recurrent biases)."""
    return [n for n in t_name.split("+") if n] if isinstance(t_name, str) else [t_name]


PERMUTE = re.compile(r"(.+)\.permute\(([\d,\s]+)\)")


def _fits(np_shape, torch_shape, transposed):
    if transposed:
        return len(np_shape) == 2 and tuple(np_shape) == tuple(torch_shape)[::-1]
    return tuple(np_shape) == tuple(torch_shape)


def _reshapes(np_shape, torch_shape):
    """Shapes that differ only by axes of length 1 (a bias ``(1, n)``, ``(n, 1)`` or
    ``(1, n, 1, 1)`` against ``(n,)``), either way round."""
    return tuple(np_shape) != tuple(torch_shape) and same_values(np_shape, torch_shape)


def pair_parameters(np_shapes, torch_shapes, *, param_map=None, linear_weights=(), ordered=True,
                    uses=None):
    """A list of ``Pair``; ``np_shapes`` and ``torch_shapes`` are ``{name: shape}``, in the
    order of their layers where that is known; ``ordered``: the NumPy order is the order of
    its layers, not a dict's; ``uses``: ``(numpy uses, torch uses)``, each ``[(name, role)]``
    in the order a forward pass first computes with each parameter, or None (see ``uses``)."""
    mapping = parse_param_map(param_map)
    if mapping is not None:
        return _pair_by_map(np_shapes, torch_shapes, mapping)
    if set(np_shapes) == set(torch_shapes):
        return _pair_by_name(np_shapes, torch_shapes)
    if len(np_shapes) != len(torch_shapes):
        raise PortSetupError(
            f"cannot pair parameters: the NumPy model has {len(np_shapes)}, the torch model "
            f"{len(torch_shapes)} (give --param-map NUMPY=TORCH,...). "
            + _listing(np_shapes, torch_shapes))
    if uses is not None and None not in uses:
        by_use = pair_by_use(np_shapes, torch_shapes, *uses, linear_weights)
        if by_use is not None:
            return by_use
    pairs = []
    for (n_name, n_shape), (t_name, t_shape) in zip(np_shapes.items(), torch_shapes.items()):
        pair = _pair_one(n_name, n_shape, t_name, t_shape, linear_weights)
        if pair is None:
            pairs = _pair_by_structure(np_shapes, torch_shapes, linear_weights)
            if pairs is not None:
                return pairs
            shapes = (np_shapes, torch_shapes)
            guess = _in_order(lambda side, name, role: shape_group(shapes[side][name]),
                              [(k, None) for k in np_shapes], [(k, None) for k in torch_shapes],
                              np_shapes, torch_shapes, linear_weights)
            if guess is not None:  # the shapes pair, but not one way only
                _refuse_ambiguous(np_shapes, torch_shapes, guess, UNFOLLOWED)
            raise PortSetupError(
                f"cannot pair parameters by order: NumPy {n_name} {tuple(n_shape)} against torch "
                f"{t_name} {tuple(t_shape)} (give --param-map NUMPY=TORCH,...). "
                + _listing(np_shapes, torch_shapes))
        pairs.append(pair)
    if not ordered:
        # a dict's order is no evidence: only shapes that pair one way are paired so
        _refuse_ambiguous(np_shapes, torch_shapes, pairs, UNFOLLOWED)
    return pairs


def one_way(np_shapes, torch_shapes):
    """True when no two parameters of a side have shapes that could hold each other: the
    shapes alone then pair them, one way only."""
    return all(len({shape_group(s) for s in shapes.values()}) == len(shapes)
               for shapes in (np_shapes, torch_shapes))


def _pair_by_name(np_shapes, torch_shapes):
    pairs = [Pair(k, k, False) for k in np_shapes]
    bad = [p for p in pairs if not _fits(np_shapes[p.numpy], torch_shapes[p.torch], False)]
    bad_r = [p for p in bad if _reshapes(np_shapes[p.numpy], torch_shapes[p.torch])]
    bad_t = [p for p in bad if _fits(np_shapes[p.numpy], torch_shapes[p.torch], True)]
    if bad and len(bad_t) + len(bad_r) == len(bad):
        pairs = [Pair(p.numpy, p.torch, p in bad_t,
                      tuple(np_shapes[p.numpy]) if p in bad_r else None) for p in pairs]
    elif bad:
        p = next(p for p in bad if p not in bad_t and p not in bad_r)
        raise PortSetupError(f"cannot pair parameters: {p.numpy} has shape "
                             f"{tuple(np_shapes[p.numpy])} on the NumPy side and "
                             f"{tuple(torch_shapes[p.torch])} on the torch side. "
                             + _listing(np_shapes, torch_shapes))
    return pairs


def _in_order(keys, np_uses, t_uses, np_shapes, torch_shapes, linear_weights):
    """Within each key's group, the i-th NumPy parameter to use it with the i-th torch one;
    None where a group's counts differ or a pair's shapes cannot hold each other."""
    groups = {}
    for side, uses in ((0, np_uses), (1, t_uses)):
        for name, role in uses:
            groups.setdefault(keys(side, name, role), ([], []))[side].append(name)
    return _zip_groups(groups, np_shapes, torch_shapes, linear_weights)


def _zip_groups(groups, np_shapes, torch_shapes, linear_weights):
    """Within each group ``(numpy names, torch names)``, the i-th with the i-th, in the NumPy
    dict's order; None where a group's counts differ or a pair's shapes cannot hold each other."""
    twin = {}
    for mine, theirs in groups.values():
        if len(mine) != len(theirs):
            return None
        for n_name, t_name in zip(mine, theirs):
            pair = _pair_one(n_name, np_shapes[n_name], t_name, torch_shapes[t_name], linear_weights)
            if pair is None:
                return None
            twin[n_name] = pair
    return [twin[name] for name in np_shapes]


def pair_by_use(np_shapes, torch_shapes, np_uses, t_uses, linear_weights=()):
    """Pairs by what each side's forward pass computes with its parameters: the parameters of
    one role (``matrix``, ``shift``, ``scale``) and shape group, in the order the passes
    first use them; None where the uses do not cover every parameter or do not pair. Where
    the roles pair one way and the order of use alone another, refused as ambiguous."""
    np_uses = [(n, r) for n, r in np_uses if n in np_shapes]
    t_uses = [(n, r) for n, r in t_uses if n in torch_shapes]
    if {n for n, _ in np_uses} != set(np_shapes) or {n for n, _ in t_uses} != set(torch_shapes):
        return None
    shapes = (np_shapes, torch_shapes)
    by_role = _in_order(lambda side, name, role: (role, shape_group(shapes[side][name])),
                        np_uses, t_uses, np_shapes, torch_shapes, linear_weights)
    by_shape = _in_order(lambda side, name, role: shape_group(shapes[side][name]),
                         np_uses, t_uses, np_shapes, torch_shapes, linear_weights)
    if by_role is not None and by_shape is not None and by_role != by_shape:
        _refuse_ambiguous(np_shapes, torch_shapes, by_role,
                          "the roles the forward passes use them in and the order they use "
                          "them in disagree",
                          only={a.numpy for a, b in zip(by_role, by_shape) if a != b})
    return by_role if by_role is not None else by_shape


def _refuse_ambiguous(np_shapes, torch_shapes, pairs, why, only=None):
    """Refuse where a group of NumPy parameters could each hold any of a group of torch ones
    (the same shapes, but for transposition and axes of length 1), naming the group and a
    ``--param-map`` that says which is which."""
    groups = {}
    for side, shapes in ((0, np_shapes), (1, torch_shapes)):
        for name, shape in shapes.items():
            groups.setdefault(shape_group(shape), ([], []))[side].append(name)
    ambiguous = [g for g in groups.values()
                 if len(g[0]) > 1 and (only is None or set(g[0]) & set(only))]
    if not ambiguous:
        return
    said = "; ".join(f"NumPy {', '.join(mine)} against torch {', '.join(theirs)}"
                     for mine, theirs in ambiguous)
    example = ",".join(f"{p.numpy}={p.torch}{'.T' if p.transposed else ''}" for p in pairs)
    raise PortSetupError(
        f"cannot pair parameters: ambiguous ({why}); the shapes do not tell which is which in "
        f"{said}. Say which with --param-map, in the form --param-map {example}")


def _pair_one(n_name, n_shape, t_name, t_shape, linear_weights):
    """The pair of two parameters whose shapes can hold each other, else None."""
    if t_name in linear_weights and _fits(n_shape, t_shape, True):
        return Pair(n_name, t_name, True)
    if _fits(n_shape, t_shape, False):
        return Pair(n_name, t_name, False)
    if _fits(n_shape, t_shape, True):
        return Pair(n_name, t_name, True)
    if _reshapes(n_shape, t_shape):
        return Pair(n_name, t_name, False, tuple(n_shape))
    kernel = _permuted(n_shape, t_shape)
    if kernel is not None:
        return Pair(n_name, t_name, permute=kernel[0], also_fits=kernel[1])
    return None


def shape_group(shape):
    """Shapes that can hold each other share this key: the axes of length 1 dropped, a
    matrix's two axes in either order."""
    kept = squeezed(shape)
    return tuple(sorted(kept)) if len(kept) == 2 else kept


def _pair_by_structure(np_shapes, torch_shapes, linear_weights):
    """Each group of shapes that holds one parameter a side paired so, or None."""
    groups = {}
    for side, shapes in ((0, np_shapes), (1, torch_shapes)):
        for name, shape in shapes.items():
            groups.setdefault(shape_group(shape), ([], []))[side].append(name)
    if any(len(a) > 1 for a, b in groups.values()):
        return None
    return _zip_groups(groups, np_shapes, torch_shapes, linear_weights)


def _pair_by_map(np_shapes, torch_shapes, mapping):
    unknown_np = [k for k in mapping if k not in np_shapes]
    unknown_t = [n for v, _ in mapping.values() for n in _summands(v) if n not in torch_shapes]
    if unknown_np or unknown_t:
        what = "; ".join(filter(None, [
            f"no NumPy parameter {unknown_np}" if unknown_np else "",
            f"no torch parameter {unknown_t}" if unknown_t else ""]))
        raise PortSetupError(f"--param-map: {what}. " + _listing(np_shapes, torch_shapes))
    missing = [k for k in np_shapes if k not in mapping]
    used = [n for v, _ in mapping.values() for n in _summands(v)]
    twice = sorted({v for v in used if used.count(v) > 1})
    if missing or twice:
        what = "; ".join(filter(None, [
            f"NumPy parameters not mapped: {missing}" if missing else "",
            f"torch parameters mapped twice: {twice}" if twice else ""]))
        raise PortSetupError(f"--param-map: {what}. " + _listing(np_shapes, torch_shapes))
    pairs = []
    for n_name in np_shapes:
        t_name, transposed = mapping[n_name]
        t_name, *summed = _summands(t_name)
        n_shape, t_shape = np_shapes[n_name], torch_shapes[t_name]
        if summed:  # the NumPy value the sum of torch tensors of one shape: loaded into the first
            other = [n for n in summed if tuple(torch_shapes[n]) != tuple(t_shape)]
            if other or transposed or not (_fits(n_shape, t_shape, False) or _reshapes(n_shape, t_shape)):
                raise PortSetupError(f"--param-map: {n_name} {tuple(n_shape)} cannot be the sum "
                                     f"{' + '.join([t_name, *summed])}: a sum pairs tensors of the "
                                     f"NumPy value's shape, untransposed")
            reshape = tuple(n_shape) if _reshapes(n_shape, t_shape) else None
            pairs.append(Pair(n_name, t_name, False, reshape, summed=tuple(summed)))
            continue
        kernel = _mapped_kernel(n_name, n_shape, t_name, t_shape, transposed)
        if kernel is not None:
            pairs.append(kernel)
            continue
        if not transposed and not _fits(n_shape, t_shape, False) and _fits(n_shape, t_shape, True):
            transposed = True
        if not transposed and _reshapes(n_shape, t_shape):
            pairs.append(Pair(n_name, t_name, False, tuple(n_shape)))
            continue
        if not _fits(n_shape, t_shape, transposed):
            raise PortSetupError(f"--param-map: {n_name} {tuple(n_shape)} cannot hold torch "
                                 f"{t_name}{'.T' if transposed else ''} {tuple(t_shape)}")
        pairs.append(Pair(n_name, t_name, transposed))
    return pairs


def _mapped_kernel(n_name, n_shape, t_name, t_shape, axes):
    """A mapped pair of more than two axes: ``permute(...)`` as written; ``.T`` (every axis
    reversed) taken as the channels-last kernel where that is the order the shapes fit."""
    if isinstance(axes, tuple):
        if len(axes) != len(n_shape) or tuple(n_shape[a] for a in axes) != tuple(t_shape):
            shown = ", ".join(str(a) for a in inverse(axes))
            raise PortSetupError(f"--param-map: {n_name} {tuple(n_shape)} cannot hold torch "
                                 f"{t_name}.permute({shown}) (of {tuple(t_shape)})")
        return Pair(n_name, t_name, permute=axes)
    found = _permuted(n_shape, t_shape) if axes is True else None
    if found is None:
        return None
    return Pair(n_name, t_name, permute=found[0], also_fits=found[1])


def numpy_layout(pairing, torch_values):
    """Values keyed by the torch names, as NumPy names in the NumPy layout (a transposed
    twin transposed back); None stays None."""
    out = {}
    for pair in pairing:
        if pair.pieces:
            out[pair.numpy] = pair.from_pieces(torch_values, zeros=False)
            continue
        value = torch_values[pair.torch]
        out[pair.numpy] = None if value is None else pair.to_numpy(value)
    return out
