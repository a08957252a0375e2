"""The layer kinds of the book's chapters 6 and 7: right ports pass in both modes and over
steps; each trap planted in a port (tests/zoo_layers.py) is located at its layer and named.

The NumPy sides are the chapter-6 ``MultiLayerNetExtend`` (batch norm, dropout, weight
decay) and the chapter-7 ``SimpleConvNet`` written in ``examples/``; the nets are made
small (hidden layers of 20) so each check takes about a second.
"""
import numpy as np
import pytest

import zoo_layers as zoo
from compare import check_port
from compare.port import check_training

HIDDEN = [20, 20]
N6 = zoo.ch6_numpy


@pytest.fixture(scope="module")
def flat(mnist):
    (x, t), _ = mnist
    return x[:100].reshape(100, -1).astype(np.float64), np.eye(10)[t[:100]]


@pytest.fixture(scope="module")
def images(mnist):
    (x, t), _ = mnist
    return x[:50].reshape(50, 1, 28, 28).astype(np.float64), np.eye(10)[t[:50]]


@pytest.fixture(scope="module")
def train_set(mnist):
    (x, t), _ = mnist
    return x[:2000].reshape(2000, -1).astype(np.float64), np.eye(10)[t[:2000]]


def net(kind, **options):
    return getattr(N6, f"make_{kind}_net")(hidden_size_list=HIDDEN, **options)


def codes(report, key="diagnosis"):
    return [d["code"] for d in getattr(report, key)]


def first(report):
    return report.first_mismatch["phase"], report.first_mismatch["where"]


def rows(report, text):
    return [c for c in report.checks if text in c.where]


# --- pairing through the layers ------------------------------------------------------------

def test_batch_norm_pairs_through_its_layer_not_the_dicts_order(flat):
    numpy_net = net("batchnorm")
    assert list(numpy_net.params)[:4] == ["W1", "b1", "W2", "b2"]  # gamma1 comes after every W
    report = check_port(numpy_net, zoo.batchnorm_right(HIDDEN), *flat)
    pairs = {p.numpy: p.torch for p in report.pairing}
    assert pairs["gamma1"] == "layers.1.weight" and pairs["beta2"] == "layers.4.bias"
    assert report.passed, report.to_text()


# --- batch norm ----------------------------------------------------------------------------

def test_batch_norm_right_port_passes_with_the_unbiased_variance_named_and_sized(flat):
    report = check_port(net("batchnorm"), zoo.batchnorm_right(HIDDEN), *flat)
    assert report.passed, report.to_text()
    assert "bn_unbiased_var" in codes(report, "known")
    # independent truth: one training pass from zeros adds momentum * var_B / (N - 1)
    x, _ = flat
    numpy_net = net("batchnorm")
    h = x @ numpy_net.params["W1"] + numpy_net.params["b1"]
    expected = 0.1 * h.var(axis=0) / (x.shape[0] - 1)
    size = next(k["size"] for k in report.known if k["code"] == "bn_unbiased_var"
                and "BatchNorm1" in k["text"])
    assert size == pytest.approx(expected.max(), rel=1e-9)
    # the buffers were compared, and the outputs in evaluation mode too
    assert len(rows(report, "running_var")) == 2 and all(r.passed for r in rows(report, "running_"))
    assert rows(report, "[eval]") and all(r.passed for r in rows(report, "[eval]"))


def test_bn_eps_names_both_values(flat):
    report = check_port(net("batchnorm"), zoo.bn_eps(HIDDEN), *flat)
    assert not report.passed and first(report) == ("forward", "BatchNorm1")
    found = next(d for d in report.diagnosis if d["code"] == "bn_eps")
    assert found["torch_eps"] == 1e-5 and found["numpy_eps"] == pytest.approx(1e-6, rel=1e-3)


def test_bn_momentum_is_caught_at_the_running_mean(flat):
    report = check_port(net("batchnorm"), zoo.bn_momentum(HIDDEN), *flat)
    assert first(report) == ("forward", "BatchNorm1.running_mean")
    assert codes(report)[0] == "bn_momentum" and "0.1" in report.diagnosis[0]["text"]


