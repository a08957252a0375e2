"""One check's state, shared by its phases: the two sides, the batch, the pairing, the
report, and what each row's diagnosis needs.

Built here: the sides (the reference side from ``compare.port.reference``, the
port from ``torch_side``), the batch validated and cast, the parameters
paired, the report's settings. Each phase then adds what it found: the
forward pass (``np_capture``, ``np_loss``, ``np_grads``, ``out``,
``t_capture``, ``t_grads``, ``t_source``, ``layer_pairs``), the known
differences (``known``), the unused torch parameters (``unused_torch``).
"""
import numpy as np

from ..data import BATCH_DEFAULTS, as_input, command_batch
from ..known import Known
from ..layers import numpy_kind, torch_kind
from ..report import Check
from ..pairing import inverse, one_way, pair_parameters, shape_group
from ..reference import reference_side
from ..report import PortReport
from ..targets import PortSetupError
from ..torch_side import TorchSide
from ..losses import CLASS_KINDS, target_kind

NUMPY_GRADIENT = ("auto", "backprop", "numerical")
SHAPE_SETTINGS = ("stride", "padding", "kernel_size")  # those that change a layer's output shape


def validate_batch(x, t, dtype, loss="cross_entropy"):
    """``(x, t)`` checked and cast: ``x`` to ``dtype``; ``t`` as the loss takes it
    (``compare.port.losses.target_kind``): class indices (int64) or one-hot rows for a
    classification loss, real targets of any shape ``(N, ...)`` for the others, whole
    numbers ``(N,)`` as indices where the loss may take them as such."""
    if not isinstance(x, np.ndarray):
        raise PortSetupError(f"x must be a NumPy array (the NumPy model's input), got {type(x).__name__}")
    if not isinstance(t, np.ndarray):
        raise PortSetupError(f"t must be a NumPy array of labels or targets, got {type(t).__name__}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise PortSetupError(f"x must hold real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise PortSetupError(f"x must be a batch (N, ...) with N >= 1, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise PortSetupError("x holds NaN or infinity")
    kind = target_kind(loss)
    if kind in CLASS_KINDS:
        return as_input(x, dtype), _class_labels(x, t, dtype, loss)
    if t.shape[:1] != x.shape[:1]:
        raise PortSetupError(f"t must have one row per row of x ({x.shape[0]}), got shape {t.shape}")
    if not (np.issubdtype(t.dtype, np.number) or t.dtype == bool) or \
            np.issubdtype(t.dtype, np.complexfloating):
        raise PortSetupError(f"t must hold real numbers, got dtype {t.dtype}")
    if not np.all(np.isfinite(t)):
        raise PortSetupError("t holds NaN or infinity")
    whole = t.ndim == 1 and (not np.issubdtype(t.dtype, np.floating) or (
        kind == "any" and np.all(t == np.round(t)))) or (kind == "any" and _token_targets(x, t))
    return as_input(x, dtype), (t.astype(np.int64) if whole else t.astype(dtype))


def _class_labels(x, t, dtype, loss):
    real = ": real targets need a regression loss such as mse_loss"
    if _token_targets(x, t):
        if t.size and t.min() < 0:
            raise PortSetupError(f"token ids t must be >= 0, got {t.min()}")
        return t.astype(np.int64)
    if t.shape[:1] != x.shape[:1] or t.ndim not in (1, 2):
        raise PortSetupError(f"t must be (N,) class indices or (N, C) one-hot rows for the "
                             f"{x.shape[0]} rows of x, got shape {t.shape}")
    if not np.issubdtype(t.dtype, np.number) or np.issubdtype(t.dtype, np.complexfloating):
        raise PortSetupError(f"t must hold class labels, got dtype {t.dtype}")
    if not np.all(np.isfinite(t)):
        raise PortSetupError("t holds NaN or infinity")
    if t.ndim == 1:
        if not np.issubdtype(t.dtype, np.integer):
            if not (np.issubdtype(t.dtype, np.floating) and np.all(t == np.round(t))):
                raise PortSetupError(f"class indices t must be integers, got dtype {t.dtype} "
                                     f"(the loss is {loss}){real}")
        if t.size and t.min() < 0:
            raise PortSetupError(f"class indices t must be >= 0, got {t.min()}")
        return t.astype(np.int64)
    t = t.astype(dtype)
    if (t < 0).any():
        raise PortSetupError(f"t holds negative values ({t.min():.4g}), and the loss {loss} "
                             f"takes class indices or one-hot rows{real}")
    return t


def _token_targets(x, t):
    """Integer targets ``(N, T, ...)`` that are token ids, one per position of the token
    ids ``x`` (a language model's next tokens), or that no one-hot row could be: targets
    ``(N, T)`` of the output ``(N, T, V)``, never rows to take as classes' probabilities."""
    if not np.issubdtype(t.dtype, np.integer) or t.ndim < 2 or t.shape[:1] != x.shape[:1]:
        return False
    if np.issubdtype(x.dtype, np.integer) and t.shape == x.shape:
        return True
    return t.ndim > 2 or not (np.isin(t, (0, 1)).all() and (t.sum(axis=1) == 1).all())


class RunState:
    """The state of one check, built up phase by phase."""

    def __init__(self, numpy_model, torch_model, x, t, *, dtype, loss, param_map, device,
                 numpy_gradient, directions, locate, seed, torch_optimizer=None, lr=0.1,
                 numpy_kwargs=None, numpy_layout=None):
        if numpy_gradient not in NUMPY_GRADIENT:
            raise PortSetupError(f"numpy_gradient must be one of {NUMPY_GRADIENT}, got {numpy_gradient!r}")
        self.np = reference_side(numpy_model, dtype, numpy_kwargs, numpy_layout)
        self.dtype = self.np.dtype.name
        drawn = None
        if self.np.batch is not None:  # a recording's own batch, unless another is given
            x = self.np.batch[0] if x is None else x
            t = self.np.batch[1] if t is None else t
        elif x is None and t is None:  # the batch the command would check on
            drawn = {**BATCH_DEFAULTS, "seed": seed}
            x, t = command_batch(getattr(self.np, "batch_params", self.np.params), self.dtype, **drawn)
        elif x is None or t is None:
            raise PortSetupError("give both x and t, or neither (the command's default batch)")
        self.x, self.t = validate_batch(x, t, self.dtype, loss)
        self.torch = TorchSide(torch_model, self.dtype, device, loss)
        self.x = self._features_or_tokens(self.x)
        if getattr(self.np, "tape", None) is not None:
            self.torch.tape = self.np.tape  # one draw for both sides
        self.report = PortReport()
        cast = self.torch.cast_note(asked=dtype is not None)
        if cast:
            self.report.notes.append(cast)
        self.numpy_gradient = numpy_gradient
        self.directions, self.locate, self.seed = directions, locate, seed
        self.blocked = None  # a row that stops the check before the passes (no pairing)
        self.pairing = self._pair(param_map)
        if self.pairing:
            from .gates import read_gate_order
            self.pairing = read_gate_order(self)
        self.report.pairing = self.pairing
        for pair in self.pairing:
            if pair.also_fits:
                self.report.notes.append(_kernel_note(pair))
        self.decays = self._decays(torch_optimizer, lr)
        self.np_loss = None
        self.t_grads = None
        self.twin = {p.numpy: p.torch for p in self.pairing}
        held = {n for p in self.pairing for n in p.torch_names}
        extra = [k for k in self.torch.params if k not in held]
        if extra and self.blocked is None:
            self.report.notes.append(f"torch parameters left unpaired (not checked): {extra}")
        self.report.settings = {
            "dtype": self.dtype, "loss": self.torch.loss_name, "batch": int(self.x.shape[0]),
            "torch model": f"{type(torch_model).__name__} ({self.torch.kind})",
            "numpy model": self.np.description}
        if drawn is not None:  # as the command names its batch
            self.report.settings.update({k: drawn[k] for k in ("data", "seed", "labels")})
        self.tx, self.tt = self.torch.tensor(self.x), self.torch.tensor(self.t)
        self.known = Known()
        self.loss_scales = []  # the loss phase's named factors between reductions
        self.heads = None  # the forward phase's output heads (compare.port.heads.match)
        self.unused_torch = set()
        self.context = {}  # check id -> what the diagnosis needs

    def _features_or_tokens(self, x):
        """Integer ``x`` is handed on as token ids (int64 on the torch side); where the
        port's pass cannot take integers (``nn.Linear`` on features that happen to be whole
        numbers), it is features: cast to the run's dtype on both sides, as before."""
        if not np.issubdtype(x.dtype, np.integer):
            return x
        import torch
        before, missed = self.torch.buffer_values(), len(self.torch.tape.missed)
        try:
            with torch.no_grad():
                if self.torch.forward_needs_more:
                    self.torch.model_loss(self.torch.tensor(x), self.torch.tensor(self.t))
                else:
                    self.torch.scores(self.torch.tensor(x))
            return x
        except (RuntimeError, TypeError, PortSetupError):
            return x.astype(self.dtype)
        finally:  # the trial pass leaves no trace: buffers as they were, no draw noted
            self.torch.load_buffers(before)
            del self.torch.tape.missed[missed:]

    def _pair(self, param_map):
        """Parameters paired in the order of the layers that own them: the book's dicts list
        every weight first and batch norm's gamma and beta after them, torch's modules hold
        their own in the order they run. A pairing that fails because a kind's layout differs
        (``BatchNorm2d`` against a per-activation norm) is a mismatch of that kind, not a
        setup error."""
        try:
            return pair_sides(self.np, self.torch, self.x, param_map, self.t)
        except PortSetupError as error:
            if not self.block(error, "parameters"):
                raise
            return []

    def block(self, error, phase):
        """Where the port cannot take the NumPy parameters or its own pass cannot run
        because it computes something else (a layer's settings differ, or a kind's trap
        reproduces), the check stops there with a failed row: ``True``; else ``False``."""
        x = self.torch.tensor(self.x)
        differ = settings_differences(self.np, self.torch, x)
        if phase != "parameters":  # a pass that cannot run: only a setting that changes shapes
            differ = [d for d in differ if d[2] in SHAPE_SETTINGS]
        why = f"{settings_text(differ)}; so {error}" if differ else str(error)
        found = pairing_trap(self.np, self.torch, phase, x)
        if found is not None:
            row, hypothesis = found
            self.blocked = (row, [hypothesis], why)
            return True
        if not differ and phase == "forward":
            from .inside_rows import locate_blocked  # a NumPy model without layers
            located = locate_blocked(self)
            if located is not None:
                self.blocked = (located[0], located[1], str(error))
                return True
        if not differ:
            # the NumPy model ran on this batch and the parameters paired and loaded; a port
            # whose own tensor arithmetic then fails on it (shapes that cannot multiply)
            # computes something else: a failed row where no setting is there to name
            if phase == "forward" and self.pairing and isinstance(error.__cause__, (RuntimeError, IndexError)):
                self.blocked = (Check(phase, "predict", "forward", passed=False,
                                      problem="the port's forward pass raised on the batch the "
                                              "NumPy model takes"), [], str(error))
                return True
            return False
        key, name = differ[0][:2]
        row = Check(phase, key, name, passed=False,
                    problem="the layers' settings differ, so the shapes after them do")
        self.blocked = (row, [], why)
        return True

    def _decays(self, torch_optimizer, lr):
        """``{numpy name: lambda}``: what the port's optimizer would decay (built on the
        check's copy, never stepped)."""
        if torch_optimizer is None or not self.pairing:
            return {}
        from ..known.weight_decay import decays_of
        from ..optimizers import torch_optimizer_of
        optimizer, _ = torch_optimizer_of(torch_optimizer, list(self.torch.params.values()), lr,
                                          model=self.torch.module)
        return decays_of(optimizer, self.torch.params, self.pairing)

    def add(self, row, **context):
        self.report.checks.append(row)
        self.context[id(row)] = context
        return row

    def apply_known(self, known):
        """Hold the known differences a phase found, and name each in the report."""
        known.note(self.report)
        self.known = self.known + known

    def torch_name(self, name):
        """The torch twin of the NumPy parameter ``name``, as the rows show it."""
        pair = next(p for p in self.pairing if p.numpy == name)
        return pair.view


def _kernel_note(pair):
    """A kernel whose shape fits more than one axis order: the one taken, and what the
    forward's values are left to decide."""
    others = ", ".join(f"{pair.torch}.permute({', '.join(map(str, inverse(p)))})" for p in pair.also_fits)
    return (f"{pair.numpy} is taken as a channels-last kernel (h, w, c_in, n_f): {pair.view}; its "
            f"shape also fits {others} (h and w, or c_in and n_f, swapped), which the shapes "
            f"cannot tell apart: the forward's values decide (a convolution that parts there may "
            f"hold its kernel in another order: say it with --param-map)")


def pair_sides(np_side, t_side, x, param_map=None, t=None):
    """The parameter pairing: by name, else by what each side's forward pass computes with
    its parameters (``pairing.pair_by_use``), else by the order of their layers."""
    np_shapes = {k: np_side.params[k].shape for k in layer_order(np_side.params, np_side.owners,
                                                                 np_side.items)}
    t_shapes = {k: tuple(t_side.params[k].shape) for k in t_side.execution_order(
        t_side.tensor(x), None if t is None else t_side.tensor(t))}
    fused = fused_recurrent(np_shapes, t_side, param_map, order=list(t_shapes))
    if fused:  # the recurrent modules' fused gates paired by their kind; the rest as below
        taken = {p.numpy for p in fused}
        held = {n for p in fused for n in p.torch_names}
        rest = _pair_rest({k: s for k, s in np_shapes.items() if k not in taken},
                          {k: s for k, s in t_shapes.items() if k not in held},
                          np_side, t_side, x, param_map, t)
        by_name = {p.numpy: p for p in [*fused, *rest]}
        return [by_name[k] for k in np_shapes if k in by_name]
    return _pair_rest(np_shapes, t_shapes, np_side, t_side, x, param_map, t)


def fused_recurrent(np_shapes, t_side, param_map, order=None):
    """The recurrent modules' pairs (``layers/recurrent.py``), the NumPy names a
    ``--param-map`` gives left to it; ``order``: the port's parameters in order of
    execution."""
    if t_side.kind != "module":
        return []
    from ..layers.recurrent import fused_pairs
    from ..pairing import parse_param_map
    mapped = set(parse_param_map(param_map) or {})
    return fused_pairs(np_shapes, t_side.model, used=mapped, order=order)


def _pair_rest(np_shapes, t_shapes, np_side, t_side, x, param_map, t):
    # features first, W is (out, in) as nn.Linear holds it: the shapes alone decide
    linear = set() if getattr(np_side, "layout", None) == "features-first" else (
        t_side.linear_weights | t_side.functional_linear_weights(x))
    if param_map is not None or set(np_shapes) == set(t_shapes):
        return pair_parameters(np_shapes, t_shapes, param_map=param_map, linear_weights=linear)
    observe = getattr(np_side, "use_order", None)
    if one_way(np_shapes, t_shapes):  # the shapes alone pair them: no pass needs following
        observe = None
    # what each pass computes with each parameter pairs them whatever order a dict lists them
    # in; a golden file's order is the one it was recorded in
    uses = (observe(x, t), t_side.use_order(x, t)) if observe is not None else None
    # the order of layer objects is evidence, but not the order a dict lists one layer's
    # arrays in (a batch norm's gamma and beta)
    alike = [(np_side.owners.get(k), shape_group(s)) for k, s in np_shapes.items()]
    ordered = observe is None or bool(np_side.owners) and len(set(alike)) == len(alike)
    return pair_parameters(np_shapes, t_shapes, linear_weights=linear, ordered=ordered, uses=uses)


def np_layer(side, key):
    """The NumPy layer object behind a record's key (a layer function's stand-in too)."""
    layer_of = getattr(side, "layer_of", None)
    return layer_of(key) if layer_of is not None else dict(side.items).get(key)


def layer_order(params, owners, items):
    """The parameter names, those of each layer together in the order of the layers."""
    order = [key for key, _ in items]
    place = {name: order.index(key) for name, key in owners.items() if key in order}
    if not place:
        return list(params)
    names = list(params)
    return sorted(names, key=lambda n: (place.get(n, len(order)), names.index(n)))


def structural_pairs(np_side, t_side, x=None):
    """``[(numpy key, layer, torch name, module, kind)]``: the i-th layer of a kind on one
    side with the i-th module of that kind on the other, before any pass (for settings);
    where the port has no module of a kind, its functional calls of that kind whose
    settings a pass on ``x`` shows (``F.conv2d(x, W, b, padding=...)``)."""
    if t_side.kind != "module":
        return []
    np_layers = [(key, layer, numpy_kind(type(layer).__name__)) for key, layer in np_side.items]
    t_modules = [(name, m, torch_kind(type(m).__name__)) for name, m in t_side.model.named_modules() if name]
    kinds = list(dict.fromkeys(k for _, _, k in np_layers if k is not None))
    if x is not None and any(not any(k is kind for *_, k in t_modules) for kind in kinds):
        t_modules += [(key, call, torch_kind(kind)) for key, kind, call in t_side.functional_calls(x)]
    pairs = []
    for kind in kinds:
        mine = [(key, layer) for key, layer, k in np_layers if k is kind]
        theirs = [(name, m) for name, m, k in t_modules if k is kind]
        pairs += [(key, layer, name, m, kind) for (key, layer), (name, m) in zip(mine, theirs)]
    return pairs


def settings_differences(np_side, t_side, x=None):
    """``[(numpy key, torch name, setting, numpy value, torch value)]`` of the settings both
    sides hold for a layer (stride, padding, eps, momentum, p) that differ."""
    out = []
    for key, layer, name, module, kind in structural_pairs(np_side, t_side, x):
        out += [(key, name, setting, a, b) for setting, a, b in kind.settings(layer, module)]
    return out


def settings_text(differ):
    def shown(v):
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    return ", ".join(f"{key} has {setting} {shown(a)}, {name} {shown(b)}" for key, name, setting, a, b in differ)


def pairing_trap(np_side, t_side, phase="parameters", x=None):
    """A kind whose parameters cannot pair (or whose port cannot run on them) because the
    port computes it another way: ``(failed row, hypothesis)`` or None; the row at the
    first parameter of the layer, or in the forward phase at the layer itself."""
    for key, layer, name, module, kind in structural_pairs(np_side, t_side, x):
        if not hasattr(kind, "pairing_trap"):
            continue
        hypothesis = kind.pairing_trap(key, layer, np_side.params, np_side.owners, name, module)
        if hypothesis is not None:
            names = [n for n, k in np_side.owners.items() if k == key]
            if phase == "parameters":
                weight = f"{name}.weight" if f"{name}.weight" in t_side.params else name
                row = Check(phase, names[0] if names else key, weight,
                            problem=hypothesis["problem"], passed=False)
            else:
                row = Check(phase, key, name, problem=hypothesis["problem"], passed=False)
            return row, hypothesis
    return None
