"""Torch ports written without layer modules, traced call by call (``compare.port.trace``).

The NumPy sides are the book's chapter-5 layer net (``examples/layer_net``), a
784-50-50-10 net written here from its layers (a square hidden weight, so that
a weight used without its transpose still runs), and the chapter-7 conv net.
The ports are written here in the ways PyTorch users write them without
modules: ``F.linear`` with ``(out, in)`` weights, ``x @ W + b`` with ``(in,
out)`` weights and ``torch.clamp(min=0)``, and the course ports' raw use of an
``nn.Linear`` weight (``tests/courses/torch_ports.py``).
"""
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import port_zoo as zoo
import zoo_layers
from compare import check_port
from compare.port import torch_side
from compare.port.capture import module_capture
from compare.port.draws import DrawTape
from compare.port.trace import IN_OUT, OUT_IN, traced_capture
from courses.torch_ports import FCFunctionalLinear, FCRawWeight

book = zoo.numpy_net  # examples/layer_net/numpy_net.py: Affine, Relu, SoftmaxWithLoss


class ThreeLayerNet:
    """The book's layer net with two hidden layers: Affine, Relu, Affine, Relu, Affine."""

    def __init__(self, sizes=(784, 50, 50, 10), weight_init_std=0.05, seed=1):
        rng = np.random.RandomState(seed)
        self.params, self.layers = {}, OrderedDict()
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            self.params[f"W{i}"] = weight_init_std * rng.randn(n_in, n_out)
            self.params[f"b{i}"] = 0.1 * rng.randn(n_out)  # not zero: the bias shows in every row
            self.layers[f"Affine{i}"] = book.Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            if i < len(sizes) - 1:
                self.layers[f"Relu{i}"] = book.Relu()
        self.last_layer = book.SoftmaxWithLoss()

    def predict(self, x):
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def loss(self, x, t):
        return self.last_layer.forward(self.predict(x), t)

    def gradient(self, x, t):
        self.loss(x, t)
        dout = self.last_layer.backward(1)
        for layer in reversed(list(self.layers.values())):
            dout = layer.backward(dout)
        grads = {}
        for i in range(1, len(self.params) // 2 + 1):
            grads[f"W{i}"], grads[f"b{i}"] = self.layers[f"Affine{i}"].dW, self.layers[f"Affine{i}"].db
        return grads


class LinearPort(nn.Module):
    """``F.linear`` with torch's ``(out, in)`` weights and ``F.relu``, for any depth."""

    def __init__(self, sizes=(784, 50, 10)):
        super().__init__()
        self.depth = len(sizes) - 1
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            self.register_parameter(f"w{i}", nn.Parameter(torch.randn(n_out, n_in)))
            self.register_parameter(f"b{i}", nn.Parameter(torch.zeros(n_out)))

    def forward(self, x):
        for i in range(1, self.depth + 1):
            x = F.linear(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"))
            if i < self.depth:
                x = F.relu(x)
        return x


class MatmulPort(nn.Module):
    """The book's own layout, ``W`` ``(in, out)``: ``x @ W1 + b1``, ``torch.clamp(min=0)``."""

    def __init__(self, sizes=(784, 50, 10)):
        super().__init__()
        self.W1 = nn.Parameter(torch.randn(sizes[0], sizes[1]))
        self.b1 = nn.Parameter(torch.zeros(sizes[1]))
        self.W2 = nn.Parameter(torch.randn(sizes[1], sizes[2]))
        self.b2 = nn.Parameter(torch.zeros(sizes[2]))

    def forward(self, x):
        return torch.clamp(x @ self.W1 + self.b1, min=0) @ self.W2 + self.b2


@pytest.fixture(scope="module")
def noise():
    rng = np.random.RandomState(0)
    return rng.rand(16, 784), np.eye(10)[rng.randint(0, 10, 16)]


def rows(report, phase):
    return [(c.where, c.torch) for c in report.checks if c.phase == phase]


# --- functional ports get their layers ------------------------------------------------------

def test_an_f_linear_port_gets_forward_and_backward_rows_and_passes(noise):
    report = check_port(zoo.layer_net(), LinearPort(), *noise)
    assert report.passed, report.to_text()
    assert [p.transposed for p in report.pairing] == [True, False, True, False]
    assert rows(report, "forward")[:3] == [("Affine1", "F.linear(w1, b1)"), ("Relu1", "F.relu#1"),
                                           ("Affine2", "F.linear(w2, b2)")]
    backward = rows(report, "backward")
    assert backward[0] == ("Affine2 (output)", "F.linear(w2, b2) (output)")
    assert ("Relu1 (output)", "F.relu#1 (output)") in backward
    assert ("Affine1 (output)", "F.linear(w1, b1) (output)") in backward
    assert report.unpaired == {"numpy": [], "torch": []}


def test_x_at_w_plus_b_is_one_affine_record_and_clamp_a_relu(noise):
    report = check_port(zoo.layer_net(), MatmulPort(), *noise)
    assert report.passed, report.to_text()
    assert [p.transposed for p in report.pairing] == [False] * 4  # (in, out), as the book's
    assert rows(report, "forward")[:3] == [("Affine1", "x @ W1 + b1"),
                                           ("Relu1", "torch.clamp(min=0)#1"),
                                           ("Affine2", "x @ W2 + b2")]
    assert len([r for r in rows(report, "backward") if r[0].endswith("(output)")]) == 3


def test_a_square_f_linear_weight_is_paired_as_f_linear_uses_it(noise):
    # by order and shape a (50, 50) weight could be either; F.linear says (out, in)
    report = check_port(ThreeLayerNet(), LinearPort((784, 50, 50, 10)), *noise)
    assert report.passed, report.to_text()
    assert [p.transposed for p in report.pairing if p.numpy.startswith("W")] == [True] * 3


def test_the_functional_conv_net_gets_its_layers(noise):
    x = noise[0][:4].reshape(4, 1, 28, 28)
    report = check_port(zoo_layers.ch7_numpy.make_small_net(),
                        zoo_layers.ch7_torch.make_small_functional_net(), x, noise[1][:4])
    assert report.passed, report.to_text()
    assert rows(report, "forward")[:6] == [
        ("Conv1", "F.conv2d(W1, b1)"), ("Relu1", "F.relu#1"), ("Pool1", "F.max_pool2d#1"),
        ("Affine1", "F.linear(W2, b2)"), ("Relu2", "F.relu#2"), ("Affine2", "F.linear(W3, b3)")]
    assert ("Conv1 (output)", "F.conv2d(W1, b1) (output)") in rows(report, "backward")


def test_f_relu_between_modules_pairs_with_relu(noise):
    report = check_port(ThreeLayerNet(), FCFunctionalLinear(), *noise)
    assert report.passed, report.to_text()
    assert rows(report, "forward")[:5] == [
        ("Affine1", "fc1"), ("Relu1", "F.relu#1"), ("Affine2", "F.linear(fc2.weight, fc2.bias)"),
        ("Relu2", "F.relu#2"), ("Affine3", "fc3")]


# --- the raw nn.Linear weight ---------------------------------------------------------------

def test_an_nn_linear_weight_used_raw_is_located_at_its_own_layer_and_named(noise):
    report = check_port(ThreeLayerNet(), FCRawWeight(), *noise)
    assert not report.passed
    fm = report.first_mismatch
    assert (fm["phase"], fm["where"], fm["torch"]) == ("forward", "Affine2", "x @ fc2.weight + fc2.bias")
    assert "receives the same input" in fm["detail"]
    transpose = [d for d in report.diagnosis if d["code"] == "transpose"]
    assert transpose and transpose[0]["parameter"] == "W2"
    assert "uses fc2.weight as an (in, out) matrix, but it holds W2 transposed" in transpose[0]["text"]
    assert "x @ fc2.weight.T" in transpose[0]["text"]


def test_the_raw_weight_is_the_whole_bug(noise):
    """Independent truth: the port's layer, computed by hand with the NumPy values, is
    ``h @ W2.T + b2``; and with fc2 holding W2 itself (not W2.T) the port is right."""
    net = ThreeLayerNet()
    port = FCRawWeight().double()
    with torch.no_grad():
        for i, fc in enumerate((port.fc1, port.fc2, port.fc3), start=1):
            fc.weight.copy_(torch.from_numpy(net.params[f"W{i}"].T))
            fc.bias.copy_(torch.from_numpy(net.params[f"b{i}"]))
    x = torch.from_numpy(noise[0])
    with traced_capture(port) as capture:
        port(x)
    record = next(r for r in capture.records if r.key == "x @ fc2.weight + fc2.bias")
    h = np.maximum(noise[0] @ net.params["W1"] + net.params["b1"], 0)
    np.testing.assert_allclose(record.output, h @ net.params["W2"].T + net.params["b2"], rtol=1e-12)
    assert record.layouts == {"fc2.weight": IN_OUT} and record.kind == "Linear"


# --- no double records ----------------------------------------------------------------------

@pytest.mark.parametrize("make_numpy, make_port, shape", [
    (zoo.layer_net, zoo.sequential, (16, 784)),
    (zoo_layers.ch7_numpy.make_small_net, zoo_layers.ch7_torch.make_small_net, (4, 1, 28, 28)),
], ids=["Sequential", "conv modules"])
def test_a_module_port_gets_the_rows_it_got_from_hooks_alone(make_numpy, make_port, shape, noise,
                                                             monkeypatch):
    x = noise[0][:shape[0]].reshape(shape)
    t = noise[1][:shape[0]]
    traced = check_port(make_numpy(), make_port(), x, t)
    monkeypatch.setattr(torch_side, "traced_capture", module_capture)
    hooked = check_port(make_numpy(), make_port(), x, t)

    def table(report):
        return [(c.phase, c.where, c.torch, c.passed, c.max_abs) for c in report.checks]

    assert table(traced) == table(hooked)
    assert traced.unpaired == hooked.unpaired


def test_calls_inside_modules_and_in_the_loss_are_not_recorded():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    x = torch.rand(4, 6, dtype=torch.float64, requires_grad=True)
    with traced_capture(model) as capture:
        F.cross_entropy(model(x), torch.tensor([0, 1, 2, 0]))  # log_softmax, outside forward
    assert [r.key for r in capture.records] == ["0", "1", "2"]


# --- every kind, and the gradients into the outputs -----------------------------------------

class EveryKind(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_w = nn.Parameter(torch.randn(3, 2, 3, 3))
        self.gamma = nn.Parameter(torch.rand(3) + 0.5)
        self.beta = nn.Parameter(torch.randn(3))
        self.W = nn.Parameter(torch.randn(12, 12))
        self.b = nn.Parameter(torch.randn(12, 1))
        self.w = nn.Parameter(torch.randn(4, 12))

    def forward(self, x):
        x = F.conv2d(x, self.conv_w, padding=1)
        x = F.batch_norm(x, None, None, self.gamma, self.beta, training=True)
        x = x.relu()
        x = F.max_pool2d(x, 2)
        x = F.avg_pool2d(x, 2).flatten(1)
        x = torch.tanh(x @ self.W.T + self.b.T)
        x = torch.sigmoid(F.linear(x, self.w))
        x = F.dropout(x, 0.0, training=True)
        return F.log_softmax(torch.softmax(x, dim=1), dim=1)


def test_every_kind_is_recorded_with_its_output_and_gradient():
    torch.manual_seed(0)
    model = EveryKind().double()
    x = torch.randn(5, 2, 8, 8, dtype=torch.float64)
    with traced_capture(model) as capture:
        out = model(x)
        loss = (out * torch.arange(4.0, dtype=torch.float64)).sum()
        loss.backward()
    assert [(r.kind, r.key) for r in capture.records] == [
        ("Conv2d", "F.conv2d(conv_w)"), ("BatchNorm2d", "F.batch_norm(gamma, beta)"),
        ("ReLU", "x.relu()#1"), ("MaxPool2d", "F.max_pool2d#1"), ("AvgPool2d", "F.avg_pool2d#1"),
        ("Linear", "x @ W.T + b.T"), ("Tanh", "torch.tanh#1"), ("Linear", "F.linear(w)"),
        ("Sigmoid", "torch.sigmoid#1"), ("Dropout", "F.dropout#1"), ("Softmax", "torch.softmax#1"),
        ("LogSoftmax", "F.log_softmax#1")]
    assert capture.records[5].layouts == {"W": OUT_IN} and capture.records[7].layouts == {"w": OUT_IN}
    assert capture.records[5].param_names == ("W", "b")
    # each record against the same computation redone here, and its gradient against autograd
    with torch.no_grad():
        h = F.conv2d(x, model.conv_w, padding=1)
    h = h.detach().requires_grad_(True)
    rest = F.batch_norm(h, None, None, model.gamma, model.beta, training=True).relu()
    rest = F.avg_pool2d(F.max_pool2d(rest, 2), 2).flatten(1)
    z = (rest @ model.W.T + model.b.T)
    z.retain_grad()
    y = F.log_softmax(torch.softmax(torch.sigmoid(F.linear(torch.tanh(z), model.w)), dim=1), dim=1)
    (y * torch.arange(4.0, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(capture.records[0].output, h.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(capture.records[0].grad_output, h.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(capture.records[5].output, z.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(capture.records[5].grad_output, z.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(capture.records[-1].output, y.detach().numpy(), rtol=1e-13)


# --- with the dropout replay of compare.port.draws ------------------------------------------

class DropoutPort(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(6, 8, dtype=torch.float64))
        self.b = nn.Parameter(torch.randn(6, dtype=torch.float64))

    def forward(self, x):
        return F.dropout(F.relu(F.linear(x, self.w, self.b)), p=0.5, training=True)


@pytest.mark.parametrize("replay_outside", [True, False], ids=["replay outside", "replay inside"])
def test_with_the_dropout_replay_the_records_see_the_replayed_output(replay_outside):
    rng = np.random.RandomState(3)
    keep = rng.rand(5, 6) > 0.5
    tape = DrawTape()
    tape.masks = [keep]
    model = DropoutPort()
    x = torch.from_numpy(rng.rand(5, 8))
    if replay_outside:
        with tape.torch_pass(), traced_capture(model) as capture:
            out = model(x)
    else:  # the capture entered first, the replay around the forward alone
        with traced_capture(model) as capture:
            with tape.torch_pass():
                out = model(x)
    relu = F.relu(F.linear(x, model.w, model.b)).detach().numpy()
    assert [r.kind for r in capture.records] == ["Linear", "ReLU", "Dropout"]
    np.testing.assert_array_equal(capture.records[-1].output, relu * keep / 0.5)
    np.testing.assert_array_equal(out.detach().numpy(), relu * keep / 0.5)
    np.testing.assert_array_equal(capture.records[1].output, relu)
    assert tape.misses == 0
