"""Properties of the training over windows: right ports drawn across the conventions that
part right code (the batch's layout in the LSTM, a cell loop, streams, window length,
clipping, the book's optimizers) pass; each planted bug is named at the step it enters.

Each draw is seeded by its index, so a failure names its settings and reruns alone.
"""
import numpy as np
import pytest
import torch
from torch import nn

from compare.port import check_training
from tests.test_port_rnn_training import CORPUS, _load

N_ = _load("numpy_lm")
BO = _load("book_optimizers")
TO = _load("torch_optimizers")
V, D, H = 10, 5, 4
OPTIMIZERS = {  # the book's list optimizer, torch's set alike, a learning rate that trains
    "SGD": (None, None, 0.5),
    "Momentum": (BO.Momentum, TO.momentum, 0.1),
    "AdaGrad": (BO.AdaGrad, TO.adagrad, 0.1),
    "RMSprop": (BO.RMSprop, TO.rmsprop, 0.01),
}
STEPS = 4


class StatefulPort(nn.Module):
    """``numpy_lm.Rnnlm`` as a learner ports it: ``layout`` "batch_first" (``nn.LSTM``
    reading ``(N, T, D)``), "seq_first" (``(T, N, D)``, transposed in and out) or "cell"
    (an ``nn.LSTMCell`` loop); the state carried detached. ``reset``: each window from
    zeros (a bug); ``freeze``: ``bias_hh`` frozen at 0 (else a bug: both biases train)."""

    def __init__(self, layout, reset=False, freeze=True):
        super().__init__()
        self.layout, self.reset = layout, reset
        self.embed = nn.Embedding(V, D)
        self.lstm = (nn.LSTMCell(D, H) if layout == "cell"
                     else nn.LSTM(D, H, batch_first=layout == "batch_first"))
        self.fc = nn.Linear(H, V)
        if freeze:
            bias_hh = self.lstm.bias_hh if layout == "cell" else self.lstm.bias_hh_l0
            with torch.no_grad():
                bias_hh.zero_()
            bias_hh.requires_grad_(False)
        self.state = None

    def forward(self, xs):
        if self.reset:
            self.state = None
        es = self.embed(xs)
        if self.layout == "cell":
            h, c = self.state if self.state is not None else (es.new_zeros(len(es), H),) * 2
            hs = []
            for t in range(es.shape[1]):
                h, c = self.lstm(es[:, t], (h, c))
                hs.append(h)
            hs, state = torch.stack(hs, dim=1), (h, c)
        elif self.layout == "seq_first":
            hs, state = self.lstm(es.transpose(0, 1), self.state)
            hs = hs.transpose(0, 1)
        else:
            hs, state = self.lstm(es, self.state)
        self.state = tuple(s.detach() for s in state)
        return self.fc(hs)

    def reset_state(self):
        self.state = None


def draw(k):
    rng = np.random.RandomState(k)
    name = list(OPTIMIZERS)[rng.randint(len(OPTIMIZERS))]
    return {"layout": ["batch_first", "seq_first", "cell"][rng.randint(3)],
            "batch": int(rng.choice([1, 2, 3, 5])), "time": int(rng.choice([2, 3, 5, 7])),
            "clip": [None, 0.05, 5.0][rng.randint(3)], "optimizer": name}


def run(settings, **port):
    numpy_optimizer, torch_optimizer, lr = OPTIMIZERS[settings["optimizer"]]
    return check_training(N_.make_rnnlm(), StatefulPort(settings["layout"], **port), CORPUS, None,
                          steps=STEPS, batch_size=settings["batch"], time_size=settings["time"],
                          lr=lr, max_grad_norm=settings["clip"], numpy_optimizer=numpy_optimizer,
                          torch_optimizer=torch_optimizer)


def _slow_after(n, count):
    return [pytest.param(k, marks=() if k < n else pytest.mark.slow) for k in range(count)]


@pytest.mark.parametrize("k", _slow_after(1, 8))
def test_a_right_port_drawn_across_the_conventions_passes(k):
    settings = draw(k)
    report = run(settings)
    assert report.passed, (settings, report.to_text())
    assert report.not_judged is None


@pytest.mark.parametrize("k", _slow_after(1, 4))
def test_both_biases_trained_are_named_double_bias_at_step_0(k):
    settings = draw(100 + k)
    report = run(settings, freeze=False)
    assert not report.passed
    assert report.first_mismatch["step"] == 0, settings
    assert [d["code"] for d in report.diagnosis] == ["double_bias"], (settings, report.to_text())


@pytest.mark.slow
@pytest.mark.parametrize("k", range(4))
def test_a_state_reset_each_window_is_named_state_reset_at_step_1(k):
    settings = draw(200 + k)
    report = run(settings, reset=True)
    assert not report.passed
    # the first window starts from zeros on both sides: they part at the second
    assert report.first_mismatch["step"] == 1, settings
    assert [d["code"] for d in report.diagnosis] == ["state_reset"], (settings, report.to_text())
