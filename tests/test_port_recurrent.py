"""Recurrent nets through ``compare port``: the fused gates of ``nn.LSTM`` and its cell paired
with the NumPy ``Wx``, ``Wh``, ``b`` whatever order the NumPy code slices them in, the
hidden state of a stateful model put back between the check's passes, the layer rows of a
time-major LSTM and of a cell called per step, and the traps ``batch_first`` and
``gate_order``. The NumPy model (``tests/styles/vol2_lstm.py``) is written here in the
book's second-volume style."""
import numpy as np
import pytest
import torch
from torch import nn

from compare import check_port
from compare.port.pairing import Pair, gate_blocks
from tests.styles.vol2_lstm import Rnnlm, RnnlmWithoutReset, tokens

V, D, H = 10, 5, 4


class LstmPort(nn.Module):
    def __init__(self, batch_first=True, transpose=True, stateful=False):
        super().__init__()
        self.embed = nn.Embedding(V, D)
        self.lstm = nn.LSTM(D, H, batch_first=batch_first)
        self.fc = nn.Linear(H, V)
        self.transpose = not batch_first and transpose
        self.stateful, self.state = stateful, None

    def forward(self, xs):
        e = self.embed(xs)
        e = e.transpose(0, 1) if self.transpose else e
        out, state = self.lstm(e, self.state)
        if self.stateful:  # carried to the next call, as the book's stateful TimeLSTM
            self.state = tuple(s.detach() for s in state)
        return self.fc(out.transpose(0, 1) if self.transpose else out)


class CellLoop(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.cell, self.fc = nn.Embedding(V, D), nn.LSTMCell(D, H), nn.Linear(H, V)

    def forward(self, xs):
        e = self.embed(xs)
        h = c = e.new_zeros(e.shape[0], H)
        hs = []
        for t in range(e.shape[1]):
            h, c = self.cell(e[:, t], (h, c))
            hs.append(h)
        return self.fc(torch.stack(hs, 1))


class Literal(nn.Module):
    """nn.Parameters under the book's names; the fused gates sliced in ``order``."""

    def __init__(self, order="fgio"):
        super().__init__()
        self.W_embed = nn.Parameter(torch.zeros(V, D))
        self.Wx, self.Wh = nn.Parameter(torch.zeros(D, 4 * H)), nn.Parameter(torch.zeros(H, 4 * H))
        self.b = nn.Parameter(torch.zeros(4 * H))
        self.W_out, self.b_out = nn.Parameter(torch.zeros(H, V)), nn.Parameter(torch.zeros(V))
        self.order = order

    def forward(self, xs):
        e = self.W_embed[xs]
        h = c = e.new_zeros(e.shape[0], H)
        hs = []
        for t in range(e.shape[1]):
            a = dict(zip(self.order, (e[:, t] @ self.Wx + h @ self.Wh + self.b).split(H, dim=1)))
            c = torch.sigmoid(a["f"]) * c + torch.tanh(a["g"]) * torch.sigmoid(a["i"])
            h = torch.sigmoid(a["o"]) * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs, 1) @ self.W_out + self.b_out


class LiteralNames(Rnnlm):
    """The book's model with its arrays also under the literal port's names."""


def literal_pairing():
    return ("TimeEmbedding0.W=W_embed,TimeLSTM0.Wx=Wx,TimeLSTM0.Wh=Wh,TimeLSTM0.b=b,"
            "TimeAffine0.W=W_out,TimeAffine0.b=b_out")


def row(report, phase, where):
    return next(c for c in report.checks if c.phase == phase and c.where == where)


# --- the layout conversion itself ---------------------------------------------------------------

def test_gate_blocks_move_whole_blocks_and_back():
    value = np.arange(2 * 8).reshape(2, 8)  # (D, 4H) with H = 2: blocks [0,1] [2,3] [4,5] [6,7]
    pair = Pair("Wx", "weight_ih_l0", True, gates=(2, 0, 1, 3), gate_names=("fgio", "ifgo"))
    torch_layout = pair.to_torch(value, (8, 2))
    # torch's first block (i) is the NumPy third (columns 4, 5), then f (0, 1), g (2, 3), o
    assert torch_layout[:2].tolist() == value[:, 4:6].T.tolist()
    assert torch_layout[2:4].tolist() == value[:, 0:2].T.tolist()
    assert np.array_equal(pair.to_numpy(torch_layout), value)
    assert gate_blocks(np.arange(6), (1, 2, 0)).tolist() == [2, 3, 4, 5, 0, 1]


