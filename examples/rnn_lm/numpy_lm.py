"""Two recurrent language models in the style of *Deep Learning from Scratch 2*.

Written here, in NumPy, as a learner writes them from the book's second volume: time
layers that take a whole batch of sequences ``(N, T, ...)`` at once, each keeping its
arrays in ``params`` and filling ``grads`` in place on ``backward``; the model gathers
both lists, ``forward(xs, ts)`` returns the loss and ``backward()`` runs the layers in
reverse. Arrays are float32 (``'f'``), as the book makes them, so the check runs in
float32 without a flag.

* ``SimpleRnnlm``: TimeEmbedding, TimeRNN (tanh cell), TimeAffine, TimeSoftmaxWithLoss;
* ``Rnnlm``: the same with TimeLSTM, its four gate blocks side by side in ``Wx (D, 4H)``,
  ``Wh (H, 4H)``, ``b (4H,)`` in the book's order f, g, i, o;
* ``BetterRnnlm``: two TimeLSTM layers with TimeDropout before, between and after them,
  and the output layer's weight tied to the embedding's (``TimeAffine(embed_W.T, b)``).

Both recurrent layers are stateful (the last ``h``, and ``c``, carried into the next
``forward``) and forget it on ``reset_state()``.

    python -m compare port examples/rnn_lm/numpy_lm.py:make_rnnlm \\
        examples/rnn_lm/torch_lm.py:make_lstm --data examples/rnn_lm/tokens.npz
"""
import numpy as np


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


class TimeEmbedding:
    def __init__(self, W):
        self.params = [W]
        self.grads = [np.zeros_like(W)]
        self.idx = None

    def forward(self, xs):
        W, = self.params
        self.idx = xs
        return W[xs]

    def backward(self, dout):
        dW, = self.grads
        dW[...] = 0
        # a word seen twice in the batch receives both gradients
        np.add.at(dW, self.idx, dout)
        return None


