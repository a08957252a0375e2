"""One draw for both sides: the NumPy side's dropout masks drive the torch side's."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from compare.port.capture import LayerRecord
from compare.port.draws import DrawTape


def book_dropout(x, p):
    mask = np.random.rand(*x.shape) > p
    return x * mask


def recorded(x, p=0.5, seed=0):
    np.random.seed(seed)
    tape = DrawTape()
    with tape.numpy_pass():
        out = book_dropout(x, p)
    tape.keep_masks([LayerRecord("Dropout1", "Dropout", x, out)], lambda r: True)
    return tape, out


def test_later_numpy_passes_replay_the_first_draw():
    x = np.random.default_rng(0).standard_normal((5, 7))
    tape, first = recorded(x)
    for _ in range(3):  # the numerical check runs hundreds of passes on one batch
        with tape.numpy_pass():
            again = book_dropout(x, 0.5)
        np.testing.assert_array_equal(again, first)
    assert tape.misses == 0


def test_without_the_tape_two_passes_draw_two_masks():
    x = np.ones((50, 50))
    assert not np.array_equal(book_dropout(x, 0.5), book_dropout(x, 0.5))


def test_nn_dropout_gets_the_numpy_mask_and_keeps_its_own_scaling():
    x = np.random.default_rng(1).standard_normal((4, 6))
    tape, out = recorded(x, p=0.25)
    with tape.torch_pass():
        y = nn.Dropout(0.25)(torch.from_numpy(x))
    np.testing.assert_allclose(y.numpy(), out / 0.75, rtol=1e-15)
    assert tape.misses == 0


def test_f_dropout_and_a_port_drawing_with_torch_rand_get_the_same_mask():
    x = np.random.default_rng(2).standard_normal((3, 8))
    tape, out = recorded(x, p=0.5)
    with tape.torch_pass():
        a = F.dropout(torch.from_numpy(x), 0.5, training=True)
    with tape.torch_pass():
        tx = torch.from_numpy(x)
        b = tx * (torch.rand(*tx.shape, dtype=tx.dtype) > 0.5)  # the book's dropout, ported
    np.testing.assert_allclose(a.numpy(), 2 * out, rtol=1e-15)
    np.testing.assert_array_equal(b.numpy(), out)


def test_bernoulli_gets_the_keep_mask():
    x = np.random.default_rng(3).standard_normal((6, 2))
    tape, out = recorded(x, p=0.5)
    with tape.torch_pass():
        tx = torch.from_numpy(x)
        y = tx * torch.bernoulli(torch.full_like(tx, 0.5))
    np.testing.assert_array_equal(y.numpy(), out)


def test_a_draw_the_tape_cannot_answer_is_counted_not_faked():
    x = np.random.default_rng(4).standard_normal((4, 4))
    tape, _ = recorded(x)
    with tape.torch_pass():
        torch.rand(9, 9)  # another shape than anything the NumPy side drew
    assert tape.misses == 1


def test_eval_mode_dropout_draws_nothing():
    x = np.random.default_rng(5).standard_normal((4, 4))
    tape, _ = recorded(x)
    with tape.torch_pass():
        y = F.dropout(torch.from_numpy(x), 0.5, training=False)
    np.testing.assert_array_equal(y.numpy(), x)
    assert tape.misses == 0


def test_a_pass_that_draws_nothing_leaves_the_tape_recording():
    """An evaluation pass first (no draw), then the training pass: that one is recorded."""
    x = np.random.default_rng(6).standard_normal((5, 5))
    tape = DrawTape()
    with tape.numpy_pass():
        pass  # predict(x, train_flg=False): dropout draws nothing
    with tape.numpy_pass():
        first = book_dropout(x, 0.5)
    with tape.numpy_pass():
        again = book_dropout(x, 0.5)
    np.testing.assert_array_equal(again, first)


def test_the_mask_of_a_layer_that_keeps_none_is_completed_from_its_uniforms():
    """Where the input is 0 the output cannot tell kept from dropped; the recorded uniforms
    can, whichever way round the layer compares them (the book's u > p, cs231n's u < keep)."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((8, 6))
    x[x < 0] = 0  # a ReLU's output: about half zeros
    for keep_rule in (lambda u: u > 0.3, lambda u: u < 0.7):
        tape = DrawTape()
        with tape.numpy_pass():
            u = np.random.rand(*x.shape)
            out = x * keep_rule(u)
        tape.keep_masks([LayerRecord("Dropout1", "Dropout", x, out)], lambda r: True)
        np.testing.assert_array_equal(tape.masks[0], keep_rule(u))