def test_the_port_computes_the_book_lstm_with_the_weights_moved_by_hand():
    """Independent of the checker's pairing: the book's f,g,i,o blocks written into
    nn.LSTM's i,f,g,o by hand give the NumPy loss and gradients."""
    model = Rnnlm(dtype="d", stateful=False)
    port = LstmPort().double()
    embed_W, Wx, Wh, b, W, bias = model.params
    fgio = lambda a: np.concatenate([a[..., 2 * H:3 * H], a[..., :H], a[..., H:2 * H], a[..., 3 * H:]], -1)
    with torch.no_grad():
        port.embed.weight.copy_(torch.from_numpy(embed_W))
        port.lstm.weight_ih_l0.copy_(torch.from_numpy(fgio(Wx).T))
        port.lstm.weight_hh_l0.copy_(torch.from_numpy(fgio(Wh).T))
        port.lstm.bias_ih_l0.copy_(torch.from_numpy(fgio(b)))
        port.lstm.bias_hh_l0.zero_()
        port.fc.weight.copy_(torch.from_numpy(W.T))
        port.fc.bias.copy_(torch.from_numpy(bias))
    x, t = tokens()
    loss = nn.functional.cross_entropy(port(torch.from_numpy(x)).reshape(-1, V), torch.from_numpy(t).reshape(-1))
    loss.backward()
    assert abs(loss.item() - model.forward(x, t)) < 1e-12
    model.backward()
    assert np.allclose(port.lstm.weight_hh_l0.grad.numpy(), fgio(model.grads[2]).T, rtol=1e-9, atol=1e-14)
    assert np.allclose(port.lstm.bias_hh_l0.grad.numpy(), fgio(model.grads[3]), rtol=1e-9, atol=1e-14)


def test_the_numpy_lstm_backprop_against_central_differences():
    model = Rnnlm(dtype="d", stateful=False)
    x, t = tokens()
    model.forward(x, t)
    model.backward()
    for k in (1, 2, 3):  # Wx, Wh, b
        p, g = model.params[k], model.grads[k].copy()
        flat, num = p.reshape(-1), np.zeros(p.size)
        for i in range(p.size):
            was = flat[i]
            flat[i] = was + 1e-5
            up = model.forward(x, t)
            flat[i] = was - 1e-5
            down = model.forward(x, t)
            flat[i] = was
            num[i] = (up - down) / 2e-5
        # h^2 |f'''| / 6 ~ 1e-11 against gradients of ~1e-2: 1e-7 is ample and far below a bug
        assert np.allclose(num, g.reshape(-1), rtol=1e-6, atol=1e-9), k


# --- right ports pass -----------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["fgio", "ifog", "ifgo"])
def test_nn_lstm_passes_whatever_order_the_numpy_code_slices_its_gates_in(order):
    x, t = tokens()
    report = check_port(Rnnlm(order=order), LstmPort(), x, t)
    assert report.passed, str(report)
    pair = next(p for p in report.pairing if p.numpy == "TimeLSTM0.Wx")
    assert "".join(pair.gate_names[0]) == order  # the order read off the values, said
    assert [p.view for p in report.pairing if p.numpy == "TimeLSTM0.b"] == [
        "lstm.bias_ih_l0 + lstm.bias_hh_l0"]


@pytest.mark.parametrize("port", [lambda: LstmPort(batch_first=False), CellLoop],
                         ids=["time-major", "cell-loop"])
def test_time_major_and_cell_loop_ports_pass_with_a_row_for_the_lstm(port):
    x, t = tokens()
    report = check_port(Rnnlm(), port(), x, t)
    assert report.passed, str(report)
    lstm = row(report, "forward", "TimeLSTM0")
    assert lstm.torch in ("lstm", "cell") and lstm.shape == (3, 5, H)


