"""Affine: the book's ``Affine`` (``x @ W + b``, ``W`` (in, out)) and ``nn.Linear`` (``weight``
(out, in): the transpose, paired as such), ``F.linear``, ``x @ W + b``.

The book's ``Affine`` takes a 4-D input and flattens it itself, in (C, H, W)
order (``x.reshape(N, -1)``); a port that flattens channels-last
(``x.permute(0, 2, 3, 1).reshape(N, -1)``, the TensorFlow habit) feeds the
same numbers in another order. Trap ``flatten_order``: the torch layer's
input is a permutation of the NumPy layer's, flattened.

Trap ``transpose``: a square weight runs in either layout, so the shapes cannot
show one used without its transpose (``h @ W.T`` where the NumPy side computes
``h @ W``). The port's affine layer (``nn.Linear``, or a traced call with the
layout it uses its weight in), rerun on the layer's input with the port's own
weight, must give the port's output; rerun with the weight in the other layout,
the NumPy output. Tested where no NumPy layer object is at hand (a row read off
the NumPy forward's locals); with one, the diagnosis reruns the NumPy layer with
its weight transposed instead (``check.diagnosis``'s counterfactuals).
"""
import itertools

import numpy as np

from ..trace import IN_OUT, OUT_IN
from .base import LayerKind, summed_scale, torch_shown
from .written import CannotWrite, Load, Written, functional, trap

AXES = {3: "CHW", 4: "CHW", 5: "CDHW"}
# the role of a weight (out, in) that a layer known by its values uses as ``x @ W.T``
OUT_IN_ROLE = "W (out, in)"


