"""One random draw for both sides: what the NumPy side draws drives the torch side.

A dropout layer draws a mask on every training pass. Two right ports draw
from two random streams, so their outputs never agree and a check of their
arithmetic could never pass. So the draw is shared:

* the first NumPy pass on a batch is *recorded*: ``numpy.random``'s uniform
  and binomial draws (``rand``, ``random``, ``random_sample``, ``uniform``,
  ``binomial``) are kept in order, and the masks of the NumPy dropout layers
  are read from their records (``keep = output != 0``);
* every later pass on that batch, on either side, *replays* them: the NumPy
  model's ``loss`` and ``gradient`` (each runs its own forward pass, and the
  numerical check runs hundreds), and the torch port, through a
  ``TorchFunctionMode`` that answers ``torch.rand``/``rand_like`` with the
  NumPy uniforms and ``F.dropout``/``torch.bernoulli``/``Tensor.bernoulli_``
  with the NumPy keep masks, whatever the port calls.

``F.dropout`` replayed keeps torch's own arithmetic, ``x * mask / (1 - p)``
(inverted dropout): a port with ``nn.Dropout`` against the book's
non-inverted dropout still differs by ``1 / (1 - p)``, which is its bug, not
the draw's. A draw the tape cannot answer (another shape, more draws than
were recorded) is counted in ``misses`` and drawn fresh: the comparison of
that layer cannot judge, and the report says so with the count.
"""
from contextlib import contextmanager

import numpy as np

NUMPY_DRAWS = ("rand", "random", "random_sample", "uniform", "binomial")


class DrawTape:
    """The draws of one NumPy pass, for the passes after it."""

    def __init__(self):
        self.recording = True
        self.numpy = []  # (name, result array) in order of drawing
        self.masks = []  # keep masks of the NumPy dropout layers, in order of execution
        self.misses = 0

    def __bool__(self):
        return bool(self.numpy or self.masks)

    def restart(self):
        """A new batch: the next NumPy pass records afresh."""
        self.recording, self.numpy, self.masks = True, [], []

    def keep_masks(self, records, is_dropout, probability=None):
        """Read the keep masks off the NumPy layers of the recorded pass that ``is_dropout``;
        ``probability(record)``: the layer's drop probability where it is known."""
        uniforms = [u for u in self.uniforms() if isinstance(u, np.ndarray)]
        self.masks = [_keep_mask(r, uniforms, probability(r) if probability else None)
                      for r in records if is_dropout(r) and r.output is not None]

    @contextmanager
    def numpy_pass(self):
        """Record (the first pass) or replay ``numpy.random``'s draws."""
        saved = {name: getattr(np.random, name) for name in NUMPY_DRAWS}
        cursor = [0]

        def wrap(name, draw):
            def drawn(*args, **kwargs):
                if self.recording:
                    out = draw(*args, **kwargs)
                    self.numpy.append((name, np.array(out, copy=True)))
                    return out
                k = cursor[0]
                cursor[0] += 1
                if k < len(self.numpy) and self.numpy[k][0] == name:
                    kept = self.numpy[k][1]
                    shape = _requested_shape(name, args, kwargs)
                    if shape is None or tuple(np.shape(kept)) == shape:
                        return kept.copy() if isinstance(kept, np.ndarray) and kept.ndim else kept[()]
                self.misses += 1
                return draw(*args, **kwargs)
            return drawn

        for name, draw in saved.items():
            setattr(np.random, name, wrap(name, draw))
        try:
            yield self
        finally:
            for name, draw in saved.items():
                setattr(np.random, name, draw)
            if self.numpy:  # a pass that drew nothing (evaluation mode) leaves it recording
                self.recording = False

    def uniforms(self):
        return [a for name, a in self.numpy if name in ("rand", "random", "random_sample", "uniform")]

    @contextmanager
    def torch_pass(self):
        """Answer the port's random draws with the NumPy side's, for one pass."""
        if not self:
            yield self
            return
        mode = _torch_replay(self)
        with mode:
            yield self


@contextmanager
def seeded(seed):
    """Both random streams seeded for one check, and put back after it: a model that draws
    from ``numpy.random`` (the book's dropout) draws the same on every run of the check,
    and the user's own streams are left where they were."""
    import torch
    state = np.random.get_state()
    np.random.seed(int(seed) % 2 ** 32)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            yield
    finally:
        np.random.set_state(state)


