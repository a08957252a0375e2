"""A NumPy net with no layers whose batch norm is written in the forward's own lines, as
learners write it: ``fc - bn - relu - fc`` over a ``params`` dict (``W1``, ``b1``,
``gamma1``, ``beta1`` rows ``(1, H)``, ``W2``, ``b2``), the batch norm's ``mu``, ``var`` and
``X_norm`` each a line of the step, its eps 1e-8 (or ``eps``); the loss a softmax cross-entropy of the
scores plus ``0.5 * lam * sum(W**2)`` on the weights. ``predict`` is the training-mode
forward (the running statistics are kept but never used here)."""
import numpy as np

D, H, C = 6, 5, 3
EPS = 1e-8


def bn_forward(X, gamma, beta, eps):
    mu = np.mean(X, axis=0)
    var = np.var(X, axis=0)
    X_norm = (X - mu) / np.sqrt(var + eps)
    out = gamma * X_norm + beta
    return out, mu, var


class InlineBatchNormNet:
    def __init__(self, lam=1e-3, eps=EPS, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W1": rng.randn(D, H) / np.sqrt(D), "b1": 0.1 * rng.randn(1, H),
                       "gamma1": 1 + 0.1 * rng.randn(1, H), "beta1": 0.1 * rng.randn(1, H),
                       "W2": rng.randn(H, C) / np.sqrt(H), "b2": 0.1 * rng.randn(1, C)}
        self.lam, self.eps = lam, eps
        self.running_mean, self.running_var = np.zeros(H), np.ones(H)

    def predict(self, X):
        p = self.params
        h1 = X @ p["W1"] + p["b1"]
        h1, mu, var = bn_forward(h1, p["gamma1"], p["beta1"], self.eps)
        self.running_mean = 0.9 * self.running_mean + 0.1 * mu
        self.running_var = 0.9 * self.running_var + 0.1 * var
        h1 = np.maximum(h1, 0)
        return h1 @ p["W2"] + p["b2"]

    def loss(self, X, t):
        scores = self.predict(X)
        y = t.argmax(axis=1) if t.ndim == 2 else t
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        reg = 0.5 * self.lam * sum(np.sum(self.params[w] ** 2) for w in ("W1", "W2"))
        return -log_p[np.arange(len(y)), y].mean() + reg


def batch(n=8, seed=3):
    rng = np.random.RandomState(seed)
    return rng.randn(n, D), np.eye(C)[rng.randint(0, C, n)]
