"""Recurrent layers: the book's ``TimeRNN``/``TimeLSTM``/``TimeGRU`` (and their cells),
cs231n's ``rnn_step_forward``/``lstm_step_forward``, against ``nn.RNN``, ``nn.LSTM``,
``nn.GRU`` and their cells.

Pairing. NumPy keeps a recurrent layer's weights fused, ``Wx (D, G*H)``, ``Wh (H, G*H)``,
``b (G*H,)``, with the G gate blocks side by side in the order its code slices them (the
book's LSTM f,g,i,o; cs231n's i,f,o,g); torch keeps ``weight_ih_l0 (G*H, D)``,
``weight_hh_l0 (G*H, H)`` and two biases, ``bias_ih_l0`` and ``bias_hh_l0``, in i,f,g,o
(GRU r,z,n). So ``Wx`` pairs with ``weight_ih_l0`` transposed with its gate blocks
permuted, and the one NumPy ``b`` with the sum ``bias_ih_l0 + bias_hh_l0``: copied into
``bias_ih_l0`` with ``bias_hh_l0 = 0`` (``fused_pairs``). Which NumPy block is which gate is
read off the values (``check/gates.py``): the order that makes the port's pass give the
NumPy one, the kind's convention where none does.

The GRU. torch applies the reset gate to ``W_hn h + b_hn``, the book to ``h`` before its
product with ``Wh``: ``r * (h @ W) != (r * h) @ W``, so no weight mapping makes ``nn.GRU``
compute the book's GRU (``gru_convention``).
"""
import itertools
import re

import numpy as np

from ..targets import PortSetupError
from ..tolerance import within
from .base import LayerKind
from .written import CannotWrite, Load, Written, trap

# torch's gate order, per kind (and the number of gate blocks)
TORCH_GATES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}

# the NumPy orders known by where the code comes from: the first is tried first
CONVENTIONS = {
    "lstm": (("f", "g", "i", "o"),   # the book's second volume
             ("i", "f", "o", "g"),   # cs231n assignment 3
             ("i", "f", "g", "o")),  # torch's own, as many learners write it
    "gru": (("z", "r", "n"),         # the book's second volume (z, r, h~)
            ("r", "z", "n")),
    "rnn": (("h",),),
}

TORCH_MODULES = {"RNN": "rnn", "RNNCell": "rnn", "LSTM": "lstm", "LSTMCell": "lstm",
                 "GRU": "gru", "GRUCell": "gru"}


ROLE_NAMES = {"ih": "weight_ih", "hh": "weight_hh", "bias_ih": "bias_ih", "bias_hh": "bias_hh"}


class Recurrent(LayerKind):
    def write(self, seen):
        """``nn.LSTM`` / ``nn.RNN`` (``batch_first=True``) of the book's time layer: ``Wx``,
        ``Wh`` loaded transposed with their gate blocks put in torch's order (the NumPy order
        read off the pass), ``b`` into ``bias_ih`` and ``bias_hh`` held at 0 and frozen (one
        bias, trained as one); a stateful layer's state carried between calls, detached."""
        if self.name == "gru":
            raise CannotWrite("nn.GRU applies the reset gate to W_hn h + b_hn, the book's GRU to "
                              "h before its product with Wh: no weight mapping makes nn.GRU "
                              f"compute it ({trap('gru_convention')})")
        if seen.functional:
            raise CannotWrite("torch has no public functional form of a recurrent layer: "
                              "--style modules writes it as nn.LSTM or nn.RNN")
        wx_name, wx = seen.param("Wx")
        wh_name, wh = seen.param("Wh")
        b_name, b = seen.param("b")
        gates = TORCH_GATES[self.name]
        if wx is None or wh is None or np.ndim(wx) != 2 or np.ndim(wh) != 2 \
                or wx.shape[1] != wh.shape[1] or wh.shape[1] != len(gates) * wh.shape[0]:
            raise CannotWrite(f"it holds no fused Wx (D, {len(gates)}H), Wh (H, {len(gates)}H) "
                              f"among the NumPy parameters")
        (D, _), H = wx.shape, wh.shape[0]
        module = "LSTM" if self.name == "lstm" else "RNN"
        mine = written_order(self.name, seen)
        written = Written(f"nn.{module}({D}, {H}, batch_first=True{'' if b_name else ', bias=False'})")
        fn = None if mine == gates else f"{''.join(mine)}_to_{''.join(gates)}"
        if fn is not None:
            written.helpers[fn] = _permutation(fn, mine, gates)
        blocks = "" if fn is None else f", gate blocks {', '.join(mine)}"
        theirs = "" if fn is None else f", blocks {', '.join(gates)}"
        G = "" if len(gates) == 1 else str(len(gates))
        permuted = "{p}" if fn is None else f"{fn}({{p}})"
        written.loads += [
            Load("weight_ih_l0", wx_name, f"{permuted}.T",
                 f"the NumPy Wx is (D, {G}H){blocks}; nn.{module}'s weight_ih_l0 is ({G}H, D){theirs}"),
            Load("weight_hh_l0", wh_name, f"{permuted}.T",
                 f"the NumPy Wh is (H, {G}H){blocks}; nn.{module}'s weight_hh_l0 is ({G}H, H){theirs}"
                 if G else f"the NumPy h @ Wh is h @ weight_hh_l0.T: nn.{module} keeps it (out, in)")]
        if fn is not None:
            written.conventions.append(
                (f"the NumPy {module} keeps its gate blocks {', '.join(mine)} side by side in Wx, "
                 f"Wh, b; nn.{module} keeps {', '.join(gates)}: loaded transposed, the blocks "
                 f"permuted ({fn})", trap("gate_order")))
        if b_name:
            written.loads += [
                Load("bias_ih_l0", b_name, permuted,
                     f"the NumPy layer adds one b{blocks}: bias_ih_l0, with bias_hh_l0 held at 0"),
                Load("bias_hh_l0", None)]
            written.init += ["# one NumPy b = bias_ih + bias_hh: bias_hh frozen at 0, so training "
                             "moves the sum as b",
                             "nn.init.zeros_({m}.bias_hh_l0)", "{m}.bias_hh_l0.requires_grad_(False)"]
            written.conventions.append(
                (f"the NumPy layer adds one bias b, nn.{module} two (bias_ih + bias_hh): b loaded "
                 f"into bias_ih, bias_hh held at 0 and frozen (both trained, the sum would move at "
                 f"twice the rate of b)", trap("double_bias")))
        written.conventions.append((f"the NumPy layer takes (N, T, D): nn.{module}(..., "
                                    f"batch_first=True)", trap("batch_first")))
        if seen.setting("stateful", default=False):
            written.state = True
            carried = "tuple(s.detach() for s in state)" if module == "LSTM" else "state.detach()"
            written.call = ["# stateful as the NumPy layer: the last state starts the next call, "
                            "outside this graph",
                            "x, state = {m}(x, {state})", f"{{state}} = {carried}"]
            written.conventions.append(
                ("the NumPy layer is stateful: its last state starts the next call (the book's "
                 "training over consecutive windows), detached, and reset_state() forgets it",
                 "docs/port-guide.md#recurrent-nets"))
        else:
            written.call = ["x, _ = {m}(x)"]
        return written


