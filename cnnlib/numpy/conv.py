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

The fast pair works through the batch a few images at a time (about ``_BLOCK_COLUMNS`` output
positions per block) rather than building one column matrix for the whole batch: a block's
columns (a few MiB) stay in the CPU's caches while they are built, multiplied and scattered
back, instead of streaming a matrix KH*KW times the size of x through main memory. For the same
reason the backward pass rebuilds the columns from x_padded instead of keeping them from the
forward pass. Both choices were measured (benchmarks/bench_conv.py's layer, one thread): one
whole-batch product was slower, and keeping the columns made forward + backward about 1.4x
slower than rebuilding them.

A 1x1 kernel without padding needs no columns at all: x[n], stored as a (C, H*W) matrix, is
already its own im2col, so each image is one product (_pointwise_forward).

At stride 1, in layers with no more filters than channels (a ResNet's), the backward pass
does without col2im: dx_padded is the sum over kernel taps of one (C, F) @ (F, positions)
product each, with dout laid out on x_padded's grid and shifted by the tap's offset, a view
BLAS reads in place (_BlockPlan.dx_padded_wide). Its adds run over an array the size of
dx_padded, where col2im's run over one KH*KW times larger; measured on the benchmark layer,
forward + backward took about 5% less time (where else it pays: see _TAPS_DX_MAX_WASTE). The
same trick was measured slower elsewhere, because products with an inner size of only C (or
an output of only F x C) run well below BLAS's best: for the forward pass (1.5x the time of
im2col and one product) and for dw (a product per tap runs at about 2/3 of the speed of
cols @ dout_rows.T).

The blocks are independent, so they run on a few worker threads (cnnlib.numpy._workers), as
many as BLAS would use (threadpoolctl reads the count; ``threadpool_limits(1)`` makes the fast
pair serial). Each thread does whole blocks, padding, copies and matrix products alike, with
BLAS held to one thread inside it: NumPy releases the GIL while it copies, adds and
multiplies, so the copies (about a quarter of the time) run in parallel as well, where BLAS's
own threads would only share each product while one thread copies. Measured on the benchmark
layer with 2 threads: forward + backward went from 79 ms (one Python thread, BLAS threaded) to
55 ms (torch: 44 ms). With other programs keeping both CPUs busy the serial loop took 850 ms,
its BLAS threads waiting for each other, the workers 100 ms (torch 145 ms). The shares of dw
and db are summed in block order, so the numbers do not depend on the thread count. Block
sizes from 1 to 8 images of the benchmark layer made no difference beyond 2%.

Dtype is preserved: float32 in gives float32 out and float32 gradients (the speed path),
float64 gives float64 (gradient checks). Mixed inputs are computed in the wider type, and each
gradient is returned in the dtype of the array it belongs to.
"""

from __future__ import annotations

import numbers
import threading
from typing import NamedTuple

import numpy as np

from cnnlib.arithmetic import conv_output_size, effective_kernel_size

from ._checks import (
    as_pair,
    check_allocation,
    check_cache,
    check_float_array,
    check_length,
    check_ndim,
    check_shape,
    check_window_fits,
    describe,
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

# Output positions per block in the fast path: 4096 columns of C*KH*KW float32 numbers are a few
# MiB (4.5 MiB for C=32, 3x3), which stay in the CPU's caches. Much smaller blocks make BLAS
# multiply thin matrices (slow with several threads), much larger ones spill to main memory.
_BLOCK_COLUMNS = 4096
# ... of _BLOCK_ROWS rows: a block holds about _BLOCK_COLUMNS * _BLOCK_ROWS numbers whatever the
# rows. With more rows (C = 256, 3x3: 2304) it has fewer columns, but never fewer than
# _MIN_BLOCK_COLUMNS (thinner products run BLAS well below its best); with fewer rows (a first
# layer's 3 channels, 3x3: 27) more: its blocks of 4096 columns were 3 images, and the costs
# every block pays (a few dozen NumPy calls) took about half the time (ResNet-20's 3 -> 16 at
# 32x32, forward + backward: 18.9 ms in 4096-column blocks, 10.2 ms in blocks of the same bytes;
# blocks of twice or four times the bytes made other layers up to 2x slower; measured, 2 threads,
# 2-core AMD EPYC without AVX-512). And the batch is cut into at least _MIN_BLOCKS blocks where
# that keeps them that wide, so that small images (8x8: 64 positions) still give every worker
# thread blocks to do. The cut depends on the shapes only, never on the thread count, so the
# numbers do not either. Measured on the sweep's VGG layers (bench_conv.py section 4): with
# C = 128 and 256 at 8x8 and 4x4, one block for the whole batch (the old cut) ran 3x torch's time.
_BLOCK_ROWS = 288
_MIN_BLOCK_COLUMNS = 512
_MIN_BLOCKS = 4
# The "wide rows" layout at stride 1 (see _BlockPlan) computes Wp columns per output row to keep
# W', and saves copying. It pays where copies are a large share of the time, that is where the
# products are small: used only for C*KH*KW <= _WIDE_MAX_ROWS and Wp <= _WIDE_MAX_WASTE * W'.
# Measured (bench_conv.py section 4, interleaved): wide vs plain im2col, as numpy/torch ratios,
# 16 -> 16 at 32x32 0.47 vs 0.70 and 32 -> 32 at 16x16 0.77 vs 0.88, but 64 -> 128 at 16x16
# 0.84 vs 0.74, 128 -> 128 at 14x14 1.35 vs 0.95, and 64 -> 64 at 8x8 (Wp/W' = 1.25) 0.81
# vs 0.74: with many channels the products dominate and the junk columns cost more than the
# copies they save.
_WIDE_MAX_ROWS = 288
_WIDE_MAX_WASTE = 1.2
# How conv_backward gets dx (see _BlockPlan): at stride 1, in layers with no more filters than
# channels, tap by tap from dout laid out on x_padded's grid (dx_padded_wide) where the columns
# are wide, and with plain columns too where that grid is at most _TAPS_DX_MAX_WASTE times the
# outputs (Hp*Wp <= 1.6 H'*W'); everywhere else from dcols = w_rows.T @ dout_rows by col2im
# (add_back). Measured (section 4, interleaved, 2-core AMD EPYC without AVX-512), taps vs
# col2im: 64 -> 64 at 8x8 (grid 1.56x the outputs) 20.3 vs 24.7 ms, 32 -> 32 at 16x16 (wide)
# 22.6 vs 24.1 ms; but 128 -> 256 at 8x8 29.9 vs 27.8 ms, 256 -> 512 at 4x4 (grid 2.25x) 38.7
# vs 34.6 ms, and a first layer's 3 -> 64 at 32x32 (wide) 10.4 vs 7.3 ms: with more filters
# than channels the products per tap are thin (C rows) and grow with the grid's junk, while
# col2im's adds do not.
_TAPS_DX_MAX_WASTE = 1.6

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
# Geometry shared by every function here


def _span(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns a dilated kernel covers: K_eff = D*(K - 1) + 1 along each axis."""
    return tuple(effective_kernel_size(k, d) for k, d in zip(kernel, dilation, strict=True))


def _output_size(size, kernel, stride, pad, dilation) -> tuple[int, int]:
    """(H', W') by cnnlib.arithmetic's floor formula; every argument an (H, W) pair."""
    return tuple(
        conv_output_size(size[a], kernel[a], stride[a], pad[a], dilation[a]) for a in (0, 1)
    )


def _geometry(x_shape, kernel, stride, pad, dilation, kernel_name):
    """Check stride/pad/dilation and that the (dilated) kernel fits; return pairs and (H', W')."""
    stride = as_pair("stride", stride)
    pad = as_pair("pad", pad, minimum=0)
    dilation = as_pair("dilation", dilation)
    size = tuple(x_shape[2:])
    check_window_fits(kernel_name, _span(kernel, dilation), size, pad)
    # an absurd pad (10**6) is refused here, before any array of that size is asked for
    padded_shape = (*x_shape[:2], size[0] + 2 * pad[0], size[1] + 2 * pad[1])
    check_allocation("pad", padded_shape, 8, "x padded")
    return stride, pad, dilation, _output_size(size, kernel, stride, pad, dilation)


# The cache of either conv forward, entry by entry (a ConvCache is a tuple of these)
_CONV_CACHE = ("array", "array", "array", "array", "pair", "pair", "pair")
_CONV_FORWARDS = "conv_forward or conv_forward_naive"


def _check_layer(x, w, b) -> None:
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


def _pad(x: np.ndarray, pad: tuple[int, int], dtype, value=0.0) -> np.ndarray:
    """x (N, C, H, W) with pad[0] rows above and below, pad[1] columns left and right: a copy."""
    (pad_h, pad_w), (n, c, h, w) = pad, x.shape
    x_padded = np.full((n, c, h + 2 * pad_h, w + 2 * pad_w), value, dtype=dtype)
    x_padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w] = x
    return x_padded


