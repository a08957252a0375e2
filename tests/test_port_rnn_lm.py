"""The worked recurrent example, ``examples/rnn_lm/``: the book's second-volume language
models in NumPy, their right PyTorch ports and planted bugs.

Three kinds of evidence, each independent of the checker:

* the NumPy models' backprop against central differences of their own loss (a float64 copy
  of the float32 model, so that the differences measure the gradient and not round-off);
* each right port's autograd against the NumPy backprop, the weights copied in by a map
  written out here by hand (the gate blocks permuted letter by letter), not by the
  checker's pairing;
* then ``check_port`` on them: every right port passes, every planted bug fails where it
  enters and is named with its code.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compare import check_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "rnn_lm"


def _load(name):
    # the example's files import their neighbours by plain name, as a script would
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))
    spec = importlib.util.spec_from_file_location(f"rnn_lm_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


N_ = _load("numpy_lm")
P = _load("torch_lm")
B = _load("bugs")
DATA = _load("make_data")

XS, TS = DATA.batch(DATA.corpus(), batch_size=4, time_size=5)
V = 10


def float64_twin(model_class):
    """The float32 model and a float64 copy of the very same values."""
    m32, m64 = model_class(), model_class(dtype=np.float64)
    for a64, a32 in zip(m64.params, m32.params):
        a64[...] = a32
    return m32, m64


def backprop(model, xs, ts):
    model.reset_state()
    loss = model.forward(xs, ts)
    model.backward()
    return loss, [g.copy() for g in model.grads]


def central_differences(model, xs, ts, h=1e-5):
    """d loss / d each parameter element, ``(L(p + h) - L(p - h)) / 2h``, the state reset
    before each loss as the model starts a batch."""
    grads = []
    for p in model.params:
        g = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            kept = p[idx]
            p[idx] = kept + h
            model.reset_state()
            up = model.forward(xs, ts)
            p[idx] = kept - h
            model.reset_state()
            down = model.forward(xs, ts)
            p[idx] = kept
            g[idx] = (up - down) / (2 * h)
        grads.append(g)
    return grads


# Central differences in float64 with h = 1e-5: truncation h^2/6 |L'''| ~ 2e-11 |L'''| and
# round-off ~ eps64 |L| / h ~ 5e-11 (L ~ 2.3); measured at most 2e-10 on these models, so 1e-8
# holds both with a margin of ~50 while each array's largest gradient is 1e-3 or more (asserted
# below): a wrong term shows.
CD_ATOL = 1e-8


@pytest.mark.parametrize("model_class", [N_.SimpleRnnlm, N_.Rnnlm], ids=["rnn", "lstm"])
def test_numpy_backprop_against_central_differences(model_class):
    _, m64 = float64_twin(model_class)
    ts = TS.copy()
    ts[0, 1] = ts[2, 4] = -1  # ignored targets: neither in the loss nor in the gradient
    _, grads = backprop(m64, XS, ts)
    for name, g, ref in zip(("embed_W", "Wx", "Wh", "b", "affine_W", "affine_b"),
                            grads, central_differences(m64, XS, ts)):
        assert np.abs(ref).max() > 100 * CD_ATOL, name  # a gradient, not round-off, is checked
        np.testing.assert_allclose(g, ref, rtol=1e-6, atol=CD_ATOL, err_msg=name)


@pytest.mark.parametrize("model_class", [N_.SimpleRnnlm, N_.Rnnlm], ids=["rnn", "lstm"])
def test_float32_model_computes_its_float64_copy_to_float32_round_off(model_class):
    """The example's own arrays are float32 ('f'), as the book's. Unit round-off is 6e-8;
    the deepest value here passes through ~T x 20 operations, each adding at most that
    relative to terms no larger than the array's largest, so |g32 - g64| is bounded near
    100 x 6e-8 ~ 1e-5 x max|g64| (measured: 3e-7); 1e-4 x max|g64|, the checker's own
    float32 rtol, holds it while a wrong term (a gate, a step) moves gradients by far more."""
    m32, m64 = float64_twin(model_class)
    loss32, grads32 = backprop(m32, XS, TS)
    loss64, grads64 = backprop(m64, XS, TS)
    assert all(g.dtype == np.float32 for g in grads32)
    assert abs(loss32 - loss64) <= 1e-4 * abs(loss64)
    for g32, g64 in zip(grads32, grads64):
        assert np.abs(g32 - g64).max() <= 1e-4 * np.abs(g64).max()


def test_the_state_is_carried_between_batches_and_forgotten_on_reset():
    model = N_.Rnnlm()
    first = model.forward(XS, TS)
    carried = model.forward(XS, TS)
    model.reset_state()
    again = model.forward(XS, TS)
    assert again == first and carried != first


# --- each right port's autograd against the NumPy backprop, weights copied by hand -------

def fgio_to_ifgo(a):
    """NumPy's gate blocks f, g, i, o (last axis) in torch's order i, f, g, o."""
    f, g, i, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, f, g, o], axis=-1)


def ifgo_to_fgio(a):
    i, f, g, o = np.split(a, 4, axis=-1)
    return np.concatenate([f, g, i, o], axis=-1)


def _recurrent_map(prefix, suffix, gates_in, gates_out):
    """``(torch name, from NumPy (Wx, Wh, b), to NumPy)`` for one torch recurrent module:
    weights ``(G*H, in)``, the one NumPy bias into ``bias_ih``, ``bias_hh`` zero."""
    return [(f"{prefix}.weight_ih{suffix}", lambda p: gates_in(p[1]).T, lambda g: gates_out(g.T), 1),
            (f"{prefix}.weight_hh{suffix}", lambda p: gates_in(p[2]).T, lambda g: gates_out(g.T), 2),
            (f"{prefix}.bias_ih{suffix}", lambda p: gates_in(p[3]), gates_out, 3),
            # zero here; its gradient, like bias_ih's, is the gradient of the sum, b's
            (f"{prefix}.bias_hh{suffix}", lambda p: np.zeros_like(p[3]), gates_out, 3)]


SHARED = [("embed.weight", lambda p: p[0], lambda g: g, 0),
          ("fc.weight", lambda p: p[4].T, lambda g: g.T, 4),
          ("fc.bias", lambda p: p[5], lambda g: g, 5)]
SAME = lambda a: a  # noqa: E731  (an RNN has one gate block: nothing to permute)

# (numpy model, port factory, [(torch parameter, value from the NumPy params, its gradient
# back in the NumPy layout, index in params)])
MAPS = {
    "rnn": (N_.SimpleRnnlm, P.make_rnn, SHARED + _recurrent_map("rnn", "_l0", SAME, SAME)),
    "lstm": (N_.Rnnlm, P.make_lstm, SHARED + _recurrent_map("lstm", "_l0", fgio_to_ifgo, ifgo_to_fgio)),
    "seq_first_lstm": (N_.Rnnlm, P.make_seq_first_lstm,
                       SHARED + _recurrent_map("lstm", "_l0", fgio_to_ifgo, ifgo_to_fgio)),
    "cell_loop": (N_.Rnnlm, P.make_cell_loop,
                  SHARED + _recurrent_map("cell", "", fgio_to_ifgo, ifgo_to_fgio)),
    "literal": (N_.Rnnlm, P.make_literal,
                [(name, lambda p, k=k: p[k], lambda g: g, k) for k, name in enumerate(
                    ("embed_W", "lstm_Wx", "lstm_Wh", "lstm_b", "affine_W", "affine_b"))]),
}


@pytest.mark.parametrize("which", sorted(MAPS))
def test_right_port_autograd_equals_numpy_backprop(which):
    model_class, make_port, mapping = MAPS[which]
    _, m64 = float64_twin(model_class)
    ts = TS.copy()
    ts[1, 2] = -1  # the NumPy ignore_label is cross_entropy's ignore_index
    loss, grads = backprop(m64, XS, ts)
    port = make_port().double()
    params = dict(port.named_parameters())
    assert set(params) == {name for name, *_ in mapping}  # every parameter mapped, once
    with torch.no_grad():
        for name, value, _, _ in mapping:
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(value(m64.params))))
    scores = port(torch.from_numpy(XS))
    t_loss = F.cross_entropy(scores.reshape(-1, V), torch.from_numpy(ts).reshape(-1), ignore_index=-1)
    t_loss.backward()
    t_loss = float(t_loss.detach())
    # both sides compute the same float64 arithmetic in another order: their gap is a few
    # eps64 (2.2e-16) times the sums' sizes (< 10); 1e-12 leaves a margin of ~1000
    assert abs(t_loss - loss) <= 1e-12
    for name, _, back, k in mapping:
        np.testing.assert_allclose(back(params[name].grad.numpy()), grads[k], rtol=1e-9,
                                   atol=1e-12, err_msg=name)


def test_the_gate_permutation_matters():
    """Without the permutation (the blocks copied in as they lie) the LSTM port computes
    another loss: the autograd test above could not pass on a map that moved nothing."""
    _, m64 = float64_twin(N_.Rnnlm)
    loss, _ = backprop(m64, XS, TS)
    port = P.make_lstm().double()
    params = dict(port.named_parameters())
    with torch.no_grad():
        for name, value, _, _ in SHARED + _recurrent_map("lstm", "_l0", SAME, SAME):
            params[name].copy_(torch.from_numpy(np.ascontiguousarray(value(m64.params))))
    with torch.no_grad():
        scores = port(torch.from_numpy(XS))
    t_loss = float(F.cross_entropy(scores.reshape(-1, V), torch.from_numpy(TS).reshape(-1)))
    assert abs(t_loss - loss) > 1e-3


def test_tokens_are_the_books_windows():
    """``t`` is ``x`` one word on, row by row, as the book's trainer cuts ``corpus[:-1]`` and
    ``corpus[1:]``; ids are integers within the vocabulary."""
    assert XS.dtype.kind == "i" and TS.dtype.kind == "i" and XS.shape == TS.shape == (4, 5)
    np.testing.assert_array_equal(TS[:, :-1], XS[:, 1:])
    assert XS.min() >= 0 and max(XS.max(), TS.max()) < V
    saved = np.load(EXAMPLE / "tokens.npz")
    np.testing.assert_array_equal(saved["x"], XS)
    np.testing.assert_array_equal(saved["t"], TS)


# --- the check -----------------------------------------------------------------------------

BOOK_LSTM = (("f", "g", "i", "o"), ("i", "f", "g", "o"))


def _gate_names(report):
    return {p.numpy: p.gate_names for p in report.pairing if p.gate_names}


def _passes(numpy_factory, port_factory):
    report = check_port(numpy_factory(), port_factory(), XS, TS)
    assert report.passed, report.to_text()
    assert report.to_dict()["settings"]["dtype"] == "float32"
    rows = {(c.phase, c.where) for c in report.checks}
    assert {("loss", "loss"), ("backward", "TimeEmbedding0.W"), ("backward", "TimeAffine0.W")} <= rows
    return report, rows


def test_lstm_port_passes_with_the_books_gate_order_read_off():
    report, rows = _passes(N_.make_rnnlm, P.make_lstm)
    assert _gate_names(report) == {"TimeLSTM0.Wx": BOOK_LSTM, "TimeLSTM0.Wh": BOOK_LSTM,
                                   "TimeLSTM0.b": BOOK_LSTM}
    assert {("forward", "TimeLSTM0"), ("backward", "TimeLSTM0.Wx"), ("backward", "TimeLSTM0.b")} <= rows


@pytest.mark.parametrize("factory", ["make_seq_first_lstm", "make_cell_loop"])
def test_lstm_ports_pass(factory):
    report, rows = _passes(N_.make_rnnlm, getattr(P, factory))
    assert set(_gate_names(report).values()) == {BOOK_LSTM}
    assert {("backward", "TimeLSTM0.Wx"), ("backward", "TimeLSTM0.Wh"), ("backward", "TimeLSTM0.b")} <= rows


def test_literal_port_passes_paired_array_for_array():
    report, rows = _passes(N_.make_rnnlm, P.make_literal)
    assert {p.numpy: p.torch for p in report.pairing} == {
        "TimeEmbedding0.W": "embed_W", "TimeLSTM0.Wx": "lstm_Wx", "TimeLSTM0.Wh": "lstm_Wh",
        "TimeLSTM0.b": "lstm_b", "TimeAffine0.W": "affine_W", "TimeAffine0.b": "affine_b"}


def test_rnn_port_passes():
    report, rows = _passes(N_.make_simple_rnnlm, P.make_rnn)
    assert {("forward", "TimeRNN0"), ("backward", "TimeRNN0.Wx"), ("backward", "TimeRNN0.b")} <= rows


# --- the gate order, read off the values -------------------------------------------------

def fgio_to_ifog(a):
    f, g, i, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, f, o, g], axis=-1)


def ifog_to_fgio(a):
    i, f, o, g = np.split(a, 4, axis=-1)
    return np.concatenate([f, g, i, o], axis=-1)


class IfogTimeLSTM(N_.TimeLSTM):
    """A TimeLSTM whose arrays hold the gate blocks i, f, o, g (cs231n's order): each pass
    computes with copies in the book's order and hands the gradients back in its own."""

    def forward(self, xs):
        held = self.params
        self.params = [ifog_to_fgio(p) for p in held]
        try:
            return super().forward(xs)
        finally:
            self.params = held

    def backward(self, dhs):
        dxs = super().backward(dhs)
        for g in self.grads:
            g[...] = fgio_to_ifog(g.copy())
        return dxs


class IfogRnnlm(N_.Rnnlm):
    def __init__(self):
        super().__init__()
        Wx, Wh, b = (fgio_to_ifog(p) for p in self.layers[1].params)
        self.layers[1] = IfogTimeLSTM(Wx, Wh, b, stateful=True)
        self._gather()


class IfogRnnlmWithoutPredict(IfogRnnlm):
    """The same model offering no ``predict``: only its loss can tell the order."""
    predict = None

    def forward(self, xs, ts):
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)


