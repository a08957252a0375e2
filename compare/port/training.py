"""Training side by side: both sides from the same parameters, on the same batches.

Each step ``k`` (0-based) draws the book's batch for ``seed``, takes the loss
on it (before the update, where a torch loop reads it) and the gradient,
updates, and compares the loss and every parameter after the update. The
run goes on after the first step out of tolerance, so the curves show
whether the gap grows.

The NumPy optimizer has the book's interface, ``update(params, grads)``
changing ``params`` in place (default: plain SGD). The torch optimizer is
a function of the port's parameters returning a ``torch.optim.Optimizer``,
or ``(optimizer, scheduler)`` whose ``step()`` follows each update (default
``torch.optim.SGD``). A literal port is updated by the same torch optimizer,
from its own ``gradient`` (set as each tensor's ``.grad``).

Tolerance: ``tolerance.training_tolerance``, linear in the number of
updates. At the first step out of tolerance the two updates themselves
(``params after - params before`` on each side) go to the diagnosis: a
learning rate off by a factor shows as ``scale``. Where the first batch agreed and
no decay explains it, the port is trained again from the same start with its
optimizer's hyper-parameters changed one at a time (``optimizer_traps``): one
that reproduces every step through the parting is named (``optimizer``).
"""
import numpy as np

from numpy_impl.random_stream import BookRandomStream

from . import known
from .known import Known
from ..parity import Tolerance
from .draws import seeded_by_its_seed
from .check import check_port
from .check.modes import buffer_pairs, compare_buffers, load_numpy_buffers, unpaired_note, unpaired_statistics
from .check.unjudged import training_unjudged
from .check.state import pair_sides, validate_batch
from .diagnosis import diagnose
from .known.weight_decay import decays_of
from .optimizer_traps import optimizer_trap
from .optimizers import SGD, numpy_optimizer_of, torch_optimizer_of  # noqa: F401  (SGD and numpy_optimizer_of importable from here, as before)
from .reference import reference_side
from .report import PortReport, compare_arrays
from .targets import PortSetupError, call_side
from .tolerance import training_tolerance, update_tolerance as _param_tolerance
from .torch_side import TorchSide

# the optimizer's hypotheses rerun the port through the first step out of tolerance and
# this many after it (where the run has them): a hypothesis must also carry the optimizer's
# state (a momentum buffer, AdaGrad's sum) on past the parting, and a long run still adds
# only a few short reruns
AFTER_PARTING = 2
# the NumPy parameters kept step by step for those reruns: a run parting beyond them is
# not rerun
HISTORY_BYTES = 256 * 2 ** 20


class TorchTrainer:
    """The port, updated by a torch optimizer from its autograd or its own gradient."""

    def __init__(self, side, torch_optimizer, lr):
        self.side = side
        self.params = list(side.params.values())  # the order the optimizer was built on
        self.optimizer, self.scheduler = torch_optimizer_of(torch_optimizer, self.params, lr,
                                                            model=side.module)

    def step(self, tx, tt):
        import torch
        side = self.side
        out, grads = side.training_pass(tx, tt)
        with torch.no_grad():
            for name, p in side.params.items():
                g = grads[name]
                p.grad = torch.zeros_like(p) if g is None else torch.from_numpy(g).to(p.device)
        # the user's optimizer and scheduler: what they raise is said in one line, located
        call_side("torch optimizer", "step", self.optimizer.step)
        if self.scheduler is not None:
            call_side("torch optimizer", "scheduler step", self.scheduler.step)
        for p in side.params.values():
            p.grad = None
        return out


def _batch(x_train, t_train, idx, dtype, loss="cross_entropy"):
    """The ``idx`` rows, cast as the first batch's check casts them."""
    return validate_batch(x_train[idx], t_train[idx], dtype, loss)


def _summary_row(name, torch_name, expected, actual, dtype, updates, step):
    """Compare two step summaries: max |value| and samples as elements, the sum
    (n elements) and the norm (sqrt n) with bounds scaled accordingly."""
    size = int(round(expected[2] ** 2 / max(expected[0], 1e-300) ** 2)) if expected[0] else 1
    atol = training_tolerance(np.array(expected[0]), dtype, updates).atol
    n = max(size, 1)
    bound = np.full(expected.shape, atol)
    bound[1], bound[2] = n * atol, np.sqrt(n) * atol
    return compare_arrays("training", name, torch_name, expected, actual,
                          Tolerance(0.0, 0.0, "summary of the parameters"), allowance=bound,
                          allowance_name="per-entry bound", step=step)


