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
"""
import numpy as np

from .base import LayerKind, attribute, other_mode_trap


def drop_probability(numpy_layer, torch_module):
    p = attribute(torch_module, "p")
    if p is None:
        p = attribute(numpy_layer, "dropout_ratio", "dropout_ration", "p")
    return None if p is None else float(p)


class Dropout(LayerKind):
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


def is_dropout_record(record):
    return KIND.is_numpy(record.kind)


KIND = Dropout("dropout", numpy_names=("Dropout", "LayerDropout"),
               torch_modules=("Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"),
               torch_functions=("dropout",), has_modes=True, draws=True)
