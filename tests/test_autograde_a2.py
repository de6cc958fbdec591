"""The hardened grader on a2_layers_and_backprop: a trained network graded by its outcome.

One grading run of a handful of submissions, each with the exact score, flags and problems it must
get: the solution with its trained weights (full marks), the typical partly wrong submission of the
round-trip test (its exact score, no flag), one with a pasted and renamed reference (its points
kept, and listed as a copy in the report) but no weights file (the outcome cell lost, nothing
else), and one that calls cnnlib.numpy's reference (those cells lost, flagged) and handed in its
weights as a pickle (which does not load: the outcome cell lost too). The grader never trains:
the notebook loads the weights handed in (cnnlib.grading_mode()). Four submissions keep the run
short: each takes about 8 s of CPU, on top of about 17 s for the run itself.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
from course import PARTLY_WRONG, ROOT, assert_exact_row, filled_release, grade, grade_rows
from test_autograde import needs_bwrap

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

AID = "a2_layers_and_backprop"
RELEASE_NB = ROOT / "assignments" / AID / f"{AID}.ipynb"
SOURCE_NB = ROOT / "solutions" / AID / f"{AID}.ipynb"
WEIGHTS = "a2_convnet.weights.npz"
# Generous for a loaded machine: one a2 notebook takes about 10 s of CPU in its sandbox.
OPTIONS = ["--wall-budget", "300", "--memory-mb", "3072", "--workers", "2"]

POINTS = {
    "test_affine_forward": 3, "test_affine_backward": 4, "test_relu_forward": 1,
    "test_relu_backward": 2, "test_softmax_loss": 4, "test_svm_loss": 4,
    "test_numeric_gradient": 4, "test_two_layer_loss": 6, "test_sgd_momentum": 2,
    "test_conv_forward_naive": 6, "test_conv_backward_naive": 8,
    "test_max_pool_forward_naive": 3, "test_max_pool_backward_naive": 4, "test_conv_forward": 5,
    "test_convnet_loss": 6, "test_convnet_accuracy": 8,
}  # fmt: skip
TOTAL = sum(POINTS.values())

# Calls the reference for two cells: both lost and flagged; the convnet's checks, which build on
# them, run with the solution's versions plugged in and keep their points.
CALLS_CONV = """
from cnnlib.numpy import conv_forward
"""
CALLS_SOFTMAX = """
import cnnlib.numpy


def softmax_loss(scores, y):
    return cnnlib.numpy.softmax_loss(scores, y)
