"""Record the functional calls of a torch port that compute a layer, as module hooks record
modules.

A port written without layer modules (``F.linear(x, self.w1, self.b1)``,
``x @ W + b``, ``torch.clamp(x, min=0)``, ``F.conv2d``, ``F.max_pool2d``) has
no leaf modules for a hook to see. A ``TorchFunctionMode`` sees every torch
call instead, and these become records (``TracedRecord``, a ``LayerRecord``
with the layout each weight is used in), with the kinds of the torch modules
they stand for, so they pair with the NumPy layers as modules do:

=====================================================  ==============================
call                                                   kind
=====================================================  ==============================
``F.linear``, ``torch.addmm``                          ``Linear``
``x @ W``, ``matmul``, ``mm`` with a parameter ``W``;  ``Linear`` (one record, its
an ``add`` of a parameter (the bias) to its output     output the add's)
``F.relu``, ``torch.relu``, ``clamp(min=0)``           ``ReLU``
``F.conv1d``/``2d``/``3d``                             ``Conv1d``/``Conv2d``/``Conv3d``
``F.max_pool*``, ``F.avg_pool*``                       ``MaxPool2d``, ``AvgPool2d``...
``softmax``, ``log_softmax``                           ``Softmax``, ``LogSoftmax``
``sigmoid``, ``tanh``                                  ``Sigmoid``, ``Tanh``
``F.leaky_relu``, ``F.elu``, ``F.gelu``, ``F.selu``,   ``LeakyReLU``, ``ELU``, ``GELU``,
``F.softplus``, ``F.silu``                             ``SELU``, ``Softplus``, ``SiLU``
``F.layer_norm``                                       ``LayerNorm``
``F.batch_norm``                                       ``BatchNorm1d``/``BatchNorm2d``
``F.dropout``, ``F.dropout2d``                         ``Dropout``, ``Dropout2d``
=====================================================  ==============================

Anything else (reshapes, flatten, arithmetic) is no layer. The rules:

* parameters are known by identity, and so are their views: ``W.T``,
  ``W.t()``, ``W.transpose(0, 1)``, ``b.reshape(...)`` are still ``W`` and
  ``b``, the transposes noted; a record says in which layout each weight is
  used, ``(in, out)`` (``x @ W``, ``F.linear(x, W.T)``) or ``(out, in)``
  (``F.linear(x, W)``, ``x @ W.T``);
* only calls made by the model's own ``forward`` are recorded (not the loss
  computed from its scores), and none inside a hooked leaf module: an
  ``nn.Linear`` calls ``F.linear`` itself, and its hook records it once;
* a call nested inside a recorded call (``F.relu`` calling ``torch.relu``)
  is not seen: the mode is off while the call it handles runs.

Modes nest, and the innermost sees a call first. The tracer's mode is entered
by a hook when the model's forward starts, so it is innermost whatever mode
the pass runs in (the dropout replay of ``compare.port.draws``): it sees
``F.dropout`` and records what the replay answers.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

from .capture import LayerRecord, _to_numpy, module_capture, module_leaves, steps_as_sequences

IN_OUT, OUT_IN = "(in, out)", "(out, in)"


@dataclass
class TracedRecord(LayerRecord):
    """A layer computed by a functional call; ``layouts``: ``{parameter: IN_OUT or OUT_IN}``
    for the weight of an affine call, as the call uses it; ``call``: a convolution call's
    settings, as a module would hold them (``ConvCall``)."""
    layouts: dict = field(default_factory=dict)
    call: object = None


class CallSettings:
    """A functional call's settings as the torch module it stands for holds them
    (``F.leaky_relu(x, 0.1)``'s ``negative_slope``, ``F.layer_norm``'s ``eps``), so a kind
    reads a call and a module alike."""

    def __init__(self, name, args, kwargs):
        for i, setting, default in CALL_SETTINGS[name]:
            value = _arg(args, kwargs, i, setting, default)
            setattr(self, setting, tuple(value) if isinstance(value, (list, tuple)) else value)


class ConvCall:
    """An ``F.conv2d`` call's settings as ``nn.Conv2d`` holds them (``stride``, ``padding``,
    ``dilation``, ``groups``), for what compares the settings of both sides."""

    def __init__(self, args, kwargs):
        def pair(value):
            return tuple(value) if isinstance(value, (tuple, list)) else (value, value)
        self.stride = pair(_arg(args, kwargs, 3, "stride", 1))
        self.padding = pair(_arg(args, kwargs, 4, "padding", 0))
        self.dilation = pair(_arg(args, kwargs, 5, "dilation", 1))
        self.groups = _arg(args, kwargs, 6, "groups", 1)


# name of the torch function -> the kind of its record (the torch module it stands for)
KINDS = {
    "linear": "Linear", "addmm": "Linear",
    "relu": "ReLU", "relu_": "ReLU",
    "conv1d": "Conv1d", "conv2d": "Conv2d", "conv3d": "Conv3d",
    "max_pool1d": "MaxPool1d", "max_pool2d": "MaxPool2d", "max_pool3d": "MaxPool3d",
    "avg_pool1d": "AvgPool1d", "avg_pool2d": "AvgPool2d", "avg_pool3d": "AvgPool3d",
    "softmax": "Softmax", "log_softmax": "LogSoftmax",
    "sigmoid": "Sigmoid", "tanh": "Tanh",
    "batch_norm": "BatchNorm", "dropout": "Dropout", "dropout2d": "Dropout2d",
    "leaky_relu": "LeakyReLU", "leaky_relu_": "LeakyReLU", "elu": "ELU", "elu_": "ELU",
    "gelu": "GELU", "selu": "SELU", "selu_": "SELU", "softplus": "Softplus", "silu": "SiLU",
    "layer_norm": "LayerNorm",
}
# the settings a call of these keeps: (position, keyword, torch's default)
CALL_SETTINGS = {
    "leaky_relu": ((1, "negative_slope", 0.01),), "leaky_relu_": ((1, "negative_slope", 0.01),),
    "elu": ((1, "alpha", 1.0),), "elu_": ((1, "alpha", 1.0),),
    "gelu": ((1, "approximate", "none"),),
    "softplus": ((1, "beta", 1.0), (2, "threshold", 20.0)),
    "layer_norm": ((1, "normalized_shape", None), (4, "eps", 1e-5)),
}
MATMUL = {"matmul", "mm", "__matmul__", "__rmatmul__"}
ADD = {"add", "__add__", "__radd__"}
CLAMP = {"clamp", "clamp_min", "clip"}
# views that are still the parameter: (transposes it?)
VIEWS = {"t": True, "reshape": False, "view": False, "unsqueeze": False, "squeeze": False,
         "flatten": False, "contiguous": False, "expand": False, "to": False, "double": False,
         "float": False, "clone": False}
ATTRIBUTE_VIEWS = {"T": True, "mT": True}
# F.conv2d is torch.conv2d itself: shown as the port most likely wrote it
F_BUILTINS = {"conv1d", "conv2d", "conv3d", "avg_pool1d", "max_pool1d", "batch_norm"}


def _name(func):
    return getattr(func, "__name__", "")


def _shown(func, inside=""):
    """How the port wrote the call: ``F.linear(w1, b1)``, ``torch.clamp(min=0)``,
    ``x.relu()``."""
    name = _name(func)
    module = getattr(func, "__module__", None) or ""
    if module.startswith("torch.nn.functional") or module == "torch._C._nn" or name in F_BUILTINS:
        return f"F.{name}" + (f"({inside})" if inside else "")
    if module.startswith("torch"):
        return f"torch.{name}" + (f"({inside})" if inside else "")
    return f"x.{name}({inside})"  # a Tensor method


def _arg(args, kwargs, i, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def _first_tensor(value):
    return value[0] if isinstance(value, (tuple, list)) and value else value


class _Tracer:
    """The state of one traced pass: where the forward is, the parameters and their views,
    the matmul waiting for its bias."""

    def __init__(self, module, capture):
        self.capture = capture
        self.names = {}
        for name, p in module.named_parameters():
            self.names.setdefault(id(p), name)
        self.views = {}  # id -> (tensor kept alive so its id stays its own, name, transposed)
        self.forward_depth = 0  # in the model's own forward
        self.leaf_depth = 0  # in a hooked leaf module
        self.pending = {}  # id of a matmul's output -> (tensor, record, grad hook handle)
        self.counts = {}
        self.keys = set()

    @property
    def recording(self):
        return self.forward_depth > 0 and self.leaf_depth == 0

    def param(self, value):
        """``(name, transposed)`` when ``value`` is a parameter or a view of one."""
        if id(value) in self.names:
            return self.names[id(value)], False
        kept = self.views.get(id(value))
        if kept is not None and kept[0] is value:
            return kept[1], kept[2]
        return None

    def key(self, text, numbered):
        if numbered:
            self.counts[text] = self.counts.get(text, 0) + 1
            text = f"{text}#{self.counts[text]}"
        base, k = text, 1
        while text in self.keys:  # a weight used twice
            k += 1
            text = f"{base}#{k}"
        self.keys.add(text)
        return text

    def add(self, key, kind, x, out, params=(), layouts=None):
        record = TracedRecord(key, kind, x, _to_numpy(out), param_names=tuple(params),
                              layouts=dict(layouts or {}))
        self.capture.records.append(record)
        return record, self.watch(record, out)

    @staticmethod
    def watch(record, out):
        tensor = _first_tensor(out)
        if getattr(tensor, "requires_grad", False):
            def grad_hook(grad, _record=record):
                _record.grad_output = _to_numpy(grad)
            return tensor.register_hook(grad_hook)
        return None

    # --- one call --------------------------------------------------------------------

    def call(self, func, args, kwargs):
        name = _name(func)
        tensors = [a for a in args if hasattr(a, "shape")] + \
                  [v for v in kwargs.values() if hasattr(v, "shape")]
        if any(str(getattr(t, "dtype", "")) == "torch.float32" for t in tensors):
            # a float32 tensor anywhere in the pass (a .float() round trip): the diagnosis
            # names float32 round-off only where float32 took part
            self.capture.float32 = True
        for t in tensors:  # the matmul's output goes elsewhere than into a bias add
            if id(t) in self.pending and not (name in ADD and self.recording):
                self.pending.pop(id(t))
        if name == "__get__":
            out = func(*args, **kwargs)
            self._view(getattr(getattr(func, "__self__", None), "__name__", ""), args, out)
            return out
        if name in VIEWS or name in ("transpose", "permute"):
            out = func(*args, **kwargs)
            self._method_view(name, args, kwargs, out)
            return out
        if not self.recording:
            return func(*args, **kwargs)
        if name in MATMUL:
            return self._matmul(func, args, kwargs)
        if name in ADD:
            return self._add(func, args, kwargs)
        kind = KINDS.get(name)
        if kind is None and name in CLAMP:
            low = _arg(args, kwargs, 1, "min")
            high = _arg(args, kwargs, 2, "max") if name != "clamp_min" else None
            if isinstance(low, (int, float)) and low == 0 and high is None:
                kind = "ReLU"
        if kind is None:
            return func(*args, **kwargs)
        x = _arg(args, kwargs, 0, "input")
        x_copy = _to_numpy(x)  # before the call: an in-place call overwrites it
        out = func(*args, **kwargs)
        if kind == "BatchNorm":
            kind = "BatchNorm2d" if getattr(x, "dim", lambda: 2)() == 4 else "BatchNorm1d"
        params, layouts = self._params(name, args, kwargs)
        shown = _shown(func, "min=0" if name in CLAMP else ", ".join(params))
        key = self.key(shown, numbered=not params)
        record, _ = self.add(key, kind, x_copy, out, params, layouts)
        if name == "conv2d" and not isinstance(_arg(args, kwargs, 4, "padding", 0), str):
            record.call = ConvCall(args, kwargs)
        elif name in CALL_SETTINGS:
            record.call = CallSettings(name, args, kwargs)
        return out

    def _params(self, name, args, kwargs):
        """The parameters of a layer call, in argument order, and its weight's layout."""
        if name == "addmm":
            slots = ((0, "input"), (2, "mat2"))
        elif name == "batch_norm":
            slots = ((3, "weight"), (4, "bias"))
        elif name == "layer_norm":
            slots = ((2, "weight"), (3, "bias"))
        elif name in CALL_SETTINGS or name in ("selu", "selu_", "silu"):
            slots = ()  # an activation's second argument is a setting, not a weight
        else:
            slots = ((1, "weight"), (2, "bias"))
        params, layouts = [], {}
        for k, (i, slot) in enumerate(slots):
            found = self.param(_arg(args, kwargs, i, slot))
            if found is None:
                continue
            params.append(found[0])
            if name == "linear" and slot == "weight":
                layouts[found[0]] = IN_OUT if found[1] else OUT_IN
            elif name == "addmm" and slot == "mat2":
                layouts[found[0]] = OUT_IN if found[1] else IN_OUT
        return params, layouts

    def _view(self, attribute, args, out):
        if attribute in ATTRIBUTE_VIEWS and args:
            self._keep(args[0], out, ATTRIBUTE_VIEWS[attribute])

    def _method_view(self, name, args, kwargs, out):
        if not args:
            return
        if name == "transpose":
            flips = getattr(args[0], "dim", lambda: 0)() == 2
        elif name == "permute":
            dims = args[1:] if len(args) > 1 and isinstance(args[1], int) else (args[1] if len(args) > 1 else ())
            flips = tuple(dims) == (1, 0)
        else:
            flips = VIEWS[name]
        self._keep(args[0], out, flips)

    def _keep(self, source, out, flips):
        found = self.param(source)
        if found is not None and hasattr(out, "shape"):
            self.views[id(out)] = (out, found[0], found[1] != flips)

    def _matmul(self, func, args, kwargs):
        a = _arg(args, kwargs, 0, "input")
        b = _arg(args, kwargs, 1, "other", kwargs.get("mat2"))
        if _name(func) == "__rmatmul__":
            a, b = b, a
        right, left = self.param(b), self.param(a)
        if right is None and left is None:
            return func(*args, **kwargs)
        x = a if right is not None else b
        x_copy = _to_numpy(x)
        out = func(*args, **kwargs)
        name, transposed = right if right is not None else left
        if right is not None:
            key = self.key(f"x @ {name}{'.T' if transposed else ''}", numbered=False)
            layouts = {name: OUT_IN if transposed else IN_OUT}
        else:  # the weight on the left: W @ x
            key = self.key(f"{name}{'.T' if transposed else ''} @ x", numbered=False)
            layouts = {}
        record, handle = self.add(key, "Linear", x_copy, out, (name,), layouts)
        self.pending[id(out)] = (out, record, handle)
        return out

    def _add(self, func, args, kwargs):
        a, b = _arg(args, kwargs, 0, "input"), _arg(args, kwargs, 1, "other")
        out = func(*args, **kwargs)
        for mine, other in ((a, b), (b, a)):
            waiting = self.pending.get(id(mine))
            if waiting is None or waiting[0] is not mine:
                continue
            bias = self.param(other)
            self.pending.pop(id(mine))
            if bias is None or getattr(out, "shape", None) != mine.shape:
                break  # a residual or a broadcast that grows it: the matmul stands alone
            _, record, handle = waiting
            record.output = _to_numpy(out)
            record.param_names += (bias[0],)
            self.keys.discard(record.key)
            record.key = self.key(f"{record.key} + {bias[0]}{'.T' if bias[1] else ''}",
                                  numbered=False)
            if handle is not None:
                handle.remove()
            self.watch(record, out)
            break
        return out


