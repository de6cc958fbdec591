"""Copy detection: near-copies of cnnlib's source, and pairs of near-identical answers.

The course library ships its reference implementations, so a student can paste one. Renaming
variables, reformatting and rewriting comments should not hide that, and an honest one-line formula
that half the class writes the same way must not look like copying. So:

1. Each answer is reduced to its tokens with comments, docstrings and whitespace gone, the
   starter code (the release's answer cell) removed, and every local name replaced by one and the
   same placeholder (so renaming hides nothing, and neither does deleting a line, which would
   shift names numbered by first appearance); keywords, builtins, attributes (`.shape`) and
   module names (`np`) are kept.
2. Answers are compared as sets of K-token shingles. A shingle that many answers to the same cell
   hold (more than COMMON_SHARE of them, and at least COMMON_MIN) is the exercise's own idiom and
   is dropped; an answer is compared only when MIN_TOKENS tokens' worth of its own are left
   (short answers, and answers everyone writes alike, are not distinctive).
3. It is a near-copy of the reference when at least REFERENCE_SHARE of its shingles occur in one
   function of cnnlib's source (normalised the same way); two students' answers to the same cell
   are near-identical when their shingle sets overlap by at least PAIR_SHARE (Jaccard).

Findings go to the report with the lines that matched. They never change a score: a person decides.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import io
import itertools
import json
import keyword
import textwrap
import tokenize
from collections import defaultdict
from pathlib import Path

from cnnlib.grading.nbrunner import _atomic_write

__all__ = [
    "COMMON_SHARE", "MIN_TOKENS", "PAIR_SHARE", "REFERENCE_SHARE", "Finding", "find_copies",
    "normalise",
]  # fmt: skip

K = 8
MIN_TOKENS = 60
# With every name one placeholder, an honest stable softmax written the usual way (the a2
# solution's) shares 75% of its shingles with cnnlib's; the reference pasted and renamed, 89%.
REFERENCE_SHARE = 0.8
PAIR_SHARE = 0.8
COMMON_SHARE, COMMON_MIN = 0.1, 3
_MODULES = {"np", "numpy", "math", "torch", "nn", "F", "self"}
_KEEP = set(keyword.kwlist) | set(dir(builtins)) | _MODULES


@dataclasses.dataclass
class Finding:
    kind: str  # "copy_of_reference" or "near_identical"
    grade_id: str
    student: str
    other: str  # the cnnlib function, or the other student
    share: float
    lines: list[str]


def _docstring_lines(source: str) -> set[int]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and (
                isinstance(first.value.value, str)
            ):
                lines |= set(range(first.lineno, first.end_lineno + 1))
    return lines


def normalise(source: str) -> list[tuple[str, int]]:
    """(token, line number) pairs of `source`, normalised as the module docstring says."""
    skip = _docstring_lines(source)
    out = []
    previous = ""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    for tok in tokens:
        line = tok.start[0]
        if line in skip or tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT,
                                        tokenize.DEDENT, tokenize.ENDMARKER, tokenize.NEWLINE):
            continue  # fmt: skip
        text = tok.string
        if tok.type == tokenize.STRING:
            text = "STR"
        elif tok.type == tokenize.NAME and text not in _KEEP and previous != ".":
            text = "v"
        out.append((text, line))
        previous = tok.string
    return out


def _shingles(tokens: list[tuple[str, int]]) -> dict[tuple, list[int]]:
    found: dict[tuple, list[int]] = {}
    for i in range(len(tokens) - K + 1):
        window = tokens[i : i + K]
        found.setdefault(tuple(t for t, _ in window), [line for _, line in window])
    return found


def _answer(source: str, starter: str) -> dict[tuple, list[int]]:
    shingles = _shingles(normalise(source))
    for shingle in _shingles(normalise(starter)):
        shingles.pop(shingle, None)
    return shingles


def _lines(source: str, shingles: dict[tuple, list[int]], matched: set) -> list[str]:
    numbers = sorted({n for s in matched for n in shingles[s]})
    text = source.splitlines()
    return [text[n - 1].rstrip() for n in numbers if 0 < n <= len(text) and text[n - 1].strip()]


def _library_functions(package_dir: Path, cache: Path | None = None) -> dict[str, set]:
    """cnnlib function name -> its shingles, for every function in the package's source.

    Tokenising the whole library takes seconds; with `cache` (a JSON file) it is done once per
    version of the library (the key is a hash of its sources).
    """
    from cnnlib.grading.course import hash_tree

    key = hash_tree(package_dir)
    if cache is not None and cache.is_file():
        try:
            stored = json.loads(cache.read_text())
            if stored.get("key") == key:
                return {name: {tuple(s.split("\x1f")) for s in shingles}
                        for name, shingles in stored["functions"].items()}  # fmt: skip
        except (ValueError, KeyError, AttributeError):
            pass
    functions = {}
    for path in sorted(package_dir.rglob("*.py")):
        if "grading" in path.relative_to(package_dir).parts:
            continue
        source = path.read_text()
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()
        module = ".".join(path.relative_to(package_dir.parent).with_suffix("").parts)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                body = "\n".join(lines[node.lineno - 1 : node.end_lineno])
                shingles = set(_shingles(normalise(textwrap.dedent(body))))
                if shingles:
                    functions[f"{module}.{node.name}"] = shingles
    if cache is not None:
        flat = {name: sorted("\x1f".join(s) for s in shingles)
                for name, shingles in functions.items()}  # fmt: skip
        _atomic_write(cache, json.dumps({"key": key, "functions": flat}))
    return functions


def _common(per_student: dict[str, dict[tuple, list[int]]]) -> set[tuple]:
    """Shingles that more than COMMON_SHARE of the answers (and at least COMMON_MIN of them) hold:
    the idiom of the exercise (the four loops of a convolution, say), not anyone's own work."""
    counts: dict[tuple, int] = defaultdict(int)
    for shingles in per_student.values():
        for shingle in shingles:
            counts[shingle] += 1
    share = COMMON_SHARE * len(per_student)
    return {shingle for shingle, n in counts.items() if n > share and n >= COMMON_MIN}


