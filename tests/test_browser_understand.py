"""Understanding a run, in real Chromium: a failed run's widget says what differs from the last success,
``%dbx_compare`` shows its table, and the widget and the board say why a queued run waits.

Uses the JupyterLab server and the helpers of ``test_browser.py`` (same skips: Chromium and playwright).
"""

# ruff: noqa: F811 - the fixtures imported from test_browser are named as test parameters

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest

from .test_browser import (  # noqa: F401 - fixtures used by name
    SETUP_CELLS,
    STEP_MS,
    Lab,
    browser,
    cell,
    chromium,
    lab,
    run_cell,
    run_setup,
    screenshot,
    wait_idle,
)

with contextlib.suppress(ImportError):
    from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

QUEUED = "queued: the job already has its maximum of 1 concurrent run"


@pytest.fixture
def page(lab: Lab, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(STEP_MS)
    page = context.new_page()
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:
        screenshot(page, "browser-failure-understand.png")
    context.close()


def test_last_success_line_compare_table_and_queue_reason(page: Page, lab: Lab) -> None:
    cells = [
        *SETUP_CELLS,
        "%%dbx_run etl-with-checks --out checks\nstrict = true",  # 2: fails
        "%dbx_compare checks",  # 3
        'get_ipython().magics_manager.registry["DbxMagics"].sandbox.add_job("one-at-a-time", duration=120);',
        "%dbx_run one-at-a-time --background --out first",  # 5
        "%dbx_run one-at-a-time --background --out second",  # 6: queued behind the first
        "%dbx_runs",  # 7
    ]
    lab.notebook("understand.ipynb", cells)
    page.goto(f"{lab.url}/lab/tree/understand.ipynb?reset&token={lab.token}")
    expect(page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(len(cells), timeout=STEP_MS)
    wait_idle(page)
    run_setup(page)

    failed = run_cell(page, 2)
    message = failed.locator(".dbx-progress-message")
    expect(message).to_contain_text("strict checks failed", timeout=STEP_MS)
    expect(message).to_contain_text(
        re.compile(r"last success: run \d+, 1 day ago; differs in strict=true \(was false\)")
    )
    expect(failed.locator(".jp-Cell-outputArea")).to_contain_text("last success: run")  # the cell's error too
    screenshot(page, "browser-understand-failure-line.png")

    compared = run_cell(page, 3)
    table = compared.locator(".dbx-compare-table")
    expect(table).to_be_visible()
    expect(table.locator("tr", has_text="parameter strict")).to_contain_text("true")
    expect(table.locator("tr", has_text="task validate")).to_contain_text("FAILED")
    expect(compared.locator(".dbx-compare")).to_contain_text("first difference, task validate")
    compared.scroll_into_view_if_needed()
    screenshot(page, "browser-understand-compare.png")

    run_cell(page, 4)
    run_cell(page, 5)
    second = run_cell(page, 6)
    expect(second.locator(".dbx-progress-message")).to_contain_text(QUEUED, timeout=STEP_MS)
    board = run_cell(page, 7).locator(".dbx-board")
    # the board's result column cuts it at a word boundary, and says it whole on hover
    expect(board).to_contain_text("queued: the job already has its maximum", timeout=STEP_MS)
    expect(board.locator(f'[title^="{QUEUED}"]').first).to_be_attached(timeout=STEP_MS)
    cell(page, 6).scroll_into_view_if_needed()
    screenshot(page, "browser-understand-queued.png")
