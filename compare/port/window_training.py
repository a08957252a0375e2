"""Training side by side over consecutive windows of a corpus, the state carried.

The book's ``RnnlmTrainer`` cuts a corpus into windows (``corpus.py``) and trains on them
in order without resetting the model's hidden state: its stateful ``TimeLSTM`` starts each
window where the last one ended, and backpropagates through the window alone. Here each
side trains as its own code does, on the same windows from the same parameters:

* the NumPy side, the book's list-interface model: ``forward(x, t)``, ``backward()``, the
  gradients of a parameter listed twice (or once transposed) summed (``remove_duplicate``),
  the book's ``clip_grads`` where ``max_grad_norm`` is given (``rate = max_norm / (norm +
  1e-6)``, applied where below 1), then the book's ``SGD`` (``params[i] -= lr * grads[i]``),
  or the NumPy optimizer given: the book's list interface (``update(params, grads)`` on the
  de-duplicated lists, as its trainer hands them), else the dict interface (keyed by name);
* the port: ``loss.backward()``, ``torch.nn.utils.clip_grad_norm_``, ``optimizer.step()``
  (``torch.optim.SGD`` by default), its state carried as its ``forward`` carries it: the
  check's own putting back of the state (``hidden_state.py``) is suspended (``carried``).

A side that draws (the book's ``TimeDropout``, torch's ``nn.Dropout`` or a stacked
``nn.LSTM``'s dropout) draws once per window for both: the NumPy side's draws on the window
are recorded on a tape of its own (``draws.py``), whose masks answer the port's draws on
that window, and every rerun of the window replays them. A draw the tape cannot answer
leaves the training rows not judged, counted and said.

Compared at each step: the loss, every parameter after its update, and the state each
side carries into the next window: each NumPy recurrent layer's ``h`` (and ``c``) against
the ``(h_n, c_n)`` the port's recurrent module returned (layer by layer, in order).

Tolerance: as ``training.py``'s, linear in the number of updates (``training_tolerance``),
a state row's as a parameter's.

Where the sides part, the hypotheses (``HYPOTHESES``: ``double_bias``, ``state_reset``,
``tied_weights``, ``optimizer``) are each applied to a fresh copy of one side, which is
trained again from the start through the parting step and ``AFTER_PARTING`` steps after
it, on the same draws: one whose every loss, parameter and state row then agrees is named
at the parting step. Where the NumPy optimizer is the book's Adam, a port rerun whose
optimizer is torch's Adam with the same betas takes the book's eps at each step
(``adam_eps``), so the bug alone must reproduce the run.
"""
import copy

import numpy as np

from . import adam_eps
from .check import check_port
from .capture import is_torch_recurrent
from .corpus import windows as corpus_windows
from .check.unjudged import training_unjudged
from .draws import DrawTape
from .check.state import pair_sides
from .hidden_state import carried, start_state
from .layers.recurrent import KINDS
from .optimizer_traps import optimizer_trap
from .optimizers import SGD, numpy_optimizer_of, optimizer_name, torch_optimizer_of
from .reference import reference_side
from .reference.golden import GoldenFile, is_golden_path
from .reference.list_door import ListDoor
from .report import PortReport, compare_arrays
from .targets import PortSetupError, call_side
from .tolerance import training_tolerance, update_tolerance
from .torch_side import TorchSide

# a hypothesis reruns a side through the parting step and this many after it (as training.py)
AFTER_PARTING = 2
# both sides' steps kept for those reruns while they fit: a run parting beyond them is not rerun
HISTORY_BYTES = 256 * 2 ** 20
BOOK_CLIP_EPS = 1e-6  # the book's clip_grads: rate = max_norm / (total_norm + 1e-6)
ADAM_EPS = adam_eps.CODE


def clip_grads(grads, max_norm):
    """The book's ``common/util.py`` ``clip_grads``, in place, its sum in the gradients' dtype."""
    total_norm = 0
    for g in grads:
        total_norm += np.sum(g ** 2)
    total_norm = np.sqrt(total_norm)
    rate = max_norm / (total_norm + BOOK_CLIP_EPS)
    if rate < 1:
        for g in grads:
            g *= rate


