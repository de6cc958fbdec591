"""Phase 1d, the grader's side of the trusted checks: drive the sandboxed runner, judge outside.

The student's code runs in a second sandbox (`trusted_runner`) whose cnnlib has the blocked
reference modules replaced by ones that raise. The grader sends one step at a time: the notebook's
code cells in order and, at each grade cell, its checks on the planned inputs (the same for every
submission). Every answer is plain JSON, judged here against the reference's outcomes, which were
computed in the grader's own process when the run was prepared.

Where a check builds on an earlier function that failed its own checks (`plug_in`), the solution's
version is sent in for that check only: one early mistake costs its own cell's points. It is sent
only after the function's own checks are judged, so it cannot help the function it replaces.

A verdict per grade cell: passed, the first reason it failed (in words for the student), and the
evidence of tampering seen on the way: a call into cnnlib's removed reference, or a value whose
type pretends to be a built-in one (an int that says it equals anything).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cnnlib.grading import authoring, sandbox, wire
from cnnlib.grading.course import Course, Settings
from cnnlib.grading.execute import copy_inputs, python_binds
from cnnlib.grading.probes import REFERENCE_REMOVED, judge

__all__ = ["run_trusted", "worker_plan"]

_plans: dict[tuple, dict] = {}


def worker_plan(course: Course) -> dict[str, list[tuple]]:
    """grade_id -> [(Check, cases, expected outcomes)], loaded once per process."""
    key = (str(course.checks_path), str(course.trusted_plan_path), course.release_hash)
    if key not in _plans:
        assignment = authoring.load_checks(course.checks_path)
        shipped = json.loads(course.trusted_plan_path.read_text())
        plan = {}
        for grade_id, checks in assignment.checks.items():
            plan[grade_id] = [
                (check, [wire.decode(c) for c in item["cases"]],
                 [{**o, "value": wire.decode(o["value"])} if "value" in o else o
                  for o in item["expected"]])
                for check, item in zip(checks, shipped[grade_id], strict=True)
            ]  # fmt: skip
        _plans.clear()
        _plans[key] = plan
    return _plans[key]


def _got(outcome: dict) -> dict:
    if "ok" in outcome:
        return {"value": wire.decode(outcome["ok"]), "mutated": outcome.get("mutated")}
    return outcome


class _Run:
    """One student's trusted run: the conversation with the sandbox and what was learnt."""

    def __init__(self, settings: Settings, course: Course, conversation):
        self.settings, self.course, self.talk = settings, course, conversation
        self.failed_subjects: set[str] = set()
        self.stopped_at: str | None = None

    def cell(self, index: int, source: str) -> None:
        timeout = self.settings.cell_timeout
        answer = self.talk.ask(
            {"kind": "cell", "index": index, "source": source, "timeout": timeout}, timeout + 10
        )
        if answer is None and self.stopped_at is None:
            self.stopped_at = (
                f"the grader's run of your code stopped at cell {index} "
                f"({self._why_stopped()})"
            )

    def _why_stopped(self) -> str:
        return {
            "timeout": "it ran past its time limit",
            "wall_budget": "the whole run ran past its time budget",
            "exited": "the Python process died or exited",
            "output_limit": "it wrote too much",
        }.get(self.talk.stopped or "", "it stopped answering")

    def _plug(self, names: list[str]) -> list[str]:
        by_source: dict[str, list[str]] = {}
        for name in names:
            source = self.course.solution_cells.get(name)
            if source is not None:
                by_source.setdefault(source, []).append(name)
        plugged = []
        for source, group in by_source.items():
            answer = self.talk.ask({"kind": "plug", "names": group, "source": source}, 60)
            if answer and isinstance(answer.get("plugged"), list):
                plugged += [str(n) for n in answer["plugged"]]
        return plugged

    def grade_cell(self, grade_id: str, checks: list[tuple]) -> dict:
        verdict = {"passed": True, "reason": None, "hint": "", "cases": 0,
                   "calls_reference": False, "disguised": [], "plugged": []}  # fmt: skip
        for check, cases, expected in checks:
            if self.stopped_at:
                why = f"not checked: {self.stopped_at}"
            else:
                why = self._one_check(check, cases, expected, verdict)
            if why is not None:
                self.failed_subjects |= set(check.probe.subjects)
                if verdict["passed"]:
                    verdict.update(passed=False, reason=why, hint=check.hint)
                    # an outcome check is never shipped to the kernel (hidden.ship): there the
                    # cell could only pass, so a pass there says nothing against this failure
                    verdict["outcome_check"] = check.expected is not None
        return verdict

    def _one_check(self, check, cases, expected, verdict) -> str | None:
        needed = [n for n in check.plug_in if n in self.failed_subjects]
        plugged = self._plug(needed) if needed else []
        verdict["plugged"] += plugged
        answer = self.talk.ask(
            {"kind": "check", "probe": check.probe.spec(),
             "cases": [wire.encode(c) for c in cases], "timeout": check.timeout},
            check.timeout + 10,
        )  # fmt: skip
        if plugged and answer is not None:
            self.talk.ask({"kind": "unplug"}, 30)
        if answer is None:
            self.stopped_at = f"the grader's run of your code stopped ({self._why_stopped()})"
            return f"{check.probe.describe_call(cases[0])}: {self.stopped_at}"
        outcomes = answer.get("outcomes") if isinstance(answer.get("outcomes"), list) else []
        first_failure = None
        for i, case in enumerate(cases):
            outcome = outcomes[i] if i < len(outcomes) and isinstance(outcomes[i], dict) else None
            if outcome is None or outcome.get("timeout"):
                if outcome is not None:
                    why = (f"{check.probe.describe_call(case)} took too long: the check's "
                           f"{check.timeout:g} s ran out after {i} of {len(cases)} "
                           "cases")  # fmt: skip
                else:
                    why = f"{check.probe.describe_call(case)}: no result came back"
                return first_failure or why
            verdict["cases"] += 1
            if REFERENCE_REMOVED in str(outcome.get("message", "")):
                verdict["calls_reference"] = True
            if "ok" in outcome:
                verdict["disguised"] = sorted(
                    set(verdict["disguised"]) | wire.disguised_types(outcome["ok"])
                )
            if first_failure is None:
                first_failure = judge(check.probe, case, expected[i], _got(outcome),
                                      check.compare, mutation=check.mutation)  # fmt: skip
        return first_failure


