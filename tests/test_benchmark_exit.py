"""The ``benchmarks/*.py`` runners keep the project's exit status: 2 with one line on
stderr, before any timing, for what no run can use (a bad option, a device this machine
lacks, missing MNIST); 0 for a run that finished. No benchmark runs here: the timed
functions are replaced, and the refusals come before them."""
import functools
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from compare.ch4 import benchmark
from compare.cli import ch4 as ch4_commands

ROOT = Path(__file__).resolve().parents[1]
MISSING_CUDA = "cuda:99" if torch.cuda.is_available() else "cuda"
# each runner, the benchmark functions it may call, and options that make a valid run
RUNNERS = {
    "bench_numerical_gradient.py": (["bench_numerical_gradient"], ["--repeats", "1"]),
    "bench_numerical_training.py": (["bench_numerical_training"], ["--iters", "1"]),
    "bench_training.py": (["bench_training"], ["--iters", "1"]),
    "bench_script.py": (["bench_script", "bench_loader"], ["--iters", "1", "--rounds", "1"]),
}


def runner(name):
    """The runner's module, loaded from its file as ``python benchmarks/NAME`` would."""
    spec = importlib.util.spec_from_file_location(name[:-3], ROOT / "benchmarks" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exit_status(name, argv):
    """What a shell sees of ``python benchmarks/NAME ARGV``: the status ``main`` returns,
    or the one argparse's refusal exits with."""
    try:
        return runner(name).main(argv)
    except SystemExit as exc:
        return exc.code


def one_line(err, *words):
    """stderr is one line, no traceback, and it names each of ``words``."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.fixture
def nothing_timed(monkeypatch):
    """Every benchmark function fails the test if it is called."""
    for names, _ in RUNNERS.values():
        for fn in names:
            monkeypatch.setattr(benchmark, fn, lambda *a, _fn=fn, **k: pytest.fail(f"{_fn} ran"))


@pytest.fixture
def no_data_loaded(monkeypatch):
    def load():
        raise AssertionError("the data was read before the options were checked")
    monkeypatch.setattr(ch4_commands, "load_index_data", load)


BAD = [
    ("bench_numerical_gradient.py", ["--repeats", "0"], ["--repeats", "0"]),
    ("bench_numerical_gradient.py", ["--loop-repeats", "-1"], ["--loop-repeats", "-1"]),
    ("bench_numerical_gradient.py", ["--device", MISSING_CUDA], ["--device", MISSING_CUDA]),
    ("bench_numerical_training.py", ["--iters", "0"], ["--iters", "0"]),
    ("bench_numerical_training.py", ["--side", "jax"], ["--side", "jax"]),
    ("bench_numerical_training.py", ["--side", "torch", "--device", MISSING_CUDA],
     ["--device", MISSING_CUDA]),
    ("bench_training.py", ["--rounds", "0"], ["--rounds", "0"]),
    ("bench_training.py", ["--iters", "ten"], ["--iters", "ten"]),
    ("bench_training.py", ["--device", "no-such-device"], ["--device", "no-such-device"]),
    ("bench_script.py", ["--rounds", "0"], ["--rounds", "0"]),
    ("bench_script.py", ["--seed", "-1"], ["--seed", "-1"]),
    ("bench_script.py", ["--scripts", "nope"], ["--scripts", "nope"]),
    ("bench_script.py", ["--loader", "--rounds", "-2"], ["--rounds", "-2"]),
]


@pytest.mark.parametrize("name, argv, words", BAD, ids=[f"{n} {' '.join(a)}" for n, a, _ in BAD])
def test_a_bad_option_exits_2_with_one_line_before_any_work(name, argv, words, nothing_timed,
                                                            no_data_loaded, tmp_path, capsys):
    assert exit_status(name, [*argv, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err, *words)
    assert line.startswith(f"ERROR: {name} cannot run: ")
    assert captured.out == ""


@pytest.mark.parametrize("name", list(RUNNERS))
def test_an_output_folder_that_is_a_file_exits_2(name, nothing_timed, no_data_loaded, tmp_path,
                                                 capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert exit_status(name, [*RUNNERS[name][1], "--out", str(taken)]) == 2
    one_line(capsys.readouterr().err, "--out", str(taken), "not a folder")


@pytest.fixture
def offline_empty_mnist(tmp_path, monkeypatch):
    """An empty ``$MNIST_ROOT`` and no network: the data is missing, and nothing hangs."""
    root = tmp_path / "mnist"
    root.mkdir()
    monkeypatch.setenv("MNIST_ROOT", str(root))

    def no_network(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nno network here")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    # a fresh cache: an earlier test in this process may have read the real data
    monkeypatch.setattr(ch4_commands, "load_index_data",
                        functools.lru_cache(maxsize=None)(ch4_commands.load_index_data.__wrapped__))
    return root


MISSING = [(name, valid) for name, (_, valid) in RUNNERS.items()] + [
    ("bench_script.py", ["--loader", "--rounds", "1"])]


@pytest.mark.parametrize("name, argv", MISSING, ids=[f"{n} {' '.join(a)}" for n, a in MISSING])
def test_missing_mnist_exits_2_naming_the_folder(name, argv, nothing_timed, offline_empty_mnist,
                                                 tmp_path, capsys):
    assert exit_status(name, [*argv, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    one_line(captured.err, f"ERROR: {name} cannot run: ", str(offline_empty_mnist), "MNIST_ROOT")
    assert captured.out == ""


FINISHED = [(name, valid, fns[0]) for name, (fns, valid) in RUNNERS.items()] + [
    ("bench_script.py", ["--loader", "--rounds", "1"], "bench_loader")]


@pytest.mark.parametrize("name, argv, fn", FINISHED, ids=[f"{n} {' '.join(a)}" for n, a, _ in FINISHED])
def test_a_finished_run_exits_0_and_saves_its_result(name, argv, fn, mnist, monkeypatch, tmp_path,
                                                     capsys):
    monkeypatch.setattr(ch4_commands, "load_index_data", lambda: mnist)
    calls = []

    def timed(fn):
        def run(*args, **kwargs):
            calls.append((fn, args, kwargs))
            return {"benchmark": fn[len("bench_"):], "rows": [{"what": fn, "seconds": 1.5}]}
        return run

    for each in RUNNERS[name][0]:
        monkeypatch.setattr(benchmark, each, timed(each))
    out = tmp_path / "out"
    assert exit_status(name, [*argv, "--out", str(out)]) == 0
    (called, args, kwargs), = calls
    assert called == fn
    given = [a for a in argv if a != "--loader"]
    for option, value in zip(given[::2], given[1::2]):  # each option reaches the benchmark
        assert kwargs[option[2:]] == int(value), (option, kwargs)
    if not fn.startswith(("bench_script", "bench_loader")):  # in-process: the data checked before
        assert args[0] is mnist
    lines = capsys.readouterr().out.splitlines()
    assert f"| {fn} | 1.5 |" in lines
    saved = out / f"bench_{fn[len('bench_'):]}.json"
    assert lines[-1] == f"saved {saved}" and saved.is_file()


@pytest.mark.slow
def test_the_real_process_exits_2_with_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "benchmarks/bench_training.py", "--rounds", "0",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    one_line(proc.stderr, "ERROR: bench_training.py cannot run: ", "--rounds")
    assert proc.stdout == ""
