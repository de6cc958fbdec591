"""Max and average pooling in NumPy: the lecture's loops, and a vectorised version.

Shapes, for a window `size` (KH, KW) moved by `stride` over x padded by `pad`::

    x: (N, C, H, W)  ->  out: (N, C, H', W'),   H' = (H + 2*pad - KH) // stride + 1   (W' alike)

size, stride and pad are each an int or an (along H, along W) pair; the output size is
cnnlib.arithmetic.pool_output_size (the floor formula). Every channel of every image is pooled on
its own, so pooling has no parameters and keeps C. Padding follows PyTorch: max pooling pads with
-inf, so padding never wins a window; average pooling pads with zeros that count in the mean
(torch's default ``count_include_pad=True``); and a window may reach at most half its size into
the padding (pad <= size / 2, as torch demands), so it always covers some real input.

Backward passes route the gradient the way the forward mixed the inputs:

- max: each output's gradient goes to the input that won its window (on a tie, to the first
  maximum in row-major order within the window, as np.argmax picks it); the other inputs of the
  window get nothing.
- average: each input of the window gets 1/(KH*KW) of the output's gradient.

Where windows overlap (stride < size, as AlexNet's 3x3 windows at stride 2) an input collects
the sum over every window it belongs to.

The vectorised versions loop over the KH*KW positions (p, q) inside the window instead of over
the H'*W' windows: position (p, q) of every window at once is one strided slice of x_padded,
(N, C, H', W') (`window_view(x_padded, size, stride)[..., p, q]`), so a 2x2 pool is four whole-
array operations, and the backward pass adds four slices back.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._checks import (
    as_pair,
    check_cache,
    check_float_array,
    check_ndim,
    check_shape,
    check_window_fits,
)
from .conv import _crop, _output_size, _pad, _tap

__all__ = [
    "PoolCache",
    "avg_pool_backward",
    "avg_pool_backward_naive",
    "avg_pool_forward",
    "avg_pool_forward_naive",
    "max_pool_backward",
    "max_pool_backward_naive",
    "max_pool_forward",
    "max_pool_forward_naive",
]

_NO_DILATION = (1, 1)

# The cache of every pooling forward, entry by entry (a PoolCache is a tuple of these)
_POOL_CACHE = ("array", "array", "pair", "pair", "pair", "array or None")
_POOL_FORWARDS = "a pooling forward (max_pool_forward, avg_pool_forward or a *_naive twin)"


class PoolCache(NamedTuple):
    """What a pooling backward pass needs. `argmax` (max pooling, fast forward only) holds, per
    output, the winning position p*KW + q inside its window; None where it was not recorded."""

    x: np.ndarray  # (N, C, H, W)
    x_padded: np.ndarray  # (N, C, H + 2*PH, W + 2*PW), padded with -inf (max) or 0 (average)
    size: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    argmax: np.ndarray | None = None  # (N, C, H', W') integers in [0, KH*KW)


def _pool_geometry(x, size, stride, pad):
    """Check the arguments; return size, stride, pad as (H, W) pairs and the output (H', W')."""
    check_ndim("x", x, 4, "(N, C, H, W)")
    check_float_array("x", x)
    size, stride, pad = as_pair("size", size), as_pair("stride", stride), as_pair("pad", pad, 0)
    if 2 * pad[0] > size[0] or 2 * pad[1] > size[1]:
        raise ValueError(
            f"pad must be at most half the window size {size} along each axis (so that every "
            f"window covers some real input), wanted pad <= {(size[0] // 2, size[1] // 2)}, "
            f"got pad={pad}"
        )
    check_window_fits("size", size, tuple(x.shape[2:]), pad)
    return size, stride, pad, _output_size(x.shape[2:], size, stride, pad, _NO_DILATION)


def _check_dout(dout, cache: PoolCache) -> tuple[int, int]:
    """dout must be a float array shaped like the forward's output; return (H', W')."""
    check_cache(cache, _POOL_CACHE, _POOL_FORWARDS)
    check_float_array("dout", dout)
    out_size = _output_size(cache.x.shape[2:], cache.size, cache.stride, cache.pad, _NO_DILATION)
    check_shape("dout", dout, (*cache.x.shape[:2], *out_size), "the pooled output (N, C, H', W')")
    return out_size


def _window(x_padded, n, c, i, j, size, stride):
    """The (KH, KW) window of output (i, j) of image n, channel c: a view."""
    top, left = i * stride[0], j * stride[1]
    return x_padded[n, c, top : top + size[0], left : left + size[1]]