def _permutation(fn, mine, gates):
    """The source of the function that puts the NumPy gate blocks in torch's order."""
    return (f"def {fn}(w):\n"
            f'    """The gate blocks {", ".join(mine)} (NumPy) along the last axis, in torch\'s '
            f'order {", ".join(gates)}."""\n'
            f"    {', '.join(mine)} = w.chunk({len(gates)}, dim=-1)\n"
            f"    return torch.cat([{', '.join(gates)}], dim=-1)\n")


def written_order(kind, seen):
    """The NumPy gate order (letters) of the layer ``seen``: the first, its kind's
    conventions first, under which the layer's pass from zero state gives the recorded
    output; the kind's first convention where none does, or none can be rerun."""
    first = CONVENTIONS[kind][0]
    x, out = seen.input, seen.output
    names = [seen.param(a)[1] for a in ("Wx", "Wh", "b")]
    if kind != "lstm" or x is None or out is None or np.ndim(x) != 3 or np.ndim(out) != 3 \
            or names[0] is None or names[1] is None:
        return first
    wx, wh = (np.asarray(w, np.float64) for w in names[:2])
    b = np.zeros(wx.shape[1]) if names[2] is None else np.asarray(names[2], np.float64)
    for order in orders(kind):  # within the check's own round-off in the pass's dtype
        if within(out, _lstm_pass(np.asarray(x, np.float64), wx, wh, b, order), np.asarray(out).dtype):
            return order
    return first


def _lstm_pass(xs, wx, wh, b, order):
    """An LSTM over ``xs (N, T, D)`` from zero state, its gate blocks read in ``order``."""
    N, T, _ = xs.shape
    H = wh.shape[0]
    h, c = np.zeros((N, H)), np.zeros((N, H))
    hs = np.empty((N, T, H))
    for t in range(T):
        a = xs[:, t] @ wx + h @ wh + b
        block = {g: a[:, k * H:(k + 1) * H] for k, g in enumerate(order)}
        i, f, o = (1 / (1 + np.exp(-block[g])) for g in "ifo")
        c = f * c + i * np.tanh(block["g"])
        h = o * np.tanh(c)
        hs[:, t] = h
    return hs


RNN = Recurrent("rnn", ("TimeRNN", "RNN"), torch_modules=("RNN", "RNNCell"),
                torch_functions=("rnn_step_forward", "rnn_forward"))
LSTM = Recurrent("lstm", ("TimeLSTM", "LSTM"), torch_modules=("LSTM", "LSTMCell"),
                 torch_functions=("lstm_step_forward", "lstm_forward"))
GRU = Recurrent("gru", ("TimeGRU", "GRU"), torch_modules=("GRU", "GRUCell"))
KINDS = (LSTM, GRU, RNN)


def torch_groups(model):
    """``[(module name, kind, {role: parameter name})]`` for each recurrent module of a port
    (each layer of a stacked one), in registration order. Roles: ``ih``, ``hh``, ``bias_ih``,
    ``bias_hh``; ``D``, ``H`` and ``G`` (gate blocks) with them."""
    out = []
    for name, module in model.named_modules():
        kind = TORCH_MODULES.get(type(module).__name__)
        if kind is None or type(module).__module__.split(".")[0] != "torch":
            continue
        prefix = f"{name}." if name else ""
        params = dict(module.named_parameters(recurse=False))
        cell = type(module).__name__.endswith("Cell")
        layers = 1 if cell else int(getattr(module, "num_layers", 1))
        if not cell and getattr(module, "bidirectional", False):
            continue  # two directions: left to the general pairing
        for layer in range(layers):
            tail = "" if cell else f"_l{layer}"
            own = {r: f"{base}{tail}" for r, base in ROLE_NAMES.items() if f"{base}{tail}" in params}
            if "ih" not in own or "hh" not in own:
                continue
            roles = {r: prefix + n for r, n in own.items()}
            w_ih, w_hh = params[own["ih"]], params[own["hh"]]
            gates = len(TORCH_GATES[kind])
            out.append((name, kind, roles, {"D": int(w_ih.shape[1]), "H": int(w_hh.shape[1]),
                                            "G": gates}))
    return out


