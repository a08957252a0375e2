"""One random draw for both sides: what the NumPy side draws drives the torch side.

A dropout layer draws a mask on every training pass. Two right ports draw
from two random streams, so their outputs never agree and a check of their
arithmetic could never pass. So the draw is shared:

* the first NumPy pass on a batch is *recorded*: ``numpy.random``'s uniform
  and binomial draws (``rand``, ``random``, ``random_sample``, ``uniform``,
  ``binomial``) are kept in order, each with the keep mask made of it: the
  first comparison the model makes of a uniform draw (``D1 = rand(n_h, m) <
  keep_prob``, the book's ``rand(*x.shape) > p``), or a binomial draw of one
  trial itself (``binomial(1, 1 - rate, size)``, before any scaling). A mask
  is never read off a layer's output where that cannot tell (a ReLU's zeros
  are zero whether kept or dropped); only a draw the model made no mask of
  falls back to the output;
* the draws are kept in the port's layout: a features-first model is handed
  its batch transposed, so its 2-D draws are transposed for the port
  (``transpose``);
* every later pass on that batch, on either side, *replays* them: the NumPy
  model's ``loss`` and ``gradient`` (each runs its own forward pass, and the
  numerical check runs hundreds), and the torch port, through a
  ``TorchFunctionMode`` that answers ``torch.rand``/``rand_like`` with the
  NumPy uniforms and ``F.dropout``/``torch.bernoulli``/``Tensor.bernoulli_``
  with the NumPy keep masks, whatever the port calls.

``F.dropout`` replayed keeps torch's own arithmetic, ``x * mask / (1 - p)``
(inverted dropout), and so does the dropout a stacked ``nn.LSTM(num_layers=2,
dropout=p)`` draws between its layers (``stacked_dropout``): a port with
``nn.Dropout`` against the book's
non-inverted dropout still differs by ``1 / (1 - p)``, which is its bug, not
the draw's. The integer draws, ``np.random.choice`` (the book's word2vec's negative samples),
answer ``torch.multinomial`` and ``torch.randint`` in order (``draw_samples``).
A draw the tape cannot answer (another shape, more draws than
were recorded, a random op it does not know) is drawn fresh and kept in
``missed`` with its side, its call, its shape and its place (``where``: the
number of layer records made when it happened): what comes after it on
that pass compares two random streams, and the check leaves it not judged.
"""
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from . import stacked_dropout
from .draw_samples import INTEGER_DRAWS, Samples, randint_bounds

NUMPY_DRAWS = ("rand", "random", "random_sample", "uniform", "binomial", *INTEGER_DRAWS)
UNIFORM_DRAWS = ("rand", "random", "random_sample", "uniform")
# comparisons of a draw ``u`` with a threshold ``c``: the probability of keeping, u on the left
_KEEP = {np.less: lambda c: c, np.less_equal: lambda c: c,
         np.greater: lambda c: 1 - c, np.greater_equal: lambda c: 1 - c}
_MIRROR = {np.less: np.greater, np.less_equal: np.greater_equal,
           np.greater: np.less, np.greater_equal: np.less_equal}


@dataclass
class Miss:
    """A draw the tape could not answer."""
    side: str  # "numpy" or "torch"
    call: str  # "torch.Tensor.uniform_", "numpy.random.rand", ...
    shape: tuple
    where: int = None  # layer records made on that pass before it

    def text(self):
        return f"{self.call} of shape {self.shape}"


class _Drawn(np.ndarray):
    """A uniform draw as the model receives it on the recorded pass: the first comparison
    the model makes of the whole of it is kept as its keep mask. Anything else done with
    it is done on the plain array."""

    def __array_finalize__(self, obj):
        self._tape = getattr(obj, "_tape", None)
        self._index = getattr(obj, "_index", None)
        self._batch = getattr(obj, "_batch", None)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        plain = tuple(a.view(np.ndarray) if isinstance(a, _Drawn) else a for a in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, _Drawn) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if method == "__call__" and ufunc in _KEEP and len(inputs) == 2:
            self._kept(ufunc, inputs, result)
        return result

    def _kept(self, ufunc, inputs, result):
        first = inputs[0] is self
        other = inputs[1] if first else inputs[0]
        tape = self._tape
        if tape is None or self._batch != tape.batches or self._index in tape.derived or \
                not np.isscalar(other) or \
                np.shape(result) != self.shape or self.shape != np.shape(tape.numpy[self._index][1]):
            return
        rule = ufunc if first else _MIRROR[ufunc]
        tape.derived[self._index] = (np.asarray(result, dtype=bool).copy(), float(_KEEP[rule](float(other))))