class RNN:
    """One time step: ``h_next = tanh(x Wx + h_prev Wh + b)``."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev):
        Wx, Wh, b = self.params
        h_next = np.tanh(np.dot(x, Wx) + np.dot(h_prev, Wh) + b)
        self.cache = (x, h_prev, h_next)
        return h_next

    def backward(self, dh_next):
        Wx, Wh, _ = self.params
        x, h_prev, h_next = self.cache
        da = dh_next * (1 - h_next ** 2)
        self.grads[0][...] = np.dot(x.T, da)
        self.grads[1][...] = np.dot(h_prev.T, da)
        self.grads[2][...] = da.sum(axis=0)
        return np.dot(da, Wx.T), np.dot(da, Wh.T)


class LSTM:
    """One time step; the gate blocks of ``A = x Wx + h_prev Wh + b`` are f, g, i, o."""

    def __init__(self, Wx, Wh, b):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
        f = sigmoid(A[:, :H])
        g = np.tanh(A[:, H:2 * H])
        i = sigmoid(A[:, 2 * H:3 * H])
        o = sigmoid(A[:, 3 * H:])
        c_next = f * c_prev + g * i
        tanh_c = np.tanh(c_next)
        h_next = o * tanh_c
        self.cache = (x, h_prev, c_prev, f, g, i, o, tanh_c)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        Wx, Wh, _ = self.params
        x, h_prev, c_prev, f, g, i, o, tanh_c = self.cache
        dc = dc_next + dh_next * o * (1 - tanh_c ** 2)
        df = dc * c_prev * f * (1 - f)
        dg = dc * i * (1 - g ** 2)
        di = dc * g * i * (1 - i)
        do = dh_next * tanh_c * o * (1 - o)
        dA = np.hstack((df, dg, di, do))
        self.grads[0][...] = np.dot(x.T, dA)
        self.grads[1][...] = np.dot(h_prev.T, dA)
        self.grads[2][...] = dA.sum(axis=0)
        return np.dot(dA, Wx.T), np.dot(dA, Wh.T), dc * f


class TimeRNN:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.dh = None, None
        self.stateful = stateful

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        self.layers = []
        for t in range(T):
            layer = RNN(Wx, Wh, b)
            self.h = layer.forward(xs[:, t, :], self.h)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx = self.params[0]
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, Wx.shape[0]), dtype=dhs.dtype)
        total = [np.zeros_like(g) for g in self.grads]
        dh = 0
        for t in reversed(range(T)):
            layer = self.layers[t]
            dxs[:, t, :], dh = layer.backward(dhs[:, t, :] + dh)
            for k, grad in enumerate(layer.grads):
                total[k] += grad
        for k, grad in enumerate(total):
            self.grads[k][...] = grad
        self.dh = dh
        return dxs

    def reset_state(self):
        self.h = None


class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None
        self.h, self.c, self.dh = None, None, None
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
            layer = LSTM(Wx, Wh, b)
            self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs

    def backward(self, dhs):
        Wx = self.params[0]
        N, T, _ = dhs.shape
        dxs = np.empty((N, T, Wx.shape[0]), dtype=dhs.dtype)
        total = [np.zeros_like(g) for g in self.grads]
        dh, dc = 0, 0
        for t in reversed(range(T)):
            layer = self.layers[t]
            dxs[:, t, :], dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            for k, grad in enumerate(layer.grads):
                total[k] += grad
        for k, grad in enumerate(total):
            self.grads[k][...] = grad
        self.dh = dh
        return dxs

    def reset_state(self):
        self.h, self.c = None, None


class TimeAffine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        N, T, _ = x.shape
        self.x = x
        out = np.dot(x.reshape(N * T, -1), W) + b
        return out.reshape(N, T, -1)

    def backward(self, dout):
        W, _ = self.params
        N, T, _ = self.x.shape
        dout = dout.reshape(N * T, -1)
        self.grads[0][...] = np.dot(self.x.reshape(N * T, -1).T, dout)
        self.grads[1][...] = dout.sum(axis=0)
        return np.dot(dout, W.T).reshape(self.x.shape)


class TimeSoftmaxWithLoss:
    """The cross-entropy averaged over the tokens whose target is not ``ignore_label``."""

    def __init__(self, ignore_label=-1):
        self.params, self.grads = [], []
        self.ignore_label = ignore_label
        self.cache = None

    def forward(self, xs, ts):
        N, T, V = xs.shape
        if ts.ndim == 3:  # one-hot targets
            ts = ts.argmax(axis=2)
        ts = ts.reshape(N * T)
        mask = ts != self.ignore_label
        ys = softmax(xs.reshape(N * T, V))
        # an ignored position indexes with -1 (any column): its term is masked out below
        logp = np.log(ys[np.arange(N * T), ts])
        loss = -np.sum(logp * mask) / mask.sum()
        self.cache = (ts, ys, mask, (N, T, V))
        return loss

    def backward(self, dout=1):
        ts, ys, mask, (N, T, V) = self.cache
        dx = ys.copy()
        dx[np.arange(N * T), ts] -= 1
        dx *= dout / mask.sum()
        dx *= mask[:, None]
        return dx.reshape(N, T, V)


class _TimeModel:
    """What both models share: the layers in a list, their arrays gathered in ``params``
    and ``grads`` (the same arrays the layers hold)."""

    def _gather(self):
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

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
        return dout

    def reset_state(self):
        self.layers[1].reset_state()


def _init(V, D, H, G, seed, dtype):
    """Embedding ``(V, D)``, recurrent ``Wx (D, G*H)``, ``Wh (H, G*H)``, ``b``, affine
    ``(H, V)`` and its bias, scaled as the book scales them (Xavier, the embedding by
    1/100); the biases drawn too, so that a bias paired wrongly cannot hide as zeros."""
    rn = np.random.RandomState(seed).randn
    return [(rn(V, D) / 100).astype(dtype),
            (rn(D, G * H) / np.sqrt(D)).astype(dtype),
            (rn(H, G * H) / np.sqrt(H)).astype(dtype),
            (rn(G * H) / 10).astype(dtype),
            (rn(H, V) / np.sqrt(H)).astype(dtype),
            (rn(V) / 10).astype(dtype)]


class SimpleRnnlm(_TimeModel):
    def __init__(self, vocab_size=10, wordvec_size=5, hidden_size=4, seed=0, dtype='f'):
        embed_W, rnn_Wx, rnn_Wh, rnn_b, affine_W, affine_b = _init(
            vocab_size, wordvec_size, hidden_size, 1, seed, dtype)
        self.layers = [TimeEmbedding(embed_W),
                       TimeRNN(rnn_Wx, rnn_Wh, rnn_b, stateful=True),
                       TimeAffine(affine_W, affine_b)]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._gather()


class Rnnlm(_TimeModel):
    def __init__(self, vocab_size=10, wordvec_size=5, hidden_size=4, seed=0, dtype='f'):
        embed_W, lstm_Wx, lstm_Wh, lstm_b, affine_W, affine_b = _init(
            vocab_size, wordvec_size, hidden_size, 4, seed, dtype)
        self.layers = [TimeEmbedding(embed_W),
                       TimeLSTM(lstm_Wx, lstm_Wh, lstm_b, stateful=True),
                       TimeAffine(affine_W, affine_b)]
        self.loss_layer = TimeSoftmaxWithLoss()
        self._gather()


class TimeDropout:
    """The book's inverted dropout: a fresh mask per element and time step, scaled by
    ``1 / (1 - ratio)`` in training; nothing at prediction."""

    def __init__(self, dropout_ratio=0.5):
        self.params, self.grads = [], []
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self.train_flg = True

    def forward(self, xs):
        if not self.train_flg:
            return xs
        flg = np.random.rand(*xs.shape) > self.dropout_ratio
        scale = 1 / (1.0 - self.dropout_ratio)
        self.mask = flg.astype(np.float32) * scale
        return xs * self.mask

    def backward(self, dout):
        return dout * self.mask


class BetterRnnlm(_TimeModel):
    """The book's ``BetterRnnlm``: the embedding's ``W`` is the output layer's too,
    transposed, so ``wordvec_size`` equals ``hidden_size``."""

    def __init__(self, vocab_size=10, wordvec_size=5, hidden_size=5, dropout_ratio=0.5,
                 seed=0, dtype='f'):
        V, D, H = vocab_size, wordvec_size, hidden_size
        embed_W, lstm_Wx1, lstm_Wh1, lstm_b1, _, affine_b = _init(V, D, H, 4, seed, dtype)
        _, lstm_Wx2, lstm_Wh2, lstm_b2, _, _ = _init(V, H, H, 4, seed + 1, dtype)
        self.layers = [TimeEmbedding(embed_W),
                       TimeDropout(dropout_ratio),
                       TimeLSTM(lstm_Wx1, lstm_Wh1, lstm_b1, stateful=True),
                       TimeDropout(dropout_ratio),
                       TimeLSTM(lstm_Wx2, lstm_Wh2, lstm_b2, stateful=True),
                       TimeDropout(dropout_ratio),
                       TimeAffine(embed_W.T, affine_b)]  # weight tying
        self.loss_layer = TimeSoftmaxWithLoss()
        self.lstm_layers = [self.layers[2], self.layers[4]]
        self.drop_layers = [self.layers[1], self.layers[3], self.layers[5]]
        self._gather()

    def predict(self, xs, train_flg=False):
        for layer in self.drop_layers:
            layer.train_flg = train_flg
        return super().predict(xs)

    def forward(self, xs, ts, train_flg=True):
        return self.loss_layer.forward(self.predict(xs, train_flg), ts)

    def reset_state(self):
        for layer in self.lstm_layers:
            layer.reset_state()


def make_simple_rnnlm():
    return SimpleRnnlm()


def make_rnnlm():
    return Rnnlm()


def make_better_rnnlm():
    return BetterRnnlm()
