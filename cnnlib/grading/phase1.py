"""Phase 1, per student, in parallel: validate, assemble, run in the sandbox, check (trusted).

  a. find and validate the notebook (missing, renamed, empty, invalid, another assignment's);
  b. compare it with the release: locked and grade cells come from the release whatever the
     submission did to them (flagged), answers are taken from the submission by grade_id;
  c. execute that notebook in a bubblewrap sandbox (`execute`);
  d. run the trusted checks in a second sandbox and judge them here (`trusted`).

Each result is cached under <out>/work/<student>/status.json, written last, keyed by a hash of the
submission, the release, the checks, the library, the course secret's fingerprint, the limits and
the grader's version: an interrupted run resumes where it stopped, and a regrade of unchanged work
reuses it.

What a record says about a submission is split in two: `flags` are evidence of tampering (edited
or deleted locked cells, calls into the removed reference, values that lie about their type, a
kernel that passed tests the grader's own run of the same inputs failed); `problems` are faults
and file trouble (a missing or broken notebook, a kernel that died, a time or memory limit), which
cost the points they cost and say nothing about honesty.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import shutil
import time
import traceback
from pathlib import Path

from cnnlib.grading import tamper
from cnnlib.grading.course import GRADER_VERSION, Course, Settings, hash_tree
from cnnlib.grading.execute import execute, read_json
from cnnlib.grading.nbrunner import _atomic_write
from cnnlib.grading.trusted import run_trusted

__all__ = ["TAMPER_FLAGS", "grade_one", "run_all"]

# tamper.assemble's findings that are evidence of tampering; the rest are problems
TAMPER_FLAGS = {"locked_cell_edited", "locked_cell_deleted", "locked_cell_metadata_stripped"}
MAX_EXTRA_FILE_BYTES = 256 * 1024 * 1024


def _extra_files(student_dir: Path, names: tuple[str, ...]) -> dict[str, Path]:
    """The student's declared extra files (trained weights...), found anywhere in their folder."""
    found = {}
    for name in names:
        matches = sorted(
            (p for p in student_dir.rglob(name)
             if p.is_file() and not p.is_symlink() and p.stat().st_size <= MAX_EXTRA_FILE_BYTES),
            key=lambda p: (len(p.relative_to(student_dir).parts), str(p)),
        )  # fmt: skip
        if matches:
            found[matches[0].name] = matches[0]
    return found


def _cache_key(settings: Settings, course: Course, student_dir: Path) -> str:
    return hashlib.sha256(
        (
            hash_tree(student_dir) + course.release_hash + GRADER_VERSION
            + json.dumps(dataclasses.asdict(settings.limits))
            + json.dumps(dataclasses.asdict(settings.trusted_limits))
            + f"{settings.cell_timeout}|{settings.max_cell_output}|{settings.unsafe}"
        ).encode()
    ).hexdigest()  # fmt: skip


def _fault_problems(executed, info: dict) -> list[str]:
    problems = [] if info["state"] == "complete" else [info["state"]]
    outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs]
    if any(o.get("ename") == "MemoryError" for o in outputs if o.get("output_type") == "error"):
        problems.append("memory_limit")
    if any("[output truncated by the grader" in o.get("text", "") for o in outputs):
        problems.append("output_truncated")
    return problems


def grade_one(settings: Settings, course: Course, student: str, student_dir: Path) -> dict:
    """Phase 1 for one student: returns (and writes last, atomically) its status record."""
    import nbformat

    work = settings.out / "work" / student
    key = _cache_key(settings, course, student_dir)
    status_path = work / "status.json"
    old = read_json(status_path, 64 * 1024 * 1024)
    if old.get("key") == key and old.get("version") == GRADER_VERSION:
        return {**old, "cached": True}
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    record: dict = {
        "student": student, "key": key, "version": GRADER_VERSION,
        "fingerprint": course.fingerprint, "flags": [], "problems": [],
    }  # fmt: skip
    start = time.monotonic()
    try:
        try:
            path, found = tamper.find_notebook(student_dir, settings.assignment_id)
            cells, more = tamper.load_submission(path, course.release_nb)
            assembled, assembly = tamper.assemble(course.release_nb, cells)
        except tamper.NotebookProblem as problem:
            record.update(problem=problem.flag, problem_message=str(problem))
            record["problems"] = [problem.flag]
        else:
            findings = {*found, *more, *assembly}
            record["flags"] = sorted(findings & TAMPER_FLAGS)
            record["problems"] = sorted(findings - TAMPER_FLAGS)
            for i, cell in enumerate(assembled.cells):
                if not cell.get("metadata", {}).get("nbgrader"):
                    cell["id"] = f"student-{i}"
            nbformat.write(assembled, work / "submitted.ipynb")
            extra = _extra_files(student_dir, course.submitted_files)
            record["extra_files"] = sorted(extra)
            record["timing_checked_s"] = round(time.monotonic() - start, 3)
            t0 = time.monotonic()
            executed, info = execute(settings, course, assembled, work, extra)
            record["notebook"] = info
            record["timing_sandbox_s"] = round(time.monotonic() - t0, 3)
            nbformat.write(executed, work / "executed.ipynb")
            record["problems"] = sorted({*record["problems"], *_fault_problems(executed, info)})
            t0 = time.monotonic()
            verdicts, tinfo = run_trusted(settings, course, assembled, work, extra)
            record["timing_trusted_s"] = round(time.monotonic() - t0, 3)
            record["trusted"] = verdicts
            record["trusted_run"] = tinfo
    except Exception:
        record["problem"] = "grader_error"
        record["problem_message"] = traceback.format_exc()[-3000:]
        record["problems"] = sorted({*record["problems"], "grader_error"})
    record["timing_total_s"] = round(time.monotonic() - start, 3)
    _atomic_write(status_path, json.dumps(record, indent=1))
    return record


# --------------------------------------------------------------------------- running them all

_JOB: dict = {}


def _worker(student_and_dir: tuple[str, Path]) -> dict:
    student, student_dir = student_and_dir
    return grade_one(_JOB["settings"], _JOB["course"], student, student_dir)


def run_all(settings: Settings, course: Course, jobs: list[tuple[str, Path]], on_done) -> list:
    """Phase 1 for every (student, folder), `settings.workers` at a time; records in any order.

    on_done(record, done, total) is called as each finishes. A worker process that dies gives
    that student a grader_error record (not cached: the next run retries it).
    """
    _JOB.update(settings=settings, course=course)
    records = []
    if settings.workers == 1:
        for job in jobs:
            records.append(_worker(job))
            on_done(records[-1], len(records), len(jobs))
        return records
    # fork: the workers inherit the prepared course instead of unpickling it
    context = multiprocessing.get_context("fork")
    pool = concurrent.futures.ProcessPoolExecutor(settings.workers, mp_context=context)
    try:
        futures = {pool.submit(_worker, job): job[0] for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            try:
                record = future.result()
            except Exception as error:  # a worker that died: not cached, retried next run
                record = {
                    "student": futures[future], "problem": "grader_error",
                    "flags": [], "problems": ["grader_error"],
                    "problem_message": f"the grading worker died: {error!r}",
                }  # fmt: skip
            records.append(record)
            on_done(record, len(records), len(jobs))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return records
