"""Arrays whose shapes differ only by axes of length 1 hold the same values.

A cs231n batch norm that keeps ``keepdims=True`` returns ``dgamma`` ``(1, D)`` for a
``gamma`` ``(D,)`` and keeps its running statistics ``(1, D)``; a NumPy ConvNet keeps its
biases ``(1, H)`` and returns ``(H,)`` gradients; a one-output head gives ``(N, 1)``
where the other side gives ``(N,)``. Dropping the axes of length 1 keeps every element
in its order, so such arrays are compared, paired and copied as one. Shapes whose
other axes differ, ``(3, 4)`` against ``(4, 3)``, are never equated: that is a transpose.
"""
import numpy as np


def squeezed(shape):
    return tuple(int(d) for d in shape if d != 1)


def same_values(shape_a, shape_b):
    """The two shapes hold the same elements in the same order (equal once the axes of
    length 1 are dropped)."""
    a, b = tuple(shape_a), tuple(shape_b)
    return a == b or (int(np.prod(a)) == int(np.prod(b)) and squeezed(a) == squeezed(b))


def as_shape(value, shape):
    """``value`` in ``shape`` where it holds the same values; as it is otherwise (a shape
    that truly differs is left for the comparison to report)."""
    if value is None:
        return None
    shape = tuple(shape)
    if np.shape(value) == shape or not same_values(np.shape(value), shape):
        return value
    return value.reshape(shape) if hasattr(value, "reshape") else np.reshape(value, shape)
