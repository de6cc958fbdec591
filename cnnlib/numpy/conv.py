"""The convolutional layer in NumPy: the lecture's loops, and im2col with BLAS matrix products.

Shapes, with K_eff = dilation*(K - 1) + 1 (the span of a dilated kernel)::

    x: (N, C, H, W)     w: (F, C, KH, KW)     b: (F,)
    out: (N, F, H', W'),   H' = (H + 2*pad - KH_eff) // stride + 1   (W' alike)

    out[n, f, i, j] = b[f] + sum over c, p, q of
                      w[f, c, p, q] * x_padded[n, c, i*SH + p*DH, j*SW + q*DW]

stride (SH, SW), pad and dilation (DH, DW) are each an int or an (along H, along W) pair, and the
output size is cnnlib.arithmetic.conv_output_size (the floor formula, as PyTorch). Like
torch.nn.functional.conv2d this is strictly a cross-correlation: the kernel is not flipped.

Two implementations compute the same numbers:

- ``conv_forward_naive`` / ``conv_backward_naive`` loop over every output position, as the
  lecture writes the formula; they are for reading (and for testing the fast ones).
- ``conv_forward`` / ``conv_backward`` gather every receptive field into one column of a matrix
  (``im2col``), so that the layer becomes a matrix product ``w.reshape(F, -1) @ cols`` done by
  BLAS; the backward pass is two more matrix products and ``col2im``, which adds each column's
  gradient back onto the pixels it was copied from.

A 1x1 kernel without padding needs no columns at all: x[n], stored as a (C, H*W) matrix, is
already its own im2col, so each image is one product (_pointwise_forward).

The fast pair works through the batch a block of images at a time, the blocks on a few worker
threads, with a layout of columns chosen per layer; how, and the measurements behind each
choice, are in cnnlib.numpy._conv_blocks. The numbers do not depend on the thread count.

Dtype is preserved: float32 in gives float32 out and float32 gradients (the speed path),
float64 gives float64 (gradient checks). Mixed inputs are computed in the wider type, and each
gradient is returned in the dtype of the array it belongs to.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import (
    check_cache,
    check_float_array,
    check_length,
    check_ndim,
    check_shape,
    describe,
)
from ._conv_blocks import BlockPlan, full_dx_pays
from ._windows import (
    col2im,
    crop_padding,
    im2col,
    interior,
    kernel_span,
    layer_geometry,
    output_size,
    pad_images,
    pointwise,
    window_view,
)
from ._workers import run_blocks

__all__ = [
    "ConvCache",
    "col2im",
    "conv_backward",
    "conv_backward_naive",
    "conv_forward",
    "conv_forward_naive",
    "im2col",
    "window_view",
]


class ConvCache(NamedTuple):
    """What the backward pass needs: the forward's inputs, x padded, and the geometry."""

    x: np.ndarray  # (N, C, H, W), as given
    w: np.ndarray  # (F, C, KH, KW)
    b: np.ndarray  # (F,)
    x_padded: np.ndarray  # (N, C, H + 2*PH, W + 2*PW) in the computation's dtype
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]


# --------------------------------------------------------------------------------------------
# Checks shared by both pairs (and by the torch twin)


# The cache of either conv forward, entry by entry (a ConvCache is a tuple of these)
_CONV_CACHE = ("array", "array", "array", "array", "pair", "pair", "pair")
_CONV_FORWARDS = "conv_forward or conv_forward_naive"


def check_conv_layer(x, w, b) -> None:
    """The layer's arrays: x (N, C, H, W), w (F, C, KH, KW), b (F,), all floating point."""
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_ndim("w", w, 4, "(F, C, KH, KW)")
    for name, array in (("x", x), ("w", w), ("b", b)):
        check_float_array(name, array)
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w must have shape (F, {x.shape[1]}, KH, KW) to match the {x.shape[1]} channels of "
            f"x {tuple(x.shape)}, got {describe(w)}"
        )
    check_length("b", b, w.shape[0], f"the {w.shape[0]} filters of w")


def check_conv_cache(cache) -> None:
    """cache must be what conv_forward or conv_forward_naive returned (a ConvCache)."""
    check_cache(cache, _CONV_CACHE, _CONV_FORWARDS)


def check_conv_dout(dout, cache: ConvCache) -> tuple[int, int]:
    """dout must be a float array shaped like the forward's output; return (H', W')."""
    check_conv_cache(cache)
    check_float_array("dout", dout)
    kernel = cache.w.shape[2:]
    out_size = output_size(cache.x.shape[2:], kernel, cache.stride, cache.pad, cache.dilation)
    expected = (cache.x.shape[0], cache.w.shape[0], *out_size)
    check_shape("dout", dout, expected, "the layer's output (N, F, H', W')")
    return out_size


