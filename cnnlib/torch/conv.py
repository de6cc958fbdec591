"""The convolutional layer on torch tensors: the lecture's loops, and im2col with one matmul.

Shapes, with K_eff = dilation*(K - 1) + 1 (the span of a dilated kernel)::

    x: (N, C, H, W)     w: (F, C, KH, KW)     b: (F,)
    out: (N, F, H', W'),   H' = (H + 2*pad - KH_eff) // stride + 1   (W' alike)

    out[n, f, i, j] = b[f] + sum over c, p, q of
                      w[f, c, p, q] * x_padded[n, c, i*SH + p*DH, j*SW + q*DW]

stride (SH, SW), pad and dilation (DH, DW) are each an int or an (along H, along W) pair, and the
output size is cnnlib.arithmetic.conv_output_size (the floor formula, as PyTorch). This is what
torch.nn.functional.conv2d computes (strictly a cross-correlation: the kernel is not flipped);
the layers here never call it, it is the oracle they are tested against.

As in cnnlib.numpy.conv, two implementations compute the same numbers:

- ``conv_forward_naive`` / ``conv_backward_naive`` loop over the output positions, as the lecture
  writes the formula (each step handles every image and every filter at once: a Python loop over
  single numbers would take minutes on a GPU);
- ``conv_forward`` / ``conv_backward`` gather every receptive field into one column (``im2col``:
  a strided view of the windows, copied once), so that the layer is one matrix product per
  image on whichever device x lives (on a CPU a block of images at a time, through one reused
  buffer); the backward pass scatters the columns' gradients back with ``col2im``
  (torch.nn.functional.fold), which adds up where windows overlap.

Either backward takes the cache of either forward. The tensors of one call must share a device
and a dtype (torch does not mix them; cnnlib.numpy computes mixed dtypes in the wider one).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from cnnlib.numpy import conv as numpy_conv
from cnnlib.numpy._checks import (
    as_pair,
    check_dout,
    check_float_array,
    check_ndim,
    check_shape,
)

# the geometry (pairs, checks, output sizes) is the NumPy layer's, not a copy of it
from cnnlib.numpy._windows import check_x_shape, kernel_span, layer_geometry, pointwise

from ._tensors import check_float_tensors, check_tensor

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

    x: torch.Tensor  # (N, C, H, W), as given
    w: torch.Tensor  # (F, C, KH, KW)
    b: torch.Tensor  # (F,)
    x_padded: torch.Tensor  # (N, C, H + 2*PH, W + 2*PW); x itself when there is no padding
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]


# --------------------------------------------------------------------------------------------
# Checks shared by every function here: torch's own (tensors, one device and dtype) first, then
# cnnlib.numpy.conv's shape checks, which read only .ndim, .shape and .dtype


def _check_layer(x, w, b) -> None:
    """The layer's tensors: x (N, C, H, W), w (F, C, KH, KW), b (F,), floating point, one
    device and dtype."""
    check_float_tensors(x=x, w=w, b=b)
    numpy_conv.check_conv_layer(x, w, b)


def _pad(x: torch.Tensor, pad: tuple[int, int], value: float = 0.0) -> torch.Tensor:
    """x (N, C, H, W) with pad[0] rows above and below, pad[1] columns left and right (x itself
    when both are 0)."""
    pad_h, pad_w = pad
    if pad_h == pad_w == 0:
        return x
    return F.pad(x, (pad_w, pad_w, pad_h, pad_h), value=value)


def _crop(x_padded: torch.Tensor, pad: tuple[int, int], shape) -> torch.Tensor:
    """The inverse of _pad: the (N, C, H, W) = shape interior of x_padded, contiguous."""
    (pad_h, pad_w), (h, w) = pad, tuple(shape[2:])
    return x_padded[:, :, pad_h : pad_h + h, pad_w : pad_w + w].contiguous()


# --------------------------------------------------------------------------------------------
# The building blocks: a window view, im2col and col2im


def window_view(x_padded: torch.Tensor, kernel, stride=1, dilation=1) -> torch.Tensor:
    """Every receptive field of x_padded as one strided view, without copying.

    x_padded: (N, C, Hp, Wp), already padded. kernel, stride, dilation: int or (H, W) pair.
    Returns windows: (N, C, H', W', KH, KW) with H' = (Hp - KH_eff) // SH + 1, where

        windows[n, c, i, j, p, q] = x_padded[n, c, i*SH + p*DH, j*SW + q*DW]

    Only the strides change: one step along i moves SH rows of x_padded, one step along p moves
    DH rows. Overlapping windows share memory, so never write through the view (torch has no
    read-only tensors to stop you): a write meant for one window would land in several.
    """
    check_tensor("x_padded", x_padded)
    check_ndim("x_padded", x_padded, 4, "(N, C, Hp, Wp)")
    check_float_array("x_padded", x_padded)
    kernel = as_pair("kernel", kernel)
    stride, _, dilation, out_size = layer_geometry(
        x_padded.shape, kernel, stride, 0, dilation, "kernel"
    )
    step_n, step_c, step_h, step_w = x_padded.stride()
    return x_padded.as_strided(
        (*x_padded.shape[:2], *out_size, *kernel),
        (step_n, step_c, step_h * stride[0], step_w * stride[1],
         step_h * dilation[0], step_w * dilation[1]),
        x_padded.storage_offset(),
    )


def _block_columns(windows: torch.Tensor, buffer: torch.Tensor | None):
    """im2col per image, what F.unfold returns: cols (n, C*KH*KW, H'*W'), written into
    `buffer` (made when None, as for the first of several blocks); returns cols and the buffer
    for the next block.

    windows: (n, C, H', W', KH, KW), a view (window_view); its (C, KH, KW) axes are moved in
    front of (H', W'), the order of w.reshape(F, -1), and copied into the buffer once. On a CPU
    this is several times faster than torch.nn.functional.unfold."""
    n, c, out_h, out_w, kernel_h, kernel_w = windows.shape
    if buffer is None:
        buffer = windows.new_empty((n, c, kernel_h, kernel_w, out_h, out_w))
    cols = buffer[:n]
    cols.copy_(windows.permute(0, 1, 4, 5, 2, 3))
    return cols.view(n, c * kernel_h * kernel_w, out_h * out_w), buffer


def im2col(x: torch.Tensor, kernel, stride=1, pad=0, dilation=1) -> torch.Tensor:
    """Each receptive field of x as one column of a matrix.

    x: (N, C, H, W); kernel (KH, KW), stride, pad, dilation: int or (H, W) pair.
    Returns cols: (C*KH*KW, N*H'*W'), H' and W' from cnnlib.arithmetic.conv_output_size, with

        cols[c*KH*KW + p*KW + q, n*H'*W' + i*W' + j] = x_padded[n, c, i*SH + p*DH, j*SW + q*DW]

    Rows run over (channel, kernel row, kernel column), the order of w.reshape(F, -1), so
    ``w.reshape(F, -1) @ cols`` is the convolution as an (F, N*H'*W') matrix (cnnlib.numpy's
    layout; conv_forward keeps the images apart, (N, C*KH*KW, H'*W') as
    torch.nn.functional.unfold does, and lets matmul broadcast over them).
    """
    check_tensor("x", x)
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_float_array("x", x)
    kernel = as_pair("kernel", kernel)
    stride, pad, dilation, _ = layer_geometry(x.shape, kernel, stride, pad, dilation, "kernel")
    cols, _ = _block_columns(window_view(_pad(x, pad), kernel, stride, dilation), None)
    return cols.transpose(0, 1).reshape(cols.shape[1], -1)


def col2im(cols: torch.Tensor, x_shape, kernel, stride=1, pad=0, dilation=1) -> torch.Tensor:
    """Fold columns back onto the image, adding where windows overlap: the adjoint of im2col.

    cols: (C*KH*KW, N*H'*W') in im2col's layout; x_shape: (N, C, H, W), the shape im2col read.
    Returns dx: x_shape, where each pixel holds the sum of every column entry copied from it
    (entries from the padding are dropped). In backprop: dx = col2im(dcols) when cols = im2col(x).
    """
    x_shape = check_x_shape(x_shape)
    n, c, h, w = x_shape
    kernel = as_pair("kernel", kernel)
    stride, pad, dilation, out_size = layer_geometry(x_shape, kernel, stride, pad, dilation,
                                                     "kernel")
    rows = c * kernel[0] * kernel[1]
    check_tensor("cols", cols)
    check_float_array("cols", cols)
    check_shape("cols", cols, (rows, n * out_size[0] * out_size[1]),
                "im2col's layout (C*KH*KW, N*H'*W')")
    per_image = cols.reshape(rows, n, -1).transpose(0, 1)  # (N, C*KH*KW, H'*W')
    return F.fold(per_image, (h, w), kernel, dilation=dilation, padding=pad, stride=stride)


# --------------------------------------------------------------------------------------------
# The lecture's loops


def _window(x_padded, i, j, kernel, stride, dilation):
    """The receptive field of output (i, j): (N, C, KH, KW), a view into x_padded."""
    top, left = i * stride[0], j * stride[1]
    span_h, span_w = kernel_span(kernel, dilation)
    return x_padded[
        :, :, top : top + span_h : dilation[0], left : left + span_w : dilation[1]
    ]


def conv_forward_naive(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride=1, pad=0,
                       dilation=1):
    """Convolution as the lecture writes it: slide the kernel over every output position.

    x: (N, C, H, W); w: (F, C, KH, KW); b: (F,); stride, pad, dilation: int or (H, W) pair.
    Returns out: (N, F, H', W') and a ConvCache for conv_backward_naive (or conv_backward).

    One step per output position (i, j): the window under it is an (N, C, KH, KW) block of
    x_padded starting at row i*SH, column j*SW, with taps DH rows and DW columns apart, and
    out[:, f, i, j] = sum(window * w[f]) + b[f] for every filter f at once (a tensordot over
    the C, KH, KW axes).
    """
    _check_layer(x, w, b)
    kernel = tuple(w.shape[2:])
    stride, pad, dilation, (out_h, out_w) = layer_geometry(x.shape, kernel, stride, pad,
                                                           dilation, "w")
    x_padded = _pad(x, pad)
    out = x.new_empty((x.shape[0], w.shape[0], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            window = _window(x_padded, i, j, kernel, stride, dilation)
            out[:, :, i, j] = torch.tensordot(window, w, dims=([1, 2, 3], [1, 2, 3])) + b
    return out, ConvCache(x, w, b, x_padded, stride, pad, dilation)


def _check_dout(dout, cache: ConvCache) -> tuple[int, int]:
    """dout must be a float tensor shaped like the forward's output; return (H', W')."""
    numpy_conv.check_conv_cache(cache)
    check_tensor("dout", dout)
    out_size = numpy_conv.check_conv_dout(dout, cache)
    check_dout(dout, tuple(dout.shape), "the layer's output", like=cache.x_padded)
    return out_size


def conv_backward_naive(dout: torch.Tensor, cache: ConvCache):
    """Gradients of the convolution, output position by output position.

    dout: (N, F, H', W'); cache from conv_forward_naive or conv_forward.
    Returns dx (N, C, H, W), dw (F, C, KH, KW), db (F,).

    Output (i, j) read one window of x_padded with every filter, so it sends dout[:, :, i, j]
    back to that window (through w: a tensordot over F) and to w (through the window: a
    tensordot over N); a pixel under several windows collects the sum of their contributions,
    and the padding's share is cropped off at the end. db[f] sums dout[:, f]: the bias is added
    to every output of filter f. (cnnlib.numpy's naive backward derives dw and dx as two
    convolutions instead; the numbers are the same.)
    """
    out_h, out_w = _check_dout(dout, cache)
    x, w, _, x_padded, stride, pad, dilation = cache
    kernel = tuple(w.shape[2:])
    dx_padded = torch.zeros_like(x_padded)
    dw = torch.zeros_like(w)
    for i in range(out_h):
        for j in range(out_w):
            window = _window(x_padded, i, j, kernel, stride, dilation)
            dw += torch.tensordot(dout[:, :, i, j], window, dims=([0], [0]))
            # _window is a view into dx_padded: add_ writes the window's share in place
            _window(dx_padded, i, j, kernel, stride, dilation).add_(
                torch.tensordot(dout[:, :, i, j], w, dims=([1], [0]))
            )
    db = dout.sum(dim=(0, 2, 3))
    return _crop(dx_padded, pad, x.shape), dw, db


# --------------------------------------------------------------------------------------------
# The fast version: im2col and one batched matrix product, a block of images at a time

# Numbers of columns per block of images on a CPU: 2**20 float32 numbers are 4 MiB (7 images of
# 16 channels at 32x32 with a 3x3 kernel). The blocks share one buffer, filled again for each
# block. Why: a fresh tensor of columns for the whole batch (75 MiB for ResNet-20's first
# layers at batch 128) is new memory every call, which the operating system hands over a page
# at a time, zeroed: that cost 4x the copy itself (48 ms against 9 ms for the same copy into
# memory already in use, measured). A 4 MiB buffer is reused by the memory allocator from call
# to call. On a GPU, torch's caching allocator already reuses memory: one block for the batch.
_BLOCK_ELEMENTS = 1 << 20


def _image_blocks(num_images: int, per_image: int, device: torch.device) -> list[slice]:
    """The batch cut into blocks of images whose columns hold about _BLOCK_ELEMENTS numbers
    (per_image numbers each; at least one image per block). The cut depends only on the shapes
    and the device type, so the numbers do too."""
    per_block = num_images if device.type != "cpu" else _BLOCK_ELEMENTS // max(1, per_image)
    per_block = max(1, min(per_block, num_images))
    return [slice(start, min(start + per_block, num_images))
            for start in range(0, num_images, per_block)]


def _convolve(x_padded: torch.Tensor, w: torch.Tensor, stride, dilation) -> torch.Tensor:
    """The convolution of x_padded (N, C, Hp, Wp) with w (F, C, KH, KW), no padding, no bias:
    out (N, F, H', W'), computed per image as w_rows @ cols, (F, H'*W')."""
    num_images, num_filters = x_padded.shape[0], w.shape[0]
    kernel = tuple(w.shape[2:])
    windows = window_view(x_padded, kernel, stride, dilation)  # (N, C, H', W', KH, KW)
    out_h, out_w = windows.shape[2:4]
    w_rows = w.reshape(num_filters, -1)  # (F, C*KH*KW)
    # out itself, not a view of it, is returned: an autograd Function must copy an output
    # that is a view (cnnlib.torch.functions)
    out = x_padded.new_empty((num_images, num_filters, out_h, out_w))
    out_rows = out.view(num_images, num_filters, out_h * out_w)
    blocks = _image_blocks(num_images, w_rows.shape[1] * out_h * out_w, x_padded.device)
    buffer = None
    for block in blocks:
        cols, buffer = _block_columns(windows[block], buffer)  # (n, C*KH*KW, H'*W')
        torch.matmul(w_rows, cols, out=out_rows[block])
    return out


def conv_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride=1, pad=0, dilation=1):
    """Vectorised convolution: im2col, then a matrix product with the filters.

    x: (N, C, H, W); w: (F, C, KH, KW); b: (F,); stride, pad, dilation: int or (H, W) pair.
    Returns out: (N, F, H', W') and a ConvCache for conv_backward.

    im2col lays out each receptive field of an image as a column of C*KH*KW numbers, one column
    per output position: cols (C*KH*KW, H'*W') per image. Each filter flattened to a row of
    w_rows (F, C*KH*KW) dotted with a column is one output, so w_rows @ cols is the image's
    whole layer, (F, H'*W'), and the bias is added to each filter's row. (The images go a
    block at a time through one buffer of columns: see _BLOCK_ELEMENTS.)

    out carries no autograd graph: the backward pass is conv_backward, and Conv2dFunction
    (cnnlib.torch.functions) is how autograd calls it.
    """
    _check_layer(x, w, b)
    kernel = tuple(w.shape[2:])
    stride, pad, dilation, out_size = layer_geometry(x.shape, kernel, stride, pad, dilation,
                                                     "w")
    with torch.no_grad():
        x_padded = _pad(x, pad)
        if pointwise(kernel, pad):
            out = _pointwise_convolve(x_padded, w, stride, out_size)
        else:
            out = _convolve(x_padded, w, stride, dilation)
        out += b.reshape(-1, 1, 1)
    # the columns are KH*KW copies of x: cheaper to build again in backward than to keep them
    return out, ConvCache(x, w, b, x_padded, stride, pad, dilation)


