"""The roles a parameter plays in the computation that first uses it, the same names on
both sides (``reference/uses.py``, ``torch_uses.py``): a product's ``matrix``, an added
``shift``, a multiplied ``scale``, or ``other``."""
MATRIX, SHIFT, SCALE, OTHER = "matrix", "shift", "scale", "other"


def flat(values):
    """A call's arguments with lists and tuples opened, at any depth."""
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from flat(value)
        else:
            yield value
