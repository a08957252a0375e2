"""The arithmetic every style shares, batch first: heads, losses with their own
gradients, batch norm, dropout draws. The styles arrange it as their learners do.

Each loss returns ``(loss, dz)`` with ``dz`` the gradient the style's backward
starts from, written the way right code writes it: a loss taken from
probabilities with an epsilon in its log back-propagates ``p - t`` as though the
epsilon were not there (the book's ``SoftmaxWithLoss``, the course's ``AL - Y``).
"""
import math

import numpy as np
from scipy.special import erf, erfc


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def one_hot(t, classes, dtype):
    if t.ndim == 2:
        return t.astype(dtype)
    return np.eye(classes, dtype=dtype)[t]


def head(z, spec):
    """What the model's ``predict`` gives from the scores."""
    if spec.head == "scores":
        return z
    if spec.head == "logprobs":
        return log_softmax(z)
    return sigmoid(z) if spec.loss == "bce" else softmax(z)


def _log(a, eps):
    return np.log(a) if eps is None else np.log(a + eps)


def loss_and_dz(z, t, spec):
    """The loss of scores ``z`` (N, C) against the batch's ``t``, and its backward's start."""
    n = z.shape[0]
    div = (z.size if spec.loss == "mse" else n) if spec.reduction == "mean" else 1
    if spec.loss == "softmax_ce":
        T = one_hot(t, z.shape[1], z.dtype)
        if spec.log_from == "logits":
            logp = log_softmax(z)
            loss = -np.sum(T * logp) / div
            p = np.exp(logp)
        else:
            p = softmax(z)
            loss = -np.sum(T * _log(p, spec.eps)) / div
        dz = (p - T) / div
    elif spec.loss == "bce":
        t = t.reshape(z.shape).astype(z.dtype)
        a = sigmoid(z)
        if spec.log_from == "logits":
            loss = np.sum(np.logaddexp(0, z) - t * z) / div
        else:
            loss = -np.sum(t * _log(a, spec.eps) + (1 - t) * _log(1 - a, spec.eps)) / div
        dz = (a - t) / div
    else:
        t = t.reshape(z.shape).astype(z.dtype)
        loss = np.sum((z - t) ** 2) / div
        dz = 2 * (z - t) / div
    if spec.np_bug == "sum_grad":  # the gradient of the sum, the loss the mean
        dz = dz * div
    return z.dtype.type(loss), dz.astype(z.dtype)


def penalty(params, spec):
    """``0.5 * reg * sum W**2`` over the weights."""
    if not spec.reg:
        return 0
    return 0.5 * spec.reg * sum(np.sum(params[k] ** 2) for k in ("W1", "W2"))


def decay(params, name, spec):
    """The penalty's gradient at ``name``; a backward that forgets it has the bug ``forget_reg``."""
    if spec.reg and name.startswith("W") and spec.np_bug != "forget_reg":
        return spec.reg * params[name]
    return 0


def bias_grad(dz, bias):
    """``sum(dz, axis=0)`` in the bias's own shape."""
    g = dz.sum(axis=0)
    return {"flat": g, "row": g[None, :], "col": g[:, None]}[bias]


def as_row(b):
    """A bias of any of the three shapes, as the row that adds to a batch-first output."""
    return b.reshape(1, -1)


# --- dropout: the keep masks, scaled as the convention scales them -------------------------

def draw_mask(shape, spec, dtype, how="rand"):
    """A training pass's multiplier: the book's ``rand > p`` (kept units unscaled), or an
    inverted ``(rand < keep) / keep``, or nnfs's ``binomial(1, keep) / keep``."""
    keep = 1.0 - spec.p
    if how == "binomial":
        return (np.random.binomial(1, keep, size=shape) / keep).astype(dtype)
    if not spec.inverted:
        return (np.random.rand(*shape) > spec.p).astype(dtype)
    return ((np.random.rand(*shape) < keep) / keep).astype(dtype)


def eval_scale(spec):
    """What evaluation multiplies by: the book's ``1 - p``, or 1 for an inverted dropout."""
    return 1.0 if spec.inverted else 1.0 - spec.p


# --- batch norm, per feature over the batch ------------------------------------------------

def bn_forward(x, gamma, beta, state, spec, train, momentum=0.9):
    """``state``: ``running_mean``/``running_var`` of the spec's shape, updated in training.
    Returns ``(out, cache)``."""
    keep = spec.bn == "row"
    if train:
        mu = x.mean(axis=0, keepdims=keep)
        var = ((x - mu) ** 2).mean(axis=0, keepdims=keep)
        state["running_mean"] = momentum * state["running_mean"] + (1 - momentum) * mu
        state["running_var"] = momentum * state["running_var"] + (1 - momentum) * var
    else:
        mu, var = state["running_mean"], state["running_var"]
    std = np.sqrt(var + spec.bn_eps)
    xn = (x - mu) / std
    return gamma * xn + beta, (xn, std, gamma)