# --------------------------------------------------------------------------------------------
# The lecture's loops


def conv_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride=1, pad=0,
                       dilation=1):
    """Convolution as the lecture writes it: one dot product per output position.

    x: (N, C, H, W); w: (F, C, KH, KW); b: (F,); stride, pad, dilation: int or (H, W) pair.
    Returns out: (N, F, H', W') and a ConvCache for conv_backward_naive (or conv_backward).

    Four loops (image n, filter f, output row i, output column j); the window under output
    (i, j) is a (C, KH, KW) block of x_padded starting at row i*SH, column j*SW, with taps DH
    rows and DW columns apart, and out[n, f, i, j] = sum(window * w[f]) + b[f].
    """
    check_conv_layer(x, w, b)
    kernel = w.shape[2:]
    stride, pad, dilation, (out_h, out_w) = layer_geometry(
        x.shape, kernel, stride, pad, dilation, "w"
    )
    dtype = np.result_type(x, w, b)
    span_h, span_w = kernel_span(kernel, dilation)
    x_padded = pad_images(x, pad, dtype)
    num_images, num_filters = x.shape[0], w.shape[0]
    out = np.zeros((num_images, num_filters, out_h, out_w), dtype=dtype)
    for n in range(num_images):
        for f in range(num_filters):
            for i in range(out_h):
                for j in range(out_w):
                    top, left = i * stride[0], j * stride[1]
                    window = x_padded[
                        n, :,
                        top : top + span_h : dilation[0],
                        left : left + span_w : dilation[1],
                    ]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out, ConvCache(x, w, b, x_padded, stride, pad, dilation)


def conv_backward_naive(dout: np.ndarray, cache: ConvCache):
    """Gradients of the convolution, written as the lecture derives them.

    dout: (N, F, H', W'); cache from conv_forward_naive or conv_forward.
    Returns dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).

    Each formula below is a loop over the entries of one gradient, with the sum of that
    entry's chain rule as one vectorised product, like the forward's loops:

    - db[f] = sum of dout[:, f]: the bias is added to every output of filter f.
    - dw is a correlation of the input with dout. Weight (f, c, p, q) meets the input pixel
      x_padded[n, c, i*SH + p*DH, j*SW + q*DW] at every output (n, i, j), so
      dw[f, c, p, q] = sum over n, i, j of dout[n, f, i, j] * that pixel: dout slides over x
      as if it were the kernel, with its taps SH apart (the forward's stride became the
      dilation) and moving DH per step of p (the forward's dilation became the stride).
    - dx is a full convolution of dout with the kernel rotated by 180 degrees. Pixel y of a row
      receives dout[i] * w[p] from every (i, p) with i*SH + p*DH = y. Spread dout out to the
      input's grid (SH - 1 zeros between neighbours: "dout_spread"), pad it with (KH - 1)*DH
      zeros all round ("full"), and the sum becomes a window over dout_full multiplied by the
      rotated kernel w[:, c, ::-1, ::-1] with taps DH apart: a convolution again, with input
      and output channels swapped. Pixels no window read (dropped by the floor) get zero.

    Scattering each output's gradient back through the forward's loops gives the same numbers;
    this form shows why the backward pass of a convolution is itself two convolutions.
    """
    out_h, out_w = check_conv_dout(dout, cache)
    x, w, _, x_padded, stride, pad, dilation = cache
    num_images, channels = x.shape[:2]
    num_filters, _, kernel_h, kernel_w = w.shape
    dtype = np.result_type(x_padded, w, dout)
    span_h, span_w = kernel_span((kernel_h, kernel_w), dilation)

    db = dout.sum(axis=(0, 2, 3))

    # dw: correlate x_padded with dout; dout's (H', W') grid lands on rows p*DH + i*SH
    reach_h, reach_w = (out_h - 1) * stride[0] + 1, (out_w - 1) * stride[1] + 1
    dw = np.zeros(w.shape, dtype=dtype)
    for f in range(num_filters):
        for c in range(channels):
            for p in range(kernel_h):
                for q in range(kernel_w):
                    top, left = p * dilation[0], q * dilation[1]
                    pixels = x_padded[
                        :, c, top : top + reach_h : stride[0], left : left + reach_w : stride[1]
                    ]
                    dw[f, c, p, q] = np.sum(dout[:, f] * pixels)

    # dx: full convolution of the spread-out dout with the rotated kernel
    dout_spread = np.zeros((num_images, num_filters, reach_h, reach_w), dtype=dtype)
    dout_spread[:, :, :: stride[0], :: stride[1]] = dout
    border_h, border_w = span_h - 1, span_w - 1
    dout_full = np.pad(
        dout_spread, ((0, 0), (0, 0), (border_h, border_h), (border_w, border_w))
    )
    w_rotated = w[:, :, ::-1, ::-1]
    dx_padded = np.zeros(x_padded.shape, dtype=dtype)
    # rows 0 .. reach_h + border_h - 1 of x_padded are read by some window; the rest stay zero
    for n in range(num_images):
        for c in range(channels):
            for y in range(reach_h + border_h):
                for z in range(reach_w + border_w):
                    window = dout_full[
                        n, :, y : y + span_h : dilation[0], z : z + span_w : dilation[1]
                    ]
                    dx_padded[n, c, y, z] = np.sum(window * w_rotated[:, c])
    dx = crop_padding(dx_padded, pad, x.shape)
    return _as_dtypes((dx, dw, db), cache)


