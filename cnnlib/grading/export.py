"""Phase 2c: the grades, exported from the one gradebook, as the people who need them want them.

- `grades.csv`: one row per submission (`student_id, name, score, max_score, pending, flags,
  problems`, then one column per grade cell: points, or "pending" while a manually graded answer
  waits), read from the gradebook, manual grades included;
- `nbgrader_export.csv`: nbgrader's own CSV export of the same gradebook, for this assignment
  (they agree by construction, and a test keeps it so);
- `canvas.csv` (when the submissions came from Canvas or the roster has Canvas ids): the columns
  Canvas's gradebook import reads (Student, ID, SIS User ID, SIS Login ID, Section, and the
  assignment's column), one row per student of the roster, blank for a student with no submission;
- `grades.json`: everything the report and feedback used, for scripts.
"""

from __future__ import annotations

import csv
import io
import json
import os

from cnnlib.grading.course import Course, Settings, points
from cnnlib.grading.nbrunner import _atomic_write

__all__ = ["write_canvas", "write_exports"]


def _csv(rows: list[list]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_exports(settings: Settings, course: Course, entries: list[dict]) -> None:
    """grades.csv, nbgrader_export.csv and grades.json (entries: see autograde.phase2)."""
    grade_ids = list(points(course))
    rows = [["student_id", "name", "score", "max_score", "pending", "flags", "problems",
             *grade_ids]]  # fmt: skip
    for e in entries:
        cells = e["scores"]
        rows.append([
            e["student_id"], e.get("name", ""), f"{e['score']:g}", f"{e['max_score']:g}",
            sum(1 for g in grade_ids if cells.get(g) is None and g in e["cells"]
                and e["cells"][g].get("manual")),
            ";".join(e["flags"]), ";".join(e["problems"]),
            *("pending" if cells.get(g) is None else f"{cells[g]:g}" for g in grade_ids),
        ])  # fmt: skip
    _atomic_write(settings.out / "grades.csv", _csv(rows))
    _atomic_write(settings.out / "grades.json", json.dumps(entries, indent=1, default=str))
    # nbgrader's own CSV export plugin (what `nbgrader export` runs), on the same gradebook
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    target = settings.out / "nbgrader_export.csv"
    plugin = CsvExportPlugin(to=str(target) + ".tmp", assignment=[settings.assignment_id])
    with Gradebook(f"sqlite:///{settings.out / 'nbgrader' / 'gradebook.db'}") as gb:
        plugin.export(gb)
    os.replace(str(target) + ".tmp", target)


def write_canvas(settings: Settings, entries: list[dict], roster, column: str) -> bool:
    """canvas.csv for Canvas's gradebook import; False when there are no Canvas ids to use."""
    by_student = {e["student_id"]: e for e in entries}
    rows = [["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column]]
    if roster is not None:
        students = roster.extra.items()
        for student, info in students:
            canvas_id = info.get("canvas_id") or info.get("id") or info.get("lms_id") or ""
            if not canvas_id.isdigit():
                return False
            entry = by_student.get(student)
            rows.append([
                info.get("name", ""), canvas_id, info.get("sis user id", ""),
                info.get("sis login id", student), info.get("section", ""),
                "" if entry is None else f"{entry['score']:g}",
            ])  # fmt: skip
    else:
        if not entries or not all(str(e.get("lms_id", "")).isdigit() for e in entries):
            return False
        for e in entries:
            rows.append([e.get("name", ""), e["lms_id"], "", "", "", f"{e['score']:g}"])
    _atomic_write(settings.out / "canvas.csv", _csv(rows))
    return True
