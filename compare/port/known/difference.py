"""A known difference: two right implementations that part by an amount known in advance.

Such a difference is no failure and no reason to widen a tolerance: it is
named (``code``), sized through the port itself, said in words, and added
to the expected (NumPy) value of each row it applies to before comparing,
shown in the row's allowance column as ``+label``. The report lists each
one applied (``{"code", "text", "size"}``).
"""
from dataclasses import dataclass, field

import numpy as np


@dataclass
class KnownDifference:
    """``rows``: where it applies (a row's place: ``"loss"``, ``("layer", j)`` for the
    gradient flowing into the port's ``j``-th recorded layer, ``("param", name)``) -> the
    array added to the expected value there. ``what``: the same in words."""
    code: str
    label: str
    what: str
    rows: dict
    text: str
    size: float

    def to_dict(self):
        return {"code": self.code, "text": self.text, "size": self.size}


@dataclass
class Known:
    """The known differences a phase found, and for the diagnosis the difference each
    would make at a row (``hints``: place -> ``{code: array}``), applied there or not: a
    mismatch that equals it is the same difference the classification missed."""
    differences: list = field(default_factory=list)
    hints: dict = field(default_factory=dict)

    def __add__(self, other):
        hints = {k: dict(v) for k, v in self.hints.items()}
        for where, h in other.hints.items():
            hints.setdefault(where, {}).update(h)
        return Known(self.differences + other.differences, hints)

    def shift(self, where):
        """``(array to add to the expected value, its name)`` at ``where``, or ``(None, None)``."""
        applied = [(d.rows[where], d.label) for d in self.differences if d.rows.get(where) is not None]
        if not applied:
            return None, None
        total = applied[0][0]
        for value, _ in applied[1:]:
            total = np.asarray(total, dtype=np.float64) + np.asarray(value, dtype=np.float64)
        return total, " + ".join(label for _, label in applied)

    def hint(self, where):
        """``{code: array}`` for the diagnosis at ``where``, or None."""
        return self.hints.get(where) or None

    def note(self, report):
        """Each difference applied, in the report's ``known`` list once."""
        for d in self.differences:
            entry = d.to_dict()
            if not any(k["text"] == entry["text"] for k in report.known):
                report.known.append(entry)
