"""NumPy models without layer objects, as learners write them, and their ports.

``ResidualNet``: ``fc -> layer norm -> leaky ReLU (0.1) -> h + leaky(h @ W_res + b_res)
-> fc``, its intermediate arrays in locals. ``TanhNet``: a tanh MLP keeping its arrays in
a dict ``c`` and a list ``acts``. Each has a module port and a functional port; the
``bug`` argument plants one usual porting bug.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

D, H, C = 6, 5, 3
SLOPE, EPS = 0.1, 1e-5


def _cross_entropy(scores, t):
    z = scores - scores.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(t)), t].mean()


class ResidualNet:
    def __init__(self, seed=0):
        rng = np.random.RandomState(seed)
        self.params = {"W1": rng.randn(D, H) / np.sqrt(D), "b1": 0.1 * rng.randn(H),
                       "gamma": 1 + 0.1 * rng.randn(H), "beta": 0.1 * rng.randn(H),
                       "W_res": rng.randn(H, H) / np.sqrt(H), "b_res": 0.1 * rng.randn(H),
                       "W2": rng.randn(H, C) / np.sqrt(H), "b2": 0.1 * rng.randn(C)}

    def _forward(self, x):
        p = self.params
        z1 = x @ p["W1"] + p["b1"]
        mu = z1.mean(axis=1, keepdims=True)
        var = z1.var(axis=1, keepdims=True)
        zn = (z1 - mu) / np.sqrt(var + EPS)
        ln = p["gamma"] * zn + p["beta"]
        h = np.where(ln > 0, ln, SLOPE * ln)
        r = h @ p["W_res"] + p["b_res"]
        a = np.where(r > 0, r, SLOPE * r)
        h2 = h + a
        return h2 @ p["W2"] + p["b2"]

    def predict(self, x):
        return self._forward(x)

    def loss(self, x, t):
        return _cross_entropy(self._forward(x), t)


class ResidualPort(nn.Module):
    """``bug``: ``"slope"`` (nn.LeakyReLU's default 0.01), ``"skip"`` (the skip forgotten),
    ``"tanh"`` (tanh for the leaky ReLU), ``"ln_eps"`` (the layer norm's eps 1e-3)."""

    def __init__(self, bug=None):
        super().__init__()
        self.fc1 = nn.Linear(D, H).double()
        self.ln = nn.LayerNorm(H, eps=1e-3 if bug == "ln_eps" else EPS).double()
        self.res, self.fc2 = nn.Linear(H, H).double(), nn.Linear(H, C).double()
        self.act = nn.LeakyReLU() if bug == "slope" else nn.Tanh() if bug == "tanh" else nn.LeakyReLU(SLOPE)
        self.bug = bug

    def forward(self, x):
        h = self.act(self.ln(self.fc1(x)))
        a = self.act(self.res(h))
        return self.fc2(a if self.bug == "skip" else h + a)


class ResidualFunctional(nn.Module):
    """A literal port: the NumPy names as ``nn.Parameter``s. ``bug="transpose"``:
    ``h @ W_res.T``; ``bug="slope"``: ``F.leaky_relu``'s default slope."""

    def __init__(self, bug=None):
        super().__init__()
        net = ResidualNet()
        for name, value in net.params.items():
            setattr(self, name, nn.Parameter(torch.zeros(value.shape, dtype=torch.float64)))
        self.bug = bug

    def forward(self, x):
        slope = 0.01 if self.bug == "slope" else SLOPE
        z1 = x @ self.W1 + self.b1
        h = F.leaky_relu(F.layer_norm(z1, (H,), self.gamma, self.beta, EPS), slope)
        W_res = self.W_res.T if self.bug == "transpose" else self.W_res
        a = F.leaky_relu(h @ W_res + self.b_res, slope)
        return (h + a) @ self.W2 + self.b2


class TanhNet:
    """The arrays in a dict and a list, as some courses keep their caches."""

    def __init__(self, seed=1):
        rng = np.random.RandomState(seed)
        self.params = {"W1": rng.randn(D, H) / np.sqrt(D), "b1": np.zeros(H),
                       "W2": rng.randn(H, H) / np.sqrt(H), "b2": 0.1 * rng.randn(H),
                       "W3": rng.randn(H, C) / np.sqrt(H), "b3": np.zeros(C)}

    def predict(self, x):
        p, c, acts = self.params, {}, [x]
        c["z1"] = x @ p["W1"] + p["b1"]
        c["h"] = np.tanh(c["z1"])
        acts.append(c["h"])
        c["z2"] = acts[-1] @ p["W2"] + p["b2"]
        acts.append(np.tanh(c["z2"]))
        return acts[-1] @ p["W3"] + p["b3"]

    def loss(self, x, t):
        return _cross_entropy(self.predict(x), t)

    def gradient(self, x, t):
        p, n = self.params, len(t)
        z1 = x @ p["W1"] + p["b1"]
        h1 = np.tanh(z1)
        z2 = h1 @ p["W2"] + p["b2"]
        h2 = np.tanh(z2)
        scores = h2 @ p["W3"] + p["b3"]
        e = np.exp(scores - scores.max(axis=1, keepdims=True))
        dscores = e / e.sum(axis=1, keepdims=True)
        dscores[np.arange(n), t] -= 1
        dscores /= n
        dh2 = dscores @ p["W3"].T
        dz2 = dh2 * (1 - h2 ** 2)
        dh1 = dz2 @ p["W2"].T
        dz1 = dh1 * (1 - h1 ** 2)
        return {"W3": h2.T @ dscores, "b3": dscores.sum(axis=0), "W2": h1.T @ dz2,
                "b2": dz2.sum(axis=0), "W1": x.T @ dz1, "b1": dz1.sum(axis=0)}


class TanhPort(nn.Module):
    """``bug="relu"``: ``nn.ReLU`` where the model has tanh."""

    def __init__(self, bug=None):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = (nn.Linear(D, H).double(), nn.Linear(H, H).double(),
                                        nn.Linear(H, C).double())
        self.act = nn.ReLU() if bug == "relu" else nn.Tanh()

    def forward(self, x):
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))


