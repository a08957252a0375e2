"""``python -m compare bench`` runs a benchmark end to end and writes its JSON."""
import json

from compare import cli


def test_bench_numerical_training_writes_its_result(tmp_path, capsys):
    status = cli.main(["bench", "numerical-training", "--iters", "2", "--out", str(tmp_path)])
    assert status == 0
    result = json.loads((tmp_path / "bench_numerical_training.json").read_text())
    (row,) = result["rows"]
    assert row["seconds"] > 0 and 0 <= row["test_acc"] <= 1
    assert len(result["history"]["train_loss"]) == 2
    assert result["machine"]["cores"] >= 1
    assert "numerical-gradient training" in capsys.readouterr().out
