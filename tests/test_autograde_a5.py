"""The hardened grader on a5_understanding_cnns: maps against the reference, attacks by outcome.

One grading run of three submissions, each with the exact score and flags it must get: the
solution (full marks), the typical partly wrong submission of the round-trip test (its exact
score, no flag), and a hostile one: its saliency and its untargeted attack call cnnlib.explain
(blocked while the grader runs student code: both cells lost, both flagged), and its targeted
"attack" returns other images of the wanted classes, which the network does classify as wanted
but which lie far outside the budget (the cell lost: the grader measures the perturbation itself,
outside the sandbox, on the images that came back). Three submissions keep the run short: each
costs about 23 s of CPU (two notebook runs of about 11 s, mostly importing torch), on top of
about 20 s for the run itself.
"""

from __future__ import annotations

import json

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

AID = "a5_understanding_cnns"
RELEASE_NB = ROOT / "assignments" / AID / f"{AID}.ipynb"
SOURCE_NB = ROOT / "solutions" / AID / f"{AID}.ipynb"
# Generous for a loaded machine: one a5 notebook takes about 11 s of CPU in its sandbox, and
# torch imports well within 3 GB of address space (a peak of about 0.8 GB measured, and it
# runs the network under a 1 GB limit).
OPTIONS = ["--wall-budget", "300", "--memory-mb", "3072", "--workers", "2"]

POINTS = {
    "test_saliency": 5, "test_occlusion_positions": 3, "test_occlusion": 6, "test_project": 2,
    "test_fool_untargeted": 6, "test_fool_targeted": 6, "test_class_visualisation": 6,
    "test_total_variation": 3, "test_invert_features": 6,
}  # fmt: skip
TOTAL = sum(POINTS.values())

CALLS_SALIENCY = """
from cnnlib import explain


def saliency(model, x, target):
    return explain.saliency(model, x, target)
"""
CALLS_FGSM = """
from cnnlib.explain import fgsm


def fool_untargeted(model, x, y, epsilon, steps=20):
    return fgsm(model, x, y, epsilon, bounds=(0.0, 1.0))
"""
# Real shapes of the wanted classes: the network calls them what the attack wants, but they are
# other images, not small changes of x.
SWAPS_IMAGES = """
def fool_targeted(model, x, target, epsilon, steps=20):
    pool, pool_labels = textured_shapes(400, size=16, seed=99)
    pool, pool_labels = torch.from_numpy(pool), torch.from_numpy(pool_labels).long()
    return torch.stack([pool[pool_labels == int(c)][0] for c in target])
"""


def _fails(*cells: str) -> float:
    return TOTAL - sum(POINTS[c] for c in cells)


def _student(subs, name, replace=None):
    folder = subs / name
    folder.mkdir(parents=True)
    nbformat.write(filled_release(RELEASE_NB, SOURCE_NB, replace), folder / f"{AID}.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("a5")
    partly = PARTLY_WRONG[AID]
    subs = tmp / "subs"
    hostile = {"saliency": CALLS_SALIENCY, "fool_untargeted": CALLS_FGSM,
               "fool_targeted": SWAPS_IMAGES}  # fmt: skip
    expected = {
        "solution": (TOTAL, set()),
        "partly_wrong": (_fails(*partly["fails"]), set()),
        "calls_explain_swaps_images": (
            _fails("test_saliency", "test_fool_untargeted", "test_fool_targeted"),
            {"calls_reference:test_saliency", "calls_reference:test_fool_untargeted"},
        ),
    }
    _student(subs, "solution")
    _student(subs, "partly_wrong", partly["replace"])
    _student(subs, "calls_explain_swaps_images", hostile)
    (subs / "untouched").mkdir()
    nbformat.write(nbformat.read(RELEASE_NB, as_version=4), subs / "untouched" / f"{AID}.ipynb")
    out = tmp / "out"
    result = grade(AID, "--submissions", str(subs), "--out", str(out), *OPTIONS, timeout=1200)
    rows = grade_rows(out)
    return {"result": result, "rows": rows, "out": out, "expected": expected}


def _trusted(graded, student: str) -> dict:
    recorded = json.loads((graded["out"] / "work" / student / "recorded.json").read_text())
    return {cell: verdict["trusted"] for cell, verdict in recorded["cells"].items()}


@needs_bwrap
@pytest.mark.parametrize("student", ["solution", "partly_wrong", "calls_explain_swaps_images"])
def test_each_submission_gets_its_exact_score_and_flags(graded, student):
    assert TOTAL == 43
    assert_exact_row(graded, student, POINTS, max_score=TOTAL)


@needs_bwrap
def test_the_untouched_release_scores_zero(graded):
    assert_untouched_scores_zero(graded)


@needs_bwrap
def test_an_attack_is_judged_by_what_it_returns_not_by_what_it_claims(graded):
    verdict = _trusted(graded, "calls_explain_swaps_images")["test_fool_targeted"]
    assert not verdict["passed"] and "over the budget epsilon = 0.2000" in verdict["reason"]
    # the outcome checks never reached the notebook's sandbox: its plan has no cases for them
    plan = json.loads((graded["out"] / "plan.json").read_text())
    for cell in ("test_fool_untargeted", "test_fool_targeted", "test_class_visualisation",
                 "test_invert_features"):  # fmt: skip
        assert all(item.get("trusted_only") and "cases" not in item for item in plan[cell])


@needs_bwrap
def test_a_mistake_in_a_helper_costs_the_helpers_cell_only(graded):
    trusted = _trusted(graded, "partly_wrong")
    assert trusted["test_occlusion"]["passed"]
    assert trusted["test_occlusion"]["plugged"] == ["occlusion_positions"]
    assert trusted["test_invert_features"]["passed"]
    assert trusted["test_invert_features"]["plugged"] == ["total_variation"]
    # where the map is wrong: the first element off, and how far
    assert trusted["test_saliency"]["reason"].count("element [") == 1, trusted["test_saliency"]
