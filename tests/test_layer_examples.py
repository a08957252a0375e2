"""The chapter-6 and chapter-7 example nets are right on their own, against independent
truth: backprop against central differences of the loss, element by element; each
right torch port against the NumPy net holding the same parameters (copied in by
hand here), forward and autograd, in training and eval mode; the batch norm
buffers after one training pass. And each planted bug of ``zoo_layers`` is there,
as its docstring says.

Tolerances: ``compare.parity``'s. Two implementations of the same arithmetic in
float64 agree to its analytic tolerance (round-off of a few matmuls). A central
difference ``D(h)`` is allowed its round-off ``4 eps |f| / h`` and a truncation
bounded from ``D(h)`` and ``D(2h)`` (``richardson_truncation``; derivation in
``compare/parity.py``), element by element.

The book's loss is ``-log(y + 1e-7)``, while its backprop ``(y - t) / N`` is the
gradient of the cross-entropy without the 1e-7 (the 1e-7 gap). The central
differences here are taken of the loss with the 1e-7 taken out
(``exact_cross_entropy``), so that they and backprop differentiate the same
function; the loss with it is checked on its own.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import zoo_layers as zoo
from compare.parity import richardson_truncation, roundoff, tolerance

ch6n, ch6t, ch7n, ch7t = zoo.ch6_numpy, zoo.ch6_torch, zoo.ch7_numpy, zoo.ch7_torch

ANALYTIC = tolerance("analytic", "float64")
H = 1e-5  # well inside every ReLU and pool margin of these seeded batches
SEED = 7  # the dropout masks' draw


# --- helpers --------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def numpy_random_state():
    """The book's dropout draws from ``np.random``; leave it as found."""
    state = np.random.get_state()
    yield
    np.random.set_state(state)


@pytest.fixture
def exact_cross_entropy(monkeypatch):
    """The nets' ``SoftmaxWithLoss`` without the book's 1e-7 (see the module docstring)."""
    def exact(y, t):
        if t.size == y.size:
            t = t.argmax(axis=1)
        return -np.sum(np.log(y[np.arange(y.shape[0]), t])) / y.shape[0]

    for module in (ch6n, ch7n):
        monkeypatch.setattr(module, "cross_entropy_error", exact)


@pytest.fixture
def numpy_drawn_rand(monkeypatch):
    """``torch.rand`` drawing from ``np.random``: reseeded alike, the NumPy side's dropout
    and ``BookDropout`` draw the same uniforms in the same order, hence the same masks."""
    def rand(*size, dtype=None, device=None, **_):
        shape = tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else size
        return torch.from_numpy(np.random.rand(*shape)).to(dtype or torch.get_default_dtype())

    monkeypatch.setattr(torch, "rand", rand)


def batch(n, in_shape, classes, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randn(n, *in_shape)
    t = np.eye(classes)[rng.randint(0, classes, n)]
    return x, t


def assert_close(actual, expected, what, tol=ANALYTIC):
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    allowed = tol.atol + tol.rtol * np.abs(expected)
    err = np.abs(actual - expected)
    bad = err > allowed
    worst = err.argmax()
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} elements out of {tol}; worst "
                           f"|err| {err.flat[worst]:.3g} (allowed there {allowed.flat[worst]:.3g})")


def assert_differs(actual, expected, what, tol=ANALYTIC):
    err = np.abs(np.asarray(actual) - np.asarray(expected))
    bound = tol.atol + tol.rtol * np.abs(np.asarray(expected))
    assert (err > bound).any(), f"{what}: no difference"


def central_differences(loss, params, names=None):
    """``D(h)`` and ``D(2h)`` of ``loss()`` for every element of ``params``, perturbed in
    place (the layers hold references to these arrays), with the steps as stored."""
    d_h, d_2h = {}, {}
    for name in names or params:
        p = params[name]
        d_h[name], d_2h[name] = np.empty_like(p), np.empty_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            for step, out in ((H, d_h), (2 * H, d_2h)):
                up, down = old + step, old - step
                p[i] = up
                f_up = loss()
                p[i] = down
                f_down = loss()
                out[name][i] = (f_up - f_down) / (up - down)
            p[i] = old
    return d_h, d_2h