def _owner(name):
    return name.rsplit(".", 1)[0] if "." in name else ""


def _stem(name):
    return name.rsplit(".", 1)[-1].lower()


_HINTS = {"ih": ("wx", "x", "ih", "wih", "w_ih", "wxh", "kernel"),
          "hh": ("wh", "h", "hh", "whh", "w_hh", "whh", "recurrent")}


def _hinted(name, role):
    stem = _stem(name)
    return any(stem == h or stem.endswith(h) for h in _HINTS[role])


def _bias_of_another(name, names, own):
    """``b_proj`` beside a ``W_proj`` that is no weight of this layer (``own``): that
    weight's bias, by the name they share, even where its shape is the gate width (a vanilla
    RNN's ``(H,)``)."""
    match = re.fullmatch(r"(?:b|bias|biases)_?(.+)", _stem(name))
    if match is None:
        return False
    tail = re.escape(match.group(1))
    return any(re.fullmatch(rf"(?:w|weight|weights)_?{tail}", _stem(n))
               for n in names if n not in own and _owner(n) == _owner(name))


def fused_pairs(np_shapes, model, used=(), order=None):
    """The recurrent modules' parameters paired with the NumPy fused ``Wx``, ``Wh``, ``b``
    (module docstring): ``[Pair]`` with the kind's first convention for the gate blocks
    (``check/gates.py`` reads the right one off the values), and the names both sides paired
    so. The modules are taken in the order their weights run (``order``, the port's
    parameter names in order of execution; else as registered), each with the first NumPy
    arrays of its shapes left: a decoder registered before its encoder still pairs with
    the NumPy decoder. A module whose arrays are not found on the NumPy side is left to the
    general pairing."""
    from ..pairing import Pair  # the pairing asks the kind; the kind builds its pairs
    taken, pairs = set(used), []
    groups = torch_groups(model)
    if order is not None:
        rank = {name: i for i, name in enumerate(order)}
        groups.sort(key=lambda g: rank.get(g[2]["ih"], len(rank)))
    for module, kind, roles, dims in groups:
        D, H, G = dims["D"], dims["H"], dims["G"]
        free = [n for n in np_shapes if n not in taken]

        def with_shape(*shapes):
            return [n for n in free if tuple(np_shapes[n]) in shapes]
        course = course_pairs(np_shapes, free, kind, roles, D, H)
        if course:  # the course's gate matrices, one per gate, on [a_prev; x]
            pairs += course
            taken |= {p.numpy for p in course}
            continue
        whs = with_shape((H, G * H))
        wxs = [n for n in with_shape((D, G * H))]
        if not whs or not wxs:
            continue
        # the hidden weight first, by its name where D == H makes the shapes alike
        wh = next((n for n in whs if _hinted(n, "hh")), whs[0] if D != H else None)
        if wh is None:
            continue
        owner = _owner(wh)
        wxs = [n for n in wxs if n != wh]
        wx = next((n for n in wxs if _owner(n) == owner and _hinted(n, "ih")),
                  next((n for n in wxs if _owner(n) == owner), None))
        if wx is None:
            continue
        biases = [n for n in with_shape((G * H,), (1, G * H)) if _owner(n) == owner
                  and not _bias_of_another(n, np_shapes, (wx, wh))]
        mine, theirs = CONVENTIONS[kind][0], TORCH_GATES[kind]
        order = tuple(mine.index(g) for g in theirs)
        names = (mine, theirs)
        pairs += [Pair(wx, roles["ih"], True, gates=order, gate_names=names),
                  Pair(wh, roles["hh"], True, gates=order, gate_names=names)]
        taken |= {wx, wh}
        if "bias_ih" in roles and biases:
            reshape = tuple(np_shapes[biases[0]]) if len(np_shapes[biases[0]]) != 1 else None
            if len(biases) >= 2 and "bias_hh" in roles:  # a bias for each product, as torch
                pairs += [Pair(biases[0], roles["bias_ih"], reshape=reshape, gates=order,
                               gate_names=names),
                          Pair(biases[1], roles["bias_hh"],
                               reshape=tuple(np_shapes[biases[1]]) if len(np_shapes[biases[1]]) != 1 else None,
                               gates=order, gate_names=names)]
                taken |= set(biases[:2])
            else:
                summed = (roles["bias_hh"],) if "bias_hh" in roles else ()
                pairs.append(Pair(biases[0], roles["bias_ih"], reshape=reshape, gates=order,
                                  gate_names=names, summed=summed))
                taken.add(biases[0])
    return pairs


# the deeplearning.ai sequence course: one matrix per gate, W (H, H + D) on the
# concatenation [a_prev; x], and b (H, 1); its c (the candidate) is torch's g
COURSE_GATES = {"lstm": {"i": "i", "f": "f", "c": "g", "o": "o"}}


def _course_name(names, letter, prefix):
    """The NumPy name whose stem is ``prefix + letter`` (``Wf``, ``W_f``, ``bf``), or None."""
    found = [n for n in names if _stem(n).replace("_", "") == f"{prefix}{letter}"]
    return found[0] if len(found) == 1 else None


