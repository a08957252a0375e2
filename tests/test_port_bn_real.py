"""Batch norm and convolution kernels as learners' own code writes them, and their right ports.

Three habits seen in real code, each with a model written here in its style:

* a cs231n solution whose ``batchnorm_forward`` keeps ``running_var`` of ``std**2``, the
  variance plus eps: two right implementations, whose running variances part by
  ``momentum x eps`` a pass (named, sized and allowed for), never ``bn_momentum``;
* a network with no layer objects the checker knows (functions reached through a closure),
  whose biases feed batch norm: their gradient is exactly 0, both sides give round-off, and
  that round-off is judged by the size of what the gradient sums, read from the port;
* a channels-last ConvNet, kernels ``(h, w, c_in, n_f)`` (Keras's layout), against
  ``nn.Conv2d``'s ``(n_f, c_in, h, w)``: paired by the permutation, which ``--param-map``
  can say too.
"""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from compare import check_port
from compare.port import check_training
from compare.port.pairing import pair_parameters, parse_param_map
from compare.port.targets import PortSetupError

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the layer functions every cs231n solution shares; this file's batch norm is its own
from styles.cs231n_keepdims import affine_backward, affine_forward, relu_backward, relu_forward  # noqa: E402

N, D, H1, H2, C = 24, 12, 9, 7, 5
EPS = 1e-5


def batch(seed=0, n=N, d=D, classes=C):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d) * 2.0 + 0.5, rng.randint(classes, size=n)


# --- cs231n style: layer functions, bn_params, std**2 kept as the running variance ----------

def batchnorm_forward(x, gamma, beta, bn_param):
    mode, eps, momentum = bn_param["mode"], bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    running_mean = bn_param.get("running_mean", np.zeros(x.shape[1]))
    running_var = bn_param.get("running_var", np.zeros(x.shape[1]))
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0) + eps
        std = np.sqrt(var)
        z = (x - mu) / std
        out = gamma * z + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        held = std ** 2 if bn_param.get("std_squared", True) else var - eps
        running_var = momentum * running_var + (1 - momentum) * held
        cache = (z, std, gamma)
    else:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        cache = None
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out, cache


def batchnorm_backward(dout, cache):
    z, std, gamma = cache
    n = dout.shape[0]
    dz = dout * gamma
    dx = (n * dz - dz.sum(axis=0) - z * (dz * z).sum(axis=0)) / (n * std)
    return dx, (dout * z).sum(axis=0), dout.sum(axis=0)


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    dx = np.exp(log_p)
    dx[np.arange(n), y] -= 1
    return -log_p[np.arange(n), y].mean(), dx / n


class FullyConnectedNet:
    """Two hidden layers with batch norm; the dict lists every W and b, then gamma and beta."""

    def __init__(self, seed=1, std_squared=True):
        rng = np.random.RandomState(seed)
        dims = [D, H1, H2, C]
        self.params = {}
        for i in range(3):
            self.params[f"W{i + 1}"] = rng.randn(dims[i], dims[i + 1]) * 0.3
            self.params[f"b{i + 1}"] = rng.randn(dims[i + 1]) * 0.1
        for i in range(2):
            self.params[f"gamma{i + 1}"] = 1 + 0.1 * rng.randn(dims[i + 1])
            self.params[f"beta{i + 1}"] = 0.1 * rng.randn(dims[i + 1])
        self.bn_params = [{"mode": "train", "eps": EPS, "std_squared": std_squared} for _ in range(2)]

    def loss(self, X, y=None):
        mode = "test" if y is None else "train"
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        p, caches, out = self.params, [], X
        for i in range(2):
            out, fc = affine_forward(out, p[f"W{i + 1}"], p[f"b{i + 1}"])
            out, bn = batchnorm_forward(out, p[f"gamma{i + 1}"], p[f"beta{i + 1}"], self.bn_params[i])
            out, relu = relu_forward(out)
            caches.append((fc, bn, relu))
        scores, fc3 = affine_forward(out, p["W3"], p["b3"])
        if mode == "test":
            return scores
        loss, dout = softmax_loss(scores, y)
        grads = {}
        dout, grads["W3"], grads["b3"] = affine_backward(dout, fc3)
        for i in (1, 0):
            fc, bn, relu = caches[i]
            dout = relu_backward(dout, relu)
            dout, grads[f"gamma{i + 1}"], grads[f"beta{i + 1}"] = batchnorm_backward(dout, bn)
            dout, grads[f"W{i + 1}"], grads[f"b{i + 1}"] = affine_backward(dout, fc)
        return loss, grads


