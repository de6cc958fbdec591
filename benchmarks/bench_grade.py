"""Grading time per submission with the hardened grader, serially and with 2 workers.

    python benchmarks/bench_grade.py            # 4 submissions (what `make bench` runs)
    python benchmarks/bench_grade.py --n 40     # the class-sized measurement

Half the class hands in the solution, half the typical partly wrong answers of the round-trip
test. Prints, per submission: the whole run's wall time, the sandboxed notebook execution and the
trusted checks (each timed around its own sandbox, so both include starting the sandbox), and
nbgrader's phase 2 (gradebook, feedback).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import nbformat  # noqa: E402
from hostile_corpus import AID, PARTLY_WRONG, _solution  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4, help="submissions (default 4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "subs"
        for i in range(args.n):
            nb = _solution() if i % 2 == 0 else _solution(PARTLY_WRONG)
            (subs / f"student{i:03d}").mkdir(parents=True)
            nbformat.write(nb, subs / f"student{i:03d}" / f"{AID}.ipynb")
        print(f"{args.n} submissions of {AID}")
        print(f"{'workers':>7} {'wall/sub':>9} {'sandbox':>8} {'trusted':>8} {'phase2/sub':>10}")
        # the last row runs the notebooks without bubblewrap: the difference in "sandbox" is
        # what the sandbox itself costs (--unsafe-no-sandbox is for measuring, never a class)
        for workers, unsafe in ((1, False), (2, False), (1, True)):
            out = Path(tmp) / f"out{workers}{'-unsafe' if unsafe else ''}"
            start = time.monotonic()
            result = subprocess.run(
                [sys.executable, "-m", "cnnlib", "grade", AID, "--course", str(ROOT),
                 "--submissions", str(subs), "--out", str(out), "--workers", str(workers),
                 "--quiet", *(["--unsafe-no-sandbox"] if unsafe else [])],
                capture_output=True, text=True,
            )  # fmt: skip
            wall = time.monotonic() - start
            if result.returncode != 0:
                print(result.stderr[-2000:])
                return 1
            t = json.loads((out / "timings.json").read_text())
            print(
                f"{workers:>6}{'*' if unsafe else ' '} {wall / args.n:>8.2f}s "
                f"{t['mean_sandbox_s']:>7.2f}s "
                f"{t['mean_trusted_s']:>7.2f}s {t['phase2_s'] / args.n:>9.2f}s"
            )
    print("(sandbox and trusted: mean per submission inside phase 1; with 2 workers they overlap,")
    print(" so wall/sub is what an instructor waits per submission; it includes course set-up;")
    print(" 1*: no bubblewrap, the same limits: the sandbox's own cost is the difference)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