def test_a_literal_port_slicing_the_book_order_passes():
    x, t = tokens()
    report = check_port(Rnnlm(), Literal(), x, t, param_map=literal_pairing())
    assert report.passed, str(report)


@pytest.mark.parametrize("model", [Rnnlm, RnnlmWithoutReset], ids=["reset_state", "no-reset"])
def test_stateful_sides_start_each_pass_from_the_state_they_were_handed(model):
    x, t = tokens()
    numpy_model = model()
    first, second = numpy_model.forward(x, t), numpy_model.forward(x, t)
    assert abs(first - second) > 1e-4  # a pass on the carried state computes another loss
    report = check_port(model(), LstmPort(stateful=True), x, t)
    assert report.passed, str(report)


# --- the traps -----------------------------------------------------------------------------------

def test_a_batch_read_as_time_major_is_named_batch_first():
    x, t = tokens()
    report = check_port(Rnnlm(), LstmPort(batch_first=False, transpose=False), x, t)
    assert not report.passed
    assert [d["code"] for d in report.diagnosis] == ["batch_first"]
    assert report.diagnosis[0]["layer"] == "lstm"
    assert report.first_mismatch["where"] == "TimeLSTM0"
    # the outputs part before the loss: no eps in a log is fitted to the loss's gap
    assert not report.known


def test_a_literal_port_slicing_another_gate_order_is_named_gate_order():
    x, t = tokens()
    report = check_port(Rnnlm(), Literal(order="ifgo"), x, t, param_map=literal_pairing())
    assert not report.passed
    assert [d["code"] for d in report.diagnosis] == ["gate_order"]
    assert "slices its gate blocks f,g,i,o, the port reads them as i,f,g,o" in report.diagnosis[0]["text"]


class TwiceBiased(Literal):
    """The bias added with each product, as torch's two biases are."""

    def forward(self, xs):
        e = self.W_embed[xs]
        h = c = e.new_zeros(e.shape[0], H)
        hs = []
        for t in range(e.shape[1]):
            a = dict(zip(self.order, ((e[:, t] @ self.Wx + self.b) + (h @ self.Wh + self.b)).split(H, dim=1)))
            c = torch.sigmoid(a["f"]) * c + torch.tanh(a["g"]) * torch.sigmoid(a["i"])
            h = torch.sigmoid(a["o"]) * torch.tanh(c)
            hs.append(h)
        return torch.stack(hs, 1) @ self.W_out + self.b_out


@pytest.mark.slow
def test_a_bias_added_with_each_product_is_named_double_bias():
    x, t = tokens()
    report = check_port(Rnnlm(), TwiceBiased(), x, t, param_map=literal_pairing())
    assert not report.passed
    assert [(d["code"], d["parameter"]) for d in report.diagnosis] == [("double_bias", "TimeLSTM0.b")]


