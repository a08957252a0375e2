"""What a layer kind is: how each side writes it, and what can go wrong in a port of it.

A ``LayerKind`` says, for one kind of layer:

* how it is recognised: the NumPy class names (the book's ``Affine``,
  ``BatchNormalization``; any class whose name starts so), the torch
  modules (``nn.Linear``) and the functional calls (``F.linear``);
* its buffers: ``(numpy attribute, torch buffer)`` pairs, state that is not
  a parameter but that the forward pass updates (batch norm's running
  statistics);
* whether it has modes (training and evaluation compute different things);
* its settings (``settings``): the hyper-parameters both sides hold, read off
  the two objects, so a difference is named with both values;
* its traps (``traps``): the usual porting bugs of this kind, each a
  hypothesis tested on the recorded layer (``Site``) where the comparison
  first parts, returned as ``{"code", "text", ...}`` like the general
  diagnosis's;
* its known differences (``known``): what two right ports of it compute
  differently by convention, sized from the recorded pass;
* its writer (``write``): the torch module a PyTorch user would pick for it,
  and the loading of the NumPy values into it (``written.py``).

The phases of the check know no kind by name: they ask the registry
(``compare.port.layers``) for the kind of a record and call these.
"""
import inspect
import re
from dataclasses import dataclass, field

import numpy as np

from ..copying import deep_copy
from ..unit_axes import as_shape


def norm_name(name):
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


@dataclass
class Site:
    """One paired layer where the comparison parts: both records, both objects, the mode."""
    numpy_record: object
    torch_record: object
    numpy_layer: object = None
    torch_module: object = None
    mode: str = "train"
    dtype: str = "float64"
    rtol: float = 1e-10
    atol: float = 0.0
    what: str = "output"  # "output", or a buffer name
    # at a buffer after one training pass: its value before, the batch statistic behind
    # it (from the NumPy layer's recorded input), N / (N - 1), N, and the known
    # difference carried from earlier steps
    before: object = None
    batch_stat: object = None
    unbiased: float = 1.0
    batch_size: int = None
    carried: object = 0.0
    tape: object = None  # the run's draws, so a layer rerun in training mode draws the same
    torch_buffers: dict = None  # the port's buffers as the training-mode passes found them
    # the port's parameters (name -> float64 array), as loaded from the NumPy side: a kind's
    # trap reruns the port's own layer with them where no NumPy layer object is at hand
    torch_params: dict = None

    @property
    def expected(self):
        return self.numpy_record.output

    @property
    def input(self):
        """The layer's input: the NumPy record's, else the port's (a row read off the NumPy
        forward's locals records no input; the port's agreed with the NumPy side up to the
        row, and a hypothesis fitted on it must still reproduce the NumPy output)."""
        x = self.numpy_record.input
        return self.torch_record.input if x is None else x

    @property
    def actual(self):
        return self.torch_record.output

    def close(self, a, b):
        """Equal within the comparison's tolerance, scaled to the arrays as the diagnosis does."""
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        b = as_shape(b, a.shape)
        if a.shape != b.shape:
            return False
        size = np.maximum(np.abs(a), np.abs(b))
        atol = max(self.atol, self.rtol * float(size.max()) if size.size else 0.0)
        return bool(np.all(np.abs(a - b) <= atol + self.rtol * size))

    def rerun(self, x, **kwargs):
        """The NumPy layer's forward on ``x``, on a copy (its caches and running statistics
        stay as they are); ``None`` when it cannot be rerun so."""
        if self.numpy_layer is None or x is None:
            return None
        layer = deep_copy(self.numpy_layer)
        forward = layer.forward

        def output(x, **kwargs):  # returned, or kept as .output
            out = forward(x, **kwargs)
            return getattr(layer, "output", None) if out is None else out
        try:
            accepted = inspect.signature(forward).parameters
            kwargs = {k: v for k, v in kwargs.items() if k in accepted}
            if self.tape is None:
                return np.asarray(output(np.array(x, copy=True), **kwargs), dtype=np.float64)
            with self.tape.numpy_pass():
                return np.asarray(output(np.array(x, copy=True), **kwargs), dtype=np.float64)
        except Exception:
            return None


