"""The torch optimizer's hyper-parameters as hypotheses (``optimizer``), where training
parts after the first batch's loss and gradients agreed.

What is left to part the two sides then is the update rule, and torch writes a rule's
constants as its optimizer's hyper-parameters: SGD's ``momentum``, ``dampening`` and
``nesterov``, Adam's ``betas`` and ``eps``, RMSprop's ``alpha`` (the book's
``decay_rate``), Adagrad's ``eps``. Each hypothesis is the port's own optimizer rebuilt
(its class, its parameter groups, every other setting as it was) with one of them
changed: first to the values the NumPy optimizer holds (the book's attributes,
cs231n's ``config`` dict), then to the usual ones; last, another class where the NumPy
optimizer's name or attributes say which. A hypothesis is named only where the port,
trained again from the same start on the same batches with it, agrees with the NumPy
loss and parameters at every step compared (``replay``, given by training, with its own
tolerances): one that only brings the failing step closer names nothing.

Weight decay is not among them: training names a decay the book does not have
(``weight_decay``) before this runs.
"""
import inspect
from dataclasses import dataclass, field

import numpy as np

from .optimizers import StepInterface

# the NumPy optimizer's names for each torch hyper-parameter: the book's (``momentum``,
# ``decay_rate``, ``beta1``, ``beta2``), cs231n's config keys (``epsilon``), the usual others
NUMPY_NAMES = {
    "momentum": ("momentum", "mu"),
    "alpha": ("decay_rate", "rho", "alpha"),
    "beta1": ("beta1",),
    "beta2": ("beta2",),
    "eps": ("eps", "epsilon"),
    "dampening": ("dampening",),
    "nesterov": ("nesterov",),
}

# the values porters write, tried after the NumPy optimizer's own
USUAL = {
    "momentum": (0.9, 0.5, 0.99, 0.0),
    "eps": (1e-8, 1e-7, 1e-10, 1e-6),
    "betas": ((0.9, 0.999), (0.9, 0.99), (0.5, 0.999)),
    "alpha": (0.99, 0.9),
}

# settings torch has off by default that change the rule: a port that set one is tried
# without it
OFF = {"centered": False, "amsgrad": False, "lr_decay": 0.0, "initial_accumulator_value": 0.0}

# the book's constant beside each root (AdaGrad, RMSprop), where a NumPy optimizer has no eps
BOOK_EPS = 1e-7

# each rerun trains the port through the steps compared; wrong hypotheses stop at their
# first step out of tolerance, so this bounds the added time by about this many short runs
# and one full one
MAX_HYPOTHESES = 16


@dataclass
class Hypothesis:
    name: str  # the hyper-parameter changed, or "class"
    port_value: object
    value: object
    changed: dict
    cls: type
    numpy_says: str = None  # "momentum=0.5" as the NumPy optimizer holds it
    context: dict = field(default_factory=dict)  # the port's related settings, for the text

    def factory(self, optimizer, old_params):
        """A torch optimizer factory ``fn(params, lr=...)``: ``optimizer`` rebuilt over the
        rerun's parameters (``old_params``: the list it was built on, in the same order)."""
        def make(params, lr=None):
            return rebuilt(optimizer, self.cls, self.changed, old_params, params,
                           same_class=self.name != "class")
        return make


def rebuilt(optimizer, cls, changed, old_params, new_params, same_class=True):
    """``cls`` over ``new_params``, with ``optimizer``'s parameter groups (a parameter at the
    same place in ``old_params``) and settings, ``changed`` set in every group. Of another
    class, only the step size and a coupled decay carry over: the rest is the class's own."""
    place = {id(p): i for i, p in enumerate(old_params)}
    takes = set(inspect.signature(cls).parameters) - {"self", "params"}
    groups = []
    for group in optimizer.param_groups:
        if same_class:
            settings = {k: v for k, v in group.items() if k in takes}
        else:
            decoupled = group.get("decoupled_weight_decay") or type(optimizer).__name__ == "AdamW"
            settings = {"lr": group["lr"], "weight_decay": 0.0 if decoupled else group.get("weight_decay", 0.0)}
        settings.update(changed)
        groups.append({"params": [new_params[place[id(p)]] for p in group["params"]], **settings})
    return cls(groups)


