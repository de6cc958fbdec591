"""Notebooks are tested artefacts: each runs headless top to bottom, and is committed clean.

Every notebook under lectures/ and solutions/ runs in a fresh kernel with CNNLIB_QUICK=1 (small
data, few epochs) under a per-notebook time limit (CNNLIB_NOTEBOOK_TIMEOUT seconds, default 120).
A failure names the notebook, the cell and the error.
"""

from __future__ import annotations

import os
import time

import nbformat
import pytest
from course import ROOT, course_notebooks
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

NOTEBOOK_TIMEOUT = int(os.environ.get("CNNLIB_NOTEBOOK_TIMEOUT", "120"))
EXECUTED = course_notebooks("lectures", "solutions")
COMMITTED = course_notebooks("lectures", "solutions", "assignments")


def _ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def _where(path, index, cell) -> str:
    first_line = next((line for line in cell.source.splitlines() if line.strip()), "")
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    return f"{shown}, cell {index} (`{first_line[:60]}`)"


def dirty_cells(nb) -> list[int]:
    """Indices of code cells that carry outputs or an execution count."""
    return [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]


def run_notebook(path, timeout: float) -> None:
    """Execute `path` cell by cell in a fresh kernel started in its folder, within `timeout` s.

    The budget is for the whole notebook: each cell may use what the cells before it left.
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    deadline = time.monotonic() + timeout
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            client.timeout = max(1, int(deadline - time.monotonic()))
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as error:
                pytest.fail(
                    f"{_where(path, index, cell)} raised {error.ename}: {error.evalue}",
                    pytrace=False,
                )
            except CellTimeoutError:
                pytest.fail(
                    f"{_where(path, index, cell)} was still running when the notebook's "
                    f"{timeout:.0f} s limit ran out",
                    pytrace=False,
                )
            except DeadKernelError:
                pytest.fail(f"{_where(path, index, cell)}: the kernel died", pytrace=False)


@pytest.mark.notebook
@pytest.mark.slow
@pytest.mark.parametrize("path", EXECUTED, ids=_ids(EXECUTED))
def test_notebook_runs_headless(path, monkeypatch):
    monkeypatch.setenv("CNNLIB_QUICK", "1")  # the kernel inherits the environment
    run_notebook(path, NOTEBOOK_TIMEOUT)


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


# ------------------------------------------------------------------ the checks themselves fail


def _notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_a_failing_cell_is_named_with_its_error(tmp_path):
    path = _notebook(tmp_path, "x = 1", "import os\nraise ValueError(f'bad {x}')", "y = 2")
    with pytest.raises(pytest.fail.Exception) as info:
        run_notebook(path, timeout=60)
    message = str(info.value)
    assert "broken.ipynb, cell 1 (`import os`)" in message
    assert "raised ValueError: bad 1" in message


@pytest.mark.slow
def test_the_time_limit_covers_the_whole_notebook(tmp_path):
    # each cell alone fits in the 5 s budget; the second one overruns what the first left
    path = _notebook(tmp_path, "import time\ntime.sleep(3)", "time.sleep(3)", "x = 1")
    with pytest.raises(pytest.fail.Exception, match=r"cell 1 .* 5 s limit ran out"):
        run_notebook(path, timeout=5)


def test_outputs_and_execution_counts_are_caught():
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1"), nbformat.v4.new_code_cell("2")]
    )
    assert dirty_cells(nb) == []
    nb.cells[0].execution_count = 3
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="2")]
    assert dirty_cells(nb) == [0, 1]
