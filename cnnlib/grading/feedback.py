"""Phase 2b: each student's feedback, in plain words, on top of nbgrader's (scrubbed) feedback.

Per grade cell: points, passed or not, and what the grader found (the call that went wrong, what
came back and what was expected; or why it was not checked); a sentence for each flag and each
problem. The scores are read from the gradebook, so a score an instructor set by hand shows.
No hidden-test or solution line ever appears: nbgrader's part is scrubbed by `ScrubFeedback`, and
our notes (which quote what the student's code returned) go through the same filter.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

from cnnlib.grading.course import Course, Settings
from cnnlib.grading.execute import read_json
from cnnlib.grading.nbgrader_hooks import Scrubber
from cnnlib.grading.nbrunner import _atomic_write
from cnnlib.grading.probes import REFERENCE_REMOVED

__all__ = ["FLAG_WORDS", "PROBLEM_WORDS", "cell_result", "flag_sentence", "write_feedback"]

FLAG_WORDS = {
    "locked_cell_edited": "A locked cell of the assignment had been edited; the grader restored "
    "the original and ran that instead.",
    "locked_cell_deleted": "A locked cell of the assignment had been deleted; the grader put the "
    "original back and ran it.",
    "locked_cell_metadata_stripped": "A locked cell had lost its nbgrader metadata (it was "
    "copied or re-created); the grader ran the original.",
    "calls_reference": "{cell}: your code calls cnnlib's reference implementation, which the "
    "grader removes while it checks your code. Write your own.",
    "disguised_value": "{cell}: your function returned an object whose type only pretends to "
    "be a plain value (an int or list that compares equal to anything, say). The grader compares "
    "plain values.",
    "nbgrader_pass_trusted_fail": "{cell}: the hidden tests passed in your notebook's own run, "
    "but the grader's run of the very same tests on your code failed. The grader's run counts.",
    "copy_of_reference": "{cell}: the answer is a near-copy of the course library's own code.",
    "near_identical": "{cell}: the answer is nearly identical to another student's.",
}
PROBLEM_WORDS = {
    "notebook_missing": "No notebook for this assignment was found in the submission.",
    "notebook_empty": "The notebook file is empty (0 bytes): was it saved before it was handed in?",
    "notebook_invalid_json": "The notebook file is damaged (it is not valid JSON).",
    "notebook_invalid": "The file handed in is not a Jupyter notebook.",
    "notebook_oversize": "The notebook file is too large to grade: clear large outputs, save, and "
    "hand it in again.",
    "wrong_assignment": "This is a notebook of another assignment.",
    "notebook_renamed": "The notebook had another name than the assignment's; it was graded "
    "anyway.",
    "notebook_not_nbformat_valid": "The notebook does not follow the notebook format exactly; it "
    "was graded anyway.",
    "answer_missing": "An answer cell was missing; the release's empty answer was graded instead.",
    "answer_metadata_stripped": "An answer cell had lost its nbgrader metadata; the grader found "
    "it by the functions it defines.",
    "cells_reordered": "Cells had been moved; the grader ran them in the release's order.",
    "wall_budget_exceeded": "The notebook ran longer than the time allowed and was stopped; what "
    "came after that point was not graded.",
    "kernel_died": "The Python kernel died (it exited or crashed) while running the notebook; "
    "what came after that point was not graded.",
    "memory_limit": "The code ran out of memory (MemoryError).",
    "output_limit": "A cell printed so much that the grader stopped the kernel.",
    "output_truncated": "Some cells printed more than the grader keeps; their output was cut.",
    "runner_failed": "The notebook run stopped unexpectedly.",
    "grader_error": "The grader itself failed on this submission; your instructor can see why.",
}


def flag_sentence(flag: str) -> str:
    name, _, cell = flag.partition(":")
    sentence = FLAG_WORDS.get(name) or PROBLEM_WORDS.get(name) or name
    return sentence.format(cell=cell.split(":")[0] or "a cell")


def cell_result(cell: dict, score: float | None, by_hand: bool = True) -> str:
    """What the grader found for one grade cell, for the student (by_hand: an instructor set the
    score of this written answer)."""
    if cell.get("manual"):
        if score is None:
            return "waiting for your instructor to grade it"
        if not by_hand:
            return "no answer: the cell is as it was released"
        return "graded by your instructor"
    verdict = cell.get("trusted") or {}
    if verdict.get("passed"):
        text = f"passed ({verdict.get('cases', 0)} hidden cases)"
    else:
        reason = str(verdict.get("reason") or "failed")
        if REFERENCE_REMOVED in reason:
            text = "Your code calls cnnlib's reference implementation, which the grader removes: "
            text += "write your own. (" + reason + ")"
        elif reason.startswith("not checked") or "not defined" in reason or (
            "not implemented yet" in reason or "took too long" in reason
        ):
            text = reason[0].upper() + reason[1:]
        else:
            text = "The hidden tests found an input your code gets wrong: " + reason
        if verdict.get("hint"):
            text += f" Hint: {verdict['hint']}"
        if verdict.get("plugged"):
            used = ", ".join(verdict["plugged"])
            text += f" (This check used the solution's {used} in place of yours, so an earlier "
            text += "mistake costs nothing here.)"
    if score is not None and cell.get("auto") is not None and score != cell["auto"]:
        text += f" Your instructor set the score to {score:g}."
    return text


def notes_html(entry: dict, scrubber: Scrubber) -> str:
    """The grader's notes block (scores from the gradebook, words from the records)."""
    rows = []
    for grade_id, cell in entry["cells"].items():
        score = entry["scores"].get(grade_id)
        shown = "pending" if score is None else f"{score:g}"
        by_hand = entry.get("by_hand", {}).get(grade_id, True)
        text = scrubber.scrub_text(cell_result(cell, score, by_hand))
        rows.append(
            f"<tr><td><code>{html.escape(grade_id)}</code></td>"
            f"<td>{shown} / {cell['points']:g}</td><td>{html.escape(text)}</td></tr>"
        )
    pending = sum(1 for s in entry["scores"].values() if s is None)
    title = f"Grade: {entry['score']:g} / {entry['max_score']:g}"
    if pending:
        title += f" ({pending} answer{'s' if pending > 1 else ''} still to be graded by hand)"
    parts = [f"<h2>{html.escape(title)}</h2>"]
    if rows:
        parts.append(
            "<table><tr><th>cell</th><th>points</th><th>what the grader found</th></tr>"
            + "".join(rows) + "</table>"
        )
    notes = [flag_sentence(f) for f in entry["flags"]] + [
        flag_sentence(p) for p in entry["problems"]
    ]
    if entry.get("problem_message") and entry.get("problem") != "grader_error":
        notes.append(entry["problem_message"])
    if entry.get("notebook_reason"):
        notes.append(entry["notebook_reason"])
    if notes:
        parts.append("<ul>" + "".join(
            f"<li>{html.escape(scrubber.scrub_text(n))}</li>" for n in dict.fromkeys(notes)
        ) + "</ul>")  # fmt: skip
    body = "".join(parts)
    return f'<div id="cnnlib-grader-notes" style="border:2px solid #c60;padding:8px">{body}</div>'


