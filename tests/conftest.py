"""Suite-wide settings: no hypothesis deadlines, notebook runs shared between tests, and the
notice when the grader's tests are skipped for want of bubblewrap.

Hypothesis' default 200 ms deadline per example is a wall-clock bet that a busy laptop loses;
the suite checks results, and speed belongs in benchmarks/.

`executed(path)` runs a course notebook once per test session (quick mode, answers included) and
hands the result to every test that asks: the notebook test and the site test share one run, even
across pytest-xdist workers (a file lock per notebook in the session's shared temporary folder).
With CNNLIB_ARTIFACTS set (CI sets it), the executed notebooks and their run times are also
written there, for the CI job to keep.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from course import ROOT
from filelock import FileLock
from hypothesis import settings

from cnnlib.course.run import NotebookFailure, run_notebook

settings.register_profile("course", deadline=None)
settings.load_profile("course")

# generous: quick runs take 5-250 s of CPU; a busy 2-core laptop stretches that several times
NOTEBOOK_TIMEOUT = float(os.environ.get("CNNLIB_NOTEBOOK_TIMEOUT", "1800"))


@dataclass
class Executed:
    path: Path  # the executed copy
    failure: str | None
    wall_s: float
    cpu_s: float
    answers_run: int


def _shared_folder(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # under pytest-xdist each worker has its own basetemp; their parent is the session's
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    folder = _shared_folder(tmp_path_factory) / "executed"
    artifacts = os.environ.get("CNNLIB_ARTIFACTS")

    def run(path: Path) -> Executed:
        relative = path.relative_to(ROOT)
        out = folder / relative
        meta = out.with_suffix(".json")
        out.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(out.with_suffix(".lock"))):
            if not meta.exists():
                try:
                    result = run_notebook(path, NOTEBOOK_TIMEOUT, env={"CNNLIB_QUICK": "1"},
                                          label=str(relative))
                    nbformat.write(result.notebook, out)
                    record = {"failure": None, "wall_s": result.wall_s, "cpu_s": result.cpu_s,
                              "answers_run": result.answers_run}
                except NotebookFailure as failure:
                    record = {"failure": str(failure), "wall_s": 0.0, "cpu_s": 0.0,
                              "answers_run": 0}
                meta.write_text(json.dumps(record))
                if artifacts:
                    target = Path(artifacts) / "executed" / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(meta, target.with_suffix(".json"))
                    if out.exists():
                        shutil.copy(out, target)
            record = json.loads(meta.read_text())
        return Executed(out, **record)

    return run


def pytest_terminal_summary(terminalreporter):
    """One clear line when the hardened grader's tests were skipped for want of bubblewrap."""
    if shutil.which("bwrap"):
        return
    skipped = terminalreporter.stats.get("skipped", [])
    if any("bubblewrap" in str(getattr(report, "longrepr", "")) for report in skipped):
        terminalreporter.write_line(
            "NOTE: the hardened grader's tests were SKIPPED: bubblewrap (bwrap) is not installed. "
            "Install it with `sudo apt-get install bubblewrap` (Debian/Ubuntu) and run "
            "`make test` again.", yellow=True, bold=True)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups into node ids
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (--dist loadgroup), the tests of a module that share a module-scoped
    fixture (the lab server, the grader's corpus, the built site) go to one worker, so the
    fixture is built once; every other test is spread over the workers one by one, the site's
    first. Without xdist (`-p no:xdist`) there are no groups to make."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None:
            continue
        module_scoped = {name for name, defs in info.name2fixturedefs.items()
                         if any(d.scope == "module" for d in defs)}  # fmt: skip
        if module_scoped:
            # a module fixture parametrised per assignment (the nbgrader round trip) is built once
            # per parameter: one group per parameter, so the assignments spread over the workers
            params = getattr(getattr(item, "callspec", None), "params", {})
            tag = [str(params[name]) for name in sorted(module_scoped) if name in params]
            item.add_marker(pytest.mark.xdist_group("-".join([item.module.__name__, *tag])))
    # The site's tests first: their fixture executes every lecture (the longest chain in the
    # suite), so a worker should start on it at once rather than when the alphabet reaches it.
    # A stable sort: every other test keeps its place.
    items.sort(key=lambda item: item.get_closest_marker("site") is None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a test whose call failed, for fixtures that keep evidence (the browser's screenshot)."""
    outcome = yield
    if call.when == "call" and outcome.get_result().failed:
        item.failed_call = True
