"""Hostile and broken submissions of a1_conv_arithmetic, built from the release and the solution.

Each case is a student folder plus the exact score the hardened grader must give, the flags
(evidence of tampering) and the problems (faults, broken files) it must report. Points per grade
cell: floor 4, dilation 3, strict 2, same_padding 2, receptive_field 4, conv_params 3, conv_macs 3,
lenet5_table 5 (26 in all). lenet5_table is graded with the solution's conv_output_size,
conv_params and conv_macs plugged in where the student's fail: an early mistake costs its own
cell only.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import course
import nbformat
from course import ROOT, filled_release

AID = "a1_conv_arithmetic"
RELEASE_NB = ROOT / "assignments" / AID / f"{AID}.ipynb"
SOURCE_NB = ROOT / "solutions" / AID / f"{AID}.ipynb"
TOTAL = 26

# The partly wrong answers of the round-trip test (tests/course.py): they fail the strict,
# same_padding, receptive_field and conv_macs checks (lenet5_table is graded with the solution's
# conv_macs plugged in): 15 / 26.
PARTLY_WRONG = course.PARTLY_WRONG[AID]["replace"]
PARTLY_WRONG_SCORE = 15


@dataclasses.dataclass
class Case:
    score: float
    flags: set[str] = dataclasses.field(default_factory=set)  # must all be raised
    problems: set[str] = dataclasses.field(default_factory=set)  # must all be reported
    exact: bool = False  # True: no other flag or problem allowed
    note: str = ""


def _solution(replace=None):
    return filled_release(RELEASE_NB, SOURCE_NB, replace)


def _grade_index(nb, grade_id: str) -> int:
    return next(
        i for i, c in enumerate(nb.cells)
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    )  # fmt: skip


def _insert_after(nb, grade_id: str, source: str):
    nb.cells.insert(_grade_index(nb, grade_id) + 1, nbformat.v4.new_code_cell(source))
    return nb


def _append(nb, source: str):
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


def _write(folder: Path, nb, name: str = f"{AID}.ipynb") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / name)


# Cheats that make the hidden tests pass in the student's kernel: with the partly wrong answers
# (whose same_padding passes the visible asserts), nbgrader alone would give same_padding's points.
PATCH_CHECKS = """
import numpy as np
import cnnlib.grading, cnnlib.grading.checks, cnnlib.grading.hidden
_ok = lambda *args, **kwargs: None
cnnlib.grading.hidden_tests = cnnlib.grading.hidden.hidden_tests = _ok
cnnlib.grading.check_function = cnnlib.grading.checks.check_function = _ok
np.testing.assert_allclose = _ok
"""

INPUT_TRANSFORMER = """
def _no_tests(lines):
    text = "".join(lines)
    return ["pass\\n"] if ("assert" in text or "hidden_tests" in text) else lines
get_ipython().input_transformers_post.append(_no_tests)
"""

BUILTINS_IMPORT = """
import builtins, types
_real_import = builtins.__import__
_fake = types.ModuleType("cnnlib.grading")
_fake.hidden_tests = _fake.check_function = _fake.check_table = lambda *a, **k: None
_fake.conv_geometry_cases = _fake.same_padding_cases = lambda *a, **k: []
_fake.receptive_field_cases = _fake.conv_cost_cases = lambda *a, **k: []
def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "cnnlib.grading":
        return _fake
    return _real_import(name, globals, locals, fromlist, level)
builtins.__import__ = _import
"""

SHOWTRACEBACK = """
_ip = get_ipython()
_ip.showtraceback = lambda *a, **k: None
_ip._showtraceback = lambda *a, **k: None
"""

NBGRADER_ENV = """
import os
print("NBGRADER_EXECUTION =", os.environ.get("NBGRADER_EXECUTION"))
if os.environ.get("NBGRADER_EXECUTION"):
    import cnnlib.grading
    cnnlib.grading.hidden_tests = lambda *a, **k: None
"""

LIAR = """
class Liar(int):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = int.__hash__

def conv_output_size(size, kernel, stride=1, pad=0, dilation=1, strict=False):
    return Liar(0)
