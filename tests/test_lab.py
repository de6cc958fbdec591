"""`make lab` starts JupyterLab on the course with nbgrader's extensions working.

The server is started the way `make lab` starts it (through make itself when the tests run in the
Makefile's venv), on a free port with a random token; the test asks it over HTTP for the course
folders, the lecture notebooks, nbgrader's lab extension and the formgrader's assignment list.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from course import ROOT, assignment_ids, course_notebooks

pytestmark = pytest.mark.slow
# JupyterLab starts in a few seconds and answers in well under one; on a busy laptop (or a CI
# runner sharing its cores with the notebook tests) both can take far longer.
LAB_WAIT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    port, token = _free_port(), secrets.token_hex(16)
    args = f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token}"
    if Path(sys.prefix) == ROOT / ".venv":
        command = ["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"]
    else:  # a conda environment, say: start the same server without make's venv
        command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT}",
                   *args.split()]  # fmt: skip
        if os.geteuid() == 0:
            command.append("--allow-root")
    log_path = tmp_path_factory.mktemp("lab") / "lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # fmt: skip

    def get(path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{port}{path}{'&' if '?' in path else '?'}token={token}"
        try:
            with urllib.request.urlopen(url, timeout=LAB_WAIT_S) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    try:
        deadline = time.monotonic() + LAB_WAIT_S
        while True:
            assert server.poll() is None, (
                f"`{' '.join(command)}` exited with {server.returncode}:\n"
                f"{log_path.read_text()[-3000:]}"
            )
            try:
                if get("/api/status")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, (
                f"JupyterLab did not answer within {LAB_WAIT_S} s:\n{log_path.read_text()[-3000:]}"
            )
            time.sleep(0.5)
        yield get
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


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
