"""The course secret, and the seeds of the hidden inputs derived from it.

Fairness needs every submission of an assignment to be checked on the same inputs, and secrecy
needs those inputs to be unknown before the deadline. So the random inputs of a grade cell come
from a seed that depends on a course secret, the assignment and the grade cell only: never on the
submission, the run or the output folder.

The secret is 32 random bytes, made once per course by the grader and kept in `.course-secret` in
the course root (git-ignored, readable by its owner only): outside the release, outside every output
folder, and never inside a sandbox. Its fingerprint (a hash of it) is recorded with the results, so
a regrade can tell whether it used the same secret. Without a secret (a notebook run by hand, CI,
plain `nbgrader autograde`) the inputs come from a public development key: the same every time,
and no secret.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

__all__ = ["DEVELOPMENT_KEY", "SECRET_FILE", "fingerprint", "load_or_create", "seed_for"]

SECRET_FILE = ".course-secret"
DEVELOPMENT_KEY = b"cnnlib development key: public, not a secret"


def load_or_create(path: Path) -> tuple[bytes, bool]:
    """(the secret in `path`, whether it was just created). Creates it 0600 when missing."""
    path = Path(path)
    if not path.exists():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another grader made it a moment ago
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            return load_or_create(path)[0], True
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise ValueError(
            f"--secret: {path} does not hold a course secret (64 hex digits); restore it from a "
            "backup, or move it away to make a new one (new hidden inputs: regrade everyone)"
        )
    return key, False


def fingerprint(key: bytes) -> str:
    """A short public name for a secret: equal fingerprints, equal hidden inputs."""
    if key == DEVELOPMENT_KEY:
        return "development"
    return hashlib.sha256(b"cnnlib course secret|" + key).hexdigest()[:16]


def seed_for(key: bytes, assignment_id: str, grade_id: str, index: int) -> int:
    """The seed of check `index` of grade cell `grade_id`: the same for every submission."""
    digest = hashlib.sha256(key + f"|{assignment_id}|{grade_id}|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")
