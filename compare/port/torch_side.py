"""The torch port: an ``nn.Module`` whose ``forward`` returns scores (logits), or a
literal port (a ``params`` dict of tensors, ``loss``, optionally ``predict``,
a hand-written ``gradient`` and book-style ``layers``).

Its loss, by ``loss=``:

* ``"cross_entropy"``: ``F.cross_entropy`` of the scores, what PyTorch users
  write (the cross-entropy without the book's ``1e-7``);
* ``"book"``: the book's ``-log(softmax(scores) + 1e-7)``;
* ``"model"``: the port's own ``loss(x, t)``;
* a ``torch.nn.functional`` loss by name (``"mse_loss"``, ``"nll_loss"``,
  ...) or ``"FILE.py:fn"`` / a function ``fn(output, t)``, applied to the
  scores with ``t`` converted to the targets it takes (``losses``).

A literal port's ``predict`` may return probabilities (the book's chapter-4
``predict`` ends in softmax): rows that are non-negative and sum to 1 are
taken as such, and the cross-entropy is then ``-log p`` of them. An
``nn.Module``'s output is always what its training feeds the loss: the loss
judged is ``F.cross_entropy(port(x), t)`` even where the output is already
probabilities (a double softmax, named by ``heads``).

Its gradient: the port's own ``gradient`` when it has one, else autograd of
its loss. The check works on a deep copy in the run's dtype, on ``device``.
"""
from contextlib import contextmanager

import numpy as np

