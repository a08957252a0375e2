"""Checkpoints: one file format for both sides, written atomically, and runs
that stop on Ctrl-C and resume to the very bit of the uninterrupted run."""
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import numpy_impl
import torch_impl
from numpy_impl import checkpoint as np_ckpt
from numpy_impl import train_neuralnet
from torch_impl import checkpoint as torch_ckpt

CKPT = {"numpy": np_ckpt, "torch": torch_ckpt}
# 300 iterations of the book's run on all of MNIST (accuracy at iteration 0,
# the book's once per 600); the cheaper variations on 2000 images evaluate
# every 10 iterations, so their interrupted stretches hold evaluations
RUN = dict(iters_num=300, batch_size=100, learning_rate=0.1, seed=0)
SMALL_RUN = dict(iters_num=40, batch_size=50, learning_rate=0.5, seed=1, eval_every=10)


@pytest.fixture(scope="module")
def mnist64(mnist):
    """All of MNIST in the nets' float64, index labels, as NumPy arrays."""
    (x_train, t_train), (x_test, t_test) = mnist
    return (x_train.astype(np.float64), t_train.astype(np.int64),
            x_test.astype(np.float64), t_test.astype(np.int64))


@pytest.fixture(scope="module")
def small64(mnist64):
    """2000 training and 500 test images of the same, for the cheaper variations."""
    x_train, t_train, x_test, t_test = mnist64
    return x_train[:2000], t_train[:2000], x_test[:500], t_test[:500]


def data_for(side, data):
    return tuple(data) if side == "numpy" else tuple(torch.from_numpy(v) for v in data)


def make_net(side, seed=0, cls="TwoLayerNet"):
    mod = numpy_impl if side == "numpy" else torch_impl
    return getattr(mod, cls)(784, 50, 10, seed=seed)


def params_bytes(net):
    params = net.to_params() if hasattr(net, "to_params") else net.params
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v).tobytes()
            for k, v in params.items()}


def history_bits(history):
    """The history with every float as its bytes: == is then bit-for-bit."""
    return {k: np.array(v).tobytes() if isinstance(v, list) else v for k, v in history.items()}


def uninterrupted(side, data, run, cls="TwoLayerNet"):
    net = make_net(side, run["seed"], cls)
    mod = numpy_impl if side == "numpy" else torch_impl
    history = mod.train(net, *data_for(side, data), **run)
    return net, history


@pytest.fixture(scope="module")
def reference(small64):
    """The uninterrupted SMALL_RUN of a side and network class, run once (read only)."""
    runs = {}

    def get(side, cls="TwoLayerNet"):
        if (side, cls) not in runs:
            runs[side, cls] = uninterrupted(side, small64, SMALL_RUN, cls)
        return runs[side, cls]
    return get


def send_ctrl_c():
    # Only ever with the run's handler in place: a stray SIGINT would stop the
    # whole test session, and an ignored one (SIG_IGN, not callable) would be
    # pressed in vain (the tests that press it take ``ctrl_c_delivered``).
    handler = signal.getsignal(signal.SIGINT)
    assert callable(handler) and handler is not signal.default_int_handler, handler
    os.kill(os.getpid(), signal.SIGINT)


def interrupt_then_resume(side, data, run, path, interrupt, cls="TwoLayerNet", every=None):
    """Run until ``interrupt`` stops it, then resume on a differently seeded net.

    Returns the checkpoint written at the interruption, and the resumed net and history.
    """
    net = make_net(side, run["seed"], cls)
    handler_before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        CKPT[side].train_resumable(net, *data_for(side, data), **run, checkpoint_path=path,
                                   checkpoint_every=every, **interrupt(net))
    assert signal.getsignal(signal.SIGINT) is handler_before  # the old handler is back
    saved = np_ckpt.load_checkpoint(path)
    other = make_net(side, 12345, cls)  # its own weights must not matter: the checkpoint's win
    history = CKPT[side].train_resumable(other, *data_for(side, data), **run,
                                         checkpoint_path=path, checkpoint_every=every,
                                         resume=True)
    return saved, other, history


