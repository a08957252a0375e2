"""A fully-connected net in the style of cs231n's assignment 2, in NumPy.

``{affine - [batch norm] - relu - [dropout]} x (L - 1) - affine - softmax``,
written here as a completed assignment looks: the layers are the
module-level functions of ``cs231n_layers``, taken in with a star import as
the course's ``fc_net.py`` takes in its layers, so the net calls them
through *this* module's globals (``affine_forward``, ``batchnorm_forward``,
``relu_forward``, ``dropout_forward``, ``softmax_loss`` and their
``*_backward``). A tool that wraps the layer functions to watch one pass
must wrap them here, in ``sys.modules[type(net).__module__]``: wrapping
them in ``cs231n_layers`` changes nothing the net calls.

``loss(X)`` runs in test mode and gives the scores; ``loss(X, y)`` runs in
train mode and gives ``(loss, grads)``; the mode is written into every
``bn_params[i]`` and into ``dropout_param`` before the pass, as the course
does. Regularisation is assignment 2's ``0.5 * reg * sum W**2`` (gradient
``reg * W``), weights only. ``dropout_keep_ratio`` is the probability of
keeping a unit; with a ``seed`` the dropout masks are the same on every
pass (``cs231n_layers.dropout_forward``).

    python -m compare port tests/courses/cs231n_fc_net.py:make_net \\
                           tests/courses/torch_ports.py:FCNetPort
"""
import numpy as np

try:  # imported as part of the package, as the course's classifiers import their layers
    from .cs231n_layers import *  # noqa: F401,F403
except ImportError:  # loaded as a file by path, its folder on sys.path
    from cs231n_layers import *  # noqa: F401,F403


class TwoLayerNet:
    """Assignment 2's two-layer net, as the course's ``fc_net.py`` holds it beside
    ``FullyConnectedNet``: ``affine_relu_forward`` (which calls ``affine_forward`` and
    ``relu_forward`` in ``cs231n_layers``), ``affine_forward``, ``softmax_loss``, and
    ``0.5 * reg * sum W**2``."""

    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3,
                 reg=0.0, seed=0):
        rng = np.random.RandomState(seed)
        self.reg = reg
        self.params = {"W1": weight_scale * rng.randn(input_dim, hidden_dim), "b1": np.zeros(hidden_dim),
                       "W2": weight_scale * rng.randn(hidden_dim, num_classes), "b2": np.zeros(num_classes)}

    def loss(self, X, y=None):
        hidden, hidden_cache = affine_relu_forward(X, self.params["W1"], self.params["b1"])
        scores, scores_cache = affine_forward(hidden, self.params["W2"], self.params["b2"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        loss += 0.5 * self.reg * (np.sum(self.params["W1"] ** 2) + np.sum(self.params["W2"] ** 2))
        grads = {}
        dhidden, grads["W2"], grads["b2"] = affine_backward(dscores, scores_cache)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dhidden, hidden_cache)
        grads["W1"] += self.reg * self.params["W1"]
        grads["W2"] += self.reg * self.params["W2"]
        return loss, grads


class FullyConnectedNet:
    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout_keep_ratio=1,
                 normalization=None, reg=0.0, weight_scale=1e-2, dtype=np.float32, seed=None):
        if normalization not in (None, "batchnorm", "layernorm"):
            raise ValueError(f"normalization must be None, 'batchnorm' or 'layernorm', got {normalization!r}")
        self.normalization = normalization
        self.use_dropout = dropout_keep_ratio != 1
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        self.dtype = dtype
        self.params = {}

        rng = np.random.RandomState(seed)
        dims = [input_dim, *hidden_dims, num_classes]
        for i in range(1, self.num_layers + 1):
            self.params[f"W{i}"] = weight_scale * rng.randn(dims[i - 1], dims[i])
            self.params[f"b{i}"] = np.zeros(dims[i])
            if normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(dims[i])
                self.params[f"beta{i}"] = np.zeros(dims[i])

        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout_keep_ratio}
            if seed is not None:
                self.dropout_param["seed"] = seed

        self.bn_params = []
        if normalization == "batchnorm":
            self.bn_params = [{"mode": "train"} for _ in range(self.num_layers - 1)]
        if normalization == "layernorm":
            self.bn_params = [{} for _ in range(self.num_layers - 1)]

        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)

    def loss(self, X, y=None):
        X = X.astype(self.dtype)
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        if self.normalization == "batchnorm":
            for bn_param in self.bn_params:
                bn_param["mode"] = mode

        caches = []
        out = X
        for i in range(1, self.num_layers):
            out, fc_cache = affine_forward(out, self.params[f"W{i}"], self.params[f"b{i}"])
            bn_cache = drop_cache = None
            if self.normalization == "batchnorm":
                out, bn_cache = batchnorm_forward(out, self.params[f"gamma{i}"],
                                                  self.params[f"beta{i}"], self.bn_params[i - 1])
            elif self.normalization == "layernorm":
                out, bn_cache = layernorm_forward(out, self.params[f"gamma{i}"],
                                                  self.params[f"beta{i}"], self.bn_params[i - 1])
            out, relu_cache = relu_forward(out)
            if self.use_dropout:
                out, drop_cache = dropout_forward(out, self.dropout_param)
            caches.append((fc_cache, bn_cache, relu_cache, drop_cache))
        L = self.num_layers
        scores, last_cache = affine_forward(out, self.params[f"W{L}"], self.params[f"b{L}"])

        if mode == "test":
            return scores

        loss, dout = softmax_loss(scores, y)
        loss += 0.5 * self.reg * sum(np.sum(self.params[f"W{i}"] ** 2) for i in range(1, L + 1))

        grads = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dout, last_cache)
        grads[f"W{L}"] += self.reg * self.params[f"W{L}"]
        for i in range(L - 1, 0, -1):
            fc_cache, bn_cache, relu_cache, drop_cache = caches[i - 1]
            if self.use_dropout:
                dout = dropout_backward(dout, drop_cache)
            dout = relu_backward(dout, relu_cache)
            if self.normalization == "batchnorm":
                dout, grads[f"gamma{i}"], grads[f"beta{i}"] = batchnorm_backward(dout, bn_cache)
            elif self.normalization == "layernorm":
                dout, grads[f"gamma{i}"], grads[f"beta{i}"] = layernorm_backward(dout, bn_cache)
            dout, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(dout, fc_cache)
            grads[f"W{i}"] += self.reg * self.params[f"W{i}"]
        return loss, grads