def conv_backward(dout: torch.Tensor, cache: ConvCache):
    """Gradients of the convolution by matrix products; takes the cache of either forward.

    dout: (N, F, H', W'). Returns dx (N, C, H, W), dw (F, C, KH, KW), db (F,).

    With out = w_rows @ cols + b per image, the rule for a matrix product gives

        dw_rows = sum over images of dout_rows @ cols.T     dcols = w_rows.T @ dout_rows

    and fold (col2im) adds each column's gradient back onto the pixels it was copied from; db
    sums dout over everything but the filter axis.

    At stride 1 dx skips fold: it is the "full" convolution of dout with the kernel rotated by
    180 degrees and its F and C axes swapped (lecture 04), padded by K_eff - 1 - pad so that
    it comes out H x W, computed as conv_forward computes a layer. F.fold is slow on the CPU:
    dx this way took 1.1x to 2x less time on the CIFAR ResNet's layers (measured). fold stays
    for stride > 1, a pad larger than K_eff - 1, and layers with more filters than input
    channels. (Blocks of images as in conv_forward.)
    """
    _check_dout(dout, cache)
    x, w, _, x_padded, stride, pad, dilation = cache
    num_filters = w.shape[0]
    kernel = tuple(w.shape[2:])
    if pointwise(kernel, pad):
        return _pointwise_backward(dout, cache)
    span = kernel_span(kernel, dilation)
    with torch.no_grad():
        # contiguous: autograd may hand over a broadcast dout (stride 0), which BLAS handles
        # slowly
        dout_rows = dout.contiguous().reshape(dout.shape[0], num_filters, -1)  # (N, F, H'*W')
        db = dout_rows.sum(dim=(0, 2))
        w_rows = w.reshape(num_filters, -1)
        windows = window_view(x_padded, kernel, stride, dilation)
        blocks = _image_blocks(x.shape[0], w_rows.shape[1] * dout_rows.shape[2], x.device)
        dw_rows = torch.zeros_like(w_rows)
        # the full convolution copies F*KH*KW numbers per pixel where fold adds C*KH*KW: it
        # pays when F <= C (a ResNet's 3x3 layers), not for a first layer like LeNet's 1 -> 20
        # (measured)
        fits = all(p <= s - 1 for p, s in zip(pad, span, strict=True))
        # and only for finite weights: the full convolution multiplies them by dout's zero
        # padding too, and 0 * NaN would reach dx pixels that torch (and fold) leave finite
        full = (stride == (1, 1) and fits and num_filters <= x.shape[1]
                and bool(torch.isfinite(w).all()))
        # every block writes its own images' slice of dx_padded whole: no zeros needed
        dx_padded = None if full else torch.empty_like(x_padded)
        buffer = None
        for block in blocks:
            cols, buffer = _block_columns(windows[block], buffer)
            dw_rows += torch.bmm(dout_rows[block], cols.transpose(1, 2)).sum(dim=0)
            if not full:
                # the columns' gradients, in the same buffer: cols is not needed any more
                dcols = torch.matmul(w_rows.T, dout_rows[block], out=cols)
                dx_padded[block] = F.fold(dcols, tuple(x_padded.shape[2:]), kernel,
                                          dilation=dilation, stride=stride)
        if full:
            w_rotated = w.flip(2, 3).transpose(0, 1)  # (C, F, KH, KW)
            full_pad = tuple(s - 1 - p for s, p in zip(span, pad, strict=True))
            dx = _convolve(_pad(dout_rows.reshape(dout.shape), full_pad), w_rotated, (1, 1),
                           dilation)
        else:
            dx = _crop(dx_padded, pad, x.shape)
    return dx, dw_rows.reshape(w.shape), db


