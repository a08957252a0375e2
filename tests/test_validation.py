"""Bad input is a clear TypeError or ValueError that names the argument, on both sides.

One test per kind of bad input, each run on the NumPy and the torch side with
the same values (``side.arr`` hands each side its own array type; see
``ImplSide`` in conftest.py). MNIST's broken files are in test_mnist.py.
"""
import re
import warnings

import numpy as np
import pytest
import torch

import numpy_impl
import torch_impl


def names(excinfo, name, given=None):
    """The message mentions ``name`` as a word of its own (``x`` but not ``x_train``),
    and ``given`` (what was passed, as the message shows it) when given."""
    message = str(excinfo.value)
    assert re.search(rf"(?<![\w.\[']){re.escape(name)}(?![\w'\]])", message), message
    if given is not None:
        assert given in message, message


# -- integer and boolean arrays where floats are needed -----------------------

@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, bool])
def test_integer_or_boolean_point_is_refused(side, dtype):
    # the book's trap: an integer x + h truncates, so [3, 4] gives gradients 25000, 35000
    with pytest.raises(TypeError) as exc:
        side.mod.numerical_gradient(side.mod.function_2, side.arr([3, 4], dtype))
    names(exc, "x")
    with pytest.raises(TypeError) as exc:
        side.mod.gradient_descent(side.mod.function_2, side.arr([3, 4], dtype))
    names(exc, "init_x")


@pytest.mark.parametrize("dtype", [np.int64, bool])
def test_integer_or_boolean_network_input_is_refused(side, dtype):
    net = side.net()
    _, t = side.batch()
    with pytest.raises(TypeError) as exc:
        net.loss(side.arr(np.ones((5, 4)), dtype), t)
    names(exc, "x")


def test_float_class_indices_are_refused(side):
    net = side.net()
    x, _ = side.batch()
    with pytest.raises(TypeError) as exc:
        net.loss(x, side.arr([0.0, 1.0, 0.0, 1.0, 1.0]))
    names(exc, "t")


# -- NaN and infinity ---------------------------------------------------------

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused(side, bad):
    net = side.net()
    x, t = side.batch()
    x_bad = side.np(x).copy()
    x_bad[2, 1] = bad
    with pytest.raises(ValueError) as exc:
        net.loss(side.arr(x_bad), t)
    names(exc, "x")
    with pytest.raises(ValueError) as exc:
        side.mod.numerical_gradient(side.mod.function_2, side.arr([1.0, bad]))
    names(exc, "x")
    with pytest.raises(ValueError) as exc:
        side.mod.gradient_descent(side.mod.function_2, side.arr([bad, 1.0]))
    names(exc, "init_x")
    one_hot = np.eye(2)[[0, 1, 0, 1, 1]]
    one_hot[0, 0] = bad
    with pytest.raises(ValueError) as exc:
        net.loss(x, side.arr(one_hot))
    names(exc, "t")
    with pytest.raises(ValueError) as exc:
        side.mod.train(net, side.arr(x_bad), t, x, t, iters_num=1, batch_size=2)
    names(exc, "x_train")


@pytest.mark.parametrize("key", ["W1", "b1", "W2", "b2"])
def test_non_finite_parameters_are_refused_by_train(side, key):
    # Without the check the run would start, and "diverge" at iteration 0.
    net = side.net()
    net.params[key][0] = float("nan")
    x, t = side.batch()
    with pytest.raises(ValueError) as exc:
        side.mod.train(net, x, t, x, t, iters_num=1, batch_size=2)
    names(exc, f"net.params['{key}']")


# -- ranks and shapes ---------------------------------------------------------

@pytest.mark.parametrize("shape", [(4,), (1, 5, 4), (5, 3), (5, 5)])
def test_wrong_input_shape_is_refused(side, shape):
    net = side.net()
    _, t = side.batch()
    with pytest.raises(ValueError) as exc:
        net.loss(side.arr(np.zeros(shape)), t[: shape[0] if len(shape) == 2 else 5])
    names(exc, "x")
    with pytest.raises(ValueError) as exc:
        net.predict(side.arr(np.zeros(shape)))
    names(exc, "x")


