"""``check_port``: a NumPy model and its torch port, compared phase by phase.

1. parameters: paired (``pairing``), the NumPy values copied into the port,
   read back equal bit for bit;
2. forward: each layer's output, paired in order of execution (``align``),
   then the scores and the loss;
3. backward: each parameter's gradient, and the gradient flowing into each
   paired layer, nearest the loss first. The NumPy gradient is its
   ``gradient`` (backprop) when it has one; else the torch gradient is
   checked against central differences of the NumPy ``loss`` along random
   directions (``numerical``);
4. the first comparison out of tolerance is the *first mismatch*, and the
   usual porting bugs are tested against it (``diagnosis``).

The book's ``1e-7`` is a known difference, not a failure: each side's loss
and gradient is classified as with or without it (against the port's own
``F.cross_entropy`` and book loss of the same scores), and where the two
sides differ the difference, derived through the port by autograd, is
added to the expected value and named.
"""
import numpy as np

from .align import align
from .diagnosis import diagnose
from .numerical import check_gradient_directions
from .numpy_side import reference_side
from .pairing import pair_parameters
from .report import Check, PortReport, compare_arrays
from .targets import PortSetupError
from .tolerance import EXACT, port_tolerance
from .torch_side import TorchSide, are_probabilities

GAP = "1e-7 gap"
NUMPY_GRADIENT = ("auto", "backprop", "numerical")


