"""The generator's own check, against independent truth, before any port is judged:

* each NumPy model's backprop against central differences of its own loss (the
  dropout draws repeated by reseeding), so a wrong NumPy backward is a real one;
* the torch port against the NumPy model, the weights copied by hand: the training
  loss and every gradient, the evaluation output (heads converted), the running mean.

The torch comparisons run with the epsilon in the log and the dropout taken out
(``eps=None``, ``p=0``): both are conventions the checker must handle, and the
first of these checks covers them on the NumPy side.
"""
from dataclasses import replace

import numpy as np
import torch

from . import core
from .build import FEATURES_FIRST, numpy_model
from .params import batch
from .ports import PortLoss, make_port

SEED = 1234


def numpy_inputs(spec, x, t):
    """The batch as the style takes it."""
    if spec.style == "cs231n":
        return x, (t.argmax(axis=1) if t.ndim == 2 else t)
    if spec.style in FEATURES_FIRST:
        T = np.eye(spec.C, dtype=x.dtype)[t] if t.ndim == 1 else t
        return x.T, T.T
    return x, t


def train_loss(model, spec, x, t):
    np.random.seed(SEED)
    if spec.style == "cs231n":
        return model.loss(x, t)[0]
    if spec.style == "book":
        return model.loss(x, t, train_flg=True)
    if spec.style in ("plain", "adapter") or spec.mode == "training":
        return model.loss(x, t, training=True)
    return model.loss(x, t)


def gradient(model, spec, x, t):
    np.random.seed(SEED)
    return model.loss(x, t)[1] if spec.style == "cs231n" else model.gradient(x, t)


def central_differences(model, spec, x, t, h=1e-6):
    grads = {}
    for name, value in model.params.items():
        g = np.zeros(value.shape)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + h
            up = train_loss(model, spec, x, t)
            value[i] = old - h
            down = train_loss(model, spec, x, t)
            value[i] = old
            g[i] = (up - down) / (2 * h)
        grads[name] = g
    return grads


def gradient_errors(spec):
    """``{name: max |backprop - central| / max |central|}`` of the spec's model in float64."""
    spec = replace(spec, dtype="float64")
    model = numpy_model(spec)
    x, t = numpy_inputs(spec, *batch(spec))
    analytic = gradient(model, spec, x, t)
    # an epsilon in the log is left out of the backward, as right code leaves it: the
    # backward is the exact gradient of the loss without it
    exact = replace(spec, eps=None)
    numeric = central_differences(numpy_model(exact), exact, x, t)
    # a ReLU input within h of its kink spoils one step's difference: a second, smaller
    # step is taken, and each element judged by the nearer of the two
    finer = central_differences(numpy_model(exact), exact, x, t, h=1e-7)
    assert list(analytic) == list(model.params), "the gradient is keyed like params"
    # a gradient that is zero (a bias before batch norm) is judged on the scale of the others
    floor = 1e-3 * max(float(np.max(np.abs(g))) for g in numeric.values())
    out = {}
    for name, g in numeric.items():
        a = analytic[name]
        assert a.shape == model.params[name].shape or a.size == g.size, (name, a.shape)
        err = np.minimum(np.abs(a.reshape(g.shape) - g), np.abs(a.reshape(g.shape) - finer[name]))
        out[name] = float(np.max(err) / (np.max(np.abs(g)) + floor))
    return out


def port_tensors(port, spec):
    """``{NumPy name: (port tensor, transposed)}``: where each parameter lives in the port."""
    ff = spec.style in FEATURES_FIRST
    out = {"W1": (port.fc1.weight, not ff), "b1": (port.fc1.bias, False),
           "W2": (port.fc2.weight, not ff), "b2": (port.fc2.bias, False)}
    if spec.bn:
        out.update(gamma1=(port.bn1.weight, False), beta1=(port.bn1.bias, False))
    if spec.ln:
        ln = getattr(port, "ln1", None)
        out.update(gamma1=(ln.weight if ln is not None else port.gamma1, False),
                   beta1=(ln.bias if ln is not None else port.beta1, False))
    if spec.res:
        out.update(W_res=(port.res.weight, not ff), b_res=(port.res.bias, False))
    return out