class DrawTape:
    """The draws of one NumPy pass, for the passes after it."""

    def __init__(self, transpose=False):
        self.recording = True
        self.numpy = []  # (name, result array) in order of drawing, as the NumPy side drew it
        self.derived = {}  # index in numpy -> (keep mask made of that draw, keep probability)
        self.masks = []  # keep masks of the NumPy dropouts, in order, in the port's layout
        self.keeps = []  # the probability of keeping each mask was drawn with (None: unknown)
        self.keep_by_key = {}  # a dropout layer's record key -> that probability, where known
        self.missed = []  # Miss, in the order they happened
        self.batches = 0
        self.transpose = transpose  # the NumPy side is features first: its draws, transposed
        self.where = None  # () -> the place of a draw on the pass under way (set by a capture)
        # (drop probability, keep probability drawn with) -> the scale of a replayed dropout:
        # None is torch's own, 1 / (1 - p); a diagnosis sets another to test a hypothesis
        self.dropout_scale = None
        self.fixed = False  # read back from a golden file: its masks are as recorded

    @classmethod
    def replayed(cls, names, arrays, masks, keeps, keep_by_key=None, transpose=False):
        """A tape as a golden file keeps it: the draws and the masks of the recorded pass,
        replayed by every pass (``fixed``: no pass of this check records or derives anew)."""
        tape = cls(transpose)
        tape.numpy = list(zip(names, arrays))
        tape.masks, tape.keeps = list(masks), list(keeps)
        tape.keep_by_key = dict(keep_by_key or {})
        tape.recording = not tape.numpy
        tape.fixed = True
        return tape

    def stored(self):
        """``(meta, arrays)``: what a golden file keeps of this tape (``replayed``'s)."""
        meta = {"numpy": [name for name, _ in self.numpy],
                "keeps": [None if p is None else float(p) for p in self.keeps],
                "keep_by_key": {k: float(v) for k, v in self.keep_by_key.items()},
                "transpose": bool(self.transpose)}
        arrays = {f"draw/{i}": np.asarray(a) for i, (_, a) in enumerate(self.numpy)}
        arrays.update({f"mask/{i}": np.asarray(m) for i, m in enumerate(self.masks)})
        return meta, arrays

    def __bool__(self):
        return bool(self.numpy or self.masks)

    @property
    def misses(self):
        return len(self.missed)

    def miss(self, side, call, shape):
        where = self.where() if self.where is not None else None
        self.missed.append(Miss(side, call, tuple(int(s) for s in shape), where))

    def restart(self):
        """A new batch: the next NumPy pass records afresh."""
        if self.fixed:
            return
        self.recording, self.numpy, self.masks, self.keeps, self.derived = True, [], [], [], {}
        self.batches += 1  # a draw kept from an earlier batch makes no mask of this one

    def to_port(self, a):
        """A NumPy draw in the port's layout."""
        return a.T if self.transpose and isinstance(a, np.ndarray) and a.ndim == 2 else a

    def drawn_masks(self):
        """``[(keep mask in the port's layout, keep probability)]`` of the draws the model made
        a mask of, in order of drawing."""
        return [(self.to_port(self.derived[k][0]), self.derived[k][1])
                for k in range(len(self.numpy)) if k in self.derived]

    def keep_masks(self, records, is_dropout, probability=None):
        """The keep masks of the recorded pass, in order: those the model made of its draws;
        for a dropout layer (``is_dropout``) whose draw gave none, read off its record
        (``probability(record)``: its drop probability where it is known)."""
        if self.fixed:
            return
        drawn = self.drawn_masks()
        layers = [r for r in records if is_dropout(r) and r.output is not None]
        if not layers:  # dropout drawn inline, in no layer of its own
            self.masks, self.keeps = [m for m, _ in drawn], [k for _, k in drawn]
            return
        uniforms = [self.to_port(u) for u in self.uniforms() if isinstance(u, np.ndarray)]
        self.masks, self.keeps, self.keep_by_key = [], [], {}
        for r in layers:
            k = next((i for i, (m, _) in enumerate(drawn) if _fits(m, r)), None)
            if k is not None:
                mask, keep = drawn.pop(k)
            else:
                mask = _keep_mask(r, uniforms, probability(r) if probability else None)
                keep = None
            self.masks.append(mask)
            self.keeps.append(keep)
            if keep is not None:
                self.keep_by_key[r.key] = keep

    def keep_of(self, mask_index):
        return self.keeps[mask_index] if 0 <= mask_index < len(self.keeps) else None

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
                    return self._kept(name, out, args, kwargs)
                k = cursor[0]
                cursor[0] += 1
                shape = _requested_shape(name, args, kwargs)
                if k < len(self.numpy) and self.numpy[k][0] == name:
                    kept = self.numpy[k][1]
                    if shape is None or tuple(np.shape(kept)) == shape:
                        return kept.copy() if isinstance(kept, np.ndarray) and kept.ndim else kept[()]
                self.miss("numpy", f"numpy.random.{name}", shape or ())
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

    def _kept(self, name, out, args, kwargs):
        """The draw handed to the model on the recorded pass: a uniform array that keeps the
        first comparison made of it; a binomial of one trial is a keep mask itself."""
        k = len(self.numpy) - 1
        if name in UNIFORM_DRAWS and isinstance(out, np.ndarray) and out.ndim:
            drawn = out.view(_Drawn)
            drawn._tape, drawn._index, drawn._batch = self, k, self.batches
            return drawn
        if name == "binomial" and isinstance(out, np.ndarray) and out.ndim:
            trials = kwargs.get("n", args[0] if args else None)
            p = kwargs.get("p", args[1] if len(args) > 1 else None)
            if np.isscalar(trials) and trials == 1 and np.isscalar(p):
                self.derived[k] = (out != 0, float(p))
        return out

    def uniforms(self):
        return [a for name, a in self.numpy if name in UNIFORM_DRAWS]

    def samples(self):
        """The integer draws (``np.random.choice``), in order (``draw_samples``)."""
        return [a for name, a in self.numpy if name in INTEGER_DRAWS]

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


