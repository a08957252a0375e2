"""An image-captioning RNN in NumPy, in the style of cs231n's assignment 3: module-level
layer functions ``*_forward(...) -> (out, cache)`` and ``*_backward(dout, cache)``, and a
``CaptioningRNN`` whose ``loss(features, captions)`` returns ``(loss, grads)``.

The image features are projected to the first hidden state ``h0``; the caption's words,
embedded, run through a vanilla RNN or an LSTM (its fused gate blocks in the order
i, f, o, g); a time-distributed affine gives the vocabulary scores at each step, and the
softmax loss over the words that are not ``<NULL>`` is summed over time and divided by
the batch size N.

Zero-argument factories ``make_rnn`` and ``make_lstm``; ``make_data(path)`` writes a
``.npz`` with ``x`` (features, float) and ``t`` (captions, int, with ``<NULL>`` padding)
for ``python -m compare port ... --data FILE.npz --loss model``.
"""
import numpy as np


# --- layers ---------------------------------------------------------------------------------

def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)


def affine_backward(dout, cache):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def rnn_step_forward(x, prev_h, Wx, Wh, b):
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, next_h)


def rnn_step_backward(dnext_h, cache):
    x, prev_h, Wx, Wh, next_h = cache
    da = dnext_h * (1 - next_h ** 2)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_forward(x, h0, Wx, Wh, b):
    """``x`` (N, T, D), ``h0`` (N, H) -> the hidden states ``h`` (N, T, H)."""
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=h0.dtype)
    prev_h, steps = h0, []
    for t in range(T):
        prev_h, step = rnn_step_forward(x[:, t, :], prev_h, Wx, Wh, b)
        h[:, t, :] = prev_h
        steps.append(step)
    return h, (steps, x.shape)