# --------------------------------------------------------------------------------------------
# A 1x1 kernel without padding: no columns (as in cnnlib.numpy.conv)


def _pixels(x: torch.Tensor, stride) -> torch.Tensor:
    """The pixels a 1x1 kernel reads, image by image: (N, C, H'*W'), x[..., ::SH, ::SW]; a view
    of x at stride 1, a copy otherwise."""
    pixels = x[:, :, :: stride[0], :: stride[1]]
    return pixels.reshape(*pixels.shape[:2], pixels.shape[2] * pixels.shape[3])


def _pointwise_convolve(x: torch.Tensor, w: torch.Tensor, stride, out_size) -> torch.Tensor:
    """conv_forward's product for a 1x1 kernel and pad 0, no bias: out[n] = w_rows @ x[n], x[n]
    seen as a (C, H*W) matrix, which is how NCHW already stores it (see cnnlib.numpy.conv).
    out_size: (H', W')."""
    out = x.new_empty((x.shape[0], w.shape[0], *out_size))
    torch.matmul(w.reshape(w.shape[0], -1), _pixels(x, stride),
                 out=out.view(*out.shape[:2], out_size[0] * out_size[1]))
    return out


def _pointwise_backward(dout: torch.Tensor, cache: ConvCache):
    """conv_backward for a 1x1 kernel and pad 0, image by image:

        dx[n] = w_rows.T @ dout[n]         (at the pixels the kernel read; 0 elsewhere)
        dw_rows = sum over n of dout[n] @ x[n].T,   db = dout summed over all but F

    dw's products go a block of images at a time (each image's is an (F, C) matrix; see
    _image_blocks)."""
    x, w, _, x_padded, stride, _, _ = cache
    num_filters, channels = w.shape[:2]
    with torch.no_grad():
        dout_pixels = _pixels(dout.contiguous(), (1, 1))  # (N, F, H'*W')
        pixels = _pixels(x_padded, stride)  # (N, C, H'*W')
        w_rows = w.reshape(num_filters, channels)
        dw_rows = torch.zeros_like(w_rows)
        for block in _image_blocks(x.shape[0], num_filters * channels, x.device):
            dw_rows += torch.bmm(dout_pixels[block], pixels[block].transpose(1, 2)).sum(dim=0)
        dx_pixels = torch.matmul(w_rows.T, dout_pixels)  # (N, C, H'*W')
        if stride == (1, 1):
            dx = dx_pixels.view(x.shape)
        else:
            dx = torch.zeros_like(x_padded)
            dx[:, :, :: stride[0], :: stride[1]] = dx_pixels.view(*dx_pixels.shape[:2],
                                                                 *dout.shape[2:])
        db = dout_pixels.sum(dim=(0, 2))
    return dx, dw_rows.reshape(w.shape), db
