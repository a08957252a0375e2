"""The book's optimizers (``common/optimizer.py``), for ``--numpy-optimizer``, and their
torch twins, for ``--torch-optimizer``.

    python -m compare port examples/layer_net/numpy_net.py:make_net \\
        examples/layer_net/torch_net.py:make_net --steps 100 --lr 0.1 \\
        --numpy-optimizer examples/layer_net/optimizers.py:Momentum \\
        --torch-optimizer examples/layer_net/optimizers.py:torch_momentum
"""
import numpy as np


class Momentum:
    """v = momentum v - lr g; W += v."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class Nesterov:
    """Nesterov's momentum as torch's ``SGD(momentum=m, nesterov=True)`` computes it:
    v_old = v; v = m v - lr g; W += -m v_old + (1 + m) v."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            v_old = self.v[key].copy()
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += -self.momentum * v_old + (1 + self.momentum) * self.v[key]


class BookNesterov:
    """The book's Nesterov: v = m v - lr g, then W += m^2 v - (1 + m) lr g with the velocity
    already updated, so each step is m^3 v_old - (1 + m + m^2) lr g. torch's nesterov=True
    takes m^2 of the velocity before the update (``Nesterov`` above): no torch setting
    computes this one."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.momentum * self.momentum * self.v[key]
            params[key] -= (1 + self.momentum) * self.lr * grads[key]


class AdaGrad:
    """h += g * g; W -= lr g / (sqrt(h) + 1e-7): the book adds its 1e-7 after the root."""

    def __init__(self, lr=0.01):
        self.lr, self.h = lr, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class RMSprop:
    """h = decay h + (1 - decay) g g; W -= lr g / (sqrt(h) + 1e-7)."""

    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.h[key] *= self.decay_rate
            self.h[key] += (1 - self.decay_rate) * grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class Adam:
    """The book's Adam: the bias corrections folded into the step size, 1e-7 on sqrt(v)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key in params.keys():
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


class BiasCorrectedAdam:
    """Adam as its paper writes it, and torch.optim.Adam computes it: m and v corrected by
    1 - beta^t, eps added to sqrt(v_hat) (the book adds its 1e-7 to sqrt(v) instead)."""

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.iter, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {key: np.zeros_like(val) for key, val in params.items()}
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        self.iter += 1
        for key in params.keys():
            self.m[key] = self.beta1 * self.m[key] + (1 - self.beta1) * grads[key]
            self.v[key] = self.beta2 * self.v[key] + (1 - self.beta2) * grads[key] ** 2
            m_hat = self.m[key] / (1 - self.beta1 ** self.iter)
            v_hat = self.v[key] / (1 - self.beta2 ** self.iter)
            params[key] -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def torch_momentum(params, lr=0.01):
    """torch's b = momentum b + g; W -= lr b: the book's v is -lr b while lr stays fixed."""
    import torch
    return torch.optim.SGD(params, lr=lr, momentum=0.9)


def torch_adagrad(params, lr=0.01):
    """torch.optim.Adagrad as it comes: eps 1e-10, where the book has 1e-7."""
    import torch
    return torch.optim.Adagrad(params, lr=lr)


def torch_adagrad_book_eps(params, lr=0.01):
    """The same with the book's eps: torch also adds it after the root, so they agree."""
    import torch
    return torch.optim.Adagrad(params, lr=lr, eps=1e-7)


class StepDecaySGD:
    """SGD whose learning rate is multiplied by ``gamma`` every ``step_size`` updates."""

    def __init__(self, lr=0.01, step_size=50, gamma=0.5):
        self.lr, self.step_size, self.gamma, self.updates = lr, step_size, gamma, 0

    def update(self, params, grads):
        lr = self.lr * self.gamma ** (self.updates // self.step_size)
        for key in params.keys():
            params[key] -= lr * grads[key]
        self.updates += 1


def torch_step_decay(params, lr=0.01, step_size=50):
    """torch.optim.SGD and StepLR; the scheduler steps after each optimizer step."""
    import torch
    optimizer = torch.optim.SGD(params, lr=lr)
    return optimizer, torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=0.5)


def torch_rmsprop(params, lr=0.01):
    """torch.optim.RMSprop as it comes: alpha 0.99 (the book's decay), eps 1e-8."""
    import torch
    return torch.optim.RMSprop(params, lr=lr, alpha=0.99)


def torch_rmsprop_book_eps(params, lr=0.01):
    """eps 1e-7, added after the root on both sides: they agree."""
    import torch
    return torch.optim.RMSprop(params, lr=lr, alpha=0.99, eps=1e-7)


def torch_adam(params, lr=0.001):
    """torch.optim.Adam: eps 1e-8 on sqrt(v / (1 - beta2^t)), not on sqrt(v)."""
    import torch
    return torch.optim.Adam(params, lr=lr)


def torch_step_decay_early(params, lr=0.01):
    """The schedule one step early (StepLR(step_size=49) against the book's 50)."""
    return torch_step_decay(params, lr=lr, step_size=49)


def torch_nesterov(params, lr=0.01):
    """SGD with Nesterov's momentum: ``Nesterov`` above, step for step."""
    import torch
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True)


def torch_momentum_dampened(params, lr=0.01):
    """dampening=0.9 scales each new gradient by 0.1 in the buffer: the book's Momentum has none."""
    import torch
    return torch.optim.SGD(params, lr=lr, momentum=0.9, dampening=0.9)