def bn_port(momentum=0.1):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, H1), nn.BatchNorm1d(H1, eps=EPS, momentum=momentum), nn.ReLU(),
                         nn.Linear(H1, H2), nn.BatchNorm1d(H2, eps=EPS, momentum=momentum), nn.ReLU(),
                         nn.Linear(H2, C)).double()


def first_layer_variance(model, x):
    """The biased batch variance of the first batch norm's input, computed here."""
    return (x @ model.params["W1"] + model.params["b1"]).var(axis=0)


def test_running_variance_holding_eps_is_known_and_sized_not_bn_momentum():
    x, t = batch()
    model = FullyConnectedNet()
    report = check_port(model, bn_port(), x, t)
    assert report.passed, report.first_mismatch
    assert "bn_momentum" not in [d["code"] for d in report.diagnosis]
    known = [k for k in report.known if k["code"] == "bn_unbiased_var"]
    assert len(known) == 2 and all("var + eps" in k["text"] and "1e-05" in k["text"] for k in known)
    # torch's running variance minus the NumPy one after one pass from the same start:
    # 0.1 var_B (N/(N-1) - 1) for the unbiased variance, less 0.1 eps for the eps it does not hold
    var = first_layer_variance(FullyConnectedNet(), x)
    gap = 0.1 * var / (N - 1) - 0.1 * EPS
    first = next(k for k in known if "batchnorm1" in k["text"])
    assert first["size"] == pytest.approx(float(np.max(np.abs(gap))), rel=1e-9)
    rows = [c for c in report.checks if c.where.endswith("running_var")]
    assert len(rows) == 2 and all(c.passed for c in rows)
    evals = [c for c in report.checks if "[eval]" in c.where]
    assert evals and all(c.passed for c in evals)


@pytest.mark.parametrize("std_squared", [True, False])
def test_float32_right_ports_pass_and_a_copied_momentum_is_named(std_squared):
    x, t = batch()
    model = FullyConnectedNet(std_squared=std_squared)
    model.params = {k: v.astype(np.float32) for k, v in model.params.items()}
    report = check_port(model, bn_port().float(), x.astype(np.float32), t)
    assert report.passed, report.first_mismatch
    model = FullyConnectedNet(std_squared=std_squared)
    model.params = {k: v.astype(np.float32) for k, v in model.params.items()}
    report = check_port(model, bn_port(momentum=0.9).float(), x.astype(np.float32), t)
    assert report.first_mismatch["where"] == "batchnorm1.running_mean"
    assert [d["code"] for d in report.diagnosis] == ["bn_momentum"]


@pytest.mark.slow
def test_running_variance_holding_eps_over_training_steps():
    rng = np.random.RandomState(0)
    x, t = rng.randn(200, D) * 2 + 0.5, rng.randint(C, size=200)
    report = check_training(FullyConnectedNet(), bn_port(), x, t, steps=3, batch_size=N)
    assert report.passed, report.first_mismatch
    assert any("var + eps" in k["text"] and "after 3 step" in k["text"] for k in report.known)
    report = check_training(FullyConnectedNet(), bn_port(momentum=0.9), x, t, steps=3, batch_size=N)
    assert not report.passed and "bn_momentum" in [d["code"] for d in report.diagnosis]


def test_running_variance_without_eps_names_no_eps():
    x, t = batch()
    report = check_port(FullyConnectedNet(std_squared=False), bn_port(), x, t)
    assert report.passed, report.first_mismatch
    known = [k for k in report.known if k["code"] == "bn_unbiased_var"]
    assert len(known) == 2 and not any("var + eps" in k["text"] for k in known)


