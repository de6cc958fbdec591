"""Trusted checks per assignment: which functions each grade cell grades, on which inputs.

These specs hold nothing secret (the references are cnnlib's public functions and the inputs come
from `cnnlib.grading.cases` with a seed the grader derives from a key that only it can read), so
they can live in the package. The grader runs them outside the student's kernel: see
`trusted_runner` (the student's side) and `trusted` (the comparison).

`blocked` names the cnnlib modules whose functions are replaced by ones that raise in the
sandbox that runs the trusted checks, so an answer that merely calls the reference gets nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from cnnlib import arithmetic
from cnnlib.grading import cases

__all__ = ["SPECS", "AssignmentSpec", "Check", "spec_for"]


@dataclasses.dataclass(frozen=True)
class Check:
    """Call `function(**case)` for each case of `cases(seed)`; compare with `reference(**case)`.

    compare: "value" (checks._mismatch rules, errors must match in kind) or "table" (a list of
    dicts compared field by field with checks.check_table).
    """

    function: str
    cases: Callable[[int], list[dict]]
    reference: Callable
    compare: str = "value"


@dataclasses.dataclass(frozen=True)
class AssignmentSpec:
    checks: dict[str, list[Check]]  # grade_id -> checks that must all pass
    blocked: tuple[str, ...]  # cnnlib modules (paths relative to the package) to neuter


_LENET5 = [
    arithmetic.Conv(20, 5, pad=2),
    arithmetic.Pool(2),
    arithmetic.Conv(50, 5, pad=2),
    arithmetic.Pool(2),
    arithmetic.Linear(500),
    arithmetic.Linear(10),
]


def _lenet5_reference(input_shape):
    return [dataclasses.asdict(row) for row in arithmetic.layer_table(input_shape, _LENET5)]


def _lenet5_cases(seed: int, n: int = 12) -> list[dict]:
    rng = np.random.default_rng(seed)
    shapes = [(1, 28, 28), (1, 32, 32), (3, 64, 48)]
    while len(shapes) < n:
        shapes.append((int(rng.integers(1, 4)), int(rng.integers(4, 70)), int(rng.integers(4, 70))))
    return [{"input_shape": shape} for shape in shapes]


def _geometry(**options) -> Callable[[int], list[dict]]:
    return lambda seed: cases.conv_geometry_cases(seed, n=300, **options)


A1 = AssignmentSpec(
    checks={
        "test_conv_output_size_floor": [
            Check("conv_output_size", _geometry(), arithmetic.conv_output_size)
        ],
        "test_conv_output_size_dilation": [
            Check("conv_output_size", _geometry(dilation=True), arithmetic.conv_output_size)
        ],
        "test_conv_output_size_strict": [
            Check("conv_output_size", _geometry(strict=True), arithmetic.conv_output_size)
        ],
        "test_same_padding": [
            Check("same_padding", lambda seed: cases.same_padding_cases(), arithmetic.same_padding)
        ],
        "test_receptive_field": [
            Check(
                "receptive_field",
                lambda seed: cases.receptive_field_cases(seed, n=200),
                arithmetic.receptive_field,
            )
        ],
        "test_conv_params": [
            Check(
                "conv_params",
                lambda seed: cases.conv_cost_cases(seed, n=200),
                arithmetic.conv_params,
            )
        ],
        "test_conv_macs": [
            Check(
                "conv_macs",
                lambda seed: cases.conv_cost_cases(seed, n=200, output_size=True),
                arithmetic.conv_macs,
            )
        ],
        "test_lenet5_table": [
            Check("lenet5_table", _lenet5_cases, _lenet5_reference, compare="table")
        ],
    },
    blocked=("arithmetic.py",),
)

SPECS: dict[str, AssignmentSpec] = {"a1_conv_arithmetic": A1}


def spec_for(assignment_id: str) -> AssignmentSpec:
    try:
        return SPECS[assignment_id]
    except KeyError:
        raise ValueError(
            f"assignment_id: no trusted checks for {assignment_id!r} (known: {sorted(SPECS)}); "
            "add them to cnnlib/grading/specs.py"
        ) from None
