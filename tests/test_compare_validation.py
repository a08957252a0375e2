"""Bad arguments to ``compare``'s public functions: a TypeError or ValueError
naming the argument and what was given, raised before any work, never a
parity verdict (a table of FAIL) about a request that could not be served."""
import numpy as np
import pytest
import torch

import numpy_impl
import torch_impl
from compare import check_gradient_paths, compare_curves, gradcheck, load_mnist
from compare.ch4 import curves
from compare.parity import Tolerance, compare_gradients, tolerance
from compare.testing import assert_same_net_gradients, assert_same_op

from test_validation import names


@pytest.fixture
def no_cuda(monkeypatch):
    """CUDA missing, as far as the checks can tell, on any machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture(scope="module")
def small_batch():
    params = numpy_impl.book_initial_params(4, 3, 2, seed=0)
    rng = np.random.RandomState(1)
    return params, rng.rand(5, 4), rng.randint(0, 2, 5)


# -- tolerances -----------------------------------------------------------------

@pytest.mark.parametrize("h, error", [(0.0, ValueError), (-1e-4, ValueError),
                                      (float("nan"), ValueError), ("1e-4", TypeError)])
def test_tolerance_refuses_a_bad_step(h, error):
    with pytest.raises(error) as exc:
        tolerance("numerical", "float64", h)
    names(exc, "h", repr(h))


@pytest.mark.parametrize("name", ["value_scale", "third_derivative"])
def test_tolerance_refuses_a_bad_bound(name):
    with pytest.raises(ValueError) as exc:
        tolerance("numerical", "float64", 1e-4, **{name: -1.0})
    names(exc, name, "-1.0")


@pytest.mark.parametrize("key", ["rtol", "atol"])
@pytest.mark.parametrize("value", [float("nan"), -1e-9, float("inf")])
def test_a_tolerance_of_nan_or_below_zero_is_refused(key, value):
    # a NaN bound used to pass everything: NaN <= x is False, and so was "out of tolerance"
    grads = {"W": np.ones(3)}
    with pytest.raises(ValueError) as exc:
        compare_gradients(grads, {"W": np.full(3, 5.0)}, **{key: value})
    names(exc, key, repr(value))
    with pytest.raises(ValueError) as exc:
        Tolerance(**{"rtol": 0.0, "atol": 0.0, key: value})
    names(exc, key)


def test_compare_gradients_refuses_an_allowance_that_is_not_a_dict():
    with pytest.raises(TypeError) as exc:
        compare_gradients({"W": np.ones(2)}, {"W": np.ones(2)}, allowance=1e-7)
    names(exc, "allowance", "float")


# -- compare.testing -------------------------------------------------------------

def test_assert_same_op_refuses_bad_arguments_by_name():
    ok = (numpy_impl.sigmoid, torch_impl.sigmoid, [(2, 3)])
    cases = [
        (TypeError, "np_fn", "3 (int)", dict(np_fn=3)),
        (TypeError, "torch_fn", "None", dict(torch_fn=None)),
        (TypeError, "inputs", "(2, 3)", dict(inputs=(2, 3))),  # a shape, not a list of them
        (ValueError, "wrt", "[5]", dict(wrt=[5])),
        (ValueError, "rtol", "-1.0", dict(rtol=-1.0)),
        (ValueError, "h", "0.0", dict(h=0.0)),
        (ValueError, "third_derivative", "-1.0", dict(third_derivative=-1.0)),
        (TypeError, "seed", "'a'", dict(seed="a")),
        (ValueError, "dtype", "'int8'", dict(dtype="int8")),
        (ValueError, "device", "'no-such-device'", dict(device="no-such-device")),
    ]
    for error, name, given, change in cases:
        args = dict(zip(("np_fn", "torch_fn", "inputs"), ok))
        args.update(change)
        with pytest.raises(error) as exc:
            assert_same_op(args.pop("np_fn"), args.pop("torch_fn"), args.pop("inputs"), **args)
        names(exc, name, given)


def test_assert_same_net_gradients_names_a_net_of_the_wrong_side():
    x, t = np.random.RandomState(0).rand(5, 4), np.array([0, 1, 0, 1, 1])
    np_net, t_net = numpy_impl.TwoLayerNet(4, 3, 2, seed=0), torch_impl.TwoLayerNet(4, 3, 2, seed=0)
    with pytest.raises(TypeError) as exc:
        assert_same_net_gradients(t_net, t_net, x, t)
    names(exc, "numpy_net.params['W1']", "torch.Tensor")
    with pytest.raises(TypeError) as exc:
        assert_same_net_gradients(np_net, np_net, x, t)
    names(exc, "torch_net.params['W1']", "NumPy")
    with pytest.raises(ValueError) as exc:
        assert_same_net_gradients(np_net, t_net, x, t, method="nditer")
    names(exc, "method", "'nditer'")
    with pytest.raises(ValueError) as exc:
        assert_same_net_gradients(np_net, t_net, x, t, h=1e-50)
    names(exc, "h", "1e-50")


# -- gradient paths and curves: refused before any path runs or any side trains --

def test_a_gradient_check_on_a_device_the_machine_lacks_is_an_error_not_a_fail(no_cuda,
                                                                                small_batch):
    with pytest.raises(ValueError) as exc:
        check_gradient_paths(*small_batch, device="cuda")
    names(exc, "device", "'cuda'")


@pytest.mark.parametrize("change, error, name, given", [
    (dict(method="nditer"), ValueError, "method", "'nditer'"),
    (dict(h=0.0), ValueError, "h", "0.0"),
    (dict(dtype="float16"), ValueError, "dtype", "'float16'"),
    (dict(torch_net_class=3), TypeError, "torch_net_class", "3 (int)"),
])
def test_check_gradient_paths_refuses_bad_settings(small_batch, change, error, name, given):
    with pytest.raises(error) as exc:
        check_gradient_paths(*small_batch, **change)
    names(exc, name, given)


def test_check_gradient_paths_refuses_bad_params_and_batches(small_batch):
    params, x, t = small_batch
    with pytest.raises(ValueError) as exc:
        check_gradient_paths(params, x, np.ones((5, 2)))
    names(exc, "t", "sums to 2.0")
    with pytest.raises(ValueError) as exc:
        check_gradient_paths(params, x[:, :3], t)
    names(exc, "x", "3 features")
    with pytest.raises(ValueError) as exc:
        check_gradient_paths(dict(params, b2=np.zeros(3)), x, t)
    names(exc, "params", "b2 (3,)")
    with pytest.raises(TypeError) as exc:
        check_gradient_paths({"W1": params["W1"]}, x, t)
    names(exc, "params", "['W1']")


def test_gradcheck_refuses_bad_settings(mnist):
    for change, error, name, given in [(dict(labels="onehot"), ValueError, "labels", "'onehot'"),
                                       (dict(batch_size=0), ValueError, "batch_size", "0"),
                                       (dict(seed=-1), ValueError, "seed", "-1")]:
        with pytest.raises(error) as exc:
            gradcheck(mnist, **change)
        names(exc, name, given)
    with pytest.raises(TypeError) as exc:
        gradcheck(mnist[0])
    names(exc, "data")


@pytest.mark.parametrize("change, error, name, given", [
    (dict(iters=0), ValueError, "iters", "0"),
    (dict(batch_size=-1), ValueError, "batch_size", "-1"),
    (dict(lr=float("nan")), ValueError, "lr", "nan"),
    (dict(eval_every=0), ValueError, "eval_every", "0"),
    (dict(impl="nn"), ValueError, "impl", "'nn'"),
    (dict(loss_rtol=-1.0), ValueError, "loss_rtol", "-1.0"),
    (dict(device="cuda"), ValueError, "device", "'cuda'"),
])
def test_compare_curves_refuses_bad_settings_before_either_side_trains(
        mnist, no_cuda, monkeypatch, change, error, name, given):
    def not_yet(*args, **kwargs):
        raise AssertionError("a side started training before the settings were checked")

    monkeypatch.setattr(curves, "train_numpy", not_yet)
    monkeypatch.setattr(curves, "train_torch", not_yet)
    with pytest.raises(error) as exc:
        compare_curves(mnist, progress=False, **change)
    names(exc, name, given)


# -- the loader's arguments ------------------------------------------------------

@pytest.mark.parametrize("name, value", [("normalize", "no"), ("flatten", 0),
                                         ("one_hot_label", None), ("download", "False")])
def test_load_mnist_flags_must_be_booleans(name, value):
    with pytest.raises(TypeError) as exc:
        load_mnist(**{name: value})
    names(exc, name, repr(value))


def test_load_mnist_root_must_be_a_path():
    with pytest.raises(TypeError) as exc:
        load_mnist(42)
    names(exc, "root", "42")


def test_book_gap_names_what_does_not_make_a_net_and_a_batch(small_batch):
    from compare import book_gap

    params, x, t = small_batch
    with pytest.raises(ValueError) as exc:
        book_gap(dict(params, W2=np.zeros((4, 2))), x, t)
    names(exc, "params", "W2 (4, 2)")
    with pytest.raises(ValueError) as exc:
        book_gap(params, x, np.full((5, 2), 0.7))
    names(exc, "t", "sums to 1.4")
    with pytest.raises(ValueError) as exc:
        book_gap(params, x, t, epsilon=-1e-7)
    names(exc, "epsilon", "-1e-07")