def course_pairs(np_shapes, free, kind, roles, D, H):
    """The course's layouts against one torch module: an LSTM's ``Wf``, ``Wi``, ``Wc``,
    ``Wo`` ``(H, H + D)`` each cut into the rows of its gate in ``weight_hh`` (the columns
    of ``a_prev``) and in ``weight_ih`` (those of ``x``), its ``b`` into ``bias_ih`` beside a
    zero ``bias_hh``; an RNN's ``Wax (H, D)``, ``Waa (H, H)`` (features first, torch's own
    layout) and ``ba`` against ``bias_ih + bias_hh``. ``[]`` where the names are not the
    course's."""
    from ..pairing import Pair
    if kind == "rnn":
        wax, waa, ba = (_course_name(free, "", stem) for stem in ("wax", "waa", "ba"))
        if None in (wax, waa) or tuple(np_shapes[wax]) != (H, D) or tuple(np_shapes[waa]) != (H, H):
            return []
        out = [Pair(wax, roles["ih"]), Pair(waa, roles["hh"])]
        if ba is not None and "bias_ih" in roles and int(np.prod(np_shapes[ba])) == H:
            shape = tuple(np_shapes[ba])
            out.append(Pair(ba, roles["bias_ih"], reshape=shape if shape != (H,) else None,
                            summed=(roles["bias_hh"],) if "bias_hh" in roles else ()))
        return out
    gates = COURSE_GATES.get(kind)
    if gates is None:
        return []
    out, torch_order = [], TORCH_GATES[kind]
    for letter, theirs in gates.items():
        w, b = _course_name(free, letter, "w"), _course_name(free, letter, "b")
        if w is None or tuple(np_shapes[w]) != (H, H + D):
            return []
        k = torch_order.index(theirs)
        rows = (k * H, (k + 1) * H)
        out.append(Pair(w, roles["hh"], reshape=(H, H + D), concat="[a_prev; x]",
                        pieces=((roles["hh"], *rows, 0, H, False),
                                (roles["ih"], *rows, H, H + D, False))))
        if b is not None and "bias_ih" in roles and int(np.prod(np_shapes[b])) == H:
            bias = ((roles["bias_ih"], *rows, None, None, False),)
            if "bias_hh" in roles:
                bias += ((roles["bias_hh"], *rows, None, None, True),)
            out.append(Pair(b, roles["bias_ih"], reshape=tuple(np_shapes[b]), pieces=bias))
    return out


def swap_concat(pair):
    """A course pair read as the concatenation ``[x; a_prev]`` (``[a_prev; x]`` as made)."""
    from dataclasses import replace
    if not pair.pieces or pair.pieces[0][4] is None:
        return pair
    (hh, r0, r1, _, _, z0), (ih, s0, s1, _, _, z1) = pair.pieces
    H, D = r1 - r0, pair.reshape[1] - (r1 - r0)
    first = pair.concat == "[a_prev; x]"
    pieces = ((hh, r0, r1, D, D + H, z0), (ih, s0, s1, 0, D, z1)) if first else \
        ((hh, r0, r1, 0, H, z0), (ih, s0, s1, H, H + D, z1))
    return replace(pair, pieces=pieces, concat="[x; a_prev]" if first else "[a_prev; x]")


def orders(kind):
    """Every order of a kind's gate blocks, its conventions first."""
    known = list(CONVENTIONS[kind])
    rest = [p for p in itertools.permutations(TORCH_GATES[kind]) if p not in known]
    return known + rest


def with_order(pair, mine):
    """``pair`` with the NumPy gate blocks taken as ``mine`` (letters)."""
    from dataclasses import replace
    theirs = pair.gate_names[1]
    return replace(pair, gates=tuple(mine.index(g) for g in theirs), gate_names=(mine, theirs))


def kind_of_pair(pair):
    theirs = pair.gate_names[1] if pair.gate_names else None
    return next((k for k, g in TORCH_GATES.items() if g == theirs), None)


# --- the gate order read off the values (check/gates.py) ----------------------------------

CLEAR = 1e-3  # relative gap to the NumPy loss a winner must be within
MARGIN = 10.0  # and the factor by which it must be nearer than the next


def gated_kinds(pairing):
    kinds = []
    for pair in pairing:
        kind = kind_of_pair(pair) if pair.gates is not None and len(pair.gates) > 1 else None
        if kind is not None and kind not in kinds:
            kinds.append(kind)
    return kinds


def numpy_reference(run):
    """What the NumPy model computes in evaluation mode (nothing drawn), that an order must
    reproduce: ``("scores", array)`` where it has a ``predict``, else ``("loss", number,
    loss_at)``, ``loss_at(values)`` its loss at other parameter values; None where neither
    can be had."""
    if getattr(run.np, "has_predict", False):
        try:
            out = np.asarray(run.np.predict(run.x, mode="eval"))
            if np.issubdtype(out.dtype, np.floating) and np.all(np.isfinite(out)):
                return "scores", out
        except (PortSetupError, TypeError, ValueError):
            pass
    return _loss_reference(run)


def _loss_reference(run):
    try:
        return "loss", run.np.loss(run.x, run.t, mode="eval"), lambda v: _numpy_loss_at(run, v)
    except PortSetupError:
        return None


def _numpy_loss_at(run, values):
    """The NumPy loss with its parameters set to ``values`` in place, then put back."""
    saved = {name: np.array(a, copy=True) for name, a in run.np.params.items()}
    try:
        for name, a in run.np.params.items():
            a[...] = values[name]
        return run.np.loss(run.x, run.t, mode="eval")
    finally:
        for name, a in run.np.params.items():
            a[...] = saved[name]


