"""`python -m cnnlib grade <assignment_id> --submissions <dir or zip>`: grade a class safely.

Phase 1, per student, in parallel (`--workers`), each result cached under <out>/work/<student>/
with a status file written last (keyed by a hash of the submission, the release, the limits and
the grader's version), so an interrupted run resumes where it stopped:

  a. find and validate the notebook (missing, renamed, empty, invalid, another assignment's);
  b. compare it with the release: locked and grade cells come from the release whatever the
     submission did to them (flagged), answers are taken from the submission by grade_id;
  c. execute that notebook in a bubblewrap sandbox (own files only, no network, rlimits, a wall
     budget for the whole notebook on top of the per-cell timeout), outputs capped;
  d. run the trusted checks: the student's functions, called in a second sandbox whose cnnlib
     has the reference removed, on inputs chosen here; only plain JSON comes back and the
     comparison with the reference happens here.

Phase 2, serial (one process owns the gradebook): nbgrader's own autograde with its Execute step
replaced by loading the sandbox's outputs, then every grade cell's score is kept only where the
trusted check agrees; feedback with hidden tests scrubbed; nbgrader's export; grades.csv; report.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import hashlib
import html
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import zipfile
from pathlib import Path

import cnnlib
from cnnlib.grading import sandbox, specs, tamper, trusted
from cnnlib.grading.nbrunner import _atomic_write

__all__ = ["GRADER_VERSION", "main"]

GRADER_VERSION = "1"
MAX_EXECUTED_BYTES = 64 * 1024 * 1024
MAX_ZIP_BYTES = 2 * 1024**3
UNSAFE_WARNING = (
    "\n" + "!" * 78 + "\n"
    "!!  UNSAFE: grading WITHOUT a sandbox (--unsafe-no-sandbox).\n"
    "!!  Student code runs as you, can read solutions/, hidden tests and the gradebook,\n"
    "!!  and can reach the network. Only resource limits and the wall budget apply.\n"
    + "!" * 78 + "\n"
)


@dataclasses.dataclass(frozen=True)
class Settings:
    assignment_id: str
    course: Path
    out: Path
    workers: int
    limits: sandbox.SandboxLimits
    trusted_limits: sandbox.SandboxLimits
    cell_timeout: int
    max_cell_output: int
    unsafe: bool


# --------------------------------------------------------------------------- small helpers


def _hash_tree(folder: Path) -> str:
    h = hashlib.sha256()
    files = (
        p for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts
        and p.suffix != ".pyc"
    )  # fmt: skip
    for path in sorted(files):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read(64 * 1024 * 1024)).digest())
    return h.hexdigest()


def _find_course(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / "nbgrader_config.py").is_file():
            return folder
    package_root = Path(cnnlib.__file__).resolve().parent.parent
    if (package_root / "nbgrader_config.py").is_file():
        return package_root
    return None


def _nbgrader_env() -> None:
    # nbgrader runs `alembic` by name when it creates a gradebook.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def _extract_zip(archive: Path, dest: Path) -> Path:
    """Unpack an LMS zip safely (no paths outside dest, no links, a size cap); the student root."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    total = 0
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if not parts or ".." in parts or parts[0].startswith("__MACOSX"):
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                continue  # a symlink
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise ValueError(f"--submissions: {archive} unpacks to more than 2 GiB")
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    entries = [p for p in dest.iterdir() if not p.name.startswith(".")]
    # A zip of one folder that holds the student folders.
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if not p.name.startswith(".")]
        if inner and all(p.is_dir() for p in inner):
            return entries[0]
    return dest


def _students(root: Path) -> list[str]:
    return sorted(
        p.name for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not p.is_symlink()
    )  # fmt: skip


# --------------------------------------------------------------------------- the private course


@dataclasses.dataclass
class Course:
    """What phase 1 needs from the trusted side, prepared once in the parent."""

    release_nb: dict  # the committed release notebook (what students got), as JSON
    release_dir: Path
    notebook_name: str
    grade_sources: dict[str, str]  # grade_id -> source with hidden tests, from the gradebook
    package_dir: Path  # the real cnnlib
    neutered_dir: Path  # the copy with the reference removed
    key: bytes
    release_hash: str


