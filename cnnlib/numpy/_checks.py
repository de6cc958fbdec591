"""Argument checks shared by the layers: errors that name the argument, what it got, what it wanted.

Students read these messages more than any docstring, so each one says which argument was wrong,
the shape (or value) it had, and the shape (or value) the layer expected. The torch counterparts
use the same helpers: they only look at ``.ndim``, ``.shape`` and ``.dtype``.
"""

from __future__ import annotations

import numbers

__all__ = [
    "as_pair",
    "check_float_array",
    "check_labels",
    "check_length",
    "check_ndim",
    "check_positive_int",
    "check_probability",
]


def describe(x) -> str:
    """`array of shape (2, 3) and dtype float64` for arrays and tensors, the type name otherwise."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"an array of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"


def check_ndim(name: str, x, ndim: int, layout: str) -> None:
    """Raise unless `x` has `ndim` dimensions; `layout` reads like '(N, C, H, W)'."""
    if not hasattr(x, "ndim") or not hasattr(x, "shape"):
        raise TypeError(f"{name} must be an array of shape {layout}, got {describe(x)}")
    if x.ndim != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions {layout}, got shape {tuple(x.shape)} "
            f"({x.ndim} dimensions)"
        )


def check_float_array(name: str, x) -> None:
    """Raise TypeError unless `x` holds floating-point numbers (gradients need them)."""
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    is_float = kind == "f" or getattr(getattr(x, "dtype", None), "is_floating_point", False)
    if not is_float:
        raise TypeError(f"{name} must be a floating-point array, got {describe(x)}")


def check_length(name: str, x, length: int, of_what: str) -> None:
    """Raise unless `x` is 1-D with `length` entries (gamma, beta, biases)."""
    shape = tuple(getattr(x, "shape", ()))
    if shape != (length,):
        raise ValueError(
            f"{name} must have shape ({length},) to match {of_what}, got {describe(x)}"
        )


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    """`value` as an int, if it is an integer >= `minimum`; TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def as_pair(name: str, value, minimum: int = 1) -> tuple[int, int]:
    """An int or an (H, W) pair of ints >= `minimum`, as an (H, W) tuple."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (H, W) pair, got {value!r}")
        height, width = value
        return (check_positive_int(name, height, minimum), check_positive_int(name, width, minimum))
    value = check_positive_int(name, value, minimum)
    return (value, value)


def check_probability(name: str, value) -> float:
    """`value` as a float in (0, 1]: a probability of keeping a unit can be 1 but never 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in (0, 1], got {describe(value)}")
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(
            f"{name} must be in (0, 1] (the probability of keeping a unit), got {value}"
        )
    return float(value)


def check_labels(name: str, y, num_samples: int, num_classes: int) -> None:
    """Raise unless `y` is an integer vector of `num_samples` class indices in [0, num_classes)."""
    check_ndim(name, y, 1, "(N,)")
    kind = getattr(getattr(y, "dtype", None), "kind", None)
    is_int = kind in ("i", "u") or str(getattr(y, "dtype", "")) in (
        "torch.int64", "torch.int32", "torch.int16", "torch.int8", "torch.uint8"
    )
    if not is_int:
        raise TypeError(f"{name} must hold integer class indices, got {describe(y)}")
    if y.shape[0] != num_samples:
        raise ValueError(
            f"{name} must have shape ({num_samples},) to match scores, got {describe(y)}"
        )
    if num_samples and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(
            f"{name} must hold class indices in [0, {num_classes}), got values from "
            f"{int(y.min())} to {int(y.max())}"
        )

