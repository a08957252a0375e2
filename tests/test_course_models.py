"""The course models (``tests/courses``, ``examples/nnfs_style``), alone and against their ports.

Alone: each NumPy model's backprop against central differences of its own
loss, element by element, in float64. The allowance is ``compare.parity``'s
for a numerical gradient whose truncation is not known in advance:
``atol + rtol |D(h)| + R + T``, ``R = 4 eps |f| / h`` the round-off of
``D(h)`` and ``T`` the truncation bounded from ``D(h)`` and ``D(2h)``
(``richardson_truncation``; the derivation is in ``compare.parity``'s
docstring). Every check also asserts its own power: no element's allowance
exceeds ``POWER`` times the gradient's largest element, so a wrong factor
or a missing term cannot pass, and a ReLU kink crossed within ``2h`` (which
inflates that element's truncation estimate) fails instead of hiding.

Against the ports: each right torch port, holding the NumPy values (copied
in by hand, in the layout each port stores them; dropout masks shared by
hand), reproduces the NumPy forward pass, loss and gradients in float64 to
round-off: ``compare.parity``'s analytic ``rtol`` (1e-10) with the absolute
floor ``rtol * max|expected|``, as ``compare.port.tolerance`` derives it.
Each planted bug is shown to be the bug its docstring names, of the size
it names. Identities between scalars (a regularisation term, a loss written
out) are round-off too, under the same ``rtol``.
"""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compare.parity import richardson_truncation, roundoff, tolerance
from courses import cs231n_fc_net, cs231n_layers, cs231n_two_layer, dlai_deep_net, regression
from courses import torch_ports as tp

ROOT = Path(__file__).resolve().parents[1]


def _load(path, name):
    # by path, under a name of its own: examples/layer_net has modules of the same names
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nnfs = _load(ROOT / "examples" / "nnfs_style" / "numpy_net.py", "nnfs_style_numpy_net")
nnfs_torch = _load(ROOT / "examples" / "nnfs_style" / "torch_net.py", "nnfs_style_torch_net")

H = 1e-4  # compare.parity's float64 step
POWER = 1e-6
ANALYTIC = tolerance("analytic", "float64")


# --- central differences ---------------------------------------------------------------------

def central_differences(f, x, h):
    """``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every element ``i`` of ``x``, changed in place."""
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = float(f())
        x[i] = old - h
        minus = float(f())
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def assert_gradient(f, x, analytic, name, value_scale=None, vanishes=False):
    """``analytic`` is the gradient of ``f()`` with respect to the array ``x``.

    ``value_scale``: ``|f|``, or the sum of the sizes of the terms ``f`` is a sum
    of where they cancel (the round-off of ``f`` is relative to it). ``vanishes``:
    the gradient is 0 by construction (a bias before batch norm, whose batch mean
    the normalisation subtracts); both sides must then be 0 within the allowance.
    """
    analytic = np.asarray(analytic, dtype=np.float64)
    assert analytic.shape == x.shape, f"{name}: gradient {analytic.shape}, parameter {x.shape}"
    d_h = central_differences(f, x, H)
    d_2h = central_differences(f, x, 2 * H)
    scale = abs(float(f())) if value_scale is None else value_scale
    r = roundoff("float64", H, scale)
    allowed = ANALYTIC.atol + ANALYTIC.rtol * np.abs(d_h) + r + richardson_truncation(d_h, d_2h, r)
    err = np.abs(analytic - d_h)
    worst = np.unravel_index(np.argmax(err - allowed), x.shape)
    assert (err <= allowed).all(), (f"{name}{list(worst)}: backprop {analytic[worst]:.6g}, "
                                    f"numerical {d_h[worst]:.6g}, |diff| {err[worst]:.3g} > "
                                    f"allowed {allowed[worst]:.3g} (or a ReLU input at 0)")
    if vanishes:
        assert (np.abs(d_h) <= allowed).all(), f"{name}: a gradient that should vanish does not"
        return
    assert allowed.max() <= POWER * np.abs(d_h).max(), (
        f"{name}: the check cannot judge ({allowed.max():.3g} allowed against a gradient of "
        f"{np.abs(d_h).max():.3g}): a kink within 2h, or a gradient that vanishes")


def assert_layer_gradients(forward, inputs, backward_grads, dout, names):
    """A layer's ``*_backward`` against central differences of ``sum(out * dout)``."""
    def f():
        return np.sum(forward() * dout)

    scale = float(np.sum(np.abs(forward() * dout)))
    for x, g, name in zip(inputs, backward_grads, names):
        assert_gradient(f, x, g, name, value_scale=scale)


# --- round-off between a port and its NumPy model --------------------------------------------

def to_numpy(value):
    return value.detach().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def assert_same(actual, expected, what, terms=None):
    """``terms``: the size of the terms ``expected`` sums, where they cancel to round-off
    (a bias before batch norm: its gradient sums to 0 over the batch); the floor is
    then ``rtol * terms``, the ``eps * sum |terms|`` error of such a sum with rtol's headroom."""
    actual, expected = to_numpy(actual), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    scale = float(np.max(np.abs(expected))) if terms is None else float(np.max(terms))
    atol = ANALYTIC.rtol * scale
    np.testing.assert_allclose(actual, expected, rtol=ANALYTIC.rtol, atol=atol, err_msg=what)


def assert_differ(actual, expected, what):
    """Beyond round-off: the planted bug shows."""
    actual, expected = to_numpy(actual), np.asarray(expected, dtype=np.float64)
    atol = ANALYTIC.rtol * float(np.max(np.abs(expected)))
    assert actual.shape != expected.shape or not np.allclose(
        actual, expected, rtol=ANALYTIC.rtol, atol=atol), f"{what}: no difference"


def t64(value):
    return torch.from_numpy(np.array(value, dtype=np.float64))


def load(param, value):
    with torch.no_grad():
        param.copy_(t64(value))


