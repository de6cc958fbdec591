"""Finding the submissions in every layout an LMS gives, zipped or not, with the right names."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from cnnlib.grading.submissions import Roster, SubmissionsError, collect, extract_zip

AID = "a1_conv_arithmetic"
# the class: (the course's student id, full name, Canvas user id, Moodle id, GitHub username)
CLASS = [
    ("jnunez", "José Núñez", "1001", "2001", "jose-nunez"),
    ("bsmith", "Bob Smith", "1002", "2002", "bobsmith"),
]
NOTEBOOK = {"jnunez": b'{"cells": ["jose"]}', "bsmith": b'{"cells": ["bob"]}'}
WEIGHTS = {"jnunez": b"weights of jose", "bsmith": b"weights of bob"}


def _write(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def _layouts() -> dict[str, dict[str, bytes]]:
    """Each LMS's download of the same class (two files per student)."""
    folders, canvas, moodle, github = {}, {}, {}, {}
    for sid, name, canvas_id, moodle_id, user in CLASS:
        for file, data in ((f"{AID}.ipynb", NOTEBOOK[sid]), ("weights.npz", WEIGHTS[sid])):
            folders[f"{sid}/{file}"] = data
            last, first = name.split()[1].lower(), name.split()[0].lower()
            late = "_LATE" if sid == "bsmith" else ""
            resubmitted = file.replace(".ipynb", "-1.ipynb") if sid == "bsmith" else file
            canvas[f"{last}{first}{late}_{canvas_id}_{int(canvas_id) + 5000}_{resubmitted}"] = data
            moodle[f"{name}_{moodle_id}_assignsubmission_file_/{file}"] = data
            github[f"a1-conv-arithmetic-{user}/{file}"] = data
        github[f"a1-conv-arithmetic-{user}/.git/HEAD"] = b"ref: refs/heads/main"
    return {"folders": folders, "canvas": canvas, "moodle": moodle, "github": github}


ROSTER = "student_id,name,canvas_id,moodle_id,github\n" + "".join(
    f"{sid},{name},{c},{m},{g}\n" for sid, name, c, m, g in CLASS
)


def _contents(submissions) -> dict[str, dict[str, bytes]]:
    return {
        s.student_id: {p.name: p.read_bytes() for p in s.folder.rglob("*") if p.is_file()}
        for s in submissions
    }


def _zip(source: Path, archive: Path, *, utf8_flag: bool, encoding: str = "utf-8") -> Path:
    """A zip of source; without the UTF-8 flag, names written in `encoding` (as Info-ZIP on Linux
    writes UTF-8, and Windows' Explorer its OEM code page, both without the flag)."""

    class Unflagged(zipfile.ZipInfo):
        def _encodeFilenameFlags(self):
            return self.filename.encode(encoding), self.flag_bits & ~0x800

    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                name = str(Path("download") / path.relative_to(source))
                info = zipfile.ZipInfo(name) if utf8_flag else Unflagged(name)
                zf.writestr(info, path.read_bytes())
    return archive


EXPECTED = {sid: {f"{AID}.ipynb": NOTEBOOK[sid], "weights.npz": WEIGHTS[sid]} for sid, *_ in CLASS}


@pytest.mark.parametrize("layout", ["folders", "canvas", "moodle", "github"])
@pytest.mark.parametrize("packing", ["folder", "zip", "zip-infozip", "zip-explorer"])
def test_every_layout_and_packing_finds_the_same_class(tmp_path, layout, packing):
    source = _write(tmp_path / "download", _layouts()[layout])
    if packing != "folder":
        encoding = "cp437" if packing == "zip-explorer" else "utf-8"
        source = _zip(source, tmp_path / "class.zip", utf8_flag=packing == "zip",
                      encoding=encoding)  # fmt: skip
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text(ROSTER)
    found, detected = collect(source, tmp_path / "out" / "inbox", AID,
                              roster=Roster.read(roster_path))  # fmt: skip
    assert detected == layout
    assert _contents(found) == EXPECTED
    names = {s.student_id: s.name for s in found}
    assert names == {"jnunez": "José Núñez", "bsmith": "Bob Smith"}


def test_without_a_roster_the_lms_ids_and_names_are_kept(tmp_path):
    found, _ = collect(_write(tmp_path / "d", _layouts()["moodle"]), tmp_path / "inbox", AID)
    assert {(s.student_id, s.name) for s in found} == {("2001", "José Núñez"),
                                                       ("2002", "Bob Smith")}  # fmt: skip
    found, _ = collect(_write(tmp_path / "c", _layouts()["canvas"]), tmp_path / "inbox", AID)
    assert {s.student_id for s in found} == {"1001", "1002"}
    found, _ = collect(_write(tmp_path / "g", _layouts()["github"]), tmp_path / "inbox", AID)
    assert {s.student_id for s in found} == {"jose-nunez", "bobsmith"}


def test_a_folder_name_that_is_not_a_safe_id_keeps_its_name(tmp_path):
    found, _ = collect(_write(tmp_path / "d", {"José Núñez/x.ipynb": b"{}"}), tmp_path / "in", AID)
    assert [(s.student_id, s.name) for s in found] == [("Jose_Nunez", "José Núñez")]


def test_canvas_gradebook_export_works_as_a_roster(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,A1 (77)\n"
        "    Points Possible,,,,,26\n"
        '"Núñez, José",1001,900001,jnunez,CS 101,\n'
        '"Smith, Bob",1002,900002,bsmith,CS 101,\n'
    )
    roster = Roster.read(path)
    assert roster.lookup("1001") == ("jnunez", "Núñez, José")
    assert roster.extra["bsmith"]["section"] == "CS 101"


def test_a_student_zip_upload_is_unpacked_in_their_folder(tmp_path):
    inner = _zip(_write(tmp_path / "hw", {f"{AID}.ipynb": b"{}"}), tmp_path / "hw.zip",
                 utf8_flag=True)  # fmt: skip
    found, _ = collect(_write(tmp_path / "d", {"alice/hw.zip": inner.read_bytes()}),
                       tmp_path / "inbox", AID)  # fmt: skip
    assert list(found[0].folder.rglob(f"{AID}.ipynb"))


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "is empty: no submissions found"),
        ({"alice.ipynb": b"{}", "bob.ipynb": b"{}"}, "not named like an LMS export"),
        ({"alice/x.ipynb": b"{}", "loose.ipynb": b"{}"}, "mixes folders with loose notebooks"),
    ],
)
def test_nothing_to_grade_or_an_unknown_layout_is_an_error(tmp_path, files, message):
    source = _write(tmp_path / "d", files)
    source.mkdir(exist_ok=True)
    with pytest.raises(SubmissionsError, match=message):
        collect(source, tmp_path / "inbox", AID)


def test_a_roster_that_misses_a_student_stops_the_run(tmp_path):
    roster_path = tmp_path / "roster.csv"
    roster_path.write_text("student_id,canvas_id\njnunez,1001\n")
    with pytest.raises(SubmissionsError, match=r"1 submission\(s\) are not in the roster: 1002"):
        collect(_write(tmp_path / "d", _layouts()["canvas"]), tmp_path / "inbox", AID,
                roster=Roster.read(roster_path))  # fmt: skip


def test_zips_cannot_escape_or_link(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", b"x")
        zf.writestr("/abs/path.txt", b"x")
        link = zipfile.ZipInfo("alice/link")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
        zf.writestr("alice/ok.ipynb", b"{}")
    dest = extract_zip(archive, tmp_path / "out")
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == [
        "abs/path.txt", "alice/ok.ipynb"]  # fmt: skip
    assert not (tmp_path / "escape.txt").exists()
