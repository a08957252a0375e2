"""The activations: the book's ``Relu``, ``Sigmoid``, ``Tanh`` and the others a learner writes
(``LeakyRelu``, ``Elu``, ``Gelu``, ``Selu``, ``Softplus``, ``Silu``/``Swish``), and their
torch twins (``nn.ReLU``, ``F.relu``, ``torch.clamp(min=0)``; ``nn.LeakyReLU``,
``F.leaky_relu``; ``nn.ELU``; ``nn.GELU``; ...).

ReLU has no derivative at 0: the book's backward and autograd both take 0
there, and a pre-activation of exactly 0 (a zero bias on a blank patch) is a
point the numerical check counts as not differentiable and does not judge.

Trap ``activation`` (one for every kind here): on the layer's input ``u``, the
function the NumPy side computes is identified (relu, leaky relu with its slope
fitted from the negative part, elu with its alpha fitted, tanh, sigmoid, gelu
exact or its tanh approximation, selu, softplus, silu, identity: the one that
gives the NumPy output within the row's tolerance), and so is the port's (its
kind and settings, rerun on ``u``, must give the port's output). Named where
both are identified and differ, with both functions and settings, and, where the
port's own call with the NumPy setting gives the NumPy output, that call. It
needs no NumPy layer object: the input, the two outputs and the port's settings.
"""
import math

import numpy as np

from .base import LayerKind, torch_shown
from ..tolerance import within
from .written import Written, functional, number, trap

SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805


def _sigmoid(u):
    # either branch's exp stays below 1: no overflow for large |u|
    e = np.exp(-np.abs(u))
    return np.where(u >= 0, 1 / (1 + e), e / (1 + e))


def _erf(u):
    import torch
    return torch.special.erf(torch.from_numpy(np.asarray(u, np.float64))).numpy()


# name -> (NumPy value of u, given its setting); each as a learner writes it in NumPy
FUNCTIONS = {
    "relu": lambda u, s=None: np.maximum(u, 0.0),
    "leaky_relu": lambda u, s: np.where(u > 0, u, s * u),
    "elu": lambda u, s: np.where(u > 0, u, s * np.expm1(np.minimum(u, 0.0))),
    "selu": lambda u, s=None: SELU_SCALE * np.where(u > 0, u, SELU_ALPHA * np.expm1(np.minimum(u, 0.0))),
    "gelu": lambda u, s=None: 0.5 * u * (1.0 + _erf(u / math.sqrt(2.0))),
    "gelu_tanh": lambda u, s=None: 0.5 * u * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (u + 0.044715 * u ** 3))),
    "tanh": lambda u, s=None: np.tanh(u),
    "sigmoid": lambda u, s=None: _sigmoid(u),
    "softplus": lambda u, s=None: np.logaddexp(0.0, u),
    "silu": lambda u, s=None: u * _sigmoid(u),
    "identity": lambda u, s=None: np.array(u, np.float64),
}
# the setting of a family, and how the port names it
SETTING = {"leaky_relu": "negative_slope", "elu": "alpha"}
SHOWN = {"relu": "relu", "leaky_relu": "leaky relu", "elu": "elu", "selu": "selu",
         "gelu": "GELU (exact, erf)", "gelu_tanh": "GELU's tanh approximation", "tanh": "tanh",
         "sigmoid": "sigmoid", "softplus": "softplus", "silu": "SiLU (x * sigmoid(x))",
         "identity": "no activation (the identity)"}
# the port's code for each function: (functional, module)
FIX = {"relu": ("F.relu(x)", "nn.ReLU()"),
       "leaky_relu": ("F.leaky_relu(x, negative_slope={s})", "nn.LeakyReLU(negative_slope={s})"),
       "elu": ("F.elu(x, alpha={s})", "nn.ELU(alpha={s})"), "selu": ("F.selu(x)", "nn.SELU()"),
       "gelu": ("F.gelu(x)", "nn.GELU()"),
       "gelu_tanh": ("F.gelu(x, approximate='tanh')", "nn.GELU(approximate='tanh')"),
       "tanh": ("torch.tanh(x)", "nn.Tanh()"), "sigmoid": ("torch.sigmoid(x)", "nn.Sigmoid()"),
       "softplus": ("F.softplus(x)", "nn.Softplus()"), "silu": ("F.silu(x)", "nn.SiLU()"),
       "identity": ("x (no activation)", "nn.Identity()")}
# a torch record's kind (the module it is or stands for) -> the function's name
TORCH = {"relu": "relu", "leakyrelu": "leaky_relu", "elu": "elu", "selu": "selu",
         "gelu": "gelu", "tanh": "tanh", "sigmoid": "sigmoid", "softplus": "softplus",
         "silu": "silu", "identity": "identity"}