def test_a_momentum_copied_across_is_still_bn_momentum():
    x, t = batch()
    report = check_port(FullyConnectedNet(), bn_port(momentum=0.9), x, t)
    assert not report.passed
    assert report.first_mismatch["where"] == "batchnorm1.running_mean"
    assert report.diagnosis[0]["code"] == "bn_momentum"
    assert report.diagnosis[0]["numpy_momentum"] == pytest.approx(0.9)
    assert "momentum=0.1" in report.diagnosis[0]["text"]


# --- no layer objects: a bias that feeds batch norm -----------------------------------------

class ClosureFFN:
    """fc - bn - relu x2 - fc, every vector (1, H), the functions inside the model (the checker
    sees no layers), dict ``W1 W2 W3 b1 b2 b3 gamma1 gamma2 beta1 beta2``; no running
    statistics kept."""

    def __init__(self, seed=2, bias_bug=False):
        rng = np.random.RandomState(seed)
        dims = [D, H1, H1, C]
        self.params = {f"W{i + 1}": rng.randn(dims[i], dims[i + 1]) / np.sqrt(dims[i]) for i in range(3)}
        self.params.update({f"b{i + 1}": np.zeros((1, dims[i + 1])) for i in range(3)})
        self.params.update({f"gamma{i}": np.ones((1, H1)) for i in (1, 2)})
        self.params.update({f"beta{i}": np.zeros((1, H1)) for i in (1, 2)})
        self.bias_bug = bias_bug

    def _forward(self, x):
        p, caches = self.params, []
        h = x
        for i in (1, 2):
            z = h @ p[f"W{i}"] + p[f"b{i}"]
            mu, var = z.mean(axis=0), z.var(axis=0)
            xn = (z - mu) / np.sqrt(var + 1e-8)
            a = p[f"gamma{i}"] * xn + p[f"beta{i}"]
            caches.append((h, xn, np.sqrt(var + 1e-8)))
            h = np.maximum(a, 0)
        return h @ p["W3"] + p["b3"], caches, h

    def loss(self, x, t):
        scores = self._forward(x)[0]
        return softmax_loss(scores, t)[0]

    def gradient(self, x, t):
        p = self.params
        scores, caches, h = self._forward(x)
        dout = softmax_loss(scores, t)[1]
        g = {"W3": h.T @ dout, "b3": dout.sum(axis=0, keepdims=True)}
        dh = dout @ p["W3"].T
        for i in (2, 1):
            h_in, xn, std = caches[i - 1]
            da = dh * (xn * p[f"gamma{i}"] + p[f"beta{i}"] > 0)
            g[f"gamma{i}"] = (da * xn).sum(axis=0, keepdims=True)
            g[f"beta{i}"] = da.sum(axis=0, keepdims=True)
            dxn = da * p[f"gamma{i}"]
            n = da.shape[0]
            dz = (n * dxn - dxn.sum(axis=0) - xn * (dxn * xn).sum(axis=0)) / (n * std)
            g[f"W{i}"] = h_in.T @ dz
            # the bug: the gradient that reaches batch norm's output taken for the bias's
            g[f"b{i}"] = (da if self.bias_bug else dz).sum(axis=0, keepdims=True)
            dh = dz @ p[f"W{i}"].T
        return g


class FFNPort(nn.Module):
    def __init__(self, bias_after_norm=False):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(D, H1), nn.BatchNorm1d(H1, eps=1e-8)
        self.fc2, self.bn2 = nn.Linear(H1, H1), nn.BatchNorm1d(H1, eps=1e-8)
        self.fc3 = nn.Linear(H1, C)
        self.bias_after_norm = bias_after_norm
        self.double()

    def forward(self, x):
        if self.bias_after_norm:  # the bias added after the norm: zero at init, so unseen forward
            h = F.relu(self.bn1(x @ self.fc1.weight.T) + self.fc1.bias)
        else:
            h = F.relu(self.bn1(self.fc1(x)))
        return self.fc3(F.relu(self.bn2(self.fc2(h))))


