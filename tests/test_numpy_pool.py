"""cnnlib.numpy.pool: the slide's example, gradients, ties, naive == fast, parity with torch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from cnnlib.numpy import pool as pool_module
from cnnlib.numpy.gradcheck import check_layer_gradients
from cnnlib.numpy.pool import (
    avg_pool_backward,
    avg_pool_backward_naive,
    avg_pool_forward,
    avg_pool_forward_naive,
    max_pool_backward,
    max_pool_backward_naive,
    max_pool_forward,
    max_pool_forward_naive,
)

POOLS = {
    ("max", "fast"): (max_pool_forward, max_pool_backward),
    ("max", "naive"): (max_pool_forward_naive, max_pool_backward_naive),
    ("avg", "fast"): (avg_pool_forward, avg_pool_backward),
    ("avg", "naive"): (avg_pool_forward_naive, avg_pool_backward_naive),
}
KINDS = sorted(POOLS)
TORCH_POOLS = {"max": F.max_pool2d, "avg": F.avg_pool2d}

# (x shape, size, stride, pad): the classic 2x2/2, AlexNet's overlapping 3x3/2, odd sizes that
# leave rows unread, padding (at most half the window), rectangular windows and strides
GEOMETRIES = [
    ((2, 3, 4, 4), 2, 2, 0),
    ((2, 2, 7, 7), 3, 2, 0),
    ((1, 3, 7, 6), 3, 2, 1),
    ((2, 2, 5, 5), 3, 1, 1),
    ((1, 2, 9, 8), (3, 2), (2, 1), (1, 1)),
    ((2, 1, 5, 7), (2, 4), (1, 3), (1, 2)),
]


def _distinct(shape, seed=0, dtype=np.float64):
    """Inputs whose values are all different and at least 0.1 apart: no ties, no kinks near."""
    rng = np.random.default_rng(seed)
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 3.0).astype(dtype)


# ------------------------------------------------------------------ exact small examples

# the lecture's single depth slice, max-pooled 2x2 at stride 2
SLIDE_X = np.array([[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]], dtype=np.float64)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_slide_example_max_pool(impl):
    forward, backward = POOLS["max", impl]
    out, cache = forward(SLIDE_X[None, None])
    np.testing.assert_array_equal(out[0, 0], [[6.0, 8.0], [3.0, 4.0]])
    # each window's gradient goes to its maximum: the 6, the 8, the 3 and the bottom-right 4
    dx = backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]), cache)
    expected = np.zeros((4, 4))
    expected[1, 1], expected[1, 3], expected[2, 0], expected[3, 3] = 10.0, 20.0, 30.0, 40.0
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_slide_example_avg_pool(impl):
    forward, backward = POOLS["avg", impl]
    out, cache = forward(SLIDE_X[None, None])
    np.testing.assert_array_equal(out[0, 0], [[13 / 4, 21 / 4], [8 / 4, 8 / 4]])
    dx = backward(np.full((1, 1, 2, 2), 4.0), cache)
    np.testing.assert_array_equal(dx, np.ones((1, 1, 4, 4)))  # 4 spread as 1/4 to each input


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_ties_go_to_the_first_maximum(impl):
    # a constant input ties every window; 3x3 windows at stride 2 over 5x5 start at rows and
    # columns 0 and 2, and each sends its gradient to its own top-left corner only
    forward, backward = POOLS["max", impl]
    out, cache = forward(np.full((1, 1, 5, 5), 7.0), size=3, stride=2)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 7.0))
    dx = backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((5, 5))
    expected[0, 0], expected[0, 2], expected[2, 0], expected[2, 2] = 1.0, 2.0, 3.0, 4.0
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_ties_route_as_torch_does():
    # torch also picks the first maximum: check on inputs full of ties (small integers)
    x = np.random.default_rng(1).integers(0, 3, size=(2, 2, 7, 7)).astype(np.float64)
    dout = np.random.default_rng(2).standard_normal((2, 2, 3, 3))
    tx = torch.tensor(x, requires_grad=True)
    F.max_pool2d(tx, 3, 2).backward(torch.tensor(dout))
    for impl in ("fast", "naive"):
        forward, backward = POOLS["max", impl]
        _, cache = forward(x, size=3, stride=2)
        np.testing.assert_array_equal(backward(dout, cache), tx.grad.numpy())


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_overlapping_windows_accumulate(impl):
    # the 9 at the centre wins all four overlapping 2x2 windows (stride 1) and collects 1+2+3+4
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 9.0
    forward, backward = POOLS["max", impl]
    out, cache = forward(x, size=2, stride=1)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 9.0))
    dx = backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    assert dx[0, 0, 1, 1] == 10.0 and dx.sum() == 10.0
    # average pooling spreads each output over its window; the centre is in all four
    forward, backward = POOLS["avg", impl]
    out, cache = forward(x, size=2, stride=1)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 9.0 / 4))
    dx = backward(np.full((1, 1, 2, 2), 4.0), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])


@pytest.mark.parametrize("impl", ["fast", "naive"])
def test_padding_follows_torch(impl):
    # max pads with -inf: a negative input stays negative (zeros would have won every window)
    out, _ = POOLS["max", impl][0](-np.ones((1, 1, 2, 2)), size=2, stride=2, pad=1)
    np.testing.assert_array_equal(out, -np.ones((1, 1, 2, 2)))
    # average counts the padded zeros: each window holds one real 1 and three zeros
    out, _ = POOLS["avg", impl][0](np.ones((1, 1, 2, 2)), size=2, stride=2, pad=1)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 0.25))


# ------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("kind", KINDS, ids="-".join)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=range(len(GEOMETRIES)))
def test_gradients_match_numerical(kind, geometry):
    # average pooling is linear: only round-off remains (~1e-10 relative). Max pooling is
    # linear too away from ties: values 0.1 apart cannot swap winners under a 1e-5 nudge
    x_shape, size, stride, pad = geometry
    forward, backward = POOLS[kind]
    x = _distinct(x_shape, seed=3)
    errors = check_layer_gradients(forward, backward, x, size=size, stride=stride, pad=pad)
    assert len(errors) == 1
    assert errors[0] < 1e-7


# ------------------------------------------------------------------ naive == fast


@st.composite
def pool_layers(draw):
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    size = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    pad = (draw(st.integers(0, size[0] // 2)), draw(st.integers(0, size[1] // 2)))
    assume(size[0] <= h + 2 * pad[0] and size[1] <= w + 2 * pad[1])
    ties = draw(st.booleans())  # also sweep inputs full of ties: both must pick the same winner
    return (n, c, h, w), size, stride, pad, ties, draw(st.integers(0, 2**16))


@settings(max_examples=60, deadline=None)
@given(pool_layers())
def test_fast_equals_naive(layer):
    shape, size, stride, pad, ties, seed = layer
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=shape).astype(np.float64) if ties else rng.standard_normal(shape)
    for kind in ("max", "avg"):
        (fast_fwd, fast_bwd), (naive_fwd, naive_bwd) = POOLS[kind, "fast"], POOLS[kind, "naive"]
        out, cache = fast_fwd(x, size, stride, pad)
        out_naive, cache_naive = naive_fwd(x, size, stride, pad)
        # max is exact; the mean differs at most by the order of a few float64 additions
        np.testing.assert_allclose(out, out_naive, rtol=1e-12, atol=1e-12)
        dout = rng.standard_normal(out.shape)
        expected = naive_bwd(dout, cache_naive)
        for dx in (fast_bwd(dout, cache), fast_bwd(dout, cache_naive), naive_bwd(dout, cache)):
            np.testing.assert_allclose(dx, expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ parity with torch


@pytest.mark.parametrize("kind", KINDS, ids="-".join)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=range(len(GEOMETRIES)))
def test_matches_torch_pooling_and_autograd(kind, geometry):
    x_shape, size, stride, pad = geometry
    forward, backward = POOLS[kind]
    x = np.random.default_rng(4).standard_normal(x_shape)
    out, cache = forward(x, size=size, stride=stride, pad=pad)
    dout = np.random.default_rng(5).standard_normal(out.shape)
    dx = backward(dout, cache)
    tx = torch.tensor(x, requires_grad=True)
    # avg_pool2d's defaults count the padded zeros (count_include_pad=True), as ours do
    tout = TORCH_POOLS[kind[0]](tx, size, stride, pad)
    tout.backward(torch.tensor(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ dtypes


@pytest.mark.parametrize("kind", KINDS, ids="-".join)
def test_float32_in_float32_out(kind):
    forward, backward = POOLS[kind]
    x = _distinct((2, 3, 6, 6), seed=6, dtype=np.float32)
    out, cache = forward(x, size=3, stride=2, pad=1)
    dx = backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert dx.dtype == np.float32
    out64, cache64 = forward(x.astype(np.float64), size=3, stride=2, pad=1)
    np.testing.assert_allclose(out, out64, rtol=1e-6)
    np.testing.assert_allclose(dx, backward(np.ones_like(out64), cache64), rtol=1e-6)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("kind", KINDS, ids="-".join)
@pytest.mark.parametrize(
    "x, kwargs, error, message",
    [
        (np.zeros((3, 4, 4)), {}, ValueError, r"x must have 4 dimensions \(N, C, H, W\)"),
        (np.zeros((1, 1, 4, 4), dtype=int), {}, TypeError, r"x must be a floating-point array"),
        (np.zeros((1, 1, 4, 4)), {"size": 5}, ValueError,
         r"size: the window spans 5x5 .* padded input is only 4x4"),
        (np.zeros((1, 1, 2, 6)), {"size": 3, "pad": (0, 1)}, ValueError,
         r"size: the window spans 3x3 .* only 2x8"),
        (np.zeros((1, 1, 4, 4)), {"size": 2, "pad": 2}, ValueError,
         r"pad must be at most half the window size \(2, 2\).*pad <= \(1, 1\), got pad=\(2, 2\)"),
        (np.zeros((1, 1, 4, 4)), {"size": 3, "pad": (1, 2)}, ValueError,
         r"pad must be at most half.*got pad=\(1, 2\)"),
        (np.zeros((1, 1, 4, 4)), {"stride": 0}, ValueError, r"stride must be >= 1, got 0"),
        (np.zeros((1, 1, 4, 4)), {"size": 0}, ValueError, r"size must be >= 1, got 0"),
        (np.zeros((1, 1, 4, 4)), {"pad": -1}, ValueError, r"pad must be >= 0, got -1"),
        (np.zeros((1, 1, 4, 4)), {"size": 2.0}, TypeError, r"size must be an int"),
    ],
    ids=["ndim", "int", "too-big", "too-big-padded", "pad-half", "pad-half-w", "stride-0",
         "size-0", "pad-negative", "size-float"],
)
def test_forward_validation(kind, x, kwargs, error, message):
    with pytest.raises(error, match=message):
        POOLS[kind][0](x, **kwargs)


@pytest.mark.parametrize("kind", KINDS, ids="-".join)
def test_backward_validation(kind):
    forward, backward = POOLS[kind]
    out, cache = forward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 2, 2\).*\(2, 3, 2\)"):
        backward(out[..., 0], cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 3, 2, 2\).*\(2, 3, 4, 4\)"):
        backward(np.zeros((2, 3, 4, 4)), cache)
    with pytest.raises(TypeError, match=r"dout must be a floating-point array"):
        backward(out.astype(int), cache)


# ------------------------------------------------------------------ blocks, threads, odd dout


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=range(len(GEOMETRIES)))
def test_max_pool_blocks_and_threads_give_the_naive_result(monkeypatch, geometry):
    # a few planes per block (the cut is by size), on 1 and on 3 worker threads, with a NaN in
    # one block and ties in another: every block picks its winners as the naive loops do
    x_shape, size, stride, pad = geometry
    monkeypatch.setattr(pool_module, "_BLOCK_ELEMENTS", 40)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, *x_shape[2:]))
    x[0, 1, 0, 0] = np.nan
    x[2] = rng.integers(0, 2, size=x[2].shape)
    out_naive, cache_naive = max_pool_forward_naive(x, size, stride, pad)
    dout = rng.standard_normal(out_naive.shape)
    dx_naive = max_pool_backward_naive(dout, cache_naive)
    dx = {}
    for threads in (1, 3):
        with threadpool_limits(limits=threads, user_api="blas"):
            out, cache = max_pool_forward(x, size, stride, pad)
            np.testing.assert_array_equal(out, out_naive)
            assert np.array_equal(cache.argmax, max_pool_forward(x, size, stride, pad)[1].argmax)
            dx[threads] = max_pool_backward(dout, cache)
    np.testing.assert_array_equal(dx[3], dx[1])  # to the last bit
    # where windows overlap, the sums run in another order than the naive loops'
    np.testing.assert_allclose(dx[1], dx_naive, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=range(len(GEOMETRIES)))
def test_a_nan_or_inf_in_dout_reaches_only_its_winner_as_in_torch(geometry, bad):
    # dout * (argmax == k) would spread NaN to every input (inf * 0 is NaN): it must not
    x_shape, size, stride, pad = geometry
    x = _distinct(x_shape, seed=7)
    out, cache = max_pool_forward(x, size, stride, pad)
    dout = np.random.default_rng(8).standard_normal(out.shape)
    dout[0, 0, 0, 0] = bad
    tx = torch.tensor(x, requires_grad=True)
    F.max_pool2d(tx, size, stride, pad).backward(torch.tensor(dout))
    # NaN and inf where torch has them, 0 where torch has 0; overlaps summed in another order
    np.testing.assert_allclose(max_pool_backward(dout, cache), tx.grad.numpy(), rtol=1e-12,
                               atol=0)
