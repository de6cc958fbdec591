"""The fully-connected (affine) layer on torch tensors: out = x W + b on flattened inputs.

As in cnnlib.numpy.layers: each example of x (N, d1, ..., dk) is flattened into a row of
D = d1 * ... * dk numbers, so one matrix product handles the batch, and the backward pass reshapes
dx back to the volume it came from. Note the weight layout: w is (D, M), inputs times weights, as
in the lecture's formula; torch.nn.Linear stores the transpose (M, D) (cnnlib.torch.Linear does
too, and transposes when it calls this layer).
"""

from __future__ import annotations

import math

import torch

from cnnlib.numpy._checks import check_cache, check_dout, check_length, describe

from ._tensors import check_float_tensors

__all__ = ["affine_backward", "affine_forward"]


def affine_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """out = x.reshape(N, D) @ w + b.

    x: (N, d1, ..., dk) with k >= 1; each example is flattened to D = d1 * ... * dk features
    w: (D, M)
    b: (M,)
    Returns out: (N, M) and cache = (x, w, b) for affine_backward.
    """
    check_float_tensors(x=x, w=w, b=b)
    if x.ndim < 2:
        raise ValueError(
            f"x must have at least 2 dimensions (N, d1, ..., dk), got {describe(x)}"
        )
    num_features = math.prod(x.shape[1:])
    if w.ndim != 2 or w.shape[0] != num_features:
        raise ValueError(
            f"w must have shape ({num_features}, M): one row per input feature of x "
            f"(x {tuple(x.shape)} flattens to ({x.shape[0]}, {num_features})), got {describe(w)}"
        )
    check_length("b", b, w.shape[1], f"w's {w.shape[1]} output units")
    out = x.reshape(x.shape[0], num_features) @ w + b
    return out, (x, w, b)


def affine_backward(dout: torch.Tensor, cache):
    """Gradients of the affine layer.

    dout: (N, M), the upstream gradient dL/dout.
    Returns dx: x's original shape (N, d1, ..., dk), dw: (D, M), db: (M,), where
    dx = dout @ w.T (reshaped), dw = x_flat.T @ dout, db = sum of dout over the batch.
    """
    check_cache(cache, ("array", "array", "array"), "affine_forward")
    x, w, _ = cache
    check_dout(dout, (x.shape[0], w.shape[1]), "the layer's output (N, M)", like=x)
    x_flat = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x_flat.T @ dout
    db = dout.sum(dim=0)
    return dx, dw, db
