"""The book's 1e-7: ``-log(y + 1e-7)`` on one side, the cross-entropy without it on the other.

Each side's loss and gradient is classified as with or without the 1e-7
(``book``, ``cross_entropy``, ``either`` when the 1e-7 is below the
tolerance, None when neither), against the port's own ``F.cross_entropy``
and book loss of the same scores. Where the two sides are of different
kinds, the difference, derived through the port (the loss's, and by
autograd the gradients' of ``book - cross_entropy``), is added to the
NumPy value before comparing. The diagnosis is handed the same gap at every
row, applied or not (``hints``), so a mismatch equal to it is named.

Only a classification loss on class labels has the two references
(``has_references``): against a regression or binary loss this source finds
nothing and hints nothing.
"""
import numpy as np

from ..pairing import numpy_layout
from ..targets import PortSetupError
from ..tolerance import port_tolerance
from .difference import Known, KnownDifference

CODE = "log_eps"
LABEL = "1e-7 gap"
_KIND = {"book": "the book's -log(y + 1e-7)", "cross_entropy": "the cross-entropy without the 1e-7"}


def has_references(out):
    """The port's two reference losses were taken: the loss is a classification one and
    ``t`` class labels (``compare.port.losses``); for any other nothing is said of the 1e-7."""
    return out["losses"] is not None and "book" in out["losses"]


def _kind_of(value, ce, book, tol):
    """'cross_entropy' or 'book' (which loss ``value`` is), 'either' when the 1e-7 is below
    the tolerance, None when it is neither."""
    near_ce = abs(value - ce) <= tol.atol + tol.rtol * abs(ce)
    near_book = abs(value - book) <= tol.atol + tol.rtol * abs(book)
    if near_ce and near_book:
        return "either"
    return "cross_entropy" if near_ce else "book" if near_book else None


def loss_kinds(np_loss, out, loss_name, dtype):
    """``(numpy kind, torch kind, shift)`` of the two losses on one batch: which has the
    book's 1e-7, and what to add to the NumPy loss to make it of the torch one's kind
    (``None`` when nothing is to be added). ``out`` is ``TorchSide.outputs``'s."""
    losses = out["losses"]
    if not has_references(out):
        return None, None, None
    tol = port_tolerance(np.array(np_loss), dtype)
    ce, book = losses["cross_entropy"], losses["book"]
    np_kind = _kind_of(np_loss, ce, book, tol)
    t_kind = loss_name if loss_name in ("cross_entropy", "book") else _kind_of(out["loss"], ce, book, tol)
    if np_kind is None and t_kind is None:
        # both losses hold a term of their own (a penalty the port's loss adds too): the
        # 1e-7 is then what parts them, if anything
        d, gap = np_loss - out["loss"], book - ce
        if gap and abs(d - gap) <= tol.atol + tol.rtol * abs(np_loss):
            np_kind, t_kind = "book", "cross_entropy"
        elif gap and abs(d + gap) <= tol.atol + tol.rtol * abs(np_loss):
            np_kind, t_kind = "cross_entropy", "book"
    return np_kind, t_kind, _shift(np_kind, t_kind, np.array(book - ce))


def _grad_kind(grads, ce, book, dtype):
    """The same, for a gradient dict against the two reference gradients."""
    def close(g, r):
        tol = port_tolerance(r, dtype)
        return np.all(np.abs(g - r) <= tol.atol + tol.rtol * np.abs(r))

    def fits(ref):
        return all(g is not None and r is not None and g.shape == r.shape and close(g, r)
                   for g, r in ((grads[k], ref[k]) for k in grads))
    if ce is None or book is None:
        return None
    a, b = fits(ce), fits(book)
    return "either" if a and b else "cross_entropy" if a else "book" if b else None


def _shift(expected_kind, actual_kind, gap):
    """What to add to the expected (NumPy) value so it is of the actual's kind."""
    if gap is None or None in (expected_kind, actual_kind) or "either" in (expected_kind, actual_kind):
        return None
    if expected_kind == actual_kind:
        return None
    return gap if actual_kind == "book" else -gap


