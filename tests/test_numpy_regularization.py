"""cnnlib.numpy.regularization: penalties, their gradients, the proximal step and max norm."""

import numpy as np
import pytest
import torch

from cnnlib.numpy.gradcheck import numeric_gradient, rel_error
from cnnlib.numpy.regularization import (
    elastic_net_regularization,
    l1_regularization,
    l2_regularization,
    max_norm,
    soft_threshold,
)

W = np.array([[1.0, -2.0], [0.0, 3.0]])


def _w(shape=(5, 4), seed=0, dtype=np.float64, gap=0.0):
    w = np.random.default_rng(seed).standard_normal(shape)
    return (w + gap * np.sign(w)).astype(dtype)


def test_hand_computed_penalties():
    loss, dw = l2_regularization(W, 0.1)
    assert loss == pytest.approx(0.5 * 0.1 * 14, rel=1e-15)
    np.testing.assert_allclose(dw, 0.1 * W, rtol=1e-15)
    loss, dw = l1_regularization(W, 0.1)
    assert loss == pytest.approx(0.1 * 6, rel=1e-15)
    np.testing.assert_allclose(dw, [[0.1, -0.1], [0.0, 0.1]], rtol=1e-15)  # 0 at w = 0
    loss, dw = elastic_net_regularization(W, 0.1, 0.2)
    assert loss == pytest.approx(0.6 + 0.5 * 0.2 * 14, rel=1e-15)
    np.testing.assert_allclose(dw, [[0.3, -0.5], [0.0, 0.7]], rtol=1e-15)


@pytest.mark.parametrize(
    "penalty",
    [
        lambda w: l2_regularization(w, 0.3),
        lambda w: l1_regularization(w, 0.3),
        lambda w: elastic_net_regularization(w, 0.3, 0.7),
    ],
    ids=["l2", "l1", "elastic_net"],
)
def test_penalty_gradients_match_numerical(penalty):
    # |w| has a kink at 0: entries are kept 0.1 away from it
    w = _w(seed=1, gap=0.1)
    _, dw = penalty(w)
    assert rel_error(dw, numeric_gradient(lambda: penalty(w)[0], w)) < 1e-7


def test_l2_step_is_weight_decay():
    # w - lr (dw_data + reg w) = (1 - lr reg) w - lr dw_data: the multiplicative shrink
    lr, reg = 0.1, 0.05
    w, dw_data = _w(seed=2), _w(seed=3)
    _, dw_reg = l2_regularization(w, reg)
    np.testing.assert_allclose(w - lr * (dw_data + dw_reg), (1 - lr * reg) * w - lr * dw_data,
                               rtol=1e-14, atol=1e-15)
    # and it is exactly what torch.optim.SGD's weight_decay does
    tw = torch.tensor(w, requires_grad=True)
    tw.grad = torch.tensor(dw_data)
    torch.optim.SGD([tw], lr=lr, weight_decay=reg).step()
    np.testing.assert_allclose(w - lr * (dw_data + dw_reg), tw.detach().numpy(), rtol=1e-14)


def test_soft_threshold_hand_values_and_exact_zeros():
    w = np.array([-3.0, -0.5, 0.0, 0.2, 1.0, 2.0])
    np.testing.assert_array_equal(soft_threshold(w, 1.0), [-2.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(soft_threshold(w, 0.0), w)


def test_soft_threshold_is_the_proximal_step_of_l1():
    # prox(w) = argmin_z 0.5 (z - w)² + t |z|, elementwise; compare with a fine grid search
    w = _w(shape=(7,), seed=4) * 2
    threshold = 0.6
    grid = np.linspace(-6, 6, 120_001)  # spacing 1e-4
    objective = 0.5 * (grid[None, :] - w[:, None]) ** 2 + threshold * np.abs(grid[None, :])
    best = grid[objective.argmin(axis=1)]
    np.testing.assert_allclose(soft_threshold(w, threshold), best, atol=1e-4)


def test_l1_gradient_steps_oscillate_but_proximal_steps_reach_zero():
    # minimise reg * |w| alone from w = 0.95 with lr = 0.1, reg = 1: subgradient steps of 0.1
    # jump over 0 and oscillate between 0.05 and -0.05; proximal steps stop at exactly 0
    lr, reg = 0.1, 1.0
    w_sub, w_prox = np.array([0.95]), np.array([0.95])
    for _ in range(20):
        w_sub = w_sub - lr * l1_regularization(w_sub, reg)[1]
        w_prox = soft_threshold(w_prox, lr * reg)
    assert w_prox[0] == 0.0
    assert abs(w_sub[0]) == pytest.approx(0.05, abs=1e-12)


def test_max_norm_hand_example():
    w = np.array([[3.0, 0.3], [4.0, 0.4]])  # column norms 5 and 0.5
    clipped = max_norm(w, 1.0)
    np.testing.assert_allclose(clipped[:, 0], [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(clipped[:, 1], w[:, 1])  # inside the ball: untouched
    np.testing.assert_array_equal(w, [[3.0, 0.3], [4.0, 0.4]])  # a copy, w is unchanged
    np.testing.assert_array_equal(max_norm(np.zeros((3, 2)), 1.0), 0.0)  # no 0 / 0


def test_max_norm_per_conv_filter_matches_torch_renorm():
    w = _w(shape=(6, 3, 3, 3), seed=5)
    clipped = max_norm(w, 4.0, axis=(1, 2, 3))
    norms = np.sqrt((clipped**2).sum(axis=(1, 2, 3)))
    assert norms.max() == pytest.approx(4.0, rel=1e-14)
    # torch.renorm scales by maxnorm / (norm + 1e-7): agreement to ~1e-7 relative
    expected = torch.renorm(torch.tensor(w), p=2, dim=0, maxnorm=4.0).numpy()
    np.testing.assert_allclose(clipped, expected, rtol=1e-7)


def test_float32_is_preserved():
    w = _w(dtype=np.float32)
    for _, dw in (l2_regularization(w, 0.1), l1_regularization(w, 0.1),
                  elastic_net_regularization(w, 0.1, 0.1)):
        assert dw.dtype == np.float32
    assert soft_threshold(w, 0.1).dtype == np.float32
    assert max_norm(w, 0.5).dtype == np.float32


def test_validation_messages():
    w = _w()
    with pytest.raises(ValueError, match=r"reg must be in \[0, inf\), got -0.1"):
        l2_regularization(w, -0.1)
    with pytest.raises(ValueError, match=r"reg must be in \[0, inf\), got -1.0"):
        l1_regularization(w, -1)
    with pytest.raises(ValueError, match=r"l2 must be in \[0, inf\)"):
        elastic_net_regularization(w, 0.1, -0.1)
    with pytest.raises(TypeError, match=r"reg must be a number, got NoneType"):
        l2_regularization(w, None)
    with pytest.raises(TypeError, match=r"w must be a floating-point array.*int64"):
        l2_regularization(np.arange(3), 0.1)
    with pytest.raises(ValueError, match=r"threshold must be in \[0, inf\), got -0.5"):
        soft_threshold(w, -0.5)
    with pytest.raises(ValueError, match=r"max_norm must be in \(0, inf\), got 0.0"):
        max_norm(w, 0)
