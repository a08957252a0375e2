"""The book's second volume, chapters 6-8: seq2seq, peeky seq2seq, attention seq2seq and
the book's GRU (``tests/book_seq2seq.py``), their torch ports (``tests/torch_seq2seq.py``),
and the traps of each. The NumPy models are checked against central differences, the ports'
autograd against the NumPy backprop after a map written out by hand, then ``check_port``."""
import numpy as np
import pytest
import torch

import book_seq2seq as book
import torch_seq2seq as ports
from compare import check_port
from compare.port.layers.recurrent import BOOK_GRU_CELL
from compare.port.reference.list_door import through_list_door

EPS64 = np.finfo(np.float64).eps
SMALL = dict(V=6, D=3, H=2)


def small_pairs():
    return book.pairs(n=2, t_in=3, t_out=3, V=SMALL["V"], seed=5)


# --- the NumPy models against central differences (float64) --------------------------------

def _central(loss, p, i, h):
    old = p[i]
    p[i] = old + h
    up = loss()
    p[i] = old - h
    down = loss()
    p[i] = old
    return (up - down) / (2 * h)


@pytest.mark.parametrize("make, data", [
    (book.Seq2seq, small_pairs), (book.PeekySeq2seq, small_pairs),
    (book.AttentionSeq2seq, small_pairs),
    (book.GruLm, lambda: book.tokens(n=2, T=3, V=SMALL["V"], seed=6))])
def test_numpy_backprop_against_central_differences(make, data):
    model = make(**SMALL, dtype=np.float64)
    x, t = data()
    value = model.forward(x, t)
    model.backward()
    h = 1e-4

    def loss():
        return model.forward(x, t)
    for p, g in zip(model.params, model.grads):
        for i in np.ndindex(p.shape):
            d_h, d_2h = _central(loss, p, i, h), _central(loss, p, i, 2 * h)
            # the truncation error of D(h) is c h^2 and of D(2h) 4 c h^2: their difference
            # sizes it (3 c h^2); the round-off of a difference is eps |L| / h per evaluation
            truncation = abs(d_2h - d_h) / 3
            round_off = 4 * EPS64 * abs(value) / h
            assert abs(d_h - g[i]) <= 2 * (truncation + round_off) + 1e-12, (make.__name__, i)


# --- the ports' autograd against the NumPy backprop, mapped by hand ------------------------

FGIO_TO_IFGO = (2, 0, 1, 3)  # torch's block k holds the book's block FGIO_TO_IFGO[k]


def _blocks(a, order, axis):
    parts = np.split(a, len(order), axis=axis)
    return np.concatenate([parts[o] for o in order], axis=axis)


def _load_lstm(module, Wx, Wh, b):
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(_blocks(Wx, FGIO_TO_IFGO, 1).T))
        module.weight_hh_l0.copy_(torch.from_numpy(_blocks(Wh, FGIO_TO_IFGO, 1).T))
        module.bias_ih_l0.copy_(torch.from_numpy(_blocks(b, FGIO_TO_IFGO, 0)))
        module.bias_hh_l0.zero_()


def _lstm_grads(module):
    back = np.argsort(FGIO_TO_IFGO)
    g = [module.weight_ih_l0.grad.numpy().T, module.weight_hh_l0.grad.numpy().T,
         module.bias_ih_l0.grad.numpy()]
    return [_blocks(g[0], back, 1), _blocks(g[1], back, 1), _blocks(g[2], back, 0)]


def _hand_mapped(model, port):
    """The port loaded with the NumPy values by hand; ``grads()`` its autograd in the NumPy
    layout, in the order of ``model.params``."""
    enc, dec = model.encoder, model.decoder
    with torch.no_grad():
        port.enc_embed.weight.copy_(torch.from_numpy(enc.embed.params[0]))
        port.dec_embed.weight.copy_(torch.from_numpy(dec.embed.params[0]))
        port.fc.weight.copy_(torch.from_numpy(dec.affine.params[0].T))
        port.fc.bias.copy_(torch.from_numpy(dec.affine.params[1]))
    _load_lstm(port.encoder, *enc.lstm.params)
    _load_lstm(port.decoder, *dec.lstm.params)

    def grads():
        return ([port.enc_embed.weight.grad.numpy(), *_lstm_grads(port.encoder),
                 port.dec_embed.weight.grad.numpy(), *_lstm_grads(port.decoder),
                 port.fc.weight.grad.numpy().T, port.fc.bias.grad.numpy()])
    return grads