def test_wrong_label_length_is_refused(side):
    net = side.net()
    x, t = side.batch()
    with pytest.raises(ValueError) as exc:
        net.loss(x, t[:3])
    names(exc, "t")
    with pytest.raises(ValueError) as exc:
        net.accuracy(x, side.arr(np.eye(2)[[0, 1, 0]]))
    names(exc, "t")
    with pytest.raises(ValueError) as exc:
        side.mod.train(net, x, t[:4], x, t, iters_num=1, batch_size=2)
    names(exc, "t_train")


@pytest.mark.parametrize("width", [1, 3, 10])
def test_one_hot_width_must_equal_output_size(side, width):
    net = side.net()
    x, _ = side.batch()
    with pytest.raises(ValueError) as exc:
        net.gradient(x, side.arr(np.eye(width)[[0] * 5]))
    names(exc, "t")


def test_labels_of_rank_three_are_refused(side):
    net = side.net()
    x, _ = side.batch()
    with pytest.raises(ValueError) as exc:
        net.loss(x, side.arr(np.zeros((5, 2, 1))))
    names(exc, "t")


@pytest.mark.parametrize("bad_label", [2, 10, -1])
def test_class_index_out_of_range_is_refused(side, bad_label):
    net = side.net()  # two outputs: valid indices are 0 and 1
    x, _ = side.batch()
    with pytest.raises(ValueError) as exc:
        net.loss(x, side.arr([0, 1, bad_label, 0, 1]))
    names(exc, "t")
    with pytest.raises(ValueError) as exc:
        side.mod.cross_entropy_error(side.arr(np.full((5, 2), 0.5)),
                                     side.arr([0, 1, bad_label, 0, 1]))
    names(exc, "t")


def test_empty_batch_is_refused(side):
    net = side.net()
    with pytest.raises(ValueError) as exc:
        net.loss(side.arr(np.zeros((0, 4))), side.arr(np.zeros(0, dtype=np.int64)))
    names(exc, "x")
    x, t = side.batch()
    with pytest.raises(ValueError) as exc:
        side.mod.train(net, x, t, side.arr(np.zeros((0, 4))), side.arr(np.zeros(0, np.int64)),
                       iters_num=1, batch_size=2)
    names(exc, "x_test")


# -- the finite-difference step -----------------------------------------------

@pytest.mark.parametrize("h", [0.0, -1e-4, float("nan"), float("inf"), 1e-50, 1e-17])
def test_bad_step_is_refused(side, h):
    # 1e-50 is the book's bad example; 1e-17 is below float64's eps (2.2e-16)
    with pytest.raises(ValueError) as exc:
        side.mod.numerical_diff(side.mod.function_1, 5.0, h=h)
    names(exc, "h")
    with pytest.raises(ValueError) as exc:
        side.mod.numerical_gradient(side.mod.function_2, side.arr([3.0, 4.0]), h=h)
    names(exc, "h")
    x, t = side.batch()
    with pytest.raises(ValueError) as exc:
        side.net().numerical_gradient(x, t, h=h)
    names(exc, "h")


def test_step_below_float32_epsilon_is_refused(side):
    # 1e-8 lies between float64's eps (2.2e-16) and float32's (1.19e-7)
    point = side.arr([3.0, 4.0], np.float32)
    with pytest.raises(ValueError) as exc:
        side.mod.numerical_gradient(side.mod.function_2, point, h=1e-8)
    names(exc, "h")
    assert "float32" in str(exc.value)
    side.mod.numerical_gradient(side.mod.function_2, side.arr([3.0, 4.0]), h=1e-8)  # float64: fine


@pytest.mark.parametrize("h", ["1e-4", None, True])
def test_step_of_the_wrong_type_is_refused(side, h):
    with pytest.raises(TypeError) as exc:
        side.mod.numerical_diff(side.mod.function_1, 5.0, h=h)
    names(exc, "h", f"{h!r} ({type(h).__name__})")


