"""The written port's file, laid out from the kinds' ``Written`` parts.

Its order: the docstring, the conventions converted (each with its trap in
``docs/traps.md``), the imports (torch only), the helpers a module needs, the
port class, its loss, ``make_port()``, ``load_numpy_params(port, params)`` with a
comment on each layout conversion, and ``make_optimizer`` where the NumPy loss
holds weight decay.
"""
from keyword import iskeyword

from ..layers.written import CannotWrite, trap

OPTIMIZER = '''def make_optimizer(port, lr=0.1):
    """SGD with the NumPy loss's weight decay, on the weights alone: the book decays no bias,
    gamma or beta. ``port``: the port, or its parameters (as ``compare port`` hands them)."""
    params = list(port.parameters() if isinstance(port, nn.Module) else port)
    weights = [p for p in params if p.dim() > 1]
    others = [p for p in params if p.dim() <= 1]
    return torch.optim.SGD([{{"params": weights, "weight_decay": {lam!r}}},
                            {{"params": others, "weight_decay": 0.0}}], lr=lr)
'''


PER_PARAMETER = '''def make_optimizer(port, lr=0.1):
    """SGD with the NumPy loss's penalties, each on the parameter it is on ({{port parameter:
    weight_decay}}, the lambda of 0.5 * lambda * sum(p**2)). ``port``: the port, or its
    parameters in its order (as ``compare port`` hands them)."""
    decays = {decays!r}
    params = list(port.parameters() if isinstance(port, nn.Module) else port)
    names = [name for name, _ in make_port().named_parameters()]
    groups = {{}}
    for name, p in zip(names, params):
        groups.setdefault(decays.get(name, 0.0), []).append(p)
    return torch.optim.SGD([{{"params": ps, "weight_decay": lam}} for lam, ps in groups.items()], lr=lr)
'''


def source_of(class_name, description, layers, loss, decay, dtype):
    """``layers``: ``[(key, NumPy class, Written)]`` in order; ``loss``: the loss layer's
    ``Written`` or None; ``decay``: lambda or None."""
    names = _attribute_names([key for key, _, _ in layers])
    modules, taken, stems = [], set(names.values()), {}
    for key, _, written in layers:
        for stem, constructor in written.before:
            stems.setdefault(key, []).append(_fresh(stem, taken))
            modules.append((stems[key][-1], constructor))
        if written.module is not None:
            modules.append((names[key], written.module))
    conventions = _conventions(layers, loss, decay)
    helpers = {}
    for _, _, written in layers:
        helpers.update(written.helpers)
    uses_f = loss is not None and loss.loss is not None or any(
        "F." in line for _, _, written in layers for line in written.call or ())

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
    states = _state_names([names[key] for key, _, written in layers if written.state])
    out += ["", f"class {class_name}(nn.Module):", "    def __init__(self):", "        super().__init__()"]
    out += [f"        self.{name} = {constructor}" for name, constructor in modules]
    for key, _, written in layers:
        out += [f"        self.{names[key]}_{name} = nn.Parameter({value})" for name, value in written.parameters]
        out += [f'        self.register_buffer("{name}_{names[key]}", {value})' for name, value in written.buffers]
    for key, _, written in layers:
        out += [f"        {line.format(m=f'self.{names[key]}')}" for line in written.init]
    for key, _, written in layers:
        for target, tied in written.ties:
            out.append(f"        self.{names[key]}.{target} = self.{_loaded_as(tied, layers, names)}")
    out += [f"        self.{state} = None" for state in states.values()]
    out += ["", "    def forward(self, x):"]
    for key, _, written in layers:
        name = names[key]
        steps = [(n, None) for n in stems.get(key, ())]
        if written.module is not None or written.call is not None:
            steps.append((name, written.call))
        for step, lines in steps:
            for line in lines or ["x = {m}(x)"]:
                out += _wrapped(line.format(m=f"self.{step}", state=f"self.{states.get(step)}",
                                            p=f"self.{step}_", n=step), " " * 8)
    out += ["        return x", ""]
    if states:
        out += ["    def reset_state(self):",
                '        """Forget the carried state: the next call starts from zeros."""']
        out += [f"        self.{state} = None" for state in states.values()]
        out.append("")
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
            if load.name is None:
                out.append(f"    port.{_held_as(names[key], load.target, written)}.zero_()")
                continue
            value = load.expr.format(p=f"torch.as_tensor(params[{load.name!r}])")
            out.append(f"    port.{_held_as(names[key], load.target, written)}.copy_({value})")
    if not any(written.loads for _, _, written in layers):
        out.append("    pass  # the NumPy model's layers hold no parameters")
    if isinstance(decay, dict):
        decays = {_parameter_of(name, layers, names): lam for name, lam in decay.items()}
        out += ["", "", PER_PARAMETER.format(decays=decays).rstrip()]
    elif decay is not None:
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
    if isinstance(decay, dict):
        shown = ", ".join(f"{name} {lam!r}" for name, lam in decay.items())
        out.append(("the loss", f"the NumPy loss holds penalties 0.5 * lambda * sum(p**2) on some "
                                f"parameters alone, lambda: {shown}; torch puts them in the "
                                f"optimizer: make_optimizer, each on its parameter",
                    trap("weight_decay")))
    elif decay is not None:
        out.append(("the loss", f"the NumPy loss holds weight decay 0.5 * lambda * sum(W**2), lambda "
                                f"= {decay!r}; torch puts it in the optimizer: make_optimizer, the "
                                f"weights alone", trap("weight_decay")))
    return out


