"""Finding the submissions in what an instructor downloaded, whatever the LMS, and who is who.

Layouts (`--submissions` is a folder or a zip of one; found by looking, or named with `--layout`):

- folders: one folder per student id holding that student's files (nbgrader's own layout, and what
  a course that collects by hand has);
- canvas: Canvas's "Download Submissions": loose files named
  `<name>[_LATE]_<user id>_<submission id>_<file>`; the student is the Canvas user id;
- moodle: Moodle's "Download submissions", in folders `<Full Name>_<id>_assignsubmission_file_/`
  (or loose files `<Full Name>_<id>_assignsubmission_file_<file>`); the student is Moodle's id;
- github: GitHub Classroom's repositories, `<assignment>-<username>/`; the student is the username.

`--roster CSV` maps the LMS's ids to the course's student ids (and names): a CSV with a
`student_id` column and one of `lms_id`, `canvas_id`, `moodle_id`, `github` (Canvas's own
gradebook export works as it is: ID, SIS User ID, SIS Login ID, Student). With a roster, a
submission whose id the roster does not list stops the run: better than a grade lost.

Zips are unpacked safely (no paths outside the folder, no links, a size cap) and their file names
decoded right even when the zip does not mark them as UTF-8 (Info-ZIP on Linux writes UTF-8
without the mark, Windows' Explorer its own code page), so "José Núñez" stays José Núñez. A zip a
student uploaded is unpacked inside that student's folder.

Every student's files are copied to <out>/inbox/<student id>/, which is what phase 1 grades.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import re
import shutil
import unicodedata
import zipfile
from pathlib import Path

__all__ = ["LAYOUTS", "Roster", "Submission", "SubmissionsError", "collect", "extract_zip"]

LAYOUTS = ("auto", "folders", "canvas", "moodle", "github")
MAX_ZIP_BYTES = 2 * 1024**3
MAX_STUDENT_BYTES = 512 * 1024**2
_JUNK = {"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini", ".ipynb_checkpoints"}
CANVAS = re.compile(r"^(?P<name>[^_]+?)(?:_LATE)?_(?P<id>\d+)_(?P<sub>\d+)_(?P<file>.+)$")
MOODLE_DIR = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?:file|onlinetext)_?$")
MOODLE_FILE = re.compile(
    r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?:file|onlinetext)_(?P<file>.+)$"
)
_RESUBMITTED = re.compile(r"^(?P<stem>.+?)-\d+(?P<suffix>\.[A-Za-z0-9]+)$")


class SubmissionsError(ValueError):
    """Nothing to grade, a layout we do not know, or a roster that does not match."""


@dataclasses.dataclass
class Submission:
    student_id: str  # the gradebook's id: the roster's student id, else the LMS's id
    name: str  # as the LMS or the roster gives it ("" when neither does)
    lms_id: str
    folder: Path  # <out>/inbox/<student_id>/


# --------------------------------------------------------------------------- zips


def _zip_name(info: zipfile.ZipInfo) -> str:
    """The entry's real name: UTF-8 when marked so or when its bytes are UTF-8, else cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return info.filename


