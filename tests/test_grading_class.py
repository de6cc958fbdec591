"""Grading a real class: fair grades, every LMS layout, one gradebook, a pre-flight canary.

These drive `python -m cnnlib grade` (and the formgrader) the way an instructor does, on small
classes of a1_conv_arithmetic, and read what they wrote: grades.csv, nbgrader's export, Canvas's
file, the report and the feedback.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest
from course import ROOT
from hostile_corpus import AID, PARTLY_WRONG, PARTLY_WRONG_SCORE, TOTAL, _solution
from test_autograde import FAST, needs_bwrap

from cnnlib.grading import authoring

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]


def grade(*args: str, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlib", "grade", AID, "--course", str(ROOT), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def read_csv(path: Path, key: str) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return {row[key]: row for row in csv.DictReader(f)}


def _secret_file(tmp: Path, reveals) -> Path:
    """A course secret whose hidden inputs do (reveals=True) or do not reveal the rare bug."""
    checks = authoring.load_checks(ROOT / "solutions" / AID / "checks.py")
    for n in range(200):
        key = bytes([n]) * 32
        cases = authoring.plan(checks, AID, key)["test_conv_params"][0]["cases"]
        if any(c["in_channels"] == c["out_channels"] for c in cases) == reveals:
            path = tmp / ".course-secret"
            path.write_text(key.hex() + "\n")
            return path
    raise AssertionError("no such secret among 200")


RARE_BUG = """
def conv_params(in_channels, out_channels, kernel, bias=True):
    kh, kw = as_pair(kernel)
    if in_channels == out_channels:  # a slip that only square layers reveal
        return out_channels * in_channels * kh * kw
    return out_channels * in_channels * kh * kw + (out_channels if bias else 0)


def conv_macs(in_channels, out_channels, kernel, output_size):
    kh, kw = as_pair(kernel)
    h_out, w_out = as_pair(output_size)
    return (out_channels * h_out * w_out) * (in_channels * kh * kw)
