"""JupyterLab in a real browser: Playwright drives Debian's Chromium against `make lab`.

The lab runs on a copy of the course (notebooks run here may be saved with outputs), with its own
settings folder: notebooks render every cell (no windowing), so the test sees every output.
Checked: the file browser lists the course; lecture 02 runs with *Run All* with no error output,
its figures render and its explorer's sliders answer; the student release of a1 runs to its first
stub without killing the kernel; nbgrader's menu opens the formgrader, the course list and the
assignment list; locally the Assignment List shows no "Error fetching courses!" and no
world-writable exchange folder appears.

Skipped when no Chromium is installed (`apt-get install chromium`; set CNNLIB_CHROMIUM to use
another binary), unless CNNLIB_REQUIRE_BROWSER=1, as .ci/run sets: there it fails instead.
Playwright's own browser download is not used.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import time
from pathlib import Path

import nbformat
import pytest
from course import ROOT, Lab, course_copy

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = os.environ.get("CNNLIB_CHROMIUM") or shutil.which("chromium") or \
    shutil.which("chromium-browser") or ""
if not CHROMIUM and os.environ.get("CNNLIB_REQUIRE_BROWSER") != "1":
    pytest.skip("no Chromium browser found: install Debian's `chromium` (apt-get install chromium) "
                "or set CNNLIB_CHROMIUM; CI installs it", allow_module_level=True)

RUN_WAIT_MS = 600_000  # a cell finishes in seconds on a quiet machine; generous for a busy one
RUN_RETRY_MS = 60_000  # Run All shows a queue mark at once when the kernel is connected
_workspaces = itertools.count()
DEFAULT_EXCHANGE = "/usr/local/share/nbgrader/exchange"


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return course_copy(tmp_path_factory.mktemp("course"))


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory):
    settings = tmp_path_factory.mktemp("settings")
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    args = (f"--LabApp.user_settings_dir={settings} "
            f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('workspaces')}")
    default_existed = os.path.exists(DEFAULT_EXCHANGE)
    with Lab(course, tmp_path_factory.mktemp("lab") / "lab.log", args) as server:
        server.default_exchange_existed = default_existed
        yield server


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "CNNLIB_REQUIRE_BROWSER=1 but no chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"])  # root in a container: no sandbox
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request, tmp_path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(120_000)
    yield page
    if getattr(request.node, "failed_call", False):  # what the browser showed, for the report
        shot = Path(os.environ.get("CNNLIB_ARTIFACTS") or tmp_path) / f"{request.node.name}.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    context.close()


def _figures(path) -> int:
    """How many figures a notebook shows: one per plt.show() in its code cells."""
    cells = nbformat.read(path, as_version=4).cells
    return sum(c.source.count("plt.show()") for c in cells if c.cell_type == "code")


def _wait_for_text(page, text: str, timeout_s: float = 120) -> None:
    """Wait until `text` shows in the page or in one of its frames (the formgrader is an iframe)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(frame.get_by_text(text).count() for frame in page.frames):
            return
        time.sleep(0.5)
    raise AssertionError(f"{text!r} did not appear within {timeout_s:.0f} s")


def open_lab(page, lab, path: str = ""):
    """The lab in a workspace of its own (`?reset`): no tab a previous test left open (whose
    kernel's "Idle" would show before this notebook's kernel is up) comes back."""
    workspace = f"/lab/workspaces/test-{next(_workspaces)}"
    where = f"{workspace}/tree/{path}" if path else workspace
    page.goto(f"{lab.url}{where}?reset&token={lab.token}")
    page.wait_for_selector(".jp-DirListing-content", state="attached")


