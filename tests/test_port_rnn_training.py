"""Recurrent nets trained side by side over a corpus's windows, the state carried.

The evidence, independent of the checker:

* the windows against the book's ``RnnlmTrainer.get_batch``, written out here with its
  ``time_idx``;
* a NumPy training loop and a torch training loop written out here (the book's trainer:
  forward, backward, ``clip_grads``, ``params -= lr * grads``; torch's: ``backward``,
  ``clip_grad_norm_``, ``SGD.step``), the weights copied in by a map written by hand (the
  gate blocks permuted letter by letter): the right port trains as the NumPy model does,
  and the port with both biases trained does not;
* then ``check_training`` over those windows: its losses are the two loops' own, the right
  port passes with and without clipping, the other fails and is named ``double_bias``.
"""
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compare import cli
from compare.port import PortSetupError, check_training
from compare.port.corpus import windows

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rnn_lm"


def _load(name):
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    spec = importlib.util.spec_from_file_location(f"rnn_train_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


N_ = _load("numpy_lm")
P = _load("torch_train")
CORPUS = np.load(EXAMPLE / "corpus.npz")["corpus"]
B, T, LR, V = 4, 5, 0.5, 10


def book_get_batch(xs, ts, batch_size, time_size, time_idx):
    """The book's ``RnnlmTrainer.get_batch``, element by element, and the next ``time_idx``."""
    batch_x = np.empty((batch_size, time_size), dtype="i")
    batch_t = np.empty((batch_size, time_size), dtype="i")
    data_size = len(xs)
    jump = data_size // batch_size
    offsets = [i * jump for i in range(batch_size)]
    for time in range(time_size):
        for i, offset in enumerate(offsets):
            batch_x[i, time] = xs[(offset + time_idx) % data_size]
            batch_t[i, time] = ts[(offset + time_idx) % data_size]
        time_idx += 1
    return batch_x, batch_t, time_idx


def book_windows(corpus, batch_size, time_size, count):
    xs, ts, time_idx, out = corpus[:-1], corpus[1:], 0, []
    for _ in range(count):
        x, t, time_idx = book_get_batch(xs, ts, batch_size, time_size, time_idx)
        out.append((x, t))
    return out


@pytest.mark.parametrize("corpus, batch, time, count", [
    (CORPUS, 4, 5, 20),
    (np.arange(23), 3, 4, 6),      # 22 positions, jump 7: the streams wrap around
])
def test_windows_are_the_books_get_batch(corpus, batch, time, count):
    for (x, t), (bx, bt) in zip(windows(corpus, batch, time, count),
                                book_windows(corpus, batch, time, count), strict=True):
        assert x.dtype == bx.dtype and t.dtype == bt.dtype
        np.testing.assert_array_equal(x, bx)
        np.testing.assert_array_equal(t, bt)


def test_a_corpus_shorter_than_one_window_is_refused():
    with pytest.raises(PortSetupError, match="need at least 21"):
        windows(np.arange(20), 4, 5, 1)   # 19 positions < 4 x 5: the book trains nothing


def book_clip_grads(grads, max_norm):
    total_norm = 0
    for grad in grads:
        total_norm += np.sum(grad ** 2)
    total_norm = np.sqrt(total_norm)
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate
    return rate


def numpy_loop(steps, max_grad_norm=None, update=None, lr=LR):
    """The book's trainer on ``Rnnlm`` (no tied weights: ``remove_duplicate`` is the identity);
    ``update(params, grads)``: the optimizer's rule, else ``p -= lr * g``."""
    model = N_.Rnnlm()
    losses, rates = [], []
    for x, t in book_windows(CORPUS, B, T, steps):
        losses.append(float(model.forward(x, t)))
        model.backward()
        grads = [g.copy() for g in model.grads]
        if max_grad_norm is not None:
            rates.append(book_clip_grads(grads, max_grad_norm))
        if update is not None:
            update(model.params, grads)
            continue
        for p, g in zip(model.params, grads):
            p -= lr * g
    lstm = model.layers[1]
    return losses, [p.copy() for p in model.params], (lstm.h.copy(), lstm.c.copy()), rates


def fgio_to_ifgo(a):
    f, g, i, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, f, g, o], axis=-1)


