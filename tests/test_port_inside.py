"""A NumPy model without layers, seen from inside its forward function: the arrays its
code makes become rows, named as the code names them, with the line that made them.

The models (``tests/styles/layerless.py``) keep their arrays in locals, a dict, a list;
right ports pass with those rows, and each planted bug is located at its layer."""
import sys

import numpy as np
import pytest

from compare import check_port
from compare.port.reference.inside import existing_arrays, inside_capture
from styles import layerless as L


def forward_rows(report):
    return [(c.where, c.torch) for c in report.checks if c.phase == "forward"]


# --- the capture itself -------------------------------------------------------------------------

class Cached:
    def __init__(self):
        self.params = {"W": np.arange(6.0).reshape(2, 3)}
        self.cache = None

    def _act(self, z):
        return np.maximum(z, 0)  # returned unnamed: named where the caller binds it

    def forward(self, x):
        c, acts = {}, [x]
        c["z"] = x @ self.params["W"]
        acts.append(self._act(c["z"]))
        out = acts[-1].copy()
        out[out > 4] = 4.0  # changed in place
        self.cache = {"out": out}
        return out


def test_the_capture_names_each_array_where_it_is_held_with_its_line():
    model, x = Cached(), np.array([[1.0, -1.0], [2.0, 0.5]])
    before = sys.gettrace()
    with inside_capture(existing_arrays(model, x)) as capture:
        model.forward(x)
    assert sys.gettrace() is before  # the tracer in place before is put back
    held = [r.held for r in capture.records]
    assert held[:3] == ['c["z"]', "acts[1]", "out"]
    assert "x" not in held and "W" not in held  # what existed before the pass is no output
    z = x @ model.params["W"]
    np.testing.assert_array_equal(capture.records[0].output, z)
    np.testing.assert_array_equal(capture.records[1].output, np.maximum(z, 0))
    # the in-place change is a record of its own, on the line that made it
    changed = [r for r in capture.records if r.held == "out"]
    assert len(changed) == 2 and changed[1].output.max() == 4.0 and changed[0].output.max() > 4.0
    assert "out[out > 4] = 4.0" in changed[1].made
    assert "c[\"z\"] = x @ self.params[\"W\"]" in capture.records[0].made
    # the unnamed return is made on the return line and named by its binding
    assert "return np.maximum(z, 0)" in capture.records[1].made
    assert [r.key for r in changed] == [f"out (line {r.line})" for r in changed]


# --- right ports pass, with rows inside --------------------------------------------------------

@pytest.mark.parametrize("port", [L.ResidualPort, L.ResidualFunctional], ids=["modules", "functional"])
def test_a_right_port_of_a_residual_net_passes_with_rows_inside(port):
    report = check_port(L.ResidualNet(), port(), *L.batch())
    assert report.passed, report.to_text()
    rows = dict(forward_rows(report))
    assert "z1" in rows and "r" in rows  # the NumPy names, each paired with its layer
    assert any("followed from inside" in n for n in report.notes)


def test_a_right_port_of_a_tanh_net_passes_with_backward_rows_from_its_gradient():
    report = check_port(L.TanhNet(), L.TanhPort(), *L.batch())
    assert report.passed, report.to_text()
    assert [w for w, _ in forward_rows(report)][:4] == ["z1", "h1", "z2", "h2"]
    backward = {c.where: c.torch for c in report.checks if c.phase == "backward"}
    assert backward["dz1"] == "fc1 (output)" and backward["dh2"] == "act (output)"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_predict_path_is_followed_where_the_model_has_no_gradient(dtype):
    class NoGradient(L.TanhNet):
        gradient = None
    report = check_port(NoGradient(), L.TanhPort(), *L.batch(), dtype=dtype)
    assert report.passed, report.to_text()
    assert [w for w, _ in forward_rows(report)][:2] == ['c["z1"]', 'c["h"]']


# --- wrong ports are located at their layer ------------------------------------------------------