def run_all(page) -> int:
    """Run > Run All Cells, then wait until no cell is queued or running. Returns how many
    times Run All was given (more than once when the first showed no start within a minute)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached")
    # the kernel must be up before Run All, or the command finds no session and runs nothing
    page.wait_for_function("() => document.querySelector('.jp-Notebook') &&"
                           " !document.querySelector('.jp-Dialog') &&"
                           " document.body.innerText.includes('| Idle')", timeout=RUN_WAIT_MS)
    started = ("() => [...document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt')]"
               ".some(p => /[*0-9]/.test(p.textContent))")  # a queue mark or a count
    # A Run All given while the session is still connecting walks the cells and runs nothing
    # (seen on a busy CI runner): nothing ran, so asking again is harmless.
    deadline = time.monotonic() + RUN_WAIT_MS / 1000
    clicks = 0
    while True:
        clicks += 1
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:
            page.wait_for_function(started, timeout=RUN_RETRY_MS, polling=500)
            break
        except PlaywrightTimeout:
            if time.monotonic() > deadline:
                raise
    page.wait_for_function(  # finished: nothing queued, or stopped at an error, kernel idle
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt')];
            const queued = prompts.some(p => p.textContent.includes('*'));
            const error = document.querySelector(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
            return !queued || (error && document.body.innerText.includes('| Idle'));
        }""", timeout=RUN_WAIT_MS, polling=1000)
    return clicks


def test_the_file_browser_lists_the_course(lab, page):
    open_lab(page, lab)
    listing = page.locator(".jp-DirListing-content")
    for name in ("lectures", "assignments", "solutions", "README.md"):
        listing.get_by_text(name, exact=True).wait_for()


def test_lecture_02_runs_all_with_figures_and_a_live_explorer(lab, page):
    open_lab(page, lab, "lectures/02_convolution_arithmetic.ipynb")
    run_all(page)
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert errors.count() == 0, errors.first.inner_text()
    prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
    assert any(p.strip() for p in prompts)
    images = page.locator(".jp-RenderedImage img")
    expected = _figures(ROOT / "lectures" / "02_convolution_arithmetic.ipynb")
    assert images.count() == expected, f"{images.count()} of {expected} figures rendered"
    assert page.evaluate("() => [...document.querySelectorAll('.jp-RenderedImage img')]"
                         ".every(img => img.complete && img.naturalWidth > 0)")
    # the explorer: a live widget; moving the stride slider changes the output size shown
    explorer = page.locator(".widget-vbox", has=page.locator(".widget-slider")).first
    explorer.wait_for()
    info = explorer.locator(".widget-html-content").first
    before = info.inner_text()
    assert "output size" in before and "= 4" in before
    handle = explorer.locator(".widget-slider", has_text="stride").locator(".noUi-handle")
    handle.focus()
    page.keyboard.press("ArrowLeft")  # stride 2 -> 1
    page.wait_for_function("(text) => !document.body.innerText.includes(text)",
                           arg=before.split("\n")[0], timeout=60_000)
    assert "= 8" in info.inner_text()  # (8 + 2 - 3) / 1 + 1


def test_the_student_release_runs_to_its_first_stub_and_the_kernel_lives(lab, page):
    open_lab(page, lab, "assignments/a1_conv_arithmetic/a1_conv_arithmetic.ipynb")
    clicks = run_all(page)
    errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    texts = errors.all_inner_texts()
    # every error is a stub's; one, unless Run All had to be given twice: then a second pass
    # may stop at a later stub as well (a full suite on 2 busy cores once showed two errors,
    # which one Run All, stopping at the first error, cannot make)
    assert texts and all("NotImplementedError" in text for text in texts), texts
    assert len(texts) == 1 or clicks > 1, (clicks, texts)
    status, body = lab.get("/api/kernels")
    assert status == 200
    states = [k["execution_state"] for k in json.loads(body)]
    assert states and "dead" not in states, states


def test_nbgrader_menus_work_and_the_assignment_list_needs_no_hub(lab, page, course):
    open_lab(page, lab)
    for item, expected in (("Formgrader", "a1_conv_arithmetic"), ("Course List", "cnn-course"),
                           ("Assignment List", "Released assignments")):
        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
        page.locator(".lm-Menu-itemLabel", has_text=item).first.click()
        _wait_for_text(page, expected)
    texts = [frame.locator("body").inner_text() for frame in page.frames]
    assert not any("Error fetching courses" in text for text in texts)
    exchange = Path(course) / "exchange"
    assert exchange.is_dir()
    loose = [str(p) for p in [exchange, *exchange.rglob("*")]
             if stat.S_IMODE(p.lstat().st_mode) & 0o022]
    assert loose == [], f"group/world-writable in the exchange: {loose}"
    assert os.path.exists(DEFAULT_EXCHANGE) == lab.default_exchange_existed, \
        f"{DEFAULT_EXCHANGE} was created"