class NumpyWindows:
    """The book's list model trained as ``RnnlmTrainer`` trains it, its state carried
    (``reset=True``: set back to the start before each window)."""

    def __init__(self, door, lr, max_grad_norm, reset=False, optimizer=None):
        self.door, self.lr, self.max_grad_norm, self.reset = door, lr, max_grad_norm, reset
        # a fresh copy: the optimizer's state (momentum, Adam's m and v) is this run's own
        self.optimizer = copy.deepcopy(optimizer)
        self.interface = optimizer_interface(optimizer, door) if optimizer is not None else None
        self.recurrent = [(name, layer) for name, layer in door.layers.items()
                          if any(k.is_numpy(type(layer).__name__) for k in KINDS)]
        door.fresh()  # the first window from the state the check found (a pairing pass moved it)

    def step(self, x, t, tape):
        """One window; ``tape``: its draws, recorded on the first pass over it and replayed
        on every rerun of it."""
        door, model = self.door, self.door.inner
        if self.reset:
            door.fresh()
        before, recording = np.random.get_state(), tape.recording
        with tape.numpy_pass():
            loss = call_side("numpy side", "forward", model.forward, x, t)
            call_side("numpy side", "backward", model.backward)
        if not tape.numpy and not _same_numpy_stream(before, np.random.get_state()):
            raise PortSetupError(UNSHARED.format(side="the NumPy model"))
        if recording:  # the book's masks are the first comparisons made of its draws
            tape.keep_masks([], lambda record: False)
        grads = {}
        for name, at in door.positions.items():  # remove_duplicate: one parameter, grads summed
            total = np.array(model.grads[at[0]])
            for i in at[1:]:
                total = total + (model.grads[i].T if i in door.transposes else model.grads[i])
            grads[name] = total
        if self.max_grad_norm is not None:
            clip_grads(list(grads.values()), self.max_grad_norm)
        if self.optimizer is None:
            for name, value in door.params.items():
                value -= self.lr * grads[name]
        elif self.interface == "list":
            call_side("numpy optimizer", "update", self.optimizer.update,
                      list(door.params.values()), [grads[name] for name in door.params])
        else:
            call_side("numpy optimizer", "update", self.optimizer.update, door.params, grads)
        return float(loss), {n: v.copy() for n, v in door.params.items()}, self.states()

    def states(self):
        out = []
        for name, layer in self.recurrent:
            for attr in ("h", "c"):
                value = getattr(layer, attr, None)
                if isinstance(value, np.ndarray):
                    out.append((f"{name}.{attr}", value.copy()))
        return out


def optimizer_interface(optimizer, door):
    """``"list"`` where ``update`` takes the book's lists, ``"dict"`` where it takes the
    parameters keyed by name: tried on copies (with zero gradients), so the run itself
    is the optimizer's first update."""
    errors = []
    for interface in ("list", "dict"):
        params = {n: v.copy() for n, v in door.params.items()}
        grads = {n: np.zeros_like(v) for n, v in params.items()}
        args = ((list(params.values()), list(grads.values())) if interface == "list"
                else (params, grads))
        try:
            copy.deepcopy(optimizer).update(*args)
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            continue
        return interface
    raise PortSetupError(f"numpy optimizer: {type(optimizer).__name__}.update takes neither the "
                         f"book's lists (params, grads) ({errors[0]}) nor dicts keyed by "
                         f"parameter name ({errors[1]})")