def _as_dtypes(grads, cache: ConvCache):
    """Each gradient in the dtype of its array (no copy when it already is)."""
    return tuple(
        g.astype(a.dtype, copy=False) for g, a in zip(grads, (cache.x, cache.w, cache.b),
                                                       strict=True)
    )


# --------------------------------------------------------------------------------------------
# The fast version: im2col and matrix products, a block of images at a time (see _conv_blocks)


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride=1, pad=0, dilation=1):
    """Vectorised convolution: im2col, then a matrix product with the filters.

    x: (N, C, H, W); w: (F, C, KH, KW); b: (F,); stride, pad, dilation: int or (H, W) pair.
    Returns out: (N, F, H', W') and a ConvCache for conv_backward.

    For a block of n images, cols = im2col(block) is (C*KH*KW, n*H'*W') and each filter
    flattened to a row of w_rows (F, C*KH*KW) dotted with a column is one output:
    w_rows @ cols is (F, n*H'*W'), the block's outputs filter by filter, which one strided
    copy puts in the (n, F, H', W') order of out, the bias added just before. (At stride 1
    the columns come in the "wide rows" layout described in BlockPlan; blocks run on worker
    threads, see the module docstring.)
    """
    check_conv_layer(x, w, b)
    kernel = w.shape[2:]
    stride, pad, dilation, out_size = layer_geometry(x.shape, kernel, stride, pad, dilation, "w")
    dtype = np.result_type(x, w, b)
    if pointwise(kernel, pad):
        return _pointwise_forward(x, w, b, stride, dilation, out_size, dtype)
    # kept for the backward pass; each block pads its own images into it (in parallel, and
    # while they are in cache)
    x_padded = np.empty((*x.shape[:2], x.shape[2] + 2 * pad[0], x.shape[3] + 2 * pad[1]), dtype)
    out = _convolve(x, w, b, stride, pad, dilation, out_size, dtype, x_padded)
    return out, ConvCache(x, w, b, x_padded, stride, pad, dilation)


def _convolve(x, w, b, stride, pad, dilation, out_size, dtype, x_padded=None) -> np.ndarray:
    """The fast forward pass, arguments checked: out (N, F, H', W'), a block of images at a time.

    Each block is padded into x_padded[block] when x_padded (N, C, Hp, Wp) is given (the cache
    conv_forward returns), else into the thread's workspace (nothing is kept).
    """
    num_images, channels, height, width = x.shape
    padded_shape = (num_images, channels, height + 2 * pad[0], width + 2 * pad[1])
    num_filters, kernel = w.shape[0], w.shape[2:]
    w_rows = w.reshape(num_filters, -1).astype(dtype, copy=False)
    bias = b.astype(dtype, copy=False).reshape(num_filters, 1)
    out = np.empty((num_images, num_filters, *out_size), dtype=dtype)
    plan = BlockPlan(padded_shape, kernel, stride, dilation, out_size, dtype)

    def forward_block(block):
        images = x[block]
        if x_padded is None:
            padded = plan.buffer((images.shape[0], *padded_shape[1:]), "x_padded")
        else:
            padded = x_padded[block]
        padded.fill(0)
        interior(padded, pad, images.shape)[...] = images
        cols = plan.columns(padded)
        out_rows = np.matmul(w_rows, cols, out=plan.buffer((num_filters, cols.shape[1]),
                                                          "out_rows"))
        # the bias goes on while the rows are contiguous: an add over W'-long pieces of rows,
        # as the copy below has to make, costs NumPy more per piece than a plain copy does
        out_rows += bias
        out[block].transpose(1, 0, 2, 3)[...] = plan.outputs(out_rows)

    run_blocks(forward_block, plan.blocks)
    return out


