"""Weight initialisation: small random numbers, Xavier/Glorot and He (Kaiming).

Shapes follow the layer contract: affine weights are (D, M) (D inputs, M outputs), conv weights
(F, C, KH, KW). Every initialiser draws zero-mean Gaussian numbers; they differ only in the
standard deviation, which is chosen so that activations keep their size from layer to layer::

    Var(y) = fan_in * Var(w) * Var(x)        (y = sum of fan_in products w*x, independent, mean 0)

    small_random  std = scale (0.01)         activations shrink layer after layer in deep nets
    xavier        std = sqrt(1 / fan_in)     Var(y) = Var(x): right for tanh (the lecture's
                                             "divide by sqrt(D_in)")
    glorot        std = sqrt(2 / (fan_in + fan_out))   Glorot & Bengio's compromise between the
                                             forward and the backward pass
    he / kaiming  std = sqrt(2 / fan_in)     ReLU zeroes half its inputs, halving the variance:
                                             the extra factor 2 puts it back (He et al. 2015)

`rng` is a np.random.Generator or an int seed (None: a fresh, unseeded generator). Numbers are
drawn in float64 and then cast to `dtype`, so one seed gives the same weights (up to rounding)
in float32 and float64.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._checks import describe

__all__ = [
    "as_generator",
    "fan_in",
    "fan_out",
    "glorot",
    "he",
    "kaiming",
    "small_random",
    "xavier",
]


def _weight_shape(shape) -> tuple[int, ...]:
    """`shape` as a tuple of ints >= 1, if it is an affine (D, M) or a conv (F, C, KH, KW) shape."""
    if isinstance(shape, numbers.Integral) or not isinstance(shape, tuple | list):
        raise TypeError(
            f"shape must be a tuple: (D, M) for affine weights or (F, C, KH, KW) for conv "
            f"weights, got {describe(shape)}"
        )
    if len(shape) not in (2, 4):
        raise ValueError(
            f"shape must be (D, M) for affine weights or (F, C, KH, KW) for conv weights, got "
            f"{tuple(shape)} ({len(shape)} dimensions)"
        )
    for size in shape:
        if isinstance(size, bool) or not isinstance(size, numbers.Integral):
            raise TypeError(f"shape must hold ints, got {tuple(shape)}")
        if size < 1:
            raise ValueError(f"shape must hold sizes >= 1, got {tuple(shape)}")
    return tuple(int(size) for size in shape)


def fan_in(shape) -> int:
    """How many inputs each output unit sums over.

    Affine (D, M): D. Conv (F, C, KH, KW): C * KH * KW, because each output value is a dot product
    of one filter with a C x KH x KW window of the input: C*KH*KW products added up.
    """
    shape = _weight_shape(shape)
    if len(shape) == 2:
        return shape[0]
    _, channels, kh, kw = shape
    return channels * kh * kw


def fan_out(shape) -> int:
    """How many outputs each input unit feeds (what the backward pass sums over).

    Affine (D, M): M. Conv (F, C, KH, KW): F * KH * KW: an input value sits in KH*KW window
    positions of each of the F filters (ignoring borders and stride, as torch and Glorot do).
    """
    shape = _weight_shape(shape)
    if len(shape) == 2:
        return shape[1]
    filters, _, kh, kw = shape
    return filters * kh * kw


def as_generator(rng=None) -> np.random.Generator:
    """`rng` if it is a np.random.Generator, a new one seeded with it if it is an int (or None)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be a numpy.random.Generator, an int seed or None, got {describe(rng)}"
    )


def _gaussian(shape: tuple[int, ...], std: float, rng, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"dtype must be a floating-point type, got {dtype}")
    return (std * as_generator(rng).standard_normal(shape)).astype(dtype)


def small_random(shape, scale: float = 0.01, rng=None, dtype=np.float64) -> np.ndarray:
    """Gaussian weights with standard deviation `scale` (the classic 0.01 * randn).

    Fine for small networks; in deep ones the activations shrink towards zero layer by layer.
    """
    shape = _weight_shape(shape)
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not scale > 0:
        raise ValueError(f"scale must be a number > 0, got {scale!r}")
    return _gaussian(shape, float(scale), rng, dtype)


def xavier(shape, rng=None, dtype=np.float64) -> np.ndarray:
    """Gaussian weights with std sqrt(1 / fan_in): randn(shape) / sqrt(fan_in)."""
    shape = _weight_shape(shape)
    return _gaussian(shape, math.sqrt(1.0 / fan_in(shape)), rng, dtype)


def glorot(shape, rng=None, dtype=np.float64) -> np.ndarray:
    """Gaussian weights with std sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010, "normal")."""
    shape = _weight_shape(shape)
    return _gaussian(shape, math.sqrt(2.0 / (fan_in(shape) + fan_out(shape))), rng, dtype)


def he(shape, rng=None, dtype=np.float64) -> np.ndarray:
    """Gaussian weights with std sqrt(2 / fan_in): randn(shape) / sqrt(fan_in / 2), for ReLU nets.

    The same distribution as torch.nn.init.kaiming_normal_(w, nonlinearity='relu') on a conv
    weight (torch stores affine weights transposed, as (M, D), and reads fan_in from dim 1).
    """
    shape = _weight_shape(shape)
    return _gaussian(shape, math.sqrt(2.0 / fan_in(shape)), rng, dtype)


kaiming = he
