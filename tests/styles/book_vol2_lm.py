"""A language model in the style of the book's second volume, chapter 6's better one:
an embedding, two stacked stateful LSTMs, dropout fresh per element and time step after
the embedding and after each LSTM, and the output affine tied to the embedding through
its transpose (``TimeAffine(embed_W.T, b)``: one array, listed once as itself and once
as the view). float32 arrays (``'f'``; ``dtype`` gives a float64 twin for the tests' central
differences), ``params``/``grads`` lists, ``forward(xs, ts)``
returning the loss, ``backward(dout=1)`` filling ``grads`` in place.

``tie=False`` gives the same model with an output weight of its own (a copy of the
embedding's transpose), the untied side of the ``tied_weights`` trap.
"""
import numpy as np

VOCAB, WORDVEC, HIDDEN = 12, 6, 6  # WORDVEC == HIDDEN: the tie needs it


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class TimeEmbedding:
    def __init__(self, W):
        self.params, self.grads = [W], [np.zeros_like(W)]
        self.idx = None

    def forward(self, xs):
        W, = self.params
        self.idx = xs
        return W[xs]

    def backward(self, dout):
        dW = self.grads[0]
        dW[...] = 0
        np.add.at(dW, self.idx, dout)
        return None


class LSTM:
    """One step; the fused gate blocks in the book's order f, g, i, o."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        A = x @ Wx + h_prev @ Wh + b
        f = sigmoid(A[:, :H])
        g = np.tanh(A[:, H:2 * H])
        i = sigmoid(A[:, 2 * H:3 * H])
        o = sigmoid(A[:, 3 * H:])
        c = f * c_prev + g * i
        tanh_c = np.tanh(c)
        h = o * tanh_c
        self.cache = (x, h_prev, c_prev, f, g, i, o, tanh_c)
        return h, c

    def backward(self, dh, dc):
        Wx, Wh, _ = self.params
        x, h_prev, c_prev, f, g, i, o, tanh_c = self.cache
        ds = dc + dh * o * (1 - tanh_c ** 2)
        df = ds * c_prev * f * (1 - f)
        dg = ds * i * (1 - g ** 2)
        di = ds * g * i * (1 - i)
        do = dh * tanh_c * o * (1 - o)
        dA = np.hstack((df, dg, di, do))
        self.grads[0][...] = x.T @ dA
        self.grads[1][...] = h_prev.T @ dA
        self.grads[2][...] = dA.sum(axis=0)
        return dA @ Wx.T, dA @ Wh.T, ds * f


class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h = self.c = None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=xs.dtype)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            step = LSTM(Wx, Wh, b)
            self.h, self.c = step.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.layers.append(step)
        return hs

    def backward(self, dhs):
        Wx, _, _ = self.params
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, Wx.shape[0]), dtype=dhs.dtype)
        dh = dc = 0
        totals = [0, 0, 0]
        for t in reversed(range(T)):
            step = self.layers[t]
            dxs[:, t, :], dh, dc = step.backward(dhs[:, t, :] + dh, dc)
            for k, grad in enumerate(step.grads):
                totals[k] += grad
        for k, total in enumerate(totals):
            self.grads[k][...] = total
        return dxs

    def reset_state(self):
        self.h = self.c = None


class TimeDropout:
    """Inverted dropout, a fresh mask per element and time step."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self.train_flg = True

    def forward(self, xs):
        if not self.train_flg:
            return xs
        keep = np.random.rand(*xs.shape) > self.dropout_ratio
        self.mask = keep.astype(np.float32) * (1 / (1.0 - self.dropout_ratio))
        return xs * self.mask

    def backward(self, dout):
        return dout * self.mask


class TimeAffine:
    def __init__(self, W, b):
        self.params, self.grads = [W, b], [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        N, T, _ = x.shape
        self.x = x
        return (x.reshape(N * T, -1) @ W + b).reshape(N, T, -1)

    def backward(self, dout):
        W, _ = self.params
        N, T, _ = self.x.shape
        d = dout.reshape(N * T, -1)
        self.grads[0][...] = self.x.reshape(N * T, -1).T @ d
        self.grads[1][...] = d.sum(axis=0)
        return (d @ W.T).reshape(N, T, -1)


class TimeSoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.cache = None
        self.ignore_label = -1

    def forward(self, xs, ts):
        N, T, V = xs.shape
        xs, ts = xs.reshape(N * T, V), ts.reshape(N * T)
        mask = ts != self.ignore_label
        e = np.exp(xs - xs.max(axis=1, keepdims=True))
        ys = e / e.sum(axis=1, keepdims=True)
        ls = np.log(ys[np.arange(N * T), ts]) * mask
        self.cache = (ts, ys, mask, (N, T, V))
        return -ls.sum() / mask.sum()

    def backward(self, dout=1):
        ts, ys, mask, (N, T, V) = self.cache
        dx = ys.copy()
        dx[np.arange(N * T), ts] -= 1
        dx *= dout / mask.sum()
        dx *= mask[:, None]
        return dx.reshape(N, T, V)


class BetterRnnlm:
    def __init__(self, vocab_size=VOCAB, wordvec_size=WORDVEC, hidden_size=HIDDEN,
                 dropout_ratio=0.5, tie=True, seed=0, dtype="f"):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.RandomState(seed).randn
        embed_W = (rn(V, D) / 10).astype(dtype)
        lstm1 = [(rn(D, 4 * H) / np.sqrt(D)).astype(dtype), (rn(H, 4 * H) / np.sqrt(H)).astype(dtype),
                 (0.1 * rn(4 * H)).astype(dtype)]
        lstm2 = [(rn(H, 4 * H) / np.sqrt(H)).astype(dtype), (rn(H, 4 * H) / np.sqrt(H)).astype(dtype),
                 (0.1 * rn(4 * H)).astype(dtype)]
        affine_b = (0.1 * rn(V)).astype(dtype)
        affine_W = embed_W.T if tie else embed_W.T.copy()
        self.layers = [TimeEmbedding(embed_W), TimeDropout(dropout_ratio),
                       TimeLSTM(*lstm1, stateful=True), TimeDropout(dropout_ratio),
                       TimeLSTM(*lstm2, stateful=True), TimeDropout(dropout_ratio),
                       TimeAffine(affine_W, affine_b)]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.lstm_layers = [self.layers[2], self.layers[4]]
        self.drop_layers = [self.layers[1], self.layers[3], self.layers[5]]
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def predict(self, xs, train_flg=False):
        for layer in self.drop_layers:
            layer.train_flg = train_flg
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs

    def forward(self, xs, ts, train_flg=True):
        return self.loss_layer.forward(self.predict(xs, train_flg), ts)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def reset_state(self):
        for layer in self.lstm_layers:
            layer.reset_state()


def tokens(n=3, T=5, vocab=VOCAB, seed=4):
    rng = np.random.RandomState(seed)
    return rng.randint(0, vocab, (n, T)), rng.randint(0, vocab, (n, T))


def make_lm():
    return BetterRnnlm()


def make_untied_lm():
    return BetterRnnlm(tie=False)


def make_lm_no_dropout():
    return BetterRnnlm(dropout_ratio=0.0)
