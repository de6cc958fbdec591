"""cnnlib.numpy.batchnorm: gradients, running statistics, and parity with torch's batch_norm."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlib.numpy.batchnorm import (
    batchnorm_backward,
    batchnorm_backward_naive,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from cnnlib.numpy.gradcheck import check_layer_gradients


def _inputs(shape=(6, 4), seed=0, dtype=np.float64):
    """x with a different mean and spread per feature (axis 1), gamma and beta for it."""
    rng = np.random.default_rng(seed)
    features = shape[1]
    scale = rng.uniform(0.5, 3.0, size=(1, features) + (1,) * (len(shape) - 2))
    shift = rng.uniform(-5, 5, size=scale.shape)
    x = rng.standard_normal(shape) * scale + shift
    gamma = rng.uniform(0.5, 2.0, size=features)
    beta = rng.standard_normal(features)
    return x.astype(dtype), gamma.astype(dtype), beta.astype(dtype)


# ---------------------------------------------------------------- gradients


def test_batchnorm_train_gradients_match_numerical():
    # smooth in x, gamma and beta (var + eps > 0): relative error ~1e-9 expected
    x, gamma, beta = _inputs(seed=1)
    errors = check_layer_gradients(batchnorm_forward, batchnorm_backward, x, gamma, beta, {})
    assert len(errors) == 3
    assert max(errors) < 1e-7


def test_batchnorm_test_mode_gradients_match_numerical():
    x, gamma, beta = _inputs(seed=2)
    state = {"running_mean": np.array([0.5, -1.0, 2.0, 0.0]),
             "running_var": np.array([1.5, 0.5, 4.0, 2.0])}
    errors = check_layer_gradients(
        batchnorm_forward, batchnorm_backward, x, gamma, beta, state, train=False
    )
    assert max(errors) < 1e-7


def test_spatial_batchnorm_gradients_match_numerical():
    x, gamma, beta = _inputs(shape=(2, 3, 3, 2), seed=3)
    errors = check_layer_gradients(
        spatial_batchnorm_forward, spatial_batchnorm_backward, x, gamma, beta, {}
    )
    assert max(errors) < 1e-7


@pytest.mark.parametrize("train", [True, False])
def test_naive_backward_agrees_with_vectorised(train):
    x, gamma, beta = _inputs(seed=4)
    state = {}
    batchnorm_forward(x, gamma, beta, state)  # running statistics that are not 0 / 1
    out, cache = batchnorm_forward(x, gamma, beta, state, train=train)
    dout = np.random.default_rng(5).standard_normal(out.shape)
    for fast, naive in zip(batchnorm_backward(dout, cache), batchnorm_backward_naive(dout, cache),
                           strict=True):
        np.testing.assert_allclose(fast, naive, rtol=1e-12, atol=1e-13)


# ---------------------------------------------------------------- exact values


def test_train_output_is_normalised_per_feature():
    x, _, _ = _inputs(shape=(50, 3), seed=6)
    eps = 1e-5
    out, _ = batchnorm_forward(x, np.ones(3), np.zeros(3), {}, eps=eps)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-14)
    # biased variance of x_hat is var / (var + eps), a hair below 1
    var = x.var(axis=0)
    np.testing.assert_allclose(out.var(axis=0), var / (var + eps), rtol=1e-13)


@pytest.mark.parametrize("shape", [(8, 3), (2, 3, 4, 5)])
def test_gamma_and_beta_can_undo_the_normalisation(shape):
    x, _, _ = _inputs(shape=shape, seed=7)
    eps = 1e-5
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    gamma = np.sqrt(x.var(axis=axes) + eps)
    beta = x.mean(axis=axes)
    forward = batchnorm_forward if x.ndim == 2 else spatial_batchnorm_forward
    out, _ = forward(x, gamma, beta, {}, eps=eps)
    np.testing.assert_allclose(out, x, rtol=1e-12, atol=1e-12)


def test_running_statistics_start_at_zero_and_one_and_update_in_place():
    x, gamma, beta = _inputs(seed=8)
    state = {}
    batchnorm_forward(x, gamma, beta, state, momentum=0.75)
    mean, unbiased_var = x.mean(axis=0), x.var(axis=0, ddof=1)
    np.testing.assert_allclose(state["running_mean"], 0.25 * mean, rtol=1e-14)
    np.testing.assert_allclose(state["running_var"], 0.75 + 0.25 * unbiased_var, rtol=1e-14)
    running_mean = state["running_mean"]
    batchnorm_forward(x, gamma, beta, state, momentum=0.75)
    assert state["running_mean"] is running_mean  # the same array, updated in place
    np.testing.assert_allclose(running_mean, (0.75 * 0.25 + 0.25) * mean, rtol=1e-14)


def test_test_mode_uses_running_statistics_and_leaves_them_alone():
    x, gamma, beta = _inputs(seed=9)
    running_mean, running_var = np.arange(4.0), np.arange(1.0, 5.0)
    state = {"running_mean": running_mean.copy(), "running_var": running_var.copy()}
    out, _ = batchnorm_forward(x, gamma, beta, state, train=False, eps=1e-3)
    np.testing.assert_allclose(out, gamma * (x - running_mean) / np.sqrt(running_var + 1e-3)
                               + beta, rtol=1e-14)
    np.testing.assert_array_equal(state["running_mean"], running_mean)
    np.testing.assert_array_equal(state["running_var"], running_var)
    # one example at a time gives the same rows: test mode does not mix the batch
    row, _ = batchnorm_forward(x[2:3], gamma, beta, state, train=False, eps=1e-3)
    np.testing.assert_allclose(row[0], out[2], rtol=1e-15)


def test_spatial_statistics_are_per_channel_over_n_h_w():
    x, gamma, beta = _inputs(shape=(3, 2, 4, 5), seed=10)
    state = {}
    out, _ = spatial_batchnorm_forward(x, gamma, beta, state, momentum=0.0)
    np.testing.assert_allclose(state["running_mean"], x.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(state["running_var"], x.var(axis=(0, 2, 3), ddof=1), rtol=1e-13)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), beta, atol=1e-13)
    assert out.shape == x.shape and out.flags.c_contiguous


# ---------------------------------------------------------------- parity with PyTorch

TORCH_STEPS = 3


@pytest.mark.parametrize("shape", [(7, 4), (3, 4, 3, 2)])
def test_train_and_eval_match_torch_including_running_statistics(shape):
    # our momentum (weight of the old value) 0.8 is torch's momentum (weight of the new) 0.2
    ours_momentum, eps = 0.8, 1e-4
    forward = batchnorm_forward if len(shape) == 2 else spatial_batchnorm_forward
    backward = batchnorm_backward if len(shape) == 2 else spatial_batchnorm_backward
    _, gamma, beta = _inputs(shape=shape)
    state = {}
    torch_mean, torch_var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    for step in range(TORCH_STEPS):
        x, _, _ = _inputs(shape=shape, seed=20 + step)  # a new batch each step
        dout = np.random.default_rng(30 + step).standard_normal(shape)
        out, cache = forward(x, gamma, beta, state, momentum=ours_momentum, eps=eps)
        dx, dgamma, dbeta = backward(dout, cache)
        tx, tgamma, tbeta = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        tout = F.batch_norm(tx, torch_mean, torch_var, tgamma, tbeta, training=True,
                            momentum=1 - ours_momentum, eps=eps)
        tout.backward(torch.tensor(dout))
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
        for ours, theirs in ((dx, tx), (dgamma, tgamma), (dbeta, tbeta)):
            np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(state["running_mean"], torch_mean.numpy(), rtol=1e-13)
        np.testing.assert_allclose(state["running_var"], torch_var.numpy(), rtol=1e-13)

    x, _, _ = _inputs(shape=shape, seed=99)
    out, _ = forward(x, gamma, beta, state, train=False, eps=eps)
    tout = F.batch_norm(torch.tensor(x), torch_mean, torch_var, torch.tensor(gamma),
                        torch.tensor(beta), training=False, eps=eps)
    np.testing.assert_allclose(out, tout.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- dtype and validation


@pytest.mark.parametrize("shape", [(6, 4), (2, 4, 3, 3)])
def test_float32_is_preserved(shape):
    x, gamma, beta = _inputs(shape=shape, dtype=np.float32)
    forward = batchnorm_forward if len(shape) == 2 else spatial_batchnorm_forward
    backward = batchnorm_backward if len(shape) == 2 else spatial_batchnorm_backward
    state = {}
    for train in (True, False):
        out, cache = forward(x, gamma, beta, state, train=train)
        assert out.dtype == np.float32
        assert all(g.dtype == np.float32 for g in backward(np.ones_like(out), cache))
    assert state["running_mean"].dtype == state["running_var"].dtype == np.float32


def test_validation_messages():
    x, gamma, beta = _inputs()
    with pytest.raises(ValueError, match=r"x must have 2 dimensions \(N, D\), got shape \(6, 4, 1"):
        batchnorm_forward(x[..., None], gamma, beta, {})
    with pytest.raises(ValueError, match=r"x must have 4 dimensions \(N, C, H, W\)"):
        spatial_batchnorm_forward(x, gamma, beta, {})
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\) to match x's 4 features, "
                                         r"got an array of shape \(3,\)"):
        batchnorm_forward(x, gamma[:3], beta, {})
    with pytest.raises(ValueError, match=r"beta must have shape \(4,\).*shape \(5,\)"):
        batchnorm_forward(x, gamma, np.zeros(5), {})
    with pytest.raises(ValueError, match=r"state\['running_var'\] must have shape \(4,\)"):
        batchnorm_forward(x, gamma, beta, {"running_var": np.ones(3)})
    with pytest.raises(TypeError, match=r"state must be a dict .* got NoneType"):
        batchnorm_forward(x, gamma, beta, None)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\], got 1.5"):
        batchnorm_forward(x, gamma, beta, {}, momentum=1.5)
    with pytest.raises(ValueError, match=r"eps must be in \(0, inf\), got 0.0"):
        batchnorm_forward(x, gamma, beta, {}, eps=0)
    with pytest.raises(ValueError, match=r"at least 2 values per feature.*got shape \(1, 4\)"):
        batchnorm_forward(x[:1], gamma, beta, {})
    with pytest.raises(TypeError, match=r"x must be a floating-point array.*int64"):
        batchnorm_forward(x.astype(np.int64), gamma, beta, {})
    with pytest.raises(ValueError, match=r"at least 2 values per channel.*\(1, 4, 1, 1\)"):
        spatial_batchnorm_forward(x[:1, :, None, None], gamma, beta, {})
    spatial_batchnorm_forward(x[:1, :, None, None], gamma, beta, {}, train=False)  # fine
    _, cache = batchnorm_forward(x, gamma, beta, {})
    with pytest.raises(ValueError, match=r"dout must have shape \(6, 4\)"):
        batchnorm_backward(np.ones((6, 3)), cache)