def ctrl_c_at(i):
    def hooks(net):
        def callback(j, history, stream):
            if j == i:
                send_ctrl_c()
        return {"callback": callback}
    return hooks


# -- the interrupt-and-resume run on real MNIST --------------------------------

@pytest.mark.slow  # 900 iterations on all of MNIST a side (the quick variations use 2000 images)
@pytest.mark.usefixtures("ctrl_c_delivered")
@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_ctrl_c_then_resume_is_the_uninterrupted_run_bit_for_bit(side, mnist64, tmp_path):
    ref_net, ref = uninterrupted(side, mnist64, RUN)
    saved, net, history = interrupt_then_resume(side, mnist64, RUN, tmp_path / "run.npz",
                                                ctrl_c_at(137))
    # Ctrl-C during iteration 137 stops at its end: 138 iterations saved, none lost
    assert saved["iteration"] == 138 and len(saved["history"]["train_loss"]) == 138
    assert saved["history"]["eval_iters"] == [0]
    assert history_bits(history) == history_bits(ref)
    assert params_bytes(net) == params_bytes(ref_net)
    assert np_ckpt.load_checkpoint(tmp_path / "run.npz")["iteration"] == 300


def raise_from_callback_at(i):
    def hooks(net):
        def callback(j, history, stream):
            if j == i:
                raise KeyboardInterrupt
        return {"callback": callback}
    return hooks


def raise_from_progress_at(i):
    def hooks(net):
        def progress(j):
            if j == i:
                raise KeyboardInterrupt
        return {"progress": progress}
    return hooks


def raise_inside_gradient_at(i):
    """A KeyboardInterrupt in the middle of iteration i: its batch drawn, no update made."""
    def hooks(net):
        gradient, calls = net._gradient, []

        def interrupted_gradient(x, t):
            calls.append(1)
            if len(calls) == i + 1:
                raise KeyboardInterrupt
            return gradient(x, t)
        net._gradient = interrupted_gradient
        return {}
    return hooks


def raise_after_update_at(i):
    """A KeyboardInterrupt after iteration i's update, before its loss is recorded."""
    def hooks(net):
        loss, calls = net._loss, []
        # the module's loop calls _loss twice an iteration (backward, then the
        # book's record after the update), the book's loop once (the record)
        per_iteration = 2 if isinstance(net, torch.nn.Module) else 1

        def interrupted_loss(x, t):
            calls.append(1)
            if len(calls) == (i + 1) * per_iteration:
                raise KeyboardInterrupt
            return loss(x, t)
        net._loss = interrupted_loss
        return {}
    return hooks


def ctrl_c_twice_at(i):
    """The second Ctrl-C does not wait for the end of the iteration."""
    def hooks(net):
        def callback(j, history, stream):
            if j == i:
                send_ctrl_c()
                send_ctrl_c()
                raise AssertionError("the second Ctrl-C should have stopped the run")
        return {"callback": callback}
    return hooks


INTERRUPTS = [
    ("ctrl_c", ctrl_c_at(13), 14),                # iteration 13 completes, then the run stops
    ("callback", raise_from_callback_at(21), 22),  # the hooks run after iteration 21 is complete
    ("progress", raise_from_progress_at(21), 22),
    ("after_update", raise_after_update_at(27), 27),  # 27 was under way: 0 to 26 complete
    ("ctrl_c_twice", ctrl_c_twice_at(5), 6),
]
# the book's loop also stops inside its own gradient (batch drawn, no update yet);
# the module's loop has no such hook (its gradients come from loss.backward())
CASES = [(side, cls, *case) for side, cls in [("numpy", "TwoLayerNet"), ("torch", "TwoLayerNet"),
                                              ("torch", "TwoLayerNetModule")]
         for case in INTERRUPTS]
CASES += [(side, "TwoLayerNet", "in_gradient", raise_inside_gradient_at(27), 27)
          for side in ("numpy", "torch")]


# the literal torch net's cases run with the full suite: the quick run keeps one side of
# each loop (the book's, the module's) for every kind of interrupt
QUICK_CASES = [pytest.param(*c, marks=pytest.mark.slow) if c[:2] == ("torch", "TwoLayerNet") else c
               for c in CASES]


