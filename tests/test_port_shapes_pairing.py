"""Right code written otherwise than the book's: shapes that differ only by axes of length
1, parameter dicts in another order, adapters holding what cannot be copied; and the
convolution that forgets its padding, a wrong port failed with its cause (issue 20,
items 4 and 7).

The models (``tests/styles``) are written here in the styles that showed each: a
cs231n batch norm with ``keepdims=True``, a NumPy ConvNet with ``(1, H)`` biases, an MLP
whose dict lists the weights before the biases, an adapter keeping ``self.lib``.
"""
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from compare import check_port
from compare.port.align import align
from compare.port.capture import LayerRecord
from compare.port.copying import deep_copy
from compare.port.pairing import Pair, pair_parameters
from compare.port.recording import record, save
from compare.port.report import compare_arrays
from compare.port.targets import PortSetupError
from compare.port.tolerance import EXACT
from compare.port.unit_axes import as_shape, same_values

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from styles import conv_rows, cs231n_keepdims, grouped_params, module_adapter  # noqa: E402


def failing(report):
    return [c for c in report.checks if not c.passed]


# --- arrays that differ only by axes of length 1 ---------------------------------------------

@pytest.mark.parametrize("a, b, same", [
    ((40,), (1, 40), True), ((7, 1), (7,), True), ((1, 3, 1, 1), (3,), True),
    ((5, 1), (1, 5), True), ((3, 4), (4, 3), False), ((6,), (2, 3), False),
    ((2, 3), (2, 3, 1), True), ((1,), (), True), ((4,), (5,), False)])
def test_only_axes_of_length_one_are_dropped(a, b, same):
    assert same_values(a, b) is same and same_values(b, a) is same


def test_a_transpose_is_never_reshaped_into_agreement():
    a = np.arange(12.0).reshape(3, 4)
    assert as_shape(a.T, a.shape).shape == (4, 3)
    row = compare_arrays("forward", "x", "x", a, a.T.copy(), EXACT)
    assert not row.passed and "shape" in row.problem
    square = np.arange(9.0).reshape(3, 3)
    assert not compare_arrays("forward", "x", "x", square, square.T.copy(), EXACT).passed


def test_a_column_against_a_vector_is_compared_element_by_element():
    out = np.linspace(-1, 1, 7)
    assert compare_arrays("forward", "out", "out", out[:, None], out, EXACT).passed
    changed = out.copy()
    changed[3] += 1e-3
    row = compare_arrays("forward", "out", "out", out[:, None], changed, EXACT)
    assert not row.passed and row.worst_index == (3, 0) and row.max_abs == pytest.approx(1e-3)


def test_layer_outputs_of_one_column_and_one_vector_pair():
    out = np.linspace(0, 1, 5)
    np_records = [LayerRecord("affine1", "Affine", None, np.ones((5, 3))),
                  LayerRecord("affine2", "Affine", None, out[:, None])]
    t_records = [LayerRecord("0", "Linear", None, np.ones((5, 3))), LayerRecord("2", "Linear", None, out)]
    assert align(np_records, t_records)[0] == [(0, 0), (1, 1)]
    transposed = [LayerRecord("0", "Linear", None, np.ones((3, 5))), LayerRecord("2", "Linear", None, out)]
    assert align(np_records, transposed)[0] == [(1, 1)]


def test_biases_with_axes_of_length_one_pair_reshaped():
    pairs = pair_parameters({"W1": (3, 2, 3, 3), "b1": (1, 3, 1, 1)},
                            {"conv.weight": (3, 2, 3, 3), "conv.bias": (3,)})
    assert pairs[1] == Pair("b1", "conv.bias", False, (1, 3, 1, 1))


# --- a cs231n batch norm with keepdims: (1, D) running statistics and dgamma ------------------

