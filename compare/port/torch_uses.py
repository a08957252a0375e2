"""What a torch port's forward pass does with each parameter, in the order it first does it:
the torch half of ``reference/uses.py``, with the same roles.

Every torch call of one pass is seen through a ``TorchFunctionMode`` (inside the leaf
modules too: ``nn.Linear`` calls ``F.linear``, ``nn.BatchNorm1d`` ``F.batch_norm``); a
parameter is known by identity, and so are its views (``W.T``, ``W.t()``, ``b.reshape``).
A layer call says the role of each argument (``F.linear``'s weight is a ``matrix``, its
bias a ``shift``; ``F.batch_norm``'s weight a ``scale``); an arithmetic call says it as
NumPy's does (``x @ W``, ``+ b``, ``* gamma``), when it combines the parameter with data.
"""
from .roles import LOOKUP, MATRIX, OTHER, SCALE, SHIFT, flat

# function name -> {argument position or keyword: role}
LAYER_ARGUMENTS = {
    "linear": {(1, "weight"): MATRIX, (2, "bias"): SHIFT},
    "bilinear": {(2, "weight"): MATRIX, (3, "bias"): SHIFT},
    "conv1d": {(1, "weight"): MATRIX, (2, "bias"): SHIFT},
    "conv2d": {(1, "weight"): MATRIX, (2, "bias"): SHIFT},
    "conv3d": {(1, "weight"): MATRIX, (2, "bias"): SHIFT},
    "conv_transpose1d": {(1, "weight"): MATRIX, (2, "bias"): SHIFT},
    "conv_transpose2d": {(1, "weight"): MATRIX, (2, "bias"): SHIFT},
    "conv_transpose3d": {(1, "weight"): MATRIX, (2, "bias"): SHIFT},
    "addmm": {(0, "input"): SHIFT, (1, "mat1"): MATRIX, (2, "mat2"): MATRIX},
    "batch_norm": {(3, "weight"): SCALE, (4, "bias"): SHIFT},
    "instance_norm": {(3, "weight"): SCALE, (4, "bias"): SHIFT},
    "layer_norm": {(2, "weight"): SCALE, (3, "bias"): SHIFT},
    "group_norm": {(2, "weight"): SCALE, (3, "bias"): SHIFT},
    "embedding": {(1, "weight"): LOOKUP},
}
ARITHMETIC = {"matmul": MATRIX, "mm": MATRIX, "bmm": MATRIX, "mv": MATRIX, "einsum": MATRIX,
              "tensordot": MATRIX, "dot": MATRIX, "__matmul__": MATRIX, "__rmatmul__": MATRIX,
              "add": SHIFT, "__add__": SHIFT, "__radd__": SHIFT, "__iadd__": SHIFT, "add_": SHIFT,
              "sub": SHIFT, "__sub__": SHIFT, "__rsub__": SHIFT, "subtract": SHIFT,
              "mul": SCALE, "__mul__": SCALE, "__rmul__": SCALE, "multiply": SCALE,
              "div": SCALE, "__truediv__": SCALE, "__rtruediv__": SCALE}
VIEWS = {"t", "reshape", "view", "unsqueeze", "squeeze", "flatten", "contiguous", "expand",
         "expand_as", "to", "double", "float", "clone", "transpose", "permute", "view_as",
         "reshape_as", "detach"}
ATTRIBUTE_VIEWS = {"T", "mT", "H", "data"}


def _bool():
    import torch
    return torch.bool


class _Observer:
    def __init__(self, named_params):
        self.known = {id(p): (p, name) for name, p in named_params}
        self.uses, self.seen = [], set()

    def name(self, value):
        kept = self.known.get(id(value))
        return kept[1] if kept is not None and kept[0] is value else None

    def note(self, name, role):
        if name is not None and name not in self.seen:
            self.seen.add(name)
            self.uses.append((name, role))

    def call(self, func, args, kwargs):
        out = func(*args, **kwargs)
        fname = getattr(func, "__name__", "")
        if fname == "__get__":
            fname = getattr(getattr(func, "__self__", None), "__name__", "")
            if fname in ATTRIBUTE_VIEWS and args and self.name(args[0]) is not None:
                self.known[id(out)] = (out, self.name(args[0]))
            return out
        if fname in VIEWS:
            if args and self.name(args[0]) is not None and hasattr(out, "shape"):
                self.known[id(out)] = (out, self.name(args[0]))
            return out
        if fname in ("__getitem__", "index_select") and args and self.name(args[0]) is not None:
            index = args[-1]
            if getattr(index, "dtype", None) is not None and not index.dtype.is_floating_point \
                    and index.dtype != _bool():
                self.note(self.name(args[0]), LOOKUP)  # rows picked by ids: W[idx]
                return out
        slots = LAYER_ARGUMENTS.get(fname)
        if slots is not None:
            for (i, keyword), role in slots.items():
                value = kwargs[keyword] if keyword in kwargs else (args[i] if len(args) > i else None)
                self.note(self.name(value), role)
            return out
        values = list(flat(list(args) + list(kwargs.values())))
        names = [self.name(v) for v in values if self.name(v) is not None]
        data = [v for v in values if hasattr(v, "shape") and self.name(v) is None
                and getattr(v, "numel", lambda: 0)() > 1]
        if names and data:
            for name in names:
                self.note(name, ARITHMETIC.get(fname, OTHER))
        return out


def use_order(model, forward, named_params):
    """``[(name, role)]`` in the order ``forward()`` first computes with each parameter of
    ``named_params``; None when the pass cannot run."""
    import torch
    from torch.overrides import TorchFunctionMode

    observer = _Observer(named_params)

    class Observe(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return observer.call(func, tuple(args), dict(kwargs or {}))

    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), Observe():
            forward()
    except Exception:  # a pass that cannot run observed tells nothing
        return None
    return observer.uses