def numpy_settings(optimizer):
    """``{torch name: (NumPy name, value)}`` as the NumPy optimizer holds them: its attributes,
    then a dict's entries (cs231n's ``config``; one level further for one per parameter)."""
    found = {}
    if isinstance(optimizer, StepInterface):  # its settings are the wrapped optimizer's
        optimizer = optimizer.inner

    def scan(mapping):
        for torch_name, names in NUMPY_NAMES.items():
            for name in names:
                value = mapping.get(name)
                if torch_name == "nesterov":
                    usable = isinstance(value, (bool, np.bool_))
                else:
                    usable = (isinstance(value, (int, float, np.integer, np.floating))
                              and not isinstance(value, (bool, np.bool_)) and np.isfinite(value))
                if usable and torch_name not in found:
                    found[torch_name] = (name, bool(value) if torch_name == "nesterov" else float(value))

    attributes = dict(vars(optimizer)) if optimizer is not None and hasattr(optimizer, "__dict__") else {}
    scan(attributes)
    for value in attributes.values():
        if isinstance(value, dict):
            scan(value)
            for inner in value.values():
                if isinstance(inner, dict):
                    scan(inner)
    return found


def _numbers(*groups):
    """The values in order, each once (floats compared as numbers)."""
    out = []
    for group in groups:
        for v in group:
            if v is not None and all(v != w for w in out):
                out.append(v)
    return out


def _fmt(value):
    if isinstance(value, tuple):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.floating)):
        return f"{float(value):g}"
    return str(value)


def hypotheses(optimizer, numpy_optimizer, numpy_name):
    """The port's optimizer with one hyper-parameter changed at a time, in order: the NumPy
    optimizer's values first, then the usual ones, then another class (``numpy_name``: the
    NumPy optimizer's class name; ``numpy_optimizer`` None where only its records are left)."""
    group = optimizer.param_groups[0]
    cls = type(optimizer)
    said = numpy_settings(numpy_optimizer)
    out = []

    def add(name, value, context=(), says=None, changed=None):
        port = group[name]
        if value is None or _same(port, value):
            return
        if any(h.name == name and _same(h.value, value) for h in out):
            return
        out.append(Hypothesis(name, port, value, changed or {name: value}, cls, says,
                              {k: group[k] for k in context}))

    def says(name):
        if name not in said:
            return None
        own, v = said[name]
        return f"{own}={_fmt(v)}"

    sgd = "nesterov" in group and "momentum" in group
    momentum = group.get("momentum", 0.0)
    numpy_momentum = said.get("momentum", (None, None))[1]
    if sgd:
        for m in _numbers([numpy_momentum], USUAL["momentum"]):
            add("momentum", m, ("dampening", "nesterov"), says("momentum") if m == numpy_momentum else None)
        if momentum or numpy_momentum:
            add("nesterov", not group["nesterov"], ("momentum",), says("nesterov"))
        if not momentum and numpy_momentum and not group["nesterov"]:
            # the momentum and its Nesterov form forgotten together: one pair, cheap to try
            out.append(Hypothesis("momentum", momentum, numpy_momentum,
                                  {"momentum": numpy_momentum, "nesterov": True}, cls,
                                  says("momentum"), {"nesterov": False}))
        if momentum:
            numpy_dampening = said.get("dampening", (None, None))[1]
            for d in _numbers([numpy_dampening], [0.0, momentum]):
                add("dampening", d, ("momentum",), says("dampening") if d == numpy_dampening else None)
    if "betas" in group:
        b1, b2 = group["betas"]
        nb1, nb2 = said.get("beta1", (None, None))[1], said.get("beta2", (None, None))[1]
        if nb1 is not None and nb2 is not None:
            add("betas", (nb1, nb2), ("eps",), f"{says('beta1')}, {says('beta2')}")
        if nb1 is not None:
            add("betas", (nb1, b2), ("eps",), says("beta1"))
        if nb2 is not None:
            add("betas", (b1, nb2), ("eps",), says("beta2"))
        for betas in USUAL["betas"]:
            add("betas", betas, ("eps",))
    if "alpha" in group:
        numpy_alpha = said.get("alpha", (None, None))[1]
        for a in _numbers([numpy_alpha], USUAL["alpha"]):
            add("alpha", a, ("eps",), says("alpha") if a == numpy_alpha else None)
    if "eps" in group:
        numpy_eps = said.get("eps", (None, None))[1]
        for e in _numbers([numpy_eps], USUAL["eps"]):
            add("eps", e, (), says("eps") if e == numpy_eps else None)
    if not sgd and group.get("momentum"):
        add("momentum", 0.0)  # RMSprop's momentum, where the NumPy rule has none
    for name, off in OFF.items():
        if name in group and group[name]:
            add(name, off)
    out += _other_classes(optimizer, numpy_name, said)
    return out[:MAX_HYPOTHESES]


