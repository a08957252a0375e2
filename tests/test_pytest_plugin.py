"""The pytest plugin: the ``parity`` fixture, the table at the end of the session,
``--parity-json``, and the same table when pytest-xdist spreads the tests over workers.

The inner sessions load the plugin the way an installed package does, through its
entry point: a throwaway distribution on the path declares the ``pytest11`` entry
points read from pyproject.toml, and ``-p compare_parity`` names the plugin (which
also keeps these tests working once the real package declares the same entry point).
Other installed plugins stay out of them (PYTEST_DISABLE_PLUGIN_AUTOLOAD); the xdist
session names xdist.
"""
import json
import math
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import numpy_impl
import port_zoo as zoo
import torch_impl
from compare import check_port
from compare.testing import assert_same_op

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PLUGIN = ("-p", "compare_parity")

# The inner sessions' tests and the direct calls they are checked against compute the
# same float64 figures only if they sum in the same order: torch's intra-op thread count
# decides how MKL's products and torch's reductions split their sums (an xdist worker
# starts with one thread per core, this process with conftest's count), and a max abs
# error of round-off then moves by an ulp (7.77e-16 against 8.88e-16). One thread on
# both sides, in every process, makes them the same arithmetic on the same inputs, so the
# figures still compare exactly (the NumPy side runs under one environment in all of them).
HEADER = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
import numpy as np
import torch
import numpy_impl, torch_impl
import port_zoo as zoo

torch.set_num_threads(1)

rng = np.random.RandomState(0)
X = rng.rand(20, 784)
T = np.eye(10)[rng.randint(0, 10, 20)]
"""

# Three tests, so that xdist's round robin gives both of two workers some.
PORT_TESTS = HEADER + """
def test_right_port(parity):
    report = parity.port(zoo.layer_net(), zoo.sequential(), X, T, name="layer net")
    assert report.passed

def test_broken_port(parity):
    parity.port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), X, T)

def test_softmax(parity):
    out = parity.op(numpy_impl.softmax, torch_impl.softmax, [(4, 10)])
    assert out["backward"] is not None
"""


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The direct calls of this process at HEADER's one thread; the count it had comes
    back after the test (an in-process session's HEADER pins this process too)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def batch():
    rng = np.random.RandomState(0)
    return rng.rand(20, 784), np.eye(10)[rng.randint(0, 10, 20)]


@pytest.fixture
def plugin_dist(tmp_path_factory, monkeypatch):
    """A distribution that declares the project's pytest11 entry points, on the path of
    this process (in-process sessions) and of subprocesses (PYTHONPATH)."""
    where = tmp_path_factory.mktemp("dist")
    info = where / "compare_parity_probe-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: compare-parity-probe\nVersion: 0\n")
    entry_points = PYPROJECT["project"]["entry-points"]["pytest11"]
    (info / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    monkeypatch.syspath_prepend(str(where))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(where), str(ROOT), os.environ.get("PYTHONPATH")])))
    return where


def table(result):
    """The end-of-session table as cells: one list per row, header and rule left out."""
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if re.fullmatch(r"=+ parity checks =+", line))
    end = next(i for i in range(start, len(lines)) if re.match(r"\d+ parity checks: ", lines[i]))
    assert lines[start + 1].split() == ["test", "check", "worst", "at", "max", "abs", "max", "rel",
                                        "tolerance", "err/tol", "verdict"]
    return [re.split(r"\s{2,}", line) for line in lines[start + 3:end]]


def assert_error_line(result, text):
    """``text`` opens a line of a failure's explanation (after the ``E``, its indent, and
    the module path of an exception's name)."""
    assert any(re.match(r"E\s+([\w.]+\.)?" + re.escape(text), line) for line in result.stdout.lines), text


def port_expectations():
    """What the three PORT_TESTS checks must report, from the same calls made here.

    Made before the inner session: an in-process session drops the modules it imported
    first, and torch cannot import some of its own twice."""
    x, t = batch()
    right = check_port(zoo.layer_net(), zoo.sequential(), x, t)
    broken = check_port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), x, t)
    op = assert_same_op(numpy_impl.softmax, torch_impl.softmax, [(4, 10)])
    return right, broken, op


def worst(report):
    """The comparison the table shows: the largest error / allowed; a failure without a
    ratio (a shape, a NaN) counts as the largest."""
    return max(report.checks, key=lambda c: c.worst_ratio if math.isfinite(c.worst_ratio)
               else float("-inf") if c.passed else float("inf"))