def perturbed(params, points=2, seed=0):
    """``points`` other sets of parameter values, each array moved by noise of its own size
    (0.1 where it is all zeros): an order that gives the NumPy loss by chance at the given
    values does not at these, where the right one gives it at every point."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(points):
        moved = {}
        for name, value in params.items():
            size = float(np.std(value)) or 0.1
            moved[name] = (value + size * rng.standard_normal(np.shape(value))).astype(value.dtype)
        out.append(moved)
    return out


def _layers_agree(np_records, side, tx, tt, dtype):
    """The port's recorded recurrent modules give the outputs of the NumPy records they pair
    with (None where no such pair is recorded)."""
    from ..align import align
    from ..tolerance import within
    try:
        t_records = side.recorded_outputs(tx, tt)
    except (PortSetupError, RuntimeError):
        return None
    pairs = [(np_records[i], t_records[j]) for i, j in align(np_records, t_records)[0]
             if TORCH_MODULES.get(t_records[j].kind) is not None]
    if not pairs:
        return None
    return all(within(a.output, b.output, dtype) for a, b in pairs)


def _layer_reference(run):
    """The NumPy layers' records of one evaluation-mode pass, for ``choose``; None where it
    keeps none."""
    try:
        with run.np.capture() as capture:
            run.np.loss(run.x, run.t, mode="eval")
    except (PortSetupError, TypeError, AttributeError):
        return None
    return ("layers", capture.records) if capture.records else None


def references_of(run):
    """The NumPy scores, then its loss, as ``read_order`` asks them (read once per run)."""
    cached = getattr(run, "gate_references", None)
    if cached is None:
        first = numpy_reference(run)
        cached = [first] if first is not None else []
        if first is not None and first[0] == "scores":
            loss = _loss_reference(run)
            if loss is not None:
                cached.append(loss)
        layers = _layer_reference(run)
        if layers is not None:  # where the outputs and the loss part for another reason
            cached.append(layers)
        run.gate_references = cached
    return cached


def choose(reference, side, trials, params, x, t, dtype):
    """The trial pairing under which ``side`` (its mode as set) reproduces ``reference``:
    by scores, the first whose scores equal the NumPy ones within the forward tolerance
    (heads brought together as the forward rows bring them); by loss, one within ``CLEAR``
    of the NumPy loss and ``MARGIN`` times nearer than any other. None where none does (the
    port parts elsewhere too) or the outputs cannot be compared (then the loss is asked).
    ``side`` is left loaded with the last trial."""
    from ..heads import fits, match
    tx, tt = side.tensor(x), side.tensor(t)
    what, expected = reference[:2]
    gaps = []
    for trial in trials:
        try:
            side.load(trial, params)
            out = side.outputs(tx, tt)
        except (PortSetupError, RuntimeError):
            return None
        if what == "layers":  # the recurrent layers' own outputs (the loss may be what parts)
            agrees = _layers_agree(expected, side, tx, tt, dtype)
            if agrees is None:
                return None
            if agrees:
                return trial
            continue
        if what == "scores":
            if out["scores"] is None:
                return None
            np_out, t_out, _, heads = match(expected, out["scores"], dtype)
            if np.shape(np_out) != np.shape(t_out) or (
                    heads["numpy"] != heads["torch"] and heads["converted"] is None):
                return None
            if fits(t_out, np_out, dtype):
                return trial
            continue
        gap = abs(out["loss"] - expected) / max(abs(expected), np.finfo(np.float64).tiny)
        gaps.append((gap if np.isfinite(gap) else np.inf, trial))
    if what == "scores" or not gaps:
        return None
    ranked = sorted(gaps, key=lambda g: g[0])  # stable: conventions first among equals
    best, second = ranked[0][0], ranked[1][0] if len(ranked) > 1 else np.inf
    if not (best <= CLEAR and best * MARGIN <= second):
        return None
    # one number may agree by chance: the winner must give the NumPy loss at two other sets
    # of values too, where a wrong order does not
    winner = ranked[0][1]
    for values in perturbed(params):
        try:
            expected = reference[2](values)
            side.load(winner, values)
            loss = side.outputs(tx, tt)["loss"]
        except (PortSetupError, RuntimeError):
            return None
        gap = abs(loss - expected) / max(abs(expected), np.finfo(np.float64).tiny)
        if not gap <= CLEAR:
            return None
    return winner


MAX_TRIALS = 200  # orders tried, over every recurrent kind of the model together


def order_trials(pairing):
    """``pairing`` as it is (its layers' own conventions), then every other combination of
    the gated kinds' orders (the kinds' conventions first), as pairings."""
    kinds = gated_kinds(pairing)
    out, seen = [pairing], {tuple(p.gates for p in pairing)}
    for combo in itertools.islice(itertools.product(*(orders(kind) for kind in kinds)), MAX_TRIALS):
        chosen = dict(zip(kinds, combo))
        trial = [with_order(p, chosen[kind_of_pair(p)])
                 if p.gates is not None and kind_of_pair(p) in chosen else p for p in pairing]
        if tuple(p.gates for p in trial) not in seen:
            seen.add(tuple(p.gates for p in trial))
            out.append(trial)
    return out


def read_order(references, side, pairing, params, x, t, dtype):
    """``pairing`` with its gate orders (and the course's column order) read off the values:
    each reference in turn (the scores, then the loss) asked to choose; the pairing as given
    where none does. ``side`` is left loaded with the pairing returned."""
    trials = order_trials(pairing) if gated_kinds(pairing) else [pairing]
    if any(p.concat for p in pairing):
        trials = [variant for trial in trials
                  for variant in (trial, [swap_concat(p) for p in trial])]
    found = None
    if len(trials) > 1:
        for reference in references:
            found = choose(reference, side, trials, params, x, t, dtype)
            if found is not None:
                break
    found = pairing if found is None else found
    side.load(found, params)
    return found


# --- the output sequence's gradient --------------------------------------------------------

def last_state(module, output):
    """``(h_n, add)`` for a torch recurrent module's ``(out, h_n)`` or ``(out, (h_n, c_n))``:
    the NumPy layer's ``hs[:, -1]`` is the ``h`` it hands on (the book's encoder passes it to
    the decoder), so its output's gradient holds what reaches that ``h``; torch's ``out`` and
    ``h_n`` are two outputs, each with its own gradient. ``add(grad_out, grad_h_n)`` is the
    output's gradient as the NumPy side sums it (the last layer's ``h_n`` added at the last
    step). None for a cell, two directions, or a packed sequence."""
    import torch
    if TORCH_MODULES.get(type(module).__name__) not in ("rnn", "lstm", "gru") \
            or type(module).__name__.endswith("Cell") or getattr(module, "bidirectional", False):
        return None
    if not isinstance(output, (tuple, list)) or len(output) != 2:
        return None
    out, state = output
    h_n = state[0] if isinstance(state, (tuple, list)) else state
    if not isinstance(out, torch.Tensor) or not isinstance(h_n, torch.Tensor) or out.dim() < 2:
        return None
    step = (slice(None), -1) if out.dim() == 3 and module.batch_first else (-1,)

    def add(grad_out, grad_h_n):
        total = np.zeros(tuple(out.shape)) if grad_out is None else np.array(grad_out, copy=True)
        if grad_h_n is not None:
            total[step] += np.asarray(grad_h_n)[-1]
        return total
    return h_n, add


# --- traps on the port's whole pass ----------------------------------------------------------

def numpy_triples(np_shapes, owners=None):
    """``[(kind, G, [Wx, Wh, b...])]``: the NumPy fused recurrent weights found by their
    shapes, ``Wh (H, G*H)`` with a ``Wx (D, G*H)`` and biases ``(G*H,)`` beside it (the
    same layer, where the layers are known)."""
    owners = owners or {}
    found = []
    for wh, shape in np_shapes.items():
        shape = tuple(shape)
        if len(shape) != 2 or shape[1] % shape[0] or shape[1] // shape[0] not in (3, 4):
            continue
        G, H = shape[1] // shape[0], shape[0]
        kind = "lstm" if G == 4 else "gru"
        alike = [n for n in np_shapes if n != wh and owners.get(n) == owners.get(wh)
                 and _owner(n) == _owner(wh)]
        wxs = [n for n in alike if len(np_shapes[n]) == 2 and np_shapes[n][1] == G * H]
        bs = [n for n in alike if tuple(np_shapes[n]) in ((G * H,), (1, G * H))]
        if wxs and (not _hinted(wh, "ih") or _hinted(wh, "hh")):
            found.append((kind, G, [wxs[0], wh, *bs]))
    return found


def _book_letters(run, names):
    """The NumPy gate letters where the layer's kind says its convention: the book's classes
    (f,g,i,o), cs231n's functions (i,f,o,g); else None."""
    owner = (getattr(run.np, "owners", None) or {}).get(names[0], "") or names[0]
    layer_of = getattr(run.np, "layer_of", None)
    layer = layer_of(owner) if callable(layer_of) and owner else None
    low = str(owner if layer is None else type(layer).__name__).lower()
    if "lstm_step" in low or "lstm_forward" in low:
        return CONVENTIONS["lstm"][1]
    if low.startswith(("timelstm", "lstm")):
        return CONVENTIONS["lstm"][0]
    if low.startswith(("timegru", "gru")):
        return CONVENTIONS["gru"][0]
    return None


