"""The deep copy each side of a check works on, sharing what cannot be copied.

A model may hold what ``copy.deepcopy`` cannot copy: the module it computes with
(``self.lib = np``), a lock, an open file, a generator. None of these is state the
check changes: they are shared between the model and its copy, and what the check
does change (arrays, the plain containers and objects that hold them) is copied.
"""
import copy
import types

import numpy as np

_ATOMIC = (type(None), bool, int, float, complex, str, bytes, type, range, types.FunctionType,
           types.BuiltinFunctionType, types.ModuleType, np.ndarray, np.generic)


def deep_copy(obj, memo=None):
    """``copy.deepcopy(obj, memo)``; where that fails, again with every object that cannot
    be copied (or pickled) shared rather than copied."""
    memo = dict(memo or {})
    try:
        return copy.deepcopy(obj, dict(memo))
    except Exception:
        shared = dict(memo)
        for item in uncopyable(obj):
            shared.setdefault(id(item), item)
        return copy.deepcopy(obj, shared)


def _children(obj):
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return list(obj)
    if isinstance(obj, types.MethodType):
        return [obj.__self__]
    out = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    for klass in type(obj).__mro__:
        for slot in getattr(klass, "__slots__", ()):
            if isinstance(slot, str) and hasattr(obj, slot):
                out.append(getattr(obj, slot))
    return out


def _copyable(obj):
    cls = type(obj)
    if cls in getattr(copy, "_deepcopy_dispatch", {}) or hasattr(obj, "__deepcopy__"):
        return True
    try:
        obj.__reduce_ex__(4)
    except Exception:
        return False
    return True


def uncopyable(root):
    """The objects reachable from ``root`` that a deep copy should share: modules, and
    what cannot be reduced for copying (locks, files, generators, ...)."""
    found, seen, stack = [], set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType) or not (isinstance(obj, _ATOMIC) or _copyable(obj)):
            found.append(obj)
            continue
        if isinstance(obj, _ATOMIC):
            continue
        try:
            stack.extend(_children(obj))
        except Exception:  # an object that will not show its parts is copied as it copies
            continue
    return found
