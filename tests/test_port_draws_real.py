"""Dropout as learners write it, checked with one draw for both sides (issue 20, items 5, 6).

Two styles, written here: a deeplearning.ai-style net, features first, whose forward draws
``D1 = np.random.rand(n_h, m) < keep_prob`` inline and divides by ``keep_prob``; and a
*Neural Networks from Scratch*-style net of layer objects behind an adapter, whose dropout
layer draws ``np.random.binomial(1, 1 - rate, size)`` after a ReLU. Right ports pass, wrong
ones fail with their code, and a port whose draws cannot be answered is counted and left
not judged. The truth each assertion rests on: autograd of the port with the NumPy masks
applied by hand.
"""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compare import check_port
from compare.port.draws import DrawTape

# --- deeplearning.ai style: features first, dropout drawn inline ------------------------------

DIMS = (12, 8, 6, 1)
KEEP = 0.8


def _relu(Z):
    return np.maximum(0, Z)


def _sigmoid(Z):
    return 1 / (1 + np.exp(-Z))


def forward_with_dropout(X, parameters, keep_prob, inverted=True):
    W1, b1, W2, b2, W3, b3 = (parameters[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3"))
    Z1 = np.dot(W1, X) + b1
    A1 = _relu(Z1)
    D1 = np.random.rand(A1.shape[0], A1.shape[1])
    D1 = D1 < keep_prob
    A1 = A1 * D1
    if inverted:
        A1 = A1 / keep_prob
    Z2 = np.dot(W2, A1) + b2
    A2 = _relu(Z2)
    D2 = np.random.rand(A2.shape[0], A2.shape[1]) < keep_prob
    A2 = A2 * D2
    if inverted:
        A2 /= keep_prob
    Z3 = np.dot(W3, A2) + b3
    A3 = _sigmoid(Z3)
    return A3, (Z1, D1, A1, Z2, D2, A2, A3)


def backward_with_dropout(X, Y, parameters, cache, keep_prob, inverted=True):
    m = X.shape[1]
    Z1, D1, A1, Z2, D2, A2, A3 = cache
    scale = 1 / keep_prob if inverted else 1.0
    dZ3 = A3 - Y
    grads = {"dW3": np.dot(dZ3, A2.T) / m, "db3": np.sum(dZ3, axis=1, keepdims=True) / m}
    dA2 = np.dot(parameters["W3"].T, dZ3) * D2 * scale
    dZ2 = dA2 * (Z2 > 0)
    grads.update(dW2=np.dot(dZ2, A1.T) / m, db2=np.sum(dZ2, axis=1, keepdims=True) / m)
    dA1 = np.dot(parameters["W2"].T, dZ2) * D1 * scale
    dZ1 = dA1 * (Z1 > 0)
    grads.update(dW1=np.dot(dZ1, X.T) / m, db1=np.sum(dZ1, axis=1, keepdims=True) / m)
    return grads


class FeaturesFirstDropoutNet:
    """``params`` W (out, in), b (out, 1); ``loss(X, Y)`` with X (features, m), Y (1, m)."""

    def __init__(self, keep_prob=KEEP, inverted=True, seed=3):
        rng = np.random.RandomState(seed)
        self.params = {}
        for l in range(1, len(DIMS)):
            self.params[f"W{l}"] = rng.randn(DIMS[l], DIMS[l - 1]) / np.sqrt(DIMS[l - 1])
            self.params[f"b{l}"] = rng.randn(DIMS[l], 1) * 0.1
        self.keep_prob, self.inverted = keep_prob, inverted

    def loss(self, X, Y):
        A3, _ = forward_with_dropout(X, self.params, self.keep_prob, self.inverted)
        m = Y.shape[1]
        return float(np.sum(-Y * np.log(A3) - (1 - Y) * np.log(1 - A3)) / m)

    def gradient(self, X, Y):
        A3, cache = forward_with_dropout(X, self.params, self.keep_prob, self.inverted)
        grads = backward_with_dropout(X, Y, self.params, cache, self.keep_prob, self.inverted)
        return {k: grads["d" + k] for k in self.params}


class FeaturesFirstPort(nn.Module):
    """Batch first; ``p`` the drop probability (right: 1 - keep_prob)."""

    def __init__(self, p=1 - KEEP):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIMS[0], DIMS[1]), nn.ReLU(), nn.Dropout(p),
                                 nn.Linear(DIMS[1], DIMS[2]), nn.ReLU(), nn.Dropout(p),
                                 nn.Linear(DIMS[2], DIMS[3]), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)


class UniformFilledPort(FeaturesFirstPort):
    """Right arithmetic, but its masks come from ``torch.empty(...).uniform_()``, a draw the
    NumPy side's cannot stand for."""

    def forward(self, x):
        for k, layer in enumerate(self.net):
            if isinstance(layer, nn.Dropout):
                keep = 1 - layer.p
                x = x * (torch.empty(x.shape, dtype=x.dtype).uniform_() < keep) / keep
            else:
                x = layer(x)
        return x


