"""The book's second volume through the NumPy door (issue 22, item 1, its first models):
``params`` and ``grads`` lists, ``forward(x, t)`` the loss, ``backward()`` filling ``grads``
in place, float32 arrays. The models are written here in that style."""
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from compare import check_port
from compare.port.copying import deep_copy
from compare.port.reference import NumpySide
from compare.port.reference.list_door import through_list_door
from compare.port.targets import PortSetupError


# --- a NumPy net in the second volume's style ------------------------------------------------

class Affine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        self.x = x
        return x @ W + b

    def backward(self, dout):
        W, _ = self.params
        self.grads[0][...] = self.x.T @ dout
        self.grads[1][...] = dout.sum(axis=0)
        return dout @ W.T


class Sigmoid:
    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


class SoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []

    def forward(self, x, t):
        self.t = t.argmax(axis=1) if t.ndim == 2 else t
        e = np.exp(x - x.max(axis=1, keepdims=True))
        self.y = e / e.sum(axis=1, keepdims=True)
        n = x.shape[0]
        return -np.log(self.y[np.arange(n), self.t] + 1e-7).sum() / n

    def backward(self, dout=1):
        n = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(n), self.t] -= 1
        return dx * dout / n


class ListNet:
    """Layers in a list, each layer's arrays gathered into the model's lists."""

    def __init__(self, layers):
        self.layers = layers
        self.loss_layer = SoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def forward(self, x, t):
        return self.loss_layer.forward(self.predict(x), t)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def two_layer_net(d=6, h=5, c=3, seed=0):
    rng = np.random.RandomState(seed)
    W1, b1 = (0.5 * rng.randn(d, h)).astype("f"), (0.1 * rng.randn(h)).astype("f")
    W2, b2 = (0.5 * rng.randn(h, c)).astype("f"), (0.1 * rng.randn(c)).astype("f")
    return ListNet([Affine(W1, b1), Sigmoid(), Affine(W2, b2)])


def tied_net(d=4, seed=1):
    """One square matrix used by both affine layers, listed twice in ``params``."""
    rng = np.random.RandomState(seed)
    W = (0.5 * rng.randn(d, d)).astype("f")
    b1, b2 = (0.1 * rng.randn(d)).astype("f"), (0.1 * rng.randn(d)).astype("f")
    return ListNet([Affine(W, b1), Sigmoid(), Affine(W, b2)])


def batch(n=8, d=6, c=3, seed=2):
    rng = np.random.RandomState(seed)
    return rng.rand(n, d).astype("f"), rng.randint(0, c, n)


# --- torch ports -----------------------------------------------------------------------------

class LinearPort(nn.Module):
    def __init__(self, d=6, h=5, c=3):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, h), nn.Linear(h, c)

    def forward(self, x):
        return self.fc2(torch.sigmoid(self.fc1(x)))


class ScaledPort(LinearPort):
    """Planted: the first layer's output halved."""

    def forward(self, x):
        return self.fc2(torch.sigmoid(0.5 * self.fc1(x)))


class TransposedPort(LinearPort):
    """Planted: a square weight used as stored, (out, in), without its transpose."""

    def forward(self, x):
        return self.fc2(torch.sigmoid(x @ self.fc1.weight + self.fc1.bias))


class TiedPort(nn.Module):
    def __init__(self, d=4):
        super().__init__()
        self.W = nn.Parameter(torch.zeros(d, d))
        self.b1, self.b2 = nn.Parameter(torch.zeros(d)), nn.Parameter(torch.zeros(d))

    def forward(self, x):
        return torch.sigmoid(x @ self.W + self.b1) @ self.W + self.b2


# --- the door --------------------------------------------------------------------------------

def test_named_by_layer_and_role_on_the_models_own_arrays():
    net = two_layer_net()
    door = through_list_door(net)
    assert list(door.params) == ["Affine0.W", "Affine0.b", "Affine1.W", "Affine1.b"]
    assert all(door.params[k] is net.params[i] for i, k in enumerate(door.params))
    assert list(door.layers) == ["Affine0", "Sigmoid0", "Affine1"]