def ifgo_to_fgio(a):
    i, f, g, o = np.split(a, 4, axis=-1)
    return np.concatenate([f, g, i, o], axis=-1)


def torch_loop(port, steps, max_grad_norm=None, make_optimizer=None, lr=LR):
    """A torch loop as its users write it, from the NumPy model's first values."""
    embed_W, Wx, Wh, b, W, bias = N_.Rnnlm().params
    with torch.no_grad():
        port.embed.weight.copy_(torch.from_numpy(embed_W))
        port.lstm.weight_ih_l0.copy_(torch.from_numpy(fgio_to_ifgo(Wx).T.copy()))
        port.lstm.weight_hh_l0.copy_(torch.from_numpy(fgio_to_ifgo(Wh).T.copy()))
        port.lstm.bias_ih_l0.copy_(torch.from_numpy(fgio_to_ifgo(b)))
        port.lstm.bias_hh_l0.zero_()
        port.fc.weight.copy_(torch.from_numpy(W.T.copy()))
        port.fc.bias.copy_(torch.from_numpy(bias))
    trained = [p for p in port.parameters() if p.requires_grad]
    optimizer = (make_optimizer or torch.optim.SGD)(trained, lr=lr)
    losses = []
    for x, t in book_windows(CORPUS, B, T, steps):
        optimizer.zero_grad()
        scores = port(torch.from_numpy(x).long())
        loss = F.cross_entropy(scores.reshape(-1, V), torch.from_numpy(t).long().reshape(-1))
        loss.backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_([p for p in port.parameters() if p.grad is not None],
                                           max_grad_norm)
        optimizer.step()
        losses.append(loss.item())
    lstm = port.lstm
    b_sum = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().numpy()
    params = [port.embed.weight.detach().numpy(),
              ifgo_to_fgio(lstm.weight_ih_l0.detach().numpy().T),
              ifgo_to_fgio(lstm.weight_hh_l0.detach().numpy().T),
              ifgo_to_fgio(b_sum), port.fc.weight.detach().numpy().T, port.fc.bias.detach().numpy()]
    h, c = port.state
    return losses, params, (h[0].numpy(), c[0].numpy())


def _max_rel(expected, actual):
    return max(float(np.max(np.abs(a - e)) / np.max(np.abs(e))) for e, a in zip(expected, actual))


def float32_training_bound(steps):
    # each update adds at most float32's rtol 1e-4 of the value's size (tolerance.py), and a
    # stable training adds them linearly
    return steps * 1e-4


@pytest.mark.parametrize("clip", [None, 0.1])
def test_the_right_port_trains_as_the_numpy_model(clip):
    steps = 5
    np_losses, np_params, np_state, rates = numpy_loop(steps, clip)
    t_losses, t_params, t_state = torch_loop(P.make_lstm(), steps, clip)
    if clip is not None:
        assert all(r < 1 for r in rates)  # the clipping took part at every step
    bound = float32_training_bound(steps)
    np.testing.assert_allclose(t_losses, np_losses, rtol=bound)
    assert _max_rel(np_params, t_params) <= bound
    assert _max_rel(np_state, t_state) <= bound


def test_both_biases_trained_move_their_sum_at_twice_the_rate():
    np_losses, np_params, _, _ = numpy_loop(1)
    t_losses, t_params, _ = torch_loop(P.make_double_bias(), 1)
    np.testing.assert_allclose(t_losses, np_losses, rtol=1e-4)  # the first window is equal
    b0 = N_.Rnnlm().params[3]
    np.testing.assert_allclose(t_params[3] - b0, 2 * (np_params[3] - b0), rtol=1e-3, atol=1e-7)


