"""pytest plugin: the ``parity`` fixture, and a table of every parity check at the end.

Installed with the package (entry point ``compare_parity`` in the ``pytest11``
group), so any test can ask for ``parity``::

    def test_my_port(parity):
        parity.port(MyNumpyNet(), MyTorchNet(), x, t)         # compare.check_port
        parity.op(np_softmax, torch_softmax, [(4, 10)])       # compare.testing.assert_same_op

A failed check raises ``AssertionError`` with the full report; a passing one
returns it. Every check, passed or not, is a row of the table printed after
the test session (test, check, where its worst element is, its error, the
tolerance, error / tolerance, verdict); ``--parity-json PATH`` (or the
``parity_json`` ini option) writes the rows as JSON. A check that fails inside
a test that passes anyway (``pytest.raises(AssertionError)`` around it) failed as
the test expected: ``XFAIL``, counted apart. Under pytest-xdist each worker
sends its rows to the controller, which prints one table.

Being an installed plugin, it runs in every pytest session of the
environment: torch is imported only when a check runs, and a session that
runs no parity check sees no output from it.
"""
import json
import math
import os
from pathlib import Path

import pytest

_ROWS = pytest.StashKey[list]()
_OPEN = pytest.StashKey[dict]()  # test id -> its rows, until its outcome is known
_FROM_WORKERS = pytest.StashKey[bool]()
_WORKER_KEY = "parity_rows"
COUNTS = {"PASS": "passed", "FAIL": "failed", "ERROR": "errors", "XFAIL": "xfailed"}


def pytest_addoption(parser):
    group = parser.getgroup("parity", "parity checks (compare)")
    group.addoption("--parity-json", metavar="PATH", default=None,
                    help="write every parity check of the session (the end-of-session table) "
                         "to PATH as JSON")
    parser.addini("parity_json", "default for --parity-json (relative to the rootdir)", default="")


def pytest_configure(config):
    config.stash[_ROWS] = []
    config.stash[_OPEN] = {}
    config.stash[_FROM_WORKERS] = False


# --- rows -----------------------------------------------------------------------------------

def _number(value):
    """A float for JSON and for xdist's channel; NaN and infinity as text (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else str(value)


def _ratio(value, passed):
    """error / allowed, for finding the worst row: a failed row with no ratio (a shape or a
    NaN problem) ranks above every number."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = math.nan
    if math.isnan(value):
        return math.inf if not passed else -1.0
    return value


def _tolerance(rtol, atol, allowance=None, max_allowance=None):
    text = f"rtol={rtol:.2g}, atol={atol:.2g}"
    if allowance:
        text += f" + {allowance.lstrip('+')}" + (f" {max_allowance:.2g}" if max_allowance else "")
    return text


def _row(name, kind, passed, *, worst=None, where=None, rtol=None, atol=None, tolerance=None,
         detail=None, verdict=None):
    row = {"name": name, "kind": kind, "verdict": verdict or ("PASS" if passed else "FAIL"),
           "passed": bool(passed), "where": where, "max_abs": None, "max_rel": None,
           "worst_ratio": None, "rtol": _number(rtol), "atol": _number(atol),
           "tolerance": tolerance, "detail": detail}
    if worst is not None:
        row.update(max_abs=_number(worst.max_abs), max_rel=_number(worst.max_rel),
                   worst_ratio=_number(worst.worst_ratio))
    return row


def _port_row(name, kind, report):
    """One row for a ``PortReport``: its worst comparison (largest error / allowed)."""
    checks = list(report.checks)
    if not checks:
        return _row(name, kind, report.passed, detail=report.verdict())
    worst = max(checks, key=lambda c: _ratio(c.worst_ratio, c.passed))
    where = f"{worst.phase} {worst.where}" + ("" if worst.step is None else f" @{worst.step}")
    row = _row(name, kind, report.passed, worst=worst, where=where, rtol=worst.rtol,
               atol=worst.atol, tolerance=_tolerance(worst.rtol, worst.atol, worst.allowance,
                                                     worst.max_allowance),
               detail=report.verdict())
    if report.first_mismatch:
        row["first_mismatch"] = {k: (_number(v) if isinstance(v, float) else v)
                                 for k, v in report.first_mismatch.items()
                                 if isinstance(v, (str, int, float, type(None)))}
    return row


