"""Golden files of models that draw, and of a training over a corpus's windows.

A recording keeps the draws the NumPy side made, so the port's dropout is answered with
them on replay as against live code; over windows it keeps each window, its draws, the
loss, the parameters and the carried state. The truth here: the live check's verdict on
the same port, and the book's trainer loop written in ``test_port_rnn_training_better``.
"""
import json

import numpy as np
import pytest

from compare import check_port
from compare.cli import main as cli_main
from compare.port import PortSetupError, check_training
from compare.port.recording import record, record_windows, save
from compare.port.reference.golden import GoldenFile
from tests.test_port_rnn_training import B, CORPUS, EXAMPLE, LR, T, _load
from tests.test_port_rnn_training_better import numpy_better_loop

N_ = _load("numpy_lm")
P = _load("torch_train")
TO = _load("torch_optimizers")
WINDOWS = 3
OPTIONS = {"data": str(EXAMPLE / "corpus.npz"), "batch": B, "seed": 0, "time_size": T}


@pytest.fixture(scope="module")
def windows_file(tmp_path_factory):
    arrays = record_windows(N_.make_better_rnnlm(), CORPUS, options=OPTIONS, steps=WINDOWS,
                            batch_size=B, time_size=T, lr=LR)
    return save(arrays, tmp_path_factory.mktemp("golden") / "better.npz")


def test_the_file_keeps_the_windows_draws_and_states(windows_file):
    golden = GoldenFile(windows_file)
    tr = golden.meta["training"]
    assert tr["windows"] and tr["steps"] == WINDOWS
    assert tr["state_names"] == ["TimeLSTM0.h", "TimeLSTM0.c", "TimeLSTM1.h", "TimeLSTM1.c"]
    # three dropout masks a window, each drawn as the book draws it: (N, T, H)
    assert [len(d["keeps"]) for d in tr["draws"]] == [3] * WINDOWS
    assert golden.arrays["train/mask/0/0"].shape == (B, T, 5)
    # the recorded run is the book's trainer loop, draws and all
    np.testing.assert_array_equal(golden.arrays["train/loss"], numpy_better_loop(WINDOWS)[0])


def test_a_right_port_passes_against_the_recorded_windows(windows_file):
    report = check_training(GoldenFile(windows_file), P.make_better(), None, None, steps=WINDOWS,
                            batch_size=B, time_size=T, lr=LR)
    assert report.passed, report.to_text()
    assert report.not_judged is None
    assert sum(r.where.startswith("state") for r in report.checks) == 4


def test_the_python_api_takes_the_files_path(windows_file):
    report = check_training(str(windows_file), P.make_better(), None, None, steps=WINDOWS,
                            batch_size=B, time_size=T, lr=LR, first_batch_check=False)
    assert report.passed, report.to_text()


def test_a_tied_weight_held_twice_is_named_against_the_recording(windows_file):
    report = check_training(GoldenFile(windows_file), P.make_better(), None, None, steps=WINDOWS,
                            batch_size=B, time_size=T, lr=LR, torch_optimizer=TO.sgd_by_layer)
    assert not report.passed
    assert [d["code"] for d in report.diagnosis] == ["tied_weights"]


def test_the_command_replays_the_windows_and_refuses_other_settings(windows_file, capsys):
    assert cli_main(["port", str(windows_file), f"{EXAMPLE / 'torch_train.py'}:make_better",
                     "--no-progress"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert cli_main(["port", str(windows_file), f"{EXAMPLE / 'torch_train.py'}:make_better",
                     "--time-size", "4", "--no-progress"]) == 2
    assert "--time-size 5, not 4" in capsys.readouterr().err


def test_a_file_without_windows_is_refused_for_window_training(tmp_path):
    path = save(record(N_.make_rnnlm(), CORPUS[:20].reshape(4, 5), CORPUS[1:21].reshape(4, 5),
                       options={"batch": 4}), tmp_path / "one.npz")
    with pytest.raises(PortSetupError, match="holds no training over a corpus's windows"):
        check_training(GoldenFile(path), P.make_lstm(), None, None, steps=2, batch_size=B,
                       time_size=T, lr=LR)


def test_a_recording_of_a_model_that_drops_answers_the_ports_draws(tmp_path):
    """One batch: the right port passes against the recording as against live code (the
    masks are in the file), and the draws are there."""
    xs, ts = CORPUS[:20].reshape(4, 5), CORPUS[1:21].reshape(4, 5)
    path = save(record(N_.make_better_rnnlm(), xs, ts, options={"batch": 4}), tmp_path / "d.npz")
    meta = json.loads(str(np.load(path)["meta"]))
    assert len(meta["draws"]["keeps"]) == 3
    live = check_port(N_.make_better_rnnlm(), P.make_better(), xs, ts)
    replayed = check_port(str(path), P.make_better(), xs, ts)
    assert live.passed and replayed.passed, replayed.to_text()