class PortWindows:
    """The port trained as a torch loop trains it, its state carried as its code carries it
    (``reset=True``: put back before each window); ``frozen``: tensors whose gradient is
    dropped (a hypothesis)."""

    def __init__(self, side, pairing, torch_optimizer, lr, max_grad_norm, reset=False, frozen=(),
                 eps_at=None, book_betas=None):
        import torch
        self.side, self.pairing, self.reset = side, pairing, reset
        # eps_at(t): the optimizer's eps set before its t-th step (adam_eps.py's twin)
        self.eps_at, self.t = eps_at, 0
        self.max_grad_norm = max_grad_norm
        for name in frozen:
            side.params[name].requires_grad_(False)
        self.params = list(side.params.values())
        self.optimizer, self.scheduler = torch_optimizer_of(torch_optimizer, self.params, lr,
                                                            model=side.module)
        if book_betas is not None and eps_at is None:
            # a hypothesis's rerun: where its optimizer is the book's Adam but for the eps,
            # that known difference is taken out too, so the rerun answers the NumPy run itself
            # (``book_betas``: the NumPy Adam's betas, adam_eps.numpy_betas)
            betas = adam_eps.port_matches(self.optimizer, book_betas)
            if betas:
                self.eps_at = lambda t: adam_eps.book_eps(betas[1], t)
        self.returned = []
        start_state(side.model)  # the first window from the state the port was handed in
        self.recurrent = [(name, m) for name, m in side.model.named_modules()
                          if is_torch_recurrent(m, cells=False)]
        for name, module in self.recurrent:
            module.register_forward_hook(self._keep(name))
        self.torch = torch

    def _keep(self, name):
        def hook(module, args, output):
            state = output[1]
            parts = state if isinstance(state, tuple) else (state,)
            self.returned.append((name, [p.detach().cpu().numpy().copy() for p in parts]))
        return hook

    def step(self, x, t, tape):
        """One window, its draws answered by the NumPy side's on it (``tape``)."""
        torch, side = self.torch, self.side
        side.tape = tape
        tx, tt = side.tensor(x), side.tensor(t)
        self.returned = []
        for p in self.params:
            p.grad = None
        before = torch.get_rng_state()
        with torch.enable_grad():
            if self.reset:
                scores = side.scores(tx)
            else:
                with carried(side.model):
                    scores = side.scores(tx)
            loss = side.losses_of(scores, tt)[side.loss_name]
            try:
                loss.backward()
            except RuntimeError as exc:
                if "second time" in str(exc):
                    raise PortSetupError(
                        "torch side: backward reached the window before through the state the "
                        "port carried: it keeps (h, c) without detach(), so the next window's "
                        "graph holds the last one's, whose buffers backward has freed; the book's "
                        "trainer backpropagates through one window: carry "
                        "tuple(s.detach() for s in state)") from exc
                call_side("torch side", "backward", _raise, exc)
        if not tape and (not torch.equal(before, torch.get_rng_state()) or _drops(side.model)):
            raise PortSetupError(UNSHARED.format(side="the port"))
        if self.max_grad_norm is not None:
            # over what the optimizer holds, as a loop clips the list it handed it: a tied
            # tensor held twice counts twice
            held = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_([p for p in held if p.grad is not None],
                                           self.max_grad_norm)
        self.t += 1
        if self.eps_at is not None:
            for group in self.optimizer.param_groups:
                group["eps"] = self.eps_at(self.t)
        call_side("torch optimizer", "step", self.optimizer.step)
        if self.scheduler is not None:
            call_side("torch optimizer", "scheduler step", self.scheduler.step)
        return float(loss.item()), side.values(self.pairing), self.states()

    def states(self):
        """Each returned state, layer by layer (a stacked module's ``h_n[l]``), as
        ``[(name, array (N, H))]``, ``h`` then ``c``."""
        out = []
        for name, parts in self.returned[-len(self.recurrent):] if self.recurrent else []:
            labels = ("h_n", "c_n")[:len(parts)]
            for layer in range(parts[0].shape[0]):
                for label, part in zip(labels, parts):
                    out.append((f"{name} {label}[{layer}]", part[layer]))
        return out


# the sides' draws are shared through numpy.random's uniform and binomial draws
# (``draws.py``); one side drawing where the other drew nothing on the window, or drawing
# from a stream the tape does not answer, would part two right sides: refused
UNSHARED = ("{side} draws at random in training where the other side drew nothing that "
            "could answer it on the window (NumPy draws are shared through numpy.random's "
            "rand, random, uniform and binomial), so the training cannot be judged; check "
            "one window without --steps, or train with the dropout off")


def _same_numpy_stream(a, b):
    return a[0] == b[0] and a[2:] == b[2:] and np.array_equal(a[1], b[1])


def _drops(model):
    import torch
    for m in model.modules():
        if not m.training:
            continue
        if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0:
            return True
        if isinstance(m, torch.nn.RNNBase) and m.dropout > 0 and m.num_layers > 1:
            return True
    return False


def _raise(exc):
    raise exc


def _state_pairs(np_states, t_states):
    """NumPy and port states paired in order, where they come in the same number and shapes."""
    if len(np_states) != len(t_states) or not np_states:
        return None
    if any(np.shape(a) != np.shape(b) for (_, a), (_, b) in zip(np_states, t_states)):
        return None
    return list(zip(np_states, t_states))