def test_bn_per_channel_is_named_where_the_parameters_cannot_pair(images):
    report = check_port(zoo.conv_batchnorm_numpy(), zoo.bn_per_channel(), *images)
    assert not report.passed and first(report) == ("parameters", "gamma1")
    assert codes(report) == ["bn_per_channel"]


def test_a_batch_norm_left_in_eval_mode_is_named_mode(flat):
    report = check_port(net("batchnorm"), zoo.mode_frozen_batchnorm(HIDDEN), *flat)
    assert not report.passed and "mode" in codes(report)


def test_conv_net_with_batch_norm_over_the_flattened_activations_passes(images):
    report = check_port(zoo.conv_batchnorm_numpy(), zoo.conv_batchnorm_right(), *images)
    assert report.passed, report.to_text()


# --- dropout: one draw for both sides --------------------------------------------------------

@pytest.mark.parametrize("port", ["dropout_right", "dropout_bernoulli_right"])
def test_a_faithful_port_of_the_books_dropout_passes_in_both_modes(flat, port):
    report = check_port(net("dropout"), getattr(zoo, port)(HIDDEN), *flat)
    assert report.passed, report.to_text()
    dropout = rows(report, "Dropout1")
    assert {"Dropout1", "Dropout1 [eval]", "Dropout1 (output)"} <= {r.where for r in dropout}


def test_without_the_shared_draw_the_right_port_would_part(flat):
    """The draw is what makes it judgeable: two masks of p = 0.2 differ in about a third."""
    x, _ = flat
    a = np.random.RandomState(1).rand(*x.shape) > 0.2
    b = np.random.RandomState(2).rand(*x.shape) > 0.2
    assert 0.25 < np.mean(a != b) < 0.4


@pytest.mark.parametrize("port", ["inverted_dropout", "inverted_dropout_functional"])
def test_nn_dropout_against_the_books_is_inverted_dropout(flat, port):
    report = check_port(net("dropout"), getattr(zoo, port)(HIDDEN), *flat)
    assert first(report)[1] == "Dropout1"
    found = report.diagnosis[0]
    assert found["code"] == "inverted_dropout"
    assert found["factor"] == pytest.approx(1 / (1 - N6.DROPOUT_RATION)) and found["p"] == N6.DROPOUT_RATION


@pytest.mark.parametrize("port, mode", [("mode_train_flg", "train"), ("mode_always_train", "eval")])
def test_a_dropout_in_the_wrong_mode_is_named_mode(flat, port, mode):
    report = check_port(net("dropout"), getattr(zoo, port)(HIDDEN), *flat)
    found = next(d for d in report.diagnosis if d["code"] == "mode")
    assert found["mode"] == mode


# --- convolution and pooling -----------------------------------------------------------------

@pytest.mark.parametrize("port", ["conv_right", "conv_functional_right"])
def test_conv_ports_pass(images, port):
    report = check_port(zoo.ch7_numpy.make_small_net(), getattr(zoo, port)(), *images)
    assert report.passed, report.to_text()
    assert not any(p.transposed for p in report.pairing if p.numpy == "W1")  # (FN, C, FH, FW) as is


def test_a_channels_last_flatten_is_flatten_order(images):
    report = check_port(zoo.ch7_numpy.make_small_net(), zoo.flatten_order(), *images)
    assert first(report) == ("forward", "Affine1")
    found = report.diagnosis[0]
    assert found["code"] == "flatten_order" and found["permutation"] == [0, 2, 3, 1]


@pytest.mark.parametrize("port, setting", [("conv_stride", "stride"), ("conv_padding", "padding")])
def test_conv_settings_that_differ_are_named_with_both_values(images, port, setting):
    report = check_port(zoo.ch7_numpy.make_small_net(), getattr(zoo, port)(), *images)
    assert not report.passed
    assert f"Conv1 has {setting}" in report.first_mismatch["detail"]


# --- weight decay -----------------------------------------------------------------------------

