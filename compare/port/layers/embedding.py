"""Embedding: the book's second volume's ``Embedding`` / ``TimeEmbedding`` (``W[idx]``, ``W``
(vocabulary, D)) against ``nn.Embedding`` (``weight`` (vocabulary, D): the same layout).

The check pairs an embedding by its use (a ``lookup``: ``reference/uses.py``,
``torch_uses.py``); this file holds its writer.
"""
import numpy as np

from .base import LayerKind
from .written import CannotWrite, Load, Written, functional


class Embedding(LayerKind):
    def write(self, seen):
        name, w = seen.param("W", "weight", "weights")
        if w is None or np.ndim(w) != 2:
            raise CannotWrite("it holds no 2-D weight W (vocabulary, D) among the NumPy parameters")
        if seen.functional:
            return functional(["x = F.embedding(x, {p}weight)"],
                              [("weight", f"torch.randn({w.shape[0]}, {w.shape[1]})")],
                              loads=[Load("weight", name)])
        return Written(f"nn.Embedding({w.shape[0]}, {w.shape[1]})",
                       [Load("weight", name)])


KIND = Embedding("embedding", ("TimeEmbedding", "Embedding"), torch_modules=("Embedding",),
                 torch_functions=("embedding",))
