"""What a kind's writer is handed and what it hands back, for ``compare write-port``.

A writer (``LayerKind.write``) sees one NumPy layer as a pass found it
(``Seen``: the object, its key, which of its attributes hold which NumPy
parameter, its input and output on a training-mode pass) and returns the
torch code a PyTorch user would write for it (``Written``): the module, the
lines that load the NumPy values into it, each with the reason for its layout
conversion, and the conventions converted, each with its trap's code in
``docs/traps.md``. ``None``: this kind has no writer.
"""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Seen:
    key: str
    layer: object
    held: dict  # the layer's attribute -> the NumPy parameter's name (Affine.W -> "W1")
    params: dict  # every NumPy parameter, by name
    input: np.ndarray = None
    output: np.ndarray = None
    # the layer's attribute -> the NumPy parameter it holds the transpose of (the book's
    # BetterRnnlm hands TimeAffine embed_W.T: weights tied)
    transposed: dict = field(default_factory=dict)
    style: str = "modules"  # or "functional": F calls on parameters the port holds itself

    @property
    def functional(self):
        return self.style == "functional"

    def param(self, *attrs):
        """``(name, array)`` of the NumPy parameter the layer holds as the first of ``attrs``
        it has (``"W", "weights"``); ``(None, None)`` where it holds none of them."""
        name = next((self.held[a] for a in attrs if a in self.held), None)
        if name is None:  # a learner's own spelling: ``w`` for the book's ``W``
            lower = {a.lower(): n for a, n in self.held.items()}
            name = next((lower[a.lower()] for a in attrs if a.lower() in lower), None)
        return (None, None) if name is None else (name, self.params[name])

    def setting(self, *attrs, default=None):
        """The layer's own attribute, else the setting a step known by its values was
        reproduced with (``Held``: an inline batch norm's eps)."""
        found = next((getattr(self.layer, a) for a in attrs if hasattr(self.layer, a)), None)
        if found is not None:
            return found
        held = getattr(self.held, "settings", {})
        return next((held[a] for a in attrs if a in held), default)


@dataclass
class Load:
    """``port.<attr>.<target>`` set from ``params[name]`` (``expr``: ``{p}`` is the tensor);
    ``name`` None: set to zeros (a torch parameter the NumPy layer has no array for)."""
    target: str
    name: str
    expr: str = "{p}"
    why: str = ""


@dataclass
class Written:
    module: str = None  # the constructor, ``nn.Linear(784, 50)``; None: no module (the loss)
    loads: list = field(default_factory=list)
    conventions: list = field(default_factory=list)  # (text, its place in docs/traps.md)
    helpers: dict = field(default_factory=dict)  # name -> source of a class the module needs
    before: list = field(default_factory=list)  # (attribute stem, constructor) run before it
    loss: str = None  # the source of the port's loss function, for the layer that is the loss
    # the ``--loss`` the check is handed, where the loss is none it picks itself: a
    # ``torch.nn.functional`` loss's name, or ``"loss"``: the loss() written in the port's file
    loss_given: str = None
    # the forward's lines for this module, ``{m}`` the module (``self.lstm``), ``{state}`` the
    # attribute its state is carried in; None: ``x = {m}(x)``
    call: list = None
    state: bool = False  # carries a state between calls: held from None, reset_state() forgets it
    init: list = field(default_factory=list)  # lines run in __init__ after it is built (``{m}``)
    # (its parameter, the NumPy parameter whose loaded tensor it is): ``{m}.weight = self.embed.weight``
    ties: list = field(default_factory=list)
    # the functional style: no module; the parameters and buffers the port holds for the
    # layer, each ``(name, initial value)`` (``("weight", "0.01 * torch.randn(50, 784)")``,
    # held as ``self.<layer>_weight``; a buffer as ``self.<name>_<layer>``, ``running_mean_bn1``,
    # the running statistics by their own names first, as the check finds a functional
    # batch norm's), and ``call`` its forward lines, ``{p}`` that prefix (``self.affine1_``),
    # ``{n}`` the layer's name; a Load's target then names such a parameter
    parameters: list = field(default_factory=list)
    buffers: list = field(default_factory=list)


TRAPS = "docs/traps.md"


def trap(code):
    """Where the catalogue says the trap a convention sets."""
    return f"{TRAPS}#{code}"


KNOWN = f"{TRAPS}#known-differences-named-and-sized-never-failed"


def functional(call, parameters=(), buffers=(), loads=(), conventions=()):
    """A layer's functional form: ``call`` its forward lines (``{p}``: the port's prefix
    for this layer's parameters)."""
    return Written(loads=list(loads), conventions=list(conventions), call=list(call),
                   parameters=list(parameters), buffers=list(buffers))


class Held(dict):
    """``{role: parameter name}`` and the ``settings`` a kind's operation was applied with
    (batch norm's eps): two applications with other settings are other steps."""

    def __init__(self, roles, **settings):
        super().__init__(roles)
        self.settings = settings

    def __eq__(self, other):
        return dict.__eq__(self, other) and self.settings == getattr(other, "settings", {})

    __hash__ = None


class CannotWrite(Exception):
    """This layer, as the pass found it, has no torch form the writer knows."""


def number(value):
    """A float as the shortest literal that reads back as it (``0.1``, not ``0.09999...``)."""
    return repr(float(np.format_float_positional(float(value), precision=12, trim="-")))