WIDTH = 99


def _wrapped(line, indent):
    """A call longer than the file's width, its arguments wrapped under its parenthesis
    (``F.batch_norm(x, ...``); any other line as it is."""
    opening = line.find("(")
    if len(indent + line) <= WIDTH or opening < 1 or not line[opening - 1].isalnum():
        return [indent + line]
    depth, start, parts, closing = 0, opening + 1, [], None
    for i in range(opening, len(line)):
        if line[i] in "([":
            depth += 1
        elif line[i] in ")]":
            depth -= 1
            if depth == 0:
                closing = i
                break
        elif line[i] == "," and depth == 1:
            parts.append(line[start:i].strip())
            start = i + 1
    if closing is None:
        return [indent + line]
    parts.append(line[start:closing].strip())
    lead = indent + line[:opening + 1]
    out, current = [], lead
    for k, part in enumerate(parts):
        piece = part + ("," if k < len(parts) - 1 else line[closing:])
        if current != lead and len(current) + 1 + len(piece) > WIDTH:
            out.append(current)
            current = " " * len(lead) + piece
        else:
            current += ("" if current == lead else " ") + piece
    return out + [current]


def _held_as(name, target, written):
    """Where the port holds a layer's parameter: ``affine1.weight`` in its module, or
    ``affine1_weight`` where the layer is written functional."""
    return f"{name}_{target}" if written.module is None else f"{name}.{target}"


def _state_names(stateful):
    """``{module attribute: the attribute its state is carried in}``: ``state`` where one
    module carries one, ``<module>_state`` each where several do."""
    if len(stateful) == 1:
        return {stateful[0]: "state"}
    return {name: f"{name}_state" for name in stateful}


def _loaded_as(name, layers, names):
    """``embed.weight``: the port's parameter that ``load_numpy_params`` loads the NumPy
    parameter ``name`` into as it is, for a module whose parameter is tied to it."""
    for key, _, written in layers:
        for load in written.loads:
            if load.name == name and load.expr == "{p}":
                return _held_as(names[key], load.target, written)
    raise CannotWrite(f"the weight tied to {name} is loaded into no module as it is")


def _parameter_of(name, layers, names):
    """``layer_dense0.weight``: the port's parameter ``load_numpy_params`` loads the NumPy
    parameter ``name`` into, in whatever layout."""
    for key, _, written in layers:
        for load in written.loads:
            if load.name == name:
                return _held_as(names[key], load.target, written)
    raise CannotWrite(f"the penalty on {name} is on a parameter loaded into no module")


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