def seeded_by_its_seed(fn):
    """``fn`` (a check taking ``seed=``) run inside ``seeded(seed)``."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with seeded(kwargs.get("seed", 0)):
            return fn(*args, **kwargs)
    return wrapper


def _keep_mask(record, uniforms=(), p=None):
    """The layer's keep mask: the one it kept (the book's ``self.mask``); else read off its
    output where its input is not 0, and completed from the uniforms it was drawn from: the
    rule ``u > p`` (the book's) or ``u < 1 - p`` (a keep probability's), ``p`` the layer's
    drop probability, whichever fits every element seen, or else a threshold that does;
    else where the input is 0, taken as kept (the output is 0 either way; only the
    gradient could tell)."""
    if record.mask is not None:
        return record.mask.copy()
    out = np.asarray(record.output)
    seen = out != 0
    if record.input is None or np.shape(record.input) != out.shape:
        return seen
    known = np.asarray(record.input) != 0
    for u in uniforms:
        if u.shape != out.shape or not known.any():
            continue
        if p is not None:
            for rule in (u > p, u < 1 - p, u < p, u > 1 - p):
                if np.array_equal(rule[known], seen[known]):
                    return rule
        kept, dropped = u[known & seen], u[known & ~seen]
        if kept.size and (not dropped.size or dropped.max() < kept.min()):
            return u > (dropped.max() if dropped.size else kept.min() - 1)  # keep = u > p
        if kept.size and (not dropped.size or kept.max() < dropped.min()):
            return u < (dropped.min() if dropped.size else kept.max() + 1)  # keep = u < p_keep
    return seen | ~known


def _requested_shape(name, args, kwargs):
    if name == "rand":
        return tuple(int(a) for a in args)
    size = kwargs.get("size")
    if size is None:
        position = {"random": 0, "random_sample": 0, "uniform": 2, "binomial": 2}[name]
        size = args[position] if len(args) > position else None
    if size is None:
        return ()
    return (int(size),) if np.isscalar(size) else tuple(int(s) for s in size)


def _torch_replay(tape):
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    dropout_fns = {F.dropout, torch.dropout, torch.nn.functional.dropout}
    uniform_fns = {torch.rand, torch.rand_like}
    mask_fns = {torch.bernoulli, torch.Tensor.bernoulli_, torch.Tensor.bernoulli}

    class Replay(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.uniforms, self.masks = list(tape.uniforms()), list(tape.masks)

        @staticmethod
        def _next(queue, shape):
            # strictly in order: a draw of another shape means the two passes differ here
            if queue and tuple(np.shape(queue[0])) == tuple(shape):
                return queue.pop(0)
            return None

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in dropout_fns:
                x = args[0]
                p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
                training = kwargs.get("training", kwargs.get("train", args[2] if len(args) > 2 else True))
                if training and p > 0:
                    keep = self._next(self.masks, x.shape)
                    if keep is not None:
                        m = torch.from_numpy(keep).to(device=x.device, dtype=x.dtype)
                        return x * m / (1 - p)
                    tape.misses += 1
            elif func in uniform_fns:
                shape = tuple(args[0].shape) if func is torch.rand_like else _torch_shape(args, kwargs)
                u = self._next(self.uniforms, shape)
                if u is not None:
                    ref = args[0] if func is torch.rand_like else None
                    dtype = kwargs.get("dtype") or (ref.dtype if ref is not None else torch.get_default_dtype())
                    device = kwargs.get("device") or (ref.device if ref is not None else None)
                    return torch.from_numpy(np.asarray(u)).to(device=device, dtype=dtype)
                tape.misses += 1
            elif func in mask_fns:
                ref = args[0]
                keep = self._next(self.masks, ref.shape)
                if keep is not None:
                    m = torch.from_numpy(keep).to(device=ref.device, dtype=ref.dtype)
                    if func is torch.Tensor.bernoulli_:
                        with torch.no_grad():
                            ref.copy_(m)
                        return ref
                    return m
                tape.misses += 1
            return func(*args, **kwargs)

    return Replay()


def _torch_shape(args, kwargs):
    if "size" in kwargs:
        size = kwargs["size"]
    elif len(args) == 1 and isinstance(args[0], (tuple, list)):
        size = args[0]
    else:
        size = [a for a in args if isinstance(a, int)]
    return tuple(int(s) for s in size)