@seeded_by_its_seed
def check_training(numpy_model, torch_model, x_train, t_train, *, steps, batch_size=100, lr=0.1,
                   seed=0, numpy_optimizer=None, torch_optimizer=None, dtype=None,
                   loss=None, param_map=None, device="cpu", first_batch_check=True,
                   progress=False, numpy_kwargs=None, numpy_layout=None, time_size=None,
                   max_grad_norm=None, **port_options):
    """Train both sides ``steps`` steps side by side; returns a ``PortReport``.

    ``numpy_model`` may be a ``GoldenFile`` with a recorded training. With
    ``first_batch_check`` the report starts with ``check_port`` on the first batch
    (parameters, forward, loss, backward); the training rows follow, one per
    parameter and one for the loss, each at its first step out of tolerance (else its
    worst step), and ``report.training`` holds the curves.

    With ``time_size``, ``x_train`` is a 1-D integer corpus (``t_train`` None): ``steps``
    consecutive windows of ``batch_size`` streams, the state carried, ``max_grad_norm``
    clipping both sides (``window_training.py``).
    """
    if time_size is not None:
        from .window_training import check_window_training
        if t_train is not None:
            raise PortSetupError("with time_size, x_train is the corpus and t_train None: the "
                                 "targets are the corpus shifted by one")
        return check_window_training(numpy_model, torch_model, x_train, steps=steps,
                                     batch_size=batch_size, time_size=time_size, lr=lr,
                                     max_grad_norm=max_grad_norm,
                                     numpy_optimizer=numpy_optimizer,
                                     torch_optimizer=torch_optimizer,
                                     dtype=dtype, loss=loss, param_map=param_map, device=device,
                                     first_batch_check=first_batch_check, seed=seed,
                                     numpy_kwargs=numpy_kwargs, numpy_layout=numpy_layout,
                                     **port_options)
    if max_grad_norm is not None:
        raise PortSetupError("max_grad_norm clips a corpus's windows: give time_size and the "
                             "corpus")
    for name, value in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise PortSetupError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(lr, (int, float)) or not np.isfinite(lr) or lr <= 0:
        raise PortSetupError(f"lr must be a finite positive number, got {lr!r}")
    x_train, t_train = np.asarray(x_train), np.asarray(t_train)
    if x_train.shape[:1] != t_train.shape[:1] or x_train.shape[0] < 1:
        raise PortSetupError(f"x_train and t_train must have the same (non-zero) number of rows, "
                             f"got {x_train.shape} and {t_train.shape}")
    stream = BookRandomStream(seed)
    batches = [stream.batch_indices(x_train.shape[0], batch_size) for _ in range(steps)]
    np_side = reference_side(numpy_model, dtype, numpy_kwargs, numpy_layout)
    np_side.check_training()
    common = dict(dtype=dtype, loss=loss, param_map=param_map, device=device)
    if first_batch_check:
        x0, t0 = (None, None) if np_side.batch is not None else (x_train[batches[0]], t_train[batches[0]])
        report = check_port(numpy_model, torch_model, x0, t0, **common, seed=seed,
                            torch_optimizer=torch_optimizer, lr=lr, numpy_kwargs=numpy_kwargs,
                            numpy_layout=numpy_layout, **port_options)
    else:
        report = PortReport()
    if loss is None:  # the first batch's check chose it (check_port's default)
        loss = report.settings.get("loss") or "cross_entropy"
    dtype = np_side.dtype.name
    t_side = TorchSide(torch_model, dtype, device, loss)
    if getattr(np_side, "tape", None) is not None:
        t_side.tape = np_side.tape  # one draw per step for both sides
    cast = None if first_batch_check else t_side.cast_note(asked=common["dtype"] is not None)
    if cast:  # else check_port's report has it
        report.notes.append(cast)
    x_first, t_first = _batch(x_train, t_train, batches[0], dtype, t_side.loss_name)[:2]
    pairing = pair_sides(np_side, t_side, x_first, param_map, t_first)
    loss = t_side.loss_name
    report.pairing = pairing
    t_side.load(pairing, np_side.params)
    twin = {p.numpy: p.torch for p in pairing}
    buffers = buffer_pairs(np_side, t_side, twin)
    if buffers:
        load_numpy_buffers(np_side, t_side, buffers, x_first)
    carried = {}
    # the port as training starts, for the optimizer's hypotheses (rerun from here)
    start = t_side.copy() if first_batch_check else None
    # each update adds at most lr x the gradient's own error bound (the first batch's backward
    # rows: for a gradient that cancels, the size of the terms it sums, not its own)
    grad_atol = {r.where: r.atol for r in report.checks if r.phase == "backward" and r.rtol}
    reference = np_side.training_reference(
        numpy_optimizer, lr, lambda k: _batch(x_train, t_train, batches[k], dtype, loss), steps)
    trainer = TorchTrainer(t_side, torch_optimizer, lr)
    decays = decays_of(trainer.optimizer, t_side.params, pairing)
    curves = {"step": [], "loss_numpy": [], "loss_torch": [], "max_rel_param": [],
              "tolerance": [], "worst_param": []}
    rows, first_fail = {}, None
    previous = ({k: v.copy() for k, v in np_side.params.items()}, t_side.values(pairing))
    # each step's NumPy loss and parameters, through AFTER_PARTING steps past the first step
    # out of tolerance, while they fit HISTORY_BYTES: what a rerun of the port is compared with
    history, initial, kept_bytes, drew = [], previous[0], 0, False
    bar = _bar(steps, progress)
    for k in range(steps):
        x, t = reference.batch(k)
        np_before = np_side.buffers()
        np_loss, np_values = reference.step(k, x, t)
        drew = drew or bool(getattr(np_side, "tape", None))
        if (reference.storage == "full" and kept_bytes <= HISTORY_BYTES
                and (first_fail is None or k <= first_fail[3] + AFTER_PARTING)):
            history.append((np_loss, np_values))
            kept_bytes += sum(v.nbytes for v in np_values.values())
        out = trainer.step(t_side.tensor(x), t_side.tensor(t))
        loss_row, found = _loss_row(k, np_loss, out, loss, dtype, previous[0], decays)
        step_rows = [loss_row]
        if buffers and getattr(reference, "capture", None) is not None:
            inputs = {r.key: r.input for r in reference.capture.records}
            buffer_rows, carried = compare_buffers(np_side, t_side, buffers, inputs, np_before, dtype,
                                                   carried=carried, step=k, phase="training",
                                                   updates=k + 1)
            for row, _, differences in buffer_rows:
                step_rows.append(row)
                if k == steps - 1:  # the running variance's gap as it stands at the end
                    for d in differences:
                        d.text = f"training, after {steps} step(s): " + d.text
                    Known(differences).note(report)
        t_values = t_side.values(pairing)
        rel = {}
        for pair in pairing:
            e, a = np_values[pair.numpy], t_values[pair.numpy]
            torch_name = pair.view
            if reference.storage == "full":
                step_rows.append(_param_row(k, pair, e, a, dtype, lr, grad_atol))
                rel[pair.numpy] = _normwise(e, a)
            else:
                a = reference.summary(pair.numpy, a)
                step_rows.append(_summary_row(pair.numpy, torch_name, e, a, dtype, k + 1, k))
                rel[pair.numpy] = _normwise(e[3:], a[3:]) if e.size > 3 else 0.0
        worst = max(rel, key=rel.get)
        curves["step"].append(k)
        curves["loss_numpy"].append(float(np_loss))
        curves["loss_torch"].append(float(out["loss"]))
        curves["max_rel_param"].append(rel[worst])
        curves["worst_param"].append(worst)
        curves["tolerance"].append((k + 1) * training_tolerance(np.ones(1), dtype, 1).atol)
        for row in step_rows:
            kept = rows.get(row.where)
            if kept is None or (kept.passed and (not row.passed or row.worst_ratio > kept.worst_ratio)):
                rows[row.where] = row
        failed = [r for r in step_rows if not r.passed]
        current = (np_values, t_values)
        if failed and first_fail is None:
            first_fail = (failed[0], previous, current, k)
        previous = current
        bar.update(1)
    bar.close()
    report.checks.extend(rows[key] for key in ["loss"] + [p.numpy for p in pairing]
                         + [f"{b[0]}.{b[2]}" for b in buffers] if key in rows)
    Known([d for d in found.differences if all(k["code"] != d.code for k in report.known)]).note(report)
    unpaired = unpaired_statistics(t_side, buffers)
    if np_side.modal and np_side.has_predict and t_side.kind == "module":
        if not unpaired:
            report.checks.append(_eval_row(np_side, t_side, buffers, x, dtype, steps))
        elif not any(n.startswith("evaluation mode not judged") for n in report.notes):
            report.notes.append(unpaired_note(unpaired, "predict in evaluation mode after the last step is"))
    report.training = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, **curves,
                       "numpy_optimizer": reference.name,
                       "torch_optimizer": type(trainer.optimizer).__name__,
                       "scheduler": None if trainer.scheduler is None else type(trainer.scheduler).__name__,
                       "storage": reference.storage}
    report.settings.update({"steps": steps, "lr": lr, "numpy optimizer": reference.name,
                            "torch optimizer": type(trainer.optimizer).__name__})
    already = report.first_mismatch is not None
    if getattr(np_side, "tape", None) is not None and np_side.tape.missed:
        training_unjudged(report, np_side.tape.missed)
        first_fail = None  # the steps compared two random streams: no step parted first
    report.passed = all(c.passed for c in report.checks)
    if first_fail is not None and not already:
        row, before, after, k = first_fail
        report.first_mismatch = {"phase": "training", "where": row.where, "torch": row.torch,
                                 "step": k, "max_abs": row.max_abs, "max_rel": row.max_rel}
        if reference.storage == "full":
            report.diagnosis = _diagnose_update(row, before, after, dtype, batch_size, lr, decays)
            # a decay the book does not have is named already; a scheduler moves lr, which
            # no hyper-parameter of the optimizer holds; a model that draws would need its
            # draws again
            if (start is not None and trainer.scheduler is None and not drew and k < len(history)
                    and not any(d["code"] == "weight_decay" for d in report.diagnosis)):
                def replay(factory):
                    return _replay(start, factory, lr, reference, history, initial, pairing, loss,
                                   dtype, grad_atol)
                named = optimizer_trap(trainer.optimizer, trainer.params,
                                       getattr(reference, "optimizer", None), reference.name,
                                       replay, len(history) - 1)
                if named:
                    # the whole run reproduced, not one step's update: the rule, not the step size
                    report.diagnosis = [named]
            if not report.diagnosis and row.max_abs is not None and row.max_rel is not None:
                report.first_mismatch["unexplained"] = (
                    f"unexplained: no usual bug, applied, reproduces the update of {row.where}; "
                    f"measured: max abs {row.max_abs:.3g}, max rel {row.max_rel:.3g}")
        report.first_mismatch["detail"] = (
            f"the two sides part at step {k}" + (
                ", after agreeing on the first batch's loss and gradients: the update rules "
                "differ (the optimizer's formula, its eps, a learning-rate schedule)"
                if first_batch_check else ""))
    return report