def _rows(k, np_step, t_step, pairing, dtype, lr, grad_atol, twin_step=None):
    """The step's rows; ``twin_step``: the port's twin (``adam_eps.py``), the port's values
    less the twin's added to the NumPy values as the known difference."""
    np_loss, np_values, np_states = np_step
    t_loss, t_values, t_states = t_step

    def shift(actual, twin):
        if twin_step is None:
            return {}
        return {"shift": np.asarray(actual, np.float64) - np.asarray(twin, np.float64),
                "shift_name": ADAM_EPS}
    rows = [compare_arrays("training", "loss", "loss", np.array(np_loss), np.array(t_loss),
                           training_tolerance(np.array(np_loss), dtype, k + 1), step=k,
                           **shift(t_loss, twin_step and twin_step[0]))]
    for pair in pairing:
        e = np_values[pair.numpy]
        rows.append(compare_arrays("training", pair.numpy, pair.view, e, t_values[pair.numpy],
                                   update_tolerance(e, dtype, k + 1, lr, grad_atol.get(pair.numpy)),
                                   step=k, **shift(t_values[pair.numpy],
                                                   twin_step and twin_step[1][pair.numpy])))
    twin_states = twin_step[2] if twin_step is not None else None
    for i, ((np_name, e), (t_name, a)) in enumerate(_state_pairs(np_states, t_states) or ()):
        rows.append(compare_arrays("training", f"state {np_name}", t_name, e, a,
                                   training_tolerance(e, dtype, k + 1), step=k,
                                   **shift(a, twin_states and twin_states[i][1])))
    return rows


def _agrees(history, other, pairing, dtype, lr, grad_atol, numpy_first):
    """Do ``other``'s steps, compared with ``history``'s, pass every row?"""
    for k, (mine, theirs) in enumerate(zip(history, other)):
        np_step, t_step = (mine, theirs) if numpy_first else (theirs, mine)
        if not all(r.passed for r in _rows(k, np_step, t_step, pairing, dtype, lr, grad_atol)):
            return False
    return True


