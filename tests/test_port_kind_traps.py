"""The kind traps ``activation``, ``ln_eps`` and ``transpose``: named only where the hypothesis,
rerun on the recorded layer, gives what was seen.

Two kinds of evidence. Whole checks: the book-style nets of ``examples/traps/book_layers.py``
(layer objects with ``forward``/``backward``) and the layerless ``residual_numpy.py``, against
right ports (which must pass) and ports with one planted bug each (named at the layer where
they part, with both values). And each trap alone on a hand-built ``Site`` the way a row
read off a NumPy forward's locals comes: no NumPy layer object, no NumPy input, no NumPy
kind, only the port's record, its parameters and the NumPy output, which the tests compute
with their own formulas.
"""
import math
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compare import check_port
from compare.port.capture import LayerRecord
from compare.port.layers import Site, numpy_kind, torch_kind
from compare.port.tolerance import port_tolerance
from compare.port.trace import IN_OUT, OUT_IN, CallSettings, TracedRecord, traced_capture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "traps"))
import book_layers as B  # noqa: E402
import ports as P  # noqa: E402
import residual_numpy  # noqa: E402
import residual_port  # noqa: E402

SIZES = (20, 12, 5)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.RandomState(3)
    return rng.randn(16, SIZES[0]), rng.randint(0, SIZES[2], 16)


def check(numpy_model, port, batch):
    return check_port(numpy_model, port, *batch)


def only(report, code):
    assert not report.passed
    codes = [d["code"] for d in report.diagnosis]
    assert codes == [code], report.diagnosis
    return report.diagnosis[0]


def at(report, where, torch_name):
    assert (report.first_mismatch["where"], report.first_mismatch["torch"]) == (where, torch_name)


# --- right ports pass ----------------------------------------------------------------------

@pytest.mark.parametrize("numpy_model, port", [
    (lambda: B.LayerNet(B.LeakyRelu(0.1), SIZES),
     lambda: P.FunctionalPort(lambda h: F.leaky_relu(h, 0.1), SIZES)),
    (lambda: B.LayerNet(B.LeakyRelu(0.1), SIZES), lambda: P.sequential(nn.LeakyReLU(0.1), SIZES)),
    (lambda: B.LayerNet(B.Gelu(), SIZES), lambda: P.sequential(nn.GELU(approximate="tanh"), SIZES)),
    (lambda: B.LayerNet(B.Elu(0.5), SIZES), lambda: P.FunctionalPort(lambda h: F.elu(h, 0.5), SIZES)),
    (lambda: B.LayerNet(B.Tanh(), SIZES, norm_eps=1e-5),
     lambda: P.sequential(nn.Tanh(), SIZES, norm=nn.LayerNorm(SIZES[1]))),
    (lambda: B.LayerNet(B.Tanh(), SIZES, norm_eps=1e-3),
     lambda: P.FunctionalPort(torch.tanh, SIZES,
                              norm=lambda h, g, b: F.layer_norm(h, h.shape[-1:], g, b, eps=1e-3))),
    (lambda: residual_numpy.ResidualNet(SIZES[0], 6, SIZES[2]),
     lambda: residual_port.ResidualPort(SIZES[0], 6, SIZES[2])),
], ids=["leaky-functional", "leaky-module", "gelu-tanh", "elu", "ln-module", "ln-functional",
        "residual-layerless"])
def test_right_ports_pass(batch, numpy_model, port):
    report = check(numpy_model(), port(), batch)
    assert report.passed, report.first_mismatch


# --- planted bugs, named at the layer with both values ---------------------------------------

def test_leaky_relu_default_slope_is_named_with_both_slopes(batch):
    report = check(B.LayerNet(B.LeakyRelu(0.1), SIZES), P.FunctionalPort(F.leaky_relu, SIZES), batch)
    at(report, "Activation", "F.leaky_relu#1")
    d = only(report, "activation")
    assert (d["numpy_setting"], d["torch_setting"]) == (0.1, 0.01)
    assert "negative_slope=0.01" in d["text"] and "a slope of 0.1" in d["text"]
    assert "F.leaky_relu(x, negative_slope=0.1)" in d["text"]


def test_relu_ported_onto_a_tanh_net_is_named(batch):
    report = check(B.LayerNet(B.Tanh(), SIZES), P.sequential(nn.ReLU(), SIZES), batch)
    at(report, "Activation", "1")
    d = only(report, "activation")
    assert (d["numpy_function"], d["torch_function"]) == ("tanh", "relu")
    assert "computes relu where the NumPy Activation computes tanh" in d["text"]
    assert "nn.Tanh()" in d["text"]