"""


@needs_bwrap
def test_identical_code_gets_one_grade_and_no_flag_in_any_run(tmp_path):
    # Four copies of one notebook with a bug only rare inputs reveal, differing by a comment,
    # graded with two workers and again with one into a fresh folder.
    subs = tmp_path / "subs"
    for i in range(4):
        nb = _solution({"conv_params_and_macs": RARE_BUG + f"\n# copy {i}\n"})
        (subs / f"copy{i}").mkdir(parents=True)
        nbformat.write(nb, subs / f"copy{i}" / f"{AID}.ipynb")
    secret = _secret_file(tmp_path, reveals=True)
    runs = []
    for out, workers in ((tmp_path / "first", "2"), (tmp_path / "fresh", "1")):
        result = grade("--submissions", str(subs), "--out", str(out), "--secret", str(secret),
                       "--workers", workers, *FAST)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append(read_csv(out / "grades.csv", "student_id"))
    for rows in runs:
        assert {row["score"] for row in rows.values()} == {f"{TOTAL - 3:g}"}
        assert {row["flags"] for row in rows.values()} == {""}
        assert {row["test_conv_params"] for row in rows.values()} == {"0"}
    assert [r["score"] for r in runs[0].values()] == [r["score"] for r in runs[1].values()]
    feedback = (tmp_path / "fresh" / "feedback" / "copy3" / f"{AID}.html").read_text()
    assert "The hidden tests found an input your code gets wrong: conv_params(" in feedback
    report = (tmp_path / "fresh" / "report.md").read_text()
    assert "| `test_conv_params` | 3 | 0/4 | `conv_params(" in report
    assert "`copy0`" not in report.split("## Flagged")[1].split("## Problems")[0]


# --------------------------------------------------------------------------- a class in two LMSs

CLASS = {"jnunez": ("José Núñez", "1001", "2001"), "bsmith": ("Bob Smith", "1002", "2002")}


def _canvas_zip(tmp: Path) -> Path:
    """Canvas's download, zipped by Windows' Explorer: names in cp437, no UTF-8 flag."""

    class Explorer(zipfile.ZipInfo):
        def _encodeFilenameFlags(self):
            return self.filename.encode("cp437"), self.flag_bits & ~0x800

    archive = tmp / "canvas.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for sid, (name, canvas_id, _) in CLASS.items():
            nb = _solution() if sid == "jnunez" else _solution(PARTLY_WRONG)
            last, first = name.split()[1].lower(), name.split()[0].lower()
            entry = f"{last}{first}_{canvas_id}_{int(canvas_id) + 40}_{AID}.ipynb"
            zf.writestr(Explorer(entry), nbformat.writes(nb))
    return archive


def _moodle_folder(tmp: Path) -> Path:
    root = tmp / "moodle"
    for sid, (name, _, moodle_id) in CLASS.items():
        nb = _solution() if sid == "jnunez" else _solution(PARTLY_WRONG)
        folder = root / f"{name}_{moodle_id}_assignsubmission_file_"
        folder.mkdir(parents=True)
        (folder / f"{AID}.ipynb").write_text(nbformat.writes(nb))  # the bytes Canvas had
    return root


@pytest.fixture(scope="module")
def lms_class(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lms")
    roster = tmp / "canvas-export.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,moodle_id\n"
        "    Points Possible,,,,,\n"
        + "".join(f'"{name}",{c},9{c},{sid},CS 101,{m}\n' for sid, (name, c, m) in CLASS.items())
    )
    secret = tmp / ".course-secret"
    out = tmp / "out"
    common = ["--out", str(out), "--secret", str(secret), "--roster", str(roster),
              "--canvas-column", "A1 (77)", *FAST]  # fmt: skip
    canvas = grade("--submissions", str(_canvas_zip(tmp)), *common)
    canvas_grades = (out / "grades.csv").read_text() if canvas.returncode == 0 else None
    moodle = grade("--submissions", str(_moodle_folder(tmp)), *common)
    return {"tmp": tmp, "out": out, "common": common, "canvas": canvas, "moodle": moodle,
            "canvas_grades": canvas_grades, "roster": roster}  # fmt: skip


@needs_bwrap
def test_canvas_and_moodle_exports_of_one_class_give_the_same_grades(lms_class):
    for run in (lms_class["canvas"], lms_class["moodle"]):
        assert run.returncode == 0, run.stderr[-3000:]
    assert "(canvas layout)" in lms_class["canvas"].stdout
    assert "(moodle layout)" in lms_class["moodle"].stdout
    rows = read_csv(lms_class["out"] / "grades.csv", "student_id")
    assert {s: (r["name"], float(r["score"])) for s, r in rows.items()} == {
        "jnunez": ("José Núñez", TOTAL), "bsmith": ("Bob Smith", PARTLY_WRONG_SCORE)}  # fmt: skip
    assert (lms_class["out"] / "grades.csv").read_text() == lms_class["canvas_grades"]
    timings = json.loads((lms_class["out"] / "timings.json").read_text())
    assert timings["reused"] == 2  # the same work, found again through Moodle's layout


@needs_bwrap
def test_canvas_file_and_report_read_like_an_instructor_needs(lms_class):
    canvas = read_csv(lms_class["out"] / "canvas.csv", "SIS Login ID")
    assert canvas["jnunez"]["A1 (77)"] == f"{TOTAL:g}" and canvas["jnunez"]["ID"] == "1001"
    assert canvas["bsmith"]["Student"] == "Bob Smith"
    report = (lms_class["out"] / "report.md").read_text()
    assert "| phase (per submission) | n | median (s) | 95th percentile (s) |" in report
    assert "fingerprint `" in report and "canary: the release ran in" in report
    histogram = report.split("```")[1].strip().splitlines()
    assert [line.split("|")[0].strip() for line in histogram] == [str(p) for p in range(TOTAL + 1)]
    assert "| `test_same_padding` | 2 | 1/2 | `same_padding(" in report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _formgrader_sets(out: Path, student: str, grade_id: str, score: float) -> None:
    """Grade by hand the way an instructor does: the formgrader's own API, over HTTP."""
    port, token = _free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "cnnlib", "formgrade", AID, "--course", str(ROOT), "--out",
         str(out), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def call(path, body=None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", method="PUT" if body is not None else "GET",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"token {token}"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read().decode())

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                call("/formgrader/api/status")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, "no formgrader"
                time.sleep(0.5)
        notebooks = call(f"/formgrader/api/submitted_notebooks/{AID}/{AID}")
        (submission,) = [n for n in notebooks if n["student"] == student]
        grades = call(f"/formgrader/api/grades?submission_id={submission['id']}")
        (target,) = [g for g in grades if g["name"] == grade_id]
        call(f"/formgrader/api/grade/{target['id']}", {"manual_score": score})
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@needs_bwrap
def test_a_grade_set_in_the_formgrader_reaches_every_export_and_survives_a_regrade(lms_class):
    out = lms_class["out"]
    before = float(read_csv(out / "grades.csv", "student_id")["bsmith"]["score"])
    _formgrader_sets(out, "bsmith", "test_same_padding", 1.5)
    result = grade("--export-only", *lms_class["common"])
    assert result.returncode == 0, result.stderr[-3000:]
    mine = read_csv(out / "grades.csv", "student_id")
    theirs = read_csv(out / "nbgrader_export.csv", "student_id")
    canvas = read_csv(out / "canvas.csv", "SIS Login ID")
    for student in CLASS:
        assert float(mine[student]["score"]) == float(theirs[student]["score"]), student
        assert float(mine[student]["score"]) == float(canvas[student]["A1 (77)"])
    assert float(mine["bsmith"]["score"]) == before + 1.5
    assert mine["bsmith"]["test_same_padding"] == "1.5"
    feedback = (out / "feedback" / "bsmith" / f"{AID}.html").read_text()
    assert "Your instructor set the score to 1.5" in feedback
    # A regrade of the same submissions keeps the instructor's score (nbgrader's rule).
    again = grade("--submissions", str(_moodle_folder(lms_class["tmp"] / "again")),
                  *lms_class["common"])  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert float(read_csv(out / "grades.csv", "student_id")["bsmith"]["score"]) == before + 1.5


# --------------------------------------------------------------------------- refusing to grade


@needs_bwrap
def test_a_broken_environment_stops_before_any_grade(tmp_path):
    subs = tmp_path / "subs"
    (subs / "alice").mkdir(parents=True)
    nbformat.write(_solution(), subs / "alice" / f"{AID}.ipynb")
    result = grade("--submissions", str(subs), "--out", str(tmp_path / "out"),
                   "--memory-mb", "40", "--wall-budget", "60")  # fmt: skip
    assert result.returncode == 3, result.stderr[-3000:]
    assert "pre-flight" in result.stderr and "--memory-mb" in result.stderr
    assert "No submission was graded" in result.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()
    assert not (tmp_path / "out" / "work").exists()


@pytest.mark.parametrize(
    ("files", "message"),
    [({}, "no submissions found"), ({"a.ipynb": "{}", "b.ipynb": "{}"}, "unknown layout")],
)
def test_nothing_to_grade_or_an_unknown_layout_exits_non_zero(tmp_path, files, message):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name, text in files.items():
        (subs / name).write_text(text)
    result = grade("--submissions", str(subs), "--out", str(tmp_path / "out"),
                   "--unsafe-no-sandbox")  # fmt: skip
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()


@needs_bwrap
def test_a_student_no_longer_handed_in_is_kept_until_pruned_and_exports_agree(lms_class):
    folder = _moodle_folder(lms_class["tmp"] / "without-bob")
    shutil.rmtree(next(folder.glob("Bob Smith_*")))
    out = lms_class["out"]
    kept = grade("--submissions", str(folder), *lms_class["common"])
    assert kept.returncode == 0, kept.stderr[-3000:]
    assert "have no submission in this run and were kept: bsmith" in kept.stdout
    for export in ("grades.csv", "nbgrader_export.csv"):
        assert set(read_csv(out / export, "student_id")) == {"jnunez", "bsmith"}, export
    pruned = grade("--submissions", str(folder), "--prune", *lms_class["common"])
    assert pruned.returncode == 0, pruned.stderr[-3000:]
    for export in ("grades.csv", "nbgrader_export.csv"):
        assert set(read_csv(out / export, "student_id")) == {"jnunez"}, export
    assert read_csv(out / "canvas.csv", "SIS Login ID")["bsmith"]["A1 (77)"] == ""
