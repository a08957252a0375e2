"""Activation, output and loss functions of chapters 3 and 4, in PyTorch."""
import torch

from .validation import as_float_tensor, as_tensor, check_labels


def identity_function(x):
    return x


def step_function(x):
    return (as_tensor(x, "x") > 0).to(torch.int64)


def sigmoid(x):
    # exp(-x) overflows to inf for x < -709; 1 / (1 + inf) is the right 0,
    # and torch does not warn about it (NumPy needs np.errstate).
    return 1 / (1 + torch.exp(-x))


def sigmoid_grad(x):
    return (1.0 - sigmoid(x)) * sigmoid(x)


def relu(x):
    return torch.clamp(x, min=0)


def relu_grad(x):
    # 1 where x > 0, as autograd has it; the book writes x >= 0.
    x = as_tensor(x, "x")
    return (x > 0).to(x.dtype if x.is_floating_point() else torch.float64)


def softmax(x):
    x = x - torch.amax(x, dim=-1, keepdim=True)  # overflow guard
    return torch.exp(x) / torch.sum(torch.exp(x), dim=-1, keepdim=True)


def sum_squared_error(y, t):
    return 0.5 * torch.sum((y - t) ** 2)


def cross_entropy_error(y, t):
    """Mean cross-entropy of a batch; ``t`` one-hot or class indices.

    Keeps the book's ``+ 1e-7`` inside the log, so a zero probability gives
    a finite ``-log(1e-7)`` instead of infinity.
    """
    return _cross_entropy_error(*_targets(y, t))


def _targets(y, t):
    """``y`` as a (batch, classes) tensor of probabilities, and ``t`` checked
    against it: one-hot (or soft) rows of ``y``'s shape, or one class index
    per row. A 1-D ``y`` is one sample, as in the book."""
    y = as_float_tensor(y, "y")
    t = as_tensor(t, "t").to(y.device)
    if y.dim() == 1:
        t = t.reshape(1, t.numel())
        y = y.reshape(1, y.numel())
    if y.dim() != 2:
        raise ValueError(f"y must be 1-D or 2-D (batch, classes), got shape {tuple(y.shape)}")
    if y.shape[0] == 0 or y.shape[1] == 0:
        raise ValueError(f"y is empty (shape {tuple(y.shape)})")
    negative = y.detach() < 0
    if bool(negative.any()):  # log of a negative is NaN
        where = tuple(int(i) for i in torch.nonzero(negative)[0])
        raise ValueError(f"y must be probabilities (a softmax output), got {y[where].item()!r} "
                         f"at {where}")
    if t.dim() == 2 and (t.shape == y.shape or t.shape[1] != 1):  # one-hot or soft rows
        return y, check_labels(t, y.shape[0], y.shape[1], device=y.device)
    # class indices
    return y, check_labels(t.reshape(-1), y.shape[0], y.shape[1], device=y.device)


def _cross_entropy_error(y, t):
    # Unchecked, for the networks' hot paths (and so a diverging run can
    # report its NaN loss instead of raising on it).
    if t.shape == y.shape:  # one-hot labels: turn them into class indices
        t = t.argmax(dim=1)
    batch_size = y.shape[0]
    return -torch.sum(torch.log(y[torch.arange(batch_size, device=y.device), t] + 1e-7)) / batch_size


def softmax_loss(X, t):
    y = softmax(X)
    return cross_entropy_error(y, t)


def function_1(x):
    return 0.01 * x ** 2 + 0.1 * x


def function_2(x):
    if x.dim() == 1:
        return torch.sum(x ** 2)
    return torch.sum(x ** 2, dim=-1)  # one value per row
