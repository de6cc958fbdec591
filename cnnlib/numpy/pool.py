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
array operations, and the backward pass adds four slices back. The fast max pooling does this a
block of planes at a time on worker threads and reads the slices from contiguous "phase" copies
of the input; the engineering notes are at _BLOCK_ELEMENTS and _phases.
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
from ._windows import crop_padding, kernel_tap, output_size, pad_images
from ._workers import run_blocks

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

# Input numbers per block in the fast max pooling. Each block is a few planes (one channel of
# one image each) that one worker thread (cnnlib.numpy._workers) takes through all KH*KW
# passes; pooling has no sums across planes, so the result does not depend on the cut or the
# thread count. 2**18 float32 numbers are 1 MiB, about what stays in a core's caches through
# the passes. Measured forward + backward on (8, 64, 112, 112), 3x3 windows at stride 2, two
# threads: blocks of 2**14 numbers 254 ms, 2**16 59 ms, 2**18 25 ms, 2**20 22 ms (one thread
# 38 ms): small blocks spend their time calling NumPy and waiting for the GIL between calls.
# The batch is still cut into _MIN_BLOCKS blocks where that leaves each of them
# _MIN_BLOCK_ELEMENTS numbers or more, so a small batch keeps the threads busy too.
_BLOCK_ELEMENTS = 1 << 18
_MIN_BLOCKS = 4
_MIN_BLOCK_ELEMENTS = 1 << 14

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
    return size, stride, pad, output_size(x.shape[2:], size, stride, pad, _NO_DILATION)


def _check_dout(dout, cache: PoolCache) -> tuple[int, int]:
    """dout must be a float array shaped like the forward's output; return (H', W')."""
    check_cache(cache, _POOL_CACHE, _POOL_FORWARDS)
    check_float_array("dout", dout)
    out_size = output_size(cache.x.shape[2:], cache.size, cache.stride, cache.pad, _NO_DILATION)
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
    return [kernel_tap(x_padded, p, q, out_size, stride, _NO_DILATION) for p, q in _positions(size)]


# ------------------------------------------------------------------------------- max pooling


def max_pool_forward_naive(x: np.ndarray, size=2, stride=2, pad=0):
    """Max pooling as the lecture writes it: the largest value of every window, one by one.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair.
    Returns out: (N, C, H', W') and a PoolCache for max_pool_backward_naive.
    """
    size, stride, pad, (out_h, out_w) = _pool_geometry(x, size, stride, pad)
    x_padded = pad_images(x, pad, x.dtype, value=-np.inf)
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
    return crop_padding(dx_padded, pad, x.shape).astype(x.dtype, copy=False)


def _max_and_argmax(taps, out, argmax):
    """Elementwise max over the taps into `out`, and into `argmax` the index of the first tap
    that reaches it.

    A NaN wins its window, as in np.argmax, np.max and torch's max pooling: a NaN in the input
    must show in the output rather than be quietly dropped.
    """
    np.copyto(out, taps[0])
    argmax.fill(0)
    for k, tap in enumerate(taps[1:], start=1):
        # strictly greater: on a tie the earlier position keeps the win, as np.argmax does;
        # `tap > out` is False for a NaN on either side, so a NaN tap is let in explicitly
        wins = (tap > out) | (np.isnan(tap) & ~np.isnan(out))
        np.copyto(out, tap, where=wins)
        argmax[wins] = k


def _fast_max_and_argmax(taps, out, argmax):
    """_max_and_argmax for input without NaN, in fewer and cheaper passes over memory.

    The index of the first maximum is the last k at which tap k took the lead (strictly greater
    than every tap before it), so argmax is the largest k * took_lead over the taps: a
    multiply and a maximum of small integers, where a masked store (np.copyto with where=)
    runs several times slower. np.maximum(out, tap) equals a copy where tap > out only when
    there is no NaN; a NaN anywhere in the window makes np.maximum's result NaN, which is how
    max_pool_forward notices that it must use _max_and_argmax instead.
    """
    np.copyto(out, taps[0])
    argmax.fill(0)
    took_lead = np.empty(out.shape, dtype=bool)
    lead_code = np.empty(out.shape, dtype=argmax.dtype)
    for k, tap in enumerate(taps[1:], start=1):
        np.greater(tap, out, out=took_lead)  # strictly: on a tie the earlier position keeps it
        np.maximum(out, tap, out=out)
        np.multiply(took_lead, argmax.dtype.type(k), out=lead_code)  # k where it took the lead
        np.maximum(argmax, lead_code, out=argmax)


