"""The book's second-volume optimizers, list interface: ``update(params, grads)`` on the
lists ``remove_duplicate`` hands back, each parameter changed in place.

Each keeps its state per list position, built at its first update, so the lists must
come in the same order at every step (the book's trainer hands them so).

    python -m compare port examples/rnn_lm/numpy_lm.py:make_rnnlm \\
        examples/rnn_lm/torch_train.py:make_lstm --data examples/rnn_lm/corpus.npz \\
        --batch 4 --time-size 5 --steps 5 --lr 0.1 \\
        --numpy-optimizer examples/rnn_lm/book_optimizers.py:Momentum \\
        --torch-optimizer examples/rnn_lm/torch_optimizers.py:momentum
"""
import numpy as np


class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for param, grad in zip(params, grads):
            param -= self.lr * grad


class Momentum:
    """``v = momentum * v - lr * g; p += v``."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum = lr, momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i, grad in enumerate(grads):
            self.v[i] = self.momentum * self.v[i] - self.lr * grad
            params[i] += self.v[i]


class AdaGrad:
    """``h += g * g; p -= lr * g / (sqrt(h) + 1e-7)``."""

    def __init__(self, lr=0.01):
        self.lr = lr
        self.h = None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i, grad in enumerate(grads):
            self.h[i] += grad * grad
            params[i] -= self.lr * grad / (np.sqrt(self.h[i]) + 1e-7)


class RMSprop:
    """``h = decay * h + (1 - decay) * g * g; p -= lr * g / (sqrt(h) + 1e-7)``."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate = lr, decay_rate
        self.h = None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i, grad in enumerate(grads):
            self.h[i] *= self.decay_rate
            self.h[i] += (1 - self.decay_rate) * grad * grad
            params[i] -= self.lr * grad / (np.sqrt(self.h[i]) + 1e-7)


class Adam:
    """The bias correction folded into the step size, ``1e-7`` added outside it:
    ``lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)``,
    ``p -= lr_t * m / (sqrt(v) + 1e-7)``."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m = self.v = None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for i, grad in enumerate(grads):
            self.m[i] += (1 - self.beta1) * (grad - self.m[i])
            self.v[i] += (1 - self.beta2) * (grad ** 2 - self.v[i])
            params[i] -= lr_t * self.m[i] / (np.sqrt(self.v[i]) + 1e-7)