def test_exact_gelu_against_its_tanh_approximation(batch):
    report = check(B.LayerNet(B.Gelu(), SIZES), P.sequential(nn.GELU(), SIZES), batch)
    at(report, "Activation", "1")
    d = only(report, "activation")
    assert (d["numpy_function"], d["torch_function"]) == ("gelu_tanh", "gelu")
    assert "nn.GELU(approximate='tanh')" in d["text"]


def test_elu_alpha_is_named_with_both_values(batch):
    report = check(B.LayerNet(B.Elu(0.5), SIZES), P.sequential(nn.ELU(), SIZES), batch)
    d = only(report, "activation")
    assert (d["numpy_setting"], d["torch_setting"]) == (0.5, 1.0)
    assert "alpha=1," in d["text"] and "an alpha of 0.5" in d["text"] and "nn.ELU(alpha=0.5)" in d["text"]


def test_layer_norm_eps_is_named_with_both_values(batch):
    # eps 1e-3 against torch's 1e-5 on pre-activations of variance ~1 parts them by ~5e-4
    # relative, far above float64's round-off
    report = check(B.LayerNet(B.Tanh(), SIZES, norm_eps=1e-3),
                   P.sequential(nn.Tanh(), SIZES, norm=nn.LayerNorm(SIZES[1])), batch)
    at(report, "LayerNorm", "1")
    d = only(report, "ln_eps")
    assert (d["numpy_eps"], d["torch_eps"]) == (1e-3, 1e-5)
    assert "eps=1e-05" in d["text"] and "eps=0.001" in d["text"]
    assert "nn.LayerNorm(12, eps=0.001)" in d["text"]


def test_layer_norm_over_the_wrong_axis_names_both_axes(batch):
    # the NumPy side normalises each feature over the batch, the port each sample over
    # its features
    report = check(B.LayerNet(B.Tanh(), SIZES, norm_eps=1e-5, norm_axis=0),
                   P.FunctionalPort(torch.tanh, SIZES,
                                    norm=lambda h, g, b: F.layer_norm(h, h.shape[-1:], g, b)), batch)
    at(report, "LayerNorm", "F.layer_norm(gamma, beta)")
    d = only(report, "ln_eps")
    assert (d["numpy_axes"], d["torch_axes"]) == ([0], [1])
    assert "over the last axis (-1, the features)" in d["text"] and "over axis 0 (the batch)" in d["text"]


def test_batch_norm_module_for_a_layer_norm_names_the_axes(batch):
    report = check(B.LayerNet(B.Tanh(), SIZES, norm_eps=1e-5),
                   P.sequential(nn.Tanh(), SIZES, norm=nn.BatchNorm1d(SIZES[1])), batch)
    d = only(report, "ln_eps")
    assert (d["numpy_axes"], d["torch_axes"]) == ([1], [0])


def test_square_weight_used_transposed_in_a_layerless_functional_port(batch):
    report = check(residual_numpy.ResidualNet(SIZES[0], 6, SIZES[2]),
                   residual_port.ResidualPort(SIZES[0], 6, SIZES[2], transposed=True), batch)
    # located from inside the NumPy forward, at the array the weight makes
    at(report, "q", "x @ W_res.T + b_res")
    d = only(report, "transpose")
    assert d["parameter"] == "W_res"
    assert "x @ W_res.T + b_res uses W_res as an (out, in) matrix" in d["text"]
    assert "write x @ W_res" in d["text"]


class MixedNet(residual_numpy.ResidualNet):
    """Layer objects for the affine layers, the norm and the activation, the residual step
    written inline: the first row that parts (``Affine2``) holds no square weight."""

    def __init__(self, *sizes):
        super().__init__(*sizes)
        p = self.params
        self.layers = OrderedDict(Affine1=B.Affine(p["W_in"], p["b_in"]),
                                  LayerNorm=B.LayerNorm(p["gamma"], p["beta"]),
                                  LeakyRelu=B.LeakyRelu(0.1), Affine2=B.Affine(p["W_out"], p["b_out"]))

    def _forward(self, x):
        h = x
        for key in ("Affine1", "LayerNorm", "LeakyRelu"):
            h = self.layers[key].forward(h)
        q = h @ self.params["W_res"] + self.params["b_res"]
        return self.layers["Affine2"].forward(h + residual_numpy.leaky_relu(q, 0.1))

    def __getattribute__(self, name):  # loss and predict, no backprop: the numerical check
        if name == "gradient":
            raise AttributeError(name)
        return super().__getattribute__(name)