def _grader_key(out: Path) -> bytes:
    path = out / ".grader-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(32))
    return path.read_bytes()


def _api(settings: Settings):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config, PyFileConfigLoader

    from cnnlib.grading import nbgrader_hooks  # noqa: F401 (the preprocessors named below)

    private = settings.out / "nbgrader"
    config = PyFileConfigLoader("nbgrader_config.py", path=str(settings.course)).load_config()
    config = Config(config)
    config.CourseDirectory.root = str(private)
    config.Autograde.autograde_preprocessors = [
        "cnnlib.grading.nbgrader_hooks.LoadExecuted",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    config.LoadExecuted.work_dir = str(settings.out / "work")
    config.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        "cnnlib.grading.nbgrader_hooks.ScrubFeedback",
    ]
    config.ScrubFeedback.secrets_file = str(private / "secrets.json")
    config.Exchange.root = str(private / "exchange")
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel("ERROR")
    return api


def prepare_course(settings: Settings) -> Course:
    """The private nbgrader course under <out>/nbgrader, its gradebook, and the trusted copies."""
    import nbformat
    from nbgrader.api import Gradebook

    from cnnlib.grading.nbgrader_hooks import secret_lines

    aid, course = settings.assignment_id, settings.course
    source_dir = course / "solutions" / aid
    release_dir = course / "assignments" / aid
    if not source_dir.is_dir() or not release_dir.is_dir():
        raise ValueError(
            f"assignment_id: {aid!r} needs solutions/{aid}/ and assignments/{aid}/ in {course}"
        )
    (source_nb,) = sorted(source_dir.glob("*.ipynb"))
    private = settings.out / "nbgrader"
    private.mkdir(parents=True, exist_ok=True)
    shutil.copy(course / "nbgrader_config.py", private / "nbgrader_config.py")
    source_hash = _hash_tree(source_dir)
    stamp = private / f".generated-{source_hash[:16]}"
    if not stamp.exists():
        target = private / "solutions" / aid
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source_dir, target)
        _nbgrader_env()
        result = _api(settings).generate_assignment(aid, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('error')}")
        for old in private.glob(".generated-*"):
            old.unlink()
        stamp.touch()
    release_nb_path = release_dir / source_nb.name
    release_nb = json.loads(release_nb_path.read_text())
    grade_sources = {}
    with Gradebook(f"sqlite:///{private / 'gradebook.db'}") as gb:
        notebook_id = source_nb.stem
        for cell in gb.find_notebook(notebook_id, aid).source_cells:
            grade_sources[cell.name] = cell.source
    source = nbformat.read(source_nb, as_version=4)
    released = {
        c["metadata"]["nbgrader"]["grade_id"]: tamper._source(c)
        for c in release_nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
    }  # fmt: skip
    _atomic_write(
        private / "secrets.json",
        json.dumps({"secret_lines": secret_lines(source), "released_sources": released}),
    )
    package_dir = Path(cnnlib.__file__).resolve().parent
    spec = specs.spec_for(aid)
    neutered = trusted.neutered_cnnlib(package_dir, settings.out / "trusted-cnnlib", spec)
    return Course(
        release_nb=release_nb,
        release_dir=release_dir,
        notebook_name=source_nb.name,
        grade_sources=grade_sources,
        package_dir=package_dir,
        neutered_dir=neutered,
        key=_grader_key(settings.out),
        release_hash=_hash_tree(release_dir) + source_hash + _hash_tree(package_dir),
    )


# --------------------------------------------------------------------------- phase 1


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


def _read_json(path: Path, limit: int = 1024 * 1024) -> dict:
    try:
        if path.stat().st_size <= limit:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                return data
    except (OSError, ValueError):
        pass
    return {}


def _python_binds() -> list[tuple[str, str]]:
    return [(p, p) for p in sandbox.python_mounts()]


def _copy_release_files(course: Course, dest: Path) -> None:
    """The release's data files (everything but the notebook) into a sandbox's working folder."""
    for item in course.release_dir.iterdir():
        if item.suffix != ".ipynb" and item.is_file():
            shutil.copy(item, dest / item.name)


