"""The book's Adam against torch's: one rule but for where ``1e-7`` is added.

The book folds the bias correction into the step size and adds ``1e-7`` to ``sqrt(v)``::

    lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    p -= lr_t * m / (sqrt(v) + 1e-7)

torch corrects ``m`` and ``v`` and adds its ``eps`` to the corrected root::

    p -= lr * (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps)
       = lr_t * m / (sqrt(v) + eps * sqrt(1 - beta2**t))

so the two are one where ``eps = 1e-7 / sqrt(1 - beta2**t)`` at step ``t`` (``3.2e-6`` at
the first step with ``beta2 = 0.999``, falling towards ``1e-7``). At a fixed ``eps`` they
part most where ``sqrt(v)`` is no larger than that: parameters whose gradients are small.

That difference (``adam_eps``) is sized through the port: a twin of the port, trained from
the same start with its ``eps`` set to the book's at each step; the port's own values less
the twin's are added to the NumPy values before comparing. It applies only where the
NumPy optimizer, tried on a probe, moves parameters as torch's Adam with that ``eps``
does, and the port's optimizer is torch's ``Adam`` with the NumPy ``beta1``, ``beta2``.
"""
import copy

import numpy as np

BOOK_EPS = 1e-7
CODE = "adam_eps"
# the probe: gradients from far below the book's 1e-7 (where the two rules part) to 1
PROBE_GRADS = np.logspace(-10, 0, 21)
PROBE_STEPS = 3
PROBE_RTOL = 1e-9


def book_eps(beta2, t):
    """torch's ``eps`` at step ``t`` (from 1) that makes its Adam the book's."""
    return BOOK_EPS / np.sqrt(1.0 - beta2 ** t)


def book_adam_betas(numpy_optimizer, interface, torch_optimizer):
    """``(beta1, beta2)`` where the book's Adam (``numpy_optimizer``) meets torch's Adam
    (``torch_optimizer``) in every setting but the eps, else ``None``."""
    return port_matches(torch_optimizer, numpy_betas(numpy_optimizer, interface))


def numpy_betas(numpy_optimizer, interface):
    """``(beta1, beta2)`` where the NumPy optimizer moves as torch's Adam with the book's
    eps at each step (the probe), else ``None``: what a golden file keeps of it."""
    betas = (getattr(numpy_optimizer, "beta1", None), getattr(numpy_optimizer, "beta2", None))
    if not all(isinstance(b, float) and 0 < b < 1 for b in betas):
        return None
    lr = getattr(numpy_optimizer, "lr", None)
    if not isinstance(lr, (int, float)) or not _probe_agrees(numpy_optimizer, interface, lr, betas):
        return None
    return betas


def port_matches(torch_optimizer, betas):
    """``betas`` where the port's optimizer is torch's ``Adam`` with them and nothing else
    that changes the rule (amsgrad, weight decay, maximize), else ``None``."""
    import torch
    if betas is None or type(torch_optimizer) is not torch.optim.Adam:
        return None
    betas = tuple(betas)
    for group in torch_optimizer.param_groups:
        if (tuple(group["betas"]) != betas or group.get("amsgrad") or group.get("weight_decay")
                or group.get("maximize")):
            return None
    return betas


def _probe_agrees(numpy_optimizer, interface, lr, betas):
    """The NumPy optimizer on a fresh copy and torch's Adam with the book's eps, both from
    zero on the probe's gradients: the same parameters at every step?"""
    import torch
    mine = copy.deepcopy(numpy_optimizer)
    for attr, fresh in (("iter", 0), ("m", None), ("v", None)):
        if hasattr(mine, attr):
            setattr(mine, attr, fresh)
    param = np.zeros_like(PROBE_GRADS)
    twin = torch.zeros(PROBE_GRADS.shape, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([twin], lr=lr, betas=betas, eps=book_eps(betas[1], 1))
    for t in range(1, PROBE_STEPS + 1):
        grad = PROBE_GRADS * (1 + 0.5 * (-1) ** t)
        try:
            if interface == "list":
                mine.update([param], [grad.copy()])
            else:
                mine.update({"p": param}, {"p": grad.copy()})
        except Exception:
            return False
        adam.param_groups[0]["eps"] = book_eps(betas[1], t)
        twin.grad = torch.from_numpy(grad.copy())
        adam.step()
        expected = twin.detach().numpy()
        if not np.allclose(param, expected, rtol=PROBE_RTOL, atol=0):
            return False
    return True


def text(beta2, size, at_step):
    return (f"the book's Adam adds 1e-7 to sqrt(v) after folding the bias correction into the "
            f"step size; torch's adds its eps to the corrected root: one rule where torch's eps "
            f"is 1e-7 / sqrt(1 - beta2**t) at step t ({book_eps(beta2, 1):.3g} at the first, "
            f"beta2 {beta2:g}); the port, trained again from the same start with that eps at "
            f"each step, sizes what its fixed eps changes: at most {size:.3g} of a parameter's "
            f"size (step {at_step}), added to the NumPy values")