def linears(module):
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def load_linears(module, params, names):
    """``W`` ``(in, out)`` into ``weight`` ``(out, in)``; ``b`` into ``bias``."""
    layers = linears(module)
    assert len(layers) == len(names)
    for layer, (w, b) in zip(layers, names):
        load(layer.weight, params[w].T)
        load(layer.bias, params[b].reshape(-1))


def backward(loss):
    loss.backward()
    return loss


def data(n, d, c, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, d), rng.randint(0, c, size=n)


# --- cs231n assignment 1 ---------------------------------------------------------------------

def a1_net(seed=0):
    # std 0.5 on a 6-5-4 net: gradients of order 0.1, away from the course's 1e-4 scale
    # at which central differences of a loss near ln 4 judge little
    net = cs231n_two_layer.TwoLayerNet(6, 5, 4, std=0.5, seed=seed)
    X, y = data(7, 6, 4, seed)
    return net, X, y


@pytest.mark.parametrize("reg", [0.0, 0.1])
def test_a1_backprop_is_the_gradient_of_its_loss(reg):
    net, X, y = a1_net()
    _, grads = net.loss(X, y, reg=reg)
    assert set(grads) == set(net.params)
    for name, value in net.params.items():
        assert_gradient(lambda: net.loss(X, y, reg=reg)[0], value, grads[name], name)


def test_a1_scores_labels_and_loss():
    net, X, y = a1_net()
    scores = net.loss(X)
    assert scores.shape == (7, 4)
    labels = net.predict(X)
    assert labels.shape == (7,) and labels.dtype.kind == "i"
    assert np.array_equal(labels, scores.argmax(axis=1))
    # the softmax cross-entropy written out, without the shift the model uses
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert net.loss(X, y)[0] == pytest.approx(-np.log(p[np.arange(7), y]).mean(), rel=ANALYTIC.rtol)


def test_a1_regularization_is_reg_times_sum_of_squares():
    net, X, y = a1_net()
    reg = 0.1
    loss0, grads0 = net.loss(X, y)
    loss1, grads1 = net.loss(X, y, reg=reg)
    W1, W2 = net.params["W1"], net.params["W2"]
    assert loss1 - loss0 == pytest.approx(reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2)), rel=ANALYTIC.rtol)
    for w in ("W1", "W2"):
        assert_same(grads1[w] - grads0[w], 2 * reg * net.params[w], w)
    for b in ("b1", "b2"):
        assert np.array_equal(grads1[b], grads0[b])


# --- cs231n assignment 2: the layer functions ---------------------------------------------------

def test_affine_takes_any_input_shape():
    rng = np.random.RandomState(1)
    x, w, b = rng.randn(4, 2, 3), rng.randn(6, 5), rng.randn(5)
    dout = rng.randn(4, 5)
    out, cache = cs231n_layers.affine_forward(x, w, b)
    assert out.shape == (4, 5)
    dx, dw, db = cs231n_layers.affine_backward(dout, cache)
    assert dx.shape == x.shape
    assert_layer_gradients(lambda: cs231n_layers.affine_forward(x, w, b)[0], (x, w, b),
                           (dx, dw, db), dout, ("x", "w", "b"))


def test_relu_and_affine_relu():
    rng = np.random.RandomState(2)
    x = rng.randn(5, 6)
    x[np.abs(x) < 0.05] += 0.1  # away from the kink by far more than 2h
    dout = rng.randn(5, 6)
    out, cache = cs231n_layers.relu_forward(x)
    assert np.array_equal(out, np.where(x > 0, x, 0))
    assert_layer_gradients(lambda: cs231n_layers.relu_forward(x)[0], (x,),
                           (cs231n_layers.relu_backward(dout, cache),), dout, ("x",))

    x, w, b = rng.randn(5, 4), rng.randn(4, 3), rng.randn(3)
    dout = rng.randn(5, 3)
    _, cache = cs231n_layers.affine_relu_forward(x, w, b)
    grads = cs231n_layers.affine_relu_backward(dout, cache)
    assert_layer_gradients(lambda: cs231n_layers.affine_relu_forward(x, w, b)[0], (x, w, b),
                           grads, dout, ("x", "w", "b"))


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_backward(mode):
    rng = np.random.RandomState(3)
    x = 2 + 3 * rng.randn(8, 4)
    gamma, beta = 1 + rng.rand(4), rng.randn(4)
    dout = rng.randn(8, 4)
    stats = {"running_mean": rng.randn(4), "running_var": 1 + rng.rand(4)}

    def forward():
        return cs231n_layers.batchnorm_forward(x, gamma, beta, {"mode": mode, **stats})[0]

    out, cache = cs231n_layers.batchnorm_forward(x, gamma, beta, {"mode": mode, **stats})
    if mode == "train":  # normalised over the batch with its biased variance, then scaled and shifted
        assert_same(out.mean(axis=0), beta, "mean")
        assert_same(out.std(axis=0), gamma * np.sqrt(x.var(axis=0) / (x.var(axis=0) + 1e-5)), "std")
    grads = cs231n_layers.batchnorm_backward(dout, cache)
    assert_layer_gradients(forward, (x, gamma, beta), grads, dout, ("x", "gamma", "beta"))


def test_batchnorm_running_averages_start_at_zero_and_average_the_biased_variance():
    rng = np.random.RandomState(4)
    x1, x2 = rng.randn(6, 3), 1 + 2 * rng.randn(6, 3)
    bn_param = {"mode": "train"}
    gamma, beta = np.ones(3), np.zeros(3)
    cs231n_layers.batchnorm_forward(x1, gamma, beta, bn_param)
    cs231n_layers.batchnorm_forward(x2, gamma, beta, bn_param)
    # momentum 0.9 weighs the old value; both averages start at zeros
    assert_same(bn_param["running_mean"], 0.9 * 0.1 * x1.mean(0) + 0.1 * x2.mean(0), "running_mean")
    assert_same(bn_param["running_var"], 0.9 * 0.1 * x1.var(0, ddof=0) + 0.1 * x2.var(0, ddof=0),
                "running_var")
    out, _ = cs231n_layers.batchnorm_forward(x2, gamma, beta, {**bn_param, "mode": "test"})
    assert_same(out, (x2 - bn_param["running_mean"]) / np.sqrt(bn_param["running_var"] + 1e-5), "test")