@pytest.mark.usefixtures("ctrl_c_delivered")
@pytest.mark.parametrize("side, cls, kind, interrupt, completed", QUICK_CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
@pytest.mark.slow
def test_every_kind_of_interrupt_saves_the_last_completed_iteration(side, cls, kind, interrupt,
                                                                    completed, small64,
                                                                    reference, tmp_path):
    ref_net, ref = reference(side, cls)
    saved, net, history = interrupt_then_resume(side, small64, SMALL_RUN, tmp_path / "r.npz",
                                                interrupt, cls, every=10)
    assert saved["iteration"] == completed
    evals = len([i for i in ref["eval_iters"] if i < completed])
    expected = {"train_loss": ref["train_loss"][:completed], "train_acc": ref["train_acc"][:evals],
                "test_acc": ref["test_acc"][:evals], "eval_iters": ref["eval_iters"][:evals],
                "diverged": False, "diverged_at": None}
    assert history_bits(saved["history"]) == history_bits(expected)
    assert history_bits(history) == history_bits(ref)
    assert params_bytes(net) == params_bytes(ref_net)


@pytest.mark.slow
def test_periodic_checkpoints_and_a_longer_resumed_run(small64, reference, tmp_path):
    path = tmp_path / "every.npz"
    seen = {}

    def callback(i, history, stream):
        if path.exists():
            seen[i] = np_ckpt.load_checkpoint(path)["iteration"]

    run = dict(SMALL_RUN, iters_num=30)
    np_ckpt.train_resumable(make_net("numpy", 1), *small64, **run, checkpoint_path=path,
                            checkpoint_every=12, callback=callback)
    # saved after iterations 11 and 23 (12 and 24 done), and at the end (30)
    assert 11 not in seen  # nothing written before the first save
    assert seen[12] == 12 and seen[23] == 12 and seen[24] == 24 and seen[29] == 24
    assert np_ckpt.load_checkpoint(path)["iteration"] == 30
    # a finished run resumed with more iterations is the longer run
    net = make_net("numpy", 99)
    history = np_ckpt.train_resumable(net, *small64, **SMALL_RUN, checkpoint_path=path,
                                      resume=True)
    ref_net, ref = reference("numpy")
    assert history_bits(history) == history_bits(ref)
    assert params_bytes(net) == params_bytes(ref_net)


def test_resume_across_sides_continues_from_the_same_numbers(small64, tmp_path):
    """A run stopped on the NumPy side resumes on the torch side from the saved
    parameters and batch position; its first batch is the one NumPy would draw."""
    path = tmp_path / "cross.npz"
    with pytest.raises(KeyboardInterrupt):
        np_ckpt.train_resumable(make_net("numpy", 1), *small64, **SMALL_RUN,
                                checkpoint_path=path, **raise_from_callback_at(29)(None))
    saved = np_ckpt.load_checkpoint(path)
    stream = numpy_impl.BookRandomStream()
    stream.set_state(saved["stream_state"])
    next_batch = stream.batch_indices(2000, 50)
    seen = []

    def callback(i, history, strm):
        seen.append(i)

    net = make_net("torch", 7)
    history = torch_ckpt.train_resumable(net, *data_for("torch", small64), **SMALL_RUN,
                                         checkpoint_path=path, resume=True, callback=callback)
    assert seen[0] == 30 and len(history["train_loss"]) == 40
    assert history["train_loss"][:30] == saved["history"]["train_loss"]
    # the torch side's first resumed loss, recomputed in NumPy from the saved
    # state: same parameters, same batch, one book step
    check = numpy_impl.TwoLayerNet(784, 50, 10)
    check.params = {k: v.copy() for k, v in saved["params"].items()}
    x, t = small64[0][next_batch], small64[1][next_batch]
    grads = check.gradient(x, t)
    for k in check.params:
        check.params[k] -= 0.5 * grads[k]
    # The two libraries sum the 784-term products in other orders: each
    # logit moves by at most 784 eps sum|x_i W_ij|, a sum of order 1 here
    # (about 150 lit pixels in [0, 1], weights about 0.01), and the loss by
    # at most as much (its derivative in a logit is at most 1). A factor of 10
    # covers the magnitudes and the update's own round-off.
    assert abs(history["train_loss"][30] - check.loss(x, t)) <= 10 * 784 * 2.2e-16


# -- one file format, both ways, bit for bit --------------------------------------

@pytest.mark.slow  # a whole process or a long run: seconds
def test_numpy_torch_numpy_round_trip_is_bit_for_bit(mnist64, tmp_path):
    first, second = tmp_path / "numpy.npz", tmp_path / "torch.npz"
    net = make_net("numpy", 0)
    run = dict(RUN, iters_num=120)
    history = np_ckpt.train_resumable(net, *mnist64, **run, checkpoint_path=first)
    on_disk = np_ckpt.load_checkpoint(first)
    assert params_bytes(net) == {k: v.tobytes() for k, v in on_disk["params"].items()}
    assert history_bits(on_disk["history"]) == history_bits(history)

    # torch reads it and writes it back out
    loaded = torch_ckpt.load_checkpoint(first)
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float64
               for v in loaded["params"].values())
    tnet = torch_impl.TwoLayerNet(784, 50, 10)
    tnet.params = dict(loaded["params"])
    stream = torch_impl.BookRandomStream()
    stream.set_state(loaded["stream_state"])
    torch_ckpt.save_checkpoint(second, tnet, loaded["history"], stream, loaded["iteration"],
                               **loaded["meta"])

    # every entry of the two archives is the same bytes
    with np.load(first) as a, np.load(second) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
            assert a[key].tobytes() == b[key].tobytes(), key
    back = np_ckpt.load_checkpoint(second)
    assert {k: v.tobytes() for k, v in back["params"].items()} == params_bytes(net)
    assert history_bits(back["history"]) == history_bits(history)
    assert back["iteration"] == 120 and back["meta"] == on_disk["meta"]
    assert back["meta"]["learning_rate"] == 0.1 and back["meta"]["seed"] == 0
    # the saved stream draws what the run would have drawn next
    a_stream, b_stream = numpy_impl.BookRandomStream(), numpy_impl.BookRandomStream()
    a_stream.set_state(on_disk["stream_state"])
    b_stream.set_state(back["stream_state"])
    assert np.array_equal(a_stream.batch_indices(60000, 100), b_stream.batch_indices(60000, 100))


