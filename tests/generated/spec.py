"""The choices a generated model is built from, and the strategies that draw them.

A ``Spec`` names a style and the conventions right code differs in. Each style
takes only the conventions its learners write (``STYLE_CHOICES``); the torch port
is derived from the same spec (``ports``), so a drawn spec is a right pair.
"""
from dataclasses import dataclass, replace

from hypothesis import strategies as st

STYLES = ("book", "cs231n", "dlai", "adapter", "plain")
EPSILONS = (None, 1e-7, 1e-8, 1e-10)
ACTS = ("relu", "tanh", "sigmoid", "leaky_relu", "elu", "gelu", "gelu_tanh")
ACT_PARAMS = {"leaky_relu": (0.1, 0.2), "elu": (1.0, 0.5)}
LN_EPSILONS = (1e-5, 1e-3, 1e-6)


@dataclass(frozen=True)
class Spec:
    style: str
    D: int = 5                   # inputs
    H: int = 6                   # hidden units
    C: int = 3                   # outputs (1 for a binary cross-entropy)
    N: int = 8                   # batch
    seed: int = 0
    dtype: str = "float64"
    bias: str = "flat"           # (D,) "flat", (1, D) "row", (D, 1) "col"
    order: tuple = ()            # a permutation of the parameter names: the params dict's order
    head: str = "scores"         # what the NumPy predict gives: scores, probs, logprobs
    loss: str = "softmax_ce"     # softmax_ce, bce, mse
    log_from: str = "logits"     # the NumPy loss from the logits (stable) or from the probabilities
    eps: float = None            # inside the log, where the loss is taken from probabilities
    reduction: str = "mean"      # mean or sum
    labels: str = "onehot"       # onehot or index (softmax_ce)
    dropout: str = None          # None, "layer", "inline"
    inverted: bool = True        # the kept units scaled by 1/keep at training (else the book's)
    p: float = 0.3               # the probability of dropping
    bn: str = None               # None, or the running statistics' shape: "flat" (H,), "row" (1, H)
    bn_eps: float = 1e-5
    reg: float = 0.0             # 0.5 * reg * sum W**2 in the loss, reg * W in the gradient
    port_head: str = "scores"    # what the port returns: scores, logprobs (softmax), probs (bce)
    np_bug: str = None           # a wrong NumPy backward: "forget_reg", "sum_grad"
    mode: str = None             # features first: no mode (the course's), or a ``training`` flag
    act: str = "relu"            # the hidden activation: relu, tanh, sigmoid, leaky_relu, elu, gelu, gelu_tanh
    act_param: float = None      # a leaky ReLU's slope, an ELU's alpha
    act_form: int = 0            # which of two ways learners write it (``core.ACT_FORMS``)
    port_call: str = "module"    # the port's activation and layer norm: nn modules, or F calls
    ln: bool = False             # a layer norm after the first affine layer (never beside batch norm)
    ln_eps: float = 1e-5
    res: str = None              # a square layer after the activation: None, "skip" (h + f(h W + b)), "chain" (f(h W + b))

    @property
    def param_names(self):
        names = ["W1", "b1", "W2", "b2"]
        if self.bn or self.ln:
            names += ["gamma1", "beta1"]
        if self.res:
            names += ["W_res", "b_res"]
        return names

    def describe(self):
        parts = [self.style, self.dtype, f"N={self.N}", f"D,H,C={self.D},{self.H},{self.C}",
                 f"seed={self.seed}", f"bias={self.bias}",
                 f"order={','.join(self.order)}", f"head={self.head}", f"loss={self.loss}"]
        if self.loss != "mse":
            parts.append(f"from={self.log_from}")
        if self.eps is not None:
            parts.append(f"eps={self.eps:g}")
        parts.append(self.reduction)
        if self.loss == "softmax_ce":
            parts.append(f"labels={self.labels}")
        if self.dropout:
            parts.append(f"dropout={self.dropout}:{'inverted' if self.inverted else 'book'}:p={self.p}")
        if self.bn:
            parts.append(f"bn={self.bn}:eps={self.bn_eps:g}")
        if self.reg:
            parts.append(f"reg={self.reg}")
        if self.act != "relu":
            parts.append(f"act={self.act}" + (f":{self.act_param:g}" if self.act_param is not None else ""))
        if self.act_form:
            parts.append(f"act_form={self.act_form}")
        if self.ln:
            parts.append(f"ln:eps={self.ln_eps:g}")
        if self.res:
            parts.append(f"res={self.res}")
        if self.port_call != "module":
            parts.append(f"port_call={self.port_call}")
        parts.append(f"port={self.port_head}")
        if self.mode:
            parts.append(f"mode={self.mode}")
        if self.np_bug:
            parts.append(f"np_bug={self.np_bug}")
        return " ".join(parts)


