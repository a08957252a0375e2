"""The book's BetterRnnlm trained over a corpus's windows: dropout drawn at every window and
a weight tied between the embedding and the output layer (``window_training.py``).

The NumPy side draws its masks from ``numpy.random`` at every window; the port's
``nn.Dropout`` is answered with them. The truth the check is held to is written here: the
book's trainer loop in NumPy (``remove_duplicate`` folding the transposed tie's gradient
into the embedding's), and a torch loop that multiplies by those very masks by hand.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compare.port import check_training
from tests.test_port_rnn_training import (B, CORPUS, LR, T, V, _load, book_clip_grads,
                                          book_windows, fgio_to_ifgo, float32_training_bound)

N_ = _load("numpy_lm")
P = _load("torch_train")
TO = _load("torch_optimizers")
SEED = 0  # check_training's default: numpy.random seeded so before the first window
TIED = 7  # BetterRnnlm's params: embed_W, (Wx, Wh, b) x 2, embed_W.T, affine_b


def numpy_better_loop(steps, max_grad_norm=None, lr=LR):
    """The book's trainer on BetterRnnlm: each window's loss, the masks drawn, the
    parameters at the end (the tied transpose dropped, its gradient added to the
    embedding's)."""
    np.random.seed(SEED)
    model = N_.BetterRnnlm()
    losses, masks = [], []
    for x, t in book_windows(CORPUS, B, T, steps):
        losses.append(float(model.forward(x, t)))
        masks.append([layer.mask.copy() for layer in model.drop_layers])
        model.backward()
        grads = [g.copy() for g in model.grads]
        grads[0] += grads[TIED].T
        del grads[TIED]
        params = [p for i, p in enumerate(model.params) if i != TIED]
        if max_grad_norm is not None:
            book_clip_grads(grads, max_grad_norm)
        for p, g in zip(params, grads):
            p -= lr * g
    return losses, masks, [p.copy() for p in params]


def torch_better_loop(masks, max_grad_norm=None, lr=LR):
    """The port's modules, trained by a loop that multiplies by the NumPy masks itself."""
    port = P.BetterLstmPort()
    np_params = N_.BetterRnnlm().params
    with torch.no_grad():
        port.embed.weight.copy_(torch.from_numpy(np_params[0]))
        for k, lstm in enumerate((port.lstm1, port.lstm2)):
            Wx, Wh, b = np_params[1 + 3 * k: 4 + 3 * k]
            lstm.weight_ih_l0.copy_(torch.from_numpy(fgio_to_ifgo(Wx).T.copy()))
            lstm.weight_hh_l0.copy_(torch.from_numpy(fgio_to_ifgo(Wh).T.copy()))
            lstm.bias_ih_l0.copy_(torch.from_numpy(fgio_to_ifgo(b)))
        port.fc.bias.copy_(torch.from_numpy(np_params[8]))
    trained = [p for p in port.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trained, lr=lr)
    states, losses = [None, None], []
    for (x, t), (m0, m1, m2) in zip(book_windows(CORPUS, B, T, len(masks)), masks):
        optimizer.zero_grad()
        h = port.embed(torch.from_numpy(x).long()) * torch.from_numpy(m0)
        h, s1 = port.lstm1(h, states[0])
        h, s2 = port.lstm2(h * torch.from_numpy(m1), states[1])
        scores = port.fc(h * torch.from_numpy(m2))
        states = [tuple(s.detach() for s in state) for state in (s1, s2)]
        loss = F.cross_entropy(scores.reshape(-1, V), torch.from_numpy(t).long().reshape(-1))
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trained, max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
    params = [port.embed.weight]
    for lstm in (port.lstm1, port.lstm2):
        params += [lstm.weight_ih_l0.T, lstm.weight_hh_l0.T, lstm.bias_ih_l0 + lstm.bias_hh_l0]
    params.append(port.fc.bias)
    to_book = [lambda a: a] + [fgio_to_ifgo_inverse] * 6 + [lambda a: a]
    return losses, [f(p.detach().numpy()) for f, p in zip(to_book, params)]


def fgio_to_ifgo_inverse(a):
    i, f, g, o = np.split(a, 4, axis=-1)
    return np.concatenate([f, g, i, o], axis=-1)


def _max_rel(expected, actual):
    return max(float(np.max(np.abs(a - e)) / np.max(np.abs(e))) for e, a in zip(expected, actual))


@pytest.mark.slow
@pytest.mark.parametrize("clip", [None, 0.25])
def test_the_better_port_trains_as_the_book_on_the_numpy_masks(clip):
    """Independent of the check: the book's loop and a torch loop on its masks agree."""
    steps = 10
    np_losses, masks, np_params = numpy_better_loop(steps, clip)
    assert all(0 < m.mean() < 2 for ms in masks for m in ms)  # drawn: neither all kept nor none
    t_losses, t_params = torch_better_loop(masks, clip)
    np.testing.assert_allclose(t_losses, np_losses, rtol=float32_training_bound(steps))
    assert _max_rel(np_params, t_params) <= float32_training_bound(steps)


@pytest.mark.slow
@pytest.mark.parametrize("clip", [None, 0.25])
def test_the_better_port_passes_10_windows_on_the_books_draws(clip):
    steps = 10
    report = check_training(N_.make_better_rnnlm(), P.make_better(), CORPUS, None, steps=steps,
                            batch_size=B, time_size=T, lr=LR, max_grad_norm=clip, seed=SEED)
    assert report.passed, report.to_text()
    assert report.not_judged is None
    # the NumPy run the check made is the book's loop, masks and all
    np_losses = numpy_better_loop(steps, clip)[0]
    np.testing.assert_array_equal(report.training["loss_numpy"], np_losses)
    states = [r for r in report.checks if r.phase == "training" and r.where.startswith("state")]
    assert len(states) == 4  # h and c of both LSTM layers, compared at every window


def test_a_tied_weight_held_twice_by_the_optimizer_is_named_tied_weights():
    report = check_training(N_.make_better_rnnlm(), P.make_better(), CORPUS, None, steps=3,
                            batch_size=B, time_size=T, lr=LR, first_batch_check=False,
                            torch_optimizer=TO.sgd_by_layer)
    assert not report.passed
    assert report.first_mismatch["step"] == 0
    assert report.first_mismatch["where"] == "TimeEmbedding0.W"
    assert [d["code"] for d in report.diagnosis] == ["tied_weights"]
    assert "embed.weight twice" in report.diagnosis[0]["text"]


def test_the_tied_weight_held_twice_moves_twice():
    """What the trap says, by hand: one SGD step with the tensor listed twice moves it by
    twice the gradient."""
    port = P.make_better()
    optimizer = TO.sgd_by_layer(port, lr=1.0)
    held = [p for g in optimizer.param_groups for p in g["params"]]
    assert sum(p is port.embed.weight for p in held) == 2
    before = port.embed.weight.detach().clone()
    port.embed.weight.grad = torch.ones_like(before)
    with pytest.warns(UserWarning, match="duplicate parameters"):
        torch.optim.SGD(held, lr=1.0)
    optimizer.step()
    torch.testing.assert_close(port.embed.weight.detach(), before - 2)


def test_a_port_drawing_what_the_numpy_side_did_not_is_not_judged():
    """A draw of another shape cannot be answered with the NumPy mask: counted and said."""
    class OtherShape(P.BetterLstmPort):
        def forward(self, xs):
            keep = (torch.rand(xs.shape[0], 1, self.embed.embedding_dim) > 0.5).float() * 2
            h, s1 = self.lstm1(self.embed(xs) * keep, self.states[0])
            h, s2 = self.lstm2(self.drop(h), self.states[1])
            self.states = [tuple(s.detach() for s in st) for st in (s1, s2)]
            return self.fc(self.drop(h))

    report = check_training(N_.make_better_rnnlm(), OtherShape(), CORPUS, None, steps=2,
                            batch_size=B, time_size=T, lr=LR, first_batch_check=False)
    assert report.not_judged is not None and report.not_judged["rows"] > 0
    assert report.first_mismatch is None and report.diagnosis == []


class UntiedBetter(P.BetterLstmPort):
    """The output layer keeps a weight of its own against the tied NumPy model."""

    def __init__(self):
        super().__init__()
        self.fc.weight = torch.nn.Parameter(self.embed.weight.detach().clone())


def test_an_untied_port_is_named_at_the_first_window_and_not_trained():
    report = check_training(N_.make_better_rnnlm(), UntiedBetter(), CORPUS, None, steps=3,
                            batch_size=B, time_size=T, lr=LR)
    assert not report.passed
    assert report.first_mismatch["phase"] == "parameters"
    assert [d["code"] for d in report.diagnosis] == ["tied_weights"]
    assert any("not run" in n for n in report.notes)


class StackedBetter(torch.nn.Module):
    """BetterRnnlm's port with one ``nn.LSTM(num_layers=2, dropout=p)``: torch drops between
    the layers inside the op, answered by the book's middle mask."""

    def __init__(self, V=10, H=5, p=0.5):
        super().__init__()
        self.embed = torch.nn.Embedding(V, H)
        self.drop = torch.nn.Dropout(p)
        self.lstm = torch.nn.LSTM(H, H, num_layers=2, dropout=p, batch_first=True)
        for name, param in self.lstm.named_parameters():
            if name.startswith("bias_hh"):
                with torch.no_grad():
                    param.zero_()
                param.requires_grad_(False)
        self.fc = torch.nn.Linear(H, V)
        self.fc.weight = self.embed.weight
        self.state = None

    def forward(self, xs):
        hs, state = self.lstm(self.drop(self.embed(xs)), self.state)
        self.state = tuple(s.detach() for s in state)
        return self.fc(self.drop(hs))

    def reset_state(self):
        self.state = None


@pytest.mark.slow
def test_a_stacked_port_passes_its_layers_states_compared():
    report = check_training(N_.make_better_rnnlm(), StackedBetter(), CORPUS, None, steps=5,
                            batch_size=B, time_size=T, lr=LR, max_grad_norm=0.25)
    assert report.passed, report.to_text()
    assert report.not_judged is None
    states = sorted(r.torch for r in report.checks if r.where.startswith("state"))
    assert states == ["lstm c_n[0]", "lstm c_n[1]", "lstm h_n[0]", "lstm h_n[1]"]