@pytest.mark.slow
def test_square_weight_used_transposed_between_layer_rows(batch):
    sizes = (SIZES[0], 6, SIZES[2])
    assert check(MixedNet(*sizes), residual_port.ResidualPort(*sizes), batch).passed
    report = check(MixedNet(*sizes), residual_port.ResidualPort(*sizes, transposed=True), batch)
    at(report, "Affine2", "x @ W_out + b_out")
    d = only(report, "transpose")
    assert d["parameter"] == "W_res" and "write x @ W_res" in d["text"]


class SkipForgotten(residual_port.ResidualPort):
    def forward(self, x):
        z = x @ self.W_in + self.b_in
        h = F.leaky_relu(F.layer_norm(z, z.shape[-1:], self.gamma, self.beta, eps=self.eps), self.slope)
        return F.leaky_relu(h @ self.W_res + self.b_res, self.slope) @ self.W_out + self.b_out


class SkipAdded(MixedNet):
    def _forward(self, x):
        h = x
        for key in ("Affine1", "LayerNorm", "LeakyRelu"):
            h = self.layers[key].forward(h)
        q = h @ self.params["W_res"] + self.params["b_res"]
        return self.layers["Affine2"].forward(residual_numpy.leaky_relu(q, 0.1))


@pytest.mark.slow
def test_a_skip_connection_between_layer_rows_is_named_residual(batch):
    """The skip lies between two layer objects: the layer after it takes another input."""
    sizes = (SIZES[0], 6, SIZES[2])
    report = check(MixedNet(*sizes), SkipForgotten(*sizes), batch)
    at(report, "Affine2", "x @ W_out + b_out")
    d = only(report, "residual")
    assert d["direction"] == "forgotten" and d["skip"] == "LeakyRelu"
    report = check(SkipAdded(*sizes), residual_port.ResidualPort(*sizes), batch)
    at(report, "Affine2", "x @ W_out + b_out")
    d = only(report, "residual")
    assert d["direction"] == "added" and d["skip"] == "LeakyRelu"


# --- each trap alone, on a row read off the NumPy locals --------------------------------------

def leaky(u, slope):
    return np.where(u > 0, u, slope * u)


def gelu_tanh(u):
    return 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))


def layer_norm(u, axis, eps, gamma, beta):
    mu, var = u.mean(axis=axis, keepdims=True), u.var(axis=axis, keepdims=True)
    return gamma * (u - mu) / np.sqrt(var + eps) + beta


def site(u, expected, record, module=None, params=None):
    """A row read off the NumPy forward's locals: no NumPy layer, no NumPy input or kind."""
    assert record.input is u
    tol = port_tolerance(record.output, "float64")
    return Site(LayerRecord("h (line 12)", "", None, expected), record, numpy_layer=None,
                torch_module=module, rtol=tol.rtol, atol=tol.atol, torch_params=params)


def traps(s):
    kind = numpy_kind(s.numpy_record.kind) or torch_kind(s.torch_record.kind)
    return kind.traps(s)


@pytest.fixture(scope="module")
def u():
    return np.random.RandomState(5).randn(8, 12)


def test_activation_trap_on_a_traced_call(u):
    actual = F.leaky_relu(torch.from_numpy(u)).numpy()
    record = TracedRecord("F.leaky_relu#1", "LeakyReLU", u, actual,
                          call=CallSettings("leaky_relu", (None,), {}))
    [d] = traps(site(u, leaky(u, 0.1), record))
    assert d["code"] == "activation" and (d["numpy_setting"], d["torch_setting"]) == (0.1, 0.01)
    assert "the NumPy h (line 12) a slope of 0.1" in d["text"]


def test_activation_trap_on_a_module(u):
    module = nn.GELU()
    record = LayerRecord("act", "GELU", u, module(torch.from_numpy(u)).detach().numpy())
    [d] = traps(site(u, gelu_tanh(u), record, module))
    assert (d["numpy_function"], d["torch_function"]) == ("gelu_tanh", "gelu")
    module = nn.ReLU()
    record = LayerRecord("act", "ReLU", u, module(torch.from_numpy(u)).numpy())
    [d] = traps(site(u, np.tanh(u), record, module))
    assert (d["numpy_function"], d["torch_function"]) == ("tanh", "relu")


