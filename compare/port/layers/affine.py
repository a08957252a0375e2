"""Affine: the book's ``Affine`` (``x @ W + b``, ``W`` (in, out)) and ``nn.Linear`` (``weight``
(out, in): the transpose, paired as such), ``F.linear``, ``x @ W + b``.

The book's ``Affine`` takes a 4-D input and flattens it itself, in (C, H, W)
order (``x.reshape(N, -1)``); a port that flattens channels-last
(``x.permute(0, 2, 3, 1).reshape(N, -1)``, the TensorFlow habit) feeds the
same numbers in another order. Trap ``flatten_order``: the torch layer's
input is a permutation of the NumPy layer's, flattened.
"""
import itertools

import numpy as np

from .base import LayerKind, summed_scale

AXES = {3: "CHW", 4: "CHW", 5: "CDHW"}


class Affine(LayerKind):
    def gradient_scale(self, record, layer, value):
        g, x = record.grad_output, record.input
        if g is None or np.ndim(g) != 2:
            return None
        inputs = None if x is None else int(np.size(x) // x.shape[0])
        # a bias (out,), or held as a row or column (1, out): its size, where a weight's differs
        if np.ndim(value) == 1 or (np.size(value) == g.shape[1] and inputs not in (None, 1)):
            return summed_scale(g, (0,))  # db = sum over the batch of dout
        if x is not None and np.ndim(value) == 2:  # dW = x.T @ dout
            x2 = np.abs(np.asarray(x, np.float64).reshape(x.shape[0], -1))
            ga = np.abs(np.asarray(g, np.float64))
            return float(x.shape[0] * x2.max() * ga.max() + (x2.T @ ga).max())
        return None

    def traps(self, site):
        x_np, x_t = site.numpy_record.input, site.torch_record.input
        if x_np is None or x_t is None or np.ndim(x_np) < 3 or np.ndim(x_t) != 2 \
                or np.size(x_np) != np.size(x_t):
            return []
        n = x_np.shape[0]
        if site.close(x_np.reshape(n, -1), x_t):
            return []
        letters = AXES.get(x_np.ndim, "".join(f"a{i}" for i in range(1, x_np.ndim)))
        for perm in itertools.permutations(range(1, x_np.ndim)):
            if list(perm) == sorted(perm):
                continue
            if site.close(np.transpose(x_np, (0, *perm)).reshape(n, -1), x_t):
                order = ", ".join(letters[p - 1] for p in perm)
                permute = ", ".join(str(p) for p in (0, *perm))
                return [{"code": "flatten_order", "permutation": [0, *perm],
                         "text": f"{site.torch_record.key} receives its input flattened in the order "
                                 f"({order}), the NumPy {site.numpy_record.key} in "
                                 f"({', '.join(letters)}): the port permutes before it flattens "
                                 f"(permute({permute})); flatten the (N, {', '.join(letters)}) "
                                 f"tensor as it is (x.reshape(N, -1) or nn.Flatten())"}]
        return []


KIND = Affine("affine", numpy_names=("Affine", "Dense", "Linear", "FullyConnected"),
              torch_modules=("Linear", "LazyLinear"), torch_functions=("linear", "matmul", "addmm"))
