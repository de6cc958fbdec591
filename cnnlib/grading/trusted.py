"""The trusted side of the checks: choose inputs, neuter the reference, compare the answers.

A grade cell's points count only when these checks agree. They run the student's functions in a
separate sandboxed Python (see `trusted_runner`), on inputs drawn here with a seed derived from a
key the sandbox cannot read, and compare what comes back (plain JSON, parsed here) with the
reference, which is only ever called here.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

from cnnlib.grading.checks import CheckFailure, _mismatch, call_repr, check_table
from cnnlib.grading.specs import AssignmentSpec
from cnnlib.grading.trusted_runner import decode, encode

__all__ = ["build_job", "compare", "neutered_cnnlib", "seed_for"]

MAX_RESULT_BYTES = 32 * 1024 * 1024

_BLOCKED_BODY = (
    "raise RuntimeError('the grader removed cnnlib\\'s reference implementation here: "
    "write your own')"
)


def seed_for(key: bytes, submission_hash: str, grade_id: str, index: int) -> int:
    digest = hashlib.sha256(key + f"|{submission_hash}|{grade_id}|{index}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _neuter(source: str) -> str:
    """The module with every function and method body replaced by `raise RuntimeError(...)`.

    The source text itself no longer holds the implementation, so reading or exec-ing the file,
    or reloading the module, gives nothing either.
    """
    tree = ast.parse(source)
    stub = ast.parse(_BLOCKED_BODY).body
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            node.body = ([ast.Expr(ast.Constant(doc))] if doc else []) + list(stub)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def neutered_cnnlib(package_dir: Path, dest: Path, spec: AssignmentSpec) -> Path:
    """A copy of the cnnlib package at dest/cnnlib with spec.blocked modules neutered."""
    target = dest / "cnnlib"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(package_dir, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for relative in spec.blocked:
        path = target / relative
        path.write_text(_neuter(path.read_text()))
    return target


def build_job(
    cells: list[dict],
    spec: AssignmentSpec,
    key: bytes,
    submission_hash: str,
) -> tuple[list[dict], dict[str, list[tuple[object, list[dict]]]]]:
    """The runner's steps in notebook order, and per grade_id the (check, cases) sent.

    cells: the assembled notebook's cells (dicts with cell_type, source, metadata). Code cells
    that are not grade cells run as they come; each grade cell with a spec becomes its checks.
    """
    steps, sent = [], {}
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id")
        if meta.get("grade") and not meta.get("solution"):
            for i, check in enumerate(spec.checks.get(grade_id, [])):
                cases = check.cases(seed_for(key, submission_hash, grade_id, i))
                sent.setdefault(grade_id, []).append((check, cases))
                steps.append({
                    "kind": "check", "grade_id": grade_id, "function": check.function,
                    "cases": [encode(case) for case in cases],
                })  # fmt: skip
            continue
        steps.append({"kind": "cell", "index": index, "source": cell["source"]})
    return steps, sent


def _read_results(path: Path) -> list[dict]:
    if not path.is_file() or path.stat().st_size > MAX_RESULT_BYTES:
        return []
    records = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                break
            if isinstance(record, dict):
                records.append(record)
    return records


def _judge(check, cases: list[dict], record: dict | None) -> str | None:
    """Why the student's outcomes disagree with the reference, or None when they agree."""
    name = check.function
    if record is None:
        return f"{name} was never checked (the run stopped before this cell)"
    if record.get("missing"):
        return f"{name} is not defined"
    outcomes = record.get("outcomes")
    if not isinstance(outcomes, list) or len(outcomes) != len(cases):
        if isinstance(outcomes, list) and outcomes and outcomes[-1].get("timeout"):
            return f"{name} took too long"
        return f"{name}: incomplete results"
    for case, outcome in zip(cases, outcomes, strict=True):
        call = call_repr(name, case)
        try:
            expected, expected_error = check.reference(**case), None
        except (ValueError, TypeError) as error:
            expected, expected_error = None, error
        if not isinstance(outcome, dict):
            return f"{call}: malformed result"
        if "raised" in outcome:
            raised = outcome["raised"] if isinstance(outcome["raised"], list) else []
            raised = [str(n) for n in raised]
            if "NotImplementedError" in raised:
                return f"{name} is not implemented (NotImplementedError)"
            if expected_error is not None and type(expected_error).__name__ in raised:
                continue
            got = raised[0] if raised else "an exception"
            if expected_error is not None:
                wanted = f"raise {type(expected_error).__name__}"
            else:
                wanted = f"return {expected!r}"
            return f"{call} raised {got}, it should {wanted}"
        if "ok" not in outcome:
            return f"{call}: malformed result"
        if expected_error is not None:
            return f"{call} returned a value, it should raise {type(expected_error).__name__}"
        got = decode(outcome["ok"])
        if check.compare == "table":
            try:
                check_table(got, expected, what=call)
            except CheckFailure as failure:
                return str(failure)
            except Exception as error:  # a malformed table
                return f"{call}: {type(error).__name__}"
            continue
        why = _mismatch(got, expected, 1e-9)
        if why is not None:
            return f"{call}: {why}"
    return None


def compare(results_path: Path, sent: dict[str, list]) -> dict[str, dict]:
    """grade_id -> {"passed": bool, "reason": str | None} from the runner's results file."""
    records = _read_results(results_path)
    by_check: dict[tuple[str, str], dict] = {}
    for record in records:
        key = (record.get("grade_id"), record.get("function"))
        if key[0] is not None and key not in by_check:
            by_check[key] = record
    verdicts = {}
    for grade_id, checks in sent.items():
        reasons = []
        for check, cases in checks:
            why = _judge(check, cases, by_check.get((grade_id, check.function)))
            if why is not None:
                reasons.append(why)
        verdicts[grade_id] = {"passed": not reasons, "reason": "; ".join(reasons) or None}
    return verdicts
