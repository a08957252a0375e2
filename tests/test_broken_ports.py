"""Deliberately broken ports of the torch side: the harness must catch each and name it.

Each bug lives in a subclass of ``torch_impl.TwoLayerNet`` (or of the module)
that overrides one method; the NumPy side stays correct and is the reference.
"""
import numpy as np
import pytest
import torch

import torch_impl
from compare import book_gap, check_gradient_paths
from compare.ch4.curves import compare_curves
from compare.ch4.paths import GAP, book_batch
from torch_impl.functions import sigmoid, sigmoid_grad

ANALYTIC = (("torch backprop", "numpy backprop", "analytic", False),)


@pytest.fixture(scope="module")
def batch(mnist):
    # 20 images keep each check fast; the bugs below change results by O(1)
    params, x, t = book_batch(mnist, seed=0, batch_size=20)
    return params, x, t


def backprop(net, x, t, *, softmax_dim=-1, divide=True, flip_b2=False, leak=None, transpose=False):
    """The book's backprop with optional bugs, written out as a porter might get it wrong."""
    W1, b1, W2, b2 = (net.params[k] for k in ("W1", "b1", "W2", "b2"))
    a1 = x @ W1 + b1
    z1 = sigmoid(a1)
    y = torch.softmax(z1 @ W2 + b2, dim=softmax_dim)
    dy = (y - t) / x.shape[0] if divide else (y - t)
    grads = {"W2": (dy.T @ z1) if transpose else z1.T @ dy, "b2": dy.sum(0)}
    dz1 = sigmoid_grad(a1) * (dy @ W2.T)
    grads["W1"], grads["b1"] = x.T @ dz1, dz1.sum(0)
    if flip_b2:
        grads["b2"] = -grads["b2"]
    if leak:
        grads[leak] = grads[leak].float()
    return {k: grads[k] for k in ("W1", "b1", "W2", "b2")}


def broken(**bug):
    class Broken(torch_impl.TwoLayerNet):
        def _gradient(self, x, t):
            return backprop(self, x, t, **bug)
    return Broken


def failed_in(result, label):
    return next(p for p in result.pairs if p.label == label).failed


def test_the_unbroken_copy_passes(batch):
    # the same hand-written backprop with no bug: so each failure below is the bug's
    result = check_gradient_paths(*batch, torch_net_class=broken(), pairs=ANALYTIC)
    assert result.passed, result.to_text()


def test_sign_flip_in_b2_is_named_and_only_b2(batch):
    result = check_gradient_paths(*batch, torch_net_class=broken(flip_b2=True), pairs=ANALYTIC)
    assert not result.passed
    assert failed_in(result, "torch backprop vs numpy backprop") == ["b2"]
    assert "b2" in result.verdict() and "FAIL" in result.verdict()


def test_missing_division_by_batch_size_fails_every_parameter(batch):
    result = check_gradient_paths(*batch, torch_net_class=broken(divide=False), pairs=ANALYTIC)
    assert failed_in(result, "torch backprop vs numpy backprop") == ["W1", "b1", "W2", "b2"]
    row = next(r for r in result.pairs[0].rows if r.name == "b2")
    # off by the batch size: actual = 20 x expected at the worst element
    assert row.worst_actual == pytest.approx(20 * row.worst_expected, rel=1e-9)


def test_softmax_over_the_batch_axis_is_caught(batch):
    result = check_gradient_paths(*batch, torch_net_class=broken(softmax_dim=0), pairs=ANALYTIC)
    failed = failed_in(result, "torch backprop vs numpy backprop")
    assert {"W2", "b2"} <= set(failed)


def test_float32_leak_into_a_float64_run_is_named(batch):
    result = check_gradient_paths(*batch, torch_net_class=broken(leak="W1"), pairs=ANALYTIC)
    assert failed_in(result, "torch backprop vs numpy backprop") == ["W1"]
    row = result.pairs[0].rows[0]
    assert "float32" in row.problem and "float64 run" in row.problem


def test_transposed_weight_gradient_is_a_shape_failure(batch):
    result = check_gradient_paths(*batch, torch_net_class=broken(transpose=True), pairs=ANALYTIC)
    assert failed_in(result, "torch backprop vs numpy backprop") == ["W2"]
    assert "shape (10, 50) != expected (50, 10)" in result.to_text()


