"""The order in which a NumPy model's forward pass reads its parameters out of ``params``.

A model without layer objects (``h = x @ self.params["W1"] + self.params["b1"]``) says
nothing of which array serves which layer but the order it reads them in: one pass in
evaluation mode, with every reference to the ``params`` dict (the model's, an adapter's,
the net inside it) swapped for one that notes each name read, then put back. The
running statistics and NumPy's random state are left as they were.
"""
import numpy as np


class _Reading(dict):
    def __init__(self, params, seen):
        super().__init__(params)
        self.seen = seen

    def _note(self, key):
        if key not in self.seen:
            self.seen.append(key)

    def __getitem__(self, key):
        self._note(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        self._note(key)
        return dict.get(self, key, default)


def _holders(root, target, depth=3):
    """``[(object, attribute)]`` whose attribute is ``target``, within ``depth`` attribute
    steps of ``root``."""
    out, seen, level = [], set(), [root]
    for _ in range(depth):
        following = []
        for obj in level:
            if id(obj) in seen or not hasattr(obj, "__dict__"):
                continue
            seen.add(id(obj))
            for name, value in vars(obj).items():
                if value is target:
                    out.append((obj, name))
                elif hasattr(value, "__dict__") and not isinstance(value, (type, np.ndarray)):
                    following.append(value)
        level = following
    return out


def read_order(side, x, t):
    """The parameter names in the order ``side``'s forward pass first reads them, the
    names it never reads after them; None when the pass reads none or cannot run."""
    params, seen = side.params, []
    holders = _holders(side.model, params)
    if not holders:
        return None
    reading = _Reading(params, seen)
    buffers, state = side.buffers(), np.random.get_state()
    try:
        for obj, name in holders:  # in the instance's own dict: no __setattr__ of the user's runs
            vars(obj)[name] = reading
        if side.has_predict:
            side.model.predict(x)
        else:
            side.model.loss(x, t)
    except Exception:  # a pass that cannot run here tells no order
        return None
    finally:
        for obj, name in holders:
            vars(obj)[name] = params
        side.restore_buffers(buffers)
        np.random.set_state(state)
    read = [k for k in seen if k in params]
    return read + [k for k in params if k not in read] if read else None
