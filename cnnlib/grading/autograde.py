"""`python -m cnnlib grade <assignment_id> --submissions <folder or zip>`: grade a class safely.

The steps, one module each:

  submissions  find who handed in what (per-student folders, Canvas, Moodle, GitHub Classroom;
               zips; a roster), copied to <out>/inbox/<student>/
  course       prepare: the private nbgrader course, the checks and their plan, the blocked copy
               of cnnlib, the course secret's fingerprint
  preflight    the canary: the untouched release, graded once; a broken environment stops here
  phase1       per student, in parallel: validate, assemble, run in the sandbox (`execute`), the
               trusted checks (`trusted`); each result cached as soon as it is done
  gradebook    serial: nbgrader's gradebook, scores from the trusted verdicts, manual grades kept
  feedback     each student's feedback in plain words
  similarity   answers that look copied
  export       grades.csv, nbgrader's export, canvas.csv, grades.json (all from the gradebook)
  report       report.md

Exit status: 0 when every submission has a recorded grade (zeros included), 1 when the grader
itself failed on a submission, 2 for a usage problem (nothing to grade, an unknown layout, a roster
that does not match), 3 when the pre-flight canary failed (no grade is written).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import warnings
from pathlib import Path

from cnnlib.grading import sandbox, similarity, tamper
from cnnlib.grading import secret as course_secret
from cnnlib.grading.course import (
    Course,
    Settings,
    converters,
    find_course,
    nbgrader_api,
    prepare_course,
)
from cnnlib.grading.execute import read_json
from cnnlib.grading.export import write_canvas, write_exports
from cnnlib.grading.feedback import write_feedback
from cnnlib.grading.gradebook import read_scores, record_in_gradebook
from cnnlib.grading.nbrunner import _atomic_write
from cnnlib.grading.phase1 import run_all
from cnnlib.grading.preflight import CanaryFailed, run_canary
from cnnlib.grading.report import write_report
from cnnlib.grading.submissions import LAYOUTS, Roster, collect

__all__ = ["main"]

UNSAFE_WARNING = (
    "\n" + "!" * 78 + "\n"
    "!!  UNSAFE: grading WITHOUT a sandbox (--unsafe-no-sandbox).\n"
    "!!  Student code runs as you, can read solutions/, hidden tests and the gradebook,\n"
    "!!  and can reach the network. Only resource limits and the wall budget apply.\n"
    + "!" * 78 + "\n"
)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, where it has one worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cnnlib grade",
        description="Grade every submission of an assignment in a sandbox, with trusted checks.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("assignment_id",
                   help="the assignment's folder name under solutions/ and assignments/")
    p.add_argument("--submissions", type=Path,
                   help="a folder or zip: per-student folders, or an export of Canvas, Moodle or "
                   "GitHub Classroom (required unless --export-only)")
    p.add_argument("--layout", choices=LAYOUTS, default="auto",
                   help="how the submissions are laid out (auto: find out)")
    p.add_argument("--roster", type=Path, default=None,
                   help="CSV mapping LMS ids to student ids: student_id plus lms_id, canvas_id, "
                   "moodle_id or github (Canvas's gradebook export works as it is)")
    p.add_argument("--out", type=Path, default=None,
                   help="results folder (default: <course>/grading/<assignment_id>)")
    p.add_argument("--course", type=Path, default=None,
                   help="the course root, which holds nbgrader_config.py (default: found from "
                   "the current folder)")
    p.add_argument("--secret", type=Path, default=None,
                   help="the course secret file (default: <course>/.course-secret, made on first "
                   "use)")
    p.add_argument("--workers", type=int, default=1, help="submissions graded at once")
    p.add_argument("--scheduler", default=None,
                   help="grade on a Dask cluster: the scheduler's address, e.g. tcp://HOST:8786 "
                   "(each worker needs the course environment and bubblewrap; see the README)")
    p.add_argument("--wall-budget", type=float, default=600.0,
                   help="seconds for one whole notebook run")
    p.add_argument("--trusted-budget", type=float, default=None,
                   help="seconds for one submission's trusted checks (default: the wall budget)")
    p.add_argument("--cell-timeout", type=int, default=None,
                   help="seconds per cell (default: ExecutePreprocessor.timeout of the config)")
    p.add_argument("--memory-mb", type=int, default=3072,
                   help="address space per sandboxed process, in MB")
    p.add_argument("--nproc", type=int, default=64, help="processes per sandbox")
    p.add_argument("--max-cell-output", type=int, default=256 * 1024,
                   help="bytes of output kept per cell")
    p.add_argument("--canvas-column", default=None,
                   help="the assignment's column title in canvas.csv, as Canvas names it, e.g. "
                   "'A1 (12345)' (default: the assignment id)")
    p.add_argument("--export-only", action="store_true",
                   help="grade nothing: rewrite feedback, grades.csv, the exports and the report "
                   "from the gradebook (after grading by hand in the formgrader)")
    p.add_argument("--prune", action="store_true",
                   help="remove from the gradebook the students who have no submission in this run")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run student code WITHOUT bubblewrap (never on a shared machine)")
    p.add_argument("--quiet", action="store_true", help="print only problems")
    return p  # fmt: skip


def _config_timeout(course: Path) -> int:
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return int(config.ExecutePreprocessor.get("timeout", 120) or 120)


def _settings(args, course: Path, out: Path) -> Settings:
    wall = float(args.wall_budget)
    limits = sandbox.SandboxLimits(
        wall_s=wall, cpu_s=int(wall) + 5, memory_mb=args.memory_mb, nproc=args.nproc,
    )  # fmt: skip
    trusted_wall = float(args.trusted_budget or wall)
    return Settings(
        assignment_id=args.assignment_id,
        course=course,
        out=out,
        workers=max(1, args.workers),
        limits=limits,
        trusted_limits=dataclasses.replace(
            limits, wall_s=trusted_wall, cpu_s=int(trusted_wall) + 5
        ),
        cell_timeout=args.cell_timeout or _config_timeout(course),
        max_cell_output=args.max_cell_output,
        unsafe=args.unsafe_no_sandbox,
        secret_path=(args.secret or course / course_secret.SECRET_FILE).resolve(),
    )


def _one_line(environment: dict | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in (environment or {}).items())


def _progress(say, record: dict, done: int, total: int) -> None:
    cached = " (cached)" if record.get("cached") else ""
    marks = [*record.get("flags", []), *record.get("problems", [])]
    shown = f" [{', '.join(marks)}]" if marks else ""
    say(f"  [{done}/{total}] {record['student']}{cached}{shown}")


def _answers(settings: Settings, course: Course, students: list[str]):
    """student -> {grade_id: answer source} from the assembled notebooks; the release's stubs."""
    starters = {
        c["metadata"]["nbgrader"]["grade_id"]: tamper._source(c)
        for c in course.release_nb["cells"]
        if c.get("cell_type") == "code" and tamper._nbgrader(c).get("solution")
    }  # fmt: skip
    answers = {}
    for student in students:
        path = settings.out / "work" / student / "submitted.ipynb"
        if not path.is_file():
            continue
        nb = json.loads(path.read_text())
        answers[student] = {
            tamper._nbgrader(c)["grade_id"]: tamper._source(c)
            for c in nb["cells"]
            if tamper._nbgrader(c).get("grade_id") in starters
        }  # fmt: skip
    return answers, starters


