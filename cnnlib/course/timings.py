"""Measure how long each lecture takes to run, and keep the figures in docs/timings.json.

    python -m cnnlib.course.timings                       # every lecture, quick and full mode
    python -m cnnlib.course.timings --mode quick --lectures 02 07a
    make timings  /  make timings MODE=quick LECTURES="02 07a"

Each lecture runs as a student's *Run All* would (answers to exercises not run), in a fresh
kernel, and its wall time (from the started kernel to the last cell) and the kernel's CPU time
are recorded with the machine, the date, the commit and the load average at the start (a busy
machine shows in the wall time, hardly in the CPU time). On a machine with a CUDA GPU the full
run is recorded as `gpu_full`. Then the README's course map is regenerated.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from . import catalog
from .run import NotebookFailure, run_notebook


def _machine() -> tuple[str, bool]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = False
    try:
        import torch

        if torch.cuda.is_available():
            gpu = True
            cpu = f"{torch.cuda.get_device_name(0)} GPU, {cpu}"
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs", gpu


def _commit(root: Path) -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root,
                            capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def _refresh_readme(root: Path) -> None:
    readme = root / "README.md"
    if catalog.README_START in readme.read_text():
        readme.write_text(catalog.readme_with_map(readme.read_text(), root))


def measure(root: Path, ids: list[str], modes: list[str], timeout: float, note: str = "") -> dict:
    """Run the lectures `ids` in `modes` ("quick", "full"); merge the times into timings.json."""
    path = root / "docs" / "timings.json"
    timings = catalog.load_timings(root)
    machine, gpu = _machine()
    by_id = {lecture.id: lecture for lecture in catalog.lectures(root)}
    unknown = sorted(set(ids) - set(by_id))
    if unknown:
        raise SystemExit(f"no lectures {unknown} in lectures/course.yml (known: {sorted(by_id)})")
    failures = []
    for mode in modes:
        key = f"gpu_{mode}" if gpu else mode
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        timings.setdefault("runs", {})[key] = {
            "machine": machine, "date": datetime.date.today().isoformat(),
            "commit": _commit(root),
            "note": f"load average {load:.1f} at the start" + (f"; {note}" if note else ""),
        }
        for lecture_id in ids:
            lecture = by_id[lecture_id]
            print(f"{mode:>5} {lecture.notebook} ...", end=" ", flush=True)
            try:
                result = run_notebook(root / "lectures" / lecture.notebook, timeout,
                                      run_answers=False,
                                      env={"CNNLIB_QUICK": "1" if mode == "quick" else "0"})
            except NotebookFailure as failure:
                print("FAILED")
                failures.append(str(failure))
                continue
            print(f"{result.wall_s:.1f} s wall, {result.cpu_s:.1f} s CPU")
            timings["lectures"].setdefault(lecture_id, {})[key] = {
                "wall_s": round(result.wall_s, 1), "cpu_s": round(result.cpu_s, 1)}
            path.parent.mkdir(exist_ok=True)
            path.write_text(json.dumps(timings, indent=1, sort_keys=True) + "\n")
            _refresh_readme(root)  # after every lecture: the two files always agree
    if failures:
        raise SystemExit("\n".join(["these runs failed:", *failures]))
    return timings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lectures", nargs="*", help="lecture ids (default: all)")
    parser.add_argument("--mode", choices=["quick", "full", "both"], default="both")
    parser.add_argument("--timeout", type=float, default=3 * 3600,
                        help="seconds per notebook (default 3 hours)")
    parser.add_argument("--note", default="", help="a remark stored with the run")
    args = parser.parse_args(argv)
    root = catalog.find_root()
    ids = args.lectures or [lecture.id for lecture in catalog.lectures(root)]
    modes = ["quick", "full"] if args.mode == "both" else [args.mode]
    measure(root, ids, modes, args.timeout, args.note)


if __name__ == "__main__":
    sys.exit(main())
