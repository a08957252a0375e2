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

from .base import LayerKind

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


class RecurrentKind(LayerKind):
    pass


RNN = RecurrentKind("rnn", ("TimeRNN", "RNN"), torch_modules=("RNN", "RNNCell"),
                    torch_functions=("rnn_step_forward", "rnn_forward"))
LSTM = RecurrentKind("lstm", ("TimeLSTM", "LSTM"), torch_modules=("LSTM", "LSTMCell"),
                     torch_functions=("lstm_step_forward", "lstm_forward"))
GRU = RecurrentKind("gru", ("TimeGRU", "GRU"), torch_modules=("GRU", "GRUCell"))
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


def fused_pairs(np_shapes, model, used=()):
    """The recurrent modules' parameters paired with the NumPy fused ``Wx``, ``Wh``, ``b``
    (module docstring): ``[Pair]`` with the kind's first convention for the gate blocks
    (``check/gates.py`` reads the right one off the values), and the names both sides paired
    so. A module whose arrays are not found on the NumPy side is left to the general
    pairing."""
    from ..pairing import Pair  # the pairing asks the kind; the kind builds its pairs
    taken, pairs = set(used), []
    for module, kind, roles, dims in torch_groups(model):
        D, H, G = dims["D"], dims["H"], dims["G"]
        free = [n for n in np_shapes if n not in taken]

        def with_shape(*shapes):
            return [n for n in free if tuple(np_shapes[n]) in shapes]
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


def summed_value(value, others):
    return value + sum(np.asarray(o) for o in others)


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
    low = str(owner).lower()
    if "lstm_step" in low or "lstm_forward" in low:
        return CONVENTIONS["lstm"][1]
    if low.startswith(("timelstm", "lstm")):
        return CONVENTIONS["lstm"][0]
    return None


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
            except Exception:
                continue
            if not reproduces(out, grads, trial):
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
    with ``batch_first`` the other way, named where the port's pass then gives the NumPy
    loss and gradients."""
    if run.torch.kind != "module":
        return []
    for name, module in run.torch.model.named_modules():
        if TORCH_MODULES.get(type(module).__name__) is None or not hasattr(module, "batch_first"):
            continue
        was = module.batch_first
        module.batch_first = not was
        try:
            out, grads = rerun()
            hit = reproduces(out, grads)
        except Exception:
            hit = False
        finally:
            module.batch_first = was
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


def pass_traps(run, rerun, reproduces):
    return batch_first_trap(run, rerun, reproduces) or gate_order_trap(run, rerun, reproduces)
