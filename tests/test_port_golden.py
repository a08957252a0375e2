"""Golden files: the NumPy side recorded once; ports checked against the file alone, with the
same verdicts as against the live model; a file of other options or a damaged one refused."""
import json
import sys
import zipfile

import numpy as np
import pytest
import torch

import port_zoo as zoo
from compare import PortSetupError, check_port
from compare.port import recording
from compare.port.recording import record, save
from compare.port.reference.golden import FORMAT, GoldenFile
from compare.port.training import check_training

sys.path.insert(0, str(zoo.EXAMPLES))
import optimizers as opt  # noqa: E402

OPTIONS = {"data": "mnist", "batch": 100, "seed": 0, "dtype": "float64", "labels": "one-hot"}


@pytest.fixture(scope="module")
def data(mnist):
    (x_train, t_train), _ = mnist
    return x_train[:2000], np.eye(10)[t_train[:2000]]


@pytest.fixture(scope="module")
def batch(data):
    x, t = data
    return x[:100].astype(np.float64), t[:100]


@pytest.fixture(scope="module")
def layer_file(tmp_path_factory, batch):
    path = tmp_path_factory.mktemp("golden") / "layer_net.npz"
    return save(record(zoo.layer_net(), *batch, options=OPTIONS), path)


@pytest.fixture(scope="module")
def book_file(tmp_path_factory, batch):
    path = tmp_path_factory.mktemp("golden") / "book_net.npz"
    return save(record(zoo.book_net(), *batch, options=OPTIONS), path)


def test_the_file_is_plain_npz_without_pickles(layer_file):
    with np.load(layer_file, allow_pickle=False) as npz:
        assert str(npz["format"]) == FORMAT
        assert all(npz[k].dtype != object for k in npz.files)
        meta = json.loads(str(npz["meta"]))
        assert [layer["key"] for layer in meta["layers"]] == ["Affine1", "Relu1", "Affine2"]
        assert meta["gradient"] == "backprop" and meta["options"]["batch"] == 100
        assert {"x", "t", "param/W1", "grad/W1", "layer/0/output", "layer/2/grad_output",
                "predict", "loss"} <= set(npz.files)


def test_a_right_port_passes_against_the_file(layer_file):
    report = check_port(str(layer_file), zoo.sequential())
    assert report.passed, report.to_text()
    assert "golden file" in report.settings["numpy model"]


@pytest.mark.parametrize("port", [zoo.SkipsRelu, zoo.Float32Trip], ids=["skipped layer", "float32"])
def test_broken_module_ports_get_the_same_verdict_as_against_live_code(port, layer_file, batch):
    live = check_port(zoo.layer_net(), port(), *batch)
    recorded = check_port(str(layer_file), port())
    assert not recorded.passed
    assert recorded.first_mismatch == live.first_mismatch
    assert recorded.diagnosis == live.diagnosis


@pytest.mark.slow  # a few seconds: with the full suite
@pytest.mark.parametrize("port", [zoo.NoBatchDivide, zoo.FlippedBiasGradient, zoo.SoftmaxWrongAxis])
def test_broken_literal_ports_are_caught_by_the_file(port, book_file, batch):
    live = check_port(zoo.book_net(), zoo.literal(port), *batch)
    recorded = check_port(str(book_file), zoo.literal(port))
    assert recorded.first_mismatch == live.first_mismatch
    assert [d["code"] for d in recorded.diagnosis] == [d["code"] for d in live.diagnosis]


@pytest.mark.slow  # a few seconds: with the full suite
def test_a_recorded_training_replays(tmp_path, data):
    training = {"x": data[0], "t": data[1], "steps": 12, "batch_size": 100, "lr": 0.1, "seed": 0,
                "optimizer": opt.Momentum}
    path = save(record(zoo.layer_net(), *_first(data), options=OPTIONS, training=training),
                tmp_path / "train.npz")
    golden = GoldenFile(path)
    assert golden.meta["training"]["storage"] == "full"
    right = check_training(golden, zoo.sequential(), *data, steps=12, lr=0.1,
                           torch_optimizer=opt.torch_momentum)
    assert right.passed, right.to_text()
    # plain SGD's first step equals momentum's (v = -lr g); the second does not
    plain = check_training(golden, zoo.sequential(), *data, steps=12, lr=0.1)
    assert plain.first_mismatch["phase"] == "training" and plain.first_mismatch["step"] == 1