def numpy_convention(run, kind, name):
    """The gate order the NumPy layer holding ``name`` implies by where its code comes from
    (the book's classes, cs231n's functions), else the kind's first convention."""
    letters = _book_letters(run, [name])
    if letters is None and kind == "lstm" and getattr(run.np, "functions", False):
        letters = CONVENTIONS["lstm"][1]  # cs231n writes its LSTM as module-level functions
    return letters if letters is not None and len(letters) == len(TORCH_GATES[kind]) \
        else CONVENTIONS[kind][0]


def gate_order_trap(run, rerun, reproduces):
    """A literal port slicing the fused gates in another order than the NumPy code: the
    NumPy values loaded with their gate blocks permuted (along the gate axis, each order in
    turn), named where the port's pass then gives the NumPy loss and gradients."""
    from dataclasses import replace
    shapes = {k: np.shape(v) for k, v in run.np.params.items()}
    for kind, G, names in numpy_triples(shapes, getattr(run.np, "owners", None)):
        own = [p for p in run.pairing if p.numpy in names and p.gates is None]
        if len(own) != len(names):
            continue
        for order in itertools.permutations(range(G)):
            if order == tuple(range(G)):
                continue
            trial = [replace(p, gates=order, gate_axis=-1 if not p.transposed else 0)
                     if p in own else p for p in run.pairing]
            run.torch.load(trial, run.np.params)
            try:
                out, grads = rerun()
                hit = reproduces(out, grads, trial)
            except Exception:
                hit = False
            finally:
                run.torch.load(run.pairing, run.np.params)
            if not hit:
                continue
            letters = _book_letters(run, names)
            if letters is not None:
                # the port reads its block k as the gate the NumPy block order[k] is
                read = tuple(letters[order[k]] for k in range(G))
                how = (f"the NumPy code slices its gate blocks {','.join(letters)}, the port "
                       f"reads them as {','.join(read)}")
            else:
                how = (f"the port reads as its gate block k what the NumPy code computes in "
                       f"block {list(order)}[k]")
            return [{"code": "gate_order", "parameter": names[0],
                     "text": f"the port slices the fused gates of {', '.join(names)} in another "
                             f"order than the NumPy code: {how} (with the blocks so permuted, "
                             f"the port's pass gives the NumPy loss and gradients); slice them "
                             f"in the NumPy order"}]
    return []