HIDDEN_DIMS = (50, 50)
KEEP = 0.75  # not 0.5, where keeping and dropping have the same probability


def make_two_layer_net():
    """Assignment 2's TwoLayerNet, 784-50-10, with reg 0.1 (0.5 * reg * sum W**2)."""
    return TwoLayerNet(input_dim=784, hidden_dim=50, weight_scale=1e-2, reg=0.1)


def make_plain_net():
    """784-50-50-10 in float64, no batch norm, no dropout."""
    return FullyConnectedNet(list(HIDDEN_DIMS), input_dim=784, dtype=np.float64, seed=0)


def make_batchnorm_net():
    return FullyConnectedNet(list(HIDDEN_DIMS), input_dim=784, normalization="batchnorm",
                             dtype=np.float64, seed=0)


def make_dropout_net():
    return FullyConnectedNet(list(HIDDEN_DIMS), input_dim=784, dropout_keep_ratio=KEEP,
                             dtype=np.float64, seed=0)


def make_net():
    """784-50-50-10 in float64 with batch norm and dropout (keep 0.75, seeded masks)."""
    return FullyConnectedNet(list(HIDDEN_DIMS), input_dim=784, dropout_keep_ratio=KEEP,
                             normalization="batchnorm", dtype=np.float64, seed=0)


def make_layernorm_net(eps=None):
    """784-50-50-10 in float64 with layer norm (``ln_param`` eps where given)."""
    net = FullyConnectedNet(list(HIDDEN_DIMS), input_dim=784, normalization="layernorm",
                            dtype=np.float64, seed=0)
    if eps is not None:
        for ln_param in net.bn_params:
            ln_param["eps"] = eps
    return net


def make_reg_net():
    """``make_net`` with reg 0.1: batch norm, dropout and ``0.5 * reg * sum W**2``."""
    return FullyConnectedNet(list(HIDDEN_DIMS), input_dim=784, dropout_keep_ratio=KEEP,
                             normalization="batchnorm", reg=0.1, dtype=np.float64, seed=0)
