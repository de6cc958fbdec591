"""The hardened grader on a4_resnets_and_transfer: PyTorch modules, and trained networks graded
by their outcome.

One grading run of four submissions, each with the exact score, flags and problems it must get:
the solution with its two trained networks (full marks); the typical partly wrong submission of
the round-trip test with the same weights (its exact score, no flag); one whose BasicBlock
subclasses the zoo's (`cnnlib.torch.models.resnet.BasicBlock`, removed while grading: the
block's cells lost and flagged, and the trained networks, built from that block, lost too; the
network's own checks run with the solution's block plugged in and keep their points); and the
solution's code with its weights handed in as torch pickles (`torch.save`) under the names of
the safetensors files, one of them built to create a file when unpickled: both outcome cells
lost, no flag, and nothing unpickled anywhere. The grader never trains: the notebook loads the
weights handed in (cnnlib.grading_mode()). torch imports within the default address-space limit
(--memory-mb 3072, RLIMIT_AS; measured: it imports and runs a ResNet-20 under 1536 MB, about
270 MB resident).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

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

AID = "a4_resnets_and_transfer"
RELEASE_NB = ROOT / "assignments" / AID / f"{AID}.ipynb"
SOURCE_NB = ROOT / "solutions" / AID / f"{AID}.ipynb"
WEIGHTS = ("a4_resnet8.weights.safetensors", "a4_transfer.weights.safetensors")
# Generous for a loaded machine: one a4 submission takes about 20 s of CPU in its sandboxes
# (10 s the notebook, torch's import and the hidden tests included; 9 s the trusted checks).
OPTIONS = ["--wall-budget", "300", "--memory-mb", "3072", "--workers", "2"]

POINTS = {
    "test_basic_block_shapes": 3, "test_basic_block_parameters": 4,
    "test_basic_block_forward": 4, "test_basic_block_identity": 3,
    "test_basic_block_gradients": 2, "test_bottleneck_shapes": 4, "test_bottleneck_forward": 4,
    "test_resnet_parameters": 4, "test_resnet_forward_backward": 4, "test_train_loop": 5,
    "test_resnet8_accuracy": 8, "test_freeze_early": 3, "test_transfer_accuracy": 8,
}  # fmt: skip
TOTAL = sum(POINTS.values())
BLOCK_CELLS = ("test_basic_block_shapes", "test_basic_block_parameters",
               "test_basic_block_forward", "test_basic_block_identity",
               "test_basic_block_gradients")  # fmt: skip
TRAINED = ("test_resnet8_accuracy", "test_transfer_accuracy")

# The zoo's block under the starter's signature: right everywhere the zoo is.
SUBCLASSES_ZOO = """
from cnnlib.torch.models.cifar_resnet import ZeroPadShortcut
from cnnlib.torch.models.resnet import BasicBlock as ZooBlock


class BasicBlock(ZooBlock):
    def __init__(self, in_channels, out_channels, stride=1, shortcut="B"):
        super().__init__(in_channels, out_channels, stride)
        if shortcut == "A" and self.downsample is not None:
            self.downsample = ZeroPadShortcut(in_channels, out_channels, stride)
"""


class _Marker:
    """Unpickling this creates a file: proof that someone loaded the pickle."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _train_weights(folder: Path) -> tuple[Path, Path]:
    """The solution's own trained networks: its notebook's code cells run in quick mode."""
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
                            capture_output=True, text=True, timeout=900)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / WEIGHTS[0], folder / WEIGHTS[1]


def _pickled_weights(safetensors_file: Path, marker: Path | None) -> bytes:
    """The same weights as torch.save writes them (a pickle), with a marker inside if given."""
    import torch
    from safetensors.torch import load_file

    state = load_file(safetensors_file)
    if marker is not None:
        state = {"state_dict": state, "note": _Marker(marker)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _student(subs: Path, name: str, notebook, weights: dict[str, Path | bytes]) -> None:
    folder = subs / name
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / f"{AID}.ipynb")
    for file, content in weights.items():
        if isinstance(content, Path):
            shutil.copy(content, folder / file)
        else:
            (folder / file).write_bytes(content)


