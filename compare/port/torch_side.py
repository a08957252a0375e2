"""The torch port: an ``nn.Module`` whose ``forward`` returns scores (logits), or a
literal port (a ``params`` dict of tensors, ``loss``, optionally ``predict``,
a hand-written ``gradient`` and book-style ``layers``).

Its loss, by ``loss=``:

* ``"cross_entropy"``: ``F.cross_entropy`` of the scores, what PyTorch users
  write (the cross-entropy without the book's ``1e-7``);
* ``"book"``: the book's ``-log(softmax(scores) + 1e-7)``;
* ``"model"``: the port's own ``loss(x, t)``.

A literal port's ``predict`` may return probabilities (the book's chapter-4
``predict`` ends in softmax): rows that are non-negative and sum to 1 are
taken as such, and the cross-entropy is then ``-log p`` of them.

Its gradient: the port's own ``gradient`` when it has one, else autograd of
its loss. The check works on a deep copy in the run's dtype, on ``device``.
"""
import copy

import numpy as np

from .capture import book_layer_capture, layer_items, param_owners
from .targets import PortSetupError, call_side
from .trace import OUT_IN, traced_capture, weight_layouts

SIDE = "torch side"
LOSSES = ("cross_entropy", "book", "model")
BOOK_EPSILON = 1e-7


def _torch():
    import torch
    return torch


def _call(what, fn, *args):
    return call_side(SIDE, what, fn, *args)


def to_numpy(tensor):
    return tensor.detach().cpu().numpy().copy()


