"""Right PyTorch ports of ``numpy_lm.SimpleRnnlm`` and ``numpy_lm.Rnnlm``, as porters write
them. Each ``forward(xs)`` takes the token ids ``(N, T)`` and returns the scores
``(N, T, V)``; the loss is ``F.cross_entropy`` over the ``N*T`` tokens, outside the module.

=====================  ==========================================================
factory                the port
=====================  ==========================================================
make_rnn               ``nn.RNN`` (tanh), ``batch_first=True``, of SimpleRnnlm
make_lstm              ``nn.LSTM``, ``batch_first=True``, carrying ``(h, c)`` between
                       calls and forgetting it on ``reset_state()``, as the book's
                       stateful ``TimeLSTM`` does
make_seq_first_lstm    ``nn.LSTM`` with its default ``batch_first=False``, the batch
                       transposed to ``(T, N, D)`` and back
make_cell_loop         ``nn.LSTMCell`` stepped over time in a loop
make_literal           ``nn.Parameter`` arrays with the book's names and shapes, the
                       fused gate blocks sliced f, g, i, o as the NumPy code slices them
=====================  ==========================================================

torch keeps an LSTM's gate blocks in the order i, f, g, o, its weights ``(4H, in)`` and two
biases; ``compare port`` pairs them with the NumPy ``Wx (D, 4H)``, ``Wh (H, 4H)`` and ``b``
by transposing, permuting the gate blocks and loading ``b`` into ``bias_ih`` with
``bias_hh = 0``.
"""
import torch
from torch import nn


class RnnPort(nn.Module):
    def __init__(self, V=10, D=5, H=4):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.rnn = nn.RNN(D, H, batch_first=True)
        self.fc = nn.Linear(H, V)
        self.h = None

    def forward(self, xs):
        hs, h = self.rnn(self.embed(xs), self.h)
        self.h = h.detach()  # stateful, as the book's TimeRNN: the next call starts here
        return self.fc(hs)

    def reset_state(self):
        self.h = None


class LstmPort(nn.Module):
    def __init__(self, V=10, D=5, H=4):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.lstm = nn.LSTM(D, H, batch_first=True)
        self.fc = nn.Linear(H, V)
        self.state = None

    def forward(self, xs):
        hs, state = self.lstm(self.embed(xs), self.state)
        self.state = tuple(s.detach() for s in state)
        return self.fc(hs)

    def reset_state(self):
        self.state = None


class SeqFirstLstmPort(nn.Module):
    """``nn.LSTM(D, H)`` reads ``(T, N, D)``: the embedded batch is transposed in and the
    output ``(T, N, H)`` back."""

    def __init__(self, V=10, D=5, H=4):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.lstm = nn.LSTM(D, H)
        self.fc = nn.Linear(H, V)

    def forward(self, xs):
        hs, _ = self.lstm(self.embed(xs).transpose(0, 1))
        return self.fc(hs.transpose(0, 1))


class CellLoopPort(nn.Module):
    def __init__(self, V=10, D=5, H=4):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.cell = nn.LSTMCell(D, H)
        self.fc = nn.Linear(H, V)
        self.hidden_size = H

    def forward(self, xs):
        es = self.embed(xs)
        N, T, _ = es.shape
        h = es.new_zeros(N, self.hidden_size)
        c = es.new_zeros(N, self.hidden_size)
        hs = []
        for t in range(T):
            h, c = self.cell(es[:, t], (h, c))
            hs.append(h)
        return self.fc(torch.stack(hs, dim=1))


class LiteralPort(nn.Module):
    """The NumPy arrays as parameters under their own names, the NumPy code line by line."""

    def __init__(self, V=10, D=5, H=4):
        super().__init__()
        self.embed_W = nn.Parameter(torch.zeros(V, D))
        self.lstm_Wx = nn.Parameter(torch.zeros(D, 4 * H))
        self.lstm_Wh = nn.Parameter(torch.zeros(H, 4 * H))
        self.lstm_b = nn.Parameter(torch.zeros(4 * H))
        self.affine_W = nn.Parameter(torch.zeros(H, V))
        self.affine_b = nn.Parameter(torch.zeros(V))
        self.hidden_size = H

    def gates(self, A):
        H = self.hidden_size
        f, g, i, o = A[:, :H], A[:, H:2 * H], A[:, 2 * H:3 * H], A[:, 3 * H:]
        return torch.sigmoid(f), torch.tanh(g), torch.sigmoid(i), torch.sigmoid(o)

    def forward(self, xs):
        es = self.embed_W[xs]
        N, T, _ = es.shape
        h = es.new_zeros(N, self.hidden_size)
        c = es.new_zeros(N, self.hidden_size)
        hs = []
        for t in range(T):
            A = es[:, t] @ self.lstm_Wx + h @ self.lstm_Wh + self.lstm_b
            f, g, i, o = self.gates(A)
            c = f * c + g * i
            h = o * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs, dim=1) @ self.affine_W + self.affine_b


def make_rnn():
    return RnnPort()


def make_lstm():
    return LstmPort()


def make_seq_first_lstm():
    return SeqFirstLstmPort()


def make_cell_loop():
    return CellLoopPort()


def make_literal():
    return LiteralPort()
