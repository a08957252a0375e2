"""``compare port`` without tracebacks and without false alarms.

A request the check cannot serve (no MNIST, a batch larger than the file, a model of the
user's that raises) is exit status 2 and one line on stderr, naming where in the user's
own file their code raised. A right ``nn.Sequential`` port of a NumPy model without
layers lists no "unpaired" modules; a module that really computes something no NumPy
layer does still is. A failing report says its verdict on its first line, and a check
whose failure a test expected (``pytest.raises``) is no failure in the session's table.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torchvision
from torch import nn

import port_zoo as zoo
from compare import check_port, cli
from compare.port.targets import PortSetupError
from compare.testing import assert_port
from test_pytest_plugin import HEADER, PLUGIN, plugin_dist, table  # noqa: F401  (a fixture)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

# A newcomer's own tanh MLP in NumPy (no layers: one function of the arrays), the same net
# with a backward for --steps, its right port as nn.Sequential, and models whose own code
# raises, each at a line marked "raises here".
NUMPY_SOURCE = '''
import numpy as np


class TanhNet:
    def __init__(self):
        rng = np.random.RandomState(0)
        self.params = {"W1": 0.3 * rng.randn(5, 8), "b1": 0.1 * rng.randn(8),
                       "W2": 0.3 * rng.randn(8, 3), "b2": 0.1 * rng.randn(3)}

    def predict(self, x):
        p = self.params
        return np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]

    def loss(self, x, t):
        s = self.predict(x)
        s = s - s.max(axis=1, keepdims=True)
        log_p = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(t)), t].mean()

    def gradient(self, x, t):
        p = self.params
        h = np.tanh(x @ p["W1"] + p["b1"])
        s = h @ p["W2"] + p["b2"]
        y = np.exp(s - s.max(axis=1, keepdims=True))
        y /= y.sum(axis=1, keepdims=True)
        y[np.arange(len(t)), t] -= 1
        d = y / len(t)
        dh = d @ p["W2"].T * (1 - h ** 2)
        return {"W1": x.T @ dh, "b1": dh.sum(0), "W2": h.T @ d, "b2": d.sum(0)}


class LossRaises(TanhNet):
    def loss(self, x, t):
        scores = self.predict(x)
        return scores[:, 3].mean()  # raises here


class NanAwayFromStart(TanhNet):
    """A loss with no value anywhere but at the parameters it starts from."""

    def __init__(self):
        super().__init__()
        self.start = self.params["W1"].copy()

    def loss(self, x, t):
        if not np.array_equal(self.params["W1"], self.start):
            return float("nan")
        return super().loss(x, t)


class BrokenUpdate:
    def update(self, params, grads):
        params["W1"] -= grads["W3"]  # raises here


def make_net():
    return TanhNet()


def make_loss_raises():
    return LossRaises()


def make_nan_away_from_start():
    return NanAwayFromStart()


def make_fails_to_build():
    return TanhNet(sizes=(5, 8, 3))  # raises here
'''

TORCH_SOURCE = '''
import torch
from torch import nn


def make_port():
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()


class ForwardRaises(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(5, 8).double(), nn.Linear(8, 3).double()

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return self.fc2(h[:, :4])  # raises here


def make_forward_raises():
    return ForwardRaises()


def loss_raises(output, t):
    return output.sum() / missing_scale  # raises here
'''


def raising_line(source, name):
    """The line of ``name``'s source (in file order) marked "raises here"."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"(def|class) {name}\b", line))
    return next(i for i in range(start, len(lines)) if "# raises here" in lines[i]) + 1


@pytest.fixture
def models(tmp_path, monkeypatch):
    """The two files, a 200-row and a 50-row data file, in a working folder of their own."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlp_numpy.py").write_text(NUMPY_SOURCE)
    (tmp_path / "mlp_torch.py").write_text(TORCH_SOURCE)
    rng = np.random.RandomState(1)
    for rows in (200, 50):
        np.savez(tmp_path / f"rows{rows}.npz", x=rng.randn(rows, 5), t=rng.randint(0, 3, rows))
    return tmp_path


def one_line(err, *words):
    """stderr is one line, no traceback, and it names each of ``words``."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


def port(*argv):
    return cli.main(["port", "mlp_numpy.py:make_net", "mlp_torch.py:make_port", "--no-progress",
                     *argv])


