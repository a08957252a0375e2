"""A kernel whose shape fits more than one axis order (a channels-last ``(h, w, c_in, n_f)``
with ``h == w``, or ``c_in == n_f``): where the check parts, each other order is loaded into
the port in turn, and one that reproduces the NumPy loss and gradients is named, with the
``--param-map`` that says it. The pairing chose by the shapes alone; the values decide."""
from dataclasses import replace

from ..pairing import inverse, numpy_layout
from ..tolerance import within

AXES = "n_f", "c_in", "h", "w"  # torch's kernel axes


def kernel_order_traps(run):
    ambiguous = [p for p in run.pairing if p.also_fits]
    if not ambiguous or run.np_loss is None:
        return []
    saved = run.torch.buffer_values()
    try:
        for pair in ambiguous:
            for order in pair.also_fits:
                pairing = [replace(p, permute=order, also_fits=()) if p is pair else p
                           for p in run.pairing]
                if _reproduces(run, pairing):
                    return [_named(pair, replace(pair, permute=order, also_fits=()))]
    finally:
        run.torch.load(run.pairing, run.np.params)
        run.torch.load_buffers(saved)
    return []


def _reproduces(run, pairing):
    run.torch.load(pairing, run.np.params)
    out, grads = run.torch.training_pass(run.tx, run.tt)
    if not within(run.np_loss, out["loss"], run.dtype):
        return False
    if run.np_grads is None:
        return True
    grads = numpy_layout(pairing, grads)
    return all(grads[n] is not None and within(run.np_grads[n], grads[n], run.dtype)
               for n in run.np_grads)


def _layout(pair):
    """The NumPy kernel's axes, named as torch's."""
    return "(" + ", ".join(AXES[a] for a in inverse(pair.permute)) + ")"


def _named(taken, other):
    return {"code": "transpose", "parameter": taken.numpy, "layout": other.view,
            "text": f"the port computes with {taken.torch} as if it held {taken.numpy} in the order "
                    f"{_layout(other)}, not {_layout(taken)} as it was paired by its shape "
                    f"(which fits both): with {other.view} the loss and the gradients agree. "
                    f"Either the NumPy kernel is {_layout(other)} (say so: --param-map "
                    f"{taken.numpy}={other.torch}.permute({','.join(map(str, inverse(other.permute)))})), "
                    f"or the port swaps the kernel's axes in its forward pass"}