def test_relu_for_tanh_is_located_at_the_activation_and_named():
    report = check_port(L.TanhNet(), L.TanhPort("relu"), *L.batch())
    assert not report.passed
    assert (report.first_mismatch["where"], report.first_mismatch["torch"]) == ("h1", "act")
    assert "np.tanh(z1)" in report.first_mismatch["detail"]
    (found,) = report.diagnosis
    assert found["code"] == "activation" and "tanh" in found["text"] and "relu" in found["text"]


@pytest.mark.parametrize("port, torch_name", [(L.ResidualPort, "act"),
                                              (L.ResidualFunctional, "F.leaky_relu#1")],
                         ids=["nn.LeakyReLU()", "F.leaky_relu(h)"])
def test_a_leaky_slope_left_at_its_default_is_located_and_named_with_both_slopes(port, torch_name):
    report = check_port(L.ResidualNet(), port("slope"), *L.batch())
    assert not report.passed
    assert (report.first_mismatch["where"], report.first_mismatch["torch"]) == ("h", torch_name)
    (found,) = report.diagnosis
    assert found["code"] == "activation"
    assert "0.01" in found["text"] and "0.1" in found["text"]


def test_a_layer_norm_eps_is_located_and_named_with_both_values():
    report = check_port(L.ResidualNet(), L.ResidualPort("ln_eps"), *L.batch())
    assert not report.passed
    assert (report.first_mismatch["where"], report.first_mismatch["torch"]) == ("ln", "ln")
    (found,) = report.diagnosis
    assert found["code"] == "ln_eps" and "0.001" in found["text"] and "1e-05" in found["text"]


@pytest.mark.slow
def test_a_forgotten_skip_connection_is_named_residual():
    report = check_port(L.ResidualNet(), L.ResidualPort("skip"), *L.batch())
    assert not report.passed
    assert report.first_mismatch["torch"] == "fc2"
    found = [d for d in report.diagnosis if d["code"] == "residual"]
    assert found and found[0]["direction"] == "forgotten" and found[0]["skip"] == "h"


def test_a_skip_connection_the_numpy_side_does_not_have_is_named_residual():
    class NoSkip(L.ResidualNet):
        def _forward(self, x):
            p = self.params
            z1 = x @ p["W1"] + p["b1"]
            mu, var = z1.mean(axis=1, keepdims=True), z1.var(axis=1, keepdims=True)
            ln = p["gamma"] * (z1 - mu) / np.sqrt(var + L.EPS) + p["beta"]
            h = np.where(ln > 0, ln, L.SLOPE * ln)
            r = h @ p["W_res"] + p["b_res"]
            a = np.where(r > 0, r, L.SLOPE * r)
            return a @ p["W2"] + p["b2"]
    report = check_port(NoSkip(), L.ResidualPort(), *L.batch())
    assert not report.passed
    found = [d for d in report.diagnosis if d["code"] == "residual"]
    assert found and found[0]["direction"] == "added"


def test_a_square_weight_used_transposed_in_a_functional_port_is_located_and_named():
    report = check_port(L.ResidualNet(), L.ResidualFunctional("transpose"), *L.batch())
    assert not report.passed
    assert report.first_mismatch["where"] == "r"
    assert "W_res.T" in report.first_mismatch["torch"]
    assert [d["code"] for d in report.diagnosis] == ["transpose"]


# --- a convolution's padding, where no NumPy layer object holds one ---------------------------

@pytest.mark.parametrize("head", ["mean", "flat"])
def test_a_right_convolution_port_passes_with_rows_inside(head):
    report = check_port(L.ConvNet(head), L.ConvPort(head, padding=1), *L.image_batch())
    assert report.passed, report.to_text()


