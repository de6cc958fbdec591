"""Windows of an image: the geometry sliding-window layers share, and im2col / col2im.

A layer with a KH x KW kernel (dilated by DH, DW), stride (SH, SW) and pad (PH, PW) reads, for
output (i, j), the window of x_padded whose taps are

    x_padded[n, c, i*SH + p*DH, j*SW + q*DW]     for p < KH, q < KW

where x_padded is x (N, C, H, W) with PH rows of zeros above and below and PW columns left and
right. Its output is H' x W' with H' = (H + 2*PH - KH_eff) // SH + 1 (cnnlib.arithmetic's floor
formula), KH_eff = DH*(KH - 1) + 1 the rows the dilated kernel spans.

Here: that geometry checked and computed once for every layer (``layer_geometry``), padding
and its inverse, one kernel tap of every window as a strided view (``kernel_tap``), all the
windows as one view (``window_view``), and the convolution's building blocks ``im2col`` (every
window as a column of a matrix) and ``col2im`` (its adjoint: columns added back onto the
pixels they came from). cnnlib.numpy.conv and cnnlib.numpy.pool build on them, and the torch
twins use the same geometry.
"""

from __future__ import annotations

import numbers

import numpy as np

from cnnlib.arithmetic import conv_output_size, effective_kernel_size

from ._checks import (
    as_pair,
    check_allocation,
    check_float_array,
    check_ndim,
    check_shape,
    check_window_fits,
)

__all__ = [
    "check_x_shape",
    "col2im",
    "col2im_add",
    "crop_padding",
    "im2col",
    "im2col_padded",
    "interior",
    "kernel_span",
    "kernel_tap",
    "layer_geometry",
    "output_size",
    "pad_images",
    "pointwise",
    "window_view",
]


# --------------------------------------------------------------------------------------------
# Geometry: pairs, output sizes, padding


def kernel_span(kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns a dilated kernel covers: K_eff = D*(K - 1) + 1 along each axis."""
    return tuple(effective_kernel_size(k, d) for k, d in zip(kernel, dilation, strict=True))


def output_size(size, kernel, stride, pad, dilation) -> tuple[int, int]:
    """(H', W') by cnnlib.arithmetic's floor formula; every argument an (H, W) pair."""
    return tuple(
        conv_output_size(size[a], kernel[a], stride[a], pad[a], dilation[a]) for a in (0, 1)
    )


def layer_geometry(x_shape, kernel, stride, pad, dilation, kernel_name):
    """Check stride/pad/dilation and that the (dilated) kernel fits; return pairs and (H', W')."""
    stride = as_pair("stride", stride)
    pad = as_pair("pad", pad, minimum=0)
    dilation = as_pair("dilation", dilation)
    size = tuple(x_shape[2:])
    check_window_fits(kernel_name, kernel_span(kernel, dilation), size, pad)
    # an absurd pad (10**6) is refused here, before any array of that size is asked for
    padded_shape = (*x_shape[:2], size[0] + 2 * pad[0], size[1] + 2 * pad[1])
    check_allocation("pad", padded_shape, 8, "x padded")
    return stride, pad, dilation, output_size(size, kernel, stride, pad, dilation)


def pointwise(kernel, pad) -> bool:
    """A 1x1 kernel on an unpadded x: each output pixel is one (F, C) @ (C,) product, and x,
    stored as (C, H*W) per image, is already its own im2col."""
    return tuple(kernel) == (1, 1) and tuple(pad) == (0, 0)


def pad_images(x: np.ndarray, pad: tuple[int, int], dtype, value=0.0) -> np.ndarray:
    """x (N, C, H, W) with pad[0] rows above and below, pad[1] columns left and right: a copy."""
    (pad_h, pad_w), (n, c, h, w) = pad, x.shape
    x_padded = np.full((n, c, h + 2 * pad_h, w + 2 * pad_w), value, dtype=dtype)
    x_padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w] = x
    return x_padded


def crop_padding(x_padded: np.ndarray, pad: tuple[int, int], shape) -> np.ndarray:
    """The inverse of _pad: the (N, C, H, W) = shape interior of x_padded, contiguous."""
    return np.ascontiguousarray(interior(x_padded, pad, shape))


def interior(x_padded: np.ndarray, pad: tuple[int, int], shape) -> np.ndarray:
    """The (N, C, H, W) = shape interior of x_padded (N, C, Hp, Wp): a view, writable."""
    (pad_h, pad_w), (h, w) = pad, shape[2:]
    return x_padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w]


def kernel_tap(x_padded, p, q, out_size, stride, dilation):
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
    stride, _, dilation, out_size = layer_geometry(
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


def im2col_padded(x_padded, kernel, stride, dilation, out_size, out=None):
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
            out[:, p, q] = kernel_tap(by_channel, p, q, out_size, stride, dilation)
    return out.reshape(c * kernel_h * kernel_w, n * out_h * out_w)


def col2im_add(cols, x_padded, kernel, stride, dilation, out_size) -> None:
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
            tap = kernel_tap(by_channel, p, q, out_size, stride, dilation)
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
    stride, pad, dilation, out_size = layer_geometry(x.shape, kernel, stride, pad, dilation,
                                                     "kernel")
    cols_shape = (x.shape[1] * kernel[0] * kernel[1], x.shape[0] * out_size[0] * out_size[1])
    check_allocation("pad", cols_shape, x.dtype.itemsize, "im2col's matrix")
    x_padded = pad_images(x, pad, x.dtype)
    return im2col_padded(x_padded, kernel, stride, dilation, out_size)


def check_x_shape(x_shape) -> tuple[int, int, int, int]:
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
    x_shape = check_x_shape(x_shape)
    check_float_array("cols", cols)
    n, c = x_shape[:2]
    kernel = as_pair("kernel", kernel)
    stride, pad, dilation, out_size = layer_geometry(x_shape, kernel, stride, pad, dilation,
                                                     "kernel")
    rows = c * kernel[0] * kernel[1]
    check_shape("cols", cols, (rows, n * out_size[0] * out_size[1]),
                "im2col's layout (C*KH*KW, N*H'*W')")
    padded_shape = (n, c, x_shape[2] + 2 * pad[0], x_shape[3] + 2 * pad[1])
    dx_padded = np.zeros(padded_shape, dtype=cols.dtype)
    col2im_add(cols, dx_padded, kernel, stride, dilation, out_size)
    return crop_padding(dx_padded, pad, x_shape)
