"""Activation functions on torch tensors, forward/backward pairs (as cnnlib.numpy.activations).

Elementwise activations keep x's shape: x (any shape) -> out (same shape), and their backward
returns dx = dout * f'(x). Calling a backward with ``dout = torch.ones_like(x)`` therefore returns
the derivative f'(x) itself, which is what `activation_and_derivative` does.

At a kink (ReLU and its relatives at 0, maxout at ties) the backward returns the one-sided
derivative PyTorch uses: the slope of the piece for x <= 0 at exactly 0 (so relu'(0) = 0), and
the first of tied maxout pieces.
"""

from __future__ import annotations

import math

import torch

from cnnlib.numpy._checks import (
    check_cache,
    check_dout,
    check_ndim,
    check_number,
    check_shape,
    describe,
)
from cnnlib.numpy.activations import (
    _GELU_TANH_COEFF,
    _SQRT_2_OVER_PI,
    SELU_ALPHA,
    SELU_SCALE,
)

from ._tensors import check_float_tensors

__all__ = [
    "ACTIVATIONS",
    "SELU_ALPHA",
    "SELU_SCALE",
    "activation_and_derivative",
    "elu_backward",
    "elu_forward",
    "gelu_backward",
    "gelu_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "maxout_backward",
    "maxout_forward",
    "prelu_backward",
    "prelu_forward",
    "relu_backward",
    "relu_forward",
    "selu_backward",
    "selu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "tanh_backward",
    "tanh_forward",
]


def _check_dout(dout, x) -> None:
    check_dout(dout, x.shape, f"the layer's output {tuple(x.shape)}", like=x)


# ---------------------------------------------------------------- sigmoid and tanh


def sigmoid_forward(x: torch.Tensor):
    """out = 1 / (1 + exp(-x)), computed without overflow for any x.

    For large negative x, exp(-x) overflows; so with z = exp(-|x|) (always in (0, 1]):
    x >= 0: 1 / (1 + z);   x < 0: z / (1 + z)  (the same value, multiplied through by exp(x)).
    Returns out (x's shape) and cache = out: the derivative only needs the output.
    """
    check_float_tensors(x=x)
    z = torch.exp(-x.abs())
    out = torch.where(x >= 0, 1 / (1 + z), z / (1 + z))
    return out, out


def sigmoid_backward(dout: torch.Tensor, cache):
    """dx = dout * s (1 - s), with s = sigmoid(x): at most 1/4 (at x = 0), so stacked sigmoids
    shrink the gradient by at least 4x per layer."""
    check_cache(cache, "array", "sigmoid_forward")
    out = cache
    _check_dout(dout, out)
    return dout * out * (1 - out)


def tanh_forward(x: torch.Tensor):
    """out = tanh(x) = 2 sigmoid(2x) - 1: zero-centred, in (-1, 1). cache = out."""
    check_float_tensors(x=x)
    out = torch.tanh(x)
    return out, out


def tanh_backward(dout: torch.Tensor, cache):
    """dx = dout * (1 - tanh(x)²): 1 at x = 0, vanishing as the unit saturates."""
    check_cache(cache, "array", "tanh_forward")
    out = cache
    _check_dout(dout, out)
    return dout * (1 - out * out)


# ---------------------------------------------------------------- the ReLU family


def relu_forward(x: torch.Tensor):
    """out = max(0, x). cache = x."""
    check_float_tensors(x=x)
    # clamp_min lets a NaN through as NaN, as torch.relu does (so would torch.where(x < 0, 0,
    # x), in two passes over x instead of one)
    return torch.clamp_min(x, 0), x


def relu_backward(dout: torch.Tensor, cache):
    """dx = dout where x > 0, else 0 (including at x = 0): a dead unit passes no gradient."""
    check_cache(cache, "array", "relu_forward")
    x = cache
    _check_dout(dout, x)
    if x.device.type == "cpu":
        # the same numbers as below, as dout times a 0/1 mask: 1.3 ms against 10 ms on a
        # (128, 16, 32, 32) batch, one thread (torch.where reads its boolean mask slowly on a
        # CPU; measured)...
        dx = torch.gt(x, 0, out=torch.empty_like(dout)).mul_(dout)
        # ... unless dout holds an inf or a NaN: 0 * inf is NaN, where a dead unit must pass 0.
        # A finite sum of dx means no inf or NaN came out
        if torch.isfinite(dx.sum()):
            return dx
    return torch.where(x > 0, dout, 0)


def leaky_relu_forward(x: torch.Tensor, negative_slope: float = 0.01):
    """out = x for x > 0, negative_slope * x otherwise. cache = (x, negative_slope)."""
    check_float_tensors(x=x)
    negative_slope = check_number("negative_slope", negative_slope)
    return torch.where(x > 0, x, negative_slope * x), (x, negative_slope)