def _plane_blocks(shape) -> list[slice]:
    """Cut the planes of an (N, C, H, W) array, one channel of one image each, into blocks of
    about _BLOCK_ELEMENTS numbers. The cut depends on the shape only."""
    num_images, channels, height, width = shape
    num_planes, plane = num_images * channels, height * width
    per_block = max(1, _BLOCK_ELEMENTS // plane)
    # ... but at least _MIN_BLOCKS blocks where they keep _MIN_BLOCK_ELEMENTS numbers each
    per_block = min(per_block, max(1, -(-num_planes // _MIN_BLOCKS), _MIN_BLOCK_ELEMENTS // plane))
    return [slice(start, min(start + per_block, num_planes))
            for start in range(0, num_planes, per_block)]


def _phases(planes, size, stride) -> dict:
    """The phase planes of planes (P, Hp, Wp) for a window moved by `stride`: phase (r, c) holds
    rows r, r + SH, r + 2*SH, ... and columns c, c + SW, ... of every plane, as its own
    contiguous array. Only the phases some window position uses (r < KH, c < KW).

    Engineering note: tap (p, q) of every window, planes[:, p::SH, q::SW] cut to (H', W'), is
    rows p // SH .. and columns q // SW .. of phase (p % SH, q % SW): a view whose rows are
    contiguous. NumPy's compares, maxima and adds run several times faster over contiguous rows
    than over every SW-th number, so at stride 2 the one copy into phases pays for itself many
    times over the KH*KW passes. At stride 1 the only phase is planes itself: no copy.
    """
    if stride == (1, 1):
        return {(0, 0): planes}
    return {(r, c): np.ascontiguousarray(planes[:, r :: stride[0], c :: stride[1]])
            for r, c in _phase_offsets(size, stride)}


def _phase_offsets(size, stride) -> list[tuple[int, int]]:
    """The phases (r, c) that some window position reads: r < min(SH, KH), c < min(SW, KW)."""
    return [(r, c) for r in range(min(stride[0], size[0])) for c in range(min(stride[1], size[1]))]


def _phase_taps(phases, size, stride, out_size) -> list:
    """Tap k = p*KW + q of every window, (P, H', W'), as a view of its phase plane."""
    out_h, out_w = out_size
    taps = []
    for p, q in _positions(size):
        top, left = p // stride[0], q // stride[1]
        phase = phases[p % stride[0], q % stride[1]]
        taps.append(phase[:, top : top + out_h, left : left + out_w])
    return taps


def _phase_shapes(padded_size, size, stride) -> dict:
    """The (rows, columns) of each phase plane that _phases makes of planes (P, Hp, Wp)."""
    return {(r, c): (len(range(r, padded_size[0], stride[0])),
                     len(range(c, padded_size[1], stride[1])))
            for r, c in _phase_offsets(size, stride)}


def _unpadded(phase: int, stride: int, pad: int, length: int) -> tuple[slice, slice]:
    """Along one axis: which inputs (0 .. length-1) phase `phase` holds, and where they sit in
    it. Entry a of the phase is padded position a*stride + phase, input a*stride + phase - pad;
    the entries in the padding are left out."""
    first = max(0, -(-(pad - phase) // stride))  # the first entry at or past the padding
    start = first * stride + phase - pad
    count = len(range(start, length, stride))
    return slice(start, length, stride), slice(first, first + count)


def max_pool_forward(x: np.ndarray, size=2, stride=2, pad=0):
    """Vectorised max pooling: a running maximum over the KH*KW positions of the window.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair.
    Returns out: (N, C, H', W') and a PoolCache for max_pool_backward, which records which
    position won each window (the lecture's "remember where the max came from").

    Every plane (one channel of one image) is pooled on its own, so the N*C planes are done a
    block at a time, on worker threads (see _BLOCK_ELEMENTS), and the taps are read from phase
    planes (see _phases).
    """
    size, stride, pad, out_size = _pool_geometry(x, size, stride, pad)
    (pad_h, pad_w), (height, width) = pad, x.shape[2:]
    planes_in = x.reshape(-1, height, width)  # (N*C, H, W)
    # without padding the taps are read from x itself; with it, each block pads its planes
    x_padded = np.empty((*x.shape[:2], height + 2 * pad_h, width + 2 * pad_w), dtype=x.dtype) \
        if any(pad) else x
    planes = x_padded.reshape(-1, *x_padded.shape[2:])  # (N*C, Hp, Wp)
    out = np.empty((planes.shape[0], *out_size), dtype=x.dtype)
    # argmax in [0, KH*KW): uint8 where it fits, an eighth of intp's bytes to write and read
    argmax = np.empty(out.shape, dtype=np.uint8 if size[0] * size[1] <= 256 else np.intp)

    def forward_block(block):
        if any(pad):  # -inf never wins a window
            planes[block].fill(-np.inf)
            planes[block, pad_h : pad_h + height, pad_w : pad_w + width] = planes_in[block]
        taps = _phase_taps(_phases(planes[block], size, stride), size, stride, out_size)
        _fast_max_and_argmax(taps, out[block], argmax[block])
        if np.isnan(out[block]).any():  # a NaN in some window: redo the block NaN-aware
            _max_and_argmax(taps, out[block], argmax[block])

    run_blocks(forward_block, _plane_blocks(x_padded.shape))
    out_shape = (*x.shape[:2], *out_size)
    return out.reshape(out_shape), PoolCache(x, x_padded, size, stride, pad,
                                             argmax.reshape(out_shape))


def max_pool_backward(dout: np.ndarray, cache: PoolCache):
    """Vectorised gradient of max pooling; takes the cache of either max-pool forward.

    dout: (N, C, H', W'). Returns dx: (N, C, H, W).
    For each window position k = (p, q), the outputs whose window was won at k send their
    gradient to tap k of dx_padded: one add of dout * (argmax == k) per position. Within one
    position no two windows share an input, so the add is exact; overlaps are summed across
    positions. Done a block of planes at a time on worker threads, with the taps in phase
    planes, as the forward pass.
    """
    out_size = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, argmax = cache
    if argmax is None:  # cache from the naive forward
        argmax = np.empty(dout.shape, dtype=np.intp)
        taps = _taps(x_padded, size, stride, out_size)
        _max_and_argmax(taps, np.empty(dout.shape, dtype=x_padded.dtype), argmax)
    (pad_h, pad_w), (height, width) = pad, x.shape[2:]
    padded_size = x_padded.shape[2:]
    dtype = np.result_type(x, dout)
    dx = np.empty((x.shape[0] * x.shape[1], height, width), dtype=dtype)  # (N*C, H, W)
    dout_planes = dout.reshape(-1, *out_size)
    argmax_planes = argmax.reshape(-1, *out_size)
    gaps = stride[0] > size[0] or stride[1] > size[1]  # inputs that no window reads

    def backward_block(block):
        dx_block = dx[block]
        if stride == (1, 1):  # one phase: dx_padded itself
            dx_padded = np.empty((len(dx_block), *padded_size), dtype=dtype) if any(pad) \
                else dx_block
            dx_padded.fill(0)
            phases = {(0, 0): dx_padded}
        else:
            phases = {rc: np.zeros((len(dx_block), *shape), dtype=dtype)
                      for rc, shape in _phase_shapes(padded_size, size, stride).items()}
        dout_block, argmax_block = dout_planes[block], argmax_planes[block]
        won = np.empty(argmax_block.shape, dtype=bool)
        share = np.empty(dout_block.shape, dtype=dtype)
        # dout * won is dout where the window was won at k and 0 elsewhere, unless dout holds a
        # NaN or an infinity (times 0 gives NaN): then the slower masked add
        finite = bool(np.isfinite(dout_block).all())
        for k, tap in enumerate(_phase_taps(phases, size, stride, out_size)):
            np.equal(argmax_block, k, out=won)
            if finite:
                tap += np.multiply(dout_block, won, out=share)
            else:
                np.add(tap, dout_block, out=tap, where=won)  # through the view, in place
        if stride == (1, 1):
            if any(pad):
                dx_block[...] = dx_padded[:, pad_h : pad_h + height, pad_w : pad_w + width]
            return
        if gaps:
            dx_block.fill(0)
        for rc, phase in phases.items():  # each phase back in its place, the padding left out
            rows, phase_rows = _unpadded(rc[0], stride[0], pad_h, height)
            cols, phase_cols = _unpadded(rc[1], stride[1], pad_w, width)
            dx_block[:, rows, cols] = phase[:, phase_rows, phase_cols]

    run_blocks(backward_block, _plane_blocks(x_padded.shape))
    return dx.reshape(x.shape).astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- average pooling


def avg_pool_forward_naive(x: np.ndarray, size=2, stride=2, pad=0):
    """Average pooling as the lecture writes it: the mean of every window, one by one.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair. Padded zeros count in the mean.
    Returns out: (N, C, H', W') and a PoolCache for avg_pool_backward_naive.
    """
    size, stride, pad, (out_h, out_w) = _pool_geometry(x, size, stride, pad)
    x_padded = pad_images(x, pad, x.dtype)
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
    return crop_padding(dx_padded, pad, x.shape).astype(x.dtype, copy=False)


def avg_pool_forward(x: np.ndarray, size=2, stride=2, pad=0):
    """Vectorised average pooling: the sum of the KH*KW window positions, divided by KH*KW.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair. Padded zeros count in the mean.
    Returns out: (N, C, H', W') and a PoolCache for avg_pool_backward.
    """
    size, stride, pad, out_size = _pool_geometry(x, size, stride, pad)
    x_padded = pad_images(x, pad, x.dtype)
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
    return crop_padding(dx_padded, pad, x.shape).astype(x.dtype, copy=False)
