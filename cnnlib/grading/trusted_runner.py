"""The student's side of the trusted checks: `python -m cnnlib.grading.trusted_runner`.

Runs inside a sandbox whose cnnlib has the blocked reference functions replaced by ones that raise.
It takes one step at a time from the grader (a JSON line on stdin) and answers each with one JSON
line of plain values (see `wire`), so the grader decides every next step after judging the last
one, outside the sandbox. That is what lets it plug the solution's version of an earlier function
into a later check only once the student's own version has been judged, without that code ever
being in the sandbox before then.

Steps:
- `cell`: execute a code cell (the answer cells and the release's other code cells, in notebook
  order) in one plain namespace; answer `{"error": exception class name or None}`.
- `check`: run a probe on each case in that namespace; answer `{"outcomes": [...]}`, each outcome
  `{"ok": encoded value}` or `{"raised": [...], "message": ...}` or `{"missing": name}`, with
  "mutated" where an input array changed, and `{"timeout": true}` last if time ran out.
- `plug` / `unplug`: bind names to the versions a source text defines, for the checks until
  `unplug`, then restore the student's.
- `end`.

Nothing here is trusted by the grader: a student's code can write to the same channel, but what
it writes is only ever parsed as JSON and compared with the reference outside.
"""

from __future__ import annotations

import json
import os
import signal
import sys

__all__ = ["main"]


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


def _run_cell(namespace: dict, step: dict) -> dict:
    signal.setitimer(signal.ITIMER_REAL, float(step["timeout"]))
    try:
        exec(_compile(step["source"], f"<cell {step['index']}>"), namespace)
        error = None
    except _Timeout:
        error = "Timeout"
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included
        error = type(exc).__name__
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"error": error}


def _run_check(namespace: dict, step: dict) -> dict:
    from cnnlib.grading import wire
    from cnnlib.grading.probes import Namespace, probe_from_spec, run_case

    outcomes = []
    signal.setitimer(signal.ITIMER_REAL, float(step["timeout"]))
    try:
        probe = probe_from_spec(step["probe"])
        names = Namespace(namespace)
        for case in step["cases"]:
            outcome = run_case(probe, names, wire.decode(case))
            if "value" in outcome:
                outcome["ok"] = wire.encode(outcome.pop("value"))
            outcomes.append(outcome)
    except _Timeout:
        outcomes.append({"timeout": True})
    except BaseException as exc:  # the probe itself could not be built
        outcomes.append({"raised": [type(exc).__name__], "message": str(exc)[:500]})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"outcomes": outcomes}


def _plug(namespace: dict, saved: dict, step: dict) -> dict:
    scratch = dict(namespace)
    try:
        exec(_compile(step["source"], "<plug-in>"), scratch)
    except BaseException as exc:
        return {"error": type(exc).__name__}
    plugged = []
    for name in step["names"]:
        if name in scratch:
            saved.setdefault(name, namespace.get(name, _MISSING))
            namespace[name] = scratch[name]
            plugged.append(name)
    return {"plugged": plugged}


def _unplug(namespace: dict, saved: dict) -> dict:
    for name, value in saved.items():
        if value is _MISSING:
            namespace.pop(name, None)
        else:
            namespace[name] = value
    saved.clear()
    return {}


_MISSING = object()


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def main(argv: list[str] | None = None) -> int:
    # Our own handles on the channel; the student's prints (fd 1, 2) and reads (fd 0) go nowhere.
    commands = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    main_pid = os.getpid()
    signal.signal(signal.SIGALRM, _on_alarm)
    namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
    saved: dict = {}
    sys.path.insert(0, os.getcwd())
    while True:
        line = commands.readline()
        if not line:
            return 0
        step = json.loads(line)
        kind = step.get("kind")
        if kind == "end":
            answer = {"cpu_s": _cpu_seconds()}
        elif kind == "cell":
            answer = _run_cell(namespace, step)
        elif kind == "check":
            answer = _run_check(namespace, step)
        elif kind == "plug":
            answer = _plug(namespace, saved, step)
        elif kind == "unplug":
            answer = _unplug(namespace, saved)
        else:
            answer = {"error": f"unknown step {kind!r}"}
        if os.getpid() != main_pid:  # a forked copy of this process answers nothing
            os._exit(0)
        answers.write(json.dumps({"seq": step.get("seq"), **answer}) + "\n")
        answers.flush()
        if kind == "end":
            return 0


if __name__ == "__main__":
    sys.exit(main())
