"""Execute a notebook inside the sandbox: `python -m cnnlib.grading.nbrunner JOB.json`.

The cells run in order in an IPython shell inside this process, as a Jupyter kernel would run
them: IPython syntax and magics, `get_ipython()`, display outputs and inline figures, an exception
becomes the cell's error output and the run goes on (nbgrader scores a grade cell by its error
output). No kernel is started: a kernel's start-up, messaging and shutdown cost about 1.5 s a
notebook, most of a short notebook's run, and the sandbox already isolates the student's code
from the grader. Safety comes from the sandbox; this file only keeps a hostile notebook's damage
local:

- the notebook is written back after every cell, and a progress file says which cell is running,
  so a notebook that kills its process (os._exit, a segfault) or runs past its wall budget keeps
  every cell that finished before, and the grader can tell "died in cell i" from a runner fault;
- each cell's output is capped in bytes; past a hard cap the run stops (a cell that prints
  gigabytes fails like one that raised, and the cells after it are lost);
- a cell running past its time limit is interrupted (KeyboardInterrupt, as a kernel interrupt).

Nothing here is trusted by the grader: the notebook and progress file it writes are untrusted
input (the student's code shares this process), read back with size caps, and scores only count
where the trusted checks agree.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import signal
import sys
import threading

__all__ = ["main"]

TRUNCATED = "\n[output truncated by the grader: this cell printed more than {} bytes]\n"
# after a cell's first interrupt, how often to interrupt it again if it caught the first one
REINTERRUPT_S = 5.0


def _atomic_write(path: str | os.PathLike, text: str) -> None:
    # also the grader's own (autograde): a reader never sees a half-written file
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (for the report's timing only)."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return round(total, 3)


def _output_size(output: dict) -> int:
    size = len(str(output.get("text", "")))
    for value in (output.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    size += sum(len(line) for line in output.get("traceback", []) or [])
    return size


class _Run:
    """The notebook, where the run is, and the outputs of the cell now running."""

    def __init__(self, nb, job: dict):
        self.nb, self.out_path, self.progress_path = nb, job["out"], job["progress"]
        self.cap, self.hard_cap = int(job["max_cell_output"]), 4 * int(job["max_cell_output"])
        self.progress = {"completed": -1, "status": "running", "cells": len(nb.cells),
                         "cell": None}  # fmt: skip
        self.outputs: list | None = None  # the running cell's outputs
        self.used = 0  # bytes the running cell has printed
        self.pid = os.getpid()

    def checkpoint(self, completed: int, status: str = "running", cell: int | None = None):
        import nbformat

        self.progress.update(completed=completed, status=status, cell=cell)
        if os.getpid() != self.pid:
            return  # a process the student's code forked: only the runner's own writes count
        if cell is None:
            _atomic_write(self.out_path, nbformat.writes(self.nb))
        _atomic_write(self.progress_path, json.dumps(self.progress))

    def add(self, output) -> None:
        """Append an output to the running cell, within its byte caps (errors always count)."""
        if self.outputs is None:
            return  # printed between cells (a thread the student started): nowhere to go
        if output.get("output_type") == "error":
            self.outputs.append(output)
            return
        size = _output_size(output)
        used, self.used = self.used, self.used + size
        if used + size <= self.cap:
            if output.get("output_type") == "stream" and self.outputs \
                    and self.outputs[-1].get("output_type") == "stream" \
                    and self.outputs[-1].get("name") == output["name"]:  # fmt: skip
                self.outputs[-1]["text"] += output["text"]  # one output per run of writes
            else:
                self.outputs.append(output)
            return
        import nbformat

        if used <= self.cap:
            self.outputs.append(
                nbformat.v4.new_output("stream", name="stderr", text=TRUNCATED.format(self.cap))
            )
        if used + size > self.hard_cap:
            # As a kernel stopped for flooding: this cell and the ones after it are lost.
            self.checkpoint(self.progress["completed"], "output_limit")
            os._exit(3)


class _Stream(io.TextIOBase):
    """sys.stdout / sys.stderr while a cell runs: writes become the cell's stream outputs."""

    def __init__(self, run: _Run, name: str):
        self.run, self.name = run, name

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        import nbformat

        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self.run.add(nbformat.v4.new_output("stream", name=self.name, text=text))
        return len(text)

    @property
    def encoding(self) -> str:
        return "utf-8"