def _mode(tracer):
    from torch.overrides import TorchFunctionMode

    class Trace(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return tracer.call(func, tuple(args), dict(kwargs or {}))

    return Trace()


@contextmanager
def function_trace(module, capture):
    """Record the layer calls of ``module``'s own forward into ``capture`` for one pass.

    The mode is entered when the forward starts and left when it ends (hooks on
    ``module``), so it is the innermost mode whatever was entered around the
    pass, such as the dropout replay the port's forward runs in."""
    tracer = _Tracer(module, capture)
    handles, modes = [], []

    def forward_pre_hook(mod, inputs):
        tracer.forward_depth += 1
        mode = _mode(tracer)
        mode.__enter__()
        modes.append(mode)

    def forward_hook(mod, inputs, output):
        tracer.forward_depth -= 1
        modes.pop().__exit__(None, None, None)

    def leaf_pre_hook(mod, inputs):
        tracer.leaf_depth += 1

    def leaf_hook(mod, inputs, output):
        tracer.leaf_depth -= 1

    handles.append(module.register_forward_pre_hook(forward_pre_hook))
    handles.append(module.register_forward_hook(forward_hook, always_call=True))
    for _, leaf in module_leaves(module):
        handles.append(leaf.register_forward_pre_hook(leaf_pre_hook))
        handles.append(leaf.register_forward_hook(leaf_hook, always_call=True))
    try:
        yield capture
    finally:
        while modes:  # a forward that never reached its hook
            modes.pop().__exit__(None, None, None)
        for handle in handles:
            handle.remove()


@contextmanager
def traced_capture(module, batch=None):
    """Leaf modules through their hooks and the functional layer calls between them, in
    order of execution, in one ``Capture``; ``batch``: the batch size, where known (a
    time-major recurrent module's records are turned batch first where its input holds
    the batch on its second axis)."""
    with module_capture(module, batch) as capture, function_trace(module, capture):
        yield capture
    capture.records = steps_as_sequences(capture.records)  # a cell's steps: one sequence


def weight_layouts(module, x):
    """``{parameter: IN_OUT or OUT_IN}`` for each parameter that one forward pass of
    ``module`` on ``x`` uses as an affine weight, always in the same layout; on a copy,
    without gradients, the random streams left as they were. ``{}`` when it cannot run."""
    import copy

    import torch
    try:
        model = copy.deepcopy(module)
    except Exception:
        return {}
    from .capture import Capture
    capture = Capture()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad(), function_trace(model, capture):
            model(x)
    except Exception:
        return {}
    seen = {}
    for record in capture.records:
        for name, layout in getattr(record, "layouts", {}).items():
            seen.setdefault(name, set()).add(layout)
    return {name: layouts.pop() for name, layouts in seen.items() if len(layouts) == 1}


def layout_text(record, torch_name, numpy_name, stored_transposed):
    """Why a weight of an affine record is used in the wrong layout: it holds the NumPy
    weight transposed, ``(out, in)`` (``stored_transposed``, as ``nn.Linear`` stores it),
    and the call uses it ``(in, out)``, or the other way round. ``None`` when the use
    agrees with the storage, or the record is no functional affine call."""
    used = getattr(record, "layouts", {}).get(torch_name)
    stored = OUT_IN if stored_transposed else IN_OUT
    if used is None or used == stored:
        return None
    if stored == OUT_IN:
        held = f"{numpy_name} transposed, {OUT_IN}, as nn.Linear stores a weight"
        fix = f"x @ {torch_name}.T, or F.linear(x, {torch_name}, bias)"
    else:
        held = f"{numpy_name} as it is, {IN_OUT}"
        fix = f"x @ {torch_name}, or F.linear(x, {torch_name}.T, bias)"
    return f"{record.key} uses {torch_name} as an {used} matrix, but it holds {held}: write {fix}"
