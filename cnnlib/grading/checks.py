"""Checks that grade cells call: compare a student's function with the reference on many inputs.

Expected values are never typed into a notebook: every check calls the reference implementation
(from `cnnlib`) on the same arguments and compares. A failure raises `CheckFailure` (an
AssertionError, so nbgrader counts the cell as failed) whose message says which call went wrong,
what came back and what was expected, so a student can reproduce it in one line.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "CheckFailure",
    "call_repr",
    "check_function",
    "check_table",
]


class CheckFailure(AssertionError):
    """A graded check disagreed with the reference; the message is written for the student."""


def call_repr(name: str, kwargs: Mapping[str, Any]) -> str:
    """`name(a=1, b=2)`: a call a student can paste into a cell to reproduce a failure."""
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def _describe(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _mismatch(got, expected, rel_tol: float) -> str | None:
    """Why `got` is not `expected`, or None when they agree.

    Integers must come back as integers (a size of 55.0 is a float, not a size); floats agree
    within `rel_tol`; tuples and lists agree element by element (either kind is accepted).
    """
    if isinstance(expected, bool) or expected is None:
        return None if got is expected else f"got {_describe(got)}, expected {expected!r}"
    if isinstance(expected, numbers.Integral):
        if isinstance(got, bool) or not isinstance(got, numbers.Integral):
            if isinstance(got, numbers.Real) and got == expected:
                return f"got {_describe(got)}: the value is right but it must be an int"
            return f"got {_describe(got)}, expected {expected!r}"
        return None if got == expected else f"got {got!r}, expected {expected!r}"
    if isinstance(expected, numbers.Real):
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            return f"got {_describe(got)}, expected a number close to {expected!r}"
        if math.isclose(float(got), float(expected), rel_tol=rel_tol, abs_tol=1e-12):
            return None
        return f"got {got!r}, expected {expected!r}"
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        if isinstance(got, np.ndarray):
            got = got.tolist()
        if not isinstance(got, Sequence) or isinstance(got, str):
            return f"got {_describe(got)}, expected a sequence like {tuple(expected)!r}"
        if len(got) != len(expected):
            return (
                f"got {len(got)} values {tuple(got)!r}, "
                f"expected {len(expected)}: {tuple(expected)!r}"
            )
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            why = _mismatch(g, e, rel_tol)
            if why is not None:
                return f"got {tuple(got)!r}, expected {tuple(expected)!r} (item {i}: {why})"
        return None
    return None if got == expected else f"got {_describe(got)}, expected {expected!r}"


def check_function(
    student: Callable,
    reference: Callable,
    cases: Iterable[Mapping[str, Any]],
    *,
    name: str | None = None,
    hint: str = "",
    rel_tol: float = 1e-9,
) -> None:
    """Call `student(**case)` and `reference(**case)` for every case and demand the same outcome.

    cases: keyword-argument dicts. Where the reference raises ValueError or TypeError, the student
    must raise the same kind of error; where it returns, the student must return an equal value
    (see `_mismatch`). Stops at the first disagreement with a CheckFailure naming the call.
    Returns None on purpose: nbgrader reads a number left as a grade cell's last value as
    partial credit, so a check must never end a cell with one.
    """
    name = name or getattr(student, "__name__", "your function")
    hint = f"\nHint: {hint}" if hint else ""
    cases = list(cases)
    if not cases:
        raise ValueError("cases: no cases to check")
    for case in cases:
        call = call_repr(name, case)
        try:
            expected, expected_error = reference(**case), None
        except (ValueError, TypeError) as error:
            expected, expected_error = None, error
        try:
            got = student(**case)
        except NotImplementedError:
            raise CheckFailure(
                f"{name} is not implemented yet (it raised NotImplementedError)"
            ) from None
        except Exception as error:
            if expected_error is not None and isinstance(error, type(expected_error)):
                continue
            wanted = (
                f"it should raise {type(expected_error).__name__} ({expected_error})"
                if expected_error is not None
                else f"it should return {expected!r}"
            )
            raise CheckFailure(
                f"{call} raised {type(error).__name__}: {error}\nbut {wanted}.{hint}"
            ) from None
        if expected_error is not None:
            raise CheckFailure(
                f"{call} returned {got!r}\nbut it should raise "
                f"{type(expected_error).__name__}: {expected_error}{hint}"
            )
        why = _mismatch(got, expected, rel_tol)
        if why is not None:
            raise CheckFailure(f"{call}: {why}.{hint}")


def check_table(
    rows: Sequence[Mapping[str, Any]],
    expected_rows: Sequence[Mapping[str, Any]],
    *,
    what: str = "table",
    rel_tol: float = 1e-9,
) -> None:
    """Compare a table (list of dicts) with the reference, field by field, naming the first error.

    Only the fields of the expected rows are compared; extra fields in `rows` are ignored.
    """
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        raise CheckFailure(f"{what}: expected a list of rows (dicts), got {_describe(rows)}")
    if len(rows) != len(expected_rows):
        raise CheckFailure(f"{what}: expected {len(expected_rows)} rows, got {len(rows)}")
    for i, (row, expected) in enumerate(zip(rows, expected_rows, strict=True)):
        label = f"{what}, row {i} ({expected.get('name', i)})"
        if not isinstance(row, Mapping):
            raise CheckFailure(f"{label}: expected a dict, got {_describe(row)}")
        for field, value in expected.items():
            if field not in row:
                raise CheckFailure(f"{label}: the row has no {field!r} entry (keys: {list(row)})")
            why = _mismatch(row[field], value, rel_tol)
            if why is not None:
                raise CheckFailure(f"{label}, {field!r}: {why}")