CS231N_LSTM = (("i", "f", "o", "g"), ("i", "f", "g", "o"))


@pytest.mark.parametrize("model_class", [IfogRnnlm, IfogRnnlmWithoutPredict],
                         ids=["by_scores", "by_loss"])
def test_another_gate_order_is_read_off_the_values(model_class):
    model = model_class()
    _, grads = backprop(model_class(), XS, TS)  # the reordering wrapper is itself right:
    _, book = backprop(N_.Rnnlm(), XS, TS)      # the same loss, its gradients permuted
    np.testing.assert_array_equal(ifog_to_fgio(grads[1]), book[1])
    report = check_port(model, P.make_lstm(), XS, TS)
    assert report.passed, report.to_text()
    assert set(_gate_names(report).values()) == {CS231N_LSTM}


class DecayRnnlm(N_.Rnnlm):
    """The book's weight decay in the NumPy loss, ``0.5 * lambda * sum(W**2)`` over every
    array, and ``lambda * W`` in its gradients; the port's optimizer decays instead."""
    LAMBDA = 0.1

    def forward(self, xs, ts):
        penalty = sum(float(np.sum(p.astype(np.float64) ** 2)) for p in self.params)
        return super().forward(xs, ts) + 0.5 * self.LAMBDA * penalty

    def backward(self, dout=1):
        dxs = super().backward(dout)
        for p, g in zip(self.params, self.grads):
            g += self.LAMBDA * p
        return dxs