def _execute(settings, course, assembled, work: Path) -> tuple[object, dict]:
    """Phase 1c: run the notebook in the sandbox; the trusted rebuild of it, and what happened."""
    import nbformat

    box = work / "box"
    (box / "work").mkdir(parents=True)
    (box / "out").mkdir()
    _copy_release_files(course, box / "work")
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
    binds = [*_python_binds(), (str(course.package_dir), str(course.package_dir))]
    result = sandbox.run_sandboxed(
        [sys.executable, "-m", "cnnlib.grading.nbrunner", f"{inside}/job.json"],
        workdir=box, ro_binds=binds, limits=settings.limits, slot=os.getpid() % 100_000,
        log_dir=work / "logs-notebook", unsafe=settings.unsafe,
    )  # fmt: skip
    progress = _read_json(box / "out" / "progress.json")
    status = progress.get("status")
    if result.timed_out:
        state, reason = "wall_budget_exceeded", (
            f"the notebook ran past its time budget ({settings.limits.wall_s:g} s) and was stopped"
        )
    elif status == "complete" and result.returncode == 0:
        state, reason = "complete", ""
    elif status == "output_limit":
        state, reason = "output_limit", (
            f"a cell printed more than {4 * settings.max_cell_output} bytes: the kernel was "
            "stopped during this cell"
        )
    elif status == "kernel_died":
        state, reason = "kernel_died", "the kernel died (it exited or crashed) during this cell"
    else:
        state, reason = "runner_failed", (
            f"the notebook run stopped (exit {result.returncode}"
            f"{', ' + result.signal_name if result.signal_name else ''})"
        )
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
    }
    return nb, info