"""

CALLS_REFERENCE = """
import dataclasses
from cnnlib.arithmetic import conv_output_size, same_padding, receptive_field
from cnnlib.arithmetic import conv_params, conv_macs
from cnnlib import arithmetic as _a
"""
CALLS_REFERENCE_LENET = """
def lenet5_table(input_shape=(1, 28, 28)):
    layers = [_a.Conv(20, 5, pad=2), _a.Pool(2), _a.Conv(50, 5, pad=2), _a.Pool(2),
              _a.Linear(500), _a.Linear(10)]
    return [dataclasses.asdict(r) for r in _a.layer_table(input_shape, layers)]
"""

RELOAD_REFERENCE = """
import importlib
import cnnlib.arithmetic
conv_output_size = importlib.reload(cnnlib.arithmetic).conv_output_size
"""

EXEC_SOURCE = """
import cnnlib.arithmetic, inspect
_namespace = {"__name__": "cnnlib.arithmetic"}
exec(compile(open(inspect.getsourcefile(cnnlib.arithmetic)).read(), "x", "exec"), _namespace)
same_padding = _namespace["same_padding"]
"""

SNOOP = """
import json, os, glob
_seen = {}
for _path in PATHS:
    try:
        if os.path.isdir(_path):
            _seen[_path] = sorted(os.listdir(_path))[:20]
        else:
            with open(_path, "rb") as _f:
                _seen[_path] = _f.read(200).decode("latin-1")
    except Exception as _e:
        _seen[_path] = "DENIED " + type(_e).__name__
_seen["glob"] = [p for top in ("/work", "/root", "/tmp", "/sandbox", "/home")
                 for p in glob.glob(top + "/**/*", recursive=True)
                 if "gradebook.db" in p or "solutions" in p or "submitted" in p][:20]
_seen["uid"] = os.getuid()
print("SNOOP " + json.dumps(_seen))
"""

WRITE_GRADEBOOK = """
import os
_results = {}
for _path in PATHS:
    try:
        with open(_path, "r+b") as _f:
            _f.write(b"garbage" * 100)
        _results[_path] = "WROTE"
    except Exception as _e:
        _results[_path] = "DENIED " + type(_e).__name__
print("WRITE", _results)
"""

NETWORK = """
import socket
_results = {}
for _port in PORTS:
    try:
        socket.create_connection(("127.0.0.1", _port), timeout=3).close()
        _results[_port] = "CONNECTED"
    except Exception as _e:
        _results[_port] = "FAILED " + type(_e).__name__
print("NETWORK", _results)
"""

# Reads the grader's plan of the hidden tests (inputs and expected outcomes, shipped into the
# notebook's sandbox for the kernel's own run of them) and answers from it: the kernel passes, the
# grader's own run (where no plan is in reach) does not.
READS_THE_PLAN = """
import json, os
from cnnlib.grading import wire as _wire
_path = os.environ.get("CNNLIB_GRADING_PLAN")
_plan = json.load(open(_path)) if _path else {}
_answers = {}
for _check in _plan.get("test_same_padding", []):
    for _case, _out in zip(_check["cases"], _check["expected"]):
        _answers[repr(sorted(_wire.decode(_case).items()))] = _out

def same_padding(kernel, dilation=1):
    _out = _answers.get(repr(sorted({"kernel": kernel, "dilation": dilation}.items())))
    if _out is None:
        return (kernel - 1) // 2
    if "raised" in _out:
        raise ValueError("even")
    return _wire.decode(_out["value"])
"""

# In the grader's trusted run, answers the grader's request itself: finds the request's sequence
# number in the runner's frames and writes a forged answer on every file descriptor. The grader
# judges what it reads like any answer: forged values are wrong values.
FORGE_ANSWERS = """
import json, os, sys

def same_padding(kernel, dilation=1):
    frame = sys._getframe()
    while frame is not None and "step" not in frame.f_locals:
        frame = frame.f_back
    if frame is not None and "get_ipython" not in globals():
        step = frame.f_locals["step"]
        fake = {"seq": step.get("seq"), "outcomes": [{"ok": {"t": "int", "v": "1"}}] * 60}
        for fd in range(3, 30):
            try:
                os.write(fd, (json.dumps(fake) + "\\n").encode())
            except OSError:
                pass
    return (kernel - 1) // 2
