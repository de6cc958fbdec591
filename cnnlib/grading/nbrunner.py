"""Execute a notebook inside the sandbox: `python -m cnnlib.grading.nbrunner JOB.json`.

Runs with nbclient as nbgrader would (per-cell timeout, keep going after errors), with three
differences that keep a hostile notebook's damage local:

- the notebook is written back after every cell, with a progress file, so a kernel that dies or a
  run killed for its wall budget keeps every cell that finished before;
- each cell's output is capped in bytes; past a hard cap the kernel is interrupted (a cell that
  prints gigabytes fails like one that raised);
- a dead kernel ends the run (its later cells are "not executed"), it is not restarted.

Nothing here is trusted by the grader: the notebook and progress file it writes are untrusted
input, read back with size caps, and scores only count where the trusted checks agree.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

__all__ = ["main"]

TRUNCATED = "\n[output truncated by the grader: this cell printed more than {} bytes]\n"


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


def _output_size(content: dict) -> int:
    size = len(str(content.get("text", "")))
    for value in (content.get("data") or {}).values():
        size += len(value) if isinstance(value, str) else len(json.dumps(value))
    size += sum(len(line) for line in content.get("traceback", []) or [])
    return size


def main(argv: list[str] | None = None) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        job = json.load(f)
    nb = nbformat.read(job["notebook"], as_version=4)
    out_path, progress_path = job["out"], job["progress"]
    cap, hard_cap = int(job["max_cell_output"]), 4 * int(job["max_cell_output"])

    class CappedClient(NotebookClient):
        cell_bytes: dict[int, int] = {}  # noqa: RUF012 (one instance)
        interrupted: set[int] = set()  # noqa: RUF012
        stopping = None

        def output(self, outs, msg, display_id, cell_index):
            used = self.cell_bytes.get(cell_index, 0)
            if msg["msg_type"] == "error":
                # An error always counts (it fails a grade cell), shortened if need be.
                content = msg.get("content", {})
                traceback = list(content.get("traceback", []))[-20:]
                content["traceback"] = [str(line)[:2000] for line in traceback]
                content["evalue"] = str(content.get("evalue", ""))[:2000]
                return super().output(outs, msg, display_id, cell_index)
            size = _output_size(msg.get("content", {}))
            self.cell_bytes[cell_index] = used + size
            if used + size <= cap:
                return super().output(outs, msg, display_id, cell_index)
            if used <= cap:
                outs.append(
                    nbformat.v4.new_output("stream", name="stderr", text=TRUNCATED.format(cap))
                )
            if used + size > hard_cap and cell_index not in self.interrupted:
                # Interrupting is not enough: what the kernel already queued would still have to
                # be read. Stop the kernel; this cell and the ones after it are lost.
                self.interrupted.add(cell_index)
                self.stopping = asyncio.ensure_future(self.km.shutdown_kernel(now=True))
            return None

    client = CappedClient(
        nb,
        timeout=int(job["timeout"]),
        interrupt_on_timeout=True,
        allow_errors=True,
        kernel_name="python3",
        resources={"metadata": {"path": job["cwd"]}},
    )
    progress = {"completed": -1, "status": "running", "cells": len(nb.cells)}
    _atomic_write(progress_path, json.dumps(progress))

    def checkpoint(index: int, status: str = "running") -> None:
        progress.update(completed=index, status=status)
        _atomic_write(out_path, nbformat.writes(nb))
        _atomic_write(progress_path, json.dumps(progress))

    try:
        with client.setup_kernel(cwd=job["cwd"]):
            for index, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    flooded = index in client.interrupted
                    checkpoint(index - 1, "output_limit" if flooded else "kernel_died")
                    return 3
                checkpoint(index)
    except DeadKernelError:
        checkpoint(progress["completed"], "kernel_died")
        return 3
    progress["cpu_s"] = _cpu_seconds()  # the kernel has exited: its time is in here too
    checkpoint(len(nb.cells) - 1, "complete")
    return 0


if __name__ == "__main__":
    sys.exit(main())
