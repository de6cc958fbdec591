"""Probes: how a check exercises the student's code on one case, and how an outcome is judged.

A probe runs the same way on both sides of the sandbox wall: in the student's namespace (the grade
cell's hidden tests in the kernel, and the grader's trusted run) and in a namespace of reference
functions (the grader's own process), so the expected outcome is whatever the reference does.

- `Call("f")`: `f(**case)`.
- `ForwardBackward("layer_forward", "layer_backward")`: case `{"inputs": {...}, "dout": array}`;
  `out, cache = forward(**inputs)`, then `grads = backward(dout, cache)`; the outcome is
  `{"out": out, "grads": grads}`. The backward pass is judged on the student's own cache.
- `Forward("layer_forward")` and `Backward("layer_forward", "layer_backward")`: the two halves
  of a layer graded in cells of their own. `Forward`: `out, cache = forward(**case)`, the
  outcome is `out`. `Backward`: the case of `ForwardBackward`, the outcome is the gradients
  (a tuple, one per array argument of the forward); only the backward is its subject, so name
  the forward in the check's `plug_in` and an error in the forward costs the forward's cell only.
- `Probe(function, subjects=(...))`: any function `probe(ns, **case)` written in a checks file;
  `ns["name"]` is the student's (or the reference's) `name`. It travels as source text, so it must
  be self-contained (imports inside it).

`run_case` turns a call into an outcome: {"value": v} or {"raised": [exception class names],
"message": str} or {"missing": name}, plus "mutated": the names of array inputs the call changed.
`judge` compares a student's outcome with the expected one and says what went wrong.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import textwrap
from collections.abc import Callable, Mapping

import numpy as np

from cnnlib.grading.compare import describe

__all__ = [
    "REFERENCE_REMOVED",
    "Backward",
    "Call",
    "Forward",
    "ForwardBackward",
    "Namespace",
    "NotDefined",
    "Probe",
    "call_text",
    "judge",
    "probe_from_spec",
    "run_case",
]

# What cnnlib's reference functions raise in the grader's trusted sandbox (see course.neutered).
REFERENCE_REMOVED = "the grader removed cnnlib's reference implementation here: write your own"


class NotDefined(LookupError):
    """The student's namespace has no such name (the cell that defines it did not run?)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class Namespace(Mapping):
    """A read-only view of a namespace for probes: a missing name raises `NotDefined`."""

    def __init__(self, names: Mapping):
        self._names = names

    def __getitem__(self, name):
        try:
            value = self._names[name]
        except KeyError:
            raise NotDefined(name) from None
        if not callable(value):
            raise NotDefined(name)
        return value

    def __iter__(self):
        return iter(self._names)

    def __len__(self):
        return len(self._names)


@dataclasses.dataclass(frozen=True)
class Call:
    """`function(**case)`."""

    function: str

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.function,)

    def run(self, ns: Mapping, case: dict):
        return ns[self.function](**case)

    def describe_call(self, case: dict) -> str:
        return call_text(self.function, case)

    def spec(self) -> dict:
        return {"kind": "call", "function": self.function}


@dataclasses.dataclass(frozen=True)
class ForwardBackward:
    """A layer: `out, cache = forward(**inputs)`, `grads = backward(dout, cache)`."""

    forward: str
    backward: str

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.forward, self.backward)

    def run(self, ns: Mapping, case: dict):
        out, cache = _forward(ns, self.forward, case["inputs"])
        return {"out": out, "grads": _backward(ns, self.backward, case["dout"], cache)}

    def describe_call(self, case: dict) -> str:
        forward = call_text(self.forward, case["inputs"])
        return f"{forward} then {self.backward}(dout, cache)"

    def spec(self) -> dict:
        return {"kind": "forward_backward", "forward": self.forward, "backward": self.backward}


def _forward(ns: Mapping, name: str, inputs: dict):
    """`out, cache = ns[name](**inputs)`, or a TypeError saying what a forward must return."""
    result = ns[name](**inputs)
    if not isinstance(result, tuple) or len(result) != 2:
        raise TypeError(f"{name} must return (out, cache), got {describe(result)}")
    return result


def _backward(ns: Mapping, name: str, dout, cache) -> tuple:
    """The gradients `ns[name](dout, cache)` returns, always as a tuple (one gradient or more)."""
    grads = ns[name](dout, cache)
    return tuple(grads) if isinstance(grads, tuple | list) else (grads,)


@dataclasses.dataclass(frozen=True)
class Forward:
    """A layer's forward pass alone: `out, cache = function(**case)`; the outcome is `out`."""

    function: str

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.function,)

    def run(self, ns: Mapping, case: dict):
        return _forward(ns, self.function, case)[0]

    def describe_call(self, case: dict) -> str:
        return call_text(self.function, case)

    def spec(self) -> dict:
        return {"kind": "forward", "function": self.function}


