"""`python -m cnnlib formgrade <assignment_id>`: nbgrader's formgrader on the hardened gradebook.

`python -m cnnlib grade` keeps its gradebook in <out>/nbgrader/ (a private nbgrader course), not
in the course root where plain `nbgrader autograde` writes. This opens JupyterLab on that private
course with the formgrader as its start page: written answers waiting for a grade, scores to
adjust, comments to add. Afterwards, `python -m cnnlib grade <assignment_id> --export-only`
rewrites grades.csv, nbgrader's export, canvas.csv and every student's feedback from it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from cnnlib.grading.autograde import HelpFormatter
from cnnlib.grading.course import find_course, nbgrader_env

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cnnlib formgrade",
        description="Open nbgrader's formgrader on the hardened grader's gradebook.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("assignment_id", help="the assignment graded with `python -m cnnlib grade`")
    p.add_argument("--out", type=Path, default=None,
                   help="the grader's results folder (default: <course>/grading/<assignment_id>)")
    p.add_argument("--course", type=Path, default=None,
                   help="the course root (default: found from the current folder)")
    p.epilog = "Other options go to JupyterLab, e.g. --no-browser --port 8890."
    return p  # fmt: skip


def command(private: Path, lab_args: list[str]) -> list[str]:
    """The JupyterLab command that serves the formgrader of the private course `private`."""
    args = [
        sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={private}",
        "--ServerApp.default_url=/formgrader", *lab_args,
    ]  # fmt: skip
    if os.geteuid() == 0 and "--allow-root" not in lab_args:
        args.append("--allow-root")  # Jupyter refuses root (containers) unless told
    return args


def main(argv: list[str] | None = None) -> int:
    args, lab_args = _parser().parse_known_args(argv)
    course = args.course or find_course(Path.cwd())
    if course is None:
        print("formgrade: no course found (no nbgrader_config.py); pass --course", file=sys.stderr)
        return 2
    out = (args.out or course.resolve() / "grading" / args.assignment_id).resolve()
    private = out / "nbgrader"
    if not (private / "gradebook.db").is_file():
        print(f"formgrade: no gradebook in {private}: grade first with `python -m cnnlib grade "
              f"{args.assignment_id} --submissions ...`", file=sys.stderr)  # fmt: skip
        return 2
    nbgrader_env()
    print(f"formgrader on {private / 'gradebook.db'}; when you are done, run\n"
          f"  python -m cnnlib grade {args.assignment_id} --export-only"
          f"{'' if args.out is None else f' --out {out}'}\n"
          "to rewrite grades.csv, nbgrader's export, canvas.csv and the feedback.", flush=True)
    return subprocess.call(command(private, lab_args), cwd=private)