def _crop(x_padded: np.ndarray, pad: tuple[int, int], shape) -> np.ndarray:
    """The inverse of _pad: the (N, C, H, W) = shape interior of x_padded, contiguous."""
    return np.ascontiguousarray(_interior(x_padded, pad, shape))


def _interior(x_padded: np.ndarray, pad: tuple[int, int], shape) -> np.ndarray:
    """The (N, C, H, W) = shape interior of x_padded (N, C, Hp, Wp): a view, writable."""
    (pad_h, pad_w), (h, w) = pad, shape[2:]
    return x_padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w]


def _tap(x_padded, p, q, out_size, stride, dilation):
    """Kernel tap (p, q) of every window at once: a strided view (..., H', W'), no copy.

    Entry [..., i, j] is x_padded[..., i*SH + p*DH, j*SW + q*DW], the input that kernel weight
    (p, q) meets at output (i, j). Basic slicing, so the view can be written through (col2im).
    """
    top, left = p * dilation[0], q * dilation[1]
    return x_padded[
        ...,
        top : top + (out_size[0] - 1) * stride[0] + 1 : stride[0],
        left : left + (out_size[1] - 1) * stride[1] + 1 : stride[1],
    ]


# --------------------------------------------------------------------------------------------
# The building blocks: a window view, im2col and col2im


