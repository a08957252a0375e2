"""The two sides' optimizers: the book's ``update(params, grads)`` and torch's ``Optimizer``.

A NumPy optimizer is an object with the book's interface (default: the
book's plain SGD), or a class or factory making one; a torch optimizer is a
function of the port's parameters returning a ``torch.optim.Optimizer``, or
``(optimizer, scheduler)``. Either is called with ``lr=`` when it takes one.
A torch factory whose first argument is named ``model`` (or ``port``, ``module``,
``net``) is handed the port itself, as a training loop builds its optimizer from its
model: what it hands the optimizer (a tied tensor twice, say) is then the loop's own.
"""
import copy
import inspect
import warnings

from .targets import PortSetupError


class SGD:
    """The book's ``common/optimizer.py`` SGD."""

    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params.keys():
            params[key] -= self.lr * grads[key]


def _with_lr(factory, lr, *args):
    """Call a class or factory with ``lr=`` when it takes one (the CLI's ``--lr``)."""
    try:
        takes_lr = "lr" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_lr = False
    return factory(*args, lr=lr) if takes_lr else factory(*args)


class StepInterface:
    """A NumPy optimizer whose method is ``step(params, grads)``, as from-scratch libraries
    name it after torch's, called as the book's ``update(params, grads)``; its settings
    (``lr``, ``beta1``, ...) read through."""

    def __init__(self, inner):
        self.inner = inner

    def update(self, params, grads):
        return self.inner.step(params, grads)

    def __getattr__(self, name):
        if name == "inner":  # a copy being built has none yet
            raise AttributeError(name)
        return getattr(self.inner, name)


def optimizer_name(optimizer):
    """The NumPy optimizer's class name (the one a ``step`` method is called through)."""
    return type(getattr(optimizer, "inner", optimizer) if isinstance(optimizer, StepInterface)
                else optimizer).__name__


def _takes_two(method):
    try:
        inspect.signature(method).bind(None, None)
    except (TypeError, ValueError):
        return False
    return True


def numpy_optimizer_of(spec, lr):
    if spec is None:
        return SGD(lr)
    if inspect.isclass(spec) or (callable(spec) and not hasattr(spec, "update")
                                 and not hasattr(spec, "step")):
        try:
            spec = _with_lr(spec, lr)
        except Exception as exc:
            raise PortSetupError(f"numpy optimizer: building it raised {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(spec, "update", None)):
        step = getattr(spec, "step", None)
        if callable(step) and _takes_two(step):
            return StepInterface(copy.deepcopy(spec))
        raise PortSetupError(f"numpy optimizer: {type(spec).__name__} has no update(params, grads) "
                             f"(nor step(params, grads))")
    return copy.deepcopy(spec)  # its state (momentum, AdaGrad's h) is the user's


MODEL_ARGUMENTS = ("model", "port", "module", "net")


def takes_model(factory):
    """Does the torch optimizer factory take the port (its first argument so named)?"""
    try:
        first = next(iter(inspect.signature(factory).parameters), None)
    except (TypeError, ValueError):
        return False
    return first in MODEL_ARGUMENTS


def torch_optimizer_of(spec, params, lr, model=None):
    """The port's optimizer (and scheduler): ``spec`` called with ``params``, or with
    ``model`` where it takes the port (``takes_model``)."""
    import torch
    if spec is None:
        return torch.optim.SGD(params, lr=lr), None
    try:
        with warnings.catch_warnings():
            # a tensor held twice is the check's to name (tied_weights), not torch's to warn of
            warnings.filterwarnings("ignore", message=".*duplicate parameters")
            made = _with_lr(spec, lr, model if model is not None and takes_model(spec) else params)
    except Exception as exc:
        raise PortSetupError(f"torch optimizer: calling it on the port's parameters raised "
                             f"{type(exc).__name__}: {exc}") from exc
    optimizer, scheduler = made if isinstance(made, tuple) else (made, None)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise PortSetupError(f"torch optimizer: expected a torch.optim.Optimizer (or a tuple of "
                             f"one and a scheduler), got {type(optimizer).__name__}")
    return optimizer, scheduler