def find_copies(
    answers: dict[str, dict[str, str]],
    starters: dict[str, str],
    package_dir: Path,
    cache: Path | None = None,
) -> tuple[list[Finding], int]:
    """(findings, how many answers were long enough to compare).

    answers: student -> {grade_id: answer source}; starters: grade_id -> the release's cell;
    cache: a file to keep the library's shingles in between runs.
    """
    library = _library_functions(package_dir, cache)
    index: dict[tuple, set[str]] = defaultdict(set)
    for name, shingles in library.items():
        for shingle in shingles:
            index[shingle].add(name)
    raw: dict[str, dict[str, dict]] = defaultdict(dict)  # grade_id -> student -> shingles
    for student, cells in sorted(answers.items()):
        for grade_id, source in cells.items():
            raw[grade_id][student] = _answer(source, starters.get(grade_id, ""))
    findings, compared = [], 0
    for grade_id, students in sorted(raw.items()):
        common = _common(students)
        distinctive = {}
        for student, shingles in students.items():
            own = {s: lines for s, lines in shingles.items() if s not in common}
            if len(own) + K - 1 >= MIN_TOKENS:
                distinctive[student] = own
        compared += len(distinctive)
        for student, own in distinctive.items():
            counts: dict[str, int] = defaultdict(int)
            for shingle in own:
                for name in index.get(shingle, ()):
                    counts[name] += 1
            if counts:
                best = max(counts, key=lambda n: (counts[n], n))
                share = counts[best] / len(own)
                if share >= REFERENCE_SHARE:
                    matched = set(own) & library[best]
                    findings.append(Finding(
                        "copy_of_reference", grade_id, student, best, share,
                        _lines(answers[student][grade_id], own, matched),
                    ))  # fmt: skip
        for (a, sa), (b, sb) in itertools.combinations(sorted(distinctive.items()), 2):
            shared = set(sa) & set(sb)
            share = len(shared) / len(set(sa) | set(sb))
            if share >= PAIR_SHARE:
                lines = _lines(answers[a][grade_id], sa, shared)
                findings.append(Finding("near_identical", grade_id, a, b, share, lines))
    return findings, compared


def report_lines(findings: list[Finding], compared: int) -> list[str]:
    """The report's section: thresholds, then each finding with the lines that matched."""
    lines = [
        f"{compared} answers were long enough to compare (at least {MIN_TOKENS} tokens once "
        "comments, docstrings, layout and the starter code are gone, names normalised, and the "
        f"{K}-token runs that more than {COMMON_SHARE:.0%} of the class (and at least "
        f"{COMMON_MIN} students) wrote alike set aside). Flagged: at least {REFERENCE_SHARE:.0%} "
        f"of an answer's runs found in one cnnlib function, or two answers sharing at least "
        f"{PAIR_SHARE:.0%} of theirs.",
        "",
    ]
    if not findings:
        return [*lines, "None found."]
    for f in findings:
        what = (f"a near-copy of `{f.other}`" if f.kind == "copy_of_reference"
                else f"nearly identical to **{f.other}**'s")  # fmt: skip
        lines.append(f"- **{f.student}**, `{f.grade_id}`: {what} ({f.share:.0%} shared)")
        lines += [f"      {line}" for line in f.lines[:10]]
    return lines