# what each style's learners write; the first value of each is the style's own habit
STYLE_CHOICES = {
    "book": dict(bias=("flat", "row", "col"), head=("scores", "probs", "logprobs"),
                 loss=("softmax_ce", "bce", "mse"), dropout=(None, "layer"), bn=(None, "flat", "row"),
                 reg=(0.0, 0.1), inverted=(False, True), labels=("onehot", "index"),
                 act=ACTS, ln=(False, True), res=(None,)),
    "cs231n": dict(bias=("flat", "row"), head=("scores",), loss=("softmax_ce",),
                   dropout=(None, "layer"), bn=(None, "flat", "row"), reg=(0.0, 0.05),
                   inverted=(True,), labels=("index",), act=ACTS, ln=(False, True),
                   res=(None, "skip", "chain")),
    "dlai": dict(bias=("col", "flat"), head=("probs",), loss=("bce", "softmax_ce"),
                 dropout=(None, "inline"), bn=(None,), reg=(0.0,), inverted=(True,),
                 labels=("onehot",), mode=(None, "training"), act=ACTS, ln=(False, True),
                 res=(None, "skip", "chain")),
    "adapter": dict(bias=("row", "flat"), head=("scores", "probs"), loss=("softmax_ce", "bce", "mse"),
                    dropout=(None, "layer"), bn=(None,), reg=(0.0,), inverted=(True,),
                    labels=("index", "onehot"), act=ACTS, ln=(False,), res=(None,)),
    "plain": dict(bias=("flat", "row", "col"), head=("scores", "probs", "logprobs"),
                  loss=("softmax_ce", "bce", "mse"), dropout=(None, "inline"), bn=(None,),
                  reg=(0.0, 0.1), inverted=(False, True), labels=("onehot", "index"),
                  act=ACTS, ln=(False, True), res=(None, "skip", "chain")),
}


@st.composite
def specs(draw, style=None, **fixed):
    """A right pair's choices; ``fixed`` pins any field (``dropout="layer"``)."""
    style = style or draw(st.sampled_from(STYLES))
    ch = STYLE_CHOICES[style]

    def pick(name, options):
        return fixed[name] if name in fixed else draw(st.sampled_from(options))

    loss = pick("loss", ch["loss"])
    C = 1 if loss == "bce" else pick("C", (2, 3, 4))
    head = pick("head", tuple(h for h in ch["head"] if not (loss == "mse" and h != "scores")
                              and not (loss == "bce" and h == "logprobs")) or ("scores",))
    log_from = "logits" if loss == "mse" else pick("log_from", ("logits", "probs") if style != "dlai" else ("probs",))
    eps = pick("eps", EPSILONS) if log_from == "probs" else None
    if loss == "softmax_ce":
        port_head = pick("port_head", ("scores", "logprobs"))
    elif loss == "bce":
        port_head = pick("port_head", ("scores", "probs"))
    else:
        port_head = "scores"
    bn = pick("bn", ch["bn"])
    act = pick("act", ch["act"])
    ln = False if bn else pick("ln", ch["ln"])
    dropout = pick("dropout", ch["dropout"])
    spec = Spec(
        style=style, D=pick("D", (3, 4, 5, 6)), H=pick("H", (4, 5, 6, 7)), C=C,
        N=pick("N", tuple(range(3, 41))), seed=pick("seed", tuple(range(1000))),
        dtype=pick("dtype", ("float64", "float32")), bias=pick("bias", ch["bias"]),
        head=head, loss=loss, log_from=log_from, eps=eps,
        reduction=pick("reduction", ("mean", "sum")),
        labels=pick("labels", ch["labels"]) if loss == "softmax_ce" else "onehot",
        dropout=dropout, inverted=pick("inverted", ch["inverted"]) if dropout else True,
        p=pick("p", (0.2, 0.3, 0.5)), bn=bn,
        bn_eps=(1e-6 if style == "book" else pick("bn_eps", (1e-5, 1e-6))) if bn else 1e-5,
        reg=pick("reg", ch["reg"]), port_head=port_head, np_bug=fixed.get("np_bug"),
        mode=pick("mode", ch.get("mode", (None,))),
        act=act, act_param=pick("act_param", ACT_PARAMS[act]) if act in ACT_PARAMS else None,
        act_form=pick("act_form", (0, 1)), port_call=pick("port_call", ("module", "functional")),
        ln=ln, ln_eps=pick("ln_eps", LN_EPSILONS) if ln else 1e-5, res=pick("res", ch["res"]),
    )
    names = spec.param_names
    order = fixed.get("order")
    if order == "habit":
        order = HABIT_ORDER[style]
    order = [n for n in order if n in names] if order else draw(st.permutations(names))
    return replace(spec, order=tuple(order))


