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

import numpy as np

from ._checks import check_float_array, check_probability, check_shape

__all__ = ["dropout_backward", "dropout_forward"]


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
    if train:
        rng = np.random.default_rng(seed)
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
    mask, keep_prob, train, inverted = cache
    if train:
        check_shape("dout", dout, mask.shape, f"the layer's output {mask.shape}")
        dx = dout * mask
        if inverted:
            dx = dx / keep_prob
    else:
        dx = dout.copy() if inverted else dout * keep_prob
    return dx.astype(dout.dtype, copy=False)