def window_view(x_padded: np.ndarray, kernel, stride=1, dilation=1) -> np.ndarray:
    """Every receptive field of x_padded as one read-only strided view, without copying.

    x_padded: (N, C, Hp, Wp), already padded. kernel, stride, dilation: int or (H, W) pair.
    Returns windows: (N, C, H', W', KH, KW) with H' = (Hp - KH_eff) // SH + 1, where

        windows[n, c, i, j, p, q] = x_padded[n, c, i*SH + p*DH, j*SW + q*DW]

    Only the strides change: moving one step along i moves SH rows of x_padded, one step along p
    moves DH rows. Overlapping windows share memory, which is why the view is read-only (writing
    through it would write one pixel several times); make a copy to modify it.
    """
    check_ndim("x_padded", x_padded, 4, "(N, C, Hp, Wp)")
    check_float_array("x_padded", x_padded)
    kernel = as_pair("kernel", kernel)
    stride, _, dilation, out_size = _geometry(
        x_padded.shape, kernel, stride, 0, dilation, "kernel"
    )
    step_n, step_c, step_h, step_w = x_padded.strides
    return np.lib.stride_tricks.as_strided(
        x_padded,
        shape=(*x_padded.shape[:2], *out_size, *kernel),
        strides=(
            step_n, step_c,
            step_h * stride[0], step_w * stride[1],
            step_h * dilation[0], step_w * dilation[1],
        ),
        writeable=False,
    )


def _im2col_padded(x_padded, kernel, stride, dilation, out_size, out=None):
    """im2col of an already padded x (N, C, Hp, Wp): cols (C*KH*KW, N*H'*W').

    One strided copy per kernel tap (p, q), each moving every channel and image at once, into
    a (C, KH, KW, N, H', W') buffer (`out`, if given, is reused), viewed as a matrix.
    """
    n, c = x_padded.shape[:2]
    (kernel_h, kernel_w), (out_h, out_w) = kernel, out_size
    if out is None:
        out = np.empty((c, kernel_h, kernel_w, n, out_h, out_w), dtype=x_padded.dtype)
    by_channel = x_padded.transpose(1, 0, 2, 3)  # (C, N, Hp, Wp): a view
    for p in range(kernel_h):
        for q in range(kernel_w):
            out[:, p, q] = _tap(by_channel, p, q, out_size, stride, dilation)
    return out.reshape(c * kernel_h * kernel_w, n * out_h * out_w)


def _col2im_add(cols, x_padded, kernel, stride, dilation, out_size) -> None:
    """The adjoint of _im2col_padded: add cols (C*KH*KW, N*H'*W') onto x_padded in place.

    Tap (p, q)'s rows go back where they were copied from. Within one tap no two outputs read
    the same pixel, so a slice-add is exact; pixels shared by overlapping windows collect the
    sum over the taps that read them.
    """
    n, c = x_padded.shape[:2]
    cols = cols.reshape(c, *kernel, n, *out_size)
    by_channel = x_padded.transpose(1, 0, 2, 3)
    for p in range(kernel[0]):
        for q in range(kernel[1]):
            tap = _tap(by_channel, p, q, out_size, stride, dilation)
            tap += cols[:, p, q]