def run_trusted(settings: Settings, course: Course, assembled, work: Path, extra_files: dict):
    """Phase 1d for one student: (verdicts by grade_id, what happened)."""
    plan = worker_plan(course)
    box = work / "trusted"
    copy_inputs(course, extra_files, box)
    if settings.unsafe:
        # No mount namespace to hide the reference: point Python at the neutered copy first.
        env = {"PYTHONPATH": str(course.neutered_dir.parent)}
        binds = []
    else:
        env = {"PYTHONPATH": str(course.package_dir.parent)}
        binds = [*python_binds(), (str(course.neutered_dir), str(course.package_dir))]
    talk = sandbox.Conversation(
        [sys.executable, "-m", "cnnlib.grading.trusted_runner"],
        workdir=box, ro_binds=binds, limits=settings.trusted_limits,
        slot=sandbox.current_slot(), env=env, log_dir=work / "logs-trusted",
        unsafe=settings.unsafe,
    )  # fmt: skip
    run = _Run(settings, course, talk)
    verdicts, end = {}, {}
    try:
        for index, cell in enumerate(assembled.cells):
            if cell.get("cell_type") != "code":
                continue
            meta = cell.get("metadata", {}).get("nbgrader", {})
            grade_id = meta.get("grade_id")
            if meta.get("grade") and not meta.get("solution"):
                if grade_id in plan:
                    verdicts[grade_id] = run.grade_cell(grade_id, plan[grade_id])
                continue
            if not run.stopped_at:
                run.cell(index, cell["source"])
        if not run.stopped_at:
            end = talk.ask({"kind": "end"}, 5) or {}
    finally:
        result = talk.close()
    info = {
        "wall_s": round(result.wall_s, 3),
        "timed_out": result.timed_out,
        "returncode": result.returncode,
        "stopped": run.stopped_at,
        "stderr_tail": result.stderr_tail[-1500:],
        "cpu_s": end.get("cpu_s") if isinstance(end.get("cpu_s"), int | float) else None,
    }
    return verdicts, info