def test_dropout_is_inverted_and_p_keeps():
    x = np.random.RandomState(5).rand(200, 250) + 0.5  # no zeros among the inputs
    param = {"p": 0.75, "mode": "train", "seed": 7}
    out, cache = cs231n_layers.dropout_forward(x, param)
    kept = out != 0
    # 50000 units: the kept fraction's standard deviation is sqrt(0.75 * 0.25 / 50000) = 0.0019
    assert abs(kept.mean() - 0.75) < 5 * np.sqrt(0.75 * 0.25 / x.size)
    assert_same(out[kept], x[kept] / 0.75, "kept units")
    assert np.array_equal(cs231n_layers.dropout_forward(x, param)[0], out)  # the seed: the same mask
    test_out, _ = cs231n_layers.dropout_forward(x, {**param, "mode": "test"})
    assert test_out is x or np.array_equal(test_out, x)

    small, dout = x[:4, :5], np.random.RandomState(6).randn(4, 5)
    _, cache = cs231n_layers.dropout_forward(small, param)
    assert_layer_gradients(lambda: cs231n_layers.dropout_forward(small, param)[0], (small,),
                           (cs231n_layers.dropout_backward(dout, cache),), dout, ("x",))


def test_softmax_loss():
    x, y = data(6, 5, 5, seed=8)
    loss, dx = cs231n_layers.softmax_loss(x, y)
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(6), y]).mean(), rel=ANALYTIC.rtol)
    assert_gradient(lambda: cs231n_layers.softmax_loss(x, y)[0], x, dx, "x")


# --- cs231n assignment 2: the fully-connected net ----------------------------------------------

FC_CONFIGS = {
    "plain, reg": dict(reg=0.2),
    "batchnorm": dict(normalization="batchnorm"),
    "dropout": dict(dropout_keep_ratio=0.75),
    "batchnorm and dropout": dict(normalization="batchnorm", dropout_keep_ratio=0.75, reg=0.1),
}


def fc_net(seed=4, hidden_dims=(5, 4), **options):
    # seed 4: no pre-activation within 0.03 of a ReLU's kink, no row that dies in every unit
    net = cs231n_fc_net.FullyConnectedNet(list(hidden_dims), input_dim=6, num_classes=3,
                                          weight_scale=0.5, dtype=np.float64, seed=seed, **options)
    X, y = data(8, 6, 3, seed)
    return net, X, y


@pytest.mark.parametrize("config", FC_CONFIGS)
def test_fc_net_backprop_is_the_gradient_of_its_loss(config):
    net, X, y = fc_net(**FC_CONFIGS[config])
    _, grads = net.loss(X, y)
    assert set(grads) == set(net.params)
    for name, value in net.params.items():
        before_batchnorm = name.startswith("b") and f"gamma{name[1:]}" in net.params
        assert_gradient(lambda: net.loss(X, y)[0], value, grads[name], name,
                        vanishes=before_batchnorm)


def test_fc_net_mode_follows_y():
    net, X, y = fc_net(normalization="batchnorm", dropout_keep_ratio=0.75)
    assert net.loss(X).shape == (8, 3)
    assert net.dropout_param["mode"] == "test"
    assert [p["mode"] for p in net.bn_params] == ["test", "test"]
    net.loss(X, y)
    assert net.dropout_param["mode"] == "train"
    assert [p["mode"] for p in net.bn_params] == ["train", "train"]


def test_fc_net_regularization_is_half_reg_times_sum_of_squares():
    net, X, y = fc_net()
    loss0, grads0 = net.loss(X, y)
    net.reg = 0.2
    loss1, grads1 = net.loss(X, y)
    weights = [net.params[f"W{i}"] for i in (1, 2, 3)]
    assert loss1 - loss0 == pytest.approx(0.5 * 0.2 * sum(np.sum(w ** 2) for w in weights), rel=ANALYTIC.rtol)
    for i in (1, 2, 3):
        assert_same(grads1[f"W{i}"] - grads0[f"W{i}"], 0.2 * net.params[f"W{i}"], f"W{i}")


def test_fc_net_calls_its_layers_through_its_own_module(monkeypatch):
    """Where a tool must wrap the layer functions to watch a pass: the net's module."""
    net, X, y = fc_net(normalization="batchnorm")
    calls = []

    def watching(name, fn):
        def wrapped(*args):
            calls.append(name)
            return fn(*args)
        return wrapped

    monkeypatch.setattr(cs231n_layers, "affine_forward", watching("layers", cs231n_layers.affine_forward))
    net.loss(X, y)
    assert calls == []
    for name in ("affine_forward", "batchnorm_forward", "relu_forward", "affine_backward"):
        monkeypatch.setattr(cs231n_fc_net, name, watching(name, getattr(cs231n_fc_net, name)))
    net.loss(X, y)
    assert calls.count("affine_forward") == 3 and calls.count("affine_backward") == 3
    assert calls.count("batchnorm_forward") == 2 and calls.count("relu_forward") == 2


def test_fc_net_course_defaults():
    net = cs231n_fc_net.FullyConnectedNet([5], input_dim=6, num_classes=3, seed=0)
    assert all(v.dtype == np.float32 for v in net.params.values())
    assert net.loss(np.ones((2, 6))).dtype == np.float32
    assert not net.use_dropout and net.bn_params == []
    net = cs231n_fc_net.make_net()
    assert net.params["W1"].shape == (784, 50) and net.params["gamma2"].shape == (50,)
    assert net.dropout_param == {"mode": "train", "p": 0.75, "seed": 0}


