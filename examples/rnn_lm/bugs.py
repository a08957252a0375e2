"""Broken ports of ``numpy_lm.Rnnlm``, one bug each, as porters make them. Each is a right
port of ``torch_lm.py`` with one thing changed.

=====================  ===========================================================
factory                the bug
=====================  ===========================================================
make_batch_first       ``nn.LSTM`` left at ``batch_first=False`` and handed the
                       batch ``(N, T, D)``: it runs over the batch as if it were time
make_gate_order        the literal port slicing the fused gates i, f, g, o (torch's
                       order) where the NumPy code slices f, g, i, o
make_summed_loss       the token losses summed: no ``/ (N*T)`` (``--loss model``)
make_batch_mean_loss   the token losses summed over time, averaged over the batch:
                       no ``/ T`` (``--loss model``)
make_state_not_carried ``h`` and ``c`` set back to zeros at each time step, so no step
                       sees the one before it
make_double_bias       the literal port adding ``b`` with each product, as torch's
                       ``bias_ih`` and ``bias_hh`` are added: twice where the NumPy
                       code adds it once
=====================  ===========================================================
"""
import torch
import torch.nn.functional as F

from torch_lm import CellLoopPort, LiteralPort, LstmPort, SeqFirstLstmPort


class BatchFirstBug(SeqFirstLstmPort):
    def forward(self, xs):
        hs, _ = self.lstm(self.embed(xs))  # (N, T, D) read as (T, N, D)
        return self.fc(hs)


class GateOrderBug(LiteralPort):
    def gates(self, A):
        H = self.hidden_size
        i, f, g, o = A[:, :H], A[:, H:2 * H], A[:, 2 * H:3 * H], A[:, 3 * H:]
        return torch.sigmoid(f), torch.tanh(g), torch.sigmoid(i), torch.sigmoid(o)


class DoubleBiasBug(LiteralPort):
    def forward(self, xs):
        es = self.embed_W[xs]
        N, T, _ = es.shape
        h = es.new_zeros(N, self.hidden_size)
        c = es.new_zeros(N, self.hidden_size)
        hs = []
        for t in range(T):
            A = (es[:, t] @ self.lstm_Wx + self.lstm_b) + (h @ self.lstm_Wh + self.lstm_b)
            f, g, i, o = self.gates(A)
            c = f * c + g * i
            h = o * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs, dim=1) @ self.affine_W + self.affine_b


class SummedLossBug(LstmPort):
    def loss(self, xs, ts):
        scores = self(xs)
        return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), ts.reshape(-1),
                               reduction="sum")


class BatchMeanLossBug(LstmPort):
    def loss(self, xs, ts):
        scores = self(xs)
        total = F.cross_entropy(scores.reshape(-1, scores.shape[-1]), ts.reshape(-1),
                                reduction="sum")
        return total / xs.shape[0]


class StateNotCarriedBug(CellLoopPort):
    def forward(self, xs):
        es = self.embed(xs)
        N, T, _ = es.shape
        hs = []
        for t in range(T):
            h = es.new_zeros(N, self.hidden_size)
            c = es.new_zeros(N, self.hidden_size)
            h, c = self.cell(es[:, t], (h, c))
            hs.append(h)
        return self.fc(torch.stack(hs, dim=1))


def make_batch_first():
    return BatchFirstBug()


def make_gate_order():
    return GateOrderBug()


def make_summed_loss():
    return SummedLossBug()


def make_batch_mean_loss():
    return BatchMeanLossBug()


def make_state_not_carried():
    return StateNotCarriedBug()


def make_double_bias():
    return DoubleBiasBug()