def rnn_backward(dh, cache):
    steps, (N, T, D) = cache
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dprev_h = np.zeros_like(dh[:, 0, :])
    dWx = dWh = db = 0
    for t in reversed(range(T)):
        dx[:, t, :], dprev_h, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev_h, steps[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def sigmoid(x):
    """The logistic function without overflow for large negative ``x``."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One step; the fused pre-activations hold the gates as i, f, o, g."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = sigmoid(a[:, :H])
    f = sigmoid(a[:, H:2 * H])
    o = sigmoid(a[:, 2 * H:3 * H])
    g = np.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)


def lstm_step_backward(dnext_h, dnext_c, cache):
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    do = dnext_h * tanh_c
    dc = dnext_c + dnext_h * o * (1 - tanh_c ** 2)
    di, df, dg = dc * g, dc * prev_c, dc * i
    dprev_c = dc * f
    da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g ** 2)])
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_forward(x, h0, Wx, Wh, b):
    """``x`` (N, T, D), ``h0`` (N, H), the cell starting at zero -> ``h`` (N, T, H)."""
    N, T, _ = x.shape
    h = np.zeros((N, T, h0.shape[1]), dtype=h0.dtype)
    prev_h, prev_c, steps = h0, np.zeros_like(h0), []
    for t in range(T):
        prev_h, prev_c, step = lstm_step_forward(x[:, t, :], prev_h, prev_c, Wx, Wh, b)
        h[:, t, :] = prev_h
        steps.append(step)
    return h, (steps, x.shape)


def lstm_backward(dh, cache):
    steps, (N, T, D) = cache
    dx = np.zeros((N, T, D), dtype=dh.dtype)
    dprev_h = np.zeros_like(dh[:, 0, :])
    dprev_c = np.zeros_like(dprev_h)
    dWx = dWh = db = 0
    for t in reversed(range(T)):
        dx[:, t, :], dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(
            dh[:, t, :] + dprev_h, dprev_c, steps[t])
        dWx, dWh, db = dWx + dWx_t, dWh + dWh_t, db + db_t
    return dx, dprev_h, dWx, dWh, db


def word_embedding_forward(x, W):
    """Integer word ids ``x`` (N, T) -> their vectors (N, T, D)."""
    return W[x], (x, W.shape)


def word_embedding_backward(dout, cache):
    x, shape = cache
    dW = np.zeros(shape, dtype=dout.dtype)
    np.add.at(dW, x, dout)
    return dW


def temporal_affine_forward(x, w, b):
    N, T, D = x.shape
    out = (x.reshape(N * T, D) @ w + b).reshape(N, T, -1)
    return out, (x, w, b)


def temporal_affine_backward(dout, cache):
    x, w, b = cache
    N, T, D = x.shape
    d2 = dout.reshape(N * T, -1)
    dx = (d2 @ w.T).reshape(N, T, D)
    return dx, x.reshape(N * T, D).T @ d2, d2.sum(axis=0)


def temporal_softmax_loss(x, y, mask):
    """Scores ``x`` (N, T, V) against word ids ``y`` (N, T), where ``mask`` (N, T) is True:
    the cross-entropy summed over the unmasked steps and divided by N (not by their count)."""
    N, T, V = x.shape
    flat, y_flat, m_flat = x.reshape(N * T, V), y.reshape(N * T), mask.reshape(N * T)
    shifted = flat - flat.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N * T)
    loss = -np.sum(m_flat * log_probs[rows, y_flat]) / N
    dx = np.exp(log_probs)
    dx[rows, y_flat] -= 1
    dx *= m_flat[:, None] / N
    return loss, dx.reshape(N, T, V)


# --- the model ------------------------------------------------------------------------------

class CaptioningRNN:
    """Image features (N, D) and captions (N, T + 1) of word ids, ``<START>`` first."""

    def __init__(self, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128,
                 cell_type="rnn", dtype=np.float64, seed=0):
        if cell_type not in ("rnn", "lstm"):
            raise ValueError(f"cell_type must be 'rnn' or 'lstm', got {cell_type!r}")
        self.cell_type, self.dtype = cell_type, dtype
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>")
        self._end = word_to_idx.get("<END>")
        V, D, W, H = len(word_to_idx), input_dim, wordvec_dim, hidden_dim
        G = {"rnn": 1, "lstm": 4}[cell_type]
        rng = np.random.default_rng(seed)
        self.params = {
            "W_embed": rng.standard_normal((V, W)) / 10,
            "W_proj": rng.standard_normal((D, H)) / np.sqrt(D),
            "b_proj": rng.standard_normal(H) / 10,
            "Wx": rng.standard_normal((W, G * H)) / np.sqrt(W),
            "Wh": rng.standard_normal((H, G * H)) / np.sqrt(H),
            "b": rng.standard_normal(G * H) / 10,
            "W_vocab": rng.standard_normal((H, V)) / np.sqrt(H),
            "b_vocab": rng.standard_normal(V) / 10,
        }
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, features, captions):
        captions_in, captions_out = captions[:, :-1], captions[:, 1:]
        mask = captions_out != self._null
        p = self.params

        h0, cache_proj = affine_forward(features, p["W_proj"], p["b_proj"])
        x, cache_embed = word_embedding_forward(captions_in, p["W_embed"])
        if self.cell_type == "rnn":
            h, cache_cell = rnn_forward(x, h0, p["Wx"], p["Wh"], p["b"])
        else:
            h, cache_cell = lstm_forward(x, h0, p["Wx"], p["Wh"], p["b"])
        scores, cache_vocab = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)

        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, cache_vocab)
        backward = rnn_backward if self.cell_type == "rnn" else lstm_backward
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = backward(dh, cache_cell)
        grads["W_embed"] = word_embedding_backward(dx, cache_embed)
        _, grads["W_proj"], grads["b_proj"] = affine_backward(dh0, cache_proj)
        return loss, grads


# --- small sizes for the check --------------------------------------------------------------

WORDS = ("<NULL>", "<START>", "<END>", "a", "cat", "dog", "on", "the", "mat", "sits", "runs")
WORD_TO_IDX = {w: i for i, w in enumerate(WORDS)}
SIZES = dict(input_dim=6, wordvec_dim=5, hidden_dim=4)


def make_rnn():
    return CaptioningRNN(WORD_TO_IDX, cell_type="rnn", **SIZES)


def make_lstm():
    return CaptioningRNN(WORD_TO_IDX, cell_type="lstm", **SIZES)


def make_batch(n=4, steps=6, seed=1):
    """``(features (n, D), captions (n, steps + 1))``: ``<START>``, words, ``<END>``, then
    ``<NULL>`` padding, the captions of different lengths."""
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, SIZES["input_dim"]))
    captions = np.full((n, steps + 1), WORD_TO_IDX["<NULL>"], dtype=np.int64)
    first_word = WORD_TO_IDX["<END>"] + 1
    for row in range(n):
        length = 1 + (row * 2) % (steps - 1)  # words between <START> and <END>
        captions[row, 0] = WORD_TO_IDX["<START>"]
        captions[row, 1:1 + length] = rng.integers(first_word, len(WORDS), size=length)
        captions[row, 1 + length] = WORD_TO_IDX["<END>"]
    return features, captions


def make_data(path, **kwargs):
    features, captions = make_batch(**kwargs)
    np.savez(path, x=features, t=captions)
    return path


if __name__ == "__main__":
    import sys
    print(make_data(sys.argv[1] if len(sys.argv) > 1 else "captions.npz"))
