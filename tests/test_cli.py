"""``python -m compare``: exit status, verdict line and JSON of each subcommand, on real MNIST."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

import torch_impl
from compare import cli
from compare.cli import ch4 as ch4_commands

ROOT = Path(__file__).resolve().parents[1]


def assert_drawn(path, min_size=300):
    """Opens, is at least ``min_size`` pixels each way, and has ink on it (not blank)."""
    rgb = imread(path)[..., :3]
    assert min(rgb.shape[:2]) >= min_size, (path, rgb.shape)
    ink = np.any(rgb < 0.9, axis=-1).mean()  # share of pixels that are not near-white
    assert 0.01 < ink < 0.9 and rgb.std() > 0.05, (path, ink)


def last_line_verdict(out):
    """The verdict: printed once, as the last line, with the time."""
    lines = out.strip().splitlines()
    timed = re.fullmatch(r"(.+) \[\d+\.\d s\]", lines[-1])
    assert timed, lines[-1]
    assert [line for line in lines if timed.group(1) in line] == [lines[-1]]
    return lines[-1]


@pytest.fixture(scope="module")
def data(mnist):
    """The session's MNIST in the form the CLI loads it (one-hot labels, as the book)."""
    (x_train, t_train), (x_test, t_test) = mnist
    eye = np.eye(10)
    return (x_train, eye[t_train]), (x_test, eye[t_test])


@pytest.fixture
def run(data, monkeypatch, capsys):
    """``main(argv)`` with the session's MNIST (read once, not once per command)."""
    monkeypatch.setattr(ch4_commands, "load_data", lambda: data)

    def run(*argv):
        code = cli.main([*argv, "--no-progress"])
        return code, capsys.readouterr().out
    return run


def test_gradcheck_passes_and_writes_json(run, tmp_path):
    code, out = run("gradcheck", "--out", str(tmp_path))
    assert code == 0, out
    assert last_line_verdict(out).startswith("PASS: all 11 gradient pairs agree")
    report = json.loads((tmp_path / "gradcheck.json").read_text())
    assert report["passed"] is True and len(report["pairs"]) == 11
    assert report["settings"]["dtype"] == "float64" and report["settings"]["h"] == 1e-4
    pairs = {p["label"]: p for p in report["pairs"]}
    # round-off pairs are at round-off, and the gap is reported where it belongs
    assert max(r["max_abs"] for r in pairs["torch backprop vs numpy backprop"]["params"]) < 1e-15
    gap_pair = pairs["numpy numerical vs numpy backprop"]
    assert gap_pair["allowance"] == "1e-7 gap"
    assert 1e-9 < max(r["max_allowance"] for r in gap_pair["params"]) < 1e-6
    assert 0.05 < report["gap"]["min_target_probability"] < 0.15


def test_gradcheck_float32_index_labels(run, tmp_path):
    code, out = run("gradcheck", "--dtype", "float32", "--labels", "index", "--batch-size", "30",
                    "--brief", "--out", str(tmp_path))
    assert code == 0, out
    report = json.loads((tmp_path / "gradcheck.json").read_text())
    assert report["settings"]["h"] == 1e-2 and report["settings"]["labels"] == "index"


def test_gradcheck_exits_nonzero_and_names_a_broken_port(run, tmp_path, monkeypatch):
    class Broken(torch_impl.TwoLayerNet):
        def _gradient(self, x, t):
            grads = super()._gradient(x, t)
            grads["b2"] = -grads["b2"]
            return grads

    monkeypatch.setattr(torch_impl, "TwoLayerNet", Broken)
    code, out = run("gradcheck", "--brief", "--batch-size", "20", "--out", str(tmp_path))
    assert code == 1
    verdict = last_line_verdict(out)
    assert verdict.startswith("FAIL") and "torch backprop vs numpy backprop [b2]" in verdict
    assert json.loads((tmp_path / "gradcheck.json").read_text())["passed"] is False


@pytest.mark.slow  # two trainings of 600 iterations with full-set evaluations
def test_curves_600_iterations_pass_and_write_json(run, tmp_path):
    code, out = run("curves", "--iters", "600", "--out", str(tmp_path))
    assert code == 0, out
    assert last_line_verdict(out).startswith("PASS: 600 iterations, float64")
    report = json.loads((tmp_path / "curves.json").read_text())
    assert report["passed"] and report["acc_equal"]
    assert len(report["numpy"]["train_loss"]) == len(report["torch"]["train_loss"]) == 600
    assert report["max_rel"] <= 1e-9


@pytest.mark.slow  # a whole process or a long run: seconds
def test_train_both_sides_prints_the_books_lines(run, tmp_path):
    code, out = run("train", "--side", "both", "--iters", "3", "--eval-every", "2",
                    "--impl", "module", "--out", str(tmp_path))
    assert code == 0, out
    for side in ("[numpy] ", "[torch module] "):
        lines = [line for line in out.splitlines() if line.startswith(side)]
        assert len(lines) == 2  # iterations 0 and 2
        assert lines[0].startswith(side + "train acc, test acc | ")
    saved = json.loads((tmp_path / "train.json").read_text())
    assert saved["numpy"]["train_acc"] == saved["torch"]["train_acc"]


@pytest.mark.slow  # seconds of MNIST reading or training: in the full run
def test_train_one_side_prints_the_books_lines_unprefixed(run, tmp_path):
    code, out = run("train", "--side", "numpy", "--iters", "2", "--eval-every", "1",
                    "--out", str(tmp_path))
    assert code == 0
    assert sum(line.startswith("train acc, test acc | ") for line in out.splitlines()) == 2


def test_a_bad_argument_is_a_clear_error(run, tmp_path, capsys):
    code = cli.main(["curves", "--iters", "0", "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert capsys.readouterr().err == "ERROR: curves cannot run: --iters must be at least 1, got 0\n"


@pytest.mark.slow
def test_module_entry_point_runs():
    # the real `python -m compare`, in a fresh interpreter
    proc = subprocess.run([sys.executable, "-m", "compare", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("gradcheck", "train", "curves", "figures", "report"):
        assert command in proc.stdout


@pytest.mark.slow  # a whole process or a long run: seconds
def test_figures_book_only_writes_pngs_that_open(run, tmp_path):
    code, out = run("figures", "--book-only", "--out", str(tmp_path))
    assert code == 0
    assert out.strip().splitlines()[-1].startswith("DONE: 4 figures")
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "descent.png", "gradient_field.png", "step_size.png", "tangent.png"]
    for png in tmp_path.glob("*.png"):
        assert_drawn(png)


@pytest.mark.slow  # a gradient check, two 600-iteration trainings and seven figures
def test_report_writes_one_page_with_its_figures(run, tmp_path):
    code, out = run("report", "--iters", "600", "--out", str(tmp_path))
    assert code == 0, out
    page = (tmp_path / "report.md").read_text()
    assert "PASS: all 11 gradient pairs agree" in page and "The 1e-7 gap" in page
    linked = re.findall(r"!\[[^]]*\]\(([^)]+)\)", page)
    assert len(linked) == 7
    for name in linked:
        assert_drawn(tmp_path / name)
    # a second report reuses the curves it already has for the same settings
    code, out = run("report", "--iters", "600", "--out", str(tmp_path))
    assert code == 0 and "using " in out