def batch(n=8, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, D), rng.randint(0, C, n)


def conv2d(x, W, b, pad):
    """A convolution as learners write it without im2col: a window view and an einsum."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = np.lib.stride_tricks.sliding_window_view(xp, W.shape[2:], axis=(2, 3))
    return np.einsum("ncijkl,fckl->nfij", windows, W) + b[None, :, None, None]


class ConvNet:
    """``conv 3x3, pad 1 -> relu -> (mean over the image | flatten) -> fc``."""
    C_IN, F_OUT, SIDE = 2, 4, 5

    def __init__(self, head="mean", seed=2):
        rng = np.random.RandomState(seed)
        n_in = self.F_OUT if head == "mean" else self.F_OUT * self.SIDE ** 2
        self.params = {"W1": rng.randn(self.F_OUT, self.C_IN, 3, 3) / 3, "b1": 0.1 * rng.randn(self.F_OUT),
                       "W2": rng.randn(n_in, C) / np.sqrt(n_in), "b2": 0.1 * rng.randn(C)}
        self.head = head

    def predict(self, x):
        p = self.params
        z = conv2d(x, p["W1"], p["b1"], pad=1)
        h = np.maximum(z, 0)
        f = h.mean(axis=(2, 3)) if self.head == "mean" else h.reshape(len(x), -1)
        return f @ p["W2"] + p["b2"]

    def loss(self, x, t):
        return _cross_entropy(self.predict(x), t)


class ConvPort(nn.Module):
    def __init__(self, head="mean", padding=1):
        super().__init__()
        n = ConvNet.F_OUT if head == "mean" else ConvNet.F_OUT * ConvNet.SIDE ** 2
        self.conv = nn.Conv2d(ConvNet.C_IN, ConvNet.F_OUT, 3, padding=padding).double()
        self.fc = nn.Linear(n, C).double()
        self.head = head

    def forward(self, x):
        h = torch.relu(self.conv(x))
        return self.fc(h.mean(dim=(2, 3)) if self.head == "mean" else h.flatten(1))


def image_batch(n=4, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, ConvNet.C_IN, ConvNet.SIDE, ConvNet.SIDE), rng.randint(0, C, n)


# zero-argument factories, for the command line (docs/traps.md)
def skip_forgotten():
    return ResidualPort("skip")


def default_slope():
    return ResidualPort("slope")


def layer_norm_eps():
    return ResidualPort("ln_eps")


def relu_for_tanh():
    return TanhPort("relu")


def padding_forgotten():
    return ConvPort("flat", padding=0)


def flat_conv_net():
    return ConvNet("flat")