def test_vanishing_step_warns_where_and_computes_as_the_book(side):
    # ulp(1e20) = 16384 > 2h: x + h == x, both sides of the difference are
    # f(1e20) and the book's formula gives exactly 0.
    with pytest.warns(RuntimeWarning, match="vanished") as record:
        d = side.mod.numerical_diff(side.mod.function_1, 1e20)
    assert float(d) == 0.0
    assert "1e+20" in str(record[0].message)
    # f = x0**2 + 1e-30 x1: x1's term keeps f(x) near 9, so element 0 is an
    # ordinary point (derivative 6, round-off eps * 9 / h = 2e-11, truncation
    # 0 for a quadratic), while element 1's step vanishes and gives exactly 0.
    with pytest.warns(RuntimeWarning, match=r"vanished against x\[1\]"):
        g = side.mod.numerical_gradient(lambda v: v[0] ** 2 + 1e-30 * v[1],
                                        side.arr([3.0, -1e20]))
    assert abs(float(g[0]) - 6.0) < 1e-9 and float(g[1]) == 0.0


def test_ordinary_step_does_not_warn(side):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        side.mod.numerical_diff(side.mod.function_1, 5.0)
        side.mod.numerical_gradient(side.mod.function_2, side.arr([3.0, 4.0]))


# -- what f returns -----------------------------------------------------------

def test_f_must_return_a_scalar(side):
    with pytest.raises(ValueError) as exc:
        side.mod.numerical_gradient(lambda x: x * 2, side.arr([1.0, 2.0]))
    names(exc, "f")
    with pytest.raises(ValueError) as exc:
        side.mod.numerical_gradient(lambda x: x[None].sum(axis=1) if side.name == "numpy"
                                    else x[None].sum(dim=1), side.arr([1.0, 2.0]))
    names(exc, "f")


# -- learning rate and counts -------------------------------------------------

@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), float("inf")])
def test_bad_learning_rate_is_refused(side, lr):
    with pytest.raises(ValueError) as exc:
        side.mod.gradient_descent(side.mod.function_2, side.arr([3.0, 4.0]), lr=lr)
    names(exc, "lr")
    x, t = side.batch()
    with pytest.raises(ValueError) as exc:
        side.mod.train(side.net(), x, t, x, t, iters_num=1, batch_size=2, learning_rate=lr)
    names(exc, "learning_rate")


@pytest.mark.parametrize("lr", ["0.1", None, True])
def test_learning_rate_of_the_wrong_type_is_refused(side, lr):
    x, t = side.batch()
    with pytest.raises(TypeError) as exc:
        side.mod.train(side.net(), x, t, x, t, iters_num=1, batch_size=2, learning_rate=lr)
    names(exc, "learning_rate", f"{lr!r} ({type(lr).__name__})")


@pytest.mark.parametrize("name", ["iters_num", "batch_size"])
@pytest.mark.parametrize("value, error", [(0, ValueError), (-3, ValueError), (1.5, TypeError),
                                          (True, TypeError)])
def test_counts_below_one_are_refused(side, name, value, error):
    x, t = side.batch()
    kwargs = {"iters_num": 1, "batch_size": 2, name: value}
    with pytest.raises(error) as exc:
        side.mod.train(side.net(), x, t, x, t, **kwargs)
    names(exc, name, repr(value))


def test_step_num_below_one_is_refused(side):
    with pytest.raises(ValueError) as exc:
        side.mod.gradient_descent(side.mod.function_2, side.arr([3.0, 4.0]), step_num=0)
    names(exc, "step_num")


# -- NumPy arrays and tensors -------------------------------------------------

def test_the_other_sides_array_type_is_refused(side):
    kind = "torch.Tensor" if side.name == "numpy" else "NumPy"
    net = side.net()
    x, t = side.batch()
    calls = {
        "x": [lambda: side.mod.numerical_gradient(side.mod.function_2, side.foreign([3.0, 4.0])),
              lambda: net.loss(side.foreign(side.np(x)), t),
              lambda: net.predict(side.foreign(side.np(x)))],
        "t": [lambda: net.loss(x, side.foreign(side.np(t)))],
        "init_x": [lambda: side.mod.gradient_descent(side.mod.function_2,
                                                     side.foreign([3.0, 4.0]))],
        "x_train": [lambda: side.mod.train(net, side.foreign(side.np(x)), t, x, t,
                                           iters_num=1, batch_size=2)],
    }
    for name, fns in calls.items():
        for fn in fns:
            with pytest.raises(TypeError) as exc:
                fn()
            names(exc, name)
            assert kind in str(exc.value)


