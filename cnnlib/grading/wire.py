"""The grader's wire format: plain JSON for values crossing a sandbox wall, in both directions.

Inputs go into the sandbox and outcomes come back this way, so nothing a student's code builds is
ever unpickled or called on the trusted side. `encode` reads a value's type with `type()` (which
an object cannot fake) and its content through `int()`, `float()`, `str()` and NumPy's buffer,
which Python guarantees to give real ints, floats, strings and bytes. Arrays travel exactly:
dtype, shape and the raw bytes (base64), so float32 stays float32 and NaN stays NaN.

A value of any other type arrives on the trusted side as an `Opaque`, equal to nothing. A subclass
of a built-in type (an `int` whose `==` is always true, say) is encoded as the built-in value it
holds, with its real type name kept under "disguised" so the grader can say what it saw.
"""

from __future__ import annotations

import base64
import math
import numbers

import numpy as np

__all__ = ["ARRAY_DTYPES", "Opaque", "decode", "disguised_types", "encode"]

MAX_ITEMS = 100_000
MAX_DEPTH = 12
MAX_STR = 100_000
MAX_ARRAY_BYTES = 64 * 1024 * 1024
ARRAY_DTYPES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
})  # fmt: skip
_BUILTIN = (bool, int, float, str, list, tuple, dict, type(None))


def _tag(kind: type, plain: dict) -> dict:
    # A subclass of a built-in type or of ndarray gets its real name noted beside the value.
    if kind not in _BUILTIN and kind is not np.ndarray and kind.__module__ != "numpy":
        plain["disguised"] = f"{kind.__module__}.{kind.__qualname__}"[:200]
    return plain


def _encode_array(value: np.ndarray) -> dict:
    dtype = np.ndarray.__getattribute__(value, "dtype")
    if dtype.name not in ARRAY_DTYPES:
        return {"t": "other", "type": f"ndarray[{str(dtype)[:40]}]"}
    if np.ndarray.__getattribute__(value, "nbytes") > MAX_ARRAY_BYTES:
        return {"t": "other", "type": "ndarray (too large)"}
    raw = np.array(np.asarray(value).view(np.ndarray), dtype=dtype, order="C", copy=True)
    return {
        "t": "array",
        "dtype": dtype.name,
        "shape": [int(n) for n in raw.shape],
        "b64": base64.b64encode(raw.astype(dtype.newbyteorder("<"), copy=False).tobytes())
        .decode("ascii"),
    }


def encode(value, depth: int = 0):
    """A plain JSON value describing `value`; see the module docstring."""
    kind = type(value)
    if depth > MAX_DEPTH:
        return {"t": "other", "type": "too deep"}
    if value is None:
        return {"t": "none"}
    if issubclass(kind, np.ndarray):
        return _tag(kind, _encode_array(value))
    if issubclass(kind, bool | np.bool_):
        return _tag(kind, {"t": "bool", "v": bool(value)})
    if issubclass(kind, numbers.Integral):
        return _tag(kind, {"t": "int", "v": str(int(value))})
    if issubclass(kind, numbers.Real):
        number = float(value)
        return _tag(kind, {"t": "float", "v": number if math.isfinite(number) else repr(number)})
    if issubclass(kind, numbers.Complex):
        number = complex(value)
        return _tag(kind, {"t": "complex", "v": [repr(number.real), repr(number.imag)]})
    if issubclass(kind, str):
        return _tag(kind, {"t": "str", "v": str.__str__(value)[:MAX_STR]})
    if issubclass(kind, list | tuple):
        items = list.__iter__(value) if issubclass(kind, list) else tuple.__iter__(value)
        tag = "list" if issubclass(kind, list) else "tuple"
        out = []
        for i, item in enumerate(items):
            if i >= MAX_ITEMS:
                return {"t": "other", "type": "too long"}
            out.append(encode(item, depth + 1))
        return _tag(kind, {"t": tag, "v": out})
    if issubclass(kind, dict):
        pairs = []
        for i, (key, item) in enumerate(dict.items(value)):
            if i >= MAX_ITEMS:
                return {"t": "other", "type": "too long"}
            pairs.append([encode(key, depth + 1), encode(item, depth + 1)])
        return _tag(kind, {"t": "dict", "v": pairs})
    return {"t": "other", "type": f"{kind.__module__}.{kind.__qualname__}"[:200]}


class Opaque:
    """A value the trusted side cannot use: equal to nothing, so it never passes a check."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<an object of type {self.type_name}>"


def _decode_array(plain: dict):
    dtype, shape, data = plain.get("dtype"), plain.get("shape"), plain.get("b64")
    if dtype not in ARRAY_DTYPES or not isinstance(shape, list) or not isinstance(data, str):
        return Opaque("malformed array")
    if not all(isinstance(n, int) and n >= 0 for n in shape) or len(shape) > 32:
        return Opaque("malformed array")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except ValueError:
        return Opaque("malformed array")
    little = np.dtype(dtype).newbyteorder("<")
    if len(raw) != math.prod(shape) * little.itemsize:
        return Opaque("malformed array")
    return np.frombuffer(raw, dtype=little).astype(np.dtype(dtype)).reshape(tuple(shape))


def decode(plain):
    """The inverse of `encode`, building only built-in values, arrays and `Opaque`s."""
    if not isinstance(plain, dict):
        return Opaque("malformed")
    tag, value = plain.get("t"), plain.get("v")
    try:
        if tag == "none":
            return None
        if tag == "bool":
            return bool(value)
        if tag == "int":
            return int(str(value)[:4000])
        if tag == "float":
            return float(value)
        if tag == "complex":
            return complex(float(value[0]), float(value[1]))
        if tag == "str":
            return str(value)
        if tag == "array":
            return _decode_array(plain)
        if tag in ("list", "tuple") and isinstance(value, list):
            items = [decode(item) for item in value]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and isinstance(value, list):
            out = {}
            for pair in value:
                out[decode(pair[0])] = decode(pair[1])
            return out
    except (TypeError, ValueError, IndexError, OverflowError):
        return Opaque(str(tag)[:100])
    return Opaque(str(plain.get("type", tag))[:200])


def disguised_types(plain, found: set[str] | None = None) -> set[str]:
    """Names of the built-in subclasses (an `int` that lies about `==`, ...) inside an encoding."""
    found = set() if found is None else found
    if isinstance(plain, dict):
        if isinstance(plain.get("disguised"), str):
            found.add(plain["disguised"])
        value = plain.get("v")
        if isinstance(value, list):
            for item in value:
                if isinstance(item, list):  # a dict's [key, value] pair
                    for part in item:
                        disguised_types(part, found)
                else:
                    disguised_types(item, found)
    return found