# --- MNIST missing ----------------------------------------------------------------------------

@pytest.fixture
def offline_empty_mnist(tmp_path, monkeypatch):
    """An empty ``$MNIST_ROOT`` and no network: the data is missing, and nothing hangs."""
    root = tmp_path / "empty-mnist"
    root.mkdir()
    monkeypatch.setenv("MNIST_ROOT", str(root))

    def no_network(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nno network here")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    return root


@pytest.mark.parametrize("argv", [
    ["port", "examples/layer_net/numpy_net.py:make_net", "examples/layer_net/torch_net.py:make_net"],
    ["port", "examples/layer_net/numpy_net.py:make_net", "examples/layer_net/torch_net.py:make_net",
     "--steps", "2"],
    ["record", "examples/layer_net/numpy_net.py:make_net"]], ids=["port", "port --steps", "record"])
def test_without_mnist_the_command_cannot_run_and_says_where_it_looked(argv, offline_empty_mnist,
                                                                      tmp_path, capsys):
    argv = [a if not a.startswith("examples/") else str(ROOT / a) for a in argv]
    argv += ["--out", str(tmp_path / "g.npz")] if argv[0] == "record" else ["--no-progress"]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err, str(offline_empty_mnist), "MNIST_ROOT", "--data")
    assert line.startswith(f"ERROR: {argv[0]} cannot run: ")
    assert "PASS" not in captured.out and "FAIL" not in captured.out


def test_check_port_without_a_batch_and_without_mnist_is_a_setup_error(offline_empty_mnist):
    with pytest.raises(PortSetupError, match="MNIST_ROOT"):
        check_port(zoo.layer_net(), zoo.sequential())


# --- the user's own code raises -----------------------------------------------------------------

USER_ERRORS = [
    (["mlp_numpy.py:make_loss_raises", "mlp_torch.py:make_port"], "mlp_numpy.py", "LossRaises",
     ["numpy side", "loss(", "IndexError"]),
    (["mlp_numpy.py:make_net", "mlp_torch.py:make_port", "--loss", "mlp_torch.py:loss_raises"],
     "mlp_torch.py", "loss_raises", ["loss_raises", "NameError", "missing_scale"]),
    (["mlp_numpy.py:make_net", "mlp_torch.py:make_port", "--steps", "2",
      "--numpy-optimizer", "mlp_numpy.py:BrokenUpdate"], "mlp_numpy.py", "BrokenUpdate",
     ["numpy optimizer", "update", "KeyError"]),
    (["mlp_numpy.py:make_fails_to_build", "mlp_torch.py:make_port"], "mlp_numpy.py",
     "make_fails_to_build", ["make_fails_to_build()", "TypeError"]),
]


@pytest.mark.parametrize("argv, file, name, words", USER_ERRORS,
                         ids=["numpy loss", "loss function", "numpy optimizer", "factory"])
def test_an_error_in_the_users_code_is_one_line_at_its_file_and_line(argv, file, name, words,
                                                                     models, capsys):
    source = NUMPY_SOURCE if file == "mlp_numpy.py" else TORCH_SOURCE
    at = f"{file}:{raising_line(source, name)}"
    assert cli.main(["port", *argv, "--data", "rows200.npz", "--no-progress"]) == 2
    line = one_line(capsys.readouterr().err, at, *words)
    assert line.startswith("ERROR: port cannot run: ")