class ResetPort(P.TrainedLstmPort):
    def forward(self, xs):
        self.state = None
        return super().forward(xs)


class ResetDoubleBiasPort(ResetPort):
    def __init__(self):
        super().__init__(freeze_bias_hh=False)


def test_the_state_carried_matters():
    """Without the state carried, the same run parts (so the state rows can catch it)."""
    _, _, np_state, _ = numpy_loop(2)

    _, _, t_state = torch_loop(ResetPort(), 2)
    assert _max_rel(np_state, t_state) > 100 * float32_training_bound(2)


def _check(factory, steps=5, clip=None):
    return check_training(N_.make_rnnlm(), factory(), CORPUS, None, steps=steps, batch_size=B,
                          time_size=T, lr=LR, max_grad_norm=clip)


@pytest.mark.slow
@pytest.mark.parametrize("steps, clip", [(5, None), (5, 0.1), (20, None)])
def test_right_port_passes(steps, clip):
    report = _check(P.make_lstm, steps=steps, clip=clip)
    assert report.passed, report.to_text()
    # the two sides' runs are the loops written above, step for step
    np_losses, np_params, _, _ = numpy_loop(steps, clip)
    t_losses, _, _ = torch_loop(P.make_lstm(), steps, clip)
    np.testing.assert_array_equal(report.training["loss_numpy"], np_losses)
    np.testing.assert_allclose(report.training["loss_torch"], t_losses, rtol=float32_training_bound(1))
    states = [r for r in report.checks if r.phase == "training" and r.where.startswith("state")]
    assert {r.where for r in states} == {"state TimeLSTM0.h", "state TimeLSTM0.c"}


@pytest.mark.slow
@pytest.mark.parametrize("clip", [None, 0.1])
def test_both_biases_trained_are_named_double_bias(clip):
    report = _check(P.make_double_bias, clip=clip)
    assert not report.passed
    assert report.first_mismatch["step"] in (0, 1)
    assert [d["code"] for d in report.diagnosis] == ["double_bias"]
    assert "bias_hh_l0.requires_grad_(False)" in report.diagnosis[0]["text"]


@pytest.mark.slow
def test_a_port_that_resets_its_state_is_named_state_reset_at_step_1(tmp_path):
    report = _check(ResetPort, steps=4)
    from compare.port.figure import write_report
    write_report(report, tmp_path)
    assert (tmp_path / "port_training.png").stat().st_size > 0
    # window 0 agrees; from window 1 on the carried state parts by far more than round-off
    assert report.training["max_rel_state"][0] < float32_training_bound(1)
    assert min(report.training["max_rel_state"][1:]) > 100 * float32_training_bound(4)
    assert not report.passed
    assert report.first_mismatch["step"] == 1   # window 0 starts from zeros on both sides
    assert [d["code"] for d in report.diagnosis] == ["state_reset"]
    assert report.diagnosis[0]["text"].startswith("the port starts each window")


@pytest.mark.slow
def test_two_bugs_at_once_are_measured_not_named():
    """Neither hypothesis alone reproduces the run: nothing is named."""
    report = _check(ResetDoubleBiasPort, steps=4)
    assert not report.passed
    assert report.diagnosis == []
    assert "unexplained" in report.first_mismatch


