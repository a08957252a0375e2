"""PyTorch ports of the course models in this folder: right ones, and one planted bug per shape.

Every port is an ``nn.Module`` taking batch-first inputs ``(examples,
features)`` and returning what the NumPy model's forward pass ends in
(scores, probabilities or outputs); the classes also have a ``loss(x, t)``
of their own for ``--loss model`` (the ``nn.Sequential`` factories and
``FCFunctionalLinear`` have none). Their default sizes are those of the
NumPy factories (``make_net`` and friends), so every one builds with no
arguments.

* ``cs231n_two_layer`` (assignment 1). Right: ``A1Port``, ``a1_sequential``,
  ``A1FunctionalLinear``, ``A1Matmul``, ``reg_port``. Bug ``weight_decay``:
  ``A1HalfReg`` / ``half_reg_port``, assignment 2's ``0.5 * reg`` where
  assignment 1 has ``reg``.
* ``cs231n_fc_net`` (assignment 2). Right: ``FCNetPort`` (and the
  ``fc_*_port`` factories), ``FCNetFunctional``. Bug ``dropout_keep_prob``:
  ``FCNetKeepProbAsDrop``, ``nn.Dropout(p=keep)``.
* ``cs231n_fc_net``, plain. Right: ``FCFunctionalLinear``. Bug
  ``transpose``: ``FCRawWeight``, ``h @ self.fc2.weight``.
* ``dlai_deep_net`` (features first). Right: ``DlaiPort``,
  ``dlai_softmax_port``, ``DlaiMatmul``. Bug ``transpose``:
  ``DlaiTransposedW2``, ``a @ W2`` for ``a @ W2.T``.
* ``regression``. Right: ``RegressionPort``, ``regression_sequential``,
  ``RegressionFunctional``. Bug ``scale``: ``RegressionSumLoss``,
  ``reduction='sum'`` against the mean (factor ``N * k``).

``PLANTED_BUGS`` lists the planted bugs as ``compare port`` targets (from
the project root), with the NumPy model each is checked against, the
options the check needs, the phase the first mismatch is in and the NumPy
parameter (or layer) it is at.
"""
import torch
import torch.nn.functional as F
from torch import nn

# the sizes of the NumPy factories (cs231n_two_layer.make_net, cs231n_fc_net.make_*,
# dlai_deep_net.LAYER_DIMS, regression.make_net)
A1_SIZES = (784, 50, 10)
REG = 0.05
FC_HIDDEN_DIMS = (50, 50)
FC_KEEP = 0.75
DLAI_LAYER_DIMS = (784, 20, 20, 1)
DLAI_SOFTMAX_LAYER_DIMS = (784, 20, 10)
REGRESSION_SIZES = (4, 16, 2)


def _sum_of_squares(weights):
    return sum((w ** 2).sum() for w in weights)


# --- cs231n assignment 1: Linear, ReLU, Linear, reg * sum W**2 -----------------------------

class A1Port(nn.Module):
    """Right: ``nn.Linear``, ``F.relu``, ``nn.Linear``; the loss adds assignment 1's
    ``reg * sum W**2`` (weights only), as ``TwoLayerNet.loss(X, y, reg)`` does."""

    def __init__(self, input_size=A1_SIZES[0], hidden_size=A1_SIZES[1], output_size=A1_SIZES[2],
                 reg=0.0):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)
        self.reg = reg

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(x)))

    def regularization(self):
        return self.reg * _sum_of_squares([self.fc1.weight, self.fc2.weight])

    def loss(self, x, y):
        return F.cross_entropy(self(x), y) + self.regularization()


def a1_sequential(input_size=A1_SIZES[0], hidden_size=A1_SIZES[1], output_size=A1_SIZES[2]):
    """Right: ``nn.Sequential(Linear, ReLU, Linear)``, scores only."""
    return nn.Sequential(nn.Linear(input_size, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, output_size))