def assembled_with_tests(assembled, course: Course):
    import nbformat

    nb = nbformat.from_dict(json.loads(json.dumps(assembled)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("grade") and grade_id in course.grade_sources:
            cell.source = course.grade_sources[grade_id]
    return nb


def _trusted_checks(settings, course, assembled, work: Path, submission_hash: str):
    """Phase 1d: the student's functions on our inputs, in a sandbox without the reference."""
    spec = specs.spec_for(settings.assignment_id)
    box = work / "trusted"
    box.mkdir(parents=True)
    _copy_release_files(course, box)
    steps, sent = trusted.build_job(assembled.cells, spec, course.key, submission_hash)
    inside = "/sandbox" if not settings.unsafe else str(box)
    timeout = max(2, min(settings.cell_timeout, settings.trusted_limits.wall_s / 3))
    job = {
        "steps": steps,
        "out": f"{inside}/results.jsonl",
        "cell_timeout": timeout,
        "check_timeout": timeout,
    }
    (box / "job.json").write_text(json.dumps(job))
    if settings.unsafe:
        # No mount namespace to hide the reference: point Python at the neutered copy first.
        env = {"PYTHONPATH": str(course.neutered_dir.parent)}
        binds = []
    else:
        env = {}
        binds = [*_python_binds(), (str(course.neutered_dir), str(course.package_dir))]
    result = sandbox.run_sandboxed(
        [sys.executable, "-m", "cnnlib.grading.trusted_runner", f"{inside}/job.json"],
        workdir=box, ro_binds=binds, limits=settings.trusted_limits,
        slot=os.getpid() % 100_000, env=env, log_dir=work / "logs-trusted",
        unsafe=settings.unsafe,
    )  # fmt: skip
    verdicts = trusted.compare(box / "results.jsonl", sent)
    info = {
        "wall_s": round(result.wall_s, 3),
        "timed_out": result.timed_out,
        "returncode": result.returncode,
    }
    return verdicts, info


def grade_one(settings: Settings, course: Course, student: str, student_dir: Path) -> dict:
    """Phase 1 for one student: returns (and writes last, atomically) its status record."""
    import nbformat

    work = settings.out / "work" / student
    key = hashlib.sha256(
        (
            _hash_tree(student_dir) + course.release_hash + GRADER_VERSION
            + json.dumps(dataclasses.asdict(settings.limits))
            + json.dumps(dataclasses.asdict(settings.trusted_limits))
            + f"{settings.cell_timeout}|{settings.max_cell_output}|{settings.unsafe}"
        ).encode()
    ).hexdigest()  # fmt: skip
    status_path = work / "status.json"
    old = _read_json(status_path, 64 * 1024 * 1024)
    if old.get("key") == key and old.get("version") == GRADER_VERSION:
        return {**old, "cached": True}
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    record: dict = {"student": student, "key": key, "version": GRADER_VERSION, "flags": []}
    start = time.monotonic()
    try:
        try:
            path, flags = tamper.find_notebook(student_dir, settings.assignment_id)
            cells, more = tamper.load_submission(path, course.release_nb)
            assembled, tamper_flags = tamper.assemble(course.release_nb, cells)
            record["flags"] = sorted({*flags, *more, *tamper_flags})
        except tamper.NotebookProblem as problem:
            record.update(problem=problem.flag, problem_message=str(problem))
            record["flags"] = [problem.flag]
        else:
            for i, cell in enumerate(assembled.cells):
                if not cell.get("metadata", {}).get("nbgrader"):
                    cell["id"] = f"student-{i}"
            nbformat.write(assembled, work / "submitted.ipynb")
            t0 = time.monotonic()
            executed, info = _execute(settings, course, assembled, work)
            record["notebook"] = info
            record["timing_sandbox_s"] = round(time.monotonic() - t0, 3)
            nbformat.write(executed, work / "executed.ipynb")
            if info["state"] != "complete":
                record["flags"].append(info["state"])
            if any(
                o.get("ename") == "MemoryError" for c in executed.cells if c.cell_type == "code"
                for o in c.outputs if o.get("output_type") == "error"
            ):
                record["flags"].append("memory_limit")
            if any(
                "[output truncated by the grader" in o.get("text", "")
                for c in executed.cells if c.cell_type == "code" for o in c.outputs
            ):
                record["flags"].append("output_truncated")
            submission_hash = hashlib.sha256((key + student).encode()).hexdigest()
            t0 = time.monotonic()
            verdicts, tinfo = _trusted_checks(settings, course, assembled, work, submission_hash)
            record["timing_trusted_s"] = round(time.monotonic() - t0, 3)
            record["trusted"] = verdicts
            record["trusted_run"] = tinfo
            record["flags"] = sorted(set(record["flags"]))
    except Exception:
        record["problem"] = "grader_error"
        record["problem_message"] = traceback.format_exc()[-3000:]
        record["flags"] = sorted({*record["flags"], "grader_error"})
    record["timing_total_s"] = round(time.monotonic() - start, 3)
    _atomic_write(status_path, json.dumps(record, indent=1))
    return record


def _phase1_worker(args):
    settings, course, student, student_dir = args
    return grade_one(settings, course, student, student_dir)


# --------------------------------------------------------------------------- phase 2


def _points(course: Course) -> dict[str, float]:
    points = {}
    for cell in course.release_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            points[meta["grade_id"]] = float(meta.get("points", 0))
    return points


def record_in_gradebook(settings: Settings, course: Course, api, record: dict) -> dict:
    """nbgrader's autograde for one student, then the trusted verdicts; the final cell scores."""
    from nbgrader.api import Gradebook

    aid, student = settings.assignment_id, record["student"]
    private = settings.out / "nbgrader"
    folder = private / "submitted" / student / aid
    if folder.exists():
        shutil.rmtree(folder)
    for stale in (private / "autograded" / student / aid, private / "feedback" / student / aid):
        if stale.exists():
            shutil.rmtree(stale)
    folder.mkdir(parents=True)
    if not record.get("problem"):
        submitted = settings.out / "work" / student / "submitted.ipynb"
        shutil.copy(submitted, folder / course.notebook_name)
        result = api.autograde(aid, student, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader autograde failed for {student}:\n{result.get('error')}")
    notebook_id = Path(course.notebook_name).stem
    points = _points(course)
    verdicts = record.get("trusted", {})
    cells, flags = {}, []
    with Gradebook(f"sqlite:///{private / 'gradebook.db'}") as gb:
        if record.get("problem"):
            # Nothing gradable: a submission with every grade at zero, as nbgrader records one
            # whose notebook is missing.
            gb.update_or_create_student(student)
            gb.update_or_create_submission(aid, student)
        submission = gb.find_submission_notebook(notebook_id, aid, student)
        for grade in submission.grades:
            nbgrader_score = float(grade.auto_score or 0)
            verdict = verdicts.get(grade.name, {"passed": False, "reason": "no trusted check"})
            final = nbgrader_score if verdict["passed"] else 0.0
            if nbgrader_score > 0 and not verdict["passed"]:
                flags.append(f"nbgrader_pass_trusted_fail:{grade.name}")
            grade.auto_score = final
            grade.needs_manual_grade = False
            cells[grade.name] = {
                "score": final, "points": points.get(grade.name, 0.0),
                "nbgrader": nbgrader_score, "trusted": verdict,
            }  # fmt: skip
        gb.db.commit()
    return {"cells": cells, "flags": flags}


def _notes_html(entry: dict) -> str:
    lines = []
    if entry["flags"]:
        lines.append("<p><b>Grader notes:</b> " + html.escape(", ".join(entry["flags"])) + "</p>")
    if entry.get("problem_message") and entry.get("problem") != "grader_error":
        lines.append(f"<p>{html.escape(entry['problem_message'])}</p>")
    if entry.get("notebook_reason"):
        lines.append(f"<p>{html.escape(entry['notebook_reason'])}</p>")
    failed = [
        f"<li>{html.escape(gid)}: {html.escape(str(cell['trusted'].get('reason') or ''))}</li>"
        for gid, cell in entry.get("cells", {}).items()
        if cell["score"] < cell["points"] and cell["trusted"].get("reason")
    ]
    if failed:
        lines.append("<p>Checks that did not pass:</p><ul>" + "".join(failed) + "</ul>")
    body = "".join(lines) or "<p>No grader notes.</p>"
    return f'<div id="cnnlib-grader-notes" style="border:2px solid #c60;padding:8px">{body}</div>'


def write_feedback(settings: Settings, course: Course, api, entry: dict) -> Path:
    """The student's feedback HTML (nbgrader's, scrubbed) with the grader's notes on top."""
    aid, student = settings.assignment_id, entry["student_id"]
    dest = settings.out / "feedback" / student
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{Path(course.notebook_name).stem}.html"
    notes = _notes_html(entry)
    produced = None
    if not entry.get("problem"):
        result = api.generate_feedback(aid, student, force=True)
        produced = settings.out / "nbgrader" / "feedback" / student / aid / target.name
        if not result["success"] or not produced.is_file():
            produced = None
    if produced is not None:
        text = produced.read_text(encoding="utf-8")
        at = text.find(">", text.find("<body")) + 1 if "<body" in text else 0
        text = text[:at] + notes + text[at:]
    else:
        text = (
            f"<html><body><h1>{html.escape(aid)}: {html.escape(student)}</h1>"
            f"<p>Score: {entry['score']:g} / {entry['max_score']:g}</p>{notes}</body></html>"
        )
    _atomic_write(target, text)
    return target


def _histogram(scores: list[float], max_score: float, bins: int = 10) -> list[str]:
    counts = [0] * bins
    for score in scores:
        i = min(bins - 1, int(bins * score / max_score)) if max_score else 0
        counts[i] += 1
    width = max(counts) or 1
    lines = []
    for i, count in enumerate(counts):
        low, high = max_score * i / bins, max_score * (i + 1) / bins
        bracket = "]" if i == bins - 1 else ")"
        bar = "#" * round(30 * count / width)
        lines.append(f"[{low:5.1f}, {high:5.1f}{bracket} {count:4d} {bar}")
    return lines


def write_report(settings: Settings, entries: list[dict], max_score: float, timings: dict) -> Path:
    scores = [e["score"] for e in entries]
    lines = [
        f"# Grading report: {settings.assignment_id}",
        "",
        f"{len(entries)} submissions, mean {sum(scores) / max(1, len(scores)):.2f} / "
        f"{max_score:g}; workers: {settings.workers}; "
        f"sandbox: {'NONE (unsafe)' if settings.unsafe else 'bubblewrap'}.",
        "",
        "## Score histogram",
        "",
        "```",
        *_histogram(scores, max_score),
        "```",
        "",
        "## Flagged submissions",
        "",
    ]
    flagged = [e for e in entries if e["flags"]]
    if not flagged:
        lines.append("None.")
    for e in flagged:
        lines.append(f"- **{e['student_id']}** ({e['score']:g}/{max_score:g}): "
                     f"{', '.join(e['flags'])}")  # fmt: skip
        reasons = []
        if e.get("problem_message"):
            reasons.append(e["problem_message"].strip().splitlines()[-1])
        if e.get("notebook_reason"):
            reasons.append(e["notebook_reason"])
        for gid, cell in e.get("cells", {}).items():
            if cell["nbgrader"] > 0 and not cell["trusted"]["passed"]:
                reasons.append(f"{gid}: nbgrader said pass, trusted check: "
                               f"{cell['trusted'].get('reason')}")  # fmt: skip
        for reason in reasons:
            lines.append(f"  - {reason[:400]}")
    lines += ["", "## Timing", "", "```", json.dumps(timings, indent=1), "```", ""]
    path = settings.out / "report.md"
    _atomic_write(path, "\n".join(lines))
    return path


def phase2(settings: Settings, course: Course, records: list[dict]) -> list[dict]:
    import warnings

    # nbgrader's gradebook code trips SQLAlchemy's autoflush warnings on every student.
    warnings.filterwarnings("ignore", module="nbgrader")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    api = _api(settings)
    max_score = sum(_points(course).values())
    entries = []
    for record in sorted(records, key=lambda r: r["student"]):
        gb_result = record_in_gradebook(settings, course, api, record)
        score = round(sum(c["score"] for c in gb_result["cells"].values()), 6)
        entry = {
            "student_id": record["student"],
            "score": score,
            "max_score": max_score,
            "flags": sorted({*record["flags"], *gb_result["flags"]}),
            "cells": gb_result["cells"],
            "problem": record.get("problem"),
            "problem_message": record.get("problem_message"),
            "notebook_reason": record.get("notebook", {}).get("reason"),
        }
        write_feedback(settings, course, api, entry)
        entries.append(entry)
    # nbgrader's own export of the gradebook.
    _nbgrader_env()
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "export",
         "--to", str(settings.out / "nbgrader_export.csv"), "--log-level=ERROR"],
        cwd=settings.out / "nbgrader", check=False, capture_output=True, timeout=600,
    )  # fmt: skip
    grade_ids = list(_points(course))
    with open(settings.out / "grades.csv.tmp", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", "score", "max_score", "flags", *grade_ids])
        for e in entries:
            writer.writerow([
                e["student_id"], f"{e['score']:g}", f"{e['max_score']:g}", ";".join(e["flags"]),
                *(f"{e['cells'].get(g, {}).get('score', 0):g}" for g in grade_ids),
            ])  # fmt: skip
    os.replace(settings.out / "grades.csv.tmp", settings.out / "grades.csv")
    _atomic_write(settings.out / "grades.json", json.dumps(entries, indent=1))
    return entries


# --------------------------------------------------------------------------- the command


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cnnlib grade",
        description="Grade every submission of an assignment in a sandbox, with trusted checks.",
    )
    p.add_argument("assignment_id")
    p.add_argument("--submissions", required=True, type=Path,
                   help="a folder with one sub-folder per student id, or a zip of such folders")
    p.add_argument("--out", type=Path, help="default: <course>/grading/<assignment_id>")
    p.add_argument("--course", type=Path, help="the course root (holds nbgrader_config.py)")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--wall-budget", type=float, default=600.0,
                   help="seconds for a whole notebook run (default 600)")
    p.add_argument("--trusted-budget", type=float, default=None,
                   help="seconds for the trusted checks (default: the wall budget)")
    p.add_argument("--cell-timeout", type=int, default=None,
                   help="seconds per cell (default: ExecutePreprocessor.timeout of the config)")
    p.add_argument("--memory-mb", type=int, default=3072, help="address space per process")
    p.add_argument("--nproc", type=int, default=64, help="processes per sandbox")
    p.add_argument("--max-cell-output", type=int, default=256 * 1024,
                   help="bytes of output kept per cell")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run student code WITHOUT bubblewrap (never on a shared machine)")
    p.add_argument("--quiet", action="store_true")
    return p  # fmt: skip