def _difference(what, np_kind, t_kind, rows, size):
    text = (f"{what}: the NumPy side's is {_KIND[np_kind]}, the torch side's {_KIND[t_kind]}; "
            f"the 1e-7 accounts for {abs(size):.3g} here, derived through the port "
            f"(autograd of book - cross_entropy of its scores) and added before comparing")
    return KnownDifference(CODE, LABEL, what, rows, text, abs(size))


def at_loss(np_loss, out, loss_name, dtype, context=None):
    np_kind, t_kind, shift = loss_kinds(np_loss, out, loss_name, dtype)
    losses = out["losses"]
    found = [] if shift is None else [_difference("loss", np_kind, t_kind, {"loss": shift}, float(shift))]
    hints = {} if not has_references(out) else {"loss": {CODE: np.array(losses["book"] - losses["cross_entropy"])}}
    return Known(found, hints)


def references(run):
    """The port's own gradients of both reference losses, when autograd reaches them:
    ``{"cross_entropy", "book", "gap"}`` in the NumPy layout, and ``"gap_layers"``, the gap
    in the gradient flowing into each recorded torch layer; None when it cannot."""
    if run.out["scores"] is None or not has_references(run.out):
        return None
    try:
        ce_cap, ce, _ = run.torch.recorded_pass(run.tx, run.tt, "cross_entropy")
        book_cap, book, _ = run.torch.recorded_pass(run.tx, run.tt, "book")
    except PortSetupError:
        return None
    zeros = {k: np.zeros(tuple(v.shape)) for k, v in run.torch.params.items()}
    ce = {k: zeros[k] if v is None else v for k, v in ce.items()}
    book = {k: zeros[k] if v is None else v for k, v in book.items()}
    gap_layers = [None if a.grad_output is None or b.grad_output is None else b.grad_output - a.grad_output
                  for a, b in zip(ce_cap.records, book_cap.records)]
    return {"cross_entropy": numpy_layout(run.pairing, ce), "book": numpy_layout(run.pairing, book),
            "gap": numpy_layout(run.pairing, {k: book[k] - ce[k] for k in ce}),
            "gap_layers": gap_layers}


def _without_earlier(run, earlier):
    """The NumPy loss and gradients with the known differences of the sources before this
    one (weight decay's) taken off, for the classification."""
    others = Known([d for d in run.known.differences if d.code != CODE])
    loss_shift, _ = others.shift("loss")
    np_loss = run.np_loss + (0.0 if loss_shift is None else float(loss_shift))
    grads = run.np_grads
    if grads is not None and earlier is not None:
        grads = dict(grads)
        for name in list(grads):
            shift, _ = earlier.shift(("param", name))
            if shift is not None:
                grads[name] = grads[name] + shift
    return np_loss, grads


def at_backward(run, t_grads, numerical, earlier=None):
    ref = references(run)
    np_loss, np_grads = _without_earlier(run, earlier)
    np_loss_kind, t_loss_kind, _ = loss_kinds(np_loss, run.out, run.torch.loss_name, run.dtype)
    t_kind = None
    if run.t_source.startswith("autograd"):
        t_kind = t_loss_kind
    elif ref is not None:
        t_kind = _grad_kind(t_grads, ref["cross_entropy"], ref["book"], run.dtype)
    if ref is None:
        return Known()
    if numerical:  # central differences of the NumPy loss are of its loss's kind
        np_kind = np_loss_kind
    else:
        np_kind = _grad_kind(np_grads, ref["cross_entropy"], ref["book"], run.dtype)
    gap, rows, hints = ref["gap"], {}, {}
    for j, layer_gap in enumerate(ref["gap_layers"]):
        if layer_gap is not None:
            rows[("layer", j)] = _shift(np_kind, t_kind, layer_gap)
            hints[("layer", j)] = {CODE: layer_gap}
    for name, g_gap in gap.items():
        rows[("param", name)] = _shift(np_kind, t_kind, g_gap)
        hints[("param", name)] = {CODE: g_gap}
    found = []
    if _shift(np_kind, t_kind, 0.0) is not None:
        found.append(_difference("gradient", np_kind, t_kind, rows,
                                 max(float(np.max(np.abs(v))) for v in gap.values())))
    return Known(found, hints)