def assert_backprop(loss, params, grads, value_scale, names=None):
    """Backprop within central-difference error of ``loss``, element by element."""
    d_h, d_2h = central_differences(loss, params, names)
    r = roundoff("float64", H, value_scale)
    for name in d_h:
        g = np.asarray(grads[name])
        allowed = (ANALYTIC.atol + ANALYTIC.rtol * np.abs(g) + r
                   + richardson_truncation(d_h[name], d_2h[name], r))
        err = np.abs(g - d_h[name])
        bad = err > allowed
        assert not bad.any(), (f"{name}: {bad.sum()} of {bad.size} elements off the central "
                               f"difference; worst |err| {err.max():.3g}, allowed there "
                               f"{allowed.flat[err.argmax()]:.3g}")


def value_scale(net, x, t, train_flg):
    """The sizes of the terms the loss is summed from: the cross-entropy, the largest
    score (log-softmax subtracts it back out) and the penalty."""
    loss = net.loss(x, t, train_flg) if train_flg is not None else net.loss(x, t)
    scores = net.predict(x, train_flg) if train_flg is not None else net.predict(x)
    return abs(loss) + np.abs(scores).max()


def t64(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def labels(t):
    return torch.from_numpy(t.argmax(axis=1))


# --- chapter 6: MultiLayerNetExtend ---------------------------------------------------------

IN, HIDDEN, OUT, N = 6, (5, 4), 3, 5
CH6 = {
    "plain": dict(),
    "sigmoid": dict(activation="sigmoid", weight_init_std="sigmoid"),
    "batchnorm": dict(use_batchnorm=True),
    "dropout": dict(use_dropout=True, dropout_ration=0.5),
    "weight_decay": dict(weight_decay_lambda=0.1),
    "full": dict(use_batchnorm=True, use_dropout=True, dropout_ration=0.5, weight_decay_lambda=0.1),
}


def ch6_net(kind, seed=0):
    net = ch6n.MultiLayerNetExtend(IN, HIDDEN, OUT, seed=seed, **CH6[kind])
    rng = np.random.RandomState(seed + 100)
    for name, value in net.params.items():  # off the book's zeros and ones: every term counts
        if not name.startswith("W"):
            value += 0.1 * rng.randn(*value.shape)
    return net


def seeded(fn):
    def call(*args):
        np.random.seed(SEED)
        return fn(*args)
    return call


@pytest.mark.parametrize("kind", list(CH6))
def test_ch6_backprop_matches_central_differences(kind, exact_cross_entropy):
    net = ch6_net(kind)
    x, t = batch(N, (IN,), OUT)
    loss = seeded(lambda: net.loss(x, t, train_flg=True))  # one mask for every evaluation
    grads = seeded(net.gradient)(x, t)
    assert sorted(grads) == sorted(net.params)
    if "dropout" in kind or kind == "full":
        mask = net.layers["Dropout1"].mask
        assert 0 < mask.sum() < mask.size  # something is dropped, something kept
    assert_backprop(loss, net.params, grads, seeded(value_scale)(net, x, t, True))


def test_ch6_central_differences_catch_a_missing_term(exact_cross_entropy):
    """The check can fail: the weight decay term left out of W1's gradient, or batch
    norm's backward without the path through the batch mean."""
    net = ch6_net("full")
    x, t = batch(N, (IN,), OUT)
    loss = seeded(lambda: net.loss(x, t, train_flg=True))
    grads = seeded(net.gradient)(x, t)
    scale = seeded(value_scale)(net, x, t, True)
    no_decay = dict(grads, W1=grads["W1"] - 0.1 * net.params["W1"])
    with pytest.raises(AssertionError, match="W1"):
        assert_backprop(loss, net.params, no_decay, scale, names=["W1"])

    bn = net.layers["BatchNorm1"]

    def backward_without_mean_path(dout):
        bn.dbeta, bn.dgamma = dout.sum(axis=0), np.sum(bn.xn * dout, axis=0)
        dxn = bn.gamma * dout
        return (dxn - bn.xn * np.mean(dxn * bn.xn, axis=0)) / bn.std

    bn.backward = backward_without_mean_path
    with pytest.raises(AssertionError, match="W1"):
        assert_backprop(loss, net.params, seeded(net.gradient)(x, t), scale, names=["W1"])


def test_ch6_loss_is_the_books():
    """``loss``: the book's ``-log(y + 1e-7)`` of the scores plus ``0.5 lambda sum(W**2)``
    over the weights alone, written out here."""
    net = ch6_net("full")
    x, t = batch(N, (IN,), OUT)
    np.random.seed(SEED)
    scores = net.predict(x, train_flg=True)
    y = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    cross_entropy = -np.mean(np.log(y[np.arange(N), t.argmax(axis=1)] + 1e-7))
    penalty = 0.5 * 0.1 * sum(np.sum(net.params[f"W{i}"] ** 2) for i in (1, 2, 3))
    np.random.seed(SEED)
    assert_close(net.loss(x, t, train_flg=True), cross_entropy + penalty, "loss")


def test_ch6_layers_hold_the_params_arrays():
    net = ch6n.make_full_net()
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3",
                                "gamma1", "beta1", "gamma2", "beta2"]
    assert list(net.layers) == ["Affine1", "BatchNorm1", "Relu1", "Dropout1",
                                "Affine2", "BatchNorm2", "Relu2", "Dropout2", "Affine3"]
    assert net.layers["BatchNorm2"].gamma is net.params["gamma2"]
    assert net.layers["Affine3"].W is net.params["W3"]
    assert isinstance(net.last_layer, ch6n.SoftmaxWithLoss)