def test_a_port_that_raises_fails_its_pairs_with_the_error(batch):
    class Crashing(torch_impl.TwoLayerNet):
        def _gradient(self, x, t):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    result = check_gradient_paths(*batch, torch_net_class=Crashing, pairs=ANALYTIC)
    assert not result.passed
    assert "mat1 and mat2" in result.to_text()


def test_forward_difference_in_the_numerical_gradient_is_caught(batch):
    # (f(x + h) - f(x)) / h instead of the central difference: an O(h) error
    class ForwardDifference(torch_impl.TwoLayerNet):
        def _numerical_gradient(self, x, t, h=1e-4, method="fast"):
            base = float(self._loss(x, t))
            grads = {}
            for key in ("b1", "b2"):  # small parameters keep the loop short
                p = self.params[key]
                g = torch.zeros_like(p)
                for i in range(p.numel()):
                    old = p[i].item()
                    p[i] = old + h
                    g[i] = (float(self._loss(x, t)) - base) / h
                    p[i] = old
                grads[key] = g
            exact = super()._numerical_gradient(x, t, h, method)
            return {**exact, **grads}

    pairs = (("torch numerical", "numpy numerical", "numerical-pair", False),
             ("torch numerical", "torch backprop", "numerical", True))
    result = check_gradient_paths(*batch, torch_net_class=ForwardDifference, pairs=pairs)
    assert failed_in(result, "torch numerical vs numpy numerical") == ["b1", "b2"]
    assert failed_in(result, "torch numerical vs torch backprop") == ["b1", "b2"]


def test_module_summing_instead_of_averaging_is_caught(batch):
    class SumModule(torch_impl.TwoLayerNetModule):
        def _loss(self, x, t):
            return torch.nn.functional.cross_entropy(self(x), t.argmax(1), reduction="sum")
    pairs = (("module", "numpy backprop", "analytic", False),)
    result = check_gradient_paths(*batch, module_class=SumModule, pairs=pairs)
    assert failed_in(result, "module vs numpy backprop") == ["W1", "b1", "W2", "b2"]


def test_module_book_loss_without_its_1e7_is_caught_by_the_gap_check(batch):
    # a "book" loss that forgot the 1e-7 differs from the real one only by the gap
    # (1e-8 absolute): far below any float32 tolerance, but not below float64 round-off
    class NoEpsilon(torch_impl.TwoLayerNetModule):
        def _loss(self, x, t):
            if self.loss_name == "book":
                y = torch.softmax(self(x), dim=-1)
                return -torch.log(y[torch.arange(x.shape[0]), t.argmax(1)]).mean()
            return super()._loss(x, t)
    pairs = (("module[book]", GAP, "analytic", False),)
    result = check_gradient_paths(*batch, module_class=NoEpsilon, pairs=pairs)
    assert failed_in(result, f"module[book] vs {GAP}") == ["W1", "b1", "W2", "b2"]


def test_the_gap_is_what_separates_a_correct_book_loss(batch):
    # sanity of the previous test: the correct module passes that same check, and the
    # difference the broken one shows is the closed-form gap itself
    params, x, t = batch
    pairs = (("module[book]", GAP, "analytic", False),)
    assert check_gradient_paths(*batch, pairs=pairs).passed
    gap = book_gap(params, x.astype(np.float64), t)
    assert 1e-9 < np.abs(gap["b2"]).max() < 1e-6


def test_curves_catch_a_port_that_skips_the_bias_update(mnist):
    (x_train, t_train), (x_test, t_test) = mnist
    small = ((x_train[:1000], t_train[:1000]), (x_test[:200], t_test[:200]))

    class FrozenB1(torch_impl.TwoLayerNet):
        def _gradient(self, x, t):
            grads = super()._gradient(x, t)
            grads["b1"] = torch.zeros_like(grads["b1"])
            return grads

    result = compare_curves(small, iters=5, eval_every=5, progress=False, torch_net_class=FrozenB1)
    assert not result.passed
    assert result.first_out == 0  # the loss after the first update already differs
    assert "iteration 0" in result.verdict()