def _config_timeout(course: Path) -> int:
    from traitlets.config import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return int(config.ExecutePreprocessor.get("timeout", 120) or 120)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    course = (args.course or _find_course(Path.cwd()))
    if course is None:
        print("grade: no course found (no nbgrader_config.py); pass --course", file=sys.stderr)
        return 2
    course = course.resolve()
    if args.unsafe_no_sandbox:
        print(UNSAFE_WARNING, file=sys.stderr, flush=True)
    elif sandbox.bwrap_path() is None:
        print(
            "grade: bubblewrap (bwrap) is not installed, and student code is never run without "
            "a sandbox.\n  Install it (Debian/Ubuntu: apt-get install bubblewrap), or, on a "
            "machine of your own only, pass --unsafe-no-sandbox.",
            file=sys.stderr,
        )
        return 2
    out = (args.out or course / "grading" / args.assignment_id).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if not args.submissions.exists():
        print(f"grade: --submissions: {args.submissions} does not exist", file=sys.stderr)
        return 2
    submissions = args.submissions.resolve()
    if submissions.is_file():
        submissions = _extract_zip(submissions, out / "inbox")
    wall = float(args.wall_budget)
    limits = sandbox.SandboxLimits(
        wall_s=wall, cpu_s=int(wall) + 5, memory_mb=args.memory_mb, nproc=args.nproc,
    )  # fmt: skip
    trusted_wall = float(args.trusted_budget or wall)
    settings = Settings(
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
    )
    try:
        specs.spec_for(args.assignment_id)
        prepared = prepare_course(settings)
    except (ValueError, RuntimeError) as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    students = _students(submissions)
    say(f"grading {len(students)} submissions of {args.assignment_id} with {settings.workers} "
        f"worker(s) into {out}")  # fmt: skip
    jobs = [(settings, prepared, s, submissions / s) for s in students]
    records, start = [], time.monotonic()
    try:
        if settings.workers == 1:
            for job in jobs:
                records.append(_phase1_worker(job))
                _progress(say, records[-1], len(records), len(jobs))
        else:
            records = _run_pool(settings.workers, jobs, say)
    except KeyboardInterrupt:
        print("\ngrade: interrupted; every finished submission is kept, run again to resume",
              file=sys.stderr)  # fmt: skip
        return 130
    phase1_s = time.monotonic() - start
    t0 = time.monotonic()
    entries = phase2(settings, prepared, records)
    phase2_s = time.monotonic() - t0
    fresh = [r for r in records if not r.get("cached")]
    timings = {
        "phase1_s": round(phase1_s, 2),
        "phase2_s": round(phase2_s, 2),
        "graded_now": len(fresh),
        "reused": len(records) - len(fresh),
        "mean_sandbox_s": _mean(r.get("timing_sandbox_s") for r in fresh),
        "mean_trusted_s": _mean(r.get("timing_trusted_s") for r in fresh),
        "mean_total_s": _mean(r.get("timing_total_s") for r in fresh),
    }
    _atomic_write(out / "timings.json", json.dumps(timings, indent=1))
    report = write_report(settings, entries, sum(_points(prepared).values()), timings)
    say(f"grades: {out / 'grades.csv'}\nreport: {report}")
    errors = [e["student_id"] for e in entries if e.get("problem") == "grader_error"]
    if errors:
        print(f"grade: the grader itself failed on {errors}; see {report}", file=sys.stderr)
        return 1
    return 0


def _run_pool(workers: int, jobs: list, say) -> list[dict]:
    records = []
    pool = concurrent.futures.ProcessPoolExecutor(workers)
    try:
        futures = {pool.submit(_phase1_worker, job): job[2] for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            try:
                record = future.result()
            except Exception as error:  # a worker that died: not cached, retried next run
                record = {
                    "student": futures[future], "problem": "grader_error",
                    "flags": ["grader_error"],
                    "problem_message": f"the grading worker died: {error!r}",
                }  # fmt: skip
            records.append(record)
            _progress(say, record, len(records), len(jobs))
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return records


def _mean(values) -> float | None:
    values = [v for v in values if isinstance(v, int | float)]
    return round(sum(values) / len(values), 3) if values else None


def _progress(say, record: dict, done: int, total: int) -> None:
    cached = " (cached)" if record.get("cached") else ""
    flags = f" [{', '.join(record['flags'])}]" if record.get("flags") else ""
    say(f"  [{done}/{total}] {record['student']}{cached}{flags}")
