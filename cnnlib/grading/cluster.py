"""Phase 1 on a Dask cluster: `python -m cnnlib grade ... --scheduler tcp://HOST:8786`.

Each submission's phase 1 (validate, the sandboxed notebook run, the trusted checks) is already a
job of its own; here it becomes a task on a Dask distributed cluster instead of a local process.
Everything a task needs travels with it, as plain data: the course bundle (the release's files,
the plan of the checks, the checks file's source, the hidden tests, the solution's answer cells for
plug-ins, the limits) is sent to every worker once, and each task carries one submission's files.
A task returns plain data too: the status record and the notebooks, which the instructor's machine
writes into <out>/work/<student>/ (status last), so phase 2 (gradebook, feedback, exports,
report) runs there as always, with its single writer.

Before any task, the canary of `preflight` runs on every worker: bubblewrap present, the course
library importable and the same version (the same source, byte for byte) as the instructor's, the
untouched release graded once. A worker that fails it gets no task, and the run says which and why.

Faults: Dask reruns the tasks of a worker that dies; a submission that kills its own sandbox is an
ordinary grade (the sandbox dies, not the worker); a task that keeps killing workers ends as that
student's grader_error, never a loop. Results already on the instructor's machine are reused, so
an interrupted run resumes, and a student is written into the gradebook once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import cnnlib
from cnnlib.grading import sandbox
from cnnlib.grading.course import (
    Course,
    Settings,
    hash_tree,
    neutered_cnnlib,
    trusted_plan_path,
)
from cnnlib.grading.execute import read_json
from cnnlib.grading.nbrunner import _atomic_write

__all__ = ["course_bundle", "grade_task", "run_on_cluster", "worker_canary"]

RESULT_FILES = ("executed.ipynb", "submitted.ipynb")


def _library_fingerprint(package_dir: Path) -> str:
    return f"{cnnlib.__version__}:{hash_tree(package_dir)[:16]}"


def course_bundle(settings: Settings, course: Course) -> dict:
    """What a worker needs to grade any submission of this run, as plain data."""
    release_files = {
        p.name: p.read_bytes() for p in course.release_dir.iterdir()
        if p.is_file() and p.suffix != ".ipynb"
    }  # fmt: skip
    return {
        "assignment_id": settings.assignment_id,
        "settings": {
            "workers": 1, "limits": dataclasses.asdict(settings.limits),
            "trusted_limits": dataclasses.asdict(settings.trusted_limits),
            "cell_timeout": settings.cell_timeout, "max_cell_output": settings.max_cell_output,
            "unsafe": settings.unsafe,
        },
        "release_nb": course.release_nb,
        "release_files": release_files,
        "notebook_name": course.notebook_name,
        "grade_sources": course.grade_sources,
        "checks_source": course.checks_path.read_text(),
        "plan": course.plan_path.read_text(),
        "trusted_plan": trusted_plan_path(course.plan_path).read_text(),
        "solution_cells": course.solution_cells,
        "submitted_files": list(course.submitted_files),
        "blocked": _blocked(course),
        "fingerprint": course.fingerprint,
        "release_hash": course.release_hash,
        "library": _library_fingerprint(course.package_dir),
    }  # fmt: skip


def _blocked(course: Course) -> list[str]:
    from cnnlib.grading.authoring import load_checks

    return list(load_checks(course.checks_path).blocked)


_materialised: dict[str, tuple[Settings, Course]] = {}


def _materialise(bundle: dict) -> tuple[Settings, Course]:
    """(Settings, Course) on this worker, built once per process from the bundle."""
    key = bundle["release_hash"]
    if key in _materialised:
        return _materialised[key]
    root = Path(tempfile.mkdtemp(prefix=f"cnnlib-grade-{key[:12]}-"))
    release = root / "release"
    release.mkdir()
    for name, data in bundle["release_files"].items():
        (release / Path(name).name).write_bytes(data)
    checks = root / bundle["assignment_id"] / "checks.py"
    checks.parent.mkdir()
    checks.write_text(bundle["checks_source"])
    (root / "plan.json").write_text(bundle["plan"])
    trusted_plan_path(root / "plan.json").write_text(bundle["trusted_plan"])
    package_dir = Path(cnnlib.__file__).resolve().parent
    neutered = neutered_cnnlib(package_dir, root / "trusted-cnnlib", tuple(bundle["blocked"]))
    s = bundle["settings"]
    settings = Settings(
        assignment_id=bundle["assignment_id"], course=root, out=root / "out", workers=1,
        limits=sandbox.SandboxLimits(**s["limits"]),
        trusted_limits=sandbox.SandboxLimits(**s["trusted_limits"]),
        cell_timeout=s["cell_timeout"], max_cell_output=s["max_cell_output"],
        unsafe=s["unsafe"], secret_path=root / "no-secret-here",
    )  # fmt: skip
    course = Course(
        release_nb=bundle["release_nb"], release_dir=release,
        notebook_name=bundle["notebook_name"], grade_sources=bundle["grade_sources"],
        package_dir=package_dir,
        neutered_dir=neutered,
        checks_path=checks, plan_path=root / "plan.json",
        solution_cells=bundle["solution_cells"],
        submitted_files=tuple(bundle["submitted_files"]), fingerprint=bundle["fingerprint"],
        release_hash=bundle["release_hash"],
    )  # fmt: skip
    _materialised[key] = (settings, course)
    return settings, course


def worker_canary(bundle: dict) -> dict:
    """Run on every worker before any task: {"ok": True, "environment": ...} or {"ok": False,
    "why": ...}."""
    from cnnlib.grading.preflight import CanaryFailed, run_canary

    here = _library_fingerprint(Path(cnnlib.__file__).resolve().parent)
    if here != bundle["library"]:
        why = f"its cnnlib is {here}, the instructor's is {bundle['library']}"
        return {"ok": False, "why": why + ": install the same course version"}
    if not bundle["settings"]["unsafe"] and sandbox.bwrap_path() is None:
        return {"ok": False, "why": "bubblewrap (bwrap) is not installed on this worker"}
    try:
        settings, course = _materialise(bundle)
        return {"ok": True, "environment": run_canary(settings, course)}
    except CanaryFailed as failure:
        return {"ok": False, "why": str(failure)}
    except Exception as error:  # a worker that cannot even prepare
        return {"ok": False, "why": f"{type(error).__name__}: {error}"}


def grade_task(bundle: dict, student: str, files: dict[str, bytes]) -> dict:
    """Phase 1 of one submission on a worker: {"record": ..., "files": {name: text}}."""
    from cnnlib.grading.phase1 import grade_one

    settings, course = _materialise(bundle)
    inbox = Path(tempfile.mkdtemp(prefix="submission-", dir=settings.course))
    try:
        for relative, data in files.items():
            target = inbox.joinpath(*Path(relative).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        record = grade_one(settings, course, student, inbox)
        work = settings.out / "work" / student
        produced = {
            name: (work / name).read_text(encoding="utf-8")
            for name in RESULT_FILES if (work / name).is_file()
        }  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
        return {"record": record, "files": produced}
    finally:
        shutil.rmtree(inbox, ignore_errors=True)


def _files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()
    }  # fmt: skip


def run_on_cluster(address: str, settings: Settings, course: Course, jobs, on_done, say):
    """Phase 1 of every (student, folder) on the cluster at `address`; (records, environments).

    Raises CanaryFailed when no worker passes the canary.
    """
    from distributed import Client, as_completed

    from cnnlib.grading.phase1 import _cache_key
    from cnnlib.grading.preflight import CanaryFailed

    client = Client(address, timeout="60s")
    try:
        bundle = course_bundle(settings, course)
        canaries = client.run(worker_canary, bundle)
        good = sorted(w for w, result in canaries.items() if result.get("ok"))
        for worker, result in sorted(canaries.items()):
            if not result.get("ok"):
                say(f"grade: worker {worker} refused: {result.get('why')}")
        if not good:
            raise CanaryFailed(
                "pre-flight: no worker of the cluster passed the canary: "
                + "; ".join(f"{w}: {r.get('why')}" for w, r in sorted(canaries.items()))
            )
        say(f"grading on {len(good)} worker(s) of {address}")
        records, futures = [], {}
        shared = client.scatter(bundle, broadcast=True, workers=good, hash=False)
        for student, folder in jobs:
            key = _cache_key(settings, course, folder)
            old = read_json(settings.out / "work" / student / "status.json", 64 * 1024 * 1024)
            if old.get("key") == key:
                records.append({**old, "cached": True})
                on_done(records[-1], len(records), len(jobs))
                continue
            name = f"grade-{hashlib.sha256((student + key).encode()).hexdigest()[:16]}"
            future = client.submit(grade_task, shared, student, _files_of(folder), key=name,
                                   workers=good, allow_other_workers=False, pure=False)  # fmt: skip
            futures[future] = student
        for future in as_completed(futures):
            student = futures[future]
            try:
                result = future.result()
            except Exception as error:  # the task failed or kept killing workers
                record = {"student": student, "problem": "grader_error", "flags": [],
                          "problems": ["grader_error"],
                          "problem_message": f"the cluster could not grade it: {error!r}",
                          }  # fmt: skip
            else:
                record = _store(settings, student, result)
            records.append(record)
            on_done(record, len(records), len(jobs))
        return records, {w: r.get("environment") for w, r in canaries.items() if r.get("ok")}
    finally:
        client.close()


def _store(settings: Settings, student: str, result: dict) -> dict:
    """Write a task's results where a local run would have (the status record last)."""
    work = settings.out / "work" / student
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    for name in RESULT_FILES:
        if isinstance(result.get("files", {}).get(name), str):
            _atomic_write(work / name, result["files"][name])
    record = result["record"]
    _atomic_write(work / "status.json", json.dumps(record, indent=1))
    return record