def _written(value):
    """A fitted setting as it was most likely written (0.1, not 0.10000000000000003)."""
    return float(f"{value:.6g}")


def _fitted(family, u, expected):
    """The setting of a family with one (a leaky ReLU's slope, an ELU's alpha), fitted by
    least squares on the negative inputs; None where no input is negative."""
    neg = u < 0
    if not np.any(neg):
        return None
    basis = u[neg] if family == "leaky_relu" else np.expm1(u[neg])
    denom = float(np.sum(basis * basis))
    return None if denom == 0 else float(np.sum(expected[neg] * basis) / denom)


def numpy_function(site, u, expected, first=()):
    """``(name, setting)`` of the function that gives ``expected`` on ``u`` within the row's
    tolerance (those in ``first`` tried first); None where none does."""
    order = list(dict.fromkeys([*first, *FUNCTIONS]))
    for name in order:
        if name in SETTING:
            fitted = _fitted(name, u, expected)
            settings = [] if fitted is None else [_written(fitted), fitted]
        else:
            settings = [None]
        for s in settings:
            if site.close(expected, FUNCTIONS[name](u, s)):
                return name, s
    return None


def _port_setting(name, held):
    if name == "leaky_relu":
        return float(getattr(held, "negative_slope", 0.01))
    if name == "elu":
        return float(getattr(held, "alpha", 1.0))
    if name == "gelu" and getattr(held, "approximate", "none") == "tanh":
        return "tanh"
    return None


def port_function(site, u, actual):
    """``(name, setting)`` of the port's activation, read off its kind and settings (its
    module, or its call's), and verified: it gives the port's output on ``u``."""
    kind = "".join(c for c in str(site.torch_record.kind).lower() if c.isalnum())
    name = TORCH.get(kind)
    if name is None:
        return None
    held = site.torch_module if site.torch_module is not None else getattr(site.torch_record, "call", None)
    if name == "softplus" and (float(getattr(held, "beta", 1.0)) != 1.0):
        return None  # a scaled softplus is none of the functions identified here
    setting = _port_setting(name, held)
    if name == "gelu" and setting == "tanh":
        name, setting = "gelu_tanh", None
    return (name, setting) if site.close(actual, FUNCTIONS[name](u, setting)) else None


def _fix(name, setting, functional):
    code = FIX[name][0 if functional else 1]
    return code.format(s=f"{setting:g}") if setting is not None and name in SETTING else code


def _described(name, setting):
    if name in SETTING:
        return f"{SHOWN[name]} with {SETTING[name]}={setting:g}"
    return SHOWN[name]


def activation_trap(site):
    """The ``activation`` hypothesis (see the module's docstring)."""
    if site.what != "output" or site.input is None:
        return []
    u = np.asarray(site.input, np.float64)
    expected = np.asarray(site.expected, np.float64)
    actual = np.asarray(site.actual, np.float64)
    if u.shape != expected.shape or u.shape != actual.shape:
        return []
    port = port_function(site, u, actual)
    if port is None:
        return []
    # the port's own family first: a setting that differs is the likelier bug
    numpy = numpy_function(site, u, expected, first=(port[0],))
    if numpy is None or numpy == port or site.close(expected, FUNCTIONS[port[0]](u, port[1])):
        return []
    t_key, n_key = torch_shown(site), site.numpy_record.key
    functional = site.torch_module is None
    found = {"code": "activation", "numpy_function": numpy[0], "torch_function": port[0],
             "numpy_setting": numpy[1], "torch_setting": port[1]}
    if numpy[0] == port[0]:  # one family, two settings
        setting = SETTING[port[0]]
        found["text"] = (f"{t_key} uses {setting}={port[1]:g}, the NumPy {n_key} "
                         f"{'a slope' if setting == 'negative_slope' else 'an alpha'} of {numpy[1]:g}: "
                         f"with {setting}={numpy[1]:g} the port's call gives the NumPy output; "
                         f"write {_fix(*numpy, functional)}")
    elif {numpy[0], port[0]} == {"gelu", "gelu_tanh"}:
        found["text"] = (f"{t_key} computes {SHOWN[port[0]]}, the NumPy {n_key} {SHOWN[numpy[0]]}: "
                         f"with approximate='{'tanh' if numpy[0] == 'gelu_tanh' else 'none'}' the "
                         f"port's call gives the NumPy output; write {_fix(*numpy, functional)}")
    else:
        found["text"] = (f"the port's {t_key} computes {_described(*port)} where the NumPy {n_key} "
                         f"computes {_described(*numpy)}: write {_fix(*numpy, functional)}")
    return [found]