def conv_backward(dout: np.ndarray, cache: ConvCache):
    """Gradients of the convolution by matrix products; takes the cache of either forward.

    dout: (N, F, H', W'). Returns dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).

    Per block of images, with out_rows = w_rows @ cols as in conv_forward and dout_rows the
    block's dout in the same (F, n*H'*W') order, the rule for a matrix product gives

        dw_rows += dout_rows @ cols.T      (summed over the blocks)
        dcols    = w_rows.T @ dout_rows    and dx = col2im(dcols)

    and db is dout summed over everything but the filter axis. At stride 1 dx is computed as
    conv_backward_naive writes it instead, the full convolution of dout with the rotated kernel
    (_dx_by_full_convolution), a convolution like the forward pass, done by the same code. The
    columns are rebuilt from the cached x_padded rather than kept from the forward pass, and
    each block (on a worker thread) returns its share of dw and db: see
    cnnlib.numpy._conv_blocks.
    """
    out_size = check_conv_dout(dout, cache)
    x, w, _, x_padded, stride, pad, dilation = cache
    dtype = np.result_type(x_padded, dout)
    dout = dout.astype(dtype, copy=False)
    num_filters = w.shape[0]
    kernel = w.shape[2:]
    if pointwise(kernel, pad):
        return _pointwise_backward(dout, cache, dtype)
    w_rows = w.reshape(num_filters, -1).astype(dtype, copy=False)
    # a sum is finite only if every term is (an overflow to inf costs speed, not correctness)
    finite = bool(np.isfinite(x_padded.sum()) and np.isfinite(w_rows.sum()))
    full_dx = full_dx_pays(x.shape[1], stride, pad, kernel_span(kernel, dilation), finite)
    dx = None if full_dx else np.empty(x.shape, dtype=dtype)
    plan = BlockPlan(x_padded.shape, kernel, stride, dilation, out_size, dtype, finite)

    def backward_block(block):
        cols = plan.columns(x_padded[block])
        dout_rows = plan.dout_rows(dout[block])  # junk entries (wide rows) are 0
        # dw transposed, (C*KH*KW, F): BLAS runs cols @ dout_rows.T faster than
        # dout_rows @ cols.T on these shapes (measured)
        dw_share, db_share = cols @ dout_rows.T, dout_rows.sum(axis=1)
        if not full_dx:
            # col2im into a zeroed padded block
            dx_padded = plan.padded_buffer(x_padded[block].shape)
            dcols = np.matmul(w_rows.T, dout_rows, out=plan.buffer(cols.shape, "dcols"))
            plan.add_back(dcols, dx_padded)
            dx[block] = interior(dx_padded, pad, dx[block].shape)
        return dw_share, db_share

    dw_cols, db = _sum_shares(run_blocks(backward_block, plan.blocks),
                              (w_rows.shape[1], num_filters), num_filters, dtype)
    dw = dw_cols.T.reshape(w.shape)
    if full_dx:
        dx = _dx_by_full_convolution(dout, w, pad, dilation, x.shape[2:], dtype)
    return _as_dtypes((dx, dw, db), cache)


def _sum_shares(shares, dw_shape, num_filters: int, dtype):
    """The blocks' (dw share, db share) pairs summed in block order, whichever thread computed
    them, so that the numbers do not depend on the thread count: (dw, db)."""
    dw = sum((dw_share for dw_share, _ in shares), np.zeros(dw_shape, dtype=dtype))
    db = sum((db_share for _, db_share in shares), np.zeros(num_filters, dtype=dtype))
    return dw, db


def _dx_by_full_convolution(dout, w, pad, dilation, x_size, dtype) -> np.ndarray:
    """dx at stride 1, (N, C, H, W) with (H, W) = x_size, as lecture 04 derives it (see
    conv_backward_naive).

    Pixel y of a row receives dout[i] * w[p] from every (i, p) with i + p*D = y + pad: dout,
    padded with K_eff - 1 - pad zeros all round ("full"), convolved with the kernel rotated by
    180 degrees and its F and C axes swapped, (C, F, KH, KW), taps D apart. That is
    conv_forward's own computation, im2col and one product of the usual shape per block, where
    dcols and col2im would add a matrix KH*KW times the size of dx (measured faster: see
    cnnlib.numpy._conv_blocks.full_dx_pays). Needs pad <= K_eff - 1.
    """
    span = kernel_span(w.shape[2:], dilation)
    w_rotated = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=dtype)
    full_pad = tuple(s - 1 - p for s, p in zip(span, pad, strict=True))
    return _convolve(dout, w_rotated, np.zeros(w.shape[1], dtype=dtype), (1, 1), full_pad,
                     dilation, tuple(x_size), dtype)