class A1FunctionalLinear(nn.Module):
    """Right, no layer modules: ``F.linear(x, self.w1, self.b1)`` with torch's ``(out, in)``
    weights, and ``F.relu``."""

    def __init__(self, input_size=A1_SIZES[0], hidden_size=A1_SIZES[1], output_size=A1_SIZES[2],
                 reg=0.0):
        super().__init__()
        self.w1 = nn.Parameter(1e-4 * torch.randn(hidden_size, input_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(1e-4 * torch.randn(output_size, hidden_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))
        self.reg = reg

    def forward(self, x):
        return F.linear(F.relu(F.linear(x, self.w1, self.b1)), self.w2, self.b2)

    def loss(self, x, y):
        return F.cross_entropy(self(x), y) + self.reg * _sum_of_squares([self.w1, self.w2])


class A1Matmul(nn.Module):
    """Right, the course's own layout: ``W1`` ``(D, H)``, ``x @ W1 + b1``,
    ``torch.clamp(min=0)`` for the ReLU."""

    def __init__(self, input_size=A1_SIZES[0], hidden_size=A1_SIZES[1], output_size=A1_SIZES[2],
                 reg=0.0):
        super().__init__()
        self.W1 = nn.Parameter(1e-4 * torch.randn(input_size, hidden_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.W2 = nn.Parameter(1e-4 * torch.randn(hidden_size, output_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))
        self.reg = reg

    def forward(self, x):
        hidden = torch.clamp(x @ self.W1 + self.b1, min=0)
        return hidden @ self.W2 + self.b2

    def loss(self, x, y):
        return F.cross_entropy(self(x), y) + self.reg * _sum_of_squares([self.W1, self.W2])


class A1HalfReg(A1Port):
    """Planted bug ``weight_decay``: assignment 2's ``0.5 * reg * sum W**2`` where the
    NumPy net (assignment 1) adds ``reg * sum W**2``. The forward pass is right; the
    loss is short by ``0.5 * reg * sum W**2`` and each weight's gradient by ``reg * W``.
    Seen with ``--numpy-kwargs reg=0.05 --loss model``."""

    def regularization(self):
        return 0.5 * self.reg * _sum_of_squares([self.fc1.weight, self.fc2.weight])


def reg_port():
    """Right, with ``reg = 0.05``: for ``--numpy-kwargs reg=0.05 --loss model``."""
    return A1Port(reg=REG)


def half_reg_port():
    return A1HalfReg(reg=REG)


# --- cs231n assignment 2: Linear, BatchNorm1d, ReLU, Dropout ... Linear --------------------

class FCNetPort(nn.Module):
    """Right: ``{Linear - BatchNorm1d(eps=1e-5, momentum=0.1) - ReLU - Dropout} x (L - 1)
    - Linear`` in one ``nn.Sequential``. cs231n's ``momentum=0.9`` weighs the old running
    value, torch's ``momentum=0.1`` the new batch value: the same update. Its
    ``dropout_keep_ratio`` keeps units; ``nn.Dropout`` takes the probability of dropping
    them, ``1 - keep``. The loss adds assignment 2's ``0.5 * reg * sum W**2``."""

    def __init__(self, hidden_dims=FC_HIDDEN_DIMS, input_dim=784, num_classes=10,
                 dropout_keep_ratio=FC_KEEP, normalization="batchnorm", reg=0.0):
        super().__init__()
        dims = [input_dim, *hidden_dims]
        layers = []
        for n_in, n_out in zip(dims, dims[1:]):
            layers.append(nn.Linear(n_in, n_out))
            if normalization == "batchnorm":
                layers.append(nn.BatchNorm1d(n_out, eps=1e-5, momentum=0.1))
            layers.append(nn.ReLU())
            if dropout_keep_ratio != 1:
                layers.append(self.dropout(dropout_keep_ratio))
        layers.append(nn.Linear(dims[-1], num_classes))
        self.net = nn.Sequential(*layers)
        self.reg = reg

    @staticmethod
    def dropout(keep):
        return nn.Dropout(p=1 - keep)

    def forward(self, x):
        return self.net(x.flatten(1))  # affine_forward's reshape of (N, d1, ...) to (N, D)

    def loss(self, x, y):
        weights = [m.weight for m in self.net if isinstance(m, nn.Linear)]
        return F.cross_entropy(self(x), y) + 0.5 * self.reg * _sum_of_squares(weights)


def fc_plain_port():
    return FCNetPort(dropout_keep_ratio=1, normalization=None)


def fc_batchnorm_port():
    return FCNetPort(dropout_keep_ratio=1)


def fc_dropout_port():
    return FCNetPort(normalization=None)


class FCNetKeepProbAsDrop(FCNetPort):
    """Planted bug ``dropout_keep_prob``: ``nn.Dropout(p=keep)``, cs231n's keep
    probability handed to torch as the drop probability. With keep 0.75 the port
    drops 3 units in 4 and scales the kept ones by 4, where the NumPy net drops
    1 in 4 and scales by 4/3: located at the first dropout layer."""

    @staticmethod
    def dropout(keep):
        return nn.Dropout(p=keep)


class FCNetFunctional(nn.Module):
    """Right, no layer modules: ``F.linear``, ``F.batch_norm`` on buffers of its own,
    ``F.relu``, ``F.dropout(p=1 - keep)``; weights ``w{i}`` in torch's ``(out, in)``."""

    def __init__(self, hidden_dims=FC_HIDDEN_DIMS, input_dim=784, num_classes=10,
                 dropout_keep_ratio=FC_KEEP, normalization="batchnorm"):
        super().__init__()
        dims = [input_dim, *hidden_dims, num_classes]
        self.num_layers = len(dims) - 1
        self.batchnorm = normalization == "batchnorm"
        self.keep = dropout_keep_ratio
        for i in range(1, self.num_layers + 1):
            self.register_parameter(f"w{i}", nn.Parameter(1e-2 * torch.randn(dims[i], dims[i - 1])))
            self.register_parameter(f"b{i}", nn.Parameter(torch.zeros(dims[i])))
            if self.batchnorm and i < self.num_layers:
                self.register_parameter(f"gamma{i}", nn.Parameter(torch.ones(dims[i])))
                self.register_parameter(f"beta{i}", nn.Parameter(torch.zeros(dims[i])))
                self.register_buffer(f"running_mean{i}", torch.zeros(dims[i]))
                self.register_buffer(f"running_var{i}", torch.ones(dims[i]))

    def forward(self, x):
        x = x.flatten(1)
        for i in range(1, self.num_layers):
            x = F.linear(x, getattr(self, f"w{i}"), getattr(self, f"b{i}"))
            if self.batchnorm:
                x = F.batch_norm(x, getattr(self, f"running_mean{i}"), getattr(self, f"running_var{i}"),
                                 getattr(self, f"gamma{i}"), getattr(self, f"beta{i}"),
                                 training=self.training, momentum=0.1, eps=1e-5)
            x = F.relu(x)
            if self.keep != 1:
                x = F.dropout(x, p=1 - self.keep, training=self.training)
        L = self.num_layers
        return F.linear(x, getattr(self, f"w{L}"), getattr(self, f"b{L}"))

    def loss(self, x, y):
        return F.cross_entropy(self(x), y)


# --- nn.Linear modules called functionally (the plain fc net, 784-50-50-10) ----------------

class FCFunctionalLinear(nn.Module):
    """Right: ``nn.Linear`` modules, the middle one called as
    ``F.linear(h, self.fc2.weight, self.fc2.bias)``."""

    def __init__(self, hidden_dims=FC_HIDDEN_DIMS, input_dim=784, num_classes=10):
        super().__init__()
        self.fc1 = nn.Linear(input_dim, hidden_dims[0])
        self.fc2 = nn.Linear(hidden_dims[0], hidden_dims[1])
        self.fc3 = nn.Linear(hidden_dims[1], num_classes)

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = F.relu(F.linear(h, self.fc2.weight, self.fc2.bias))
        return self.fc3(h)


class FCRawWeight(FCFunctionalLinear):
    """Planted bug ``transpose``: ``h @ self.fc2.weight + self.fc2.bias``, the
    ``(out, in)`` weight of an ``nn.Linear`` used as if it were cs231n's ``(in, out)``
    ``W2``. It runs because the layer is square (50 x 50); the first layer is right,
    the mismatch begins at ``fc2`` (``W2``), and ``fc2.weight`` holding ``W2`` itself
    instead of ``W2.T`` would make the port right."""

    def forward(self, x):
        h = F.relu(self.fc1(x))
        h = F.relu(h @ self.fc2.weight + self.fc2.bias)
        return self.fc3(h)


# --- deeplearning.ai, features first: a batch-first port --------------------------------------

class DlaiPort(nn.Module):
    """Right: ``{Linear - ReLU} x (L - 1) - Linear - Sigmoid`` on ``(examples, features)``;
    ``nn.Linear.weight`` is the course's ``W`` as it is, its bias ``b`` reshaped
    ``(n, 1) -> (n,)``. With ``output_activation='softmax'`` it returns the scores and
    its loss is ``F.cross_entropy`` (one-hot or index labels)."""

    def __init__(self, layer_dims=DLAI_LAYER_DIMS, output_activation="sigmoid"):
        super().__init__()
        layers = []
        for n_in, n_out in zip(layer_dims[:-2], layer_dims[1:-1]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(layer_dims[-2], layer_dims[-1]))
        if output_activation == "sigmoid":
            layers.append(nn.Sigmoid())
        self.net = nn.Sequential(*layers)
        self.output_activation = output_activation

    def forward(self, x):
        return self.net(x)

    def loss(self, x, y):
        if self.output_activation == "sigmoid":
            return F.binary_cross_entropy(self(x), y)  # y (examples, 1), floats
        return F.cross_entropy(self(x), y)


def dlai_softmax_port():
    return DlaiPort(DLAI_SOFTMAX_LAYER_DIMS, output_activation="softmax")


class DlaiMatmul(nn.Module):
    """Right, the course's shapes kept as parameters, ``W{l}`` ``(n_l, n_{l-1})`` and
    ``b{l}`` ``(n_l, 1)``, on batch-first inputs: ``a @ W.T + b.T``,
    ``torch.clamp(min=0)``, ``torch.sigmoid``."""

    def __init__(self, layer_dims=DLAI_LAYER_DIMS):
        super().__init__()
        self.L = len(layer_dims) - 1
        for l in range(1, self.L + 1):
            self.register_parameter(f"W{l}", nn.Parameter(
                torch.randn(layer_dims[l], layer_dims[l - 1]) / layer_dims[l - 1] ** 0.5))
            self.register_parameter(f"b{l}", nn.Parameter(torch.zeros(layer_dims[l], 1)))

    def linear(self, l, a):
        return a @ getattr(self, f"W{l}").T + getattr(self, f"b{l}").T

    def forward(self, x):
        a = x
        for l in range(1, self.L):
            a = torch.clamp(self.linear(l, a), min=0)
        return torch.sigmoid(self.linear(self.L, a))

    def loss(self, x, y):
        return F.binary_cross_entropy(self(x), y)


class DlaiTransposedW2(DlaiMatmul):
    """Planted bug ``transpose``: layer 2 computes ``a @ W2`` where the batch-first
    form of the course's ``W2 A`` is ``a @ W2.T``. ``W2`` is square (20 x 20), so it
    runs; layer 1 is right and the mismatch begins at layer 2 (``W2``)."""

    def linear(self, l, a):
        if l == 2:
            return a @ self.W2 + self.b2.T
        return super().linear(l, a)


# --- regression: Linear, Tanh, Linear, mean squared error ----------------------------------

class RegressionPort(nn.Module):
    """Right: ``nn.Linear, torch.tanh, nn.Linear``; ``F.mse_loss``, the mean over all
    ``N * k`` elements, as ``regression.RegressionNet.loss``."""

    def __init__(self, input_size=REGRESSION_SIZES[0], hidden_size=REGRESSION_SIZES[1],
                 output_size=REGRESSION_SIZES[2]):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))

    def loss(self, x, t):
        return F.mse_loss(self(x), t)


def regression_sequential(input_size=REGRESSION_SIZES[0], hidden_size=REGRESSION_SIZES[1],
                          output_size=REGRESSION_SIZES[2]):
    """Right: ``nn.Sequential(Linear, Tanh, Linear)``, outputs only (``--loss mse_loss``)."""
    return nn.Sequential(nn.Linear(input_size, hidden_size), nn.Tanh(),
                         nn.Linear(hidden_size, output_size))


class RegressionFunctional(nn.Module):
    """Right, no layer modules: ``F.linear`` with ``(out, in)`` weights and ``torch.tanh``."""

    def __init__(self, input_size=REGRESSION_SIZES[0], hidden_size=REGRESSION_SIZES[1],
                 output_size=REGRESSION_SIZES[2]):
        super().__init__()
        self.w1 = nn.Parameter(0.5 * torch.randn(hidden_size, input_size))
        self.b1 = nn.Parameter(torch.zeros(hidden_size))
        self.w2 = nn.Parameter(0.5 * torch.randn(output_size, hidden_size))
        self.b2 = nn.Parameter(torch.zeros(output_size))

    def forward(self, x):
        return F.linear(torch.tanh(F.linear(x, self.w1, self.b1)), self.w2, self.b2)

    def loss(self, x, t):
        return F.mse_loss(self(x), t)


class RegressionSumLoss(RegressionPort):
    """Planted bug ``scale``: ``F.mse_loss(..., reduction='sum')`` against the NumPy
    mean. The outputs are right; the loss and every gradient are ``N * k`` times the
    NumPy ones (``N`` examples, ``k`` outputs). Seen with ``--loss model``."""

    def loss(self, x, t):
        return F.mse_loss(self(x), t, reduction="sum")


_PORTS, _MODELS = "tests/courses/torch_ports.py", "tests/courses"

PLANTED_BUGS = [
    {"torch": f"{_PORTS}:half_reg_port", "numpy": f"{_MODELS}/cs231n_two_layer.py:make_net",
     "code": "weight_decay", "phase": "loss", "where": None,
     "options": ["--numpy-kwargs", "reg=0.05", "--loss", "model"]},
    {"torch": f"{_PORTS}:FCNetKeepProbAsDrop", "numpy": f"{_MODELS}/cs231n_fc_net.py:make_net",
     "code": "dropout_keep_prob", "phase": "forward", "where": "the first dropout layer",
     "options": []},
    {"torch": f"{_PORTS}:FCRawWeight", "numpy": f"{_MODELS}/cs231n_fc_net.py:make_plain_net",
     "code": "transpose", "phase": "forward", "where": "W2", "options": []},
    {"torch": f"{_PORTS}:DlaiTransposedW2", "numpy": f"{_MODELS}/dlai_deep_net.py:make_net",
     "code": "transpose", "phase": "forward", "where": "W2",
     # one sigmoid output: binary targets (N, 1) of the user's own, not MNIST's ten classes
     "options": ["--data", "FILE.npz", "--loss", "binary_cross_entropy"]},
    {"torch": f"{_PORTS}:RegressionSumLoss", "numpy": f"{_MODELS}/regression.py:make_net",
     "code": "scale", "phase": "loss", "where": None,
     "options": ["--data", "FILE.npz", "--loss", "model"]},
]