def leaky_relu_backward(dout: torch.Tensor, cache):
    """dx = dout for x > 0, negative_slope * dout otherwise: never exactly zero."""
    check_cache(cache, ("array", "number"), "leaky_relu_forward")
    x, negative_slope = cache
    _check_dout(dout, x)
    return torch.where(x > 0, dout, negative_slope * dout)


def _prelu_slope(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """alpha shaped to broadcast against x: () as is, (C,) along axis 1 as (C, 1, ..., 1)."""
    return alpha if alpha.ndim == 0 else alpha.reshape((-1,) + (1,) * (x.ndim - 2))


def prelu_forward(x: torch.Tensor, alpha: torch.Tensor):
    """Parametric ReLU: a leaky ReLU whose negative slope alpha is learnt (He et al., 2015).

    x: (N, C, ...) (any shape if alpha is shared)
    alpha: shape () for one slope shared by every unit, or (C,) for one slope per channel
           (axis 1 of x), as torch.nn.PReLU(num_parameters=C).
    out = x for x > 0, alpha * x otherwise. cache = (x, alpha).
    """
    check_float_tensors(x=x, alpha=alpha)
    if alpha.ndim != 0:
        if x.ndim < 2:
            raise ValueError(
                f"alpha must have shape () (one shared slope) when x has no channel axis, "
                f"got {describe(alpha)} for x of shape {tuple(x.shape)}"
            )
        if tuple(alpha.shape) != (x.shape[1],):
            raise ValueError(
                f"alpha must have shape () (one shared slope) or ({x.shape[1]},) (one slope per "
                f"channel of x, axis 1 of {tuple(x.shape)}), got {describe(alpha)}"
            )
    out = torch.where(x > 0, x, _prelu_slope(x, alpha) * x)
    return out, (x, alpha)


def prelu_backward(dout: torch.Tensor, cache):
    """dx = dout for x > 0, alpha * dout otherwise; dalpha = sum of dout * x over the units with
    x <= 0 that share each slope (every axis for shape (), every axis but 1 for shape (C,)).

    Returns (dx, dalpha), dalpha with alpha's shape.
    """
    check_cache(cache, ("array", "array"), "prelu_forward")
    x, alpha = cache
    _check_dout(dout, x)
    negative = x <= 0
    dx = torch.where(negative, _prelu_slope(x, alpha) * dout, dout)
    contribution = torch.where(negative, dout * x, 0)
    if alpha.ndim == 0:
        dalpha = contribution.sum()
    else:
        other_axes = tuple(axis for axis in range(x.ndim) if axis != 1)
        dalpha = contribution.sum(dim=other_axes)
    return dx, dalpha.to(alpha.dtype)


# ---------------------------------------------------------------- exponential units


def elu_forward(x: torch.Tensor, alpha: float = 1.0):
    """ELU (Clevert et al., 2016): out = x for x > 0, alpha (exp(x) - 1) otherwise.

    Saturates smoothly to -alpha for very negative x. exp is taken of min(x, 0) only, so large
    positive x cannot overflow. cache = (x, alpha).
    """
    check_float_tensors(x=x)
    alpha = check_number("alpha", alpha)
    out = torch.where(x > 0, x, alpha * torch.expm1(x.clamp(max=0)))
    return out, (x, alpha)


def elu_backward(dout: torch.Tensor, cache):
    """dx = dout for x > 0, alpha exp(x) dout otherwise (alpha at x = 0, as in PyTorch)."""
    check_cache(cache, ("array", "number"), "elu_forward")
    x, alpha = cache
    _check_dout(dout, x)
    return torch.where(x > 0, dout, alpha * torch.exp(x.clamp(max=0)) * dout)


def selu_forward(x: torch.Tensor):
    """SELU: SELU_SCALE * elu(x, SELU_ALPHA), the self-normalising activation. cache = x."""
    out, _ = elu_forward(x, SELU_ALPHA)
    return SELU_SCALE * out, x


def selu_backward(dout: torch.Tensor, cache):
    """dx = SELU_SCALE * elu'(x) * dout."""
    check_cache(cache, "array", "selu_forward")
    x = cache
    return SELU_SCALE * elu_backward(dout, (x, SELU_ALPHA))


def gelu_forward(x: torch.Tensor, approximate: str = "none"):
    """GELU (Hendrycks & Gimpel, 2016): out = x Phi(x), Phi the standard normal CDF.

    approximate="none": exact, Phi(x) = (1 + erf(x / sqrt 2)) / 2.
    approximate="tanh": Phi(x) ≈ (1 + tanh(sqrt(2/pi) (x + 0.044715 x³))) / 2, the form used
    by BERT and GPT-2 (torch.nn.functional.gelu(x, approximate="tanh")); within ~1e-3 of exact.
    cache = (x, approximate).
    """
    check_float_tensors(x=x)
    if approximate == "none":
        out = 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))
    elif approximate == "tanh":
        out = 0.5 * x * (1 + torch.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_COEFF * x**3)))
    else:
        raise ValueError(f'approximate must be "none" or "tanh", got {approximate!r}')
    return out, (x, approximate)