def test_book_dropout_is_not_inverted():
    layer = ch6n.Dropout(0.2)
    x = np.random.RandomState(0).rand(50, 40) + 1
    np.random.seed(SEED)
    out = layer.forward(x, train_flg=True)
    np.random.seed(SEED)
    kept = np.random.rand(*x.shape) > 0.2
    assert np.array_equal(out, x * kept)  # unscaled: kept units are x itself
    assert np.array_equal(layer.forward(x, train_flg=False), x * 0.8)


def load_ch6(port, net):
    """By hand: the i-th ``nn.Linear`` gets ``W{i}`` transposed and ``b{i}``; the i-th
    ``BatchNorm1d`` gets ``gamma{i}`` and ``beta{i}``."""
    port.double()
    with torch.no_grad():
        linears = [m for m in port.modules() if isinstance(m, nn.Linear)]
        for i, m in enumerate(linears, 1):
            m.weight.copy_(t64(net.params[f"W{i}"].T))
            m.bias.copy_(t64(net.params[f"b{i}"]))
        norms = [m for m in port.modules() if isinstance(m, nn.BatchNorm1d)]
        for i, m in enumerate(norms, 1):
            m.weight.copy_(t64(net.params[f"gamma{i}"]))
            m.bias.copy_(t64(net.params[f"beta{i}"]))
    return linears, norms


def torch_grads(port, linears, norms, loss):
    """Autograd's gradients under the NumPy names (linear weights transposed back)."""
    grads = {}
    for i, m in enumerate(linears, 1):
        grads[f"W{i}"], grads[f"b{i}"] = m.weight, m.bias
    for i, m in enumerate(norms, 1):
        grads[f"gamma{i}"], grads[f"beta{i}"] = m.weight, m.bias
    names = list(grads)
    values = torch.autograd.grad(loss, [grads[n] for n in names])
    return {n: (v.T if n.startswith("W") else v).numpy() for n, v in zip(names, values)}


def penalty_of(linears, lam):
    return 0.5 * lam * sum((m.weight ** 2).sum() for m in linears)


