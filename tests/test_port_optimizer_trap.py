"""The ``optimizer`` trap: where training parts after the first batch agreed, the torch
optimizer's hyper-parameter that differs from the NumPy update rule is named with its value
on each side, and only where the port, trained again with the NumPy value, reproduces the
NumPy loss and parameters at every step. The NumPy optimizers are the book's (and two in its
style, ``examples/layer_net/optimizers.py``); each planted bug is one torch setting."""
import subprocess
import sys
from functools import partial

import numpy as np
import pytest
import torch

import port_zoo as zoo
from compare.port.training import check_training

sys.path.insert(0, str(zoo.EXAMPLES))
import optimizers as opt  # noqa: E402  (examples/layer_net)

STEPS = 8


@pytest.fixture(scope="module")
def data(mnist):
    (x_train, t_train), _ = mnist
    return x_train[:400], np.eye(10)[t_train[:400]]


def train(data, numpy_optimizer, torch_optimizer, steps=STEPS, lr=0.05):
    # a small hidden layer and batch: a few milliseconds a step, so the reruns are cheap
    return check_training(zoo.layer_net(hidden_size=20), zoo.sequential(hidden_size=20), *data,
                          steps=steps, batch_size=20, lr=lr, numpy_optimizer=numpy_optimizer,
                          torch_optimizer=torch_optimizer)


def torch_opt(cls, **settings):
    """A factory ``fn(params, lr)`` as a user gives ``--torch-optimizer``."""
    def make(params, lr=0.01):
        return cls(params, lr=lr, **settings)
    return make


def named(report):
    assert not report.passed, report.to_text()
    assert report.first_mismatch["phase"] == "training"
    # the first batch's own check passed: only the update rule parts
    assert all(c.passed for c in report.checks if c.phase != "training")
    found = [d for d in report.diagnosis if d["code"] == "optimizer"]
    assert len(found) == 1, report.to_text()
    return found[0]


# --- right ports pass --------------------------------------------------------------------

@pytest.mark.parametrize("numpy_optimizer, torch_optimizer", [
    (opt.Momentum, opt.torch_momentum),  # v = 0.9 v - lr g against b = 0.9 b + g, W -= lr b
    (opt.Nesterov, opt.torch_nesterov),
    (opt.AdaGrad, opt.torch_adagrad_book_eps),
    (opt.RMSprop, opt.torch_rmsprop_book_eps),
    (opt.BiasCorrectedAdam, torch_opt(torch.optim.Adam)),
], ids=["momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_right_optimizers_pass(data, numpy_optimizer, torch_optimizer):
    report = train(data, numpy_optimizer, torch_optimizer)
    assert report.passed, report.to_text()
    assert not report.diagnosis


def test_the_books_nesterov_is_not_torchs_and_no_setting_is_named(data):
    # the book updates its velocity before taking m^2 of it; torch (and ``Nesterov``) after:
    # they part at the second step, and no hyper-parameter reproduces the book's rule
    report = train(data, opt.BookNesterov, opt.torch_nesterov)
    assert not report.passed
    assert report.first_mismatch["phase"] == "training"
    assert not any(d["code"] == "optimizer" for d in report.diagnosis), report.to_text()


# --- planted bugs are named, with both values --------------------------------------------

def test_momentum_differs(data):
    d = named(train(data, partial(opt.Momentum, momentum=0.5), opt.torch_momentum))
    assert d["hyperparameter"] == "momentum" and d["torch"] == 0.9 and d["numpy"] == 0.5
    assert "momentum=0.9" in d["text"] and "momentum=0.5" in d["text"]
    # momentum first acts at step 1: the rerun goes through the parting and two steps past it
    assert d["through_step"] == 3 and "through step 3" in d["text"]


def test_nesterov_missing(data):
    d = named(train(data, opt.Nesterov, opt.torch_momentum))
    assert d["hyperparameter"] == "nesterov" and d["torch"] is False and d["numpy"] is True
    assert "nesterov=False" in d["text"] and "nesterov=True" in d["text"]


def test_dampening_set(data):
    d = named(train(data, opt.Momentum, opt.torch_momentum_dampened))
    assert d["hyperparameter"] == "dampening" and d["torch"] == 0.9 and d["numpy"] == 0.0
    assert "dampening=0.9" in d["text"] and "dampening=0 " in d["text"]


def test_adagrad_eps(data):
    # torch's default 1e-10 against the book's 1e-7, a constant of its formula
    report = train(data, opt.AdaGrad, opt.torch_adagrad)
    d = named(report)
    assert report.first_mismatch["step"] == 0
    assert d["hyperparameter"] == "eps" and d["torch"] == 1e-10 and d["numpy"] == 1e-7
    assert "eps=1e-10" in d["text"] and "eps=1e-07" in d["text"]


def test_rmsprop_alpha_against_decay_rate(data):
    d = named(train(data, partial(opt.RMSprop, decay_rate=0.9), opt.torch_rmsprop_book_eps))
    assert d["hyperparameter"] == "alpha" and d["torch"] == 0.99 and d["numpy"] == 0.9
    assert "alpha=0.99" in d["text"] and "decay_rate=0.9" in d["text"]


def test_adam_betas(data):
    numpy_adam = partial(opt.BiasCorrectedAdam, beta2=0.99)
    d = named(train(data, numpy_adam, torch_opt(torch.optim.Adam), lr=0.001))
    assert d["hyperparameter"] == "betas"
    assert d["torch"] == [0.9, 0.999] and d["numpy"] == [0.9, 0.99]
    assert "betas=(0.9, 0.999)" in d["text"] and "beta2=0.99" in d["text"]


# --- what no hyper-parameter explains is not named ---------------------------------------

def test_a_learning_rate_schedule_is_not_an_optimizer_setting(data):
    # the NumPy rate halves after 4 updates; the port's stays: no hyper-parameter of
    # torch.optim.SGD reproduces that, so the step's factor is named, not the optimizer
    report = train(data, partial(opt.StepDecaySGD, step_size=4), None)
    assert not report.passed
    assert report.first_mismatch["step"] == 4
    assert not any(d["code"] == "optimizer" for d in report.diagnosis), report.to_text()
    assert [d["code"] for d in report.diagnosis] == ["scale"]
