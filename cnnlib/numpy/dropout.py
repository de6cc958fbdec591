"""Dropout (Srivastava et al., 2014): during training, keep each unit with probability keep_prob
and zero the rest, so the network cannot rely on any one unit; at test time keep them all.

A unit kept with probability p has expected training output p * x, so training and test outputs
agree on average only if one side is rescaled:

- vanilla dropout scales at *test* time: train out = x * mask, test out = p * x;
- inverted dropout scales at *training* time: train out = x * mask / p, test out = x.

Both give E[train out] = test out. Inverted dropout is the one used in practice (and by PyTorch):
the test-time network is the plain network, untouched by how it was trained.

`keep_prob` is always the probability of *keeping* a unit (torch.nn.Dropout's `p` is the
probability of dropping one: p_torch = 1 - keep_prob).
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import (
    check_cache,
    check_dout,
    check_flag,
    check_float_array,
    check_probability,
    describe,
)

__all__ = ["dropout_backward", "dropout_forward"]


def _generator(seed) -> np.random.Generator:
    """np.random.default_rng(seed) for the seeds the docstring promises, else a TypeError naming
    seed (NumPy's own message for seed=1.5 does not say which argument it was)."""
    is_int = isinstance(seed, numbers.Integral) and not isinstance(seed, bool)
    if seed is not None and not is_int and not isinstance(seed, np.random.Generator):
        raise TypeError(f"seed must be an int, a np.random.Generator or None, got {describe(seed)}")
    if is_int and seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(seed)


def dropout_forward(
    x: np.ndarray,
    keep_prob: float = 0.5,
    train: bool = True,
    inverted: bool = True,
    seed=None,
):
    """Dropout on x (any shape).

    keep_prob: probability of keeping each unit, in (0, 1]; 1 makes the layer the identity.
    train: draw a mask (True) or apply the test-time rule (False).
    inverted: the inverted (default) or vanilla scaling, see the module docstring.
    seed: int, np.random.Generator or None, passed to np.random.default_rng: the same int gives
        the same mask.
    mask ~ Bernoulli(keep_prob) elementwise, shape of x (bool). Returns out (x's shape, dtype)
    and cache = (mask or None, keep_prob, train, inverted).
    """
    check_float_array("x", x)
    keep_prob = check_probability("keep_prob", keep_prob)
    train, inverted = check_flag("train", train), check_flag("inverted", inverted)
    if train:
        rng = _generator(seed)
        mask = rng.random(x.shape) < keep_prob  # random() is in [0, 1): keep_prob=1 keeps all
        out = x * mask
        if inverted:
            out = out / keep_prob
    else:
        mask = None
        out = x.copy() if inverted else x * keep_prob
    return out.astype(x.dtype, copy=False), (mask, keep_prob, bool(train), bool(inverted))


def dropout_backward(dout: np.ndarray, cache):
    """dx = dout times the same factor the forward applied to x (mask / keep_prob, mask,
    1 or keep_prob): dropout is linear in x for a fixed mask."""
    check_cache(cache, ("array or None", "number", "bool", "bool"), "dropout_forward")
    mask, keep_prob, train, inverted = cache
    if train:
        check_dout(dout, mask.shape, f"the layer's output {mask.shape}")
        dx = dout * mask
        if inverted:
            dx = dx / keep_prob
    else:
        check_float_array("dout", dout)
        dx = dout.copy() if inverted else dout * keep_prob
    return dx.astype(dout.dtype, copy=False)
