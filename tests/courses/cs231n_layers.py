"""Layer functions in the style of cs231n's assignment 2, in NumPy.

Each layer is a pair of module-level functions: ``*_forward(...)`` returns
``(out, cache)`` and ``*_backward(dout, cache)`` the gradients of its
inputs, in the order they were given. The course's conventions, kept:

* ``affine_forward`` takes ``x`` of any shape ``(N, d1, ..., dk)`` and
  reshapes it to ``(N, D)`` (row-major, as ``x.reshape(N, -1)``); ``dx``
  comes back in ``x``'s shape.
* ``batchnorm_forward``: ``bn_param`` holds ``mode`` ('train' or 'test'),
  ``eps`` (default 1e-5, as ``nn.BatchNorm1d``), ``momentum`` (default 0.9:
  the weight of the *old* running value, so torch's ``momentum=0.1`` is the
  same update) and the running averages, which start at zeros, both of them
  (torch starts ``running_var`` at ones). Training normalises with the
  batch's biased variance and averages that same biased variance into
  ``running_var``; torch averages the unbiased one, ``N / (N - 1)`` times
  larger.
* ``dropout_forward`` is inverted dropout, ``p`` being the probability of
  *keeping* a unit (torch's ``nn.Dropout(p)`` takes the probability of
  dropping it): in training ``x * mask / p`` with ``mask = rand(...) < p``,
  in test ``x`` itself. A ``seed`` in ``dropout_param`` reseeds NumPy's
  global generator on every call, so every call with the same shape draws
  the same mask (what makes the course's numerical gradient checks of
  dropout nets possible).

``affine_relu_forward`` and ``affine_relu_backward`` call ``affine_forward``
and ``relu_forward`` through *this* module's names.
"""
import numpy as np


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1).dot(w) + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    x, w, b = cache
    dx = dout.dot(w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T.dot(dout)
    db = np.sum(dout, axis=0)
    return dx, dw, db


def relu_forward(x):
    out = np.maximum(0, x)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    x = cache
    dx = dout * (x > 0)
    return dx


def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        sample_mean = np.mean(x, axis=0)
        sample_var = np.var(x, axis=0)  # biased: divided by N
        std = np.sqrt(sample_var + eps)
        x_hat = (x - sample_mean) / std
        running_mean = momentum * running_mean + (1 - momentum) * sample_mean
        running_var = momentum * running_var + (1 - momentum) * sample_var
    elif mode == "test":
        std = np.sqrt(running_var + eps)
        x_hat = (x - running_mean) / std
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')
    out = gamma * x_hat + beta
    cache = (mode, x_hat, gamma, std)

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    mode, x_hat, gamma, std = cache
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    if mode == "test":  # the running averages are constants of x
        return dx_hat / std, dgamma, dbeta
    # the batch mean and variance depend on every row: their paths, summed in closed form
    dx = (dx_hat - np.mean(dx_hat, axis=0) - x_hat * np.mean(dx_hat * x_hat, axis=0)) / std
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Each row normalised over its features; the same in train and test mode."""
    eps = ln_param.get("eps", 1e-5)
    mean = np.mean(x, axis=1, keepdims=True)
    std = np.sqrt(np.var(x, axis=1, keepdims=True) + eps)
    x_hat = (x - mean) / std
    return gamma * x_hat + beta, (x_hat, gamma, std)


def layernorm_backward(dout, cache):
    x_hat, gamma, std = cache
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * x_hat, axis=0)
    dx_hat = dout * gamma
    # the row's mean and variance depend on every feature of the row
    dx = (dx_hat - np.mean(dx_hat, axis=1, keepdims=True)
          - x_hat * np.mean(dx_hat * x_hat, axis=1, keepdims=True)) / std
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask = None
    if mode == "train":
        mask = np.random.rand(*x.shape) < p
        out = x * mask / p
    elif mode == "test":
        out = x
    else:
        raise ValueError(f'Invalid forward dropout mode "{mode}"')

    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return dout * mask / dropout_param["p"]
    return dout


def softmax_loss(x, y):
    """Mean cross-entropy of the scores ``x`` ``(N, C)`` against class indices ``y``, and ``dx``."""
    shifted = x - np.max(x, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    N = x.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1
    dx /= N
    return loss, dx


def affine_relu_forward(x, w, b):
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout, cache):
    fc_cache, relu_cache = cache
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)