@pytest.mark.parametrize("make", [cs231n_keepdims.make_net, cs231n_keepdims.make_rows_net])
def test_keepdims_batch_norm_passes_with_its_buffers_and_eval_rows(make):
    x, t = cs231n_keepdims.batch()
    net = make()
    _, grads = net.loss(x, t)  # the style itself, so the test exercises the shapes it names
    assert grads["gamma1"].shape == (1, 40) and net.params["gamma1"].shape == (40,)
    assert net.bn_params[0]["running_mean"].shape == (1, 40)
    report = check_port(make(), cs231n_keepdims.make_port(), x, t)
    assert report.passed, report.to_text()
    buffers = [c for c in report.checks if c.where.endswith(("running_mean", "running_var"))]
    evals = [c for c in report.checks if c.where.endswith("[eval]")]
    assert len(buffers) == 2 and len(evals) >= 4
    assert any(c.where == "gamma1" and c.phase == "backward" for c in report.checks)
    assert [k["code"] for k in report.known] == ["bn_unbiased_var"]


def test_keepdims_batch_norm_with_torch_momentum_fails_at_the_running_mean():
    x, t = cs231n_keepdims.batch()
    report = check_port(cs231n_keepdims.make_rows_net(), cs231n_keepdims.make_momentum_bug_port(), x, t)
    assert not report.passed
    fm = report.first_mismatch
    assert fm["where"] == "batchnorm1.running_mean" and np.isfinite(fm["max_abs"])
    assert [d["code"] for d in report.diagnosis] == ["bn_momentum"]


def test_keepdims_batch_norm_with_the_wrong_eps_fails_in_the_forward():
    x, t = cs231n_keepdims.batch()
    report = check_port(cs231n_keepdims.make_net(), cs231n_keepdims.make_port(eps=1e-3), x, t)
    assert not report.passed
    assert report.first_mismatch["phase"] == "forward" and report.first_mismatch["where"] == "batchnorm1"


# --- a NumPy ConvNet with (1, H) biases and (H,) gradients -------------------------------------

def test_row_biases_with_vector_gradients_pass():
    x, t = conv_rows.batch()
    net = conv_rows.make_net()
    grads = net.gradient(x, t)
    assert net.params["b2"].shape == (1, conv_rows.HIDDEN) and grads["b2"].shape == (conv_rows.HIDDEN,)
    report = check_port(net, conv_rows.make_port(), x, t)
    assert report.passed, report.to_text()
    judged = {c.where for c in report.checks if c.phase == "backward"}
    assert {"b1", "b2", "b3"} <= judged
    assert net.params["b2"].shape == (1, conv_rows.HIDDEN)  # the user's model untouched


def test_golden_files_hold_row_shapes(tmp_path):
    x, t = cs231n_keepdims.batch()
    path = save(record(cs231n_keepdims.make_rows_net(), x, t, options={"loss": "cross_entropy"}),
                tmp_path / "bn.npz")
    report = check_port(str(path), cs231n_keepdims.make_port())
    assert report.passed, report.to_text()
    # a file whose gradients were written (1, D) for parameters (D,) reads the same
    arrays = dict(np.load(path))
    for name in ("grad/gamma1", "grad/beta1"):
        arrays[name] = arrays[name].reshape(1, -1)
    np.savez(tmp_path / "rows.npz", **arrays)
    assert check_port(str(tmp_path / "rows.npz"), cs231n_keepdims.make_port()).passed
    bad = check_port(str(tmp_path / "rows.npz"), cs231n_keepdims.make_port(eps=1e-3))
    assert not bad.passed


