import pytest
"""``python -m compare bench`` runs a benchmark end to end and writes its JSON."""
import json

from compare import cli


@pytest.mark.slow  # a whole process or a long run: seconds
def test_bench_numerical_training_writes_its_result(tmp_path, capsys):
    status = cli.main(["bench", "numerical-training", "--iters", "2", "--out", str(tmp_path)])
    assert status == 0
    result = json.loads((tmp_path / "bench_numerical_training.json").read_text())
    (row,) = result["rows"]
    assert row["seconds"] > 0 and 0 <= row["test_acc"] <= 1
    assert len(result["history"]["train_loss"]) == 2
    assert result["machine"]["cores"] >= 1
    assert "numerical-gradient training" in capsys.readouterr().out


@pytest.mark.slow  # a whole process or a long run: seconds
def test_training_benchmark_interleaves_rounds_of_runs_that_agree(mnist):
    from compare.ch4 import benchmark

    (x_train, t_train), (x_test, t_test) = mnist
    data = ((x_train[:600], t_train[:600]), (x_test[:200], t_test[:200]))
    result = benchmark.bench_training(data=data, iters=12, rounds=3)
    rows = result["rows"]
    assert [row["what"] for row in rows][:3] == [
        "book loop (float32 x, float64 W, one-hot)", "numpy_impl float64", "numpy_impl float32"]
    for row in rows:
        assert len(row["rounds"]) == 3 and min(row["rounds"]) <= row["seconds"] <= max(row["rounds"])
    assert rows[0]["fraction_of_book"] == 1
    # every run trains the same network on the same batches: the book's code,
    # both sides, both dtypes, literal and module reach the same test accuracy
    assert len({row["test_acc"] for row in rows}) == 1
