"""cnnlib.numpy.dropout: masks, the inverted/vanilla scalings, and gradients."""

import math

import numpy as np
import pytest

from cnnlib.numpy.dropout import dropout_backward, dropout_forward
from cnnlib.numpy.gradcheck import check_layer_gradients


def _x(shape=(4, 6), seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("inverted", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_gradients_match_numerical_with_a_fixed_seed(train, inverted):
    # with the seed fixed every forward call draws the same mask, so out is linear in x
    errors = check_layer_gradients(dropout_forward, dropout_backward, _x(seed=1), keep_prob=0.6,
                                   train=train, inverted=inverted, seed=3)
    assert max(errors) < 1e-9


def test_same_seed_same_mask_and_values_are_zero_or_scaled():
    x = _x(shape=(50, 40), seed=2)
    out_a, _ = dropout_forward(x, keep_prob=0.7, seed=11)
    out_b, _ = dropout_forward(x, keep_prob=0.7, seed=11)
    out_c, _ = dropout_forward(x, keep_prob=0.7, seed=12)
    np.testing.assert_array_equal(out_a, out_b)
    assert not np.array_equal(out_a, out_c)
    kept = out_a != 0
    np.testing.assert_array_equal(out_a[kept], x[kept] / 0.7)


def test_the_mask_is_reused_by_backward():
    x = _x(seed=3)
    out, cache = dropout_forward(x, keep_prob=0.5, seed=4)
    dx = dropout_backward(np.ones_like(x), cache)
    np.testing.assert_array_equal(dx == 0, out == 0)
    np.testing.assert_array_equal(dx[dx != 0], 2.0)


@pytest.mark.parametrize("inverted", [True, False])
def test_keep_prob_one_is_the_identity(inverted):
    x = _x(seed=5)
    for train in (True, False):
        out, cache = dropout_forward(x, keep_prob=1, train=train, inverted=inverted, seed=0)
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(dropout_backward(x, cache), x)


def test_test_mode_scaling():
    x = _x(seed=6)
    inverted_out, _ = dropout_forward(x, keep_prob=0.3, train=False)
    vanilla_out, cache = dropout_forward(x, keep_prob=0.3, train=False, inverted=False)
    np.testing.assert_array_equal(inverted_out, x)
    np.testing.assert_array_equal(vanilla_out, 0.3 * x)
    np.testing.assert_array_equal(dropout_backward(np.ones_like(x), cache), 0.3)


@pytest.mark.parametrize("keep_prob", [0.2, 0.5, 0.9])
def test_expected_training_output_equals_the_test_output(keep_prob):
    # M = 200_000 units of value 1. The fraction kept is Binomial(M, p) / M with standard
    # deviation sqrt(p (1 - p) / M) <= 1.2e-3; we allow 5 of them (a false alarm ~ 6e-7).
    num_units = 200_000
    ones = np.ones(num_units)
    tolerance = 5 * math.sqrt(keep_prob * (1 - keep_prob) / num_units)
    vanilla, _ = dropout_forward(ones, keep_prob=keep_prob, inverted=False, seed=7)
    vanilla_test, _ = dropout_forward(ones, keep_prob=keep_prob, train=False, inverted=False)
    assert abs(vanilla.mean() - keep_prob) < tolerance  # the mask's mean is keep_prob
    assert abs(vanilla.mean() - vanilla_test.mean()) < tolerance
    inverted, _ = dropout_forward(ones, keep_prob=keep_prob, seed=8)
    assert abs(inverted.mean() - 1.0) < tolerance / keep_prob  # E[mask / p] = 1 = test output


def test_float32_is_preserved():
    x = _x(dtype=np.float32)
    for train in (True, False):
        for inverted in (True, False):
            out, cache = dropout_forward(x, 0.5, train=train, inverted=inverted, seed=0)
            assert out.dtype == np.float32
            assert dropout_backward(np.ones_like(out), cache).dtype == np.float32


def test_validation_messages():
    x = _x()
    for bad in (0, 0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=rf"keep_prob must be in \(0, 1\].*got {bad}"):
            dropout_forward(x, keep_prob=bad)
    with pytest.raises(TypeError, match=r"keep_prob must be a number in \(0, 1\], got str"):
        dropout_forward(x, keep_prob="0.5")
    with pytest.raises(TypeError, match=r"x must be a floating-point array.*int64"):
        dropout_forward(np.arange(4), keep_prob=0.5)
    _, cache = dropout_forward(x, seed=0)
    with pytest.raises(ValueError, match=r"dout must have shape \(4, 6\)"):
        dropout_backward(np.ones((4, 5)), cache)
