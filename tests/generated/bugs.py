"""The catalogue of porting bugs: which specs can carry each, and where the check must
put it (the phase, the place, the diagnosis code where the bug has one).

``where`` is a pattern over the report's ``first_mismatch["where"]``: the layer or
parameter the bug is in, by any of the names the styles give it (``W1``, ``Affine1``,
``affine1``, ``dense1``, ``linear1``); None where the phase alone places it (the loss).
"""
import re
from dataclasses import dataclass

from hypothesis import strategies as st

from .spec import STYLE_CHOICES, STYLES, natural, specs

LAYER1 = r"(?i)^(w1|b1|affine_?1|dense_?1|linear_?1|fc_?1)$"
DROPOUT = r"(?i)dropout_?1"
BATCH_NORM = r"(?i)(batch_?norm_?1|bn_?1|gamma1|beta1|running_(mean|var))"
OUTPUT = r"(?i).*"  # the output or the loss: any place in the phase
# the hidden activation: a layer (``Relu1``, ``Tanh1``, ``leaky_relu1``, ``activation1``), or the
# array a forward without layers makes with it (plain's ``h``, the course's ``A1``)
ACTIVATION1 = r"(?i)^((relu|tanh|sigmoid|leaky_?relu|elu|gelu|activation)_?1|h|A1)\b"
LAYER_NORM = r"(?i)^(layer_?norm_?1|ln_?1|n1|L1)\b"
# the square layer: cs231n's second affine call, plain's ``q``, the course's ``Zr``
RESIDUAL_LAYER = r"(?i)^(affine_?2|q|Zr)\b"
# where a skip connection parts: the layer after it (cs231n's third affine call), or the
# array made from the sum (the output's ``z``, ``Z2``)
AFTER_SKIP = r"(?i)^(affine_?3|z|Z2|scores)\b"


@dataclass(frozen=True)
class Expected:
    phases: tuple
    where: str = None
    codes: tuple = ()     # one of these is named; empty where the bug has no code of its own
    required: bool = True  # a code must be named (else: none but these may be)


EXPECTED = {
    "transpose": Expected(("forward",), LAYER1, ("transpose",)),
    "missing_n": Expected(("loss",), None, ("scale",)),
    "sign": Expected(("loss",), None, ("sign",)),
    "softmax_axis": Expected(("forward", "loss"), OUTPUT, ("axis",)),
    "double_softmax": Expected(("forward", "loss"), OUTPUT, ("double_softmax",)),
    "double_sigmoid": Expected(("forward", "loss"), OUTPUT, ("double_sigmoid", "double_softmax")),
    "inverted_dropout": Expected(("forward",), DROPOUT, ("inverted_dropout",)),
    "bn_eps": Expected(("forward",), BATCH_NORM, ("bn_eps",)),
    "bn_momentum": Expected(("buffers", "forward", "eval"), BATCH_NORM, ("bn_momentum",)),
    "weight_decay": Expected(("loss",), None, ("weight_decay",)),
    "numpy_gradient": Expected(("backward",), None, ("numpy_gradient",)),
    "activation_slope": Expected(("forward",), ACTIVATION1, ("activation",)),
    "activation_function": Expected(("forward",), ACTIVATION1, ("activation",)),
    "skip_forgotten": Expected(("forward",), AFTER_SKIP, ("residual",)),
    "skip_added": Expected(("forward",), AFTER_SKIP, ("residual",)),
    "ln_eps": Expected(("forward",), LAYER_NORM, ("ln_eps",)),
    "transpose_square": Expected(("forward",), RESIDUAL_LAYER, ("transpose",)),
}


def _requires(bug):
    """The fields a spec must have for ``bug`` to be in it."""
    return {
        "missing_n": dict(reduction="mean", reg=0.0),
        "sign": dict(reg=0.0),
        "softmax_axis": dict(loss="softmax_ce", port_head="logprobs"),
        "double_softmax": dict(loss="softmax_ce", port_head="scores"),
        "double_sigmoid": dict(loss="bce", port_head="scores"),
        "inverted_dropout": dict(inverted=False),
        "bn_eps": dict(),
        "bn_momentum": dict(),
        "weight_decay": dict(),
        "numpy_gradient": dict(reduction="mean"),
        "skip_forgotten": dict(res="skip"),
        "skip_added": dict(res="chain"),
        "ln_eps": dict(ln=True, bn=None),
    }.get(bug, {})


def _style_takes(style, bug):
    ch = STYLE_CHOICES[style]
    if bug == "double_sigmoid":
        return "bce" in ch["loss"]
    if bug == "inverted_dropout":
        return False in ch["inverted"] and any(ch["dropout"])
    if bug in ("bn_eps", "bn_momentum"):
        return any(ch["bn"])
    if bug == "weight_decay":
        return any(ch["reg"])
    if bug in ("activation_slope", "activation_function"):
        return len(ch["act"]) > 1
    if bug == "ln_eps":
        return any(ch["ln"])
    if bug in ("skip_forgotten", "skip_added", "transpose_square"):
        return any(ch["res"])
    return True


