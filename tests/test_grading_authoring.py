"""Writing checks: probes, judging, the plan's seeds (fairness), and hidden tests in a kernel."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from course import ROOT

from cnnlib.grading import Assignment, Call, Close, ForwardBackward, Probe, hidden, secret, wire
from cnnlib.grading.authoring import load_checks, plan
from cnnlib.grading.checks import CheckFailure
from cnnlib.grading.probes import (
    REFERENCE_REMOVED,
    Namespace,
    judge,
    probe_from_spec,
    run_case,
)
from cnnlib.numpy import affine_backward, affine_forward


def scale(x, factor):
    return x * factor


def scale_in_place(x, factor):
    x *= factor
    return x


def test_run_case_reports_values_errors_missing_names_and_mutation():
    case = {"x": np.ones(3), "factor": 2.0}
    outcome = run_case(Call("scale"), Namespace({"scale": scale}), case)
    assert np.array_equal(outcome["value"], [2, 2, 2]) and "mutated" not in outcome
    assert np.array_equal(case["x"], np.ones(3))  # the case itself is never touched
    assert run_case(Call("scale"), Namespace({"scale": scale_in_place}), case)["mutated"] == ["x"]
    assert run_case(Call("scale"), Namespace({}), case) == {"missing": "scale"}
    failed = run_case(Call("scale"), Namespace({"scale": lambda **kw: 1 / 0}), case)
    assert failed["raised"][:2] == ["ZeroDivisionError", "ArithmeticError"]


def test_judge_says_what_went_wrong_in_words():
    case = {"x": np.ones(2), "factor": 2.0}
    good = {"value": np.full(2, 2.0)}
    close = Close()
    assert judge(Call("scale"), case, good, good, close) is None
    bad = judge(Call("scale"), case, good, {"value": np.ones(2)}, close)
    assert bad.startswith("scale(x=<array (2,) float64>, factor=2.0): element [0] is 1.0")
    stub = {"raised": ["NotImplementedError"], "message": ""}
    assert "not implemented yet" in judge(Call("scale"), case, good, stub, close)
    removed = {"raised": ["RuntimeError"], "message": REFERENCE_REMOVED + " (cnnlib.x)"}
    assert REFERENCE_REMOVED in judge(Call("scale"), case, good, removed, close)
    should_raise = {"raised": ["ValueError"], "message": "factor must be positive"}
    assert judge(Call("scale"), case, should_raise, {"raised": ["ValueError"]}, close) is None
    assert "should raise ValueError" in judge(Call("scale"), case, should_raise, good, close)
    mutated = {"value": np.full(2, 2.0), "mutated": ["x"]}
    assert "changed its input x" in judge(Call("scale"), case, good, mutated, close)
    assert judge(Call("scale"), case, good, mutated, close, mutation=False) is None


def test_forward_backward_judges_the_backward_on_the_students_own_cache():
    rng = np.random.default_rng(0)
    inputs = {"x": rng.standard_normal((3, 4)), "w": rng.standard_normal((4, 2)),
              "b": rng.standard_normal(2)}  # fmt: skip
    case = {"inputs": inputs, "dout": rng.standard_normal((3, 2))}
    probe = ForwardBackward("affine_forward", "affine_backward")
    reference = Namespace({"affine_forward": affine_forward, "affine_backward": affine_backward})
    expected = run_case(probe, reference, case)

    def forgets_db(dout, cache):
        dx, dw, _ = affine_backward(dout, cache)
        return dx, dw, np.zeros(2)

    student = Namespace({"affine_forward": affine_forward, "affine_backward": forgets_db})
    why = judge(probe, case, expected, run_case(probe, student, case), Close(rtol=1e-10))
    assert why.startswith("affine_forward(x=<array (3, 4) float64>") and "item 2:" in why
    assert probe_from_spec(json.loads(json.dumps(probe.spec()))) == probe


def _double(ns, values):
    return [ns["twice"](v) for v in values]


def test_a_custom_probe_travels_as_source_and_runs_the_same():
    probe = Probe(_double, subjects=("twice",))
    rebuilt = probe_from_spec(json.loads(json.dumps(probe.spec())))
    names = Namespace({"twice": lambda v: 2 * v})
    assert rebuilt.run(names, {"values": [1, 2]}) == probe.run(names, {"values": [1, 2]}) == [2, 4]
    assert rebuilt.subjects == ("twice",)


def test_an_assignment_refuses_checks_it_cannot_run():
    a = Assignment()
    with pytest.raises(TypeError, match="exactly one of reference= or expected="):
        a.check("test_x", Call("f"), cases=[{"x": 1}])
    with pytest.raises(TypeError, match="grade_id"):
        a.check(3, Call("f"), cases=[{"x": 1}], reference=abs)
    with pytest.raises(TypeError, match="probe"):
        a.check("test_x", 42, cases=[{"x": 1}], reference=abs)
    with pytest.raises(TypeError, match="not one string"):
        Assignment(blocked="numpy/")
    a.check("test_x", "f", cases=[{"x": -1}], reference=abs)  # a name means Call(name)
    assert isinstance(a.checks["test_x"][0].probe, Call)


def test_the_plan_is_the_same_for_every_submission_and_secret_per_course():
    a = Assignment()
    def cases(seed):
        return [{"x": int(v)} for v in np.random.default_rng(seed).integers(-99, 99, 8)]

    a.check("test_abs", Call("f"), reference=magnitude, cases=cases)
    key, other = b"k" * 32, b"o" * 32
    first = plan(a, "a9", key)["test_abs"][0]["cases"]
    assert plan(a, "a9", key)["test_abs"][0]["cases"] == first  # fair: same inputs every time
    assert plan(a, "a9", other)["test_abs"][0]["cases"] != first  # another course: other inputs
    assert plan(a, "a8", key)["test_abs"][0]["cases"] != first  # another assignment too
    assert secret.seed_for(key, "a9", "test_abs", 0) == secret.seed_for(key, "a9", "test_abs", 0)
    assert secret.fingerprint(key) == secret.fingerprint(key) != secret.fingerprint(other)
    assert secret.fingerprint(secret.DEVELOPMENT_KEY) == "development"


def test_a_reference_that_raises_something_else_is_a_broken_check():
    a = Assignment()
    a.check("test_x", Call("f"), cases=[{"x": 0}], reference=lambda x: 1 / x)
    with pytest.raises(RuntimeError, match="may only raise ValueError or TypeError"):
        plan(a, "a9", b"k" * 32)


def test_the_course_secret_is_made_once_private_and_checked(tmp_path):
    path = tmp_path / ".course-secret"
    key, created = secret.load_or_create(path)
    assert created and len(key) == 32 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert secret.load_or_create(path) == (key, False)
    path.write_text("not hex")
    with pytest.raises(ValueError, match="does not hold a course secret"):
        secret.load_or_create(path)


def test_load_checks_says_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="live beside its source notebook"):
        load_checks(tmp_path / "checks.py")
    (tmp_path / "checks.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="must define `assignment = Assignment"):
        load_checks(tmp_path / "checks.py")


# --------------------------------------------------------------------------- hidden tests


def _a1_namespace():
    sys.path.insert(0, str(ROOT / "tests"))
    from hostile_corpus import PARTLY_WRONG, _solution

    namespaces = {}
    for name, nb in (("solution", _solution()), ("partly", _solution(PARTLY_WRONG))):
        names: dict = {"__name__": "__main__"}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and not meta.get("grade"):
                exec(cell.source, names)
        namespaces[name] = names
    return namespaces


def test_hidden_tests_in_a_course_plug_in_the_solution_for_an_earlier_mistake(monkeypatch):
    # run where nbgrader would: the assignment's folder in the course
    monkeypatch.chdir(ROOT / "solutions" / "a1_conv_arithmetic")
    monkeypatch.delenv(hidden.PLAN_ENV, raising=False)
    names = _a1_namespace()
    for grade_id in ("test_conv_macs", "test_lenet5_table"):
        hidden.hidden_tests(grade_id, names["solution"])
    with pytest.raises(CheckFailure, match=r"conv_macs\(.*\): got \d+, expected \d+"):
        hidden.hidden_tests("test_conv_macs", names["partly"])
    wrong_macs = names["partly"]["conv_macs"]
    # the table builds on conv_macs: graded with the solution's, it passes...
    hidden.hidden_tests("test_lenet5_table", names["partly"])
    assert names["partly"]["conv_macs"] is wrong_macs  # ...and the student's is put back
    # a wrong table fails whatever is plugged in
    names["partly"]["lenet5_table"] = lambda input_shape=(1, 28, 28): []
    with pytest.raises(CheckFailure, match="expected 6 rows, got 0"):
        hidden.hidden_tests("test_lenet5_table", names["partly"])


def magnitude(x):
    return abs(x)


def test_hidden_tests_use_the_graders_plan_when_it_gives_one(tmp_path, monkeypatch):
    a = Assignment()
    a.check("test_abs", Call("f"), cases=[{"x": -3}, {"x": 4}], reference=magnitude)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(hidden.ship(plan(a, "a9", b"k" * 32))))
    monkeypatch.setenv(hidden.PLAN_ENV, str(path))
    monkeypatch.chdir(tmp_path)
    hidden.hidden_tests("test_abs", {"f": magnitude})
    with pytest.raises(CheckFailure, match=r"f\(x=-3\): got -3, expected 3"):
        hidden.hidden_tests("test_abs", {"f": lambda x: x})
    with pytest.raises(RuntimeError, match="no checks for 'test_nope'"):
        hidden.hidden_tests("test_nope", {})


def test_hidden_tests_outside_a_course_say_where_they_look(tmp_path, monkeypatch):
    monkeypatch.delenv(hidden.PLAN_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="no checks file found"):
        hidden.hidden_tests("test_x", {})


@pytest.mark.slow
def test_plain_nbgrader_finds_the_checks_of_a_course_copied_elsewhere(tmp_path):
    # the kernel's cwd is <course>/autograded/<student>/<id>/ under plain nbgrader
    course = tmp_path / "course"
    shutil.copytree(ROOT / "solutions" / "a1_conv_arithmetic",
                    course / "solutions" / "a1_conv_arithmetic")  # fmt: skip
    shutil.copy(ROOT / "nbgrader_config.py", course)
    where = course / "autograded" / "someone" / "a1_conv_arithmetic"
    where.mkdir(parents=True)
    code = ("from cnnlib.grading import hidden_tests\n"
            "def same_padding(kernel, dilation=1):\n"
            "    k = dilation * (kernel - 1) + 1\n"
            "    if k % 2 == 0: raise ValueError('even')\n"
            "    return (k - 1) // 2\n"
            "hidden_tests('test_same_padding', globals())\n")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != hidden.PLAN_ENV}
    result = subprocess.run([sys.executable, "-c", code], cwd=where, capture_output=True,
                            text=True, timeout=120, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test_same_padding: 60 hidden cases passed" in result.stdout
    assert Path(where).is_dir()


def test_grade_help_shows_the_defaults_and_what_each_argument_is(capsys):
    from cnnlib.grading import autograde

    with pytest.raises(SystemExit):
        autograde.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "assignment_id the assignment's folder name under solutions/ and assignments/" in text
    assert "seconds for one whole notebook run (default: 600.0)" in text
    assert "(default: 3072)" in text and "(default: None)" not in text


def test_grading_mode_is_what_the_grader_sets(monkeypatch):
    import cnnlib
    from cnnlib.grading import sandbox

    monkeypatch.delenv("CNNLIB_GRADING", raising=False)
    assert cnnlib.grading_mode() is False
    _, options = sandbox._launch(["true"], workdir=Path("/tmp"), ro_binds=[],
                                 limits=sandbox.SandboxLimits(), slot=1, env={}, unsafe=True)
    monkeypatch.setenv("CNNLIB_GRADING", options["env"]["CNNLIB_GRADING"])
    assert cnnlib.grading_mode() is True


def test_outcome_checks_never_reach_the_notebooks_sandbox(tmp_path, monkeypatch, capsys):
    # the true labels of held-out images stay with the grader: the kernel gets nothing to steal
    a = Assignment()
    a.check("test_model", Call("predict"), cases=[{"images": np.zeros((2, 3))}],
            expected=lambda case: np.array([4, 2]))  # fmt: skip
    shipped = hidden.ship(plan(a, "a9", b"k" * 32))
    assert shipped == {"test_model": [{"trusted_only": True,
                                       "probe": {"kind": "call", "function": "predict"}}]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(shipped))
    monkeypatch.setenv(hidden.PLAN_ENV, str(path))
    hidden.hidden_tests("test_model", {"predict": lambda images: np.zeros(2, int)})
    assert "test_model: the grader checks this cell" in capsys.readouterr().out
    # the grader's own copy keeps them: its trusted run judges the check (trusted.worker_plan)
    (whole,) = hidden.ship(plan(a, "a9", b"k" * 32), trusted=True)["test_model"]
    assert "trusted_only" not in whole and len(whole["cases"]) == 1
    assert wire.decode(whole["expected"][0]["value"]).tolist() == [4, 2]


def test_an_outcome_check_failing_only_where_it_is_judged_is_no_tampering():
    # the kernel never gets an outcome check's cases, so its pass there proves nothing
    from cnnlib.grading.gradebook import tamper_flags

    failed = {"passed": False, "reason": "3 of 24 images fooled"}
    assert tamper_flags("test_x", True, failed) == ["nbgrader_pass_trusted_fail:test_x"]
    assert tamper_flags("test_x", True, {**failed, "outcome_check": True}) == []
    assert tamper_flags("test_x", False, failed) == []