def _positions(size):
    """The window positions (p, q) in row-major order, numbered k = p*KW + q."""
    return [divmod(k, size[1]) for k in range(size[0] * size[1])]


def _taps(x_padded, size, stride, out_size):
    """Position (p, q) of every window as an (N, C, H', W') view, for each k = p*KW + q."""
    return [_tap(x_padded, p, q, out_size, stride, _NO_DILATION) for p, q in _positions(size)]


# ------------------------------------------------------------------------------- max pooling


def max_pool_forward_naive(x: np.ndarray, size=2, stride=2, pad=0):
    """Max pooling as the lecture writes it: the largest value of every window, one by one.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair.
    Returns out: (N, C, H', W') and a PoolCache for max_pool_backward_naive.
    """
    size, stride, pad, (out_h, out_w) = _pool_geometry(x, size, stride, pad)
    x_padded = _pad(x, pad, x.dtype, value=-np.inf)
    num_images, channels = x.shape[:2]
    out = np.empty((num_images, channels, out_h, out_w), dtype=x.dtype)
    for n in range(num_images):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    out[n, c, i, j] = _window(x_padded, n, c, i, j, size, stride).max()
    return out, PoolCache(x, x_padded, size, stride, pad)


def max_pool_backward_naive(dout: np.ndarray, cache: PoolCache):
    """Gradient of max pooling, window by window: dout goes to the window's maximum.

    dout: (N, C, H', W'); cache from either max-pool forward. Returns dx: (N, C, H, W).
    np.argmax finds the winner (the first maximum, counting row by row, on a tie); where windows
    overlap, an input that wins several windows collects all their gradients.
    """
    out_h, out_w = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, _ = cache
    dx_padded = np.zeros(x_padded.shape, dtype=np.result_type(x, dout))
    num_images, channels = x.shape[:2]
    for n in range(num_images):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    window = _window(x_padded, n, c, i, j, size, stride)
                    p, q = np.unravel_index(np.argmax(window), size)
                    dx_padded[n, c, i * stride[0] + p, j * stride[1] + q] += dout[n, c, i, j]
    return _crop(dx_padded, pad, x.shape).astype(x.dtype, copy=False)


def _max_and_argmax(taps):
    """Elementwise max over the taps and the index of the first tap that reaches it.

    A NaN wins its window, as in np.argmax, np.max and torch's max pooling: a NaN in the input
    must show in the output rather than be quietly dropped.
    """
    out = taps[0].copy()
    argmax = np.zeros(out.shape, dtype=np.intp)
    for k, tap in enumerate(taps[1:], start=1):
        # strictly greater: on a tie the earlier position keeps the win, as np.argmax does;
        # `tap > out` is False for a NaN on either side, so a NaN tap is let in explicitly
        wins = (tap > out) | (np.isnan(tap) & ~np.isnan(out))
        np.copyto(out, tap, where=wins)
        argmax[wins] = k
    return out, argmax


def _fast_max_and_argmax(taps):
    """_max_and_argmax for input without NaN, in fewer and narrower passes over memory.

    Engineering notes: each tap costs three whole-array passes (compare, maximum, and a masked
    store of k), where _max_and_argmax needs two more for NaN and a boolean-index store; argmax
    is uint8, an eighth of intp's bytes to write here and read back in the backward pass.
    Measured interleaved with torch on the sweep's pooling layers (bench_conv.py section 4) it
    takes about 0.6-0.75 of _max_and_argmax's time. np.maximum(out, tap) equals a copy where
    tap > out only when there is no NaN, hence the check in max_pool_forward.
    """
    out = taps[0].copy()
    argmax = np.zeros(out.shape, dtype=np.uint8 if len(taps) <= 256 else np.intp)
    wins = np.empty(out.shape, dtype=bool)
    for k, tap in enumerate(taps[1:], start=1):
        np.greater(tap, out, out=wins)  # strictly: on a tie the earlier position keeps the win
        np.maximum(out, tap, out=out)
        np.copyto(argmax, k, where=wins)
    return out, argmax


