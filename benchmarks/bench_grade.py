"""Grading time per submission: the hardened grader against plain nbgrader, locally and on a Dask
cluster, side by side in one run on the same submissions.

    python benchmarks/bench_grade.py            # 4 submissions (what `make bench` runs)
    python benchmarks/bench_grade.py --n 40     # the class-sized measurement
    python benchmarks/bench_grade.py --n 40 --skip-cluster

Half the class hands in the solution, half the typical partly wrong answers of the round-trip test.
Rows, all from fresh output folders:

- plain nbgrader: `nbgrader autograde`, `generate_feedback` and `export`, one process, no sandbox
  (the same deliverables as the grader's: grades, feedback, a CSV);
- hardened, 1 worker: `python -m cnnlib grade` serially (sandboxed run, trusted checks, phase 2);
- hardened, 2 workers: the local process pool;
- cluster, 2 workers: a Dask LocalCluster of two worker processes (--scheduler), the tasks
  travelling to the workers as they would over a network;

then the ratios: hardened/plain per submission (serial), cluster/local with 2 workers, and
submissions per minute per core. Timings are wall clock; the machine's other load shows in them,
so run it on a quiet machine and read the ratios, which come from the same minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402
from hostile_corpus import AID, PARTLY_WRONG, _solution  # noqa: E402

BIN = Path(sys.executable).parent


def _submissions(folder: Path, n: int) -> None:
    for i in range(n):
        nb = _solution() if i % 2 == 0 else _solution(PARTLY_WRONG)
        (folder / f"student{i:03d}").mkdir(parents=True)
        nbformat.write(nb, folder / f"student{i:03d}" / f"{AID}.ipynb")


def plain_nbgrader(tmp: Path, subs: Path) -> float:
    """Seconds for nbgrader autograde + generate_feedback + export on a fresh course."""
    course = tmp / "plain"
    (course / "solutions").mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    shutil.copytree(ROOT / "solutions" / AID, course / "solutions" / AID)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}

    def run(*args):
        subprocess.run([str(BIN / "nbgrader"), *args, "--log-level=ERROR"], cwd=course, env=env,
                       capture_output=True, check=False, timeout=3600)  # fmt: skip

    run("generate_assignment", AID, "--force")
    for student in sorted(p.name for p in subs.iterdir()):
        target = course / "submitted" / student / AID
        target.mkdir(parents=True)
        shutil.copy(subs / student / f"{AID}.ipynb", target)
    start = time.monotonic()
    run("autograde", AID, "--force")
    run("generate_feedback", AID, "--force")
    run("export", "--to", str(course / "export.csv"))
    return time.monotonic() - start


def hardened(tmp: Path, subs: Path, name: str, *extra: str) -> tuple[float, dict]:
    out = tmp / name
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cnnlib", "grade", AID, "--course", str(ROOT), "--submissions",
         str(subs), "--out", str(out), "--secret", str(tmp / ".course-secret"), "--quiet",
         *extra],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    wall = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit(f"{name}: the grader failed:\n{result.stderr[-3000:]}")
    records = [json.loads(p.read_text()) for p in out.glob("work/*/status.json")]
    mean = lambda key: sum(r.get(key) or 0 for r in records) / max(1, len(records))  # noqa: E731
    timings = json.loads((out / "timings.json").read_text())
    return wall, {"sandbox": mean("timing_sandbox_s"), "trusted": mean("timing_trusted_s"),
                  "phase2": timings["phase2_s"] / max(1, len(records))}  # fmt: skip


def cluster_run(tmp: Path, subs: Path, workers: int) -> float:
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)  # fmt: skip
    try:
        wall, _ = hardened(tmp, subs, "cluster", "--scheduler", cluster.scheduler_address)
    finally:
        cluster.close()
    return wall


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4, help="submissions (default 4)")
    parser.add_argument("--skip-cluster", action="store_true", help="no Dask cluster row")
    args = parser.parse_args()
    if shutil.which("bwrap") is None:
        print("bench_grade: bubblewrap is not installed: the grader refuses to run (skipped)")
        return 0
    n, cores = args.n, os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        subs = tmp / "subs"
        _submissions(subs, n)
        print(f"{n} submissions of {AID}, {cores} CPU cores, load average "
              f"{os.getloadavg()[0]:.1f} at the start")  # fmt: skip
        plain = plain_nbgrader(tmp, subs)
        serial, phases = hardened(tmp, subs, "serial", "--workers", "1")
        pool, _ = hardened(tmp, subs, "pool", "--workers", "2")
        rows = [("plain nbgrader (no sandbox)", 1, plain), ("hardened", 1, serial),
                ("hardened", 2, pool)]  # fmt: skip
        cluster = None if args.skip_cluster else cluster_run(tmp, subs, 2)
        if cluster is not None:
            rows.append(("hardened on a Dask LocalCluster", 2, cluster))
        print(f"{'':<34} {'workers':>7} {'total':>8} {'per sub':>8} {'subs/min/core':>14}")
        for name, workers, wall in rows:
            per_core = 60 * n / wall / min(workers, cores)
            print(f"{name:<34} {workers:>7} {wall:>7.1f}s {wall / n:>7.2f}s {per_core:>14.1f}")
        print(f"hardened, 1 worker, per submission: notebook in its sandbox "
              f"{phases['sandbox']:.2f} s, trusted checks {phases['trusted']:.2f} s, gradebook "
              f"and feedback {phases['phase2']:.2f} s")  # fmt: skip
        print(f"ratio hardened / plain nbgrader (serial, per submission): {serial / plain:.2f}")
        if cluster is not None:
            print(f"ratio cluster / local pool (2 workers each):              {cluster / pool:.2f}")
        print("(every row includes its own start-up: the grader's course preparation and "
              "pre-flight canary, nbgrader's database)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