def assert_port_session(result, doc, expected):
    """The outcome, failure message, table and JSON of a PORT_TESTS session, serial or not."""
    right, broken, op = expected
    result.assert_outcomes(passed=2, failed=1)
    first_mismatch = next(line for line in broken.to_text().splitlines()
                          if line.startswith("first mismatch:"))
    assert_error_line(result, "AssertionError: port: FAIL: first mismatch in backward at b1 ")
    assert_error_line(result, first_mismatch)

    rows = table(result)
    assert sorted((r[0], r[1], r[-1]) for r in rows) == sorted([
        ("test_ports.py::test_right_port", "layer net", "PASS"),
        ("test_ports.py::test_broken_port", "port", "FAIL"),
        ("test_ports.py::test_softmax", "op:softmax forward", "PASS"),
        ("test_ports.py::test_softmax", "op:softmax backward", "PASS")])
    by_name = {r[1]: r for r in rows}
    assert by_name["port"][2] == "backward b1"
    assert by_name["op:softmax forward"][3] == f"{op['forward'].worst():.3g}"
    result.stdout.fnmatch_lines(["4 parity checks: 3 passed, 1 failed"])

    assert {k: doc[k] for k in ("passed", "failed", "errors")} == {"passed": 3, "failed": 1, "errors": 0}
    checks = {c["name"]: c for c in doc["checks"]}
    assert len(doc["checks"]) == len(checks) == 4
    for name, report in (("layer net", right), ("port", broken)):
        row, w = checks[name], worst(report)
        assert row["kind"] == "port" and row["passed"] is report.passed
        assert row["where"] == f"{w.phase} {w.where}"
        assert (row["max_abs"], row["max_rel"], row["rtol"], row["atol"]) == (
            w.max_abs, w.max_rel, w.rtol, w.atol)
    assert checks["layer net"]["worst_ratio"] <= 1 < checks["port"]["worst_ratio"]
    assert checks["port"]["first_mismatch"]["phase"] == "backward"
    assert checks["port"]["first_mismatch"]["where"] == broken.first_mismatch["where"] == "b1"
    assert "first_mismatch" not in checks["layer net"]
    for side in ("forward", "backward"):
        row, report = checks[f"op:softmax {side}"], op[side]
        assert row["test"] == "test_ports.py::test_softmax"
        assert (row["max_abs"], row["rtol"], row["atol"]) == (
            report.worst(), report.tolerance.rtol, report.tolerance.atol)


# --- the entry point ------------------------------------------------------------------------

def test_the_plugin_is_declared_as_a_pytest11_entry_point_and_xdist_is_in_dev():
    assert PYPROJECT["project"]["entry-points"]["pytest11"] == {"compare_parity": "compare.pytest_plugin"}
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    assert any(re.match(r"pytest-xdist\b", dep) for dep in dev)