def im2col(x: np.ndarray, kernel, stride=1, pad=0, dilation=1) -> np.ndarray:
    """Each receptive field of x as one column of a matrix.

    x: (N, C, H, W); kernel (KH, KW), stride, pad, dilation: int or (H, W) pair.
    Returns cols: (C*KH*KW, N*H'*W'), H' and W' from cnnlib.arithmetic.conv_output_size, with

        cols[c*KH*KW + p*KW + q, n*H'*W' + i*W' + j] = x_padded[n, c, i*SH + p*DH, j*SW + q*DW]

    Rows run over (channel, kernel row, kernel column), the order of w.reshape(F, -1), so
    ``w.reshape(F, -1) @ cols`` is the convolution as an (F, N*H'*W') matrix; columns run over
    (image, output row, output column). Each input pixel appears in up to KH*KW columns.
    """
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_float_array("x", x)
    kernel = as_pair("kernel", kernel)
    stride, pad, dilation, out_size = _geometry(x.shape, kernel, stride, pad, dilation, "kernel")
    cols_shape = (x.shape[1] * kernel[0] * kernel[1], x.shape[0] * out_size[0] * out_size[1])
    check_allocation("pad", cols_shape, x.dtype.itemsize, "im2col's matrix")
    x_padded = _pad(x, pad, x.dtype)
    return _im2col_padded(x_padded, kernel, stride, dilation, out_size)


def _check_x_shape(x_shape) -> tuple[int, int, int, int]:
    """x_shape as a tuple of four ints (N, C, H, W), each >= 1 (N >= 0)."""
    if not isinstance(x_shape, tuple | list):
        raise TypeError(f"x_shape must be (N, C, H, W), a tuple of 4 ints, got {x_shape!r}")
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {tuple(x_shape)!r}")
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in x_shape):
        raise TypeError(f"x_shape must be (N, C, H, W), a tuple of 4 ints, got {x_shape!r}")
    if x_shape[0] < 0 or min(x_shape[1:]) < 1:
        raise ValueError(f"x_shape must be (N, C, H, W) with C, H, W >= 1, got {x_shape!r}")
    return tuple(int(s) for s in x_shape)


def col2im(cols: np.ndarray, x_shape, kernel, stride=1, pad=0, dilation=1) -> np.ndarray:
    """Fold columns back onto the image, adding where windows overlap: the adjoint of im2col.

    cols: (C*KH*KW, N*H'*W') in im2col's layout; x_shape: (N, C, H, W), the shape im2col read.
    Returns dx: x_shape, where each pixel holds the sum of every column entry copied from it
    (entries from the padding are dropped). In backprop: dx = col2im(dcols) when cols = im2col(x).
    """
    x_shape = _check_x_shape(x_shape)
    check_float_array("cols", cols)
    n, c = x_shape[:2]
    kernel = as_pair("kernel", kernel)
    stride, pad, dilation, out_size = _geometry(x_shape, kernel, stride, pad, dilation, "kernel")
    rows = c * kernel[0] * kernel[1]
    check_shape("cols", cols, (rows, n * out_size[0] * out_size[1]),
                "im2col's layout (C*KH*KW, N*H'*W')")
    padded_shape = (n, c, x_shape[2] + 2 * pad[0], x_shape[3] + 2 * pad[1])
    dx_padded = np.zeros(padded_shape, dtype=cols.dtype)
    _col2im_add(cols, dx_padded, kernel, stride, dilation, out_size)
    return _crop(dx_padded, pad, x_shape)


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
    _check_layer(x, w, b)
    kernel = w.shape[2:]
    stride, pad, dilation, (out_h, out_w) = _geometry(
        x.shape, kernel, stride, pad, dilation, "w"
    )
    dtype = np.result_type(x, w, b)
    span_h, span_w = _span(kernel, dilation)
    x_padded = _pad(x, pad, dtype)
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


