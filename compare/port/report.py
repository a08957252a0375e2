"""What a port check found: a row per compared output, the first mismatch, the diagnosis.

Each row carries Polygraphy's statistics of the difference (max, mean and
median of the absolute and of the relative difference), the tolerance it
was judged by and the worst element (index, both values). Text for the
terminal, a dict for ``--json``, Markdown and a figure for ``--report``, HTML
for a notebook and a one-line ``repr`` (``notebook``).
"""
import math
from dataclasses import dataclass, field

import numpy as np

from ..parity import _first, elementwise_errors
from .notebook import num, port_html, port_repr
from .unit_axes import as_shape

PHASES = ("parameters", "forward", "loss", "backward", "training")


@dataclass
class Check:
    phase: str
    where: str
    torch: str
    shape: tuple = None
    max_abs: float = float("nan")
    mean_abs: float = float("nan")
    median_abs: float = float("nan")
    max_rel: float = float("nan")
    mean_rel: float = float("nan")
    median_rel: float = float("nan")
    rtol: float = 0.0
    atol: float = 0.0
    why: str = ""
    allowance: str = None
    max_allowance: float = 0.0
    worst_index: tuple = None
    worst_expected: float = float("nan")
    worst_actual: float = float("nan")
    worst_ratio: float = float("nan")
    passed: bool = False
    problem: str = None
    note: str = None
    step: int = None
    unjudged: str = None  # why the row could not be judged (two random streams): no verdict

    @property
    def judged(self):
        return self.unjudged is None

    @property
    def verdict(self):
        if not self.judged:
            return f"not judged: {self.unjudged}"
        return "ok" if self.passed else f"FAIL: {self.problem}"

    def to_dict(self):
        out = {k: _clean(v) for k, v in self.__dict__.items()}
        out["judged"] = self.judged
        if not self.judged:
            out["passed"] = None  # neither passed nor failed
        return out


def _clean(value):
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, tuple):
        return [_clean(v) for v in value]
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    return value


def compare_arrays(phase, where, torch_name, expected, actual, tol, *, allowance=None,
                   allowance_name=None, shift=None, shift_name=None, step=None, note=None):
    """One row: ``actual`` (torch) against ``expected`` (NumPy) under ``tol``.

    ``allowance`` widens the tolerance element by element by a known
    difference; ``shift`` is a known difference of known sign, added to
    ``expected`` before comparing (shown in the same column, as "+")."""
    expected = np.asarray(expected)
    # arrays whose shapes differ only by axes of length 1 hold the same values
    actual = as_shape(np.asarray(actual), expected.shape)
    shift, allowance = as_shape(shift, expected.shape), as_shape(allowance, expected.shape)
    if shift is not None and np.shape(shift) == expected.shape:
        expected = expected.astype(np.float64) + np.asarray(shift, dtype=np.float64)
    row = Check(phase, where, torch_name, tuple(expected.shape), rtol=tol.rtol, atol=tol.atol,
                why=tol.why, step=step, note=note)
    if expected.shape != actual.shape:
        row.problem = f"shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
        return row
    for side, arr in (("numpy", expected), ("torch", actual)):
        bad = ~np.isfinite(arr)
        if bad.any():
            row.problem = f"{'NaN' if np.isnan(arr[bad]).any() else 'infinity'} on the {side} side at {_first(bad)}"
            return row
    e, a = expected.astype(np.float64), actual.astype(np.float64)
    err, rel, ratio, allowed = elementwise_errors(a, e, tol, allowance)
    if allowance is not None:
        row.allowance = allowance_name
        row.max_allowance = float(np.max(np.abs(allowance))) if np.size(allowance) else 0.0
    if shift is not None and np.size(shift):
        row.allowance = f"+{shift_name}"
        row.max_allowance = float(np.max(np.abs(shift)))
    if err.size == 0:
        row.max_abs = row.mean_abs = row.median_abs = 0.0
        row.max_rel = row.mean_rel = row.median_rel = row.worst_ratio = 0.0
        row.passed = True
        return row
    row.max_abs, row.mean_abs, row.median_abs = float(err.max()), float(err.mean()), float(np.median(err))
    row.max_rel, row.mean_rel, row.median_rel = float(rel.max()), float(rel.mean()), float(np.median(rel))
    worst = np.unravel_index(int(np.argmax(ratio)), err.shape)
    row.worst_index = tuple(int(i) for i in worst)
    row.worst_expected, row.worst_actual = float(e[worst]), float(a[worst])
    row.worst_ratio = float(ratio[worst])
    if row.worst_ratio > 1:
        row.problem = f"{int(np.count_nonzero(err > allowed))} of {err.size} elements out of tolerance"
    row.passed = row.problem is None
    return row


