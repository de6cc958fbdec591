"""Copy detection: a pasted, renamed reference is found; honest answers written apart are not."""

from __future__ import annotations

import inspect
import re
import textwrap

from course import ROOT

from cnnlib import arithmetic
from cnnlib.grading import similarity
from cnnlib.grading.authoring import solution_cells

PACKAGE = ROOT / "cnnlib"
STUB = (
    'def lenet5_table(input_shape=(1, 28, 28)):\n    """One dict per layer."""\n'
    "    # YOUR CODE HERE\n    raise NotImplementedError()\n"
)

ANOTHER_LENET5 = '''
def lenet5_table(input_shape=(1, 28, 28)):
    """One dict per layer."""
    channels, height, width = input_shape
    table = []
    spec = [("conv1", 20), ("pool1", None), ("conv2", 50), ("pool2", None)]
    for label, filters in spec:
        if filters is None:
            height = conv_output_size(height, 2, stride=2)
            width = conv_output_size(width, 2, stride=2)
            table.append(dict(name=label, output_shape=(channels, height, width),
                              memory_kb=channels * height * width * 4 / 1024, params=0,
                              flops=channels * height * width * 4))
        else:
            height = conv_output_size(height, 5, pad=2)
            width = conv_output_size(width, 5, pad=2)
            table.append(dict(name=label, output_shape=(filters, height, width),
                              memory_kb=filters * height * width * 4 / 1024,
                              params=conv_params(channels, filters, 5),
                              flops=conv_macs(channels, filters, 5, (height, width))))
            channels = filters
    inputs = channels * height * width
    for label, units in (("fc1", 500), ("fc2", 10)):
        table.append(dict(name=label, output_shape=(units,), memory_kb=units * 4 / 1024,
                          params=inputs * units + units, flops=inputs * units))
        inputs = units
    return table
'''


def _find(answers, starters, package):
    findings, compared = similarity.find_copies(answers, starters, package)
    assert compared <= sum(len(cells) for cells in answers.values())
    return findings


def _solution(name: str) -> str:
    import nbformat

    folder = ROOT / "solutions" / "a1_conv_arithmetic"
    source = nbformat.read(folder / "a1_conv_arithmetic.ipynb", 4)
    return solution_cells(source)[name]


def _pasted_and_renamed() -> str:
    """cnnlib's conv_output_size as a student might paste it: names changed, comments rewritten."""
    source = textwrap.dedent(inspect.getsource(arithmetic.conv_output_size))
    renames = {"size": "n_in", "kernel": "k", "stride": "s", "pad": "p", "k_eff": "width",
               "span": "room", "dilation": "d"}  # fmt: skip
    for old, new in renames.items():
        source = re.sub(rf"\b{old}\b", new, source)
    return re.sub(r"#.*", "# my own work", source)


def test_normalising_forgets_names_comments_docstrings_and_layout():
    a = "def f(x, y):\n    '''doc'''\n    # why\n    return np.sum(x * y) + len(x)\n"
    b = "def g(a,\n      b):\n    return np.sum(a*b)+len(a)  # other words\n"
    assert [t for t, _ in similarity.normalise(a)] == [t for t, _ in similarity.normalise(b)]


def test_a_pasted_and_renamed_reference_is_flagged_with_its_lines():
    answers = {"mallory": {"conv_output_size": _pasted_and_renamed()}}
    findings = _find(answers, {}, PACKAGE)
    assert [(f.kind, f.student, f.other) for f in findings] == [
        ("copy_of_reference", "mallory", "cnnlib.arithmetic.conv_output_size")]  # fmt: skip
    assert findings[0].share >= similarity.REFERENCE_SHARE
    assert any("room // s + 1" in line for line in findings[0].lines)


def test_a_paste_with_a_line_deleted_is_still_a_paste():
    # dropping one line (an argument check, say) must not hide the rest of the copy
    pasted = _pasted_and_renamed().splitlines()
    first_check = next(i for i, line in enumerate(pasted) if "_int(" in line)
    del pasted[first_check]
    answers = {"mallory": {"conv_output_size": "\n".join(pasted) + "\n"}}
    findings = _find(answers, {}, PACKAGE)
    assert [(f.kind, f.other) for f in findings] == [
        ("copy_of_reference", "cnnlib.arithmetic.conv_output_size")]  # fmt: skip


def test_two_correct_answers_written_apart_are_not_flagged():
    answers = {
        "alice": {"lenet5_table": _solution("lenet5_table")},
        "bob": {"lenet5_table": ANOTHER_LENET5},
    }
    starters = {"lenet5_table": STUB}
    assert _find(answers, starters, PACKAGE) == []


def test_an_identical_pair_of_substantial_answers_is_flagged():
    renamed = ANOTHER_LENET5.replace("table", "rows").replace("height", "h")
    answers = {"bob": {"lenet5_table": ANOTHER_LENET5}, "eve": {"lenet5_table": renamed},
               "alice": {"lenet5_table": _solution("lenet5_table")}}  # fmt: skip
    findings = _find(answers, {"lenet5_table": STUB}, PACKAGE)
    assert [(f.kind, f.student, f.other) for f in findings] == [("near_identical", "bob", "eve")]
    assert findings[0].share == 1.0 and findings[0].lines


def test_short_answers_are_never_evidence():
    one_liner = "def same_padding(kernel, dilation=1):\n    return (dilation * (kernel - 1)) // 2\n"
    answers = {s: {"same_padding": one_liner} for s in ("a", "b", "c")}
    assert _find(answers, {}, PACKAGE) == []
    lines = similarity.report_lines([], 0)
    assert f"at least {similarity.MIN_TOKENS} tokens" in lines[0]


def test_what_most_of_the_class_writes_alike_is_idiom_not_evidence():
    # ten students write the same long answer (the exercise's idiom): no pair is flagged for it,
    # while two who share more than the idiom still are
    idiom = ANOTHER_LENET5
    answers = {f"s{i}": {"lenet5_table": idiom} for i in range(10)}
    extra = """
    # and more
    for row in table:
        row['ratio'] = row['params'] / (row['flops'] + 1)
        row['kb'] = round(row['memory_kb'], 3)
        row['big'] = row['params'] > 1000 and row['flops'] > 1000
    return table
"""
    shared = idiom.replace("    return table\n", extra)
    answers["x"], answers["y"] = {"lenet5_table": shared}, {"lenet5_table": shared}
    findings = _find(answers, {"lenet5_table": STUB}, PACKAGE)
    assert {(f.student, f.other) for f in findings} == {("x", "y")}