# -- devices ------------------------------------------------------------------

@pytest.mark.parametrize("make", ["TwoLayerNet", "TwoLayerNetModule"])
def test_cuda_without_cuda_is_a_clear_error(monkeypatch, make):
    # Pretend CUDA is missing, so the check runs the same on machines with a GPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError) as exc:
        getattr(torch_impl, make)(4, 3, 2, device="cuda")
    names(exc, "device")
    assert "cuda" in str(exc.value).lower()


def test_unknown_device_is_a_clear_error():
    with pytest.raises(ValueError) as exc:
        torch_impl.TwoLayerNet(4, 3, 2, device="no-such-device")
    names(exc, "device", "'no-such-device'")


@pytest.mark.parametrize("make", ["TwoLayerNet", "TwoLayerNetModule"])
def test_a_cuda_index_the_machine_lacks_is_a_clear_error(monkeypatch, make):
    # one GPU, as far as the check can tell, on any machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ValueError) as exc:
        getattr(torch_impl, make)(4, 3, 2, device="cuda:3")
    names(exc, "device", "'cuda:3'")
    assert "1 CUDA device" in str(exc.value)


def test_mps_without_mps_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError) as exc:
        torch_impl.TwoLayerNet(4, 3, 2, device="mps")
    names(exc, "device", "'mps'")
    assert "MPS is not available" in str(exc.value)


# -- the initial weights' scale -----------------------------------------------

def _nets(side):
    """Every network constructor of a side that takes weight_init_std."""
    makes = [side.mod.TwoLayerNet]
    if side.name == "torch":
        makes.append(torch_impl.TwoLayerNetModule)
    return makes


@pytest.mark.parametrize("std", [float("nan"), float("inf"), -float("inf"), -0.01])
def test_weight_init_std_must_be_finite_and_non_negative(side, std):
    for make in _nets(side):
        with pytest.raises(ValueError) as exc:
            make(784, 50, 10, weight_init_std=std)
        names(exc, "weight_init_std", repr(std))


@pytest.mark.parametrize("std", ["0.01", None, True, [0.01]])
def test_weight_init_std_of_the_wrong_type_is_refused(side, std):
    for make in _nets(side):
        with pytest.raises(TypeError) as exc:
            make(784, 50, 10, weight_init_std=std)
        names(exc, "weight_init_std", f"{std!r} ({type(std).__name__})")


def test_weight_init_std_may_be_zero_or_a_numpy_scalar(side):
    assert not side.np(side.mod.TwoLayerNet(4, 3, 2, weight_init_std=0.0).params["W1"]).any()
    a = side.mod.TwoLayerNet(4, 3, 2, weight_init_std=np.float32(0.5), seed=1)
    b = side.mod.TwoLayerNet(4, 3, 2, weight_init_std=0.5, seed=1)
    assert np.array_equal(side.np(a.params["W1"]), side.np(b.params["W1"]))


@pytest.mark.parametrize("seed, error", [("1", TypeError), (1.0, TypeError), (-1, ValueError),
                                         (2**32, ValueError)])
def test_a_bad_seed_is_refused(side, seed, error):
    for make in (lambda: side.mod.TwoLayerNet(4, 3, 2, seed=seed),
                 lambda: side.mod.SimpleNet(seed=seed)):
        with pytest.raises(error) as exc:
            make()
        names(exc, "seed", repr(seed))


def test_an_unknown_dtype_is_refused(side):
    with pytest.raises(TypeError) as exc:
        side.mod.TwoLayerNet(4, 3, 2, dtype="float128-ish")
    names(exc, "dtype", "'float128-ish'")


# -- one-hot labels must be distributions -------------------------------------

NOT_DISTRIBUTIONS = {
    "all ones": (np.ones((5, 2)), "t[0] sums to 2.0"),
    "a row of zeros": (np.eye(2)[[0, 1, 0, 1, 1]] * [[1], [1], [0], [1], [1]], "t[2] sums to 0.0"),
    "pixel scale": (np.eye(2)[[0, 1, 0, 1, 1]] * 255, "t[0] sums to 255.0"),
    "negative entry": (np.array([[1.5, -0.5]] + [[1.0, 0.0]] * 4), "-0.5 at (0, 1)"),
    "smoothing that forgot a class": (np.full((5, 2), 0.45), "t[0] sums to 0.9"),
}


