"""Token ids and the non-recurrent time layers (issue 22, items 5 and 2, their first slice):
integer ``x`` stays integer, the default loss on scores ``(N, T, V)`` against targets
``(N, T)`` is the cross-entropy averaged over the tokens, and a model in the book's
second-volume style (``TimeEmbedding``, ``TimeAffine``, ``TimeSoftmaxWithLoss``, float32)
is checked against an ``nn.Embedding`` / ``nn.Linear`` port. The models are written here."""
import numpy as np
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from compare import check_port


# --- a NumPy language model in the second volume's style --------------------------------------

class TimeEmbedding:
    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None

    def forward(self, idx):
        W, = self.params
        self.idx = idx
        return W[idx]

    def backward(self, dout):
        dW, = self.grads
        dW[...] = 0
        np.add.at(dW, self.idx, dout)
        return None


class TimeAffine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        N, T, D = x.shape
        W, b = self.params
        self.x = x
        return (x.reshape(N * T, -1) @ W + b).reshape(N, T, -1)

    def backward(self, dout):
        N, T, D = self.x.shape
        W, _ = self.params
        dout = dout.reshape(N * T, -1)
        self.grads[0][...] = self.x.reshape(N * T, -1).T @ dout
        self.grads[1][...] = dout.sum(axis=0)
        return (dout @ W.T).reshape(N, T, D)


class TimeSoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, xs, ts):
        N, T, V = xs.shape
        xs = xs.reshape(N * T, V)
        ts = ts.reshape(N * T)
        e = np.exp(xs - xs.max(axis=1, keepdims=True))
        ys = e / e.sum(axis=1, keepdims=True)
        loss = -np.log(ys[np.arange(N * T), ts]).sum() / (N * T)
        self.cache = (ts, ys, (N, T, V))
        return loss

    def backward(self, dout=1):
        ts, ys, (N, T, V) = self.cache
        dx = ys.copy()
        dx[np.arange(N * T), ts] -= 1
        return (dx * dout / (N * T)).reshape(N, T, V)


class TimeLM:
    """Embedding, then a time-distributed affine to the vocabulary."""

    def __init__(self, V=7, D=5, seed=0):
        rng = np.random.RandomState(seed)
        embed_W = (0.1 * rng.randn(V, D)).astype("f")
        affine_W = (rng.randn(D, V) / np.sqrt(D)).astype("f")
        affine_b = (0.1 * rng.randn(V)).astype("f")
        self.layers = [TimeEmbedding(embed_W), TimeAffine(affine_W, affine_b)]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def predict(self, xs):
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs, ts):
        return self.loss_layer.forward(self.predict(xs), ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def tokens(n=4, T=3, V=7, seed=3):
    rng = np.random.RandomState(seed)
    return rng.randint(0, V, (n, T)), rng.randint(0, V, (n, T))


# --- torch ports ------------------------------------------------------------------------------

class EmbedPort(nn.Module):
    def __init__(self, V=7, D=5):
        super().__init__()
        self.embed, self.fc = nn.Embedding(V, D), nn.Linear(D, V)

    def forward(self, xs):
        return self.fc(self.embed(xs))


class TransposedPort(EmbedPort):
    """Planted: the square affine weight used as stored, (out, in), without its transpose."""

    def forward(self, xs):
        return self.embed(xs) @ self.fc.weight + self.fc.bias


class SummedLossPort(EmbedPort):
    """Planted: the token losses summed, not averaged."""

    def loss(self, xs, ts):
        scores = self(xs)
        return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), ts.reshape(-1),
                               reduction="sum")


V = D = 6  # square: the affine weight's layout is not told by its shape


def make_lm():
    return TimeLM(V, D)


def make_port():
    return EmbedPort(V, D)


def make_transposed_port():
    return TransposedPort(V, D)


def _token_mean_ce(model, xs, ts):
    """Autograd's token-mean cross-entropy of the NumPy model's own arrays, in float64."""
    W_e, W_a, b = (torch.tensor(p.astype(np.float64), requires_grad=True) for p in model.params)
    scores = F.embedding(torch.tensor(xs), W_e) @ W_a + b
    loss = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), torch.tensor(ts).reshape(-1))
    loss.backward()
    return float(loss), [W_e.grad.numpy(), W_a.grad.numpy(), b.grad.numpy()]


