"""`hidden_tests(grade_id, globals())`: a grade cell's hidden tests, run in the student's kernel.

The one line a grade cell's `### BEGIN HIDDEN TESTS` block holds. It runs the checks that the
assignment's checks file defines for that grade cell on the student's functions, and fails with a
message naming the call, what came back and what was expected.

Where the inputs and the expected outcomes come from:
- under the hardened grader (`python -m cnnlib grade`), from the file named by the environment
  variable CNNLIB_GRADING_PLAN, which the grader computed outside the sandbox: the very inputs its
  trusted checks use, so for honest code the kernel and the grader agree, and a disagreement is
  evidence of tampering;
- elsewhere (plain `nbgrader autograde`, the solution notebook run by hand or in CI), from the
  course's `solutions/<assignment>/checks.py`, found from the notebook's folder, with the public
  development key for the random inputs.

A check that builds on earlier functions (`plug_in`) runs with the solution's versions of those
that fail their own checks, as the grader's trusted run does; under the hardened grader the
kernel has no solution to plug in (the grader's own run decides).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from cnnlib.grading import wire
from cnnlib.grading.compare import from_spec
from cnnlib.grading.probes import Namespace, judge, probe_from_spec, run_case

__all__ = ["PLAN_ENV", "hidden_tests", "ship"]

PLAN_ENV = "CNNLIB_GRADING_PLAN"
_loaded: dict[str, tuple] = {}
_passed: dict[tuple, bool] = {}  # (grade_id, check, ids of the functions it ran) -> it passed


class _KernelCheck:
    def __init__(self, probe, compare, hint, mutation, cases, expected, plug_in=()):
        self.probe, self.compare, self.hint, self.mutation = probe, compare, hint, mutation
        self.cases, self.expected, self.plug_in = cases, expected, tuple(plug_in)


def ship(plan: dict, *, trusted: bool = False) -> dict:
    """A plan (authoring.plan) as plain JSON for the kernel: probes, comparators, cases, outcomes.

    The notebook's own sandbox gets it, so nothing in it may be worth stealing: a check judged
    against `expected=` outcomes (the true labels of held-out images, say) is shipped without its
    cases and outcomes, and only the grader's trusted run judges it. A custom comparator (not one
    of compare's) is shipped as None: the kernel then only runs the code.
    trusted=True: the whole plan, every check with its cases and outcomes, for the grader's own
    trusted run (`trusted.worker_plan`); it never enters a sandbox.
    """
    shipped = {}
    for grade_id, checks in plan.items():
        shipped[grade_id] = []
        for item in checks:
            check = item["check"]
            if check.expected is not None and not trusted:
                shipped[grade_id].append({"trusted_only": True, "probe": check.probe.spec()})
                continue
            spec = getattr(check.compare, "spec", None)
            shipped[grade_id].append({
                "probe": check.probe.spec(),
                "compare": spec() if callable(spec) else None,
                "hint": check.hint,
                "mutation": check.mutation,
                "cases": [wire.encode(case) for case in item["cases"]],
                "expected": [
                    {**o, "value": wire.encode(o["value"])} if "value" in o else o
                    for o in item["expected"]
                ],
            })  # fmt: skip
    return shipped


def _from_shipped(path: str) -> dict[str, list[_KernelCheck]]:
    with open(path, encoding="utf-8") as f:
        shipped = json.load(f)
    checks = {}
    for grade_id, items in shipped.items():
        items = [i for i in items if not i.get("trusted_only")]  # the grader judges those
        checks[grade_id] = [
            _KernelCheck(
                probe_from_spec(item["probe"]),
                from_spec(item["compare"]) if item["compare"] else None,
                item["hint"], item["mutation"],
                [wire.decode(c) for c in item["cases"]],
                [{**o, "value": wire.decode(o["value"])} if "value" in o else o
                 for o in item["expected"]],
            )
            for item in items
        ]  # fmt: skip
    return checks


def _course_checks_here() -> tuple[str, Path]:
    """(assignment id, checks file) for a notebook run in <course>/.../<assignment id>/."""
    here = Path.cwd().resolve()
    for folder in [here, *here.parents]:
        if (folder / "nbgrader_config.py").is_file():
            for candidate in [here, *here.parents]:
                checks = folder / "solutions" / candidate.name / "checks.py"
                if checks.is_file():
                    return candidate.name, checks
            break
    raise RuntimeError(
        "hidden_tests: no checks file found: run this notebook from its assignment's folder in "
        "the course (solutions/<id>/, or nbgrader's autograded/<student>/<id>/), or grade it "
        "with `python -m cnnlib grade`"
    )


def _from_course() -> tuple[dict[str, list[_KernelCheck]], dict[str, str]]:
    import nbformat

    from cnnlib.grading import authoring, secret

    assignment_id, path = _course_checks_here()
    made = authoring.plan(authoring.load_checks(path), assignment_id, secret.DEVELOPMENT_KEY)
    checks = {
        grade_id: [
            _KernelCheck(i["check"].probe, i["check"].compare, i["check"].hint,
                         i["check"].mutation, i["cases"], i["expected"], i["check"].plug_in)
            for i in items
        ]
        for grade_id, items in made.items()
    }  # fmt: skip
    source_nb = path.parent / f"{assignment_id}.ipynb"
    solutions = {}
    if source_nb.is_file():
        solutions = authoring.solution_cells(nbformat.read(source_nb, as_version=4))
    return checks, solutions


def _checks() -> tuple[dict[str, list[_KernelCheck]], dict[str, str]]:
    source = os.environ.get(PLAN_ENV) or f"course:{Path.cwd().resolve()}"
    if source not in _loaded:
        _loaded.clear()
        _passed.clear()
        if source.startswith("course:"):
            _loaded[source] = _from_course()
        else:
            _loaded[source] = (_from_shipped(source), {})
    return _loaded[source]


@contextlib.contextmanager
def _plugged(namespace: dict, names: list[str], solutions: dict[str, str]):
    """The solution's versions of `names` in `namespace` for the duration, then the student's."""
    saved = {}
    try:
        for name in names:
            if name in solutions:
                scratch = dict(namespace)
                exec(compile(solutions[name], "<solution>", "exec"), scratch)
                saved.setdefault(name, namespace.get(name, _MISSING))
                namespace[name] = scratch[name]
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value


_MISSING = object()


def _run(check: _KernelCheck, names: Namespace) -> str | None:
    """The first failure of `check` on the functions in `names` (a message), or None."""
    for case, expected in zip(check.cases, check.expected, strict=True):
        got = run_case(check.probe, names, case)
        if check.compare is None and "value" in got:
            continue  # judged by the grader's trusted side only
        why = judge(check.probe, case, expected, got, check.compare, mutation=check.mutation)
        if why is not None:
            hint = f"\nHint: {check.hint}" if check.hint else ""
            return f"{why}{hint}"
    return None


def _to_plug(check: _KernelCheck, checks: dict, namespace: dict, solutions: dict) -> list[str]:
    """Which of `check.plug_in` to replace: those missing, or failing their own checks here."""
    if not solutions:
        return []  # under the hardened grader: its trusted run plugs in, not the kernel
    plug = []
    for name in check.plug_in:
        if name not in namespace:
            plug.append(name)
            continue
        for grade_id, items in checks.items():
            failed = False
            for index, other in enumerate(items):
                if other is check or name not in other.probe.subjects:
                    continue
                key = (grade_id, index, *(id(namespace.get(n)) for n in
                                          (*other.probe.subjects, *other.plug_in)))  # fmt: skip
                if key not in _passed:
                    inner = _to_plug(other, checks, namespace, solutions)
                    with _plugged(namespace, inner, solutions):
                        _passed[key] = _run(other, Namespace(namespace)) is None
                failed = failed or not _passed[key]
            if failed:
                plug.append(name)
                break
    return plug


def hidden_tests(grade_id: str, namespace: dict) -> None:
    """Run grade cell `grade_id`'s checks on the functions in `namespace` (pass `globals()`).

    Raises CheckFailure (an AssertionError: the cell fails) at the first disagreement. Returns
    None on purpose: nbgrader reads a number left as a grade cell's value as partial credit.
    """
    from cnnlib.grading.checks import CheckFailure

    checks, solutions = _checks()
    if grade_id not in checks:
        raise RuntimeError(f"hidden_tests: the checks file has no checks for {grade_id!r}")
    total = 0
    for check in checks[grade_id]:
        plug = _to_plug(check, checks, namespace, solutions)
        with _plugged(namespace, plug, solutions):
            why = _run(check, Namespace(namespace))
        if why is not None:
            raise CheckFailure(why)
        total += len(check.cases)
    if total:
        print(f"{grade_id}: {total} hidden cases passed")
    else:  # every check of this cell is judged by the grader's trusted run only (see `ship`)
        print(f"{grade_id}: the grader checks this cell")