def _validate_batch(x, t, dtype):
    if not isinstance(x, np.ndarray):
        raise PortSetupError(f"x must be a NumPy array (the NumPy model's input), got {type(x).__name__}")
    if not isinstance(t, np.ndarray):
        raise PortSetupError(f"t must be a NumPy array of labels, got {type(t).__name__}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise PortSetupError(f"x must hold real numbers, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] < 1:
        raise PortSetupError(f"x must be a batch (N, ...) with N >= 1, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise PortSetupError("x holds NaN or infinity")
    if t.shape[:1] != x.shape[:1] or t.ndim not in (1, 2):
        raise PortSetupError(f"t must be (N,) class indices or (N, C) one-hot rows for the "
                             f"{x.shape[0]} rows of x, got shape {t.shape}")
    if t.ndim == 1:
        if not np.issubdtype(t.dtype, np.integer):
            if not (np.issubdtype(t.dtype, np.floating) and np.all(t == np.round(t))):
                raise PortSetupError(f"class indices t must be integers, got dtype {t.dtype}")
        if t.min() < 0:
            raise PortSetupError(f"class indices t must be >= 0, got {t.min()}")
        t = t.astype(np.int64)
    else:
        t = t.astype(dtype)
        if not np.all(np.isfinite(t)) or (t < 0).any():
            raise PortSetupError("one-hot t must be finite and non-negative")
    return x.astype(dtype), t


def _np_layout(pairing, torch_values):
    out = {}
    for pair in pairing:
        value = torch_values[pair.torch]
        out[pair.numpy] = None if value is None else (value.T if pair.transposed else value)
    return out


def _kind_of(value, ce, book, tol):
    """'cross_entropy' or 'book' (which loss ``value`` is), 'either' when the 1e-7 is below
    the tolerance, None when it is neither."""
    near_ce = abs(value - ce) <= tol.atol + tol.rtol * abs(ce)
    near_book = abs(value - book) <= tol.atol + tol.rtol * abs(book)
    if near_ce and near_book:
        return "either"
    return "cross_entropy" if near_ce else "book" if near_book else None


def loss_kinds(np_loss, out, loss_name, dtype):
    """``(numpy kind, torch kind, shift)`` of the two losses on one batch: which has the
    book's 1e-7, and what to add to the NumPy loss to make it of the torch one's kind
    (``None`` when nothing is to be added). ``out`` is ``TorchSide.outputs``'s."""
    losses = out["losses"]
    if losses is None:
        return None, None, None
    tol = port_tolerance(np.array(np_loss), dtype)
    ce, book = losses["cross_entropy"], losses["book"]
    np_kind = _kind_of(np_loss, ce, book, tol)
    t_kind = loss_name if loss_name in ("cross_entropy", "book") else _kind_of(out["loss"], ce, book, tol)
    return np_kind, t_kind, _shift(np_kind, t_kind, np.array(book - ce))


def _grad_kind(grads, ce, book, dtype):
    """The same, for a gradient dict against the two reference gradients."""
    def close(g, r):
        tol = port_tolerance(r, dtype)
        return np.all(np.abs(g - r) <= tol.atol + tol.rtol * np.abs(r))

    def fits(ref):
        return all(g is not None and r is not None and g.shape == r.shape and close(g, r)
                   for g, r in ((grads[k], ref[k]) for k in grads))
    if ce is None or book is None:
        return None
    a, b = fits(ce), fits(book)
    return "either" if a and b else "cross_entropy" if a else "book" if b else None


def _shift(expected_kind, actual_kind, gap):
    """What to add to the expected (NumPy) value so it is of the actual's kind."""
    if gap is None or None in (expected_kind, actual_kind) or "either" in (expected_kind, actual_kind):
        return None
    if expected_kind == actual_kind:
        return None
    return gap if actual_kind == "book" else -gap


class _Run:
    """The state of one check, built up phase by phase."""

    def __init__(self, numpy_model, torch_model, x, t, *, dtype, loss, param_map, device,
                 numpy_gradient, directions, locate, seed):
        if numpy_gradient not in NUMPY_GRADIENT:
            raise PortSetupError(f"numpy_gradient must be one of {NUMPY_GRADIENT}, got {numpy_gradient!r}")
        from .golden import GoldenFile
        if isinstance(numpy_model, GoldenFile):
            x = numpy_model.x if x is None else x
            t = numpy_model.t if t is None else t
        self.np = reference_side(numpy_model, dtype)
        self.dtype = self.np.dtype.name
        self.x, self.t = _validate_batch(x, t, self.dtype)
        self.torch = TorchSide(torch_model, self.dtype, device, loss)
        self.report = PortReport()
        self.numpy_gradient = numpy_gradient
        self.directions, self.locate, self.seed = directions, locate, seed
        np_shapes = {k: v.shape for k, v in self.np.params.items()}
        t_shapes = {k: tuple(v.shape) for k, v in self.torch.params.items()}
        self.pairing = pair_parameters(np_shapes, t_shapes, param_map=param_map,
                                       linear_weights=self.torch.linear_weights)
        self.report.pairing = self.pairing
        self.twin = {p.numpy: p.torch for p in self.pairing}
        extra = [k for k in t_shapes if k not in set(self.twin.values())]
        if extra:
            self.report.notes.append(f"torch parameters left unpaired (not checked): {extra}")
        self.report.settings = {
            "dtype": self.dtype, "loss": loss, "batch": int(self.x.shape[0]),
            "torch model": f"{type(torch_model).__name__} ({self.torch.kind})",
            "numpy model": (f"golden file {numpy_model.path} ({numpy_model.meta['model']})"
                            if isinstance(numpy_model, GoldenFile) else type(numpy_model).__name__)}
        self.tx, self.tt = self.torch.tensor(self.x), self.torch.tensor(self.t)
        self.context = {}  # check id -> what the diagnosis needs

    def add(self, row, **context):
        self.report.checks.append(row)
        self.context[id(row)] = context
        return row

    # --- 1. parameters --------------------------------------------------------------

    def parameters(self):
        self.torch.load(self.pairing, self.np.params)
        back = self.torch.values(self.pairing)
        for pair in self.pairing:
            self.add(compare_arrays("parameters", pair.numpy, pair.torch + (".T" if pair.transposed else ""),
                                    self.np.params[pair.numpy], back[pair.numpy], EXACT),
                     expected=self.np.params[pair.numpy], actual=back[pair.numpy])

    # --- 2. forward -----------------------------------------------------------------

    def forward(self):
        x, t = self.x, self.t
        self.np_capture, self.np_loss, self.np_grads = self.np.run(x, t)
        if not np.isfinite(self.np_loss):
            raise PortSetupError(f"numpy side: loss(x, t) is {self.np_loss}: the NumPy model "
                                 f"cannot be the reference on this batch")
        self.out = self.torch.outputs(self.tx, self.tt)
        if not np.isfinite(self.out["loss"]):
            raise PortSetupError(f"torch side: the {self.torch.loss_name} loss is {self.out['loss']} "
                                 f"on this batch (NaN or infinity in the port's output)")
        chosen = "gradient" if self.torch.has_gradient else self.torch.loss_name
        self.t_capture, self.t_grads, self.t_scores_grad = self.torch.recorded_pass(self.tx, self.tt, chosen)
        self.t_source = "the port's gradient" if chosen == "gradient" else f"autograd of {chosen}"

        np_recs, t_recs = self.np_capture.records, self.t_capture.records
        self.layer_pairs, left_np, left_t = align(np_recs, t_recs)
        self.report.unpaired = {"numpy": [np_recs[i].key for i in left_np],
                                "torch": [t_recs[j].key for j in left_t]}
        for i, j in self.layer_pairs:
            a, b = np_recs[i], t_recs[j]
            self.add(compare_arrays("forward", a.key, b.key, a.output, b.output,
                                    port_tolerance(a.output, self.dtype)),
                     expected=a.output, actual=b.output, inputs=a.input, np_index=i, t_index=j)
        self.scores()
        self.loss()

    def scores(self):
        t_scores = self.out["scores"]
        if t_scores is None:
            return
        np_scores = self.np.predict(self.x) if self.np.has_predict else (
            self.np_capture.records[-1].output if self.np_capture.records else None)
        if np_scores is None:
            return
        np_p, t_p = are_probabilities(np_scores), self.out["losses"]["probabilities"]
        note = None
        # one side's logits against the other's probabilities: the same thing once the
        # logits go through softmax; outputs in [0, 1] are no logits (a softmax over the
        # wrong axis stays as it is, for the diagnosis to see)
        if np_p and not t_p and (t_scores < 0).any():
            t_scores, note = _softmax(t_scores), "NumPy predict gives probabilities: compared with softmax of the torch scores"
        elif t_p and not np_p and (np_scores < 0).any():
            np_scores, note = _softmax(np_scores), "torch gives probabilities: compared with softmax of the NumPy scores"
        if not np.all(np.isfinite(t_scores)):
            raise PortSetupError("torch side: the scores hold NaN or infinity on this batch")
        name = "forward" if self.torch.kind == "module" else "predict"
        self.add(compare_arrays("forward", "predict" if self.np.has_predict else "scores", name,
                                np_scores, t_scores, port_tolerance(np_scores, self.dtype), note=note),
                 expected=np_scores, actual=t_scores)

    def loss(self):
        losses = self.out["losses"]
        tol = port_tolerance(np.array(self.np_loss), self.dtype)
        self.np_loss_kind, self.t_loss_kind, shift = loss_kinds(
            self.np_loss, self.out, self.torch.loss_name, self.dtype)
        if shift is not None:
            self.known("loss", self.np_loss_kind, self.t_loss_kind, float(shift))
        self.add(compare_arrays("loss", "loss", self.torch.loss_name, np.array(self.np_loss),
                                np.array(self.out["loss"]), tol, shift=shift, shift_name=GAP),
                 expected=np.array(self.np_loss), actual=np.array(self.out["loss"]),
                 known=None if losses is None else {"log_eps": np.array(losses["book"] - losses["cross_entropy"])})

    def known(self, what, np_kind, t_kind, size):
        label = {"book": "the book's -log(y + 1e-7)", "cross_entropy": "the cross-entropy without the 1e-7"}
        text = (f"{what}: the NumPy side's is {label[np_kind]}, the torch side's {label[t_kind]}; "
                f"the 1e-7 accounts for {abs(size):.3g} here, derived through the port "
                f"(autograd of book - cross_entropy of its scores) and added before comparing")
        if not any(k["text"] == text for k in self.report.known):
            self.report.known.append({"code": "log_eps", "text": text, "size": abs(size)})

    # --- 3. backward ----------------------------------------------------------------

    def references(self):
        """The port's own gradients of both reference losses, when autograd reaches them."""
        self.ref = None
        if self.out["scores"] is None:
            return
        try:
            ce_cap, ce, _ = self.torch.recorded_pass(self.tx, self.tt, "cross_entropy")
            book_cap, book, _ = self.torch.recorded_pass(self.tx, self.tt, "book")
        except PortSetupError:
            return
        zeros = {k: np.zeros(tuple(v.shape)) for k, v in self.torch.params.items()}
        ce = {k: zeros[k] if v is None else v for k, v in ce.items()}
        book = {k: zeros[k] if v is None else v for k, v in book.items()}
        gap_layers = [None if a.grad_output is None or b.grad_output is None else b.grad_output - a.grad_output
                      for a, b in zip(ce_cap.records, book_cap.records)]
        self.ref = {"cross_entropy": _np_layout(self.pairing, ce), "book": _np_layout(self.pairing, book),
                    "gap": _np_layout(self.pairing, {k: book[k] - ce[k] for k in ce}),
                    "gap_layers": gap_layers}

    def backward(self):
        self.references()
        t_grads = _np_layout(self.pairing, self.t_grads)
        unused = [p for p in self.pairing if t_grads[p.numpy] is None]
        for p in unused:
            t_grads[p.numpy] = np.zeros_like(self.np.params[p.numpy])
        self.unused_torch = {p.numpy for p in unused}
        ref = self.ref
        t_kind = None
        if self.t_source.startswith("autograd"):
            t_kind = self.t_loss_kind
        elif ref is not None:
            t_kind = _grad_kind(t_grads, ref["cross_entropy"], ref["book"], self.dtype)
        use_numerical = self.numpy_gradient == "numerical" or (
            self.numpy_gradient == "auto" and not self.np.has_gradient)
        if self.numpy_gradient == "backprop" and not self.np.has_gradient:
            raise PortSetupError("numpy side: numpy_gradient='backprop' but the model has no gradient(x, t)")
        if use_numerical:
            self.numerical(t_grads, t_kind)
        else:
            np_kind = None if ref is None else _grad_kind(self.np_grads, ref["cross_entropy"], ref["book"], self.dtype)
            self.analytic(t_grads, np_kind, t_kind)

    def _order(self):
        """Backward order: for each paired layer from the last, its output's gradient then
        its parameters; parameters of no paired layer last, from the last."""
        np_recs = self.np_capture.records
        t_recs = self.t_capture.records
        seen, order = set(), []
        for i, j in reversed(self.layer_pairs):
            order.append(("layer", i, j))
            owned = list(np_recs[i].param_names)
            torch_owned = set(t_recs[j].param_names)
            owned += [p.numpy for p in self.pairing if p.torch in torch_owned and p.numpy not in owned]
            for name in owned:
                if name not in seen:
                    seen.add(name)
                    order.append(("param", name))
        order += [("param", p.numpy) for p in reversed(self.pairing) if p.numpy not in seen]
        return order

    def analytic(self, t_grads, np_kind, t_kind):
        gap = None if self.ref is None else self.ref["gap"]
        if np_kind and t_kind and np_kind != t_kind and "either" not in (np_kind, t_kind):
            self.known("gradient", np_kind, t_kind, max(float(np.max(np.abs(v))) for v in gap.values()))
        np_recs, t_recs = self.np_capture.records, self.t_capture.records
        for item in self._order():
            if item[0] == "layer":
                _, i, j = item
                a, b = np_recs[i], t_recs[j]
                if a.grad_output is None or b.grad_output is None:
                    continue
                layer_gap = None if self.ref is None or j >= len(self.ref["gap_layers"]) else self.ref["gap_layers"][j]
                shift = _shift(np_kind, t_kind, layer_gap)
                self.add(compare_arrays("backward", f"{a.key} (output)", f"{b.key} (output)",
                                        a.grad_output, b.grad_output,
                                        port_tolerance(a.grad_output, self.dtype), shift=shift,
                                        shift_name=GAP),
                         expected=a.grad_output, actual=b.grad_output,
                         known=None if layer_gap is None else {"log_eps": layer_gap})
            else:
                name = item[1]
                pair = next(p for p in self.pairing if p.numpy == name)
                g_gap = None if gap is None else gap[name]
                shift = _shift(np_kind, t_kind, g_gap)
                self.add(compare_arrays("backward", name, pair.torch + (".T" if pair.transposed else ""),
                                        self.np_grads[name], t_grads[name],
                                        port_tolerance(self.np_grads[name], self.dtype), shift=shift,
                                        shift_name=GAP),
                         expected=self.np_grads[name], actual=t_grads[name], param=name,
                         known=None if g_gap is None else {"log_eps": g_gap})
        self.report.settings["gradients"] = f"NumPy backprop vs torch {self.t_source}"

    def numerical(self, t_grads, t_kind):
        """The torch gradient against central differences of the NumPy loss, along random
        directions; elements located where a direction fails."""
        np_kind = self.np_loss_kind
        gap = None if self.ref is None else self.ref["gap"]
        allowance = None
        if gap is not None and np_kind and t_kind and "either" not in (np_kind, t_kind) \
                and np_kind != t_kind:
            # the NumPy loss's gradient minus the torch one: the 1e-7's share, signed
            allowance = {k: (1 if np_kind == "book" else -1) * v for k, v in gap.items()}
            self.known("gradient", np_kind, t_kind, max(float(np.max(np.abs(v))) for v in gap.values()))
        if self.np.model is None:
            return self.recorded_numerical(t_grads, allowance)
        x, t = self.x, self.t
        model = self.np.model
        result = check_gradient_directions(lambda: model.loss(x, t), self.np.params, t_grads,
                                           directions=self.directions, seed=self.seed,
                                           locate=self.locate, allowance=allowance,
                                           allowance_name=GAP)
        self.report.numerical = result.to_dict()
        by_name = {r.name: r for r in result.rows}
        for name in self._param_order():
            r = by_name[name]
            worst = r.worst
            pair = next(p for p in self.pairing if p.numpy == name)
            # statistics of directional differences, not of elements: no mean or median
            row = Check("backward", name, pair.torch + (".T" if pair.transposed else ""),
                        tuple(self.np.params[name].shape), max_abs=r.max_abs, max_rel=r.max_rel,
                        mean_abs=None, median_abs=None, mean_rel=None, median_rel=None,
                        worst_expected=None, worst_actual=None,
                        rtol=0.0, atol=worst.tolerance if worst else 0.0,
                        why=f"central differences of the NumPy loss along {self.directions} random "
                            f"directions: round-off + Richardson truncation + the claim's round-off",
                        worst_ratio=worst.ratio if worst else 0.0, passed=r.passed,
                        problem=r.problem, note=r.note,
                        allowance=GAP if allowance else None,
                        max_allowance=worst.allowance if worst else 0.0)
            element = r.worst_element
            expected = None
            if element is not None:
                row.worst_index = tuple(int(i) for i in element.index)
                row.worst_expected, row.worst_actual = element.numerical, element.claimed
            if r.located == "elements" and len(r.elements) == int(np.prod(r.shape)):
                expected = np.zeros(r.shape)
                for e in r.elements:
                    expected[tuple(e.index)] = e.numerical
            self.add(row, expected=expected, actual=t_grads[name], param=name)
        self.report.settings["gradients"] = (f"central differences of the NumPy loss along "
                                             f"{self.directions} random directions vs torch "
                                             f"{self.t_source}")

    def recorded_numerical(self, t_grads, allowance):
        """A golden file's element-wise central differences, with their error bounds."""
        golden = self.np.golden
        for name in self._param_order():
            pair = next(p for p in self.pairing if p.numpy == name)
            bound = golden.arrays[f"grad_error/{name}"]
            if allowance is not None:
                bound = np.abs(bound) + np.abs(allowance[name])
            self.add(compare_arrays("backward", name, pair.torch + (".T" if pair.transposed else ""),
                                    golden.grads[name], t_grads[name],
                                    port_tolerance(golden.grads[name], self.dtype), allowance=bound,
                                    allowance_name="difference error" + (" + 1e-7 gap" if allowance else "")),
                     expected=golden.grads[name], actual=t_grads[name], param=name)
        self.report.settings["gradients"] = ("recorded central differences of the NumPy loss vs "
                                             f"torch {self.t_source}")

    def _param_order(self):
        return [item[1] for item in self._order() if item[0] == "param"]

    # --- 4. verdict and diagnosis ---------------------------------------------------

    def verdict(self):
        report = self.report
        report.passed = all(c.passed for c in report.checks)
        first = next((c for c in report.checks if not c.passed), None)
        if first is None:
            return report
        report.first_mismatch = {"phase": first.phase, "where": first.where, "torch": first.torch,
                                 "step": first.step, "max_abs": first.max_abs, "max_rel": first.max_rel}
        ctx = self.context.get(id(first), {})
        report.diagnosis = self.diagnose(first, ctx)
        detail = self.locate_forward(first, ctx)
        if detail:
            report.first_mismatch["detail"] = detail
        return report

    def diagnose(self, row, ctx):
        found = []
        for name in sorted(getattr(self, "unused_torch", ()), key=list(self.twin).index):
            # an unused parameter explains a forward mismatch as well as its own gradient
            if row.phase != "backward" or ctx.get("param") == name:
                found.append({"code": "unused", "parameter": name,
                              "text": f"the torch loss does not reach {self.twin[name]} (autograd "
                                      f"gives it no gradient): the port never uses it"})
        found += self.counterfactuals(row, ctx)
        expected, actual = ctx.get("expected"), ctx.get("actual")
        if expected is not None and actual is not None:
            for d in diagnose(np.asarray(expected), np.asarray(actual), dtype=self.dtype,
                              batch_size=int(self.x.shape[0]), inputs=ctx.get("inputs"),
                              known=ctx.get("known")):
                found.append(d)
        unique = []
        for d in found:  # one entry per bug: the general test adds nothing to a named parameter's
            same = [u for u in unique if u["code"] == d["code"]]
            if not same or (d.get("parameter") and all(u.get("parameter") not in (None, d["parameter"])
                                                        for u in same)):
                unique.append(d)
        return unique

    def counterfactuals(self, row, ctx):
        """Rerun the NumPy layer where the forward parts, on its own recorded input, with a
        usual bug applied to one of its parameters (in place, restored bit for bit): a
        square weight transposed, a parameter left out (zeroed). A bug that reproduces the
        torch output is the port's."""
        if row.phase != "forward" or "np_index" not in ctx:
            return []
        rec = self.np_capture.records[ctx["np_index"]]
        layer = dict(self.np.items).get(rec.key)
        if layer is None or rec.input is None:
            return []
        actual = np.asarray(ctx["actual"], dtype=np.float64)
        tol = port_tolerance(ctx["actual"], self.dtype)
        found = []
        for name in rec.param_names:
            value = self.np.params[name]
            trials = []
            if value.ndim == 2 and value.shape[0] == value.shape[1]:
                trials.append(("transpose", value.T.copy(),
                               f"{row.torch} computes {rec.key} with {name} transposed: a square "
                               f"weight used without its transpose (torch {self.twin[name]})"))
            if np.any(value != 0):
                trials.append(("unused", np.zeros_like(value),
                               f"{row.torch} computes {rec.key} as if {name} were zero: the port "
                               f"never uses {self.twin[name]}"))
            for code, replacement, text in trials:
                saved = value.copy()
                try:
                    value[...] = replacement
                    out = layer.forward(rec.input.copy())
                except Exception:
                    continue
                finally:
                    value[...] = saved
                out = np.asarray(out, dtype=np.float64)
                if out.shape == actual.shape and np.all(
                        np.abs(out - actual) <= tol.atol + tol.rtol * np.abs(actual)):
                    found.append({"code": code, "text": text, "parameter": name})
        return found

    def locate_forward(self, row, ctx):
        """Where a forward mismatch starts: at the torch module itself, or before it,
        in a functional call between modules (a skipped or extra operation)."""
        if row.phase != "forward" or "t_index" not in ctx:
            return None
        a = self.np_capture.records[ctx["np_index"]]
        b = self.t_capture.records[ctx["t_index"]]
        if a.input is None or b.input is None or a.input.shape != b.input.shape:
            return None
        tol = port_tolerance(a.input, self.dtype)
        if np.all(np.abs(a.input - b.input) <= tol.atol + tol.rtol * np.abs(a.input)):
            return (f"{b.key} receives the same input as {a.key}: the difference arises inside "
                    f"{b.key}")
        text = (f"{b.key}'s input already differs from {a.key}'s: the difference arises between "
                f"modules, in a functional call no hook sees")
        earlier = self.np_capture.records[:ctx["np_index"]]
        for k in range(len(earlier) - 1, -1, -1):
            r = earlier[k]
            if r.output is not None and r.output.shape == b.input.shape and np.all(
                    np.abs(r.output - b.input) <= tol.atol + tol.rtol * np.abs(r.output)):
                skipped = [e.key for e in earlier[k + 1:]]
                if skipped:
                    text += (f"; it equals the output of {r.key}, so the port skips "
                             f"{', '.join(skipped)}")
                break
        return text


def _softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def check_port(numpy_model, torch_model, x=None, t=None, *, dtype=None, loss="cross_entropy", param_map=None,
               device="cpu", numpy_gradient="auto", directions=4, locate="failing", seed=0):
    """Compare a NumPy model and its torch port on one batch; returns a ``PortReport``.

    ``numpy_model``: ``params`` (dict of arrays) and ``loss(x, t)``; optionally
    ``predict``, ``gradient`` and ``layers``; or a golden file (its path, or a
    ``GoldenFile``), whose own batch is used when ``x`` and ``t`` are None. ``torch_model``: an ``nn.Module``
    returning scores, or a literal port (``params`` dict of tensors, ``loss``,
    optionally ``predict`` and ``gradient``). ``x``, ``t``: NumPy arrays (``t``
    class indices or one-hot rows). ``dtype``: the run's, default the NumPy
    parameters'. ``loss``: the torch side's, ``"cross_entropy"``, ``"book"`` or
    ``"model"``. ``param_map``: ``{"W1": "fc1.weight", ...}`` or the CLI's
    ``"W1=fc1.weight.T,..."``. ``numpy_gradient``: ``"auto"`` (backprop when the
    model has it, else numerical), ``"backprop"`` or ``"numerical"``;
    ``directions``, ``locate`` and ``seed`` steer the numerical check.

    Neither model is changed: both sides work on deep copies. Problems with
    the request (a model without ``params``, a batch the model cannot take,
    NaN in an output) raise ``PortSetupError`` (a ``ValueError``).
    """
    from .golden import GoldenFile, is_golden_path
    if is_golden_path(numpy_model):
        numpy_model = GoldenFile(numpy_model)
    run = _Run(numpy_model, torch_model, x, t, dtype=dtype, loss=loss, param_map=param_map,
               device=device, numpy_gradient=numpy_gradient, directions=directions,
               locate=locate, seed=seed)
    run.parameters()
    run.forward()
    run.backward()
    return run.verdict()
