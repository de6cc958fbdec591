"""cnnlib.grading: checks catch each kind of wrong answer and say what is wrong."""

from __future__ import annotations

import dataclasses

import pytest
from course import ROOT, assignment_ids

from cnnlib import arithmetic as ar
from cnnlib.grading import (
    CheckFailure,
    check_function,
    check_table,
    conv_cost_cases,
    conv_geometry_cases,
    receptive_field_cases,
    same_padding_cases,
)


def ceil_output_size(size, kernel, stride=1, pad=0, dilation=1, strict=False):
    return -(-(size + 2 * pad - kernel) // stride) + 1


def float_output_size(size, kernel, stride=1, pad=0, dilation=1, strict=False):
    return (size + 2 * pad - kernel) / stride + 1


def test_a_correct_function_passes_and_the_check_returns_none():
    # None on purpose: nbgrader reads a number left as a grade cell's value as partial credit.
    assert check_function(ar.conv_output_size, ar.conv_output_size, conv_geometry_cases(1)) is None


def test_wrong_value_names_the_call_and_both_values():
    with pytest.raises(CheckFailure) as info:
        check_function(
            ceil_output_size, ar.conv_output_size, [{"size": 6, "kernel": 3, "stride": 2}]
        )
    assert str(info.value) == "ceil_output_size(size=6, kernel=3, stride=2): got 3, expected 2."


def test_a_float_is_not_a_size():
    with pytest.raises(
        CheckFailure, match=r"got 55.0 \(float\): the value is right but it must be an int"
    ):
        check_function(
            float_output_size, ar.conv_output_size, [{"size": 227, "kernel": 11, "stride": 4}]
        )


def test_missing_error_is_reported():
    def no_strict(size, kernel, stride=1, pad=0, dilation=1, strict=False):
        return (size + 2 * pad - kernel) // stride + 1

    case = {"size": 6, "kernel": 3, "stride": 2, "strict": True}
    with pytest.raises(CheckFailure, match=r"returned 2\nbut it should raise ValueError"):
        check_function(no_strict, ar.conv_output_size, [case])


def test_unexpected_error_is_reported_with_a_hint():
    def broken(**kwargs):
        raise KeyError("stride")

    with pytest.raises(
        CheckFailure, match=r"raised KeyError.*\nbut it should return 55.\nHint: floor"
    ):
        check_function(
            broken, ar.conv_output_size, [{"size": 227, "kernel": 11, "stride": 4}], hint="floor"
        )


def test_not_implemented_is_said_plainly():
    def stub(**kwargs):
        raise NotImplementedError()

    with pytest.raises(CheckFailure, match="not implemented yet"):
        check_function(stub, ar.same_padding, same_padding_cases(), name="same_padding")


def test_expected_errors_of_the_same_kind_pass():
    def same_padding(kernel, dilation=1):
        k_eff = dilation * (kernel - 1) + 1
        if k_eff % 2 == 0:
            raise ValueError("even")
        return (k_eff - 1) // 2

    check_function(same_padding, ar.same_padding, same_padding_cases())


def test_case_generators_cover_the_edge_cases():
    plain = conv_geometry_cases(seed=3, n=50)
    assert any((c["size"] + 2 * c["pad"] - c["kernel"]) % c["stride"] for c in plain)  # no divide
    assert any(c["pad"] > c["kernel"] for c in plain)  # padding larger than the kernel
    assert any(c["kernel"] == 1 for c in plain)  # 1x1
    dilated = conv_geometry_cases(seed=3, n=300, dilation=True)
    too_big = [
        c
        for c in dilated
        if c.get("dilation", 1) * (c["kernel"] - 1) + 1 > c["size"] + 2 * c["pad"]
    ]
    assert too_big, "the dilation cases must include kernels that do not fit"
    assert all(c["strict"] for c in conv_geometry_cases(seed=3, n=10, strict=True))
    assert conv_geometry_cases(seed=7) == conv_geometry_cases(seed=7), (
        "seeded: re-grading is stable"
    )
    assert any(isinstance(c["kernel"], tuple) for c in conv_cost_cases(seed=1))
    assert all("output_size" in c for c in conv_cost_cases(seed=1, output_size=True))
    assert any(len(c["layers"][0]) == 3 for c in receptive_field_cases(seed=1))


def test_wrong_answers_fail_their_generated_cases():
    # Each plausible mistake is caught by the generated cases, not only by hand-picked ones.
    def no_stride_growth(layers):
        return 1 + sum((l[2] if len(l) > 2 else 1) * (l[0] - 1) for l in layers)  # noqa: E741

    with pytest.raises(CheckFailure):
        check_function(no_stride_growth, ar.receptive_field, receptive_field_cases(seed=9))

    def one_sided_pad(size, kernel, stride=1, pad=0, dilation=1, strict=False):
        return (size + pad - kernel) // stride + 1

    with pytest.raises(CheckFailure):
        check_function(one_sided_pad, ar.conv_output_size, conv_geometry_cases(seed=9))

    def macs_without_channels(in_channels, out_channels, kernel, output_size):
        k = kernel if isinstance(kernel, int) else kernel[0] * kernel[1]
        hw = output_size**2 if isinstance(output_size, int) else output_size[0] * output_size[1]
        return out_channels * hw * (k * k if isinstance(kernel, int) else k)

    with pytest.raises(CheckFailure):
        check_function(
            macs_without_channels, ar.conv_macs, conv_cost_cases(seed=9, output_size=True)
        )


def test_check_table_names_row_and_field():
    expected = [
        dataclasses.asdict(r) for r in ar.layer_table((1, 28, 28), [ar.Conv(4, 3), ar.Pool(2)])
    ]
    rows = [dict(r) for r in expected]
    check_table(rows, expected)
    rows[1]["output_shape"] = (4, 14, 14)
    with pytest.raises(
        CheckFailure,
        match=r"row 1 \(pool1\), 'output_shape': got \(4, 14, 14\), expected \(4, 13, 13\)",
    ):
        check_table(rows, expected)
    with pytest.raises(CheckFailure, match="expected 2 rows, got 1"):
        check_table(rows[:1], expected)
    with pytest.raises(CheckFailure, match="has no 'flops' entry"):
        check_table([{k: v for k, v in r.items() if k != "flops"} for r in expected], expected)
    rows = [dict(r) for r in expected]
    rows[0]["memory_kb"] += 1e-13  # float fields compare with a tolerance
    check_table(rows, expected)


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_every_grade_cell_has_a_trusted_check_beside_its_source(assignment_id):
    # python -m cnnlib grade keeps a grade cell's points only when its trusted check agrees, and
    # refuses to grade an assignment whose checks file misses an autograded cell
    import nbformat

    from cnnlib.grading import load_checks

    folder = ROOT / "solutions" / assignment_id
    source = nbformat.read(folder / f"{assignment_id}.ipynb", 4)
    graded = {
        cell.metadata["nbgrader"]["grade_id"]
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and not cell.metadata["nbgrader"].get("solution")
    }
    checks = load_checks(folder / "checks.py").checks
    assert graded == set(checks), (graded ^ set(checks))
    assert all(checks[grade_id] for grade_id in graded)
    # ...and each grade cell's hidden tests call them, by the cell's own id
    for cell in source.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in graded:
            assert f'hidden_tests("{grade_id}", globals())' in cell.source, grade_id
