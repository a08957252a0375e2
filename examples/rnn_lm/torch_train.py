"""A PyTorch port of ``numpy_lm.Rnnlm`` that trains as the book's ``RnnlmTrainer`` trains it.

Over consecutive windows of a corpus the book's stateful ``TimeLSTM`` carries ``h`` and
``c`` from one window into the next, and backpropagates through one window only. The port
does the same: it keeps ``(h, c)`` between calls, detached, so that the next window starts
from the state and the gradient stops at the window's edge.

torch's ``nn.LSTM`` holds two biases, ``bias_ih`` and ``bias_hh``, where the book's LSTM
has one ``b``. Their sum is what the LSTM adds; trained both, the sum moves at twice the
rate of ``b``. The port freezes ``bias_hh`` at zero (``requires_grad_(False)``), so that
``bias_ih`` is the book's ``b`` and trains as it does.

=====================  ==========================================================
factory                the port
=====================  ==========================================================
make_lstm              the right port: state carried and detached, ``bias_hh`` frozen
make_double_bias       the same with both biases trained (a trap: ``double_bias``)
make_state_reset       the same starting each window from zeros (a trap: ``state_reset``)
make_better            ``numpy_lm.BetterRnnlm``'s port: two ``nn.LSTM`` with
                       ``nn.Dropout`` before, between and after, ``fc.weight`` tied
                       to ``embed.weight``
=====================  ==========================================================

``torch_optimizers.py`` builds the optimizers; ``sgd_by_layer`` lists each layer's
parameters, so the tied weight is handed to the optimizer twice (a trap: ``tied_weights``).

    python examples/rnn_lm/make_corpus.py      # writes examples/rnn_lm/corpus.npz
    python -m compare port examples/rnn_lm/numpy_lm.py:make_rnnlm \\
        examples/rnn_lm/torch_train.py:make_lstm --data examples/rnn_lm/corpus.npz \\
        --batch 4 --time-size 5 --steps 5 --lr 0.5
"""
import torch
from torch import nn


class TrainedLstmPort(nn.Module):
    def __init__(self, V=10, D=5, H=4, freeze_bias_hh=True):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.lstm = nn.LSTM(D, H, batch_first=True)
        self.fc = nn.Linear(H, V)
        if freeze_bias_hh:
            with torch.no_grad():
                self.lstm.bias_hh_l0.zero_()
            self.lstm.bias_hh_l0.requires_grad_(False)
        self.state = None

    def forward(self, xs):
        hs, state = self.lstm(self.embed(xs), self.state)
        # carried into the next window, outside this window's graph
        self.state = tuple(s.detach() for s in state)
        return self.fc(hs)

    def reset_state(self):
        self.state = None


class StateResetPort(TrainedLstmPort):
    """Forgets the state at each call: every window starts from zeros."""

    def forward(self, xs):
        self.state = None
        return super().forward(xs)


def _frozen_bias_hh(lstm):
    with torch.no_grad():
        lstm.bias_hh_l0.zero_()
    lstm.bias_hh_l0.requires_grad_(False)


class BetterLstmPort(nn.Module):
    def __init__(self, V=10, D=5, H=5, p=0.5):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.drop = nn.Dropout(p)  # the book's TimeDropout is inverted too: x * mask / (1 - p)
        self.lstm1 = nn.LSTM(D, H, batch_first=True)
        self.lstm2 = nn.LSTM(H, H, batch_first=True)
        for lstm in (self.lstm1, self.lstm2):
            _frozen_bias_hh(lstm)
        self.fc = nn.Linear(H, V)
        self.fc.weight = self.embed.weight  # one tensor: the book's TimeAffine(embed_W.T, b)
        self.states = [None, None]

    def forward(self, xs):
        h = self.drop(self.embed(xs))
        h, state1 = self.lstm1(h, self.states[0])
        h, state2 = self.lstm2(self.drop(h), self.states[1])
        self.states = [tuple(s.detach() for s in state) for state in (state1, state2)]
        return self.fc(self.drop(h))

    def reset_state(self):
        self.states = [None, None]


def make_lstm():
    return TrainedLstmPort()


def make_double_bias():
    return TrainedLstmPort(freeze_bias_hh=False)


def make_state_reset():
    return StateResetPort()


def make_better():
    return BetterLstmPort()
