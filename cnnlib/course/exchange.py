"""nbgrader's exchange for a course run on one machine, without a JupyterHub.

nbgrader's default exchange lives in /usr/local/share/nbgrader/exchange and is world-writable on
purpose: on a shared server every student must be able to drop submissions into it. On a laptop,
or in a container run as root, that means the first `nbgrader release_assignment` (or merely
opening the lab's Assignment List) creates a world-writable folder outside the course, or fails
and shows "Error fetching courses!".

The course's nbgrader_config.py therefore points the exchange at `exchange/` inside the course
(git-ignored) whenever no JupyterHub is in sight, creates it owner-writable only, and releases
through `LocalReleaseAssignment`, which keeps every folder it makes free of group and world write
permission. One user plays instructor and student: release, fetch, submit and collect all work,
and the lab's Assignment List lists what was released (`LocalSubmit` likewise keeps a
submission owner-writable where nbgrader's makes it 0777 for the instructor to delete).
Under a JupyterHub nothing changes: nbgrader's own exchange is used as the hub's administrator
set it up.
"""

from __future__ import annotations

import os

from nbgrader.exchange.default.release_assignment import ExchangeReleaseAssignment
from nbgrader.exchange.default.submit import ExchangeSubmit
from nbgrader.utils import check_directory

__all__ = ["LOCAL_MODE", "LocalReleaseAssignment", "LocalSubmit", "local_exchange", "on_jupyterhub"]

LOCAL_MODE = 0o755  # owner writes; everyone else may read and enter, as in any course folder
NO_GROUP_OR_WORLD_WRITE = ~0o022


def on_jupyterhub(environ=os.environ) -> bool:
    """True inside a JupyterHub single-user server (the hub sets these variables)."""
    return bool(environ.get("JUPYTERHUB_USER") or environ.get("JUPYTERHUB_API_URL"))


def local_exchange(course_root) -> str:
    """`course_root`/exchange, created with LOCAL_MODE if missing; its path."""
    root = os.path.join(os.path.abspath(course_root), "exchange")
    if not os.path.isdir(root):
        os.makedirs(root, exist_ok=True)
        os.chmod(root, LOCAL_MODE)
    return root


class LocalReleaseAssignment(ExchangeReleaseAssignment):
    """`nbgrader release_assignment` into a single-user exchange: nothing group or world writable.

    nbgrader's own release makes the exchange root 0777 and each course's inbound folder 0733 so
    that other users can submit; with one user, owner permissions are enough.
    """

    def ensure_root(self):
        if not os.path.isdir(self.root):
            os.makedirs(self.root, exist_ok=True)
            os.chmod(self.root, LOCAL_MODE)
        if not check_directory(self.root, write=True, execute=True):
            self.fail(f"the exchange folder {self.root} is not writable")

    def ensure_directory(self, path, mode):
        super().ensure_directory(path, mode & NO_GROUP_OR_WORLD_WRITE)


def _drop_group_and_world_write(folder: str) -> None:
    for dirpath, _, filenames in os.walk(folder):
        for path in (dirpath, *(os.path.join(dirpath, name) for name in filenames)):
            mode = os.stat(path).st_mode & 0o7777
            if mode & 0o022:
                os.chmod(path, mode & NO_GROUP_OR_WORLD_WRITE)


class LocalSubmit(ExchangeSubmit):
    """`nbgrader submit` into a single-user exchange: the submission stays owner-writable only."""

    def copy_files(self):
        super().copy_files()
        _drop_group_and_world_write(self.inbound_path)
