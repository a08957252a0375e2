"""What a NumPy model's forward pass does with each parameter, in the order it first does it.

The order a dict lists its arrays in, or the order the code reads them out of it, says
nothing of which array serves which layer (hipsternet reads every ``gamma`` and ``beta``
before the first ``W``). What the pass computes with them does: one pass in evaluation
mode on the check's copy, each parameter array swapped, wherever the copy holds it (the
``params`` dict, a layer object's attribute, a list), for a view of it that notes the
first operation combining it with data:

* ``matrix``: a product (``x @ W``, ``np.dot``, ``x.dot(W)``, ``einsum``);
* ``shift``: an addition or subtraction (``+ b``, ``+ beta``);
* ``scale``: a multiplication or division (``gamma * x_hat``);
* ``other``: any other elementwise use.

An operation with nothing but parameters and numbers (a penalty ``0.5 * lam * np.sum(W * W)``)
is no use. Views (``W.T``, ``W.reshape``, ``W[i]``) are still the parameter. The arrays,
the running statistics and NumPy's random state are put back afterwards.
"""
from types import FunctionType, ModuleType

import numpy as np

from ..roles import LOOKUP, MATRIX, OTHER, SCALE, SHIFT, flat
ROLES_OF_UFUNCS = {"matmul": MATRIX, "add": SHIFT, "subtract": SHIFT, "multiply": SCALE,
                   "divide": SCALE, "true_divide": SCALE}
PRODUCTS = {"dot", "matmul", "inner", "tensordot", "einsum", "vdot", "convolve", "correlate"}
# functions that give the parameter back in another shape: still the parameter
SHAPINGS = {"reshape", "transpose", "squeeze", "expand_dims", "ravel", "atleast_1d",
            "atleast_2d", "ascontiguousarray", "copy", "swapaxes", "moveaxis", "broadcast_to"}


class _Watch:
    """One observed pass: the uses noted, first per parameter."""

    def __init__(self):
        self.uses = []
        self.seen = set()
        self.copying = False

    def note(self, arrays, role):
        names = [a._use_name for a in arrays if _named(a)]
        data = [a for a in arrays if isinstance(a, np.ndarray) and not _named(a) and a.size > 1]
        if not names or not data:
            return
        for name in names:
            if name not in self.seen:
                self.seen.add(name)
                self.uses.append((name, role))


def _named(value):
    return isinstance(value, _Watched) and value._use_name is not None


def _plain(value):
    if isinstance(value, _Watched):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