def _fits(mask, record):
    """A drawn mask is this dropout layer's: same shape, every unit it let through kept, and
    where the input is not 0, kept exactly where the output is not 0."""
    out = np.asarray(record.output)
    if mask.shape != out.shape:
        return False
    seen = out != 0
    if np.any(seen & ~mask):
        return False
    if record.input is None or np.shape(record.input) != out.shape:
        return True
    known = np.asarray(record.input) != 0
    return bool(np.array_equal(mask[known], seen[known]))


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
        position = {"random": 0, "random_sample": 0, "uniform": 2, "binomial": 2, "choice": 1}[name]
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
    unanswered = _unanswered(torch, F)
    stacked = stacked_dropout.stacked_ops(torch)

    class Replay(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.uniforms = [tape.to_port(u) for u in tape.uniforms()]
            self.masks = list(enumerate(tape.masks))
            self.samples = Samples(tape.samples())

        @staticmethod
        def _next(queue, shape):
            # strictly in order: a draw of another shape means the two passes differ here
            if queue and tuple(np.shape(queue[0])) == tuple(shape):
                return queue.pop(0)
            return None

        def _next_mask(self, shape):
            if self.masks and tuple(np.shape(self.masks[0][1])) == tuple(shape):
                return self.masks.pop(0)
            return None, None

        def _dropout(self, x, p, fresh=False):
            """``x`` dropped with the next NumPy keep mask, in torch's arithmetic; else
            ``None``, or with ``fresh`` a fresh draw counted as missed."""
            k, keep = self._next_mask(x.shape)
            if keep is not None:
                m = torch.from_numpy(np.ascontiguousarray(keep)).to(device=x.device, dtype=x.dtype)
                scale = 1 / (1 - p) if tape.dropout_scale is None else \
                    tape.dropout_scale(float(p), tape.keep_of(k))
                return x * m * scale
            if not fresh:
                return None
            tape.miss("torch", "dropout between recurrent layers", x.shape)
            return F.dropout(x, p, training=True)

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in dropout_fns:
                x = args[0]
                p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
                training = kwargs.get("training", kwargs.get("train", args[2] if len(args) > 2 else True))
                if training and p > 0:
                    answered = self._dropout(x, p)
                    if answered is not None:
                        return answered
                    tape.miss("torch", _name(func), x.shape)
            elif func in stacked and stacked_dropout.draws(args, kwargs):
                dropout = lambda x, p: self._dropout(x, p, fresh=True)  # noqa: E731
                out = stacked_dropout.split(func, args, dropout)
                if out is not None:
                    return out
                out = func(*args, **kwargs)
                tape.miss("torch", f"{_name(func)} (dropout between layers)", tuple(out[0].shape))
                return out
            elif func in uniform_fns:
                shape = tuple(args[0].shape) if func is torch.rand_like else _torch_shape(args, kwargs)
                u = self._next(self.uniforms, shape)
                if u is not None:
                    ref = args[0] if func is torch.rand_like else None
                    dtype = kwargs.get("dtype") or (ref.dtype if ref is not None else torch.get_default_dtype())
                    device = kwargs.get("device") or (ref.device if ref is not None else None)
                    return torch.from_numpy(np.ascontiguousarray(u)).to(device=device, dtype=dtype)
                tape.miss("torch", _name(func), shape)
            elif func in mask_fns:
                ref = args[0]
                _, keep = self._next_mask(ref.shape)
                if keep is not None:
                    m = torch.from_numpy(np.ascontiguousarray(keep)).to(device=ref.device, dtype=ref.dtype)
                    if func is torch.Tensor.bernoulli_:
                        with torch.no_grad():
                            ref.copy_(m)
                        return ref
                    return m
                tape.miss("torch", _name(func), ref.shape)
            elif func is torch.multinomial or func is torch.randint:
                out = func(*args, **kwargs)
                if func is torch.multinomial:
                    n = kwargs.get("num_samples", args[1] if len(args) > 1 else None)
                    values = None if n is None else self.samples.multinomial(
                        args[0].detach().cpu().numpy(), int(n))
                else:
                    bounds = randint_bounds(args, kwargs)
                    values = None if bounds is None else self.samples.randint(*bounds)
                if values is None or tuple(values.shape) != tuple(out.shape):
                    tape.miss("torch", _name(func), tuple(out.shape))
                    return out
                return torch.as_tensor(values, dtype=out.dtype, device=out.device)
            elif func in unanswered:
                out = func(*args, **kwargs)
                if unanswered[func](args, kwargs):
                    tape.miss("torch", _name(func), tuple(getattr(out, "shape", ())))
                return out
            return func(*args, **kwargs)

    return Replay()


def _unanswered(torch, F):
    """The random ops of torch the NumPy draws cannot stand for, each with when it draws
    (a dropout in evaluation mode draws nothing)."""
    always = lambda args, kwargs: True  # noqa: E731

    def training(args, kwargs):
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        return bool(kwargs.get("training", args[2] if len(args) > 2 else True)) and p > 0

    fns = {}
    for owner, names in ((torch, ("randn", "randn_like", "randint", "randint_like", "randperm",
                                  "normal", "multinomial", "poisson")),
                         (torch.Tensor, ("uniform_", "normal_", "random_", "exponential_",
                                         "geometric_", "cauchy_", "log_normal_"))):
        for name in names:
            fn = getattr(owner, name, None)
            if fn is not None:
                fns[fn] = always
    for name in ("alpha_dropout", "feature_alpha_dropout", "dropout1d", "dropout2d", "dropout3d"):
        fn = getattr(F, name, None)
        if fn is not None:
            fns[fn] = training
    return fns


def _name(func):
    owner = "torch.Tensor" if getattr(func, "__objclass__", None) is not None or \
        getattr(func, "__qualname__", "").startswith("Tensor.") else (
        "F" if getattr(func, "__module__", "") == "torch.nn.functional" else "torch")
    return f"{owner}.{getattr(func, '__name__', str(func))}"


def _torch_shape(args, kwargs):
    if "size" in kwargs:
        size = kwargs["size"]
    elif len(args) == 1 and isinstance(args[0], (tuple, list)):
        size = args[0]
    else:
        size = [a for a in args if isinstance(a, int)]
    return tuple(int(s) for s in size)