@pytest.mark.parametrize("extra, says", [
    (["--steps", "2"], "give --time-size T"),
    (["--time-size", "5", "--batch", "100", "--steps", "2"], "need at least 501"),
    (["--time-size", "5", "--batch", "4", "--max-grad-norm", "1"], "--max-grad-norm needs --steps"),
    (["--time-size", "0", "--steps", "2"], "--time-size must be at least 1"),
    (["--time-size", "5", "--steps", "2", "--max-grad-norm", "-1"], "--max-grad-norm must be"),
])
def test_the_command_refuses_in_one_line(extra, says, capsys):
    code = cli.main(["port", f"{EXAMPLE}/numpy_lm.py:make_rnnlm", f"{EXAMPLE}/torch_train.py:make_lstm",
                     "--data", str(EXAMPLE / "corpus.npz"), "--no-progress", *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and says in err


@pytest.mark.slow
def test_a_numpy_side_that_resets_is_named_state_reset_the_other_way():
    model = N_.make_rnnlm()
    model.layers[1].stateful = False   # the NumPy TimeLSTM starts each window from zeros
    report = check_training(model, P.make_lstm(), CORPUS, None, steps=4, batch_size=B,
                            time_size=T, lr=LR)
    assert not report.passed and report.first_mismatch["step"] == 1
    assert [d["code"] for d in report.diagnosis] == ["state_reset"]
    assert report.diagnosis[0]["text"].startswith("the NumPy side starts each window")


def test_time_size_without_a_corpus_is_refused(capsys):
    code = cli.main(["port", f"{EXAMPLE}/numpy_lm.py:make_rnnlm", f"{EXAMPLE}/torch_lm.py:make_lstm",
                     "--data", str(EXAMPLE / "tokens.npz"), "--time-size", "5", "--no-progress"])
    assert code == 2
    assert "--time-size takes --data FILE.npz holding a 1-D integer array 'corpus'" in capsys.readouterr().err


class UndetachedPort(P.TrainedLstmPort):
    def forward(self, xs):
        hs, self.state = self.lstm(self.embed(xs), self.state)
        return self.fc(hs)


def test_a_state_carried_without_detach_is_refused_with_what_it_means():
    with pytest.raises(PortSetupError, match="without detach"):
        check_training(N_.make_rnnlm(), UndetachedPort(), CORPUS, None, steps=2, batch_size=B,
                       time_size=T, lr=LR, first_batch_check=False)


class DrawingRnnlm(N_.Rnnlm):
    """The book's Rnnlm drawing from NumPy's stream at every window (as a dropout mask is
    drawn), its values left as they are."""

    def forward(self, xs, ts):
        np.random.rand(*xs.shape)
        return super().forward(xs, ts)


class DroppingPort(P.TrainedLstmPort):
    def __init__(self):
        super().__init__()
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, xs):
        hs, state = self.lstm(self.drop(self.embed(xs)), self.state)
        self.state = tuple(s.detach() for s in state)
        return self.fc(hs)


class UnsharedRnnlm(N_.Rnnlm):
    """The book's Rnnlm drawing from a stream the sides do not share (numpy.random.normal,
    as noise is added), its values left as they are."""

    def forward(self, xs, ts):
        np.random.normal(size=xs.shape)
        return super().forward(xs, ts)


@pytest.mark.parametrize("numpy_factory, port_factory, side", [
    (UnsharedRnnlm, P.make_lstm, "the NumPy model"),
    (N_.make_rnnlm, DroppingPort, "the port"),
])
def test_a_side_drawing_what_the_other_cannot_answer_is_refused(numpy_factory, port_factory, side):
    """Two random streams would part two right sides: refused, never failed."""
    with pytest.raises(PortSetupError, match=f"{side} draws at random"):
        check_training(numpy_factory(), port_factory(), CORPUS, None, steps=2, batch_size=B,
                       time_size=T, lr=LR, first_batch_check=False)


def test_a_numpy_draw_nothing_uses_is_shared_and_harmless():
    """``rand`` is shared through the tape: drawn, used by nothing, the right port passes."""
    report = check_training(DrawingRnnlm(), P.make_lstm(), CORPUS, None, steps=2, batch_size=B,
                            time_size=T, lr=LR, first_batch_check=False)
    assert report.passed, report.to_text()


# --- the book's list-interface optimizers over windows -----------------------------------

BO = _load("book_optimizers")
MOMENTUM_LR = 0.1


def momentum_rule(mu=0.9, lr=MOMENTUM_LR):
    """The book's Momentum written out: ``v = mu v - lr g; p += v``, one ``v`` per position."""
    velocities = {}

    def update(params, grads):
        for i, (p, g) in enumerate(zip(params, grads)):
            velocities[i] = mu * velocities.get(i, np.zeros_like(p)) - lr * g
            p += velocities[i]
    return update


@pytest.mark.slow
def test_the_momentum_port_trains_as_the_numpy_model():
    """torch keeps ``buf = mu buf + g`` and steps ``-lr buf``: the book's ``v`` is ``-lr buf``."""
    steps = 5
    np_losses, np_params, np_state, _ = numpy_loop(steps, update=momentum_rule())
    t_losses, t_params, t_state = torch_loop(
        P.make_lstm(), steps, make_optimizer=lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9),
        lr=MOMENTUM_LR)
    bound = float32_training_bound(steps)
    np.testing.assert_allclose(t_losses, np_losses, rtol=bound)
    assert _max_rel(np_params, t_params) <= bound
    assert _max_rel(np_state, t_state) <= bound
    # momentum took part: plain SGD at the same lr ends elsewhere
    sgd_params = numpy_loop(steps, lr=MOMENTUM_LR)[1]
    assert _max_rel(np_params, sgd_params) > 100 * bound


