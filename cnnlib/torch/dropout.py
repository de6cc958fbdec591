"""Dropout on torch tensors (as cnnlib.numpy.dropout): during training keep each unit with
probability keep_prob and zero the rest; at test time keep them all.

- vanilla dropout scales at *test* time: train out = x * mask, test out = keep_prob * x;
- inverted dropout scales at *training* time: train out = x * mask / keep_prob, test out = x.

`keep_prob` is always the probability of *keeping* a unit (torch.nn.Dropout's `p` is the
probability of dropping one: p_torch = 1 - keep_prob).

The mask is drawn on x's device, from a torch.Generator seeded with `seed` when one is given, so
the same seed gives the same mask on the same device (CPU and CUDA generators differ, so a seed
does not give the same mask on both).
"""

from __future__ import annotations

import numbers

import torch

from cnnlib.numpy._checks import (
    check_cache,
    check_dout,
    check_flag,
    check_float_array,
    check_probability,
    describe,
)

from ._tensors import check_float_tensors

__all__ = ["dropout_backward", "dropout_forward"]


def _generator(seed, device: torch.device) -> torch.Generator | None:
    """A generator on `device` seeded with the int `seed`; a Generator passes through; None uses
    torch's global one."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, a torch.Generator or None, got {describe(seed)}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    return generator


def dropout_forward(
    x: torch.Tensor,
    keep_prob: float = 0.5,
    train: bool = True,
    inverted: bool = True,
    seed=None,
):
    """Dropout on x (any shape).

    keep_prob: probability of keeping each unit, in (0, 1]; 1 makes the layer the identity.
    train: draw a mask (True) or apply the test-time rule (False).
    inverted: the inverted (default) or vanilla scaling, see the module docstring.
    seed: int, torch.Generator (on x's device) or None (torch's global generator): the same int
        gives the same mask on the same device.
    mask ~ Bernoulli(keep_prob) elementwise, shape of x (bool). Returns out (x's shape, dtype)
    and cache = (mask or None, keep_prob, train, inverted).
    """
    check_float_tensors(x=x)
    keep_prob = check_probability("keep_prob", keep_prob)
    train, inverted = check_flag("train", train), check_flag("inverted", inverted)
    if train:
        generator = _generator(seed, x.device)
        uniform = torch.rand(x.shape, generator=generator, device=x.device)  # in [0, 1)
        mask = uniform < keep_prob  # keep_prob = 1 keeps every unit
        out = x * mask
        if inverted:
            out = out / keep_prob
    else:
        mask = None
        out = x.clone() if inverted else x * keep_prob
    return out, (mask, keep_prob, bool(train), bool(inverted))


def dropout_backward(dout: torch.Tensor, cache):
    """dx = dout times the same factor the forward applied to x (mask / keep_prob, mask,
    1 or keep_prob): dropout is linear in x for a fixed mask."""
    check_cache(cache, ("array or None", "number", "bool", "bool"), "dropout_forward")
    mask, keep_prob, train, inverted = cache
    if train:
        check_dout(dout, mask.shape, f"the layer's output {tuple(mask.shape)}")
        dx = dout * mask
        if inverted:
            dx = dx / keep_prob
    else:
        check_float_array("dout", dout)
        dx = dout.clone() if inverted else dout * keep_prob
    return dx
