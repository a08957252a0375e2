"""Dropout: the book's ``Dropout`` and ``nn.Dropout`` / ``F.dropout``.

=============  ===================================  ===================================
               the book                             torch
=============  ===================================  ===================================
training       ``x * mask``                         ``x * mask / (1 - p)`` (inverted)
evaluation     ``x * (1 - p)``                      ``x``
the draw       ``np.random.rand(*x.shape) > p``     its own generator
=============  ===================================  ===================================

Two right ports draw two masks, so during a check the NumPy side's draw drives
the torch side's (``compare.port.draws``): ``nn.Dropout``, ``F.dropout``,
``torch.rand``/``bernoulli`` in a module of the port's own all get the NumPy
mask, at every pass and every training step. What is compared is then the
layer's arithmetic, and:

* trap ``inverted_dropout``: the torch output is ``1 / (1 - p)`` times the
  book's, in training and in evaluation: ``nn.Dropout`` is inverted, the
  book's dropout is not;
* trap ``dropout_keep_prob``: cs231n's dropout is inverted too, but its ``p`` is
  the probability of *keeping* a unit (``x * mask / p``, ``mask = rand < p``);
  a port that hands it to ``nn.Dropout(p=p)``, which takes the probability of
  dropping, computes ``x * mask / (1 - p)`` on the shared mask: it fits when
  torch's ``p`` equals the NumPy keep probability (a cs231n layer's
  ``keep_prob``, its ``dropout_param['p']``);
* trap ``mode``: the port computes the other mode's output.

The keep probability a NumPy dropout drew its mask with is the tape's (the
threshold of ``rand(...) < keep_prob``, the ``p`` of ``binomial(1, p, size)``)
where the layer names none. A dropout drawn inline, in no layer of its own
(the deeplearning.ai course's ``D1 = rand(n_h, m) < keep_prob``), has no
layer row to test a trap on: ``pass_traps`` reruns the port's whole pass
with its replayed dropouts scaled as the bug's fix would scale them, and
names the bug when that reproduces the NumPy loss and gradients.
"""
import numpy as np

from .base import LayerKind, attribute, other_mode_trap
from .written import CannotWrite, Written, functional, number, trap

BOOK_DROPOUT = '''class BookDropout(nn.Module):
    """The book's dropout, not inverted: training x * (rand > p), unscaled; evaluation x * (1 - p)."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.training:
            return x * (torch.rand(x.shape, dtype=x.dtype, device=x.device) > self.p)
        return x * (1.0 - self.p)

    def extra_repr(self):
        return f"p={self.p}"
'''


def kept_scale(x, y):
    """What the layer multiplied its kept units by on a training pass (1: not inverted,
    1 / keep: inverted); None where the pass kept none it can tell."""
    if x is None or y is None or np.shape(x) != np.shape(y):
        return None
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    kept = (y != 0) & (np.abs(x) > 1e-12)
    return float(np.median(y[kept] / x[kept])) if kept.any() else None


def drop_probability(numpy_layer, torch_module):
    p = attribute(torch_module, "p")
    if p is None:
        p = attribute(numpy_layer, "dropout_ratio", "dropout_ration", "p")
    return None if p is None else float(p)


class Dropout(LayerKind):
    def write(self, seen):
        scale = kept_scale(seen.input, seen.output)
        if scale is None:
            raise CannotWrite("its training pass kept no unit to read its scaling off")
        if np.isclose(scale, 1.0, rtol=1e-12):
            p = attribute(seen.layer, "dropout_ratio", "dropout_ration", "p")
            if p is None:
                raise CannotWrite("it does not scale its kept units and names no drop probability")
            if float(p) == 0:  # drops nothing: inverted or not, the identity in both modes
                return functional(["x = F.dropout(x, p=0.0, training=self.training)"]) \
                    if seen.functional else Written("nn.Dropout(p=0.0)")
            if seen.functional:
                p = number(p)
                return functional(
                    ["if self.training:  # the NumPy dropout, not inverted",
                     f"    x = x * (torch.rand(x.shape, dtype=x.dtype, device=x.device) > {p})",
                     "else:", f"    x = x * (1 - {p})"],
                    conventions=[("the NumPy dropout is not inverted (training x * mask, evaluation "
                                  "x * (1 - p)); F.dropout is: the NumPy dropout written out",
                                  trap("inverted_dropout"))])
            return Written(f"BookDropout({number(p)})", helpers={"BookDropout": BOOK_DROPOUT},
                           conventions=[("the NumPy dropout is not inverted (training x * mask, "
                                         "evaluation x * (1 - p)); nn.Dropout is: BookDropout, "
                                         "the NumPy dropout as a module", trap("inverted_dropout"))])
        keep = 1.0 / scale  # inverted: the kept units are scaled by 1 / keep
        p = attribute(seen.layer, "dropout_ratio", "dropout_ration", "p")
        if p is not None and 0 <= float(p) < 1 and np.isclose(scale, 1 / (1 - float(p)), rtol=1e-6):
            keep = 1 - float(p)  # the layer's own p, where float32's scale only rounds it
        keep_text = [(f"the NumPy dropout keeps units with probability {number(keep)}; "
                      f"{'F.dropout' if seen.functional else 'nn.Dropout'}'s p is the probability of "
                      f"dropping one: p = 1 - keep", trap("dropout_keep_prob"))]
        if seen.functional:
            return functional([f"x = F.dropout(x, p={number(1 - keep)}, training=self.training)"],
                              conventions=keep_text)
        return Written(f"nn.Dropout(p={number(1 - keep)})", conventions=keep_text)

    def settings(self, numpy_layer, torch_module):
        a = attribute(numpy_layer, "dropout_ratio", "dropout_ration")
        b = attribute(torch_module, "p")
        if a is not None and b is not None and not np.isclose(float(a), float(b)):
            return [("p (drop probability)", float(a), float(b))]
        return []

    def traps(self, site):
        p = drop_probability(site.numpy_layer, site.torch_module)
        found = []
        if p is not None and 0 < p < 1 and site.expected is not None:
            factor = 1 / (1 - p)
            if site.close(site.expected * factor, site.actual):
                found.append({"code": "inverted_dropout", "p": p, "factor": factor, "mode": site.mode,
                              "text": f"{site.torch_record.key}'s output is {factor:g} x "
                                      f"{site.numpy_record.key}'s in {site.mode} mode (1 / (1 - p), "
                                      f"p = {p:g}): torch's dropout is inverted (training x * mask / "
                                      f"(1 - p), evaluation x), the book's is not (training x * mask, "
                                      f"evaluation x * (1 - p)); port the book's dropout as a module "
                                      f"of its own (x * mask in training, x * (1 - p) in eval), or "
                                      f"make the NumPy side inverted"})
        return found + keep_prob_trap(site) + other_mode_trap(site, "dropout")