def test_a_large_training_is_kept_as_a_summary_and_still_checked(tmp_path, data, monkeypatch):
    monkeypatch.setattr(recording, "MAX_TRAINING_BYTES", 1000)
    training = {"x": data[0], "t": data[1], "steps": 6, "batch_size": 100, "lr": 0.1, "seed": 0,
                "optimizer": None}
    path = save(record(zoo.layer_net(), *_first(data), options=OPTIONS, training=training),
                tmp_path / "summary.npz")
    golden = GoldenFile(path)
    assert golden.meta["training"]["storage"] == "summary"
    assert "sampled elements" in golden.meta["training"]["storage_text"]
    assert check_training(golden, zoo.sequential(), *data, steps=6, lr=0.1).passed
    wrong = check_training(golden, zoo.sequential(), *data, steps=6, lr=0.1,
                           torch_optimizer=opt.torch_momentum)
    assert wrong.first_mismatch["step"] == 1


def _first(data):
    from numpy_impl.random_stream import BookRandomStream
    idx = BookRandomStream(0).batch_indices(data[0].shape[0], 100)
    return data[0][idx].astype(np.float64), data[1][idx]


def test_damaged_files_are_refused(tmp_path, layer_file):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(layer_file.read_bytes()[:5000])
    with pytest.raises(PortSetupError, match="not a readable golden file"):
        GoldenFile(truncated)
    with np.load(layer_file, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    save({**arrays, "format": np.array("something else/9")}, tmp_path / "tag.npz")
    with pytest.raises(PortSetupError, match="format tag"):
        GoldenFile(tmp_path / "tag.npz")
    save({k: v for k, v in arrays.items() if k != "grad/W2"}, tmp_path / "partial.npz")
    with pytest.raises(PortSetupError, match="damaged or incomplete.*grad/W2"):
        GoldenFile(tmp_path / "partial.npz")
    with zipfile.ZipFile(tmp_path / "plain.npz", "w") as zf:
        zf.writestr("hello.txt", "not numpy")
    with pytest.raises(PortSetupError):
        GoldenFile(tmp_path / "plain.npz")


def test_other_options_are_refused(layer_file):
    golden = GoldenFile(layer_file)
    assert golden.agree({"batch": None, "seed": 0})["batch"] == 100
    with pytest.raises(PortSetupError, match="recorded with --batch 100, not 50"):
        golden.agree({"batch": 50})
    with pytest.raises(PortSetupError, match="on its own batch"):
        check_port(golden, zoo.sequential(), np.zeros((100, 784)), golden.t)


def test_a_recording_of_a_loss_with_no_derivative_at_the_point_judges_those_elements_by_their_slopes(tmp_path):
    """The chapter-5 net from its loss alone, its zero hidden bias met by all-zero input rows:
    the hidden pre-activations of those rows are exactly 0, where the central difference
    of b1 is the mean of two one-sided slopes and autograd's claim (relu'(0) = 0) one of
    them. Replayed from a golden file the check passes, as the live one does; a port whose
    hidden bias enters ten times (zero, so the outputs agree) fails at b1 in both."""
    rng = np.random.RandomState(0)
    x, t = rng.rand(20, 30), np.eye(3)[rng.randint(0, 3, 20)]
    x[:6] = 0.0  # six blank rows
    numpy_net = zoo.LossOnly(zoo.layer_net(30, 8, 3))
    path = save(record(numpy_net, x, t, options={"loss": "cross_entropy"}), tmp_path / "kinks.npz")
    replayed = check_port(path, zoo.sequential(30, 8, 3))
    assert replayed.passed, replayed.to_text()
    assert any(n.startswith("b1: 8 of 8 recorded elements not differentiable") for n in replayed.notes)
    live, wrong = check_port(numpy_net, TenfoldBias(), x, t), check_port(path, TenfoldBias())
    assert not live.passed and not wrong.passed
    assert wrong.first_mismatch["where"] == live.first_mismatch["where"] == "b1"


class TenfoldBias(torch.nn.Module):
    """30-8-3 with the hidden bias entering ten times: b1 = 0, so only its gradient is off."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(30, 8), torch.nn.Linear(8, 3)

    def forward(self, x):
        h = torch.nn.functional.linear(x, self.fc1.weight, 10 * self.fc1.bias)
        return self.fc2(torch.relu(h))