@pytest.mark.parametrize("kind", NOT_DISTRIBUTIONS)
def test_one_hot_labels_that_are_not_distributions_are_refused(side, kind):
    t_bad, given = NOT_DISTRIBUTIONS[kind]
    net = side.net()
    x, t = side.batch()
    t_bad = side.arr(t_bad)
    for call in (net.loss, net.accuracy, net.gradient, net.numerical_gradient):
        with pytest.raises(ValueError) as exc:
            call(x, t_bad)
        names(exc, "t", given)
    with pytest.raises(ValueError) as exc:
        side.mod.cross_entropy_error(net.predict(x), t_bad)
    names(exc, "t", given)
    for position, name in ((2, "t_train"), (4, "t_test")):
        args = [x, t, x, t]
        args[position - 1] = t_bad
        with pytest.raises(ValueError) as exc:
            side.mod.train(net, *args, iters_num=1, batch_size=2)
        names(exc, name, given.replace("t[", f"{name}["))


def test_soft_labels_are_taken_and_read_as_the_book_reads_them(side):
    net = side.net()
    x, t = side.batch()
    hard = np.eye(2)[side.np(t)]
    smoothed = hard * 0.9 + 0.1 / 2  # label smoothing: rows still sum to 1
    # made in float32 and cast up: float32's round-off, far inside the tolerance
    from_float32 = smoothed.astype(np.float32).astype(np.float64)
    for soft in (smoothed, from_float32):
        # the book's loss and accuracy read one-hot labels through their argmax
        assert float(net.loss(x, side.arr(soft))) == float(net.loss(x, side.arr(hard)))
        assert net.accuracy(x, side.arr(soft)) == net.accuracy(x, side.arr(hard))
    integer = side.arr(np.eye(2, dtype=np.int64)[side.np(t)])
    assert float(net.loss(x, integer)) == float(net.loss(x, t))


def test_the_row_sum_tolerance_follows_the_dtype(side):
    # 100 n eps, eps at least float32's: 2.4e-5 for two classes
    net = side.net()
    x, t = side.batch()
    rows = np.eye(2)[side.np(t)]
    near = rows.copy()
    near[:, 0] += 1e-6  # within round-off of labels made in float32
    net.loss(x, side.arr(near))
    off = rows.copy()
    off[3, 0] += 1e-3
    with pytest.raises(ValueError) as exc:
        net.loss(x, side.arr(off))
    names(exc, "t", "t[3] sums to 1.001")


# -- cross_entropy_error's own arguments ----------------------------------------

def test_cross_entropy_error_refuses_what_is_not_a_batch_of_probabilities(side):
    t = side.arr([0, 1])
    with pytest.raises(ValueError) as exc:
        side.mod.cross_entropy_error(side.arr(np.full((2, 2, 2), 0.5)), t)
    names(exc, "y", "(2, 2, 2)")
    with pytest.raises(ValueError) as exc:
        side.mod.cross_entropy_error(side.arr(np.zeros((0, 2))), side.arr(np.zeros(0, np.int64)))
    names(exc, "y", "(0, 2)")
    with pytest.raises(ValueError) as exc:
        side.mod.cross_entropy_error(side.arr([[0.5, 0.5], [1.5, -0.5]]), t)
    names(exc, "y", "-0.5")
    with pytest.raises(ValueError) as exc:
        side.mod.cross_entropy_error(side.arr(np.full((2, 2), 0.5)), side.arr(np.eye(3)[[0, 1]]))
    names(exc, "t", "width is 3")
    with pytest.raises(TypeError) as exc:
        side.mod.cross_entropy_error(side.arr(np.full((2, 2), 0.5)), side.foreign([0, 1]))
    names(exc, "t")
    # the book's single sample: a 1-D y with one-hot or index t
    one = side.mod.cross_entropy_error(side.arr([0.1, 0.9]), side.arr([0.0, 1.0]))
    assert float(one) == float(side.mod.cross_entropy_error(side.arr([0.1, 0.9]), 1))


