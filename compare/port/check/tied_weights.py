"""``tied_weights``: weights tied on one side and not on the other.

The book's ``BetterRnnlm`` ties its output affine to its embedding (``TimeAffine(embed_W.T,
b)``: one parameter, its gradient the sum of both uses); a port ties them with
``fc.weight = embed.weight``. Where one side ties and the other does not, the two
cannot pair by count, and the check would stop there. Two hypotheses, each applied to
the NumPy model (never to the port) and checked in full:

* the NumPy model ties, the port does not: the tie cut on a copy of the NumPy model
  (the transpose, or the second listing, made an array of its own with the same values);
* the port ties, the NumPy model does not: a copy of the NumPy model with one of its
  arrays made the other (or its transpose), among those of the tied tensor's shape.

Where the whole check of the hypothesis passes, the port computes the NumPy model with
the tie cut (or made) at this point, and only the tie parts them (training updates two
parameters where the other side has one): ``tied_weights`` is named, and the report is
the hypothesis's, failed at the parameters with that row first. Where none passes, the
check refuses in one line that says the tie and that it is not the only difference.
Only a model with ``params`` lists (the book's second volume) holds ties; only an
``nn.Module`` port shares a Parameter.
"""
import copy

import numpy as np

from ..reference.list_door import ListDoor, is_list_model, name_parameters
from ..report import Check
from ..targets import PortSetupError

MAX_TRIALS = 4  # each is a whole check; the structure leaves few candidates


class Trial:
    def __init__(self, model, side, numpy_names, torch_names=(), transposed=False):
        self.model, self.side = model, side  # side: the side that ties
        self.numpy_names, self.torch_names, self.transposed = numpy_names, torch_names, transposed


def _torch_ties(torch_model):
    """``[[name, ...]]``: the names one Parameter is registered under, where more than one."""
    named = getattr(torch_model, "named_parameters", None)
    if named is None:
        return []
    groups = {}
    for name, p in named(remove_duplicate=False):
        groups.setdefault(id(p), []).append((name, p))
    return [g for g in groups.values() if len(g) > 1]


def _layer_holding(model, position):
    """The layer whose ``params`` list puts the array at ``position`` of the model's list
    (the book gathers each layer's list in order), and the index in it."""
    at = 0
    raw = getattr(model, "layers", None) or []
    for layer in (raw.values() if hasattr(raw, "values") else raw):
        n = len(getattr(layer, "params", None) or ())
        if at <= position < at + n:
            return layer, position - at
        at += n
    return None, None


def _cut(model, first, later):
    """A copy of ``model`` whose list position ``later`` holds an array of its own, with the
    values it had (the tie to position ``first`` cut); None where that cannot be done."""
    trial = copy.deepcopy(model)  # a transpose, copied, is an array of its own already
    tied = trial.params[first]
    if trial.params[later] is tied:  # listed twice: the second listing's layer gets a copy
        own = tied.copy()
        layer, k = _layer_holding(trial, later)
        if layer is None or layer.params[k] is not tied:
            return None
        layer.params[k] = own
        for attr, value in list(vars(layer).items()):
            if value is tied:
                setattr(layer, attr, own)
        trial.params[later] = own
    if np.shares_memory(trial.params[later], trial.params[first]):
        return None
    return trial


def _tie(model, arrays, kept, made, transposed):
    """A copy of ``model`` in which the array named ``made`` is the array named ``kept`` (its
    transpose where ``transposed``)."""
    memo = {}
    twin = copy.deepcopy(arrays[kept], memo)
    memo[id(arrays[made])] = twin.T if transposed else twin
    return copy.deepcopy(model, memo)


def trials(numpy_model, torch_model):
    """The hypotheses the structure allows, as ``Trial``s (at most ``MAX_TRIALS``)."""
    if not is_list_model(numpy_model) or not hasattr(torch_model, "named_parameters"):
        return []
    try:
        door = ListDoor(numpy_model)
    except PortSetupError:
        return []
    # the counts cannot say which side ties (torch's recurrent layers hold two biases where
    # NumPy holds one): a side ties where it lists an array twice or shares a Parameter
    torch_ties = _torch_ties(torch_model)
    numpy_ties = any(len(at) > 1 for at in door.positions.values())
    found = []
    if numpy_ties and not torch_ties:
        for name, at in door.positions.items():
            for later in at[1:]:
                trial = _cut(numpy_model, at[0], later)
                if trial is not None:
                    cut_name = name_parameters(trial)[0][later]
                    found.append(Trial(trial, "numpy", (name, cut_name), (),
                                       later in door.transposes))
    if torch_ties and not numpy_ties:
        for group in torch_ties:
            shape = tuple(group[0][1].shape)
            alike = [n for n, a in door.params.items() if a.ndim == 2 and a.shape in (shape, shape[::-1])]
            for i, kept in enumerate(alike):
                for made in alike[i + 1:]:
                    a, b = door.params[kept].shape, door.params[made].shape
                    for transposed in ((True,) if a != b else (True, False)) if a == b[::-1] else (False,):
                        found.append(Trial(_tie(numpy_model, door.params, kept, made, transposed),
                                           "torch", (kept, made), tuple(n for n, _ in group),
                                           transposed))
    return found[:MAX_TRIALS]


