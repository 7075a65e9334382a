"""Background runs in real Chromium: JupyterLab runs other cells while a run goes on, the board's Cancel
ends it, and the end's notice shows on the page, outside the cell, once (not again after a reload).

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
    badge,
    browser,
    cell,
    chromium,
    lab,
    run_cell,
    run_setup,
    save,
    screenshot,
    start_cell,
    wait_idle,
    wait_live,
)

with contextlib.suppress(ImportError):
    from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.browser

# Records every browser notification the page creates (the real one still goes to the browser).
SPY_NOTIFICATIONS_JS = """(() => {
  window.__dbxNotified = [];
  const Real = window.Notification;
  if (!Real) return;
  function Spy(title, options) { window.__dbxNotified.push(title); return new Real(title, options); }
  Object.defineProperty(Spy, "permission", {get: () => Real.permission});
  Spy.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Spy;
})();"""


@pytest.fixture
def page(lab: Lab, browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page, allowed to show notifications (as a user who said yes), with the spy installed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(STEP_MS)
    context.grant_permissions(["notifications"], origin=lab.url)
    context.add_init_script(SPY_NOTIFICATIONS_JS)
    page = context.new_page()
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:
        screenshot(page, "browser-failure-background.png")
    context.close()


def open_in(page: Page, lab: Lab, name: str, cells: list[str]) -> None:
    lab.notebook(name, cells)
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    expect(page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(len(cells), timeout=STEP_MS)
    wait_idle(page)


def notices(page: Page) -> Locator:
    return page.locator("#dbx-notices .dbx-notice")


def test_background_run_board_cancel_and_a_notice_once(page: Page, lab: Lab) -> None:
    cells = [
        *SETUP_CELLS,
        "%dbx_run slow-job --background --out slow",  # 2
        "print('meanwhile:', 6 * 7)",  # 3
        "%dbx_runs",  # 4
        "%dbx_run daily-sales-report --background --out quick",  # 5
        "print('NS:', type(slow).__name__, slow.result_state, type(quick).__name__, quick.result_state)",  # 6
    ]
    open_in(page, lab, "background.ipynb", cells)
    run_setup(page)

    # The background cell returns while its run goes on; another cell runs and returns meanwhile.
    launched = run_cell(page, 2)
    expect(launched.locator(".jp-Cell-outputArea")).to_contain_text("was launched in the background")
    wait_live(page)
    meanwhile = run_cell(page, 3)
    expect(meanwhile.locator(".jp-Cell-outputArea")).to_contain_text("meanwhile: 42")
    expect(badge(page).first).to_have_text(re.compile(r"^(QUEUED|PENDING|RUNNING|BLOCKED)$"))

    # The board lists it, live; its Cancel works because the kernel is idle.
    board = run_cell(page, 4).locator(".dbx-board")
    run_id = re.search(r"Run (\d+) of 'slow-job'", launched.locator(".jp-Cell-outputArea").inner_text())
    assert run_id, launched.inner_text()
    row = board.locator(f".dbx-board-run-{run_id.group(1)}")
    expect(row.locator(".dbx-board-job")).to_have_text("slow-job")
    expect(row.locator(".dbx-board-run a")).to_have_attribute("href", re.compile(rf"/run/{run_id.group(1)}$"))
    screenshot(page, "browser-background-board.png")
    row.locator(".dbx-board-cancel").click()
    expect(row.locator(".dbx-board-state")).to_have_text("CANCELED", timeout=STEP_MS)
    expect(launched.locator(".dbx-progress-state")).to_have_text("CANCELED")  # the cell's widget too

    # The end's notice: on the page, outside every cell; its details (a click) have the one-line reason.
    cancelled = page.locator(f"#dbx-notices .dbx-notice[data-run-id='{run_id.group(1)}']")
    expect(cancelled).to_have_count(1)
    expect(cancelled).to_contain_text("slow-job: CANCELED")
    expect(cancelled).to_have_attribute(
        "title", re.compile(rf"Run {run_id.group(1)} of 'slow-job' ended CANCELED")
    )
    assert cancelled.evaluate(
        "n => n.closest('.jp-Cell') === null && getComputedStyle(n.parentElement).position"
    )
    assert cancelled.evaluate("n => getComputedStyle(n.parentElement).position") == "fixed"
    screenshot(page, "browser-background-cancel-notice.png")

    # A run that succeeds while the user is scrolled elsewhere: the notice is in view all the same.
    run_cell(page, 5)
    cell(page, 0).scroll_into_view_if_needed()
    succeeded = notices(page).filter(has_text="daily-sales-report: SUCCESS")
    expect(succeeded).to_have_count(1, timeout=STEP_MS)
    expect(succeeded).to_be_in_viewport()
    succeeded.locator(".dbx-notice-label").click()
    expect(page.locator("#dbx-notices .dbx-notice-card .dbx-notice-title")).to_contain_text(
        "of 'daily-sales-report' ended SUCCESS"
    )
    notified = page.evaluate("() => window.__dbxNotified")
    assert any("ended SUCCESS" in t for t in notified) and any("ended CANCELED" in t for t in notified), (
        notified
    )
    assert page.evaluate("() => window.jupyterapp !== undefined")
    # JupyterLab's notification center lists it (the status bar's bell), with no toast over the cells
    expect(page.locator(".jp-Notification-Toast-success")).to_have_count(0)
    expect(page.locator(".jp-Notification-Status")).to_contain_text(re.compile(r"[1-9]"))
    screenshot(page, "browser-background-success-notice.png")
    printed = run_cell(page, 6)
    expect(printed.locator(".jp-Cell-outputArea")).to_contain_text("NS: RunResult CANCELED RunResult SUCCESS")

    # Saved and reopened: the widgets come back from the kernel, the notices do not fire again.
    save(page)
    page.reload()
    expect(cell(page, len(cells) - 1)).to_be_visible(timeout=STEP_MS)  # (Shift+Enter on the last added one)
    wait_idle(page)
    expect(page.locator(".dbx-board .dbx-board-row").first).to_be_visible(timeout=STEP_MS)  # models restored
    run_cell(page, 3)  # the kernel answers: anything it had to send has come
    expect(notices(page)).to_have_count(0)
    assert page.evaluate("() => window.__dbxNotified") == []
    screenshot(page, "browser-background-after-reload.png")


def test_a_run_that_ends_after_a_reload_is_announced_then(page: Page, lab: Lab) -> None:
    cells = [
        *SETUP_CELLS,
        'get_ipython().magics_manager.registry["DbxMagics"].sandbox.add_job("twenty-seconds", duration=40);',
        "%dbx_run twenty-seconds --background --out later",
    ]
    open_in(page, lab, "background_reload.ipynb", cells)
    run_setup(page)
    run_cell(page, 2)
    start = run_cell(page, 3)
    expect(start.locator(".jp-Cell-outputArea")).to_contain_text("was launched in the background")
    page.reload()
    expect(cell(page, len(cells) - 1)).to_be_visible(timeout=STEP_MS)
    wait_idle(page)
    expect(notices(page)).to_have_count(0)
    ended = notices(page).filter(has_text="twenty-seconds: SUCCESS")
    expect(ended).to_have_count(1, timeout=40_000)
    screenshot(page, "browser-background-notice-after-reload.png")