@pytest.mark.parametrize("side", ["numpy", "torch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_then_load_keeps_everything(side, dtype, tmp_path):
    mod = numpy_impl if side == "numpy" else torch_impl
    lib = np if side == "numpy" else torch
    net = mod.TwoLayerNet(6, 4, 3, seed=5, dtype=getattr(lib, dtype))
    stream = numpy_impl.BookRandomStream(5)
    stream.batch_indices(100, 7)
    stream.rng.randn()  # leaves a cached Gaussian in the state: that must survive too
    history = {"train_loss": [0.1, 1 / 3, 2.5e-300], "train_acc": [0.5], "test_acc": [0.25],
               "eval_iters": [0], "diverged": False, "diverged_at": None}
    path = CKPT[side].save_checkpoint(tmp_path / "c.npz", net, history, stream, 3,
                                      learning_rate=0.1, gradient="numerical", seed=5)
    for reader in CKPT.values():
        loaded = reader.load_checkpoint(path)
        assert loaded["dtype"] == dtype and loaded["iteration"] == 3
        assert history_bits(loaded["history"]) == history_bits(history)
        assert loaded["meta"] == {"learning_rate": 0.1, "gradient": "numerical", "seed": 5}
        state, original = loaded["stream_state"], stream.get_state()
        assert state[0] == original[0] and np.array_equal(state[1], original[1])
        assert state[2:] == original[2:]
        got = {k: (v.numpy() if isinstance(v, torch.Tensor) else v).tobytes()
               for k, v in loaded["params"].items()}
        assert got == params_bytes(net)
    assert os.listdir(tmp_path) == ["c.npz"]  # no temporary file left behind


# -- written atomically -------------------------------------------------------------

@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_writes_to_a_temporary_file_fsyncs_then_replaces(side, tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    mod = numpy_impl if side == "numpy" else torch_impl
    path = tmp_path / "a.npz"
    CKPT[side].save_checkpoint(path, mod.TwoLayerNet(3, 2, 2, seed=0), {"train_loss": []},
                               numpy_impl.BookRandomStream(0), 0)
    (first, tmp), (second, src, dst) = events[0], events[1]
    assert first == "fsync" and second == "replace"
    assert tmp == os.path.realpath(src) and dst == str(path)
    assert os.path.dirname(os.path.realpath(src)) == os.path.realpath(tmp_path)


@pytest.mark.parametrize("side", ["numpy", "torch"])
@pytest.mark.parametrize("error", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_checkpoint_whole(side, error, tmp_path, monkeypatch):
    mod = numpy_impl if side == "numpy" else torch_impl
    path = tmp_path / "a.npz"
    old_net = mod.TwoLayerNet(3, 2, 2, seed=0)
    CKPT[side].save_checkpoint(path, old_net, {"train_loss": [1.0]},
                               numpy_impl.BookRandomStream(0), 1)
    old_bytes = path.read_bytes()

    def savez_then_fail(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise error

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(type(error)):
        CKPT[side].save_checkpoint(path, mod.TwoLayerNet(3, 2, 2, seed=1), {"train_loss": [2.0]},
                                   numpy_impl.BookRandomStream(0), 2)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes and os.listdir(tmp_path) == ["a.npz"]
    assert np_ckpt.load_checkpoint(path)["iteration"] == 1


# -- bad files and bad arguments ----------------------------------------------------

@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_unreadable_checkpoints_are_clear_errors(side, tmp_path):
    load = CKPT[side].load_checkpoint
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*missing.npz"):
        load(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError, match="junk.npz is not a checkpoint"):
        load(junk)
    partial = tmp_path / "partial.npz"
    np.savez(partial, W1=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="partial.npz is not a checkpoint: it lacks .*b1"):
        load(partial)
    cut = tmp_path / "cut.npz"
    np_ckpt.save_checkpoint(cut, numpy_impl.TwoLayerNet(3, 2, 2, seed=0), {"train_loss": []},
                            numpy_impl.BookRandomStream(0), 0)
    cut.write_bytes(cut.read_bytes()[:300])  # a zip archive cut short
    with pytest.raises(ValueError, match="cut.npz is not a checkpoint"):
        load(cut)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, W1=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz is not a checkpoint"):
        load(pickled)
    with pytest.raises(TypeError, match="path"):
        load(42)


@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_a_checkpoint_of_another_format_version_is_refused(side, tmp_path):
    mod = numpy_impl if side == "numpy" else torch_impl
    path = CKPT[side].save_checkpoint(tmp_path / "v.npz", mod.TwoLayerNet(3, 2, 2, seed=0),
                                      {"train_loss": []}, numpy_impl.BookRandomStream(0), 0)
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    entries["format"] = np.array("dlfs-ch4-checkpoint/99")
    np.savez(path, **entries)
    with pytest.raises(ValueError, match="format"):
        CKPT[side].load_checkpoint(path)


@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_save_refuses_what_cannot_be_resumed(side, tmp_path):
    mod = numpy_impl if side == "numpy" else torch_impl
    save, stream = CKPT[side].save_checkpoint, numpy_impl.BookRandomStream(0)
    net = mod.TwoLayerNet(3, 2, 2, seed=0)
    with pytest.raises(TypeError, match="JSON"):
        save(tmp_path / "m.npz", net, {"train_loss": []}, stream, 0, lr=object())
    with pytest.raises(ValueError, match="iteration"):
        save(tmp_path / "i.npz", net, {"train_loss": []}, stream, -1)
    with pytest.raises(TypeError, match="history"):
        save(tmp_path / "h.npz", net, [1.0], stream, 0)
    net.params["W2"][0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"net.params\['W2'\]"):
        save(tmp_path / "n.npz", net, {"train_loss": []}, stream, 0)
    other = (torch_impl if side == "numpy" else numpy_impl).TwoLayerNet(3, 2, 2, seed=0)
    with pytest.raises(TypeError, match=r"net.params\['W1'\]"):
        save(tmp_path / "o.npz", other, {"train_loss": []}, stream, 0)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_resume_refuses_a_different_run(side, small64, tmp_path):
    path = tmp_path / "r.npz"
    data = data_for(side, small64)
    run = dict(SMALL_RUN, iters_num=5)
    CKPT[side].train_resumable(make_net(side, 1), *data, **run, checkpoint_path=path)
    for key, value in [("learning_rate", 0.25), ("batch_size", 10), ("seed", 2),
                       ("eval_every", None), ("gradient", "numerical")]:
        with pytest.raises(ValueError, match=key):
            CKPT[side].train_resumable(make_net(side, 1), *data, **dict(run, **{key: value}),
                                       checkpoint_path=path, resume=True)
    mod = numpy_impl if side == "numpy" else torch_impl
    lib = np if side == "numpy" else torch
    with pytest.raises(ValueError, match="dtype"):
        CKPT[side].train_resumable(mod.TwoLayerNet(784, 50, 10, dtype=lib.float32), *data, **run,
                                   checkpoint_path=path, resume=True)
    with pytest.raises(ValueError, match="shape"):
        CKPT[side].train_resumable(mod.TwoLayerNet(784, 30, 10), *data, **run,
                                   checkpoint_path=path, resume=True)
    with pytest.raises(FileNotFoundError):
        CKPT[side].train_resumable(make_net(side, 1), *data, **run,
                                   checkpoint_path=tmp_path / "none.npz", resume=True)
    with pytest.raises(ValueError, match="checkpoint_every"):
        CKPT[side].train_resumable(make_net(side, 1), *data, **run, checkpoint_path=path,
                                   checkpoint_every=0)


@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_a_diverged_run_keeps_its_last_finite_checkpoint(side, small64, tmp_path):
    path = tmp_path / "d.npz"
    # lr = 1e308 overflows the parameters at iteration 1 (see test_reliability_divergence)
    with pytest.warns(RuntimeWarning, match="diverged at iteration 1"):
        history = CKPT[side].train_resumable(make_net(side, 1), *data_for(side, small64),
                                             **dict(SMALL_RUN, learning_rate=1e308),
                                             checkpoint_path=path, checkpoint_every=1)
    assert history["diverged"] and history["diverged_at"] == 1
    saved = np_ckpt.load_checkpoint(path)
    assert saved["iteration"] == 1 and not saved["history"]["diverged"]
    assert all(np.isfinite(v).all() for v in saved["params"].values())


@pytest.mark.parametrize("side", ["numpy", "torch"])
def test_outside_the_main_thread_signals_are_left_alone(side, small64, tmp_path):
    """Only the main thread can install a handler; a worker still saves on KeyboardInterrupt."""
    path, outcome = tmp_path / "t.npz", {}
    before = signal.getsignal(signal.SIGINT)

    def worker():
        def callback(i, history, stream):
            outcome.setdefault("handler", signal.getsignal(signal.SIGINT))
            if i == 9:
                raise KeyboardInterrupt
        try:
            CKPT[side].train_resumable(make_net(side, 1), *data_for(side, small64),
                                       **SMALL_RUN, checkpoint_path=path, callback=callback)
        except KeyboardInterrupt:
            outcome["interrupted"] = True

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert outcome == {"handler": before, "interrupted": True}
    assert np_ckpt.load_checkpoint(path)["iteration"] == 10


def test_an_ignored_sigint_stays_ignored(small64, tmp_path):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        seen = []

        def callback(i, history, stream):
            seen.append(signal.getsignal(signal.SIGINT))
        np_ckpt.train_resumable(make_net("numpy", 1), *small64, **dict(SMALL_RUN, iters_num=3),
                                checkpoint_path=tmp_path / "ign.npz", callback=callback)
        assert seen == [signal.SIG_IGN] * 3
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


# -- the command line --------------------------------------------------------------

@pytest.fixture
def small_mnist_loader(mnist, monkeypatch):
    """``load_mnist`` as the script calls it (one-hot labels), on 2000 + 500 images."""
    (x_train, t_train), (x_test, t_test) = mnist

    def load_mnist(normalize=True, one_hot_label=False, **kwargs):
        assert normalize and one_hot_label
        return ((x_train[:2000], np.eye(10)[t_train[:2000]]),
                (x_test[:500], np.eye(10)[t_test[:500]]))

    monkeypatch.setattr("compare.mnist.load_mnist", load_mnist)
    return load_mnist


@pytest.mark.usefixtures("ctrl_c_delivered")
def test_command_line_ctrl_c_and_resume(small_mnist_loader, monkeypatch, tmp_path, capsys):
    path = str(tmp_path / "cli.npz")
    args = ["--iters", "50", "--seed", "3", "--batch-size", "20", "--checkpoint", path,
            "--checkpoint-every", "10"]
    book_printer = train_neuralnet.print_evaluation

    def printer_that_presses_ctrl_c():
        show = book_printer()

        def on_iteration(i, hist, stream):
            show(i, hist, stream)
            if i == 23:
                send_ctrl_c()
        return on_iteration

    monkeypatch.setattr(train_neuralnet, "print_evaluation", printer_that_presses_ctrl_c)
    assert train_neuralnet.main(args) == 130
    out = capsys.readouterr().out
    assert out.startswith("train acc, test acc | ")
    assert f"interrupted: 24 iterations saved in {path}; run again with --resume" in out
    monkeypatch.setattr(train_neuralnet, "print_evaluation", book_printer)
    assert train_neuralnet.main(args + ["--resume"]) == 0

    # the same as one uninterrupted run of the book's loop
    (x_train, t_train), (x_test, t_test) = small_mnist_loader(normalize=True, one_hot_label=True)
    net = numpy_impl.TwoLayerNet(784, 50, 10, seed=3)
    ref = numpy_impl.train(net, x_train, t_train, x_test, t_test, iters_num=50, batch_size=20,
                           learning_rate=0.1, seed=3)
    final = np_ckpt.load_checkpoint(path)
    assert final["iteration"] == 50
    assert history_bits(final["history"]) == history_bits(ref)
    assert {k: v.tobytes() for k, v in final["params"].items()} == params_bytes(net)


@pytest.mark.parametrize("argv", [["--resume"], ["--checkpoint-every", "5"]])
def test_command_line_needs_a_checkpoint_path(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        train_neuralnet.parse_args(argv)
    assert exc.value.code == 2 and "--checkpoint" in capsys.readouterr().err


@pytest.mark.usefixtures("ctrl_c_delivered")
def test_a_process_a_test_starts_can_be_stopped_by_ctrl_c():
    """What the real Ctrl-C test below relies on, however pytest itself was started."""
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    child = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=60)
    assert child.stdout.strip() == "True", child


@pytest.mark.slow  # two runs of the script, each importing torchvision, and 1000 iterations
@pytest.mark.usefixtures("ctrl_c_delivered")  # and through it, the script's SIGINT
def test_the_script_survives_a_real_ctrl_c(mnist, tmp_path):
    """The script in its own process, stopped by a SIGINT from outside, then resumed."""
    root = Path(__file__).resolve().parents[1]
    path = tmp_path / "script.npz"
    command = [sys.executable, "-m", "numpy_impl.train_neuralnet", "--iters", "1000",
               "--seed", "0", "--checkpoint", str(path), "--checkpoint-every", "250"]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    first = process.stdout.readline()  # printed after iteration 0: the handler is in place
    assert first.startswith("train acc, test acc | "), first
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 130, out
    stopped = np_ckpt.load_checkpoint(path)["iteration"]
    assert 1 <= stopped < 1000 and f"interrupted: {stopped} iterations saved" in out
    resumed = subprocess.run(command + ["--resume"], cwd=root, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr

    (x_train, t_train), (x_test, t_test) = mnist
    net = numpy_impl.TwoLayerNet(784, 50, 10, seed=0)
    ref = numpy_impl.train(net, x_train, np.eye(10)[t_train], x_test, np.eye(10)[t_test],
                           iters_num=1000, seed=0)
    final = np_ckpt.load_checkpoint(path)
    assert final["iteration"] == 1000
    assert history_bits(final["history"]) == history_bits(ref)
    assert {k: v.tobytes() for k, v in final["params"].items()} == params_bytes(net)