def check_window_training(numpy_model, torch_model, corpus, *, steps, batch_size, time_size,
                          lr=0.1, max_grad_norm=None, numpy_optimizer=None, torch_optimizer=None,
                          dtype=None, loss=None,
                          param_map=None, device="cpu", first_batch_check=True, seed=0,
                          **port_options):
    """Train both sides over ``steps`` consecutive windows of ``corpus`` (``corpus.py``);
    returns a ``PortReport``: the first window's ``check_port`` (with
    ``first_batch_check``), then a row per loss, parameter and carried state, each at its
    first step out of tolerance (else its worst), and ``report.training`` the curves."""
    if not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr <= 0:
        raise PortSetupError(f"lr must be a finite positive number, got {lr!r}")
    if max_grad_norm is not None and (not isinstance(max_grad_norm, (int, float))
                                      or not np.isfinite(max_grad_norm) or max_grad_norm <= 0):
        raise PortSetupError(f"max grad norm must be a finite positive number, got {max_grad_norm!r}")
    if is_golden_path(numpy_model):
        numpy_model = GoldenFile(numpy_model)
    golden = numpy_model if isinstance(numpy_model, GoldenFile) else None
    if golden is not None:
        cut = golden_windows(golden, steps, batch_size, time_size, lr, max_grad_norm,
                             numpy_optimizer)
    else:
        cut = corpus_windows(corpus, batch_size, time_size, steps)
    np_side = reference_side(numpy_model, dtype)
    if golden is None and not isinstance(np_side.model, ListDoor):
        raise PortSetupError("numpy side: training over a corpus's windows takes the book's "
                             "list-interface model (params and grads lists, forward(xs, ts), "
                             "backward())")
    # built and its interface read before any check, so a wrong one is refused at once
    np_optimizer = numpy_optimizer_of(numpy_optimizer, lr) if numpy_optimizer is not None else None
    if np_optimizer is not None:
        optimizer_interface(np_optimizer, np_side.model)
    np_name = optimizer_name(np_optimizer) if np_optimizer is not None else "SGD"
    if golden is not None:
        np_name = f"{golden.meta['training']['optimizer']} (recorded)"
    if first_batch_check:
        report = check_port(numpy_model, torch_model, *cut[0], dtype=dtype, loss=loss,
                            param_map=param_map, device=device, seed=seed,
                            torch_optimizer=torch_optimizer, lr=lr, **port_options)
    else:
        report = PortReport()
    loss = loss or report.settings.get("loss") or "cross_entropy"
    dtype = np_side.dtype.name
    t_side = TorchSide(torch_model, dtype, device, loss)
    if t_side.kind != "module" or t_side.loss_name == "model":
        raise PortSetupError("torch side: training over a corpus's windows takes an nn.Module "
                             "whose forward(xs) returns the scores")
    # the first window's check read the gate order off the values: its pairing, else the
    # NumPy layer's own convention
    pairing = report.pairing or pair_sides(np_side, t_side, cut[0][0], param_map, cut[0][1])
    report.pairing = pairing
    if any(p.numpy not in np_side.params for p in pairing) or (
            report.first_mismatch or {}).get("phase") == "parameters":
        # an untied port against tied NumPy weights, say: no update maps one onto the other
        report.notes.append("the training over the windows is not run: the parameters do not "
                            "pair one for one (the first mismatch says where)")
        report.passed = False
        return report
    t_side.load(pairing, np_side.params)
    grad_atol = {r.where: r.atol for r in report.checks if r.phase == "backward" and r.rtol}
    # where the NumPy side is a recording, no hypothesis reruns it
    starts = (copy.deepcopy(np_side.model) if golden is None else None, t_side.copy())
    np_run = (NumpyWindows(np_side.model, lr, max_grad_norm, optimizer=np_optimizer)
              if golden is None else GoldenWindows(golden))
    t_run = PortWindows(t_side, pairing, torch_optimizer, lr, max_grad_norm)
    if golden is not None:
        np_betas = golden.meta["training"].get("book_betas")
    else:
        np_betas = (adam_eps.numpy_betas(np_optimizer, np_run.interface)
                    if np_optimizer is not None else None)
    betas = adam_eps.port_matches(t_run.optimizer, np_betas)
    twin = (PortWindows(starts[1].copy(), pairing, torch_optimizer, lr, max_grad_norm,
                        eps_at=lambda t: adam_eps.book_eps(betas[1], t)) if betas else None)
    known_sizes = []
    # the NumPy run, the port's, and the port's twin's where there is one (adam_eps)
    rows, first_fail, history = {}, None, ([], [], [])
    curves = {"step": [], "loss_numpy": [], "loss_torch": [], "max_rel_param": [],
              "worst_param": [], "max_rel_state": [], "tolerance": []}
    stated, kept_bytes, tapes, missed = False, 0, [], []
    for k, (x, t) in enumerate(cut):
        tape = DrawTape()  # this window's draws: the NumPy side's, answering the port's
        np_step = np_run.step(x, t, tape)
        t_step = t_run.step(x, t, tape)
        missed += tape.missed
        twin_step = twin.step(x, t, tape) if twin is not None else None
        tapes.append(tape)
        if twin_step is not None:
            known_sizes.append(max(_normwise(twin_step[1][p.numpy], t_step[1][p.numpy])
                                   for p in pairing))
        stated = stated or _state_pairs(np_step[2], t_step[2]) is not None
        if (kept_bytes <= HISTORY_BYTES and len(history[0]) == k
                and (first_fail is None or k <= first_fail + AFTER_PARTING)):
            history[0].append(np_step)
            history[1].append(t_step)
            if twin_step is not None:
                history[2].append(twin_step)
            kept_bytes += 2 * sum(v.nbytes for v in np_step[1].values()) + _tape_bytes(tape)
        step_rows = _rows(k, np_step, t_step, pairing, dtype, lr, grad_atol, twin_step)
        for row in step_rows:
            kept = rows.get(row.where)
            if kept is None or (kept.passed and (not row.passed or row.worst_ratio > kept.worst_ratio)):
                rows[row.where] = row
        if first_fail is None and not all(r.passed for r in step_rows):
            first_fail, first_rows = k, [r for r in step_rows if not r.passed]
        rel = {p.numpy: _normwise(np_step[1][p.numpy], t_step[1][p.numpy]) for p in pairing}
        worst = max(rel, key=rel.get)
        curves["step"].append(k)
        curves["loss_numpy"].append(np_step[0])
        curves["loss_torch"].append(t_step[0])
        curves["max_rel_param"].append(rel[worst])
        curves["worst_param"].append(worst)
        curves["tolerance"].append((k + 1) * training_tolerance(np.ones(1), dtype, 1).atol)
        pairs = _state_pairs(np_step[2], t_step[2]) or ()
        curves["max_rel_state"].append(max((_normwise(e, a) for (_, e), (_, a) in pairs), default=None))
    report.checks.extend(rows.values())
    if known_sizes:
        worst_step = int(np.argmax(known_sizes))
        report.known.append({"code": ADAM_EPS, "size": known_sizes[worst_step],
                             "text": adam_eps.text(betas[1], known_sizes[worst_step], worst_step)})
        curves[ADAM_EPS] = known_sizes
    if not stated:
        report.notes.append("the carried state is not compared: the port's recurrent modules "
                            "(nn.RNN, nn.LSTM, nn.GRU) return no state that pairs with the NumPy "
                            "recurrent layers' h and c, one for one")
    if missed:
        training_unjudged(report, missed)
        first_fail = None  # the steps compared two random streams: no step parted first
    report.passed = all(c.passed for c in report.checks)
    report.training = {"steps": steps, "batch_size": batch_size, "time_size": time_size, "lr": lr,
                       "max_grad_norm": max_grad_norm, **curves, "numpy_optimizer": np_name,
                       "torch_optimizer": type(t_run.optimizer).__name__, "storage": "full"}
    report.settings.update({"steps": steps, "time size": time_size, "lr": lr,
                            "max grad norm": max_grad_norm, "numpy optimizer": np_name,
                            "torch optimizer": type(t_run.optimizer).__name__})
    if first_fail is not None and report.first_mismatch is None:
        row = first_rows[0]
        report.first_mismatch = {"phase": "training", "where": row.where, "torch": row.torch,
                                 "step": first_fail, "max_abs": row.max_abs, "max_rel": row.max_rel,
                                 "detail": f"the two sides part at step {first_fail} (window "
                                           f"{first_fail})"}
        context = dict(starts=starts, cut=list(zip(cut, tapes))[:len(history[0])],
                       history=history, pairing=pairing,
                       dtype=dtype, lr=lr, max_grad_norm=max_grad_norm, grad_atol=grad_atol,
                       numpy_optimizer=np_optimizer, torch_optimizer=torch_optimizer,
                       step=first_fail, port_optimizer=t_run.optimizer, port_params=t_run.params,
                       port_names={id(p): n for n, p in t_side.params.items()},
                       book_betas=np_betas,
                       numpy_name=np_name, scheduler=t_run.scheduler)
        for hypothesis in (HYPOTHESES if first_fail < len(history[0]) else ()):
            found = hypothesis(**context)
            if found:
                report.diagnosis = [found]
                break
        else:
            report.first_mismatch["unexplained"] = (
                f"unexplained: no hypothesis, applied, reproduces the run through step "
                f"{len(history[0]) - 1}; measured at {row.where}: max abs {row.max_abs:.3g}, "
                f"max rel {row.max_rel:.3g}")
    return report