# --- the NumPy model here, against autograd ----------------------------------------------------

def test_numpy_time_layers_against_autograd():
    model, (xs, ts) = make_lm(), tokens(V=V)
    loss = model.forward(xs, ts)
    model.backward()
    ref_loss, ref_grads = _token_mean_ce(model, xs, ts)
    assert abs(loss - ref_loss) < 1e-5
    for g, ref in zip(model.grads, ref_grads):
        np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-6)


# --- the check ---------------------------------------------------------------------------------

def test_token_ids_stay_integer_and_the_right_port_passes_in_float32():
    xs, ts = tokens(V=V)
    report = check_port(make_lm(), make_port(), xs.astype(np.int32), ts)
    assert report.passed, report.to_text()
    d = report.to_dict()
    assert d["settings"]["dtype"] == "float32"
    pairs = {p.numpy: p.view for p in report.pairing}
    assert pairs == {"TimeEmbedding0.W": "embed.weight", "TimeAffine0.W": "fc.weight.T",
                     "TimeAffine0.b": "fc.bias"}
    rows = {(c.phase, c.where) for c in report.checks}
    assert {("forward", "TimeEmbedding0"), ("forward", "TimeAffine0"), ("loss", "loss"),
            ("backward", "TimeEmbedding0.W"), ("backward", "TimeAffine0.W")} <= rows, rows


def test_default_loss_is_the_token_mean_cross_entropy():
    """The port's loss row is F.cross_entropy over the N*T token rows: the NumPy model's
    token mean, which autograd gives independently."""
    model, (xs, ts) = make_lm(), tokens(V=V)
    report = check_port(model, make_port(), xs, ts)
    loss_row = next(c for c in report.checks if c.phase == "loss")
    ref_loss, _ = _token_mean_ce(model, xs, ts)
    assert loss_row.passed and abs(float(loss_row.worst_actual) - ref_loss) < 1e-5


def test_transposed_square_affine_fails_named_transpose():
    xs, ts = tokens(V=V)
    report = check_port(make_lm(), make_transposed_port(), xs, ts)
    assert not report.passed
    d = report.to_dict()
    assert d["first_mismatch"]["where"] == "TimeAffine0"
    assert [h["code"] for h in d["diagnosis"]] == ["transpose"]


def test_summed_token_loss_fails_named_scale_by_the_token_count():
    xs, ts = tokens(V=V)
    report = check_port(make_lm(), SummedLossPort(V, D), xs, ts, loss="model")
    assert not report.passed
    d = report.to_dict()
    assert d["first_mismatch"]["where"] == "loss"
    (h,) = d["diagnosis"]
    assert h["code"] == "scale" and abs(h["factor"] - xs.size) < 1e-4 and "tokens" in h["text"]


def test_cli_data_file_of_token_ids(tmp_path, capsys):
    from compare import cli
    xs, ts = tokens(n=20, V=V)
    data = tmp_path / "tokens.npz"
    np.savez(data, x=xs, t=ts)
    here = "tests/test_port_tokens.py"
    args = ["--data", str(data), "--batch", "8", "--no-progress"]
    assert cli.main(["port", f"{here}:make_lm", f"{here}:make_port", *args]) == 0
    assert cli.main(["port", f"{here}:make_lm", f"{here}:make_transposed_port", *args]) == 1
    assert "transpose" in capsys.readouterr().out


def test_whole_number_features_still_reach_a_linear_port_as_floats():
    """Integer x that the port cannot take as ids (nn.Linear on whole-number features) is
    features, cast as before: a right port passes."""
    from test_port_vol2_door import LinearPort, two_layer_net
    rng = np.random.RandomState(0)
    x, t = rng.randint(0, 3, (8, 6)), rng.randint(0, 3, 8)
    report = check_port(two_layer_net(), LinearPort(), x, t)
    assert report.passed, report.to_text()