class _Watched(np.ndarray):
    _use_name = None
    _use_watch = None
    # above any other subclass: a product made by ndarray.dot comes out as this class
    __array_priority__ = 1e6

    def __array_finalize__(self, obj):
        name, watch = getattr(obj, "_use_name", None), getattr(obj, "_use_watch", None)
        self._use_watch = watch
        if name is None or watch is None:
            self._use_name = None
            return
        if self.base is None and not watch.copying:
            # a new array out of ndarray.dot (x.dot(W), W.dot(x)): the product, no view of W
            self._use_name = None
            watch.note([obj, np.empty(2)], MATRIX)
            return
        self._use_name = name

    # methods that may copy (a reshape of a transpose): what they give is still the parameter
    def copy(self, *args, **kwargs):
        return self._keeping(super().copy, *args, **kwargs)

    def astype(self, *args, **kwargs):
        return self._keeping(super().astype, *args, **kwargs)

    def reshape(self, *args, **kwargs):
        return self._keeping(super().reshape, *args, **kwargs)

    def flatten(self, *args, **kwargs):
        return self._keeping(super().flatten, *args, **kwargs)

    def ravel(self, *args, **kwargs):
        return self._keeping(super().ravel, *args, **kwargs)

    def _keeping(self, method, *args, **kwargs):
        watch = self._use_watch
        if watch is None:
            return method(*args, **kwargs)
        watch.copying = True
        try:
            return method(*args, **kwargs)
        finally:
            watch.copying = False

    def __getitem__(self, index):
        """Rows picked by integer ids (``W[idx]``, the book's ``Embedding``): a ``lookup``,
        whose result is data; any other index a view, still the parameter."""
        ids = [i for i in (index if isinstance(index, tuple) else (index,))
               if isinstance(i, np.ndarray) and np.issubdtype(i.dtype, np.integer)]
        if not ids or not _named(self):
            return super().__getitem__(index)
        self._use_watch.note([self, np.empty(2)], LOOKUP)
        return self.view(np.ndarray)[_plain(index)]

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        watch = next((a._use_watch for a in inputs if isinstance(a, _Watched) and a._use_watch), None)
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if watch is not None and method in ("__call__", "outer"):
            watch.note(inputs, ROLES_OF_UFUNCS.get(ufunc.__name__, OTHER))
        return result

    def __array_function__(self, func, types, args, kwargs):
        result = func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()})
        name = getattr(func, "__name__", "")
        first = args[0] if args else None
        if name in SHAPINGS and _named(first) and isinstance(result, np.ndarray):
            return _watched(result, first._use_name, first._use_watch)
        watch = next((a._use_watch for a in flat(list(args) + list(kwargs.values()))
                      if isinstance(a, _Watched) and a._use_watch), None)
        if watch is not None:
            watch.note(list(flat(list(args) + list(kwargs.values()))),
                       MATRIX if name in PRODUCTS else OTHER)
        return result


def _watched(array, name, watch):
    out = array.view(_Watched)
    out._use_name, out._use_watch = name, watch
    return out


def _holders(root, arrays, depth=6, limit=20000):
    """``[(container, key, array)]``: every dict, list and instance dictionary within
    ``depth`` steps of ``root`` that holds one of ``arrays``."""
    ids = {id(a): a for a in arrays}
    out, seen, level = [], set(), [root]
    for _ in range(depth):
        following = []
        for obj in level:
            if id(obj) in seen or len(seen) > limit:
                continue
            seen.add(id(obj))
            if isinstance(obj, dict):
                items, holder = list(obj.items()), obj
            elif isinstance(obj, list):
                items, holder = list(enumerate(obj)), obj
            elif isinstance(obj, tuple):
                items, holder = list(enumerate(obj)), None
            elif hasattr(obj, "__dict__") and not isinstance(obj, (type, ModuleType, FunctionType)):
                items, holder = list(vars(obj).items()), vars(obj)
            else:
                continue
            for key, value in items:
                if id(value) in ids and ids[id(value)] is value:
                    if holder is not None:
                        out.append((holder, key, value))
                elif not isinstance(value, (np.ndarray, str, bytes, int, float, type)):
                    following.append(value)
        level = following
    return out


def use_order(side, x, t):
    """``[(name, role)]`` in the order ``side``'s forward pass first computes with each
    parameter; None when the pass cannot run so observed."""
    params = dict(side.params)
    arrays = [v for v in params.values() if type(v) is np.ndarray]
    if len(arrays) != len(params):
        return None
    names = {id(v): k for k, v in params.items()}
    watch = _Watch()
    holders = _holders(side.model, arrays)
    buffers, state = side.buffers(), np.random.get_state()
    passes = ([side.model.predict] if side.has_predict else []) + \
        ([lambda x: side.model.loss(x, t)] if t is not None else [])
    try:
        for holder, key, array in holders:
            holder[key] = _watched(array, names[id(array)], watch)
        for run in passes:
            try:
                run(x)
                break
            except Exception:  # a pass that cannot run observed tells nothing: the next
                watch.uses.clear()
                watch.seen.clear()
        else:
            return None
    finally:
        for holder, key, array in holders:
            holder[key] = array
        side.restore_buffers(buffers)
        np.random.set_state(state)
    return watch.uses