FFN_MAP = ("W1=fc1.weight.T,b1=fc1.bias,W2=fc2.weight.T,b2=fc2.bias,W3=fc3.weight.T,b3=fc3.bias,"
           "gamma1=bn1.weight,beta1=bn1.bias,gamma2=bn2.weight,beta2=bn2.bias")


def test_a_bias_before_batch_norm_is_judged_by_what_its_gradient_sums():
    x, t = batch(3)
    report = check_port(ClosureFFN(), FFNPort(), x, t, param_map=FFN_MAP)
    assert report.passed, report.first_mismatch
    rows = {c.where: c for c in report.checks if c.phase == "backward"}
    for name in ("b1", "b2"):
        # exactly 0 in exact arithmetic: both sides hold round-off alone
        assert rows[name].max_abs < 1e-14 and rows[name].max_rel > 1e-6
        assert rows[name].passed and "terms it sums" in rows[name].why


def test_a_wrong_bias_before_batch_norm_still_fails():
    x, t = batch(3)
    report = check_port(ClosureFFN(), FFNPort(bias_after_norm=True), x, t, param_map=FFN_MAP)
    assert not report.passed
    assert (report.first_mismatch["phase"], report.first_mismatch["where"]) == ("backward", "b1")
    report = check_port(ClosureFFN(bias_bug=True), FFNPort(), x, t, param_map=FFN_MAP)
    assert not report.passed and report.first_mismatch["where"] in ("b1", "b2")


# --- channels-last kernels (h, w, c_in, n_f) -------------------------------------------------

IMG, C_IN, N_F, K = 6, 2, 3, 3


def conv_nhwc(x, w, b):
    """A 'same' convolution of a channels-last batch with a (h, w, c_in, n_f) kernel."""
    pad = K // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    out = np.zeros(x.shape[:3] + (w.shape[3],))
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            out += np.einsum("nhwc,cf->nhwf", xp[:, i:i + x.shape[1], j:j + x.shape[2]], w[i, j])
    return out + b


class ChannelsLastNet:
    """conv - relu - dense on the channels-last flattening; Dense holds (out, in)."""

    def __init__(self, seed=4, kh=K, kw=K, c_in=C_IN, n_f=N_F):
        rng = np.random.RandomState(seed)
        self.params = {"W1": rng.randn(kh, kw, c_in, n_f) * 0.3, "b1": rng.randn(n_f) * 0.1,
                       "W2": rng.randn(C, IMG * IMG * n_f) * 0.1, "b2": rng.randn(C) * 0.1}

    def predict(self, x):
        h = np.maximum(conv_nhwc(x, self.params["W1"], self.params["b1"]), 0)
        return h.reshape(h.shape[0], -1) @ self.params["W2"].T + self.params["b2"]

    def loss(self, x, t):
        return softmax_loss(self.predict(x), t)[0]