@dataclass
class PortReport:
    passed: bool = False
    pairing: list = field(default_factory=list)
    checks: list = field(default_factory=list)
    first_mismatch: dict = None
    diagnosis: list = field(default_factory=list)
    known: list = field(default_factory=list)
    unpaired: dict = field(default_factory=lambda: {"numpy": [], "torch": []})
    settings: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    numerical: dict = None
    training: dict = None
    not_judged: dict = None  # {"rows", "draws", "text"}: what two random streams left unjudged

    def _unjudged(self):
        if not self.not_judged:
            return ""
        n, draws = self.not_judged["rows"], len(self.not_judged["draws"])
        return (f"; {n} not judged: {draws} random draw{'s' if draws != 1 else ''} of two "
                f"streams that could not be shared")

    def verdict(self):
        if self.passed:
            n = len(self.checks)
            if self.not_judged:
                return (f"PASS on what could be judged: the port agrees with the NumPy model "
                        f"({n - self.not_judged['rows']} of {n} checks{self._unjudged()})")
            return f"PASS: the port agrees with the NumPy model ({n} checks)"
        fm = self.first_mismatch or {}
        where = fm.get("where")
        at = f" at step {fm['step']}" if fm.get("step") is not None else ""
        codes = ", ".join(d["code"] for d in self.diagnosis)
        return (f"FAIL: first mismatch in {fm.get('phase')}{at} at {where} (torch {fm.get('torch')}): "
                f"max abs {_g(fm.get('max_abs'))}, max rel {_g(fm.get('max_rel'))}"
                + (f"; likely: {codes}" if codes else "") + self._unjudged())

    def to_dict(self):
        return _clean({
            "passed": bool(self.passed),
            "pairing": [p.to_dict() for p in self.pairing],
            "checks": [c.to_dict() for c in self.checks],
            "first_mismatch": self.first_mismatch,
            "diagnosis": self.diagnosis,
            "known": self.known,
            "unpaired": self.unpaired,
            "settings": self.settings,
            "notes": self.notes,
            "numerical": self.numerical,
            "training": self.training,
            "not_judged": self.not_judged,
        })

    def raise_if_failed(self):
        if not self.passed:
            # the verdict first: the first line is all pytest's short summary shows
            raise AssertionError(f"{self.verdict()}\n\n{self.to_text()}")
        return self

    def to_text(self):
        lines = ["pairing (numpy <-> torch):"]
        lines += [f"  {p}" for p in self.pairing]
        for phase in PHASES:
            rows = [c for c in self.checks if c.phase == phase]
            if rows:
                lines.append("")
                lines.extend(_table(phase, rows))
        if self.unpaired["numpy"] or self.unpaired["torch"]:
            lines.append("")
            if self.unpaired["numpy"]:
                lines.append("unpaired NumPy layers (no torch module computes them; a functional "
                             "call such as F.relu?): " + ", ".join(self.unpaired["numpy"]))
            if self.unpaired["torch"]:
                lines.append("unpaired torch modules: " + ", ".join(self.unpaired["torch"]))
        for item in self.known:
            lines.append(f"known difference [{item['code']}]: {item['text']}")
        for note in self.notes:
            lines.append(f"note: {note}")
        if self.first_mismatch:
            lines.append("")
            fm = self.first_mismatch
            at = f" at step {fm['step']}" if fm.get("step") is not None else ""
            lines.append(f"first mismatch: {fm['phase']}{at}, {fm['where']} (torch {fm['torch']}): "
                         f"max abs {_g(fm['max_abs'])}, max rel {_g(fm['max_rel'])}")
            if fm.get("detail"):
                lines.append(f"  {fm['detail']}")
            if self.diagnosis:
                lines.append("likely cause:")
                lines += [f"  [{d['code']}] {d['text']}" for d in self.diagnosis]
            elif fm.get("unexplained"):
                lines.append(f"likely cause: {fm['unexplained']}")
            elif not fm.get("detail"):
                lines.append("likely cause: none of the usual porting bugs fits")
        lines.append(self.verdict())
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self):
        return port_repr(self)

    def _repr_html_(self):
        """The report in a notebook (``compare.port.notebook``)."""
        return port_html(self)

    def to_markdown(self, figure=None):
        out = ["# Port check", "", f"**{self.verdict()}**", ""]
        if self.settings:
            out += ["| setting | value |", "|---|---|"]
            out += [f"| {k} | {v} |" for k, v in self.settings.items()]
            out.append("")
        out += ["## Pairing", "", "| NumPy | torch | transposed |", "|---|---|---|"]
        out += [f"| {p.numpy} | {p.torch} | {'yes' if p.transposed else ''} |" for p in self.pairing]
        for phase in PHASES:
            rows = [c for c in self.checks if c.phase == phase]
            if not rows:
                continue
            out += ["", f"## {phase.capitalize()}", "",
                    "| NumPy | torch | shape | max abs | mean abs | median abs | max rel | "
                    "median rel | tolerance | verdict |",
                    "|---|---|---|---|---|---|---|---|---|---|"]
            for c in rows:
                tol = f"rtol {c.rtol:.2g}, atol {c.atol:.2g}" + (
                    f" + {c.allowance} {c.max_allowance:.2g}" if c.allowance else "")
                out.append(f"| {c.where} | {c.torch} | {c.shape} | {_g(c.max_abs)} | {_g(c.mean_abs)} | "
                           f"{_g(c.median_abs)} | {_g(c.max_rel)} | {_g(c.median_rel)} | {tol} | "
                           f"{c.verdict} |")
        if self.not_judged:
            out += ["", "## Not judged", "", f"{self.not_judged['rows']} rows: {self.not_judged['text']}"]
        if self.known:
            out += ["", "## Known differences", ""] + [f"- **{k['code']}**: {k['text']}" for k in self.known]
        if self.first_mismatch:
            fm = self.first_mismatch
            out += ["", "## First mismatch", "",
                    f"{fm['phase']}, **{fm['where']}** (torch `{fm['torch']}`): max abs "
                    f"{_g(fm['max_abs'])}, max rel {_g(fm['max_rel'])}"]
            if fm.get("detail"):
                out += ["", fm["detail"]]
            out += ["", "## Diagnosis", ""]
            out += [f"- **{d['code']}**: {d['text']}" for d in self.diagnosis] or [
                f"- {fm.get('unexplained') or 'none of the usual porting bugs fits'}"]
        if self.notes:
            out += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        if self.training:
            tr = self.training
            out += ["", "## Training", "",
                    f"{tr['steps']} steps, batch {tr['batch_size']}, lr {tr['lr']}, NumPy "
                    f"{tr['numpy_optimizer']} vs torch {tr['torch_optimizer']}"
                    + (f" + {tr['scheduler']}" if tr.get("scheduler") else "")
                    + f"; largest relative parameter difference {_g(max(tr['max_rel_param']))}"]
        for name in ([figure] if isinstance(figure, str) else figure or []):
            out += ["", f"![{name}]({name})"]
        return "\n".join(out) + "\n"


