"""``compare port`` with two modules: functions paired by name, each pair compared forward and
backward; rows for pairs that differ, pairs not callable, names on one side only."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from compare import cli
from compare.port.targets import PortSetupError
from compare.port.twins import check_twins, public_functions, wants_twins
from compare.testing import assert_same_op, compare_op

ROOT = Path(__file__).resolve().parents[1]
NP_EXAMPLE = "examples/functions/numpy_functions.py"
T_EXAMPLE = "examples/functions/torch_functions.py"


@pytest.fixture(autouse=True)
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def write(folder, name, source):
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return str(path)


def rows(report):
    return {row.name: row for row in report.rows}


def port(capsys, *argv):
    code = cli.main(["port", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"{constant} in the JSON")
    return json.loads(Path(path).read_text(), parse_constant=refuse)


# --- the example modules ----------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_example_modules_agree(dtype):
    report = check_twins(NP_EXAMPLE, T_EXAMPLE, dtype=dtype)
    assert report.passed, report.to_text()
    by_name = rows(report)
    assert list(by_name) == ["step_function", "sigmoid", "relu", "softmax", "sum_squared_error",
                             "cross_entropy_error"]
    assert all(row.status == "passed" for row in report.rows)
    assert report.only_numpy == ["numerical_gradient"] and report.only_torch == []
    # PARITY_INPUTS reached the calls: probabilities and labels, a 3-d batch, values only
    assert by_name["cross_entropy_error"].inputs == [f"(4, 10) {dtype}", "(4,) int64"]
    assert by_name["softmax"].inputs == [f"(2, 3, 10) {dtype}"]
    assert by_name["step_function"].backward is None
    assert by_name["step_function"].note == "forward only: grad=False"
    assert by_name["sigmoid"].backward.kind == "numerical"
    assert report.verdict() == "PASS: 6 pairs agree, 0 not checked, 0 differ; 1 name on one side only"


def test_the_example_modules_through_the_cli(tmp_path, capsys):
    code, out, _ = port(capsys, NP_EXAMPLE, T_EXAMPLE, "--json", str(tmp_path / "twins.json"))
    assert code == 0, out
    assert "only in numpy: numerical_gradient" in out
    report = strict_json(tmp_path / "twins.json")
    assert report["passed"] is True
    assert report["only_numpy"] == ["numerical_gradient"] and report["only_torch"] == []
    assert [p["name"] for p in report["pairs"]][:2] == ["step_function", "sigmoid"]
    sigmoid = report["pairs"][1]
    assert sigmoid["passed"] is True and sigmoid["status"] == "passed"
    assert 0 < sigmoid["backward_max_abs"] < 1e-8 and sigmoid["forward_max_abs"] < 1e-15
    assert sigmoid["tolerance"]["forward"]["rtol"] == 1e-10


# --- a broken port --------------------------------------------------------------------------

BROKEN = """
    import torch

    def step_function(x):
        return (x > 0).to(torch.int64)

    def sigmoid(x):
        return 1 / (1 + torch.exp(x))  # sign flipped

    def relu(x):
        return torch.clamp(x.float(), min=0)  # float32 leak

    def softmax(x):
        x = x - torch.amax(x, dim=0, keepdim=True)
        return torch.exp(x) / torch.sum(torch.exp(x), dim=0, keepdim=True)  # wrong axis

    def sum_squared_error(y, t):
        return 0.5 * torch.sum((y - t) ** 2)

    # cross_entropy_error: not ported

    def to_tensor(x):  # a helper of the port's own
        return torch.as_tensor(x)
