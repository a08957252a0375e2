"""The book's second volume, its larger models (written here in its style): the better
language model (two stacked LSTMs, dropout fresh per element and step, the output
affine tied to the embedding through its transpose) and word2vec's CBOW with negative
sampling. Each NumPy model against central differences of a float64 twin, each port's
autograd against the NumPy backprop after a hand-written map, ``check_port`` on the
right ports, and the ``tied_weights`` trap located and named."""
import numpy as np
import pytest
import torch
from torch import nn

from compare import check_port
from compare.port import stacked_dropout
from compare.port.draw_samples import Samples
from compare.port.reference.list_door import through_list_door
from compare.port.targets import PortSetupError
from tests.styles import book_vol2_lm as lm
from tests.styles import book_vol2_lm_ports as lm_ports
from tests.styles import book_vol2_w2v as w2v
from tests.styles import book_vol2_w2v_ports as w2v_ports

# the book's LSTM f,g,i,o blocks, in torch's order i,f,g,o
TORCH_FROM_BOOK = (2, 0, 1, 3)


def gates_to_torch(a, H):
    """A fused (.., 4H) NumPy array's gate blocks in torch's order, along the last axis."""
    blocks = [a[..., k * H:(k + 1) * H] for k in range(4)]
    return np.concatenate([blocks[k] for k in TORCH_FROM_BOOK], axis=-1)


def seeded_loss(model, xs, ts, seed=7):
    """The loss on one fixed draw of the dropout masks, from a fresh state."""
    model.reset_state()
    np.random.seed(seed)
    return float(model.forward(xs, ts))


def central(f, params, directions, h=1e-5):
    """Directional central differences of ``f`` (a function of the arrays changed in place)."""
    out = []
    for d in directions:
        for p, dp in zip(params, d):
            p += h * dp
        plus = f()
        for p, dp in zip(params, d):
            p -= 2 * h * dp
        minus = f()
        for p, dp in zip(params, d):
            p += h * dp
        out.append((plus - minus) / (2 * h))
    return np.array(out)


# --- BetterRnnlm: the NumPy model ------------------------------------------------------------

def test_better_rnnlm_backprop_with_the_tie_summed_matches_central_differences():
    model = lm.BetterRnnlm(dtype=np.float64)
    xs, ts = lm.tokens()
    door = through_list_door(model)
    assert list(door.params)[0] == "TimeEmbedding0.W" and "TimeAffine0.W" not in door.params
    np.random.seed(7)
    grads = door.gradient(xs, ts)  # door.gradient resets the state itself
    arrays = list(door.params.values())
    rng = np.random.RandomState(0)
    directions = [[rng.randn(*p.shape) for p in arrays] for _ in range(4)]
    numeric = central(lambda: seeded_loss(model, xs, ts), arrays, directions)
    claimed = [sum(float(np.sum(g * d)) for g, d in zip(grads.values(), dirs)) for dirs in directions]
    np.testing.assert_allclose(claimed, numeric, rtol=1e-6, atol=1e-9)
    # the embedding alone, element by element: its gradient is the sum of both uses
    W = door.params["TimeEmbedding0.W"]
    one = [[np.eye(W.size)[k].reshape(W.shape)] for k in range(W.size)]
    numeric_W = central(lambda: seeded_loss(model, xs, ts), [W], one).reshape(W.shape)
    np.testing.assert_allclose(grads["TimeEmbedding0.W"], numeric_W, rtol=1e-6, atol=1e-9)
    # neither use alone is the gradient
    assert not np.allclose(model.grads[0], numeric_W, atol=1e-4)
    assert not np.allclose(model.grads[7].T, numeric_W, atol=1e-4)


# --- BetterRnnlm: the ports' autograd against the NumPy backprop ---------------------------

class Masks(nn.Module):
    """The NumPy model's dropout masks, handed to the port in order."""

    def __init__(self, masks):
        super().__init__()
        self.masks = [torch.tensor(m) for m in masks]

    def forward(self, x):
        return x * self.masks.pop(0)


def load_by_hand(port, model, lstms):
    """The NumPy values copied into the port, every layout written out."""
    embed_W, *rest = model.params
    H = lm.HIDDEN
    with torch.no_grad():
        port.embed.weight.copy_(torch.tensor(embed_W))
        for module, layer, (Wx, Wh, b) in lstms:
            getattr(module, f"weight_ih_l{layer}").copy_(torch.tensor(gates_to_torch(Wx, H).T))
            getattr(module, f"weight_hh_l{layer}").copy_(torch.tensor(gates_to_torch(Wh, H).T))
            getattr(module, f"bias_ih_l{layer}").copy_(torch.tensor(gates_to_torch(b, H)))
            getattr(module, f"bias_hh_l{layer}").zero_()
        port.fc.bias.copy_(torch.tensor(model.params[8]))


def numpy_pass(model, xs, ts):
    model.reset_state()
    np.random.seed(7)
    loss = model.forward(xs, ts)
    model.backward()
    return loss, [layer.mask for layer in model.drop_layers]