# --- deeplearning.ai, features first ------------------------------------------------------------

def dlai_net(output_activation="sigmoid", seed=1):
    dims = (5, 4, 4, 1) if output_activation == "sigmoid" else (5, 4, 3)
    net = dlai_deep_net.DeepNet(dims, seed=seed, output_activation=output_activation)
    rng = np.random.RandomState(seed)
    X = rng.randn(5, 6)  # (features, examples)
    if output_activation == "sigmoid":
        Y = rng.randint(0, 2, size=(1, 6)).astype(np.float64)
    else:
        Y = np.eye(3)[:, rng.randint(0, 3, size=6)]  # one-hot columns
    return net, X, Y


@pytest.mark.parametrize("output_activation", ["sigmoid", "softmax"])
def test_dlai_backprop_is_the_gradient_of_its_cost(output_activation):
    net, X, Y = dlai_net(output_activation)
    grads = net.gradient(X, Y)
    assert list(grads) == list(net.params)
    for name, value in net.params.items():
        assert_gradient(lambda: net.loss(X, Y), value, grads[name], name)


def test_dlai_layout_is_features_first():
    params = dlai_deep_net.initialize_parameters_deep((5, 4, 4, 1), seed=1)
    assert [v.shape for v in params.values()] == [(4, 5), (4, 1), (4, 4), (4, 1), (1, 4), (1, 1)]
    net, X, Y = dlai_net()
    AL, caches = dlai_deep_net.L_model_forward(X, net.params)
    assert AL.shape == (1, 6) and len(caches) == 3
    grads = dlai_deep_net.L_model_backward(AL, Y, caches)
    assert {k for k in grads if k.startswith("dA")} == {"dA0", "dA1", "dA2"}
    assert grads["dA0"].shape == X.shape
    assert dlai_deep_net.make_net().params["W1"].shape == (20, 784)