def ch6_port(kind):
    cfg = CH6[kind]
    return ch6t.MultiLayerNetExtend(IN, HIDDEN, OUT, activation=cfg.get("activation", "relu"),
                                    use_batchnorm=cfg.get("use_batchnorm", False),
                                    use_dropout=cfg.get("use_dropout", False),
                                    dropout_ration=cfg.get("dropout_ration", 0.5))


@pytest.mark.parametrize("kind", list(CH6))
def test_ch6_port_matches_in_training_mode(kind, numpy_drawn_rand):
    """Scores, the book's loss and every gradient: autograd of the cross-entropy
    (plus the penalty by hand, where the NumPy net has weight decay) against backprop."""
    net = ch6_net(kind)
    port = ch6_port(kind)
    linears, norms = load_ch6(port, net)
    x, t = batch(N, (IN,), OUT)
    lam = CH6[kind].get("weight_decay_lambda", 0)
    np.random.seed(SEED)
    np_scores = net.predict(x, train_flg=True)
    np_loss = seeded(lambda: net.loss(x, t, train_flg=True))()
    np_grads = seeded(net.gradient)(x, t)

    port.train()
    np.random.seed(SEED)
    scores = port(t64(x))
    assert_close(scores.detach().numpy(), np_scores, "scores")
    book_loss = -torch.log(torch.softmax(scores, 1)[torch.arange(N), labels(t)] + 1e-7).mean()
    assert_close((book_loss + penalty_of(linears, lam)).item(), np_loss, "loss")
    loss = F.cross_entropy(scores, labels(t)) + penalty_of(linears, lam)
    for name, g in torch_grads(port, linears, norms, loss).items():
        assert_close(g, np_grads[name], name)


@pytest.mark.parametrize("kind", ["batchnorm", "dropout", "full"])
def test_ch6_port_matches_in_eval_mode(kind, numpy_drawn_rand):
    """After one training pass each, with the NumPy running statistics copied into the
    torch buffers by hand: batch norm from them, dropout as ``x * (1 - p)``."""
    net = ch6_net(kind)
    port = ch6_port(kind)
    _, norms = load_ch6(port, net)
    x, t = batch(N, (IN,), OUT)
    np.random.seed(SEED)
    net.predict(x, train_flg=True)
    np.random.seed(SEED)
    port.train()(t64(x))
    with torch.no_grad():
        for i, m in enumerate(norms, 1):
            layer = net.layers[f"BatchNorm{i}"]
            m.running_mean.copy_(t64(layer.running_mean))
            m.running_var.copy_(t64(layer.running_var))
    x2, _ = batch(N, (IN,), OUT, seed=1)
    with torch.no_grad():
        scores = port.eval()(t64(x2))
    assert_close(scores.numpy(), net.predict(x2, train_flg=False), "eval scores")


def test_running_statistics_after_one_training_pass():
    """From the same start, the book's zeros: the running means agree; the running
    variances differ by ``N / (N - 1)``, torch keeping the unbiased batch variance."""
    net = ch6_net("batchnorm")
    port = ch6_port("batchnorm")
    _, norms = load_ch6(port, net)
    with torch.no_grad():
        for m in norms:
            m.running_mean.zero_()
            m.running_var.zero_()  # the book's start; torch's own is ones
    x, t = batch(N, (IN,), OUT)
    net.predict(x, train_flg=True)
    port.train()(t64(x))
    unbiased = N / (N - 1)
    for i, m in enumerate(norms, 1):
        layer = net.layers[f"BatchNorm{i}"]
        assert_close(m.running_mean.numpy(), layer.running_mean, f"running_mean{i}")
        assert_close(m.running_var.numpy(), layer.running_var * unbiased, f"running_var{i}")
        assert_differs(m.running_var.numpy(), layer.running_var, f"running_var{i}")
    # the first layer's, from its input written out: 0.1 of the batch's, each convention
    a = x @ net.params["W1"] + net.params["b1"]
    biased = a.var(axis=0)
    assert_close(net.layers["BatchNorm1"].running_mean, 0.1 * a.mean(axis=0), "book mean")
    assert_close(net.layers["BatchNorm1"].running_var, 0.1 * biased, "book var")
    assert_close(norms[0].running_var.numpy(), 0.1 * a.var(axis=0, ddof=1), "torch var")