def binary_batch(n=16, d=DIMS[0], seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, d)
    return x, (x[:, : d // 2].sum(1) > x[:, d // 2:].sum(1)).astype(float)[:, None]


def _by_hand(x, t, params, masks, scale):
    """Autograd of the batch-first net with the given keep masks applied by hand."""
    w = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    a = torch.tensor(x)
    for l in (1, 2):
        a = torch.relu(a @ w[f"W{l}"].T + w[f"b{l}"].T) * torch.tensor(masks[l - 1], dtype=a.dtype) * scale
    out = torch.sigmoid(a @ w["W3"].T + w["b3"].T)
    loss = F.binary_cross_entropy(out, torch.tensor(t))
    grads = torch.autograd.grad(loss, list(w.values()))
    return loss.item(), {k: g.numpy() for k, g in zip(w, grads)}


def test_an_inline_features_first_draw_is_replayed_transposed_to_the_port():
    """The NumPy masks are (n_h, m); handed to the batch-first port as (m, n_h)."""
    x, t = binary_batch()
    net = FeaturesFirstDropoutNet()
    tape = DrawTape(transpose=True)
    with tape.numpy_pass():
        net.loss(x.T, t.T)
    tape.keep_masks([], lambda r: True)
    assert [m.shape for m in tape.masks] == [(16, 8), (16, 6)]
    assert tape.keeps == [KEEP, KEEP]
    # the masks are the draws' comparisons, transposed: the model's own D1, D2
    uniforms = tape.uniforms()
    for mask, u in zip(tape.masks, uniforms):
        np.testing.assert_array_equal(mask, (u < KEEP).T)
    # independent truth: the NumPy loss on the same draw equals autograd's with those masks
    with tape.numpy_pass():
        np_loss = net.loss(x.T, t.T)
    loss, _ = _by_hand(x, t, net.params, tape.masks, 1 / KEEP)
    assert np_loss == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("make_mask, keep", [
    (lambda u: u < 0.7, 0.7),            # the course's D < keep_prob
    (lambda u: 0.7 > u, 0.7),            # written the other way round
    (lambda u: u > 0.3, 0.7),            # the book's rand > dropout_ratio
    (lambda u: (u >= 0.3) * 1.0, 0.7)])  # made numbers at once
def test_the_first_comparison_of_a_uniform_draw_is_its_keep_mask(make_mask, keep):
    tape = DrawTape()
    with tape.numpy_pass():
        u = np.random.rand(5, 4)
        made = make_mask(u)
        u * 2.0 < 0.1  # later arithmetic on the draw makes no second mask
    tape.keep_masks([], lambda r: True)
    np.testing.assert_array_equal(tape.masks[0], made != 0)
    assert tape.keeps == [pytest.approx(keep)]
    assert type(made) is np.ndarray  # the model gets plain arrays back


def test_a_square_features_first_draw_is_transposed_by_the_layout_not_the_shape():
    """(n_h, m) = (4, 4): the shapes cannot tell; the layout does."""
    tape = DrawTape(transpose=True)
    with tape.numpy_pass():
        d = np.random.rand(4, 4) < 0.5
    tape.keep_masks([], lambda r: True)
    np.testing.assert_array_equal(tape.masks[0], d.T)
    x = torch.ones(4, 4, dtype=torch.float64)
    with tape.torch_pass():
        y = F.dropout(x, 0.5)
        u = torch.rand(4, 4, dtype=torch.float64)
    np.testing.assert_array_equal(y.numpy(), 2 * d.T)
    np.testing.assert_array_equal(u.numpy(), tape.uniforms()[0].T)
    assert tape.misses == 0


def test_right_features_first_port_with_inline_dropout_passes():
    x, t = binary_batch()
    net = FeaturesFirstDropoutNet()
    report = check_port(net, FeaturesFirstPort(), x, t, loss="binary_cross_entropy")
    assert report.passed, report.to_text()
    assert report.not_judged is None
    backward = [c for c in report.checks if c.phase == "backward"]
    assert len(backward) == 6 and all(c.judged for c in backward)
    # the gradients the port gave agree with autograd of the net with the NumPy masks by hand
    tape = DrawTape(transpose=True)
    np.random.seed(0)
    with tape.numpy_pass():
        grads = net.gradient(x.T, t.T)
    tape.keep_masks([], lambda r: True)
    _, by_hand = _by_hand(x, t, net.params, tape.masks, 1 / KEEP)
    for name in by_hand:
        np.testing.assert_allclose(grads[name], by_hand[name], rtol=1e-9, atol=1e-12)


def test_keep_probability_given_as_drop_probability_fails_and_is_named():
    x, t = binary_batch()
    report = check_port(FeaturesFirstDropoutNet(), FeaturesFirstPort(p=KEEP), x, t,
                        loss="binary_cross_entropy")
    assert not report.passed
    assert report.first_mismatch["phase"] in ("loss", "forward")
    codes = [d["code"] for d in report.diagnosis]
    assert codes == ["dropout_keep_prob"], report.to_text()
    assert "nn.Dropout(p=0.2)" in report.diagnosis[0]["text"]


def test_a_non_inverted_numpy_dropout_against_nn_dropout_fails_as_inverted():
    x, t = binary_batch()
    report = check_port(FeaturesFirstDropoutNet(inverted=False), FeaturesFirstPort(), x, t,
                        loss="binary_cross_entropy")
    assert not report.passed
    assert [d["code"] for d in report.diagnosis] == ["inverted_dropout"], report.to_text()


def test_a_draw_the_tape_cannot_answer_is_counted_and_its_rows_not_judged():
    x, t = binary_batch()
    report = check_port(FeaturesFirstDropoutNet(), UniformFilledPort(), x, t,
                        loss="binary_cross_entropy")
    nj = report.not_judged
    assert nj is not None and report.first_mismatch is None, report.to_text()
    assert {d["call"] for d in nj["draws"]} == {"torch.Tensor.uniform_"}
    assert {tuple(d["shape"]) for d in nj["draws"]} >= {(16, 8), (16, 6)}
    unjudged = [c for c in report.checks if not c.judged]
    assert len(unjudged) == nj["rows"] > 0
    # the loss and every gradient compare two random streams; the parameters do not
    assert {c.phase for c in unjudged} >= {"loss", "backward"}
    assert all(c.judged and c.passed for c in report.checks if c.phase == "parameters")
    # said everywhere a report is read
    assert "not judged" in report.verdict() and "could not be answered" in report.to_text()
    assert "torch.Tensor.uniform_" in report.to_text()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["not_judged"]["rows"] == nj["rows"]
    assert all(c["passed"] is None and c["judged"] is False for c in data["checks"] if not c["judged"])
    assert "## Not judged" in report.to_markdown()
    assert "not judged" in report._repr_html_() and "not judged" in repr(report)


def test_a_port_drawing_more_than_the_numpy_side_is_counted():
    """A third dropout the NumPy side never drew: the draw it asks for is not there."""
    x, t = binary_batch()
    port = FeaturesFirstPort()
    port.net = nn.Sequential(*port.net[:-1], nn.Dropout(0.5), nn.Sigmoid())
    report = check_port(FeaturesFirstDropoutNet(), port, x, t, loss="binary_cross_entropy")
    assert report.not_judged is not None
    assert [d["call"] for d in report.not_judged["draws"]][0] == "F.dropout"
    assert all(c.judged for c in report.checks if c.phase == "parameters")


# --- Neural Networks from Scratch style: layer objects, binomial dropout after a ReLU ----------

RATE = 0.1  # the fraction dropped, as the book's Layer_Dropout takes it


class DenseLayer:
    def __init__(self, n_in, n_out, rng):
        self.weights = 0.1 * rng.randn(n_in, n_out)
        self.biases = 0.1 * rng.randn(1, n_out)

    def forward(self, inputs):
        self.inputs = inputs
        self.output = inputs @ self.weights + self.biases

    def backward(self, dvalues):
        self.dweights = self.inputs.T @ dvalues
        self.dbiases = dvalues.sum(axis=0, keepdims=True)
        self.dinputs = dvalues @ self.weights.T


class ReluLayer:
    def forward(self, inputs):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)

    def backward(self, dvalues):
        self.dinputs = dvalues.copy()
        self.dinputs[self.inputs <= 0] = 0


class Layer_Dropout:
    def __init__(self, rate):
        self.rate = 1 - rate  # kept from here on as the success probability

    def forward(self, inputs):
        self.inputs = inputs
        self.binary_mask = np.random.binomial(1, self.rate, size=inputs.shape) / self.rate
        self.output = inputs * self.binary_mask

    def backward(self, dvalues):
        self.dinputs = dvalues * self.binary_mask


class SoftmaxCrossEntropy:
    def forward(self, inputs, y):
        e = np.exp(inputs - inputs.max(axis=1, keepdims=True))
        self.output = e / e.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log(self.output[np.arange(len(y)), y])))

    def backward(self, dvalues, y):
        self.dinputs = dvalues.copy()
        self.dinputs[np.arange(len(y)), y] -= 1
        self.dinputs /= len(y)