class ConvPort(nn.Module):
    def __init__(self, c_in=C_IN, n_f=N_F, hw_swapped=False):
        super().__init__()
        self.conv = nn.Conv2d(c_in, n_f, K, padding=K // 2)
        self.fc = nn.Linear(IMG * IMG * n_f, C)
        self.hw_swapped = hw_swapped
        self.double()

    def forward(self, x):
        x = x.permute(0, 3, 1, 2)
        if self.hw_swapped:
            h = F.conv2d(x, self.conv.weight.transpose(2, 3), self.conv.bias, padding=K // 2)
        else:
            h = self.conv(x)
        h = F.relu(h)
        return self.fc(h.permute(0, 2, 3, 1).reshape(h.shape[0], -1))


def images(seed=5, c_in=C_IN):
    rng = np.random.RandomState(seed)
    return rng.randn(8, IMG, IMG, c_in), rng.randint(C, size=8)


def test_channels_last_kernel_pairs_with_conv2d_by_its_permutation():
    report = check_port(ChannelsLastNet(), ConvPort(), *images())
    assert report.passed, report.first_mismatch
    pair = next(p for p in report.pairing if p.numpy == "W1")
    assert pair.to_dict()["layout"] == "conv.weight.permute(2, 3, 1, 0)"
    # a square kernel: (w, h, c_in, n_f) fits the shapes too, and the report says so
    assert any("W1" in n and "permute(3, 2, 1, 0)" in n for n in report.notes)


@pytest.mark.parametrize("written", ["conv.weight.permute(2,3,1,0)", "conv.weight.T"])
def test_param_map_says_the_permutation(written):
    report = check_port(ChannelsLastNet(), ConvPort(), *images(),
                        param_map=f"W1={written},b1=conv.bias,W2=fc.weight,b2=fc.bias")
    assert report.passed, report.first_mismatch
    assert str(next(p for p in report.pairing if p.numpy == "W1")).startswith(
        "W1 <-> conv.weight.permute(2, 3, 1, 0)")


@pytest.mark.slow  # a few seconds: with the full suite
def test_a_kernel_with_h_and_w_swapped_fails_and_the_values_name_the_order():
    report = check_port(ChannelsLastNet(), ConvPort(hw_swapped=True), *images())
    assert not report.passed
    found = report.diagnosis[0]
    assert found["code"] == "transpose" and found["parameter"] == "W1"
    assert found["layout"] == "conv.weight.permute(3, 2, 1, 0)" and "(w, h, c_in, n_f)" in found["text"]


@pytest.mark.slow  # seconds: each kernel order loaded and rerun
def test_a_kernel_order_no_permutation_explains_is_not_named():
    class Flipped(ConvPort):  # the kernel flipped (a correlation made a convolution): no order fits
        def forward(self, x):
            x = x.permute(0, 3, 1, 2)
            h = F.relu(F.conv2d(x, self.conv.weight.flip(2, 3), self.conv.bias, padding=K // 2))
            return self.fc(h.permute(0, 2, 3, 1).reshape(h.shape[0], -1))
    report = check_port(ChannelsLastNet(), Flipped(), *images(),
                        param_map="W1=conv.weight.T,b1=conv.bias,W2=fc.weight,b2=fc.bias")
    assert not report.passed and "transpose" not in [d["code"] for d in report.diagnosis]


def test_kernel_permutation_unique_where_the_shapes_tell():
    pairs = pair_parameters({"W1": (3, 2, 1, 4)}, {"conv.weight": (4, 1, 3, 2)})
    assert pairs[0].permute == (3, 2, 0, 1) and pairs[0].also_fits == ()
    w = np.arange(24.0).reshape(3, 2, 1, 4)
    held = pairs[0].to_torch(w, (4, 1, 3, 2))
    assert held.shape == (4, 1, 3, 2) and held[2, 0, 1, 0] == w[1, 0, 0, 2]
    np.testing.assert_array_equal(pairs[0].to_numpy(held), w)
    same = pair_parameters({"W1": (4, 4, 3, 3)}, {"conv.weight": (4, 4, 3, 3)})
    assert same[0].permute is None  # equal shapes: as they are, torch's own layout
    square = pair_parameters({"W1": (3, 3, 4, 4)}, {"conv.weight": (4, 4, 3, 3)})
    assert square[0].permute == (3, 2, 0, 1) and len(square[0].also_fits) == 3
    ambiguous = pair_parameters({"W1": (3, 3, 2, 4)}, {"conv.weight": (4, 2, 3, 3)})
    assert ambiguous[0].also_fits == ((3, 2, 1, 0),)


def test_param_map_permutation_is_checked_against_the_shapes():
    assert parse_param_map("W1=conv.weight.permute(2, 3, 1, 0)") == {"W1": ("conv.weight", (3, 2, 0, 1))}
    with pytest.raises(PortSetupError, match="each axis once"):
        parse_param_map("W1=conv.weight.permute(2,2,1,0)")
    with pytest.raises(PortSetupError, match="cannot hold"):
        pair_parameters({"W1": (3, 2, 1, 4)}, {"conv.weight": (4, 1, 3, 2)},
                        param_map="W1=conv.weight.permute(3,2,1,0)")