class Affine(LayerKind):
    def gradient_scale(self, record, layer, value):
        g, x = record.grad_output, record.input
        if g is None or np.ndim(g) != 2:
            return None
        inputs = None if x is None else int(np.size(x) // x.shape[0])
        # a bias (out,), or held as a row or column (1, out): its size, where a weight's differs
        if np.ndim(value) == 1 or (np.size(value) == g.shape[1] and inputs not in (None, 1)):
            return summed_scale(g, (0,))  # db = sum over the batch of dout
        if x is not None and np.ndim(value) == 2:  # dW = x.T @ dout
            x2 = np.abs(np.asarray(x, np.float64).reshape(x.shape[0], -1))
            ga = np.abs(np.asarray(g, np.float64))
            return float(x.shape[0] * x2.max() * ga.max() + (x2.T @ ga).max())
        return None

    def traps(self, site):
        return self._flatten_order(site) or self._transposed(site)

    def write(self, seen):
        written = linear(seen)
        if seen.functional:
            if seen.input is not None and np.ndim(seen.input) > 2:
                written.call.insert(0, "x = x.flatten(1)")
                written.conventions.append(
                    ("the NumPy Affine flattens a 4-D input itself, in (C, H, W) order: "
                     "x.flatten(1) before F.linear flattens in the same order", trap("flatten_order")))
            return written
        if seen.input is not None and np.ndim(seen.input) > 2:
            written.before.append(("flatten", "nn.Flatten()"))
            written.conventions.append(
                ("the NumPy Affine flattens a 4-D input itself, in (C, H, W) order: nn.Flatten() "
                 "before nn.Linear flattens in the same order", trap("flatten_order")))
        return written

    def computes(self, x, params):
        """``x @ W + b`` (the input flattened), ``W`` (in, out) and ``b`` (out,) or a row
        (1, out), and ``x @ W`` with no bias; likewise ``x @ W.T`` for ``W`` (out, in)."""
        x = np.asarray(x, np.float64)
        if x.ndim < 2:
            return []
        flat = x.reshape(x.shape[0], -1)
        out = []
        for w_name, w in params.items():
            if np.ndim(w) != 2:
                continue
            for role, used in (("W", w), (OUT_IN_ROLE, np.transpose(w))):
                if used.shape[0] != flat.shape[1]:
                    continue
                z = flat @ np.asarray(used, np.float64)
                out += [({role: w_name, "b": b_name}, z + np.asarray(b, np.float64).reshape(-1))
                        for b_name, b in params.items()
                        if b_name != w_name and np.shape(b) in ((used.shape[1],), (1, used.shape[1]),
                                                                 (used.shape[1], 1))]
                out.append(({role: w_name}, z))
        return out

    def _transposed(self, site):
        if site.what != "output" or site.numpy_layer is not None or site.input is None:
            return []
        weight_name, used, weight, bias = _weight_in_use(site)
        if weight is None or weight.ndim != 2 or weight.shape[0] != weight.shape[1]:
            return []
        u = np.asarray(site.input, np.float64)
        if u.ndim < 2 or u.shape[-1] != weight.shape[0]:
            return []

        def affine(layout):  # x @ W for (in, out), x @ W.T for (out, in)
            out = u @ (weight if layout == IN_OUT else weight.T)
            return out if bias is None else out + bias
        other = OUT_IN if used == IN_OUT else IN_OUT
        if not site.close(site.actual, affine(used)) or not site.close(site.expected, affine(other)):
            return []
        t_key, n_key = torch_shown(site), site.numpy_record.key
        if site.torch_module is not None:  # nn.Linear: its use is fixed, the loading is not
            text = (f"{t_key} computes the NumPy {n_key} with {weight_name} transposed: a square "
                    f"weight loaded in the other layout (nn.Linear holds (out, in)); the NumPy "
                    f"weight is (in, out): pair it transposed (--param-map NUMPY={weight_name}.T)")
        else:
            fix = (f"x @ {weight_name}.T, or F.linear(x, {weight_name}, bias)" if other == OUT_IN
                   else f"x @ {weight_name}, or F.linear(x, {weight_name}.T, bias)")
            text = (f"{t_key} uses {weight_name} as an {used} matrix; used as an {other} matrix it "
                    f"gives the NumPy {n_key}: a square weight used without its transpose (the "
                    f"shapes cannot show it); write {fix}")
        return [{"code": "transpose", "parameter": weight_name, "text": text}]

    def _flatten_order(self, site):
        x_np, x_t = site.numpy_record.input, site.torch_record.input
        if x_np is None or x_t is None or np.ndim(x_np) < 3 or np.ndim(x_t) != 2 \
                or np.size(x_np) != np.size(x_t):
            return []
        n = x_np.shape[0]
        if site.close(x_np.reshape(n, -1), x_t):
            return []
        letters = AXES.get(x_np.ndim, "".join(f"a{i}" for i in range(1, x_np.ndim)))
        for perm in itertools.permutations(range(1, x_np.ndim)):
            if list(perm) == sorted(perm):
                continue
            if site.close(np.transpose(x_np, (0, *perm)).reshape(n, -1), x_t):
                order = ", ".join(letters[p - 1] for p in perm)
                permute = ", ".join(str(p) for p in (0, *perm))
                return [{"code": "flatten_order", "permutation": [0, *perm],
                         "text": f"{site.torch_record.key} receives its input flattened in the order "
                                 f"({order}), the NumPy {site.numpy_record.key} in "
                                 f"({', '.join(letters)}): the port permutes before it flattens "
                                 f"(permute({permute})); flatten the (N, {', '.join(letters)}) "
                                 f"tensor as it is (x.reshape(N, -1) or nn.Flatten())"}]
        return []



def linear(seen):
    """``nn.Linear`` with the NumPy ``W`` (in, out) loaded transposed, and its bias; a weight
    the layer holds as the transpose of another parameter (``TimeAffine(embed_W.T, b)``) tied
    to the module that parameter is loaded into, as it is: ``embed_W`` (V, H) is already
    ``nn.Linear``'s (out, in)."""
    tied = seen.transposed.get("W")
    w_name, w = seen.param("W", "weights", "weight", "w")
    out_in, _ = seen.param(OUT_IN_ROLE)
    if w_name is None and out_in is not None:  # used as x @ W.T: already nn.Linear's layout
        w_name, w = out_in, seen.params[out_in].T
    b_name, b = seen.param("b", "biases", "bias")
    if tied is not None:
        w = seen.params[tied].T
    if w is None or np.ndim(w) != 2:
        raise CannotWrite("it holds no 2-D weight W (in, out) among the NumPy parameters")
    n_in, n_out = w.shape
    if seen.functional:
        if tied is not None:
            raise CannotWrite(f"its weight is tied to {tied}: --style modules writes the tie")
        written = functional([f"x = F.linear(x, {{p}}weight{', {p}bias' if b_name else ''})"],
                             [("weight", f"0.01 * torch.randn({n_out}, {n_in})")] +
                             ([("bias", f"torch.zeros({n_out})")] if b_name else []))
        held = "F.linear's weight"
    else:
        written = Written(f"nn.Linear({n_in}, {n_out}{'' if b_name else ', bias=False'})")
        held = "nn.Linear.weight"
    if out_in is not None and w_name == out_in:
        written.loads.append(Load("weight", w_name, "{p}", ""))
        written.conventions.append((f"the NumPy code computes x @ {w_name}.T: {w_name} is (out, "
                                    f"in), as {held} holds it, and is loaded as it is",
                                    trap("transpose")))
    elif tied is None:
        written.loads.append(Load("weight", w_name, "{p}.T",
                                  f"the NumPy W is (in, out); {held} is (out, in)"))
        written.conventions.append((f"the NumPy Affine keeps W as (in, out), "
                                    f"{'F.linear takes it' if seen.functional else 'nn.Linear'} as "
                                    f"(out, in): loaded transposed", trap("transpose")))
    else:
        written.ties.append(("weight", tied))
        written.conventions.append((f"the NumPy layer computes with {tied}.T, the same array: "
                                    f"nn.Linear's weight (out, in) is {tied} itself, tied to it "
                                    f"(one parameter, its gradient the sum of both uses)",
                                    trap("tied_weights")))
    if b_name:
        written.loads.append(Load("bias", b_name, *(("{p}", "") if np.ndim(b) == 1 else (
            "{p}.reshape(-1)", f"the NumPy b is {'a row (1, out)' if np.shape(b)[0] == 1 else 'a column (out, 1)'}; "
                               f"{held.replace('weight', 'bias')} is (out,)"))))
    return written


class TimeAffine(Affine):
    """The book's ``TimeAffine``: the affine on each step of ``(N, T, H)``, as ``nn.Linear``
    computes on the last axis with no reshape."""

    def write(self, seen):
        return linear(seen)

KIND = Affine("affine", numpy_names=("Affine", "Dense", "Linear", "FullyConnected"),
              torch_modules=("Linear", "LazyLinear"), torch_functions=("linear", "matmul", "addmm"))


def _weight_in_use(site):
    """``(name, layout, weight, bias)`` of the port's affine layer: ``nn.Linear``'s own, or a
    traced call's weight in the layout it uses it and its other parameter, the bias; the
    port's values as loaded. ``(None,) * 4`` where there is no weight to rerun."""
    module = site.torch_module
    if module is not None:
        weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
        if weight is None or not hasattr(weight, "detach"):
            return (None,) * 4
        as_array = lambda t: None if t is None else np.asarray(t.detach().cpu().numpy(), np.float64)
        return f"{site.torch_record.key}.weight", OUT_IN, as_array(weight), as_array(bias)
    layouts = getattr(site.torch_record, "layouts", None) or {}
    params = site.torch_params or {}
    if len(layouts) != 1:
        return (None,) * 4
    name, layout = next(iter(layouts.items()))
    others = [n for n in site.torch_record.param_names if n != name]
    if name not in params or len(others) > 1:
        return (None,) * 4
    bias = params.get(others[0]) if others else None
    return name, layout, np.asarray(params[name], np.float64), \
        None if bias is None else np.asarray(bias, np.float64)


TIME_KIND = TimeAffine("time_affine", ("TimeAffine",))
