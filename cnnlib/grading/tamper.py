"""Find a student's notebook, check it against the release, and build the notebook we grade.

The notebook that is executed is never the student's file: it is the trusted release with the
student's answer cells (found by grade_id) put in. Every locked or grade cell comes from the
release, whatever the submission did to it; what it did is recorded as flags:

- ``locked_cell_edited``: a locked/grade cell's source or nbgrader metadata differs;
- ``locked_cell_deleted``: a locked/grade cell is missing;
- ``locked_cell_metadata_stripped``: a locked/grade cell's source is there without its metadata;
- ``cells_reordered``: the release's cells come in another order;
- ``answer_missing``: an answer cell is gone (the release's stub is graded in its place).

This compares with the release itself, not with nbgrader's checksums (which flag every untouched
grade cell that holds hidden tests).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

__all__ = ["NotebookProblem", "assemble", "find_notebook", "load_submission"]

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024


class NotebookProblem(Exception):
    """The submission has no gradable notebook; `flag` says why (for grades.csv and the report)."""

    def __init__(self, flag: str, message: str):
        super().__init__(message)
        self.flag = flag


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata")
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(str(s) for s in source)
    return source if isinstance(source, str) else ""


def find_notebook(folder: Path, assignment_id: str) -> tuple[Path, list[str]]:
    """The submission's notebook: `<aid>.ipynb` anywhere under folder, else the only notebook.

    Returns (path, flags); raises NotebookProblem when there is none to grade.
    """
    notebooks = sorted(
        p for p in folder.rglob("*.ipynb")
        if ".ipynb_checkpoints" not in p.parts and p.is_file() and not p.is_symlink()
    )  # fmt: skip
    exact = [p for p in notebooks if p.name == f"{assignment_id}.ipynb"]
    if exact:
        return exact[0], []
    if len(notebooks) == 1:
        return notebooks[0], ["notebook_renamed"]
    if not notebooks:
        raise NotebookProblem("notebook_missing", f"no {assignment_id}.ipynb in the submission")
    names = ", ".join(p.name for p in notebooks)
    raise NotebookProblem(
        "notebook_missing", f"no {assignment_id}.ipynb, and several other notebooks: {names}"
    )


def load_submission(path: Path, release: dict) -> tuple[list[dict], list[str]]:
    """The submission's cells (plain dicts), validated; raises NotebookProblem when unusable."""
    size = path.stat().st_size
    if size == 0:
        raise NotebookProblem("notebook_empty", f"{path.name} is an empty file")
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookProblem("notebook_oversize", f"{path.name} is {size} bytes")
    try:
        data = json.loads(path.read_bytes().decode("utf-8", errors="replace"))
    except ValueError as error:
        raise NotebookProblem("notebook_invalid_json", f"{path.name}: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookProblem("notebook_invalid", f"{path.name} has no list of cells")
    flags = []
    try:
        nbformat.validate(nbformat.reads(json.dumps(data), as_version=4))
    except Exception:
        flags.append("notebook_not_nbformat_valid")
    cells = [c for c in data["cells"] if isinstance(c, dict)]
    released = {_nbgrader(c).get("grade_id") for c in release["cells"]} - {None}
    found = {_nbgrader(c).get("grade_id") for c in cells} - {None}
    if found and not (found & released):
        raise NotebookProblem(
            "wrong_assignment",
            f"{path.name} is a notebook of another assignment (none of its cell ids "
            "belong to this one)",
        )
    return cells, flags


_DEF = re.compile(r"^\s*def\s+(\w+)\s*\(", re.M)


def _defined(source: str) -> set[str]:
    return set(_DEF.findall(source))


def assemble(release: dict, cells: list[dict]) -> tuple[dict, list[str]]:
    """(the notebook to grade, flags): the release with the student's answers and extra cells.

    Answers are taken by grade_id; an answer cell whose metadata was stripped is recognised by the
    functions its release stub defines. Extra cells the student added (and the release's free
    cells, as the student left them) keep their place after the last release cell before them.
    """
    flags: set[str] = set()
    release_cells = release["cells"]
    by_id = {}
    for cell in cells:
        grade_id = _nbgrader(cell).get("grade_id")
        if grade_id is not None and grade_id not in by_id:
            by_id[grade_id] = cell
    locked_sources = {
        _source(c).strip(): _nbgrader(c)["grade_id"]
        for c in release_cells
        if _nbgrader(c) and not _nbgrader(c).get("solution") and _source(c).strip()
    }
    answer_defs = {
        _nbgrader(c)["grade_id"]: _defined(_source(c))
        for c in release_cells
        if _nbgrader(c).get("solution")
    }
    release_ids = {_nbgrader(c).get("grade_id") for c in release_cells} - {None}

    # Walk the submission: which release cell does each of its cells stand for?
    extras: dict[str | None, list[dict]] = {}
    anchor = None
    order = []
    stripped_answers: dict[str, dict] = {}
    for cell in cells:
        meta = _nbgrader(cell)
        grade_id = meta.get("grade_id")
        if grade_id in release_ids and by_id.get(grade_id) is cell:
            anchor = grade_id
            order.append(grade_id)
            continue
        if grade_id is not None:
            continue  # a duplicate or unknown grade_id: not ours to run
        stripped = locked_sources.get(_source(cell).strip())
        if stripped is not None and stripped not in by_id:
            flags.add("locked_cell_metadata_stripped")
            anchor = stripped
            order.append(stripped)
            continue
        names = _defined(_source(cell))
        claimed = [gid for gid, defs in answer_defs.items() if defs and defs <= names]
        if claimed and claimed[0] not in by_id and claimed[0] not in stripped_answers:
            stripped_answers[claimed[0]] = cell
            flags.add("answer_metadata_stripped")
            anchor = claimed[0]
            order.append(claimed[0])
            continue
        if cell.get("cell_type") in ("code", "markdown", "raw"):
            extras.setdefault(anchor, []).append(cell)

    release_order = [_nbgrader(c)["grade_id"] for c in release_cells if _nbgrader(c)]
    seen = [gid for gid in order if gid in release_ids]
    if seen != [gid for gid in release_order if gid in seen]:
        flags.add("cells_reordered")

    out_cells = []

    def add_extras(anchor_id):
        for cell in extras.get(anchor_id, []):
            kind = cell.get("cell_type")
            new = (
                nbformat.v4.new_code_cell(_source(cell)) if kind == "code"
                else nbformat.v4.new_markdown_cell(_source(cell)) if kind == "markdown"
                else nbformat.v4.new_raw_cell(_source(cell))
            )  # fmt: skip
            out_cells.append(new)

    add_extras(None)
    for cell in release_cells:
        meta = _nbgrader(cell)
        if not meta:
            continue  # a free cell: the student's version of it is among the extras
        grade_id = meta["grade_id"]
        new = nbformat.from_dict(json.loads(json.dumps(cell)))
        new.source = _source(cell)
        if meta.get("solution"):
            student = by_id.get(grade_id) or stripped_answers.get(grade_id)
            if student is None:
                flags.add("answer_missing")
            else:
                new.source = _source(student)
        else:
            student = by_id.get(grade_id)
            if student is None:
                if grade_id not in order:
                    flags.add("locked_cell_deleted")
            elif _source(student) != _source(cell) or _nbgrader(student) != meta:
                flags.add("locked_cell_edited")
            if student is not None and student.get("cell_type") != cell["cell_type"]:
                flags.add("locked_cell_edited")
        out_cells.append(new)
        add_extras(grade_id)
    for anchor_id, cells_ in extras.items():
        if anchor_id is not None and anchor_id not in release_ids:
            out_cells.extend(nbformat.v4.new_code_cell(_source(c)) for c in cells_)
    notebook = nbformat.from_dict(json.loads(json.dumps(release)))
    notebook.cells = out_cells
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook, sorted(flags)