def _shell(run: _Run):
    """An IPython shell whose displays, results and tracebacks become the cell's outputs."""
    import nbformat
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False,
                    **kwargs):  # fmt: skip
            if not update:  # an update of an earlier display: keep the first, as saved files do
                run.add(nbformat.v4.new_output("display_data", data=data,
                                               metadata=metadata or {}))  # fmt: skip

        def clear_output(self, wait=False):
            if run.outputs is not None:
                run.outputs.clear()

    class Hook(DisplayHook):
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            run.add(nbformat.v4.new_output("execute_result", data=format_dict,
                                           metadata=md_dict or {},
                                           execution_count=self.shell.execution_count))  # fmt: skip

        def finish_displayhook(self):
            self._is_active = False

    class Shell(InteractiveShell):
        displayhook_class = Hook
        display_pub_class = Publisher
        system = InteractiveShell.system_piped  # `!cmd` prints into the cell, as in a kernel

        def ask_exit(self):  # exit() / quit(): a kernel shuts down after the cell
            self.exit_now = True

        def enable_gui(self, gui=None):  # `%matplotlib inline` and friends: no window to run
            pass

        def _showtraceback(self, etype, evalue, stb):
            run.add(nbformat.v4.new_output(
                "error", ename=getattr(etype, "__name__", str(etype)), evalue=str(evalue)[:2000],
                traceback=[str(line)[:2000] for line in list(stb)[-20:]],
            ))  # fmt: skip

    config = Config()
    config.HistoryManager.enabled = False  # no sqlite file in the sandbox's home
    return Shell.instance(config=config, colors="nocolor")


class _Timer:
    """Interrupts the running cell (SIGINT -> KeyboardInterrupt) past its time limit."""

    def __init__(self, timeout: float):
        self.timeout, self.cell, self.lock = timeout, None, threading.Lock()
        self.wake = threading.Condition(self.lock)
        signal.signal(signal.SIGINT, self._on_sigint)
        threading.Thread(target=self._watch, daemon=True).start()

    def _on_sigint(self, signum, frame):
        if self.cell is not None:  # between cells an interrupt has nothing to stop
            raise KeyboardInterrupt

    def start(self, index: int) -> None:
        with self.lock:
            self.cell = index
            self.wake.notify()

    def stop(self) -> None:
        with self.lock:
            self.cell = None
            self.wake.notify()

    def _watch(self) -> None:
        with self.lock:
            while True:
                while self.cell is None:
                    self.wake.wait()
                index, wait = self.cell, self.timeout
                while self.cell == index:
                    if not self.wake.wait(wait) and self.cell == index:
                        os.kill(os.getpid(), signal.SIGINT)
                        wait = REINTERRUPT_S


def _no_input(prompt=""):
    from IPython.core.error import StdinNotImplementedError

    raise StdinNotImplementedError("input() was called, but a graded notebook cannot ask for input")


def main(argv: list[str] | None = None) -> int:
    import nbformat

    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        job = json.load(f)
    nb = nbformat.read(job["notebook"], as_version=4)
    os.chdir(job["cwd"])
    # what a kernel sets: inline figures, and no input() to wait on
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    sys.stdin = io.StringIO("")
    builtins.input = _no_input
    run = _Run(nb, job)
    run.checkpoint(-1)
    shell = _shell(run)
    timer = _Timer(float(job["timeout"]))
    real_stdout, real_stderr = sys.stdout, sys.stderr
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs = run.outputs = []
        run.used = 0
        run.checkpoint(index - 1, cell=index)  # a death from here on is this cell's
        cell.execution_count = shell.execution_count
        sys.stdout, sys.stderr = _Stream(run, "stdout"), _Stream(run, "stderr")
        timer.start(index)
        try:
            shell.run_cell(cell.source, store_history=True)
        except KeyboardInterrupt:  # the interrupt landed after IPython's own handler
            pass
        finally:
            timer.stop()
            sys.stdout, sys.stderr = real_stdout, real_stderr
        if os.getpid() != run.pid:
            os._exit(0)  # a forked copy of this runner: the cell was its work, the rest is not
        run.outputs = None
        run.checkpoint(index)
        if shell.exit_now:  # exit() in a cell: a kernel would have shut down
            run.checkpoint(index, "kernel_died")
            return 3
    run.progress["cpu_s"] = _cpu_seconds()
    run.checkpoint(len(nb.cells) - 1, "complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
