"""Phase 2d: `report.md`, the page an instructor reads after grading a class.

What it holds: the class at a glance (count, mean, median), a histogram of the scores in whole
points, each grade cell's pass rate with its most common failing call, the flagged submissions with
their reasons in plain words, the problems (faults and broken files), answers that look copied,
the time each phase took (median and 95th percentile per submission), the fingerprint of the course
secret the hidden inputs came from, and the environment the pre-flight canary checked.
"""

from __future__ import annotations

import collections
import math
import re
import statistics

from cnnlib.grading.course import Settings
from cnnlib.grading.feedback import flag_sentence
from cnnlib.grading.nbrunner import _atomic_write
from cnnlib.grading.probes import REFERENCE_REMOVED

__all__ = ["histogram", "write_report"]


def histogram(scores: list[float], max_score: float, width: int = 40) -> list[str]:
    """Rows of a text histogram in whole points: one row per point up to 40 points, else wider
    bins of a whole number of points each (the label says which scores a row holds)."""
    top = max(0, math.ceil(max_score))
    step = max(1, math.ceil((top + 1) / 40))
    counts = collections.Counter(min(int(s) // step, top // step) for s in scores)
    most = max(counts.values(), default=0) or 1
    lines = []
    for b in range(top // step + 1):
        low, high = b * step, min(top, b * step + step - 1)
        label = f"{low:g}" if low == high else f"{low:g}-{high:g}"
        bar = "#" * round(width * counts.get(b, 0) / most)
        lines.append(f"{label:>7} | {counts.get(b, 0):4d} {bar}")
    return lines


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def _timing_rows(records: list[dict], phase2: list[float]) -> list[str]:
    fresh = [r for r in records if not r.get("cached")]
    phases = [
        ("validate and assemble", [r.get("timing_checked_s") for r in fresh]),
        ("notebook in the sandbox", [r.get("timing_sandbox_s") for r in fresh]),
        ("trusted checks", [r.get("timing_trusted_s") for r in fresh]),
        ("phase 1 in all", [r.get("timing_total_s") for r in fresh]),
        ("gradebook and feedback", phase2),
        ("CPU: notebook (as the sandbox reports it)",
         [(r.get("notebook") or {}).get("cpu_s") for r in fresh]),
        ("CPU: trusted checks (likewise)",
         [(r.get("trusted_run") or {}).get("cpu_s") for r in fresh]),
    ]  # fmt: skip
    rows = ["| phase (per submission) | n | median (s) | 95th percentile (s) |",
            "| --- | --- | --- | --- |"]  # fmt: skip
    for name, values in phases:
        values = [v for v in values if isinstance(v, int | float)]
        if values:
            rows.append(f"| {name} | {len(values)} | {statistics.median(values):.2f} | "
                        f"{_percentile(values, 0.95):.2f} |")  # fmt: skip
    return rows


_CALL = re.compile(r"^(.*?\)(?: then \w+\(dout, cache\))?)(?::| raised| returned| changed| took)")


def _failing_call(reason: str) -> str:
    """What a failure is, in a few words: the call that went wrong, or why nothing was called."""
    if "not implemented yet" in reason:
        return "not implemented"
    if reason.startswith("not checked"):
        return "not checked (the run stopped before)"
    if REFERENCE_REMOVED in reason:
        return "calls cnnlib's reference"
    if "is not defined" in reason:
        return reason.split(" (")[0]
    match = _CALL.match(reason)
    return match.group(1) if match else reason.split(":")[0][:120]


def write_report(settings: Settings, entries, records, info: dict) -> None:
    """info: fingerprint, layout, canary, copies, timings (phase1_s, phase2_s, per-student phase 2
    times), unsafe, workers."""
    scores = [e["score"] for e in entries]
    max_score = entries[0]["max_score"] if entries else 0
    mean = sum(scores) / len(scores) if scores else 0.0
    median = statistics.median(scores) if scores else 0.0
    lines = [
        f"# Grading report: {settings.assignment_id}",
        "",
        f"{len(entries)} submissions ({info['layout']} layout), mean {mean:.2f} and median "
        f"{median:g} of {max_score:g} points; workers: {settings.workers}; sandbox: "
        f"{'NONE (unsafe)' if settings.unsafe else 'bubblewrap'}.",
        f"Hidden inputs from the course secret with fingerprint `{info['fingerprint']}`: a "
        "regrade with the same fingerprint checks every submission on the same inputs.",
        "",
        "## Scores",
        "",
        "```",
        *histogram(scores, max_score),
        "```",
        "",
        "## Grade cells",
        "",
        "| cell | points | passed | most common failure (how many) |",
        "| --- | --- | --- | --- |",
    ]
    cell_ids = list(entries[0]["cells"]) if entries else []
    for grade_id in cell_ids:
        cells = [e["cells"].get(grade_id, {}) for e in entries]
        if any(c.get("manual") for c in cells):
            pending = sum(1 for e in entries if e["scores"].get(grade_id) is None)
            lines.append(f"| `{grade_id}` | {cells[0].get('points', 0):g} | graded by hand, "
                         f"{pending} pending | |")  # fmt: skip
            continue
        passed = sum(1 for c in cells if c.get("trusted", {}).get("passed"))
        failures = collections.Counter(
            _failing_call(str(c.get("trusted", {}).get("reason") or ""))
            for c in cells if c and not c.get("trusted", {}).get("passed")
        )  # fmt: skip
        common = ""
        if failures:
            call, count = failures.most_common(1)[0]
            common = f"`{call.replace('|', '/')[:160]}` ({count})"
        points = cells[0].get("points", 0) if cells else 0
        lines.append(f"| `{grade_id}` | {points:g} | {passed}/{len(entries)} | {common} |")
    lines += ["", "## Flagged submissions (evidence of tampering; flags never change a score)", ""]
    flagged = [e for e in entries if e["flags"]]
    lines += [] if flagged else ["None."]
    for e in flagged:
        lines.append(f"- **{e['student_id']}** ({e['score']:g}/{max_score:g}): "
                     f"{', '.join(e['flags'])}")  # fmt: skip
        for flag in e["flags"]:
            lines.append(f"  - {flag_sentence(flag)}")
            cell = flag.partition(":")[2]
            reason = e["cells"].get(cell, {}).get("trusted", {}).get("reason")
            if reason:
                lines.append(f"    (the grader's run: {str(reason)[:300]})")
    lines += ["", "## Problems (faults and files; they cost the points they cost)", ""]
    troubled = [e for e in entries if e["problems"]]
    lines += [] if troubled else ["None."]
    for e in troubled:
        lines.append(f"- **{e['student_id']}** ({e['score']:g}/{max_score:g}): "
                     f"{', '.join(e['problems'])}")  # fmt: skip
        if e.get("problem_message"):
            lines.append(f"  - {e['problem_message'].strip().splitlines()[-1][:400]}")
        if e.get("notebook_reason"):
            lines.append(f"  - {e['notebook_reason'][:400]}")
    lines += ["", "## Answers that look copied (never changes a score)", ""]
    lines += info.get("copies") or ["Not checked."]
    lines += ["", "## Time", "", *_timing_rows(records, info["timings"]["phase2_each"]), ""]
    t = info["timings"]
    lines.append(f"Phase 1 took {t['phase1_s']:.1f} s ({t['graded_now']} graded now, "
                 f"{t['reused']} reused), phase 2 {t['phase2_s']:.1f} s.")  # fmt: skip
    lines += ["", "## Environment (checked by the pre-flight canary)", ""]
    for key, value in (info.get("canary") or {}).items():
        lines.append(f"- {key}: {value}")
    lines.append("")
    _atomic_write(settings.out / "report.md", "\n".join(lines))
