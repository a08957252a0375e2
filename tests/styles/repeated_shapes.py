"""A NumPy MLP without layer objects whose parameters nearly all share a shape: every
vector ``(1, H)`` (biases, a layer norm's ``gamma`` and ``beta``), the hidden weights
``(H, H)``, with ``H`` equal to the classes. Only what the forward pass computes with each
array tells which torch parameter holds it: its dict may list them in any order.

``fc(x) -> layer norm -> tanh -> fc -> layer norm -> tanh -> fc``, and its port.
"""
import numpy as np
import torch
from torch import nn

D_IN, H = 5, 4
EPS = 1e-5
NAMES = ("W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3")
# the truth: which torch parameter holds which NumPy one
TWINS = {"W1": "fc1.weight", "b1": "fc1.bias", "gamma1": "ln1.weight", "beta1": "ln1.bias",
         "W2": "fc2.weight", "b2": "fc2.bias", "gamma2": "ln2.weight", "beta2": "ln2.bias",
         "W3": "fc3.weight", "b3": "fc3.bias"}


def _layer_norm(h, gamma, beta):
    mu = h.mean(axis=1, keepdims=True)
    var = h.var(axis=1, keepdims=True)
    return gamma * ((h - mu) / np.sqrt(var + EPS)) + beta


class RepeatedShapesNet:
    def __init__(self, order=NAMES, seed=0, cast=False):
        rng = np.random.RandomState(seed)
        values = {"W1": rng.randn(D_IN, H) / np.sqrt(D_IN)}
        for i in (2, 3):
            values[f"W{i}"] = rng.randn(H, H) / np.sqrt(H)
        for i in (1, 2, 3):
            values[f"b{i}"] = 0.1 * rng.randn(1, H)
        for i in (1, 2):
            values[f"gamma{i}"] = 1 + 0.1 * rng.randn(1, H)
            values[f"beta{i}"] = 0.1 * rng.randn(1, H)
        self.params = {name: values[name] for name in order}
        self.cast = cast

    def _p(self, name):
        value = self.params[name]
        # a defensive cast, as some learners write: the arrays read so are no longer the
        # params' own, and what the pass computes with them cannot be followed
        return np.asarray(value, dtype=np.float64) if self.cast else value

    def predict(self, x):
        p = self._p
        h = np.tanh(_layer_norm(x @ p("W1") + p("b1"), p("gamma1"), p("beta1")))
        h = np.tanh(_layer_norm(h @ p("W2") + p("b2"), p("gamma2"), p("beta2")))
        return h @ p("W3") + p("b3")

    def loss(self, x, t):
        z = self.predict(x)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -logp[np.arange(len(t)), t].mean()


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.ln1 = nn.Linear(D_IN, H), nn.LayerNorm(H, eps=EPS)
        self.fc2, self.ln2 = nn.Linear(H, H), nn.LayerNorm(H, eps=EPS)
        self.fc3 = nn.Linear(H, H)
        self.double()

    def forward(self, x):
        h = torch.tanh(self.ln1(self.fc1(x)))
        h = torch.tanh(self.ln2(self.fc2(h)))
        return self.fc3(h)


class FunctionalPort(nn.Module):
    """The same net written with ``x @ W.T + b`` and ``F.layer_norm``, parameters listed
    biases first."""

    def __init__(self):
        super().__init__()
        self.b = nn.ParameterList([nn.Parameter(torch.zeros(H, dtype=torch.float64)) for _ in range(3)])
        self.g = nn.ParameterList([nn.Parameter(torch.ones(H, dtype=torch.float64)) for _ in range(2)])
        self.s = nn.ParameterList([nn.Parameter(torch.zeros(H, dtype=torch.float64)) for _ in range(2)])
        self.w = nn.ParameterList([nn.Parameter(torch.zeros(H, D_IN, dtype=torch.float64))] +
                                  [nn.Parameter(torch.zeros(H, H, dtype=torch.float64)) for _ in range(2)])

    def forward(self, x):
        for i in range(2):
            h = x @ self.w[i].T + self.b[i]
            x = torch.tanh(nn.functional.layer_norm(h, (H,), self.g[i], self.s[i], EPS))
        return x @ self.w[2].T + self.b[2]


FUNCTIONAL_TWINS = {"W1": "w.0", "b1": "b.0", "gamma1": "g.0", "beta1": "s.0", "W2": "w.1",
                    "b2": "b.1", "gamma2": "g.1", "beta2": "s.1", "W3": "w.2", "b3": "b.2"}


def batch(n=16, seed=1):
    rng = np.random.RandomState(seed)
    return rng.randn(n, D_IN), rng.randint(0, H, n)


def make_cast_net():
    """Listed last to first, its arrays read through ``np.asarray``: the pass cannot be followed."""
    return RepeatedShapesNet(NAMES[::-1], cast=True)


def make_port():
    return Port()
