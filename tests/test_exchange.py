"""Without a JupyterHub, nbgrader's exchange is exchange/ inside the course, and nothing it makes
is group- or world-writable: release, fetch, submit and collect run as one user, and the lab's
Assignment List lists the release instead of failing with "Error fetching courses!"."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from course import ROOT, make_course, nbgrader

from cnnlib.course.exchange import on_jupyterhub

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]
AID = "a1_conv_arithmetic"
DEFAULT_ROOT = "/usr/local/share/nbgrader/exchange"


def writable_by_others(folder):
    return [str(p) for p in [folder, *folder.rglob("*")]
            if stat.S_IMODE(p.lstat().st_mode) & 0o022]


def test_release_fetch_submit_collect_in_the_course_exchange(tmp_path):
    default_existed = os.path.exists(DEFAULT_ROOT)
    course = make_course(tmp_path, AID)
    exchange = course / "exchange"
    result = nbgrader(course, "release_assignment", AID)
    assert result.returncode == 0, result.stderr
    assert (exchange / "cnn-course" / "outbound" / AID / f"{AID}.ipynb").is_file()

    student = tmp_path / "student"
    student.mkdir()
    # as the lab's Assignment List runs them: with the course's exchange settings
    where = ["--course", "cnn-course", f"--Exchange.root={exchange}",
             "--ExchangeFactory.submit=cnnlib.course.exchange.LocalSubmit"]
    for command in (["fetch_assignment", AID], ["submit", AID]):
        result = nbgrader(student, *command, *where)
        assert result.returncode == 0, f"{command}: {result.stderr}"
    result = nbgrader(course, "collect", AID)
    assert result.returncode == 0, result.stderr
    assert list((course / "submitted").glob(f"*/{AID}/{AID}.ipynb"))

    assert writable_by_others(exchange) == []
    assert os.path.exists(DEFAULT_ROOT) == default_existed, f"{DEFAULT_ROOT} was created"


def test_the_course_exchange_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", "exchange/x"], cwd=ROOT)
    assert ignored.returncode == 0, "exchange/ is not in .gitignore"


def _exchange_root(env) -> str:
    code = ("from traitlets.config.loader import PyFileConfigLoader as L; "
            f"c = L('nbgrader_config.py', path={str(ROOT)!r}).load_config(); "
            "print(c.Exchange.root if 'root' in c.Exchange else 'default')")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_on_a_jupyterhub_nbgraders_own_exchange_is_kept():
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    assert _exchange_root(env) == str(ROOT / "exchange")
    assert _exchange_root({**env, "JUPYTERHUB_USER": "student1"}) == "default"
    assert on_jupyterhub({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"})
    assert not on_jupyterhub({})