def test_dlai_cost_is_the_mean_cross_entropy():
    AL, Y = np.array([[0.9, 0.2, 0.6]]), np.array([[1.0, 0.0, 1.0]])
    expected = -np.log([0.9, 0.8, 0.6]).mean()
    assert dlai_deep_net.compute_cost(AL, Y) == pytest.approx(expected, rel=ANALYTIC.rtol)
    AL, Y = np.array([[0.7, 0.1], [0.3, 0.9]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    assert dlai_deep_net.compute_cost(AL, Y) == pytest.approx(-np.log([0.7, 0.9]).mean(), rel=ANALYTIC.rtol)


# --- Neural Networks from Scratch ------------------------------------------------------------

def nnfs_pass(layers, X, y):
    dense1, activation1, dense2, loss_activation = layers
    dense1.forward(X)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    return loss_activation.forward(dense2.output, y)


def nnfs_backward(layers, y):
    dense1, activation1, dense2, loss_activation = layers
    loss_activation.backward(loss_activation.output, y)
    dense2.backward(loss_activation.dinputs)
    activation1.backward(dense2.dinputs)
    dense1.backward(activation1.dinputs)


def nnfs_layers(seed=0):
    layers = nnfs.build_layers(seed, n_inputs=5, n_hidden=4, n_outputs=3)
    for dense in layers[0], layers[2]:
        dense.weights *= 50  # 0.5 * randn: gradients central differences can judge
    X, y = data(6, 5, 3, seed + 1)
    return layers, X, y


def test_nnfs_backward_is_the_gradient_of_its_loss():
    layers, X, y = nnfs_layers()
    nnfs_pass(layers, X, y)
    probs = layers[3].output
    assert ((probs > 1e-7) & (probs < 1 - 1e-7)).all()  # the clip is inactive: the loss is smooth
    nnfs_backward(layers, y)
    dense1, _, dense2, loss_activation = layers
    grads = {"dense1.weights": dense1.dweights, "dense1.biases": dense1.dbiases,
             "dense2.weights": dense2.dweights, "dense2.biases": dense2.dbiases}
    arrays = {"dense1.weights": dense1.weights, "dense1.biases": dense1.biases,
              "dense2.weights": dense2.weights, "dense2.biases": dense2.biases}
    for name in grads:
        grad = grads[name].copy()  # the next passes overwrite the layer's attributes
        assert_gradient(lambda: nnfs_pass(layers, X, y), arrays[name], grad, name)
    nnfs_pass(layers, X, y)
    nnfs_backward(layers, y)
    logits = dense2.output.copy()
    dinputs = loss_activation.dinputs.copy()
    assert_gradient(lambda: loss_activation.forward(logits, y), logits, dinputs, "dinputs")


def test_nnfs_layout_and_labels():
    dense1 = nnfs.build_layers(0)[0]
    assert dense1.weights.shape == (784, 64) and dense1.biases.shape == (1, 64)
    assert np.array_equal(dense1.biases, np.zeros((1, 64)))
    assert 0.005 < dense1.weights.std() < 0.015  # 0.01 * randn
    layers, X, y = nnfs_layers()
    loss_index = nnfs_pass(layers, X, y)
    nnfs_backward(layers, y)
    dinputs_index = layers[3].dinputs.copy()
    one_hot = np.eye(3)[y]
    assert nnfs_pass(layers, X, one_hot) == pytest.approx(loss_index, rel=ANALYTIC.rtol)
    nnfs_backward(layers, one_hot)
    assert np.array_equal(layers[3].dinputs, dinputs_index)


def test_nnfs_loss_clips_probabilities():
    loss = nnfs.Activation_Softmax_Loss_CategoricalCrossentropy()
    value = loss.forward(np.array([[0.0, 50.0]]), np.array([0]))  # p = e^-50, below 1e-7
    assert value == pytest.approx(-np.log(1e-7), rel=ANALYTIC.rtol)


# --- regression --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [regression.RegressionNet, regression.RegressionNetHalfSum])
def test_regression_backprop_is_the_gradient_of_its_loss(cls):
    net = cls(4, 5, 2, seed=0)
    x, t = regression.make_data(7, 4, 2, seed=1)
    grads = net.gradient(x, t)
    assert set(grads) == set(net.params)
    for name, value in net.params.items():
        assert_gradient(lambda: net.loss(x, t), value, grads[name], name)


def test_regression_losses_differ_by_n_k_over_2():
    mean_net, half_sum_net = regression.make_net(), regression.make_half_sum_net()
    x, t = regression.make_data(10)
    n, k = t.shape
    y = mean_net.predict(x)
    assert mean_net.loss(x, t) == pytest.approx(np.sum((y - t) ** 2) / (n * k), rel=ANALYTIC.rtol)
    assert half_sum_net.loss(x, t) == pytest.approx(n * k / 2 * mean_net.loss(x, t), rel=ANALYTIC.rtol)
    g_mean, g_half = mean_net.gradient(x, t), half_sum_net.gradient(x, t)
    for name in g_mean:
        assert_same(g_half[name], n * k / 2 * g_mean[name], name)


def test_write_npz(tmp_path):
    path = regression.write_npz(tmp_path / "data", n=30)
    assert path == tmp_path / "data.npz"
    with np.load(path) as arrays:
        assert sorted(arrays.files) == ["t", "x"]
        x, t = arrays["x"], arrays["t"]
    assert x.shape == (30, regression.INPUT_SIZE) and t.shape == (30, regression.OUTPUT_SIZE)
    assert x.dtype == t.dtype == np.float64
    assert not np.array_equal(t, np.round(t))  # real targets, not labels
    assert np.array_equal(x, regression.make_data(30)[0])


# --- the torch ports: sizes ----------------------------------------------------------------------

def _sizes(model):
    if isinstance(model, nn.Module):
        return sorted(p.numel() for p in model.parameters())
    return sorted(v.size for v in model.params.values())


@pytest.mark.parametrize("numpy_factory, port", [
    (cs231n_two_layer.make_net, tp.A1Port), (cs231n_two_layer.make_net, tp.a1_sequential),
    (cs231n_two_layer.make_net, tp.A1FunctionalLinear), (cs231n_two_layer.make_net, tp.A1Matmul),
    (cs231n_two_layer.make_net, tp.half_reg_port),
    (cs231n_fc_net.make_net, tp.FCNetPort), (cs231n_fc_net.make_net, tp.FCNetFunctional),
    (cs231n_fc_net.make_net, tp.FCNetKeepProbAsDrop),
    (cs231n_fc_net.make_plain_net, tp.fc_plain_port), (cs231n_fc_net.make_plain_net, tp.FCRawWeight),
    (cs231n_fc_net.make_plain_net, tp.FCFunctionalLinear),
    (cs231n_fc_net.make_batchnorm_net, tp.fc_batchnorm_port),
    (cs231n_fc_net.make_dropout_net, tp.fc_dropout_port),
    (dlai_deep_net.make_net, tp.DlaiPort), (dlai_deep_net.make_net, tp.DlaiMatmul),
    (dlai_deep_net.make_net, tp.DlaiTransposedW2),
    (dlai_deep_net.make_softmax_net, tp.dlai_softmax_port),
    (regression.make_net, tp.RegressionPort), (regression.make_net, tp.regression_sequential),
    (regression.make_net, tp.RegressionFunctional), (regression.make_net, tp.RegressionSumLoss),
])
def test_factories_pair_by_size(numpy_factory, port):
    """Every port builds with no arguments at its NumPy model's sizes."""
    assert _sizes(port()) == _sizes(numpy_factory())


def test_nnfs_factories_pair_by_size():
    dense1, _, dense2, _ = nnfs.build_layers(0)
    sizes = sorted(a.size for a in (dense1.weights, dense1.biases, dense2.weights, dense2.biases))
    assert _sizes(nnfs_torch.make_net()) == _sizes(nnfs_torch.FunctionalNet()) == sizes


def test_planted_bugs_are_listed_with_their_models():
    spec_codes = {"transpose", "scale", "sign", "offset", "dtype", "log_eps", "axis", "unused",
                  "flatten_order", "bn_eps", "bn_momentum", "bn_per_channel", "inverted_dropout",
                  "dropout_keep_prob", "weight_decay", "mode"}
    modules = {"cs231n_two_layer.py": cs231n_two_layer, "cs231n_fc_net.py": cs231n_fc_net,
               "dlai_deep_net.py": dlai_deep_net, "regression.py": regression, "torch_ports.py": tp}
    for bug in tp.PLANTED_BUGS:
        for side in ("numpy", "torch"):
            path, name = bug[side].split(":")
            assert (ROOT / path).is_file() and callable(getattr(modules[Path(path).name], name))
        assert bug["code"] in spec_codes


# --- the torch ports: cs231n assignment 1 -------------------------------------------------------

A1_LOADERS = {
    "A1Port": lambda port, p: load_linears(port, p, [("W1", "b1"), ("W2", "b2")]),
    "a1_sequential": lambda port, p: load_linears(port, p, [("W1", "b1"), ("W2", "b2")]),
    "A1FunctionalLinear": lambda port, p: [load(port.w1, p["W1"].T), load(port.b1, p["b1"]),
                                           load(port.w2, p["W2"].T), load(port.b2, p["b2"])],
    "A1Matmul": lambda port, p: [load(getattr(port, k), v) for k, v in p.items()],
}


def a1_grads(port, name):
    """The port's gradients in the NumPy layout."""
    if name == "A1Matmul":
        return {k: getattr(port, k).grad for k in ("W1", "b1", "W2", "b2")}
    if name == "A1FunctionalLinear":
        return {"W1": port.w1.grad.T, "b1": port.b1.grad, "W2": port.w2.grad.T, "b2": port.b2.grad}
    fc1, fc2 = linears(port)
    return {"W1": fc1.weight.grad.T, "b1": fc1.bias.grad, "W2": fc2.weight.grad.T, "b2": fc2.bias.grad}


@pytest.mark.parametrize("name", A1_LOADERS)
def test_a1_right_ports_reproduce_the_net(name):
    net, X, y = a1_net()
    reg = 0.0 if name == "a1_sequential" else 0.1
    port = (tp.a1_sequential(6, 5, 4) if name == "a1_sequential"
            else getattr(tp, name)(6, 5, 4, reg=reg)).double()
    A1_LOADERS[name](port, net.params)
    x, t = t64(X), torch.from_numpy(y)
    assert_same(port(x), net.loss(X), "scores")
    loss, grads = net.loss(X, y, reg=reg)
    torch_loss = port.loss(x, t) if hasattr(port, "loss") else F.cross_entropy(port(x), t)
    assert_same(backward(torch_loss), loss, "loss")
    torch_grads = a1_grads(port, name)
    for k in grads:
        assert_same(torch_grads[k], grads[k], k)


def test_a1_half_reg_is_weight_decay():
    net, X, y = a1_net()
    reg = 0.1
    port = tp.A1HalfReg(6, 5, 4, reg=reg).double()
    A1_LOADERS["A1Port"](port, net.params)
    x, t = t64(X), torch.from_numpy(y)
    assert_same(port(x), net.loss(X), "scores")  # the forward pass is right
    loss, grads = net.loss(X, y, reg=reg)
    torch_loss = backward(port.loss(x, t))
    W1, W2 = net.params["W1"], net.params["W2"]
    assert_differ(torch_loss, loss, "loss")
    assert_same(loss - torch_loss.item(), 0.5 * reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2)), "loss gap")
    torch_grads = a1_grads(port, "A1Port")
    for k in ("W1", "W2"):
        assert_same(grads[k] - to_numpy(torch_grads[k]), reg * net.params[k], f"{k} gap")
    for k in ("b1", "b2"):
        assert_same(torch_grads[k], grads[k], k)