def test_a_port_whose_own_arithmetic_raises_fails_at_its_file_and_line(models, capsys):
    # the NumPy model ran on the batch and the parameters loaded: a port whose tensors then
    # cannot multiply computes something else, a wrong port (exit 1), not a refusal
    at = f"mlp_torch.py:{raising_line(TORCH_SOURCE, 'ForwardRaises')}"
    assert cli.main(["port", "mlp_numpy.py:make_net", "mlp_torch.py:make_forward_raises",
                     "--data", "rows200.npz", "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    verdict = [line for line in captured.out.splitlines() if line.startswith("FAIL")]
    assert verdict and "forward" in verdict[0]
    assert at in captured.out and "RuntimeError" in captured.out


def test_a_numpy_loss_without_a_value_near_the_point_is_one_line(models, capsys):
    assert cli.main(["port", "mlp_numpy.py:make_nan_away_from_start", "mlp_torch.py:make_port",
                     "--data", "rows200.npz", "--numpy-gradient", "numerical",
                     "--no-progress"]) == 2
    one_line(capsys.readouterr().err, "numpy side", "nan", "central differences")


def test_record_of_a_model_that_raises_is_one_line(models, capsys):
    assert cli.main(["record", "mlp_numpy.py:make_loss_raises", "--data", "rows200.npz",
                     "--out", "g.npz"]) == 2
    one_line(capsys.readouterr().err, f"mlp_numpy.py:{raising_line(NUMPY_SOURCE, 'LossRaises')}")


BAD_REQUESTS = [
    (["--param-map", "W1"], ["--param-map", "'W1'"]),
    (["--param-map", "W1=fc9.weight"], ["--param-map", "fc9.weight"]),
    (["--json", "."], ["--json", "folder"]),
    (["--report", "rows200.npz"], ["--report", "not a folder"]),
    (["--json", "rows200.npz/out.json"], ["--json", "rows200.npz"]),
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--steps", "2", "--seed", "4294967296"], ["--seed", "4294967296"]),
]


@pytest.mark.parametrize("argv, words", BAD_REQUESTS, ids=[" ".join(a) for a, _ in BAD_REQUESTS])
def test_a_request_no_check_can_serve_is_one_line(argv, words, models, capsys):
    assert port("--data", "rows200.npz", *argv) == 2
    captured = capsys.readouterr()
    one_line(captured.err, *words)
    assert "PASS" not in captured.out  # refused before the check, not after it


# --- --batch against the rows a file has ----------------------------------------------------------

@pytest.mark.parametrize("command", ["port", "record"])
def test_a_batch_larger_than_the_file_is_refused(command, models, capsys):
    argv = (["port", "mlp_numpy.py:make_net", "mlp_torch.py:make_port", "--no-progress"]
            if command == "port" else ["record", "mlp_numpy.py:make_net", "--out", "g.npz"])
    assert cli.main([*argv, "--data", "rows200.npz", "--batch", "500"]) == 2
    one_line(capsys.readouterr().err, "--batch 500", "200 rows", "rows200.npz", "--batch 200 or less")
    assert not (models / "g.npz").exists()


def test_the_default_batch_on_a_smaller_file_takes_its_rows_and_says_so(models, capsys):
    assert port("--data", "rows50.npz", "--json", "out.json") == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if "batch of 50" in line]
    assert notes == ["note: batch of 50: --data rows50.npz has 50 rows, fewer than the default "
                     "batch of 100"]
    doc = json.loads((models / "out.json").read_text())
    assert doc["settings"]["batch"] == 50 and doc["notes"].count(notes[0][len("note: "):]) == 1


def test_a_batch_the_file_can_hold_is_taken_as_given_without_a_note(models, capsys):
    assert port("--data", "rows200.npz", "--batch", "200", "--json", "out.json") == 0
    assert "batch of" not in capsys.readouterr().out
    assert json.loads((models / "out.json").read_text())["settings"]["batch"] == 200
    assert port("--data", "rows200.npz", "--json", "out.json") == 0  # the default fits: 100
    assert json.loads((models / "out.json").read_text())["settings"]["batch"] == 100


# --- unpaired modules ------------------------------------------------------------------------------

def test_a_right_sequential_port_of_a_net_without_layers_lists_nothing_unpaired(models, capsys):
    assert port("--data", "rows200.npz", "--json", "out.json") == 0
    out = capsys.readouterr().out
    assert "unpaired" not in out and out.splitlines()[-1].startswith("PASS")
    assert json.loads((models / "out.json").read_text())["unpaired"] == {"numpy": [], "torch": []}


def test_a_module_no_numpy_layer_computes_is_still_listed(batch):
    # the book's layers (Affine, Relu, Affine) against the same net behind an nn.Flatten:
    # its output, the input of shape (N, 784), is no NumPy layer's
    flattened = nn.Sequential(nn.Flatten(), *zoo.sequential())
    report = check_port(zoo.layer_net(), flattened, *batch)
    assert report.passed, report.to_text()
    assert report.unpaired == {"numpy": [], "torch": ["0"]}
    assert "unpaired torch modules: 0" in report.to_text().splitlines()


@pytest.fixture
def batch():
    rng = np.random.RandomState(0)
    return rng.rand(20, 784), np.eye(10)[rng.randint(0, 10, 20)]


# --- the verdict first ----------------------------------------------------------------------------

def test_raise_if_failed_and_assert_port_say_the_verdict_on_the_first_line(batch):
    broken = zoo.literal(zoo.FlippedBiasGradient)
    report = check_port(zoo.book_net(), broken, *batch)
    with pytest.raises(AssertionError) as caught:
        report.raise_if_failed()
    first = str(caught.value).splitlines()[0]
    assert first == report.verdict()
    assert first.startswith("FAIL: first mismatch in backward at b1 (torch b1)") and "sign" in first
    assert "pairing (numpy <-> torch):" in str(caught.value)  # the tables follow
    with pytest.raises(AssertionError) as caught:
        assert_port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), *batch)
    assert str(caught.value).splitlines()[0] == first


