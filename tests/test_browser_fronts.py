"""The main journey in both notebook front ends most users have, JupyterLab 4 and Jupyter Notebook 7,
in real Chromium: a run, a failure, background runs with their notices, the board and its Cancel, the
form. The notices must never cover a cell or its toolbar, at most three show, and one click dismisses.

Uses the server and helpers of ``test_browser.py`` (same skips: Chromium and playwright); the one
server serves both front ends (``/lab/tree/NAME`` and ``/notebooks/NAME``). Idle is read from the
server's kernel API, which both front ends share (Notebook 7 has no status bar).
"""

# ruff: noqa: F811 - the fixtures imported from test_browser are named as test parameters

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import re
import time
from collections.abc import Iterator

import pytest

from .test_browser import (  # noqa: F401 - fixtures used by name
    STEP_MS,
    Lab,
    browser,
    chromium,
    lab,
    no_stack_trace,
    screenshot,
)

with contextlib.suppress(ImportError):
    from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.browser

FRONTS = {"lab": "/lab/tree/{name}?reset&token={token}", "notebook7": "/notebooks/{name}?token={token}"}
SETUP = [
    "%load_ext dbx_magic\n%config DbxMagics.notice_seconds = 0",  # notices stay until dismissed
    "%dbx_sandbox --speed 4\n"
    'get_ipython().magics_manager.registry["DbxMagics"].sandbox.add_job("slow-job", duration=600);',
]
LONG_OUTPUT = "print('\\n'.join(f'line {i}: ' + 'lorem ipsum dolor sit amet ' * 5 for i in range(12)))"


class Front:
    """One front end on the shared server: opens notebooks, runs cells, waits for the kernel."""

    def __init__(self, kind: str, lab: Lab, page: Page) -> None:
        self.kind, self.lab, self.page = kind, lab, page
        self.path = ""

    def open(self, name: str, cells: list[str]) -> None:
        self.lab.notebook(name, cells)
        self.path = name
        self.page.goto(self.lab.url + FRONTS[self.kind].format(name=name, token=self.lab.token))
        expect(self.page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(len(cells), timeout=STEP_MS)
        self.wait_idle()

    def kernel_state(self) -> str | None:
        for session in self.lab.api("GET", "/api/sessions") or []:
            if session.get("path", "").endswith(self.path):
                return str(session["kernel"]["execution_state"])
        return None

    def wait_idle(self) -> None:
        deadline = time.monotonic() + STEP_MS / 1000
        while self.kernel_state() != "idle":
            assert time.monotonic() < deadline, f"the kernel never became idle ({self.kind})"
            self.page.wait_for_timeout(100)

    def cell(self, index: int) -> Locator:
        return self.page.locator(".jp-Notebook .jp-CodeCell").nth(index)

    def run(self, index: int) -> Locator:
        """Shift+Enter on a cell (again if swallowed), then wait until it finished."""
        target = self.cell(index)
        prompt = target.locator(".jp-InputPrompt")
        before = prompt.inner_text().strip()
        for _attempt in range(3):
            self.wait_idle()
            target.locator(".jp-Cell-inputArea .cm-content").click()
            self.page.keyboard.press("Shift+Enter")
            try:
                expect(prompt).not_to_have_text(before, timeout=5_000)
                break
            except AssertionError:
                continue
        expect(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=STEP_MS)
        return target

    def shot(self, name: str) -> None:
        screenshot(self.page, f"{self.kind}-{name}.png")


@pytest.fixture(params=list(FRONTS))
def front(request: pytest.FixtureRequest, lab: Lab, browser: Browser) -> Iterator[Front]:
    if request.param == "notebook7" and importlib.util.find_spec("notebook") is None:
        pytest.skip("Jupyter Notebook 7 is not installed: pip install -e '.[browser]'")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    failed_before = request.session.testsfailed
    yield Front(request.param, lab, page)
    if request.session.testsfailed > failed_before:
        screenshot(page, f"browser-failure-{request.param}-{request.node.originalname}.png")
    context.close()


def boxes(page: Page, selector: str) -> list[dict[str, float]]:
    return list(
        page.evaluate(
            """(sel) => Array.from(document.querySelectorAll(sel))
                 .map((e) => e.getBoundingClientRect())
                 .filter((r) => r.width > 0 && r.height > 0)
                 .map((r) => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom}))""",
            selector,
        )
    )


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    )