def _check_dout(dout, cache: ConvCache) -> tuple[int, int]:
    """dout must be a float array shaped like the forward's output; return (H', W')."""
    check_cache(cache, _CONV_CACHE, _CONV_FORWARDS)
    check_float_array("dout", dout)
    kernel = cache.w.shape[2:]
    out_size = _output_size(cache.x.shape[2:], kernel, cache.stride, cache.pad, cache.dilation)
    expected = (cache.x.shape[0], cache.w.shape[0], *out_size)
    check_shape("dout", dout, expected, "the layer's output (N, F, H', W')")
    return out_size


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
    out_h, out_w = _check_dout(dout, cache)
    x, w, _, x_padded, stride, pad, dilation = cache
    num_images, channels = x.shape[:2]
    num_filters, _, kernel_h, kernel_w = w.shape
    dtype = np.result_type(x_padded, w, dout)
    span_h, span_w = _span((kernel_h, kernel_w), dilation)

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
    dx = _crop(dx_padded, pad, x.shape)
    return _as_dtypes((dx, dw, db), cache)


def _as_dtypes(grads, cache: ConvCache):
    """Each gradient in the dtype of its array (no copy when it already is)."""
    return tuple(
        g.astype(a.dtype, copy=False) for g, a in zip(grads, (cache.x, cache.w, cache.b),
                                                       strict=True)
    )


# --------------------------------------------------------------------------------------------
# The fast version: im2col and matrix products, a block of images at a time