@pytest.mark.slow
def test_importing_the_plugin_leaves_torch_and_matplotlib_unimported():
    # every pytest session of an environment with the package installed imports it
    code = ("import sys, compare.pytest_plugin; "
            "print([m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(
                             filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    assert out.stdout.strip() == "[]"


# --- one session, then the same under xdist -------------------------------------------------

def test_fixture_asserts_and_the_session_ends_with_the_table_and_json(pytester, plugin_dist):
    expected = port_expectations()
    pytester.makepyfile(test_ports=PORT_TESTS)
    path = pytester.path / "out" / "parity.json"
    result = pytester.runpytest(*PLUGIN, "--parity-json", str(path))
    doc = json.loads(path.read_text())
    assert_port_session(result, doc, expected)
    assert [c["name"] for c in doc["checks"]] == [  # in the order they ran
        "layer net", "port", "op:softmax forward", "op:softmax backward"]
    assert all("worker" not in c for c in doc["checks"])
    result.stdout.fnmatch_lines([f"parity checks written to {path}"])


@pytest.mark.slow  # a whole process or a long run: seconds
def test_xdist_workers_send_their_checks_to_one_table(pytester, plugin_dist):
    pytest.importorskip("xdist", reason="pytest-xdist (in the dev extra) is not installed")
    expected = port_expectations()
    pytester.makepyfile(test_ports=PORT_TESTS)
    path = pytester.path / "parity.json"
    result = pytester.runpytest_subprocess(*PLUGIN, "-p", "xdist", "-n", "2", "--parity-json", str(path))
    result.stdout.fnmatch_lines(["*2 workers*"])
    doc = json.loads(path.read_text())
    assert_port_session(result, doc, expected)
    assert {c["worker"] for c in doc["checks"]} == {"gw0", "gw1"}
    assert [c["test"] for c in doc["checks"]] == sorted(c["test"] for c in doc["checks"])


# --- failures, errors, names, and silence ---------------------------------------------------

def test_failed_op_and_setup_error_are_tabled_with_their_numbers(pytester, plugin_dist):
    pytester.makepyfile(test_more=HEADER + """
def test_softmax_over_the_batch(parity):
    parity.op(numpy_impl.softmax, lambda x: torch.softmax(x, dim=0), [(4, 10)])

def test_list_for_an_array(parity):
    parity.port(zoo.book_net(), zoo.literal(), X.tolist(), T)

def test_named_forward_only(parity):
    out = parity.op(numpy_impl.sigmoid, torch_impl.sigmoid, [(3, 4)], name="sigmoid", grad=False)
    assert out["backward"] is None
    assert [c["name"] for c in parity.checks] == ["sigmoid forward"]
""")
    with pytest.raises(AssertionError) as wrong_axis:
        assert_same_op(numpy_impl.softmax, lambda x: torch.softmax(x, dim=0), [(4, 10)])
    max_abs = re.search(r"^out +\(4, 10\) +float64 +(\S+)", str(wrong_axis.value), re.M).group(1)
    path = pytester.path / "parity.json"
    result = pytester.runpytest(*PLUGIN, "--parity-json", str(path))
    result.assert_outcomes(passed=1, failed=2)
    assert_error_line(result, "AssertionError: FAIL softmax: forward: "
                              "out: 40 of 40 elements out of tolerance")
    assert_error_line(result, "PortSetupError: x must be a NumPy array (the NumPy model's input), got list")

    rows = table(result)
    assert [(r[0].split("::")[1], r[1], r[-1]) for r in rows] == [
        ("test_softmax_over_the_batch", "op:softmax forward", "FAIL"),  # and no backward: never ran
        ("test_list_for_an_array", "port", "ERROR"),
        ("test_named_forward_only", "sigmoid forward", "PASS")]
    assert rows[0][3] == max_abs
    assert rows[1][2:7] == ["-"] * 5
    result.stdout.fnmatch_lines(["3 parity checks: 1 passed, 1 failed, 1 error"])

    doc = json.loads(path.read_text())
    assert {k: doc[k] for k in ("passed", "failed", "errors")} == {"passed": 1, "failed": 1, "errors": 1}
    failed, error, named = doc["checks"]
    assert failed["worst_ratio"] > 1 and failed["where"] == "out"
    assert failed["detail"] == "out: 40 of 40 elements out of tolerance"
    assert error["detail"].startswith("PortSetupError: x must be a NumPy array")
    assert error["max_abs"] is None and error["passed"] is False
    assert named["kind"] == "op" and named["passed"] is True


def test_a_session_without_parity_checks_prints_nothing_and_writes_an_empty_json(pytester, plugin_dist):
    pytester.makepyfile(test_plain="def test_plain():\n    assert 1 + 1 == 2\n")
    pytester.makeini("[pytest]\nparity_json = reports/parity.json\n")
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)
    assert not any("parity checks" in line for line in result.stdout.lines)
    doc = json.loads((pytester.path / "reports" / "parity.json").read_text())
    assert doc == {"checks": [], "passed": 0, "failed": 0, "errors": 0, "xfailed": 0}


# --- training (compare.port.training) -------------------------------------------------------

def test_training_is_tabled_like_a_port_check(pytester, plugin_dist):
    training = pytest.importorskip("compare.port.training",
                                   reason="compare.port.training (check_training) is not in this tree yet")
    x = np.random.RandomState(1).rand(60, 784)
    t = np.eye(10)[np.random.RandomState(2).randint(0, 10, 60)]
    right = training.check_training(zoo.layer_net(), zoo.sequential(), x, t, steps=3, batch_size=10)
    broken = training.check_training(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), x, t,
                                     steps=3, batch_size=10)
    pytester.makepyfile(test_training=HEADER + """
X60 = np.random.RandomState(1).rand(60, 784)
T60 = np.eye(10)[np.random.RandomState(2).randint(0, 10, 60)]

def test_right(parity):
    report = parity.training(zoo.layer_net(), zoo.sequential(), X60, T60, steps=3, batch_size=10)
    assert report.training

def test_broken(parity):
    parity.training(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), X60, T60,
                    steps=3, batch_size=10, name="flipped b1")
""")
    path = pytester.path / "parity.json"
    result = pytester.runpytest(*PLUGIN, "--parity-json", str(path))
    result.assert_outcomes(passed=1, failed=1)
    first_mismatch = next(line for line in broken.to_text().splitlines()
                          if line.startswith("first mismatch:"))
    assert_error_line(result, "AssertionError: flipped b1: " + broken.verdict())
    assert_error_line(result, first_mismatch)
    assert [(r[1], r[-1]) for r in table(result)] == [("training", "PASS"), ("flipped b1", "FAIL")]
    rows = json.loads(path.read_text())["checks"]
    for row, report in zip(rows, (right, broken)):
        w = worst(report)
        assert row["kind"] == "training" and row["passed"] is report.passed
        assert (row["where"], row["max_abs"]) == (
            f"{w.phase} {w.where}" + ("" if w.step is None else f" @{w.step}"), w.max_abs)
    assert rows[1]["first_mismatch"]["phase"] == broken.first_mismatch["phase"]
    assert rows[1]["first_mismatch"]["step"] == broken.first_mismatch.get("step")