def bn_backward(dout, cache, keepdims=False):
    xn, std, gamma = cache
    n = dout.shape[0]
    dbeta = dout.sum(axis=0, keepdims=keepdims)
    dgamma = (xn * dout).sum(axis=0, keepdims=keepdims)
    dxn = dout * gamma
    dx = (n * dxn - dxn.sum(axis=0) - xn * (dxn * xn).sum(axis=0)) / (n * std)
    return dx, dgamma, dbeta


def bn_state(spec, dtype):
    shape = (1, spec.H) if spec.bn == "row" else (spec.H,)
    # the book and the course start both at zero
    return {"running_mean": np.zeros(shape, dtype), "running_var": np.zeros(shape, dtype)}


# --- hidden activations, each in two ways learners write it --------------------------------

SQRT_2_PI = math.sqrt(2.0 / math.pi)
GELU_C = 0.044715

# (spec.act, form) -> f(z, a): ``a`` the slope or alpha; python floats keep a float32 array float32
ACT_FORMS = {
    ("relu", 0): lambda z, a: np.maximum(0, z),
    ("relu", 1): lambda z, a: z * (z > 0),
    ("tanh", 0): lambda z, a: np.tanh(z),
    ("tanh", 1): lambda z, a: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
    ("sigmoid", 0): lambda z, a: 1 / (1 + np.exp(-z)),
    ("sigmoid", 1): lambda z, a: np.exp(-np.logaddexp(0, -z)),
    ("leaky_relu", 0): lambda z, a: np.where(z > 0, z, a * z),
    ("leaky_relu", 1): lambda z, a: np.maximum(a * z, z),
    ("elu", 0): lambda z, a: np.where(z > 0, z, a * (np.exp(np.minimum(z, 0)) - 1)),
    ("elu", 1): lambda z, a: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0))),
    ("gelu", 0): lambda z, a: 0.5 * z * (1 + erf(z / math.sqrt(2.0))),
    ("gelu", 1): lambda z, a: z * 0.5 * erfc(-z / math.sqrt(2.0)),
    ("gelu_tanh", 0): lambda z, a: 0.5 * z * (1 + np.tanh(SQRT_2_PI * (z + GELU_C * z ** 3))),
    ("gelu_tanh", 1): lambda z, a: 0.5 * z * (1 + np.tanh(SQRT_2_PI * (z + GELU_C * np.power(z, 3)))),
}


def act_forward(z, spec):
    return ACT_FORMS[(spec.act, spec.act_form)](z, spec.act_param)


def act_backward(dout, z, out, spec):
    """``dout`` through the activation, from its input ``z`` and output ``out``."""
    a = spec.act_param
    if spec.act == "relu":
        return dout * (z > 0)
    if spec.act == "tanh":
        return dout * (1 - out ** 2)
    if spec.act == "sigmoid":
        return dout * out * (1 - out)
    if spec.act == "leaky_relu":
        return dout * np.where(z > 0, 1, a).astype(z.dtype)
    if spec.act == "elu":
        return dout * np.where(z > 0, 1, out + a).astype(z.dtype)
    if spec.act == "gelu":
        cdf = 0.5 * (1 + erf(z / math.sqrt(2.0)))
        return dout * (cdf + z * np.exp(-0.5 * z ** 2) / math.sqrt(2 * math.pi))
    th = np.tanh(SQRT_2_PI * (z + GELU_C * z ** 3))
    return dout * (0.5 * (1 + th) + 0.5 * z * (1 - th ** 2) * SQRT_2_PI * (1 + 3 * GELU_C * z ** 2))


# --- layer norm, per sample over the features -----------------------------------------------

def ln_forward(x, gamma, beta, eps, axis=1):
    """``axis``: the features' (1 batch first, 0 features first); gamma and beta broadcast."""
    mu = x.mean(axis=axis, keepdims=True)
    var = x.var(axis=axis, keepdims=True)
    std = np.sqrt(var + eps)
    xn = (x - mu) / std
    return gamma * xn + beta, (xn, std, gamma, axis)


def ln_backward(dout, cache):
    """``(dx, dgamma, dbeta)``, dgamma and dbeta summed over the batch in gamma's shape."""
    xn, std, gamma, axis = cache
    batch_axis = 1 - axis
    dxn = dout * gamma
    dx = (dxn - dxn.mean(axis=axis, keepdims=True)
          - xn * (dxn * xn).mean(axis=axis, keepdims=True)) / std
    dgamma = (dout * xn).sum(axis=batch_axis).reshape(np.shape(gamma))
    dbeta = dout.sum(axis=batch_axis).reshape(np.shape(gamma))
    return dx, dgamma, dbeta