from . import losses as named_losses
from .capture import book_layer_capture, layer_items, param_owners
from .copying import deep_copy
from .draws import DrawTape
from .hidden_state import keep_port_state
from .targets import PortSetupError, call_side, mode_keyword
from .tolerance import port_tolerance
from .torch_uses import use_order
from .trace import OUT_IN, traced_capture, weight_layouts
from .unit_axes import as_shape

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
        self.loss = named_losses.resolve_loss(loss)
        loss = self.loss.name  # "mse_loss" for "F.mse_loss", a function's name for it
        self.torch_dtype = {"float64": torch.float64, "float32": torch.float32}[np.dtype(dtype).name]
        self.device = torch.device(device)
        self.loss_name = loss
        # "train" or "eval": module.train() / .eval(), or a literal port's train_flg; the
        # tape answers the port's random draws with the NumPy side's (set by the check)
        self.mode = "train"
        self.tape = DrawTape()
        self._reduction = _UNREAD  # the port's own loss's over the batch (_model_reduction)
        if isinstance(model, torch.nn.Module):
            self.kind = "module"
            self.given_dtypes = _dtype_names(model.named_parameters())
            self.model = self._copy(model, {})
            self.model.to(device=self.device, dtype=self.torch_dtype)
            self.params = dict(self.model.named_parameters())
            keep_port_state(self.model)  # each pass from the state the port was handed in
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
            self.given_dtypes = _dtype_names(params.items())
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
        # a seq2seq port's forward(xs, decoder_xs): no scores of x alone; with its own loss,
        # each pass the check makes of the port goes through loss(x, t)
        self.forward_needs_more = loss == "model" and self.forward_takes_more
        if loss != "model" and self.forward_takes_more:
            raise PortSetupError(f"{SIDE}: {type(model).__name__}.forward takes more than the "
                                 f"batch x, so no {loss} of its scores can be taken; give the "
                                 f"port a loss(x, t) and use --loss model")
        if self.kind == "literal" and not callable(getattr(self.model, "predict", None)) \
                and loss != "model":
            raise PortSetupError(f"{SIDE}: the literal port has no predict(x) to take "
                                 f"{loss} of; use --loss model")

    def use_loss(self, loss):
        """Another loss of the same kind of port (chosen by the check where none was given)."""
        self.loss = named_losses.resolve_loss(loss)
        self.loss_name = self.loss.name

    def cast_note(self, asked=False):
        """A note when the port's own parameters are in another dtype than the run's (a
        float32 ``nn.Module`` checked against a float64 NumPy model): what was checked is
        the port cast, not the port as it runs. None when nothing was cast."""
        run = str(self.torch_dtype).replace("torch.", "")
        cast = {n: d for n, d in self.given_dtypes.items() if d != run}
        if not cast:
            return None
        torch = _torch()
        kinds = sorted(set(cast.values()))
        every = len(cast) == len(self.given_dtypes)
        if every:
            what = f"the port's parameters are {' and '.join(kinds)}"
        else:
            what = (f"{len(cast)} of the port's {len(self.given_dtypes)} parameters are "
                    f"{' and '.join(kinds)} ({', '.join(cast)})")
        bits = torch.finfo(self.torch_dtype).bits
        up = all(torch.finfo(getattr(torch, d)).bits < bits for d in kinds)
        why = "as asked" if asked else "as the NumPy model is"
        back = (f"; --dtype {kinds[0]} (dtype=\"{kinds[0]}\") checks it as it runs"
                if every and kinds in (["float32"], ["float64"]) else "")
        return f"{what}; checked in {run} {why} (cast {'up' if up else 'down'}){back}"

    @staticmethod
    def _copy(model, memo):
        try:
            return deep_copy(model, memo)
        except Exception as exc:
            raise PortSetupError(f"{SIDE}: the model cannot be copied ({type(exc).__name__}: "
                                 f"{exc}); the check never changes a user's model") from exc

    def copy(self):
        """This side as it stands, its own copy of the model (parameters, buffers, layers) and
        a draw tape of its own; the loss and settings shared. Training reruns the port from it."""
        import copy
        twin = copy.copy(self)
        twin.model = self._copy(self.model, {})
        if self.kind == "module":
            twin.params = dict(twin.model.named_parameters())
        else:
            twin.params = twin.model.params
            twin.items = layer_items(getattr(twin.model, "layers", None))
        twin.tape = DrawTape(self.tape.transpose)
        return twin

    @property
    def module(self):
        """The port's ``nn.Module``, what an optimizer factory taking the model is handed;
        None for a literal port."""
        return self.model if self.kind == "module" else None

    # --- parameters -----------------------------------------------------------------

    def load(self, pairing, np_params):
        """Copy the NumPy values in, in place (layers and optimizers keep their references)."""
        torch = _torch()
        with torch.no_grad():
            for pair in pairing:
                if pair.pieces:  # the NumPy array cut across the torch tensors' rows
                    for name, start, stop, part in pair.to_pieces(np_params[pair.numpy]):
                        rows = self.params[name][start:stop]
                        if part is None:
                            rows.zero_()
                        else:
                            rows.copy_(torch.from_numpy(np.ascontiguousarray(part)).reshape(rows.shape))
                    continue
                target = self.params[pair.torch]
                value = pair.to_torch(np_params[pair.numpy], tuple(target.shape))
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
                for other in pair.summed:  # the NumPy value is the sum: the rest hold 0
                    self.params[other].zero_()

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

    def layer_of(self, key):
        """The module (or a literal port's layer object) behind a record's key, as the NumPy
        side's ``layer_of``; ``None`` for a traced call."""
        if self.kind != "module":
            return dict(self.items).get(key)
        try:
            return self.model.get_submodule(key)
        except (AttributeError, TypeError):
            return None

    def execution_order(self, x, t=None):
        """The parameter names in the order their modules run (one pass in eval mode, so no
        running statistic moves and nothing is drawn); registration order when it cannot run."""
        if self.kind != "module":
            return list(self.params)
        torch = _torch()
        was = self.model.training
        try:
            self.model.eval()
            # the functional calls too: an nn.Linear called as F.linear(h, fc2.weight, ...)
            # runs where that call is, not where it was registered
            with torch.no_grad(), traced_capture(self.model) as capture:
                self.one_pass(x, t)()
        except Exception:
            return list(self.params)
        finally:
            self.model.train(was)
        rank = {}
        for rec in capture.records:
            for pname in rec.param_names:
                rank.setdefault(pname, len(rank))
        names = list(self.params)

        def place(n):
            # a parameter no record names (a bias entering as 10 * bias) goes with its own
            # module's parameters that a record does name
            if n in rank:
                return rank[n]
            owner = n.rsplit(".", 1)[0] if "." in n else ""
            siblings = [rank[s] for s in rank if (s.rsplit(".", 1)[0] if "." in s else "") == owner]
            return max(siblings) + 0.5 if siblings else len(rank)
        return sorted(names, key=lambda n: (place(n), names.index(n)))

    def use_order(self, x, t=None):
        """``[(name, role)]``: what one pass on ``x`` first computes with each parameter, in
        order (``torch_uses``; eval mode, nothing drawn or updated); None when it cannot run.
        With the port's own loss (``"model"``) and ``t``, the pass is that loss's: a
        parameter only the loss uses (word2vec's output embedding) is seen."""
        fn = self.model if self.kind == "module" else getattr(self.model, "predict", None)
        if self.loss_name == "model" and t is not None and callable(getattr(self.model, "loss", None)):
            tt = self.tensor(t)
            loss = self.model.loss
            fn = lambda x: loss(x, tt)  # noqa: E731
        if fn is None:
            return None
        x = self.tensor(x)
        if self.kind == "module":
            was = self.model.training
            self.model.eval()
            try:
                # the port's own loss where it is the check's, else one pass of its forward
                call = (lambda: fn(x)) if fn is not self.model else \
                    self.one_pass(x, None if t is None else self.tensor(t))
                return use_order(self.model, call, self.model.named_parameters())
            finally:
                self.model.train(was)
        kwargs = self._mode_kwargs(fn)
        return use_order(self.model, lambda: fn(x, **kwargs), self.params.items())

    def functional_calls(self, x):
        """``[(key, kind, settings)]`` of the functional layer calls whose settings a trace
        reads (``F.conv2d``'s stride and padding), in order, up to where a pass on ``x``
        stops (eval mode, without gradients, the random streams left as they were)."""
        if self.kind != "module":
            return []
        torch = _torch()
        was = self.model.training
        capture = None
        try:
            self.model.eval()
            with torch.random.fork_rng(devices=[]), torch.no_grad(), \
                    traced_capture(self.model) as capture:
                self.model(x)
        except Exception:  # the calls before the one that failed are what is known
            pass
        finally:
            self.model.train(was)
        records = capture.records if capture is not None else []
        return [(r.key, r.kind, r.call) for r in records if getattr(r, "call", None) is not None]

    # --- buffers (batch norm's running statistics) ----------------------------------

    def buffers(self):
        """``{name: tensor}`` of the module's floating buffers (not ``num_batches_tracked``)."""
        if self.kind != "module":
            return {}
        return {n: b for n, b in self.model.named_buffers() if b.is_floating_point()}

    def buffer_values(self):
        return {n: to_numpy(b) for n, b in self.buffers().items()}

    def load_buffers(self, values):
        torch = _torch()
        own = self.buffers()
        with torch.no_grad():
            for name, value in values.items():
                if name not in own or value is None:
                    continue
                value = as_shape(value, tuple(own[name].shape))  # a (1, D) running mean into (D,)
                if tuple(own[name].shape) == np.shape(value):
                    own[name].copy_(torch.from_numpy(np.ascontiguousarray(value)))

    def values(self, pairing):
        """Each paired parameter back in the NumPy layout."""
        out = {}
        for pair in pairing:
            if pair.pieces:
                out[pair.numpy] = pair.from_pieces(
                    {n: to_numpy(self.params[n]) for n in pair.torch_names})
                continue
            value = to_numpy(self.params[pair.torch])
            for other in pair.summed:
                value = value + to_numpy(self.params[other])
            out[pair.numpy] = pair.to_numpy(value)
        return out

    # --- forward and loss -----------------------------------------------------------

    def tensor(self, array):
        tensor = _torch().from_numpy(np.ascontiguousarray(array)).to(self.device)
        # integer arrays are token ids or class indices: int64, as torch indexes with
        return tensor.long() if np.issubdtype(np.asarray(array).dtype, np.integer) else tensor

    @property
    def has_gradient(self):
        return self.kind == "literal" and callable(getattr(self.model, "gradient", None))

    def _mode_kwargs(self, fn):
        keyword = mode_keyword(fn)
        return {} if keyword is None else {keyword: self.mode == "train"}

    def one_pass(self, x, t=None):
        """A call that runs the port once on ``x``: its forward, or its own loss where its
        forward takes more than ``x`` (``forward_needs_more``, with ``t`` given)."""
        if self.forward_needs_more and t is not None:
            return lambda: self.model.loss(x, t)
        return lambda: self.model(x)

    @property
    def forward_takes_more(self):
        """An ``nn.Module`` whose ``forward`` needs more than the batch (cs231n's captioning
        ``forward(features, captions_in)``, a seq2seq's ``forward(xs, decoder_xs)``): its
        scores come only through its own ``loss(x, t)``."""
        return self.kind == "module" and _required_positional(self.model.forward) > 1

    def scores(self, x):
        fn = self.model if self.kind == "module" else getattr(self.model, "predict", None)
        if fn is None or self.forward_needs_more:
            return None
        if self.kind == "module":
            self.model.train(self.mode == "train")
        with self.tape.torch_pass():
            out = call_side(SIDE, "forward" if self.kind == "module" else "predict", fn, x,
                            **({} if self.kind == "module" else self._mode_kwargs(fn)))
        if not isinstance(out, _torch().Tensor):
            raise PortSetupError(f"{SIDE}: {'forward' if self.kind == 'module' else 'predict'} "
                                 f"returned {type(out).__name__}, expected a tensor of scores")
        return out

    def losses_of(self, scores, t):
        """``{"cross_entropy": .., "book": .., "probabilities": bool}`` of the scores (tensors,
        differentiable), the two references of the book's 1e-7, where ``t`` are class labels
        the loss takes as such; and the chosen loss under its name when it is neither."""
        # a literal port's predict may end in softmax as the book's does, its loss -log p; an
        # nn.Module's output is what training feeds the loss, probabilities or not (a double
        # softmax is then judged as training computes it, and named: heads.py)
        # a user's own function takes the output as the port gives it, (N, T, V) included
        given = (scores, t)
        scores, t = named_losses.token_rows(scores, t)
        probabilities = self.kind == "literal" and are_probabilities(to_numpy(scores))
        spec, out = self.loss, {}
        if spec.fn is not None:
            out[self.loss_name] = named_losses.apply(spec, *(given if spec.functional is None
                                                             else (scores, t)))
        if spec.classification or (spec.kind == "any" and named_losses.labels_fit(t, scores)):
            if spec.fn is None:
                t = named_losses.targets_for(spec, scores, t)
            elif t.dim() == 1 and t.is_floating_point():
                t = t.long()  # labels_fit: whole numbers
            out.update(self._references(scores, t, probabilities))
        out["probabilities"] = probabilities
        return out

    def _references(self, scores, t, probabilities):
        torch = _torch()
        import torch.nn.functional as F
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
        return {"cross_entropy": ce, "book": book}

    def eps_losses(self, scores, t, x=None):
        """``{variant: fn(eps)}``: the loss the port's output would give with ``eps`` inside
        its log, as a differentiable tensor, where the loss is a classification one (softmax
        cross-entropy of the scores, or of probabilities the output already is) or a binary
        cross-entropy (``binary_cross_entropy`` of probabilities, ``..._with_logits`` of
        logits): ``"log(p + eps)"`` for the eps in the log of the probability of the label
        (``-log(y + 1e-7)``, the course's ``log(AL + eps)``), and for a binary loss also
        ``"both"``, the eps in both logs (``log(1 - p + eps)`` too). ``{}`` for any other
        loss (known.log_eps)."""
        torch = _torch()
        import torch.nn.functional as F
        scores, t = named_losses.token_rows(scores, t)
        spec, given_t = self.loss, t
        if spec.classification or (spec.kind == "any" and named_losses.labels_fit(t, scores)):
            if spec.fn is None:
                t = named_losses.targets_for(spec, scores, t)
            elif t.dim() == 1 and t.is_floating_point():
                t = t.long()
            probabilities = are_probabilities(to_numpy(scores))
            y = scores if probabilities else torch.softmax(scores, dim=-1)
            # without an eps, the log of the softmax as F.cross_entropy takes it: no log(0)
            log_y = torch.log(scores) if probabilities else torch.log_softmax(scores, dim=-1)
            n = scores.shape[0]

            def log_of(eps):
                return log_y if eps == 0 else torch.log(y + eps)
            if t.dim() == 1:
                rows = torch.arange(n, device=scores.device)
                family = {"log(p + eps)": lambda eps: -log_of(eps)[rows, t].sum() / n}
            else:
                family = {"log(p + eps)": lambda eps: -(t * log_of(eps)).where(t != 0, 0).sum() / n}
            return self._in_user_reduction(family, scores, given_t, n, x)
        binary = spec.functional in ("binary_cross_entropy", "binary_cross_entropy_with_logits")
        # the user's own loss (a function, or the port's ``loss`` with its penalty) of 0/1
        # targets: the binary family, of probabilities where the output is
        user_binary = spec.kind == "any" and _binary_targets(scores, t)
        if binary or user_binary:
            if binary:
                t = named_losses.targets_for(spec, scores, t)
                of_probabilities = spec.functional == "binary_cross_entropy"
            else:  # the user's own loss of 0/1 targets: of probabilities where the output is
                t = t.reshape(scores.shape).to(scores.dtype)
                of_probabilities = bool(((scores > 0) & (scores < 1)).all())
            if of_probabilities:
                p, q = scores, 1 - scores
                log_p, log_q = torch.log(p), torch.log(q)
            else:  # without an eps, log sigmoid as the loss with logits takes it
                p, q = torch.sigmoid(scores), torch.sigmoid(-scores)
                log_p, log_q = F.logsigmoid(scores), F.logsigmoid(-scores)

            def term(t, log_v, v, eps):
                return (t * (log_v if eps == 0 else torch.log(v + eps))).where(t != 0, 0)
            family = {"log(p + eps)": lambda eps: -(term(t, log_p, p, eps) + term(1 - t, log_q, q, 0)).mean(),
                      "both": lambda eps: -(term(t, log_p, p, eps) + term(1 - t, log_q, q, eps)).mean()}
            return self._in_user_reduction(family, scores, given_t, scores.numel(), x)
        return {}

    def _in_user_reduction(self, family, scores, t, n, x=None):
        """A loss of the user's own (``FILE.py:fn``, or the port's ``loss(x, t)``) may sum
        over the batch where the family takes the mean: its reduction read off its value at
        these scores (the sum is ``n`` times the mean, to within what an eps in its log could
        move it), or, for the port's own loss, whose value may hold a penalty, off its
        gradient (``_model_reduction``), so that an eps is fitted on the loss as the user
        reduces it."""
        if self.loss.kind != "any":
            return family
        if self.loss.fn is None:
            if self.loss_name != "model":
                return family
            if x is not None and self._reduction is _UNREAD:
                self._reduction = self._model_reduction(x, t, family, scores, n)
            k = n if self._reduction == "sum" else 1
        else:
            k = self._value_reduction(family, scores, t, n)
        return family if k == 1 else {key: (lambda eps, f=f: k * f(eps)) for key, f in family.items()}

    def _value_reduction(self, family, scores, t, n):
        """``n`` where the user's loss function at these scores is ``n`` times the family's
        mean ``L(0)``, else 1."""
        torch = _torch()
        with torch.no_grad():
            try:
                value = float(named_losses.apply(self.loss, scores.detach(), t))
            except PortSetupError:
                return 1
            mean = float(next(iter(family.values()))(0.0))
        # factors of 2 and more apart: a relative 1e-3 tells them apart, and no eps one
        # writes moves a loss that far
        return n if n != 1 and mean and abs(value - n * mean) <= 1e-3 * abs(n * mean) else 1

    def _model_reduction(self, x, t, family, scores, n):
        """``"sum"`` or ``"mean"``: how the port's own ``loss(x, t)`` reduces over the batch,
        read off its gradient with respect to the output (a penalty on the weights does not
        depend on it): ``k`` times the family's mean ``L(0)``'s, ``k`` 1 or ``n``; None where
        neither fits (the mean family is kept). One more pass of the port's ``loss``, from
        the buffers as they were and replaying the batch's draws."""
        torch = _torch()
        if self.kind != "module" or n == 1:
            return None
        seen = []
        hook = self.model.register_forward_hook(lambda module, args, out: seen.append(out))
        before, missed = self.buffer_values(), len(self.tape.missed)
        try:
            with torch.enable_grad():
                loss = self.model_loss(x, t)
                out = seen[-1] if seen else None
                if (not isinstance(out, torch.Tensor) or out.shape != scores.shape
                        or not out.requires_grad or not loss.requires_grad):
                    return None
                port = torch.autograd.grad(loss, out, allow_unused=True)[0]
                at_out = self.eps_losses(out, t)  # the mean family: no x, no pass
                if not at_out:
                    return None
                mean = torch.autograd.grad(next(iter(at_out.values()))(0.0), out,
                                           allow_unused=True)[0]
        except (PortSetupError, RuntimeError):  # no reading: the mean family is kept
            return None
        finally:
            hook.remove()
            self.load_buffers(before)
            del self.tape.missed[missed:]
        if port is None or mean is None:
            return None
        port, mean = to_numpy(port), to_numpy(mean)
        values = to_numpy(out.detach())
        if values.ndim == 2 and are_probabilities(np.exp(values)):
            # log-probabilities: a loss of them (-out[t]) and the family's (-log_softmax(out)[t])
            # agree where the rows stay normalized, so the gradients are compared there, each
            # row with its component along softmax(out) taken off
            p = np.exp(values)
            port, mean = (g - (np.sum(g * p, axis=1, keepdims=True) / np.sum(p * p, axis=1, keepdims=True)) * p
                          for g in (port, mean))
        for name, k in (("mean", 1), ("sum", n)):
            ref = k * mean
            tol = port_tolerance(ref, np.dtype(str(self.torch_dtype).replace("torch.", "")))
            if np.all(np.abs(port - ref) <= tol.atol + tol.rtol * np.abs(ref)):
                return name
        return None

    @contextmanager
    def loss_with_scores(self, x, t):
        """Yields ``(loss, scores)``, both tensors in one graph of the parameters, for
        ``torch.autograd.grad`` inside the block: the loss checked, and the scores it is
        computed from (a module's own ``loss(x, t)``: its top module's output, however its
        forward is called, as a forward hook sees it; None where none is seen). The buffers
        and the parameters' ``requires_grad`` are put back after."""
        torch = _torch()
        before, seen, hook = self.buffer_values(), [], None
        requires = {n: p.requires_grad for n, p in self.params.items()}
        try:
            for p in self.params.values():
                p.requires_grad_(True)
            with torch.enable_grad():
                if self.loss_name == "model":
                    if self.kind == "module":
                        hook = self.model.register_forward_hook(lambda m, args, out: seen.append(out))
                    loss = self.model_loss(x, t)
                    scores = seen[-1] if seen and isinstance(seen[-1], torch.Tensor) else None
                else:
                    scores = self.scores(x)
                    loss = self.losses_of(scores, t)[self.loss_name]
                if hook is not None:
                    hook.remove()
                    hook = None
                yield loss, scores
        finally:
            if hook is not None:
                hook.remove()
            self.load_buffers(before)
            for name, p in self.params.items():
                p.requires_grad_(requires[name])

    def _eps_values(self, scores, t, x=None):
        """``eps_losses`` of detached scores, as numbers (for fitting eps to a loss)."""
        torch = _torch()
        if scores is None:
            return {}
        scores = scores.detach()
        try:
            fns = self.eps_losses(scores, t, x)
        except PortSetupError:
            return {}

        def value(fn):
            def at(eps):
                with torch.no_grad():
                    return float(fn(eps))
            return at
        return {k: value(fn) for k, fn in fns.items()}

    def model_loss(self, x, t):
        if self.kind == "module":
            self.model.train(self.mode == "train")
        with self.tape.torch_pass():
            value = call_side(SIDE, "loss", self.model.loss, x, t, **self._mode_kwargs(self.model.loss))
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

    def _capture(self, x=None):
        if self.kind == "module":  # leaf modules and the functional calls between
            return traced_capture(self.model, batch=None if x is None else int(x.shape[0]))
        return book_layer_capture(self.items, param_owners(self.items, self.params))

    @contextmanager
    def _placed(self, capture):
        """A draw the tape misses on this pass is placed at the layer records made so far."""
        self.tape.where = lambda: len(capture.records)
        try:
            yield
        finally:
            self.tape.where = None

    def recorded_outputs(self, x, t):
        """The layer records of ``outputs(x, t)``'s pass (the port's own loss, where its
        forward needs more than the batch), without gradients."""
        with self._capture(x) as capture:
            self.outputs(x, t)
        return capture.records

    def recorded_scores(self, x):
        """The scores of one pass recorded layer by layer, without gradients: ``(capture,
        scores as a NumPy array or None)``."""
        torch = _torch()
        with torch.no_grad(), self._capture(x) as capture:
            scores = self.scores(x)
        return capture, None if scores is None else to_numpy(scores)

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
            with self._capture(x) as capture, torch.enable_grad(), self._placed(capture):
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
                        if isinstance(kind, tuple):  # ("log_eps", variant, eps)
                            loss = self.eps_losses(scores, t)[kind[1]](kind[2])
                        else:
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

    def _one_pass(self, before, second):
        """``second()`` run from the buffers as they were ``before`` the pass just made: the
        port's own ``loss(x, t)`` calling ``self(x)`` is a second training pass over the
        batch, and batch norm's running statistics are left as one pass leaves them (the
        first pass's, where the second makes none)."""
        if not before:
            return second()
        after = self.buffer_values()
        self.load_buffers(before)
        value = second()
        if all(np.array_equal(v, before[n]) for n, v in self.buffer_values().items() if n in before):
            self.load_buffers(after)
        return value

    def training_pass(self, x, t):
        """The loss (before any update) and the gradients of one training step, with one
        forward pass where autograd gives the gradient. Returns ``(outputs, grads)`` as
        ``outputs`` and ``recorded_pass`` give them, unrecorded."""
        torch = _torch()
        if self.has_gradient or self.loss_name == "model" or self.kind == "literal":
            before = self.buffer_values()
            out = self.outputs(x, t)
            kind = "gradient" if self.has_gradient else self.loss_name
            return out, self._one_pass(before, lambda: self.recorded_pass(x, t, kind)[1])
        with torch.enable_grad():
            scores = self.scores(x)
            losses = self.losses_of(scores, t)
            loss = losses[self.loss_name]
            found = torch.autograd.grad(loss, list(self.params.values()), allow_unused=True)
        out = {"scores": None, "loss": loss.item(),
               "losses": {k: (v if k == "probabilities" else v.item()) for k, v in losses.items()},
               "eps_losses": self._eps_values(scores, t, x)}
        return out, {k: None if g is None else to_numpy(g) for k, g in zip(self.params, found)}

    def outputs(self, x, t):
        """Scores, the chosen loss and both reference losses, without gradients."""
        torch = _torch()
        with torch.no_grad():
            before = self.buffer_values() if self.loss_name == "model" else None
            scores = self.scores(x)
            losses = self.losses_of(scores, t) if scores is not None else None
            if self.loss_name == "model":
                loss = self._one_pass(before, lambda: self.model_loss(x, t))
            else:
                loss = losses[self.loss_name]
        return {"scores": None if scores is None else to_numpy(scores), "loss": float(loss),
                "losses": None if losses is None else {
                    k: (v if k == "probabilities" else float(v)) for k, v in losses.items()},
                "eps_losses": self._eps_values(scores, t, x)}


_UNREAD = object()


def _required_positional(fn):
    """How many positional arguments ``fn`` cannot do without."""
    import inspect
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
               for p in params)


def _dtype_names(named):
    return {name: str(value.dtype).replace("torch.", "") for name, value in named}


def _binary_targets(scores, t):
    """``t`` holds 0/1 targets of a one-column output (a binary cross-entropy's)."""
    if scores.dim() not in (1, 2) or (scores.dim() == 2 and scores.shape[1] != 1):
        return False
    if t.numel() != scores.numel():
        return False
    return bool(((t == 0) | (t == 1)).all())


def are_probabilities(scores):
    """Rows non-negative and summing to 1 (to a tolerance of the dtype's round-off over
    a row): the output of a softmax, not logits."""
    if scores.ndim != 2 or not scores.size:
        return False
    eps = np.finfo(scores.dtype).eps if np.issubdtype(scores.dtype, np.floating) else 0
    sums = scores.sum(axis=1)
    return bool((scores >= 0).all() and np.all(np.abs(sums - 1) <= 16 * eps * scores.shape[1]))
