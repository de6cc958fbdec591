"""The fully-connected (affine) layer: out = x W + b on flattened inputs.

A conv net ends in one or more fully-connected layers. Their input is usually an activation volume
x (N, C, H, W); the layer flattens each example into a row of D = C*H*W numbers, so one matrix
product handles the whole batch. The backward pass reshapes dx back to the volume it came from.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_cache, check_dout, check_float_array, check_length, describe

__all__ = ["affine_backward", "affine_forward"]


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray):
    """out = x.reshape(N, D) @ w + b.

    x: (N, d1, ..., dk) with k >= 1; each example is flattened to D = d1 * ... * dk features
    w: (D, M)
    b: (M,)
    Returns out: (N, M) and cache = (x, w, b) for affine_backward.
    """
    if not hasattr(x, "ndim") or x.ndim < 2:
        raise ValueError(
            f"x must have at least 2 dimensions (N, d1, ..., dk), got {describe(x)}"
        )
    check_float_array("x", x)
    check_float_array("w", w)
    check_float_array("b", b)
    num_features = math.prod(x.shape[1:])
    if w.ndim != 2 or w.shape[0] != num_features:
        raise ValueError(
            f"w must have shape ({num_features}, M): one row per input feature of x "
            f"(x {tuple(x.shape)} flattens to ({x.shape[0]}, {num_features})), got {describe(w)}"
        )
    check_length("b", b, w.shape[1], f"w's {w.shape[1]} output units")
    out = x.reshape(x.shape[0], num_features) @ w + b
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache):
    """Gradients of the affine layer.

    dout: (N, M), the upstream gradient dL/dout.
    Returns dx: x's original shape (N, d1, ..., dk), dw: (D, M), db: (M,), where
    dx = dout @ w.T (reshaped), dw = x_flat.T @ dout, db = sum of dout over the batch.
    """
    check_cache(cache, ("array", "array", "array"), "affine_forward")
    x, w, _ = cache
    x_flat = x.reshape(x.shape[0], -1)
    check_dout(dout, (x.shape[0], w.shape[1]), "the layer's output (N, M)", like=x)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x_flat.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db