def _loss_row(k, np_loss, out, loss, dtype, np_before, decays):
    """The loss row of step ``k`` (the known differences on that batch added), and those."""
    found = known.at_loss(np_loss, out, loss, dtype, {"params": np_before, "decays": decays})
    shift, shift_name = found.shift("loss")
    row = compare_arrays("training", "loss", loss, np.array(np_loss), np.array(out["loss"]),
                         training_tolerance(np.array(np_loss), dtype, k + 1),
                         shift=shift, shift_name=shift_name, step=k)
    return row, found


def _param_row(k, pair, expected, actual, dtype, lr, grad_atol):
    return compare_arrays("training", pair.numpy, pair.view, expected, actual,
                          _param_tolerance(expected, dtype, k + 1, lr, grad_atol.get(pair.numpy)),
                          step=k)


def _replay(start, factory, lr, reference, history, initial, pairing, loss, dtype, grad_atol):
    """The port from ``start`` trained again by the optimizer ``factory`` makes, on the same
    batches: does every loss and parameter row of the steps in ``history`` agree, under the
    tolerances of the run? Stops at the first that does not."""
    side = start.copy()
    try:
        trainer = TorchTrainer(side, factory, lr)
        decays = decays_of(trainer.optimizer, side.params, pairing)
        np_before = initial
        for k, (np_loss, np_values) in enumerate(history):
            x, t = reference.batch(k)
            out = trainer.step(side.tensor(x), side.tensor(t))
            if not _loss_row(k, np_loss, out, loss, dtype, np_before, decays)[0].passed:
                return False
            t_values = side.values(pairing)
            if not all(_param_row(k, p, np_values[p.numpy], t_values[p.numpy], dtype, lr, grad_atol).passed
                       for p in pairing):
                return False
            np_before = np_values
    except PortSetupError:  # the port's own code refused the rebuilt optimizer
        return False
    return True


