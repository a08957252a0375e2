"""Two arrays concatenated in the other order: ``concat_order``.

The book's peeky decoder puts the encoder's ``h`` before the embedding at every step and
before the decoder's output at the affine (``np.concatenate((hs, out), axis=2)``), and its
attention decoder the context before the decoder's ``h``. A weight paired with the NumPy
one then reads its first rows against the first part: a port that concatenates
``(out, hs)`` computes something else with the same weights, and no pairing of the weights
shows it (the shapes agree). The hypothesis, on the port's whole pass: its concatenations of
two parts along the last axis swapped, at every such line of its code, then at each line
alone; named where the port's pass then gives the NumPy loss and gradients, with the line.
"""
import os
import sys

_MAX_SITES = 4


def _site():
    """``file:line`` of the port's own code that made the call (outside torch and this
    package)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if "/torch/" not in name and "/compare/port/" not in name and "contextlib" not in name:
            here = os.path.relpath(name)
            return f"{name if here.startswith('..') else here}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _swapping(sites):
    """A ``TorchFunctionMode`` swapping the two parts of each last-axis concatenation made
    at one of ``sites`` (all, where ``sites`` is None); ``seen`` the sites it met, with
    whether a part repeats one row over the time axis (the peeky ``h``)."""
    import torch
    from torch.overrides import TorchFunctionMode
    cats = {torch.cat, torch.concat, torch.concatenate}

    class Mode(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.seen = {}

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in cats and args and isinstance(args[0], (list, tuple)) and len(args[0]) == 2:
                a, b = args[0]
                dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
                if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dim() >= 2 \
                        and a.dim() == b.dim() and dim % a.dim() == a.dim() - 1:
                    site = _site()
                    if site is not None:
                        self.seen.setdefault(site, (_repeated(a), _repeated(b)))
                        if sites is None or site in sites:
                            return func((b, a), *args[1:], **kwargs)
            return func(*args, **kwargs)
    return Mode()


def _repeated(part):
    """One row repeated over the time axis (axis 1 of ``(N, T, F)``)."""
    import torch
    return part.dim() == 3 and part.shape[1] > 1 and bool(
        torch.equal(part, part[:, :1].expand_as(part)))


def _try(rerun, reproduces, sites):
    mode = _swapping(sites)
    try:
        with mode:
            out, grads = rerun()
        return bool(mode.seen) and reproduces(out, grads), mode.seen
    except Exception:  # a pass the hypothesis cannot run says nothing
        return False, mode.seen


def concat_order_trap(run, rerun, reproduces):
    if run.torch.kind != "module":
        return []
    hit, seen = _try(rerun, reproduces, None)
    trials = [] if hit else [{site} for site in list(seen)[:_MAX_SITES]] if len(seen) > 1 else []
    chosen = set(seen) if hit else None
    for sites in trials:
        hit, _ = _try(rerun, reproduces, sites)
        if hit:
            chosen = sites
            break
    if chosen is None:
        return []
    where = ", ".join(sorted(chosen))
    peeky = [s for s in chosen if any(seen[s])]
    what = ("the encoder's h repeated over the time steps (a peeky decoder's) and the other "
            "part" if peeky else "its two parts")
    book = ("; the book's peeky decoder writes np.concatenate((hs, out), axis=2), h first"
            if peeky else "")
    return [{"code": "concat_order", "sites": sorted(chosen),
             "text": f"the port concatenates {what} in the other order than the NumPy code at "
                     f"{where}: swapped there, the port's pass gives the NumPy loss and "
                     f"gradients (the weight that reads the concatenation pairs its rows with "
                     f"the NumPy parts in the NumPy order{book}); concatenate them in the "
                     f"NumPy order"}]