def write_feedback(settings: Settings, course: Course, converter, entry: dict) -> Path:
    """The student's feedback HTML (nbgrader's, scrubbed) with the grader's notes on top.

    converter: nbgrader's GenerateFeedback (`course.converters`). Rewritten only when the notes or
    the record changed since the last time (a stamp beside it).
    """
    aid, student = settings.assignment_id, entry["student_id"]
    dest = settings.out / "feedback" / student
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{Path(course.notebook_name).stem}.html"
    scrubber = Scrubber(settings.out / "nbgrader" / "secrets.json")
    notes = notes_html(entry, scrubber)
    stamp_path = settings.out / "work" / student / "feedback.json"
    digest = hashlib.sha256((notes + str(entry.get("key"))).encode()).hexdigest()
    if target.is_file() and read_json(stamp_path).get("digest") == digest:
        return target
    produced = None
    if not entry.get("problem"):
        error = converter.run(aid, student)
        produced = settings.out / "nbgrader" / "feedback" / student / aid / target.name
        if error is not None or not produced.is_file():
            produced = None
    if produced is not None:
        text = produced.read_text(encoding="utf-8")
        at = text.find(">", text.find("<body")) + 1 if "<body" in text else 0
        text = text[:at] + notes + text[at:]
    else:
        text = (
            f"<html><body><h1>{html.escape(aid)}: {html.escape(student)}</h1>{notes}</body></html>"
        )
    _atomic_write(target, text)
    if stamp_path.parent.is_dir():
        _atomic_write(stamp_path, f'{{"digest": "{digest}"}}')
    return target