def test_two_modules_port_autograd_matches_the_numpy_backprop_by_hand():
    model = lm.BetterRnnlm()
    xs, ts = lm.tokens()
    loss, masks = numpy_pass(model, xs, ts)
    port = lm_ports.TwoModules()
    assert port.fc.weight is port.embed.weight
    load_by_hand(port, model, [(port.lstm1, 0, model.params[1:4]), (port.lstm2, 0, model.params[4:7])])
    port.drop = Masks(masks)
    out = port(torch.tensor(xs))
    t_loss = nn.functional.cross_entropy(out.reshape(-1, lm.VOCAB), torch.tensor(ts).reshape(-1))
    t_loss.backward()
    assert abs(t_loss.item() - loss) <= 1e-4 * abs(loss)  # float32 round-off
    H = lm.HIDDEN
    tied = model.grads[0] + model.grads[7].T
    expected = {"embed.weight": tied, "fc.bias": model.grads[8]}
    for k, module in ((1, port.lstm1), (4, port.lstm2)):
        name = "lstm1" if k == 1 else "lstm2"
        expected[f"{name}.weight_ih_l0"] = gates_to_torch(model.grads[k], H).T
        expected[f"{name}.weight_hh_l0"] = gates_to_torch(model.grads[k + 1], H).T
        expected[f"{name}.bias_ih_l0"] = gates_to_torch(model.grads[k + 2], H)
    params = dict(port.named_parameters())
    for name, want in expected.items():
        got = params[name].grad.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_stacked_lstm_split_with_masks_equals_two_single_layer_lstms():
    """``stacked_dropout.split``: an ``nn.LSTM(num_layers=2, dropout=p)`` run a layer at a
    time with a given mask between, against two one-layer modules holding its weights."""
    torch.manual_seed(0)
    stacked = nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True).double()
    first = nn.LSTM(3, 4, batch_first=True).double()
    second = nn.LSTM(4, 4, batch_first=True).double()
    with torch.no_grad():
        for module, layer in ((first, 0), (second, 1)):
            for role in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(module, f"{role}_l0").copy_(getattr(stacked, f"{role}_l{layer}"))
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h0, c0 = torch.randn(2, 2, 4, dtype=torch.float64), torch.randn(2, 2, 4, dtype=torch.float64)
    mask = (torch.rand(2, 5, 4) > 0.5).double()
    args = (x, [h0, c0], stacked._flat_weights, True, 2, 0.5, True, False, True)
    out, h_n, c_n = stacked_dropout.split(torch.lstm, args, lambda y, p: y * mask / (1 - p))
    y1, (h1, c1) = first(x, (h0[:1], c0[:1]))
    y2, (h2, c2) = second(y1 * mask / 0.5, (h0[1:], c0[1:]))
    torch.testing.assert_close(out, y2, rtol=0, atol=0)
    torch.testing.assert_close(h_n, torch.cat([h1, h2]), rtol=0, atol=0)
    torch.testing.assert_close(c_n, torch.cat([c1, c2]), rtol=0, atol=0)
    assert stacked_dropout.draws(args, {})
    assert not stacked_dropout.draws(args[:6] + (False,) + args[7:], {})  # evaluation


def test_a_bidirectional_stack_is_not_split():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5, bidirectional=True)
    h = torch.zeros(4, 2, 4)
    args = (torch.zeros(5, 2, 3), [h, h], lstm._flat_weights, True, 2, 0.5, True, True, False)
    assert stacked_dropout.split(torch.lstm, args, lambda y, p: y) is None


# --- BetterRnnlm: the check ------------------------------------------------------------------

@pytest.mark.parametrize("port", ["two_modules", "stacked", "stateful"])
def test_right_ports_of_better_rnnlm_pass(port):
    xs, ts = lm.tokens()
    report = check_port(lm.make_lm(), getattr(lm_ports, port)(), xs, ts)
    assert report.passed, report.to_text()
    assert not report.to_dict().get("not_judged"), report.to_text()
    assert report.to_dict()["settings"]["dtype"] == "float32"
    rows = {c.where for c in report.checks if c.phase == "backward"}
    assert "TimeEmbedding0.W" in rows and "TimeLSTM1.Wx" in rows


# --- tied_weights ----------------------------------------------------------------------------

def test_an_untied_port_of_the_tied_model_is_named_tied_weights_at_the_embedding():
    xs, ts = lm.tokens()
    report = check_port(lm.make_lm(), lm_ports.untied(), xs, ts)
    assert not report.passed
    first = report.first_mismatch
    assert (first["phase"], first["where"], first["torch"]) == ("parameters", "TimeEmbedding0.W", "fc.weight")
    (found,) = report.diagnosis
    assert found["code"] == "tied_weights" and found["parameter"] == "TimeEmbedding0.W"
    assert "fc.weight = embed.weight" in found["text"]
    # the hypothesis, applied, reproduces: every other row of the check agrees
    assert all(c.passed for c in report.checks[1:]) and len(report.checks) > 20