"""


def test_a_broken_port_gets_the_right_rows(tmp_path):
    report = check_twins(NP_EXAMPLE, write(tmp_path, "broken.py", BROKEN))
    assert not report.passed
    by_name = rows(report)
    assert {n: r.status for n, r in by_name.items()} == {
        "step_function": "passed", "sigmoid": "failed", "relu": "failed", "softmax": "failed",
        "sum_squared_error": "passed"}
    assert "float32" in by_name["relu"].reason
    assert by_name["sigmoid"].reason.startswith("forward: out:")
    assert "backward: d/dx0" in by_name["sigmoid"].reason  # the gradient differs as well
    assert by_name["softmax"].forward.worst("max_abs") > 0.1
    assert report.only_numpy == ["cross_entropy_error", "numerical_gradient"]
    assert report.only_torch == ["to_tensor"]
    assert report.verdict().startswith(
        "FAIL: 2 pairs agree, 0 not checked, 3 differ (sigmoid, relu, softmax)")
    with pytest.raises(AssertionError, match="only in torch: to_tensor"):
        report.raise_if_failed()


def test_a_broken_port_exits_1_with_the_contracts_json(tmp_path, capsys):
    broken = write(tmp_path, "broken.py", BROKEN)
    code, out, _ = port(capsys, NP_EXAMPLE, broken, "--json", str(tmp_path / "twins.json"))
    assert code == 1
    assert out.strip().splitlines()[-1].startswith("FAIL: 2 pairs agree")
    report = strict_json(tmp_path / "twins.json")
    assert report["passed"] is False
    assert {p["name"]: p["passed"] for p in report["pairs"]} == {
        "step_function": True, "sigmoid": False, "relu": False, "softmax": False,
        "sum_squared_error": True}
    assert report["only_numpy"] == ["cross_entropy_error", "numerical_gradient"]
    assert report["only_torch"] == ["to_tensor"]


def test_right_values_with_a_wrong_gradient_fail_in_the_backward_pass(tmp_path):
    np_mod = write(tmp_path, "np_side.py", """
        import numpy as np
        def tanh(x):
            return np.tanh(x)
        def square(x):
            return x ** 2
        def double(x):
            return 2 * x
    """)
    t_mod = write(tmp_path, "t_side.py", """
        import torch
        def tanh(x):
            return torch.tanh(x.detach())  # right values, cut off from autograd
        def square(x):
            return x ** 2 + (x - x.detach())  # right values, gradient 2x + 1
        def double(x):
            return 2 * x
    """)
    by_name = rows(check_twins(np_mod, t_mod))
    assert by_name["double"].status == "passed"
    for name in ("tanh", "square"):
        row = by_name[name]
        assert row.status == "failed" and row.forward.passed and not row.backward.passed
        assert row.reason.startswith("backward: d/dx0")
    assert "zero gradient" in by_name["tanh"].note


# --- NaN, not callable, nothing checked -------------------------------------------------------

NAN_NUMPY = """
    import numpy as np
    def log(x):
        return np.log(x)
    def sqrt(x):
        return np.sqrt(x)
    def log_one_sided(x):
        return np.log(x)
"""
NAN_TORCH = """
    import torch
    def log(x):
        return torch.log(x)
    def sqrt(x):
        return torch.sqrt(x)
    def log_one_sided(x):
        return torch.log(x.abs())  # finite where NumPy has NaN
"""


def test_nan_at_the_same_places_is_equal_and_on_one_side_a_difference(tmp_path):
    report = check_twins(write(tmp_path, "n.py", NAN_NUMPY), write(tmp_path, "t.py", NAN_TORCH))
    by_name = rows(report)
    negatives = int((np.random.RandomState(0).randn(4, 10) < 0).sum())
    for name in ("log", "sqrt"):
        row = by_name[name]
        assert row.status == "passed", row.reason
        assert row.note.startswith(f"{negatives} of 40 output elements NaN")
        assert row.backward is not None and row.backward.passed
    # sqrt's derivative is NaN below 0: autograd's 0 x NaN there is taken as NumPy's 0
    assert "NaN in torch's gradient" in by_name["sqrt"].note
    bad = by_name["log_one_sided"]
    assert bad.status == "failed" and "NaN in expected" in bad.reason


def test_nan_everywhere_checks_nothing(tmp_path):
    np_mod = write(tmp_path, "n.py", "import numpy as np\ndef f(x):\n    return np.log(x).sum()\n")
    t_mod = write(tmp_path, "t.py", "import torch\ndef f(x):\n    return torch.log(x).sum()\n")
    report = check_twins(np_mod, t_mod)
    assert rows(report)["f"].status == "skipped" and "NaN" in rows(report)["f"].reason
    assert report.nothing_checked and not report.passed
    # with inputs it can take, the same pair is checked and agrees
    assert check_twins(np_mod, t_mod, inputs={"f": [np.full((2, 3), 0.5)]}).passed


CALLABLE_NUMPY = """
    import numpy as np
    def apply(f, x):
        return f(x)
    def half(x):
        return x / 2
    def total(x, axis):
        return x.sum(axis=axis)
    def main():
        raise SystemExit("called: a zero-argument function is not run without being asked")
    def seven():
        return np.float64(7.0)
    def describe(x):
        return "an array"
    PARITY_INPUTS = {"total": {"inputs": [(3, 4)], "kwargs": {"axis": 1}}, "seven": []}