@pytest.mark.slow
@pytest.mark.parametrize("head", ["mean", "flat"], ids=["pass runs", "pass raises"])
def test_a_padding_the_port_forgets_is_named_with_both_values(head):
    # the mean over the image lets the port's pass run on; a flatten makes it raise at fc
    report = check_port(L.ConvNet(head), L.ConvPort(head, padding=0), *L.image_batch())
    assert not report.passed
    assert report.first_mismatch["where"].startswith("z") and report.first_mismatch["torch"] == "conv"
    (found,) = report.diagnosis
    assert found["code"] == "padding"
    assert found["numpy_padding"] == (1, 1) and tuple(found["torch_padding"]) == (0, 0)
    assert "padding=1" in found["text"]


def test_a_pass_too_long_to_follow_is_followed_to_a_bound_and_said():
    from compare.port.reference import inside

    def loop(x):
        total = np.zeros_like(x)
        for _ in range(inside.MAX_LINES):
            total = total + x
        return total
    x = np.ones(3)
    with inside_capture(existing_arrays(x)) as capture:
        out = loop(x)
    assert out[0] == inside.MAX_LINES  # the pass itself runs to its end
    assert capture.truncated and 0 < len(capture.records) <= inside.MAX_LINES


def test_an_array_made_in_a_call_is_named_by_its_caller_and_made_on_the_callers_line():
    def act(z):
        return np.where(z > 0, z, 0.1 * z)  # returned unnamed

    def forward(x, W):
        out = act(x @ W)  # the argument made here, the result bound here
        return out
    x, W = np.array([[1.0, -2.0]]), np.eye(2)
    with inside_capture(existing_arrays(x, W)) as capture:
        forward(x, W)
    argument, result = capture.records[:2]
    assert argument.held == "z (argument of act)" and "out = act(x @ W)" in argument.made
    assert result.held == "out" and "return np.where(z > 0, z, 0.1 * z)" in result.made


# --- a last step the port leaves out ----------------------------------------------------------

class LeakyOut(L.TanhNet):
    """A leaky ReLU after the last layer too (some from-scratch nets put one after each);
    no backprop of its own."""
    gradient = None

    def predict(self, x):
        z = L.TanhNet.predict(self, x)
        return np.maximum(z, 0.1 * z)


@pytest.mark.parametrize("shift", [0.0, -5.0], ids=["mixed signs", "all negative"])
def test_a_last_activation_the_port_leaves_out_is_named_not_taken_for_a_factor(shift):
    net = LeakyOut()
    net.params["b3"] = net.params["b3"] + shift  # all negative: the port's output is 10x
    report = check_port(net, L.TanhPort(), *L.batch(), loss="mse_loss")
    assert not report.passed
    assert [d["code"] for d in report.diagnosis] == ["activation"]
    assert "leaves out the last activation" in report.diagnosis[0]["text"]
    assert "the port's output is the NumPy z" in report.first_mismatch["detail"]


def test_weight_decay_is_fitted_on_the_weights_alone_where_biases_are_rows():
    # a (1, H) bias on both sides is added, not multiplied: no weight the penalty holds
    class Decayed(L.TanhNet):
        gradient = None
        lam = 0.1

        def __init__(self):
            super().__init__()
            for k in ("b1", "b2", "b3"):
                self.params[k] = self.params[k].reshape(1, -1) + 0.3

        def loss(self, x, t):
            penalty = 0.5 * self.lam * sum(np.sum(self.params[k] ** 2) for k in ("W1", "W2", "W3"))
            return L._cross_entropy(L.TanhNet.predict(self, x), t) + penalty

    import torch
    from torch import nn

    class Literal(nn.Module):
        def __init__(self):
            super().__init__()
            for k, v in Decayed().params.items():
                setattr(self, k, nn.Parameter(torch.zeros(v.shape, dtype=torch.float64)))

        def forward(self, x):
            h = torch.tanh(torch.tanh(x @ self.W1 + self.b1) @ self.W2 + self.b2)
            return h @ self.W3 + self.b3
    report = check_port(Decayed(), Literal(), *L.batch())
    assert not report.passed
    (found,) = report.diagnosis
    assert found["code"] == "weight_decay" and abs(found["lambda"] - 0.1) < 1e-6