@dataclass(eq=False)
class LayerKind:
    name: str
    numpy_names: tuple
    torch_modules: tuple = ()
    torch_functions: tuple = ()
    buffers: tuple = ()
    has_modes: bool = False
    draws: bool = False
    notes: tuple = field(default_factory=tuple)

    def is_numpy(self, class_name):
        n = norm_name(class_name)
        return any(n.startswith(norm_name(k)) for k in self.numpy_names)

    def is_torch(self, class_name):
        n = norm_name(class_name)
        return any(n == norm_name(k) for k in self.torch_modules)

    # the three a kind file overrides ------------------------------------------------------

    def settings(self, numpy_layer, torch_module):
        """``[(setting, numpy value, torch value)]`` of the settings that differ."""
        return []

    def traps(self, site):
        return []

    def known(self, site):
        return []

    def write(self, seen):
        """The torch code of this layer (``written.Written``), for ``compare write-port``;
        ``None``: this kind has no writer (``written.CannotWrite``: none for this layer as
        the pass found it, with the reason)."""
        return None

    def computes(self, x, params):
        """``[(held, output)]``: what this kind computes on ``x`` (batch first) from parameters
        of ``params`` (``{name: array}``), each with the roles its writer reads them by
        (``{"W": "W1", "b": "b1"}``; a ``written.Held`` where the output depends on a
        setting too, batch norm's eps), for a layer known by its values (``by_value.py``); ``[]``
        where it computes nothing from parameters alone (a setting, a draw or a state of its
        own is needed) or has no writer for such a layer."""
        return []

    def loss_values(self, scores, t):
        """The losses this kind computes of ``scores`` against ``t`` (one per usual way of
        writing it), for a loss known by its values; ``[]`` where it is no loss."""
        return []

    def head(self, scores):
        """The probabilities this loss kind's head makes of ``scores`` (N, C) (softmax rows,
        sigmoid), for a head the NumPy model computes before its loss; ``None``: no head."""
        return None

    def head_losses(self, probabilities, t):
        """The losses this kind computes of its head's ``probabilities`` against ``t`` (one
        per usual way of writing it), where the NumPy loss takes probabilities; ``[]``: none."""
        return []

    def gradient_scale(self, record, layer, value):
        """The size of the terms a parameter's gradient sums (``None``: its own size will do).

        A gradient that cancels, such as the bias in front of a batch norm (exactly 0, computed
        as a sum of terms of 1e-2), keeps the round-off of those terms, which its own size
        does not show: both sides' differences in the gradient flowing in (at most ``rtol``
        times its largest entry each, as the layer's row allows) and the summation's."""
        return None


def summed_scale(g, axes, factor=None):
    """``count x max|g x factor| + max of the sums of |g x factor|`` over ``axes``: the bound
    of ``sum(g x factor)`` over ``axes`` when each ``g`` may err by ``rtol max|g|``."""
    g = np.abs(np.asarray(g, dtype=np.float64))
    f = 1.0 if factor is None else np.abs(np.asarray(factor, dtype=np.float64))
    count = int(np.prod([g.shape[a] for a in axes])) if axes else 1
    return float(count * g.max() * np.max(f) + np.max((g * f).sum(axis=axes)))


def torch_shown(site):
    """The port's layer as a trap's text names it: a module with its class (``1
    (nn.ELU)``), a traced call as the port wrote it (``F.leaky_relu#1``)."""
    module = site.torch_module
    if module is None or type(module).__module__.split(".")[0] != "torch":
        return site.torch_record.key
    return f"{site.torch_record.key} (nn.{type(module).__name__})"


def attribute(obj, *names, default=None):
    for name in names:
        if obj is not None and hasattr(obj, name):
            return getattr(obj, name)
    return default


def other_mode_trap(site, name):
    """The port computes this layer as the other mode does: a module left in ``eval()``
    during training (or in ``train()`` for evaluation), or a ``training=`` flag hard-wired."""
    other = "eval" if site.mode == "train" else "train"
    rerun = site.rerun(site.numpy_record.input, train_flg=other == "train")
    if rerun is None or not site.close(rerun, site.actual) or site.close(site.expected, site.actual):
        return []
    return [{"code": "mode", "mode": site.mode,
             "text": f"{site.torch_record.key} computes {site.numpy_record.key} as the NumPy "
                     f"{name} does in {other} mode, while the check runs in {site.mode} mode: the "
                     f"port is left in the wrong mode ({'model.train()' if site.mode == 'train' else 'model.eval()'} "
                     f"not reaching it, or a training= flag fixed in its forward)"}]
