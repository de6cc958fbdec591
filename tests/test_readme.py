"""The README tells the truth: its Python examples run as written."""

from __future__ import annotations

import re

from course import ROOT


def test_the_readme_python_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # raises on the first broken line