def batch_first_trap(run, rerun, reproduces):
    """An ``(N, T, D)`` batch read as ``(T, N, D)``: each recurrent module of the port rerun
    with ``batch_first`` the other way (its gate order read again under it: a port wrong so
    gives no order its values can be read by), named where the port's pass then gives the
    NumPy loss and gradients."""
    if run.torch.kind != "module":
        return []
    references = references_of(run)
    for name, module in run.torch.model.named_modules():
        if TORCH_MODULES.get(type(module).__name__) is None or not hasattr(module, "batch_first"):
            continue
        was, mode = module.batch_first, run.torch.mode
        module.batch_first = not was
        hit = False
        try:
            run.torch.mode = "eval"
            pairing = read_order(references, run.torch, run.pairing, run.np.params, run.x,
                                 run.t, run.dtype)
            run.torch.mode = mode
            out, grads = rerun()
            hit = reproduces(out, grads, pairing)
        except Exception:
            hit = False
        finally:
            module.batch_first, run.torch.mode = was, mode
            run.torch.load(run.pairing, run.np.params)
        if hit:
            fix = ("give batch_first=True" if not was else
                   "give batch_first=False, or hand it the batch as (N, T, D)")
            shape = "(T, N, D)" if not was else "(N, T, D)"
            return [{"code": "batch_first", "layer": name,
                     "text": f"the port's {name} (nn.{type(module).__name__}, batch_first="
                             f"{was}) reads the batch as {shape} where it is handed "
                             f"{'(N, T, D)' if not was else '(T, N, D)'}: with batch_first="
                             f"{not was} the port's pass gives the NumPy loss and gradients; "
                             f"{fix}"}]
    return []


def _recurrent_biases(run):
    """The NumPy names of the recurrent layers' biases: paired with gate blocks, or found
    beside a fused ``Wh`` by their shapes (a literal port's ``b``)."""
    shapes = {k: np.shape(v) for k, v in run.np.params.items()}
    names = [p.numpy for p in run.pairing if p.gates is not None and len(shapes[p.numpy]) == 1
             or p.summed]
    for _, _, found in numpy_triples(shapes, getattr(run.np, "owners", None)):
        names += [n for n in found[2:] if n not in names]
    return names


def double_bias_trap(run, rerun, reproduces):
    """A recurrent bias added twice by the port (``x @ Wx + b + h @ Wh + b``, or the NumPy
    ``b`` copied into both ``bias_ih`` and ``bias_hh`` and both used): half the NumPy bias
    loaded, named where the port's pass then gives the NumPy loss, and twice its gradient
    (two uses, each the whole gradient) the NumPy one."""
    for name in _recurrent_biases(run):
        params = dict(run.np.params)
        params[name] = params[name] / 2
        try:
            run.torch.load(run.pairing, params)
            out, grads = rerun()
            pair = next(p for p in run.pairing if p.numpy == name)
            grads = dict(grads)
            if grads.get(pair.torch) is not None:
                grads[pair.torch] = grads[pair.torch] / 2
            hit = reproduces(out, grads)
        except Exception:
            hit = False
        finally:
            run.torch.load(run.pairing, run.np.params)
        if hit:
            return [{"code": "double_bias", "parameter": name,
                     "text": f"the port adds {run.torch_name(name)} "
                             f"twice in each step where the NumPy layer adds {name} once (torch's "
                             f"recurrent layers hold two biases, bias_ih and bias_hh, whose sum is "
                             f"the NumPy b): with half of {name} loaded, the port's pass gives the "
                             f"NumPy loss and gradients; add it once, or copy it into bias_ih "
                             f"with bias_hh = 0"}]


def _torch_modules(run, *names):
    if run.torch.kind != "module":
        return []
    return [(name, m) for name, m in run.torch.model.named_modules()
            if type(m).__name__ in names and type(m).__module__.split(".")[0] == "torch"]


def encoder_c_trap(run, rerun, reproduces):
    """The encoder's ``c`` handed on with its ``h`` (``decoder(x, (h, c))``) where the book's
    decoder takes ``h`` only and starts from ``c = 0`` (``Decoder.lstm.set_state(h)``): each
    ``nn.LSTM`` handed an initial state rerun with that state's ``c`` zeroed, named where the
    port's pass then gives the NumPy loss and gradients."""
    import torch
    lstms = _torch_modules(run, "LSTM")
    for name, module in lstms:
        seen, ends = {}, {}

        def zero_c(mod, args, kwargs):
            hx = kwargs["hx"] if "hx" in kwargs else (args[1] if len(args) > 1 else None)
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                return None
            seen.setdefault("c0", hx[1].detach().clone())
            state = (hx[0], torch.zeros_like(hx[1]))
            if "hx" in kwargs:
                return args, {**kwargs, "hx": state}
            return (args[0], state, *args[2:]), kwargs

        def keep_c(other):
            def hook(mod, args, output):
                c_n = output[1][1] if isinstance(output[1], (tuple, list)) else None
                if c_n is not None:
                    ends.setdefault(other, c_n.detach().clone())
            return hook
        handles = [module.register_forward_pre_hook(zero_c, with_kwargs=True)]
        handles += [m.register_forward_hook(keep_c(n)) for n, m in lstms if m is not module]
        try:
            out, grads = rerun()
            hit = "c0" in seen and bool(seen["c0"].abs().max() > 0) and reproduces(out, grads)
        except Exception:  # a pass the hypothesis cannot run says nothing
            hit = False
        finally:
            for handle in handles:
                handle.remove()
        if not hit:
            continue
        source = next((n for n, c in ends.items() if c.shape == seen["c0"].shape
                       and torch.equal(c, seen["c0"])), None)
        whose = f"the encoder's c (the c_n of {source})" if source else "a nonzero c"
        return [{"code": "encoder_c", "layer": name,
                 "text": f"the port hands its {name} (nn.LSTM) {whose} with h as its initial "
                         f"state, where the NumPy decoder is handed h only and starts from "
                         f"c = 0 (the book's Decoder: lstm.set_state(h)): with c zeroed there, "
                         f"the port's pass gives the NumPy loss and gradients; hand it "
                         f"(h, torch.zeros_like(c))"}]
    return []


