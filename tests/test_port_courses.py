"""NumPy code not written like the book's: cs231n's shapes, features-first layouts, and the
adapter door (issue 17, items 1 to 3).

Each shape: right ports pass (modules and functional), one planted bug per shape is
located and named (``courses.torch_ports.PLANTED_BUGS``). Batches are small and random so
each check takes a second or two; the labels are independent of either side.
"""
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

from compare import check_port, cli
from compare.port.layer_functions import function_capture, layer_functions
from compare.port.pairing import Pair, pair_parameters
from compare.port.reference import NumpySide
from compare.port.reference.shapes import detect_layout, is_cs231n, parse_kwargs
from compare.port.targets import PortSetupError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from courses import cs231n_fc_net, cs231n_layers, cs231n_two_layer, dlai_deep_net  # noqa: E402
from courses import torch_ports as tp  # noqa: E402


def batch(n=16, d=784, classes=10, seed=0, one_hot=True):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, d)
    labels = rng.randint(0, classes, n)
    return x, (np.eye(classes)[labels] if one_hot else labels)


def binary_batch(n=16, d=784, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.rand(n, d)
    return x, (x[:, : d // 2].sum(1) > x[:, d // 2:].sum(1)).astype(float)[:, None]


def planted(torch_name):
    return next(b for b in tp.PLANTED_BUGS if b["torch"].endswith(":" + torch_name))


# --- recognition ----------------------------------------------------------------------------

def test_shapes_recognised_from_the_signature_and_the_parameters():
    assert is_cs231n(cs231n_two_layer.make_net()) and is_cs231n(cs231n_fc_net.make_net())
    assert not is_cs231n(dlai_deep_net.make_net())
    assert detect_layout(dlai_deep_net.make_net().params) == "features-first"
    assert detect_layout(cs231n_two_layer.make_net().params) == "batch-first"
    # NNFS's biases are rows (1, n): batch first, though 2-D
    assert detect_layout({"W1": np.zeros((784, 64)), "b1": np.zeros((1, 64))}) == "batch-first"


# --- cs231n assignment 1 ----------------------------------------------------------------------

@pytest.mark.parametrize("port", [tp.A1Port, tp.a1_sequential, tp.A1FunctionalLinear, tp.A1Matmul])
@pytest.mark.parametrize("one_hot", [True, False])
def test_a1_right_ports_pass_whatever_the_labels(port, one_hot):
    x, t = batch(one_hot=one_hot)
    report = check_port(cs231n_two_layer.make_net(), port(), x, t)
    assert report.passed, report.to_text()
    assert any(c.phase == "backward" for c in report.checks)  # (loss, grads) read as backprop


def test_a1_predict_labels_are_never_compared_as_scores():
    net = cs231n_two_layer.make_net()
    x, t = batch()
    report = check_port(net, tp.A1Port(), x, t)
    scores = [c for c in report.checks if c.phase == "forward" and c.torch == "forward"]
    assert scores and scores[0].shape == (16, 10)  # the scores of loss(X), not predict's labels


def test_a1_reg_through_numpy_kwargs_and_the_half_reg_bug():
    x, t = batch()
    right = check_port(cs231n_two_layer.make_net(), tp.reg_port(), x, t, loss="model",
                       numpy_kwargs="reg=0.05")
    assert right.passed, right.to_text()
    bug = planted("half_reg_port")
    report = check_port(cs231n_two_layer.make_net(), tp.half_reg_port(), x, t, loss="model",
                        numpy_kwargs={"reg": tp.REG})
    assert not report.passed and report.first_mismatch["phase"] == bug["phase"]
    found = next(d for d in report.diagnosis if d["code"] == bug["code"])
    # reg * sum W**2 against 0.5 * reg * sum W**2: lambda/2 * sum W**2 missing, lambda = reg
    assert found["lambda"] == pytest.approx(tp.REG, rel=1e-6)
    assert "cs231n" in found["text"] and "reg=0.05" in found["text"]


def test_numpy_kwargs_parsed_as_literals_and_unknown_ones_refused(capsys):
    assert parse_kwargs("reg=0.05, n=3,flag=True,name=abc") == {
        "reg": 0.05, "n": 3, "flag": True, "name": "abc"}
    with pytest.raises(PortSetupError, match="takes no such keyword.*loss\\(X, y=None, reg=0.0\\)"):
        NumpySide(cs231n_two_layer.make_net(), numpy_kwargs="lam=1")
    with pytest.raises(PortSetupError, match="KEY=VALUE"):
        parse_kwargs("reg")
    code = cli.main(["port", "tests/courses/cs231n_two_layer.py:make_net",
                     "tests/courses/torch_ports.py:A1Port", "--numpy-kwargs", "lam=1",
                     "--data", "random", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "loss(X, y=None, reg=0.0)" in err and "Traceback" not in err


# --- cs231n assignment 2: layer functions -------------------------------------------------------

def test_layer_functions_recorded_in_the_models_namespace_and_put_back():
    net = cs231n_fc_net.make_net()
    space = vars(sys.modules[type(net).__module__])
    before = {k: space[k] for k in layer_functions(space)}
    assert {"affine_forward", "batchnorm_forward", "relu_forward", "dropout_forward"} <= set(before)
    assert "softmax_loss" not in before and layer_functions(space)["affine_relu_forward"][2]
    x, t = batch()
    with function_capture(net, net.params) as capture:
        net.loss(x, t.argmax(1))
    assert [r.key for r in capture.records[:5]] == ["affine1", "batchnorm1", "relu1", "dropout1", "affine2"]
    assert capture.records[0].param_names == ("W1", "b1")
    assert capture.records[1].param_names == ("gamma1", "beta1")
    # the gradient into the last affine layer is softmax_loss's dx, found by its cache
    _, dx = cs231n_layers.softmax_loss(capture.records[-1].output, t.argmax(1))
    np.testing.assert_allclose(capture.records[-1].grad_output, dx, rtol=1e-12)
    assert capture.records[3].mask is not None
    assert all(space[k] is fn for k, fn in before.items())


@pytest.mark.parametrize("make, port", [
    (cs231n_fc_net.make_net, tp.FCNetPort), (cs231n_fc_net.make_net, tp.FCNetFunctional),
    (cs231n_fc_net.make_batchnorm_net, tp.fc_batchnorm_port),
    (cs231n_fc_net.make_dropout_net, tp.fc_dropout_port),
    (cs231n_fc_net.make_plain_net, tp.fc_plain_port),
    (cs231n_fc_net.make_plain_net, tp.FCFunctionalLinear)])
def test_a2_right_ports_pass_in_both_modes(make, port):
    x, t = batch()
    report = check_port(make(), port(), x, t)
    assert report.passed, report.to_text()
    rows = [c.where for c in report.checks]
    assert "affine1" in rows and "affine1 (output)" in rows  # layer by layer, both ways
    if make is not cs231n_fc_net.make_plain_net:
        assert "predict [eval]" in rows  # loss(X): test mode, against the port in eval()


def test_a2_batch_norm_buffers_compared_with_the_unbiased_variance_known():
    x, t = batch()
    report = check_port(cs231n_fc_net.make_batchnorm_net(), tp.fc_batchnorm_port(), x, t)
    buffers = [c for c in report.checks if c.where.endswith("running_var")]
    assert [c.where for c in buffers] == ["batchnorm1.running_var", "batchnorm2.running_var"]
    assert all(c.passed for c in buffers)
    assert [k["code"] for k in report.known].count("bn_unbiased_var") == 2


def test_a2_keep_probability_as_drop_probability_is_named():
    bug = planted("FCNetKeepProbAsDrop")
    x, t = batch()
    report = check_port(cs231n_fc_net.make_net(), tp.FCNetKeepProbAsDrop(), x, t)
    assert report.first_mismatch["phase"] == bug["phase"]
    assert report.first_mismatch["where"] == "dropout1"  # the first dropout layer
    found = [d for d in report.diagnosis if d["code"] == bug["code"]]
    assert found and found[0]["keep"] == found[0]["p"] == cs231n_fc_net.KEEP
    assert "nn.Dropout(p=0.25)" in found[0]["text"]


def test_a2_raw_linear_weight_located_at_its_layer():
    bug = planted("FCRawWeight")
    x, t = batch()
    report = check_port(cs231n_fc_net.make_plain_net(), tp.FCRawWeight(), x, t)
    assert report.first_mismatch["phase"] == bug["phase"] and report.first_mismatch["where"] == "affine2"
    assert any(d["code"] == bug["code"] and d.get("parameter") == bug["where"] for d in report.diagnosis)


# --- features first (deeplearning.ai) --------------------------------------------------------

@pytest.mark.parametrize("port", [tp.DlaiPort, tp.DlaiMatmul])
def test_features_first_right_ports_pass(port):
    x, t = binary_batch()
    report = check_port(dlai_deep_net.make_net(), port(), x, t, loss="binary_cross_entropy")
    assert report.passed, report.to_text()
    bias = next(p for p in report.pairing if p.numpy == "b1")
    weight = next(p for p in report.pairing if p.numpy == "W2")
    assert not weight.transposed  # W (out, in) is nn.Linear's weight as it is, square or not
    if port is tp.DlaiPort:
        assert bias.reshape == (20, 1)
    # the course's dZ are gradients of the summed cost: compared divided by m, and said so
    assert any("divided by m = 16" in n for n in report.notes)
    assert "linear2 (output)" in [c.where for c in report.checks]


def test_features_first_softmax_on_one_hot_labels():
    x, t = batch()
    report = check_port(dlai_deep_net.make_softmax_net(), tp.dlai_softmax_port(), x, t)
    assert report.passed, report.to_text()


def test_features_first_transposed_weight_located_and_named():
    bug = planted("DlaiTransposedW2")
    x, t = binary_batch()
    report = check_port(dlai_deep_net.make_net(), tp.DlaiTransposedW2(), x, t,
                        loss="binary_cross_entropy")
    assert report.first_mismatch["phase"] == bug["phase"] and report.first_mismatch["where"] == "linear2"
    found = [d for d in report.diagnosis if d["code"] == bug["code"] and d.get("parameter") == bug["where"]]
    assert found and "x @ W2.T" in found[0]["text"]


def test_the_layout_flag_decides_over_detection():
    x, t = binary_batch()
    given = check_port(dlai_deep_net.make_net(), tp.DlaiPort(), x, t, loss="binary_cross_entropy",
                       numpy_layout="features-first")
    assert given.passed
    with pytest.raises(PortSetupError):  # batch first, the course's W A cannot take x
        check_port(dlai_deep_net.make_net(), tp.DlaiPort(), x, t, loss="binary_cross_entropy",
                   numpy_layout="batch-first")
    with pytest.raises(PortSetupError, match="numpy-layout"):
        NumpySide(dlai_deep_net.make_net(), numpy_layout="columns")


def test_a_column_or_row_bias_pairs_with_a_flat_one_reshaped():
    pairs = pair_parameters({"W1": (3, 4), "b1": (3, 1)}, {"fc.weight": (3, 4), "fc.bias": (3,)})
    assert pairs == [Pair("W1", "fc.weight"), Pair("b1", "fc.bias", False, (3, 1))]
    b = np.arange(3.0).reshape(3, 1)
    assert pairs[1].to_torch(b, (3,)).shape == (3,)
    np.testing.assert_array_equal(pairs[1].to_numpy(pairs[1].to_torch(b, (3,))), b)


# --- the adapter door --------------------------------------------------------------------------

def _adapter():
    import importlib.util
    spec = importlib.util.spec_from_file_location("nnfs_adapter", ROOT / "examples/nnfs_style/adapter.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["nnfs_adapter"] = module  # inspect finds a class's source through its module
    spec.loader.exec_module(module)
    return module


def test_the_nnfs_adapter_is_short_and_checks_layer_by_layer():
    adapter = _adapter()
    lines = [l for l in inspect.getsource(adapter.NNFSNet).splitlines() if l.strip()]
    assert len(lines) <= 20
    spec = importlib_torch_net()
    x, t = batch()
    for port in (spec.make_net(), spec.FunctionalNet()):
        report = check_port(adapter.make_net(), port, x, t)
        assert report.passed, report.to_text()
        rows = [c.where for c in report.checks]
        assert {"dense1", "relu1", "dense2", "dense1 (output)"} <= set(rows)


def importlib_torch_net():
    import importlib.util
    spec = importlib.util.spec_from_file_location("nnfs_torch_net", ROOT / "examples/nnfs_style/torch_net.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_adapter_command_passes(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = cli.main(["port", "examples/nnfs_style/adapter.py:make_net",
                     "examples/nnfs_style/torch_net.py:make_net", "--data", "random", "--batch", "20",
                     "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "PASS" in out


def test_a_files_real_targets_reach_the_command_as_stored(capsys, monkeypatch, tmp_path):
    """--data FILE.npz without --labels: t handed on as stored (the default one-hot labels
    apply to MNIST and noise, not to a file's own targets)."""
    from courses import regression
    path = regression.write_npz(tmp_path / "reg.npz")
    monkeypatch.chdir(ROOT)
    code = cli.main(["port", "tests/courses/regression.py:make_net",
                     "tests/courses/torch_ports.py:RegressionPort", "--data", str(path),
                     "--loss", "mse_loss", "--no-progress"])
    assert code == 0, capsys.readouterr()