_g = num  # one way to show a number, in the terminal, Markdown and the notebook


def _table(phase, rows):
    head = ["numpy", "torch", "shape", "max abs", "mean abs", "median abs", "max rel", "median rel",
            "worst at", "expected", "actual", "verdict"]
    if any(r.allowance for r in rows):
        head.insert(-1, "allowed")
    body = []
    for r in rows:
        cells = [r.where if r.step is None else f"{r.where} @{r.step}", r.torch,
                 "-" if r.shape is None else str(r.shape), _g(r.max_abs), _g(r.mean_abs),
                 _g(r.median_abs), _g(r.max_rel), _g(r.median_rel),
                 "-" if r.worst_index is None else str(r.worst_index),
                 _g(r.worst_expected, 8), _g(r.worst_actual, 8)]
        if "allowed" in head:
            cells.append(f"{r.allowance} {_g(r.max_allowance)}" if r.allowance else "")
        cells.append(r.verdict)
        body.append(cells)
    widths = [max(len(h), *(len(b[k]) for b in body)) for k, h in enumerate(head)]
    fmt = lambda cells: "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    why = rows[0].why if phase != "training" else (
        "tolerance grows with the steps: after k updates, k x rtol x max|expected|")
    title = {"parameters": "parameters (copied in from NumPy)",
             "forward": "forward, in order of execution",
             "loss": "loss",
             "backward": "backward, nearest the loss first",
             "training": "training, step by step"}[phase]
    notes = [f"  {r.where}: {r.note}" for r in rows if r.note]
    return [f"{title}  [{why}]", fmt(head), fmt(["-" * w for w in widths])] + [fmt(b) for b in body] + notes
