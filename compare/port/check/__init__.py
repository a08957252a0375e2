"""``check_port``: a NumPy model and its torch port, compared phase by phase.

Each phase is a module, reading and adding to one ``state.RunState``:

1. ``parameters``: paired (``compare.port.pairing``), the NumPy values copied
   into the port, read back equal bit for bit;
2. ``forward``: each layer's output, paired in order of execution
   (``compare.port.align``), then the scores;
3. ``loss``: the two losses;
4. ``backward``: each parameter's gradient, and the gradient flowing into each
   paired layer, nearest the loss first: against the NumPy ``gradient``
   (backprop) when it has one, else central differences of the NumPy ``loss``
   along random directions (``compare.port.numerical``); where a backprop row
   is the first to part, the port's gradient and then the NumPy backprop are
   taken against central differences of the NumPy loss (``reference_gradient``):
   the NumPy side may be the wrong one;
5. ``diagnosis``: the first comparison out of tolerance is the *first
   mismatch*, and the usual porting bugs are tested against it.

Known differences between two right implementations (the book's ``1e-7``)
are no failures: ``compare.port.known`` finds them, sized through the port,
and the loss and backward phases add them to the expected value and name them.
"""
from ..draws import seeded
from ..reference import open_reference
from ..targets import PortSetupError
from ..torch_side import SIDE as TORCH_SIDE
from . import tied_weights
from .backward import check_backward
from .diagnosis import blocked_verdict, verdict
from .forward import check_forward
from .loss import check_loss
from .modes import add_buffer_rows, check_buffers, check_eval
from .parameters import check_parameters
from .state import RunState

PHASES = (check_parameters, check_buffers, check_forward, add_buffer_rows, check_loss, check_backward,
          check_eval)


def check_port(numpy_model, torch_model, x=None, t=None, *, dtype=None, loss=None, param_map=None,
               device="cpu", numpy_gradient="auto", directions=4, locate="failing", seed=0,
               torch_optimizer=None, lr=0.1, numpy_kwargs=None, numpy_layout=None):
    """Compare a NumPy model and its torch port on one batch; returns a ``PortReport``.

    ``numpy_model``: ``params`` (dict of arrays) and ``loss(x, t)``; optionally
    ``predict``, ``gradient`` and ``layers``; or a golden file (its path, or a
    ``GoldenFile``), whose own batch is used when ``x`` and ``t`` are None. ``torch_model``: an ``nn.Module``
    returning scores, or a literal port (``params`` dict of tensors, ``loss``,
    optionally ``predict`` and ``gradient``). ``x``, ``t``: NumPy arrays (``x``
    of any shape ``(N, ...)``; ``t`` class indices, one-hot rows, or real
    targets where the loss takes them); both None (the default): the batch
    ``python -m compare port`` checks on by default (``compare.port.data.command_batch``:
    MNIST's training images, flattened unless the first parameter is a
    convolution's, the book's stream's first batch of 100 for ``seed``, one-hot
    labels), or a golden file's own. ``dtype``: the run's, default the NumPy
    parameters'; a port whose parameters are in another dtype is checked cast
    to it, and the report's notes say so. ``loss``: the torch side's, ``"cross_entropy"``, ``"book"``,
    ``"model"``, a ``torch.nn.functional`` loss by name (``"mse_loss"``, ...),
    ``"FILE.py:fn"`` or a function ``fn(output, t)``; ``t`` is converted to the
    targets it takes (``compare.port.losses``). None (the default): ``"cross_entropy"``,
    except for a port of one output against 0/1 targets, where it is the binary loss
    that gives the NumPy loss (the report's notes say which). ``param_map``: ``{"W1": "fc1.weight", ...}`` or the CLI's
    ``"W1=fc1.weight.T,..."``. ``numpy_gradient``: ``"auto"`` (backprop when the
    model has it, else numerical), ``"backprop"`` or ``"numerical"``;
    ``directions``, ``locate`` and ``seed`` steer the numerical check.
    ``torch_optimizer``: the port's optimizer (a function of its parameters, as
    training takes it, called with ``lr``): where it decays, the book's weight
    decay in the NumPy loss is a known difference (``known/weight_decay.py``).
    ``numpy_kwargs``: keywords for every call of the NumPy ``loss`` (cs231n's
    ``{"reg": 0.05}``, or the CLI's ``"reg=0.05"``), refused when ``loss`` takes
    none such. ``numpy_layout``: ``"batch-first"`` or ``"features-first"`` (inputs
    ``(features, examples)``, ``W`` ``(out, in)``, ``b`` ``(out, 1)``), detected from
    the parameters when None; ``x`` and ``t`` are given batch first either way.

    Neither model is changed: both sides work on deep copies. Problems with
    the request (a model without ``params``, a batch the model cannot take,
    NaN in an output) raise ``PortSetupError`` (a ``ValueError``).
    """
    options = dict(dtype=dtype, loss=loss, param_map=param_map, device=device,
                   numpy_gradient=numpy_gradient, directions=directions, locate=locate, seed=seed,
                   torch_optimizer=torch_optimizer, lr=lr, numpy_kwargs=numpy_kwargs,
                   numpy_layout=numpy_layout)
    with seeded(seed):
        try:
            run = RunState(open_reference(numpy_model), torch_model, x, t, dtype=dtype,
                           loss="cross_entropy" if loss is None else loss,
                           param_map=param_map, device=device, numpy_gradient=numpy_gradient,
                           directions=directions, locate=locate, seed=seed,
                           torch_optimizer=torch_optimizer, lr=lr, numpy_kwargs=numpy_kwargs,
                           numpy_layout=numpy_layout)
        except PortSetupError as error:
            # tied on one side only: the hypothesis checked in full on a NumPy copy
            named = tied_weights.explain(
                error, numpy_model, torch_model,
                lambda trial: check_port(trial, torch_model, x, t, **options))
            if named is None:
                raise
            return named
        run.loss_auto = loss is None
        if run.blocked is not None:
            return blocked_verdict(run)
        try:
            for phase in PHASES:
                phase(run)
        except PortSetupError as error:
            # the port's own pass cannot run on the NumPy parameters (a convolution that
            # pads otherwise shrinks what the next layer takes): a wrong port, not a setup
            if not str(error).startswith(TORCH_SIDE) or not run.block(error, "forward"):
                raise
            return blocked_verdict(run)
    return verdict(run)