class TorchSide:
    def __init__(self, model, dtype, device="cpu", loss="cross_entropy"):
        torch = _torch()
        if loss not in LOSSES:
            raise PortSetupError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        self.torch_dtype = {"float64": torch.float64, "float32": torch.float32}[np.dtype(dtype).name]
        self.device = torch.device(device)
        self.loss_name = loss
        if isinstance(model, torch.nn.Module):
            self.kind = "module"
            self.model = self._copy(model, {})
            self.model.to(device=self.device, dtype=self.torch_dtype)
            self.params = dict(self.model.named_parameters())
            linear = {id(m.weight) for m in self.model.modules() if isinstance(m, torch.nn.Linear)}
            self.linear_weights = {n for n, p in self.params.items() if id(p) in linear}
            self.items = []
        else:
            params = getattr(model, "params", None)
            if not isinstance(params, dict) or not params:
                raise PortSetupError(
                    f"{SIDE}: the model ({type(model).__name__}) is neither an nn.Module nor a "
                    f"literal port with a 'params' dict of tensors")
            for name, value in params.items():
                if not isinstance(value, torch.Tensor):
                    raise PortSetupError(
                        f"{SIDE}: params[{name!r}] is a {type(value).__name__}, expected a "
                        f"torch.Tensor (is this the NumPy model?)")
            if not callable(getattr(model, "loss", None)) and not callable(getattr(model, "predict", None)):
                raise PortSetupError(f"{SIDE}: the literal port ({type(model).__name__}) has "
                                     f"neither loss(x, t) nor predict(x)")
            self.kind = "literal"
            memo = {id(v): v.detach().to(device=self.device, dtype=self.torch_dtype).clone()
                    for v in params.values()}
            self.model = self._copy(model, memo)
            if isinstance(getattr(self.model, "dtype", None), torch.dtype):
                self.model.dtype = self.torch_dtype  # ports that check their inputs' dtype
            if isinstance(getattr(self.model, "device", None), torch.device):
                self.model.device = self.device
            self.params = self.model.params
            self.linear_weights = set()
            self.items = layer_items(getattr(self.model, "layers", None))
        if not self.params:
            raise PortSetupError(f"{SIDE}: the model has no parameters")
        for name, value in self.params.items():
            if not value.is_floating_point():
                raise PortSetupError(f"{SIDE}: parameter {name!r} has dtype {value.dtype}, "
                                     f"expected floats")
        if loss == "model" and not callable(getattr(self.model, "loss", None)):
            raise PortSetupError(f"{SIDE}: --loss model needs the port's own loss(x, t), and "
                                 f"{type(model).__name__} has none")
        if self.kind == "literal" and not callable(getattr(self.model, "predict", None)) \
                and loss != "model":
            raise PortSetupError(f"{SIDE}: the literal port has no predict(x) to take "
                                 f"{loss} of; use --loss model")

    @staticmethod
    def _copy(model, memo):
        try:
            return copy.deepcopy(model, memo)
        except Exception as exc:
            raise PortSetupError(f"{SIDE}: the model cannot be copied ({type(exc).__name__}: "
                                 f"{exc}); the check never changes a user's model") from exc

    # --- parameters -----------------------------------------------------------------

    def load(self, pairing, np_params):
        """Copy the NumPy values in, in place (layers and optimizers keep their references)."""
        torch = _torch()
        with torch.no_grad():
            for pair in pairing:
                value = np_params[pair.numpy]
                value = value.T if pair.transposed else value
                self.params[pair.torch].copy_(torch.from_numpy(np.ascontiguousarray(value)))

    def functional_linear_weights(self, x):
        """The square weights the forward pass on ``x`` uses as ``F.linear`` takes them,
        ``(out, in)``: stored as ``nn.Linear`` stores its weight, so paired transposed (the
        shapes cannot tell). A weight used in both layouts is left to the shapes."""
        if self.kind != "module":
            return set()
        square = {n for n, p in self.params.items()
                  if p.dim() == 2 and p.shape[0] == p.shape[1] and n not in self.linear_weights}
        if not square:
            return set()
        layouts = weight_layouts(self.model, self.tensor(x))
        return {n for n in square if layouts.get(n) == OUT_IN}

    def values(self, pairing):
        """Each paired parameter back in the NumPy layout."""
        out = {}
        for pair in pairing:
            value = to_numpy(self.params[pair.torch])
            out[pair.numpy] = value.T if pair.transposed else value
        return out

    # --- forward and loss -----------------------------------------------------------

    def tensor(self, array):
        return _torch().from_numpy(np.ascontiguousarray(array)).to(self.device)

    @property
    def has_gradient(self):
        return self.kind == "literal" and callable(getattr(self.model, "gradient", None))

    def scores(self, x):
        fn = self.model if self.kind == "module" else getattr(self.model, "predict", None)
        if fn is None:
            return None
        out = _call("forward" if self.kind == "module" else "predict", fn, x)
        if not isinstance(out, _torch().Tensor):
            raise PortSetupError(f"{SIDE}: {'forward' if self.kind == 'module' else 'predict'} "
                                 f"returned {type(out).__name__}, expected a tensor of scores")
        return out

    def losses_of(self, scores, t):
        """``{"cross_entropy": .., "book": ..}`` of the scores (tensors, differentiable)."""
        torch = _torch()
        import torch.nn.functional as F
        probabilities = are_probabilities(to_numpy(scores))
        if probabilities:
            y = scores
            log_y = torch.log(scores)
        else:
            y = torch.softmax(scores, dim=-1)
            log_y = torch.log_softmax(scores, dim=-1)
        n = scores.shape[0]
        if t.dim() == 1:
            rows = torch.arange(n, device=scores.device)
            ce = -log_y[rows, t].mean() if probabilities else F.cross_entropy(scores, t)
            book = -torch.log(y[rows, t] + BOOK_EPSILON).sum() / n
        else:
            ce = -(t * log_y).sum() / n if probabilities else F.cross_entropy(scores, t)
            # the book's cross_entropy_error takes argmax of one-hot targets
            book = -torch.log(y[torch.arange(n, device=scores.device), t.argmax(dim=1)]
                              + BOOK_EPSILON).sum() / n
        return {"cross_entropy": ce, "book": book, "probabilities": probabilities}

    def model_loss(self, x, t):
        value = _call("loss", self.model.loss, x, t)
        torch = _torch()
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise PortSetupError(f"{SIDE}: loss(x, t) returned a tensor of shape "
                                     f"{tuple(value.shape)}, expected a scalar")
            return value.reshape(())
        try:
            return torch.tensor(float(value), dtype=self.torch_dtype)
        except (TypeError, ValueError):
            raise PortSetupError(f"{SIDE}: loss(x, t) returned {type(value).__name__}, "
                                 f"expected a number") from None

    # --- one recorded pass ----------------------------------------------------------

    def _capture(self):
        if self.kind == "module":
            return traced_capture(self.model)  # leaf modules and the functional calls between
        return book_layer_capture(self.items, param_owners(self.items, self.params))

    def _autograd(self, loss, params):
        torch = _torch()
        if not loss.requires_grad:
            return {name: None for name in params}
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        return dict(zip(params, grads))

    def recorded_pass(self, x, t, kind):
        """One pass recorded layer by layer, with gradients of ``kind``: a loss name
        (autograd of it) or ``"gradient"`` (the port's own). Returns
        ``(capture, grads, scores_grad)``: gradients as NumPy arrays, ``None`` for a
        parameter the loss does not reach. Raises ``PortSetupError`` when autograd
        cannot reach the parameters at all (a port computed without autograd)."""
        torch = _torch()
        kept = {}
        requires = {n: p.requires_grad for n, p in self.params.items()}
        try:
            if kind != "gradient":
                for p in self.params.values():
                    p.requires_grad_(True)
            with self._capture() as capture, torch.enable_grad():
                if kind == "gradient":
                    given = _call("gradient", self.model.gradient, x, t)
                    if not isinstance(given, dict) or any(k not in given for k in self.params):
                        have = sorted(given) if isinstance(given, dict) else type(given).__name__
                        raise PortSetupError(f"{SIDE}: gradient(x, t) must return a dict keyed "
                                             f"like params {list(self.params)}, got {have}")
                    grads = {k: given[k] for k in self.params}
                else:
                    if kind == "model":
                        loss = self.model_loss(x, t)
                    else:
                        scores = self.scores(x)
                        if scores.requires_grad:
                            def keep(grad):
                                kept["scores"] = to_numpy(grad)  # returns None: grad unchanged
                            scores.register_hook(keep)
                        loss = self.losses_of(scores, t)[kind]
                    if not loss.requires_grad:
                        raise PortSetupError(f"{SIDE}: the {kind} loss does not depend on the "
                                             f"parameters through autograd (a detached or "
                                             f"NumPy computation?)")
                    found = torch.autograd.grad(loss, list(self.params.values()), allow_unused=True)
                    grads = dict(zip(self.params, found))
        finally:
            for name, p in self.params.items():
                p.requires_grad_(requires[name])
        grads = {k: None if g is None else to_numpy(g) for k, g in grads.items()}
        return capture, grads, kept.get("scores")

    def training_pass(self, x, t):
        """The loss (before any update) and the gradients of one training step, with one
        forward pass where autograd gives the gradient. Returns ``(outputs, grads)`` as
        ``outputs`` and ``recorded_pass`` give them, unrecorded."""
        torch = _torch()
        if self.has_gradient or self.loss_name == "model" or self.kind == "literal":
            out = self.outputs(x, t)
            kind = "gradient" if self.has_gradient else self.loss_name
            return out, self.recorded_pass(x, t, kind)[1]
        with torch.enable_grad():
            scores = self.scores(x)
            losses = self.losses_of(scores, t)
            loss = losses[self.loss_name]
            found = torch.autograd.grad(loss, list(self.params.values()), allow_unused=True)
        out = {"scores": None, "loss": loss.item(),
               "losses": {k: (v if k == "probabilities" else v.item()) for k, v in losses.items()}}
        return out, {k: None if g is None else to_numpy(g) for k, g in zip(self.params, found)}

    def outputs(self, x, t):
        """Scores, the chosen loss and both reference losses, without gradients."""
        torch = _torch()
        with torch.no_grad():
            scores = self.scores(x)
            losses = self.losses_of(scores, t) if scores is not None else None
            loss = self.model_loss(x, t) if self.loss_name == "model" else losses[self.loss_name]
        return {"scores": None if scores is None else to_numpy(scores), "loss": float(loss),
                "losses": None if losses is None else {
                    k: (v if k == "probabilities" else float(v)) for k, v in losses.items()}}


def are_probabilities(scores):
    """Rows non-negative and summing to 1 (to a tolerance of the dtype's round-off over
    a row): the output of a softmax, not logits."""
    if scores.ndim != 2 or not scores.size:
        return False
    eps = np.finfo(scores.dtype).eps if np.issubdtype(scores.dtype, np.floating) else 0
    sums = scores.sum(axis=1)
    return bool((scores >= 0).all() and np.all(np.abs(sums - 1) <= 16 * eps * scores.shape[1]))