# --- the torch ports: cs231n assignment 2 ------------------------------------------------------

N_FC = 8


def record_numpy_pass(monkeypatch, net, X, y):
    """``net.loss(X, y)`` with its dropout masks, scores and the gradients reaching each
    affine layer recorded, the functions wrapped where the net calls them; ``terms[i]``
    is the size of the terms ``b{i}``'s gradient sums, ``sum |dout|`` over the batch."""
    masks, scores, douts = [], [], []

    def affine_backward(dout, cache):
        douts.insert(0, dout)  # called last layer first
        return cs231n_layers.affine_backward(dout, cache)

    def dropout_forward(x, param):
        out, cache = cs231n_layers.dropout_forward(x, param)
        masks.append(cache[1])
        return out, cache

    def softmax_loss(x, y):
        scores.append(x)
        return cs231n_layers.softmax_loss(x, y)

    monkeypatch.setattr(cs231n_fc_net, "dropout_forward", dropout_forward)
    monkeypatch.setattr(cs231n_fc_net, "softmax_loss", softmax_loss)
    monkeypatch.setattr(cs231n_fc_net, "affine_backward", affine_backward)
    loss, grads = net.loss(X, y)
    terms = {f"b{i}": np.sum(np.abs(d), axis=0) for i, d in enumerate(douts, start=1)}
    return loss, grads, masks, scores[0], terms