def test_twins_raise_if_failed_says_the_verdict_first(tmp_path):
    from compare.port.twins import check_twins
    (tmp_path / "np_fns.py").write_text("import numpy as np\n\ndef relu(x):\n    return np.maximum(x, 0)\n")
    (tmp_path / "t_fns.py").write_text("import torch\n\ndef relu(x):\n    return torch.abs(x)\n")
    report = check_twins(str(tmp_path / "np_fns.py"), str(tmp_path / "t_fns.py"))
    with pytest.raises(AssertionError) as caught:
        report.raise_if_failed()
    assert str(caught.value).splitlines()[0] == report.verdict()
    assert report.verdict().startswith("FAIL:")


# --- the session's table: a failure the test expected ----------------------------------------------

EXPECTED_FAILURES = HEADER + """
import pytest

def test_caught(parity):
    with pytest.raises(AssertionError, match="FAIL: first mismatch in backward at b1"):
        parity.port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), X, T, name="caught")

def test_not_caught(parity):
    parity.port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), X, T, name="not caught")

@pytest.mark.xfail(raises=AssertionError, strict=True)
def test_marked(parity):
    parity.port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), X, T, name="marked")

def test_caught_then_failing(parity):
    with pytest.raises(AssertionError):
        parity.port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), X, T, name="then failing")
    assert False, "the test fails for another reason"

def test_right(parity):
    parity.port(zoo.layer_net(), zoo.sequential(), X, T, name="right")
"""


@pytest.mark.slow
def test_a_check_failing_inside_pytest_raises_is_an_expected_failure(pytester, plugin_dist):
    pytester.makepyfile(test_expected=EXPECTED_FAILURES)
    path = pytester.path / "parity.json"
    result = pytester.runpytest(*PLUGIN, "--parity-json", str(path))
    result.assert_outcomes(passed=2, failed=2, xfailed=1)
    verdicts = {row[1]: row[-1] for row in table(result)}
    assert verdicts == {"caught": "XFAIL", "not caught": "FAIL", "marked": "XFAIL",
                        "then failing": "FAIL", "right": "PASS"}
    result.stdout.fnmatch_lines(["5 parity checks: 1 passed, 2 failed, 2 xfailed"])
    doc = json.loads(path.read_text())
    assert {k: doc[k] for k in ("passed", "failed", "errors", "xfailed")} == {
        "passed": 1, "failed": 2, "errors": 0, "xfailed": 2}
    caught = next(c for c in doc["checks"] if c["name"] == "caught")
    assert caught["passed"] is False and caught["expected"] == "FAIL"  # the check did fail


@pytest.mark.slow  # a whole process with two workers: seconds
def test_xdist_workers_send_expected_failures_as_xfail(pytester, plugin_dist):
    pytest.importorskip("xdist", reason="pytest-xdist (in the dev extra) is not installed")
    pytester.makepyfile(test_expected=EXPECTED_FAILURES)
    result = pytester.runpytest_subprocess(*PLUGIN, "-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=2, failed=2, xfailed=1)
    assert {row[1]: row[-1] for row in table(result)} == {
        "caught": "XFAIL", "not caught": "FAIL", "marked": "XFAIL", "then failing": "FAIL",
        "right": "PASS"}
    result.stdout.fnmatch_lines(["5 parity checks: 1 passed, 2 failed, 2 xfailed"])