@pytest.mark.slow
def test_a_penalty_only_the_numpy_loss_holds_leaves_the_gate_order_right():
    """The loss gap is the penalty under every gate order: read off the losses, the nearest
    order was any and this right port failed in its forward rows."""
    def decaying(params, lr):
        return torch.optim.SGD(params, lr=lr, weight_decay=DecayRnnlm.LAMBDA)
    report = check_port(DecayRnnlm(), P.make_lstm(), XS, TS, torch_optimizer=decaying)
    assert report.passed, report.to_text()
    assert set(_gate_names(report).values()) == {BOOK_LSTM}
    assert "weight_decay" in {k["code"] for k in report.to_dict()["known"]}


def _fails(port_factory, **options):
    report = check_port(N_.make_rnnlm(), port_factory(), XS, TS, **options)
    assert not report.passed
    return report, report.to_dict()


def test_batch_first_named_at_the_lstm():
    report, d = _fails(B.make_batch_first)
    assert (d["first_mismatch"]["where"], d["first_mismatch"]["torch"]) == ("TimeLSTM0", "lstm")
    assert [h["code"] for h in d["diagnosis"]] == ["batch_first"], d["diagnosis"]
    assert d["diagnosis"][0]["layer"] == "lstm"


@pytest.mark.slow
def test_gate_order_named_on_the_lstm_weights():
    report, d = _fails(B.make_gate_order)
    assert d["first_mismatch"]["phase"] == "forward"
    (h,) = d["diagnosis"]
    assert h["code"] == "gate_order" and h["parameter"] == "TimeLSTM0.Wx"
    assert "f,g,i,o" in h["text"] and "i,f,g,o" in h["text"]