def styles_for(bug):
    return [s for s in STYLES if _style_takes(s, bug)]


@st.composite
def bug_specs(draw, bug, style, habits=True):
    """Specs that can carry ``bug``: the style's habits besides what the bug needs
    (``habits``), or every other convention drawn."""
    fixed = {**natural(style)} if habits else {}
    if bug in FIRST_BUGS:
        # the bugs catalogued before the activations, norms and skips are claimed over the
        # conventions drawn then; their corners with the new layers are counted by the
        # benchmark (``benchmarks/generated_ports.py``), not claimed here
        fixed.update(act="relu", act_form=0, port_call="module", ln=False, res=None)
    fixed.update(_requires(bug))
    ch = STYLE_CHOICES[style]
    if bug == "transpose":  # a square first layer: the transposed weight still runs
        fixed["D"] = fixed["H"] = draw(st.sampled_from((4, 5, 6)))
    if bug == "inverted_dropout":
        fixed["dropout"] = next(d for d in ch["dropout"] if d)
    if bug in ("bn_eps", "bn_momentum"):
        fixed["bn"] = draw(st.sampled_from([b for b in ch["bn"] if b]))
    if bug == "weight_decay":
        fixed["reg"] = max(ch["reg"])
    if bug == "activation_slope":  # a setting other than torch's default
        fixed["act"] = draw(st.sampled_from(("leaky_relu", "elu")))
        fixed["act_param"] = draw(st.sampled_from((0.1, 0.2))) if fixed["act"] == "leaky_relu" else 0.5
    if bug == "activation_function":
        fixed["act"] = draw(st.sampled_from(("tanh", "gelu_tanh")))
        if fixed["act"] == "gelu_tanh":
            # exact GELU and its tanh approximation differ by at most 6.6e-5 of the output
            # here, under float32's rtol of 1e-4: in float32 the two are the same function
            fixed["dtype"] = "float64"
    if bug == "ln_eps":
        fixed["ln_eps"] = draw(st.sampled_from((1e-3, 1e-6)))
        if fixed["ln_eps"] == 1e-6:
            # eps 1e-6 against torch's 1e-5 moves the output by (1e-5 - 1e-6) / (2 var),
            # about 4.5e-5 relative at these variances: under float32's rtol of 1e-4
            fixed["dtype"] = "float64"
    if bug == "transpose_square":
        fixed["res"] = draw(st.sampled_from(("skip", "chain")))
    if bug in ("activation_slope", "activation_function", "ln_eps") and habits:
        fixed.pop("act_form", None), fixed.pop("port_call", None)  # each way of writing it
    return draw(specs(style, **fixed))


FIRST_BUGS = ("transpose", "missing_n", "sign", "softmax_axis", "double_softmax", "double_sigmoid",
              "inverted_dropout", "bn_eps", "bn_momentum", "weight_decay", "numpy_gradient")


# styles whose model has layers (objects or functions) the checker pairs; the others
# (one forward of local variables) can be located at their output alone
LAYERED = ("book", "cs231n", "adapter")
# the bugs inside a hidden layer, which only a layer's rerun can name; the others are seen
# at the output or the loss of any model
LAYER_BOUND = ("transpose", "inverted_dropout", "bn_eps", "bn_momentum")
# a model without layers is followed from inside its forward: these bugs are located at the
# array the layer made (never the output's row) and named there
INSIDE_BOUND = ("transpose", "inverted_dropout")
INSIDE = r"^(?!predict|scores)"


def expected_for(bug, style):
    """``EXPECTED[bug]`` as a style can show it: a model without layers is located at the
    array its layer made (``INSIDE_BOUND``), else at its output, or at its loss (with dropout drawn inline, the training pass's output has no row
    of its own: only the evaluation pass's, compared last), and a cause the checker cannot
    rerun there need not be named (any it names must be the bug's)."""
    exp = EXPECTED[bug]
    if style in LAYERED or bug not in LAYER_BOUND:
        return exp
    if bug in INSIDE_BOUND:  # followed from inside: at the array the layer made, named
        return Expected(("forward",), INSIDE, exp.codes)
    return Expected(tuple(dict.fromkeys(exp.phases + ("loss",))), OUTPUT, exp.codes, required=False)


def caught(report, bug, style):
    """``(ok, reason)``: the report fails the port, in the bug's phase and place, with its code."""
    exp = expected_for(bug, style)
    fm = report.first_mismatch or {}
    codes = {d["code"] for d in report.to_dict()["diagnosis"]}
    if report.passed is not False:
        return False, "passed"
    if fm.get("phase") not in exp.phases:
        return False, f"phase {fm.get('phase')}"
    if not matches(exp.where, fm.get("where")):
        return False, f"place {fm.get('where')}"
    if exp.codes and exp.required and not codes & set(exp.codes):
        return False, f"codes {sorted(codes)}"
    if exp.codes and not exp.required and codes - set(exp.codes):
        return False, f"wrong codes {sorted(codes)}"
    return True, ""


def matches(pattern, where):
    return pattern is None or (where is not None and re.search(pattern, str(where)) is not None)