def phase2(
    settings: Settings, course: Course, records: list[dict], names: dict, say, prune: bool
) -> dict:
    """Gradebook, copies, feedback, exports; what the report needs."""
    # nbgrader's gradebook code trips SQLAlchemy's autoflush warnings on every student.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    convert = converters(nbgrader_api(settings))
    recorded, each = {}, []
    for record in sorted(records, key=lambda r: r["student"]):
        t0 = time.monotonic()
        recorded[record["student"]] = record_in_gradebook(settings, course, convert["autograde"],
                                                          record)  # fmt: skip
        each.append(time.monotonic() - t0)
    scores = read_scores(settings, course)
    missing = sorted(set(scores) - set(recorded))
    export_only = not records
    if missing and prune and not export_only:
        _prune(settings, missing)
        scores = read_scores(settings, course)
        missing = []
    for student in missing:  # in the gradebook, not in this run: kept, from their last records
        record = read_json(settings.out / "work" / student / "status.json", 64 * 1024 * 1024)
        records.append(record or {"student": student, "flags": [], "problems": []})
        recorded[student] = read_json(settings.out / "work" / student / "recorded.json")
    if missing and not export_only:
        say(f"grade: {len(missing)} student(s) in the gradebook have no submission in this run "
            f"and were kept: {', '.join(missing[:10])} (--prune removes them)")  # fmt: skip
    answers, starters = _answers(settings, course, sorted(scores))
    findings, compared = similarity.find_copies(answers, starters, course.package_dir,
                                                cache=settings.out / "library-shingles.json")
    copies: dict[str, list[str]] = {}
    for f in findings:
        copies.setdefault(f.student, []).append(
            f"{f.kind}:{f.grade_id}" + (f":{f.other}" if f.kind == "near_identical" else "")
        )
        if f.kind == "near_identical":
            copies.setdefault(f.other, []).append(f"near_identical:{f.grade_id}:{f.student}")
    by_student = {r["student"]: r for r in records}
    entries = []
    for student in sorted(scores):
        record, gb = by_student.get(student, {}), recorded.get(student) or {}
        name, lms_id = names.get(student, ("", student))
        entry = {
            "student_id": student, "name": name, "lms_id": lms_id,
            "score": scores[student]["score"], "max_score": scores[student]["max_score"],
            "scores": scores[student]["cells"], "cells": gb.get("cells", {}),
            "by_hand": scores[student]["manual"],
            "flags": sorted({*record.get("flags", []), *gb.get("flags", [])}),
            "problems": sorted(set(record.get("problems", []))),
            "copies": sorted(set(copies.get(student, []))),
            "problem": record.get("problem"), "problem_message": record.get("problem_message"),
            "notebook_reason": (record.get("notebook") or {}).get("reason"),
            "key": record.get("key"),
        }  # fmt: skip
        t0 = time.monotonic()
        write_feedback(settings, course, convert["feedback"], entry)
        if student in by_student and (index := sorted(recorded).index(student)) < len(each):
            each[index] += time.monotonic() - t0
        entries.append(entry)
    write_exports(settings, course, entries)
    return {"entries": entries, "phase2_each": each,
            "copies": similarity.report_lines(findings, compared)}  # fmt: skip