"""

# cnnlib's softmax_loss with its docstring and comments gone and every name changed but the
# starter's (the checks call a function with the arguments named as the starter names them).
PASTED_SOFTMAX = '''
def softmax_loss(scores, y):
    _validate(scores, y)
    count = scores.shape[0]
    idx = np.arange(count)
    centred = scores - scores.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(centred).sum(axis=1, keepdims=True))
    logp = centred - log_norm
    loss = -float(logp[idx, y].mean())
    grad = np.exp(logp)
    grad[idx, y] -= 1
    grad /= count
    return loss, grad


def _validate(scores, y):
    """Nothing to check here."""
'''


class _Marker:
    """Unpickling this creates a file: proof that someone loaded the pickle."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _train_weights(folder: Path) -> Path:
    """The solution's own trained weights: its notebook's code cells run in quick mode."""
    code = textwrap.dedent(f"""
        import nbformat
        names = {{"__name__": "__main__"}}
        for cell in nbformat.read({str(SOURCE_NB)!r}, 4).cells:
            meta = cell.metadata.get("nbgrader", {{}})
            if cell.cell_type == "code" and not meta.get("grade"):
                exec(cell.source, names)
    """)  # fmt: skip
    env = {**os.environ, "CNNLIB_QUICK": "1", "MPLBACKEND": "Agg"}
    env.pop("CNNLIB_GRADING", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / WEIGHTS


def _student(subs: Path, name: str, notebook, weights: Path | bytes | None) -> None:
    folder = subs / name
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{AID}.ipynb")
    if isinstance(weights, Path):
        shutil.copy(weights, folder / WEIGHTS)
    elif isinstance(weights, bytes):
        (folder / WEIGHTS).write_bytes(weights)


def _solution(replace=None):
    return filled_release(RELEASE_NB, SOURCE_NB, replace)


def _fails(*cells: str) -> float:
    return TOTAL - sum(POINTS[c] for c in cells)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("a2")
    (tmp / "train").mkdir()
    weights = _train_weights(tmp / "train")
    marker = tmp / "UNPICKLED"
    partly = PARTLY_WRONG[AID]
    subs = tmp / "subs"
    expected = {
        "solution": (TOTAL, set()),
        "partly_wrong": (_fails(*partly["fails"]), set()),
        "calls_cnnlib_pickled": (_fails("test_conv_forward", "test_softmax_loss",
                                        "test_convnet_accuracy"),
                                 {"calls_reference:test_conv_forward",
                                  "calls_reference:test_softmax_loss"}),
        "pasted_no_weights": (_fails("test_convnet_accuracy"), set()),
    }  # fmt: skip
    _student(subs, "solution", _solution(), weights)
    # the partly wrong answers still train (the convnet never uses the input's dx)
    _student(subs, "partly_wrong", _solution(partly["replace"]), weights)
    calls = _solution({"conv_forward": CALLS_CONV, "softmax_loss": CALLS_SOFTMAX})
    _student(subs, "calls_cnnlib_pickled", calls, pickle.dumps(_Marker(marker)))
    _student(subs, "pasted_no_weights", _solution({"softmax_loss": PASTED_SOFTMAX}), None)
    out = tmp / "out"
    result = grade(AID, "--submissions", str(subs), "--out", str(out), *OPTIONS, timeout=1200)
    rows = grade_rows(out)
    return {"result": result, "rows": rows, "out": out, "expected": expected, "marker": marker}


@needs_bwrap
@pytest.mark.parametrize("student", ["solution", "partly_wrong", "pasted_no_weights",
                                     "calls_cnnlib_pickled"])  # fmt: skip
def test_each_submission_gets_its_exact_score_and_flags(graded, student):
    assert TOTAL == 70
    assert_exact_row(graded, student, POINTS, max_score=TOTAL)


@needs_bwrap
def test_weights_that_are_missing_or_pickled_cost_the_outcome_cell(graded):
    row = graded["rows"]["pasted_no_weights"]  # nothing else wrong: that cell alone
    assert float(row["test_convnet_accuracy"]) == 0
    assert all(float(row[c]) == p for c, p in POINTS.items() if c != "test_convnet_accuracy")
    work = graded["out"] / "work"
    recorded = json.loads((work / "calls_cnnlib_pickled" / "recorded.json").read_text())
    verdict = recorded["cells"]["test_convnet_accuracy"]["trusted"]
    # refused in the sandbox by np.load(allow_pickle=False); never opened on the trusted side
    assert "contains pickled" in verdict["reason"], verdict
    assert not graded["marker"].exists()
    missing = json.loads((work / "pasted_no_weights" / "recorded.json").read_text())
    assert "No such file" in missing["cells"]["test_convnet_accuracy"]["trusted"]["reason"]


@needs_bwrap
def test_a_pasted_reference_is_listed_as_a_copy_and_the_rest_is_not(graded):
    report = (graded["out"] / "report.md").read_text()
    copies = report.split("## Answers that look copied")[1].split("\n## ")[0]
    pasted = "**pasted_no_weights**, `softmax_loss`: a near-copy of "
    assert pasted + "`cnnlib.numpy.losses.softmax_loss`" in copies
    assert copies.count("a near-copy of") == 1, copies  # the solution's own answers are not


@needs_bwrap
def test_the_convnet_is_graded_with_the_solutions_layers_where_the_students_failed(graded):
    work = graded["out"] / "work"
    cells = json.loads((work / "calls_cnnlib_pickled" / "recorded.json").read_text())["cells"]
    convnet = cells["test_convnet_loss"]["trusted"]
    assert convnet["passed"] and set(convnet["plugged"]) >= {"conv_forward", "softmax_loss"}
    assert "conv_forward" in cells["test_convnet_accuracy"]["trusted"]["plugged"]
    partly = json.loads((work / "partly_wrong" / "recorded.json").read_text())["cells"]
    convnet = partly["test_convnet_loss"]["trusted"]
    assert convnet["passed"] and set(convnet["plugged"]) == {
        "relu_backward", "softmax_loss", "conv_backward_naive"}