"""

ECHO_HIDDEN = """
def _echo(info):
    print(info.raw_cell)
get_ipython().events.register("pre_run_cell", _echo)
"""


def _with(answer: str, extra: str) -> str:
    return answer.rstrip() + "\n\n" + extra.strip() + "\n"


def build(dest: Path, *, secrets: list[str], gradebooks: list[str], ports: list[int]):
    """Write every case's folder under dest; returns {student: Case}.

    secrets: paths the snooping submission must not see (solutions/, other students, home);
    gradebooks: files the writing submission must not change; ports: host ports it must not
    reach (a listening socket on the host's loopback).
    """
    cases: dict[str, Case] = {}
    solution_sources = {
        c.metadata["nbgrader"]["grade_id"]: c.source
        for c in _solution().cells
        if c.metadata.get("nbgrader", {}).get("solution")
    }

    def add(name, nb, case, filename=f"{AID}.ipynb"):
        _write(dest / name, nb, filename)
        cases[name] = case

    add("honest_correct", _solution(), Case(TOTAL, exact=True))
    add("honest_partly_wrong", _solution(PARTLY_WRONG), Case(PARTLY_WRONG_SCORE, exact=True))
    add("untouched_release", nbformat.read(RELEASE_NB, 4), Case(0, exact=True))

    # The kernel's hidden tests pass, the grader's run of the very same inputs does not.
    cheat = {"nbgrader_pass_trusted_fail:test_same_padding"}
    add("patched_checks", _insert_after(_solution(PARTLY_WRONG), "imports", PATCH_CHECKS),
        Case(PARTLY_WRONG_SCORE, cheat))
    add("input_transformer", _insert_after(_solution(PARTLY_WRONG), "imports", INPUT_TRANSFORMER),
        Case(PARTLY_WRONG_SCORE, cheat))
    add("builtins_import", _insert_after(_solution(PARTLY_WRONG), "imports", BUILTINS_IMPORT),
        Case(PARTLY_WRONG_SCORE, cheat))
    add("showtraceback", _insert_after(_solution(PARTLY_WRONG), "imports", SHOWTRACEBACK),
        Case(PARTLY_WRONG_SCORE, cheat))
    add("nbgrader_env", _insert_after(_solution(PARTLY_WRONG), "imports", NBGRADER_ENV),
        Case(PARTLY_WRONG_SCORE, exact=True))
    add("reads_the_plan", _solution({**PARTLY_WRONG, "same_padding": READS_THE_PLAN}),
        Case(PARTLY_WRONG_SCORE, cheat))
    add("forge_answers", _solution({**PARTLY_WRONG, "same_padding": FORGE_ANSWERS}),
        Case(PARTLY_WRONG_SCORE))
    # conv_output_size returns an int whose == is always true: the three conv_output_size
    # cells are lost (lenet5_table is graded with the solution's conv_output_size).
    add("always_equal", _solution({"conv_output_size": LIAR}),
        Case(TOTAL - 9, {"disguised_value:test_conv_output_size_floor"}))
    reference = {
        gid: CALLS_REFERENCE for gid in ("conv_output_size", "same_padding", "receptive_field",
                                         "conv_params_and_macs")
    }  # fmt: skip
    reference["lenet5_table"] = CALLS_REFERENCE + CALLS_REFERENCE_LENET
    add("calls_reference", _solution(reference),
        Case(0, {"calls_reference:test_lenet5_table", "calls_reference:test_same_padding"}))
    add("reload_reference", _solution({"conv_output_size": RELOAD_REFERENCE}),
        Case(TOTAL - 9, {"calls_reference:test_conv_output_size_floor"}))
    add("exec_reference_source", _solution({"same_padding": EXEC_SOURCE}),
        Case(TOTAL - 2, {"calls_reference:test_same_padding"}))

    snoop = SNOOP.replace("PATHS", json.dumps(secrets))
    add("snoop", _append(_solution(), snoop), Case(TOTAL, note="snoop"))
    write = WRITE_GRADEBOOK.replace("PATHS", json.dumps(gradebooks))
    add("write_gradebook", _append(_solution(), write), Case(TOTAL, note="write"))
    add("network", _append(_solution(), NETWORK.replace("PORTS", json.dumps(ports))),
        Case(TOTAL, note="network"))
    add("echo_hidden_tests", _insert_after(_solution(), "imports", ECHO_HIDDEN), Case(TOTAL))

    # Faults: what ran before the fault keeps its points, the rest is lost.
    loop = _with(solution_sources["receptive_field"], "while True:\n    pass")
    add("infinite_loop", _solution({"receptive_field": loop}),
        Case(9 + 2, problems={"wall_budget_exceeded"}))
    exits = _with(solution_sources["conv_params_and_macs"], "import os\nos._exit(1)")
    add("os_exit", _solution({"conv_params_and_macs": exits}),
        Case(9 + 2 + 4, problems={"kernel_died"}))
    segv = _with(solution_sources["lenet5_table"], "import ctypes\nctypes.string_at(0)")
    add("segfault", _solution({"lenet5_table": segv}),
        Case(9 + 2 + 4 + 3 + 3, problems={"kernel_died"}))
    bomb = "def same_padding(kernel, dilation=1):\n    return len(bytearray(64 * 1024**3))\n"
    add("memory_bomb", _solution({"same_padding": bomb}),
        Case(TOTAL - 2, problems={"memory_limit"}))
    fork = "import os\nfor _ in range(100_000):\n    os.fork()\n"
    add("fork_bomb", _append(_solution(), fork), Case(TOTAL))
    flood = "for _ in range(3000):\n    print('x' * 1_000_000)\n"
    add("output_flood", _append(_solution(), flood), Case(TOTAL, problems={"output_limit"}))

    # Broken files.
    (dest / "invalid_json").mkdir()
    (dest / "invalid_json" / f"{AID}.ipynb").write_text('{"cells": [oops')
    cases["invalid_json"] = Case(0, problems={"notebook_invalid_json"}, exact=True)
    (dest / "empty_file").mkdir()
    (dest / "empty_file" / f"{AID}.ipynb").write_bytes(b"")
    cases["empty_file"] = Case(0, problems={"notebook_empty"}, exact=True)
    add("renamed", _solution(), Case(TOTAL, problems={"notebook_renamed"}, exact=True),
        filename="my homework (1).ipynb")
    (dest / "missing").mkdir()
    (dest / "missing" / "README.txt").write_text("I forgot the notebook")
    cases["missing"] = Case(0, problems={"notebook_missing"}, exact=True)
    other = _solution()
    for cell in other.cells:
        meta = cell.metadata.get("nbgrader")
        if meta:
            meta["grade_id"] = "b2_" + meta["grade_id"]
    add("other_assignment", other, Case(0, problems={"wrong_assignment"}, exact=True))

    # Tampering with locked cells: restored from the release and graded.
    wrong_macs = {"conv_params_and_macs": PARTLY_WRONG["conv_params_and_macs"]}
    edited = _solution(wrong_macs)
    edited.cells[_grade_index(edited, "test_conv_macs")].source = "pass"
    edited.cells[_grade_index(edited, "test_lenet5_table")].source = "pass"
    add("edited_locked", edited, Case(TOTAL - 3, {"locked_cell_edited"}, exact=True))
    deleted = _solution()
    del deleted.cells[_grade_index(deleted, "test_receptive_field")]
    del deleted.cells[_grade_index(deleted, "as_pair")]
    add("deleted_locked", deleted, Case(TOTAL, {"locked_cell_deleted"}, exact=True))
    stripped = _solution({"same_padding": PARTLY_WRONG["same_padding"]})
    cell = stripped.cells[_grade_index(stripped, "test_same_padding")]
    del cell.metadata["nbgrader"]
    add("metadata_stripped", stripped,
        Case(TOTAL - 2, {"locked_cell_metadata_stripped"}, exact=True))
    return cases
