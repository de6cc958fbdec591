"""Random generators from what the user passes: a Generator, an int seed or None."""

from __future__ import annotations

import numbers

import numpy as np

from cnnlib.numpy._checks import describe


def _as_rng(rng, name: str = "rng") -> np.random.Generator:
    """A NumPy Generator from a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"{name} must be a numpy Generator, an int seed or None, got {describe(rng)}")