def _fails(*cells: str) -> float:
    return TOTAL - sum(POINTS[c] for c in cells)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("a4")
    (tmp / "train").mkdir()
    resnet8, transfer = _train_weights(tmp / "train")
    trained = dict(zip(WEIGHTS, (resnet8, transfer), strict=True))
    marker = tmp / "UNPICKLED"
    partly = PARTLY_WRONG[AID]
    subs = tmp / "subs"
    expected = {
        "solution": (TOTAL, set()),
        "partly_wrong": (_fails(*partly["fails"]), set()),
        "subclasses_zoo": (_fails(*BLOCK_CELLS, *TRAINED),
                           {f"calls_reference:{cell}" for cell in (*BLOCK_CELLS, *TRAINED)}),
        "pickled_weights": (_fails(*TRAINED), set()),
        "untouched": (0, set()),
    }  # fmt: skip
    _student(subs, "solution", filled_release(RELEASE_NB, SOURCE_NB), trained)
    partly_wrong = filled_release(RELEASE_NB, SOURCE_NB, partly["replace"])
    _student(subs, "partly_wrong", partly_wrong, trained)
    subclasses = filled_release(RELEASE_NB, SOURCE_NB, {"basic_block": SUBCLASSES_ZOO})
    _student(subs, "subclasses_zoo", subclasses, trained)
    pickled = {WEIGHTS[0]: _pickled_weights(resnet8, None),
               WEIGHTS[1]: _pickled_weights(transfer, marker)}  # fmt: skip
    _student(subs, "pickled_weights", filled_release(RELEASE_NB, SOURCE_NB), pickled)
    _student(subs, "untouched", nbformat.read(RELEASE_NB, as_version=4), {})
    out = tmp / "out"
    result = grade(AID, "--submissions", str(subs), "--out", str(out), *OPTIONS, timeout=1800)
    rows = grade_rows(out)
    return {"result": result, "rows": rows, "out": out, "expected": expected, "marker": marker}


@needs_bwrap
@pytest.mark.parametrize("student", ["solution", "partly_wrong", "subclasses_zoo",
                                     "pickled_weights"])  # fmt: skip
def test_each_submission_gets_its_exact_score_and_flags(graded, student):
    assert TOTAL == 56
    assert_exact_row(graded, student, POINTS, max_score=TOTAL)


@needs_bwrap
def test_the_untouched_release_scores_zero(graded):
    assert_untouched_scores_zero(graded)


@needs_bwrap
def test_pickled_weights_are_refused_and_never_unpickled(graded):
    work = graded["out"] / "work"
    cells = json.loads((work / "pickled_weights" / "recorded.json").read_text())["cells"]
    for cell in TRAINED:
        verdict = cells[cell]["trusted"]
        # safetensors reads a JSON header and raw bytes: a pickle is not parsed, let alone run
        assert not verdict["passed"] and "SafetensorError" in verdict["reason"], verdict
    assert not graded["marker"].exists()


@needs_bwrap
def test_the_network_is_checked_with_the_solutions_block_where_the_students_failed(graded):
    work = graded["out"] / "work"
    cells = json.loads((work / "subclasses_zoo" / "recorded.json").read_text())["cells"]
    for cell in ("test_resnet_parameters", "test_resnet_forward_backward", "test_freeze_early"):
        assert cells[cell]["trusted"]["passed"], cells[cell]
        assert "BasicBlock" in cells[cell]["trusted"]["plugged"], cells[cell]
    # the trained networks are the student's own: nothing is plugged into them
    assert cells["test_resnet8_accuracy"]["trusted"]["plugged"] == []
    partly = json.loads((work / "partly_wrong" / "recorded.json").read_text())["cells"]
    assert partly["test_resnet_parameters"]["trusted"]["plugged"] == ["BasicBlock"]
    assert partly["test_resnet8_accuracy"]["trusted"]["passed"]