def explain(error, numpy_model, torch_model, check):
    """A check stopped by ``error`` at the pairing: the report of the hypothesis that
    reproduces it (``tied_weights``, failed), or None where no tie can be at stake. Raises
    a ``PortSetupError`` saying the tie where one is at stake but no hypothesis reproduces."""
    if not str(error).startswith("cannot pair parameters"):
        return None
    tried = trials(numpy_model, torch_model)
    if not tried:
        return None
    for trial in tried:
        try:
            report = check(trial.model)
        except PortSetupError:
            continue
        if report.passed and not report.not_judged:
            return _named(report, trial)
    what = "; ".join(_said(t) for t in tried)
    raise PortSetupError(f"{error}; {what}; with the tie {'cut' if tried[0].side == 'numpy' else 'made'} "
                         f"on the NumPy side the port still does not give its loss and gradients: "
                         f"the tie is not the only difference, or the NumPy forward does not "
                         f"compute with the array it lists (a transpose made anew in each pass, "
                         f"W.T, rather than the one in params); tie both sides alike, then "
                         f"check again")


def _said(trial):
    if trial.side == "numpy":
        name, cut_name = trial.numpy_names
        return (f"the NumPy model ties {cut_name} to {name} (listed again"
                f"{' as its transpose' if trial.transposed else ''}), the port keeps a "
                f"parameter of its own for it")
    kept, made = trial.numpy_names
    return (f"the port ties {' and '.join(trial.torch_names)} (one Parameter), the NumPy model "
            f"keeps {made} apart from {kept}")


def _twin(report, name):
    return next((p for p in report.pairing if p.numpy == name), None)


def _named(report, trial):
    """The hypothesis's report, failed at the parameters with the tie's row first."""
    if trial.side == "numpy":
        name, cut_name = trial.numpy_names
        kept, extra = _twin(report, name), _twin(report, cut_name)
        where, torch_name = name, extra.torch if extra is not None else cut_name
        text = (f"the NumPy model ties {cut_name} to {name} (listed again"
                f"{' as its transpose' if trial.transposed else ''}: one parameter, its gradient "
                f"the sum of both uses), the port's {torch_name} is a parameter of its own: "
                f"loaded with the same values, the port gives the NumPy loss, and the gradients "
                f"of {kept.torch if kept is not None else name} and {torch_name} are the two "
                f"parts of the NumPy one, but training moves the two apart; "
                f"{_fix(kept, extra, trial.transposed)}")
        problem = f"the NumPy model ties {cut_name} to {name}; the port keeps {torch_name} apart"
    else:
        kept, made = trial.numpy_names
        where, torch_name = made, " = ".join(reversed(trial.torch_names))
        text = (f"the port ties {' and '.join(trial.torch_names)} (one Parameter), where the "
                f"NumPy model keeps {made} apart from {kept}: with {made} made {kept}"
                f"{'.T' if trial.transposed else ''} on the NumPy side, the NumPy model gives the "
                f"port's loss and gradients (its two gradients summed); give the port a "
                f"parameter of its own for {made} (no tie), or tie the NumPy model ("
                f"{made} = {kept}{'.T' if trial.transposed else ''}, listed in params)")
        problem = f"the port ties {' and '.join(trial.torch_names)}; the NumPy model keeps {made} apart"
    row = Check("parameters", where, torch_name, passed=False, problem=problem)
    report.checks.insert(0, row)
    report.passed = False
    report.first_mismatch = {"phase": "parameters", "where": where, "torch": torch_name,
                             "step": None, "max_abs": row.max_abs, "max_rel": row.max_rel,
                             "detail": f"the parameters cannot pair ({problem})"}
    report.diagnosis = [{"code": "tied_weights", "parameter": where, "text": text}]
    report.notes.append(f"the rows are the check of the NumPy model with the tie "
                        f"{'cut' if trial.side == 'numpy' else 'made'} ({_said(trial)}); "
                        f"they all agree: the tie is what parts the two sides")
    return report


def _fix(kept, extra, transposed):
    """The line that ties the port as the NumPy model is tied."""
    if kept is None or extra is None or kept.gates or extra.gates or kept.reshape or extra.reshape:
        return "tie them in the port as the NumPy model ties them"
    # torch value = NumPy value, transposed where the pair says so; the NumPy later use is the
    # first's transpose where the tie is through .T
    same = (kept.transposed != extra.transposed) == transposed
    if same:
        return f"tie them: {extra.torch} = {kept.torch} (one Parameter)"
    return (f"tie them: compute with {kept.torch}.T where the port uses {extra.torch}, and drop "
            f"{extra.torch}")
