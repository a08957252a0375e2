"""Sequence-to-sequence models in the style of *Deep Learning from Scratch 2* (chapters 6-8),
written here: ``params``/``grads`` lists, ``forward(xs, ts)`` the loss, ``backward(dout=1)``
filling ``grads`` in place, arrays made in the book's ``'f'`` (``dtype=`` for float64).

* ``Seq2seq``: the encoder hands the decoder its last ``h`` only (the decoder's ``c`` starts
  at zero);
* ``PeekySeq2seq``: that ``h`` also concatenated before the embedding at every step and
  before the decoder's output at the affine, ``(h, out)`` in that order;
* ``AttentionSeq2seq``: the encoder's whole ``hs``; at each decoder step the weights are a
  softmax over the encoder's time of the dot products (no scaling), the context
  concatenated before the decoder's ``h``;
* ``GruLm``: embedding, the book's ``TimeGRU`` (gates z, r, h~ on one fused ``Wx (D, 3H)``;
  the reset gate applied to ``h`` before its product with ``Wh``), affine.
"""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class TimeEmbedding:
    def __init__(self, W):
        self.params, self.grads = [W], [np.zeros_like(W)]
        self.idx = None

    def forward(self, xs):
        self.idx = xs
        return self.params[0][xs]

    def backward(self, dout):
        dW = self.grads[0]
        dW[...] = 0
        np.add.at(dW, self.idx, dout)


class LSTM:
    """One step; the fused blocks in the book's order f, g, i, o."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        a = x @ Wx + h_prev @ Wh + b
        f, g = sigmoid(a[:, :H]), np.tanh(a[:, H:2 * H])
        i, o = sigmoid(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c_next = f * c_prev + g * i
        tanh_c = np.tanh(c_next)
        h_next = o * tanh_c
        self.cache = (x, h_prev, c_prev, f, g, i, o, tanh_c)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, _ = self.params
        x, h_prev, c_prev, f, g, i, o, tanh_c = self.cache
        ds = dc_next + dh_next * o * (1 - tanh_c ** 2)
        df = ds * c_prev * f * (1 - f)
        dg = ds * i * (1 - g ** 2)
        di = ds * g * i * (1 - i)
        do = dh_next * tanh_c * o * (1 - o)
        da = np.hstack((df, dg, di, do))
        self.grads[0][...] = x.T @ da
        self.grads[1][...] = h_prev.T @ da
        self.grads[2][...] = da.sum(axis=0)
        return da @ Wx.T, da @ Wh.T, ds * f


class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.layers, self.h, self.c, self.dh = None, None, None, None

    def set_state(self, h, c=None):
        self.h, self.c = h, c

    def reset_state(self):
        self.h, self.c = None, None

    def forward(self, xs):
        N, T, _ = xs.shape
        H = self.params[1].shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=xs.dtype)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            step = LSTM(*self.params)
            self.h, self.c = step.forward(xs[:, t], self.h, self.c)
            hs[:, t] = self.h
            self.layers.append(step)
        return hs

    def backward(self, dhs):
        N, T, _ = dhs.shape
        D = self.params[0].shape[0]
        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh, dc = 0, 0
        total = [np.zeros_like(g) for g in self.grads]
        for t in reversed(range(T)):
            step = self.layers[t]
            dxs[:, t], dh, dc = step.backward(dhs[:, t] + dh, dc)
            for k, g in enumerate(step.grads):
                total[k] += g
        for k, g in enumerate(total):
            self.grads[k][...] = g
        self.dh = dh
        return dxs


class GRU:
    """One step of the book's GRU: blocks z, r, h~; the reset gate scales ``h`` before ``Wh``;
    ``h_next = (1 - z) * h + z * h~``."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        H = Wh.shape[0]
        z = sigmoid(x @ Wx[:, :H] + h_prev @ Wh[:, :H] + b[:H])
        r = sigmoid(x @ Wx[:, H:2 * H] + h_prev @ Wh[:, H:2 * H] + b[H:2 * H])
        h_hat = np.tanh(x @ Wx[:, 2 * H:] + (r * h_prev) @ Wh[:, 2 * H:] + b[2 * H:])
        self.cache = (x, h_prev, z, r, h_hat)
        return (1 - z) * h_prev + z * h_hat

    def backward(self, dh_next):
        Wx, Wh, _ = self.params
        H = Wh.shape[0]
        x, h_prev, z, r, h_hat = self.cache
        da_h = dh_next * z * (1 - h_hat ** 2)
        drh = da_h @ Wh[:, 2 * H:].T
        da_z = dh_next * (h_hat - h_prev) * z * (1 - z)
        da_r = drh * h_prev * r * (1 - r)
        dh_prev = dh_next * (1 - z) + drh * r
        da_x = np.hstack((da_z, da_r, da_h))
        self.grads[0][...] = x.T @ da_x
        self.grads[1][:, :2 * H] = h_prev.T @ np.hstack((da_z, da_r))
        self.grads[1][:, 2 * H:] = (r * h_prev).T @ da_h
        self.grads[2][...] = da_x.sum(axis=0)
        dh_prev = dh_prev + np.hstack((da_z, da_r)) @ Wh[:, :2 * H].T
        return da_x @ Wx.T, dh_prev