@pytest.mark.parametrize("make, port_class", [
    (book.Seq2seq, ports.Seq2seqPort), (book.PeekySeq2seq, ports.PeekyPort),
    (book.AttentionSeq2seq, ports.AttentionPort)])
def test_port_autograd_equals_numpy_backprop_after_a_hand_map(make, port_class):
    model = make(**SMALL, dtype=np.float64)
    port = port_class(**SMALL).double()
    grads = _hand_mapped(model, port)
    x, t = small_pairs()
    expected = model.forward(x, t)
    model.backward()
    actual = port.loss(torch.from_numpy(x), torch.from_numpy(t))
    actual.backward()
    # two float64 computations of one function in other orders: each result within a few
    # hundred roundings (T steps of sums over a handful of terms) of the largest term
    ops = 1000
    assert abs(actual.item() - expected) <= ops * EPS64 * abs(expected)
    for g_np, g_t in zip(model.grads, grads()):
        assert g_np.shape == g_t.shape
        np.testing.assert_allclose(g_t, g_np, rtol=0, atol=ops * EPS64 * max(np.abs(g_np).max(), 1))


def test_nn_gru_is_not_the_books_gru_and_the_shown_cell_is():
    """No mapping of the book's blocks into nn.GRU gives the book's GRU (its reset gate acts
    after the product with Wh); the cell the gru_convention trap shows does."""
    rng = np.random.RandomState(0)
    D, H, N = 3, 2, 4
    Wx, Wh, b = rng.randn(D, 3 * H), rng.randn(H, 3 * H), rng.randn(3 * H)
    x, h = rng.randn(N, D), rng.randn(N, H)
    step = book.GRU(Wx, Wh, b)
    expected = step.forward(x, h)
    scope = {"torch": torch, "H": H, "x": torch.from_numpy(x), "h": torch.from_numpy(h),
             "Wx": torch.from_numpy(Wx), "Wh": torch.from_numpy(Wh), "b": torch.from_numpy(b)}
    exec("\n".join(BOOK_GRU_CELL), scope)
    np.testing.assert_allclose(scope["h"].numpy(), expected, rtol=0, atol=100 * EPS64)
    # nn.GRUCell with torch's r, z, n taken from the book's r, z, h~ blocks, and z's weights
    # negated or not (torch weighs h by z where the book weighs it by 1 - z)
    cell = torch.nn.GRUCell(D, H).double()
    blocks = [np.split(a, 3, axis=-1) for a in (Wx, Wh, b)]  # each: z, r, h~
    gaps = []
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for k, (target, tail) in enumerate(((cell.weight_ih, True), (cell.weight_hh, True),
                                                (cell.bias_ih, False))):
                z, r, n = blocks[k]
                value = np.concatenate((r, sign * z, n), axis=-1)
                target.copy_(torch.from_numpy(value.T if tail else value))
            cell.bias_hh.zero_()
            got = cell(torch.from_numpy(x), torch.from_numpy(h)).numpy()
        gaps.append(np.abs(got - expected).max())
    assert min(gaps) > 1e-3


def test_seq2seq_named_by_attribute_path_through_the_list_door():
    door = through_list_door(book.Seq2seq(**SMALL))
    assert list(door.params)[:4] == ["encoder.embed.W", "encoder.lstm.Wx", "encoder.lstm.Wh",
                                     "encoder.lstm.b"]
    assert list(door.params)[-2:] == ["decoder.affine.W", "decoder.affine.b"]
    assert set(door.layers) == {"encoder.embed", "encoder.lstm", "decoder.embed", "decoder.lstm",
                                "decoder.affine"}
    assert door.params["decoder.lstm.Wx"] is door.inner.decoder.lstm.params[0]