class GoldenWindows:
    """A golden file's recorded training over windows, with ``NumpyWindows``'s ``step``:
    each window's draws put on its tape as they were drawn, the loss, the parameters after
    the update and the carried state as recorded."""

    interface = None

    def __init__(self, golden):
        self.golden, self.k = golden, 0

    def step(self, x, t, tape):
        a, tr, k = self.golden.arrays, self.golden.meta["training"], self.k
        drawn = tr["draws"][k]
        if tape.recording:
            tape.numpy = [(name, a[f"train/draw/{k}/{i}"]) for i, name in enumerate(drawn["numpy"])]
            tape.masks = [a[f"train/mask/{k}/{i}"] for i in range(len(drawn["keeps"]))]
            tape.keeps = list(drawn["keeps"])
            tape.recording = not tape.numpy
        self.k += 1
        return (float(a["train/loss"][k]),
                {n: a[f"train/param/{n}"][k] for n in self.golden.meta["params"]},
                [(name, a[f"train/state/{i}"][k]) for i, name in enumerate(tr["state_names"])])


def golden_windows(golden, steps, batch_size, time_size, lr, max_grad_norm, numpy_optimizer):
    """The windows a golden file was trained on, its settings agreeing with the run's."""
    tr = golden.meta.get("training") or {}
    if not tr.get("windows"):
        raise PortSetupError(f"{golden.path} holds no training over a corpus's windows: record it "
                             f"with --data CORPUS.npz --time-size T --steps K")
    if numpy_optimizer is not None:
        raise PortSetupError(f"{golden.path} already holds the NumPy side's training; "
                             f"--numpy-optimizer has nothing to do")
    if steps > tr["steps"]:
        raise PortSetupError(f"{golden.path} holds {tr['steps']} windows, not {steps}: give "
                             f"--steps {tr['steps']} or fewer")
    for name, value in (("batch", batch_size), ("time-size", time_size), ("lr", lr),
                        ("max-grad-norm", max_grad_norm)):
        recorded = tr[name.replace("-", "_") if name != "batch" else "batch_size"]
        if value != recorded:
            raise PortSetupError(f"{golden.path} was trained with --{name} {recorded}, not "
                                 f"{value}: run with the file's options")
    a = golden.arrays
    return [(a["train/window/x"][k], a["train/window/t"][k]) for k in range(steps)]


