"""torch ports of ``book_vol2_lm.BetterRnnlm``.

Right: ``TwoModules`` (two ``nn.LSTM`` with ``nn.Dropout`` between them) and ``Stacked``
(one ``nn.LSTM(num_layers=2, dropout=p)``: torch drops between the layers inside the op),
each with ``fc.weight = embed.weight``, start each pass from zeros; ``Stateful`` carries
``(h, c)`` between calls and resets it in ``reset_state``.

Broken: ``untied`` (an ``nn.Linear`` of its own against the tied NumPy model),
``untied_scaled`` (that, and the embedding halved: the tie not the only difference) and
``TwoModules`` against ``book_vol2_lm.make_untied_lm`` (a tied port against an untied
model): the ``tied_weights`` trap.
"""
from torch import nn

from tests.styles.book_vol2_lm import HIDDEN, VOCAB, WORDVEC


class TwoModules(nn.Module):
    def __init__(self, V=VOCAB, D=WORDVEC, H=HIDDEN, p=0.5, tie=True):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.drop = nn.Dropout(p)
        self.lstm1 = nn.LSTM(D, H, batch_first=True)
        self.lstm2 = nn.LSTM(H, H, batch_first=True)
        self.fc = nn.Linear(H, V)
        if tie:
            self.fc.weight = self.embed.weight

    def forward(self, xs):
        h = self.drop(self.embed(xs))
        h, _ = self.lstm1(h)
        h, _ = self.lstm2(self.drop(h))
        return self.fc(self.drop(h))


class Stacked(nn.Module):
    def __init__(self, V=VOCAB, D=WORDVEC, H=HIDDEN, p=0.5):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.drop = nn.Dropout(p)
        self.lstm = nn.LSTM(D, H, num_layers=2, dropout=p, batch_first=True)
        self.fc = nn.Linear(H, V)
        self.fc.weight = self.embed.weight

    def forward(self, xs):
        h, _ = self.lstm(self.drop(self.embed(xs)))
        return self.fc(self.drop(h))


class Stateful(TwoModules):
    """Carries ``(h, c)`` between calls, as the stateful NumPy model does, with a
    ``reset_state``."""

    def __init__(self):
        super().__init__()
        self.states = [None, None]

    def forward(self, xs):
        h = self.drop(self.embed(xs))
        h, self.states[0] = self.lstm1(h, self.states[0])
        h, self.states[1] = self.lstm2(self.drop(h), self.states[1])
        self.states = [tuple(s.detach() for s in st) for st in self.states]
        return self.fc(self.drop(h))

    def reset_state(self):
        self.states = [None, None]


def two_modules():
    return TwoModules()


def stacked():
    return Stacked()


def stateful():
    return Stateful()


def untied():
    return TwoModules(tie=False)


def no_dropout():
    return TwoModules(p=0.0)


def stacked_no_dropout():
    return Stacked(p=0.0)


class UntiedScaled(TwoModules):
    """Untied, and the embedding's output halved: the tie is not the only difference."""

    def __init__(self):
        super().__init__(tie=False)

    def forward(self, xs):
        h = self.drop(0.5 * self.embed(xs))
        h, _ = self.lstm1(h)
        h, _ = self.lstm2(self.drop(h))
        return self.fc(self.drop(h))


def untied_scaled():
    return UntiedScaled()
