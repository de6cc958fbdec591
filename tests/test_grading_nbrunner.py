"""The sandbox's notebook runner (`cnnlib.grading.nbrunner`), run here without a sandbox: it runs
cells as a Jupyter kernel would (outputs, figures, errors, magics; keep going after an error) in
one process, and leaves behind what the grader needs when the student's code ends that process.
The hostile corpus (test_autograde.py) runs the same runner inside bubblewrap."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest


def run_cells(tmp_path: Path, sources: list[str], timeout: int = 60, cap: int = 10_000):
    """(executed notebook or None, progress, return code, wall seconds)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    job = {"notebook": str(tmp_path / "nb.ipynb"), "cwd": str(tmp_path),
           "out": str(tmp_path / "executed.ipynb"), "progress": str(tmp_path / "progress.json"),
           "timeout": timeout, "max_cell_output": cap}  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(job))
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "cnnlib.grading.nbrunner",
                             str(tmp_path / "job.json")], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)  # fmt: skip
    wall = time.monotonic() - start
    out = tmp_path / "executed.ipynb"
    executed = nbformat.read(out, as_version=4) if out.exists() else None
    return executed, json.loads((tmp_path / "progress.json").read_text()), result, wall


def kinds(cell) -> list[tuple]:
    summary = []
    for o in cell.outputs:
        if o.output_type == "stream":
            summary.append(("stream", o.name, o.text))
        elif o.output_type == "error":
            summary.append(("error", o.ename))
        else:
            summary.append((o.output_type, tuple(sorted(o.data))))
    return summary


def test_cells_run_as_in_a_kernel(tmp_path):
    executed, progress, result, _ = run_cells(tmp_path, [
        "import sys\nprint('one'); print('two', file=sys.stderr); print('three')",
        "x = 20\nx + 22",
        "from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))\n'last'",
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2]);",
        "raise ValueError('boom')",
        "print('still running after an error'); x",
        "%time y = sum(range(10))",
        "import sys; sys.exit(3)",
        "input('name? ')",
        "get_ipython() is not None",
    ], cap=1_000_000)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert progress["status"] == "complete" and progress["completed"] == 9
    cells = executed.cells
    # stdout and stderr in the order they were written
    assert kinds(cells[0]) == [("stream", "stdout", "one\n"), ("stream", "stderr", "two\n"),
                               ("stream", "stdout", "three\n")]  # fmt: skip
    assert kinds(cells[1]) == [("execute_result", ("text/plain",))]
    assert cells[1].outputs[0].data["text/plain"] == "42"
    assert kinds(cells[2]) == [("display_data", ("text/html", "text/plain")),
                               ("execute_result", ("text/plain",))]  # fmt: skip
    assert kinds(cells[3]) == [("display_data", ("image/png", "text/plain"))]  # inline figure
    assert kinds(cells[4]) == [("error", "ValueError")]
    assert cells[4].outputs[0].evalue == "boom"
    assert kinds(cells[5])[0] == ("stream", "stdout", "still running after an error\n")
    assert "Wall time" in cells[6].outputs[0].text
    assert kinds(cells[7])[0] == ("error", "SystemExit")  # as in a kernel: the run goes on
    assert kinds(cells[8]) == [("error", "StdinNotImplementedError")]
    assert cells[9].outputs[0].data["text/plain"] == "True"
    assert [c.execution_count for c in cells] == list(range(1, 11))
    nbformat.validate(executed)


def test_a_cell_past_its_time_limit_is_interrupted_and_the_run_goes_on(tmp_path):
    executed, progress, result, wall = run_cells(tmp_path, [
        "import time\ntime.sleep(120)",
        # catches the first interrupt: interrupted again a few seconds later
        "try:\n    time.sleep(120)\nexcept KeyboardInterrupt:\n    time.sleep(120)",
        "print('after')",
    ], timeout=2)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert progress["status"] == "complete"
    assert kinds(executed.cells[0]) == [("error", "KeyboardInterrupt")]
    assert kinds(executed.cells[1]) == [("error", "KeyboardInterrupt")]
    assert kinds(executed.cells[2]) == [("stream", "stdout", "after\n")]
    assert wall < 100, wall  # 2 + 2 + 5 s of limits, not 240 s of sleeping


@pytest.mark.parametrize("ending", ["import os\nos._exit(1)", "import ctypes\nctypes.string_at(0)"])
def test_a_notebook_that_ends_its_process_leaves_the_cells_before_and_names_the_cell(
    tmp_path, ending
):
    executed, progress, result, _ = run_cells(tmp_path, ["print('kept')", "1 + 1", ending,
                                                          "print('never')"])  # fmt: skip
    assert result.returncode != 0
    # the grader reads this as "the kernel died in cell 2" (execute._state)
    assert progress["status"] == "running" and progress["cell"] == 2
    assert progress["completed"] == 1
    assert kinds(executed.cells[0]) == [("stream", "stdout", "kept\n")]
    assert executed.cells[3].outputs == []


def test_the_state_the_grader_reads_from_a_dead_run():
    from types import SimpleNamespace

    from cnnlib.grading.execute import _state

    settings = SimpleNamespace(limits=SimpleNamespace(wall_s=40), max_cell_output=10)
    died = SimpleNamespace(timed_out=False, returncode=1, signal_name="")
    killed = SimpleNamespace(timed_out=True, returncode=-9, signal_name="SIGKILL")
    in_cell = {"status": "running", "cell": 4, "completed": 3}
    between = {"status": "running", "cell": None, "completed": 4}
    assert _state(settings, died, in_cell)[0] == "kernel_died"
    assert _state(settings, killed, in_cell)[0] == "wall_budget_exceeded"
    assert _state(settings, died, between)[0] == "runner_failed"
    assert _state(settings, died, {"status": "output_limit"})[0] == "output_limit"


def test_a_flood_stops_the_run_and_a_chatty_cell_is_truncated(tmp_path):
    executed, progress, result, _ = run_cells(tmp_path, [
        "print('x' * 15_000)",  # over the cap (10 kB), under the hard cap: truncated
        "for _ in range(1000):\n    print('y' * 10_000)",  # over 4x the cap: the run stops
        "print('never')",
    ])  # fmt: skip
    assert result.returncode == 3
    assert progress["status"] == "output_limit" and progress["completed"] == 0
    assert "[output truncated by the grader" in executed.cells[0].outputs[-1].text
    assert sum(len(o.get("text", "")) for o in executed.cells[0].outputs) < 10_000 + 200


def test_only_the_runner_writes_what_the_grader_reads_after_a_fork(tmp_path):
    executed, progress, result, _ = run_cells(tmp_path, [
        "import os\nchildren = [os.fork() for _ in range(3)]",
        "print(os.getpid())",
    ])  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert progress["status"] == "complete"
    printed = "".join(o.get("text", "") for o in executed.cells[1].outputs)
    assert len(printed.split()) == 1, printed  # the runner's own cell, not the children's


def test_exit_in_a_cell_ends_the_run_as_a_kernel_shutdown(tmp_path):
    executed, progress, result, _ = run_cells(tmp_path, ["print('a')", "exit()", "print('b')"])
    assert result.returncode == 3
    assert progress["status"] == "kernel_died" and progress["completed"] == 1
    assert executed.cells[2].outputs == []