class TimeGRU:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.stateful = stateful
        self.layers, self.h, self.dh = None, None, None

    def reset_state(self):
        self.h = None

    def forward(self, xs):
        N, T, _ = xs.shape
        H = self.params[1].shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            step = GRU(*self.params)
            self.h = step.forward(xs[:, t], self.h)
            hs[:, t] = self.h
            self.layers.append(step)
        return hs

    def backward(self, dhs):
        N, T, _ = dhs.shape
        D = self.params[0].shape[0]
        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh = 0
        total = [np.zeros_like(g) for g in self.grads]
        for t in reversed(range(T)):
            step = self.layers[t]
            dxs[:, t], dh = step.backward(dhs[:, t] + dh)
            for k, g in enumerate(step.grads):
                total[k] += g
        for k, g in enumerate(total):
            self.grads[k][...] = g
        self.dh = dh
        return dxs


class TimeAffine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        self.x = x
        return x @ W + b

    def backward(self, dout):
        W, _ = self.params
        x2, d2 = self.x.reshape(-1, self.x.shape[-1]), dout.reshape(-1, dout.shape[-1])
        self.grads[0][...] = x2.T @ d2
        self.grads[1][...] = d2.sum(axis=0)
        return dout @ W.T


class TimeSoftmaxWithLoss:
    """The token-mean cross-entropy, tokens labelled -1 left out."""

    def __init__(self):
        self.params, self.grads = [], []
        self.ignore_label = -1
        self.cache = None

    def forward(self, xs, ts):
        N, T, V = xs.shape
        ys = softmax(xs.reshape(N * T, V))
        ts = ts.reshape(N * T)
        mask = ts != self.ignore_label
        picked = ys[np.arange(N * T), np.where(mask, ts, 0)]
        self.cache = (ys, ts, mask, xs.shape)
        return -np.sum(np.log(picked) * mask) / mask.sum()

    def backward(self, dout=1):
        ys, ts, mask, shape = self.cache
        dx = ys.copy()
        dx[np.arange(len(ts)), np.where(mask, ts, 0)] -= 1
        dx *= dout * mask[:, None] / mask.sum()
        return dx.reshape(shape)


def _weights(rng, shape, fan_in, dtype):
    return (rng.randn(*shape) / np.sqrt(fan_in)).astype(dtype)


def _lstm(rng, D, H, dtype, stateful=False):
    return TimeLSTM(_weights(rng, (D, 4 * H), D, dtype), _weights(rng, (H, 4 * H), H, dtype),
                    (rng.randn(4 * H) * 0.1).astype(dtype), stateful=stateful)


def _embedding(rng, V, D, dtype):
    # the book's 1/100 would leave the gates at their biases; 1/2 makes the inputs count
    return TimeEmbedding((rng.randn(V, D) / 2).astype(dtype))


def _gather(model, parts):
    model.params, model.grads = [], []
    for part in parts:
        model.params += part.params
        model.grads += part.grads