"""
CALLABLE_TORCH = """
    import torch
    def apply(f, x):
        return f(x)
    def half(x):
        return x.reshape(-1, 3) / 2  # 40 elements do not fold into rows of 3
    def total(x, axis):
        return x.sum(dim=axis)
    def main():
        raise SystemExit("called")
    def seven():
        return torch.tensor(7.0, dtype=torch.float64)
    def describe(x):
        return "a tensor"
"""


def test_pairs_that_cannot_be_called_are_reported_not_failed(tmp_path):
    report = check_twins(write(tmp_path, "n.py", CALLABLE_NUMPY),
                         write(tmp_path, "t.py", CALLABLE_TORCH))
    by_name = rows(report)
    assert by_name["apply"].status == "skipped" and by_name["apply"].passed is None
    assert by_name["apply"].reason.startswith(
        "not callable with these inputs: numpy raised TypeError: 'numpy.ndarray' object is not "
        "callable; torch raised TypeError")
    assert by_name["half"].status == "skipped"
    assert by_name["half"].reason.startswith(
        "not callable with these inputs: torch raised RuntimeError")
    assert by_name["main"].status == "skipped" and "takes no arguments" in by_name["main"].reason
    assert by_name["describe"].status == "skipped"
    assert by_name["describe"].reason == "nothing to compare: numpy returned str, torch str"
    # options and an empty input list from PARITY_INPUTS
    assert by_name["total"].status == "passed" and by_name["total"].output == "(3,) float64"
    assert by_name["seven"].status == "passed"
    assert report.passed
    assert report.verdict() == "PASS: 2 pairs agree, 4 not checked, 0 differ"


def test_nothing_checked_exits_2_after_writing_the_report(tmp_path, capsys):
    np_mod = write(tmp_path, "n.py", "def apply(f, x):\n    return f(x)\n")
    t_mod = write(tmp_path, "t.py", "def apply(f, x):\n    return f(x)\n")
    code, out, err = port(capsys, np_mod, t_mod, "--json", str(tmp_path / "twins.json"))
    assert code == 2
    assert "not callable with these inputs" in out
    assert "NOT CHECKED: none of the 1 pairs could be checked" in err
    assert len(err.strip().splitlines()) == 1
    report = strict_json(tmp_path / "twins.json")
    assert report["passed"] is False and report["pairs"][0]["passed"] is None
    # no shared name at all
    other = write(tmp_path, "o.py", "def other(x):\n    return x\n")
    code, _, err = port(capsys, np_mod, other)
    assert code == 2 and "no function is defined in both modules" in err


def test_one_side_returning_an_array_and_the_other_not_is_a_difference(tmp_path):
    np_mod = write(tmp_path, "n.py", "def f(x):\n    return x * 2\n")
    t_mod = write(tmp_path, "t.py", "def f(x):\n    x.mul_(2)\n")  # in place, returns None
    row = rows(check_twins(np_mod, t_mod))["f"]
    assert row.status == "failed" and row.reason == "numpy returned a NumPy array, torch NoneType"


# --- what counts as a function --------------------------------------------------------------

def test_public_functions_are_the_modules_own(tmp_path):
    np_mod = write(tmp_path, "n.py", """
        import numpy as np
        from math import sqrt
        from numpy import exp
        from os.path import join

        class Net:
            pass

        def _helper(x):
            return x

        def f(x):
            return np.tanh(x)

        g = lambda x: 3 * x  # noqa: E731
        CONSTANT = 3
    """)
    from compare.port.targets import load_module
    module = load_module(np_mod, "numpy side")
    assert list(public_functions(module)) == ["f", "g"]


def test_modules_may_be_objects_or_dotted_names():
    import numpy_impl.functions as nf
    import torch_impl.functions as tf
    by_object = check_twins(nf, tf)
    by_name = check_twins("numpy_impl.functions", "torch_impl.functions")
    assert [r.status for r in by_object.rows] == [r.status for r in by_name.rows]
    assert by_object.settings["numpy"] == "numpy_impl.functions"


# --- the book's own functions ---------------------------------------------------------------

BOOK = ["identity_function", "step_function", "sigmoid", "sigmoid_grad", "relu", "relu_grad",
        "softmax", "sum_squared_error", "cross_entropy_error", "softmax_loss", "function_1",
        "function_2"]


def by_name_of(report):
    return {p["name"]: p for p in report["pairs"]}


def test_numpy_impl_functions_against_torch_impl_functions(tmp_path, capsys):
    code, out, _ = port(capsys, "numpy_impl.functions", "torch_impl.functions",
                        "--json", str(tmp_path / "twins.json"))
    assert code == 0, out
    report = strict_json(tmp_path / "twins.json")
    assert [p["name"] for p in report["pairs"]] == BOOK
    assert report["only_numpy"] == [] and report["only_torch"] == []
    status = {p["name"]: p["status"] for p in report["pairs"]}
    # N(0, 1) draws are no probabilities, nor labels: both sides refuse them, alike
    assert status.pop("cross_entropy_error") == "skipped"
    assert status.pop("softmax_loss") == "skipped"
    assert "t has a negative entry" in by_name_of(report)["softmax_loss"]["reason"]
    assert set(status.values()) == {"passed"}
    by_name = {p["name"]: p for p in report["pairs"]}
    assert by_name["step_function"]["backward"] is None
    assert by_name["sigmoid"]["backward"]["passed"] is True
    assert by_name["relu_grad"]["note"].startswith("torch output not differentiable")


def test_every_book_function_agrees_with_inputs_it_can_take():
    rng = np.random.RandomState(3)
    probabilities = rng.dirichlet(np.ones(10), size=4)
    report = check_twins("numpy_impl.functions", "torch_impl.functions", seed=1, inputs={
        "cross_entropy_error": [probabilities, np.array([3, 0, 7, 1])],
        "softmax_loss": {"inputs": [(4, 10), np.eye(10)[[3, 0, 7, 1]]], "wrt": [0]},
        "sum_squared_error": {"inputs": [(4, 10), (4, 10)], "wrt": [1]}})
    assert report.passed and [r.status for r in report.rows] == ["passed"] * len(BOOK)
    assert rows(report)["cross_entropy_error"].backward.passed
    assert [r.name for r in rows(report)["sum_squared_error"].backward.rows] == ["d/dx1"]


@pytest.mark.slow  # a whole process or a long run: seconds
def test_numpy_impl_functions_in_a_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "compare", "port", "numpy_impl.functions", "torch_impl.functions",
         "--json", str(tmp_path / "twins.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith(
        "PASS: 10 pairs agree, 2 not checked, 0 differ")
    assert strict_json(tmp_path / "twins.json")["passed"] is True


# --- what cannot run ------------------------------------------------------------------------

@pytest.mark.parametrize("numpy, torch_side, extra, expected", [
    ("missing.py", T_EXAMPLE, [], "numpy side: no such file 'missing.py'"),
    (NP_EXAMPLE, "no_such_package.functions", [], "torch side: cannot import"),
    (NP_EXAMPLE, f"{T_EXAMPLE}:softmax", [],
     "numpy side: 'examples/functions/numpy_functions.py' names no model, while the torch side"),
    (f"{NP_EXAMPLE}:softmax", T_EXAMPLE, [],
     "torch side: 'examples/functions/torch_functions.py' names no model"),
    (NP_EXAMPLE, T_EXAMPLE, ["--steps", "3"], "--steps applies to models, not to twins by name"),
    (NP_EXAMPLE, T_EXAMPLE, ["--data", "random"], "--data applies to models"),
    (NP_EXAMPLE, T_EXAMPLE, ["--param-map", "W1=fc1.weight"], "--param-map applies to models"),
])
def test_a_twins_check_that_cannot_run_exits_2_with_one_line(numpy, torch_side, extra, expected,
                                                               capsys):
    code, _, err = port(capsys, numpy, torch_side, *extra)
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("table, expected", [
    ({"sofmax": [(4, 10)]}, "names 'sofmax', which is not a public function"),
    ({"softmax": (4, 10)}, "read as 2 numbers; for one array of that shape write [(4, 10)]"),
    ({"softmax": {"inputs": [(4, 10)], "gradient": False}}, "unknown keys ['gradient']"),
    ({"softmax": {"grad": False}}, "needs 'inputs'"),
    ({"softmax": 3}, "must be a list of inputs"),
    ({"softmax": {"inputs": [(4, 10)], "wrt": [1]}}, "must list positions among the 1 inputs"),
])
def test_malformed_inputs_are_refused(tmp_path, table, expected, capsys):
    with pytest.raises(PortSetupError) as info:
        check_twins(NP_EXAMPLE, T_EXAMPLE, inputs=table)
    assert expected in str(info.value)
    # the same in the module's own PARITY_INPUTS, through the command: exit 2
    source = Path(NP_EXAMPLE).read_text() + f"\nPARITY_INPUTS = {table!r}\n"
    code, _, err = port(capsys, write(tmp_path, "n.py", source), T_EXAMPLE)
    assert code == 2 and expected in err


def test_which_commands_are_twins():
    assert wants_twins("a.py", "b.py") and wants_twins("pkg.mod", "b.py")
    assert not wants_twins("a.py:make", "b.py:Net")
    assert not wants_twins("ref.npz", "b.py:Net")
    with pytest.raises(PortSetupError, match="names no model"):
        wants_twins("a.py", "b.py:Net")
    with pytest.raises(PortSetupError, match="drop ':softmax'"):
        check_twins(f"{NP_EXAMPLE}:softmax", T_EXAMPLE)


# --- compare_op: assert_same_op's comparison, returned ----------------------------------------

def test_compare_op_returns_what_assert_same_op_raises_on():
    from numpy_impl import softmax

    def wrong_axis(x):
        return torch.softmax(x, dim=0)

    result = compare_op(softmax, wrong_axis, [(3, 4)])
    assert not result.passed and not result.forward.passed
    assert result.backward is not None  # computed even though the values already differ
    with pytest.raises(AssertionError, match="forward") as info:
        assert_same_op(softmax, wrong_axis, [(3, 4)])
    assert str(info.value) == "\n" + result.forward.to_text()


def test_compare_op_keeps_assert_same_ops_findings_without_a_table():
    from numpy_impl import sigmoid
    detached = compare_op(sigmoid, lambda x: torch.sigmoid(x.detach()), [(3,)])
    assert detached.forward.passed and detached.backward is None
    assert "does not depend on the inputs through autograd" in detached.problem
    two = compare_op(sigmoid, lambda x: (torch.sigmoid(x), x), [(3,)])
    assert two.forward is None and two.problem == "torch returned 2 outputs, NumPy 1"
    with pytest.raises(AssertionError, match="sigmoid: torch returned 2 outputs, NumPy 1"):
        two.raise_if_failed()
