"""Notebooks are tested artefacts: each runs headless top to bottom, and is committed clean.

Every notebook under lectures/ and solutions/ runs in a fresh kernel with CNNLIB_QUICK=1 (small
data, few epochs) under a whole-notebook time limit (CNNLIB_NOTEBOOK_TIMEOUT seconds, default
1800, counted from the moment the kernel is ready: generous, since a quick run takes seconds to a
few minutes on a quiet machine and the same laptop may be busy). The fenced python blocks of every
exercise answer (markdown cells tagged `answer`) run in place, in the same kernel, so every answer
is checked although "Run All" never runs it. A failure names the notebook, the cell and the error.

The runs are shared with the course site's test through the `executed` fixture (conftest.py):
each notebook runs once per test session.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from course import ROOT, course_notebooks

from cnnlib.course import exercises
from cnnlib.course.run import NotebookFailure, run_notebook

EXECUTED = course_notebooks("lectures", "solutions")
COMMITTED = course_notebooks("lectures", "solutions", "assignments")
# lectures with exercises: all but the course map
LECTURES = [p for p in course_notebooks("lectures") if not p.name.startswith("00_")]


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def dirty_cells(nb) -> list[int]:
    """Indices of code cells that carry outputs or an execution count."""
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", EXECUTED, ids=_ids(EXECUTED))
def test_notebook_runs_headless(path, executed):
    run = executed(path)
    if run.failure:
        pytest.fail(run.failure, pytrace=False)
    cells = nbformat.read(path, as_version=4).cells
    blocks = sum(len(exercises.answer_blocks(c)) for c in cells if exercises.is_answer_cell(c))
    assert run.answers_run == blocks, f"{run.answers_run} of {blocks} answer blocks ran"


def test_there_are_notebooks():
    assert any(p.is_relative_to(ROOT / "lectures") for p in EXECUTED)
    assert any(p.is_relative_to(ROOT / "solutions") for p in EXECUTED)


@pytest.mark.parametrize("path", COMMITTED, ids=_ids(COMMITTED))
def test_notebook_is_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)  # raises ValidationError for invalid nbformat
    dirty = dirty_cells(nb)
    assert not dirty, (
        f"{path.relative_to(ROOT)}: cells {dirty} carry outputs or execution counts; "
        "clear them before committing (Edit > Clear Outputs of All Cells, then save)"
    )


@pytest.mark.parametrize("path", LECTURES, ids=_ids(LECTURES))
def test_lecture_exercises_follow_the_convention(path):
    cells = nbformat.read(path, as_version=4).cells
    assert exercises.problems(cells) == [], f"{path.name}: {exercises.problems(cells)}"
    answers = [c for c in cells if exercises.is_answer_cell(c)]
    assert answers, f"{path.name} has no exercises with answers"


# ------------------------------------------------------------------ the checks themselves fail


def _notebook(tmp_path, *cells):
    """A notebook of code cells (str) and answer cells (("answer", markdown))."""
    built = []
    for cell in cells:
        if isinstance(cell, tuple):
            built.append(nbformat.v4.new_markdown_cell(cell[1], metadata={"tags": ["answer"]}))
        else:
            built.append(nbformat.v4.new_code_cell(cell))
    nb = nbformat.v4.new_notebook(cells=built)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    return path


def _failure(path, timeout=120) -> str:
    with pytest.raises(NotebookFailure) as info:
        run_notebook(path, timeout=timeout, label=path.name)
    return str(info.value)


@pytest.mark.slow
def test_a_failing_cell_is_named_with_its_error(tmp_path):
    path = _notebook(tmp_path, "x = 1", "import os\nraise ValueError(f'bad {x}')", "y = 2")
    message = _failure(path)
    assert "broken.ipynb, cell 1 (`import os`)" in message
    assert "raised ValueError: bad 1" in message


@pytest.mark.slow
def test_the_time_limit_covers_the_whole_notebook(tmp_path):
    # each cell alone fits in the 8 s budget; the second overruns what the first left. The budget
    # starts when the kernel is ready, so a slow kernel start on a busy machine does not move the
    # failure to cell 0, and 3 s of slack absorb a slow first cell.
    path = _notebook(tmp_path, "import time\ntime.sleep(5)", "time.sleep(5)", "x = 1")
    message = _failure(path, timeout=8)
    assert "cell 1 (`time.sleep(5)`) was still running when the notebook's 8 s limit" in message


@pytest.mark.slow
def test_kernel_start_up_is_not_counted(tmp_path):
    path = _notebook(tmp_path, "x = 1")
    started = time.monotonic()
    run = run_notebook(path, timeout=120)
    total = time.monotonic() - started
    # the budget's clock (wall_s) starts after the kernel start (startup_s), not before it
    assert run.startup_s > 0 and run.wall_s <= total - run.startup_s


@pytest.mark.slow
def test_notebooks_run_at_once_from_threads_each_with_its_own_environment(tmp_path):
    # the site's fixture runs two lectures at once from one process: each kernel must get the
    # settings it was given, and the process's own environment must stay as it was
    path = _notebook(tmp_path, "import os\nprint(os.environ.get('CNNLIB_QUICK'))")
    before = os.environ.get("CNNLIB_QUICK")
    with ThreadPoolExecutor(3) as runners:
        runs = list(runners.map(
            lambda value: run_notebook(path, timeout=120, env={"CNNLIB_QUICK": value}),
            ["a", "b", "c"]))
    printed = [run.notebook.cells[0].outputs[0]["text"].strip() for run in runs]
    assert printed == ["a", "b", "c"]
    assert os.environ.get("CNNLIB_QUICK") == before


@pytest.mark.slow
def test_answer_blocks_run_in_place_and_a_failing_one_fails(tmp_path):
    answer = ("<details><summary>Answer</summary>\n\n```python\ny = x + 1\n```\n\nThen:\n\n"
              "```python\nassert y == 3, f'y is {y}'\n```\n\n</details>")
    path = _notebook(tmp_path, "x = 1", ("answer", answer), "")
    message = _failure(path)
    assert "answer cell 1, block 2 (`assert y == 3, f'y is {y}'`)" in message
    assert "raised AssertionError: y is 2" in message
    # Run All (run_answers=False) never sees the answer
    assert run_notebook(path, timeout=120, run_answers=False).answers_run == 0


@pytest.mark.slow
def test_an_answer_cell_without_code_is_fine(tmp_path):
    prose = "<details><summary>Answer</summary>\n\nIt is 2, because x is 1.\n\n</details>"
    path = _notebook(tmp_path, "x = 1", "", ("answer", prose), "assert x == 1")
    run = run_notebook(path, timeout=120)
    assert run.answers_run == 0


@pytest.mark.slow
def test_answers_see_the_cells_before_them_and_the_cells_after_see_the_answers(tmp_path):
    answer = "<details><summary>Answer</summary>\n\n```python\nz = x * 10\n```\n\n</details>"
    path = _notebook(tmp_path, "x = 4", "", ("answer", answer), "assert z == 40")
    run = run_notebook(path, timeout=120)
    assert run.answers_run == 1
    # the executed notebook keeps the answer as the collapsed markdown cell it was
    assert run.notebook.cells[2].cell_type == "markdown"
    assert run.notebook.cells[2].source == answer


def test_the_convention_checker_catches_each_mistake():
    def md(text, tags=("answer",)):
        return nbformat.v4.new_markdown_cell(text, metadata={"tags": list(tags)})

    good = exercises.answer_source("```python\nx = 1\n```", "prose")
    empty = nbformat.v4.new_code_cell("")
    assert exercises.problems([empty, md(good)]) == []
    assert exercises.answer_blocks(md(good)) == ["x = 1"]
    cases = {
        "must be markdown": [empty, nbformat.v4.new_code_cell("x", metadata={"tags": ["answer"]})],
        "must start with": [empty, md("```python\nx = 1\n```")],
        "empty code cell": [nbformat.v4.new_code_cell("x = 1"), md(good)],
        "runs with Run All": [nbformat.v4.new_code_cell("# Answer 1\nx = 1")],
        "unclosed": [empty, md(good.replace("x = 1\n```", "x = 1"))],
    }
    for expected, cells in cases.items():
        found = exercises.problems(cells)
        assert any(expected in p for p in found), (expected, found)


def test_outputs_and_execution_counts_are_caught():
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("2")]
    )
    assert dirty_cells(nb) == []
    nb.cells[0].execution_count = 3
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="2")]
    assert dirty_cells(nb) == [0, 1]
