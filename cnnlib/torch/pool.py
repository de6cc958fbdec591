"""Max and average pooling on torch tensors: the lecture's loops, and a vectorised version.

Shapes, for a window `size` (KH, KW) moved by `stride` over x padded by `pad`::

    x: (N, C, H, W)  ->  out: (N, C, H', W'),  H' = (H + 2*pad - KH) // stride + 1  (W' alike)

size, stride and pad are each an int or an (along H, along W) pair. Padding follows PyTorch:
max pooling pads with -inf (padding never wins), average pooling pads with zeros that count in
the mean (torch's count_include_pad=True), and a window may reach at most half its size into
the padding, so it always covers some real input.

The backward passes route the gradient as the forward mixed the inputs: max pooling sends each
output's gradient to the one input that won its window (on a tie, the first maximum in row-major
order within the window, as torch.argmax and np.argmax pick it), average pooling spreads it
evenly, 1/(KH*KW) to each input of the window. Where windows overlap (stride < size) an input
collects the sum from every window it is in.

As in cnnlib.numpy.pool, the vectorised backward passes loop over the KH*KW positions (p, q)
inside the window instead of over the H'*W' windows: position (p, q) of every window at once is
one strided slice of x_padded, (N, C, H', W'), so the gradient of a 2x2 pool is four slice-adds.
Either backward takes the cache of either forward.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# the geometry (argument checks, output sizes, which slice is tap (p, q)) is the NumPy layer's
from cnnlib.numpy import pool as numpy_pool
from cnnlib.numpy._checks import check_dout
from cnnlib.numpy.pool import _taps

from ._tensors import check_float_tensors, check_tensor
from .conv import _crop, _pad

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

class PoolCache(NamedTuple):
    """What a pooling backward pass needs. `argmax` (max pooling, fast forward only) holds, per
    output, the winning position p*KW + q inside its window; None where it was not recorded."""

    x: torch.Tensor  # (N, C, H, W)
    x_padded: torch.Tensor  # (N, C, H + 2*PH, W + 2*PW), padded with -inf (max) or 0 (average)
    size: tuple[int, int]
    stride: tuple[int, int]
    pad: tuple[int, int]
    argmax: torch.Tensor | None = None  # (N, C, H', W') integers in [0, KH*KW)


def _pool_geometry(x, size, stride, pad):
    """Check the arguments; return size, stride, pad as (H, W) pairs and the output (H', W')."""
    check_float_tensors(x=x)
    return numpy_pool._pool_geometry(x, size, stride, pad)


def _check_dout(dout, cache: PoolCache) -> tuple[int, int]:
    """dout must be a float tensor shaped like the forward's output; return (H', W')."""
    numpy_pool.check_cache(cache, numpy_pool._POOL_CACHE, numpy_pool._POOL_FORWARDS)
    check_tensor("dout", dout)
    out_size = numpy_pool._check_dout(dout, cache)
    check_dout(dout, tuple(dout.shape), "the pooled output", like=cache.x_padded)
    return out_size


def _window(x_padded, i, j, size, stride):
    """The (N, C, KH, KW) windows of output (i, j), every image and channel: a view."""
    top, left = i * stride[0], j * stride[1]
    return x_padded[:, :, top : top + size[0], left : left + size[1]]


def _argmax(x_padded, size, stride):
    """Maximum of every window and where in it (k = p*KW + q, the first on a tie)."""
    windows = x_padded.unfold(2, size[0], stride[0]).unfold(3, size[1], stride[1])
    # (N, C, H', W', KH*KW): a copy; KH*KW spelt out, as -1 cannot be inferred for N = 0
    windows = windows.reshape(*windows.shape[:4], size[0] * size[1])
    argmax = windows.argmax(dim=-1)
    return windows.gather(-1, argmax.unsqueeze(-1)).squeeze(-1), argmax


# ------------------------------------------------------------------------------- max pooling