def _parity_row(name, report):
    """One row for a ``compare.parity.ParityReport`` (one side of ``assert_same_op``)."""
    tol = report.tolerance
    rows = list(report.rows)
    worst = max(rows, key=lambda r: _ratio(r.worst_ratio, r.passed)) if rows else None
    detail = None
    if not report.passed:
        detail = "; ".join(f"{r.name}: {r.problem}" for r in rows if not r.passed) or "no values compared"
    return _row(name, "op", report.passed, worst=worst, where=None if worst is None else worst.name,
                rtol=tol.rtol, atol=tol.atol, tolerance=_tolerance(tol.rtol, tol.atol), detail=detail)


def _reports_in_traceback(tb):
    """The ``ParityReport`` objects alive in the frames of a failed ``assert_same_op``.

    It raises with the report's text only; the table needs the numbers, and the report
    that failed (and the forward one before it) are still locals of those frames."""
    from .parity import ParityReport

    found = []
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, ParityReport) and not any(value is f for f in found):
                found.append(value)
        tb = tb.tb_next
    return found


def _first_line(exc):
    lines = str(exc).strip().splitlines()
    return type(exc).__name__ + (f": {lines[0]}" if lines else "")


# --- the fixture ----------------------------------------------------------------------------

class Parity:
    """What the ``parity`` fixture gives a test: parity checks that assert and are tabled.

    ``checks`` holds the rows this test added to the session's table."""

    def __init__(self, rows, nodeid, worker=None, open_rows=None):
        self._session_rows = rows
        self._open_rows = {} if open_rows is None else open_rows
        self.nodeid = nodeid
        self.worker = worker
        self.checks = []

    def _add(self, row):
        row = {"test": self.nodeid, **row}
        if self.worker is not None:
            row["worker"] = self.worker
        self.checks.append(row)
        self._session_rows.append(row)
        self._open_rows.setdefault(self.nodeid, []).append(row)
        return row

    def _report_check(self, name, kind, run):
        """Run a check that returns a ``PortReport``; table it; raise if it failed."""
        __tracebackhide__ = True
        try:
            report = run()
        except Exception as exc:
            self._add(_row(name, kind, False, verdict="ERROR", detail=_first_line(exc)))
            raise
        self._add(_port_row(name, kind, report))
        if not report.passed:
            # the verdict first: it is the line pytest's short summary shows
            raise AssertionError(f"{name}: {report.verdict()}\n\n{report.to_text()}")
        return report

    def port(self, numpy_model, torch_model, x, t, *, name=None, **options):
        """``compare.check_port(numpy_model, torch_model, x, t, **options)`` as an assertion.

        Returns the ``PortReport``; raises ``AssertionError`` with its text (the tables,
        the first mismatch, the likely cause) when the port parts from the NumPy model.
        ``name`` labels the row in the session's table (default ``"port"``)."""
        __tracebackhide__ = True
        from .port import check_port

        return self._report_check(name or "port", "port",
                                  lambda: check_port(numpy_model, torch_model, x, t, **options))

    def training(self, numpy_model, torch_model, x_train, t_train, *, steps, batch_size=100, lr=0.1,
                 seed=0, numpy_optimizer=None, torch_optimizer=None, name=None, **check_port_options):
        """``compare.port.training.check_training(...)`` as an assertion: both sides trained
        ``steps`` steps from the same parameters on the same batches, compared step by step.

        Returns the ``PortReport`` (curves in ``report.training``); raises ``AssertionError``
        with its text when they part. ``name`` labels the row (default ``"training"``)."""
        __tracebackhide__ = True
        from .port.training import check_training

        return self._report_check(name or "training", "training", lambda: check_training(
            numpy_model, torch_model, x_train, t_train, steps=steps, batch_size=batch_size, lr=lr,
            seed=seed, numpy_optimizer=numpy_optimizer, torch_optimizer=torch_optimizer,
            **check_port_options))

    def op(self, np_fn, torch_fn, inputs, *, name=None, **options):
        """``compare.testing.assert_same_op(np_fn, torch_fn, inputs, **options)``, tabled.

        Adds a row for the forward comparison and one for the gradient (when ``grad``);
        returns ``{"forward": report, "backward": report or None}``. ``name`` labels the
        rows (default ``"op:<np_fn's name>"``) and the failure message."""
        __tracebackhide__ = True
        from .testing import assert_same_op

        label = options.get("label") or name or getattr(np_fn, "__name__", "op")
        options.setdefault("label", label)
        name = name or f"op:{label}"
        try:
            out = assert_same_op(np_fn, torch_fn, inputs, **options)
        except AssertionError as exc:
            reports = _reports_in_traceback(exc.__traceback__)
            for report in reports:
                side = "forward" if report.label.endswith(": forward") else "backward"
                self._add(_parity_row(f"{name} {side}", report))
            failed = [r for r in reports if not r.passed]
            if not failed:
                self._add(_row(name, "op", False, detail=_first_line(exc)))
                raise
            raise AssertionError(f"{failed[0].verdict()}\n{str(exc).strip()}") from None
        except Exception as exc:
            self._add(_row(name, "op", False, verdict="ERROR", detail=_first_line(exc)))
            raise
        self._add(_parity_row(f"{name} forward", out["forward"]))
        if out["backward"] is not None:
            self._add(_parity_row(f"{name} backward", out["backward"]))
        return out