def copy_into_port(model, port, spec):
    with torch.no_grad():
        for name, (tensor, transposed) in port_tensors(port, spec).items():
            value = torch.from_numpy(np.array(model.params[name], dtype=spec.dtype))
            value = value.T if transposed else value.reshape(-1) if tensor.dim() == 1 else value
            tensor.copy_(value)


def _np_bn_state(model, spec):
    if spec.style == "book":
        layer = model.layers["BatchNorm1"]
        return layer.running_mean, layer.running_var
    return model.bn_params[0]["running_mean"], model.bn_params[0]["running_var"]


def _common(out, spec, head):
    """Any head as one form: log-probabilities (softmax), probabilities (sigmoid), scores."""
    out = np.asarray(out, dtype=np.float64)
    if spec.loss == "softmax_ce":
        return out if head == "logprobs" else (np.log(out) if head == "probs" else core.log_softmax(out))
    if spec.loss == "bce":
        return out if head == "probs" else core.sigmoid(out)
    return out


def port_errors(spec):
    """The port against the NumPy model, weights copied: ``{what: max abs difference}``
    with each difference's scale, in float64, eps and dropout taken out."""
    spec = replace(spec, dtype="float64", eps=None, p=0.0)
    model, port = numpy_model(spec), make_port(spec)
    copy_into_port(model, port, spec)
    x, t = batch(spec)
    nx, nt = numpy_inputs(spec, x, t)
    np_loss = float(train_loss(model, spec, nx, nt))
    if spec.bn:  # after one training pass, as the port's below
        first_mean = np.array(_np_bn_state(model, spec)[0])
    np_grads = gradient(model, spec, nx, nt)
    port.train()
    tt = torch.from_numpy(t)
    value = port.loss(torch.from_numpy(x), tt) if spec.reg else PortLoss(spec)(port(torch.from_numpy(x)), tt)
    value.backward()
    ff = spec.style in FEATURES_FIRST
    torch_grads = {name: tensor.grad.T if transposed else tensor.grad
                   for name, (tensor, transposed) in port_tensors(port, spec).items()}
    errors = {"loss": (abs(np_loss - float(value.detach())), abs(np_loss))}
    for name, g in np_grads.items():
        tg = torch_grads[name].numpy()
        errors[name] = (float(np.max(np.abs(np.reshape(g, tg.shape) - tg))), float(np.max(np.abs(tg))))
    if spec.bn:
        errors["running_mean"] = (float(np.max(np.abs(np.ravel(first_mean) - port.bn1.running_mean.numpy()))),
                                  float(np.max(np.abs(first_mean))))
        # the variances differ by N/(N-1) by convention, and the NumPy side has made a
        # second pass: its statistics copied in for the evaluation output
        mean, var = _np_bn_state(model, spec)
        with torch.no_grad():
            port.bn1.running_mean.copy_(torch.from_numpy(np.ravel(mean)))
            port.bn1.running_var.copy_(torch.from_numpy(np.ravel(var)))
    port.eval()
    with torch.no_grad():
        torch_out = _common(port(torch.from_numpy(x)).numpy(), spec, spec.port_head)
    np_out = model.predict(nx) if spec.style != "cs231n" else model.loss(nx)
    np_out = np.asarray(np_out).T if ff else np.asarray(np_out)
    np_out = _common(np_out, spec, spec.head)
    errors["eval"] = (float(np.max(np.abs(np_out - torch_out))), float(np.max(np.abs(np_out))))
    return errors


def float32_gap(spec):
    """The float32 model's training loss against the float64 one's, relative."""
    values = []
    for dtype in ("float64", "float32"):
        s = replace(spec, dtype=dtype)
        model = numpy_model(s)
        x, t = numpy_inputs(s, *batch(s))
        loss = train_loss(model, s, x, t)
        values.append(loss)
    assert np.asarray(values[1]).dtype == np.float32, "a float32 model computes in float32"
    return abs(float(values[0]) - float(values[1])) / max(abs(float(values[0])), 1e-12)