def max_pool_forward_naive(x: torch.Tensor, size=2, stride=2, pad=0):
    """Max pooling as the lecture writes it: the largest value of every window, one by one
    (each step covers every image and channel at once).

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair.
    Returns out: (N, C, H', W') and a PoolCache for max_pool_backward_naive.
    """
    size, stride, pad, (out_h, out_w) = _pool_geometry(x, size, stride, pad)
    x_padded = _pad(x, pad, value=-torch.inf)
    out = x.new_empty((*x.shape[:2], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = _window(x_padded, i, j, size, stride).amax(dim=(2, 3))
    return out, PoolCache(x, x_padded, size, stride, pad)


def max_pool_backward_naive(dout: torch.Tensor, cache: PoolCache):
    """Gradient of max pooling, window by window: dout goes to the window's maximum.

    dout: (N, C, H', W'); cache from either max-pool forward. Returns dx: (N, C, H, W).
    argmax finds the winner of each window (the first maximum, row by row, on a tie); a one-hot
    mask of it carries dout there. An input that wins several overlapping windows collects all
    their gradients.
    """
    out_h, out_w = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, _ = cache
    dx_padded = torch.zeros_like(x_padded)
    for i in range(out_h):
        for j in range(out_w):
            window = _window(x_padded, i, j, size, stride)
            flat = window.reshape(*window.shape[:2], -1)  # (N, C, KH*KW)
            winner = torch.zeros_like(flat).scatter_(2, flat.argmax(dim=2, keepdim=True), 1)
            _window(dx_padded, i, j, size, stride).add_(
                (winner * dout[:, :, i, j, None]).reshape(window.shape)
            )
    return _crop(dx_padded, pad, x.shape)


def max_pool_forward(x: torch.Tensor, size=2, stride=2, pad=0):
    """Vectorised max pooling: every window at once, as a strided view, and its argmax.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair.
    Returns out: (N, C, H', W') and a PoolCache for max_pool_backward, which records which
    position won each window (the lecture's "remember where the max came from").
    """
    size, stride, pad, _ = _pool_geometry(x, size, stride, pad)
    x_padded = _pad(x, pad, value=-torch.inf)
    out, argmax = _argmax(x_padded, size, stride)
    return out, PoolCache(x, x_padded, size, stride, pad, argmax)


def max_pool_backward(dout: torch.Tensor, cache: PoolCache):
    """Vectorised gradient of max pooling; takes the cache of either max-pool forward.

    dout: (N, C, H', W'). Returns dx: (N, C, H, W).
    For each window position k = (p, q), the outputs whose window was won at k send their
    gradient to tap k of dx_padded: one masked slice-add per position. Within one position no
    two windows share an input, so the add is exact; overlaps are summed across positions.
    """
    out_size = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, argmax = cache
    if argmax is None:  # cache from the naive forward
        argmax = _argmax(x_padded, size, stride)[1]
    dx_padded = torch.zeros_like(x_padded)
    for k, tap in enumerate(_taps(dx_padded, size, stride, out_size)):
        tap += torch.where(argmax == k, dout, 0)
    return _crop(dx_padded, pad, x.shape)


# --------------------------------------------------------------------------- average pooling


def avg_pool_forward_naive(x: torch.Tensor, size=2, stride=2, pad=0):
    """Average pooling as the lecture writes it: the mean of every window, one by one.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair. Padded zeros count in the mean.
    Returns out: (N, C, H', W') and a PoolCache for avg_pool_backward_naive.
    """
    size, stride, pad, (out_h, out_w) = _pool_geometry(x, size, stride, pad)
    x_padded = _pad(x, pad)
    out = x.new_empty((*x.shape[:2], out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            out[:, :, i, j] = _window(x_padded, i, j, size, stride).mean(dim=(2, 3))
    return out, PoolCache(x, x_padded, size, stride, pad)


def avg_pool_backward_naive(dout: torch.Tensor, cache: PoolCache):
    """Gradient of average pooling, window by window: dout / (KH*KW) to every input of it.

    dout: (N, C, H', W'); cache from either average-pool forward. Returns dx: (N, C, H, W).
    """
    out_h, out_w = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, _ = cache
    dx_padded = torch.zeros_like(x_padded)
    share = 1 / (size[0] * size[1])
    for i in range(out_h):
        for j in range(out_w):
            # a view into dx_padded: add_ writes the window's share in place
            _window(dx_padded, i, j, size, stride).add_(dout[:, :, i, j, None, None] * share)
    return _crop(dx_padded, pad, x.shape)


def avg_pool_forward(x: torch.Tensor, size=2, stride=2, pad=0):
    """Vectorised average pooling: the sum of the KH*KW window positions, divided by KH*KW.

    x: (N, C, H, W); size, stride, pad: int or (H, W) pair. Padded zeros count in the mean.
    Returns out: (N, C, H', W') and a PoolCache for avg_pool_backward.
    """
    size, stride, pad, out_size = _pool_geometry(x, size, stride, pad)
    x_padded = _pad(x, pad)
    taps = _taps(x_padded, size, stride, out_size)
    out = taps[0].clone()
    for tap in taps[1:]:
        out += tap
    out /= size[0] * size[1]
    return out, PoolCache(x, x_padded, size, stride, pad)


def avg_pool_backward(dout: torch.Tensor, cache: PoolCache):
    """Vectorised gradient of average pooling; takes the cache of either average-pool forward.

    dout: (N, C, H', W'). Returns dx: (N, C, H, W): dout / (KH*KW) added to each of the KH*KW
    taps of dx_padded, then the padding cropped off.
    """
    out_size = _check_dout(dout, cache)
    x, x_padded, size, stride, pad, _ = cache
    dx_padded = torch.zeros_like(x_padded)
    share = dout * (1 / (size[0] * size[1]))
    for tap in _taps(dx_padded, size, stride, out_size):
        tap += share
    return _crop(dx_padded, pad, x.shape)
