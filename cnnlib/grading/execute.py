"""Phase 1c: run the assembled notebook in a bubblewrap sandbox, cells in order as a kernel would
(`nbrunner`), and read back what it printed, checked cell by cell.

The sandbox sees its own copy of the release's files, the student's declared extra files (trained
weights, say), the plan of the hidden tests (inputs and expected outcomes: nothing secret, since
the grader decides on the trusted side) and a read-only Python with the real cnnlib. Everything it
writes back is untrusted: outputs are rebuilt into the trusted notebook from well-formed fields.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from cnnlib.grading import sandbox
from cnnlib.grading.course import Course, Settings
from cnnlib.grading.hidden import PLAN_ENV

__all__ = ["assembled_with_tests", "copy_inputs", "execute", "python_binds"]

MAX_EXECUTED_BYTES = 64 * 1024 * 1024


def python_binds() -> list[tuple[str, str]]:
    return [(p, p) for p in sandbox.python_mounts()]


def copy_inputs(course: Course, extra_files: dict[str, Path], dest: Path) -> None:
    """The release's data files (everything but the notebook), then the student's extra files.

    A file the students hand in (trained weights) never comes from the release folder, even
    where someone ran the release notebook there and left one behind.
    """
    dest.mkdir(parents=True, exist_ok=True)
    for item in course.release_dir.iterdir():
        if item.suffix != ".ipynb" and item.is_file() and item.name not in course.submitted_files:
            shutil.copy(item, dest / item.name)
    for name, path in extra_files.items():
        if not (dest / name).exists():  # a student's file never replaces a release file
            shutil.copy(path, dest / name)


def _clean_output(output):
    """A fresh output holding only the well-formed fields of an untrusted one, or None."""
    import nbformat

    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")
    try:
        if kind == "stream":
            name, text = output.get("name"), output.get("text")
            text = "".join(text) if isinstance(text, list) else text
            if name in ("stdout", "stderr") and isinstance(text, str):
                return nbformat.v4.new_output("stream", name=name, text=text)
        elif kind == "error":
            ename, evalue, tb = output.get("ename"), output.get("evalue"), output.get("traceback")
            if isinstance(ename, str) and isinstance(evalue, str) and isinstance(tb, list):
                return nbformat.v4.new_output(
                    "error", ename=ename, evalue=evalue, traceback=[str(t) for t in tb]
                )
        elif kind in ("display_data", "execute_result"):
            data = output.get("data")
            if isinstance(data, dict):
                data = {
                    str(k): ("".join(v) if isinstance(v, list) else v)
                    for k, v in data.items() if isinstance(v, str | list)
                }  # fmt: skip
                data = {k: v for k, v in data.items() if isinstance(v, str)}
                if kind == "execute_result":
                    return nbformat.v4.new_output(kind, data=data, execution_count=None)
                return nbformat.v4.new_output(kind, data=data)
    except Exception:
        return None
    return None


def _rebuild_outputs(assembled, executed_path: Path, progress: dict, reason: str):
    """The assembled notebook (trusted cells) with the sandbox's outputs, checked cell by cell.

    Grade cells the run never reached get an error output, so nbgrader scores them 0.
    """
    import nbformat

    executed = None
    if executed_path.is_file() and executed_path.stat().st_size <= MAX_EXECUTED_BYTES:
        try:
            executed = nbformat.read(executed_path, as_version=4)
        except Exception:
            executed = None
    completed = progress.get("completed", -1)
    if not isinstance(completed, int):
        completed = -1
    if executed is None or len(executed.cells) != len(assembled.cells):
        completed = -1
    nb = nbformat.from_dict(json.loads(json.dumps(assembled)))
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        if index <= completed:
            ran = executed.cells[index]
            outputs = ran.get("outputs", []) if ran.get("cell_type") == "code" else []
            cleaned = [_clean_output(o) for o in outputs]
            cell.outputs = [o for o in cleaned if o is not None]
            count = ran.get("execution_count")
            cell.execution_count = count if isinstance(count, int) else None
        elif cell.metadata.get("nbgrader", {}).get("grade"):
            cell.outputs = [
                nbformat.v4.new_output(
                    "error", ename="NotExecuted", evalue=reason,
                    traceback=[f"NotExecuted: {reason}"],
                )
            ]
    return nb


def read_json(path: Path, limit: int = 1024 * 1024) -> dict:
    try:
        if path.stat().st_size <= limit:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                return data
    except (OSError, ValueError):
        pass
    return {}


def assembled_with_tests(assembled, course: Course):
    """The assembled notebook with each grade cell's hidden tests put back (from the gradebook)."""
    import nbformat

    nb = nbformat.from_dict(json.loads(json.dumps(assembled)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("grade") and grade_id in course.grade_sources:
            cell.source = course.grade_sources[grade_id]
    return nb


def _state(settings: Settings, result, progress: dict) -> tuple[str, str]:
    status = progress.get("status")
    if status == "running" and isinstance(progress.get("cell"), int) and not result.timed_out:
        status = "kernel_died"  # the process ended inside a cell: the student's code ended it
    if result.timed_out:
        return "wall_budget_exceeded", (
            f"the notebook ran past its time budget ({settings.limits.wall_s:g} s) and was stopped"
        )
    if status == "complete" and result.returncode == 0:
        return "complete", ""
    if status == "output_limit":
        return "output_limit", (
            f"a cell printed more than {4 * settings.max_cell_output} bytes: the kernel was "
            "stopped during this cell"
        )
    if status == "kernel_died":
        return "kernel_died", "the kernel died (it exited or crashed) during this cell"
    signal_name = f", {result.signal_name}" if result.signal_name else ""
    return "runner_failed", f"the notebook run stopped (exit {result.returncode}{signal_name})"


def execute(settings: Settings, course: Course, assembled, work: Path, extra_files: dict):
    """Run the notebook in the sandbox; (the trusted rebuild of it, what happened)."""
    import nbformat

    box = work / "box"
    (box / "out").mkdir(parents=True)
    copy_inputs(course, extra_files, box / "work")
    shutil.copy(course.plan_path, box / "plan.json")
    to_run = assembled_with_tests(assembled, course)
    nbformat.write(to_run, box / "work" / course.notebook_name)
    inside = "/sandbox" if not settings.unsafe else str(box)
    job = {
        "notebook": f"{inside}/work/{course.notebook_name}",
        "cwd": f"{inside}/work",
        "out": f"{inside}/out/executed.ipynb",
        "progress": f"{inside}/out/progress.json",
        "timeout": settings.cell_timeout,
        "max_cell_output": settings.max_cell_output,
    }
    (box / "job.json").write_text(json.dumps(job))
    binds = [*python_binds(), (str(course.package_dir), str(course.package_dir))]
    env = {PLAN_ENV: f"{inside}/plan.json", "PYTHONPATH": str(course.package_dir.parent)}
    result = sandbox.run_sandboxed(
        [sys.executable, "-m", "cnnlib.grading.nbrunner", f"{inside}/job.json"],
        workdir=box, ro_binds=binds, limits=settings.limits, slot=sandbox.current_slot(),
        env=env, log_dir=work / "logs-notebook", unsafe=settings.unsafe,
    )  # fmt: skip
    progress = read_json(box / "out" / "progress.json")
    state, reason = _state(settings, result, progress)
    completed = progress.get("completed")
    if state != "complete" and isinstance(completed, int) and completed + 1 < len(assembled.cells):
        stopped = assembled.cells[completed + 1]
        name = stopped.metadata.get("nbgrader", {}).get("grade_id") or "a cell of yours"
        reason += f" (cell {completed + 1}: {name}; the cells after it were not run)"
    nb = _rebuild_outputs(to_run, box / "out" / "executed.ipynb", progress,
                          reason or "not executed")  # fmt: skip
    info = {
        "state": state,
        "reason": reason,
        "wall_s": round(result.wall_s, 3),
        "completed_cell": completed,
        "stderr_tail": result.stderr_tail[-1500:],
        # as the sandbox reports it: for the report's timing table only
        "cpu_s": progress.get("cpu_s") if isinstance(progress.get("cpu_s"), int | float) else None,
    }
    return nb, info
