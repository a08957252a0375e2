"""A NumPy net without layer objects, as a learner writes one: a ``params`` dict, a
``_forward`` whose locals hold each step, ``loss``, ``predict`` and a backprop ``gradient``.

    x @ W_in + b_in -> layer norm (gamma, beta; eps 1e-5) -> leaky ReLU (slope 0.1)
      -> h + leaky_relu(h @ W_res + b_res) -> @ W_out + b_out -> softmax cross-entropy

``W_res`` is square, so a port that uses it transposed still runs.
"""
import numpy as np


def leaky_relu(z, slope):
    return np.where(z > 0, z, slope * z)


class ResidualNet:
    def __init__(self, n_in=784, n_hidden=16, n_out=10, slope=0.1, eps=1e-5, seed=0):
        rng = np.random.RandomState(seed)
        self.slope, self.eps = slope, eps
        self.params = {
            "W_in": rng.randn(n_in, n_hidden) * 0.05,
            "b_in": rng.randn(n_hidden) * 0.1,
            "gamma": 1.0 + 0.1 * rng.randn(n_hidden),
            "beta": 0.1 * rng.randn(n_hidden),
            "W_res": rng.randn(n_hidden, n_hidden) * 0.3,
            "b_res": rng.randn(n_hidden) * 0.1,
            "W_out": rng.randn(n_hidden, n_out) * 0.3,
            "b_out": np.zeros(n_out),
        }

    def _forward(self, x):
        p = self.params
        z = x @ p["W_in"] + p["b_in"]
        mu = z.mean(axis=-1, keepdims=True)
        var = z.var(axis=-1, keepdims=True)
        std = np.sqrt(var + self.eps)
        z_hat = (z - mu) / std
        y = p["gamma"] * z_hat + p["beta"]
        h = leaky_relu(y, self.slope)
        q = h @ p["W_res"] + p["b_res"]
        r = h + leaky_relu(q, self.slope)
        scores = r @ p["W_out"] + p["b_out"]
        self.cache = (x, std, z_hat, y, h, q, r)
        return scores

    def predict(self, x):
        return self._forward(x)

    def _log_softmax(self, x):
        scores = self._forward(x)
        shifted = scores - scores.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def loss(self, x, t):
        log_p = self._log_softmax(x)
        if t.ndim == 2:  # one-hot
            t = t.argmax(axis=1)
        return -log_p[np.arange(len(t)), t].mean()

    def gradient(self, x, t):
        p, s = self.params, self.slope
        d_scores = np.exp(self._log_softmax(x))
        x, std, z_hat, y, h, q, r = self.cache
        if t.ndim == 2:
            t = t.argmax(axis=1)
        d_scores[np.arange(len(t)), t] -= 1
        d_scores /= len(t)
        grads = {"W_out": r.T @ d_scores, "b_out": d_scores.sum(axis=0)}
        d_r = d_scores @ p["W_out"].T
        d_q = d_r * np.where(q > 0, 1.0, s)
        grads["W_res"], grads["b_res"] = h.T @ d_q, d_q.sum(axis=0)
        d_y = (d_r + d_q @ p["W_res"].T) * np.where(y > 0, 1.0, s)
        grads["gamma"], grads["beta"] = (d_y * z_hat).sum(axis=0), d_y.sum(axis=0)
        d_hat = d_y * p["gamma"]
        d_z = (d_hat - d_hat.mean(axis=-1, keepdims=True)
               - z_hat * (d_hat * z_hat).mean(axis=-1, keepdims=True)) / std
        grads["W_in"], grads["b_in"] = x.T @ d_z, d_z.sum(axis=0)
        return grads


def make_numpy():
    return ResidualNet()
