"""``compare.check_port``: right ports pass, broken ones are caught, located and diagnosed.

The references are NumPy models the tool knows nothing about: the book's
chapter-5 layer net written in ``examples/`` and a wrapper exposing only
``params`` and ``loss``. Each broken port carries one bug (tests/port_zoo.py).
"""
import copy
import pickle

import numpy as np
import pytest
import torch

import port_zoo as zoo
from compare import PortSetupError, check_port
from compare.testing import assert_port


@pytest.fixture(scope="module")
def batch(mnist):
    """100 MNIST images in float64 and the book's one-hot labels."""
    (x_train, t_train), _ = mnist
    return x_train[:100].astype(np.float64), np.eye(10)[t_train[:100]]


@pytest.fixture(scope="module")
def small():
    """Seeded noise for the nets with a square hidden layer (30-30-10)."""
    rng = np.random.RandomState(0)
    return rng.rand(20, 30), np.eye(10)[rng.randint(0, 10, 20)]


def first(report):
    fm = report.first_mismatch
    return fm["phase"], fm["where"]


def codes(report):
    return [d["code"] for d in report.diagnosis]


# --- right ports pass ----------------------------------------------------------------------

@pytest.mark.parametrize("port", [zoo.sequential, zoo.functional_relu], ids=["Sequential", "F.relu"])
def test_module_ports_of_the_layer_net_pass(port, batch):
    report = check_port(zoo.layer_net(), port(), *batch)
    assert report.passed, report.to_text()
    assert [p.transposed for p in report.pairing] == [True, False, True, False]  # nn.Linear's W.T
    forward = [c for c in report.checks if c.phase == "forward"]
    assert [c.where for c in forward][:3] == ["Affine1", "Relu1", "Affine2"]  # F.relu traced too
    backward = [c.where for c in report.checks if c.phase == "backward"]
    assert backward[0] == "Affine2 (output)" and backward[1:3] == ["W2", "b2"]  # nearest the loss first


def test_functional_relu_pairs_with_relu(batch):
    report = check_port(zoo.layer_net(), zoo.functional_relu(), *batch)
    assert report.unpaired == {"numpy": [], "torch": []}
    relu = next(c for c in report.checks if c.phase == "forward" and c.where == "Relu1")
    assert relu.torch == "F.relu#1" and relu.passed


def test_literal_port_with_its_own_gradient_passes(batch):
    report = check_port(zoo.book_net(), zoo.literal(), *batch)
    assert report.passed, report.to_text()
    assert report.settings["gradients"] == "NumPy backprop vs torch the port's gradient"
    assert [(p.numpy, p.torch, p.transposed) for p in report.pairing] == [
        ("W1", "W1", False), ("b1", "b1", False), ("W2", "W2", False), ("b2", "b2", False)]


def test_loss_only_numpy_model_is_checked_numerically(small):
    report = check_port(zoo.LossOnly(zoo.layer_net(30, 20, 10)), zoo.sequential(30, 20, 10), *small)
    assert report.passed, report.to_text()
    assert "central differences" in report.settings["gradients"]
    assert {c.where for c in report.checks if c.phase == "backward"} == {"W1", "b1", "W2", "b2"}


def test_float32_run_passes_with_float32_tolerances(batch):
    report = check_port(zoo.layer_net(), zoo.sequential(), *batch, dtype="float32")
    assert report.passed, report.to_text()
    assert all(c.rtol in (0.0, 1e-4) for c in report.checks)


def test_the_books_1e7_is_a_known_difference_not_a_failure(batch):
    # the layer net's loss keeps log(y + 1e-7); F.cross_entropy has none
    report = check_port(zoo.layer_net(), zoo.sequential(), *batch)
    (known,) = report.known
    assert known["code"] == "log_eps" and 1e-8 < known["size"] < 1e-5
    (loss,) = [c for c in report.checks if c.phase == "loss"]
    assert loss.passed and loss.allowance == "+1e-7 gap"
    # with the book's loss on the torch side the losses agree as they are, and the
    # gradients (NumPy backprop: no 1e-7) now differ by the gap, added and named
    book = check_port(zoo.layer_net(), zoo.sequential(), *batch, loss="book")
    assert book.passed, book.to_text()
    assert any(c.allowance == "+1e-7 gap" for c in book.checks if c.phase == "backward")


def test_the_1e7_shift_does_not_hide_a_real_difference(batch):
    # a loss 2x the book's is no 1e-7 gap
    report = check_port(zoo.layer_net(), zoo.literal(zoo.NoBatchDivide), *batch)
    assert not report.passed


# --- broken ports are caught, located, diagnosed -------------------------------------------

def test_square_weight_used_without_its_transpose(small):
    report = check_port(zoo.layer_net(30, 30, 10), zoo.AffineNet(30, 30, 10, transpose=True), *small)
    assert first(report) == ("forward", "Affine1")
    assert report.first_mismatch["torch"] == "affine1"
    assert codes(report)[0] == "transpose"
    assert "W1" in report.diagnosis[0]["text"]


def test_float32_trip_inside_a_float64_model(batch):
    report = check_port(zoo.layer_net(), zoo.Float32Trip(), *batch)
    assert first(report) == ("forward", "Affine2")
    assert 1e-12 < report.first_mismatch["max_rel"] < 1e-2
    assert "dtype" in codes(report)
    assert "functional call" in report.first_mismatch["detail"]