# -- functions where a function belongs -----------------------------------------

def test_f_must_be_callable(side):
    point = side.arr([3.0, 4.0])
    calls = [lambda f: side.mod.numerical_diff(f, 5.0),
             lambda f: side.mod.numerical_gradient(f, point),
             lambda f: side.mod.numerical_gradient_2d(f, point),
             lambda f: side.mod.gradient_descent(f, point),
             lambda f: side.mod.tangent_line(f, 5.0)]
    for call in calls:
        with pytest.raises(TypeError) as exc:
            call(3)
        names(exc, "f", "3 (int)")


def test_gradient_2d_names_its_own_argument(side):
    with pytest.raises(TypeError) as exc:
        side.mod.numerical_gradient_2d(side.mod.function_2, [3.0, 4.0])
    names(exc, "X", "list")
    with pytest.raises(ValueError) as exc:
        side.mod.numerical_gradient_2d(side.mod.function_2, side.arr([[3.0, float("nan")]]))
    names(exc, "X")


# -- SimpleNet ----------------------------------------------------------------

def test_simple_net_refuses_inputs_of_the_wrong_shape_and_labels_out_of_range(side):
    net = side.mod.SimpleNet(seed=0)
    for call in (net.predict, lambda x: net.loss(x, side.arr([0, 0, 1]))):
        with pytest.raises(ValueError) as exc:
            call(side.arr([0.6, 0.9, 0.1]))
        names(exc, "x", "(3,)")
    for call in (net.loss, net.gradient):
        with pytest.raises(ValueError) as exc:
            call(side.arr([0.6, 0.9]), side.arr([5]))
        names(exc, "t", "max 5")
        with pytest.raises(ValueError) as exc:
            call(side.arr([0.6, 0.9]), side.arr([0.5, 0.5, 0.5]))
        names(exc, "t", "sums to 1.5")
    # the book's own call still works: one sample, one-hot t
    grad = net.gradient(side.arr([0.6, 0.9]), side.arr([0, 0, 1]))
    assert tuple(grad.shape) == (2, 3)


# -- what train is handed -----------------------------------------------------

def test_train_refuses_a_net_it_cannot_train(side):
    x, t = side.batch()
    other = (torch_impl if side.name == "numpy" else numpy_impl).TwoLayerNet(4, 3, 2)
    with pytest.raises(TypeError) as exc:
        side.mod.train(other, x, t, x, t, iters_num=1, batch_size=2)
    names(exc, "net.params['W1']", "NumPy" if side.name == "torch" else "torch.Tensor")
    with pytest.raises(TypeError) as exc:
        side.mod.train(object(), x, t, x, t, iters_num=1, batch_size=2)
    names(exc, "net", "builtins.object")


@pytest.mark.parametrize("hook", ["callback", "progress"])
def test_train_hooks_must_be_functions(side, hook):
    x, t = side.batch()
    with pytest.raises(TypeError) as exc:
        side.mod.train(side.net(), x, t, x, t, iters_num=1, batch_size=2, **{hook: "print"})
    names(exc, hook, "'print' (str)")


def test_train_start_iter_must_not_be_negative(side):
    x, t = side.batch()
    with pytest.raises(ValueError) as exc:
        side.mod.train(side.net(), x, t, x, t, iters_num=1, batch_size=2, start_iter=-1)
    names(exc, "start_iter", "-1")


def test_the_book_batch_sampler_refuses_sizes_below_one():
    stream = torch_impl.BookRandomStream(0)
    for kwargs, name in [(dict(train_size=0), "train_size"), (dict(batch_size=-1), "batch_size"),
                         (dict(num_batches=-2), "num_batches")]:
        args = {**dict(stream=stream, train_size=10, batch_size=2, num_batches=3), **kwargs}
        with pytest.raises(ValueError) as exc:
            torch_impl.BookBatchSampler(**args)
        names(exc, name, str(kwargs[name]))
    with pytest.raises(TypeError) as exc:
        torch_impl.BookBatchSampler(np.random.RandomState(0), 10, 2, 3)
    names(exc, "stream", "RandomState")