def test_weight_decay_in_the_optimizer_is_a_known_difference_of_the_single_batch(flat):
    numpy_net = net("weight_decay")
    report = check_port(numpy_net, zoo.ch6_torch.make_weight_decay_net(HIDDEN), *flat,
                        torch_optimizer=zoo.weight_decay_right)
    assert report.passed, report.to_text()
    size = next(k["size"] for k in report.known if k["code"] == "weight_decay" and "loss" in k["text"][:5])
    truth = 0.5 * N6.WEIGHT_DECAY_LAMBDA * sum(np.sum(numpy_net.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    assert size == pytest.approx(truth, rel=1e-12)


def test_weight_decay_the_port_lacks_is_diagnosed_with_the_fitted_lambda(flat):
    report = check_port(net("weight_decay"), zoo.weight_decay_forgotten(HIDDEN), *flat)
    assert first(report) == ("loss", "loss")
    found = report.diagnosis[0]
    assert found["code"] == "weight_decay"
    assert found["lambda"] == pytest.approx(N6.WEIGHT_DECAY_LAMBDA, rel=1e-6)


def test_weight_decay_on_the_biases_parts_at_a_bias_in_training(train_set):
    report = check_training(net("weight_decay"), zoo.ch6_torch.make_weight_decay_net(HIDDEN),
                            *train_set, steps=3, torch_optimizer=zoo.weight_decay_all)
    assert report.first_mismatch["phase"] == "training"
    assert report.first_mismatch["where"].startswith("b")  # the biases start at 0: step 1
    assert report.diagnosis[0]["code"] == "weight_decay"


def test_weight_decay_on_the_weights_alone_trains_side_by_side(train_set):
    report = check_training(net("weight_decay"), zoo.ch6_torch.make_weight_decay_net(HIDDEN),
                            *train_set, steps=3, torch_optimizer=zoo.weight_decay_right)
    assert report.passed, report.to_text()


# --- training with modes ---------------------------------------------------------------------

@pytest.mark.slow
def test_batch_norm_and_dropout_train_side_by_side_buffers_compared_each_step(train_set):
    report = check_training(net("full"), zoo.full_right(HIDDEN), *train_set, steps=4,
                            torch_optimizer=zoo.weight_decay_right)
    assert report.passed, report.to_text()
    trained = [c for c in report.checks if c.phase == "training"]
    assert any("running_var" in c.where for c in trained)
    assert any(c.where == "predict [eval]" for c in trained)
    assert any(k["code"] == "bn_unbiased_var" and "after 4 step" in k["text"] for k in report.known)


def test_bn_momentum_parts_in_training_too(train_set):
    report = check_training(net("batchnorm"), zoo.bn_momentum(HIDDEN), *train_set, steps=2)
    assert not report.passed and "bn_momentum" in codes(report)


def test_the_penalty_in_the_ports_own_loss_passes_with_the_1e7_named(flat):
    """Both losses hold the penalty: what parts them is the book's 1e-7 alone."""
    report = check_port(net("weight_decay"), zoo.weight_decay_loss_right(HIDDEN), *flat, loss="model")
    assert report.passed, report.to_text()
    assert "log_eps" in codes(report, "known")


def test_decay_on_gamma_parts_at_step_0_and_the_single_batch_takes_off_the_weights_alone(train_set):
    """gamma starts at 1, so a decay the book does not apply shows at the first update."""
    report = check_training(net("full"), zoo.full_right(HIDDEN), *train_set, steps=2,
                            torch_optimizer=zoo.weight_decay_all)
    assert [c.where for c in report.checks if c.phase != "training" and not c.passed] == []
    assert report.first_mismatch["step"] == 0 and report.first_mismatch["where"] == "gamma1"
    assert report.diagnosis[0]["code"] == "weight_decay"


def test_a_check_of_a_net_that_draws_gives_the_same_numbers_every_run(flat):
    a = check_port(net("dropout"), zoo.mode_train_flg(HIDDEN), *flat)
    b = check_port(net("dropout"), zoo.mode_train_flg(HIDDEN), *flat)
    assert [(c.where, c.max_abs) for c in a.checks] == [(c.where, c.max_abs) for c in b.checks]
