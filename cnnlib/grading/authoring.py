"""Writing an assignment's trusted checks: `solutions/<id>/checks.py`, beside its source notebook.

The checks file is the one place that says how each grade cell is graded. nbgrader never releases
it (`nbgrader_config.py` ignores `checks.py`), students never see it, and only the grader and the
grade cells' hidden tests read it. It defines `assignment`::

    from cnnlib import arithmetic
    from cnnlib.grading import Assignment, Call, cases

    assignment = Assignment(blocked=["arithmetic.py"])
    assignment.check(
        "test_same_padding", Call("same_padding"),
        cases=lambda seed: cases.same_padding_cases(),
        reference=arithmetic.same_padding,
        hint="P = (K_eff - 1) / 2",
    )

and each grade cell's hidden tests are one line, `hidden_tests("test_same_padding", globals())`.

A check is: a probe (what to call: `Call`, `ForwardBackward`, `Forward`, `Backward`, or your
own `Probe`), the cases (a list, or a function of a seed that returns one: fixed edge cases first,
then random ones), the reference (a function, or a dict of them, that the probe runs on the
grader's side to get the expected outcome) or `expected` (a function of the case, for outcomes
such as true labels), a comparator (`Close(rtol=...)`, `Table()`, `Accuracy(at_least=...)`), and:

- `plug_in`: names of earlier functions this check builds on. Where the student's own version
  failed its checks, the grader plugs in the solution's version for this check only, so an early
  mistake costs its own cell's points and nothing more.
- `mutation` (default True): the call must leave the arrays it is given unchanged.
- `hint`: one sentence shown with a failure.

`Assignment(blocked=...)` names the cnnlib modules (paths inside the package) whose functions the
grader replaces with ones that raise while it runs the student's code, so an answer that calls the
reference gets nothing; `submitted_files` names the files (besides the notebook) a submission
brings along, such as trained weights.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cnnlib.grading import secret as course_secret
from cnnlib.grading.compare import Close
from cnnlib.grading.probes import (
    Backward,
    Call,
    Forward,
    ForwardBackward,
    Namespace,
    Probe,
    run_case,
)

__all__ = ["Assignment", "Check", "load_checks", "plan", "solution_cells"]

CHECKS_FILE = "checks.py"
_PROBES = (Call, ForwardBackward, Forward, Backward, Probe)


@dataclasses.dataclass(frozen=True)
class Check:
    """One trusted check of a grade cell (see the module docstring)."""

    probe: Call | ForwardBackward | Forward | Backward | Probe
    cases: Callable[[int], list[dict]] | Sequence[dict]
    reference: Callable | Mapping[str, Callable] | None = None
    expected: Callable[[dict], object] | None = None
    compare: object = Close()
    plug_in: tuple[str, ...] = ()
    mutation: bool = True
    hint: str = ""
    timeout: float = 120.0

    def case_list(self, seed: int) -> list[dict]:
        made = self.cases(seed) if callable(self.cases) else self.cases
        made = list(made)
        if not made or not all(isinstance(c, dict) for c in made):
            raise ValueError(f"cases: {self.probe!r} needs a non-empty list of dicts")
        return made

    def reference_namespace(self) -> Namespace:
        if isinstance(self.reference, Mapping):
            return Namespace(dict(self.reference))
        if not isinstance(self.probe, Call | Forward):
            raise TypeError(
                f"reference: a {type(self.probe).__name__} probe needs a dict of reference "
                "functions by name, not one function"
            )
        return Namespace({self.probe.function: self.reference})

    def expected_outcome(self, case: dict) -> dict:
        """What the reference does on `case` (a `run_case` outcome)."""
        if self.expected is not None:
            return {"value": self.expected(case)}
        outcome = run_case(self.probe, self.reference_namespace(), case)
        if "raised" in outcome and outcome["raised"][0] not in ("ValueError", "TypeError"):
            raise RuntimeError(
                f"the reference raised {outcome['raised'][0]}: {outcome['message']} on "
                f"{self.probe.describe_call(case)}; a check's reference may only raise "
                "ValueError or TypeError (what the student must raise too)"
            )
        if outcome.get("missing"):
            raise RuntimeError(f"reference: no function {outcome['missing']!r}")
        return outcome


class Assignment:
    """An assignment's trusted checks, by grade id, and what the grader needs around them."""

    def __init__(
        self,
        *,
        blocked: Sequence[str] = (),
        submitted_files: Sequence[str] = (),
    ):
        if isinstance(blocked, str) or isinstance(submitted_files, str):
            raise TypeError("blocked, submitted_files: lists of names, not one string")
        self.blocked = tuple(blocked)
        self.submitted_files = tuple(submitted_files)
        self.checks: dict[str, list[Check]] = {}

    def check(self, grade_id: str, probe, cases, **options) -> Check:
        """Add a check to grade cell `grade_id` (a cell may have several: all must pass)."""
        if not isinstance(grade_id, str) or not grade_id:
            raise TypeError(f"grade_id: expected the grade cell's id (a str), got {grade_id!r}")
        if isinstance(probe, str):
            probe = Call(probe)
        if not isinstance(probe, _PROBES):
            raise TypeError(
                f"probe: expected Call, ForwardBackward, Forward, Backward or Probe, got {probe!r}"
            )
        if ("reference" in options) == ("expected" in options):
            raise TypeError(f"{grade_id}: give exactly one of reference= or expected=")
        made = Check(probe, cases, **options)
        self.checks.setdefault(grade_id, []).append(made)
        return made


def load_checks(path: Path) -> Assignment:
    """The `assignment` defined by a checks file (imported under a private module name)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"checks: {path} is missing: an assignment's trusted checks live beside its source "
            "notebook (see the README, 'Writing an assignment')"
        )
    name = f"cnnlib_checks_{path.parent.name}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    found = getattr(module, "assignment", None)
    if not isinstance(found, Assignment):
        raise ValueError(f"checks: {path} must define `assignment = Assignment(...)`")
    return found


def plan(assignment: Assignment, assignment_id: str, key: bytes) -> dict[str, list[dict]]:
    """Per grade id, per check: the cases and the reference's outcomes on them.

    The same for every submission (seeds from the key, the assignment and the grade id only).
    Returns {grade_id: [{"check": Check, "cases": [...], "expected": [...]}, ...]}.
    """
    out = {}
    for grade_id, checks in assignment.checks.items():
        out[grade_id] = []
        for index, check in enumerate(checks):
            cases = check.case_list(course_secret.seed_for(key, assignment_id, grade_id, index))
            expected = [check.expected_outcome(case) for case in cases]
            out[grade_id].append({"check": check, "cases": cases, "expected": expected})
    return out


def _defined_names(source: str) -> set[str]:
    """Names a cell defines at its top level (functions, classes, assignments)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def solution_cells(source_nb) -> dict[str, str]:
    """name -> the solution's answer cell (markers removed) that defines it."""
    found = {}
    for cell in source_nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("solution"):
            continue
        code = "\n".join(
            line for line in cell.source.splitlines()
            if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
        )  # fmt: skip
        for name in _defined_names(code):
            found.setdefault(name, code)
    return found