def test_torch_running_variance_starts_at_one():
    """Left at torch's start, the running variance after one pass is ``0.9 * 1 + 0.1 *
    unbiased``, the book's ``0.9 * 0 + 0.1 * biased``: the buffers need the book's
    start copied in before they can be compared."""
    net = ch6_net("batchnorm")
    port = ch6_port("batchnorm")
    _, norms = load_ch6(port, net)
    x, t = batch(N, (IN,), OUT)
    net.predict(x, train_flg=True)
    port.train()(t64(x))
    a = x @ net.params["W1"] + net.params["b1"]
    assert_close(norms[0].running_var.numpy(), 0.9 + 0.1 * a.var(axis=0, ddof=1), "torch var")
    assert_close(norms[0].running_mean.numpy(), net.layers["BatchNorm1"].running_mean, "mean")


def test_weight_decay_sgd_matches_the_books_update():
    """One step of ``weight_decay_sgd`` on the cross-entropy alone is the book's SGD step
    on its penalised gradient: ``lambda * W`` on the weights, nothing on the biases."""
    net = ch6_net("weight_decay")
    port = ch6_port("weight_decay")
    linears, _ = load_ch6(port, net)
    x, t = batch(N, (IN,), OUT)
    optimizer = ch6t.weight_decay_sgd(port.parameters(), lr=0.1)
    decays = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    for m in linears:
        assert decays[id(m.weight)] == 0.1 and decays[id(m.bias)] == 0.0

    grads = net.gradient(x, t)
    for name in net.params:
        net.params[name] -= 0.1 * grads[name]
    optimizer.zero_grad()
    F.cross_entropy(port.train()(t64(x)), labels(t)).backward()
    optimizer.step()
    for i, m in enumerate(linears, 1):
        assert_close(m.weight.detach().numpy().T, net.params[f"W{i}"], f"W{i}")
        assert_close(m.bias.detach().numpy(), net.params[f"b{i}"], f"b{i}")


def test_weight_decay_in_the_ports_loss():
    net = ch6_net("weight_decay")
    port = ch6t.WeightDecayInLoss(IN, HIDDEN, OUT, weight_decay_lambda=0.1)
    linears, _ = load_ch6(port, net)
    x, t = batch(N, (IN,), OUT)
    loss = port.loss(t64(x), t64(t))
    np_grads = net.gradient(x, t)
    for name, g in torch_grads(port, linears, [], loss).items():
        assert_close(g, np_grads[name], name)


def test_ch6_factories_pair_shape_for_shape():
    pairs = [(ch6n.make_net, ch6t.make_net), (ch6n.make_batchnorm_net, ch6t.make_batchnorm_net),
             (ch6n.make_dropout_net, ch6t.make_dropout_net),
             (ch6n.make_weight_decay_net, ch6t.make_weight_decay_net),
             (ch6n.make_full_net, ch6t.make_full_net),
             (ch6n.make_weight_decay_net, ch6t.make_weight_decay_loss_net)]
    for make_numpy, make_torch in pairs:
        net, port = make_numpy(), make_torch()
        linears = [m for m in port.modules() if isinstance(m, nn.Linear)]
        norms = [m for m in port.modules() if isinstance(m, nn.BatchNorm1d)]
        shapes = {f"W{i}": tuple(m.weight.T.shape) for i, m in enumerate(linears, 1)}
        shapes.update({f"b{i}": tuple(m.bias.shape) for i, m in enumerate(linears, 1)})
        shapes.update({f"gamma{i}": tuple(m.weight.shape) for i, m in enumerate(norms, 1)})
        shapes.update({f"beta{i}": tuple(m.bias.shape) for i, m in enumerate(norms, 1)})
        assert shapes == {k: v.shape for k, v in net.params.items()}, make_numpy.__name__
        for m in norms:
            assert (m.eps, m.momentum) == (1e-6, 0.1)
        dropouts = [m for m in port.modules() if isinstance(m, ch6t.BookDropout)]
        book = [layer for layer in net.layers.values() if isinstance(layer, ch6n.Dropout)]
        assert [m.p for m in dropouts] == [layer.dropout_ration for layer in book]


