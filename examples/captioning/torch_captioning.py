"""Torch ports of ``numpy_captioning.CaptioningRNN``: ``nn.Linear`` for the projection of the
features to ``h0``, ``nn.Embedding``, ``nn.RNN`` (tanh) or ``nn.LSTM`` with
``batch_first=True``, ``nn.Linear`` to the vocabulary.

``forward(features, captions_in)`` returns the scores (N, T, V); ``loss(features,
captions)`` splits the captions as the NumPy model does and computes its loss: the
cross-entropy summed over the words that are not ``<NULL>``, divided by N. Check with
``--loss model``.

The right ports are ``make_rnn_port`` and ``make_lstm_port``; the others each hold one bug
a port of this model is easy to make.
"""
import torch
import torch.nn.functional as F
from torch import nn

NULL = 0  # the index of <NULL> in numpy_captioning.WORD_TO_IDX
SIZES = dict(input_dim=6, wordvec_dim=5, hidden_dim=4, vocab_size=11)


class CaptioningPort(nn.Module):
    def __init__(self, input_dim, wordvec_dim, hidden_dim, vocab_size, cell_type="rnn"):
        super().__init__()
        self.proj = nn.Linear(input_dim, hidden_dim)
        self.embed = nn.Embedding(vocab_size, wordvec_dim)
        if cell_type == "rnn":
            self.cell = nn.RNN(wordvec_dim, hidden_dim, nonlinearity="tanh", batch_first=True)
        else:
            self.cell = nn.LSTM(wordvec_dim, hidden_dim, batch_first=True)
        self.vocab = nn.Linear(hidden_dim, vocab_size)

    def initial_state(self, features):
        h0 = self.proj(features).unsqueeze(0)  # (layers, N, H)
        if isinstance(self.cell, nn.LSTM):
            return h0, torch.zeros_like(h0)
        return h0

    def forward(self, features, captions_in):
        h, _ = self.cell(self.embed(captions_in), self.initial_state(features))
        return self.vocab(h)

    def token_losses(self, features, captions):
        """The cross-entropy of each next word (N, T), and the mask of the real words."""
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        scores = self(features, captions_in)
        losses = F.cross_entropy(scores.transpose(1, 2), captions_out, reduction="none")
        return losses, captions_out != NULL

    def loss(self, features, captions):
        losses, mask = self.token_losses(features, captions)
        return (losses * mask).sum() / features.shape[0]


def make_rnn_port():
    return CaptioningPort(**SIZES, cell_type="rnn")


def make_lstm_port():
    return CaptioningPort(**SIZES, cell_type="lstm")


# --- ports with one bug each ----------------------------------------------------------------

class TokenMeanPort(CaptioningPort):
    """The masked loss averaged over the real words instead of divided by N."""

    def loss(self, features, captions):
        losses, mask = self.token_losses(features, captions)
        return (losses * mask).sum() / mask.sum()


class NoMaskPort(CaptioningPort):
    """The padding counted: every step's loss summed, ``<NULL>`` targets included."""

    def loss(self, features, captions):
        losses, _ = self.token_losses(features, captions)
        return losses.sum() / features.shape[0]


class ZeroStatePort(CaptioningPort):
    """The features never reach the cell: ``h0`` left at zero (``proj`` unused)."""

    def forward(self, features, captions_in):
        h, _ = self.cell(self.embed(captions_in))
        return self.vocab(h)


def make_lstm_token_mean():
    return TokenMeanPort(**SIZES, cell_type="lstm")


def make_rnn_token_mean():
    return TokenMeanPort(**SIZES, cell_type="rnn")


def make_lstm_no_mask():
    return NoMaskPort(**SIZES, cell_type="lstm")


def make_lstm_zero_state():
    return ZeroStatePort(**SIZES, cell_type="lstm")
