"""A spec (and a bug) made into what a user hands ``check_port``: the NumPy model, the
port, the batch and the options."""
from dataclasses import dataclass, replace

from . import adapter_style, book_style, cs231n_style, dlai_style, plain_style
from .params import batch
from .ports import loss_option, make_port

MODELS = {"book": book_style.BookNet, "cs231n": cs231n_style.FullyConnectedNet,
          "dlai": dlai_style.DeepNet, "adapter": adapter_style.Adapter, "plain": plain_style.PlainNet}

FEATURES_FIRST = ("dlai",)


@dataclass
class Case:
    spec: object
    bug: object
    numpy_model: object
    port: object
    x: object
    t: object
    options: dict

    def describe(self):
        return f"{self.spec.describe()}{f' bug={self.bug}' if self.bug else ''}"


def numpy_bug(spec):
    """The wrong NumPy backward a spec can carry: the penalty forgotten, else the sum's gradient."""
    return "forget_reg" if spec.reg else "sum_grad"


def options(spec, bug=None):
    opts = {"loss": loss_option(spec, bug)}
    # where the parameters alone cannot tell the layout, the user says it
    if spec.style in FEATURES_FIRST and spec.bias != "col":
        opts["numpy_layout"] = "features-first"
    elif spec.style not in FEATURES_FIRST and spec.bias == "col":
        opts["numpy_layout"] = "batch-first"
    return opts


def numpy_model(spec):
    if spec.style == "dlai" and spec.mode == "training":
        return dlai_style.DeepNetWithMode(spec)
    return MODELS[spec.style](spec)


def build_case(spec, bug=None):
    if bug == "numpy_gradient":
        spec = replace(spec, np_bug=numpy_bug(spec))
    x, t = batch(spec)
    return Case(spec, bug, numpy_model(spec), make_port(spec, bug), x, t, options(spec, bug))