# the activations with no setting to carry over, as the nn module a PyTorch user picks
WRITTEN = {"relu": "nn.ReLU()", "selu": "nn.SELU()", "silu": "nn.SiLU()",
           "sigmoid": "nn.Sigmoid()", "tanh": "nn.Tanh()"}
CALLED = {"relu": "F.relu", "selu": "F.selu", "silu": "F.silu", "sigmoid": "torch.sigmoid",
          "tanh": "torch.tanh"}


class Activation(LayerKind):
    def traps(self, site):
        return activation_trap(site)

    def computes(self, x, params):
        """The function on ``x`` (no parameter), for the activations written with no setting."""
        if self.name not in WRITTEN:
            return []
        return [({}, FUNCTIONS[self.name](np.asarray(x, np.float64)))]

    def write(self, seen):
        found = written_function(seen, self.name)
        if found is None:  # no pass to read it off: the activations without a setting
            if seen.functional:
                call = CALLED.get(self.name)
                return None if call is None else functional([f"x = {call}(x)"])
            module = WRITTEN.get(self.name)
            return None if module is None else Written(module)
        name, setting = found
        shown = None if setting is None else number(setting)
        call, module = (form.format(s=shown) for form in FIX[name])
        conventions = []
        if setting is not None:  # a slope or alpha: the NumPy value, where torch has its own default
            conventions.append((f"the NumPy {SHOWN[name]}'s {SETTING[name]} is {shown}, read off "
                                f"its pass (torch's default {number(DEFAULT[name])})",
                                trap("activation")))
        elif name != self.name and name in CANDIDATES:
            conventions.append((f"the NumPy layer computes {SHOWN[name]} (its pass says so)",
                                trap("activation")))
        if seen.functional:
            return functional([f"x = {call}"], conventions=conventions)
        return Written(module, conventions=conventions)


# torch's default for each setting
DEFAULT = {"leaky_relu": 0.01, "elu": 1.0}
# the functions a layer of an activation kind is written as, where its pass gives them
CANDIDATES = ("relu", "leaky_relu", "elu", "selu", "gelu", "gelu_tanh", "tanh", "sigmoid",
              "softplus", "silu")


class _RoundOff:
    """Equal within the port's round-off for the dtype of the pass (``tolerance.within``)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def close(self, a, b):
        return within(a, b, self.dtype)


def written_function(seen, kind_name):
    """``(function, setting)`` the layer's pass computes (its own kind's function tried
    first, a slope or alpha fitted), or None where the pass is not at hand or no function
    gives its output."""
    if seen.input is None or seen.output is None or np.shape(seen.input) != np.shape(seen.output):
        return None
    out = np.asarray(seen.output)
    found = numpy_function(_RoundOff(out.dtype), np.asarray(seen.input, np.float64),
                           out.astype(np.float64), first=(kind_name,))
    return found if found is not None and found[0] in CANDIDATES else None


KINDS = (
    Activation("relu", numpy_names=("Relu", "ReLU", "ActivationReLU"), torch_modules=("ReLU",),
               torch_functions=("relu", "relu_", "clamp")),
    Activation("leaky_relu", numpy_names=("LeakyRelu", "LeakyReLU", "ActivationLeakyReLU"),
               torch_modules=("LeakyReLU",), torch_functions=("leaky_relu", "leaky_relu_")),
    Activation("elu", numpy_names=("Elu", "ELU", "ActivationELU"), torch_modules=("ELU",),
               torch_functions=("elu", "elu_")),
    Activation("selu", numpy_names=("Selu", "SELU", "ActivationSELU"), torch_modules=("SELU",),
               torch_functions=("selu", "selu_")),
    Activation("gelu", numpy_names=("Gelu", "GELU", "ActivationGELU"), torch_modules=("GELU",),
               torch_functions=("gelu",)),
    Activation("softplus", numpy_names=("Softplus", "SoftPlus", "ActivationSoftplus"),
               torch_modules=("Softplus",), torch_functions=("softplus",)),
    Activation("silu", numpy_names=("Silu", "SiLU", "Swish", "ActivationSiLU"), torch_modules=("SiLU",),
               torch_functions=("silu",)),
    Activation("sigmoid", numpy_names=("Sigmoid", "ActivationSigmoid"), torch_modules=("Sigmoid",),
               torch_functions=("sigmoid",)),
    Activation("tanh", numpy_names=("Tanh", "ActivationTanh"), torch_modules=("Tanh",),
               torch_functions=("tanh",)),
)
