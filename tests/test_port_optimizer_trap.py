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
def data():
    # pixels in [0, 1) and one-hot labels, as MNIST's, drawn: the update rules part on any
    # batch, and no test here waits on reading MNIST
    rng = np.random.RandomState(0)
    return rng.rand(400, 784), np.eye(10)[rng.randint(0, 10, 400)]


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


def test_momentum_and_nesterov_both_missing(data):
    # the port's plain SGD: the NumPy momentum alone does not reproduce Nesterov's step, the
    # two together do
    d = named(train(data, opt.Nesterov, None))
    assert d["hyperparameter"] == "momentum" and d["torch"] == 0.0 and d["numpy"] == 0.9
    assert d["changed"] == {"momentum": 0.9, "nesterov": True}
    assert "momentum=0 (nesterov=False)" in d["text"] and "momentum=0.9 and nesterov=True" in d["text"]


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


def test_the_port_of_the_book_adam_is_not_named(data):
    # the book adds its 1e-7 to sqrt(v), torch its eps to sqrt(v_hat): no constant eps (nor
    # betas) makes the two rules one, so nothing is named
    report = train(data, opt.Adam, torch_opt(torch.optim.Adam), lr=0.001)
    assert not report.passed
    assert not any(d["code"] == "optimizer" for d in report.diagnosis), report.to_text()


# --- where the values come from, and which ports ------------------------------------------

def sgd_momentum(w, dw, config):
    """cs231n's shape of an update rule: ``(next_w, config)``, its settings in ``config``."""
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


class ConfigMomentum:
    """A cs231n update rule behind the book's ``update(params, grads)``, its settings where
    cs231n's solver keeps them: ``optim_config``, copied into one config a parameter."""

    def __init__(self, lr=0.01, momentum=0.5):
        self.optim_config = {"learning_rate": lr, "momentum": momentum}
        self.optim_configs = {}

    def update(self, params, grads):
        for key in params:
            config = self.optim_configs.setdefault(key, dict(self.optim_config))
            params[key][...], self.optim_configs[key] = sgd_momentum(params[key], grads[key], config)


def test_a_value_is_read_off_a_config_dict(data):
    from compare.port import optimizer_traps
    assert optimizer_traps.numpy_settings(ConfigMomentum(0.1, momentum=0.7)) == {"momentum": ("momentum", 0.7)}
    # 0.7 is none of the usual values: only the NumPy optimizer's own can reproduce it
    assert 0.7 not in optimizer_traps.USUAL["momentum"]
    d = named(train(data, partial(ConfigMomentum, momentum=0.7), opt.torch_momentum))
    assert d["hyperparameter"] == "momentum" and d["torch"] == 0.9 and d["numpy"] == 0.7
    assert "has momentum=0.7" in d["text"]


def test_a_literal_port_is_rerun_from_its_own_copy(data):
    # the chapter-4 net and its literal port, with its own backprop
    report = check_training(zoo.book_net(), zoo.literal(), *data, steps=5, batch_size=20, lr=0.1,
                            numpy_optimizer=partial(opt.Momentum, momentum=0.5),
                            torch_optimizer=opt.torch_momentum)
    d = named(report)
    assert (d["hyperparameter"], d["torch"], d["numpy"]) == ("momentum", 0.9, 0.5)


def test_a_golden_files_training_is_read_through_its_records(tmp_path, data):
    # only the recorded parameters are left of the NumPy optimizer: its value is found
    # among the usual ones, by the rerun alone
    from compare.port.recording import record, save
    from compare.port.reference.golden import GoldenFile
    x, t = data
    training = {"x": x, "t": t, "steps": 5, "batch_size": 20, "lr": 0.05, "seed": 0,
                "optimizer": partial(opt.Momentum, momentum=0.5)}
    options = {"data": "mnist", "batch": 20, "seed": 0, "dtype": "float64", "labels": "one-hot"}
    path = save(record(zoo.layer_net(hidden_size=20), x[:20].astype(np.float64), t[:20],
                       options=options, training=training), tmp_path / "momentum.npz")
    report = check_training(GoldenFile(path), zoo.sequential(hidden_size=20), *data, steps=5,
                            batch_size=20, lr=0.05, torch_optimizer=opt.torch_momentum)
    d = named(report)
    assert (d["hyperparameter"], d["torch"], d["numpy"]) == ("momentum", 0.9, 0.5)
    assert "computes as momentum=0.5" in d["text"]


def test_training_that_passes_reruns_nothing(data, monkeypatch):
    import compare.port.training as training

    def never(*args, **kwargs):
        raise AssertionError("the optimizer's hypotheses ran on a run that passed")
    monkeypatch.setattr(training, "optimizer_trap", never)
    assert train(data, opt.Momentum, opt.torch_momentum).passed


def test_a_scheduler_keeps_the_optimizer_out(data, monkeypatch):
    # the rate a scheduler moves is no hyper-parameter of the optimizer: not tried
    import compare.port.training as training
    monkeypatch.setattr(training, "optimizer_trap", lambda *a, **k: pytest.fail("tried"))
    report = train(data, partial(opt.StepDecaySGD, step_size=4),
                   partial(opt.torch_step_decay, step_size=3))
    assert not report.passed and report.first_mismatch["step"] == 3


# --- the command line -------------------------------------------------------------------

E = "examples/layer_net"
COMMAND = ["port", f"{E}/numpy_net.py:make_net", f"{E}/torch_net.py:make_net", "--steps", "6",
           "--lr", "0.05", "--numpy-optimizer", f"{E}/optimizers.py:Nesterov",
           "--torch-optimizer", f"{E}/optimizers.py:torch_momentum", "--no-progress"]


@pytest.mark.slow
def test_the_command_names_the_missing_nesterov(tmp_path, capsys, monkeypatch):
    from compare import cli
    monkeypatch.chdir(zoo.EXAMPLES.parents[1])
    code = cli.main([*COMMAND, "--data", "random", "--json", str(tmp_path / "port.json")])
    out = capsys.readouterr().out
    assert code == 1, out
    line = next(ln for ln in out.splitlines() if "[optimizer]" in ln)
    assert "nesterov=False" in line and "nesterov=True" in line
    import json
    report = json.loads((tmp_path / "port.json").read_text())
    assert report["passed"] is False
    (d,) = report["diagnosis"]
    assert (d["code"], d["hyperparameter"], d["torch"], d["numpy"]) == ("optimizer", "nesterov", False, True)


@pytest.mark.slow  # a whole process on MNIST: seconds
def test_the_command_on_mnist_exits_1_with_the_optimizer_line():
    root = zoo.EXAMPLES.parents[1]
    argv = [a if a != "6" else "20" for a in COMMAND]
    done = subprocess.run([sys.executable, "-m", "compare", *argv], cwd=root,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    line = next(ln for ln in done.stdout.splitlines() if ln.strip().startswith("[optimizer]"))
    assert "torch.optim.SGD has nesterov=False (momentum=0.9)" in line and "nesterov=True" in line