def test_activation_trap_names_nothing_it_cannot_reproduce(u):
    actual = F.leaky_relu(torch.from_numpy(u), 0.1).numpy()
    record = TracedRecord("F.leaky_relu#1", "LeakyReLU", u, actual,
                          call=CallSettings("leaky_relu", (None, 0.1), {}))
    assert traps(site(u, actual.copy(), record)) == []  # the same function: nothing to name
    assert traps(site(u, 2 * leaky(u, 0.1) + 0.01, record)) == []  # no activation gives it
    wrong = TracedRecord("F.leaky_relu#1", "LeakyReLU", u, actual,  # settings that do not
                         call=CallSettings("leaky_relu", (None,), {}))  # give the port's output
    assert traps(site(u, np.tanh(u), wrong)) == []


def test_ln_eps_trap_on_a_traced_call(u):
    rng = np.random.RandomState(6)
    gamma, beta = 1 + 0.1 * rng.randn(12), 0.1 * rng.randn(12)
    actual = F.layer_norm(torch.from_numpy(u), (12,), torch.from_numpy(gamma),
                          torch.from_numpy(beta)).numpy()
    record = TracedRecord("F.layer_norm(g, b)", "LayerNorm", u, actual, param_names=("g", "b"),
                          call=CallSettings("layer_norm", (None, (12,)), {}))
    params = {"g": gamma, "b": beta}
    [d] = traps(site(u, layer_norm(u, -1, 1e-3, gamma, beta), record, params=params))
    assert d["code"] == "ln_eps" and (d["numpy_eps"], d["torch_eps"]) == (1e-3, 1e-5)
    [d] = traps(site(u, layer_norm(u, 0, 1e-5, gamma, beta), record, params=params))
    assert (d["numpy_axes"], d["torch_axes"]) == ([0], [1])
    std = np.sqrt(u.var(axis=-1, keepdims=True))  # the eps beside the standard deviation
    outside = gamma * (u - u.mean(axis=-1, keepdims=True)) / (std + 1e-2) + beta
    [d] = traps(site(u, outside, record, params=params))
    assert d["numpy_eps"] == 1e-2 and "to the standard deviation" in d["text"]
    assert traps(site(u, actual.copy(), record, params=params)) == []
    assert traps(site(u, np.tanh(u), record, params=params)) == []


def test_transpose_trap_on_a_traced_matmul(u):
    rng = np.random.RandomState(7)
    w, b = rng.randn(12, 12), rng.randn(12)
    record = TracedRecord("x @ W_res.T + b_res", "Linear", u, u @ w.T + b,
                          param_names=("W_res", "b_res"), layouts={"W_res": OUT_IN})
    params = {"W_res": w, "b_res": b}
    [d] = traps(site(u, u @ w + b, record, params=params))
    assert d["code"] == "transpose" and d["parameter"] == "W_res"
    assert "write x @ W_res, or F.linear(x, W_res.T, bias)" in d["text"]
    assert traps(site(u, u @ w + 2 * b, record, params=params)) == []
    record = TracedRecord("F.linear(W_res, b_res)", "Linear", u, u @ w + b,
                          param_names=("W_res", "b_res"), layouts={"W_res": IN_OUT})
    [d] = traps(site(u, u @ w.T + b, record, params=params))
    assert "write x @ W_res.T, or F.linear(x, W_res, bias)" in d["text"]


def test_trace_keeps_each_calls_settings():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.g, self.b = nn.Parameter(torch.ones(4)), nn.Parameter(torch.zeros(4))

        def forward(self, x):
            x = F.layer_norm(x, (4,), self.g, self.b, eps=1e-3)
            x = F.leaky_relu(x, 0.2)
            x = F.elu(x, alpha=0.5)
            return F.gelu(x, approximate="tanh") + F.silu(x)

    model = Net()
    with torch.no_grad(), traced_capture(model) as capture:
        model(torch.randn(3, 4))
    records = {r.kind: r for r in capture.records}
    assert list(records) == ["LayerNorm", "LeakyReLU", "ELU", "GELU", "SiLU"]
    assert records["LayerNorm"].param_names == ("g", "b")
    assert (records["LayerNorm"].call.eps, records["LayerNorm"].call.normalized_shape) == (1e-3, (4,))
    assert records["LeakyReLU"].call.negative_slope == 0.2
    assert records["ELU"].call.alpha == 0.5
    assert records["GELU"].call.approximate == "tanh"