@pytest.fixture
def parity(request):
    """Parity checks that fail the test like an assertion and are tabled at the end of the
    session: ``parity.port(...)``, ``parity.op(...)``, ``parity.training(...)``."""
    config = request.config
    worker = getattr(config, "workerinput", {}).get("workerid")
    return Parity(config.stash[_ROWS], request.node.nodeid, worker, config.stash[_OPEN])


# --- a failure the test expected ------------------------------------------------------------

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A check that failed inside a test that passed (``pytest.raises(AssertionError)``
    caught it) or that is marked xfail and failed as marked, failed as its test expected:
    its row's verdict becomes ``XFAIL``, counted apart from the failures. Known only once
    the test's call phase has its outcome; a test that fails keeps its rows as they are."""
    report = yield
    if call.when == "call":
        rows = item.config.stash[_OPEN].pop(item.nodeid, [])
        if report.passed or (report.skipped and hasattr(report, "wasxfail")):
            for row in rows:
                if row["verdict"] in ("FAIL", "ERROR"):
                    row["verdict"], row["expected"] = "XFAIL", row["verdict"]
    return report


# --- the end of the session -----------------------------------------------------------------

@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: a worker is done; its rows came with it (see pytest_sessionfinish)."""
    rows = getattr(node, "workeroutput", {}).get(_WORKER_KEY, [])
    node.config.stash[_ROWS].extend(rows)
    node.config.stash[_FROM_WORKERS] = True


def _json_path(config):
    option = config.getoption("parity_json")
    if option:
        return Path(os.path.expanduser(option)).resolve()
    ini = config.getini("parity_json")
    return (config.rootpath / os.path.expanduser(ini)).resolve() if ini else None


def _counts(rows):
    return {word: sum(r["verdict"] == verdict for r in rows) for verdict, word in COUNTS.items()}


def _in_order(config, rows):
    # Workers finish in no fixed order; sorting by test id keeps a parallel run's table
    # stable (the sort is stable, so checks within a test keep their order).
    return sorted(rows, key=lambda r: r["test"]) if config.stash[_FROM_WORKERS] else rows


def pytest_sessionfinish(session):
    config = session.config
    rows = config.stash[_ROWS]
    if hasattr(config, "workeroutput"):  # an xdist worker: hand the rows to the controller
        config.workeroutput[_WORKER_KEY] = list(rows)
        return
    path = _json_path(config)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"checks": _in_order(config, rows), **_counts(rows)}
    path.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")


def _cell(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return "0" if value == 0 else f"{value:.{digits}g}"


def summary_lines(rows):
    """The table: one line per check, columns aligned."""
    head = ["test", "check", "worst at", "max abs", "max rel", "tolerance", "err/tol", "verdict"]
    body = [[r["test"], r["name"], r["where"] or "-", _cell(r["max_abs"]), _cell(r["max_rel"]),
             r["tolerance"] or "-", _cell(r["worst_ratio"], 2), r["verdict"]] for r in rows]
    widths = [max(len(h), *(len(b[k]) for b in body)) for k, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()

    return [line(head), line(["-" * w for w in widths])] + [line(b) for b in body]


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workeroutput"):
        return
    rows = _in_order(config, config.stash[_ROWS])
    if not rows:
        return
    tr = terminalreporter
    tr.write_sep("=", "parity checks")
    lines = summary_lines(rows)
    for text in lines[:2]:
        tr.write_line(text)
    for text, row in zip(lines[2:], rows):
        color = "green" if row["passed"] else "yellow" if row["verdict"] == "XFAIL" else "red"
        tr.write_line(text, **{color: True})
    counts = _counts(rows)
    tr.write_line(f"{len(rows)} parity checks: " + ", ".join(
        f"{n} {word[:-1] if word == 'errors' and n == 1 else word}"
        for word, n in counts.items() if n or word in ("passed", "failed")))
    path = _json_path(config)
    if path is not None:
        tr.write_line(f"parity checks written to {path}")