def test_gradient_is_backprop_read_off_the_lists_against_autograd():
    net = two_layer_net()
    x, t = batch()
    grads = through_list_door(net).gradient(x, t)
    W1, b1, W2, b2 = (torch.tensor(p.astype(np.float64), requires_grad=True) for p in net.params)
    scores = torch.sigmoid(torch.tensor(x, dtype=torch.float64) @ W1 + b1) @ W2 + b2
    F.cross_entropy(scores, torch.tensor(t)).backward()
    for name, ref in zip(["Affine0.W", "Affine0.b", "Affine1.W", "Affine1.b"], (W1, b1, W2, b2)):
        assert grads[name].dtype == np.float32
        np.testing.assert_allclose(grads[name], ref.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_float32_model_checked_in_float32_and_the_users_model_untouched():
    net = two_layer_net()
    before = [p.copy() for p in net.params]
    side = NumpySide(net)
    assert side.dtype == np.float32 and side.description == "ListNet"
    assert side.owners == {"Affine0.W": "Affine0", "Affine0.b": "Affine0",
                           "Affine1.W": "Affine1", "Affine1.b": "Affine1"}
    side.gradient(*batch())
    assert all(np.array_equal(a, b) for a, b in zip(before, net.params))
    assert not any(g.any() for g in net.grads)  # the check's passes ran on its own copy


def test_a_float64_run_casts_the_grads_with_the_params():
    side = NumpySide(two_layer_net(), dtype="float64")
    assert all(g.dtype == np.float64 for g in side.inner.inner.grads)


def test_right_port_passes_in_float32_with_layer_rows():
    x, t = batch()
    report = check_port(two_layer_net(), LinearPort(), x, t)
    assert report.passed, report.to_text()
    assert report.to_dict()["settings"]["dtype"] == "float32"
    forward = {c.where for c in report.checks if c.phase == "forward"}
    assert {"Affine0", "Sigmoid0", "Affine1"} <= forward, forward
    assert any(c.phase == "backward" and "Affine0.W" in c.where for c in report.checks)


def test_planted_scale_fails_where_it_enters():
    x, t = batch()
    report = check_port(two_layer_net(), ScaledPort(), x, t)
    assert not report.passed
    # fc1's own output is right; the sigmoid is the first row whose input differs
    assert report.first_mismatch["phase"] == "forward"
    assert report.first_mismatch["where"] == "Sigmoid0", report.to_text()
    assert "input already differs" in report.first_mismatch["detail"]


def test_planted_transpose_named_at_the_first_affine():
    rng = np.random.RandomState(2)
    x, t = rng.rand(8, 5).astype("f"), rng.randint(0, 3, 8)
    report = check_port(two_layer_net(d=5), TransposedPort(d=5), x, t)
    assert not report.passed
    assert report.first_mismatch["where"] == "Affine0", report.to_text()
    assert any(d["code"] == "transpose" and d.get("parameter") == "Affine0.W"
               for d in report.diagnosis), report.diagnosis


# --- tied weights ----------------------------------------------------------------------------

def test_an_array_listed_twice_is_one_parameter_with_the_summed_gradient():
    net = tied_net()
    door = through_list_door(net)
    assert list(door.params) == ["Affine0.W", "Affine0.b", "Affine1.b"]
    rng = np.random.RandomState(3)
    x, t = rng.rand(8, 4).astype("f"), rng.randint(0, 4, 8)
    grads = door.gradient(x, t)
    W, b1, _, b2 = (torch.tensor(p.astype(np.float64), requires_grad=True) for p in net.params)
    scores = torch.sigmoid(torch.tensor(x, dtype=torch.float64) @ W + b1) @ W + b2
    F.cross_entropy(scores, torch.tensor(t)).backward()
    np.testing.assert_allclose(grads["Affine0.W"], W.grad.numpy(), rtol=1e-4, atol=1e-6)
    # either use alone is not the gradient: the sum is what was taken
    assert not np.allclose(net.grads[0], W.grad.numpy(), atol=1e-4)


def test_tied_port_passes():
    rng = np.random.RandomState(3)
    x, t = rng.rand(8, 4).astype("f"), rng.randint(0, 4, 8)
    report = check_port(tied_net(), TiedPort(), x, t)
    assert report.passed, report.to_text()


# --- refusals --------------------------------------------------------------------------------

def test_lists_of_different_lengths_refused_in_one_line():
    net = two_layer_net()
    net.grads = net.grads[:-1]
    with pytest.raises(PortSetupError) as err:
        NumpySide(net)
    assert "4 arrays" in str(err.value) and "3" in str(err.value) and "\n" not in str(err.value)


def test_a_transposed_view_is_one_parameter_with_the_transposed_gradient_added():
    net = tied_net()
    net.layers[2].params[0] = net.params[0].T  # the second affine computes with W.T
    net.params[2] = net.layers[2].params[0]
    door = through_list_door(net)
    assert list(door.params) == ["Affine0.W", "Affine0.b", "Affine1.b"]
    rng = np.random.RandomState(3)
    x, t = rng.rand(8, 4).astype("f"), rng.randint(0, 4, 8)
    grads = door.gradient(x, t)
    W, b1, _, b2 = (torch.tensor(p.astype(np.float64), requires_grad=True)
                    for p in net.params)
    scores = torch.sigmoid(torch.tensor(x, dtype=torch.float64) @ W + b1) @ W.T + b2
    F.cross_entropy(scores, torch.tensor(t)).backward()
    np.testing.assert_allclose(grads["Affine0.W"], W.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("dtype", [None, "float64"])
def test_the_checks_copy_keeps_the_transpose_a_view_of_its_parameter(dtype):
    net = tied_net()
    net.layers[2].params[0] = net.params[0].T
    net.params[2] = net.layers[2].params[0]
    side = NumpySide(net, dtype=dtype)
    inner = side.inner.inner
    W, view = inner.params[0], inner.layers[2].params[0]
    assert W is side.params["Affine0.W"] and W.dtype == view.dtype == side.dtype
    assert inner.params[2] is view and view.base is not None and np.shares_memory(W, view)
    W[1, 2] += 1.0  # a step of the numerical check reaches the layer computing with W.T
    assert view[2, 1] == W[1, 2]
    assert not np.shares_memory(W, net.params[0])  # the user's arrays untouched
    # the float64 copy a float32 run's central differences are taken on keeps the tie too
    wide = deep_copy(side, {id(v): v.astype(np.float64) for v in side.params.values()})
    W64 = wide.params["Affine0.W"]
    assert W64.dtype == np.float64 and wide.inner.inner.layers[2].params[0].base is W64


def test_memory_shared_otherwise_than_as_a_transpose_is_refused():
    net = tied_net()
    net.layers[2].params[0] = net.params[0][:, ::-1]
    net.params[2] = net.layers[2].params[0]
    with pytest.raises(PortSetupError, match="neither is the other nor its transpose"):
        NumpySide(net)