# --- chapter 7: SimpleConvNet ---------------------------------------------------------------

CONV = {
    "valid": ((1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}),
    "pad_stride": ((2, 9, 9), {"filter_num": 3, "filter_size": 3, "pad": 1, "stride": 2}),
}
CONV_N, CONV_HIDDEN = 3, 6


def conv_net(kind, seed=0, cls=None):
    input_dim, conv_param = CONV[kind]
    net = (cls or ch7n.SimpleConvNet)(input_dim, conv_param, CONV_HIDDEN, OUT,
                                      weight_init_std=0.3, seed=seed)
    rng = np.random.RandomState(seed + 100)
    for name, value in net.params.items():
        if not name.startswith("W"):  # nonzero biases: no pre-activation sits at a kink
            value += 0.1 * rng.randn(*value.shape)
    return net


@pytest.mark.parametrize("kind", list(CONV))
def test_conv_backprop_matches_central_differences(kind, exact_cross_entropy):
    net = conv_net(kind)
    x, t = batch(CONV_N, CONV[kind][0], OUT)
    grads = net.gradient(x, t)
    assert sorted(grads) == sorted(net.params)
    assert_backprop(lambda: net.loss(x, t), net.params, grads, value_scale(net, x, t, None))


@pytest.mark.slow
def test_conv_batchnorm_backprop_matches_central_differences(exact_cross_entropy):
    net = conv_net("valid", cls=zoo.ConvBatchNormNet)
    x, t = batch(CONV_N, CONV["valid"][0], OUT)
    grads = net.gradient(x, t)
    assert sorted(grads) == sorted(net.params)
    assert net.params["gamma1"].shape == (3 * 6 * 6,)  # per activation, not per channel
    assert_backprop(lambda: net.loss(x, t, train_flg=True), net.params, grads,
                    value_scale(net, x, t, True))


def test_im2col_col2im_are_adjoint():
    """``<im2col(x), c> = <x, col2im(c)>``: the backward is the forward's transpose."""
    rng = np.random.RandomState(0)
    for shape, k, stride, pad in [((2, 3, 7, 7), 3, 1, 0), ((2, 2, 9, 8), 3, 2, 1),
                                  ((1, 1, 6, 6), 2, 2, 0)]:
        x = rng.randn(*shape)
        col = ch7n.im2col(x, k, k, stride, pad)
        c = rng.randn(*col.shape)
        lhs, rhs = np.sum(col * c), np.sum(x * ch7n.col2im(c, shape, k, k, stride, pad))
        assert_close(lhs, rhs, "adjoint", tolerance("analytic", "float64"))


def load_conv(port, net):
    port.double()
    with torch.no_grad():
        if isinstance(port, ch7t.FunctionalConvNet):
            for name in ("W1", "b1", "b2", "b3"):
                getattr(port, name).copy_(t64(net.params[name]))
            port.W2.copy_(t64(net.params["W2"].T))
            port.W3.copy_(t64(net.params["W3"].T))
            return {n: getattr(port, n) for n in ("W1", "b1", "W2", "b2", "W3", "b3")}
        named = {"W1": port.conv1.weight, "b1": port.conv1.bias, "W2": port.fc1.weight,
                 "b2": port.fc1.bias, "W3": port.fc2.weight, "b3": port.fc2.bias}
        if hasattr(port, "bn1"):
            named.update(gamma1=port.bn1.weight, beta1=port.bn1.bias)
        for name, p in named.items():
            value = net.params[name]
            p.copy_(t64(value.T if name in ("W2", "W3") else value))  # Conv2d's W1 as it is
    return named