@pytest.mark.slow
def test_record_and_check_a_row_bias_convnet_from_the_command_line(tmp_path):
    x, t = conv_rows.batch()
    np.savez(tmp_path / "data.npz", x=x, t=t)
    env_cmd = [sys.executable, "-m", "compare"]
    net = str(ROOT / "tests/styles/conv_rows.py") + ":make_net"
    done = subprocess.run([*env_cmd, "record", net, "--data", str(tmp_path / "data.npz"),
                           "--batch", str(len(x)), "--out", str(tmp_path / "g.npz")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    port = str(ROOT / "tests/styles/conv_rows.py") + ":make_port"
    done = subprocess.run([*env_cmd, "port", str(tmp_path / "g.npz"), port, "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


# --- parameters paired by structure --------------------------------------------------------------

def test_weights_then_biases_pair_by_their_unique_shapes():
    x, t = grouped_params.batch()
    net = grouped_params.make_net()
    assert list(net.params) == ["W1", "W2", "W3", "b1", "b2", "b3"]
    report = check_port(net, grouped_params.make_port(), x, t)
    assert report.passed, report.to_text()
    assert {(p.numpy, p.torch) for p in report.pairing} == {
        ("W1", "0.weight"), ("W2", "2.weight"), ("W3", "4.weight"),
        ("b1", "0.bias"), ("b2", "2.bias"), ("b3", "4.bias")}


def test_equal_shapes_pair_in_the_order_the_forward_pass_reads_them():
    x, t = grouped_params.batch()
    report = check_port(grouped_params.make_equal_hidden_net(), grouped_params.make_equal_hidden_port(), x, t)
    assert report.passed, report.to_text()
    twin = {p.numpy: p.torch for p in report.pairing}
    assert twin["b1"] == "0.bias" and twin["b2"] == "2.bias" and twin["W2"] == "2.weight"


def test_equal_shapes_without_a_known_order_are_refused_not_guessed():
    np_shapes = {"W1": (10, 8), "W2": (8, 8), "W3": (8, 4), "b1": (8,), "b2": (8,), "b3": (4,)}
    t_shapes = {"0.weight": (8, 10), "0.bias": (8,), "2.weight": (8, 8), "2.bias": (8,),
                "4.weight": (4, 8), "4.bias": (4,)}
    with pytest.raises(PortSetupError, match=r"ambiguous.*NumPy b1, b2 against torch 0.bias, 2.bias"
                                             r".*--param-map"):
        pair_parameters(np_shapes, t_shapes, linear_weights={"0.weight", "2.weight", "4.weight"})
    # a dict's order in which the shapes happen to pair is no evidence either
    in_order = {k: np_shapes[k] for k in ("W1", "b2", "W2", "b1", "W3", "b3")}
    with pytest.raises(PortSetupError, match=r"ambiguous.*NumPy b2, b1"):
        pair_parameters(in_order, t_shapes, linear_weights={"0.weight", "2.weight", "4.weight"},
                        ordered=False)
    pairs = pair_parameters({k: np_shapes[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")}, t_shapes,
                            linear_weights={"0.weight", "2.weight", "4.weight"}, ordered=True)
    assert [(p.numpy, p.torch) for p in pairs][:2] == [("W1", "0.weight"), ("b1", "0.bias")]


def test_a_wrong_port_paired_by_structure_fails_in_the_forward():
    x, t = grouped_params.batch()
    report = check_port(grouped_params.make_net(), grouped_params.make_relu_bug_port(), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "forward"


# --- what a deep copy need not copy --------------------------------------------------------------

def test_an_adapter_holding_a_module_a_lock_and_a_file_is_checked():
    x, t = grouped_params.batch()
    adapter = module_adapter.make_adapter()
    before = {k: v.copy() for k, v in adapter.params.items()}
    try:
        report = check_port(adapter, grouped_params.make_port(), x, t)
        assert report.passed, report.to_text()
        assert not check_port(adapter, grouped_params.make_relu_bug_port(), x, t).passed
        assert all(np.array_equal(before[k], adapter.params[k]) for k in before)
        assert adapter.lib is np and not adapter.log.closed
    finally:
        adapter.log.close()


def test_the_copy_shares_what_it_cannot_copy_and_copies_the_arrays():
    adapter = module_adapter.make_adapter()
    try:
        copied = deep_copy(adapter)
        assert copied.lib is np and copied.lock is adapter.lock and copied.log is adapter.log
        assert copied.params is copied.net.params and copied.params is not adapter.params
        assert copied.params["W1"] is not adapter.params["W1"]
        copied.params["W1"][...] = 0
        assert np.any(adapter.params["W1"] != 0)
        assert isinstance(copied.lock, type(threading.Lock()))
    finally:
        adapter.log.close()


# --- a convolution that forgets padding=1 ---------------------------------------------------------

def test_a_missing_padding_fails_at_the_parameters_and_is_named():
    x, t = conv_rows.batch()
    report = check_port(conv_rows.make_net(), conv_rows.make_no_padding_port(), x, t)
    assert not report.passed
    fm = report.first_mismatch
    assert fm["phase"] == "parameters" and fm["where"] == "W1" and fm["torch"] == "conv1.weight"
    assert "conv1 has padding (1, 1), conv1 (0, 0)" in fm["detail"]
    assert "the port computes another convolution" in failing(report)[0].problem
    assert [d["code"] for d in report.diagnosis] == ["padding"]
    assert report.diagnosis[0]["numpy_padding"] == (1, 1) and report.diagnosis[0]["torch_padding"] == (0, 0)


def test_a_functional_convolution_without_its_padding_fails_and_is_named():
    x, t = conv_rows.batch()
    assert check_port(conv_rows.make_net(), conv_rows.make_functional_port(), x, t).passed
    report = check_port(conv_rows.make_net(), conv_rows.make_functional_no_padding_port(), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "parameters"
    assert "W2 has shape (27, 8)" in report.first_mismatch["detail"]
    assert [d["code"] for d in report.diagnosis] == ["padding"]
    assert "F.conv2d(x, ..., padding=1)" in report.diagnosis[0]["text"]


def test_a_missing_padding_whose_next_layer_cannot_run_fails_in_the_forward():
    x, t = conv_rows.batch()
    report = check_port(conv_rows.make_net(), conv_rows.make_fixed_width_no_padding_port(), x, t)
    assert not report.passed
    assert report.first_mismatch["phase"] == "forward" and report.first_mismatch["where"] == "conv1"
    assert [d["code"] for d in report.diagnosis] == ["padding"]


def test_a_missing_padding_that_changes_no_shape_is_named_where_the_values_part():
    x, t = conv_rows.batch()
    assert check_port(conv_rows.make_averaged_net(), conv_rows.make_averaged_port(), x, t).passed
    report = check_port(conv_rows.make_averaged_net(), conv_rows.make_averaged_no_padding_port(), x, t)
    assert not report.passed and report.first_mismatch["phase"] == "forward"
    assert "padding" in [d["code"] for d in report.diagnosis]


def test_padding_is_not_named_where_the_port_differs_otherwise_too():
    import torch
    x, t = conv_rows.batch()
    port = conv_rows.make_averaged_no_padding_port()
    port.conv1 = torch.nn.Conv2d(conv_rows.C, conv_rows.FILTERS, conv_rows.K, dilation=2).double()
    report = check_port(conv_rows.make_averaged_net(), port, x, t)
    assert not report.passed
    assert "padding" not in [d["code"] for d in report.diagnosis]


@pytest.mark.slow
def test_a_missing_padding_exits_1_from_the_command_line(tmp_path):
    x, t = conv_rows.batch()
    np.savez(tmp_path / "data.npz", x=x, t=t)
    styles = str(ROOT / "tests/styles/conv_rows.py")
    for port in ("make_no_padding_port", "make_fixed_width_no_padding_port"):
        done = subprocess.run([sys.executable, "-m", "compare", "port", f"{styles}:make_net",
                               f"{styles}:{port}", "--data", str(tmp_path / "data.npz"),
                               "--batch", str(len(x)), "--no-progress", "--json", str(tmp_path / "o.json")],
                              capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 1, done.stdout + done.stderr
        out = json.loads((tmp_path / "o.json").read_text())
        assert out["first_mismatch"]["phase"] in ("parameters", "forward")
        assert [d["code"] for d in out["diagnosis"]] == ["padding"]


class _PlainMLP:
    """No layer objects: a forward of locals, as many learners write it."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.params = {"W1": rng.normal(size=(4, 5)), "b1": np.zeros(5),
                       "W2": rng.normal(size=(5, 3)), "b2": np.zeros(3)}

    def predict(self, x):
        h = np.tanh(x @ self.params["W1"] + self.params["b1"])
        return h @ self.params["W2"] + self.params["b2"]

    def loss(self, x, t):
        z = self.predict(x)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(t)), t].mean())


def _port_that_cannot_multiply():
    import torch
    from torch import nn

    class Port(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(4, 5), nn.Linear(5, 3)

        def forward(self, x):  # a reshape the NumPy model never makes
            return self.fc2(torch.tanh(self.fc1(x.reshape(-1, 5))))
    return Port()


def test_a_port_whose_own_arithmetic_fails_on_the_batch_is_a_failure_not_a_refusal():
    x = np.random.default_rng(1).normal(size=(8, 4))
    t = np.arange(8) % 3
    report = check_port(_PlainMLP(), _port_that_cannot_multiply(), x, t)
    assert not report.passed
    assert report.first_mismatch["phase"] == "forward"
    assert "raised RuntimeError" in report.first_mismatch["detail"]