def _normwise(expected, actual):
    expected = np.asarray(expected, np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    diff = float(np.max(np.abs(np.asarray(actual, np.float64).reshape(expected.shape) - expected))) \
        if expected.size else 0.0
    return diff / scale if scale else diff


def _rerun(run, cut):
    """``run`` trained again over ``cut`` (each window with its tape): None where it cannot
    be (a refusal), or where a draw of it went unanswered (two random streams)."""
    steps = []
    for (x, t), tape in cut:
        missed = len(tape.missed)
        try:
            steps.append(run.step(x, t, tape))
        except PortSetupError:
            return None
        if len(tape.missed) > missed:
            del tape.missed[missed:]
            return None
    return steps


def _tape_bytes(tape):
    return sum(a.nbytes for _, a in tape.numpy if isinstance(a, np.ndarray)) + \
        sum(m.nbytes for m in tape.masks if isinstance(m, np.ndarray))


def double_bias(starts, cut, history, pairing, dtype, lr, max_grad_norm, grad_atol,
                torch_optimizer, book_betas, step, **_):
    """Both of torch's recurrent biases trained where the NumPy layer has one ``b``: the
    port trained again with the tensors summed into ``b`` (``bias_hh``) frozen."""
    side = starts[1]
    summed = [(p.numpy, n) for p in pairing for n in p.summed if side.params[n].requires_grad]
    if not summed:
        return None
    side = side.copy()
    run = PortWindows(side, pairing, torch_optimizer, lr, max_grad_norm,
                      frozen=[n for _, n in summed], book_betas=book_betas)
    steps = _rerun(run, cut)
    if steps is None or not _agrees(history[0], steps, pairing, dtype, lr, grad_atol, True):
        return None
    frozen = ", ".join(n for _, n in summed)
    bias = ", ".join(dict.fromkeys(b for b, _ in summed))
    return {"code": "double_bias", "parameter": bias, "step": step,
            "text": f"the port trains {frozen} beside the bias it is summed with, where the NumPy "
                    f"layer has one {bias}: the sum moves at twice the rate from the first "
                    f"update (and counts twice in a clipping norm); with {frozen} frozen at 0, the "
                    f"port's run gives the NumPy losses, parameters and states through step "
                    f"{len(steps) - 1}; freeze it ({frozen.split(', ')[0]}.requires_grad_(False)), "
                    f"or build the layer with bias=False and add a bias of your own"}


def state_reset(starts, cut, history, pairing, dtype, lr, max_grad_norm, grad_atol,
                numpy_optimizer, torch_optimizer, book_betas, step, **_):
    """One side starts each window from its first state where the other carries it: the
    NumPy side trained again with its state put back before each window (the port's run
    reproduced: the port resets), else the port so (the NumPy side resets). Where the
    port's fixed eps parts it from the book's Adam (``adam_eps``), the NumPy rerun answers
    the port's twin, which has that difference taken out."""
    steps = None
    if starts[0] is not None:  # a live NumPy side (not a recording)
        door = copy.deepcopy(starts[0])
        steps = _rerun(NumpyWindows(door, lr, max_grad_norm, reset=True, optimizer=numpy_optimizer),
                       cut)
    port_run = history[2] or history[1]
    if steps is not None and _agrees(steps, port_run, pairing, dtype, lr, grad_atol, True):
        return _state_reset(step, len(steps), "the port", "the NumPy side",
                            "carry the port's state into the next window, detached "
                            "(self.state = tuple(s.detach() for s in state))")
    run = PortWindows(starts[1].copy(), pairing, torch_optimizer, lr, max_grad_norm, reset=True,
                      book_betas=book_betas)
    steps = _rerun(run, cut)
    if steps is not None and _agrees(history[0], steps, pairing, dtype, lr, grad_atol, True):
        return _state_reset(step, len(steps), "the NumPy side", "the port",
                            "make the NumPy layer stateful as the book's trainer has it, or "
                            "reset the port's state before each window")
    return None


def _state_reset(step, through, resets, carries, fix):
    return {"code": "state_reset", "step": step,
            "text": f"{resets} starts each window from its first state (zeros), where {carries} "
                    f"carries the state from the window before: with {carries}'s state set back "
                    f"before each window, its run gives the other side's losses, parameters and "
                    f"states through step {through - 1}; {fix}"}


def tied_weights(starts, cut, history, pairing, dtype, lr, max_grad_norm, grad_atol,
                 port_optimizer, port_params, port_names, book_betas, step, **_):
    """A tensor the port's optimizer holds twice (a tied weight listed with each layer that
    uses it): torch steps it once per listing, and a clipping norm over that list counts
    it twice. The port trained again with each tensor held once."""
    twice = []
    for group in port_optimizer.param_groups:
        seen = set()
        for p in group["params"]:
            if id(p) in seen and id(p) not in {id(q) for q in twice}:
                twice.append(p)
            seen.add(id(p))
    if not twice:
        return None
    place = {id(p): i for i, p in enumerate(port_params)}
    if any(id(p) not in place for group in port_optimizer.param_groups for p in group["params"]):
        return None  # it holds a tensor that is not the port's: no rebuilding it here

    def once(params, lr=None):
        groups = []
        for group in port_optimizer.param_groups:
            held = list({id(p): p for p in group["params"]}.values())
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": [params[place[id(p)]] for p in held]})
        return type(port_optimizer)(groups)

    run = PortWindows(starts[1].copy(), pairing, once, lr, max_grad_norm, book_betas=book_betas)
    steps = _rerun(run, cut)
    if steps is None or not _agrees(history[0], steps, pairing, dtype, lr, grad_atol, True):
        return None
    names = ", ".join(port_names.get(id(p), "?") for p in twice)
    numpy = ", ".join(pr.numpy for pr in pairing if pr.torch in {port_names.get(id(p)) for p in twice})
    return {"code": "tied_weights", "parameter": numpy or names, "step": step,
            "text": f"the port's optimizer holds {names} twice (a tied weight listed with each "
                    f"layer that uses it; torch warns of 'duplicate parameters'): each step moves "
                    f"it twice{' and a clipping norm over that list counts it twice' if max_grad_norm else ''}, "
                    f"where the NumPy update moves {numpy or 'it'} once with the summed gradient; "
                    f"with each tensor held once, the port's run gives the NumPy losses, "
                    f"parameters and states through step {len(steps) - 1}; build the optimizer "
                    f"on model.parameters(), which lists a tied tensor once"}


def optimizer(starts, cut, history, pairing, dtype, lr, max_grad_norm, grad_atol,
              numpy_optimizer, port_optimizer, port_params, numpy_name, scheduler, book_betas,
              **_):
    """The update rule differs in a named hyper-parameter (``optimizer_traps``): the port
    trained again with its optimizer so changed, the book's Adam eps taken out where it
    applies."""
    if scheduler is not None:
        return None  # a schedule moves lr, which no hyper-parameter of the optimizer holds

    def replay(factory):
        run = PortWindows(starts[1].copy(), pairing, factory, lr, max_grad_norm,
                          book_betas=book_betas)
        steps = _rerun(run, cut)
        return steps is not None and _agrees(history[0], steps, pairing, dtype, lr, grad_atol,
                                             True)
    # a recording keeps the NumPy optimizer's name only: its rule is read from that
    reference = numpy_optimizer if numpy_optimizer is not None else (
        SGD(lr) if starts[0] is not None else None)
    return optimizer_trap(port_optimizer, port_params, reference, numpy_name, replay,
                          len(cut) - 1)


# a tied tensor held twice first: it looks to the rule like a doubled step size
HYPOTHESES = (double_bias, state_reset, tied_weights, optimizer)