def test_the_book_momentum_is_its_rule():
    model_params = [p.copy() for p in N_.Rnnlm().params]
    by_class, by_rule = [p.copy() for p in model_params], [p.copy() for p in model_params]
    optimizer, rule = BO.Momentum(lr=MOMENTUM_LR), momentum_rule()
    rng = np.random.default_rng(0)
    for _ in range(3):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in model_params]
        optimizer.update(by_class, grads)
        rule(by_rule, grads)
    for a, b in zip(by_class, by_rule):
        np.testing.assert_array_equal(a, b)


def _check_with(numpy_optimizer, torch_optimizer, lr, steps=5):
    return check_training(N_.make_rnnlm(), P.make_lstm(), CORPUS, None, steps=steps, batch_size=B,
                          time_size=T, lr=lr, numpy_optimizer=numpy_optimizer,
                          torch_optimizer=torch_optimizer)


@pytest.mark.slow
def test_the_right_momentum_port_passes_over_5_windows():
    report = _check_with(BO.Momentum,
                         lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9), MOMENTUM_LR)
    assert report.passed, report.to_text()
    assert report.settings["numpy optimizer"] == "Momentum"
    np_losses = numpy_loop(5, update=momentum_rule())[0]
    np.testing.assert_array_equal(report.training["loss_numpy"], np_losses)


@pytest.mark.slow
def test_a_port_without_the_momentum_fails_after_the_first_update():
    """The first update is ``-lr g`` under both rules; from the second the sides part."""
    report = _check_with(BO.Momentum, None, MOMENTUM_LR)
    assert not report.passed
    assert report.first_mismatch["step"] == 1
    [found] = report.diagnosis
    assert (found["code"], found["hyperparameter"], found["numpy"]) == ("optimizer", "momentum", 0.9)