class SequenceProbabilities:
    """A tanh RNN on float inputs whose predict ends in softmax over the vocabulary, (N, T, V),
    as the deeplearning.ai course's y_pred; float64, no layer objects."""

    def __init__(self):
        r = np.random.RandomState(0)
        self.params = {"Wx": r.randn(2, H), "Wh": r.randn(H, H) * 0.5, "b": r.randn(H) * 0.5,
                       "Wy": r.randn(H, 3), "by": r.randn(3) * 0.5}

    def predict(self, x):
        p, h, out = self.params, np.zeros((x.shape[0], H)), []
        for t in range(x.shape[1]):
            h = np.tanh(x[:, t] @ p["Wx"] + h @ p["Wh"] + p["b"])
            out.append(h @ p["Wy"] + p["by"])
        s = np.stack(out, 1)
        e = np.exp(s - s.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def loss(self, x, t):
        p = self.predict(x)
        n, steps = t.shape
        return float(-np.log(p[np.arange(n)[:, None], np.arange(steps)[None], t]).mean())


class RnnLogits(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn, self.fc = nn.RNN(2, H, batch_first=True), nn.Linear(H, 3)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


def test_a_predict_ending_in_softmax_over_each_token_pairs_with_logits():
    rs = np.random.RandomState(2)
    x, t = rs.randn(3, 4, 2), rs.randint(0, 3, (3, 4))
    report = check_port(SequenceProbabilities(), RnnLogits(), x, t)
    assert report.passed, str(report)
    assert row(report, "forward", "predict").passed


# --- the deeplearning.ai sequence course: one matrix per gate, features first -------------------

from tests.styles import course_sequence as course  # noqa: E402


class CourseLstmPort(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(course.N_X, course.N_A, batch_first=True)
        self.fc = nn.Linear(course.N_A, course.N_Y)

    def forward(self, x):
        return self.fc(self.lstm(x)[0])


class CourseRnnPort(CourseLstmPort):
    def __init__(self):
        super().__init__()
        self.lstm = nn.RNN(course.N_X, course.N_A, batch_first=True)


def summed_over_steps(scores, t):
    """The course's loss: the cross-entropy summed over the steps, averaged over the examples."""
    return nn.functional.cross_entropy(scores.reshape(-1, scores.shape[-1]), t.reshape(-1),
                                       reduction="sum") / scores.shape[0]


@pytest.mark.parametrize("concat", ["ax", "xa"])
def test_the_course_lstm_gate_matrices_pair_with_nn_lstm_by_rows(concat):
    x, t = course.batch()
    report = check_port(course.CourseLSTM(concat=concat), CourseLstmPort(), x, t,
                        loss=summed_over_steps)
    assert report.passed, str(report)
    wf = next(p for p in report.pairing if p.numpy == "Wf")
    # f is torch's second block: rows 4:8 of both matrices
    assert wf.view == "lstm.weight_hh_l0[4:8] | lstm.weight_ih_l0[4:8]"
    assert wf.concat == ("[a_prev; x]" if concat == "ax" else "[x; a_prev]")
    bc = next(p for p in report.pairing if p.numpy == "bc")  # c is torch's g: the third block
    assert bc.view == "lstm.bias_ih_l0[8:12] + lstm.bias_hh_l0[8:12]"


def test_the_course_lstm_weights_moved_by_hand_give_its_loss():
    """Independent of the checker: the course's Wf, Wi, Wc, Wo cut by hand into nn.LSTM."""
    model, port = course.CourseLSTM(), CourseLstmPort().double()
    p, A = model.params, course.N_A
    with torch.no_grad():
        for k, g in enumerate("ifco"):  # torch's i, f, g, o
            port.lstm.weight_hh_l0[k * A:(k + 1) * A] = torch.from_numpy(p[f"W{g}"][:, :A])
            port.lstm.weight_ih_l0[k * A:(k + 1) * A] = torch.from_numpy(p[f"W{g}"][:, A:])
            port.lstm.bias_ih_l0[k * A:(k + 1) * A] = torch.from_numpy(p[f"b{g}"][:, 0])
        port.lstm.bias_hh_l0.zero_()
        port.fc.weight[:] = torch.from_numpy(p["Wy"])
        port.fc.bias[:] = torch.from_numpy(p["by"][:, 0])
    x, t = course.batch()
    expected = model.loss(x.transpose(2, 0, 1), np.eye(course.N_Y)[t].transpose(2, 0, 1))
    got = summed_over_steps(port(torch.from_numpy(x)), torch.from_numpy(t)).item()
    assert abs(got - expected) < 1e-12 * abs(expected)


def test_the_course_rnn_pairs_with_nn_rnn_as_it_is():
    x, t = course.batch()
    report = check_port(course.CourseRNN(), CourseRnnPort(), x, t, loss=summed_over_steps)
    assert report.passed, str(report)
    assert {p.numpy: p.view for p in report.pairing}["ba"] == "lstm.bias_ih_l0 + lstm.bias_hh_l0"


def test_a_param_map_may_say_a_numpy_bias_is_the_sum_of_torch_two():
    x, t = course.batch()
    mapping = ("Wax=lstm.weight_ih_l0,Waa=lstm.weight_hh_l0,ba=lstm.bias_ih_l0+lstm.bias_hh_l0,"
               "Wya=fc.weight,by=fc.bias")
    report = check_port(course.CourseRNN(), CourseRnnPort(), x, t, loss=summed_over_steps,
                        param_map=mapping)
    assert report.passed, str(report)
    assert not any("unpaired" in n for n in report.notes)