class Encoder:
    def __init__(self, V, D, H, rng, dtype):
        self.embed = _embedding(rng, V, D, dtype)
        self.lstm = _lstm(rng, D, H, dtype)
        _gather(self, (self.embed, self.lstm))
        self.hs = None

    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs[:, -1]

    def backward(self, dh):
        dhs = np.zeros_like(self.hs)
        dhs[:, -1] = dh
        self.embed.backward(self.lstm.backward(dhs))


class Decoder:
    def __init__(self, V, D, H, rng, dtype):
        self.embed = _embedding(rng, V, D, dtype)
        self.lstm = _lstm(rng, D, H, dtype, stateful=True)
        self.affine = TimeAffine(_weights(rng, (H, V), H, dtype), np.zeros(V, dtype))
        _gather(self, (self.embed, self.lstm, self.affine))

    def forward(self, xs, h):
        self.lstm.set_state(h)  # h only: c starts at zero
        return self.affine.forward(self.lstm.forward(self.embed.forward(xs)))

    def backward(self, dscore):
        self.embed.backward(self.lstm.backward(self.affine.backward(dscore)))
        return self.lstm.dh


class PeekyDecoder:
    def __init__(self, V, D, H, rng, dtype):
        self.embed = _embedding(rng, V, D, dtype)
        self.lstm = _lstm(rng, H + D, H, dtype, stateful=True)
        self.affine = TimeAffine(_weights(rng, (H + H, V), 2 * H, dtype), np.zeros(V, dtype))
        _gather(self, (self.embed, self.lstm, self.affine))
        self.H = None

    def forward(self, xs, h):
        N, T = xs.shape
        self.H = H = h.shape[1]
        peek = np.broadcast_to(h[:, None, :], (N, T, H))
        self.lstm.set_state(h)
        out = self.lstm.forward(np.concatenate((peek, self.embed.forward(xs)), axis=2))
        return self.affine.forward(np.concatenate((peek, out), axis=2))

    def backward(self, dscore):
        H = self.H
        dout = self.affine.backward(dscore)
        dx = self.lstm.backward(dout[:, :, H:])
        self.embed.backward(dx[:, :, H:])
        return self.lstm.dh + dout[:, :, :H].sum(axis=1) + dx[:, :, :H].sum(axis=1)


class Seq2seq:
    decoder_class = Decoder

    def __init__(self, V=8, D=5, H=4, seed=0, dtype="f"):
        rng = np.random.RandomState(seed)
        self.encoder = Encoder(V, D, H, rng, dtype)
        self.decoder = self.decoder_class(V, D, H, rng, dtype)
        self.softmax = TimeSoftmaxWithLoss()
        _gather(self, (self.encoder, self.decoder))

    def forward(self, xs, ts):
        decoder_xs, decoder_ts = ts[:, :-1], ts[:, 1:]
        h = self.encoder.forward(xs)
        return self.softmax.forward(self.decoder.forward(decoder_xs, h), decoder_ts)

    def backward(self, dout=1):
        dh = self.decoder.backward(self.softmax.backward(dout))
        self.encoder.backward(dh)


class PeekySeq2seq(Seq2seq):
    decoder_class = PeekyDecoder


# --- chapter 8: attention ----------------------------------------------------------------

class Attention:
    """One decoder step: weights over the encoder's time, the context they weigh."""

    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None

    def forward(self, hs, h):
        a = softmax(np.einsum("nth,nh->nt", hs, h))
        self.cache = (hs, h, a)
        return np.einsum("nth,nt->nh", hs, a)

    def backward(self, dc):
        hs, h, a = self.cache
        da = np.einsum("nth,nh->nt", hs, dc)
        ds = a * (da - (a * da).sum(axis=1, keepdims=True))
        dhs = a[:, :, None] * dc[:, None, :] + ds[:, :, None] * h[:, None, :]
        dh = np.einsum("nt,nth->nh", ds, hs)
        return dhs, dh