def gelu_backward(dout: torch.Tensor, cache):
    """dx = dout * d/dx [x Phi(x)].

    exact: Phi(x) + x phi(x), phi(x) = exp(-x²/2) / sqrt(2 pi) the normal density.
    tanh:  (1 + t)/2 + x (1 - t²)/2 * sqrt(2/pi) (1 + 3 * 0.044715 x²), t = tanh(...).
    """
    check_cache(cache, ("array", "str"), "gelu_forward")
    x, approximate = cache
    _check_dout(dout, x)
    if approximate == "none":
        cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
        pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
        slope = cdf + x * pdf
    else:
        t = torch.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_COEFF * x**3))
        inner_slope = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_COEFF * x * x)
        slope = 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * inner_slope
    return dout * slope


# ---------------------------------------------------------------- maxout


def maxout_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor):
    """Maxout (Goodfellow et al., 2013): the largest of K affine pieces, per output unit.

    x: (N, D); w: (K, D, M); b: (K, M)
    pieces[n, k, m] = x[n] · w[k, :, m] + b[k, m]   -> (N, K, M)
    out[n, m] = max over k of pieces[n, k, m]       -> (N, M)
    With K = 2, w[0] = 0, b[0] = 0 maxout is ReLU of the second piece: it generalises ReLU and
    leaky ReLU, at K times the parameters. cache = (x, w, winner) with winner (N, M) the index
    of the largest piece (the first one on ties).
    """
    check_float_tensors(x=x, w=w, b=b)
    check_ndim("x", x, 2, "(N, D)")
    check_ndim("w", w, 3, "(K, D, M)")
    check_ndim("b", b, 2, "(K, M)")
    num_pieces, num_features, num_units = w.shape
    if num_features != x.shape[1]:
        raise ValueError(
            f"w must have shape (K, {x.shape[1]}, M) to match x's {x.shape[1]} features, "
            f"got {describe(w)}"
        )
    check_shape("b", b, (num_pieces, num_units), f"w's K={num_pieces} pieces of M={num_units}")
    pieces = torch.einsum("nd,kdm->nkm", x, w) + b
    winner = pieces.argmax(dim=1)
    out = pieces.gather(1, winner.unsqueeze(1)).squeeze(1)
    return out, (x, w, winner)


def maxout_backward(dout: torch.Tensor, cache):
    """The gradient flows only into the winning piece of each output unit.

    dout: (N, M). Returns dx (N, D), dw (K, D, M), db (K, M).
    """
    check_cache(cache, ("array", "array", "array"), "maxout_forward")
    x, w, winner = cache
    check_dout(dout, winner.shape, f"the layer's output {tuple(winner.shape)}", like=x)
    num_pieces = w.shape[0]
    # dpieces[n, k, m] = dout[n, m] if piece k won unit m for example n, else 0
    pieces = torch.arange(num_pieces, device=winner.device).reshape(1, -1, 1)
    dpieces = torch.where(winner.unsqueeze(1) == pieces, dout.unsqueeze(1), 0)
    dx = torch.einsum("nkm,kdm->nd", dpieces, w)
    dw = torch.einsum("nd,nkm->kdm", x, dpieces)
    db = dpieces.sum(dim=0)
    return dx, dw, db


# ---------------------------------------------------------------- for plots

# name -> (forward, backward) for the elementwise activations without learnt parameters
ACTIVATIONS = {
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "tanh": (tanh_forward, tanh_backward),
    "relu": (relu_forward, relu_backward),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward),
    "elu": (elu_forward, elu_backward),
    "selu": (selu_forward, selu_backward),
    "gelu": (gelu_forward, gelu_backward),
}


def activation_and_derivative(name: str, x: torch.Tensor, **kwargs):
    """(f(x), f'(x)) for one of ACTIVATIONS, e.g. to plot a function beside its derivative::

        x = torch.linspace(-4, 4, 401)
        y, dy = activation_and_derivative("elu", x, alpha=1.0)

    The derivative is the backward pass with dout = 1, so it is exactly what backprop uses.
    kwargs go to the forward (negative_slope, alpha, approximate).
    """
    if name not in ACTIVATIONS:
        raise ValueError(f"name must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    forward, backward = ACTIVATIONS[name]
    out, cache = forward(x, **kwargs)
    return out, backward(torch.ones_like(out), cache)