def test_an_optimizer_of_neither_interface_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "opt.py").write_text(
        "class Broken:\n"
        "    def __init__(self, lr=0.1):\n"
        "        self.lr = lr\n"
        "    def update(self, params, grads):\n"
        "        raise ValueError('no')\n")
    code = cli.main(["port", f"{EXAMPLE}/numpy_lm.py:make_rnnlm", f"{EXAMPLE}/torch_train.py:make_lstm",
                     "--data", str(EXAMPLE / "corpus.npz"), "--no-progress", "--time-size", "5",
                     "--batch", "4", "--steps", "2",
                     "--numpy-optimizer", f"{tmp_path}/opt.py:Broken"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "takes neither the book's lists" in err


class DictMomentum:
    """The first volume's dict interface: state keyed by parameter name."""

    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {key: np.zeros_like(val) for key, val in params.items()}
        for key in params.keys():
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


@pytest.mark.slow
def test_the_dict_interface_trains_as_the_list_one():
    by_dict = _check_with(DictMomentum, None, MOMENTUM_LR, steps=3)
    by_list = _check_with(BO.Momentum, None, MOMENTUM_LR, steps=3)
    np.testing.assert_array_equal(by_dict.training["loss_numpy"], by_list.training["loss_numpy"])


# --- Adam: the book's 1e-7 outside the bias correction, torch's eps inside ------------------

ADAM_LR, BETA1, BETA2 = 0.01, 0.9, 0.999


def book_adam_rule(lr=ADAM_LR):
    """The book's Adam written out: the correction folded into ``lr_t``, ``1e-7`` outside."""
    m, v, t = {}, {}, [0]

    def update(params, grads):
        t[0] += 1
        lr_t = lr * np.sqrt(1.0 - BETA2 ** t[0]) / (1.0 - BETA1 ** t[0])
        for i, (p, g) in enumerate(zip(params, grads)):
            m[i] = m.get(i, np.zeros_like(p)) + (1 - BETA1) * (g - m.get(i, np.zeros_like(p)))
            v[i] = v.get(i, np.zeros_like(p)) + (1 - BETA2) * (g ** 2 - v.get(i, np.zeros_like(p)))
            p -= lr_t * m[i] / (np.sqrt(v[i]) + 1e-7)
    return update


class BookEpsAdam(torch.optim.Adam):
    """torch's Adam with ``eps = 1e-7 / sqrt(1 - beta2**t)`` at its ``t``-th step: by the
    algebra, ``lr_t m / (sqrt(v) + 1e-7)`` written in torch's corrected terms."""

    def step(self, closure=None):
        self.t = getattr(self, "t", 0) + 1
        for group in self.param_groups:
            group["eps"] = 1e-7 / np.sqrt(1 - BETA2 ** self.t)
        return super().step(closure)


def test_the_book_adam_is_torch_adam_with_a_step_dependent_eps():
    """On float64 arrays, gradients down to 1e-10: the book's rule and torch's Adam with the
    eps moved agree to round-off; at torch's fixed eps they part where sqrt(v) is small."""
    rng = np.random.default_rng(1)
    grads = [rng.standard_normal(21) * np.logspace(-10, 0, 21) for _ in range(4)]
    book, twin, fixed = np.zeros(21), torch.zeros(21, dtype=torch.float64), torch.zeros(21, dtype=torch.float64)
    optimizer, rule = BO.Adam(lr=ADAM_LR), book_adam_rule()
    twin.requires_grad_(), fixed.requires_grad_()
    by_rule = np.zeros(21)
    moved = BookEpsAdam([twin], lr=ADAM_LR, betas=(BETA1, BETA2))
    kept = torch.optim.Adam([fixed], lr=ADAM_LR, betas=(BETA1, BETA2), eps=1e-8)
    for g in grads:
        optimizer.update([book], [g.copy()])
        rule([by_rule], [g.copy()])
        for p, opt in ((twin, moved), (fixed, kept)):
            p.grad = torch.from_numpy(g.copy())
            opt.step()
        np.testing.assert_array_equal(book, by_rule)
        np.testing.assert_allclose(twin.detach().numpy(), book, rtol=1e-12, atol=0)
        assert np.max(np.abs(fixed.detach().numpy() - book)) > 1e-2 * ADAM_LR


class TorchFormAdam(BO.Adam):
    """An Adam written as torch writes it (eps 1e-8 on the corrected root): not the book's."""

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        for i, g in enumerate(grads):
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * g
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * g * g
            m_hat = self.m[i] / (1 - self.beta1 ** self.iter)
            v_hat = self.v[i] / (1 - self.beta2 ** self.iter)
            params[i] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def test_the_eps_difference_is_held_only_for_the_books_adam():
    from compare.port.adam_eps import book_adam_betas
    port = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=ADAM_LR, betas=(BETA1, BETA2))
    assert book_adam_betas(BO.Adam(lr=ADAM_LR), "list", port) == (BETA1, BETA2)
    assert book_adam_betas(TorchFormAdam(lr=ADAM_LR), "list", port) is None
    other = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=ADAM_LR, betas=(0.8, BETA2))
    assert book_adam_betas(BO.Adam(lr=ADAM_LR), "list", other) is None
    assert book_adam_betas(BO.Adam(lr=ADAM_LR), "list",
                           torch.optim.AdamW([torch.zeros(2, requires_grad=True)], lr=ADAM_LR)) is None


