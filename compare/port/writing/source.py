"""The written port's file, laid out from the kinds' ``Written`` parts.

Its order: the docstring, the conventions converted (each with its trap in
``docs/traps.md``), the imports (torch only), the helpers a module needs, the
port class, its loss, ``make_port()``, ``load_numpy_params(port, params)`` with a
comment on each layout conversion, and ``make_optimizer`` where the NumPy loss
holds weight decay.
"""
from keyword import iskeyword

from ..layers.written import trap

OPTIMIZER = '''def make_optimizer(port, lr=0.1):
    """SGD with the NumPy loss's weight decay, on the weights alone: the book decays no bias,
    gamma or beta. ``port``: the port, or its parameters (as ``compare port`` hands them)."""
    params = list(port.parameters() if isinstance(port, nn.Module) else port)
    weights = [p for p in params if p.dim() > 1]
    others = [p for p in params if p.dim() <= 1]
    return torch.optim.SGD([{{"params": weights, "weight_decay": {lam!r}}},
                            {{"params": others, "weight_decay": 0.0}}], lr=lr)
'''


def source_of(class_name, description, layers, loss, decay, dtype):
    """``layers``: ``[(key, NumPy class, Written)]`` in order; ``loss``: the loss layer's
    ``Written`` or None; ``decay``: lambda or None."""
    names = _attribute_names([key for key, _, _ in layers])
    modules, taken = [], set(names.values())
    for key, _, written in layers:
        for stem, constructor in written.before:
            modules.append((_fresh(stem, taken), constructor))
        if written.module is not None:
            modules.append((names[key], written.module))
    conventions = _conventions(layers, loss, decay)
    helpers = {}
    for _, _, written in layers:
        helpers.update(written.helpers)
    uses_f = loss is not None and loss.loss is not None

    out = [f'"""The torch port of the NumPy {description}, written by '
           f'`python -m compare write-port`.', "",
           "make_port() builds it; load_numpy_params(port, params) loads the NumPy values into it;",
           "`python -m compare port NUMPY THIS_FILE.py:make_port` checks it.", '"""',
           "# Conventions converted, each with its trap:"]
    out += [f"#   - {where}: {text} ({place})" for where, text, place in conventions]
    out += ["import torch"] + (["import torch.nn.functional as F"] if uses_f else []) + \
        ["from torch import nn", ""]
    for helper in helpers.values():
        out += ["", helper.rstrip(), ""]
    out += ["", f"class {class_name}(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    out += [f"        self.{name} = {constructor}" for name, constructor in modules]
    out += ["", "    def forward(self, x):"]
    out += [f"        x = self.{name}(x)" for name, _ in modules]
    out += ["        return x", ""]
    if uses_f:
        out += ["", loss.loss.rstrip(), ""]
    out += ["", "def make_port():"]
    if dtype == "float64":
        out += ['    """The port in the NumPy parameters\' dtype, float64 (torch\'s default is float32)."""',
                f"    return {class_name}().to(torch.float64)", ""]
    else:
        out += [f"    return {class_name}()", ""]
    out += ["", "@torch.no_grad()", "def load_numpy_params(port, params):",
            '    """The NumPy values (params: {name: array}) copied into the port, each in its layout."""']
    for key, _, written in layers:
        for load in written.loads:
            if load.why:
                out.append(f"    # {load.why}")
            value = load.expr.format(p=f"torch.as_tensor(params[{load.name!r}])")
            out.append(f"    port.{names[key]}.{load.target}.copy_({value})")
    if not any(written.loads for _, _, written in layers):
        out.append("    pass  # the NumPy model's layers hold no parameters")
    if decay is not None:
        out += ["", "", OPTIMIZER.format(lam=decay).rstrip()]
    return "\n".join(out) + "\n"


def _conventions(layers, loss, decay):
    """``[(the layers, text, place)]``: each convention once, with the layers it applies to."""
    grouped = {}
    for key, _, written in layers:
        for text, place in written.conventions:
            grouped.setdefault((text, place), []).append(key)
    if loss is not None:
        for text, place in loss.conventions:
            grouped.setdefault((text, place), []).append("the loss")
    out = [(", ".join(keys), text, place) for (text, place), keys in grouped.items()]
    if decay is not None:
        out.append(("the loss", f"the NumPy loss holds weight decay 0.5 * lambda * sum(W**2), lambda "
                                f"= {decay!r}; torch puts it in the optimizer: make_optimizer, the "
                                f"weights alone", trap("weight_decay")))
    return out


def _attribute_names(keys):
    """The NumPy layer names, lower-cased, as attribute names where they are identifiers that
    no ``nn.Module`` attribute holds; ``layer<i>`` otherwise."""
    from torch import nn
    names, taken = {}, set()
    for i, key in enumerate(keys):
        name = str(key).lower()
        if not name.isidentifier() or iskeyword(name) or hasattr(nn.Module, name) or name in taken:
            name = _fresh(f"layer{i}", taken)
        taken.add(name)
        names[key] = name
    return names


def _fresh(stem, taken):
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}{n}"
    taken.add(name)
    return name