def visible(box: dict[str, float], frame: dict[str, float]) -> dict[str, float] | None:
    """The part of ``box`` inside ``frame`` (None when none is)."""
    clipped = {
        "left": max(box["left"], frame["left"]),
        "top": max(box["top"], frame["top"]),
        "right": min(box["right"], frame["right"]),
        "bottom": min(box["bottom"], frame["bottom"]),
    }
    return clipped if clipped["left"] < clipped["right"] and clipped["top"] < clipped["bottom"] else None


def assert_clear_of_the_notebook(page: Page) -> None:
    """No notice covers the visible part of a cell, a cell's toolbar, or the notebook's toolbar."""
    notices = boxes(page, "#dbx-notices .dbx-notice, #dbx-notices .dbx-notices-more")
    assert notices, "no notice on the page"
    (frame,) = boxes(page, ".jp-NotebookPanel:not(.lm-mod-hidden)")
    covered = [
        part
        for box in boxes(page, ".jp-Notebook .jp-Cell, .jp-cell-toolbar, .jp-NotebookPanel-toolbar")
        if (part := visible(box, frame)) is not None
    ]
    assert covered, "no cell found on the page"
    hits = [(n, c) for n in notices for c in covered if overlaps(n, c)]
    assert not hits, hits
    inside = {"left": 0, "top": 0, "right": 1280, "bottom": 900}
    assert all(visible(n, inside) == n for n in notices), notices  # whole, in the window


