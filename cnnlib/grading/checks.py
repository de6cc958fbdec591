"""Checks that grade cells call: compare a student's function with the reference on many inputs.

Expected values are never typed into a notebook: every check calls the reference implementation
(from `cnnlib`) on the same arguments and compares. A failure raises `CheckFailure` (an
AssertionError, so nbgrader counts the cell as failed) whose message says which call went wrong,
what came back and what was expected, so a student can reproduce it in one line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from cnnlib.grading.compare import Table, _mismatch

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
    why = Table(rel_tol).explain(rows, expected_rows)
    if why is not None:
        raise CheckFailure(f"{what}, {why}" if why.startswith("row") else f"{what}: {why}")
