"""cs231n assignment 3's captioning model through ``compare port`` (``examples/captioning``,
written here in cs231n's style).

Against independent truth: the NumPy model's backprop against central differences of its
own loss, element by element; each right torch port, loaded by a map written out here (the
LSTM's gate blocks i,f,o,g moved to torch's i,f,g,o by hand, ``bias_hh`` held at 0),
against the NumPy loss and backprop through autograd. Then the check: both right ports
pass, with a row per layer; each planted bug fails where it is, named where a code exists.

Tolerances: ``compare.parity``'s. A central difference ``D(h)`` is allowed its round-off
``4 eps |L| / h`` (the loss is a sum of positive cross-entropies: ``|L|`` is the size of
what it sums) and a truncation bounded from ``D(h)`` and ``D(2h)``
(``richardson_truncation``). Two float64 implementations of the same arithmetic agree to
the analytic tolerance (``rtol 1e-10``): its derivation covers sums of up to 784 products,
and every sum here is shorter (N*T = 24 steps, at most 16 gate columns), the recurrence
adding one product with a Jacobian of norm below 1 (tanh', sigmoid') per step.
"""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from compare import check_port
from compare.parity import richardson_truncation, roundoff, tolerance
from compare.port.reference.shapes import returns_loss_and_grads
from compare.port.targets import PortSetupError

ROOT = Path(__file__).resolve().parents[1]
ANALYTIC = tolerance("analytic", "float64")
H = 1e-5


def _example(name):
    path = ROOT / "examples" / "captioning" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"captioning_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the layer functions are looked up in it by name
    spec.loader.exec_module(module)
    return module


nc = _example("numpy_captioning")
tc = _example("torch_captioning")
MAKERS = {"rnn": (nc.make_rnn, tc.make_rnn_port), "lstm": (nc.make_lstm, tc.make_lstm_port)}


def batch():
    return nc.make_batch()


# --- the NumPy model against central differences --------------------------------------------

def _central(f, p, h):
    out = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + h
        up = f()
        p[i] = old - h
        down = f()
        p[i] = old
        out[i] = (up - down) / (2 * h)
    return out


@pytest.mark.parametrize("cell", [pytest.param("rnn", marks=pytest.mark.slow), "lstm"])
def test_numpy_backprop_against_central_differences(cell):
    model = MAKERS[cell][0]()
    x, t = batch()
    assert (t == nc.WORD_TO_IDX["<NULL>"]).any(), "the batch holds padding"
    loss, grads = model.loss(x, t)
    assert set(grads) == set(model.params)

    def f():
        return model.loss(x, t)[0]
    r = roundoff("float64", H, value_scale=abs(loss))
    for name, p in model.params.items():
        d_h, d_2h = _central(f, p, H), _central(f, p, 2 * H)
        bound = r + richardson_truncation(d_h, d_2h, r)
        gap = np.abs(grads[name] - d_h)
        assert np.all(gap <= bound), (name, float(gap.max()), float(bound.max()))


def test_padding_is_left_out_and_the_sum_divided_by_n():
    """The NumPy loss by its definition, from the scores: the cross-entropy of the words
    that are not <NULL>, summed, over N (a padding word's score moves nothing)."""
    model = nc.make_lstm()
    x, t = batch()
    loss, grads = model.loss(x, t)
    scores = _numpy_scores(model, x, t)
    targets = t[:, 1:]
    log_p = scores - np.log(np.exp(scores).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)[..., 0]
    words = targets != nc.WORD_TO_IDX["<NULL>"]
    assert abs(loss - (-picked[words].sum() / len(x))) <= 1e-12 * abs(loss)


def _numpy_scores(model, x, t):
    p = model.params
    h0 = x @ p["W_proj"] + p["b_proj"]
    emb = p["W_embed"][t[:, :-1]]
    forward = nc.lstm_forward if model.cell_type == "lstm" else nc.rnn_forward
    h, _ = forward(emb, h0, p["Wx"], p["Wh"], p["b"])
    return h @ p["W_vocab"] + p["b_vocab"]


# --- each right port against the NumPy model, by a map written out here ---------------------

def _ifog_to_ifgo(a, axis):
    i, f, o, g = np.split(a, 4, axis=axis)
    return np.concatenate([i, f, g, o], axis=axis)


def _ifgo_to_ifog(a, axis):
    i, f, g, o = np.split(a, 4, axis=axis)
    return np.concatenate([i, f, o, g], axis=axis)


def _same(a, axis):
    return a


def load_by_hand(port, params, cell):
    gates = _ifog_to_ifgo if cell == "lstm" else _same
    values = {"proj.weight": params["W_proj"].T, "proj.bias": params["b_proj"],
              "embed.weight": params["W_embed"],
              "cell.weight_ih_l0": gates(params["Wx"], 1).T,
              "cell.weight_hh_l0": gates(params["Wh"], 1).T,
              "cell.bias_ih_l0": gates(params["b"], 0),
              "cell.bias_hh_l0": np.zeros_like(params["b"]),
              "vocab.weight": params["W_vocab"].T, "vocab.bias": params["b_vocab"]}
    port.double()
    with torch.no_grad():
        for name, p in port.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(values[name])))