def test_the_main_journey(front: Front) -> None:
    cells = [
        *SETUP,
        "%%dbx_run daily-sales-report --out res\ndate = 2026-11-01",  # 2
        "%%dbx_run flaky-ingest --out bad\nfail = true",  # 3
        *[LONG_OUTPUT] * 6,  # 4-9: a long notebook
        "for i in range(5):\n"
        "    get_ipython().run_line_magic('dbx_run', f'daily-sales-report --background --out bg{i}')\n"
        "failing = {'fail': 'true'}\n%dbx_run flaky-ingest --background --out bgbad --params failing\n",  # 10
        "grid = [{'max_depth': '4'}, {'max_depth': '8'}]\n%dbx_run train-model --foreach grid --out sweep",  # 11
        "%dbx_run slow-job --background --out slow",  # 12
        "%dbx_runs",  # 13
        "%dbx_form daily-sales-report --out from_form",  # 14
    ]
    front.open(f"journey-{front.kind}.ipynb", cells)
    page = front.page
    front.run(0)
    expect(front.run(1).locator(".jp-OutputArea")).to_contain_text("Sandbox workspace at")

    # A run, and a failure: each ends in its widget, the failure with one short message.
    ok = front.run(2)
    expect(ok.locator(".dbx-progress-state .dbx-state-badge")).to_have_text("SUCCESS")
    bad = front.run(3)
    expect(bad.locator(".dbx-progress-state .dbx-state-badge")).to_have_text("FAILED")
    expect(bad.locator(".jp-Cell-outputArea")).to_contain_text("ended FAILED")
    no_stack_trace(bad.locator(".jp-Cell-outputArea").inner_text())
    for index in range(4, 10):
        front.run(index)

    # Six background runs end: three notices show, the rest fold into "3 more", none over the notebook.
    front.run(10)
    notices = page.locator("#dbx-notices .dbx-notice")
    expect(notices).to_have_count(6, timeout=STEP_MS)
    expect(page.locator("#dbx-notices .dbx-notice:visible")).to_have_count(3)
    expect(page.locator("#dbx-notices .dbx-notices-more")).to_have_text("3 more")
    expect(notices.filter(has_text="flaky-ingest: FAILED")).to_have_count(1)
    front.cell(6).scroll_into_view_if_needed()
    assert_clear_of_the_notebook(page)
    front.cell(6).click()  # the active cell shows its toolbar (JupyterLab): still clear of it
    assert_clear_of_the_notebook(page)
    front.shot("notices")

    # A click on a notice shows its details; x dismisses it in one click; "dismiss all" the rest.
    failed = notices.filter(has_text="flaky-ingest")
    failed.locator(".dbx-notice-label").click()
    card = page.locator("#dbx-notices .dbx-notice-card")
    expect(card).to_contain_text("ended FAILED")
    expect(card).to_contain_text("asked to fail")
    front.shot("notice-details")
    failed.locator(".dbx-notice-close").click()
    expect(notices).to_have_count(5)
    expect(page.locator("#dbx-notices .dbx-notices-more")).to_have_text("2 more")
    page.locator("#dbx-notices .dbx-notices-more").click()
    expect(card.locator(".dbx-notices-list-row")).to_have_count(5)
    card.locator(".dbx-notices-dismiss").click()
    expect(notices).to_have_count(0)

    # The board: a sweep's runs under it, with the parameter that sets each apart; headers apart; its
    # Cancel ends the slow run, its status line goes with the run, and the notice for that end comes.
    front.run(11)
    launched = front.run(12)
    run_id = re.search(r"Run (\d+) of 'slow-job'", launched.locator(".jp-Cell-outputArea").inner_text())
    assert run_id
    board = front.run(13).locator(".dbx-board")
    row = board.locator(f".dbx-board-run-{run_id.group(1)}")
    expect(row.locator(".dbx-board-state")).to_have_text(re.compile(r"^(QUEUED|PENDING|RUNNING)$"))
    expect(board.locator(".dbx-board-group")).to_have_text("sweep of train-model: 2 runs · 2 ended")
    expect(board.locator(".dbx-board-in-sweep .dbx-board-params")).to_have_text(
        ["max_depth=8", "max_depth=4"]
    )
    heads = board.locator(".dbx-board-header > *")
    expect(heads).to_have_text(["job", "run", "state", "elapsed", "ETA", "parameters", "result"])
    (frame,) = boxes(page, ".jp-NotebookPanel:not(.lm-mod-hidden)")
    assert all(b["right"] <= frame["right"] for b in boxes(page, ".dbx-board-row .dbx-board-result")), frame
    words = boxes(page, ".dbx-board-header b")
    gaps = [round(b["left"] - a["right"]) for a, b in itertools.pairwise(words)]
    assert min(gaps) >= 8, gaps  # a clear gap between each two headers
    front.cell(13).scroll_into_view_if_needed()  # the cell, not the board: the board's tick redraws it
    front.shot("board")
    row.locator(".dbx-board-cancel").click()
    expect(board.locator(".dbx-board-message")).to_contain_text(f"cancel run {run_id.group(1)}")
    expect(row.locator(".dbx-board-state")).to_have_text("CANCELED", timeout=STEP_MS)
    expect(board.locator(".dbx-board-message")).to_have_text("")
    expect(notices.filter(has_text="slow-job: CANCELED")).to_have_count(1, timeout=STEP_MS)
    assert_clear_of_the_notebook(page)
    front.shot("board-cancelled")

    # The form: Run, and the result lands.
    form = front.run(14).locator(".dbx-form")
    expect(form.locator(".dbx-param-row")).to_have_count(2)
    form.locator(".dbx-form-run").click()
    expect(form.locator(".dbx-form-status")).to_contain_text(
        "SUCCESS; the result is in from_form", timeout=STEP_MS
    )
    form.scroll_into_view_if_needed()
    front.shot("form")