class LayersAdapter:
    def __init__(self, n_in=20, n_hidden=80, n_out=5, seed=1):
        rng = np.random.RandomState(seed)
        dense1, dense2 = DenseLayer(n_in, n_hidden, rng), DenseLayer(n_hidden, n_out, rng)
        self.layers = {"dense1": dense1, "relu1": ReluLayer(), "dropout1": Layer_Dropout(RATE),
                       "dense2": dense2}
        self.head = SoftmaxCrossEntropy()
        self.params = {"W1": dense1.weights, "b1": dense1.biases, "W2": dense2.weights, "b2": dense2.biases}

    def loss(self, x, t):
        for layer in self.layers.values():
            layer.forward(x)
            x = layer.output
        return self.head.forward(x, t.argmax(axis=1) if t.ndim == 2 else t)

    def gradient(self, x, t):
        labels = t.argmax(axis=1) if t.ndim == 2 else t
        self.loss(x, t)
        self.head.backward(self.head.output, labels)
        d = self.head.dinputs
        for layer in reversed(list(self.layers.values())):
            layer.backward(d)
            d = layer.dinputs
        d1, d2 = self.layers["dense1"], self.layers["dense2"]
        return {"W1": d1.dweights, "b1": d1.dbiases, "W2": d2.dweights, "b2": d2.dbiases}