@pytest.mark.slow
def test_the_right_adam_port_passes_with_adam_eps_named_and_sized():
    steps = 5
    report = _check_with(BO.Adam, lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(BETA1, BETA2)),
                         ADAM_LR, steps=steps)
    assert report.passed, report.to_text()
    assert [k["code"] for k in report.known] == ["adam_eps"]
    # the size at each step, against two torch loops written here: the port's fixed eps
    # and the book's eps moved into torch
    sizes = report.training["adam_eps"]
    assert len(sizes) == steps
    np_losses, np_params, _, _ = numpy_loop(steps, update=book_adam_rule(), lr=ADAM_LR)
    np.testing.assert_array_equal(report.training["loss_numpy"], np_losses)
    _, fixed, _ = torch_loop(P.make_lstm(), steps, lr=ADAM_LR,
                             make_optimizer=lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(BETA1, BETA2)))
    _, moved, _ = torch_loop(P.make_lstm(), steps, lr=ADAM_LR,
                             make_optimizer=lambda ps, lr: BookEpsAdam(ps, lr=lr, betas=(BETA1, BETA2)))
    bound = float32_training_bound(steps)
    assert _max_rel(np_params, moved) <= bound          # the book's Adam is torch's, eps moved
    assert _max_rel(np_params, fixed) > 10 * bound      # at a fixed eps it is not
    last = max(float(np.max(np.abs(f - m)) / np.max(np.abs(m))) for f, m in zip(fixed, moved))
    np.testing.assert_allclose(sizes[-1], last, rtol=0.05)


@pytest.mark.slow
def test_an_adam_port_with_other_betas_fails():
    report = _check_with(BO.Adam, lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(0.8, BETA2)),
                         ADAM_LR)
    assert not report.passed
    assert report.known == []
    # named with the book's eps at each step taken out of the rerun: the betas alone part them
    [found] = report.diagnosis
    assert (found["code"], found["hyperparameter"], found["numpy"]) == ("optimizer", "betas",
                                                                         [BETA1, BETA2])


@pytest.mark.slow
@pytest.mark.parametrize("name, make", [
    ("AdaGrad", lambda ps, lr: torch.optim.Adagrad(ps, lr=lr, eps=1e-7)),
    ("RMSprop", lambda ps, lr: torch.optim.RMSprop(ps, lr=lr, alpha=0.99, eps=1e-7)),
])
def test_adagrad_and_rmsprop_ports_pass_with_the_books_eps(name, make):
    """The book adds 1e-7 where torch's AdaGrad and RMSprop add eps: set to it, one rule."""
    report = _check_with(getattr(BO, name), make, MOMENTUM_LR)
    assert report.passed, report.to_text()
    assert report.known == [] and report.settings["numpy optimizer"] == name


@pytest.mark.slow
@pytest.mark.parametrize("factory, code", [(P.make_double_bias, "double_bias"),
                                           (P.make_state_reset, "state_reset")])