def max_pool_forward(x: np.ndarray, size=2, stride=2, pad=0):
    """Vectorised max pooling: a running maximum over the KH*KW positions of the window.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair.
    Returns out: (N, C, H', W') and a PoolCache for max_pool_backward, which records which
    position won each window (the lecture's "remember where the max came from").
    """
    size, stride, pad, out_size = _pool_geometry(x, size, stride, pad)
    # without padding the taps are views of x itself: no copy
    x_padded = _pad(x, pad, x.dtype, value=-np.inf) if any(pad) else x
    taps = _taps(x_padded, size, stride, out_size)
    has_nan = bool(np.isnan(x).any())  # one pass, which spares two per tap when there is none
    out, argmax = _max_and_argmax(taps) if has_nan else _fast_max_and_argmax(taps)
    return out, PoolCache(x, x_padded, size, stride, pad, argmax)


def max_pool_backward(dout: np.ndarray, cache: PoolCache):
    """Vectorised gradient of max pooling; takes the cache of either max-pool forward.

    dout: (N, C, H', W'). Returns dx: (N, C, H, W).
    For each window position k = (p, q), the outputs whose window was won at k send their
    gradient to tap k of x_padded: one masked slice-add per position. Within one position no
    two windows share an input, so the add is exact; overlaps are summed across positions.
    """
    out_size = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, argmax = cache
    if argmax is None:  # cache from the naive forward
        argmax = _max_and_argmax(_taps(x_padded, size, stride, out_size))[1]
    dx_padded = np.zeros(x_padded.shape, dtype=np.result_type(x, dout))
    won = np.empty(argmax.shape, dtype=bool)
    for k, tap in enumerate(_taps(dx_padded, size, stride, out_size)):
        np.equal(argmax, k, out=won)
        np.add(tap, dout, out=tap, where=won)  # through the view, no temporary array
    return _crop(dx_padded, pad, x.shape).astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- average pooling


def avg_pool_forward_naive(x: np.ndarray, size=2, stride=2, pad=0):
    """Average pooling as the lecture writes it: the mean of every window, one by one.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair. Padded zeros count in the mean.
    Returns out: (N, C, H', W') and a PoolCache for avg_pool_backward_naive.
    """
    size, stride, pad, (out_h, out_w) = _pool_geometry(x, size, stride, pad)
    x_padded = _pad(x, pad, x.dtype)
    num_images, channels = x.shape[:2]
    out = np.empty((num_images, channels, out_h, out_w), dtype=x.dtype)
    for n in range(num_images):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    out[n, c, i, j] = _window(x_padded, n, c, i, j, size, stride).mean()
    return out, PoolCache(x, x_padded, size, stride, pad)


def avg_pool_backward_naive(dout: np.ndarray, cache: PoolCache):
    """Gradient of average pooling, window by window: dout / (KH*KW) to every input of it.

    dout: (N, C, H', W'); cache from either average-pool forward. Returns dx: (N, C, H, W).
    """
    out_h, out_w = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, _ = cache
    dx_padded = np.zeros(x_padded.shape, dtype=np.result_type(x, dout))
    share = 1 / (size[0] * size[1])
    num_images, channels = x.shape[:2]
    for n in range(num_images):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    window = _window(dx_padded, n, c, i, j, size, stride)  # a view: += writes
                    window += dout[n, c, i, j] * share
    return _crop(dx_padded, pad, x.shape).astype(x.dtype, copy=False)


def avg_pool_forward(x: np.ndarray, size=2, stride=2, pad=0):
    """Vectorised average pooling: the sum of the KH*KW window positions, divided by KH*KW.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair. Padded zeros count in the mean.
    Returns out: (N, C, H', W') and a PoolCache for avg_pool_backward.
    """
    size, stride, pad, out_size = _pool_geometry(x, size, stride, pad)
    x_padded = _pad(x, pad, x.dtype)
    taps = _taps(x_padded, size, stride, out_size)
    out = taps[0].copy()
    for tap in taps[1:]:
        out += tap
    out /= size[0] * size[1]
    return out, PoolCache(x, x_padded, size, stride, pad)


def avg_pool_backward(dout: np.ndarray, cache: PoolCache):
    """Vectorised gradient of average pooling; takes the cache of either average-pool forward.

    dout: (N, C, H', W'). Returns dx: (N, C, H, W): dout / (KH*KW) added to each of the KH*KW
    taps of dx_padded, then the padding cropped off.
    """
    out_size = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, _ = cache
    dx_padded = np.zeros(x_padded.shape, dtype=np.result_type(x, dout))
    share = dout * (1 / (size[0] * size[1]))
    for tap in _taps(dx_padded, size, stride, out_size):
        tap += share
    return _crop(dx_padded, pad, x.shape).astype(x.dtype, copy=False)
