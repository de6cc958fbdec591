"""Preparing a grading run: the settings, the private nbgrader course, the checks and their plan.

Done once per run, in the grader's own process (the trusted side), before any submission:

- the private nbgrader course under <out>/nbgrader (its gradebook is the one gradebook: grades.csv,
  nbgrader's export and the LMS files are all written from it);
- the assignment's checks (`solutions/<id>/checks.py`) and their plan: every case of every check
  and the reference's outcome on it, computed here once, the same for every submission;
- the copy of cnnlib in which the blocked reference modules raise, for the trusted sandbox;
- the solution's answer cells by the names they define, for plugging into later checks.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import cnnlib
from cnnlib.grading import authoring, hidden, sandbox, tamper
from cnnlib.grading import secret as course_secret
from cnnlib.grading.nbrunner import _atomic_write
from cnnlib.grading.probes import REFERENCE_REMOVED

__all__ = ["GRADER_VERSION", "Course", "Settings", "nbgrader_api", "prepare_course"]

GRADER_VERSION = "3"  # 3: the notebook runs in an IPython shell, no kernel (nbrunner)


@dataclasses.dataclass(frozen=True)
class Settings:
    assignment_id: str
    course: Path
    out: Path
    workers: int
    limits: sandbox.SandboxLimits
    trusted_limits: sandbox.SandboxLimits
    cell_timeout: int
    max_cell_output: int
    unsafe: bool
    secret_path: Path


@dataclasses.dataclass
class Course:
    """What phase 1 needs from the trusted side. Plain data: it travels to worker processes."""

    release_nb: dict  # the committed release notebook (what students got), as JSON
    release_dir: Path
    notebook_name: str
    grade_sources: dict[str, str]  # grade_id -> source with hidden tests, from the gradebook
    package_dir: Path  # the real cnnlib
    neutered_dir: Path  # the copy with the reference removed
    checks_path: Path
    plan_path: Path  # the shipped plan (hidden.ship) as JSON: cases and expected outcomes
    trusted_plan_path: Path  # the grader's own plan: outcome checks too (never in a sandbox)
    solution_cells: dict[str, str]  # a name the solution defines -> its answer cell's source
    submitted_files: tuple[str, ...]
    fingerprint: str  # of the course secret
    release_hash: str  # the release, the source, the checks, the library, the secret


def hash_tree(folder: Path) -> str:
    h = hashlib.sha256()
    files = (
        p for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts
        and p.suffix != ".pyc"
    )  # fmt: skip
    for path in sorted(files):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read(64 * 1024 * 1024)).digest())
    return h.hexdigest()


def find_course(start: Path) -> Path | None:
    for folder in [start, *start.parents]:
        if (folder / "nbgrader_config.py").is_file():
            return folder
    package_root = Path(cnnlib.__file__).resolve().parent.parent
    if (package_root / "nbgrader_config.py").is_file():
        return package_root
    return None


def nbgrader_env() -> None:
    # nbgrader runs `alembic` by name when it creates a gradebook.
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")


def nbgrader_api(settings: Settings):
    """nbgrader's API on the private course, with our preprocessors in place of Execute."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config, PyFileConfigLoader

    from cnnlib.grading import nbgrader_hooks  # noqa: F401 (the preprocessors named below)

    private = settings.out / "nbgrader"
    config = PyFileConfigLoader("nbgrader_config.py", path=str(settings.course)).load_config()
    config = Config(config)
    config.CourseDirectory.root = str(private)
    config.Autograde.autograde_preprocessors = [
        "cnnlib.grading.nbgrader_hooks.LoadExecuted",
        "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor",
        "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    config.LoadExecuted.work_dir = str(settings.out / "work")
    config.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
        "cnnlib.grading.nbgrader_hooks.ScrubFeedback",
    ]
    config.ScrubFeedback.secrets_file = str(private / "secrets.json")
    config.Exchange.root = str(private / "exchange")
    coursedir = CourseDirectory(config=config)
    api = NbGraderAPI(coursedir=coursedir, config=config)
    api.log.setLevel("ERROR")
    return api


