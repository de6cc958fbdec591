"""How a student's answer is compared with the expected one, in words a student can act on.

A comparator's `explain(got, expected)` returns None when the answer is right, else one sentence
saying what differs ("got 3, expected 2"; "out[0, 1, 2, 3] is 0.51, expected 0.47 ..."). The same
comparators run in the student's kernel (the grade cell's hidden tests) and on the grader's
trusted side, so both sides judge alike. `spec()` / `from_spec()` carry a comparator across the
sandbox wall as plain JSON.

- `Close`: numbers, sequences, dicts and arrays, item by item. Integers must come back as integers
  (a size of 55.0 is a float, not a size); floats agree within `rtol`/`atol`; arrays must have the
  expected shape and (unless `dtype=False`) dtype, NaN where NaN is expected, and values within the
  tolerance.
- `Table`: a list of dicts (a layer table), field by field; extra fields are ignored.
- `Accuracy`: predicted class labels against the true ones; passes at `at_least` or above.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["Accuracy", "Close", "Table", "describe", "from_spec"]


def describe(value) -> str:
    """`repr` for messages, short: arrays by shape and dtype, long values cut."""
    if isinstance(value, np.ndarray):
        if value.size <= 6:
            return f"array({value.tolist()!r}, dtype={value.dtype})"
        return f"an array of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


def _kind(value) -> str:
    return f"{describe(value)} ({type(value).__name__})"


def _index(flat: int, shape: tuple) -> str:
    return "[" + ", ".join(str(i) for i in np.unravel_index(flat, shape)) + "]" if shape else ""


def _array_mismatch(got, expected: np.ndarray, rtol: float, atol: float, dtype: bool):
    if not isinstance(got, np.ndarray):
        return f"got {_kind(got)}, expected a NumPy array of shape {tuple(expected.shape)}"
    if got.shape != expected.shape:
        return f"got an array of shape {tuple(got.shape)}, expected shape {tuple(expected.shape)}"
    if dtype and got.dtype != expected.dtype:
        return (
            f"got an array of dtype {got.dtype}, expected {expected.dtype} "
            "(keep the dtype of the inputs)"
        )
    if expected.dtype == bool or np.issubdtype(expected.dtype, np.integer):
        wrong = got != expected
    else:
        got_f, exp_f = got.astype(np.complex128), expected.astype(np.complex128)
        nan_got = np.isnan(got_f.real) | np.isnan(got_f.imag)
        nan_exp = np.isnan(exp_f.real) | np.isnan(exp_f.imag)
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.isclose(got_f, exp_f, rtol=rtol, atol=atol) | (got_f == exp_f)
        wrong = (nan_got != nan_exp) | (~nan_exp & ~close)
    count = int(np.count_nonzero(wrong))
    if not count:
        return None
    flat = int(np.flatnonzero(wrong)[0])
    where = _index(flat, expected.shape)
    g, e = got.reshape(-1)[flat].item(), expected.reshape(-1)[flat].item()
    message = f"element {where} is {g!r}, expected {e!r}" if where else f"got {g!r}, expected {e!r}"
    if expected.size > 1:
        message += f" ({count:,} of {expected.size:,} elements differ"
        if np.issubdtype(expected.dtype, np.floating) and np.issubdtype(got.dtype, np.number):
            with np.errstate(invalid="ignore", over="ignore"):
                diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
            finite = diff[np.isfinite(diff)]
            if finite.size:
                message += f"; largest difference {float(finite.max()):.3g}"
        message += ")"
    return message


def _mismatch(got, expected, rtol: float, atol: float = 1e-12, dtype: bool = True):
    """Why `got` is not `expected`, or None when they agree (see the module docstring)."""
    if isinstance(expected, np.ndarray):
        return _array_mismatch(got, expected, rtol, atol, dtype)
    if isinstance(expected, bool) or expected is None:
        return None if got is expected else f"got {_kind(got)}, expected {expected!r}"
    if isinstance(expected, numbers.Integral):
        if isinstance(got, bool) or not isinstance(got, numbers.Integral):
            if isinstance(got, numbers.Real) and got == expected:
                return f"got {_kind(got)}: the value is right but it must be an int"
            return f"got {_kind(got)}, expected {expected!r}"
        return None if got == expected else f"got {describe(got)}, expected {expected!r}"
    if isinstance(expected, numbers.Real):
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            return f"got {_kind(got)}, expected a number close to {expected!r}"
        g, e = float(got), float(expected)
        if math.isnan(e):
            return None if math.isnan(g) else f"got {g!r}, expected nan"
        if g == e or math.isclose(g, e, rel_tol=rtol, abs_tol=atol):
            return None
        return f"got {got!r}, expected {expected!r}"
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"got {_kind(got)}, expected a dict with keys {sorted(map(str, expected))}"
        missing = [k for k in expected if k not in got]
        if missing:
            return f"the result has no {missing[0]!r} entry (keys: {list(got)[:10]})"
        for key, value in expected.items():
            why = _mismatch(got[key], value, rtol, atol, dtype)
            if why is not None:
                return f"[{key!r}]: {why}"
        return None
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        if isinstance(got, np.ndarray) and not any(isinstance(e, np.ndarray) for e in expected):
            got = got.tolist()
        if not isinstance(got, Sequence) or isinstance(got, str):
            return f"got {_kind(got)}, expected a sequence like {describe(tuple(expected))}"
        if len(got) != len(expected):
            return (
                f"got {len(got)} values {describe(tuple(got))}, "
                f"expected {len(expected)}: {describe(tuple(expected))}"
            )
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = _mismatch(g, e, rtol, atol, dtype)
            if why is not None:
                if isinstance(e, np.ndarray | Mapping) or (
                    isinstance(e, Sequence) and not isinstance(e, str)
                ):
                    return f"item {i}: {why}"
                return f"got {describe(tuple(got))}, expected {describe(tuple(expected))} " \
                    f"(item {i}: {why})"  # fmt: skip
        return None
    return None if got == expected else f"got {_kind(got)}, expected {expected!r}"


@dataclasses.dataclass(frozen=True)
class Close:
    """Equal ints, floats within rtol/atol, arrays of the same shape and dtype (see module)."""

    rtol: float = 1e-9
    atol: float = 1e-12
    dtype: bool = True

    def explain(self, got, expected) -> str | None:
        return _mismatch(got, expected, self.rtol, self.atol, self.dtype)

    def spec(self) -> dict:
        return {"kind": "close", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Table:
    """A list of dicts compared field by field with the expected rows (extra fields ignored)."""

    rtol: float = 1e-9

    def explain(self, got, expected) -> str | None:
        if not isinstance(got, Sequence) or isinstance(got, str):
            return f"expected a list of rows (dicts), got {_kind(got)}"
        if len(got) != len(expected):
            return f"expected {len(expected)} rows, got {len(got)}"
        for i, (row, want) in enumerate(zip(got, expected, strict=True)):
            label = f"row {i} ({want.get('name', i)})"
            if not isinstance(row, Mapping):
                return f"{label}: expected a dict, got {_kind(row)}"
            for field, value in want.items():
                if field not in row:
                    return f"{label}: the row has no {field!r} entry (keys: {list(row)})"
                why = _mismatch(row[field], value, self.rtol)
                if why is not None:
                    return f"{label}, {field!r}: {why}"
        return None

    def spec(self) -> dict:
        return {"kind": "table", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Accuracy:
    """Predicted labels (N,) against the true labels (N,): right when the accuracy >= at_least."""

    at_least: float

    def explain(self, got, expected) -> str | None:
        labels = np.asarray(expected)
        try:
            predicted = np.asarray(got)
        except Exception:
            return f"expected {labels.size} predicted labels, got {_kind(got)}"
        if predicted.shape != labels.shape:
            return f"expected {labels.size} predicted labels, got {_kind(got)}"
        if not (np.issubdtype(predicted.dtype, np.integer) or predicted.dtype == bool):
            return f"expected integer class labels, got dtype {predicted.dtype}"
        accuracy = float(np.mean(predicted == labels))
        if accuracy >= self.at_least:
            return None
        return (
            f"accuracy {accuracy:.3f} on {labels.size} images the grader held out; "
            f"it needs at least {self.at_least:.3f}"
        )

    def spec(self) -> dict:
        return {"kind": "accuracy", **dataclasses.asdict(self)}


_KINDS = {"close": Close, "table": Table, "accuracy": Accuracy}


def from_spec(spec: dict):
    """The comparator a `spec()` describes; None for a custom (trusted-side only) comparator."""
    kind = _KINDS.get(spec.get("kind"))
    if kind is None:
        return None
    fields = {f.name for f in dataclasses.fields(kind)}
    return kind(**{k: v for k, v in spec.items() if k in fields})
