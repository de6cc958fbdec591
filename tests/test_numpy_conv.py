"""cnnlib.numpy.conv: exact examples, numerical gradients, naive == fast, parity with torch."""

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info, threadpool_limits

from cnnlib.numpy import _conv_blocks as blocks_module
from cnnlib.numpy import _workers as workers_module
from cnnlib.numpy import conv as conv_module
from cnnlib.numpy._windows import kernel_span, layer_geometry
from cnnlib.numpy.conv import (
    col2im,
    conv_backward,
    conv_backward_naive,
    conv_forward,
    conv_forward_naive,
    im2col,
    window_view,
)
from cnnlib.numpy.gradcheck import check_layer_gradients, rel_error

FORWARDS = {"fast": conv_forward, "naive": conv_forward_naive}
BACKWARDS = {"fast": conv_backward, "naive": conv_backward_naive}

# (x shape, w shape, stride, pad, dilation): square and rectangular kernels, strides that leave
# rows unread (the floor), unequal padding, dilation, a 1x1 kernel
GEOMETRIES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 1, 1),
    ((2, 3, 7, 6), (4, 3, 3, 2), 2, (1, 0), 1),
    ((1, 2, 8, 7), (3, 2, 2, 3), (1, 2), 2, 2),
    ((2, 2, 9, 8), (3, 2, 3, 3), 3, 1, (2, 1)),
    ((3, 4, 4, 4), (2, 4, 1, 1), 1, 0, 1),
]


def _layer(x_shape, w_shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b


def _torch_conv(x, w, b, dout, stride, pad, dilation):
    """torch's conv2d output and autograd gradients (the independent oracle), as NumPy."""
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = F.conv2d(tx, tw, tb, stride=stride, padding=pad, dilation=dilation)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


# ------------------------------------------------------------------ exact small examples

X_3X3 = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


@pytest.mark.parametrize("kind", ["fast", "naive"])
def test_hand_computed_convolution_and_gradients(kind):
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out, cache = FORWARDS[kind](X_3X3, w, np.array([1.0]))
    # out[i, j] = 1*x[i, j] + 2*x[i, j+1] + 3*x[i+1, j] + 4*x[i+1, j+1] + 1
    np.testing.assert_array_equal(out, [[[[38.0, 48.0], [68.0, 78.0]]]])
    dx, dw, db = BACKWARDS[kind](np.ones_like(out), cache)
    # each weight's gradient: the sum of the 2x2 block of x it meets; each pixel's: the sum of
    # the weights that touch it (the centre is under all four windows)
    np.testing.assert_array_equal(dw, [[[[12.0, 16.0], [24.0, 28.0]]]])
    np.testing.assert_array_equal(dx, [[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]])
    np.testing.assert_array_equal(db, [4.0])


@pytest.mark.parametrize("kind", ["fast", "naive"])
def test_hand_computed_stride_and_padding(kind):
    # a 2x2 box filter at stride 2 over x padded by one ring of zeros: windows {0,0,0,1},
    # {0,0,2,3}, {0,4,0,7}, {5,6,8,9}
    out, _ = FORWARDS[kind](X_3X3, np.ones((1, 1, 2, 2)), np.zeros(1), stride=2, pad=1)
    np.testing.assert_array_equal(out, [[[[1.0, 5.0], [11.0, 28.0]]]])


@pytest.mark.parametrize("kind", ["fast", "naive"])
def test_hand_computed_dilation(kind):
    # dilation 2 spreads a 2x2 kernel over the corners of the 3x3 input: 1*1 + 2*3 + 3*7 + 4*9
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out, _ = FORWARDS[kind](X_3X3, w, np.zeros(1), dilation=2)
    np.testing.assert_array_equal(out, [[[[64.0]]]])


def test_two_channels_sum_into_one_output():
    # a filter's response adds up over the input channels: channel 1 = 10 x channel 0
    x = np.concatenate([X_3X3, 10 * X_3X3], axis=1)
    w = np.ones((1, 2, 3, 3))
    for forward in FORWARDS.values():
        out, _ = forward(x, w, np.zeros(1))
        np.testing.assert_array_equal(out, [[[[45.0 + 450.0]]]])


# ------------------------------------------------------------------ numerical gradients


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=range(len(GEOMETRIES)))
def test_fast_gradients_match_numerical(geometry):
    # the convolution is linear in x, w and b, so the centred difference has no truncation
    # error: what remains is round-off, ~1e-10 relative, far inside the 1e-7 bound
    x_shape, w_shape, stride, pad, dilation = geometry
    x, w, b = _layer(x_shape, w_shape, seed=1)
    errors = check_layer_gradients(
        conv_forward, conv_backward, x, w, b, stride=stride, pad=pad, dilation=dilation
    )
    assert len(errors) == 3
    assert max(errors) < 1e-7


