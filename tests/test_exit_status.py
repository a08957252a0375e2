"""Every command line of the project, one convention: 0 the run finished (and
parity holds), 1 parity does not hold (or training diverged), 2 the command
cannot run as asked, said in one line on stderr, with no traceback, before
any work starts."""
import functools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from compare import cli
from compare.cli import ch4 as ch4_commands
from numpy_impl import train_neuralnet as numpy_script
from torch_impl import train_neuralnet as torch_script

ROOT = Path(__file__).resolve().parents[1]
# a CUDA device this machine cannot serve, whether or not it has a GPU
MISSING_CUDA = "cuda:99" if torch.cuda.is_available() else "cuda"


def one_line(err, *words):
    """stderr is one line, no traceback, and it names each of ``words``."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.fixture
def no_data_loaded(monkeypatch):
    """The commands' MNIST, made to fail the test if anything reads it."""
    def load():
        raise AssertionError("the data was read before the options were checked")
    monkeypatch.setattr(ch4_commands, "load_data", load)
    monkeypatch.setattr(ch4_commands, "load_index_data", load)
    monkeypatch.setattr(numpy_script, "load_data", load)


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
    monkeypatch.setattr(ch4_commands, "load_data",
                        functools.lru_cache(maxsize=None)(ch4_commands.load_data.__wrapped__))
    monkeypatch.setattr(ch4_commands, "load_index_data",
                        functools.lru_cache(maxsize=None)(ch4_commands.load_index_data.__wrapped__))
    return root


# -- python -m compare -------------------------------------------------------------

BAD_OPTIONS = [
    (["gradcheck", "--device", MISSING_CUDA], ["--device", MISSING_CUDA]),
    (["gradcheck", "--h", "0"], ["--h", "0.0"]),
    (["gradcheck", "--h", "1e-20"], ["--h", "1e-20", "epsilon"]),
    (["gradcheck", "--batch-size", "-5"], ["--batch-size", "-5"]),
    (["gradcheck", "--seed", "-1"], ["--seed", "-1"]),
    (["gradcheck", "--device", "no-such-device"], ["--device", "no-such-device"]),
    (["train", "--lr", "nan"], ["--lr", "nan"]),
    (["train", "--lr", "-1"], ["--lr", "-1.0"]),
    (["train", "--lr", "0"], ["--lr", "0.0"]),
    (["train", "--side", "numpy", "--device", MISSING_CUDA], ["--device", MISSING_CUDA]),
    (["curves", "--iters", "0"], ["--iters", "0"]),
    (["curves", "--device", MISSING_CUDA, "--iters", "10"], ["--device", MISSING_CUDA]),
    (["curves", "--eval-every", "0"], ["--eval-every", "0"]),
    (["figures", "--book-only", "--device", MISSING_CUDA], ["--device", MISSING_CUDA]),
    (["figures", "--iters", "-2"], ["--iters", "-2"]),
    (["report", "--batch-size", "0"], ["--batch-size", "0"]),
    (["report", "--h", "inf"], ["--h", "inf"]),
    (["bench", "training", "--rounds", "0"], ["--rounds", "0"]),
    (["bench", "numerical-gradient", "--repeats", "-1"], ["--repeats", "-1"]),
    (["bench", "numerical-training", "--iters", "0"], ["--iters", "0"]),
    (["bench", "training", "--device", MISSING_CUDA], ["--device", MISSING_CUDA]),
]