def assert_conv_port(net, port, x, t, train_flg):
    named = load_conv(port, net)
    port.train()
    scores = port(t64(x))
    np_scores = net.predict(x, train_flg) if train_flg is not None else net.predict(x)
    assert_close(scores.detach().numpy(), np_scores, "scores")
    np_grads = net.gradient(x, t)
    values = torch.autograd.grad(F.cross_entropy(scores, labels(t)), list(named.values()))
    for (name, _), g in zip(named.items(), values):
        assert_close((g.T if name in ("W2", "W3") else g).numpy(), np_grads[name], name)
    return named


@pytest.mark.parametrize("kind", list(CONV))
@pytest.mark.parametrize("cls", [ch7t.SimpleConvNet, ch7t.FunctionalConvNet])
def test_conv_port_matches(kind, cls):
    net = conv_net(kind)
    input_dim, conv_param = CONV[kind]
    port = cls(input_dim, conv_param, CONV_HIDDEN, OUT)
    x, t = batch(CONV_N, input_dim, OUT)
    assert_conv_port(net, port, x, t, None)
    with torch.no_grad():  # no layer of this net has modes
        assert_close(port.eval()(t64(x)).numpy(), net.predict(x), "eval scores")


def test_conv_batchnorm_port_matches_in_both_modes():
    net = conv_net("valid", cls=zoo.ConvBatchNormNet)
    input_dim, conv_param = CONV["valid"]
    port = zoo.conv_batchnorm_right(input_dim=input_dim, conv_param=conv_param,
                                    hidden_size=CONV_HIDDEN, output_size=OUT)
    x, t = batch(CONV_N, input_dim, OUT)
    assert_conv_port(net, port, x, t, True)
    with torch.no_grad():
        port.bn1.running_mean.copy_(t64(net.layers["BatchNorm1"].running_mean))
        port.bn1.running_var.copy_(t64(net.layers["BatchNorm1"].running_var))
        assert_close(port.eval()(t64(x)).numpy(), net.predict(x, train_flg=False), "eval scores")


def test_conv_factories_pair_shape_for_shape():
    pairs = [(ch7n.make_net, ch7t.make_net), (ch7n.make_small_net, ch7t.make_small_net),
             (ch7n.make_small_net, ch7t.make_small_functional_net),
             (zoo.conv_stride2_numpy, zoo.conv_stride2_right),
             (zoo.conv_stride2_numpy, zoo.conv_padding_same_shapes),
             (ch7n.make_small_net, zoo.flatten_order)]
    for make_numpy, make_torch in pairs:
        net, port = make_numpy(), make_torch()
        shapes = sorted(tuple(p.shape) for p in port.parameters())
        book = sorted(v.shape if v.ndim != 2 else v.shape[::-1] for v in net.params.values())
        assert shapes == book, (make_numpy.__name__, make_torch.__name__)
    assert ch7n.make_net().params["W2"].shape == (4320, 100)
    assert ch7n.make_net().params["W1"].shape == (30, 1, 5, 5)


def test_loss_only_exposes_params_and_loss():
    net = ch7n.make_small_net()
    wrapped = ch7n.LossOnly(net)
    assert wrapped.params is net.params
    assert not hasattr(wrapped, "gradient") and not hasattr(wrapped, "layers")
    x, t = batch(2, (1, 28, 28), 10)
    assert wrapped.loss(x, t) == net.loss(x, t)


# --- the planted bugs are there -------------------------------------------------------------

def test_bn_eps_and_bn_momentum_are_planted():
    net = ch6n.MultiLayerNetExtend(IN, HIDDEN, OUT, use_batchnorm=True)
    x, _ = batch(N, (IN,), OUT)
    np_scores = net.predict(x, train_flg=True)
    a = x @ net.params["W1"] + net.params["b1"]
    for make, planted in ((zoo.bn_eps, (1e-5, 0.1)), (zoo.bn_momentum, (1e-6, 0.9))):
        assert {(m.eps, m.momentum) for m in make().modules()
                if isinstance(m, nn.BatchNorm1d)} == {planted}
        port = ch6t.MultiLayerNetExtend(IN, HIDDEN, OUT, use_batchnorm=True)  # small, same bug
        _, norms = load_ch6(port, net)
        for m in norms:
            m.eps, m.momentum = planted
        scores = port.train()(t64(x)).detach().numpy()
        if make is zoo.bn_eps:
            assert_differs(scores, np_scores, "bn_eps scores")
        else:  # the training pass agrees; the buffers take 0.9 of the batch's, not 0.1
            assert_close(scores, np_scores, "bn_momentum scores")
            assert_close(norms[0].running_mean.numpy(), 0.9 * a.mean(axis=0), "running_mean")


