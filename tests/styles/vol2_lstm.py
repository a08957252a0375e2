"""A language model in the book's second-volume style (TimeEmbedding, TimeLSTM, TimeAffine,
TimeSoftmaxWithLoss; params and grads lists), written here for the recurrent tests. ``order``
says how the LSTM slices its fused gates: the book's ``"fgio"``, cs231n's ``"ifog"``, torch's
``"ifgo"``."""
import numpy as np

def sigmoid(x):
    return 1 / (1 + np.exp(-x))

def softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    x = np.exp(x)
    return x / x.sum(axis=-1, keepdims=True)

class TimeEmbedding:
    def __init__(self, W):
        self.params = [W]; self.grads = [np.zeros_like(W)]; self.W = W
    def forward(self, xs):
        self.idx = xs
        return self.W[xs]
    def backward(self, dout):
        dW = self.grads[0]; dW[...] = 0
        np.add.at(dW, self.idx, dout)
        return None

class LSTM:
    def __init__(self, Wx, Wh, b, order="fgio"):
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.cache = None
        self.order = order
    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        N, H = h_prev.shape
        A = np.dot(x, Wx) + np.dot(h_prev, Wh) + b
        blocks = {k: A[:, n * H:(n + 1) * H] for n, k in enumerate(self.order)}
        f, g, i, o = (sigmoid(blocks["f"]), np.tanh(blocks["g"]), sigmoid(blocks["i"]),
                      sigmoid(blocks["o"]))
        c_next = f * c_prev + g * i
        h_next = o * np.tanh(c_next)
        self.cache = (x, h_prev, c_prev, i, f, g, o, c_next)
        return h_next, c_next
    def backward(self, dh_next, dc_next):
        Wx, Wh, b = self.params
        x, h_prev, c_prev, i, f, g, o, c_next = self.cache
        tanh_c_next = np.tanh(c_next)
        ds = dc_next + (dh_next * o) * (1 - tanh_c_next ** 2)
        dc_prev = ds * f
        di = ds * g; df = ds * c_prev; do = dh_next * tanh_c_next; dg = ds * i
        di *= i * (1 - i); df *= f * (1 - f); do *= o * (1 - o); dg *= (1 - g ** 2)
        dA = np.hstack([{"f": df, "g": dg, "i": di, "o": do}[k] for k in self.order])
        dWh = np.dot(h_prev.T, dA); dWx = np.dot(x.T, dA); db = dA.sum(axis=0)
        self.grads[0][...] = dWx; self.grads[1][...] = dWh; self.grads[2][...] = db
        dx = np.dot(dA, Wx.T); dh_prev = np.dot(dA, Wh.T)
        return dx, dh_prev, dc_prev

class TimeLSTM:
    def __init__(self, Wx, Wh, b, stateful=False, order="fgio"):
        self.order = order
        self.params = [Wx, Wh, b]
        self.grads = [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
        self.layers = None; self.h, self.c = None, None; self.dh = None
        self.stateful = stateful
    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, D = xs.shape; H = Wh.shape[0]
        self.layers = []
        hs = np.empty((N, T, H), dtype=xs.dtype)
        if not self.stateful or self.h is None:
            self.h = np.zeros((N, H), dtype=xs.dtype)
        if not self.stateful or self.c is None:
            self.c = np.zeros((N, H), dtype=xs.dtype)
        for t in range(T):
            layer = LSTM(*self.params, order=self.order)
            self.h, self.c = layer.forward(xs[:, t, :], self.h, self.c)
            hs[:, t, :] = self.h
            self.layers.append(layer)
        return hs
    def backward(self, dhs):
        Wx, Wh, b = self.params
        N, T, H = dhs.shape; D = Wx.shape[0]
        dxs = np.empty((N, T, D), dtype=dhs.dtype)
        dh, dc = 0, 0
        grads = [0, 0, 0]
        for t in reversed(range(T)):
            layer = self.layers[t]
            dx, dh, dc = layer.backward(dhs[:, t, :] + dh, dc)
            dxs[:, t, :] = dx
            for i, grad in enumerate(layer.grads):
                grads[i] += grad
        for i, grad in enumerate(grads):
            self.grads[i][...] = grad
        self.dh = dh
        return dxs
    def reset_state(self):
        self.h, self.c = None, None

class TimeAffine:
    def __init__(self, W, b):
        self.params = [W, b]; self.grads = [np.zeros_like(W), np.zeros_like(b)]
    def forward(self, x):
        N, T, D = x.shape; W, b = self.params
        rx = x.reshape(N * T, -1)
        out = np.dot(rx, W) + b
        self.x = x
        return out.reshape(N, T, -1)
    def backward(self, dout):
        x = self.x; N, T, D = x.shape; W, b = self.params
        dout = dout.reshape(N * T, -1); rx = x.reshape(N * T, -1)
        db = np.sum(dout, axis=0); dW = np.dot(rx.T, dout); dx = np.dot(dout, W.T)
        self.grads[0][...] = dW; self.grads[1][...] = db
        return dx.reshape(*x.shape)

class TimeSoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []; self.cache = None; self.ignore_label = -1
    def forward(self, xs, ts):
        N, T, V = xs.shape
        if ts.ndim == 3:
            ts = ts.argmax(axis=2)
        mask = (ts != self.ignore_label)
        xs = xs.reshape(N * T, V); ts = ts.reshape(N * T); mask = mask.reshape(N * T)
        ys = softmax(xs)
        ls = np.log(ys[np.arange(N * T), ts])
        ls *= mask
        loss = -np.sum(ls)
        loss /= mask.sum()
        self.cache = (ts, ys, mask, (N, T, V))
        return loss
    def backward(self, dout=1):
        ts, ys, mask, (N, T, V) = self.cache
        dx = ys
        dx[np.arange(N * T), ts] -= 1
        dx *= dout
        dx /= mask.sum()
        dx *= mask[:, np.newaxis]
        return dx.reshape((N, T, V))

class Rnnlm:
    def __init__(self, vocab_size=10, wordvec_size=5, hidden_size=4, seed=0, dtype="f",
                 order="fgio", stateful=True, reset=True):
        V, D, H = vocab_size, wordvec_size, hidden_size
        rn = np.random.RandomState(seed).randn
        embed_W = (rn(V, D) / 100).astype(dtype)
        lstm_Wx = (rn(D, 4 * H) / np.sqrt(D)).astype(dtype)
        lstm_Wh = (rn(H, 4 * H) / np.sqrt(H)).astype(dtype)
        lstm_b = (rn(4 * H) * 0.1).astype(dtype)
        affine_W = (rn(H, V) / np.sqrt(H)).astype(dtype)
        affine_b = np.zeros(V).astype(dtype)
        self.layers = [TimeEmbedding(embed_W), TimeLSTM(lstm_Wx, lstm_Wh, lstm_b, stateful=stateful, order=order),
                       TimeAffine(affine_W, affine_b)]
        self.loss_layer = TimeSoftmaxWithLoss()
        self.lstm_layer = self.layers[1]
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads
    def predict(self, xs):
        for layer in self.layers:
            xs = layer.forward(xs)
        return xs
    def forward(self, xs, ts):
        score = self.predict(xs)
        return self.loss_layer.forward(score, ts)
    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout
    def reset_state(self):
        self.lstm_layer.reset_state()


class RnnlmWithoutReset(Rnnlm):
    """Stateful, with no reset_state of its own: the check puts the state back itself."""
    reset_state = None


def tokens(n=3, T=5, V=10, seed=1):
    rs = np.random.RandomState(seed)
    return rs.randint(0, V, (n, T)), rs.randint(0, V, (n, T))
