"""Pre-flight: before anyone is graded, the grader grades the untouched release once.

A broken environment (the sandbox's Python cannot import cnnlib or numpy, the memory limit is too
low for Python to start, bubblewrap cannot make a sandbox on this machine, the notebook does not
run) would otherwise give every student a zero. So the canary runs exactly what a submission
runs, in the same sandboxes with the same limits: the release notebook, then the trusted checks on
it. The release must run to the end, and every check must come back with a verdict (the release's
answers raise NotImplementedError, which is a verdict). If not, the run stops before any grade is
written, with the cause and the fix.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

from cnnlib.grading import sandbox, tamper
from cnnlib.grading.course import Course, Settings
from cnnlib.grading.execute import execute, python_binds
from cnnlib.grading.trusted import run_trusted

__all__ = ["CanaryFailed", "run_canary"]

_ENV_SCRIPT = """
import json, platform, sys
import numpy, nbformat, cnnlib
info = {"python": platform.python_version(), "cnnlib": cnnlib.__version__,
        "cnnlib from": cnnlib.__file__.rsplit("/", 2)[0], "numpy": numpy.__version__,
        "nbformat": nbformat.__version__}
try:
    import torch
    info["torch"] = torch.__version__
except ImportError:
    info["torch"] = "not installed"
print(json.dumps(info))
"""


class CanaryFailed(RuntimeError):
    """The environment cannot grade anyone; the message says why and what to do."""


def _diagnose(text: str, settings: Settings) -> str:
    """The cause and the fix, read from what the canary's processes printed."""
    missing = re.search(r"No module named '([\w.]+)'", text)
    if missing and missing.group(1).split(".")[0] == "cnnlib":
        return (
            "the sandbox's Python cannot import cnnlib. The grader gives the sandbox only the "
            f"Python installation it runs from ({sys.prefix}) and the cnnlib folder it imported: "
            "install the course into that environment (`make env` in the course, or `pip install "
            "-e .` with that Python) rather than relying on PYTHONPATH or another interpreter"
        )
    if missing:
        return (
            f"the sandbox's Python cannot import {missing.group(1)}: install the course's "
            "environment (`make env`) and run the grader with its Python (.venv/bin/python)"
        )
    if re.search(r"MemoryError|Cannot allocate memory|bad_alloc|failed to map segment|"
                 r"out of memory", text):  # fmt: skip
        return (
            f"Python ran out of memory in the sandbox under --memory-mb {settings.limits.memory_mb}"
            " (the address-space limit per process): raise --memory-mb (3072 is the default; "
            "PyTorch alone needs over 1500)"
        )
    bwrap = re.search(r"^bwrap: (.*)$", text, flags=re.M)
    if bwrap:
        return (
            f"bubblewrap could not create the sandbox ({bwrap.group(1)}): on this machine "
            "unprivileged user namespaces may be off (sysctl kernel.unprivileged_userns_clone=1), "
            "or a container forbids them; run the grader as root or on a machine that allows them"
        )
    return "the release notebook did not run in the sandbox (see the output above)"


def _environment(settings: Settings, course: Course, work: Path) -> dict:
    box = work / "env"
    box.mkdir(parents=True)
    env = {"PYTHONPATH": str(course.package_dir.parent)}
    binds = [*python_binds(), (str(course.package_dir), str(course.package_dir))]
    result = sandbox.run_sandboxed(
        [sys.executable, "-c", _ENV_SCRIPT], workdir=box, ro_binds=binds, limits=settings.limits,
        slot=sandbox.current_slot(), env=env, log_dir=work / "logs-env", unsafe=settings.unsafe,
    )  # fmt: skip
    try:
        info = json.loads(result.stdout_tail.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CanaryFailed(
            "pre-flight: the sandboxed Python could not start or import the course: "
            + _diagnose(result.stderr_tail + result.stdout_tail, settings)
            + f"\n--- what it printed ---\n{result.stderr_tail[-1500:]}"
        ) from None
    info["sandbox"] = "none (--unsafe-no-sandbox)" if settings.unsafe else "bubblewrap"
    return info


def run_canary(settings: Settings, course: Course) -> dict:
    """Grade the untouched release once; the environment it saw. Raises CanaryFailed."""
    work = settings.out / "canary"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    info = _environment(settings, course, work)
    assembled, _ = tamper.assemble(course.release_nb, list(course.release_nb["cells"]))
    _, run = execute(settings, course, assembled, work, {})
    if run["state"] != "complete":
        raise CanaryFailed(
            f"pre-flight: the untouched release did not run to the end in the sandbox "
            f"({run['state']}: {run['reason']}): " + _diagnose(run["stderr_tail"], settings)
            + f"\n--- what it printed ---\n{run['stderr_tail'][-1500:]}"
        )
    verdicts, trusted = run_trusted(settings, course, assembled, work, {})
    reasons = {g: str(v.get("reason") or "") for g, v in verdicts.items()}
    unchecked = [g for g, r in reasons.items()
                 if r.startswith("not checked") or "no result came back" in r]  # fmt: skip
    if trusted.get("stopped") or unchecked:
        raise CanaryFailed(
            "pre-flight: the trusted checks could not run on the untouched release "
            f"({trusted.get('stopped') or 'cells ' + ', '.join(unchecked)}): "
            + _diagnose(trusted["stderr_tail"], settings)
            + f"\n--- what it printed ---\n{trusted['stderr_tail'][-1500:]}"
        )
    info["canary"] = (
        f"the release ran in {run['wall_s']:.1f} s and its checks in {trusted['wall_s']:.1f} s"
    )
    return info