def _normwise(expected, actual):
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    diff = float(np.max(np.abs(actual.astype(np.float64) - expected))) if expected.size else 0.0
    return diff / scale if scale else diff


def _eval_row(np_side, t_side, buffers, x, dtype, steps):
    """After the last step: ``predict`` in evaluation mode against the port in ``eval()``,
    the NumPy running statistics copied in (their own rows judged them step by step)."""
    if buffers:
        load_numpy_buffers(np_side, t_side, buffers, x)
    expected = np.asarray(np_side.predict(x, "eval"))
    t_side.mode = "eval"
    try:
        _, actual = t_side.recorded_scores(t_side.tensor(x))
    finally:
        t_side.mode = "train"
    return compare_arrays("training", "predict [eval]", "forward [eval]", expected, actual,
                          training_tolerance(expected, dtype, steps), step=steps - 1,
                          note="evaluation mode after the last step")


def _diagnose_update(row, before, after, dtype, batch_size, lr=None, decays=None):
    """The usual bugs, tested on the two updates of the first parameter that parts."""
    if row.where == "loss" or row.where not in before[0]:
        return []
    (np_before, t_before), (np_after, t_after) = before, after
    expected = np_after[row.where] - np_before[row.where]
    actual = t_after[row.where] - t_before[row.where]
    lam = (decays or {}).get(row.where)
    if lam and lr and np.any(np_before[row.where]):
        # the port's optimizer decays a parameter the book does not: actual = expected - lr lam p
        predicted = expected - lr * lam * np.asarray(np_before[row.where], np.float64)
        tol = training_tolerance(np_after[row.where], dtype, 1)
        if np.all(np.abs(predicted - actual) <= 10 * tol.atol):
            return [{"code": "weight_decay", "parameter": row.where, "lambda": lam,
                     "text": f"the port's optimizer decays {row.where} (weight_decay={lam:g}: torch "
                             f"applies it to every parameter of its group), the book decays the "
                             f"weights alone: put {row.where} and the others the book does not decay "
                             f"(biases, batch norm's gamma and beta) in a parameter group "
                             f"with weight_decay=0"}]
    found = diagnose(expected, actual, dtype=dtype, batch_size=batch_size)
    float32 = any(np.asarray(side[row.where]).dtype == np.float32 for side in (*before, *after))
    # float32 round-off is named only where float32 took part (check/verify.py)
    found = [d for d in found if d.get("evidence") != "float32 round-off" or float32 or dtype == "float32"]
    for d in found:
        if d["code"] == "scale":  # a whole update off by a factor: the step size, not the formula
            d["text"] = (f"the torch update of {row.where} is {d['factor']:.6g} x the NumPy one: "
                         f"the learning rate differs by that factor at this step (a schedule a "
                         f"step early or late, or another lr)")
        else:
            d["text"] = f"the update of {row.where}: " + d["text"]
    return found


def _bar(total, enabled):
    if not enabled:
        class _Off:
            def update(self, n):
                pass

            def close(self):
                pass
        return _Off()
    from tqdm import tqdm
    return tqdm(total=total, desc="training side by side", unit="step")
