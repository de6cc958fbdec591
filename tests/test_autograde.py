"""The hardened grader, `python -m cnnlib grade`, on a corpus of hostile and broken submissions.

One run grades the whole corpus (tests/hostile_corpus.py) with 2 workers and must give each case
its exact score and flags; the honest submissions in the same run get their right scores. Then:
nothing leaks into the sandbox or out of it (feedback), an interrupted run resumes without
regrading, re-grading gives the same grades, a zip works, and without bubblewrap it refuses.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from course import ROOT
from hostile_corpus import (
    AID,
    PARTLY_WRONG,
    PARTLY_WRONG_SCORE,
    RELEASE_NB,
    SOURCE_NB,
    TOTAL,
    _solution,
    build,
)

from cnnlib.grading.nbgrader_hooks import secret_lines

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]

# Short budgets keep the faulty cases quick: a normal run of a1 takes a few seconds.
FAST = ["--wall-budget", "40", "--memory-mb", "3072"]


def grade(*args: str, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlib", "grade", AID, "--course", str(ROOT), *args],
        capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def read_grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Skipped on a laptop without bubblewrap; CI (.ci/run) installs it and sets CNNLIB_REQUIRE_BWRAP=1,
# so there a missing bwrap fails these tests instead of skipping them.
needs_bwrap = pytest.mark.skipif(
    shutil.which("bwrap") is None and os.environ.get("CNNLIB_REQUIRE_BWRAP") != "1",
    reason="bubblewrap not installed (apt-get install bubblewrap)",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    subs, out = tmp / "submissions", tmp / "out"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    secrets = [
        str(ROOT / "solutions"),
        str(SOURCE_NB),
        str(out / "nbgrader"),
        str(out / "nbgrader" / "gradebook.db"),
        str(ROOT / ".course-secret"),
        str(out / "plan.json"),
        str(subs / "honest_correct"),
        str(subs / "honest_correct" / f"{AID}.ipynb"),
        str(ROOT / "gradebook.db"),
        str(ROOT / "tests"),
        "/root/.bash_history",
        "/etc/shadow",
    ]
    gradebooks = [str(out / "nbgrader" / "gradebook.db"), str(ROOT / "gradebook.db")]
    cases = build(subs, secrets=secrets, gradebooks=gradebooks, ports=[port])
    # The grader's gradebook exists before the run only after a first run: make it now, with a
    # grading of the honest submission alone, so the writing case has a file to aim at.
    first = subs.parent / "first"
    first.mkdir()
    shutil.copytree(subs / "honest_correct", first / "honest_correct")
    result = grade("--submissions", str(first), "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    root_gradebook = ROOT / "gradebook.db"
    before = _digest(root_gradebook) if root_gradebook.exists() else None
    start = time.monotonic()
    result = grade("--submissions", str(subs), "--out", str(out), "--workers", "2", *FAST)
    elapsed = time.monotonic() - start
    listener.close()
    return {
        "cases": cases, "out": out, "subs": subs, "result": result, "secrets": secrets,
        "root_gradebook_before": before, "elapsed": elapsed,
    }  # fmt: skip


@needs_bwrap
def test_corpus_run_exits_zero_with_zeros_and_the_columns(corpus):
    result = corpus["result"]
    assert result.returncode == 0, result.stderr[-3000:]
    grades = read_grades(corpus["out"])
    assert set(grades) == set(corpus["cases"])
    row = grades["untouched_release"]
    assert {"student_id", "score", "max_score", "flags", "problems"} <= set(row)
    assert float(row["score"]) == 0 and float(row["max_score"]) == TOTAL
    assert len(corpus["cases"]) >= 32
    assert sorted(_case_ids()) == sorted(corpus["cases"])  # every case has its own test below


def _case_ids():
    return [
        "honest_correct", "honest_partly_wrong", "untouched_release", "patched_checks",
        "input_transformer", "builtins_import", "showtraceback", "nbgrader_env", "reads_the_plan",
        "forge_answers", "always_equal",
        "calls_reference", "reload_reference", "exec_reference_source", "snoop",
        "write_gradebook", "network", "echo_hidden_tests", "infinite_loop", "os_exit",
        "segfault", "memory_bomb", "fork_bomb", "output_flood", "invalid_json", "empty_file",
        "renamed", "missing", "other_assignment", "edited_locked", "deleted_locked",
        "metadata_stripped",
    ]  # fmt: skip


@needs_bwrap
@pytest.mark.parametrize("student", _case_ids())
def test_each_case_gets_its_exact_score_and_flags(corpus, student):
    case = corpus["cases"][student]
    row = read_grades(corpus["out"])[student]
    flags = set(filter(None, row["flags"].split(";")))
    problems = set(filter(None, row["problems"].split(";")))
    report = (corpus["out"] / "report.md").read_text()
    assert float(row["score"]) == case.score, (student, row, report[-4000:])
    assert case.flags <= flags, (student, flags)
    assert case.problems <= problems, (student, problems)
    if case.exact:
        assert (flags, problems) == (case.flags, case.problems), (student, flags, problems)
    for mark in case.flags | case.problems:
        assert f"**{student}**" in report and mark in report


def _outputs(out: Path, student: str) -> str:
    nb = nbformat.read(out / "work" / student / "executed.ipynb", as_version=4)
    return "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )


@needs_bwrap
def test_the_sandbox_sees_no_secret_and_writes_nothing(corpus):
    out = corpus["out"]
    snoop = json.loads(_outputs(out, "snoop").split("SNOOP ", 1)[1].splitlines()[0])
    for path in corpus["secrets"]:
        assert str(snoop[path]).startswith("DENIED"), (path, snoop[path])
    assert not any("gradebook.db" in p or "solutions" in p for p in snoop["glob"]), snoop["glob"]
    assert snoop["uid"] != 0
    write = _outputs(out, "write_gradebook")
    assert "WROTE" not in write and "DENIED" in write, write
    network = _outputs(out, "network")
    assert "CONNECTED" not in network and "FAILED" in network, network
    # The gradebooks are intact: our own one still holds every grade, the course's is unchanged.
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'nbgrader' / 'gradebook.db'}") as gb:
        assert gb.find_submission(AID, "honest_correct").score == TOTAL
        assert gb.find_submission(AID, "honest_partly_wrong").score == PARTLY_WRONG_SCORE
    root_gradebook = ROOT / "gradebook.db"
    if corpus["root_gradebook_before"] is not None:
        assert _digest(root_gradebook) == corpus["root_gradebook_before"]


@needs_bwrap
def test_nbgrader_export_and_feedback_exist(corpus):
    out = corpus["out"]
    with open(out / "nbgrader_export.csv") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f)}
    assert float(rows["honest_correct"]["score"]) == TOTAL
    assert float(rows["always_equal"]["score"]) == TOTAL - 9  # the trusted score, not the fake
    for student in corpus["cases"]:
        assert (out / "feedback" / student / f"{AID}.html").is_file(), student
    missing = _feedback_text(out / "feedback" / "missing" / f"{AID}.html")
    assert "No notebook for this assignment was found" in missing


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def _feedback_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text())
    return html.unescape("".join(parser.parts))


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@needs_bwrap
def test_feedback_holds_no_hidden_test_or_solution_line(corpus):
    out, subs = corpus["out"], corpus["subs"]
    secrets = [s for s in secret_lines(nbformat.read(SOURCE_NB, 4)) if len(s) >= 8]
    assert len(secrets) > 20
    for student in corpus["cases"]:
        text = _normal(_feedback_text(out / "feedback" / student / f"{AID}.html"))
        own = ""  # a student's own answers may hold solution lines (the honest ones do)
        for nb_path in (subs / student).glob("*.ipynb"):
            with contextlib.suppress(Exception):
                own += "\n".join(c.source for c in nbformat.read(nb_path, 4).cells)
        leaked = [s for s in secrets if _normal(s) in text and s not in own]
        assert not leaked, (student, leaked[:5])
    # The echoing submission printed every cell it ran, hidden tests included: all scrubbed.
    echo = _outputs(out, "echo_hidden_tests")
    assert "hidden_tests(" in echo  # it did print them in the sandbox...
    text = _feedback_text(out / "feedback" / "echo_hidden_tests" / f"{AID}.html")
    assert "hidden_tests(" not in text  # ...and none of it reached the feedback


@needs_bwrap
def test_faults_stay_within_their_budget(corpus):
    status = json.loads((corpus["out"] / "work" / "infinite_loop" / "status.json").read_text())
    assert status["notebook"]["state"] == "wall_budget_exceeded"
    assert status["notebook"]["wall_s"] < 40 + 10
    honest = json.loads((corpus["out"] / "work" / "honest_correct" / "status.json").read_text())
    assert honest["notebook"]["state"] == "complete"


# --------------------------------------------------------------------------- resume and repeat


def _small_class(dest: Path) -> dict[str, float]:
    expected = {}
    for i in range(3):
        for name, nb, score in [
            ("correct", _solution(), TOTAL),
            ("partly", _solution(PARTLY_WRONG), PARTLY_WRONG_SCORE),
        ]:
            student = f"s{i}_{name}"
            (dest / student).mkdir(parents=True)
            nbformat.write(nb, dest / student / f"{AID}.ipynb")
            expected[student] = score
    (dest / "s9_untouched").mkdir()
    shutil.copy(RELEASE_NB, dest / "s9_untouched" / f"{AID}.ipynb")
    expected["s9_untouched"] = 0
    return expected


@needs_bwrap
def test_killed_run_resumes_keeps_what_was_done_and_regrades_the_same(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    expected = _small_class(subs)
    cmd = [sys.executable, "-m", "cnnlib", "grade", AID, "--course", str(ROOT),
           "--submissions", str(subs), "--out", str(out), *FAST]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 300
    done = []
    while time.monotonic() < deadline and len(done) < 2:
        done = sorted(out.glob("work/*/status.json"))
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(done) >= 2, "the grader recorded nothing in 300 s"
    kept = {p: p.stat().st_mtime_ns for p in out.glob("work/*/status.json")}
    assert not (out / "grades.csv").exists()

    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # nothing done was redone
    timings = json.loads((out / "timings.json").read_text())
    assert timings["reused"] == len(kept) and timings["graded_now"] == len(expected) - len(kept)
    grades = read_grades(out)
    assert {s: float(r["score"]) for s, r in grades.items()} == expected
    first = (out / "grades.csv").read_text()

    # Run again: every result reused, the gradebook and grades.csv unchanged.
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "grades.csv").read_text() == first

    # Re-grade from scratch (a zip this time, into a fresh folder): the same grades.
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in subs.rglob("*"):
            zf.write(path, Path("export") / path.relative_to(subs))
    fresh = tmp_path / "fresh"
    result = grade("--submissions", str(archive), "--out", str(fresh), "--workers", "2", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (fresh / "grades.csv").read_text() == first


def test_refuses_without_bubblewrap_unless_told_loudly(tmp_path):
    subs = tmp_path / "subs"
    (subs / "someone").mkdir(parents=True)
    shutil.copy(ROOT / "assignments" / AID / f"{AID}.ipynb", subs / "someone")
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no /usr/bin: no bwrap
    result = grade("--submissions", str(subs), "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 2
    assert "bubblewrap" in result.stderr and "--unsafe-no-sandbox" in result.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()

    result = grade("--submissions", str(subs), "--out", str(tmp_path / "out"),
                   "--unsafe-no-sandbox", *FAST, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "UNSAFE" in result.stderr and "WITHOUT a sandbox" in result.stderr
    assert "NONE (unsafe)" in (tmp_path / "out" / "report.md").read_text()
    assert float(read_grades(tmp_path / "out")["someone"]["score"]) == 0
