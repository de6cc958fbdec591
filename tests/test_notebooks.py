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
    return f"{path.relative_to(ROOT)}, cell {index} (`{first_line[:60]}`)"


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
    dirty = [
        i
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not dirty, (
        f"{path.relative_to(ROOT)}: cells {dirty} carry outputs or execution counts; "
        "clear them before committing (Edit > Clear Outputs of All Cells, then save)"
    )