def test_the_window_traps_are_named_under_the_books_adam(factory, code):
    """The reruns take the book's eps at each step out too: the bug alone reproduces."""
    report = check_training(N_.make_rnnlm(), factory(), CORPUS, None, steps=4, batch_size=B,
                            time_size=T, lr=ADAM_LR, numpy_optimizer=BO.Adam,
                            torch_optimizer=lambda ps, lr: torch.optim.Adam(ps, lr=lr,
                                                                            betas=(BETA1, BETA2)))
    assert not report.passed
    assert [d["code"] for d in report.diagnosis] == [code]
    assert [k["code"] for k in report.known] == ["adam_eps"]


def test_the_examples_training_pair_is_the_check_on_both_sides():
    """``numpy_trainer.py`` (the book's trainer loop a learner copies) is the NumPy run the
    check makes, loss for loss; ``torch_trainer.py`` (its torch twin) trains as it does."""
    numpy_trainer, torch_trainer = _load("numpy_trainer"), _load("torch_trainer")
    steps, clip = 5, 0.1
    np_losses = numpy_trainer.train(N_.Rnnlm(), CORPUS, steps, B, T, LR, clip)
    port = P.make_lstm()
    torch_trainer.load_numpy_params(port, N_.Rnnlm())
    t_losses = torch_trainer.train(port, CORPUS, steps, B, T, LR, clip)
    np.testing.assert_allclose(t_losses, np_losses, rtol=float32_training_bound(steps))
    report = check_training(N_.make_rnnlm(), P.make_lstm(), CORPUS, None, steps=steps,
                            batch_size=B, time_size=T, lr=LR, max_grad_norm=clip,
                            first_batch_check=False)
    np.testing.assert_array_equal(report.training["loss_numpy"], np_losses)
    # the check's port runs the loop's own ops on the loop's values: bit for bit
    np.testing.assert_array_equal(report.training["loss_torch"], t_losses)


class StepAdam:
    """An Adam as from-scratch libraries write it: ``step(params, grads)`` (torch's name),
    m and v corrected, ``eps`` outside ``sqrt(vhat)``: torch's own rule."""

    def __init__(self, lr=ADAM_LR, beta1=BETA1, beta2=BETA2, eps=1e-7):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t, self.m, self.v = 0, None, None

    def step(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        for i in range(len(params)):
            self.m[i] = self.beta1 * self.m[i] + (1 - self.beta1) * grads[i]
            self.v[i] = self.beta2 * self.v[i] + (1 - self.beta2) * grads[i] ** 2
            mhat = self.m[i] / (1 - self.beta1 ** self.t)
            vhat = self.v[i] / (1 - self.beta2 ** self.t)
            params[i] -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def test_a_numpy_optimizer_with_step_is_taken_as_update():
    from compare.port.optimizers import numpy_optimizer_of, optimizer_name
    optimizer = numpy_optimizer_of(StepAdam, ADAM_LR)
    assert optimizer_name(optimizer) == "StepAdam" and optimizer.beta2 == BETA2
    p, g = np.ones(3), np.full(3, 0.5)
    optimizer.update([p], [g])  # torch's first Adam step: lr * sign(g), less eps's share
    np.testing.assert_allclose(p, 1 - ADAM_LR * 0.5 / (0.5 + 1e-7), rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("eps, passes", [(1e-7, True), (1e-8, False)])
def test_a_torch_rule_adam_with_step_against_torchs_adam(eps, passes):
    """torch's rule with eps 1e-7: the port's Adam(eps=1e-7) is it, with no known difference;
    at torch's default eps the eps is named."""
    report = _check_with(StepAdam, lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(BETA1, BETA2),
                                                                   eps=eps), ADAM_LR)
    assert report.passed is passes, report.to_text()
    assert report.known == []
    if not passes:
        [found] = report.diagnosis
        assert (found["code"], found["hyperparameter"], found["numpy"]) == ("optimizer", "eps", 1e-7)
