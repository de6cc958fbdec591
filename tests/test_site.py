"""The course site (`make html`): built from the lectures as the notebook tests executed them
(quick mode), every internal link and image resolves, every lecture page shows its figures, the
answers are collapsed, and the course map and the execution-time table are there."""

from __future__ import annotations

import html.parser
import importlib.util
import json
import os
import shutil
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from course import ROOT, course_notebooks

from cnnlib.course import catalog

pytestmark = [pytest.mark.slow, pytest.mark.site]


def _load_build():
    spec = importlib.util.spec_from_file_location("site_build", ROOT / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets, self.ids, self.images = [], set(), 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in ("href", "src"):
            if attrs.get(name):
                self.targets.append((tag, attrs[name]))
        if tag == "img":
            self.images += 1


def parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def broken_links(html_root: Path) -> list[str]:
    """Every relative href/src of every page that names a missing file or a missing anchor."""
    # the theme's Jinja templates copied into _static/ are not pages
    pages = {page: parse(page) for page in html_root.rglob("*.html")
             if "_static" not in page.relative_to(html_root).parts}
    broken = []
    for page, links in pages.items():
        for tag, target in links.targets:
            parts = urllib.parse.urlsplit(target)
            if parts.scheme or target.startswith(("//", "mailto:", "javascript:")):
                continue  # external: not ours to check offline
            path = (page.parent / urllib.parse.unquote(parts.path)).resolve() if parts.path \
                else page
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page.relative_to(html_root)}: <{tag}> {target} (no such file)")
            elif parts.fragment and path.suffix == ".html":
                ids = pages[path].ids if path in pages else parse(path).ids
                if urllib.parse.unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(html_root)}: {target} (no such anchor)")
    return broken


# Lectures executed at once for the site. Two on a 2-core machine, because the suite is largely
# waiting (servers, clusters and kernels starting, polling): measured, its processes kept only
# 1.27 of 2 cores busy on average, and the site's lectures, run one after another, were the
# longest chain in the suite (514 s of 1,241 s).
LECTURES_AT_ONCE = 2


def longest_first(paths: list[Path]) -> list[Path]:
    """The lectures in order of their measured quick-mode time (docs/timings.json), longest
    first, so that two runners finish close together."""
    timings = json.loads((ROOT / "docs" / "timings.json").read_text())["lectures"]

    def quick_wall_s(path: Path) -> float:
        lecture = next((t for key, t in timings.items() if path.name.startswith(key + "_")), {})
        return lecture.get("quick", {}).get("wall_s", 0.0)

    return sorted(paths, key=quick_wall_s, reverse=True)


@pytest.fixture(scope="module")
def site(executed, tmp_path_factory):
    paths = longest_first(course_notebooks("lectures"))
    with ThreadPoolExecutor(LECTURES_AT_ONCE) as runners:  # each run is its own kernel process
        runs = list(runners.map(executed, paths))
    failed = [run.failure for run in runs if run.failure]
    assert not failed, f"the site needs every lecture to run: {failed}"
    executed_root = runs[0].path.parents[1]  # .../executed, holding lectures/
    out = tmp_path_factory.mktemp("site")
    index = _load_build().build(out, quick=True, executed=executed_root)
    artifacts = os.environ.get("CNNLIB_ARTIFACTS")
    if artifacts:
        shutil.copytree(index.parent, Path(artifacts) / "site", dirs_exist_ok=True)
    return index.parent


def test_every_internal_link_resolves(site):
    assert broken_links(site) == []


def test_every_lecture_has_a_page_with_its_figures(site):
    for lecture in catalog.lectures(ROOT):
        page = site / "lectures" / Path(lecture.notebook).with_suffix(".html")
        assert page.is_file(), f"no page for {lecture.notebook}"
        assert parse(page).images > 0, f"{page.name} shows no figure"


def test_answers_are_collapsed_and_self_checks_hidden(site):
    page = (site / "lectures" / "05_activation_functions.html").read_text()
    assert "<details><summary>Answer</summary>" in page
    assert "tag_hide-input" in page  # MyST-NB renders hide-input cells collapsed


def test_index_shows_the_course_map_and_the_execution_table(site):
    index = (site / "index.html").read_text()
    for lecture in catalog.lectures(ROOT):
        assert lecture.title in index
    execution = (site / "execution.html").read_text()
    assert "quick mode" in execution and "02_convolution_arithmetic" in execution
    assert (site / "readme.html").is_file()


def test_the_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "a.html").write_text('<a href="b.html#there">b</a><a href="c.html">c</a>'
                                     '<img src="fig.png"><a href="https://example.org">x</a>')
    (tmp_path / "b.html").write_text('<p id="here">b</p>')
    found = broken_links(tmp_path)
    assert found == ["a.html: b.html#there (no such anchor)",
                     "a.html: <a> c.html (no such file)", "a.html: <img> fig.png (no such file)"]
