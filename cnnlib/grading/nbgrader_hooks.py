"""Preprocessors that slot our sandboxed run into nbgrader's own autograde and feedback.

- `LoadExecuted` takes the place of nbgrader's Execute in `Autograde.autograde_preprocessors`: it
  puts in the outputs of the run that already happened in the sandbox (phase 1), so nbgrader's
  OverwriteCells, SaveAutoGrades, gradebook and formgrader work as usual, but nothing executes in
  the grader's own process.
- `ScrubFeedback` runs last in `GenerateFeedback.preprocessors`: grade cells show the released
  source (no hidden tests), and every output line that echoes a hidden-test or solution line is
  dropped; tracebacks shrink to their last line; rich outputs that could hide text (HTML,
  Markdown, JavaScript) are dropped.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Unicode

__all__ = ["LoadExecuted", "ScrubFeedback", "Scrubber", "secret_lines"]

BLOCK = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", flags=re.S)
MARKER = re.compile(r"### (BEGIN|END) (SOLUTION|HIDDEN TESTS)")
MIN_SUBSTRING = 12  # shorter secret lines only match whole output lines


def _lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if line.strip()}


def secret_lines(source_nb) -> list[str]:
    """Lines that only the solution and hidden-test blocks of the source notebook hold."""
    secret, public = set(), set()
    for cell in source_nb.cells:
        for block in BLOCK.finditer(cell.source):
            secret |= _lines(block.group(2))
        public |= _lines(BLOCK.sub("", cell.source))
    return sorted(secret - public)


class LoadExecuted(Preprocessor):
    """Outputs from `<work_dir>/<student>/executed.ipynb` (already checked cell by cell)."""

    enabled = Bool(True).tag(config=True)
    work_dir = Unicode("", help="the grader's phase-1 work folder").tag(config=True)

    def preprocess(self, nb, resources):
        student = resources["nbgrader"]["student"]
        path = Path(self.work_dir) / student / "executed.ipynb"
        executed = nbformat.read(path, as_version=4)
        ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
        done = [c.metadata.get("nbgrader", {}).get("grade_id") for c in executed.cells]
        if len(executed.cells) != len(nb.cells) or ids != done:
            raise ValueError(f"{path}: the executed notebook does not match the submission")
        for cell, ran in zip(nb.cells, executed.cells, strict=True):
            if cell.cell_type == "code":
                cell.outputs = ran.outputs
                cell.execution_count = ran.execution_count
        return nb, resources


class Scrubber:
    """Drops every line of a text that echoes a hidden-test or solution line.

    secrets_file: JSON with "secret_lines" (see `secret_lines`) and "released_sources".
    """

    def __init__(self, secrets_file: str | Path):
        data = json.loads(Path(secrets_file).read_text())
        self._secrets = [s for s in data["secret_lines"] if s]
        self._long = [s for s in self._secrets if len(s) >= MIN_SUBSTRING]
        self._exact = set(self._secrets)
        self.released = data["released_sources"]

    def _leaks(self, line: str) -> bool:
        stripped = line.strip()
        if not stripped:
            return False
        if stripped in self._exact or MARKER.search(line):
            return True
        plain = html.unescape(stripped)
        return any(secret in stripped or secret in plain for secret in self._long)

    def scrub_text(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        kept = [line for line in lines if not self._leaks(line)]
        dropped = len(lines) - len(kept)
        if dropped:
            kept.append(f"[{dropped} line(s) removed by the grader: they echo hidden tests]\n")
        return "".join(kept)


class ScrubFeedback(Preprocessor):
    """Keep hidden tests and solution code out of the feedback a student gets."""

    enabled = Bool(True).tag(config=True)
    secrets_file = Unicode("", help="JSON: secret lines and released grade-cell sources").tag(
        config=True
    )

    def scrub_text(self, text: str) -> str:
        return self._scrubber.scrub_text(text)

    def _scrub_output(self, output):
        if output.output_type == "stream":
            output.text = self.scrub_text(output.text)
            return output
        if output.output_type == "error":
            # The traceback shows the source of the failing cell: keep only its last line.
            summary = f"{output.ename}: {output.evalue}"
            output.traceback = [self.scrub_text(summary)]
            output.evalue = self.scrub_text(output.evalue)
            return output
        data = {}
        for mime, value in output.get("data", {}).items():
            if mime == "text/plain":
                data[mime] = self.scrub_text(value if isinstance(value, str) else "".join(value))
            elif mime.startswith("image/") and mime != "image/svg+xml":
                data[mime] = value
        output.data = data
        return output if data else None

    def preprocess(self, nb, resources):
        self._scrubber = Scrubber(self.secrets_file)
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id in self._scrubber.released:
                cell.source = self._scrubber.released[grade_id]
            if cell.cell_type == "code":
                outputs = [self._scrub_output(o) for o in cell.outputs]
                cell.outputs = [o for o in outputs if o is not None]
        return nb, resources
