"""The roles a parameter plays in the computation that first uses it, the same names on
both sides (``reference/uses.py``, ``torch_uses.py``): a product's ``matrix``, an added
``shift``, a multiplied ``scale``, a ``lookup`` (rows picked by integer ids: ``W[idx]``,
``nn.Embedding``), or ``other``."""
MATRIX, SHIFT, SCALE, LOOKUP, OTHER = "matrix", "shift", "scale", "lookup", "other"


def flat(values):
    """A call's arguments with lists and tuples opened, at any depth."""
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from flat(value)
        else:
            yield value
