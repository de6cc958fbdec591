"""Phase 2a, serial (one process owns the gradebook): record each student's grades in nbgrader's
gradebook, the one gradebook that grades.csv, nbgrader's export and the LMS files are read from.

nbgrader's own autograde records the sandbox's run (its Execute step replaced by loading the
outputs of phase 1), so the formgrader, manual grading and feedback work as usual. Then every
autograded cell's score is set from the trusted verdict: full points when the grader's own checks
passed, zero when they did not, whatever the student's kernel claimed. Manually graded cells are
left to the instructor (waiting for a grade, never zero), and a manual score an instructor gave
stays through regrades, as nbgrader's rule is.

A student whose phase-1 record has not changed since it was last recorded is not recorded again,
so rerunning the grader after grading by hand in the formgrader only rewrites the exports.

Kernel and grader run each check on the same inputs, so for honest code they agree. Where the
kernel's hidden tests passed and the grader's run of the same tests did not, that is evidence of
tampering, and the submission is flagged, except where the check that failed is an outcome
check (`expected=`), which only the grader's run judges: the kernel never had its cases.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cnnlib.grading.course import Course, Settings, manual_cells, points
from cnnlib.grading.execute import read_json
from cnnlib.grading.nbrunner import _atomic_write

__all__ = ["record_in_gradebook", "tamper_flags"]


def tamper_flags(grade_id: str, kernel_passed: bool, verdict: dict) -> list[str]:
    """Flags a grade cell's kernel result and trusted verdict give (evidence of tampering only)."""
    flags = []
    if verdict.get("calls_reference"):
        flags.append(f"calls_reference:{grade_id}")
    if verdict.get("disguised"):
        flags.append(f"disguised_value:{grade_id}")
    if (
        kernel_passed
        and not verdict.get("passed")
        and not flags
        and not verdict.get("outcome_check")
    ):
        reason = str(verdict.get("reason") or "")
        if not reason.startswith("not checked"):
            flags.append(f"nbgrader_pass_trusted_fail:{grade_id}")
    return flags


def _recorded_path(settings: Settings, student: str) -> Path:
    return settings.out / "work" / student / "recorded.json"


def record_in_gradebook(settings: Settings, course: Course, autograde, record: dict) -> dict:
    """Record one student (unless already recorded from this very record); the cell results.

    autograde: nbgrader's Autograde converter (`course.converters`).
    """
    from nbgrader.api import Gradebook, MissingEntry

    aid, student = settings.assignment_id, record["student"]
    private = settings.out / "nbgrader"
    recorded_path = _recorded_path(settings, student)
    recorded = read_json(recorded_path)
    with Gradebook(f"sqlite:///{private / 'gradebook.db'}") as gb:
        try:
            gb.find_submission(aid, student)
            present = True
        except MissingEntry:
            present = False
    if present and recorded.get("key") == record.get("key") and "cells" in recorded:
        return recorded
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
        error = autograde.run(aid, student)
        if error is not None:
            raise RuntimeError(f"nbgrader autograde failed for {student}:\n{error}")
    notebook_id = Path(course.notebook_name).stem
    worth, manual = points(course), manual_cells(course)
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
            if grade.name in manual:
                cells[grade.name] = {"manual": True, "points": worth.get(grade.name, 0.0)}
                continue
            kernel_score = float(grade.auto_score or 0)
            verdict = verdicts.get(grade.name) or {
                "passed": False,
                "reason": "not checked: " + (record.get("problem_message") or "no notebook"),
            }
            final = worth.get(grade.name, 0.0) if verdict.get("passed") else 0.0
            kernel_passed = kernel_score >= worth.get(grade.name, 0.0) > 0
            flags += tamper_flags(grade.name, kernel_passed, verdict)
            grade.auto_score = final
            grade.needs_manual_grade = grade.manual_score is not None  # nbgrader's rule
            cells[grade.name] = {
                "points": worth.get(grade.name, 0.0), "auto": final, "kernel_passed": kernel_passed,
                "trusted": verdict,
            }  # fmt: skip
        gb.db.commit()
    result = {"key": record.get("key"), "cells": cells, "flags": sorted(set(flags))}
    _atomic_write(recorded_path, json.dumps(result, indent=1))
    return result


def read_scores(settings: Settings, course: Course) -> dict[str, dict]:
    """Every submission of the assignment in the gradebook: the scores as the gradebook has them.

    student -> {"score", "max_score", "cells": {grade_id: score, or None while a manually graded
    cell waits for the instructor}, "manual": {grade_id: True where an instructor set the score}}.
    """
    from nbgrader.api import Gradebook

    worth, manual = points(course), manual_cells(course)
    notebook_id = Path(course.notebook_name).stem
    scores = {}
    with Gradebook(f"sqlite:///{settings.out / 'nbgrader' / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(settings.assignment_id):
            notebook = next(nb for nb in submission.notebooks if nb.name == notebook_id)
            cells, by_hand = {}, {}
            for grade in notebook.grades:
                # nbgrader marks an answer left as released "no response" (0, nothing to grade)
                pending = (grade.name in manual and grade.manual_score is None
                           and grade.needs_manual_grade)  # fmt: skip
                cells[grade.name] = None if pending else float(grade.score or 0)
                by_hand[grade.name] = grade.manual_score is not None
            scores[submission.student_id] = {
                "score": round(sum(v for v in cells.values() if v is not None), 6),
                "max_score": sum(worth.values()),
                "cells": {g: cells.get(g) for g in worth},
                "manual": by_hand,
            }
    return scores
