"""The suite's own parallelism: a module fixture that grades a class is built once, not per worker.

`make test` runs pytest-xdist with `--dist loadgroup`, and tests/conftest.py puts the tests that
share a module-scoped fixture in one group. With pytest 9.2 and pytest-xdist 3.8 the groups were
silently ignored (xdist writes `item._nodeid`, which pytest 9 no longer reads), every grading
fixture was built on both workers and the suite took 36 minutes instead of about 20: hence the pin
on pytest 8.4 in constraints.txt, and this test, which fails if grouping stops working again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
from course import ROOT

MODULE = """
import os

import pytest


@pytest.fixture(scope="module", params=["a", "b"])
def built(request):
    with open(os.environ["BUILT_LOG"], "a") as log:
        log.write(f"{request.param} {os.getpid()}\\n")
    return request.param


@pytest.mark.parametrize("i", range(6))
def test_uses_the_fixture(built, i):
    pass
"""


def _builds(tmp_path, dist: str) -> list[str]:
    tests = tmp_path / dist / "tests"
    tests.mkdir(parents=True)
    shutil.copy(ROOT / "tests" / "conftest.py", tests / "conftest.py")
    shutil.copy(ROOT / "tests" / "course.py", tests / "course.py")
    (tests / "test_module.py").write_text(textwrap.dedent(MODULE))
    log = tmp_path / f"{dist}.log"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", dist, "-p", "no:cacheprovider",
         "--rootdir", str(tests.parent), str(tests / "test_module.py")],
        capture_output=True, text=True, timeout=300, cwd=tests.parent,
        env={**os.environ, "BUILT_LOG": str(log)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return sorted(line.split()[0] for line in log.read_text().splitlines())


@pytest.mark.slow
def test_a_module_fixture_is_built_once_per_parameter_under_loadgroup(tmp_path):
    assert _builds(tmp_path, "loadgroup") == ["a", "b"]


@pytest.mark.slow
def test_without_groups_the_same_fixture_is_built_on_both_workers(tmp_path):
    """The check above can fail: plain `--dist load` spreads the same tests over both workers."""
    assert len(_builds(tmp_path, "load")) > 2


def test_the_site_is_scheduled_first_as_make_test_orders_it():
    # the site's fixture executes every lecture, the longest chain in the suite: with the
    # Makefile's options its group must be the first that xdist hands out
    make = subprocess.run(["make", "-n", "test"], capture_output=True, text=True, cwd=ROOT,
                          check=True).stdout
    command = next(line for line in make.splitlines() if " -m pytest " in line)
    assert "--dist loadgroup" in command and "--no-loadscope-reorder" in command
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-n", "0",
         "-p", "no:cacheprovider", "tests/test_arithmetic.py", "tests/test_site.py"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    ).stdout.splitlines()
    node_ids = [line for line in collected if "::" in line]
    assert node_ids and node_ids[0].startswith("tests/test_site.py::")
    assert any(line.startswith("tests/test_arithmetic.py::") for line in node_ids)