class TimeAttention:
    def __init__(self):
        self.params, self.grads = [], []
        self.steps = None

    def forward(self, hs_enc, hs_dec):
        self.steps = [Attention() for _ in range(hs_dec.shape[1])]
        return np.stack([s.forward(hs_enc, hs_dec[:, t]) for t, s in enumerate(self.steps)],
                        axis=1)

    def backward(self, dout):
        dhs_enc, dhs_dec = 0, np.empty_like(dout)
        for t, step in enumerate(self.steps):
            dhs, dhs_dec[:, t] = step.backward(dout[:, t])
            dhs_enc = dhs_enc + dhs
        return dhs_enc, dhs_dec


class AttentionEncoder(Encoder):
    def forward(self, xs):
        self.hs = self.lstm.forward(self.embed.forward(xs))
        return self.hs

    def backward(self, dhs):
        self.embed.backward(self.lstm.backward(dhs))


class AttentionDecoder:
    def __init__(self, V, D, H, rng, dtype):
        self.embed = _embedding(rng, V, D, dtype)
        self.lstm = _lstm(rng, D, H, dtype, stateful=True)
        self.attention = TimeAttention()
        self.affine = TimeAffine(_weights(rng, (2 * H, V), 2 * H, dtype), np.zeros(V, dtype))
        _gather(self, (self.embed, self.lstm, self.attention, self.affine))
        self.H = None

    def forward(self, xs, hs_enc):
        self.H = hs_enc.shape[2]
        self.lstm.set_state(hs_enc[:, -1])
        hs_dec = self.lstm.forward(self.embed.forward(xs))
        context = self.attention.forward(hs_enc, hs_dec)
        return self.affine.forward(np.concatenate((context, hs_dec), axis=2))

    def backward(self, dscore):
        H = self.H
        dout = self.affine.backward(dscore)
        dhs_enc, dhs_dec = self.attention.backward(dout[:, :, :H])
        self.embed.backward(self.lstm.backward(dhs_dec + dout[:, :, H:]))
        dhs_enc = dhs_enc.copy()
        dhs_enc[:, -1] += self.lstm.dh
        return dhs_enc


class AttentionSeq2seq(Seq2seq):
    def __init__(self, V=8, D=5, H=4, seed=0, dtype="f"):
        rng = np.random.RandomState(seed)
        self.encoder = AttentionEncoder(V, D, H, rng, dtype)
        self.decoder = AttentionDecoder(V, D, H, rng, dtype)
        self.softmax = TimeSoftmaxWithLoss()
        _gather(self, (self.encoder, self.decoder))


# --- the book's GRU in a language model --------------------------------------------------

class GruLm:
    def __init__(self, V=8, D=5, H=4, seed=0, dtype="f"):
        rng = np.random.RandomState(seed)
        self.layers = [
            _embedding(rng, V, D, dtype),
            TimeGRU(_weights(rng, (D, 3 * H), D, dtype), _weights(rng, (H, 3 * H), H, dtype),
                    (rng.randn(3 * H) * 0.1).astype(dtype)),
            TimeAffine(_weights(rng, (H, V), H, dtype), np.zeros(V, dtype))]
        self.loss_layer = TimeSoftmaxWithLoss()
        _gather(self, self.layers)

    def predict(self, xs):
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs, ts):
        return self.loss_layer.forward(self.predict(xs), ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)


# --- the batches ---------------------------------------------------------------------------

def pairs(n=3, t_in=5, t_out=4, V=8, seed=1):
    """``x (n, t_in)`` source ids, ``t (n, t_out + 1)`` target ids starting with a start id."""
    rng = np.random.RandomState(seed)
    x = rng.randint(0, V, size=(n, t_in))
    t = rng.randint(1, V, size=(n, t_out + 1))
    t[:, 0] = 0
    return x, t


def tokens(n=3, T=5, V=8, seed=2):
    rng = np.random.RandomState(seed)
    return rng.randint(0, V, size=(n, T)), rng.randint(0, V, size=(n, T))


def make_seq2seq():
    return Seq2seq()


def make_peeky():
    return PeekySeq2seq()


def make_attention():
    return AttentionSeq2seq()


def make_gru_lm():
    return GruLm()
