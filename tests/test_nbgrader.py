"""The nbgrader release and round trip of every assignment, through the real nbgrader CLI.

- assignments/ is exactly what `nbgrader generate_assignment` makes from solutions/ today, and
  holds no solution code or hidden-test text;
- the unmodified release scores 0 (and the run completes), the solution handed in as a student
  scores full marks, and a partly wrong submission scores exactly the tests it should pass;
- feedback and export, the rest of the instructor workflow in the README, produce their files.
"""

from __future__ import annotations

import csv
import filecmp
import re

import nbformat
import pytest
from course import (
    MARKERS,
    PARTLY_WRONG,
    ROOT,
    assignment_ids,
    cell_scores,
    filled_release,
    make_course,
    nbgrader,
    needs_manual_grade,
    submit,
)

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

# ------------------------------------------------------------------------ release is up to date


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_committed_release_matches_a_fresh_generate(tmp_path, assignment_id):
    course = make_course(tmp_path, assignment_id)
    fresh, committed = course / "assignments" / assignment_id, ROOT / "assignments" / assignment_id
    assert committed.is_dir(), f"assignments/{assignment_id} is missing: run `make release`"
    assert _files(fresh) == _files(committed), (
        f"assignments/{assignment_id} has other files than a fresh release: run `make release`"
    )
    stale = [str(f) for f in _files(fresh) if not filecmp.cmp(fresh / f, committed / f, False)]
    assert not stale, (
        f"assignments/{assignment_id}: {stale} differ from a fresh release: run `make release`"
    )


BLOCK = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", flags=re.S)


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def secret_lines(source) -> set[str]:
    """Lines that only solution and hidden-test blocks of a source notebook hold."""
    secret, public = set(), set()
    for cell in source.cells:
        for block in BLOCK.finditer(cell.source):
            secret |= _lines(block.group(2))
        public |= _lines(BLOCK.sub("", cell.source))
    return secret - public


def leaks(source, release) -> list[str]:
    """Secret lines of `source` (and nbgrader markers) that appear in `release`."""
    released = set().union(*(_lines(c.source) for c in release.cells))
    markers = [line for line in released if MARKERS.search(line)]
    return sorted(markers + list(secret_lines(source) & released))


@pytest.mark.parametrize("assignment_id", assignment_ids())
def test_release_leaks_no_solution_or_hidden_test(assignment_id):
    for source_nb in sorted((ROOT / "solutions" / assignment_id).glob("*.ipynb")):
        source = nbformat.read(source_nb, as_version=4)
        assert secret_lines(source), f"{source_nb.name} has no solution or hidden-test blocks"
        release = nbformat.read(ROOT / "assignments" / assignment_id / source_nb.name, 4)
        found = leaks(source, release)
        assert not found, f"{assignment_id}/{source_nb.name} leaks: {found[:5]}"


def test_leak_check_catches_planted_solution_and_hidden_test():
    aid = assignment_ids()[0]
    (source_nb,) = sorted((ROOT / "solutions" / aid).glob("*.ipynb"))
    source = nbformat.read(source_nb, as_version=4)
    release = nbformat.read(ROOT / "assignments" / aid / source_nb.name, 4)
    assert leaks(source, release) == []
    solution = next(c for c in source.cells if "### BEGIN SOLUTION" in c.source)
    hidden = next(c for c in source.cells if "### BEGIN HIDDEN TESTS" in c.source)
    secret = secret_lines(source)
    planted_solution = next(iter(_lines(BLOCK.search(solution.source).group(2)) & secret))
    planted_test = next(iter(_lines(BLOCK.search(hidden.source).group(2)) & secret))
    release.cells[-1].source += f"\n{planted_solution}\n    {planted_test}"
    assert leaks(source, release) == sorted([planted_solution, planted_test])


# ------------------------------------------------------------------------ round trip



def test_every_assignment_has_a_partly_wrong_case():
    assert set(PARTLY_WRONG) == set(assignment_ids())


def _points(source_nb) -> dict[str, float]:
    nb = nbformat.read(source_nb, as_version=4)
    meta = [c.metadata.get("nbgrader", {}) for c in nb.cells]
    return {m["grade_id"]: float(m["points"]) for m in meta if m.get("grade")}


def _manual(source_nb) -> set[str]:
    """Grade ids of the written answers, graded by hand (nbgrader: solution and grade)."""
    meta = [c.metadata.get("nbgrader", {}) for c in nbformat.read(source_nb, as_version=4).cells]
    return {m["grade_id"] for m in meta if m.get("grade") and m.get("solution")}


