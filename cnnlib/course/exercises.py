"""The exercise convention of the lectures, in one place.

An exercise is three cells:

1. the question, a markdown cell;
2. an empty code cell, where the student works;
3. the answer, a markdown cell tagged ``answer`` (cell metadata ``"tags": ["answer"]``)::

       <details><summary>Answer</summary>

       prose, and one or more fenced ```python blocks

       </details>

"Run All" never runs the answer: it is markdown, shown collapsed in JupyterLab and on the course
site. The tests extract its fenced python blocks and execute them in place, in the same kernel, so
every answer still runs headless in CI like any other cell.
"""

from __future__ import annotations

import re

__all__ = ["ANSWER_TAG", "answer_blocks", "answer_source", "is_answer_cell", "problems"]

ANSWER_TAG = "answer"
OPEN = "<details><summary>Answer</summary>"
CLOSE = "</details>"
# A fenced python block: ```python on its own line, the code, ``` on its own line.
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _source(cell) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_answer_cell(cell) -> bool:
    """True for a cell tagged `answer`, whatever its type (`problems` wants markdown)."""
    return ANSWER_TAG in _tags(cell)


def answer_blocks(cell) -> list[str]:
    """The code of each fenced ```python block of an answer cell, in order ([] for prose only)."""
    return [block.rstrip("\n") for block in _FENCE.findall(_source(cell))]


def answer_source(*parts: str) -> str:
    """The markdown of an answer cell: each part is prose, or code when it starts with ```python."""
    body = "\n\n".join(part.strip("\n") for part in parts if part.strip())
    return f"{OPEN}\n\n{body}\n\n{CLOSE}"


def problems(cells) -> list[str]:
    """What breaks the convention in a notebook's cells, one message per problem ([] when none).

    Checked: an answer cell is markdown, opens with the <details> line and closes with </details>;
    the cell before it is an empty code cell (the student's); no code cell is an answer in
    disguise (starting with a comment "# Answer").
    """
    found = []
    for index, cell in enumerate(cells):
        source = _source(cell)
        if cell["cell_type"] == "code" and source.lstrip().lower().startswith("# answer"):
            found.append(f"cell {index}: a code cell starting with '# Answer' runs with Run All; "
                         "make it a markdown cell tagged 'answer'")
        if not is_answer_cell(cell):
            continue
        if cell["cell_type"] != "markdown":
            found.append(f"cell {index}: an answer cell must be markdown, not {cell['cell_type']}")
            continue
        text = source.strip()
        if not (text.startswith(OPEN) and text.endswith(CLOSE)):
            found.append(f"cell {index}: an answer cell must start with {OPEN!r} and end with "
                         f"{CLOSE!r}")
        if source.count("```") % 2:
            found.append(f"cell {index}: an unclosed ``` fence")
        previous = cells[index - 1] if index else None
        if previous is None or previous["cell_type"] != "code" or _source(previous).strip():
            found.append(f"cell {index}: the cell before an answer must be an empty code cell "
                         "(the student's)")
    return found