def test_dropout_traps_are_planted(numpy_drawn_rand):
    p = zoo.RATIO
    h = np.random.RandomState(0).rand(4, 100)
    inverted = [m for m in zoo.inverted_dropout().modules() if isinstance(m, nn.Dropout)]
    assert inverted and all(m.p == p for m in inverted)
    assert_close(inverted[0].eval()(t64(h)).numpy(), ch6n.Dropout(p).forward(h, False) / (1 - p),
                 "nn.Dropout's eval")

    flg = zoo.mode_train_flg().train()
    layer = next(m for m in flg.modules() if isinstance(m, zoo.TrainFlgDropout))
    assert layer.training and np.array_equal(layer(t64(h)).numpy(), h * (1 - p))

    always = next(m for m in zoo.mode_always_train().eval().modules()
                  if isinstance(m, zoo.DropoutNoEval))
    np.random.seed(SEED)
    out = always(t64(h)).numpy()
    np.random.seed(SEED)
    assert np.array_equal(out, ch6n.Dropout(p).forward(h, True))  # a training mask in eval

    bernoulli = next(m for m in zoo.dropout_bernoulli_right().train().modules()
                     if isinstance(m, zoo.BernoulliDropout))
    out = bernoulli(t64(h + 1)).numpy()
    kept = out != 0
    assert 0 < kept.sum() < kept.size and np.array_equal(out[kept], (h + 1)[kept])  # unscaled
    assert np.array_equal(bernoulli.eval()(t64(h)).numpy(), h * (1 - p))


def test_mode_frozen_batchnorm_stays_in_eval():
    port = zoo.mode_frozen_batchnorm().train()
    norms = [m for m in port.modules() if isinstance(m, nn.BatchNorm1d)]
    assert norms and not any(m.training for m in norms)
    assert all(m.training for m in port.modules() if isinstance(m, nn.Linear))


def test_weight_decay_traps_are_planted():
    port = ch6t.make_weight_decay_net()
    groups = zoo.weight_decay_all(list(port.parameters())).param_groups
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.1  # biases too
    groups = zoo.weight_decay_wrong_lambda(list(port.parameters())).param_groups
    assert {g["weight_decay"] for g in groups} == {0.01, 0.0}


def test_conv_traps_are_planted():
    x = t64(np.random.RandomState(0).rand(2, 1, 28, 28))
    right, channels_last = zoo.conv_right().double(), zoo.flatten_order().double()
    channels_last.load_state_dict(right.state_dict())
    with torch.no_grad():
        assert_differs(channels_last(x).numpy(), right(x).numpy(), "flatten_order")
        pooled = right.pool1(right.relu1(right.conv1(x)))
        fc1 = right.fc1(pooled.permute(0, 2, 3, 1).flatten(1))
        assert_close(channels_last.fc2(channels_last.relu2(fc1)).numpy(),
                     channels_last(x).numpy(), "channels-last flatten")

    assert zoo.conv_stride().conv1.stride == (2, 2) and zoo.conv_padding().conv1.padding == (2, 2)
    same = zoo.conv_padding_same_shapes().double()
    net = zoo.conv_stride2_numpy()
    assert same.conv1(x).shape[-2:] == (13, 13)
    assert net.layers["Conv1"].forward(x.numpy()).shape[-2:] == (12, 12)

    per_channel = zoo.bn_per_channel()
    assert isinstance(per_channel.bn1, nn.BatchNorm2d) and per_channel.bn1.weight.shape == (4,)
    assert zoo.conv_batchnorm_numpy().params["gamma1"].shape == (4 * 24 * 24,)
