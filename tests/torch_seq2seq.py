"""Torch ports of ``tests/book_seq2seq.py``, written here: the right ones, then each with one
planted bug. Each seq2seq port's ``loss(xs, ts)`` does the book's teacher forcing (the
decoder reads ``ts[:, :-1]`` and is scored on ``ts[:, 1:]``): check them with ``--loss
model``."""
import math

import torch
import torch.nn.functional as F
from torch import nn


def token_mean_ce(scores, targets):
    return F.cross_entropy(scores.reshape(-1, scores.shape[-1]), targets.reshape(-1))


class Seq2seqPort(nn.Module):
    """Encoder and decoder ``nn.LSTM``s; the decoder starts from the encoder's last ``h`` and
    a zero ``c``, as the book's ``Decoder.set_state(h)``."""

    def __init__(self, V=8, D=5, H=4):
        super().__init__()
        self.enc_embed = nn.Embedding(V, D)
        self.encoder = nn.LSTM(D, H, batch_first=True)
        self.dec_embed = nn.Embedding(V, D)
        self.decoder = nn.LSTM(self.decoder_input(D, H), H, batch_first=True)
        self.fc = nn.Linear(self.head_input(H), V)

    def decoder_input(self, D, H):
        return D

    def head_input(self, H):
        return H

    def encode(self, xs):
        _, (h, c) = self.encoder(self.enc_embed(xs))
        return h, c

    def decoder_state(self, h, c):
        return h, torch.zeros_like(c)

    def forward(self, xs, dec_xs):
        h, c = self.encode(xs)
        out, _ = self.decoder(self.dec_embed(dec_xs), self.decoder_state(h, c))
        return self.fc(out)

    def loss(self, xs, ts):
        return token_mean_ce(self(xs, ts[:, :-1]), ts[:, 1:])


class DecoderFirst(Seq2seqPort):
    """The same port, its decoder's modules registered before the encoder's: two LSTMs of
    one shape, told apart by the order they run in."""

    def __init__(self, V=8, D=5, H=4):
        nn.Module.__init__(self)
        self.dec_embed = nn.Embedding(V, D)
        self.decoder = nn.LSTM(D, H, batch_first=True)
        self.fc = nn.Linear(H, V)
        self.enc_embed = nn.Embedding(V, D)
        self.encoder = nn.LSTM(D, H, batch_first=True)


class PassesC(Seq2seqPort):
    """The encoder's ``(h, c)`` handed on whole: the book's decoder gets ``h`` only."""

    def decoder_state(self, h, c):
        return h, c


class PeekyPort(Seq2seqPort):
    """The encoder's ``h`` before the embedding at every step and before the decoder's
    output at the head."""

    def decoder_input(self, D, H):
        return H + D

    def head_input(self, H):
        return 2 * H

    def join(self, peek, x):
        return torch.cat((peek, x), dim=2)

    def forward(self, xs, dec_xs):
        h, c = self.encode(xs)
        emb = self.dec_embed(dec_xs)
        peek = h[0].unsqueeze(1).expand(-1, emb.shape[1], -1)
        out, _ = self.decoder(self.join(peek, emb), (h, torch.zeros_like(c)))
        return self.fc(self.join(peek, out))


class PeekySwapped(PeekyPort):
    """``cat((x, h))`` where the book concatenates ``(h, x)``."""

    def join(self, peek, x):
        return torch.cat((x, peek), dim=2)


class AttentionPort(Seq2seqPort):
    """Dot-product attention over the encoder's time, the context before the decoder's
    ``h`` at the head."""

    def head_input(self, H):
        return 2 * H

    def weights(self, scores):
        return torch.softmax(scores, dim=2)  # (N, T_dec, T_enc): over the encoder's time

    def forward(self, xs, dec_xs):
        hs_enc, (h, c) = self.encoder(self.enc_embed(xs))
        hs_dec, _ = self.decoder(self.dec_embed(dec_xs), (h, torch.zeros_like(c)))
        a = self.weights(hs_dec @ hs_enc.transpose(1, 2))
        context = a @ hs_enc
        return self.fc(torch.cat((context, hs_dec), dim=2))


class AttentionJoinedSwapped(AttentionPort):
    """The decoder's ``h`` before the context at the head."""

    def forward(self, xs, dec_xs):
        hs_enc, (h, c) = self.encoder(self.enc_embed(xs))
        hs_dec, _ = self.decoder(self.dec_embed(dec_xs), (h, torch.zeros_like(c)))
        context = self.weights(hs_dec @ hs_enc.transpose(1, 2)) @ hs_enc
        return self.fc(torch.cat((hs_dec, context), dim=2))


class PassesCScaledLoss(PassesC):
    """Two bugs: the encoder's c handed on, and the loss doubled; zeroing c alone explains
    neither the loss nor the gradients."""

    def loss(self, xs, ts):
        return 2 * super().loss(xs, ts)


class AttentionScaled(AttentionPort):
    """Transformer habit: the scores divided by sqrt(H)."""

    def weights(self, scores):
        return torch.softmax(scores / math.sqrt(self.encoder.hidden_size), dim=2)


class AttentionWrongAxis(AttentionPort):
    """The softmax over the decoder's time."""

    def weights(self, scores):
        return torch.softmax(scores, dim=1)


class GruPort(nn.Module):
    """``nn.GRU`` for the book's ``TimeGRU``: torch's reset gate scales ``W_hn h + b_hn``."""

    def __init__(self, V=8, D=5, H=4):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.gru = nn.GRU(D, H, batch_first=True)
        self.fc = nn.Linear(H, V)

    def forward(self, xs):
        out, _ = self.gru(self.embed(xs))
        return self.fc(out)


class BookGRU(nn.Module):
    """The book's GRU cell, written out: the reset gate on ``h`` before its product."""

    def __init__(self, D, H):
        super().__init__()
        self.Wx = nn.Parameter(torch.zeros(D, 3 * H))
        self.Wh = nn.Parameter(torch.zeros(H, 3 * H))
        self.b = nn.Parameter(torch.zeros(3 * H))
        self.H = H

    def forward(self, xs):
        H, h, hs = self.H, xs.new_zeros(xs.shape[0], self.H), []
        for x in xs.unbind(1):
            ax = x @ self.Wx + self.b
            z = torch.sigmoid(ax[:, :H] + h @ self.Wh[:, :H])
            r = torch.sigmoid(ax[:, H:2 * H] + h @ self.Wh[:, H:2 * H])
            h_hat = torch.tanh(ax[:, 2 * H:] + (r * h) @ self.Wh[:, 2 * H:])
            h = (1 - z) * h + z * h_hat
            hs.append(h)
        return torch.stack(hs, 1)


class BookGruPort(nn.Module):
    def __init__(self, V=8, D=5, H=4):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.gru = BookGRU(D, H)
        self.fc = nn.Linear(H, V)

    def forward(self, xs):
        return self.fc(self.gru(self.embed(xs)))