def grads_by_hand(port, cell):
    g = {n: p.grad.numpy() for n, p in port.named_parameters()}
    back = _ifgo_to_ifog if cell == "lstm" else _same
    # both biases enter the one sum: each has the gradient of the NumPy b (autograd sums
    # the two in its own order)
    np.testing.assert_allclose(g["cell.bias_hh_l0"], g["cell.bias_ih_l0"], rtol=ANALYTIC.rtol,
                               atol=ANALYTIC.atol)
    return {"W_proj": g["proj.weight"].T, "b_proj": g["proj.bias"], "W_embed": g["embed.weight"],
            "Wx": back(g["cell.weight_ih_l0"].T, 1), "Wh": back(g["cell.weight_hh_l0"].T, 1),
            "b": back(g["cell.bias_ih_l0"], 0),
            "W_vocab": g["vocab.weight"].T, "b_vocab": g["vocab.bias"]}


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_right_port_autograd_against_numpy_backprop(cell):
    make_numpy, make_port = MAKERS[cell]
    model, port = make_numpy(), make_port()
    x, t = batch()
    loss, grads = model.loss(x, t)
    load_by_hand(port, model.params, cell)
    port_loss = port.loss(torch.from_numpy(x), torch.from_numpy(t))
    port_loss.backward()
    np.testing.assert_allclose(port_loss.item(), loss, rtol=ANALYTIC.rtol, atol=ANALYTIC.atol)
    for name, g in grads_by_hand(port, cell).items():
        np.testing.assert_allclose(g, grads[name], rtol=ANALYTIC.rtol, atol=ANALYTIC.atol,
                                   err_msg=name)


def test_the_hand_map_is_needed():
    """Loaded in cs231n's gate order as it is, the port computes something else: the
    permutation above is no identity on these values."""
    model, port = nc.make_lstm(), tc.make_lstm_port()
    x, t = batch()
    loss, _ = model.loss(x, t)
    load_by_hand(port, {**model.params, "Wx": _ifgo_to_ifog(model.params["Wx"], 1)}, "lstm")
    with torch.no_grad():
        port_loss = port.loss(torch.from_numpy(x), torch.from_numpy(t)).item()
    assert abs(port_loss - loss) > 1e3 * ANALYTIC.rtol * abs(loss)


# --- the check -------------------------------------------------------------------------------

class EarlyReturn(nc.CaptioningRNN):
    """A loss that returns something else for a call the check never makes."""

    def loss(self, features, captions):
        if captions is None:
            return None
        loss, grads = super().loss(features, captions)
        return loss, grads


class HandedOn(nc.CaptioningRNN):
    """The pair handed on from another call: not seen in the source."""

    def loss(self, features, captions):
        return super().loss(features, captions)


class BookShape(nc.CaptioningRNN):
    def loss(self, x, t):
        return super().loss(x, t)[0]

    def gradient(self, x, t):
        return super().loss(x, t)[1]


def test_the_captioning_door_is_recognised_by_the_signature_and_the_return():
    assert returns_loss_and_grads(nc.make_lstm())
    assert returns_loss_and_grads(EarlyReturn(nc.WORD_TO_IDX, **nc.SIZES))
    assert not returns_loss_and_grads(BookShape(nc.WORD_TO_IDX, **nc.SIZES))


@pytest.mark.slow
def test_a_pair_handed_on_is_checked_with_numerical_gradients():
    """The door does not see the pair in the source: the loss is still read off it, and the
    NumPy gradients are central differences of it; the right port passes all the same."""
    model = HandedOn(nc.WORD_TO_IDX, cell_type="lstm", **nc.SIZES)
    assert not returns_loss_and_grads(model)
    report = check(model, tc.make_lstm_port())
    assert report.passed, report.to_text()
    assert report.settings["gradients"].startswith("central differences of the NumPy loss")

class DefaultCaptions(nc.CaptioningRNN):
    """``loss(features, captions=None)``: the assignment-2 shape's default, with captions."""

    def loss(self, features, captions=None):
        return super().loss(features, captions)


def test_captions_are_handed_on_as_token_ids_where_the_loss_takes_a_default():
    # integer captions (N, T+1) are no one-hot rows: read as labels they would lose a column
    report = check(DefaultCaptions(nc.WORD_TO_IDX, cell_type="lstm", **nc.SIZES), tc.make_lstm_port())
    assert report.passed, report.to_text()


def check(numpy_model, port, **kwargs):
    x, t = batch()
    return check_port(numpy_model, port, x, t, loss="model", **kwargs)


