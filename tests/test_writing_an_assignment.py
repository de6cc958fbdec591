"""The README's "Writing an assignment", followed to the letter: a new assignment, graded.

The toy assignment's cells and checks file are read from the README itself, so the README cannot
drift from what works. Nothing inside cnnlib/ is touched: the course gets a new folder under
solutions/ and nothing else.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from course import ROOT, filled_release, nbgrader
from test_autograde import FAST, needs_bwrap

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

AID = "toy_relu"
CELL = re.compile(
    r"<!-- toy_relu cell: (\w+), ([a-z -]+?)(?:, (\d+) points)? -->\n```py\n(.*?)```", re.S
)
CHECKS = re.compile(r"<!-- toy_relu checks.py -->\n```py\n(.*?)```", re.S)
KINDS = {
    "read-only": {"grade": False, "locked": True, "solution": False},
    "autograded answer": {"grade": False, "locked": False, "solution": True},
    "autograder tests": {"grade": True, "locked": True, "solution": False},
}


def _from_readme():
    text = (ROOT / "README.md").read_text()
    cells = []
    for grade_id, kind, points, source in CELL.findall(text):
        meta = {**KINDS[kind], "grade_id": grade_id, "schema_version": 3, "task": False}
        if points:
            meta["points"] = int(points)
        cell = nbformat.v4.new_code_cell(source.rstrip("\n"))
        cell.metadata["nbgrader"] = meta
        cells.append(cell)
    (checks,) = CHECKS.findall(text)
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    return nb, checks


def test_the_readme_describes_a_whole_assignment():
    nb, checks = _from_readme()
    kinds = [(c.metadata["nbgrader"]["grade_id"], c.metadata["nbgrader"]["solution"])
             for c in nb.cells]  # fmt: skip
    assert kinds == [("imports", False), ("relu", True), ("test_relu", False)]
    assert 'hidden_tests("test_relu", globals())' in nb.cells[2].source
    assert "assignment = Assignment(" in checks


@needs_bwrap
def test_a_new_assignment_written_from_the_readme_grades_end_to_end(tmp_path):
    nb, checks = _from_readme()
    course = tmp_path / "course"
    source = course / "solutions" / AID
    source.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    nbformat.write(nb, source / f"{AID}.ipynb")
    (source / "checks.py").write_text(checks)
    result = nbgrader(course, "generate_assignment", AID, "--force")  # what `make release` runs
    assert result.returncode == 0, result.stderr
    release = course / "assignments" / AID
    assert sorted(p.name for p in release.iterdir()) == [f"{AID}.ipynb"]  # checks.py stays home

    subs = tmp_path / "subs"
    answers = {
        "solution": None,
        "untouched": "",
        "sign_slip": "def relu(x):\n    return x * (x > 0)\n",  # -inf * 0 is nan, not 0
        "calls_cnnlib": "from cnnlib.numpy import relu_forward\n\n"
                        "def relu(x):\n    return relu_forward(x)[0]\n",
    }  # fmt: skip
    for student, answer in answers.items():
        (subs / student).mkdir(parents=True)
        if answer == "":
            filled = nbformat.read(release / f"{AID}.ipynb", 4)
        else:
            filled = filled_release(release / f"{AID}.ipynb", source / f"{AID}.ipynb",
                                    None if answer is None else {"relu": answer})  # fmt: skip
        nbformat.write(filled, subs / student / f"{AID}.ipynb")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "cnnlib", "grade", AID, "--course", str(course),
         "--submissions", str(subs), "--out", str(out), *FAST],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with open(out / "grades.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert {s: (float(r["score"]), r["flags"]) for s, r in rows.items()} == {
        "solution": (2, ""), "untouched": (0, ""), "sign_slip": (0, ""),
        "calls_cnnlib": (0, "calls_reference:test_relu"),
    }  # fmt: skip
    feedback = (out / "feedback" / "sign_slip" / f"{AID}.html").read_text()
    found = "The hidden tests found an input your code gets wrong: relu(x=&lt;array (1, 3)"
    assert found in feedback
    assert "keep the shape and the dtype" in feedback  # the check's hint