def extract_zip(archive: Path, dest: Path, limit: int = MAX_ZIP_BYTES) -> Path:
    """Unpack a zip into dest (emptied first): no paths outside it, no links, at most `limit`."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    total = 0
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as error:
        raise SubmissionsError(f"--submissions: {archive} is not a zip file ({error})") from None
    with zf:
        for info in zf.infolist():
            name = unicodedata.normalize("NFC", _zip_name(info)).replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if not parts or ".." in parts or parts[0] in _JUNK:
                continue
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                continue  # a symlink
            total += info.file_size
            if total > limit:
                raise SubmissionsError(f"--submissions: {archive} unpacks to more than "
                                       f"{limit // 1024**2} MB")  # fmt: skip
            target = dest.joinpath(*parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


# --------------------------------------------------------------------------- the roster


@dataclasses.dataclass
class Roster:
    """LMS id -> (student id, name); `by_column` keeps which LMS each id came from."""

    entries: dict[str, tuple[str, str]]
    extra: dict[str, dict[str, str]]  # student id -> the roster row (Canvas columns, ...)

    @classmethod
    def read(cls, path: Path) -> Roster:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise SubmissionsError(f"--roster: {path} has no rows")
        columns = {c.strip().lower(): c for c in rows[0] if c}
        canvas = {"id", "sis user id", "sis login id"} <= set(columns)
        if "student_id" not in columns and not canvas:
            raise SubmissionsError(
                f"--roster: {path} needs a student_id column (and lms_id, canvas_id, moodle_id "
                f"or github), or Canvas's gradebook columns; it has {list(rows[0])}"
            )
        entries, extra = {}, {}
        id_columns = [c for c in ("lms_id", "canvas_id", "moodle_id", "github", "id")
                      if c in columns]  # fmt: skip
        for row in rows:
            get = {k: (row.get(v) or "").strip() for k, v in columns.items()}
            if canvas:
                if not get["id"].isdigit():
                    continue  # "Points Possible" and other non-student rows
                student = get.get("sis login id") or get.get("sis user id") or get["id"]
                name = get.get("student", "")
            else:
                student, name = get["student_id"], get.get("name", "")
            if not student:
                continue
            extra[student] = {**get, "student_id": student, "name": name}
            entries[student] = (student, name)
            for column in id_columns:
                if get.get(column):
                    entries[get[column]] = (student, name)
        return cls(entries, extra)

    def lookup(self, lms_id: str) -> tuple[str, str] | None:
        return self.entries.get(lms_id)


# --------------------------------------------------------------------------- layouts


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name not in _JUNK and not p.name.startswith("."))


def _unwrap(root: Path) -> Path:
    """A folder that only wraps the real one (a zip of one folder) is looked through."""
    while True:
        entries = _visible(root)
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        inner = _visible(entries[0])
        loose = [p for p in inner if p.is_file() and p.suffix == ".ipynb"]
        lms_files = [p for p in loose if CANVAS.match(p.name) or MOODLE_FILE.match(p.name)]
        if not inner or (loose and len(lms_files) != len(loose)):
            return root
        if not loose and not any(p.is_dir() for p in inner):
            return root
        root = entries[0]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _github_prefix(folders: list[Path], assignment_id: str) -> str | None:
    slug = _slug(assignment_id) + "-"
    names = [p.name for p in folders]
    if names and all(n.lower().startswith(slug) and len(n) > len(slug) for n in names):
        return slug
    if len(names) >= 2 and all((p / ".git").exists() for p in folders):
        common = names[0]
        for n in names[1:]:
            while not n.startswith(common):
                common = common[:-1]
        cut = common.rfind("-")
        if cut > 0 and all(len(n) > cut + 1 for n in names):
            return common[: cut + 1]
    return None


def _detect(root: Path, assignment_id: str, layout: str):
    """[(lms id, name, [(relative name, path)])] and the layout found."""
    entries = _visible(root)
    folders = [p for p in entries if p.is_dir()]
    files = [p for p in entries if p.is_file()]
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    if not entries or (not folders and not files):
        raise SubmissionsError(f"--submissions: {root} is empty: no submissions found")
    if layout == "auto":
        if folders and notebooks:
            raise SubmissionsError(
                f"--submissions: {root} mixes folders with loose notebooks "
                f"({notebooks[0].name}, ...): unknown layout; " + _EXPECTED
            )
        if folders:
            if all(MOODLE_DIR.match(p.name) for p in folders):
                layout = "moodle"
            elif _github_prefix(folders, assignment_id):
                layout = "github"
            else:
                layout = "folders"
        elif files and all(CANVAS.match(p.name) for p in files):
            layout = "canvas"
        elif files and all(MOODLE_FILE.match(p.name) for p in files):
            layout = "moodle"
        else:
            odd = next((p.name for p in files if not CANVAS.match(p.name)), files[0].name)
            raise SubmissionsError(
                f"--submissions: {root} holds loose files that are not named like an LMS export "
                f"(for example {odd!r}): unknown layout; " + _EXPECTED
            )
    found: dict[str, tuple[str, list]] = {}

    def add(lms_id, name, relative, path):
        found.setdefault(lms_id, (name, []))[1].append((relative, path))

    if layout == "folders":
        for folder in folders:
            for path in sorted(folder.rglob("*")):
                add(folder.name, "", str(path.relative_to(folder)), path)
            found.setdefault(folder.name, ("", []))
    elif layout == "github":
        prefix = _github_prefix(folders, assignment_id) or ""
        for folder in folders:
            user = folder.name[len(prefix):] if folder.name.startswith(prefix) else folder.name
            for path in sorted(folder.rglob("*")):
                if ".git" not in path.relative_to(folder).parts:
                    add(user, user, str(path.relative_to(folder)), path)
            found.setdefault(user, (user, []))
    elif layout == "moodle":
        for folder in folders:
            match = MOODLE_DIR.match(folder.name)
            if not match:
                raise SubmissionsError(f"--layout moodle: {folder.name!r} is not a Moodle folder")
            for path in sorted(folder.rglob("*")):
                add(match["id"], match["name"], str(path.relative_to(folder)), path)
            found.setdefault(match["id"], (match["name"], []))
        for path in files:
            match = MOODLE_FILE.match(path.name)
            if match:
                add(match["id"], match["name"], match["file"], path)
    elif layout == "canvas":
        for path in files:
            match = CANVAS.match(path.name)
            if not match:
                raise SubmissionsError(f"--layout canvas: {path.name!r} is not a Canvas file name")
            resubmitted = _RESUBMITTED.match(match["file"])
            name = resubmitted["stem"] + resubmitted["suffix"] if resubmitted else match["file"]
            add(match["id"], match["name"], name, path)
    return layout, found


_EXPECTED = (
    "expected one folder per student, or an export of Canvas (<name>_<userid>_<submissionid>_"
    "<file>), Moodle (<Full Name>_<id>_assignsubmission_file_/...) or GitHub Classroom "
    "(<assignment>-<username>/...); name one with --layout"
)


def _safe_id(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    plain = re.sub(r"[^A-Za-z0-9._@+-]+", "_", plain).strip("._")
    return plain or "student"


def _copy_files(files: list[tuple[str, Path]], dest: Path) -> None:
    total = 0
    for relative, path in files:
        if path.is_symlink() or not path.is_file():
            continue
        parts = [p for p in Path(relative).parts if p not in ("", ".", "..")]
        if not parts or any(p in _JUNK for p in parts):
            continue
        total += path.stat().st_size
        if total > MAX_STUDENT_BYTES:
            break
        target = dest.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        if target.suffix.lower() == ".zip":
            # a broken upload: the notebook is what counts
            with contextlib.suppress(SubmissionsError):
                extract_zip(target, target.with_suffix(""), limit=MAX_STUDENT_BYTES)


def collect(
    source: Path,
    inbox: Path,
    assignment_id: str,
    *,
    roster: Roster | None = None,
    layout: str = "auto",
) -> tuple[list[Submission], str]:
    """Every submission in `source` (a folder or a zip), copied to inbox/<student id>/.

    Returns (submissions sorted by student id, the layout). Raises SubmissionsError when nothing
    is found, the layout is unknown, or the roster does not list a submission's id.
    """
    if layout not in LAYOUTS:
        raise SubmissionsError(f"--layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    source = Path(source)
    if not source.exists():
        raise SubmissionsError(f"--submissions: {source} does not exist")
    if source.is_file():
        source = extract_zip(source, inbox.parent / "unpacked")
    layout, found = _detect(_unwrap(source), assignment_id, layout)
    if not found:
        raise SubmissionsError(f"--submissions: no submissions found in {source}; " + _EXPECTED)
    if roster is not None:
        unknown = sorted(lms_id for lms_id in found if roster.lookup(lms_id) is None)
        if unknown:
            raise SubmissionsError(
                f"--roster: {len(unknown)} submission(s) are not in the roster: "
                f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}; add them to "
                "the roster (or check that it is this course's)"
            )
    if inbox.exists():
        shutil.rmtree(inbox)
    inbox.mkdir(parents=True)
    submissions, taken = [], set()
    for lms_id, (name, files) in sorted(found.items()):
        if roster is not None:
            student, roster_name = roster.lookup(lms_id)
            name = roster_name or name
        else:
            student = lms_id
        student_id = _safe_id(student)
        if student_id != student and not name:
            name = student
        base, n = student_id, 2
        while student_id in taken:
            student_id, n = f"{base}-{n}", n + 1
        taken.add(student_id)
        folder = inbox / student_id
        folder.mkdir()
        _copy_files(files, folder)
        submissions.append(Submission(student_id, name, lms_id, folder))
    return submissions, layout