def keep_prob_trap(site):
    keep = attribute(site.numpy_layer, "keep_prob")
    if keep is None and site.tape is not None:
        keep = site.tape.keep_by_key.get(site.numpy_record.key)
    if keep is None and site.tape is not None and site.numpy_layer is None:
        # a dropout drawn inline, seen from inside: its keep probability is the one its
        # masks were drawn with, where every mask of the pass was drawn with one
        drawn = {k for k in site.tape.keeps if k is not None}
        keep = drawn.pop() if len(drawn) == 1 else None
    p = attribute(site.torch_module, "p")
    if keep is None or p is None or not 0 < float(p) < 1 or site.expected is None:
        return []
    keep, p = float(keep), float(p)
    if not np.isclose(keep, p) or not site.close(site.expected * keep / (1 - p), site.actual):
        return []
    return [{"code": "dropout_keep_prob", "keep": keep, "p": p, "mode": site.mode,
             "text": f"{site.torch_record.key} is nn.Dropout(p={p:g}) where {site.numpy_record.key} "
                     f"keeps units with probability {keep:g}: cs231n's dropout_param['p'] is the "
                     f"probability of KEEPING a unit (x * mask / p), torch's p the probability of "
                     f"DROPPING one (x * mask / (1 - p)); on the shared mask the port scales the "
                     f"kept units by {1 / (1 - p):.6g} instead of {1 / keep:.6g}, and on its own "
                     f"draw it would drop {p:g} of them instead of {1 - keep:g}: give the port "
                     f"nn.Dropout(p={1 - keep:g}), p = 1 - keep"}]


def pass_traps(tape, rerun, reproduces):
    """Dropout bugs tested on the port's whole pass, for dropout drawn inline.

    ``rerun()``: the port's loss and gradients on the shared draw, as the tape's
    ``dropout_scale`` scales its dropouts; ``reproduces(loss, grads)``: they match the
    NumPy side's. A hypothesis is named only where its fix, applied, makes them match."""
    if tape is None or not tape.masks:
        return []
    found = []
    for code, scale in (("dropout_keep_prob", lambda p, keep: 1 / keep if _swapped(p, keep) else 1 / (1 - p)),
                        ("inverted_dropout", lambda p, keep: 1.0)):
        seen = []

        def rule(p, keep, _scale=scale):
            seen.append((p, keep))
            return _scale(p, keep)
        tape.dropout_scale = rule
        try:
            loss, grads = rerun()
        except Exception:  # a pass that cannot be rerun so says nothing
            continue
        finally:
            tape.dropout_scale = None
        if not seen or (code == "dropout_keep_prob" and not any(_swapped(p, k) for p, k in seen)):
            continue
        if reproduces(loss, grads):
            found.append(_pass_text(code, seen))
    return found


def _swapped(p, keep):
    return keep is not None and 0 < p < 1 and np.isclose(p, keep) and not np.isclose(p, 0.5)


def _pass_text(code, seen):
    ps = ", ".join(dict.fromkeys(f"{p:g}" for p, _ in seen))
    if code == "dropout_keep_prob":
        keep = next(k for p, k in seen if _swapped(p, k))
        return {"code": code, "keep": keep, "p": keep,
                "text": f"the port's dropout is nn.Dropout(p={keep:g}) / F.dropout(p={keep:g}) where "
                        f"the NumPy mask keeps units with probability {keep:g}: torch's p is the "
                        f"probability of DROPPING a unit; on the shared mask the port scales the kept "
                        f"units by {1 / (1 - keep):.6g} instead of {1 / keep:.6g}, and with that scale "
                        f"the port reproduces the NumPy loss and gradients: give it "
                        f"nn.Dropout(p={1 - keep:g}), p = 1 - keep_prob"}
    return {"code": code, "p": [p for p, _ in seen][0],
            "text": f"the port's dropout (p = {ps}) is inverted, x * mask / (1 - p), and the NumPy "
                    f"dropout is not (x * mask): without the 1 / (1 - p) the port reproduces the "
                    f"NumPy loss and gradients; port the NumPy dropout as it is (x * mask), or make "
                    f"the NumPy side divide by its keep probability"}


def is_dropout_record(record):
    return KIND.is_numpy(record.kind)


KIND = Dropout("dropout", numpy_names=("Dropout", "LayerDropout"),
               torch_modules=("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"),
               torch_functions=("dropout",), has_modes=True, draws=True)
# the book's second volume: inverted dropout on (N, T, D), a fresh mask per element and step
TIME_KIND = Dropout("time_dropout", numpy_names=("TimeDropout",), has_modes=True, draws=True)
