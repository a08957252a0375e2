"""word2vec's CBOW with negative sampling, in the style of the book's second volume
(chapter 4): ``Embedding`` layers sharing ``W_in`` (listed once per context word),
``EmbeddingDot`` layers sharing ``W_out``, a unigram sampler drawing each row's
negatives with ``np.random.choice(V, size, replace=False, p=p)`` (the target's
probability set to 0), and ``SigmoidWithLoss`` on the positive and each negative
score, summed. float32 arrays, ``params``/``grads`` lists, ``forward(contexts, target)``
returning the loss, ``backward(dout=1)`` filling ``grads``.

The data: ``contexts`` ``(N, 2 * window)`` and ``target`` ``(N,)`` word ids cut from
``CORPUS``; ``make_data`` writes them to an ``.npz`` for ``--data``.
"""
import numpy as np

VOCAB, HIDDEN, WINDOW, SAMPLES = 8, 5, 1, 3
CORPUS = np.array([0, 1, 2, 3, 4, 1, 5, 6, 2, 7, 1, 3, 0, 4, 5, 1, 2, 6, 7, 3, 1, 0])


class Embedding:
    def __init__(self, W):
        self.params, self.grads = [W], [np.zeros_like(W)]
        self.idx = None

    def forward(self, idx):
        W, = self.params
        self.idx = idx
        return W[idx]

    def backward(self, dout):
        dW = self.grads[0]
        dW[...] = 0
        np.add.at(dW, self.idx, dout)
        return None


class EmbeddingDot:
    def __init__(self, W):
        self.embed = Embedding(W)
        self.params, self.grads = self.embed.params, self.embed.grads
        self.cache = None

    def forward(self, h, idx):
        w = self.embed.forward(idx)
        self.cache = (h, w)
        return np.sum(w * h, axis=1)

    def backward(self, dout):
        h, w = self.cache
        dout = dout.reshape(-1, 1)
        self.embed.backward(dout * h)
        return dout * w


class SigmoidWithLoss:
    """The book's: the two-class cross-entropy with its 1e-7 inside the log."""

    def __init__(self):
        self.params, self.grads = [], []
        self.y = self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = 1 / (1 + np.exp(-x))
        both = np.c_[1 - self.y, self.y]
        n = t.shape[0]
        return -np.sum(np.log(both[np.arange(n), t] + 1e-7)) / n

    def backward(self, dout=1):
        return (self.y - self.t) * dout / self.t.shape[0]


class UnigramSampler:
    def __init__(self, corpus, power, sample_size):
        counts = np.bincount(corpus)
        self.vocab_size = len(counts)
        p = counts.astype(np.float64) ** power
        self.word_p = p / p.sum()
        self.sample_size = sample_size

    def get_negative_sample(self, target):
        negative = np.zeros((target.shape[0], self.sample_size), dtype=np.int64)
        for i, word in enumerate(target):
            p = self.word_p.copy()
            p[word] = 0
            p /= p.sum()
            negative[i] = np.random.choice(self.vocab_size, size=self.sample_size,
                                           replace=False, p=p)
        return negative


class NegativeSamplingLoss:
    def __init__(self, W, corpus, power=0.75, sample_size=SAMPLES):
        self.sample_size = sample_size
        self.sampler = UnigramSampler(corpus, power, sample_size)
        self.loss_layers = [SigmoidWithLoss() for _ in range(sample_size + 1)]
        self.embed_dot_layers = [EmbeddingDot(W) for _ in range(sample_size + 1)]
        self.params, self.grads = [], []
        for layer in self.embed_dot_layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, h, target):
        n = target.shape[0]
        negative = self.sampler.get_negative_sample(target)
        score = self.embed_dot_layers[0].forward(h, target)
        loss = self.loss_layers[0].forward(score, np.ones(n, dtype=np.int32))
        for k in range(self.sample_size):
            score = self.embed_dot_layers[1 + k].forward(h, negative[:, k])
            loss += self.loss_layers[1 + k].forward(score, np.zeros(n, dtype=np.int32))
        return loss

    def backward(self, dout=1):
        dh = 0
        for loss_layer, dot in zip(self.loss_layers, self.embed_dot_layers):
            dh += dot.backward(loss_layer.backward(dout))
        return dh


class CBOW:
    def __init__(self, vocab_size=VOCAB, hidden_size=HIDDEN, window_size=WINDOW,
                 corpus=CORPUS, seed=0, dtype="f"):
        rn = np.random.RandomState(seed).randn
        W_in = (0.5 * rn(vocab_size, hidden_size)).astype(dtype)
        W_out = (0.5 * rn(vocab_size, hidden_size)).astype(dtype)
        self.in_layers = [Embedding(W_in) for _ in range(2 * window_size)]
        self.ns_loss = NegativeSamplingLoss(W_out, corpus)
        self.params, self.grads = [], []
        for layer in [*self.in_layers, self.ns_loss]:
            self.params += layer.params
            self.grads += layer.grads
        self.word_vecs = W_in

    def forward(self, contexts, target):
        h = 0
        for k, layer in enumerate(self.in_layers):
            h = h + layer.forward(contexts[:, k])
        h = h * (1 / len(self.in_layers))
        return self.ns_loss.forward(h, target)

    def backward(self, dout=1):
        dh = self.ns_loss.backward(dout) * (1 / len(self.in_layers))
        for layer in self.in_layers:
            layer.backward(dh)
        return None


def contexts_and_target(corpus=CORPUS, window=WINDOW):
    target = corpus[window:-window]
    contexts = np.stack([corpus[i - window:i + window + 1][np.arange(2 * window + 1) != window]
                         for i in range(window, len(corpus) - window)])
    return contexts.astype(np.int64), target.astype(np.int64)


def make_cbow():
    return CBOW()


def make_data(path):
    x, t = contexts_and_target()
    np.savez(path, x=x, t=t)