def _neuter(source: str, module: str) -> str:
    """The module with every function and method body replaced by `raise RuntimeError(...)`.

    The source text itself no longer holds the implementation, so reading or exec-ing the file,
    or reloading the module, gives nothing either.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            message = f"{REFERENCE_REMOVED} ({module}.{node.name})"
            stub = ast.parse(f"raise RuntimeError({message!r})").body
            node.body = ([ast.Expr(ast.Constant(doc))] if doc else []) + stub
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def neutered_cnnlib(package_dir: Path, dest: Path, blocked: tuple[str, ...]) -> Path:
    """A copy of the cnnlib package at dest/cnnlib with the `blocked` modules neutered.

    blocked: paths inside the package: a module ("arithmetic.py") or a folder ("numpy/").
    """
    target = dest / "cnnlib"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package_dir, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for relative in blocked:
        path = target / relative
        if not path.exists() or not path.resolve().is_relative_to(target.resolve()):
            raise ValueError(f"blocked: {relative!r} is not a module or folder of cnnlib")
        modules = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for module in modules:
            dotted = ".".join(("cnnlib", *module.relative_to(target).with_suffix("").parts))
            module.write_text(_neuter(module.read_text(), dotted.removesuffix(".__init__")))
    return target


def prepare_course(settings: Settings, key: bytes) -> Course:
    """The private nbgrader course under <out>/nbgrader, its gradebook, the checks and the plan."""
    import nbformat
    from nbgrader.api import Gradebook

    from cnnlib.grading.nbgrader_hooks import secret_lines

    aid, course = settings.assignment_id, settings.course
    source_dir = course / "solutions" / aid
    release_dir = course / "assignments" / aid
    if not source_dir.is_dir() or not release_dir.is_dir():
        raise ValueError(
            f"assignment_id: {aid!r} needs solutions/{aid}/ and assignments/{aid}/ in {course}"
        )
    checks_path = source_dir / authoring.CHECKS_FILE
    assignment = authoring.load_checks(checks_path)
    notebooks = sorted(source_dir.glob("*.ipynb"))
    if len(notebooks) != 1:
        raise ValueError(f"assignment_id: solutions/{aid}/ must hold one notebook, not "
                         f"{[p.name for p in notebooks]}")  # fmt: skip
    source_nb_path = notebooks[0]
    release_nb_path = release_dir / source_nb_path.name
    if not release_nb_path.is_file():
        raise ValueError(f"assignment_id: {release_nb_path} is missing: run `make release`")
    private = settings.out / "nbgrader"
    private.mkdir(parents=True, exist_ok=True)
    shutil.copy(course / "nbgrader_config.py", private / "nbgrader_config.py")
    source_hash = hash_tree(source_dir)
    stamp = private / f".generated-{source_hash[:16]}"
    if not stamp.exists():
        target = private / "solutions" / aid
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source_dir, target)
        nbgrader_env()
        result = nbgrader_api(settings).generate_assignment(aid, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.get('error')}")
        for old in private.glob(".generated-*"):
            old.unlink()
        stamp.touch()
    release_nb = json.loads(release_nb_path.read_text())
    source = nbformat.read(source_nb_path, as_version=4)
    grade_sources = {}
    with Gradebook(f"sqlite:///{private / 'gradebook.db'}") as gb:
        for cell in gb.find_notebook(source_nb_path.stem, aid).source_cells:
            grade_sources[cell.name] = cell.source
    graded = {
        c.metadata["nbgrader"]["grade_id"] for c in source.cells
        if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
        and not c.metadata["nbgrader"].get("solution")
    }  # fmt: skip
    if graded != set(assignment.checks):
        raise ValueError(
            f"checks: {checks_path} must check every autograded cell: missing "
            f"{sorted(graded - set(assignment.checks))}, unknown "
            f"{sorted(set(assignment.checks) - graded)}"
        )
    released = {
        c["metadata"]["nbgrader"]["grade_id"]: tamper._source(c)
        for c in release_nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
    }  # fmt: skip
    _atomic_write(
        private / "secrets.json",
        json.dumps({"secret_lines": secret_lines(source), "released_sources": released}),
    )
    planned = authoring.plan(assignment, aid, key)
    plan_path = settings.out / "plan.json"
    _atomic_write(plan_path, json.dumps(hidden.ship(planned)))
    # beside the private nbgrader course, never copied into a sandbox (execute copies plan.json)
    trusted_plan_path = private / "trusted_plan.json"
    _atomic_write(trusted_plan_path, json.dumps(hidden.ship(planned, trusted=True)))
    package_dir = Path(cnnlib.__file__).resolve().parent
    neutered = neutered_cnnlib(package_dir, settings.out / "trusted-cnnlib", assignment.blocked)
    fingerprint = course_secret.fingerprint(key)
    return Course(
        release_nb=release_nb,
        release_dir=release_dir,
        notebook_name=source_nb_path.name,
        grade_sources=grade_sources,
        package_dir=package_dir,
        neutered_dir=neutered,
        checks_path=checks_path,
        plan_path=plan_path,
        trusted_plan_path=trusted_plan_path,
        solution_cells=authoring.solution_cells(source),
        submitted_files=assignment.submitted_files,
        fingerprint=fingerprint,
        release_hash=hashlib.sha256(
            (hash_tree(release_dir) + source_hash + hash_tree(package_dir) + fingerprint).encode()
        ).hexdigest(),
    )


def points(course: Course) -> dict[str, float]:
    """grade_id -> points of every grade cell (autograded and manually graded)."""
    found = {}
    for cell in course.release_nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            found[meta["grade_id"]] = float(meta.get("points", 0))
    return found


def manual_cells(course: Course) -> set[str]:
    """Grade ids of the manually graded answers (nbgrader: solution and grade)."""
    return {
        c["metadata"]["nbgrader"]["grade_id"] for c in course.release_nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("grade")
        and c["metadata"]["nbgrader"].get("solution")
    }  # fmt: skip


class Converter:
    """One of nbgrader's converters (Autograde, GenerateFeedback) run student by student.

    nbgrader's API builds a new converter, exporter and (for feedback) HTML template environment
    for every call; this builds them once and runs the converter's own steps (what its `start`
    does) per student, so a class's phase 2 costs what its students cost, not a start-up each.
    """

    def __init__(self, app):
        from nbconvert.writers import FilesWriter

        self.app = app
        app.writer = FilesWriter(parent=app, config=app.config)
        app.exporter = app.exporter_class(parent=app, config=app.config)
        for preprocessor in app.preprocessors:
            app.exporter.register_preprocessor(preprocessor)

    def run(self, assignment_id: str, student_id: str) -> str | None:
        """Convert one student's notebooks; None, or the error's traceback."""
        import traceback

        from nbgrader.utils import temp_attrs

        app = self.app
        here = os.getcwd()
        with temp_attrs(app.coursedir, assignment_id=assignment_id, student_id=student_id):
            try:
                os.chdir(app.coursedir.root)
                app.init_notebooks()
                app.convert_notebooks()
                return None
            except Exception:
                return traceback.format_exc()[-3000:]
            finally:
                os.chdir(here)


def converters(api) -> dict[str, Converter]:
    """nbgrader's Autograde (with our LoadExecuted in place of Execute) and GenerateFeedback."""
    from nbgrader.converters import Autograde, GenerateFeedback
    from traitlets.config import Config

    autograde = Autograde(coursedir=api.coursedir, parent=api)
    autograde.force, autograde.create_student = True, True
    feedback = GenerateFeedback(coursedir=api.coursedir, parent=api)
    config = Config()
    config.HTMLExporter.template_name = "feedback"
    feedback.update_config(config)
    feedback.force = True
    return {"autograde": Converter(autograde), "feedback": Converter(feedback)}