@pytest.mark.parametrize("argv, words", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_compare_refuses_a_bad_option_before_any_work(argv, words, no_data_loaded, tmp_path,
                                                      capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    line = one_line(captured.err, *words)
    assert line.startswith(f"ERROR: {argv[0]} cannot run: ")
    assert captured.out == ""


def test_compare_refuses_an_output_folder_that_is_a_file(no_data_loaded, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    assert cli.main(["gradcheck", "--out", str(taken)]) == 2
    one_line(capsys.readouterr().err, "--out", str(taken), "not a folder")


@pytest.mark.parametrize("argv", [["gradcheck"], ["curves", "--iters", "5", "--no-progress"],
                                  ["bench", "numerical-training", "--iters", "1"]])
def test_compare_without_mnist_cannot_run(argv, offline_empty_mnist, tmp_path, capsys):
    assert cli.main([*argv, "--out", str(tmp_path / "out")]) == 2
    one_line(capsys.readouterr().err, str(offline_empty_mnist), "MNIST_ROOT")


def test_compare_book_figures_need_no_mnist(no_data_loaded, monkeypatch, tmp_path, capsys):
    from compare.ch4 import figures

    monkeypatch.setattr(figures, "book_figures", lambda out: {})  # drawn in test_cli.py
    assert cli.main(["figures", "--book-only", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


def test_a_bug_inside_a_command_keeps_its_traceback(monkeypatch, tmp_path):
    # Only the request is refused with exit status 2; a failure inside the work is not
    # dressed up as one.
    def broken(args):
        raise ValueError("a bug, not a bad request")

    monkeypatch.setattr(ch4_commands, "load_data", lambda: None)
    monkeypatch.setitem(cli.COMMANDS, "gradcheck", broken)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["gradcheck", "--out", str(tmp_path)])


# -- the training scripts -----------------------------------------------------------

SCRIPT_OPTIONS = [
    (["--iters", "0"], ["--iters", "0"]),
    (["--batch-size", "-1"], ["--batch-size", "-1"]),
    (["--lr", "nan"], ["--lr", "nan"]),
    (["--lr", "0"], ["--lr", "0.0"]),
    (["--seed", "-3"], ["--seed", "-3"]),
    (["--checkpoint", "c.npz", "--checkpoint-every", "0"], ["--checkpoint-every", "0"]),
    (["--checkpoint", "missing-folder/c.npz"], ["--checkpoint", "missing-folder"]),
    (["--checkpoint", "none.npz", "--resume"], ["--checkpoint", "none.npz"]),
]


@pytest.mark.parametrize("script", [numpy_script, torch_script], ids=["numpy", "torch"])
@pytest.mark.parametrize("argv, words", SCRIPT_OPTIONS,
                         ids=[" ".join(a) for a, _ in SCRIPT_OPTIONS])
def test_scripts_refuse_a_bad_option_before_any_work(script, argv, words, no_data_loaded,
                                                     tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert script.main(argv) == 2
    captured = capsys.readouterr()
    one_line(captured.err, *words)
    assert captured.out == ""


def test_torch_script_refuses_a_device_before_reading_mnist(no_data_loaded, capsys):
    assert torch_script.main(["--device", MISSING_CUDA]) == 2
    one_line(capsys.readouterr().err, "--device", MISSING_CUDA)


def test_scripts_refuse_to_resume_another_run(tmp_path, monkeypatch, capsys):
    from numpy_impl import BookRandomStream, TwoLayerNet
    from numpy_impl.checkpoint import save_checkpoint

    path = tmp_path / "run.npz"
    save_checkpoint(path, TwoLayerNet(784, 50, 10, seed=1), {"train_loss": [2.3]},
                    BookRandomStream(1), 1, learning_rate=0.1, batch_size=100, seed=1,
                    gradient="backprop", eval_every=None)
    monkeypatch.setattr(numpy_script, "load_data", lambda: pytest.fail("data read"))
    for script in (numpy_script, torch_script):
        assert script.main(["--checkpoint", str(path), "--resume", "--seed", "1",
                            "--lr", "0.2"]) == 2
        one_line(capsys.readouterr().err, "--lr 0.2", "0.1", str(path))
    small = tmp_path / "small.npz"
    save_checkpoint(small, TwoLayerNet(4, 3, 2, seed=1), {"train_loss": []},
                    BookRandomStream(1), 0)
    assert numpy_script.main(["--checkpoint", str(small), "--resume"]) == 2
    one_line(capsys.readouterr().err, "--checkpoint", "4-3-2")


@pytest.mark.parametrize("script", [numpy_script, torch_script], ids=["numpy", "torch"])
def test_scripts_without_mnist_cannot_run(script, offline_empty_mnist, capsys):
    assert script.main(["--iters", "1"]) == 2
    one_line(capsys.readouterr().err, str(offline_empty_mnist), "MNIST_ROOT")


@pytest.mark.parametrize("script", [numpy_script, torch_script], ids=["numpy", "torch"])
def test_scripts_with_a_broken_mnist_file_cannot_run(script, tmp_path, monkeypatch, capsys):
    # broken, not missing: refused before any download is tried
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(np.zeros(4, np.uint8).tobytes())
    monkeypatch.setenv("MNIST_ROOT", str(tmp_path))
    assert script.main(["--iters", "1"]) == 2
    one_line(capsys.readouterr().err, str(raw / "train-images-idx3-ubyte"))


# -- in a process of their own: the exit status and stderr a shell sees --------------

@pytest.mark.parametrize("argv, words", [
    (["compare", "gradcheck", "--device", MISSING_CUDA], ["--device", MISSING_CUDA]),
    (["torch_impl.train_neuralnet", "--device", MISSING_CUDA], ["--device", MISSING_CUDA]),
    (["numpy_impl.train_neuralnet", "--iters", "0"], ["--iters"]),
], ids=["compare", "torch script", "numpy script"])
@pytest.mark.slow  # a whole process or a long run: seconds
def test_a_real_process_exits_2_with_one_line(argv, words, tmp_path):
    proc = subprocess.run([sys.executable, "-m", *argv, *(["--out", str(tmp_path)]
                                                          if argv[0] == "compare" else [])],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    one_line(proc.stderr, *words)
    assert proc.stdout == ""