def test_summed_token_loss_named_scale_by_the_token_count_at_the_loss():
    report, d = _fails(B.make_summed_loss, loss="model")
    assert d["first_mismatch"]["where"] == "loss"
    # the forward passes agree: the gate order was read off the scores, not the wrong loss
    assert all(c.passed for c in report.checks if c.phase == "forward")
    (h,) = d["diagnosis"]
    assert h["code"] == "scale" and abs(h["factor"] - XS.size) <= 1e-3 * XS.size, h


def test_loss_summed_over_time_named_scale_by_the_step_count():
    """A mean over the sequences of each one's summed token losses (cs231n's reduction)
    against the book's mean over the tokens: T times the NumPy loss, named as such."""
    report, d = _fails(B.make_batch_mean_loss, loss="model")
    assert d["first_mismatch"]["where"] == "loss"
    assert all(c.passed for c in report.checks if c.phase == "forward")
    T = XS.shape[1]
    (h,) = d["diagnosis"]
    assert h["code"] == "scale" and abs(h["factor"] - T) <= 1e-3 * T, h
    assert "averaged over the N = 4 sequences" in h["text"]


@pytest.mark.slow
def test_state_not_carried_fails_in_the_forward_pass():
    report, d = _fails(B.make_state_not_carried)
    assert d["first_mismatch"]["phase"] == "forward"
    embedding = [c for c in report.checks if c.phase == "forward" and c.where == "TimeEmbedding0"]
    assert embedding and embedding[0].passed  # it parts after the embedding, in the recurrence
    assert {h["code"] for h in d["diagnosis"]} <= {"state_reset"}, d["diagnosis"]


@pytest.mark.slow
def test_cli_as_a_process(tmp_path):
    data = tmp_path / "tokens.npz"
    DATA.main([str(data)])
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def run(port):
        return subprocess.run([sys.executable, "-m", "compare", "port",
                               f"{EXAMPLE}/numpy_lm.py:make_rnnlm", port, "--data", str(data),
                               "--no-progress"], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=120)
    right = run(f"{EXAMPLE}/torch_lm.py:make_lstm")
    assert right.returncode == 0, right.stdout + right.stderr
    assert right.stdout.splitlines()[-1].startswith("PASS:")
    wrong = run(f"{EXAMPLE}/bugs.py:make_batch_first")
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    assert "[batch_first]" in wrong.stdout and "Traceback" not in wrong.stderr
