"""``compare write-port``: the written port compiles, imports torch alone, computes what the
NumPy model computes once ``load_numpy_params`` has loaded it (its scores against the NumPy
``predict``, its loss against the NumPy loss with the book's 1e-7 bounded), and passes the
check; a layer of a kind with no writer is refused in one line naming it."""
import ast
import importlib.util
import py_compile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from compare import check_port, write_port
from compare.cli import main
from compare.port.data import command_batch
from compare.port.layers import by_value
from compare.port.layers.written import CannotWrite
from compare.port.writing import written_port
from courses import cs231n_fc_net as fc
from courses import cs231n_layers as cl
from courses import cs231n_two_layer as a1
from courses import dlai_deep_net as dlai
from courses import regression
from examples.nnfs_style import adapter as nnfs
from examples.ch6_extend import numpy_net as ch6
from examples.ch7_conv import numpy_net as ch7
from examples.layer_net import numpy_net as ch5
from examples.rnn_lm import numpy_lm
from tests.styles import book_vol2_lm as book_lm
from tests.styles import features_first_inline as ff
from tests.styles import softmax_head as sh
from tests.styles import grouped_params as gp
from tests.styles import inline_batch_norm as ib
from tests.styles import layerless


def load_written(source, folder, name="written_port"):
    path = folder / f"{name}.py"
    path.write_text(source)
    py_compile.compile(str(path), doraise=True)
    spec = importlib.util.spec_from_file_location(f"{name}_{id(source)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, path


def imported_modules(source):
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(node.module)
    return found


def batch(net):
    x, t = command_batch(net.params, "float64")
    return x, t


def loaded_port(net, tmp_path):
    module, _ = load_written(write_port(net), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    return module, port


def scores_of(port, x, train):
    port.train(train)
    with torch.no_grad():
        return port(torch.as_tensor(x)).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("make", [ch5.make_net, ch7.make_small_net], ids=["ch5", "ch7"])
def test_written_file_imports_torch_alone_and_defines_the_three_names(make, tmp_path):
    net = make()
    source = write_port(net)
    assert "torch" in imported_modules(source)
    assert all(m.split(".")[0] == "torch" for m in imported_modules(source)), imported_modules(source)
    module, _ = load_written(source, tmp_path)
    port = module.make_port()
    assert type(port).__name__ == f"{type(net).__name__}Port"
    # the NumPy layer names, lower-cased, are the port's attributes
    assert {k.lower() for k in net.layers} <= set(dict(port.named_children()))
    assert all(p.dtype == torch.float64 for p in port.parameters())


@pytest.mark.parametrize("make", [ch5.make_net, ch7.make_small_net], ids=["ch5", "ch7"])
def test_load_numpy_params_gives_the_numpy_scores_and_loss(make, tmp_path):
    net = make()
    net.params["b1"][:] = np.random.RandomState(3).randn(*net.params["b1"].shape)  # no zero bias hides a layout
    module, port = loaded_port(net, tmp_path)
    x, t = batch(net)
    scores = scores_of(port, x, train=True)
    np.testing.assert_allclose(scores, net.predict(x), rtol=1e-10, atol=1e-13)
    # the port's loss has no eps in its log, the book's has 1e-7: log(p + eps) - log(p) <= eps / p
    with torch.no_grad():
        port_loss = float(module.loss(torch.as_tensor(scores), torch.as_tensor(t)))
    s = scores - scores.max(axis=1, keepdims=True)
    p = (np.exp(s) / np.exp(s).sum(axis=1, keepdims=True))[np.arange(len(t)), t.argmax(axis=1)]
    gap = np.mean(1e-7 / p)
    assert abs(port_loss - net.loss(x, t)) <= gap * 1.0001 + 1e-12
    assert abs(port_loss - net.loss(x, t)) > 0  # the eps is there, and bounded


def test_batch_norm_written_with_the_books_eps_and_momentum_gives_its_training_scores(tmp_path):
    net = ch6.make_batchnorm_net()
    rng = np.random.RandomState(1)
    for name in ("gamma1", "beta1", "gamma2", "beta2"):
        net.params[name][:] = rng.uniform(0.5, 1.5, net.params[name].shape)
    _, port = loaded_port(net, tmp_path)
    norms = [m for m in port.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [(m.eps, m.momentum) for m in norms] == [(1e-6, 0.1)] * 2  # the book's 10e-7, 1 - 0.9
    x, _ = batch(net)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.predict(x, train_flg=True),
                               rtol=1e-9, atol=1e-12)


def test_the_books_dropout_is_written_not_inverted(tmp_path):
    net = ch6.make_dropout_net()
    module, port = loaded_port(net, tmp_path)
    drops = [m for m in port.modules() if type(m).__name__ == "BookDropout"]
    assert len(drops) == 2 and all(m.p == ch6.DROPOUT_RATION for m in drops)
    x, _ = batch(net)
    # evaluation: the book scales by 1 - p, nn.Dropout would not
    np.testing.assert_allclose(scores_of(port, x, train=False), net.predict(x, train_flg=False),
                               rtol=1e-10, atol=1e-13)
    # training: kept units unscaled, about 1 - p of them kept
    drop = drops[0].train()
    ones = torch.ones(200, 500, dtype=torch.float64)
    out = drop(ones)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert abs(float(out.mean()) - (1 - ch6.DROPOUT_RATION)) < 0.01


def test_weight_decay_is_written_in_make_optimizer_on_the_weights_alone(tmp_path):
    net = ch6.make_weight_decay_net()
    module, port = loaded_port(net, tmp_path)
    groups = module.make_optimizer(port, lr=0.1).param_groups
    decayed = {id(p) for g in groups if g["weight_decay"] for p in g["params"]}
    assert {g["weight_decay"] for g in groups} == {net.weight_decay_lambda, 0.0}
    weights = {id(m.weight) for m in port.modules() if isinstance(m, torch.nn.Linear)}
    assert decayed == weights
    # no decay written where the NumPy loss holds none
    assert written_port(ch6.make_net()).decay is None


class Mystery:
    def forward(self, x):
        return np.sin(x)

    def backward(self, dout):
        return dout


def mystery_net():
    net = ch5.make_net()
    net.layers["Mystery1"] = Mystery()
    net.layers.move_to_end("Mystery1", last=False)
    return net


def test_a_layer_of_unknown_kind_is_refused_naming_it_and_its_place():
    with pytest.raises(CannotWrite, match=r"layers\['Mystery1'\] \(Mystery\)"):
        write_port(mystery_net())


def test_the_command_refuses_an_unknown_kind_with_exit_2_in_one_line(tmp_path, capsys):
    (tmp_path / "mystery.py").write_text(textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from test_write_port import mystery_net
    """ % str(Path(__file__).parent)))
    out = tmp_path / "port.py"
    assert main(["write-port", f"{tmp_path / 'mystery.py'}:mystery_net", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layers['Mystery1'] (Mystery)" in err[0] and "no writer" in err[0]
    assert not out.exists()


MODELS = [ch5.make_net, ch6.make_batchnorm_net, ch6.make_dropout_net, ch6.make_weight_decay_net,
          ch6.make_full_net, ch7.make_small_net]


@pytest.mark.slow
@pytest.mark.parametrize("make", MODELS, ids=[m.__module__.split(".")[1] + ":" + m.__name__ for m in MODELS])
def test_the_written_port_passes_its_check(make, tmp_path):
    module, _ = load_written(write_port(make()), tmp_path)
    optimizer = getattr(module, "make_optimizer", None)
    report = check_port(make(), module.make_port(), torch_optimizer=optimizer)
    assert report.passed, report.to_text()


@pytest.mark.slow
def test_the_command_writes_checks_and_prints_the_verdict_last(tmp_path, capsys):
    out = tmp_path / "port.py"
    code = main(["write-port", "examples/ch6_extend/numpy_net.py:make_full_net", "--out", str(out),
                 "--no-progress"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and printed[-1].startswith("PASS:"), printed[-5:]
    assert "--torch-optimizer" in "\n".join(printed) and out.exists()


def test_the_guide_quotes_lines_of_the_file_written_for_the_chapter_6_net():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "port-guide.md").read_text()
    quoted = guide.split("## Writing the port")[1].split("```python\n")[1].split("```")[0]
    source = write_port(ch6.make_full_net())
    assert quoted.strip() and all(line in source for line in quoted.splitlines())


@pytest.mark.slow
def test_a_writer_that_writes_a_wrong_setting_gives_exit_1_with_the_trap_named(tmp_path, capsys,
                                                                               monkeypatch):
    from compare.port.layers import batch_norm
    right = batch_norm.BatchNorm.write

    def torch_default_eps(self, seen):
        written = right(self, seen)
        written.module = written.module.replace("eps=1e-06", "eps=1e-05")
        return written
    monkeypatch.setattr(batch_norm.BatchNorm, "write", torch_default_eps)
    code = main(["write-port", "examples/ch6_extend/numpy_net.py:make_batchnorm_net",
                 "--out", str(tmp_path / "port.py"), "--no-progress"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 1 and printed[-1].startswith("FAIL:") and "bn_eps" in printed[-1], printed[-5:]


# cs231n's assignment-2 nets: layers as module-level functions, written from the calls of one
# training pass in the order they ran

def by_hand(net, x, bn_params=None):
    """The course's layer functions composed by hand in training mode (no dropout): the
    scores the port must give, independent of the writer and the checker."""
    out = x
    for i in range(1, net.num_layers):
        out, _ = cl.affine_forward(out, net.params[f"W{i}"], net.params[f"b{i}"])
        if net.normalization == "batchnorm":
            out, _ = cl.batchnorm_forward(out, net.params[f"gamma{i}"], net.params[f"beta{i}"],
                                          dict((bn_params or [{}] * net.num_layers)[i - 1], mode="train"))
        out, _ = cl.relu_forward(out)
    L = net.num_layers
    return cl.affine_forward(out, net.params[f"W{L}"], net.params[f"b{L}"])[0]


def randomised(net, seed=3):
    rng = np.random.RandomState(seed)
    for name, value in net.params.items():
        if value.ndim == 1:  # no zero bias or unit gamma hides a layout or a missing parameter
            value[:] = rng.uniform(0.5, 1.5, value.shape) if name.startswith("gamma") else rng.randn(*value.shape)
    return net


def test_cs231n_layer_functions_are_written_in_the_order_they_ran(tmp_path):
    source = write_port(fc.make_net())
    assert all(m.split(".")[0] == "torch" for m in imported_modules(source))
    module, _ = load_written(source, tmp_path)
    port = module.make_port()
    assert type(port).__name__ == "FullyConnectedNetPort"
    kinds = [type(m).__name__ for m in port.children()]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"] * 2 + ["Linear"]
    norms = [m for m in port.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [(m.eps, m.momentum) for m in norms] == [(1e-5, 0.1)] * 2  # cs231n's defaults, 1 - 0.9
    drops = [m for m in port.modules() if isinstance(m, torch.nn.Dropout)]
    assert [m.p for m in drops] == [1 - fc.KEEP] * 2  # cs231n's p keeps a unit; torch's drops one
    assert [(m.in_features, m.out_features) for m in port.modules() if isinstance(m, torch.nn.Linear)] \
        == [(784, 50), (50, 50), (50, 10)]


@pytest.mark.slow
def test_cs231n_load_numpy_params_gives_the_numpy_scores(tmp_path):
    net = randomised(fc.make_net())
    _, port = loaded_port(net, tmp_path)
    x, t = batch(net)
    # test mode: the course's loss(X) on the running statistics of one training pass, copied in
    # by hand (the course starts running_var at 0, torch at 1; the loader loads parameters)
    net.loss(x, t.argmax(axis=1))
    for m, bn in zip([m for m in port.modules() if isinstance(m, torch.nn.BatchNorm1d)], net.bn_params):
        m.running_mean.copy_(torch.as_tensor(bn["running_mean"]))
        m.running_var.copy_(torch.as_tensor(bn["running_var"]))
    np.testing.assert_allclose(scores_of(port, x, train=False), net.loss(x), rtol=1e-10, atol=1e-13)
    # training mode, batch norm on the batch's statistics
    net = randomised(fc.make_batchnorm_net())
    _, port = loaded_port(net, tmp_path)
    np.testing.assert_allclose(scores_of(port, x, train=True), by_hand(net, x), rtol=1e-9, atol=1e-12)
    # assignment 2's TwoLayerNet: affine_relu_forward's calls, then affine_forward
    net = randomised(fc.make_two_layer_net())
    _, port = loaded_port(net, tmp_path)
    assert [type(m).__name__ for m in port.children()] == ["Linear", "ReLU", "Linear"]
    np.testing.assert_allclose(scores_of(port, x, train=True), net.loss(x), rtol=1e-10, atol=1e-13)


def test_cs231n_bn_params_eps_and_momentum_are_read_where_set(tmp_path):
    net = randomised(fc.make_batchnorm_net())
    net.bn_params[0].update(eps=1e-3, momentum=0.8)
    _, port = loaded_port(net, tmp_path)
    norms = [m for m in port.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [(m.eps, m.momentum) for m in norms] == [(1e-3, pytest.approx(0.2)), (1e-5, 0.1)]
    x, _ = batch(net)
    np.testing.assert_allclose(scores_of(port, x, train=True), by_hand(net, x, net.bn_params),
                               rtol=1e-9, atol=1e-12)


def test_cs231n_reg_is_written_in_make_optimizer_on_the_weights_alone(tmp_path):
    for make in (fc.make_two_layer_net, fc.make_reg_net):  # the latter draws dropout masks
        net = make()
        module, port = loaded_port(net, tmp_path)
        groups = module.make_optimizer(port, lr=0.1).param_groups
        assert {g["weight_decay"] for g in groups} == {net.reg, 0.0}
        decayed = {id(p) for g in groups if g["weight_decay"] for p in g["params"]}
        assert decayed == {id(m.weight) for m in port.modules() if isinstance(m, torch.nn.Linear)}
    assert written_port(fc.make_net()).decay is None


def a1_net(seed=5):
    """Assignment 1's inline net with biases that are not 0 (no zero bias hides a layout)."""
    net = a1.make_net()
    rng = np.random.RandomState(seed)
    net.params["b1"][:] = 1e-3 * rng.randn(*net.params["b1"].shape)
    net.params["b2"][:] = 1e-3 * rng.randn(*net.params["b2"].shape)
    return net


def test_assignment_1s_inline_net_is_written_by_the_values_its_lines_make(tmp_path):
    net = a1_net()
    source = write_port(net)
    assert all(m.split(".")[0] == "torch" for m in imported_modules(source))
    assert "nn.Linear(784, 50)" in source and "nn.ReLU()" in source and "nn.Linear(50, 10)" in source
    assert "make_optimizer" not in source  # reg is 0 unless the loss is handed one
    module, _ = load_written(source, tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    x, t = batch(net)
    labels = t.argmax(axis=1)
    scores = scores_of(port, x, train=True)
    # the NumPy model's own scores (loss(X) with no y) and loss
    np.testing.assert_allclose(scores, net.loss(x), rtol=1e-10, atol=1e-15)
    with torch.no_grad():
        port_loss = float(module.loss(torch.as_tensor(scores), torch.as_tensor(labels)))
    assert port_loss == pytest.approx(net.loss(x, labels)[0], rel=1e-12)


def test_assignment_1s_reg_without_the_half_is_written_as_weight_decay_2_reg(tmp_path):
    net, reg = a1_net(), 0.05
    written = written_port(net, numpy_kwargs=f"reg={reg}")
    module, _ = load_written(written.source, tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    groups = module.make_optimizer(port, lr=0.1).param_groups
    decayed = [p for g in groups if g["weight_decay"] for p in g["params"]]
    assert {id(p) for p in decayed} == {id(m.weight) for m in port.modules()
                                        if isinstance(m, torch.nn.Linear)}
    # the course's reg * sum W**2 has gradient 2 * reg * W: torch's weight_decay is 2 * reg
    lam = {g["weight_decay"] for g in groups} - {0.0}
    assert len(lam) == 1 and lam.pop() == pytest.approx(2 * reg, rel=1e-12)
    lam = 2 * reg
    x, t = batch(net)
    labels = t.argmax(axis=1)
    with torch.no_grad():
        scores = port(torch.as_tensor(x))
        port_loss = float(module.loss(scores, torch.as_tensor(labels)))
        penalty = 0.5 * lam * sum(float((p ** 2).sum()) for p in decayed)
    assert port_loss + penalty == pytest.approx(net.loss(x, labels, reg=reg)[0], rel=1e-12)


@pytest.mark.slow
def test_the_command_writes_and_passes_assignment_1s_inline_net_with_its_reg(tmp_path, capsys):
    out = tmp_path / "port.py"
    assert main(["write-port", "tests/courses/cs231n_two_layer.py:make_net", "--out", str(out),
                 "--numpy-kwargs", "reg=0.05", "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].startswith("PASS:"), printed[-5:]
    assert "--numpy-kwargs reg=0.05" in printed[1] and "--torch-optimizer" in printed[1]


def test_a_layer_object_of_its_own_class_is_written_by_its_values(tmp_path):
    net = nnfs.make_net()
    dense1 = net.layers["dense1"]
    dense1.biases[:] = np.random.RandomState(4).randn(*dense1.biases.shape)
    source = write_port(net)
    assert "self.dense1 = nn.Linear(784, 64)" in source and "self.dense2 = nn.Linear(64, 10)" in source
    module, _ = load_written(source, tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    x, t = batch(net)
    out = x
    for layer in net.layers.values():  # the NumPy layers' own forward
        layer.forward(out)
        out = layer.output
    scores = scores_of(port, x, train=True)
    np.testing.assert_allclose(scores, out, rtol=1e-10, atol=1e-15)
    with torch.no_grad():
        port_loss = float(module.loss(torch.as_tensor(scores), torch.as_tensor(t)))
    # every probability lies inside the head's clip [1e-7, 1 - 1e-7]: the losses are one
    assert port_loss == pytest.approx(net.loss(x, t), rel=1e-12)


@pytest.mark.slow
def test_the_command_writes_and_passes_the_adapter_example(tmp_path, capsys):
    out = tmp_path / "port.py"
    assert main(["write-port", "examples/nnfs_style/adapter.py:make_net", "--out", str(out),
                 "--no-progress"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("PASS:")


class SineDense:
    """A layer object no kind is named for, computing what no known kind computes."""

    def __init__(self, n_in, n_out):
        self.W = 0.1 * np.random.RandomState(0).randn(n_in, n_out)

    def forward(self, x):
        return np.sin(x @ self.W)

    def backward(self, dout):
        return dout


def sine_layer_net():
    net = ch5.make_net()
    hidden = net.params["W1"].shape[1]
    net.layers["Sine"] = SineDense(hidden, hidden)
    net.params["W_sine"] = net.layers["Sine"].W
    for key in list(net.layers)[1:-1]:  # after the first affine: Affine1, Sine, Relu1, ...
        net.layers.move_to_end(key)
    return net


class SineNet:
    """A net with no layers whose hidden line no known kind computes."""

    def __init__(self):
        rng = np.random.RandomState(0)
        self.params = {"W1": 0.01 * rng.randn(784, 20), "b1": np.zeros(20),
                       "W2": 0.1 * rng.randn(20, 10), "b2": np.zeros(10)}

    def loss(self, x, t):
        p = self.params
        h = np.sin(x @ p["W1"] + p["b1"])
        scores = h @ p["W2"] + p["b2"]
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -np.sum(log_p * t) / len(x)


def test_what_no_known_kind_reproduces_is_refused_naming_it():
    with pytest.raises(CannotWrite, match=r"layers\['Sine'\] \(SineDense\).*no known kind "
                                          r"reproduces its output from its input and its arrays \(W_sine\)"):
        write_port(sine_layer_net())
    with pytest.raises(CannotWrite, match=r"no known kind reproduces mu, made at layerless.py:\d+ "
                                          r"\(in _forward\): mu = z1.mean"):
        write_port(layerless.ResidualNet(), *layerless.batch())


def test_the_command_refuses_a_line_no_known_kind_reproduces_with_exit_2(tmp_path, capsys):
    (tmp_path / "sine.py").write_text(textwrap.dedent("""
        import sys
        sys.path.insert(0, %r)
        from test_write_port import SineNet
    """ % str(Path(__file__).parent)))
    out = tmp_path / "port.py"
    assert main(["write-port", f"{tmp_path / 'sine.py'}:SineNet", "--out", str(out),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no known kind reproduces h, made at test_write_port.py:" in err[0]
    assert "h = np.sin(x @ p[" in err[0] and not out.exists()


def test_a_loss_that_is_no_penalty_on_the_weights_is_not_fitted_as_one():
    # the mean squared error less a cross-entropy fits some lambda at one point, at no other
    net = regression.make_net()
    rng = np.random.RandomState(0)
    x = rng.randn(8, net.params["W1"].shape[0])
    t = rng.randn(8, net.params["W2"].shape[1])
    with pytest.raises(CannotWrite, match="its loss is no known loss of y"):
        write_port(net, x, t)


class OutInNet:
    """A net with no layers whose weights are (out, in), used as ``x @ W.T``."""

    def __init__(self):
        rng = np.random.RandomState(0)
        self.params = {"W1": 0.3 * rng.randn(5, layerless.D), "b1": 0.1 * rng.randn(5),
                       "W2": 0.3 * rng.randn(layerless.C, 5), "b2": 0.1 * rng.randn(layerless.C)}

    def predict(self, x):
        p = self.params
        h = np.tanh(x @ p["W1"].T + p["b1"])
        return h @ p["W2"].T + p["b2"]

    def loss(self, x, t):
        s = self.predict(x)
        z = s - s.max(axis=1, keepdims=True)
        return -(z - np.log(np.exp(z).sum(axis=1, keepdims=True)))[np.arange(len(t)), t].mean()


def test_a_weight_used_as_x_at_w_t_is_loaded_as_it_is(tmp_path):
    x, t = layerless.batch()
    source = write_port(OutInNet(), x, t)
    assert "port.affine1.weight.copy_(torch.as_tensor(params['W1']))" in source
    assert "nn.Linear(6, 5)" in source and "nn.Tanh()" in source


def dlai_batch(binary):
    rng = np.random.RandomState(0)
    x = rng.rand(16, 784)
    if binary:  # (N, 1) 0/1 labels, as the course's Y (1, m) transposed
        return x, (x[:, :392].sum(1) > x[:, 392:].sum(1)).astype(float)[:, None]
    return x, np.eye(10)[rng.randint(0, 10, 16)]


@pytest.mark.parametrize("binary", [True, False], ids=["sigmoid", "softmax"])
def test_the_courses_features_first_calls_are_written_by_their_values(binary, tmp_path):
    make = dlai.make_net if binary else dlai.make_softmax_net
    net = make()
    rng = np.random.RandomState(2)
    for name in net.params:  # biases that are not 0
        if name.startswith("b"):
            net.params[name][:] = 0.1 * rng.randn(*net.params[name].shape)
    x, t = dlai_batch(binary)
    source = write_port(net, x, t)
    # W (out, in) is nn.Linear's weight as it is; b (out, 1) its bias reshaped
    assert "port.linear1.weight.copy_(torch.as_tensor(params['W1']))" in source
    assert "port.linear1.bias.copy_(torch.as_tensor(params['b1']).reshape(-1))" in source
    module, _ = load_written(source, tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    out = scores_of(port, x, train=True)
    AL, _ = dlai.L_model_forward(x.T, net.params, net.output_activation)  # the course's own pass
    if not binary:  # the port stops at the scores; the course's AL is their softmax
        out = np.exp(out - out.max(axis=1, keepdims=True))
        out /= out.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, AL.T, rtol=1e-10, atol=1e-14)
    report = check_port(make(), module.make_port(), x, t)
    assert report.passed, report.to_text()


INLINE = [("TanhNet", layerless.TanhNet, layerless.batch), ("OutInNet", OutInNet, layerless.batch),
          ("GroupedParamsMLP", gp.make_net, lambda: (np.random.RandomState(0).randn(8, gp.D_IN),
                                                     np.random.RandomState(1).randint(0, gp.CLASSES, 8))),
          ("equal hidden sizes", gp.make_equal_hidden_net,
           lambda: (np.random.RandomState(0).randn(8, gp.D_IN),
                    np.random.RandomState(1).randint(0, gp.CLASSES, 8)))]


@pytest.mark.parametrize("name, make, data", INLINE, ids=[n for n, _, _ in INLINE])
def test_the_written_port_of_an_inline_net_passes_its_check(name, make, data, tmp_path):
    x, t = data()
    module, _ = load_written(write_port(make(), x, t), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, make().params)
    np.testing.assert_allclose(scores_of(port, x, train=True), make().predict(x), rtol=1e-10, atol=1e-14)
    report = check_port(make(), module.make_port(), x, t)
    assert report.passed, report.to_text()


def test_the_guide_quotes_lines_of_the_file_written_for_a_cs231n_net():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "port-guide.md").read_text()
    quoted = guide.split("## Writing the port")[1].split("```python\n")[2].split("```")[0]
    source = write_port(fc.make_reg_net())
    assert quoted.strip() and all(line in source for line in quoted.splitlines())


CS231N = [fc.make_two_layer_net, fc.make_plain_net, fc.make_batchnorm_net, fc.make_dropout_net,
          fc.make_net, fc.make_reg_net]


@pytest.mark.slow
@pytest.mark.parametrize("make", CS231N, ids=[m.__name__ for m in CS231N])
def test_the_written_port_of_a_cs231n_net_passes_its_check(make, tmp_path):
    module, _ = load_written(write_port(make()), tmp_path)
    optimizer = getattr(module, "make_optimizer", None)
    report = check_port(make(), module.make_port(), torch_optimizer=optimizer)
    assert report.passed, report.to_text()
    assert bool(report.known) == (optimizer is not None or "batchnorm" in make.__name__ or
                                  make is fc.make_net)


# --- the book's second volume: time layers -------------------------------------------------

TOKENS = Path(__file__).resolve().parents[1] / "examples" / "rnn_lm" / "tokens.npz"


def token_batch():
    data = np.load(TOKENS)
    return data["x"], data["t"]


def named_params(model, names):
    """The NumPy arrays by the names the book's layers give them (``TimeLSTM0.Wx``), written
    out here from the model's own lists: ``names`` in the order of ``model.params``, None
    where an array is listed again (tied)."""
    return {name: p for name, p in zip(names, model.params) if name is not None}


RNNLM_NAMES = ["TimeEmbedding0.W", "TimeLSTM0.Wx", "TimeLSTM0.Wh", "TimeLSTM0.b",
               "TimeAffine0.W", "TimeAffine0.b"]
SIMPLE_NAMES = [n.replace("LSTM", "RNN") for n in RNNLM_NAMES]
BETTER_NAMES = ["TimeEmbedding0.W", "TimeLSTM0.Wx", "TimeLSTM0.Wh", "TimeLSTM0.b",
                "TimeLSTM1.Wx", "TimeLSTM1.Wh", "TimeLSTM1.b", None, "TimeAffine0.b"]


def float32_close(actual, expected):
    # the check's float32 round-off (rtol 1e-4, atol rtol x max|expected|)
    expected = np.asarray(expected, np.float64)
    atol = 1e-4 * float(np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=1e-4, atol=atol)


def test_the_books_lstm_is_written_as_nn_lstm_batch_first_with_bias_hh_frozen_at_zero(tmp_path):
    x, t = token_batch()
    module, _ = load_written(write_port(numpy_lm.make_rnnlm(), x, t), tmp_path)
    port = module.make_port()
    kinds = {name: type(m).__name__ for name, m in port.named_children()}
    assert kinds == {"timeembedding0": "Embedding", "timelstm0": "LSTM", "timeaffine0": "Linear"}
    assert port.timelstm0.batch_first
    # bias_hh frozen at 0: the NumPy b trains as bias_ih alone (the double_bias trap)
    assert not port.timelstm0.bias_hh_l0.requires_grad and not port.timelstm0.bias_hh_l0.any()
    assert all(p.dtype == torch.float32 for p in port.parameters())  # the book's 'f'


@pytest.mark.parametrize("make, names", [(numpy_lm.make_rnnlm, RNNLM_NAMES),
                                         (numpy_lm.make_simple_rnnlm, SIMPLE_NAMES)],
                         ids=["Rnnlm", "SimpleRnnlm"])
def test_recurrent_load_numpy_params_gives_the_numpy_scores_call_after_call_and_its_loss(
        make, names, tmp_path):
    x, t = token_batch()
    net = make()
    module, _ = load_written(write_port(make(), x, t), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, named_params(net, names))
    # the second call starts from the state the first left, on both sides
    seen = []
    for _ in range(2):
        with torch.no_grad():
            scores = port(torch.as_tensor(x))
        seen.append(net.predict(x))
        float32_close(scores.numpy(), seen[-1])
    assert np.abs(seen[1] - seen[0]).max() > 1e-3  # the carried state shows
    net.reset_state()
    port.reset_state()
    expected = net.forward(x, t)
    with torch.no_grad():
        loss = module.loss(port(torch.as_tensor(x)), torch.as_tensor(t))
    float32_close(float(loss), expected)


def test_the_lstm_bias_gradient_is_the_numpy_b_gradient_with_its_blocks_in_torchs_order(tmp_path):
    x, t = token_batch()
    net = numpy_lm.make_rnnlm()
    module, _ = load_written(write_port(numpy_lm.make_rnnlm(), x, t), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, named_params(net, RNNLM_NAMES))
    net.forward(x, t)
    net.backward()
    module.loss(port(torch.as_tensor(x)), torch.as_tensor(t)).backward()
    H = net.params[2].shape[0]
    f, g, i, o = (net.grads[3][k * H:(k + 1) * H] for k in range(4))  # the book's blocks f, g, i, o
    float32_close(port.timelstm0.bias_ih_l0.grad.numpy(), np.concatenate([i, f, g, o]))
    assert port.timelstm0.bias_hh_l0.grad is None


def test_the_tied_output_weight_is_the_embeddings_parameter(tmp_path):
    xs, ts = book_lm.tokens()
    net = book_lm.make_lm()
    module, _ = load_written(write_port(book_lm.make_lm(), xs, ts), tmp_path)
    port = module.make_port()
    assert port.timeaffine0.weight is port.timeembedding0.weight
    assert [type(m).__name__ for m in port.modules()].count("Dropout") == 3
    assert {m.p for m in port.modules() if isinstance(m, torch.nn.Dropout)} == {0.5}
    module.load_numpy_params(port, named_params(net, BETTER_NAMES))
    port.eval()  # no draw: the NumPy predict's evaluation mode
    with torch.no_grad():
        scores = port(torch.as_tensor(xs))
    float32_close(scores.numpy(), net.predict(xs, train_flg=False))
    assert not written_port(book_lm.make_untied_lm(), xs, ts).source.count(".weight = self.")


def test_the_books_gru_is_refused_naming_gru_convention():
    class TimeGRU:
        def __init__(self):
            self.params = [np.zeros((5, 12), "f"), np.zeros((4, 12), "f"), np.zeros(12, "f")]
            self.grads = [np.zeros_like(p) for p in self.params]

        def forward(self, xs):
            return np.zeros(xs.shape[:2] + (4,), "f")

        def reset_state(self):
            pass

    net = numpy_lm.make_rnnlm()
    gru = TimeGRU()
    net.layers[1] = gru
    net.params[1:4], net.grads[1:4] = gru.params, gru.grads
    with pytest.raises(CannotWrite, match="TimeGRU.*gru_convention"):
        write_port(net, *token_batch())


BOOK_TOKENS = Path(__file__).resolve().parent / "styles" / "book_vol2_tokens.npz"
RECURRENT = [("examples/rnn_lm/numpy_lm.py", "make_rnnlm", TOKENS),
             ("examples/rnn_lm/numpy_lm.py", "make_simple_rnnlm", TOKENS),
             ("tests/styles/book_vol2_lm.py", "make_lm", BOOK_TOKENS),
             ("tests/styles/book_vol2_lm.py", "make_untied_lm", BOOK_TOKENS),
             ("tests/styles/book_vol2_lm.py", "make_lm_no_dropout", BOOK_TOKENS)]


@pytest.mark.parametrize("path, factory, data", RECURRENT, ids=[f for _, f, _ in RECURRENT])
def test_the_written_port_of_a_recurrent_language_model_passes_its_check(path, factory, data,
                                                                          tmp_path, capsys):
    out = tmp_path / "port.py"
    code = main(["write-port", f"{path}:{factory}", "--out", str(out), "--data", str(data),
                 "--no-progress"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and printed[-1].startswith("PASS:"), printed[-8:]
    assert f"--data {data}" in printed[1]


def test_the_guide_quotes_lines_of_the_file_written_for_the_books_rnnlm():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "port-guide.md").read_text()
    quoted = guide.split("## Writing the port")[1].split("```python\n")[3].split("```")[0]
    source = write_port(numpy_lm.make_rnnlm(), *token_batch())
    assert quoted.strip() and all(line in source for line in quoted.splitlines())


# --- batch norm of a 4-D input -------------------------------------------------------------

def test_batch_norm_of_a_conv_output_is_written_per_activation_and_gives_the_numpy_scores(tmp_path):
    import zoo_layers as zoo
    net = zoo.conv_batchnorm_numpy()
    rng = np.random.RandomState(2)  # gamma and beta away from 1 and 0: a layout error shows
    net.params["gamma1"][:] = rng.uniform(0.5, 1.5, net.params["gamma1"].shape)
    net.params["beta1"][:] = rng.uniform(-0.5, 0.5, net.params["beta1"].shape)
    module, port = loaded_port(net, tmp_path)
    norm = port.batchnorm1
    assert type(norm).__name__ == "FlatBatchNorm1d" and norm.num_features == net.params["gamma1"].size
    x, _ = batch(net)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.predict(x, train_flg=True),
                               rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_the_written_port_of_a_conv_net_with_batch_norm_passes_its_check(tmp_path):
    import zoo_layers as zoo
    module, _ = load_written(write_port(zoo.conv_batchnorm_numpy()), tmp_path)
    report = check_port(zoo.conv_batchnorm_numpy(), module.make_port())
    assert report.passed, report.to_text()


# --- the functional style ------------------------------------------------------------------

def loaded_functional(net, tmp_path):
    module, _ = load_written(write_port(net, style="functional"), tmp_path, "functional_port")
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    return module, port


@pytest.mark.slow
@pytest.mark.parametrize("make", [ch5.make_net, ch7.make_small_net], ids=["ch5", "ch7"])
def test_the_functional_style_holds_parameters_and_gives_the_numpy_scores(make, tmp_path):
    net = make()
    net.params["b1"][:] = np.random.RandomState(3).randn(*net.params["b1"].shape)
    _, port = loaded_functional(net, tmp_path)
    assert not list(port.children())  # no module: F calls on the port's own parameters
    assert len(list(port.parameters())) == len(net.params)
    x, _ = batch(net)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.predict(x), rtol=1e-10, atol=1e-13)


def test_the_functional_batch_norm_and_book_dropout_give_the_numpy_evaluation_scores(tmp_path):
    net = ch6.make_full_net()
    rng = np.random.RandomState(1)
    for name in ("gamma1", "beta1", "gamma2", "beta2"):
        net.params[name][:] = rng.uniform(0.5, 1.5, net.params[name].shape)
    module, port = loaded_functional(net, tmp_path)
    assert sorted(dict(port.named_buffers())) == ["running_mean_batchnorm1", "running_mean_batchnorm2",
                                                  "running_var_batchnorm1", "running_var_batchnorm2"]
    x, _ = batch(net)
    # evaluation: the book's dropout scales by 1 - p; the running statistics, copied in, used
    for i, name in enumerate(("BatchNorm1", "BatchNorm2"), start=1):
        layer = net.layers[name]
        layer.running_mean = rng.randn(100) * 0.1
        layer.running_var = rng.uniform(0.5, 1.5, 100)
        getattr(port, f"running_mean_batchnorm{i}").copy_(torch.as_tensor(layer.running_mean))
        getattr(port, f"running_var_batchnorm{i}").copy_(torch.as_tensor(layer.running_var))
    np.testing.assert_allclose(scores_of(port, x, train=False), net.predict(x, train_flg=False),
                               rtol=1e-9, atol=1e-12)


def test_the_functional_style_refuses_a_recurrent_layer_naming_the_modules_style():
    with pytest.raises(CannotWrite, match="TimeLSTM0.*--style modules"):
        write_port(numpy_lm.make_rnnlm(), *token_batch(), style="functional")
    with pytest.raises(CannotWrite, match="style 'graph'"):
        write_port(ch5.make_net(), style="graph")


FUNCTIONAL = [ch5.make_net, ch6.make_full_net, ch7.make_small_net, fc.make_net, fc.make_reg_net]


@pytest.mark.slow
@pytest.mark.parametrize("make", FUNCTIONAL, ids=[m.__module__.split(".")[-1] + ":" + m.__name__
                                                  for m in FUNCTIONAL])
def test_the_functional_written_port_passes_its_check(make, tmp_path):
    module, _ = load_written(write_port(make(), style="functional"), tmp_path)
    report = check_port(make(), module.make_port(), torch_optimizer=getattr(module, "make_optimizer", None))
    assert report.passed, report.to_text()


def test_the_guide_quotes_lines_of_the_functional_file_written_for_the_chapter_6_net():
    guide = (Path(__file__).resolve().parents[1] / "docs" / "port-guide.md").read_text()
    quoted = guide.split("## Writing the port")[1].split("```python\n")[4].split("```")[0]
    source = write_port(ch6.make_full_net(), style="functional")
    assert quoted.strip() and all(line in source for line in quoted.splitlines())


class TorchOrderLSTM(numpy_lm.LSTM):
    """One step with its gate blocks sliced i, f, g, o (torch's order, as many learners
    write it) instead of the book's f, g, i, o."""

    def forward(self, x, h_prev, c_prev):
        Wx, Wh, b = self.params
        H = h_prev.shape[1]
        A = x @ Wx + h_prev @ Wh + b
        i, f = numpy_lm.sigmoid(A[:, :H]), numpy_lm.sigmoid(A[:, H:2 * H])
        g, o = np.tanh(A[:, 2 * H:3 * H]), numpy_lm.sigmoid(A[:, 3 * H:])
        c = f * c_prev + g * i
        return o * np.tanh(c), c


class TimeLSTM(numpy_lm.TimeLSTM):
    """The book's time layer over ``TorchOrderLSTM`` steps (named as the book's, whose
    arrays the book's door names by role)."""

    def forward(self, xs):
        Wx, Wh, b = self.params
        N, T, _ = xs.shape
        H = Wh.shape[0]
        h = c = np.zeros((N, H), dtype=xs.dtype)
        hs = np.empty((N, T, H), dtype=xs.dtype)
        for t in range(T):
            h, c = TorchOrderLSTM(Wx, Wh, b).forward(xs[:, t, :], h, c)
            hs[:, t, :] = h
        return hs


def test_the_gate_order_is_read_off_the_numpy_pass(tmp_path):
    x, t = token_batch()

    def make():
        net = numpy_lm.make_rnnlm()
        net.layers[1] = TimeLSTM(*net.layers[1].params)
        return net
    source = write_port(make(), x, t)
    assert "fgio_to_ifgo" not in source and "gate_order" not in source  # nothing to permute
    module, _ = load_written(source, tmp_path)
    port = module.make_port()
    net = make()
    module.load_numpy_params(port, named_params(net, RNNLM_NAMES))
    with torch.no_grad():
        float32_close(port(torch.as_tensor(x)).numpy(), net.predict(x))


@pytest.mark.parametrize("eps", [None, 1e-3])
def test_cs231n_layer_norm_is_written_as_nn_layernorm_with_its_eps(tmp_path, eps):
    """The eps read off the pass (ln_param's, else the course's 1e-5); the written port's
    scores are the NumPy loss(X)'s, and its check passes."""
    net = randomised(fc.make_layernorm_net(eps))
    _, port = loaded_port(net, tmp_path)
    norms = [m for m in port.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert [(m.normalized_shape, m.eps) for m in norms] == [((50,), eps or 1e-5)] * 2
    x, _ = batch(net)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.loss(x), rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_a_written_layer_norm_net_passes_its_check(tmp_path):
    out = tmp_path / "ln_port.py"
    assert main(["write-port", "tests/courses/cs231n_fc_net.py:make_layernorm_net", "--out",
                 str(out), "--no-progress"]) == 0


# --- activations with a setting, and layer norm, read off the pass -------------------------

from examples.traps import book_layers  # noqa: E402


@pytest.mark.parametrize("make, module, setting", [
    (book_layers.leaky_net, torch.nn.LeakyReLU, ("negative_slope", 0.1)),
    (book_layers.elu_net, torch.nn.ELU, ("alpha", 0.5)),
    (book_layers.gelu_net, torch.nn.GELU, ("approximate", "tanh")),
    (book_layers.tanh_net, torch.nn.Tanh, None),
], ids=["leaky_relu", "elu", "gelu_tanh", "tanh"])
def test_an_activation_is_written_with_the_setting_its_pass_computes(make, module, setting, tmp_path):
    """The slope or alpha is the layer's own (0.1, 0.5: not torch's defaults 0.01, 1.0), read
    off its pass; the written port's scores are the NumPy predict's."""
    net = make()
    _, port = loaded_port(net, tmp_path)
    [act] = [m for m in port.modules() if isinstance(m, module)]
    if setting is not None:
        assert getattr(act, setting[0]) == setting[1]
    x, _ = batch(net)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.predict(x), rtol=1e-10, atol=1e-12)


def test_a_layer_norm_object_is_written_with_its_eps(tmp_path):
    net = book_layers.layer_norm_net()
    _, port = loaded_port(net, tmp_path)
    [norm] = [m for m in port.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert (norm.normalized_shape, norm.eps) == ((12,), 1e-3)
    x, _ = batch(net)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.predict(x), rtol=1e-10, atol=1e-12)


def test_a_norm_over_the_batch_axis_is_refused_naming_the_layer(tmp_path, capsys):
    """No nn.LayerNorm normalises each feature over the batch: not written as one."""
    out = tmp_path / "port.py"
    assert main(["write-port", "examples/traps/book_layers.py:batch_axis_norm_net", "--out",
                 str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layers['LayerNorm']" in err[0] and "last axis" in err[0]
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("factory", ["leaky_net", "elu_net", "gelu_net", "layer_norm_net"])
def test_the_written_port_of_a_book_layer_net_passes_its_check(factory, tmp_path):
    out = tmp_path / "port.py"
    assert main(["write-port", f"examples/traps/book_layers.py:{factory}", "--out", str(out),
                 "--no-progress"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("make", [numpy_lm.make_rnnlm, numpy_lm.make_better_rnnlm],
                         ids=["Rnnlm", "BetterRnnlm"])
def test_a_written_language_model_trains_over_windows_as_the_book(make, tmp_path):
    """The written port's frozen bias_hh, carried state and tie hold in training: over 5
    windows of the corpus, clipped, it trains as the NumPy model (dropout drawn alike)."""
    from compare.port import check_training
    corpus = np.load(Path(numpy_lm.__file__).with_name("corpus.npz"))["corpus"]
    x, t = np.load(Path(numpy_lm.__file__).with_name("tokens.npz")).values()
    module, _ = load_written(write_port(make(), x, t), tmp_path)
    report = check_training(make(), module.make_port(), corpus, None, steps=5, batch_size=4,
                            time_size=5, lr=0.5, max_grad_norm=0.25)
    assert report.passed, report.to_text()


def _lower_case_embedding(W):
    """A learner's embedding keeping its weight as ``self.w`` too (the book writes ``W``)."""
    layer = type("TimeEmbedding", (numpy_lm.TimeEmbedding,), {})(W)
    layer.w = W
    return layer


def test_a_parameter_held_under_a_lower_case_name_is_written(tmp_path):
    from compare.port.reference import reference_side
    net = numpy_lm.make_rnnlm()
    net.layers[0] = _lower_case_embedding(net.layers[0].params[0])
    x, t = token_batch()
    module, _ = load_written(write_port(net, x, t), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, reference_side(net).params)
    torch.testing.assert_close(port.timeembedding0.weight.detach(), torch.from_numpy(net.params[0]))


FEATURES_FIRST = [("CourseInlineNet", ff.CourseInlineNet, 1), ("NetworkStyleNet", ff.NetworkStyleNet, 3),
                  ("ArchitectureNet", ff.ArchitectureNet, 1)]


def features_first_targets(t, classes):
    """The targets as the features-first net takes them: (1, m) 0/1, or one-hot (C, m)."""
    return t.reshape(1, -1) if classes == 1 else np.eye(classes)[t].T


@pytest.mark.parametrize("name, make, classes", FEATURES_FIRST, ids=[n for n, _, _ in FEATURES_FIRST])
def test_a_features_first_inline_net_is_written_by_its_values(name, make, classes, tmp_path):
    x, t = ff.batch(classes)
    net = make()
    source = write_port(net, x, t)
    # W (out, in) is nn.Linear's weight as it is; b (out, 1) its bias reshaped
    assert "port.affine1.weight.copy_(torch.as_tensor(params['W1']))" in source
    assert "port.affine1.bias.copy_(torch.as_tensor(params['b1']).reshape(-1))" in source
    module, _ = load_written(source, tmp_path)
    port = module.make_port()
    assert isinstance(list(port.children())[-1], torch.nn.Linear)  # the sigmoid head is the loss's
    module.load_numpy_params(port, net.params)
    logits = scores_of(port, x, train=True)
    # the net's own forward (features first), transposed: the sigmoid of the port's logits
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), net.predict(x.T).T, rtol=1e-10, atol=1e-14)
    with torch.no_grad():
        port_loss = float(module.loss(torch.as_tensor(logits), torch.as_tensor(t)))
    own = {"eps": 0.0} if make is ff.ArchitectureNet else {}  # its 0.001 in the logs left out
    assert port_loss == pytest.approx(net.loss(x.T, features_first_targets(t, classes), **own), rel=1e-10)


@pytest.mark.parametrize("name, make, classes", FEATURES_FIRST, ids=[n for n, _, _ in FEATURES_FIRST])
def test_the_written_port_of_a_features_first_inline_net_passes_its_check(name, make, classes, tmp_path):
    x, t = ff.batch(classes)
    written = written_port(make(), x, t)
    module, _ = load_written(written.source, tmp_path)
    # one output: torch's own binary loss, whose eps the check sizes; more: the loss written
    assert written.loss_given == ("binary_cross_entropy_with_logits" if classes == 1 else "loss")
    loss = module.loss if classes > 1 else written.loss_given
    report = check_port(make(), module.make_port(), x, t, loss=loss)
    assert report.passed, report.to_text()
    if make is ff.ArchitectureNet:
        assert "log_eps" in report.to_text()


def test_a_step_alike_with_and_without_a_relu_is_told_apart_at_the_parameters_negated(monkeypatch):
    # the last bias outweighs the rest: every last Z is positive, so "affine then ReLU" gives
    # it too; at the parameters negated it is negative and only the affine gives it
    x, t = ff.batch(1)
    assert "nn.Linear(4, 1)" in write_port(ff.ArchitectureNet(), x, t)
    monkeypatch.setattr(by_value, "negated", lambda params: None)
    with pytest.raises(CannotWrite, match=r"Z_curr.*, made at features_first_inline.py:\d+ \(in "
                                          r"single_layer_forward\): Z_curr = np.dot.*affine\(W3, b3\) "
                                          r"and affine\(W3, b3\) then relu alike"):
        write_port(ff.ArchitectureNet(), x, t)


def test_the_command_writes_and_passes_a_features_first_inline_net(tmp_path, capsys):
    x, t = ff.batch(3)
    np.savez(tmp_path / "data.npz", x=x, t=t)
    out = tmp_path / "port.py"
    assert main(["write-port", "tests/styles/features_first_inline.py:NetworkStyleNet", "--out", str(out),
                 "--data", str(tmp_path / "data.npz"), "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert f"--loss {out}:loss" in printed[1] and printed[-1].startswith("PASS:"), printed[-5:]


@pytest.mark.parametrize("l2", [0.0, pytest.param(0.01, marks=pytest.mark.slow)], ids=["no penalty", "l2"])
def test_a_softmax_layer_before_a_loss_on_its_probabilities_is_the_losss_head(l2, tmp_path):
    x, t = sh.batch()
    net = sh.SoftmaxLayerNet(l2=l2)
    written = written_port(net, x, t)
    assert "self.softmax" not in written.source and "F.cross_entropy" in written.source
    assert "double_softmax" in written.source  # the trap a port returning probabilities sets
    module, _ = load_written(written.source, tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    scores = scores_of(port, x, train=True)
    assert isinstance(list(port.children())[-1], torch.nn.Linear)
    # the NumPy model's own probabilities are the softmax of the port's scores
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(axis=1, keepdims=True), net.predict(x), rtol=1e-10, atol=1e-15)
    with torch.no_grad():
        port_loss = float(module.loss(torch.as_tensor(scores), torch.as_tensor(t)))
    # its l2 * sum W**2 (no half) has gradient 2 * l2 * W: torch's weight_decay is 2 * l2
    assert written.decay == (None if l2 == 0 else pytest.approx(2 * l2, rel=1e-12))
    penalty = l2 * sum(float(np.sum(net.params[w] ** 2)) for w in ("W1", "W2"))
    # every probability lies inside the clip [1e-7, 1 - 1e-7] here: the losses are one
    assert port_loss + penalty == pytest.approx(net.loss(x, t), rel=1e-12)
    report = check_port(sh.SoftmaxLayerNet(l2=l2), module.make_port(), x, t,
                        torch_optimizer=module.make_optimizer if written.decay else None)
    assert report.passed, report.to_text()


class BiasDecayNet(sh.SoftmaxLayerNet):
    """The penalty on the first layer's weights and biases alone (nnfs's per-layer regularizers)."""

    def loss(self, x, t):
        data = self.loss_function.calculate(self.predict(x), t)
        return data + 0.01 * (np.sum(self.params["W1"] ** 2) + np.sum(self.params["b1"] ** 2))


def test_a_penalty_on_some_layers_weights_and_biases_is_written_on_those_parameters(tmp_path):
    x, t = sh.batch()
    net = BiasDecayNet()
    written = written_port(net, x, t)
    assert written.decay == {"W1": pytest.approx(0.02, rel=1e-12), "b1": pytest.approx(0.02, rel=1e-12)}
    module, _ = load_written(written.source, tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    groups = module.make_optimizer(port, lr=0.1).param_groups
    decayed = {id(p): g["weight_decay"] for g in groups for p in g["params"] if g["weight_decay"]}
    assert decayed == {id(port.dense1.weight): 0.02, id(port.dense1.bias): 0.02}
    # its 0.01 * sum(W1**2 + b1**2) is 0.5 * 0.02 * the same: the port's loss plus it is the NumPy loss
    with torch.no_grad():
        scores = port(torch.as_tensor(x))
        port_loss = float(module.loss(scores, torch.as_tensor(t)))
        penalty = 0.01 * float((port.dense1.weight ** 2).sum() + (port.dense1.bias ** 2).sum())
    assert port_loss + penalty == pytest.approx(net.loss(x, t), rel=1e-12)


class ScaledLossNet(sh.SoftmaxLayerNet):
    """A loss that is no cross-entropy of the probabilities plus a penalty: 1.5 times it."""

    def loss(self, x, t):
        return 1.5 * self.loss_function.calculate(self.predict(x), t)


def test_a_softmax_head_whose_loss_no_penalty_explains_is_refused_naming_it():
    x, t = sh.batch()
    with pytest.raises(CannotWrite, match=r"layers\['softmax'\] \(Activation_Softmax\) is the head of "
                                          r"softmax_loss .* nor one plus a penalty 0.5 \* lambda \* "
                                          r"sum\(p\*\*2\) on some of its parameters"):
        write_port(ScaledLossNet(), x, t)


@pytest.mark.slow
def test_the_written_port_with_penalties_on_some_parameters_passes_its_check(tmp_path):
    x, t = sh.batch()
    module, _ = load_written(written_port(BiasDecayNet(), x, t).source, tmp_path)
    report = check_port(BiasDecayNet(), module.make_port(), x, t, torch_optimizer=module.make_optimizer)
    assert report.passed, report.to_text()
    assert "weight_decay" in report.to_text()


class Squash:
    """A sigmoid of a class no kind is named for."""

    def forward(self, inputs):
        self.output = 1 / (1 + np.exp(-inputs))


class SigmoidRegressionNet(sh.SoftmaxLayerNet):
    """A last sigmoid layer object before a squared error: no loss's head, a layer of its own."""

    def __init__(self):
        super().__init__()
        dense2 = sh.nn_.Layer_Dense(sh.HIDDEN, 1)
        dense2.weights *= 30
        dense2.biases[:] = -0.5
        self.layers = {"dense1": self.layers["dense1"], "relu1": self.layers["relu1"], "dense2": dense2,
                       "squash": Squash()}
        self.params.update(W2=dense2.weights, b2=dense2.biases)

    def loss(self, x, t):
        return float(np.mean((self.predict(x) - t) ** 2))


def test_a_last_sigmoid_layer_before_a_squared_error_stays_a_layer(tmp_path):
    x = sh.batch()[0]
    t = np.random.RandomState(5).rand(len(x), 1)
    net = SigmoidRegressionNet()
    module, _ = load_written(write_port(net, x, t), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    assert isinstance(list(port.children())[-1], torch.nn.Sigmoid)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.predict(x), rtol=1e-10, atol=1e-15)


def test_a_features_first_inline_softmax_net_is_written_and_passes_its_check(tmp_path):
    x, t = ff.batch(ff.C)
    net = ff.CourseSoftmaxNet()
    module, _ = load_written(write_port(net, x, t), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    scores = scores_of(port, x, train=True)
    p = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p / p.sum(axis=1, keepdims=True), net.predict(x.T).T, rtol=1e-10, atol=1e-15)
    with torch.no_grad():
        port_loss = float(module.loss(torch.as_tensor(scores), torch.as_tensor(t)))
    assert port_loss == pytest.approx(net.loss(x.T, features_first_targets(t, ff.C), eps=0.0), rel=1e-10)
    report = check_port(ff.CourseSoftmaxNet(), module.make_port(), x, t)
    assert report.passed, report.to_text()
    assert "log_eps" in report.to_text()  # its 1e-8 in the log, named and sized


@pytest.mark.slow
def test_input_shape_is_passed_to_the_pass_and_to_the_check(tmp_path, capsys):
    out = tmp_path / "port.py"
    assert main(["write-port", "examples/ch7_conv/numpy_net.py:make_small_net", "--input-shape",
                 "1,28,28", "--out", str(out), "--no-progress"]) == 0
    assert "--input-shape 1,28,28" in capsys.readouterr().out


def test_an_inline_batch_norm_of_several_lines_is_written_as_batchnorm1d_with_its_eps(tmp_path):
    """``mu``, ``var`` and ``X_norm`` are the step's own lines: the port's batch norm, in
    train mode, gives the NumPy forward's scores."""
    x, t = ib.batch()
    net = ib.InlineBatchNormNet()
    module, _ = load_written(write_port(net, x, t), tmp_path)
    port = module.make_port()
    module.load_numpy_params(port, net.params)
    [norm] = [m for m in port.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert (norm.num_features, norm.eps) == (ib.H, ib.EPS)
    np.testing.assert_allclose(scores_of(port, x, train=True), net.predict(x), rtol=1e-10, atol=1e-12)
    assert "weight_decay\": 0.001" in write_port(net, x, t)  # on W1, W2: no row (1, H) is a weight


def test_an_inline_batch_norm_with_an_eps_of_no_usual_value_is_refused_at_its_first_line():
    with pytest.raises(CannotWrite, match=r"no known kind reproduces mu, made at inline_batch_norm.py:\d+ "
                                          r"\(in bn_forward\): mu = np.mean\(X, axis=0\)"):
        write_port(ib.InlineBatchNormNet(eps=1e-3), *ib.batch())


def test_the_written_port_of_an_inline_batch_norm_net_passes_its_check(tmp_path):
    x, t = ib.batch()
    module, _ = load_written(write_port(ib.InlineBatchNormNet(), x, t), tmp_path)
    report = check_port(ib.InlineBatchNormNet(), module.make_port(), x, t,
                        torch_optimizer=module.make_optimizer)
    assert report.passed, report.to_text()
