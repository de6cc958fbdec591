"""The hardened grader on a3_training_deep_nets: random layers graded on seeded statistics, and
written answers graded by hand.

One grading run of four submissions, each with the exact score and flags it must get: the
solution (every autograded point, its three written answers waiting for the instructor), the
typical partly wrong submission of the round-trip test (its exact score, no flag), one whose
dropout calls cnnlib.numpy's reference (that cell lost and flagged; dropout's backward, graded with
the solution's forward plugged in, keeps its points), and one that forges its randomness: a
dropout mask drawn once and reused whatever generator it is given, and a He initialiser that
ignores its generator for NumPy's global one (both cells lost: the same generator state must give
the same numbers, another state other numbers). Then the instructor grades a written answer
through nbgrader's gradebook API, as the formgrader does, and `--export-only` brings the new total
to grades.csv and nbgrader's export. Each submission takes about 8 s of CPU in its sandbox and 4 s
for the trusted checks.
"""

from __future__ import annotations

import nbformat
import pytest
from course import (
    PARTLY_WRONG,
    ROOT,
    assert_exact_row,
    assert_untouched_scores_zero,
    filled_release,
    grade,
    grade_rows,
)
from test_autograde import needs_bwrap

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

AID = "a3_training_deep_nets"
RELEASE_NB = ROOT / "assignments" / AID / f"{AID}.ipynb"
SOURCE_NB = ROOT / "solutions" / AID / f"{AID}.ipynb"
# Generous for a loaded machine: one a3 notebook takes about 8 s of CPU in its sandbox.
OPTIONS = ["--wall-budget", "300", "--memory-mb", "3072", "--workers", "2"]

POINTS = {
    "test_fan_in": 2, "test_xavier_init": 3, "test_he_init": 3, "test_batchnorm_forward": 5,
    "test_batchnorm_backward": 6, "test_batchnorm_backward_alt": 4,
    "test_spatial_batchnorm_forward": 3, "test_spatial_batchnorm_backward": 3,
    "test_dropout_forward": 4, "test_dropout_backward": 3, "test_sgd": 2, "test_sgd_momentum": 3,
    "test_adam": 4, "test_check_initial_loss": 2, "test_overfit_small_subset": 4,
    "test_learning_rate_search": 4,
}  # fmt: skip
WRITTEN = {"answer_bn_placement": 2, "answer_dropout_scaling": 2, "answer_init_check": 2}
AUTOGRADED = sum(POINTS.values())

CALLS_DROPOUT = """
import cnnlib.numpy


def dropout_forward(x, keep_prob, train, rng):
    out, (mask, keep_prob, train, _) = cnnlib.numpy.dropout_forward(x, keep_prob, train, seed=rng)
    return out, (mask, keep_prob, train)
"""

# The mask is drawn once, from a seed of the student's choosing, and reused: right statistics,
# right scaling, test mode right, but not the generator's decision.
FORGED_DROPOUT = """
_masks = {}


def dropout_forward(x, keep_prob, train, rng):
    if not train:
        return x.copy(), (None, keep_prob, train)
    key = (x.shape, keep_prob)
    if key not in _masks:
        _masks[key] = np.random.default_rng(1234).random(x.shape) < keep_prob
    mask = _masks[key]
    return (x * mask / keep_prob).astype(x.dtype), (mask, keep_prob, train)
"""
GLOBAL_RNG_INIT = """
def xavier_init(shape, rng, dtype=np.float64):
    return (math.sqrt(1.0 / fan_in(shape)) * rng.standard_normal(shape)).astype(dtype)


def he_init(shape, rng, dtype=np.float64):
    return (math.sqrt(2.0 / fan_in(shape)) * np.random.randn(*shape)).astype(dtype)
"""


def _solution(replace=None):
    return filled_release(RELEASE_NB, SOURCE_NB, replace)


def _lost(*cells: str) -> float:
    return AUTOGRADED - sum(POINTS[c] for c in cells)


