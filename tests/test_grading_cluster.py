"""Grading on a Dask cluster: the same grades as on one machine, a dead worker costs nothing, a
worker that cannot sandbox is refused. A LocalCluster of worker processes stands in for lab
machines: the tasks travel to them exactly as they would over a network.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from course import ROOT
from hostile_corpus import AID, PARTLY_WRONG, PARTLY_WRONG_SCORE, TOTAL, _solution, build
from test_autograde import FAST, needs_bwrap

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]
distributed = pytest.importorskip("distributed")

# The hostile corpus cases a cluster run repeats: honest, cheating, faulty and broken ones.
SUBSET = ["honest_correct", "honest_partly_wrong", "patched_checks", "calls_reference",
          "always_equal", "os_exit", "invalid_json", "edited_locked"]  # fmt: skip


def grade(*args: str, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnnlib", "grade", AID, "--course", str(ROOT), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def read_grades(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv") as f:
        return {row["student_id"]: row for row in csv.DictReader(f)}


@pytest.fixture
def cluster():
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                       dashboard_address=None)  # fmt: skip
    try:
        yield cluster
    finally:
        cluster.close()


def _worker_without_bubblewrap(address: str, tmp: Path) -> subprocess.Popen:
    """A worker whose PATH has the venv's tools but not /usr/bin, where bwrap lives."""
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    log = open(tmp / "worker.log", "w")  # noqa: SIM115 (the process writes it until killed)
    return subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
         "--no-dashboard", "--name", "no-bwrap"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


@needs_bwrap
def test_the_corpus_grades_the_same_on_a_cluster_and_a_worker_without_bwrap_is_refused(
    tmp_path, cluster
):
    subs = tmp_path / "subs"
    cases = build(tmp_path / "all", secrets=[], gradebooks=[], ports=[])
    for name in SUBSET:
        shutil.copytree(tmp_path / "all" / name, subs / name)
    client = distributed.Client(cluster.scheduler_address)
    stray = _worker_without_bubblewrap(cluster.scheduler_address, tmp_path)
    try:
        client.wait_for_workers(2, timeout=120)
        result = grade("--submissions", str(subs), "--out", str(tmp_path / "out"),
                       "--scheduler", cluster.scheduler_address, *FAST)  # fmt: skip
    finally:
        os.killpg(stray.pid, signal.SIGTERM)
        stray.wait(timeout=30)
        client.close()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "refused: bubblewrap (bwrap) is not installed on this worker" in result.stdout
    assert "grading on 1 worker(s)" in result.stdout
    rows = read_grades(tmp_path / "out")
    for name in SUBSET:  # exactly what the local corpus run must give (tests/test_autograde.py)
        case, row = cases[name], rows[name]
        assert float(row["score"]) == case.score, (name, row)
        assert case.flags <= set(filter(None, row["flags"].split(";"))), (name, row)
        assert case.problems <= set(filter(None, row["problems"].split(";"))), (name, row)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "- worker tcp://" in report  # the canary's environment, per worker


@needs_bwrap
def test_a_worker_killed_mid_run_costs_nothing_and_nobody_is_graded_twice(tmp_path):
    subs = tmp_path / "subs"
    expected = {}
    for i in range(6):
        nb, score = (_solution(), TOTAL) if i % 2 == 0 else (_solution(PARTLY_WRONG),
                                                             PARTLY_WRONG_SCORE)  # fmt: skip
        (subs / f"s{i}").mkdir(parents=True)
        nbformat.write(nb, subs / f"s{i}" / f"{AID}.ipynb")
        expected[f"s{i}"] = score
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)  # fmt: skip
    client = distributed.Client(cluster.scheduler_address)
    out = tmp_path / "out"
    killed = {}

    def kill_one_worker_once_grading_runs():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            processing = client.processing()
            busy = [w for w, tasks in processing.items() if any("grade-" in t for t in tasks)]
            if busy and list(out.glob("work/*/status.json")):
                pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed["pid"] = pid
            time.sleep(0.2)

    killer = threading.Thread(target=kill_one_worker_once_grading_runs)
    try:
        killer.start()
        result = grade("--submissions", str(subs), "--out", str(out),
                       "--scheduler", cluster.scheduler_address, *FAST)  # fmt: skip
        killer.join(timeout=60)
    finally:
        client.close()
        cluster.close()
    assert killed, "no worker was killed: the run ended before one was busy"
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_grades(out)
    assert {s: float(r["score"]) for s, r in rows.items()} == expected
    assert all(r["flags"] == "" and r["problems"] == "" for r in rows.values())
    timings = json.loads((out / "timings.json").read_text())
    assert timings["graded_now"] == 6 and timings["reused"] == 0
    # resumed: a second run reuses every result and changes nothing
    again = grade("--submissions", str(subs), "--out", str(out), *FAST)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((out / "timings.json").read_text())["reused"] == 6
    assert read_grades(out) == rows
