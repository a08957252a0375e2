"""Integer draws for both sides: ``np.random.choice`` answering ``torch.multinomial`` and
``torch.randint``.

The book's word2vec draws each row's negative samples with ``np.random.choice(V,
size=k, replace=False, p=p)`` (its ``UnigramSampler``), one call per row, or once for
the batch (``size=(N, k)``); a torch port draws them with ``torch.multinomial(p, k)``
(one row of probabilities, or ``N`` rows at once) or, without ``p``, ``torch.randint``.
The tape keeps the NumPy draws in order; a torch draw is answered with the next whole
NumPy values, as many as it draws, read in row-major order across the NumPy draws (``N``
draws of ``k`` answer one ``(N, k)`` call, one ``(N, k)`` draw answers ``N`` calls of
``k``), where every value is one the torch call could draw:
an index whose probability is not 0 in its row (``multinomial``), within ``[low, high)``
(``randint``). Anything else is not answered (drawn fresh and counted as missed): the
two passes differ there.
"""
import numpy as np

INTEGER_DRAWS = ("choice",)


class Samples:
    """The NumPy integer draws of one pass, handed out in order: one sequence of values, so
    that one ``(N, k)`` draw answers ``N`` calls of ``k`` and ``N`` draws of ``k`` one call."""

    def __init__(self, draws):
        flat = [np.asarray(d).reshape(-1) for d in draws]
        self.values = np.concatenate(flat) if flat else np.zeros(0, dtype=np.int64)
        self.cursor = 0

    def _take(self, count):
        """The next ``count`` values, or None (nothing taken)."""
        if self.cursor + count > self.values.size:
            return None
        self.cursor += count
        return self.values[self.cursor - count:self.cursor]

    def multinomial(self, probs, num_samples):
        """The answer to ``torch.multinomial(probs, num_samples)`` (a NumPy array of the
        call's shape), or None."""
        p = np.asarray(probs, dtype=np.float64)
        shape = (num_samples,) if p.ndim == 1 else (p.shape[0], num_samples)
        saved = self.cursor
        values = self._take(int(np.prod(shape)))
        if values is None:
            return None
        values = values.reshape(shape)
        rows = p.reshape(-1, p.shape[-1])
        picked = values.reshape(rows.shape[0], -1)
        if np.any(picked < 0) or np.any(picked >= rows.shape[1]) or \
                np.any(np.take_along_axis(rows, picked, axis=1) <= 0):
            self.cursor = saved
            return None
        return values

    def randint(self, low, high, shape):
        saved = self.cursor
        values = self._take(int(np.prod(shape)) if shape else 1)
        if values is None:
            return None
        if np.any(values < low) or np.any(values >= high):
            self.cursor = saved
            return None
        return values.reshape(shape)


def randint_bounds(args, kwargs):
    """``(low, high, shape)`` of a ``torch.randint`` call, or None."""
    ints = [a for a in args if isinstance(a, int)]
    size = kwargs.get("size", next((a for a in args if isinstance(a, (tuple, list))), None))
    if size is None:
        return None
    if "high" in kwargs:
        low, high = kwargs.get("low", ints[0] if ints else 0), kwargs["high"]
    elif len(ints) >= 2:
        low, high = ints[0], ints[1]
    elif len(ints) == 1:
        low, high = kwargs.get("low", 0), ints[0]
    else:
        return None
    return int(low), int(high), tuple(int(s) for s in size)
