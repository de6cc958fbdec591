"""The student's side of a trusted check: `python -m cnnlib.grading.trusted_runner JOB.json`.

Runs inside a sandbox whose cnnlib has the graded reference functions replaced by ones that raise.
It executes the answer cells (and the release's other non-test code cells) in notebook order in a
plain namespace, and at each grade cell's position calls the graded functions on the inputs the
trusted side chose. It writes back only JSON of plain values, one line per check: what each call
returned (as tagged ints, floats, strings, lists, tuples, dicts) or the names of the exception
classes it raised. Nothing the student's code returns is ever unpickled or compared here: the
comparison with the reference happens on the trusted side, outside the sandbox.

`encode` / `decode` are the wire format for both directions (inputs are sent the same way, so a
tuple argument arrives as a tuple).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import signal
import sys

__all__ = ["decode", "encode", "main"]

MAX_ITEMS = 10_000
MAX_DEPTH = 8
MAX_STR = 10_000


def encode(value, depth: int = 0):
    """A plain JSON value describing `value`. Only built-in types' values come out.

    The type is read with type() (which an object cannot fake) and the value through int(),
    float(), str(), which Python guarantees to return real ints, floats and strings.
    """
    kind = type(value)
    if depth > MAX_DEPTH:
        return {"t": "other", "type": "too deep"}
    if value is None:
        return {"t": "none"}
    if issubclass(kind, bool) or kind.__name__ == "bool_":
        return {"t": "bool", "v": bool(value)}
    if issubclass(kind, numbers.Integral):
        return {"t": "int", "v": str(int(value))}
    if issubclass(kind, numbers.Real):
        number = float(value)
        return {"t": "float", "v": number if math.isfinite(number) else repr(number)}
    if issubclass(kind, str):
        return {"t": "str", "v": str.__str__(value)[:MAX_STR]}
    if issubclass(kind, (list, tuple)):
        items = list.__iter__(value) if issubclass(kind, list) else tuple.__iter__(value)
        tag = "list" if issubclass(kind, list) else "tuple"
        out = []
        for i, item in enumerate(items):
            if i >= MAX_ITEMS:
                return {"t": "other", "type": "too long"}
            out.append(encode(item, depth + 1))
        return {"t": tag, "v": out}
    if issubclass(kind, dict):
        pairs = []
        for i, (key, item) in enumerate(dict.items(value)):
            if i >= MAX_ITEMS:
                return {"t": "other", "type": "too long"}
            pairs.append([encode(key, depth + 1), encode(item, depth + 1)])
        return {"t": "dict", "v": pairs}
    if kind.__name__ == "ndarray" and kind.__module__ == "numpy":
        return encode(value.tolist(), depth)
    return {"t": "other", "type": kind.__name__[:100]}


class _Opaque:
    """A value the trusted side cannot use: equal to nothing, so it never passes a check."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __eq__(self, other):
        return False

    __hash__ = object.__hash__

    def __repr__(self):
        return f"<a {self.type_name} object>"


def decode(plain):
    """The inverse of `encode`, building only built-in values (and _Opaque for the rest)."""
    if not isinstance(plain, dict):
        return _Opaque("malformed")
    tag = plain.get("t")
    value = plain.get("v")
    if tag == "none":
        return None
    if tag == "bool":
        return bool(value)
    if tag == "int":
        return int(str(value)[:4000])
    if tag == "float":
        return float(value)
    if tag == "str":
        return str(value)
    if tag in ("list", "tuple") and isinstance(value, list):
        items = [decode(item) for item in value]
        return items if tag == "list" else tuple(items)
    if tag == "dict" and isinstance(value, list):
        out = {}
        for pair in value:
            key = decode(pair[0])
            try:
                out[key] = decode(pair[1])
            except TypeError:  # an unhashable key
                return _Opaque("dict")
        return out
    return _Opaque(str(plain.get("type", tag))[:100])


class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _compile(source: str, name: str):
    try:
        return compile(source, name, "exec")
    except SyntaxError:
        # Notebook magics (%matplotlib, !ls) are IPython syntax: translate them as IPython would.
        from IPython.core.inputtransformer2 import TransformerManager

        return compile(TransformerManager().transform_cell(source), name, "exec")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        job = json.load(f)
    results = open(job["out"], "w", encoding="utf-8")  # noqa: SIM115 (kept open on purpose)
    main_pid = os.getpid()
    # The student's prints go nowhere: the sandbox's log files have a size limit.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    signal.signal(signal.SIGALRM, _on_alarm)

    def emit(record: dict) -> None:
        if os.getpid() == main_pid:  # a forked copy of this process reports nothing
            results.write(json.dumps(record) + "\n")
            results.flush()

    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    sys.path.insert(0, os.getcwd())
    for step in job["steps"]:
        if step["kind"] == "cell":
            signal.setitimer(signal.ITIMER_REAL, float(job["cell_timeout"]))
            try:
                exec(_compile(step["source"], f"<cell {step['index']}>"), namespace)
                error = None
            except _Timeout:
                error = "Timeout"
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                error = type(exc).__name__
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            emit({"cell": step["index"], "error": error})
            continue
        function = namespace.get(step["function"])
        if not callable(function):
            emit({"grade_id": step["grade_id"], "function": step["function"], "missing": True})
            continue
        outcomes = []
        signal.setitimer(signal.ITIMER_REAL, float(job["check_timeout"]))
        try:
            for case in step["cases"]:
                kwargs = decode(case)
                try:
                    got = function(**kwargs)
                    outcomes.append({"ok": encode(got)})
                except _Timeout:
                    raise
                except BaseException as exc:
                    names = [k.__name__ for k in type(exc).__mro__][:20]
                    outcomes.append({"raised": names})
        except _Timeout:
            outcomes.append({"timeout": True})
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        emit({"grade_id": step["grade_id"], "function": step["function"], "outcomes": outcomes})
    emit({"done": True})
    results.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