def _same(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return tuple(a) == tuple(b) if isinstance(a, tuple) and isinstance(b, tuple) else False
    if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
        return type(a) is type(b) and a == b
    return a == b


def _other_classes(optimizer, numpy_name, said):
    """The torch class the NumPy optimizer's name or attributes say, built with what it
    holds, where the port used another."""
    import torch.optim as optim
    name = numpy_name.lower()
    get = {k: v for k, (_, v) in said.items()}
    eps = get.get("eps")
    if "nesterov" in name:
        options = [(optim.SGD, {"momentum": get.get("momentum", 0.9), "nesterov": True})]
    elif "adagrad" in name:
        options = [(optim.Adagrad, {"eps": e}) for e in _numbers([eps, BOOK_EPS, 1e-10])]
    elif "rmsprop" in name or "alpha" in get:
        options = [(optim.RMSprop, {"alpha": get.get("alpha", 0.99), "eps": e})
                   for e in _numbers([eps, BOOK_EPS, 1e-8])]
    elif "adam" in name or "beta1" in get:
        betas = (get.get("beta1", 0.9), get.get("beta2", 0.999))
        options = [(optim.Adam, {"betas": betas, "eps": e}) for e in _numbers([eps, 1e-8, BOOK_EPS])]
    elif "momentum" in name or "momentum" in get:
        options = [(optim.SGD, {"momentum": get.get("momentum", 0.9)})]
    elif "sgd" in name:
        options = [(optim.SGD, {})]
    else:
        options = []
    group = optimizer.param_groups[0]
    port = type(optimizer)
    out = []
    for cls, changed in options:
        if cls is port:
            continue  # the same class: its settings are the hypotheses above
        out.append(Hypothesis("class", port, cls, changed, cls,
                              context={k: group[k] for k in ("weight_decay",) if group.get(k)}))
    return out


def describe(h, optimizer_name, numpy_name, through):
    """The diagnosis's text: the hyper-parameter, its value on each side, the evidence."""
    context = ", ".join(f"{k}={_fmt(v)}" for k, v in h.context.items())
    tail = (f"the port's training reproduces the NumPy loss and parameters through step "
            f"{through}")
    if h.name == "class":
        settings = ", ".join(f"{k}={_fmt(v)}" for k, v in h.changed.items())
        return (f"the port's optimizer is torch.optim.{h.port_value.__name__}"
                f"{f' ({context})' if context else ''}, the NumPy update ({numpy_name}) is "
                f"torch.optim.{h.value.__name__}'s rule: with torch.optim.{h.value.__name__}"
                f"({settings}{', ' if settings else ''}the same lr) {tail}")
    port = f"{h.name}={_fmt(h.port_value)}" + (f" ({context})" if context else "")
    extra = [f"{k}={_fmt(v)}" for k, v in h.changed.items() if k != h.name]
    value = f"{h.name}={_fmt(h.value)}" + (f" and {', '.join(extra)}" if extra else "")
    if h.numpy_says:
        numpy = f"the NumPy update ({numpy_name}) has {h.numpy_says}"
    else:
        numpy = (f"the NumPy update ({numpy_name}) computes as {value} (its formula, not an "
                 f"attribute, holds that)")
    return f"the port's torch.optim.{optimizer_name} has {port}, {numpy}: with {value} {tail}"


def optimizer_trap(optimizer, old_params, numpy_optimizer, numpy_name, replay, through):
    """The first hypothesis under which ``replay(factory)`` (the port trained again from its
    start by ``factory``) agrees at every step through ``through``: a diagnosis, or None."""
    for h in hypotheses(optimizer, numpy_optimizer, numpy_name):
        # settings torch refuses (nesterov without momentum) fail to build there: no rerun
        if not replay(h.factory(optimizer, old_params)):
            continue
        return {"code": "optimizer", "hyperparameter": h.name,
                "torch": _value(h.port_value), "numpy": _value(h.value),
                "changed": {k: _value(v) for k, v in h.changed.items()},
                "through_step": through,
                "text": describe(h, type(optimizer).__name__, numpy_name, through)}
    return None


def _value(v):
    """A value for ``--json``: a class by its name, a tuple as a list."""
    if isinstance(v, type):
        return v.__name__
    if isinstance(v, tuple):
        return [float(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return float(v) if isinstance(v, (int, float, np.floating)) else v