def test_a_tied_port_of_an_untied_model_is_named_tied_weights_at_the_affine():
    xs, ts = lm.tokens()
    report = check_port(lm.make_untied_lm(), lm_ports.two_modules(), xs, ts)
    assert not report.passed
    assert report.first_mismatch["where"] == "TimeAffine0.W"
    (found,) = report.diagnosis
    assert found["code"] == "tied_weights" and "TimeEmbedding0.W.T" in found["text"]
    assert all(c.passed for c in report.checks[1:])


@pytest.mark.slow  # a few seconds: with the full suite
def test_an_untied_port_with_another_bug_is_refused_saying_the_tie():
    xs, ts = lm.tokens()
    with pytest.raises(PortSetupError) as err:
        check_port(lm.make_lm(), lm_ports.untied_scaled(), xs, ts)
    text = str(err.value)
    assert "ties TimeAffine0.W to TimeEmbedding0.W" in text and "not the only difference" in text
    assert "\n" not in text


def test_an_untied_port_of_an_untied_model_passes():
    xs, ts = lm.tokens()
    report = check_port(lm.make_untied_lm(), lm_ports.untied(), xs, ts)
    assert report.passed, report.to_text()


# --- word2vec: CBOW with negative sampling ---------------------------------------------------

def test_cbow_backprop_with_shared_arrays_summed_matches_central_differences():
    model = w2v.CBOW(dtype=np.float64)
    x, t = w2v.contexts_and_target()
    door = through_list_door(model)
    assert list(door.params) == ["Embedding0.W", "EmbeddingDot0.W"]  # 2 + 4 listings, 2 arrays
    np.random.seed(3)
    grads = door.gradient(x, t)

    def loss():
        np.random.seed(3)  # the same negatives on every pass
        return float(model.forward(x, t))
    for name, W in door.params.items():
        one = [[np.eye(W.size)[k].reshape(W.shape)] for k in range(W.size)]
        numeric = central(loss, [W], one).reshape(W.shape)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-9)


def numpy_negatives(model, x, t, seed=3):
    np.random.seed(seed)
    loss = model.forward(x, t)
    model.backward()
    np.random.seed(seed)
    return loss, model.ns_loss.sampler.get_negative_sample(t)


def test_cbow_port_autograd_matches_the_numpy_backprop_by_hand():
    model = w2v.CBOW()
    x, t = w2v.contexts_and_target()
    loss, negative = numpy_negatives(model, x, t)
    port = w2v_ports.Multinomial()
    with torch.no_grad():
        port.in_embed.weight.copy_(torch.tensor(model.params[0]))
        port.out_embed.weight.copy_(torch.tensor(model.params[2]))
    port.negatives = lambda target: torch.tensor(negative)
    t_loss = port.loss(torch.tensor(x), torch.tensor(t))
    t_loss.backward()
    # the book's 1e-7 in each of its 4 logs: below float32's round-off of the loss
    assert abs(t_loss.item() - loss) <= 1e-4 * abs(loss)
    W_in = sum(model.grads[:2])
    W_out = sum(model.grads[2:])
    for got, want in ((port.in_embed.weight.grad, W_in), (port.out_embed.weight.grad, W_out)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_numpy_choice_draws_answer_torch_multinomial_in_any_grouping():
    draws = [np.array([3, 1]), np.array([0, 2]), np.array([2, 3])]
    p = np.full((3, 4), 0.25)
    np.testing.assert_array_equal(Samples(draws).multinomial(p, 2), [[3, 1], [0, 2], [2, 3]])
    whole = Samples([np.array([[3, 1], [0, 2], [2, 3]])])
    assert [list(whole.multinomial(p[0], 2)) for _ in range(3)] == [[3, 1], [0, 2], [2, 3]]
    assert whole.multinomial(p[0], 2) is None  # none left


def test_a_draw_the_port_could_not_make_is_not_answered():
    p = np.full((2, 4), 0.25)
    p[1, 2] = 0  # the second row's target
    samples = Samples([np.array([0, 1]), np.array([2, 3])])
    assert samples.multinomial(p, 2) is None
    assert samples.cursor == 0  # nothing taken
    assert Samples([np.array([5])]).randint(0, 4, (1,)) is None


@pytest.mark.parametrize("port", ["multinomial", "per_row"])
def test_right_ports_of_cbow_pass_on_the_numpy_negatives(port):
    x, t = w2v.contexts_and_target()
    report = check_port(w2v.make_cbow(), getattr(w2v_ports, port)(), x, t, loss="model")
    assert report.passed and not report.not_judged, report.to_text()
    rows = {c.where for c in report.checks if c.phase == "backward"}
    assert {"Embedding0.W", "EmbeddingDot0.W"} <= rows


def test_a_port_drawing_more_negatives_is_not_judged_past_the_draws_and_says_so():
    x, t = w2v.contexts_and_target()
    report = check_port(w2v.make_cbow(), w2v_ports.Multinomial(k=w2v.SAMPLES + 1), x, t, loss="model")
    missed = report.not_judged
    assert missed and missed["draws"][0]["call"] == "torch.multinomial"
    assert missed["draws"][0]["shape"] == [len(t), w2v.SAMPLES + 1]
    assert "np.random.choice" in missed["text"]
    assert not any(c.phase == "loss" and c.judged for c in report.checks)
