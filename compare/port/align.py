"""Pair the layers of the two sides in order of execution.

The NumPy model lists its layers; the torch port runs its leaf modules, and
may do part of the work in functional calls that no hook sees (``F.relu``
instead of ``nn.ReLU``), so the two sequences need not have the same length.
They are aligned as two strings are: an order-keeping matching that
maximises a score, where a NumPy record and a torch record can only match
when their outputs have the same shape (axes of length 1 aside:
``compare.port.unit_axes``), and score more when their values agree and
when their kinds are twins (``Affine`` and ``Linear``). Two layers on
independent branches may run in the other order in the port (the captions
embedded before the image features are projected to ``h0``): a record left over
on each side, of twin kinds, whose outputs agree, and each the other's only such
match, are paired across the order (``_crossed``). Records left over are
reported as unpaired, not as failures.
"""
import re

import numpy as np

from .unit_axes import as_shape, same_values

TWINS = {  # the book's layer names and their torch.nn counterparts
    "affine": "linear", "convolution": "conv", "pooling": "pool",
    "batchnormalization": "batchnorm", "relu": "relu", "sigmoid": "sigmoid",
    "tanh": "tanh", "dropout": "dropout", "softmax": "softmax",
}


def _norm(name):
    return re.sub(r"[^a-z]", "", name.lower())


def kinds_are_twins(numpy_kind, torch_kind):
    a, b = _norm(numpy_kind), _norm(torch_kind)
    if not a or not b:
        return False
    if a in b or b in a:
        return True
    return any(a.startswith(k) and v in b for k, v in TWINS.items())


def values_agree(a, b, rtol=1e-6):
    """Close enough to be the same computation (loose: this only pairs, it does not judge)."""
    if a is None or b is None or not same_values(a.shape, b.shape):
        return False
    b = as_shape(b, a.shape)
    scale = max(float(np.max(np.abs(a))) if a.size else 0.0, 1e-30)
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.abs(a.astype(np.float64) - b.astype(np.float64)) <= rtol * scale))


def _shapes_pair(a, b):
    return a is not None and b is not None and same_values(a, b)


def align(np_records, torch_records):
    """``(pairs, numpy_left, torch_left)``: index pairs ``(i, j)`` in execution order and
    the indices left unpaired on each side."""
    n, m = len(np_records), len(torch_records)
    score = np.zeros((n + 1, m + 1))
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best = max(score[i + 1, j], score[i, j + 1])
            a, b = np_records[i], torch_records[j]
            if _shapes_pair(a.shape, b.shape):
                s = 1.0 + 2.0 * values_agree(a.output, b.output) + 0.5 * kinds_are_twins(a.kind, b.kind)
                best = max(best, s + score[i + 1, j + 1])
            score[i, j] = best
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        a, b = np_records[i], torch_records[j]
        if _shapes_pair(a.shape, b.shape):
            s = 1.0 + 2.0 * values_agree(a.output, b.output) + 0.5 * kinds_are_twins(a.kind, b.kind)
            if np.isclose(score[i, j], s + score[i + 1, j + 1]):
                pairs.append((i, j))
                i, j = i + 1, j + 1
                continue
        if np.isclose(score[i, j], score[i + 1, j]):
            i += 1
        else:
            j += 1
    paired_np = {p[0] for p in pairs}
    paired_t = {p[1] for p in pairs}
    pairs = sorted(pairs + _crossed(np_records, torch_records,
                                    [k for k in range(n) if k not in paired_np],
                                    [k for k in range(m) if k not in paired_t]))
    paired_np = {p[0] for p in pairs}
    paired_t = {p[1] for p in pairs}
    return (pairs, [k for k in range(n) if k not in paired_np],
            [k for k in range(m) if k not in paired_t])


def _crossed(np_records, torch_records, left_np, left_t):
    """Leftover records paired across the order: twin kinds, the same shape, outputs that
    agree, each the other's only such match. Values that agree are what pairs them, so a
    layer the port computes otherwise stays unpaired, as before."""
    def match(a, b):
        return (_shapes_pair(a.shape, b.shape) and kinds_are_twins(a.kind, b.kind)
                and values_agree(a.output, b.output))
    found = []
    for i in left_np:
        mine = [j for j in left_t if match(np_records[i], torch_records[j])]
        if len(mine) != 1:
            continue
        theirs = [k for k in left_np if match(np_records[k], torch_records[mine[0]])]
        if theirs == [i]:
            found.append((i, mine[0]))
    return found