def _autograded_scores(g, student: str, fails=()) -> None:
    """The autograded cells score their points (0 in `fails`); every written answer, filled
    in, waits for the instructor: no score yet (nbgrader's 0.0) and marked for manual grading."""
    expected = {cell: 0.0 if cell in fails or cell in g["manual"] else pts
                for cell, pts in g["points"].items()}  # fmt: skip
    assert cell_scores(g["course"], g["aid"], student) == expected, g["log"]
    assert needs_manual_grade(g["course"], g["aid"], student) == g["manual"], g["log"]


# Plain nbgrader's own path (autograde in a kernel, feedback, export, validate) on one assignment of
# each kind of check: a1 (functions), a2 (layers, and a trained model graded by its outcome). Every
# assignment's exact scores come from the hardened grader's tests (test_autograde*.py), and every
# solution notebook runs its hidden tests the way plain nbgrader does in test_notebooks.py; running
# the PyTorch assignments through plain nbgrader as well cost 4.5 minutes of the suite's 2 cores.
PLAIN_ROUND_TRIP = ["a1_conv_arithmetic", "a2_layers_and_backprop"]


def test_the_plain_round_trip_assignments_exist():
    assert set(PLAIN_ROUND_TRIP) <= set(assignment_ids())


@pytest.fixture(scope="module", params=PLAIN_ROUND_TRIP)
def graded_course(request, tmp_path_factory):
    """One course per assignment with three submissions autograded in one run."""
    aid = request.param
    course = make_course(tmp_path_factory.mktemp(aid), aid)
    (source_nb,) = sorted((ROOT / "solutions" / aid).glob("*.ipynb"))
    release_nb = course / "assignments" / aid / source_nb.name
    submit(course, aid, "untouched", nbformat.read(release_nb, as_version=4))
    submit(course, aid, "solution", filled_release(release_nb, source_nb))
    wrong = filled_release(release_nb, source_nb, PARTLY_WRONG[aid]["replace"])
    submit(course, aid, "partly_wrong", wrong)
    result = nbgrader(course, "autograde", aid, "--force")
    log = f"{result.stdout}\n{result.stderr}"
    return {"aid": aid, "course": course, "points": _points(source_nb), "log": log,
            "manual": _manual(source_nb)}  # fmt: skip


def test_points_and_graded_cells(graded_course):
    points = graded_course["points"]
    assert sum(points.values()) >= 20 and len(points) >= 6, points


def test_untouched_release_scores_zero(graded_course):
    g = graded_course
    scores = cell_scores(g["course"], g["aid"], "untouched")
    assert scores == dict.fromkeys(g["points"], 0.0), g["log"]
    # an answer left as released is nbgrader's "no response": 0, nothing to grade by hand
    assert needs_manual_grade(g["course"], g["aid"], "untouched") == set(), g["log"]
    assert (g["course"] / "autograded" / "untouched" / g["aid"]).is_dir()


def test_solution_scores_full_marks(graded_course):
    g = graded_course
    _autograded_scores(g, "solution")


def test_partly_wrong_scores_exactly_the_tests_it_passes(graded_course):
    g = graded_course
    _autograded_scores(g, "partly_wrong", PARTLY_WRONG[g["aid"]]["fails"])


def test_feedback_and_export(graded_course):
    g = graded_course
    course, aid = g["course"], g["aid"]
    result = nbgrader(course, "generate_feedback", aid, "--force")
    assert result.returncode == 0, result.stderr
    for student in ("untouched", "solution", "partly_wrong"):
        html = list((course / "feedback" / student / aid).glob("*.html"))
        assert html, f"no feedback for {student}: {result.stderr}"
    result = nbgrader(course, "export")
    assert result.returncode == 0, result.stderr
    with open(course / "grades.csv") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f)}
    total = sum(g["points"].values())
    written = sum(g["points"][cell] for cell in g["manual"])  # not graded yet
    assert float(rows["solution"]["score"]) == total - written
    assert float(rows["untouched"]["score"]) == 0
    assert float(rows["solution"]["max_score"]) == total


def test_validate_tells_a_student_whether_the_visible_tests_pass(graded_course):
    # What the lab's Validate button runs: the solution passes, the untouched release does not.
    g = graded_course
    course, aid = g["course"], g["aid"]
    solved = course / "submitted" / "solution" / aid / f"{aid}.ipynb"
    untouched = course / "submitted" / "untouched" / aid / f"{aid}.ipynb"
    assert (
        "Success! Your notebook passes all the tests."
        in nbgrader(course, "validate", str(solved)).stdout
    )
    result = nbgrader(course, "validate", str(untouched))
    assert "NotImplementedError" in result.stdout and "Success" not in result.stdout
