"""`make lab` starts JupyterLab on the course with nbgrader's extensions working.

The server is started the way `make lab` starts it (through make itself when the tests run in the
Makefile's venv), on a free port with a random token; the test asks it over HTTP for the course
folders, the lecture notebooks, nbgrader's lab extension and the formgrader's assignment list.
tests/test_browser.py drives the same server in a real browser.
"""

from __future__ import annotations

import json

import pytest
from course import ROOT, Lab, assignment_ids, course_notebooks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with Lab(ROOT, tmp_path_factory.mktemp("lab") / "lab.log") as server:
        yield server.get


def test_lab_serves_the_course_folders(lab):
    status, body = lab("/api/contents")
    assert status == 200
    names = {item["name"] for item in json.loads(body)["content"]}
    assert {"lectures", "solutions", "assignments", "README.md"} <= names


def test_lab_lists_every_lecture(lab):
    status, body = lab("/api/contents/lectures")
    assert status == 200
    names = {item["name"] for item in json.loads(body)["content"]}
    assert {p.name for p in course_notebooks("lectures")} <= names


def test_lab_page_loads_the_nbgrader_extension(lab):
    status, body = lab("/lab")
    assert status == 200
    assert "@jupyter/nbgrader" in body, "nbgrader's JupyterLab extension is not installed"


def test_formgrader_lists_every_assignment(lab):
    status, body = lab("/formgrader/api/assignments")
    assert status == 200, "nbgrader's formgrader server extension is not enabled"
    listed = {a["name"]: a for a in json.loads(body)}
    for aid in assignment_ids():
        assert aid in listed, f"formgrader does not list {aid}"
        assert listed[aid]["source_path"] == f"solutions/{aid}"


def test_python_kernel_is_available(lab):
    status, body = lab("/api/kernelspecs")
    assert status == 200 and "python3" in json.loads(body)["kernelspecs"]