# the order each style's own code fills its params dict in: the book makes every W and b
# first and batch norm's gamma and beta in the layer loop; cs231n's net, layer by layer
HABIT_ORDER = {style: ("W1", "b1", "W_res", "b_res", "W2", "b2", "gamma1", "beta1") for style in STYLES}
HABIT_ORDER["cs231n"] = ("W1", "b1", "gamma1", "beta1", "W_res", "b_res", "W2", "b2")


def natural(style):
    """Each style's own habits, the conventions pinned (``FOCUS`` frees one group at a time)."""
    ch = STYLE_CHOICES[style]
    loss = "softmax_ce" if "softmax_ce" in ch["loss"] else ch["loss"][0]
    fixed = dict(bias=ch["bias"][0], head=ch["head"][0], loss=loss, reduction="mean",
                 labels=ch["labels"][0], dropout=None, bn=None, reg=0.0, dtype="float64", N=16,
                 port_head="scores", eps=None, log_from="probs" if style == "dlai" else "logits",
                 inverted=ch["inverted"][0], mode=None, act="relu", act_form=0, port_call="module",
                 ln=False, res=None)
    fixed["order"] = "habit"
    return fixed


# one group of conventions freed at a time, so that a failure names its convention
FOCUS = {
    "natural": (),
    "bias": ("bias",),
    "order": ("order",),
    "head": ("head", "port_head"),
    "loss": ("loss", "reduction", "labels", "log_from", "head", "port_head"),
    "eps": ("eps",),
    "float32": ("dtype",),
    "batch": ("N",),
    "dropout": ("dropout", "inverted", "p"),
    "batch_norm": ("bn", "bn_eps"),
    "weight_decay": ("reg",),
    "mode": ("mode",),
    "activation": ("act", "act_param", "act_form", "port_call"),
    "layer_norm": ("ln", "ln_eps", "port_call"),
    "residual": ("res", "act"),
    "all": None,  # every convention drawn
}


def focus_specs(style, focus):
    """Right specs of ``style`` with the ``focus`` group drawn and the rest the style's habits."""
    if FOCUS[focus] is None:
        return specs(style)
    fixed = natural(style)
    for name in FOCUS[focus]:
        fixed.pop(name, None)
    if focus == "eps":
        fixed["log_from"] = "probs"
    return specs(style, **fixed)


def focuses(style):
    """The groups a style has a choice in."""
    ch = STYLE_CHOICES[style]
    skip = {"dropout": not any(ch["dropout"]), "batch_norm": not any(ch["bn"]),
            "weight_decay": not any(ch["reg"]), "bias": len(ch["bias"]) < 2,
            "mode": len(ch.get("mode", ())) < 2, "activation": len(ch["act"]) < 2,
            "layer_norm": not any(ch["ln"]), "residual": not any(ch["res"])}
    return [f for f in FOCUS if not skip.get(f)]
