"""The pinned environment: constraints.txt is the one place for versions; the rest agree with it."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from course import ROOT

# conda-forge names that differ from the pip ones
CONDA_TO_PIP = {"matplotlib-base": "matplotlib", "pytorch": "torch"}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"constraints.txt: {line!r} is not pinned with =="
            pins[normalise(name)] = version
    return pins


def environment_yml() -> tuple[dict[str, str], list[str]]:
    """(package -> version, pip lines that are not packages) from environment.yml."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    versions, other = {}, []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                name, sep, version = line.partition("==")
                if sep:
                    versions[normalise(name)] = version
                else:
                    other.append(line)
        else:
            name, _, version = dep.partition("=")
            versions[normalise(CONDA_TO_PIP.get(name, name))] = version
    return versions, other


def direct_dependencies() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["course"]
    return [normalise(re.split(r"[<>=!~; \[]", r, maxsplit=1)[0]) for r in requirements]


def test_torch_is_pinned_to_the_tested_release():
    assert constraints()["torch"] == "2.13.0"


def test_nbgrader_has_the_path_traversal_fix():
    major, minor, patch = map(int, constraints()["nbgrader"].split(".")[:3])
    assert (major, minor, patch) >= (0, 9, 6)


def test_every_direct_dependency_is_pinned_in_both_places():
    pins, (env, _) = constraints(), environment_yml()
    for name in direct_dependencies():
        assert name in pins, f"{name} (pyproject.toml) is not pinned in constraints.txt"
        assert name in env, f"{name} (pyproject.toml) is missing from environment.yml"


def test_environment_yml_uses_the_pinned_versions():
    pins, (env, other) = constraints(), environment_yml()
    for name, version in env.items():
        if name in ("python", "pip"):
            continue
        assert name in pins, f"environment.yml lists {name}, which constraints.txt does not pin"
        assert version == pins[name], (
            f"{name}: environment.yml has {version}, constraints.txt has {pins[name]}"
        )
    assert other == ["-e ."], "environment.yml should install the course package itself"


def test_environment_yml_python_satisfies_requires_python():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    minimum = tuple(map(int, project["requires-python"].removeprefix(">=").split(".")))
    python = tuple(map(int, environment_yml()[0]["python"].split(".")))
    assert python >= minimum


@pytest.mark.parametrize("name", ["numpy", "torch", "nbgrader", "jupyterlab"])
def test_installed_versions_are_the_pinned_ones(name):
    # make test runs in the venv that the Makefile built from constraints.txt
    from importlib.metadata import version

    assert version(name).split("+")[0] == constraints()[name]


@pytest.mark.skipif(
    Path(sys.prefix) != ROOT / ".venv", reason="runs in the venv that the Makefile builds"
)
def test_make_considers_its_venv_current():
    # `make -q` exits 0 when the target is up to date: re-running `make test` or `make lab` with
    # unchanged pins goes straight to the work. The stamp's name carries the pins' hash.
    result = subprocess.run(["make", "-q", "env"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, "the venv's stamp does not match constraints.txt/pyproject.toml"
    digest = hashlib.sha256(
        (ROOT / "constraints.txt").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()[:16]
    assert (ROOT / ".venv" / f".installed-{digest}").exists()