BOOK_GRU_CELL = (
    "z = torch.sigmoid(x @ Wx[:, :H] + h @ Wh[:, :H] + b[:H])",
    "r = torch.sigmoid(x @ Wx[:, H:2*H] + h @ Wh[:, H:2*H] + b[H:2*H])",
    "h_hat = torch.tanh(x @ Wx[:, 2*H:] + (r * h) @ Wh[:, 2*H:] + b[2*H:])",
    "h = (1 - z) * h + z * h_hat")


def _book_gru(module, args):
    """The book's GRU over ``nn.GRU``'s input, on the module's own weights read by gate:
    torch's blocks r, z, n taken as the book's r, z, h~ (the biases summed)."""
    import torch
    xs = args[0]
    H = module.hidden_size
    blocks = dict(zip("rzn", range(3)))

    def part(w, g):
        return w[blocks[g] * H:(blocks[g] + 1) * H]
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
    b = (module.bias_ih_l0 + module.bias_hh_l0) if module.bias else torch.zeros(3 * H, dtype=xs.dtype)
    steps = xs.unbind(1 if module.batch_first else 0)
    h0 = args[1] if len(args) > 1 and args[1] is not None else None
    h = h0[0] if h0 is not None else xs.new_zeros(steps[0].shape[0], H)
    hs = []
    for x in steps:
        z = torch.sigmoid(x @ part(w_ih, "z").T + h @ part(w_hh, "z").T + part(b, "z"))
        r = torch.sigmoid(x @ part(w_ih, "r").T + h @ part(w_hh, "r").T + part(b, "r"))
        h_hat = torch.tanh(x @ part(w_ih, "n").T + (r * h) @ part(w_hh, "n").T + part(b, "n"))
        h = (1 - z) * h + z * h_hat
        hs.append(h)
    return torch.stack(hs, 1 if module.batch_first else 0), h.unsqueeze(0)


def gru_convention_trap(run, rerun, reproduces):
    """``nn.GRU`` against the book's GRU: torch applies the reset gate to ``W_hn h + b_hn``,
    the book to ``h`` before its product with ``Wh``, and no weight mapping makes one the
    other. Each ``nn.GRU`` paired with a NumPy fused GRU is rerun as the book's cell on its
    own weights (the NumPy blocks loaded in each order, the book's z, r, h~ first), named
    where the port's pass then gives the NumPy loss and gradients, with the cell to write."""
    grus = [(n, m) for n, m in _torch_modules(run, "GRU")
            if m.num_layers == 1 and not m.bidirectional]
    try:
        for name, module in grus:
            prefix = f"{name}." if name else ""
            own = [p for p in run.pairing if p.torch.startswith(prefix) and p.gates is not None]
            if not own:
                continue
            handle = module.register_forward_hook(lambda mod, args, output: _book_gru(mod, args))
            try:
                for mine in orders("gru"):
                    trial = [with_order(p, mine) if p in own else p for p in run.pairing]
                    try:
                        run.torch.load(trial, run.np.params)
                        out, grads = rerun()
                        hit = reproduces(out, grads, trial)
                    except Exception:  # a pass the hypothesis cannot run says nothing
                        hit = False
                    if hit:
                        break
            finally:
                handle.remove()
            if not hit:
                continue
            names = [p.numpy for p in own]
            letters = ",".join("h~" if g == "n" else g for g in mine)
            cell = "\n      ".join(BOOK_GRU_CELL)
            return [{"code": "gru_convention", "layer": name, "parameter": names[0],
                     "cell": list(BOOK_GRU_CELL),
                     "text": f"the port's {name} (nn.GRU) computes torch's GRU, which applies "
                             f"the reset gate to W_hn h + b_hn, where the NumPy GRU "
                             f"({', '.join(names)}; gate blocks {letters}) applies it to h "
                             f"before its product with Wh: r * (h @ Wh) != (r * h) @ Wh, so no "
                             f"weight mapping makes nn.GRU compute it (torch's z also weighs "
                             f"the new state where the book's weighs h~). The book's cell on "
                             f"{name}'s own weights gives the NumPy loss and gradients: write "
                             f"it, with Wx (D, 3H), Wh (H, 3H), b (3H,) as nn.Parameters in "
                             f"the NumPy layout, for each step x of (N, D):\n      {cell}"}]
    finally:
        if grus:
            run.torch.load(run.pairing, run.np.params)
    return []


def pass_traps(run, rerun, reproduces):
    return (batch_first_trap(run, rerun, reproduces) or gate_order_trap(run, rerun, reproduces)
            or double_bias_trap(run, rerun, reproduces)
            or encoder_c_trap(run, rerun, reproduces) or gru_convention_trap(run, rerun, reproduces))