def _prune(settings: Settings, students: list[str]) -> None:
    """Remove these students' submissions from the gradebook, and the students themselves when
    they have no other (nbgrader's export lists every student it knows, submission or not)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{settings.out / 'nbgrader' / 'gradebook.db'}") as gb:
        for student in students:
            gb.remove_submission(settings.assignment_id, student)
            if not gb.find_student(student).submissions:
                gb.remove_student(student)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    course_root = args.course or find_course(Path.cwd())
    if course_root is None:
        print("grade: no course found (no nbgrader_config.py); pass --course", file=sys.stderr)
        return 2
    course_root = course_root.resolve()
    if not args.export_only and args.submissions is None:
        print("grade: --submissions is required (a folder or zip), unless --export-only",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.unsafe_no_sandbox:
        print(UNSAFE_WARNING, file=sys.stderr, flush=True)
    elif sandbox.bwrap_path() is None and not args.export_only:
        print(
            "grade: bubblewrap (bwrap) is not installed, and student code is never run without "
            "a sandbox.\n  Install it (Debian/Ubuntu: apt-get install bubblewrap), or, on a "
            "machine of your own only, pass --unsafe-no-sandbox.",
            file=sys.stderr,
        )
        return 2
    out = (args.out or course_root / "grading" / args.assignment_id).resolve()
    settings = _settings(args, course_root, out)
    try:
        key, created = course_secret.load_or_create(settings.secret_path)
    except (ValueError, OSError) as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    if created:
        say(f"grade: made the course secret {settings.secret_path} (keep it, and keep it private:"
            " regrades need the same one to give the same grades)")  # fmt: skip
    roster = names = None
    try:
        roster = Roster.read(args.roster) if args.roster else None
        out.mkdir(parents=True, exist_ok=True)
        if args.export_only:
            submissions, layout = [], "export-only"
        else:
            submissions, layout = collect(args.submissions.resolve(), out / "inbox",
                                          args.assignment_id, roster=roster, layout=args.layout)
        prepared = prepare_course(settings, key)
    except (ValueError, RuntimeError, OSError) as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    names = {s.student_id: (s.name, s.lms_id) for s in submissions}
    names_file = out / "names.json"
    known = read_json(names_file)
    known.update({k: list(v) for k, v in names.items()})
    _atomic_write(names_file, json.dumps(known))
    names = {k: tuple(v) for k, v in known.items()}
    canary = {}
    records: list[dict] = []
    start = time.monotonic()
    if not args.export_only:
        where = args.scheduler or f"{settings.workers} worker(s)"
        say(f"grading {len(submissions)} submissions of {args.assignment_id} ({layout} layout) "
            f"with {where} into {out}")  # fmt: skip
        jobs = [(s.student_id, s.folder) for s in submissions]
        done_one = lambda r, d, t: _progress(say, r, d, t)  # noqa: E731
        try:
            if args.scheduler:
                from cnnlib.grading.cluster import run_on_cluster

                records, environments = run_on_cluster(args.scheduler, settings, prepared, jobs,
                                                       done_one, say)  # fmt: skip
                canary = {f"worker {w}": _one_line(env) for w, env in environments.items()}
            else:
                canary = run_canary(settings, prepared)
                records = run_all(settings, prepared, jobs, done_one)
        except CanaryFailed as failure:
            print(f"grade: {failure}\nNo submission was graded.", file=sys.stderr)
            return 3
        except KeyboardInterrupt:
            print("\ngrade: interrupted; every finished submission is kept, run again to resume",
                  file=sys.stderr)  # fmt: skip
            return 130
    phase1_s = time.monotonic() - start
    t0 = time.monotonic()
    done = phase2(settings, prepared, records, names, say, args.prune)
    phase2_s = time.monotonic() - t0
    if layout == "canvas" or roster is not None:
        write_canvas(settings, done["entries"], roster, args.canvas_column or args.assignment_id)
    fresh = [r for r in records if not r.get("cached")]
    timings = {
        "phase1_s": round(phase1_s, 2), "phase2_s": round(phase2_s, 2),
        "graded_now": len(fresh), "reused": len(records) - len(fresh),
        "phase2_each": [round(t, 3) for t in done["phase2_each"]],
    }  # fmt: skip
    _atomic_write(out / "timings.json", json.dumps(timings, indent=1))
    write_report(settings, done["entries"], records, {
        "fingerprint": prepared.fingerprint, "layout": layout, "canary": canary,
        "copies": done["copies"], "timings": timings,
    })  # fmt: skip
    say(f"grades: {out / 'grades.csv'}\nreport: {out / 'report.md'}")
    errors = [e["student_id"] for e in done["entries"] if e.get("problem") == "grader_error"]
    if errors:
        print(f"grade: the grader itself failed on {errors}; see {out / 'report.md'}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0
