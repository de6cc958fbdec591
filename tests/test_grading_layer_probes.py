"""A layer's two halves graded in cells of their own (`Forward`, `Backward`), and held-out images
for grading a trained model by outcome (`HeldOut`, `perturbed_digits`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlib.grading import (
    Accuracy,
    Assignment,
    Backward,
    Close,
    Forward,
    HeldOut,
    hidden,
    perturbed_digits,
)
from cnnlib.grading.authoring import plan
from cnnlib.grading.checks import CheckFailure
from cnnlib.grading.probes import Namespace, judge, probe_from_spec, run_case
from cnnlib.numpy import affine_backward, affine_forward, relu_backward, relu_forward

REFERENCE = Namespace({
    "affine_forward": affine_forward, "affine_backward": affine_backward,
    "relu_forward": relu_forward, "relu_backward": relu_backward,
})  # fmt: skip


def _affine_case(seed=0):
    rng = np.random.default_rng(seed)
    inputs = {"x": rng.standard_normal((3, 2, 2)), "w": rng.standard_normal((4, 5)),
              "b": rng.standard_normal(5)}  # fmt: skip
    return {"inputs": inputs, "dout": rng.standard_normal((3, 5))}


def test_forward_returns_out_alone_and_says_what_a_forward_must_return():
    case = _affine_case()["inputs"]
    outcome = run_case(Forward("affine_forward"), REFERENCE, case)
    assert np.array_equal(outcome["value"], affine_forward(**case)[0])
    bare = Namespace({"affine_forward": lambda x, w, b: x.reshape(3, -1) @ w + b})
    failed = run_case(Forward("affine_forward"), bare, case)
    assert failed["raised"][0] == "TypeError"
    assert failed["message"].startswith("affine_forward must return (out, cache), got an array")
    assert Forward("affine_forward").subjects == ("affine_forward",)


def test_backward_judges_the_gradients_on_the_forwards_cache():
    case = _affine_case()
    probe = Backward("affine_forward", "affine_backward")
    assert probe.subjects == ("affine_backward",)  # the forward is plugged in, not graded here
    expected = run_case(probe, REFERENCE, case)
    assert isinstance(expected["value"], tuple) and len(expected["value"]) == 3

    def forgets_to_reshape(dout, cache):
        dx, dw, db = affine_backward(dout, cache)
        return dx.reshape(3, -1), dw, db

    wrong = Namespace({**REFERENCE, "affine_backward": forgets_to_reshape})
    why = judge(probe, case, expected, run_case(probe, wrong, case), Close())
    assert why == (
        "affine_forward(x=<array (3, 2, 2) float64>, w=<array (4, 5) float64>, b=<array (5,) "
        "float64>) then affine_backward(dout, cache): item 0: got an array of shape (3, 4), "
        "expected shape (3, 2, 2)"
    )


def test_a_single_gradient_comes_back_as_a_tuple_and_changing_dout_is_caught():
    rng = np.random.default_rng(1)
    case = {"inputs": {"x": rng.standard_normal((2, 3))}, "dout": rng.standard_normal((2, 3))}
    probe = Backward("relu_forward", "relu_backward")
    expected = run_case(probe, REFERENCE, case)
    assert len(expected["value"]) == 1

    def in_place(dout, cache):
        dout[cache <= 0] = 0  # the classic: zeroes the caller's upstream gradient
        return dout

    got = run_case(probe, Namespace({**REFERENCE, "relu_backward": in_place}), case)
    assert got["mutated"] == ["dout"]
    assert "changed its input dout" in judge(probe, case, expected, got, Close())


def test_forward_and_backward_travel_as_their_spec():
    for probe in (Forward("relu_forward"), Backward("relu_forward", "relu_backward")):
        assert probe_from_spec(json.loads(json.dumps(probe.spec()))) == probe


def test_a_wrong_forward_costs_its_own_cell_only(tmp_path, monkeypatch):
    # In a course (plain nbgrader, or the solution run by hand), hidden tests plug the
    # solution's forward into the backward's check where the student's forward failed.
    course = tmp_path / "course"
    source = course / "solutions" / "a9"
    source.mkdir(parents=True)
    (course / "nbgrader_config.py").write_text("")
    import nbformat

    solution = ("def relu_forward(x):\n    ### BEGIN SOLUTION\n    return x * (x > 0), x\n"
                "    ### END SOLUTION\n")  # fmt: skip
    cell = nbformat.v4.new_code_cell(solution)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "grade_id": "relu_forward",
                                 "locked": False, "schema_version": 3}  # fmt: skip
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), source / "a9.ipynb")
    (source / "checks.py").write_text(
        "import numpy as np\n"
        "from cnnlib.grading import Assignment, Backward, Forward\n"
        "from cnnlib.numpy import relu_backward, relu_forward\n"
        "assignment = Assignment()\n"
        "cases = [{'x': np.array([[-1.0, 2.0, 3.0]])}]\n"
        "assignment.check('test_forward', Forward('relu_forward'), cases=cases,\n"
        "                 reference=relu_forward)\n"
        "assignment.check('test_backward', Backward('relu_forward', 'relu_backward'),\n"
        "                 cases=[{'inputs': c, 'dout': np.ones((1, 3))} for c in cases],\n"
        "                 reference={'relu_forward': relu_forward,\n"
        "                            'relu_backward': relu_backward},\n"
        "                 plug_in=('relu_forward',))\n"
    )
    monkeypatch.chdir(source)
    monkeypatch.delenv(hidden.PLAN_ENV, raising=False)
    names = {
        "relu_forward": lambda x: (np.abs(x), x),  # wrong, with the right cache
        "relu_backward": lambda dout, x: dout * (x > 0),
    }
    with pytest.raises(CheckFailure, match=r"relu_forward\(x=<array \(1, 3\) float64>\)"):
        hidden.hidden_tests("test_forward", names)
    hidden.hidden_tests("test_backward", names)
    names["relu_backward"] = lambda dout, x: dout
    with pytest.raises(CheckFailure, match="then relu_backward"):
        hidden.hidden_tests("test_backward", names)


# --------------------------------------------------------------------------- held-out images


def test_perturbed_digits_are_the_test_split_changed_by_the_seed_only():
    images, labels = perturbed_digits(7, copies=2)
    assert images.shape == (540, 1, 8, 8) and images.dtype == np.float32
    assert labels.shape == (540,) and labels.dtype == np.int64
    assert images.min() >= 0.0 and images.max() <= 1.0
    again, _ = perturbed_digits(7, copies=2)
    other, other_labels = perturbed_digits(8, copies=2)
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    assert np.array_equal(labels, other_labels)  # the same digits, perturbed otherwise
    from cnnlib.data import load_digits

    clean_images, clean_labels = load_digits().test
    assert np.array_equal(labels[:270], clean_labels)
    assert 0.03 < np.abs(images[:270] - clean_images).mean() < 0.15  # changed, still digits
    clean, _ = perturbed_digits(7, copies=1, noise=0.0, contrast=(1.0, 1.0))
    assert np.array_equal(clean, clean_images)
    with pytest.raises(ValueError, match="split must be"):
        perturbed_digits(0, split="holdout")


def test_held_out_labels_never_travel_with_the_case():
    held = HeldOut(lambda seed: perturbed_digits(seed, copies=1))
    a = Assignment()

    def predict(ns, images):
        return ns["classify"](images)

    from cnnlib.grading import Probe

    a.check("test_accuracy", Probe(predict, subjects=("classify",)), cases=held.cases,
            expected=held.expected, compare=Accuracy(at_least=0.9))  # fmt: skip
    (item,) = plan(a, "a9", b"k" * 32)["test_accuracy"]
    (case,) = item["cases"]
    assert set(case) == {"images"}
    labels = item["expected"][0]["value"]
    assert labels.shape == (270,)
    assert Accuracy(at_least=0.9).explain(labels, labels) is None
    with pytest.raises(LookupError, match="not made by this HeldOut"):
        held.expected({"images": np.zeros((1, 1, 8, 8), np.float32)})
    with pytest.raises(ValueError, match="must pair up"):
        HeldOut(lambda seed: (np.zeros((2, 1, 8, 8)), np.zeros(3))).cases(0)


def test_a_handed_in_file_never_comes_from_the_release_folder(tmp_path):
    # Someone ran the release notebook in the course and left trained weights beside it: every
    # student would otherwise be graded on those (a student's file never replaces a release file).
    from types import SimpleNamespace

    from cnnlib.grading.execute import copy_inputs

    release = tmp_path / "release"
    release.mkdir()
    (release / "a9.ipynb").write_text("{}")
    (release / "data.csv").write_text("x\n1\n")
    (release / "model.weights.npz").write_bytes(b"the instructor's")
    (tmp_path / "student.npz").write_bytes(b"the student's")
    course = SimpleNamespace(release_dir=release, submitted_files=("model.weights.npz",))
    box = tmp_path / "box"
    copy_inputs(course, {"model.weights.npz": tmp_path / "student.npz"}, box)
    assert sorted(p.name for p in box.iterdir()) == ["data.csv", "model.weights.npz"]
    assert (box / "model.weights.npz").read_bytes() == b"the student's"
    missing = tmp_path / "missing"
    copy_inputs(course, {}, missing)  # nothing handed in: no file at all, not the release's
    assert sorted(p.name for p in missing.iterdir()) == ["data.csv"]