def _grade(*args: str):
    return grade(AID, *args, *OPTIONS, timeout=1200)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("a3")
    subs, out = tmp / "subs", tmp / "out"
    partly = PARTLY_WRONG[AID]
    notebooks = {
        "solution": _solution(),
        "partly_wrong": _solution(partly["replace"]),
        "calls_cnnlib": _solution({"dropout_forward": CALLS_DROPOUT}),
        "forged_randomness": _solution({"dropout_forward": FORGED_DROPOUT,
                                        "init": GLOBAL_RNG_INIT}),
        "untouched": nbformat.read(RELEASE_NB, as_version=4),
    }  # fmt: skip
    expected = {
        "solution": (AUTOGRADED, set()),
        "partly_wrong": (_lost(*partly["fails"]), set()),
        "calls_cnnlib": (_lost("test_dropout_forward"), {"calls_reference:test_dropout_forward"}),
        "forged_randomness": (_lost("test_dropout_forward", "test_he_init"), set()),
        "untouched": (0, set()),
    }
    for student, notebook in notebooks.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(notebook, subs / student / f"{AID}.ipynb")
    result = _grade("--submissions", str(subs), "--out", str(out))
    return {"result": result, "rows": grade_rows(out), "out": out, "expected": expected}


@needs_bwrap
@pytest.mark.parametrize("student", ["solution", "partly_wrong", "calls_cnnlib",
                                     "forged_randomness"])  # fmt: skip
def test_each_submission_gets_its_exact_score_and_flags(graded, student):
    assert AUTOGRADED + sum(WRITTEN.values()) == 61
    row = assert_exact_row(graded, student, POINTS, max_score=61)
    # the written answers are waiting for the instructor: pending, never a zero
    assert row["pending"] == "3" and all(row[cell] == "pending" for cell in WRITTEN), row


@needs_bwrap
def test_the_untouched_release_scores_zero(graded):
    # written answers left as released are nbgrader's "no response": 0, not waiting for anyone
    row = assert_untouched_scores_zero(graded)
    assert all(row[cell] == "0" for cell in WRITTEN), row
    feedback = (graded["out"] / "feedback" / "untouched" / f"{AID}.html").read_text()
    assert feedback.count("no answer: the cell is as it was released") == len(WRITTEN)


@needs_bwrap
def test_the_statistics_say_what_went_wrong(graded):
    import json

    work = graded["out"] / "work"
    forged = json.loads((work / "forged_randomness" / "recorded.json").read_text())["cells"]
    reason = forged["test_dropout_forward"]["trusted"]["reason"]
    assert "another generator state, another mask" in reason, reason
    assert "same generator state, same weights" in forged["test_he_init"]["trusted"]["reason"]
    # dropout's backward ran on the solution's forward, and the student's backward passed
    backward = forged["test_dropout_backward"]["trusted"]
    assert backward["passed"] and set(backward["plugged"]) == {"dropout_forward"}, backward
    partly = json.loads((work / "partly_wrong" / "recorded.json").read_text())["cells"]
    assert "kurtosis" in partly["test_he_init"]["trusted"]["reason"]  # uniform, not Gaussian


@needs_bwrap
def test_a_written_answer_waits_for_the_instructor_and_its_grade_reaches_grades_csv(graded):
    from nbgrader.api import Gradebook

    out = graded["out"]
    gradebook = f"sqlite:///{out / 'nbgrader' / 'gradebook.db'}"
    with Gradebook(gradebook) as gb:
        # what the formgrader lists: the notebook needs grading, and which cells
        (listed,) = [n for n in gb.notebook_submission_dicts(AID, AID)
                     if n["student"] == "solution"]  # fmt: skip
        assert listed["needs_manual_grade"]
        submission = gb.find_submission_notebook(AID, AID, "solution")
        waiting = {g.name for g in submission.grades if g.needs_manual_grade}
        assert waiting == set(WRITTEN)
        # the instructor grades one answer, as the formgrader's PUT /formgrader/api/grade does
        grade = gb.find_grade("answer_bn_placement", AID, AID, "solution")
        grade.manual_score, grade.needs_manual_grade = 1.5, False
        gb.db.commit()
    result = _grade("--export-only", "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    mine, theirs = grade_rows(out), grade_rows(out, "nbgrader_export.csv")
    row = mine["solution"]
    assert float(row["score"]) == AUTOGRADED + 1.5
    assert row["answer_bn_placement"] == "1.5" and row["pending"] == "2", row
    assert row["answer_dropout_scaling"] == "pending"
    for student in graded["expected"]:
        assert float(mine[student]["score"]) == float(theirs[student]["score"]), student
    feedback = (out / "feedback" / "solution" / f"{AID}.html").read_text()
    assert "2 answers still to be graded by hand" in feedback