def test_missing_divide_by_batch_size_in_a_hand_written_backward(batch):
    report = check_port(zoo.book_net(), zoo.literal(zoo.NoBatchDivide), *batch)
    assert first(report) == ("backward", "b2")  # nearest the loss
    (scale,) = [d for d in report.diagnosis if d["code"] == "scale"]
    assert scale["factor"] == pytest.approx(100, rel=1e-6)
    assert "batch" in scale["text"]


@pytest.mark.slow  # a few seconds: with the full suite
def test_sign_flip_in_one_bias_gradient(batch):
    report = check_port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), *batch)
    assert first(report) == ("backward", "b1")
    assert codes(report)[0] == "sign"
    failed = {c.where for c in report.checks if not c.passed}
    assert failed == {"b1"}


def test_softmax_over_the_wrong_axis(batch):
    report = check_port(zoo.book_net(), zoo.literal(zoo.SoftmaxWrongAxis), *batch)
    assert first(report) == ("forward", "predict")
    assert "axis" in codes(report)


def test_a_skipped_layer_is_named(batch):
    report = check_port(zoo.layer_net(), zoo.SkipsRelu(), *batch)
    assert first(report) == ("forward", "Affine2")
    assert "skips Relu1" in report.first_mismatch["detail"]


def test_a_parameter_never_used(small):
    report = check_port(zoo.layer_net(30, 30, 10), zoo.AffineNet(30, 30, 10, bias1=False), *small)
    assert first(report) == ("backward", "b1")
    assert codes(report)[0] == "unused"
    assert "affine1.b" in report.diagnosis[0]["text"]


@pytest.mark.slow  # a few seconds: with the full suite
def test_a_failure_names_where_and_how_far(batch):
    report = check_port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), *batch)
    with pytest.raises(AssertionError) as caught:
        report.raise_if_failed()
    text = str(caught.value)
    assert "first mismatch: backward, b1 (torch b1)" in text and "[sign]" in text
    with pytest.raises(AssertionError, match="first mismatch"):
        assert_port(zoo.book_net(), zoo.literal(zoo.FlippedBiasGradient), *batch)
    assert assert_port(zoo.book_net(), zoo.literal(), *batch).passed


# --- the user's models are never changed --------------------------------------------------

@pytest.mark.slow
def test_neither_model_is_changed(batch):
    numpy_model, torch_model = zoo.layer_net(), zoo.sequential()
    np_before = pickle.dumps(numpy_model)
    torch_before = copy.deepcopy(torch_model.state_dict())
    check_port(numpy_model, torch_model, *batch)
    check_port(numpy_model, torch_model, *batch, numpy_gradient="numerical", directions=2)
    assert pickle.dumps(numpy_model) == np_before  # params, layer caches, everything
    for key, value in torch_model.state_dict().items():
        assert torch.equal(value, torch_before[key])
    assert not any(m._forward_hooks for m in torch_model.modules())


# --- pairing -------------------------------------------------------------------------------

def test_param_map_pairs_by_hand(batch):
    report = check_port(zoo.layer_net(), zoo.sequential(), *batch,
                        param_map="W1=0.weight.T,b1=0.bias,W2=2.weight,b2=2.bias")
    assert report.passed
    assert [p.transposed for p in report.pairing] == [True, False, True, False]  # .T inferred for W2


def test_unpairable_parameters_are_refused_listing_both_sides(batch):
    with pytest.raises(PortSetupError) as caught:
        check_port(zoo.layer_net(), torch.nn.Linear(784, 10).double(), *batch)
    message = str(caught.value)
    assert "NumPy has 4, the torch model 2" not in message  # counts are named plainly
    assert "W1 (784, 50)" in message and "weight (10, 784)" in message


# --- bad input -----------------------------------------------------------------------------

def test_bad_models_and_batches_raise_a_clear_error(batch):
    x, t = batch
    with pytest.raises(PortSetupError, match="numpy side: .*no 'params'"):
        check_port(object(), zoo.sequential(), x, t)
    with pytest.raises(PortSetupError, match="torch side: .*neither an nn.Module"):
        check_port(zoo.layer_net(), object(), x, t)
    with pytest.raises(PortSetupError, match=r"numpy side: gradient\(ndarray\(100, 783\)"):
        check_port(zoo.layer_net(), zoo.sequential(), x[:, :783], t)
    with pytest.raises(PortSetupError, match="t must be"):
        check_port(zoo.layer_net(), zoo.sequential(), x, t[:50])
    with pytest.raises(PortSetupError, match="x holds NaN"):
        check_port(zoo.layer_net(), zoo.sequential(), np.full_like(x, np.nan), t)


def test_nan_in_the_ports_output_is_refused_naming_the_side(batch):
    class NaNOut(zoo.torch_net.TwoLayerNet):
        def forward(self, x):
            return super().forward(x) * float("nan")
    with pytest.raises(PortSetupError, match="torch side"):
        check_port(zoo.layer_net(), NaNOut(), *batch)


def test_the_chapter_4_pair_through_the_general_checker(batch):
    """The project's own two sides are the checker's first users: the book's net
    against its literal port and against the idiomatic module, as any user's port."""
    import torch_impl
    module = torch_impl.TwoLayerNetModule(784, 50, 10, seed=7)
    report = check_port(zoo.book_net(), module, *batch)
    assert report.passed, report.to_text()
    assert [(p.torch, p.transposed) for p in report.pairing] == [
        ("linear1.weight", True), ("linear1.bias", False), ("linear2.weight", True),
        ("linear2.bias", False)]
    # the book's loss keeps the 1e-7, the module's F.cross_entropy does not: named, allowed
    assert [k["code"] for k in report.known] == ["log_eps"]
    assert check_port(zoo.book_net(), module, *batch, loss="book").passed
