"""Training side by side (``check_training``): optimizers that agree stay together step after
step; ones whose formula differs are caught at the step where they part."""
import sys
from functools import partial

import numpy as np
import pytest

import port_zoo as zoo
from compare.port.training import SGD, check_training

sys.path.insert(0, str(zoo.EXAMPLES))
import optimizers as opt  # noqa: E402  (the book's optimizers, examples/layer_net)


@pytest.fixture(scope="module")
def data(mnist):
    (x_train, t_train), _ = mnist
    return x_train[:2000], np.eye(10)[t_train[:2000]]


def train(data, steps, numpy_optimizer=None, torch_optimizer=None, port=zoo.sequential, **kw):
    return check_training(zoo.layer_net(), port(), *data, steps=steps, lr=0.1,
                          numpy_optimizer=numpy_optimizer, torch_optimizer=torch_optimizer, **kw)


@pytest.mark.slow
def test_plain_sgd_stays_together_and_the_curves_are_kept(data):
    report = train(data, 30)
    assert report.passed, report.to_text()
    tr = report.training
    assert tr["step"] == list(range(30)) and len(tr["loss_numpy"]) == 30
    assert tr["loss_numpy"][-1] < tr["loss_numpy"][0]  # it does train
    # the differences stay at round-off, far inside the linear tolerance
    assert max(tr["max_rel_param"]) < 1e-12
    assert all(r < tol for r, tol in zip(tr["max_rel_param"], tr["tolerance"]))


@pytest.mark.slow  # a whole process or a long run: seconds
def test_books_momentum_agrees_with_torch_sgd_momentum_over_100_steps(data):
    # v = 0.9 v - lr g against b = 0.9 b + g, W -= lr b: the same while lr is fixed
    report = train(data, 100, opt.Momentum, opt.torch_momentum)
    assert report.passed, report.to_text()
    assert report.training["numpy_optimizer"] == "Momentum"
    assert report.training["torch_optimizer"] == "SGD"


@pytest.mark.slow
def test_adagrad_default_eps_is_caught_at_the_first_step(data):
    # the book adds 1e-7 after the root, torch.optim.Adagrad 1e-10
    report = train(data, 5, opt.AdaGrad, opt.torch_adagrad)
    assert not report.passed
    fm = report.first_mismatch
    assert fm["phase"] == "training" and fm["step"] == 0 and fm["where"] in ("W1", "b1", "W2", "b2")
    assert "update rules differ" in fm["detail"]
    # the first batch's own check (loss, gradients) still passed: only the update parts
    assert all(c.passed for c in report.checks if c.phase != "training")


@pytest.mark.slow
def test_adagrad_with_the_books_eps_agrees(data):
    report = train(data, 30, opt.AdaGrad, opt.torch_adagrad_book_eps)
    assert report.passed, report.to_text()


@pytest.mark.slow  # a whole process or a long run: seconds
def test_a_schedule_shifted_by_one_step_is_caught_where_it_starts(data):
    numpy_decay = partial(opt.StepDecaySGD, step_size=20)
    right = train(data, 30, numpy_decay, partial(opt.torch_step_decay, step_size=20))
    assert right.passed, right.to_text()
    shifted = train(data, 30, numpy_decay, partial(opt.torch_step_decay, step_size=19))
    assert shifted.first_mismatch["step"] == 19
    (scale,) = [d for d in shifted.diagnosis if d["code"] == "scale"]
    assert scale["factor"] == pytest.approx(0.5, rel=1e-6)  # torch's update is half the book's


@pytest.mark.slow
def test_a_port_broken_in_its_gradient_fails_its_first_batch_check_first(mnist):
    (x_train, t_train), _ = mnist
    data = (x_train[:2000], np.eye(10)[t_train[:2000]])
    report = check_training(zoo.book_net(), zoo.literal(zoo.NoBatchDivide), *data, steps=3, lr=0.1)
    assert report.first_mismatch["phase"] == "backward"  # found before any training step


def test_the_users_optimizer_is_not_changed(data):
    numpy_optimizer = opt.Momentum(lr=0.1)
    train(data, 3, numpy_optimizer, opt.torch_momentum)
    assert numpy_optimizer.v is None  # its copy kept the momentum


def test_bad_training_arguments_are_refused(data):
    from compare import PortSetupError
    with pytest.raises(PortSetupError, match="steps"):
        train(data, 0)
    with pytest.raises(PortSetupError, match="no update"):
        train(data, 2, object())
    with pytest.raises(PortSetupError, match="torch.optim.Optimizer"):
        train(data, 2, SGD, lambda params: "not an optimizer")
    with pytest.raises(PortSetupError, match="gradient"):
        check_training(zoo.LossOnly(zoo.layer_net()), zoo.sequential(), *data, steps=2)