@dataclasses.dataclass(frozen=True)
class Backward:
    """A layer's backward pass, on the cache of the forward: the outcome is the gradients.

    The case is `ForwardBackward`'s, `{"inputs": {...}, "dout": array}`. Only the backward is
    the subject: put the forward in the check's `plug_in`, so that where the student's forward
    failed its own check, the solution's makes the cache (in the layout the assignment asks for).
    """

    forward: str
    backward: str

    @property
    def subjects(self) -> tuple[str, ...]:
        return (self.backward,)

    def run(self, ns: Mapping, case: dict):
        _, cache = _forward(ns, self.forward, case["inputs"])
        return _backward(ns, self.backward, case["dout"], cache)

    def describe_call(self, case: dict) -> str:
        forward = call_text(self.forward, case["inputs"])
        return f"{forward} then {self.backward}(dout, cache)"

    def spec(self) -> dict:
        return {"kind": "backward", "forward": self.forward, "backward": self.backward}


@dataclasses.dataclass(frozen=True)
class Probe:
    """A custom probe `function(ns, **case)` from a checks file; `subjects`: the names it grades."""

    function: Callable
    subjects: tuple[str, ...] = ()
    title: str = ""

    def run(self, ns: Mapping, case: dict):
        return self.function(ns, **case)

    def describe_call(self, case: dict) -> str:
        return call_text(self.title or self.function.__name__, case)

    def spec(self) -> dict:
        source = textwrap.dedent(inspect.getsource(self.function))
        return {
            "kind": "script", "source": source, "name": self.function.__name__,
            "subjects": list(self.subjects), "title": self.title,
        }  # fmt: skip


def probe_from_spec(spec: dict):
    """The probe a `spec()` describes (a script probe's source is executed here)."""
    kind = spec.get("kind")
    if kind == "call":
        return Call(str(spec["function"]))
    if kind == "forward_backward":
        return ForwardBackward(str(spec["forward"]), str(spec["backward"]))
    if kind == "forward":
        return Forward(str(spec["function"]))
    if kind == "backward":
        return Backward(str(spec["forward"]), str(spec["backward"]))
    if kind == "script":
        names: dict = {"__name__": "cnnlib_grading_probe"}
        exec(compile(spec["source"], f"<probe {spec['name']}>", "exec"), names)
        return Probe(names[spec["name"]], tuple(spec.get("subjects", ())), spec.get("title", ""))
    raise ValueError(f"spec: unknown probe kind {kind!r}")


# --------------------------------------------------------------------------- running a case


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        return f"<array {tuple(value.shape)} {value.dtype}>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple) and any(isinstance(v, np.ndarray | dict) for v in value):
        inner = ", ".join(_short(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


def call_text(name: str, case: Mapping) -> str:
    """`name(a=1, x=<array (2, 3) float64>)`: the call, short enough for a message."""
    return f"{name}({', '.join(f'{k}={_short(v)}' for k, v in case.items())})"


def _arrays(value, path: str = ""):
    if isinstance(value, np.ndarray):
        yield path or "input", value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _arrays(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _arrays(item, f"{path}[{i}]")


def run_case(probe, ns: Mapping, case: dict) -> dict:
    """Run `probe` on one case; the outcome (see the module docstring). The case is copied first."""
    case = copy.deepcopy(case)
    before = [(name, array.copy()) for name, array in _arrays(case)]
    try:
        outcome = {"value": probe.run(ns, case)}
    except NotDefined as missing:
        outcome = {"missing": missing.name}
    except Exception as error:
        names = [k.__name__ for k in type(error).__mro__][:20]
        outcome = {"raised": names, "message": str(error)[:500]}
    after = dict(_arrays(case))
    mutated = [
        name for name, old in before
        if name in after and not np.array_equal(after[name], old, equal_nan=True)
    ]  # fmt: skip
    if mutated:
        outcome["mutated"] = mutated
    return outcome


# --------------------------------------------------------------------------- judging


def judge(probe, case: dict, expected: dict, got: dict, compare, *, mutation: bool = True):
    """Why the student's outcome `got` differs from the `expected` one; None when they agree.

    expected/got: outcomes of `run_case` (values decoded). Where the reference raised a
    ValueError or TypeError, the student must raise the same kind of error.
    """
    call = probe.describe_call(case)
    if "missing" in got:
        return f"{got['missing']} is not defined (did the cell that defines it run?)"
    if "raised" in got:
        raised = [str(n) for n in got["raised"]] if isinstance(got["raised"], list) else []
        message = str(got.get("message", ""))
        if "NotImplementedError" in raised:
            return f"{call}: not implemented yet (it raised NotImplementedError)"
        if REFERENCE_REMOVED in message:
            return f"{call} raised RuntimeError: {message}"
        if "raised" in expected and expected["raised"][0] in raised:
            return None
        got_text = f"raised {raised[0] if raised else 'an exception'}"
        got_text += f": {message}" if message else ""
        if "raised" in expected:
            return f"{call} {got_text}, but it should raise {expected['raised'][0]}"
        return f"{call} {got_text}, but it should return {describe(expected['value'])}"
    if "raised" in expected:
        return (
            f"{call} returned {describe(got.get('value'))}, but it should raise "
            f"{expected['raised'][0]} ({expected.get('message', '')})"
        )
    if mutation and got.get("mutated"):
        return (
            f"{call} changed its input {got['mutated'][0]}: a function must leave the arrays it "
            "is given unchanged (work on a copy)"
        )
    why = compare.explain(got.get("value"), expected.get("value"))
    return None if why is None else f"{call}: {why}"