def test_naive_gradients_match_numerical():
    x, w, b = _layer((2, 2, 6, 5), (3, 2, 3, 2), seed=2)
    errors = check_layer_gradients(
        conv_forward_naive, conv_backward_naive, x, w, b, stride=(2, 1), pad=1, dilation=(1, 2)
    )
    assert max(errors) < 1e-7


# ------------------------------------------------------------------ naive == fast


@st.composite
def conv_layers(draw):
    """A random, valid layer geometry: rectangular kernels, strides, pads and dilations."""
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    for axis, size in enumerate((h, w)):
        assume(dilation[axis] * (kernel[axis] - 1) + 1 <= size + 2 * pad[axis])
    return (n, c, h, w), (f, c, *kernel), stride, pad, dilation, draw(st.integers(0, 2**16))


@settings(max_examples=60, deadline=None)
@given(conv_layers())
def test_fast_equals_naive_forward_and_backward(layer):
    x_shape, w_shape, stride, pad, dilation, seed = layer
    x, w, b = _layer(x_shape, w_shape, seed)
    out_naive, cache_naive = conv_forward_naive(x, w, b, stride, pad, dilation)
    out_fast, cache_fast = conv_forward(x, w, b, stride, pad, dilation)
    # the same sums in a different order: float64 round-off, ~1e-15 of the values' size
    np.testing.assert_allclose(out_fast, out_naive, rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(seed + 1).standard_normal(out_naive.shape)
    expected = conv_backward_naive(dout, cache_naive)
    # each backward accepts the other forward's cache
    for grads in (conv_backward(dout, cache_fast), conv_backward(dout, cache_naive),
                  conv_backward_naive(dout, cache_fast)):
        for ours, reference in zip(grads, expected, strict=True):
            np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("block_columns", [1, 30, 100])
def test_fast_path_blocks(monkeypatch, stride, block_columns):
    # blocks of 1 image, of several images, and a shorter last block must all give the same
    # layer: 7 images of 5x5 outputs (stride 1) or 3x3 (stride 2)
    monkeypatch.setattr(blocks_module, "_BLOCK_COLUMNS", block_columns)
    x, w, b = _layer((7, 2, 5, 5), (3, 2, 3, 3), seed=3)
    out, cache = conv_forward(x, w, b, stride=stride, pad=1)
    out_naive, cache_naive = conv_forward_naive(x, w, b, stride=stride, pad=1)
    np.testing.assert_allclose(out, out_naive, rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(4).standard_normal(out.shape)
    for ours, reference in zip(conv_backward(dout, cache), conv_backward_naive(dout, cache_naive),
                               strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


def _plan(x_shape, w_shape, stride=1, pad=1):
    """The backward pass's BlockPlan for a layer (float32), as conv_backward makes it."""
    n, c, h, w = x_shape
    kernel = w_shape[2:]
    stride, pad, dilation, out_size = layer_geometry(x_shape, kernel, stride, pad, 1, "w")
    padded = (n, c, h + 2 * pad[0], w + 2 * pad[1])
    return blocks_module.BlockPlan(padded, kernel, stride, dilation, out_size, np.float32)


def _full_dx(x_shape, w_shape, stride=1, pad=1, dilation=1, finite=True):
    """Whether conv_backward gets dx as the full convolution for this layer."""
    kernel = w_shape[2:]
    stride, pad, dilation, _ = layer_geometry(x_shape, kernel, stride, pad, dilation, "w")
    span = kernel_span(kernel, dilation)
    return blocks_module.full_dx_pays(x_shape[1], stride, pad, span, finite)


@pytest.mark.parametrize("x_shape, w_shape, stride, wide, full_dx", [
    # ResNet-20's 3x3 layers: wide columns (C*9 <= 288, Wp <= 1.2 W'), dx a full convolution
    ((128, 16, 32, 32), (16, 16, 3, 3), 1, True, True),
    ((128, 32, 16, 16), (32, 32, 3, 3), 1, True, True),
    # 64 channels at 8x8: plain columns (C*9 = 576); VGG's wider layers alike
    ((128, 64, 8, 8), (64, 64, 3, 3), 1, False, True),
    ((32, 128, 8, 8), (256, 128, 3, 3), 1, False, True),
    ((32, 256, 4, 4), (256, 256, 3, 3), 1, False, True),
    # a first layer's 3 channels: col2im (the full convolution's product would be 3 rows tall)
    ((128, 3, 32, 32), (16, 3, 3, 3), 1, True, False),
    # stride 2: plain columns, col2im
    ((128, 16, 32, 32), (32, 16, 3, 3), 2, False, False),
])
def test_the_plan_chooses_columns_and_dx_as_measured(x_shape, w_shape, stride, wide, full_dx):
    assert _plan(x_shape, w_shape, stride).wide == wide
    assert _full_dx(x_shape, w_shape, stride) == full_dx


def test_the_full_convolution_needs_stride_1_a_pad_it_can_undo_and_finite_weights():
    x_shape, w_shape = (2, 16, 8, 8), (16, 16, 3, 3)
    assert _full_dx(x_shape, w_shape, pad=2)  # K_eff - 1 - pad = 0: no pad
    assert not _full_dx(x_shape, w_shape, pad=3)  # it would need a negative pad
    assert _full_dx(x_shape, w_shape, pad=4, dilation=3)  # K_eff = 7
    assert not _full_dx(x_shape, w_shape, stride=(1, 2))
    assert not _full_dx(x_shape, w_shape, finite=False)
    assert not _full_dx((2, 15, 8, 8), (16, 15, 3, 3))


def test_blocks_hold_about_the_same_numbers_whatever_the_rows():
    # 288 rows (32 channels, 3x3): 4096 columns a block = 16 images of 16x16 (wide: 16x18 = 288
    # columns an image, 14 images); 27 rows (3 channels): 43,690 columns = 40 images of 32x34,
    # at most a quarter of the batch (_MIN_BLOCKS): 32; 2304 rows: 512 columns at least
    assert _plan((128, 32, 16, 16), (32, 32, 3, 3)).blocks[0] == slice(0, 14)
    assert _plan((128, 3, 32, 32), (16, 3, 3, 3)).blocks[0] == slice(0, 32)
    assert _plan((32, 256, 4, 4), (512, 256, 3, 3)).blocks[0] == slice(0, 32)
    assert _plan((128, 256, 8, 8), (256, 256, 3, 3)).blocks[0] == slice(0, 8)  # 512 // 64


@pytest.mark.parametrize("channels, filters, size, pad, dilation", [
    (33, 33, 8, 1, 1),  # plain columns; dx a full convolution (of dout: plain too)
    (16, 20, 8, 1, 1),  # wide columns; a full convolution, its forward of dout wide as well
    (16, 16, 9, 3, (2, 1)),  # dilated: the full pad is K_eff - 1 - pad = (1, 0)
    (16, 16, 8, 3, 1),  # a pad larger than K - 1: col2im
    (2, 5, 12, 1, 1),  # wide columns, col2im (the wide adds)
    (5, 5, 12, 1, 1),  # wide columns, col2im: fewer than 16 channels
    (33, 34, 8, 1, 1),  # plain columns, a full convolution
])
def test_every_way_to_dx_equals_the_loops(channels, filters, size, pad, dilation):
    x, w, b = _layer((2, channels, size, size), (filters, channels, 3, 3), seed=21)
    full = _full_dx(x.shape, w.shape, 1, pad, dilation)
    assert full == (channels >= 16 and pad <= 2 * (dilation if isinstance(dilation, int) else
                                                    min(dilation)))
    out, cache = conv_forward(x, w, b, stride=1, pad=pad, dilation=dilation)
    out_naive, cache_naive = conv_forward_naive(x, w, b, stride=1, pad=pad, dilation=dilation)
    np.testing.assert_allclose(out, out_naive, rtol=1e-12, atol=1e-12)
    dout = np.random.default_rng(22).standard_normal(out.shape)
    for ours, reference in zip(conv_backward(dout, cache), conv_backward_naive(dout, cache_naive),
                               strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_the_full_convolution_is_what_conv_backward_computes(monkeypatch):
    # a meta-check: with the full convolution broken, the backward's dx is wrong (the method
    # is used, and the comparison above would see it)
    x, w, b = _layer((2, 16, 6, 6), (8, 16, 3, 3), seed=25)
    out, cache = conv_forward(x, w, b, pad=1)
    dout = np.random.default_rng(26).standard_normal(out.shape)
    good = conv_backward(dout, cache)[0]
    monkeypatch.setattr(conv_module, "_dx_by_full_convolution",
                        lambda *args: np.zeros_like(good))
    assert not np.allclose(conv_backward(dout, cache)[0], good)


@pytest.mark.parametrize("channels, filters, size", [(33, 33, 8), (2, 5, 12), (16, 5, 12)])
@pytest.mark.parametrize("where", ["x", "w", "dout"])
def test_a_nan_or_inf_reaches_the_gradients_torch_sends_it_to(channels, filters, size, where):
    # the wide rows and the full convolution multiply junk zeros with inputs: with a NaN weight
    # or an infinite pixel that would spread NaN to dx pixels and dw taps that torch leaves
    # finite, so the backward pass uses plain columns and col2im then; a NaN in dout goes
    # through the full convolution as through torch's
    x, w, b = _layer((2, channels, size, size), (filters, channels, 3, 3), seed=23)
    if where == "x":
        x[0, 0, 0, 0] = np.inf  # read by 4 of the 9 taps only (the top-left corner)
    elif where == "w":
        w[0, 0, 2, 2] = np.nan  # the bottom-right tap: never meets the last row or column
    out, cache = conv_forward(x, w, b, stride=1, pad=1)
    dout = np.random.default_rng(24).standard_normal(out.shape)
    if where == "dout":
        dout[1, 0, 3, 4], dout[0, -1, 0, 0] = np.nan, -np.inf
    _, *ref_grads = _torch_conv(x, w, b, dout, (1, 1), (1, 1), (1, 1))
    for ours, reference in zip(conv_backward(dout, cache), ref_grads, strict=True):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(reference))
        finite = np.isfinite(reference)
        np.testing.assert_allclose(ours[finite], reference[finite], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("stride", [1, 2])
def test_fast_path_threads_give_the_serial_result(monkeypatch, stride):
    # with BLAS allowed 3 threads the blocks run on 3 worker threads (even on a 1-CPU machine);
    # each block does the same arithmetic as in one thread and the shares of dw and db are
    # summed in block order, so the result is the serial one to the last bit
    monkeypatch.setattr(blocks_module, "_BLOCK_COLUMNS", 30)
    x, w, b = _layer((9, 2, 6, 5), (3, 2, 3, 2), seed=13)
    out_naive, cache_naive = conv_forward_naive(x, w, b, stride=stride, pad=1)
    dout = np.random.default_rng(14).standard_normal(out_naive.shape)
    results = {}
    for threads in (1, 3):
        with threadpool_limits(limits=threads, user_api="blas"):
            assert workers_module.worker_count() == threads
            out, cache = conv_forward(x, w, b, stride=stride, pad=1)
            results[threads] = (out, *conv_backward(dout, cache))
            # the workers hold BLAS to one thread only while they run
            blas = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
            assert [lib["num_threads"] for lib in blas] == [threads] * len(blas)
    for threaded, serial in zip(results[3], results[1], strict=True):
        np.testing.assert_array_equal(threaded, serial)
    expected = (out_naive, *conv_backward_naive(dout, cache_naive))
    for ours, reference in zip(results[3], expected, strict=True):
        np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ parity with torch


@pytest.mark.parametrize("kind", ["fast", "naive"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=range(len(GEOMETRIES)))
def test_matches_torch_conv2d_and_autograd(kind, geometry):
    x_shape, w_shape, stride, pad, dilation = geometry
    x, w, b = _layer(x_shape, w_shape, seed=5)
    out, cache = FORWARDS[kind](x, w, b, stride=stride, pad=pad, dilation=dilation)
    dout = np.random.default_rng(6).standard_normal(out.shape)
    grads = BACKWARDS[kind](dout, cache)
    expected = _torch_conv(x, w, b, dout, stride, pad, dilation)
    assert out.shape == expected[0].shape
    # float64 on both sides, sums of at most a few hundred products: agreement to ~1e-14
    for ours, theirs in zip((out, *grads), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_matches_torch_on_a_cifar_sized_layer():
    # the fast path's stride-1 layout with several blocks of images, at a realistic size
    x, w, b = _layer((6, 3, 32, 32), (8, 3, 5, 5), seed=7)
    out, cache = conv_forward(x, w, b, stride=1, pad=2)
    dout = np.random.default_rng(8).standard_normal(out.shape)
    expected = _torch_conv(x, w, b, dout, 1, 2, 1)
    for ours, theirs in zip((out, *conv_backward(dout, cache)), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------ dtypes and memory layout


@pytest.mark.parametrize("kind", ["fast", "naive"])
@pytest.mark.parametrize("stride", [1, 2])
def test_float32_in_float32_out(kind, stride):
    x, w, b = _layer((2, 3, 6, 6), (4, 3, 3, 3), seed=9, dtype=np.float32)
    out, cache = FORWARDS[kind](x, w, b, stride=stride, pad=1)
    dout = np.random.default_rng(10).standard_normal(out.shape).astype(np.float32)
    grads = BACKWARDS[kind](dout, cache)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * 3
    # and float32 computes the same layer: 27-term dot products of O(1) numbers lose ~1e-6
    out64, cache64 = FORWARDS[kind](*(a.astype(np.float64) for a in (x, w, b)), stride=stride,
                                    pad=1)
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-4)
    for g32, g64 in zip(grads, BACKWARDS[kind](dout.astype(np.float64), cache64), strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


def test_gradients_come_back_in_each_arrays_dtype():
    # mixed inputs are computed in the wider type; each gradient has its own array's dtype
    x, w, b = _layer((1, 2, 4, 4), (2, 2, 3, 3), seed=11)
    out, cache = conv_forward(x.astype(np.float32), w, b)
    assert out.dtype == np.float64
    dx, dw, db = conv_backward(np.ones_like(out), cache)
    assert (dx.dtype, dw.dtype, db.dtype) == (np.float32, np.float64, np.float64)


def test_non_contiguous_input():
    x, w, b = _layer((5, 5, 3, 2), (4, 3, 3, 3), seed=12)
    x_view = x.transpose(3, 2, 0, 1)  # (2, 3, 5, 5), not C-contiguous
    out, _ = conv_forward(x_view, w, b, pad=1)
    out_copy, _ = conv_forward(np.ascontiguousarray(x_view), w, b, pad=1)
    np.testing.assert_array_equal(out, out_copy)


# ------------------------------------------------------------------ 1x1 kernels without pad


# x shape, w shape, stride: every pixel; every other row and column (the last column of a 7x6
# image is one the floor leaves unread); unequal strides
POINTWISE = [
    ((3, 4, 5, 5), (6, 4, 1, 1), 1),
    ((2, 3, 7, 6), (5, 3, 1, 1), 2),
    ((2, 3, 7, 8), (2, 3, 1, 1), (1, 3)),
]


def _no_im2col(*args, **kwargs):
    raise AssertionError("a 1x1 kernel without pad should not build columns")


@pytest.mark.parametrize("x_shape, w_shape, stride", POINTWISE)
def test_a_1x1_kernel_is_one_product_per_image(monkeypatch, x_shape, w_shape, stride):
    # the pointwise path builds no columns: with im2col's copies disabled it still gives the
    # loops' and torch's numbers, unread pixels (stride 2) getting a zero gradient
    monkeypatch.setattr(blocks_module, "im2col_padded", _no_im2col)
    x, w, b = _layer(x_shape, w_shape, seed=31)
    out, cache = conv_forward(x, w, b, stride=stride)
    dout = np.random.default_rng(32).standard_normal(out.shape)
    expected = _torch_conv(x, w, b, dout, stride, 0, 1)
    for ours, theirs in zip((out, *conv_backward(dout, cache)), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    out_naive, _ = conv_forward_naive(x, w, b, stride=stride)
    np.testing.assert_allclose(out, out_naive, rtol=1e-12, atol=1e-12)
    if stride == 2:
        dx = conv_backward(dout, cache)[0]
        assert not dx[:, :, 1::2].any() and not dx[:, :, :, 1::2].any()
        assert dx[:, :, ::2, ::2].all()  # the pixels read: each has a gradient


def test_a_1x1_kernel_keeps_dtypes_and_does_not_touch_x():
    x, w, b = _layer((2, 3, 4, 4), (5, 3, 1, 1), seed=33)
    x32 = x.astype(np.float32)
    x_before = x32.copy()
    out, cache = conv_forward(x32, w.astype(np.float32), b.astype(np.float32))
    assert out.dtype == np.float32
    grads = conv_backward(np.ones_like(out), cache)
    assert [g.dtype for g in grads] == [np.float32] * 3
    np.testing.assert_array_equal(x32, x_before)
    # mixed: computed in float64, each gradient in its array's dtype
    out, cache = conv_forward(x32, w, b)
    assert out.dtype == np.float64
    dx, dw, db = conv_backward(np.ones_like(out), cache)
    assert (dx.dtype, dw.dtype, db.dtype) == (np.float32, np.float64, np.float64)
    # a non-contiguous x gives the contiguous copy's numbers
    x_view = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    np.testing.assert_array_equal(conv_forward(x_view, w, b)[0], conv_forward(x, w, b)[0])
    # an empty batch: empty outputs and zero weight gradients, as torch
    out, cache = conv_forward(x[:0], w, b)
    assert out.shape == (0, 5, 4, 4)
    dx, dw, db = conv_backward(out, cache)
    assert dx.shape == (0, 3, 4, 4) and not dw.any() and not db.any()


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("where", ["x", "w"])
def test_a_1x1_kernel_sends_nan_where_torch_does(stride, where):
    x, w, b = _layer((2, 3, 5, 5), (4, 3, 1, 1), seed=34)
    if where == "x":
        x[0, 1, 2, 2] = np.nan  # read at both strides
        x[1, 0, 1, 1] = np.inf  # read at stride 1 only
    else:
        w[2, 1, 0, 0] = np.nan
    out, cache = conv_forward(x, w, b, stride=stride)
    dout = np.random.default_rng(35).standard_normal(out.shape)
    expected = _torch_conv(x, w, b, dout, stride, 0, 1)
    for ours, reference in zip((out, *conv_backward(dout, cache)), expected, strict=True):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(reference))
        finite = np.isfinite(reference)
        np.testing.assert_allclose(ours[finite], reference[finite], rtol=1e-12, atol=1e-12)


def test_a_1x1_kernel_on_threads_gives_the_serial_result(monkeypatch):
    monkeypatch.setattr(blocks_module, "_BLOCK_COLUMNS", 1)  # a block per image
    x, w, b = _layer((9, 3, 4, 5), (2, 3, 1, 1), seed=36)
    dout = np.random.default_rng(37).standard_normal((9, 2, 4, 5))
    results = {}
    for threads in (1, 3):
        with threadpool_limits(limits=threads, user_api="blas"):
            out, cache = conv_forward(x, w, b)
            results[threads] = (out, *conv_backward(dout, cache))
    for threaded, serial in zip(results[3], results[1], strict=True):
        np.testing.assert_array_equal(threaded, serial)


# ------------------------------------------------------------------ the building blocks


def test_window_view_is_a_read_only_view_with_the_windows():
    x_padded = np.arange(2 * 2 * 7 * 8, dtype=np.float64).reshape(2, 2, 7, 8)
    windows = window_view(x_padded, (3, 2), stride=(2, 3), dilation=(2, 1))
    # H' = (7 - 5) // 2 + 1 = 2, W' = (8 - 2) // 3 + 1 = 3
    assert windows.shape == (2, 2, 2, 3, 3, 2)
    assert np.shares_memory(windows, x_padded)
    assert not windows.flags.writeable
    for n, c, i, j, p, q in np.ndindex(windows.shape):
        assert windows[n, c, i, j, p, q] == x_padded[n, c, i * 2 + p * 2, j * 3 + q]


def test_im2col_layout():
    x, w, _ = _layer((2, 3, 5, 4), (4, 3, 2, 3), seed=13)
    stride, pad, dilation = (2, 1), (1, 0), (1, 1)
    cols = im2col(x, (2, 3), stride, pad, dilation)
    out_h, out_w = 3, 2  # (5 + 2 - 2) // 2 + 1, (4 - 3) // 1 + 1
    assert cols.shape == (3 * 2 * 3, 2 * out_h * out_w)
    x_padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    for c, p, q, n, i, j in np.ndindex(3, 2, 3, 2, out_h, out_w):
        row, col = c * 6 + p * 3 + q, n * out_h * out_w + i * out_w + j
        assert cols[row, col] == x_padded[n, c, i * 2 + p, j + q]
    # the layout makes the convolution one matrix product
    out = (w.reshape(4, -1) @ cols).reshape(4, 2, out_h, out_w).transpose(1, 0, 2, 3)
    expected, _ = conv_forward_naive(x, w, np.zeros(4), stride, pad, dilation)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_col2im_counts_the_windows_over_each_pixel():
    # folding columns of ones back counts, per pixel, the 3x3 windows (pad 1) that read it
    cols = np.ones((9, 16))
    counts = col2im(cols, (1, 1, 4, 4), 3, pad=1)
    np.testing.assert_array_equal(
        counts[0, 0], [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]]
    )


@pytest.mark.parametrize("stride, pad, dilation", [(1, 1, 1), (2, 0, 1), ((1, 2), (2, 1), 2)])
def test_col2im_is_the_adjoint_of_im2col(stride, pad, dilation):
    # <im2col(x), cols> == <x, col2im(cols)>: what makes col2im the backward of im2col
    rng = np.random.default_rng(14)
    x = rng.standard_normal((2, 3, 6, 7))
    cols_shape = im2col(x, (2, 3), stride, pad, dilation).shape
    cols = rng.standard_normal(cols_shape)
    lhs = np.sum(im2col(x, (2, 3), stride, pad, dilation) * cols)
    rhs = np.sum(x * col2im(cols, x.shape, (2, 3), stride, pad, dilation))
    assert rel_error(lhs, rhs) < 1e-12


# ------------------------------------------------------------------ validation


def _good():
    return _layer((2, 3, 5, 5), (4, 3, 3, 3))


@pytest.mark.parametrize("kind", ["fast", "naive"])
@pytest.mark.parametrize(
    "change, error, message",
    [
        (lambda x, w, b, kw: (x[0], w, b, kw), ValueError, r"x must have 4 dimensions"),
        (lambda x, w, b, kw: (x, w[0], b, kw), ValueError, r"w must have 4 dimensions"),
        (lambda x, w, b, kw: (x, w, b[:, None], kw), ValueError, r"b must have shape \(4,\)"),
        (lambda x, w, b, kw: (x, w, b[:3], kw), ValueError, r"b must have shape \(4,\).*\(3,\)"),
        (lambda x, w, b, kw: (x, w[:, :2], b, kw), ValueError,
         r"w must have shape \(F, 3, KH, KW\).*3 channels.*\(4, 2, 3, 3\)"),
        (lambda x, w, b, kw: (x.astype(int), w, b, kw), TypeError,
         r"x must be a floating-point array.*int"),
        (lambda x, w, b, kw: (x, w.astype(np.int32), b, kw), TypeError, r"w must be a floating"),
        (lambda x, w, b, kw: (x, w, b, {"stride": 0}), ValueError, r"stride must be >= 1, got 0"),
        (lambda x, w, b, kw: (x, w, b, {"stride": 1.5}), TypeError, r"stride must be an int"),
        (lambda x, w, b, kw: (x, w, b, {"pad": -1}), ValueError, r"pad must be >= 0, got -1"),
        (lambda x, w, b, kw: (x, w, b, {"dilation": (1, 0)}), ValueError,
         r"dilation must be >= 1, got 0"),
        (lambda x, w, b, kw: (x, w, b, {"stride": (1, 2, 3)}), ValueError,
         r"stride must be an int or an \(H, W\) pair"),
        (lambda x, w, b, kw: (x[:, :, :2], w, b, kw), ValueError,
         r"w: the window spans 3x3 .* padded input is only 2x5"),
        (lambda x, w, b, kw: (x, w, b, {"dilation": 3}), ValueError,
         r"w: the window spans 7x7 .* only 5x5"),
    ],
    ids=[
        "x-ndim", "w-ndim", "b-ndim", "b-length", "channels", "x-int", "w-int", "stride-0",
        "stride-float", "pad-negative", "dilation-0", "stride-triple", "kernel-too-big",
        "dilated-kernel-too-big",
    ],
)
def test_forward_validation(kind, change, error, message):
    x, w, b, kwargs = change(*_good(), {})
    with pytest.raises(error, match=message):
        FORWARDS[kind](x, w, b, **kwargs)


@pytest.mark.parametrize("kind", ["fast", "naive"])
def test_backward_validation(kind):
    out, cache = FORWARDS[kind](*_good(), pad=1)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 5, 5\).*\(2, 4, 5\)"):
        BACKWARDS[kind](out[..., 0], cache)
    with pytest.raises(ValueError, match=r"dout must have shape \(2, 4, 5, 5\).*\(2, 4, 4, 4\)"):
        BACKWARDS[kind](out[..., 1:, 1:], cache)
    with pytest.raises(TypeError, match=r"dout must be a floating-point array"):
        BACKWARDS[kind](out.astype(int), cache)


def test_building_block_validation():
    x = np.zeros((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"x_padded must have 4 dimensions"):
        window_view(x[0], 3)
    with pytest.raises(ValueError, match=r"kernel: the window spans 5x5"):
        window_view(x, 5)
    with pytest.raises(ValueError, match=r"kernel: the window spans 5x5"):
        im2col(x, 5)
    with pytest.raises(ValueError, match=r"cols must have shape \(18, 4\)"):
        col2im(np.zeros((18, 5)), x.shape, 3)
    with pytest.raises(ValueError, match=r"x_shape must be \(N, C, H, W\)"):
        col2im(np.zeros((18, 4)), x.shape[1:], 3)


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_overlapping_calls_share_one_hold_on_blas_threads():
    # two user threads in the fast path at once: the second one in must not take the first
    # one's temporary limit of 1 for BLAS's real count and leave it there when it finishes
    with threadpool_limits(limits=3, user_api="blas"):
        first = workers_module.blas_single_threaded(3)
        second = workers_module.blas_single_threaded(3)
        first.__enter__()
        assert _blas_threads() == [1] * len(_blas_threads())
        assert workers_module.worker_count() == 3  # the count from before the hold
        second.__enter__()
        first.__exit__(None, None, None)
        assert _blas_threads() == [1] * len(_blas_threads())  # second still running
        second.__exit__(None, None, None)
        assert _blas_threads() == [3] * len(_blas_threads())
        assert workers_module.worker_count() == 3


def test_the_view_of_blas_libraries_is_renewed_after_an_import(monkeypatch):
    # scipy, imported after the first fast call, brings a BLAS of its own: the hold on BLAS
    # threads must see it, so the cached view is made again once sys.modules has grown
    seen = workers_module._controller()
    assert workers_module._controller() is seen  # cached while nothing is imported
    monkeypatch.setitem(sys.modules, "a_module_that_loads_a_blas", object())
    assert workers_module._controller() is not seen


def test_fast_path_from_several_user_threads_restores_blas(monkeypatch):
    monkeypatch.setattr(blocks_module, "_BLOCK_COLUMNS", 30)
    x, w, b = _layer((9, 2, 6, 5), (3, 2, 3, 2), seed=21)
    expected, _ = conv_forward_naive(x, w, b, pad=1)
    with threadpool_limits(limits=2, user_api="blas"), ThreadPoolExecutor(4) as callers:
        results = list(callers.map(lambda _: conv_forward(x, w, b, pad=1)[0], range(40)))
        assert _blas_threads() == [2] * len(_blas_threads())
    for out in results:
        np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