# --- check_port: the right ports pass, each trap located and named --------------------------

def _check(make, port, data=None, **kw):
    x, t = data() if data is not None else book.pairs()
    loss = kw.pop("loss", "model")
    return check_port(make(), port(), x, t, loss=loss, **kw)


def _rows(report, phase):
    return {c.where: c for c in report.checks if c.phase == phase}


@pytest.mark.slow
@pytest.mark.parametrize("make, port", [
    (book.Seq2seq, ports.Seq2seqPort), (book.Seq2seq, ports.DecoderFirst),
    (book.PeekySeq2seq, ports.PeekyPort), (book.AttentionSeq2seq, ports.AttentionPort)])
def test_right_seq2seq_ports_pass_in_float32_with_rows(make, port):
    report = _check(make, port)
    assert report.passed, report.to_text()
    assert report.settings["dtype"] == "float32"
    forward = _rows(report, "forward")
    assert {"encoder.embed", "encoder.lstm", "decoder.embed", "decoder.lstm",
            "decoder.affine"} <= set(forward)
    backward = _rows(report, "backward")
    # the encoder's output row holds what reaches its last h through the decoder's state
    assert "encoder.lstm (output)" in backward and backward["encoder.lstm (output)"].passed
    assert "decoder.lstm.Wx" in backward


@pytest.mark.slow
def test_book_gru_cell_port_passes():
    report = _check(book.GruLm, ports.BookGruPort, data=book.tokens, loss=None)
    assert report.passed, report.to_text()


def _named(report, code):
    assert not report.passed
    return [d for d in report.diagnosis if d["code"] == code]


@pytest.mark.slow
@pytest.mark.parametrize("make, port, code, where", [
    (book.Seq2seq, ports.PassesC, "encoder_c", "decoder.lstm"),
    (book.PeekySeq2seq, ports.PeekySwapped, "concat_order", "decoder.lstm"),
    (book.AttentionSeq2seq, ports.AttentionJoinedSwapped, "concat_order", "decoder.affine"),
    (book.AttentionSeq2seq, ports.AttentionScaled, "attention_scale", "decoder.affine"),
    (book.AttentionSeq2seq, ports.AttentionWrongAxis, "attention_axis", "decoder.affine")])
def test_seq2seq_trap_located_and_named(make, port, code, where):
    report = _check(make, port)
    assert report.first_mismatch["where"] == where
    assert _named(report, code), report.to_text()


@pytest.mark.slow
def test_nn_gru_against_the_books_gru_named_gru_convention_with_the_cell():
    report = _check(book.GruLm, ports.GruPort, data=book.tokens, loss=None)
    assert report.first_mismatch["where"] == "TimeGRU0"
    named = _named(report, "gru_convention")
    assert named and named[0]["cell"] == list(BOOK_GRU_CELL)
    assert "(r * h) @ Wh" in named[0]["text"]


@pytest.mark.slow
def test_a_hypothesis_that_explains_only_part_is_not_named():
    report = _check(book.Seq2seq, ports.PassesCScaledLoss)
    assert report.first_mismatch["where"] == "decoder.lstm"
    assert not _named(report, "encoder_c")


@pytest.mark.slow
def test_cli_seq2seq_with_the_ports_own_loss(tmp_path, capsys):
    from compare import cli
    x, t = book.pairs()
    data = tmp_path / "pairs.npz"
    np.savez(data, x=x, t=t)
    numpy_side, torch_side = "tests/book_seq2seq.py", "tests/torch_seq2seq.py"
    args = ["--data", str(data), "--loss", "model", "--no-progress"]
    assert cli.main(["port", f"{numpy_side}:make_peeky", f"{torch_side}:PeekyPort", *args]) == 0
    assert cli.main(["port", f"{numpy_side}:make_seq2seq", f"{torch_side}:PassesC", *args]) == 1
    assert "[encoder_c]" in capsys.readouterr().out
