"""Argument checks shared by the layers: errors that name the argument, what it got, what it wanted.

Students read these messages more than any docstring, so each one says which argument was wrong,
the shape (or value) it had, and the shape (or value) the layer expected. The torch counterparts
use the same helpers: they only look at ``.ndim``, ``.shape`` and ``.dtype``.
"""

from __future__ import annotations

import numbers

__all__ = [
    "as_pair",
    "check_allocation",
    "check_cache",
    "check_flag",
    "check_float_array",
    "check_labels",
    "check_length",
    "check_ndim",
    "check_number",
    "check_positive_int",
    "check_probability",
    "check_shape",
    "check_window_fits",
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


def check_number(
    name: str, value, minimum: float | None = None, maximum: float | None = None,
    strict_minimum: bool = False,
) -> float:
    """`value` as a float, if it is a real number in [minimum, maximum] (or (minimum, maximum]
    with `strict_minimum`); either bound may be None. TypeError/ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {describe(value)}")
    value = float(value)
    too_low = minimum is not None and (
        value <= minimum if strict_minimum else value < minimum
    )
    too_high = maximum is not None and value > maximum
    if too_low or too_high or value != value:  # value != value: NaN
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        bracket = "(" if strict_minimum or minimum is None else "["
        close = ")" if maximum is None else "]"
        raise ValueError(f"{name} must be in {bracket}{low}, {high}{close}, got {value}")
    return value


def check_shape(name: str, x, shape: tuple, of_what: str) -> None:
    """Raise unless `x` has exactly `shape` (e.g. dout must match the forward's output)."""
    got = tuple(getattr(x, "shape", ()))
    if not hasattr(x, "shape") or got != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} to match {of_what}, "
                         f"got {describe(x)}")


def check_window_fits(
    name: str, span: tuple[int, int], size: tuple[int, int], pad: tuple[int, int]
) -> None:
    """Raise unless a sliding window spanning `span` (rows, columns) fits the padded input.

    span: the window's extent, dilation included (a 3x3 kernel with dilation 2 spans 5x5);
    size: the input's (H, W); pad: zeros added on each side. `name` is the argument that set the
    window (`w` for a conv kernel, `size` for a pooling window).
    """
    padded = (size[0] + 2 * pad[0], size[1] + 2 * pad[1])
    if span[0] > padded[0] or span[1] > padded[1]:
        raise ValueError(
            f"{name}: the window spans {span[0]}x{span[1]} input positions but the padded input "
            f"is only {padded[0]}x{padded[1]} (H, W = {size[0]}, {size[1]} with pad={pad}); "
            f"wanted a window of at most {padded[0]}x{padded[1]}: use a smaller {name} "
            f"or more padding"
        )


def check_flag(name: str, value) -> bool:
    """`value` if it is a bool (or NumPy's bool); TypeError naming `name` otherwise.

    Truth-testing would do the wrong thing silently for the most common mistake: the string
    'False' is a non-empty string, so `if train:` would take it as True.
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {describe(value)}")


# What each kind of entry of a cache looks like: a layer's cache is a tuple whose entries are
# arrays, flags, numbers ... in a fixed order, so another layer's cache (or None) is recognised
# by its length and the kinds of its entries before any unpacking fails deep inside a backward.
_CACHE_KINDS = {
    "array": lambda v: hasattr(v, "shape") and hasattr(v, "dtype"),
    "array or None": lambda v: v is None or (hasattr(v, "shape") and hasattr(v, "dtype")),
    "bool": lambda v: isinstance(v, bool),
    "number": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "pair": lambda v: isinstance(v, tuple) and len(v) == 2,
    "tuple": lambda v: isinstance(v, tuple),
}


def check_cache(cache, kinds, forward: str) -> None:
    """Raise unless `cache` looks like what `forward` returns.

    kinds: the kind of each entry of the cache tuple, in order (keys of _CACHE_KINDS), or one
    kind (a str) for a cache that is a single value (relu's cache is x itself).
    A TypeError names `cache`, says which forward makes it and what was passed instead.
    """
    if isinstance(kinds, str):
        if _CACHE_KINDS[kinds](cache):
            return
        wanted = f"an {kinds}" if kinds[0] in "aeiou" else f"a {kinds}"
    else:
        if isinstance(cache, tuple) and len(cache) == len(kinds) and all(
            _CACHE_KINDS[kind](entry) for kind, entry in zip(kinds, cache, strict=True)
        ):
            return
        wanted = f"a tuple of {len(kinds)} entries ({', '.join(kinds)})"
        if isinstance(cache, tuple):
            got = ", ".join(type(entry).__name__ for entry in cache)
            raise TypeError(
                f"cache must be the cache returned by {forward}: {wanted}, got a tuple of "
                f"{len(cache)} entries ({got}); pass the cache of this layer's own forward"
            )
    raise TypeError(
        f"cache must be the cache returned by {forward}: {wanted}, got {describe(cache)}"
    )


def _memory_bytes() -> int:
    """The machine's physical memory in bytes (16 GiB if the OS does not say)."""
    import os

    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 16 * 2**30


def check_allocation(name: str, shape, itemsize: int, what: str) -> None:
    """Refuse, naming `name`, an array of `shape` larger than the machine's memory.

    An absurd argument (pad=10**6) would otherwise end in a MemoryError, or in the OS killing
    the process, with nothing saying which argument asked for terabytes.
    """
    import math

    size = math.prod(int(s) for s in shape) * itemsize
    if size > _memory_bytes():
        raise ValueError(
            f"{name}: {what} would have shape {tuple(int(s) for s in shape)}, "
            f"{size / 2**30:.3g} GiB, more than this machine's memory; "
            f"wanted a {name} that keeps it within {_memory_bytes() / 2**30:.3g} GiB"
        )


def check_dout(dout, shape: tuple, of_what: str, like=None) -> None:
    """Raise unless dout is a floating-point array of `shape` (the forward's output).

    like: for the torch twins, a tensor of the forward (x): a torch dout must have its dtype and
    device too, since torch will not mix float32 and float64 in one product and would say so
    only from deep inside. NumPy mixes them (in the wider type), so `like` is not used there.
    """
    check_float_array("dout", dout)
    check_shape("dout", dout, shape, of_what)
    if like is None or not type(dout).__module__.startswith("torch"):
        return
    if dout.dtype != like.dtype or dout.device != like.device:
        raise TypeError(
            f"dout must have the dtype and device of the forward's input ({like.dtype} on "
            f"{like.device}), got {dout.dtype} on {dout.device}: convert it with "
            f".to({like.dtype})"
        )