class _BlockPlan:
    """How conv_forward and conv_backward lay out the columns of one block of images.

    The batch is cut into blocks of about _BLOCK_COLUMNS output positions. For a block of n
    images, ``columns`` is im2col of the block, a (C*KH*KW, n*H'*R) matrix whose columns run
    over (image, output row, output column), with R columns per output row:

    - otherwise: R = W', exactly im2col's layout. Building it copies, for each kernel tap,
      W'-long pieces of x_padded's rows.
    - stride 1, few channels (see _WIDE_MAX_ROWS): R = Wp, the padded width ("wide rows").
      Output rows are computed Wp wide and
      the last Wp - W' entries of each are junk that is dropped, but now a tap reads, for a
      whole image, one contiguous run of x_padded's flattened rows: im2col becomes long
      contiguous copies. That costs Wp/W' - 1 more multiply-adds (6% for 32x32 inputs with
      pad 1) and saves more time than that in copying (measured on the benchmark layer). The
      backward pass puts dout on the same layout with zeros in the junk places, so they add
      nothing to dw or dx; col2im (``add_back``) is then long contiguous adds, the wide copies
      run backwards.

    At stride 1 dx may also come tap by tap from dout on x_padded's flattened grid
    (``dout_grid``, ``dx_padded_wide``), without col2im: ``taps_dx`` says when (see
    _TAPS_DX_MAX_WASTE).

    Buffers are kept per thread, so blocks can run on several threads at once.
    """

    def __init__(self, x_padded_shape, kernel, stride, dilation, out_size, dtype,
                 num_filters=None, finite=True):
        self.num_images, self.channels, self.padded_h, self.padded_w = x_padded_shape
        self.kernel, self.stride, self.dilation, self.out_size = kernel, stride, dilation, out_size
        self.dtype = dtype
        # wide rows only where they pay: few rows and few junk columns (see _WIDE_MAX_ROWS)
        rows = self.channels * kernel[0] * kernel[1]
        self.wide = (stride == (1, 1) and rows <= _WIDE_MAX_ROWS
                     and self.padded_w <= _WIDE_MAX_WASTE * out_size[1])
        # ... and, in the backward pass, only for finite x and w (finite=False otherwise): junk
        # entries are 0 times an input, and 0 * inf or 0 * NaN is NaN, which would reach
        # gradients that torch leaves finite (a NaN pixel would spoil a dw tap whose windows
        # never read it, a NaN weight dx pixels no window takes it to). Plain columns and
        # col2im read only real windows, so NaN goes exactly where torch's backward sends it
        self.wide = self.wide and finite
        self.row_width = self.padded_w if self.wide else out_size[1]
        # how the backward pass gets dx at stride 1 (num_filters: F, given by conv_backward)
        grid_waste = self.padded_h * self.padded_w / (out_size[0] * out_size[1])
        self.taps_dx = finite and (
            stride == (1, 1) and num_filters is not None and num_filters <= self.channels
            and (self.wide or grid_waste <= _TAPS_DX_MAX_WASTE))
        # offset of the last kernel tap in x_padded's flattened image (see dout_grid)
        self.lead = (kernel[0] - 1) * dilation[0] * self.padded_w + (kernel[1] - 1) * dilation[1]
        # see _BLOCK_COLUMNS for how the batch is cut
        columns = max(_MIN_BLOCK_COLUMNS, _BLOCK_COLUMNS * _BLOCK_ROWS // max(1, rows))
        per_image = out_size[0] * self.row_width
        per_block = max(1, columns // per_image)
        enough = max(-(-self.num_images // _MIN_BLOCKS), -(-_MIN_BLOCK_COLUMNS // per_image))
        per_block = min(per_block, enough)
        self.blocks = [
            slice(start, min(start + per_block, self.num_images))
            for start in range(0, self.num_images, per_block)
        ]
        self._per_thread = threading.local()  # each worker thread fills its own buffers

    def _buffer(self, shape, purpose: str) -> np.ndarray:
        """A zeroed array of `shape`, reused from block to block (zeros: junk must be finite).

        One set of buffers per thread, so that blocks running at the same time never share one.
        """
        buffers = self._per_thread.__dict__.setdefault("buffers", {})
        if (purpose, shape) not in buffers:
            buffers[purpose, shape] = np.zeros(shape, dtype=self.dtype)
        return buffers[purpose, shape]

    def padded_buffer(self, shape) -> np.ndarray:
        """A zeroed (n, C, Hp, Wp) array for a block's dx_padded, reused from block to block."""
        buffer = self._buffer(shape, "dx_padded")
        buffer.fill(0)
        return buffer

    def _wide_taps(self):
        """(p, q, offset): tap (p, q) reads x_padded's flattened image from `offset` on."""
        for p in range(self.kernel[0]):
            for q in range(self.kernel[1]):
                yield p, q, p * self.dilation[0] * self.padded_w + q * self.dilation[1]

    def columns(self, x_padded_block: np.ndarray) -> np.ndarray:
        """im2col of a block (n, C, Hp, Wp): (C*KH*KW, n*H'*R), R columns per output row."""
        n = x_padded_block.shape[0]
        (kernel_h, kernel_w), (out_h, out_w) = self.kernel, self.out_size
        cols = self._buffer((self.channels, kernel_h, kernel_w, n, out_h * self.row_width),
                            "cols")
        if not self.wide:
            return _im2col_padded(x_padded_block, self.kernel, self.stride, self.dilation,
                                  self.out_size, out=cols.reshape(*cols.shape[:4], out_h, out_w))
        flat = x_padded_block.reshape(n, self.channels, -1).transpose(1, 0, 2)  # (C, n, Hp*Wp)
        # output (i, j) of tap (p, q) reads flat position offset + i*Wp + j: one run per image
        run = (out_h - 1) * self.padded_w + out_w
        for p, q, offset in self._wide_taps():
            cols[:, p, q, :, :run] = flat[:, :, offset : offset + run]
        return cols.reshape(-1, n * out_h * self.row_width)

    def outputs(self, out_rows: np.ndarray) -> np.ndarray:
        """(F, n*H'*R) product rows as the block's (F, n, H', W') outputs: a view."""
        out_h, out_w = self.out_size
        return out_rows.reshape(out_rows.shape[0], -1, out_h, self.row_width)[..., :out_w]

    def dout_rows(self, dout_block: np.ndarray) -> np.ndarray:
        """dout of a block (n, F, H', W') in the columns' order: (F, n*H'*R), junk entries 0."""
        n, num_filters, out_h, out_w = dout_block.shape
        rows = self._buffer((num_filters, n, out_h, self.row_width), "dout_rows")
        rows[..., :out_w] = dout_block.transpose(1, 0, 2, 3)
        return rows.reshape(num_filters, -1)

    def add_back(self, dcols: np.ndarray, dx_padded_block: np.ndarray) -> None:
        """col2im for a block: add dcols (C*KH*KW, n*H'*R), laid out as `columns` made them,
        onto dx_padded_block (n, C, Hp, Wp), zeroed and contiguous."""
        if not self.wide:
            _col2im_add(dcols, dx_padded_block, self.kernel, self.stride, self.dilation,
                        self.out_size)
            return
        # the adjoint of the wide copies in `columns`: each tap's run goes back, added, where
        # it was read from. Junk columns of dcols are 0 (dout_rows is 0 there), so the parts of
        # a run that wrap into the next row add nothing
        n = dx_padded_block.shape[0]
        flat = dx_padded_block.reshape(n, self.channels, -1).transpose(1, 0, 2)  # (C, n, Hp*Wp)
        out_h, out_w = self.out_size
        runs = dcols.reshape(self.channels, *self.kernel, n, out_h * self.row_width)
        run = (out_h - 1) * self.padded_w + out_w
        for p, q, offset in self._wide_taps():
            flat[:, :, offset : offset + run] += runs[:, p, q, :, :run]

    # At stride 1 the backward pass needs no col2im: dx comes from one product per kernel tap

    def dout_grid(self, dout_block: np.ndarray) -> np.ndarray:
        """dout of a block (n, F, H', W') on x_padded's flattened grid: (F, lead + n*Hp*Wp).

        Entry lead + m*Hp*Wp + i*Wp + j holds dout[m, :, i, j], the gradient of the output whose
        window starts at pixel (i, j) of image m; all else is zero: the last Hp - H' rows and
        Wp - W' columns of each image (no window starts there) and `lead` columns in front.
        """
        n, num_filters, out_h, out_w = dout_block.shape
        lead = self.lead
        grid = self._buffer((num_filters, lead + n * self.padded_h * self.padded_w), "grid")
        images = grid[:, lead:].reshape(num_filters, n, self.padded_h, self.padded_w)
        images[:, :, :out_h, :out_w] = dout_block.transpose(1, 0, 2, 3)
        return grid

    def dx_padded_wide(self, w_taps: np.ndarray, grid: np.ndarray) -> np.ndarray:
        """dx_padded of a block at stride 1, (C, n, Hp, Wp), from its dout_grid.

        w_taps: (KH, KW, C, F), w_taps[p, q] = w[:, :, p, q].T. Pixel y of the flattened grid
        is read by tap (p, q) of the window that starts at y - offset(p, q), so
        dx_padded[:, y] = sum over taps of w_taps[p, q] @ grid[:, lead + y - offset]: one
        product per tap with a shifted view of the grid, which BLAS reads in place (windows
        that start in the zeros add nothing). No col2im: its adds would run over a matrix
        KH*KW times the size of dx_padded, these over one about that size.
        """
        lead = self.lead
        size = grid.shape[1] - lead
        total = self._buffer((self.channels, size), "dx_total")
        term = self._buffer((self.channels, size), "dx_term")
        for p, q, offset in self._wide_taps():
            shifted = grid[:, lead - offset : lead - offset + size]
            np.matmul(w_taps[p, q], shifted, out=term if offset else total)
            if offset:
                total += term
        return total.reshape(self.channels, -1, self.padded_h, self.padded_w)


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride=1, pad=0, dilation=1):
    """Vectorised convolution: im2col, then a matrix product with the filters.

    x: (N, C, H, W); w: (F, C, KH, KW); b: (F,); stride, pad, dilation: int or (H, W) pair.
    Returns out: (N, F, H', W') and a ConvCache for conv_backward.

    For a block of n images, cols = im2col(block) is (C*KH*KW, n*H'*W') and each filter
    flattened to a row of w_rows (F, C*KH*KW) dotted with a column is one output:
    w_rows @ cols is (F, n*H'*W'), the block's outputs filter by filter, which one strided
    copy puts in the (n, F, H', W') order of out, the bias added just before. (At stride 1
    the columns come in the "wide rows" layout described in _BlockPlan; blocks run on worker
    threads, see the module docstring.)
    """
    _check_layer(x, w, b)
    kernel = w.shape[2:]
    stride, pad, dilation, out_size = _geometry(x.shape, kernel, stride, pad, dilation, "w")
    dtype = np.result_type(x, w, b)
    if _pointwise(kernel, pad):
        return _pointwise_forward(x, w, b, stride, dilation, out_size, dtype)
    # each block pads its own images (in parallel, and while they are in cache)
    x_padded = np.empty((*x.shape[:2], x.shape[2] + 2 * pad[0], x.shape[3] + 2 * pad[1]), dtype)
    x_interior = _interior(x_padded, pad, x.shape)
    num_filters = w.shape[0]
    w_rows = w.reshape(num_filters, -1).astype(dtype, copy=False)
    bias = b.astype(dtype, copy=False).reshape(num_filters, 1)
    out = np.empty((x.shape[0], num_filters, *out_size), dtype=dtype)
    plan = _BlockPlan(x_padded.shape, kernel, stride, dilation, out_size, dtype)

    def forward_block(block):
        x_padded[block] = 0
        x_interior[block] = x[block]
        out_rows = w_rows @ plan.columns(x_padded[block])
        # the bias goes on while the rows are contiguous: an add over W'-long pieces of rows,
        # as the copy below has to make, costs NumPy more per piece than a plain copy does
        out_rows += bias
        out[block].transpose(1, 0, 2, 3)[...] = plan.outputs(out_rows)

    run_blocks(forward_block, plan.blocks)
    return out, ConvCache(x, w, b, x_padded, stride, pad, dilation)


def conv_backward(dout: np.ndarray, cache: ConvCache):
    """Gradients of the convolution by matrix products; takes the cache of either forward.

    dout: (N, F, H', W'). Returns dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).

    Per block of images, with out_rows = w_rows @ cols as in conv_forward and dout_rows the
    block's dout in the same (F, n*H'*W') order, the rule for a matrix product gives

        dw_rows += dout_rows @ cols.T      (summed over the blocks)
        dcols    = w_rows.T @ dout_rows    and dx = col2im(dcols)

    and db is dout summed over everything but the filter axis. At stride 1, dx is the same sum
    computed tap by tap without forming dcols (_BlockPlan.dx_padded_wide). The columns are
    rebuilt from the cached x_padded rather than kept from the forward pass, and each block
    (on a worker thread) returns its share of dw and db: see the module docstring.
    """
    out_size = _check_dout(dout, cache)
    x, w, _, x_padded, stride, pad, dilation = cache
    dtype = np.result_type(x_padded, dout)
    dout = dout.astype(dtype, copy=False)
    num_filters = w.shape[0]
    kernel = w.shape[2:]
    if _pointwise(kernel, pad):
        return _pointwise_backward(dout, cache, dtype)
    w_rows = w.reshape(num_filters, -1).astype(dtype, copy=False)
    # (KH, KW, C, F): entry [p, q] is w[:, :, p, q].T, contiguous as BLAS needs it
    w_taps = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=dtype)
    dx = np.empty(x.shape, dtype=dtype)
    # a sum is finite only if every term is (an overflow to inf costs speed, not correctness)
    finite = bool(np.isfinite(x_padded.sum()) and np.isfinite(w_rows.sum()))
    plan = _BlockPlan(x_padded.shape, kernel, stride, dilation, out_size, dtype, num_filters,
                      finite)

    def backward_block(block):
        cols = plan.columns(x_padded[block])
        dout_rows = plan.dout_rows(dout[block])  # junk entries (wide rows) are 0
        # dw transposed, (C*KH*KW, F): BLAS runs cols @ dout_rows.T faster than
        # dout_rows @ cols.T on these shapes (measured)
        dw_share, db_share = cols @ dout_rows.T, dout_rows.sum(axis=1)
        if plan.taps_dx:
            grid = plan.dout_grid(dout[block])
            dx_padded = plan.dx_padded_wide(w_taps, grid).transpose(1, 0, 2, 3)
        else:
            # col2im into a zeroed padded block
            dx_padded = plan.padded_buffer(x_padded[block].shape)
            plan.add_back(w_rows.T @ dout_rows, dx_padded)
        dx[block] = _interior(dx_padded, pad, dx[block].shape)
        return dw_share, db_share

    # the blocks' shares are summed in block order, whichever thread computed them
    shares = run_blocks(backward_block, plan.blocks)
    dw_cols = sum((dw_share for dw_share, _ in shares), np.zeros((w_rows.shape[1], num_filters),
                                                                  dtype=dtype))
    db = sum((db_share for _, db_share in shares), np.zeros(num_filters, dtype=dtype))
    dw = dw_cols.T.reshape(w.shape)
    return _as_dtypes((dx, dw, db), cache)


# --------------------------------------------------------------------------------------------
# A 1x1 kernel without padding: no im2col at all


def _pointwise(kernel, pad) -> bool:
    """A 1x1 kernel on an unpadded x: each output pixel is one (F, C) @ (C,) product."""
    return tuple(kernel) == (1, 1) and pad == (0, 0)


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
    plan = _BlockPlan(x_padded.shape, (1, 1), stride, dilation, out_size, dtype)

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
    plan = _BlockPlan(x_padded.shape, (1, 1), stride, cache.dilation, dout.shape[2:], dtype)

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

    # the blocks' shares are summed in block order, whichever thread computed them
    shares = run_blocks(backward_block, plan.blocks)
    dw_rows = sum((dw_share for dw_share, _ in shares), np.zeros((num_filters, channels), dtype))
    db = sum((db_share for _, db_share in shares), np.zeros(num_filters, dtype=dtype))
    return _as_dtypes((dx, dw_rows.reshape(w.shape), db), cache)
