"""``python -m compare port`` and ``record``: exit status 0 / 1 / 2, the JSON of the contract,
one clear line and no traceback when the check cannot run."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from compare import cli

ROOT = Path(__file__).resolve().parents[1]
NUMPY = "examples/layer_net/numpy_net.py:make_net"
TORCH = "examples/layer_net/torch_net.py:make_net"
ZOO = "tests/port_zoo.py"


@pytest.fixture(autouse=True)
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def run(capsys, *argv):
    code = cli.main(["port", *argv, "--data", "random", "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_right_port_exits_0_and_writes_the_contracts_json(tmp_path, capsys):
    code, out, _ = run(capsys, NUMPY, TORCH, "--json", str(tmp_path / "port.json"))
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith("PASS")
    report = json.loads((tmp_path / "port.json").read_text())
    assert report["passed"] is True and report["first_mismatch"] is None
    assert report["diagnosis"] == []
    assert report["pairing"][0] == {"numpy": "W1", "torch": "fc1.weight", "transposed": True}
    phases = {c["phase"] for c in report["checks"]}
    assert phases == {"parameters", "forward", "loss", "backward"}


@pytest.mark.parametrize("argv, expected", [
    ([NUMPY, TORCH, "--data", "random"], 0),
    ([NUMPY, f"{ZOO}:SkipsRelu", "--data", "random"], 1),
    (["numpy_impl.functions", "torch_impl.functions"], 0),  # twins by name
])
def test_the_verdict_is_printed_once_as_the_last_line_with_the_time(argv, expected, capsys):
    code = cli.main(["port", *argv, "--no-progress"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == expected
    timed = re.fullmatch(r"((PASS|FAIL): .+) \[\d+\.\d s\]", lines[-1])
    assert timed, lines[-1]
    assert timed.group(2) == ("PASS" if expected == 0 else "FAIL")
    assert [line for line in lines if timed.group(1) in line] == [lines[-1]]


def test_a_broken_port_exits_1_and_says_where(tmp_path, capsys):
    code, out, _ = run(capsys, NUMPY, f"{ZOO}:SkipsRelu", "--json", str(tmp_path / "port.json"),
                       "--report", str(tmp_path / "report"))
    assert code == 1
    report = json.loads((tmp_path / "port.json").read_text())
    fm = report["first_mismatch"]
    assert (fm["phase"], fm["where"], fm["torch"], fm["step"]) == ("forward", "Affine2", "fc2", None)
    assert fm["max_abs"] > 0 and fm["max_rel"] > 0
    assert "skips Relu1" in out
    page = (tmp_path / "report" / "port.md").read_text()
    assert "## First mismatch" in page and "port_errors.png" in page
    assert (tmp_path / "report" / "port_errors.png").stat().st_size > 10_000


def test_diagnosis_codes_reach_the_json(tmp_path, capsys):
    code, _, _ = run(capsys, f"{ZOO}:book_net", f"{ZOO}:no_batch_divide", "--json",
                     str(tmp_path / "port.json"))
    assert code == 1
    report = json.loads((tmp_path / "port.json").read_text())
    assert report["first_mismatch"]["phase"] == "backward"
    assert "scale" in [d["code"] for d in report["diagnosis"]]


@pytest.mark.slow  # a whole process or a long run: seconds
def test_training_side_by_side_from_the_command_line(tmp_path, capsys):
    code, out, _ = run(capsys, NUMPY, TORCH, "--steps", "5",
                       "--numpy-optimizer", "examples/layer_net/optimizers.py:AdaGrad",
                       "--torch-optimizer", "examples/layer_net/optimizers.py:torch_adagrad",
                       "--json", str(tmp_path / "t.json"), "--report", str(tmp_path / "r"))
    assert code == 1
    fm = json.loads((tmp_path / "t.json").read_text())["first_mismatch"]
    assert fm["phase"] == "training" and fm["step"] == 0
    assert (tmp_path / "r" / "port_training.png").exists()
    code, _, _ = run(capsys, NUMPY, TORCH, "--steps", "5",
                     "--numpy-optimizer", "examples/layer_net/optimizers.py:AdaGrad",
                     "--torch-optimizer", "examples/layer_net/optimizers.py:torch_adagrad_book_eps")
    assert code == 0


@pytest.mark.slow
def test_record_then_check_against_the_file(tmp_path, capsys):
    ref = tmp_path / "ref.npz"
    assert cli.main(["record", NUMPY, "--out", str(ref), "--data", "random", "--steps", "3"]) == 0
    assert "3 training steps" in capsys.readouterr().out
    assert cli.main(["port", str(ref), TORCH, "--no-progress"]) == 0
    assert cli.main(["port", str(ref), TORCH, "--steps", "3", "--no-progress"]) == 0
    capsys.readouterr()
    assert cli.main(["port", str(ref), TORCH, "--batch", "50"]) == 2
    assert "recorded with --batch 100, not 50" in capsys.readouterr().err
    ref.write_bytes(ref.read_bytes()[:300])
    assert cli.main(["port", str(ref), TORCH]) == 2
    assert "not a readable golden file" in capsys.readouterr().err


@pytest.mark.parametrize("numpy, torch, expected", [
    ("missing.py:make_net", TORCH, "numpy side: no such file"),
    (NUMPY.split(":")[0], TORCH, "names no model"),
    ("examples/layer_net/numpy_net.py:nothing_here", TORCH, "has no 'nothing_here'"),
    (f"{ZOO}:Affine", TORCH, "needs arguments"),
    ("numpy_impl.functions:softmax", TORCH, "needs arguments"),
    ("numpy_impl:TwoLayerNet", TORCH, "needs arguments"),
    (f"{ZOO}:sequential", TORCH, "numpy side: the model (Sequential) has no 'params'"),
    (NUMPY, f"{ZOO}:layer_net", "torch side: params['W1'] is a ndarray"),
    (NUMPY, "no_such_package.module:Net", "torch side: cannot import"),
])
def test_a_check_that_cannot_run_exits_2_with_one_line(numpy, torch, expected, capsys):
    code, _, err = run(capsys, numpy, torch)
    assert code == 2
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("option, value, expected", [
    ("--batch", "0", "--batch must be at least 1"),
    ("--steps", "0", "--steps must be at least 1"),
    ("--lr", "nan", "--lr must be a finite positive number"),
    ("--directions", "0", "--directions must be at least 1"),
    ("--input-shape", "28,x", "--input-shape must be positive integers"),
    ("--param-map", "W1", "--param-map entries are NUMPY=TORCH"),
    ("--param-map", "W9=fc1.weight", "no NumPy parameter ['W9']"),
    ("--numpy-optimizer", "examples/layer_net/optimizers.py:AdaGrad", "needs --steps"),
])
def test_bad_options_exit_2_naming_the_option(option, value, expected, capsys):
    code, _, err = run(capsys, NUMPY, TORCH, option, value)
    assert code == 2 and expected in err and "Traceback" not in err


def test_a_batch_the_model_cannot_take_exits_2(capsys):
    code, _, err = run(capsys, NUMPY, TORCH, "--input-shape", "783")
    assert code == 2 and "numpy side: gradient(ndarray(100, 783)" in err


@pytest.mark.slow  # a whole process or a long run: seconds
def test_the_real_process_exits_as_documented(tmp_path):
    """One subprocess each way: what a shell or CI sees."""
    def proc(*argv):
        return subprocess.run([sys.executable, "-m", "compare", "port", *argv, "--data", "random"],
                              cwd=ROOT, capture_output=True, text=True)
    assert proc(NUMPY, TORCH).returncode == 0
    broken = proc(NUMPY, f"{ZOO}:Float32Trip")
    assert broken.returncode == 1 and "[dtype]" in broken.stdout
    bad = proc("missing.py:net", TORCH)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


@pytest.mark.parametrize("targets", [(NUMPY, TORCH), ("examples/functions/numpy_functions.py",
                                                       "examples/functions/torch_functions.py")],
                         ids=["models", "twins"])
def test_a_device_this_machine_lacks_exits_2_before_any_work(targets, capsys):
    import torch
    device = "cuda:99" if torch.cuda.is_available() else "cuda"
    code = cli.main(["port", *targets, "--device", device])
    err = capsys.readouterr().err
    assert code == 2 and "--device" in err and len(err.strip().splitlines()) == 1