def layers_port(p=RATE):
    return nn.Sequential(nn.Linear(20, 80), nn.ReLU(), nn.Dropout(p), nn.Linear(80, 5))


def class_batch(n=80, d=20, classes=5, seed=2):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d), rng.randint(0, classes, n)


def test_the_binomial_draw_is_the_mask_even_where_the_relu_gave_zero():
    """Where the ReLU output is 0 the output cannot tell kept from dropped: the draw can."""
    x, t = class_batch()
    net = LayersAdapter()
    from compare.port.capture import book_layer_capture, layer_items
    tape = DrawTape()
    with book_layer_capture(layer_items(net.layers)) as capture, tape.numpy_pass():
        net.loss(x, t)
    tape.keep_masks(capture.records, lambda r: r.kind == "Layer_Dropout")
    drawn = tape.numpy[0][1]
    np.testing.assert_array_equal(tape.masks[0], drawn != 0)
    zeros = capture.records[1].output == 0
    assert zeros.any() and (~tape.masks[0][zeros]).any()  # dropped units behind ReLU zeros
    assert tape.keep_by_key == {"dropout1": pytest.approx(1 - RATE)}


def test_right_port_of_binomial_dropout_after_relu_passes():
    x, t = class_batch()
    net = LayersAdapter()
    report = check_port(net, layers_port(), x, t)
    assert report.passed, report.to_text()
    assert report.not_judged is None
    rows = {c.where for c in report.checks}
    assert {"dropout1", "W1", "b1"} <= rows
    # independent truth: autograd with the drawn mask applied by hand equals the NumPy gradient
    np.random.seed(0)
    tape = DrawTape()
    with tape.numpy_pass():
        grads = net.gradient(x, t)
    mask = torch.tensor(tape.numpy[0][1] / (1 - RATE))
    w = {k: torch.tensor(v, requires_grad=True) for k, v in net.params.items()}
    h = torch.relu(torch.tensor(x) @ w["W1"] + w["b1"]) * mask
    loss = F.cross_entropy(h @ w["W2"] + w["b2"], torch.tensor(t))
    for name, g in zip(w, torch.autograd.grad(loss, list(w.values()))):
        np.testing.assert_allclose(grads[name], g.numpy(), rtol=1e-10, atol=1e-13)


def test_binomial_dropout_with_keep_as_drop_probability_fails_and_is_named():
    x, t = class_batch()
    report = check_port(LayersAdapter(), layers_port(p=1 - RATE), x, t)
    assert not report.passed
    assert report.first_mismatch["where"] == "dropout1"
    assert "dropout_keep_prob" in [d["code"] for d in report.diagnosis], report.to_text()


# --- training side by side, one draw per step ----------------------------------------------------

def _training_batches(n=48):
    x, t = binary_batch(n=n, seed=5)
    return x, t


def test_training_a_right_inline_dropout_port_shares_every_steps_draw():
    from compare.port.training import check_training
    x, t = _training_batches()
    report = check_training(FeaturesFirstDropoutNet(), FeaturesFirstPort(), x, t, steps=3,
                            batch_size=16, loss="binary_cross_entropy", progress=False)
    assert report.passed, report.to_text()
    assert report.not_judged is None
    assert any(c.phase == "training" for c in report.checks)


def test_training_on_draws_the_tape_cannot_answer_is_not_judged():
    from compare.port.training import check_training
    x, t = _training_batches()
    report = check_training(FeaturesFirstDropoutNet(), UniformFilledPort(), x, t, steps=3,
                            batch_size=16, loss="binary_cross_entropy", progress=False)
    training = [c for c in report.checks if c.phase == "training"]
    assert training and not any(c.judged for c in training)
    assert report.first_mismatch is None and "not judged" in report.verdict()
    assert "training:" in report.not_judged["text"]
