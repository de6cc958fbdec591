"""Build the course site: execute the lectures, then render them with Sphinx and MyST-NB.

    python docs/build.py                 # full mode: what a student gets (slow)
    python docs/build.py --quick         # CNNLIB_QUICK=1: small data, a few minutes (make html)
    python docs/build.py --executed DIR  # reuse notebooks already executed into DIR/lectures/

The pages: an index with the course map (lectures/course.yml), every lecture in course.yml's
order as executed (figures included), the README, and an execution-time table of this build.
Output: build/site/html/index.html. Why Sphinx + MyST-NB: it is the notebook ecosystem's own
renderer (Jupyter Book 1 is built on it), pure Python (pinned in constraints.txt like everything
else, no Node toolchain), and it renders stored outputs without re-running them, so the site
shows exactly the run that was measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cnnlib.course import catalog  # noqa: E402
from cnnlib.course.run import NotebookFailure, run_notebook  # noqa: E402


def _lecture_files() -> list[str]:
    return [catalog.MAP_NOTEBOOK] + [lecture.notebook for lecture in catalog.lectures(ROOT)]


def execute(src: Path, quick: bool, timeout: float, executed: Path | None) -> dict[str, dict]:
    """Executed copies of the lectures in src/lectures/; {notebook: {wall_s, cpu_s, failure}}."""
    import nbformat

    (src / "lectures").mkdir(parents=True)
    times = {}
    for name in _lecture_files():
        target = src / "lectures" / name
        if executed is not None:
            shutil.copy(executed / "lectures" / name, target)
            record = executed / "lectures" / Path(name).with_suffix(".json")
            times[name] = json.loads(record.read_text()) if record.exists() else {}
            continue
        print(f"executing {name} ...", flush=True)
        try:
            result = run_notebook(ROOT / "lectures" / name, timeout,
                                  env={"CNNLIB_QUICK": "1" if quick else "0"})
        except NotebookFailure as failure:
            raise SystemExit(f"the site needs every lecture to run: {failure}") from None
        nbformat.write(result.notebook, target)
        times[name] = {"wall_s": result.wall_s, "cpu_s": result.cpu_s, "failure": None}
    return times


def _execution_page(times: dict[str, dict], quick: bool) -> str:
    rows = ["| notebook | wall time | kernel CPU time |", "| --- | --- | --- |"]
    for name in _lecture_files():
        t = times.get(name, {})
        wall = f"{t['wall_s']:.1f} s" if t.get("wall_s") is not None else "reused"
        cpu = f"{t['cpu_s']:.1f} s" if t.get("cpu_s") is not None else ""
        rows.append(f"| [{Path(name).stem}](lectures/{name}) | {wall} | {cpu} |")
    mode = "quick mode (`CNNLIB_QUICK=1`)" if quick else "full mode"
    return ("# Execution times of this build\n\n"
            f"Every lecture on this site was executed in {mode} by `docs/build.py`, in a fresh "
            "kernel, answers to exercises included; wall time counts from the started kernel "
            "to the last cell. The course map lists the measured times of both modes.\n\n"
            + "\n".join(rows) + "\n")


def _index_page() -> str:
    toc = "\n".join(f"lectures/{Path(name).stem}" for name in _lecture_files())
    return f"""# Convolutional networks: the course

Lectures with every figure computed, autograded assignments, and the reference library
`cnnlib`. Each lecture below is a Jupyter notebook as executed for this site; download it, or
clone the course and run `make lab` to work in it.

## Course map

{catalog.course_map_markdown(ROOT, links="lectures/")}

```{{toctree}}
:maxdepth: 1
:caption: Lectures

{toc}
```

```{{toctree}}
:maxdepth: 1
:caption: About

readme
execution
```
"""


def build(out: Path, quick: bool, timeout: float = 3600, executed: Path | None = None) -> Path:
    """Sources into out/src, the site into out/html; returns the path of index.html."""
    started = time.monotonic()
    src = out / "src"
    if src.exists():
        shutil.rmtree(src)
    times = execute(src, quick, timeout, executed)
    (src / "index.md").write_text(_index_page())
    (src / "readme.md").write_text((ROOT / "README.md").read_text())
    (src / "execution.md").write_text(_execution_page(times, quick))
    html = out / "html"
    if html.exists():
        shutil.rmtree(html)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
               "-c", str(ROOT / "docs"), str(src), str(html)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"sphinx-build failed:\n{result.stdout}\n{result.stderr}")
    print(f"site built in {time.monotonic() - started:.0f} s: {html / 'index.html'}")
    return html / "index.html"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="execute with CNNLIB_QUICK=1")
    parser.add_argument("--executed", type=Path, help="reuse executed notebooks from this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "site")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per notebook")
    args = parser.parse_args(argv)
    build(args.out, args.quick, args.timeout, args.executed)


if __name__ == "__main__":
    main()