def _codes(report):
    return [d["code"] for d in report.diagnosis]


def test_right_lstm_port_passes_with_a_row_per_layer():
    report = check(nc.make_lstm(), tc.make_lstm_port())
    assert report.passed, report.to_text()
    pairs = {p.numpy: p for p in report.pairing}
    # the gate order read off the values is cs231n's, as the hand map writes it
    assert pairs["Wx"].gate_names == (("i", "f", "o", "g"), ("i", "f", "g", "o"))
    assert pairs["b"].summed == ("cell.bias_hh_l0",)
    forward = {(c.where, c.torch) for c in report.checks if c.phase == "forward"}
    # the port embeds the captions before it projects the features: paired all the same
    assert forward == {("affine1", "proj"), ("word_embedding1", "embed"), ("lstm1", "cell"),
                       ("temporal_affine1", "vocab")}, forward
    backward = {c.where for c in report.checks if c.phase == "backward"}
    assert set(nc.make_lstm().params) | {"lstm1 (output)", "temporal_affine1 (output)"} <= backward


@pytest.mark.slow
def test_right_rnn_port_passes():
    report = check(nc.make_rnn(), tc.make_rnn_port())
    assert report.passed, report.to_text()
    # b_proj (H,) has the shape of the RNN's b (1*H,): paired by its name with proj
    assert {p.numpy: p.torch for p in report.pairing}["b_proj"] == "proj.bias"


def test_forward_that_takes_more_than_the_batch_needs_the_ports_loss():
    x, t = batch()
    with pytest.raises(PortSetupError, match="--loss model"):
        check_port(nc.make_lstm(), tc.make_lstm_port(), x, t)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_token_mean_is_named_loss_mask_at_the_loss(cell):
    make_numpy = MAKERS[cell][0]
    port = tc.make_lstm_token_mean() if cell == "lstm" else tc.make_rnn_token_mean()
    report = check(make_numpy(), port)
    assert not report.passed
    # the LSTM's gate order is still read right: the loss is where the two part
    assert report.first_mismatch["phase"] == "loss", report.to_text()
    assert _codes(report) == ["loss_mask"], report.to_text()
    entry = report.diagnosis[0]
    assert entry["reduction"] == {"port": "token mean", "numpy": "sum / N"}
    assert entry["null"] == nc.WORD_TO_IDX["<NULL>"]


@pytest.mark.slow
def test_padding_counted_is_named_loss_mask():
    report = check(nc.make_lstm(), tc.make_lstm_no_mask())
    assert not report.passed
    assert report.first_mismatch["phase"] == "loss"
    assert _codes(report) == ["loss_mask"], report.to_text()
    assert report.diagnosis[0]["reduction"] == {"port": "all / N", "numpy": "sum / N"}


@pytest.mark.slow
def test_h0_left_at_zero_is_located_at_the_lstm():
    report = check(nc.make_lstm(), tc.make_lstm_zero_state())
    assert not report.passed
    first = report.first_mismatch
    assert (first["phase"], first["where"], first["torch"]) == ("forward", "lstm1", "cell")
    assert "h0" in first["detail"] and "no initial hidden state" in first["detail"]
    unused = {d["parameter"] for d in report.diagnosis if d["code"] == "unused"}
    assert unused == {"W_proj", "b_proj"}, report.to_text()
    # no order gives the NumPy LSTM's output with h0 at zero: cs231n's own order is kept
    pairs = {p.numpy: p for p in report.pairing}
    assert pairs["Wx"].gate_names[0] == ("i", "f", "o", "g")
    assert "loss_mask" not in _codes(report)


class ZeroStateTokenMean(tc.ZeroStatePort, tc.TokenMeanPort):
    """Two bugs: the reduction alone cannot reproduce the NumPy gradients."""


@pytest.mark.slow
def test_loss_mask_not_named_where_its_fix_does_not_reproduce():
    port = ZeroStateTokenMean(**tc.SIZES, cell_type="lstm")
    report = check(nc.make_lstm(), port)
    assert not report.passed
    assert "loss_mask" not in _codes(report), report.to_text()


class TimeFirst(tc.CaptioningPort):
    """nn.LSTM left at batch_first=False and handed (N, T, D): with N == T it runs."""

    def __init__(self, **sizes):
        super().__init__(**sizes, cell_type="lstm")
        self.cell = torch.nn.LSTM(sizes["wordvec_dim"], sizes["hidden_dim"])


@pytest.mark.slow
def test_batch_first_is_named_through_the_ports_own_loss():
    x, t = nc.make_batch(n=6, steps=6)  # N == T: the port's pass runs, on the wrong axis
    report = check_port(nc.make_lstm(), TimeFirst(**tc.SIZES), x, t, loss="model")
    assert not report.passed
    assert report.first_mismatch["where"] == "lstm1"
    assert _codes(report) == ["batch_first"], report.to_text()
