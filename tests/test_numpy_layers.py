"""cnnlib.numpy.layers: the affine layer."""

import numpy as np
import pytest
import torch

from cnnlib.numpy.gradcheck import check_layer_gradients
from cnnlib.numpy.layers import affine_backward, affine_forward


def _inputs(shape=(3, 2, 2, 3), units=5, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((int(np.prod(shape[1:])), units)).astype(dtype)
    b = rng.standard_normal(units).astype(dtype)
    return x, w, b


def test_affine_forward_hand_computed():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    w = np.array([[1.0, 0.0, -1.0], [0.5, 2.0, 1.0]])
    b = np.array([0.0, 1.0, 2.0])
    out, _ = affine_forward(x, w, b)
    np.testing.assert_array_equal(out, [[2.0, 5.0, 3.0], [5.0, 9.0, 3.0]])


def test_affine_flattens_volumes_and_restores_dx_shape():
    x, w, b = _inputs()
    out, cache = affine_forward(x, w, b)
    np.testing.assert_array_equal(out, x.reshape(3, 12) @ w + b)
    dx, dw, db = affine_backward(np.ones_like(out), cache)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)


def test_affine_gradients_match_numerical():
    # affine is linear in each argument, so the centred difference has no truncation error; the
    # round-off (~1e-16 * |out| / h ~ 1e-11 absolute) gives relative errors ~1e-9 on the smallest
    # gradient entries, well inside the 1e-7 every smooth layer must meet
    errors = check_layer_gradients(affine_forward, affine_backward, *_inputs(seed=1))
    assert max(errors) < 1e-7


def test_affine_matches_torch_autograd():
    x, w, b = _inputs(seed=2)
    dout = np.random.default_rng(3).standard_normal((3, 5))
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.linear(tx.reshape(3, -1), tw.T, tb)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    for ours, theirs in ((dx, tx), (dw, tw), (db, tb)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_affine_keeps_float32():
    out, cache = affine_forward(*_inputs(dtype=np.float32))
    grads = affine_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)


def test_affine_validation_messages():
    x, w, b = _inputs()
    with pytest.raises(ValueError, match=r"x must have at least 2 dimensions.*shape \(12,\)"):
        affine_forward(x.reshape(-1)[:12], w, b)
    with pytest.raises(ValueError, match=r"w must have shape \(12, M\).*flattens to \(3, 12\)"
                                         r".*got an array of shape \(10, 5\)"):
        affine_forward(x, w[:10], b)
    with pytest.raises(ValueError, match=r"b must have shape \(5,\) to match w's 5 output units,"
                                         r" got an array of shape \(4,\)"):
        affine_forward(x, w, b[:4])
    with pytest.raises(TypeError, match=r"x must be a floating-point array.*int64"):
        affine_forward(x.astype(np.int64), w, b)
    _, cache = affine_forward(x, w, b)
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 5\).*got.*\(3, 4\)"):
        affine_backward(np.ones((3, 4)), cache)
