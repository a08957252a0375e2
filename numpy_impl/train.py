"""The book's mini-batch SGD loop (ch04/train_neuralnet.py), in NumPy."""
import math
import warnings

import numpy as np

from .backprop_step import BackpropStep
from .random_stream import BookRandomStream
from .two_layer_net import PARAM_NAMES, TwoLayerNet
from .validation import (as_float_array, check_batch, check_learning_rate,
                         check_positive_int, check_train_hooks)

GRADIENTS = ("backprop", "numerical")


def new_history():
    return {"train_loss": [], "train_acc": [], "test_acc": [], "eval_iters": [],
            "diverged": False, "diverged_at": None}


def _check_gradient(gradient):
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient must be one of {GRADIENTS}, got {gradient!r}")
    return gradient


def _check_net(net):
    """A TwoLayerNet (or one like it) holding finite NumPy parameters."""
    params = getattr(net, "params", None)
    if not isinstance(params, dict) or any(key not in params for key in PARAM_NAMES):
        raise TypeError(f"net must be a numpy_impl.TwoLayerNet, got "
                        f"{type(net).__module__}.{type(net).__qualname__}")
    for key in PARAM_NAMES:  # a tensor is refused; NaN too, else the run "diverges" at once
        as_float_array(params[key], f"net.params[{key!r}]")
    if not all(hasattr(net, name) for name in ("sizes", "dtype", "_loss", "_accuracy")):
        raise TypeError(f"net must be a numpy_impl.TwoLayerNet, got "
                        f"{type(net).__module__}.{type(net).__qualname__}")


def _evaluate(net, history, i, x_train, t_train, x_test, t_test):
    history["train_acc"].append(float(net._accuracy(x_train, t_train)))
    history["test_acc"].append(float(net._accuracy(x_test, t_test)))
    history["eval_iters"].append(i)


def _finite(net, loss):
    params = list(net.params.values())
    # A sum is finite only if every term is, so one sum of sums settles the
    # usual case; the element-wise test runs only when it is not: an
    # overflow, or a NaN or inf to report.
    return math.isfinite(loss) and (
        math.isfinite(sum(p.sum() for p in params))
        or all(np.isfinite(p).all() for p in params))


def _computes_book_backprop(net):
    """True when ``net`` has TwoLayerNet's own gradient and loss, which
    ``BackpropStep`` reproduces bit for bit; a subclass or a patched instance
    that changes them is trained through them, unchanged."""
    return all(getattr(type(net), name, None) is getattr(TwoLayerNet, name)
               and name not in vars(net) for name in ("_predict", "_loss", "_gradient"))


def train(net, x_train, t_train, x_test, t_test, iters_num=10000, batch_size=100,
          learning_rate=0.1, *, seed=None, gradient="backprop", eval_every=None,
          stream=None, start_iter=0, history=None, callback=None, progress=None):
    """Train ``net`` in place and return its history.

    ``seed=S`` continues the stream that ``TwoLayerNet(..., seed=S)`` drew its
    weights from, as the book's script does after ``np.random.seed(S)``.
    ``eval_every`` overrides the book's once-per-epoch accuracy.
    ``stream``, ``start_iter`` and ``history`` resume a run from a
    checkpoint; ``callback(i, history, stream)`` runs after each iteration and
    ``progress(i)`` ticks a progress bar.
    """
    _check_net(net)
    input_size, hidden_size, output_size = net.sizes
    x_train, t_train = check_batch(x_train, t_train, input_size, output_size, net.dtype,
                                   x_name="x_train", t_name="t_train")
    x_test, t_test = check_batch(x_test, t_test, input_size, output_size, net.dtype,
                                 x_name="x_test", t_name="t_test")
    check_train_hooks(start_iter, history, callback, progress)
    iters_num = check_positive_int(iters_num, "iters_num")
    batch_size = check_positive_int(batch_size, "batch_size")
    learning_rate = check_learning_rate(learning_rate)
    _check_gradient(gradient)
    train_size = x_train.shape[0]
    iter_per_epoch = max(train_size / batch_size, 1)
    if eval_every is not None:
        iter_per_epoch = check_positive_int(eval_every, "eval_every")
    if stream is None:
        stream = BookRandomStream.for_training(seed, input_size, hidden_size, output_size)
    history = new_history() if history is None else history
    grad_fn = net._gradient if gradient == "backprop" else net._numerical_gradient
    fast_step = None
    if gradient == "backprop" and _computes_book_backprop(net):
        fast_step = BackpropStep(net.params, x_train, t_train, batch_size)

    # Overflow on the way to divergence is reported once, below, not as a
    # stream of NumPy warnings.
    with np.errstate(all="ignore"):
        steps = _book_steps(net, x_train, t_train, iters_num, batch_size, learning_rate,
                            grad_fn, fast_step, stream, start_iter)
        return _loop(net, steps, x_train, t_train, x_test, t_test, learning_rate, stream,
                     history, iter_per_epoch, callback, progress)


def _book_steps(net, x_train, t_train, iters_num, batch_size, learning_rate, grad_fn,
                fast_step, stream, start_iter):
    """The book's iterations: yields ``(i, loss after the update)``."""
    train_size = x_train.shape[0]
    for i in range(start_iter, iters_num):
        batch_mask = stream.batch_indices(train_size, batch_size)
        if fast_step is not None:  # the five lines below, in preallocated buffers
            loss = fast_step(batch_mask, learning_rate)
        else:
            x_batch = x_train[batch_mask]
            t_batch = t_train[batch_mask]
            grad = grad_fn(x_batch, t_batch)
            for key in PARAM_NAMES:
                net.params[key] -= learning_rate * grad[key]
            loss = float(net._loss(x_batch, t_batch))
        yield i, loss


def _loop(net, steps, x_train, t_train, x_test, t_test, learning_rate, stream, history,
          iter_per_epoch, callback, progress):
    """The book's bookkeeping after each update, and the hooks."""
    for i, loss in steps:
        history["train_loss"].append(loss)
        if not _finite(net, loss):
            _diverged(history, i, learning_rate)
            break
        if i % iter_per_epoch == 0:
            _evaluate(net, history, i, x_train, t_train, x_test, t_test)
        if progress is not None:
            progress(i)
        if callback is not None:
            callback(i, history, stream)
    return history


def _diverged(history, i, learning_rate):
    history["diverged"], history["diverged_at"] = True, i
    warnings.warn(f"training diverged at iteration {i} (learning_rate={learning_rate!r}): "
                  f"the loss or a parameter is no longer finite; stopping with the "
                  f"history so far", RuntimeWarning, stacklevel=4)
