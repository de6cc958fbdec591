"""The instructor's CI: .github/workflows/course.yml runs exactly the steps of .ci/run, caches the
environment on the pins, keeps the executed lectures and the site, and the README shows it."""

from __future__ import annotations

import re
import subprocess

import yaml
from course import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "course.yml"


def ci_steps() -> list[str]:
    result = subprocess.run(["bash", ".ci/run", "--list"], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    return result.stdout.split()


def workflow_job() -> dict:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert list(jobs) == ["test"]
    return jobs["test"]


def test_the_workflow_runs_the_steps_of_ci_run_in_order():
    runs = [step["run"] for step in workflow_job()["steps"] if "run" in step]
    ci_runs = [r for r in runs if ".ci/run" in r]
    assert ci_runs == [f"bash .ci/run {step}" for step in ci_steps()], ci_runs
    # nothing else in the workflow runs a test or installs packages behind .ci/run's back
    for other in set(runs) - set(ci_runs):
        assert not re.search(r"\b(make|pytest|apt-get|pip)\b", other), other


def test_ci_run_without_arguments_runs_every_step():
    script = (ROOT / ".ci" / "run").read_text()
    assert 'for step in "${@:-${STEPS[@]}}"' in script
    assert set(ci_steps()) == {"system-packages", "tests"}
    assert "make test" in script and "CNNLIB_REQUIRE_BWRAP=1" in script
    assert "CNNLIB_REQUIRE_BROWSER=1" in script
    assert "apt_install bwrap bubblewrap" in script and "apt_install chromium chromium" in script


def test_an_unknown_step_is_refused():
    result = subprocess.run(["bash", ".ci/run", "deploy"], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 2 and "no step 'deploy'" in result.stderr


def test_the_environment_is_cached_on_the_pins():
    cache = next(s for s in workflow_job()["steps"] if s.get("uses", "").startswith(
        "actions/cache@"))
    assert cache["with"]["path"] == ".venv"
    assert "hashFiles('constraints.txt', 'pyproject.toml')" in cache["with"]["key"]


def test_the_executed_lectures_and_the_site_are_kept():
    job = workflow_job()
    artifacts = job["env"]["CNNLIB_ARTIFACTS"]
    script = (ROOT / ".ci" / "run").read_text()
    assert f'CNNLIB_ARTIFACTS="${{CNNLIB_ARTIFACTS:-{artifacts}}}"' in script
    upload = next(s for s in job["steps"] if s.get("uses", "").startswith(
        "actions/upload-artifact@"))
    assert upload["if"] == "always()"
    assert upload["with"]["path"].split() == [f"{artifacts}/executed", f"{artifacts}/site"]


def test_the_workflow_uses_the_pinned_python_on_debian():
    image = workflow_job()["container"]["image"]
    python = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"][0]
    assert python.startswith("python=")
    assert image == f"python:{python.removeprefix('python=')}-bookworm"


def test_the_readme_shows_the_workflow():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Running the notebooks in CI"):]
    assert f"```yaml\n{WORKFLOW.read_text()}```" in section