def share_masks(port, masks):
    """Each ``nn.Dropout`` of the port applies the NumPy net's mask, in order, scaled by
    the port's own keep probability ``1 - p``."""
    drops = [m for m in port.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == len(masks)
    for module, mask in zip(drops, masks):
        module.register_forward_hook(
            lambda m, inputs, out, mask=t64(mask): inputs[0] * mask / (1 - m.p) if m.training else out)


def load_fc_port(port, net):
    n_layers = net.num_layers
    load_linears(port, net.params, [(f"W{i}", f"b{i}") for i in range(1, n_layers + 1)])
    bns = [m for m in port.modules() if isinstance(m, nn.BatchNorm1d)]
    for i, bn in enumerate(bns, start=1):
        load(bn.weight, net.params[f"gamma{i}"])
        load(bn.bias, net.params[f"beta{i}"])
        # the NumPy averages start at zeros, torch's running_var at ones
        bn.running_mean.zero_()
        bn.running_var.zero_()
    return bns


def test_fc_port_reproduces_the_net_in_train_and_test_mode(monkeypatch):
    keep, reg = 0.75, 0.1
    net, X, y = fc_net(normalization="batchnorm", dropout_keep_ratio=keep, reg=reg)
    port = tp.FCNetPort((5, 4), 6, 3, dropout_keep_ratio=keep, normalization="batchnorm",
                        reg=reg).double()
    bns = load_fc_port(port, net)
    loss, grads, masks, scores, terms = record_numpy_pass(monkeypatch, net, X, y)
    share_masks(port, masks)
    seen = []
    linears(port)[-1].register_forward_hook(lambda m, i, out: seen.append(out))

    port.train()
    assert_same(backward(port.loss(t64(X), torch.from_numpy(y))), loss, "loss")
    assert_same(seen[0], scores, "scores (train)")
    layers = linears(port)
    for i, layer in enumerate(layers, start=1):
        assert_same(layer.weight.grad.T, grads[f"W{i}"], f"W{i}")
        assert_same(layer.bias.grad, grads[f"b{i}"], f"b{i}", terms=terms[f"b{i}"])
    for i, bn in enumerate(bns, start=1):
        assert_same(bn.weight.grad, grads[f"gamma{i}"], f"gamma{i}")
        assert_same(bn.bias.grad, grads[f"beta{i}"], f"beta{i}")
        bn_param = net.bn_params[i - 1]
        assert_same(bn.running_mean, bn_param["running_mean"], f"running_mean{i}")
        # the known difference: torch averages the unbiased variance, N / (N - 1) times larger
        assert_same(bn.running_var, bn_param["running_var"] * N_FC / (N_FC - 1), f"running_var{i}")
        load(bn.running_var, bn_param["running_var"])

    port.eval()
    assert_same(port(t64(X)), net.loss(X), "scores (test)")


def test_fc_functional_port_reproduces_the_net(monkeypatch):
    keep = 0.75
    net, X, y = fc_net(normalization="batchnorm", dropout_keep_ratio=keep)
    port = tp.FCNetFunctional((5, 4), 6, 3, dropout_keep_ratio=keep).double()
    for k, v in net.params.items():
        load(getattr(port, k.replace("W", "w")), v.T if k.startswith("W") else v)
    for i in (1, 2):
        getattr(port, f"running_mean{i}").zero_()
        getattr(port, f"running_var{i}").zero_()
    loss, grads, masks, _, terms = record_numpy_pass(monkeypatch, net, X, y)
    shared = iter(masks)
    monkeypatch.setattr(F, "dropout",
                        lambda x, p, training: x * t64(next(shared)) / (1 - p) if training else x)

    port.train()
    assert_same(backward(port.loss(t64(X), torch.from_numpy(y))), loss, "loss")
    for k, v in grads.items():
        param = getattr(port, k.replace("W", "w"))
        assert_same(param.grad.T if k.startswith("W") else param.grad, v, k, terms=terms.get(k))
    for i in (1, 2):
        bn_param = net.bn_params[i - 1]
        assert_same(getattr(port, f"running_var{i}"), bn_param["running_var"] * N_FC / (N_FC - 1),
                    f"running_var{i}")
        load(getattr(port, f"running_var{i}"), bn_param["running_var"])
    port.eval()
    assert_same(port(t64(X)), net.loss(X), "scores (test)")


def test_keep_prob_as_drop_prob_drops_what_it_should_keep():
    keep = tp.FC_KEEP
    port = tp.FCNetKeepProbAsDrop().double().train()
    drops = [m for m in port.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(m.p == keep for m in drops)
    assert all(m.p == 1 - keep for m in tp.FCNetPort().modules() if isinstance(m, nn.Dropout))
    torch.manual_seed(0)
    out = drops[0](torch.ones(200, 250, dtype=torch.float64))
    np_out, _ = cs231n_layers.dropout_forward(np.ones((200, 250)), {"p": keep, "mode": "train", "seed": 0})
    bound = 5 * np.sqrt(keep * (1 - keep) / out.numel())  # 5 standard deviations of the kept fraction
    assert abs((out != 0).double().mean().item() - (1 - keep)) < bound
    assert abs((np_out != 0).mean() - keep) < bound
    assert torch.all(out[out != 0] == 1 / (1 - keep))  # scaled by 4 where the net scales by 4/3
    assert np.all(np_out[np_out != 0] == 1 / keep)


def test_functional_linear_and_the_raw_weight():
    net, X, y = fc_net(hidden_dims=(5, 5))
    loss, grads = net.loss(X, y)
    names = [("W1", "b1"), ("W2", "b2"), ("W3", "b3")]
    right = tp.FCFunctionalLinear((5, 5), 6, 3).double()
    load_linears(right, net.params, names)
    assert_same(backward(F.cross_entropy(right(t64(X)), torch.from_numpy(y))), loss, "loss")
    for i, layer in enumerate(linears(right), start=1):
        assert_same(layer.weight.grad.T, grads[f"W{i}"], f"W{i}")
        assert_same(layer.bias.grad, grads[f"b{i}"], f"b{i}")

    buggy = tp.FCRawWeight((5, 5), 6, 3).double()
    load_linears(buggy, net.params, names)
    assert_same(buggy.fc1(t64(X)), X @ net.params["W1"] + net.params["b1"], "fc1")  # right up to fc2
    assert_differ(buggy(t64(X)), net.loss(X), "scores")
    load(buggy.fc2.weight, net.params["W2"])  # W2 as it is, not transposed: the port becomes right
    assert_same(buggy(t64(X)), net.loss(X), "scores with fc2.weight = W2")


# --- the torch ports: deeplearning.ai -----------------------------------------------------------

def load_dlai(port, params):
    if isinstance(port, tp.DlaiMatmul):
        for k, v in params.items():
            load(getattr(port, k), v)  # the course's shapes, b (n, 1) included
        return lambda k: getattr(port, k).grad
    layers = linears(port)
    for l, layer in enumerate(layers, start=1):
        load(layer.weight, params[f"W{l}"])  # (out, in) already
        load(layer.bias, params[f"b{l}"].reshape(-1))

    def grad(k):
        layer = layers[int(k[1:]) - 1]
        return layer.weight.grad if k[0] == "W" else layer.bias.grad.reshape(-1, 1)
    return grad


@pytest.mark.parametrize("output_activation, port_factory", [
    ("sigmoid", lambda: tp.DlaiPort((5, 4, 4, 1))),
    ("sigmoid", lambda: tp.DlaiMatmul((5, 4, 4, 1))),
    ("softmax", lambda: tp.DlaiPort((5, 4, 3), output_activation="softmax")),
], ids=["DlaiPort", "DlaiMatmul", "DlaiPort-softmax"])
def test_dlai_right_ports_reproduce_the_net(output_activation, port_factory):
    net, X, Y = dlai_net(output_activation)
    port = port_factory().double()
    grad = load_dlai(port, net.params)
    x, y = t64(X.T), t64(Y.T)  # batch first
    AL, _ = dlai_deep_net.L_model_forward(X, net.params, output_activation)
    out = port(x)
    assert_same(out if output_activation == "sigmoid" else torch.softmax(out, dim=1), AL.T, "AL")
    assert_same(backward(port.loss(x, y)), net.loss(X, Y), "cost")
    for k, v in net.gradient(X, Y).items():
        assert_same(grad(k), v, k)


def test_dlai_transposed_w2_is_a_transpose_at_layer_2():
    net, X, Y = dlai_net()
    port = tp.DlaiTransposedW2((5, 4, 4, 1)).double()
    load_dlai(port, net.params)
    x = t64(X.T)
    A1 = np.maximum(0, net.params["W1"] @ X + net.params["b1"])
    assert_same(torch.clamp(port.linear(1, x), min=0), A1.T, "layer 1")  # right up to layer 2
    AL, _ = dlai_deep_net.L_model_forward(X, net.params)
    assert_differ(port(x), AL.T, "AL")
    load(port.W2, net.params["W2"].T)  # W2 transposed: the port becomes right
    assert_same(port(x), AL.T, "AL with W2.T")


# --- the torch ports: Neural Networks from Scratch ----------------------------------------------

@pytest.mark.parametrize("kind", ["make_net", "FunctionalNet"])
def test_nnfs_ports_reproduce_the_layers(kind):
    layers, X, y = nnfs_layers()
    dense1, _, dense2, loss_activation = layers
    loss = nnfs_pass(layers, X, y)
    nnfs_backward(layers, y)
    port = getattr(nnfs_torch, kind)(5, 4, 3).double()
    if kind == "make_net":
        load_linears(port, {"w1": dense1.weights, "b1": dense1.biases,
                            "w2": dense2.weights, "b2": dense2.biases}, [("w1", "b1"), ("w2", "b2")])
        fc1, fc2 = linears(port)
        grads = [fc1.weight, fc1.bias, fc2.weight, fc2.bias]
        as_nnfs = [lambda g: g.T, lambda g: g.reshape(1, -1)] * 2
    else:
        for name, value in [("weights1", dense1.weights), ("biases1", dense1.biases),
                            ("weights2", dense2.weights), ("biases2", dense2.biases)]:
            load(getattr(port, name), value)  # the book's own layout
        grads = [port.weights1, port.biases1, port.weights2, port.biases2]
        as_nnfs = [lambda g: g] * 4
    x = t64(X)
    logits = port(x)
    assert_same(logits, dense2.output, "dense2.output")
    assert_same(torch.softmax(logits, dim=1), loss_activation.output, "softmax output")
    assert_same(backward(F.cross_entropy(logits, torch.from_numpy(y))), loss, "loss")
    expected = [dense1.dweights, dense1.dbiases, dense2.dweights, dense2.dbiases]
    for param, to_nnfs, value, name in zip(grads, as_nnfs, expected, ["dw1", "db1", "dw2", "db2"]):
        assert_same(to_nnfs(param.grad), value, name)


# --- the torch ports: regression ----------------------------------------------------------------

def regression_pair(port):
    net = regression.RegressionNet(4, 5, 2, seed=0)
    x, t = regression.make_data(7, 4, 2, seed=1)
    port = port.double()
    if isinstance(port, tp.RegressionFunctional):
        for k, v in net.params.items():
            load(getattr(port, k.lower()), v.T if k.startswith("W") else v)
        grad = {"W1": lambda: port.w1.grad.T, "b1": lambda: port.b1.grad,
                "W2": lambda: port.w2.grad.T, "b2": lambda: port.b2.grad}
    else:
        load_linears(port, net.params, [("W1", "b1"), ("W2", "b2")])
        fc1, fc2 = linears(port)
        grad = {"W1": lambda: fc1.weight.grad.T, "b1": lambda: fc1.bias.grad,
                "W2": lambda: fc2.weight.grad.T, "b2": lambda: fc2.bias.grad}
    return net, port, x, t, grad


@pytest.mark.parametrize("make_port", [lambda: tp.RegressionPort(4, 5, 2),
                                       lambda: tp.regression_sequential(4, 5, 2),
                                       lambda: tp.RegressionFunctional(4, 5, 2)],
                         ids=["RegressionPort", "regression_sequential", "RegressionFunctional"])
def test_regression_right_ports_reproduce_the_net(make_port):
    net, port, x, t, grad = regression_pair(make_port())
    out = port(t64(x))
    assert_same(out, net.predict(x), "outputs")
    torch_loss = port.loss(t64(x), t64(t)) if hasattr(port, "loss") else F.mse_loss(out, t64(t))
    assert_same(backward(torch_loss), net.loss(x, t), "loss")
    for k, v in net.gradient(x, t).items():
        assert_same(grad[k](), v, k)


def test_regression_sum_loss_is_n_k_times_the_mean():
    net, port, x, t, grad = regression_pair(tp.RegressionSumLoss(4, 5, 2))
    n, k = t.shape
    assert_same(port(t64(x)), net.predict(x), "outputs")  # right up to the loss
    torch_loss = backward(port.loss(t64(x), t64(t)))
    assert_differ(torch_loss, net.loss(x, t), "loss")
    assert_same(torch_loss, n * k * net.loss(x, t), "loss / (N k)")
    for name, v in net.gradient(x, t).items():
        assert_same(grad[name](), n * k * v, name)


def test_mse_loss_against_the_half_sum_is_a_scale_of_n_k_over_2():
    """The right port against the book's ``sum_squared_error``: the ``scale`` trap."""
    _, port, x, t, grad = regression_pair(tp.RegressionPort(4, 5, 2))
    half_sum = regression.RegressionNetHalfSum(4, 5, 2, seed=0)
    n, k = t.shape
    torch_loss = backward(port.loss(t64(x), t64(t)))
    assert_same(half_sum.loss(x, t), n * k / 2 * torch_loss.item(), "0.5 sum / mean")
    for name, v in half_sum.gradient(x, t).items():
        assert_same(v, n * k / 2 * to_numpy(grad[name]()), name)
