"""Run a notebook headless, top to bottom, with its exercise answers executed in place.

Used by the tests (every lecture and solution notebook), by the course site (`make html`) and by
the run-time table (`make timings`), so all three execute the same way. Needs the course extras
(nbclient, nbformat, psutil), which `make env` installs.

The time limit covers the whole notebook but starts once the kernel is ready: a slow kernel
start on a busy machine does not eat the budget of the first cell. Wall time and the kernel's CPU
time are both measured; the CPU time barely changes when other programs share the cores.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from .exercises import answer_blocks, is_answer_cell

__all__ = ["NotebookFailure", "RunResult", "run_notebook"]


class NotebookFailure(Exception):
    """A notebook did not run through: `where` names the notebook and the cell."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where} {message}")
        self.where = where


@dataclass
class RunResult:
    notebook: object  # the executed nbformat notebook (answer cells stay markdown)
    wall_s: float  # from kernel ready to the last cell done
    cpu_s: float  # the kernel's CPU time (user + system, children included) over the same span
    startup_s: float  # starting the kernel, not counted in the limit
    answers_run: int = 0  # fenced python blocks of answer cells executed
    cell_wall_s: list[float] = field(default_factory=list)


def _first_line(source: str) -> str:
    return next((line for line in source.splitlines() if line.strip()), "")


def _kernel_cpu_seconds(client) -> float:
    """CPU seconds used so far by the kernel process and its children (0.0 if unknown)."""
    try:
        import psutil

        pid = client.km.provisioner.pid
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    except Exception:  # a remote or exotic provisioner: no CPU figure rather than no run
        return 0.0


def run_notebook(path, timeout: float, run_answers: bool = True, env: dict | None = None,
                 label: str | None = None) -> RunResult:
    """Execute `path` in a fresh kernel started in its folder; raise NotebookFailure on error.

    timeout: seconds for the whole notebook, counted from the moment the kernel is ready; each
        cell may use what the cells before it left.
    run_answers: also execute the fenced python blocks of every `answer` cell, at its place.
    env: extra environment variables for the kernel (e.g. {"CNNLIB_QUICK": "1"}).
    label: how failures name the notebook (default: the path as given).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    path = Path(path)
    name = label or str(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    # the kernel's own environment: os.environ is left alone, so that several notebooks can
    # run at once from threads of one process, each with its own settings
    kernel_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    with client.setup_kernel(env=kernel_env):
        ready = time.monotonic()
        cpu_before = _kernel_cpu_seconds(client)
        deadline = ready + timeout
        answers_run, cell_times = 0, []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                runs = [(cell, f"cell {index} (`{_first_line(cell.source)[:60]}`)")]
            elif run_answers and is_answer_cell(cell):
                runs = [
                    (nbformat.v4.new_code_cell(block),
                     f"answer cell {index}, block {k + 1} (`{_first_line(block)[:60]}`)")
                    for k, block in enumerate(answer_blocks(cell))
                ]
                answers_run += len(runs)
            else:
                continue
            for code_cell, where in runs:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NotebookFailure(f"{name}, {where}", "was not reached before the "
                                          f"notebook's {timeout:.0f} s limit ran out")
                client.timeout = max(1, int(left))
                cell_start = time.monotonic()
                try:
                    client.execute_cell(code_cell, index)
                except CellExecutionError as error:
                    raise NotebookFailure(f"{name}, {where}",
                                          f"raised {error.ename}: {error.evalue}") from None
                except CellTimeoutError:
                    raise NotebookFailure(f"{name}, {where}", "was still running when the "
                                          f"notebook's {timeout:.0f} s limit ran out") from None
                except DeadKernelError:
                    raise NotebookFailure(f"{name}, {where}", "killed the kernel") from None
                cell_times.append(time.monotonic() - cell_start)
            # nbclient stores what it executed at `index`: an answer stays the markdown cell
            nb.cells[index] = cell
        wall = time.monotonic() - ready
        cpu = _kernel_cpu_seconds(client) - cpu_before
    return RunResult(nb, wall, cpu, ready - started, answers_run, cell_times)
