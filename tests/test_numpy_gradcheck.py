"""cnnlib.numpy.gradcheck: numerical gradients on functions whose gradients are known exactly."""

import numpy as np
import pytest

from cnnlib.numpy.gradcheck import (
    check_layer_gradients,
    grad_check_sparse,
    numeric_gradient,
    numeric_gradient_array,
    rel_error,
)


def test_rel_error_definition():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    # |3 - 1| / (3 + 1) = 0.5 is the larger of the two entries (the other is 0)
    assert rel_error(np.array([3.0, 5.0]), np.array([1.0, 5.0])) == 0.5
    # opposite signs give the maximum, 1
    assert rel_error(np.array([2.0]), np.array([-2.0])) == 1.0
    # both ~0: the 1e-8 floor makes it an absolute error of 1e-12 / 1e-8
    assert rel_error(np.array([1e-12]), np.array([0.0])) == pytest.approx(1e-4)
    assert rel_error(2.0, 1.0) == pytest.approx(1 / 3)
    assert rel_error(np.zeros(0), np.zeros(0)) == 0.0


def test_rel_error_rejects_different_shapes():
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


def test_numeric_gradient_of_a_quadratic_is_exact():
    # f(x) = sum(x**2 * c) has gradient 2 c x; the centred difference of a quadratic has no
    # truncation error, so only round-off remains (~1e-16 * f / h ~ 1e-10 absolute at most)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    c = rng.standard_normal((3, 4))
    x_before = x.copy()
    grad = numeric_gradient(lambda: np.sum(c * x**2), x)
    np.testing.assert_allclose(grad, 2 * c * x, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(x, x_before)  # restored exactly
    assert grad.shape == x.shape


def test_numeric_gradient_of_a_smooth_function():
    # f = sum(sin(x) * exp(y)) w.r.t. x: cos(x) * exp(y); truncation error h**2/6 * f''' ~ 1e-11
    rng = np.random.default_rng(1)
    x = rng.standard_normal(7)
    y = rng.standard_normal(7)
    grad = numeric_gradient(lambda: np.sum(np.sin(x) * np.exp(y)), x)
    assert rel_error(grad, np.cos(x) * np.exp(y)) < 1e-8


def test_numeric_gradient_accepts_the_f_of_x_convention():
    x = np.array([1.0, -2.0, 3.0])
    grad = numeric_gradient(lambda z: np.sum(z**3), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-9)


def test_numeric_gradient_array_matches_the_jacobian_times_dout():
    # out = A @ x, so d sum(out * dout) / dx = A.T @ dout exactly (linear: no truncation error)
    rng = np.random.default_rng(2)
    A = rng.standard_normal((5, 3))
    x = rng.standard_normal(3)
    dout = rng.standard_normal(5)
    grad = numeric_gradient_array(lambda: A @ x, x, dout)
    np.testing.assert_allclose(grad, A.T @ dout, rtol=0, atol=1e-9)


def test_numeric_gradient_array_elementwise():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 4))
    dout = rng.standard_normal((2, 3, 4))
    grad = numeric_gradient_array(lambda: np.tanh(x), x, dout)
    assert rel_error(grad, dout * (1 - np.tanh(x) ** 2)) < 1e-8


def test_numeric_gradient_array_rejects_a_mismatched_dout():
    x = np.ones(3)
    with pytest.raises(ValueError, match=r"dout must have the shape of f\(\)'s output \(3,\)"):
        numeric_gradient_array(lambda: x * 2, x, np.ones(4))


def test_numeric_gradient_needs_a_float_ndarray():
    with pytest.raises(TypeError, match=r"x must be a floating-point array.*int64"):
        numeric_gradient(lambda: 0.0, np.arange(3, dtype=np.int64))
    with pytest.raises(TypeError, match=r"x must be a NumPy array.*list"):
        numeric_gradient(lambda: 0.0, [1.0, 2.0])


def test_grad_check_sparse_small_for_the_right_gradient_and_large_for_a_wrong_one(capsys):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5))

    def f():
        return np.sum(np.exp(x) * x)

    right = np.exp(x) * (x + 1)
    errors = grad_check_sparse(f, x, right, num_checks=8, verbose=True)
    assert errors.shape == (8,)
    assert errors.max() < 1e-8
    assert len(capsys.readouterr().out.strip().splitlines()) == 8
    wrong = np.exp(x) * x  # forgot the product rule
    assert grad_check_sparse(f, x, wrong, num_checks=8).min() > 1e-3


def test_grad_check_sparse_is_reproducible_and_validates():
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    grad = 2 * x + 0.1  # deliberately off, so errors differ per coordinate
    first = grad_check_sparse(lambda: np.sum(x**2), x, grad, seed=7)
    second = grad_check_sparse(lambda: np.sum(x**2), x, grad, seed=7)
    np.testing.assert_array_equal(first, second)
    with pytest.raises(ValueError, match=r"analytic_grad must have the shape of x \(3, 4\)"):
        grad_check_sparse(lambda: 0.0, x, np.zeros(12))
    with pytest.raises(ValueError, match="num_checks must be >= 1, got 0"):
        grad_check_sparse(lambda: 0.0, x, grad, num_checks=0)


def _scale_forward(x, w, state):
    state["calls"] = state.get("calls", 0) + 1  # a non-array argument gets no gradient
    return x * w, (x, w)


def test_check_layer_gradients_passes_a_right_backward_and_catches_a_wrong_one():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal(4)

    def right(dout, cache):
        x, w = cache
        return dout * w, (dout * x).sum(axis=0)

    def wrong(dout, cache):
        x, w = cache
        return dout * w, (dout * x).mean(axis=0)  # mean instead of sum over the batch

    state = {}
    errors = check_layer_gradients(_scale_forward, right, x, w, state)
    assert len(errors) == 2
    assert max(errors) < 1e-9  # linear in each argument: only round-off remains
    bad = check_layer_gradients(_scale_forward, wrong, x, w, state)
    assert bad[0] < 1e-9 and bad[1] > 0.1
    with pytest.raises(ValueError, match="returned 1 gradients for 2 float array arguments"):
        check_layer_gradients(_scale_forward, lambda dout, cache: dout, x, w, state)