# --------------------------------------------------------------------------------------------
# A 1x1 kernel without padding: no im2col at all


def _pixels(x_block: np.ndarray, stride) -> np.ndarray:
    """The pixels a 1x1 kernel reads, image by image: (n, C, H'*W'), x_block[..., ::SH, ::SW].

    At stride 1 a view of x_block (its rows already lie one after the other); else a copy.
    """
    n, channels = x_block.shape[:2]
    return x_block[:, :, :: stride[0], :: stride[1]].reshape(n, channels, -1)


def _pointwise_forward(x, w, b, stride, dilation, out_size, dtype):
    """conv_forward for a 1x1 kernel and pad 0.

    A 1x1 convolution mixes the channels of each pixel and nothing else (Lin et al., "Network
    In Network", 2014): out[n] = w_rows @ x[n] with x[n] seen as a (C, H*W) matrix, which is
    how NCHW already stores it. So one matrix product per image gives its (F, H'*W') outputs in
    out's own layout: no columns to build and no copy into out, where im2col would copy x
    once and the result once more (1x1, 64 -> 64 at 8x8, forward + backward: 3.0 ms im2col,
    2.0 ms this way; torch 2.1 ms; 2 threads, 2-core AMD EPYC without AVX-512).
    """
    num_filters = w.shape[0]
    x_padded = x.astype(dtype, copy=False)  # pad 0: nothing to pad, nothing to copy
    w_rows = w.reshape(num_filters, -1).astype(dtype, copy=False)
    bias = b.astype(dtype, copy=False).reshape(num_filters, 1)
    out = np.empty((x.shape[0], num_filters, *out_size), dtype=dtype)
    plan = BlockPlan(x_padded.shape, (1, 1), stride, dilation, out_size, dtype)

    def forward_block(block):
        out_pixels = out[block].reshape(-1, num_filters, out_size[0] * out_size[1])
        np.matmul(w_rows, _pixels(x_padded[block], stride), out=out_pixels)
        out_pixels += bias

    run_blocks(forward_block, plan.blocks)
    return out, ConvCache(x, w, b, x_padded, stride, (0, 0), dilation)


def _pointwise_backward(dout, cache: ConvCache, dtype):
    """conv_backward for a 1x1 kernel and pad 0, image by image as _pointwise_forward:

        dx[n] = w_rows.T @ dout[n]         (at the pixels the kernel read; 0 elsewhere)
        dw_rows = sum over n of dout[n] @ x[n].T,   db = dout summed over all but F
    """
    x, w, _, x_padded, stride, _, _ = cache
    num_filters, channels = w.shape[:2]
    w_rows = w.reshape(num_filters, channels).astype(dtype, copy=False)
    dx = np.zeros(x.shape, dtype=dtype) if stride != (1, 1) else np.empty(x.shape, dtype=dtype)
    plan = BlockPlan(x_padded.shape, (1, 1), stride, cache.dilation, dout.shape[2:], dtype)

    def backward_block(block):
        dout_pixels = dout[block].reshape(*dout[block].shape[:2], -1)  # (n, F, H'*W')
        pixels = _pixels(x_padded[block], stride)  # (n, C, H'*W')
        dw_share = np.matmul(dout_pixels, pixels.transpose(0, 2, 1)).sum(axis=0)  # (F, C)
        if stride == (1, 1):
            np.matmul(w_rows.T, dout_pixels, out=dx[block].reshape(pixels.shape))
        else:
            dx_pixels = dx[block][:, :, :: stride[0], :: stride[1]]  # the pixels read; 0 around
            dx_pixels[...] = np.matmul(w_rows.T, dout_pixels).reshape(dx_pixels.shape)
        return dw_share, dout_pixels.sum(axis=(0, 2))

    dw_rows, db = _sum_shares(run_blocks(backward_block, plan.blocks),
                              (num_filters, channels), num_filters, dtype)
    return _as_dtypes((dx, dw_rows.reshape(w.shape), db), cache)
