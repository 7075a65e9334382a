"""End to end in real Chromium: JupyterLab runs notebooks that use the form, the progress widget and
``%%dbx_run --cancel-on-interrupt`` against the sandbox, and the test clicks as a user would.

One JupyterLab server (loopback, token, temporary home and Jupyter dirs) serves the whole module; each
test writes its own notebook and opens it in a fresh browser context. Needs Debian's Chromium
(``/usr/bin/chromium``) and the ``playwright`` package; without them the tests skip, unless
``DBX_MAGIC_REQUIRE_BROWSER=1`` (CI) turns the skip into a failure. See
``/work/shared/guides/browser-tests.md`` for the traps these helpers avoid.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

# Without playwright the `chromium` fixture skips (or, in CI, fails) and says why.
with contextlib.suppress(ImportError):
    from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
STEP_MS = 30_000  # one step (a cell, a state change) gets this long: generous, yet well under a minute


def save(page: Page) -> None:
    """Save the notebook as Ctrl+S does, with the notebook focused; again if a keypress was lost while
    the page was busy (seen under load), until JupyterLab no longer marks it dirty (bounded)."""
    for attempt in range(3):
        page.locator(".jp-NotebookPanel-toolbar").first.click()  # the notebook has the focus
        page.keyboard.press("Control+s")
        try:
            expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=STEP_MS // 3)
            return
        except AssertionError:
            if attempt == 2:
                raise


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Belt and braces: no host name resolves, so nothing but the literal 127.0.0.1 is reachable.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
LIVE_STATES = {"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY"}
SETUP_CELLS = [
    "%load_ext dbx_magic",
    "%dbx_sandbox --speed 2\n"
    'get_ipython().magics_manager.registry["DbxMagics"].sandbox.add_job("slow-job", duration=600);',
]

# Records every text the progress widget's state badge shows, in order, as the frontend renders it
# (a poll-by-poll change can be quicker than a test's own polling).
RECORD_BADGES_JS = """() => {
  window.__dbxStates = [];
  const record = () => {
    const badge = document.querySelector('.dbx-progress-state .dbx-state-badge');
    const text = badge ? badge.textContent.trim() : null;
    const seen = window.__dbxStates;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
  };
  new MutationObserver(record).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def _unavailable(reason: str) -> NoReturn:
    """Skip on a developer's machine; fail where the browser is required (CI)."""
    if os.environ.get("DBX_MAGIC_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DBX_MAGIC_REQUIRE_BROWSER=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


def _chromium_path() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab: where it listens, its token, the directory it serves."""

    url: str
    token: str
    root: Path
    log: Path

    def api(self, method: str, path: str) -> Any:
        """Call the server's REST API; returns the decoded JSON (None for an empty body)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def notebook(self, name: str, cells: list[str]) -> str:
        """Write a notebook of code cells into the served directory; returns its file name."""
        nb = {
            "cells": [
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "id": f"cell-{i}",
                    "metadata": {},
                    "outputs": [],
                    "source": source,
                }
                for i, source in enumerate(cells)
            ],
            "metadata": {
                "kernelspec": {
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                    "name": "python3",
                },
                "language_info": {"name": "python"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        (self.root / name).write_text(json.dumps(nb, indent=1), encoding="utf-8")
        return name

    def log_tail(self, lines: int = 40) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@pytest.fixture(scope="module")
def chromium() -> str:
    """The system Chromium's path (skips, or fails in CI, when it or playwright is missing)."""
    path = _chromium_path()
    if path is None:
        _unavailable("Chromium not found (/usr/bin/chromium or `chromium` on PATH): apt-get install chromium")
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            _unavailable(f"the {module} package is not installed: pip install -e '.[dev]'")
    return path


LAB_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException)


def _lab_answers(proc: subprocess.Popen[bytes], server: Lab) -> bool:
    """Wait until the server answers (True) or exits (False); fails after 60 s of neither.

    Until it has bound its port, another process may hold that port: a refused connection, or one
    that speaks another protocol (a kernel's ZeroMQ socket: BadStatusLine), both mean "not yet".
    """
    deadline = time.monotonic() + 60
    while proc.poll() is None:
        try:
            server.api("GET", "/api/status")
            return True
        except LAB_ERRORS:
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer in 60 s:\n{server.log_tail()}", pytrace=False)
            time.sleep(0.2)
    return False


def _stop_lab(proc: subprocess.Popen[bytes], server: Lab) -> None:
    """Shut the kernels down through the server, so none outlives it, then stop it by its pid."""
    if proc.poll() is not None:
        return  # it has exited (it lost its port)
    with contextlib.suppress(*LAB_ERRORS, OSError):
        for kernel in server.api("GET", "/api/kernels") or []:
            server.api("DELETE", f"/api/kernels/{kernel['id']}")
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def lab(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 with a token, in temporary dirs; stopped by its pid at the end.

    The server's kernels talk over Unix sockets (in a short runtime dir: a socket's path is at most
    107 bytes), so they take no TCP port. The server's own port is found free, then bound by the
    server a moment later; another process can take it in between, so a start that lost its port
    is tried again on another.
    """
    base = tmp_path_factory.mktemp("jupyterlab")
    runtime = Path(tempfile.mkdtemp(prefix="dbxlab-"))
    dirs = {name: base / name for name in ("home", "config", "data", "ipython", "settings", "workspaces")}
    for path in dirs.values():
        path.mkdir()
    root = base / "notebooks"
    root.mkdir()
    # Without this the "get notified about Jupyter news?" popup covers the notebook.
    notify = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notify.parent.mkdir(parents=True)
    notify.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "JUPYTER", "IPYTHON"))}
    env.update(
        HOME=str(dirs["home"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(runtime),
        IPYTHONDIR=str(dirs["ipython"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        JUPYTER_PLATFORM_DIRS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    token = secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--KernelManager.transport=ipc",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the toast of the background notices
        "--allow-root",
    ]
    proc: subprocess.Popen[bytes] | None = None
    try:
        for attempt in range(3):
            port = _free_port()
            log = base / f"jupyterlab-{attempt}.log"
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [*command, f"--port={port}"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT
                )
            server = Lab(f"http://127.0.0.1:{port}", token, root, log)
            if _lab_answers(proc, server):
                break
            if attempt == 2 or "is already in use" not in server.log_tail():
                pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{server.log_tail()}", pytrace=False)
        yield server
    finally:  # also when the server never answered, or the wait was interrupted
        if proc is not None:
            _stop_lab(proc, server)
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """Headless system Chromium, shared by the module's tests."""
    expect.set_options(timeout=STEP_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


OpenNotebook = Callable[[str, list[str]], "Page"]


@pytest.fixture
def open_notebook(lab: Lab, browser: Browser, request: pytest.FixtureRequest) -> Iterator[OpenNotebook]:
    """A function that writes a notebook, opens it in a fresh page, and waits for an idle kernel.

    When the test fails, each page it opened is saved as ``test-artifacts/browser-failure-*.png``.
    """
    contexts: list[BrowserContext] = []
    failed_before = request.session.testsfailed

    def open_(name: str, cells: list[str]) -> Page:
        lab.notebook(name, cells)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        context.set_default_timeout(STEP_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
        expect(page.locator(".jp-Notebook .jp-CodeCell")).to_have_count(len(cells), timeout=STEP_MS)
        wait_idle(page)
        return page

    yield open_
    failed = request.session.testsfailed > failed_before  # the call phase was reported before teardown
    for number, context in enumerate(contexts):
        if failed:
            for page in context.pages:
                name = re.sub(r"[^\w.-]+", "-", request.node.name)
                screenshot(page, f"browser-failure-{name}-{number}.png")
        context.close()


# -- driving JupyterLab ------------------------------------------------------------------------------


def wait_idle(page: Page) -> None:
    """Wait until the status bar says the kernel is idle (Shift+Enter before that may be lost)."""
    status = page.locator("#jp-main-statusbar .jp-StatusBar-TextItem", has_text="| Idle")
    expect(status).to_have_count(1, timeout=STEP_MS)


def cell(page: Page, index: int) -> Locator:
    """The notebook's code cell number ``index`` (the test wrote the notebook, so it knows the order)."""
    return page.locator(".jp-Notebook .jp-CodeCell").nth(index)


def output_text(code_cell: Locator) -> str:
    return code_cell.locator(".jp-Cell-outputArea").inner_text()


def start_cell(page: Page, index: int) -> Locator:
    """Shift+Enter on a cell; pressed again when JupyterLab swallowed it (the prompt must change)."""
    target = cell(page, index)
    prompt = target.locator(".jp-InputPrompt")
    before = prompt.inner_text().strip()
    for _attempt in range(3):
        wait_idle(page)
        target.locator(".jp-Cell-inputArea .cm-content").click()
        page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).not_to_have_text(before, timeout=5_000)
            expect(prompt).to_have_text(re.compile(r"^\[(\*|\d+)\]:$"), timeout=5_000)
            return target
        except AssertionError:
            continue
    raise AssertionError(f"cell {index} never started: its prompt stayed {before!r} after 3 Shift+Enter")


def run_cell(page: Page, index: int) -> Locator:
    """Run a cell and wait until it finished (its prompt shows an execution count)."""
    target = start_cell(page, index)
    expect(target.locator(".jp-InputPrompt")).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=STEP_MS)
    return target


def run_setup(page: Page) -> None:
    """Run the SETUP_CELLS: the magics loaded, the sandbox started (with a slow job added)."""
    run_cell(page, 0)
    sandbox = run_cell(page, 1)
    expect(sandbox.locator(".jp-OutputArea")).to_contain_text("Sandbox workspace at http://127.0.0.1:")
    assert "Error" not in output_text(sandbox)


def badge(page: Page) -> Locator:
    return page.locator(".dbx-progress .dbx-progress-state .dbx-state-badge")


def wait_live(page: Page) -> str:
    """Wait until the progress widget shows the run going (a state the API reports, not yet final)."""
    live = "|".join(sorted(LIVE_STATES))
    expect(badge(page)).to_have_text(re.compile(rf"^({live})$"), timeout=STEP_MS)
    return badge(page).inner_text().strip()


def recorded_states(page: Page) -> list[str]:
    return list(page.evaluate("() => window.__dbxStates"))


def no_stack_trace(text: str) -> None:
    for marker in ("Traceback", "KeyboardInterrupt", 'File "', "---------"):
        assert marker not in text, f"a stack trace in the cell's output:\n{text}"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


# -- the scenarios -----------------------------------------------------------------------------------


def test_form_run_goes_to_success_and_lands_in_the_namespace(open_notebook: OpenNotebook) -> None:
    """Run from the form: the badge goes through a live state to SUCCESS; the next cell sees the result."""
    page = open_notebook(
        "form_success.ipynb",
        [
            "%load_ext dbx_magic",
            "%dbx_sandbox --speed 2",
            "%dbx_form daily-sales-report --out from_form",
            "print('NS:', from_form.run_id, from_form.result_state, from_form.ok)",
        ],
    )
    run_cell(page, 0)
    expect(run_cell(page, 1).locator(".jp-OutputArea")).to_contain_text("Sandbox workspace at")
    form_cell = run_cell(page, 2)
    form = form_cell.locator(".dbx-form")
    expect(form.locator(".dbx-form-status")).to_contain_text("pre-filled with their defaults")
    expect(form.locator(".dbx-param-row")).to_have_count(2)
    expect(form.locator(".dbx-form-cancel")).to_be_disabled()

    page.evaluate(RECORD_BADGES_JS)
    form.locator(".dbx-form-run").click()
    expect(badge(page)).to_have_text("SUCCESS", timeout=STEP_MS)
    states = recorded_states(page)
    live = [s for s in states if s in LIVE_STATES]
    assert live, f"the badge never showed a live state before the end: {states}"
    assert states[-1] == "SUCCESS" and states.index(live[0]) < states.index("SUCCESS"), states
    expect(form.locator(".dbx-form-status")).to_contain_text("SUCCESS; the result is in from_form")
    expect(form.locator(".dbx-form-status code")).to_have_text("from_form")  # code, not literal backticks
    link = form.locator(".dbx-progress-header a.dbx-run-link")
    run_id = re.fullmatch(r"run (\d+)", link.inner_text().strip())
    assert run_id, link.inner_text()
    expect(link).to_have_attribute("href", re.compile(rf"#job/\d+/run/{run_id.group(1)}$"))
    expect(form.locator(".dbx-form-run")).to_be_enabled()

    printed = run_cell(page, 3)
    expect(printed.locator(".jp-OutputArea")).to_contain_text(f"NS: {run_id.group(1)} SUCCESS True")
    form.scroll_into_view_if_needed()
    screenshot(page, "browser-form-success.png")


@pytest.mark.parametrize("button", ["dbx-form-cancel", "dbx-progress-cancel"])
def test_cancel_button_ends_the_run_canceled(open_notebook: OpenNotebook, button: str) -> None:
    """The form's Cancel (or the progress widget's) on a long run: the badge and the result end CANCELED."""
    page = open_notebook(
        f"{button}.ipynb",
        [*SETUP_CELLS, "%dbx_form slow-job --out cancelled", "print('NS:', cancelled.result_state)"],
    )
    run_setup(page)
    form = run_cell(page, 2).locator(".dbx-form")
    expect(form.locator(".dbx-form-status")).to_contain_text("pre-filled")
    form.locator(".dbx-form-run").click()
    wait_live(page)
    expect(form.locator(".dbx-form-cancel")).to_be_enabled()  # enabled once the run id is known
    expect(form.locator(".dbx-progress-cancel")).to_be_visible()
    form.locator(f".{button}").click()
    expect(badge(page)).to_have_text("CANCELED", timeout=STEP_MS)
    expect(form.locator(".dbx-form-status")).to_contain_text("ended CANCELED")
    expect(form.locator(".dbx-form-status")).to_contain_text("The result is in cancelled")
    expect(form.locator(".dbx-progress-cancel")).to_be_hidden()
    expect(form.locator(".dbx-form-cancel")).to_be_disabled()
    expect(form.locator(".dbx-form-run")).to_be_enabled()

    printed = run_cell(page, 3)
    expect(printed.locator(".jp-OutputArea")).to_contain_text("NS: CANCELED")
    screenshot(page, f"browser-{button}.png")


def test_interrupt_cancels_a_blocking_run(open_notebook: OpenNotebook) -> None:
    """JupyterLab's stop button during ``%dbx_run --cancel-on-interrupt``: a clean end, CANCELED."""
    page = open_notebook(
        "interrupt.ipynb",
        [
            *SETUP_CELLS,
            "%dbx_run slow-job --cancel-on-interrupt --out inter",
            "print('NS:', inter.result_state, inter.result_state == 'CANCELED')",
        ],
    )
    run_setup(page)
    running = start_cell(page, 2)
    expect(running.locator(".dbx-progress-hint")).to_contain_text("the run will be cancelled")
    wait_live(page)
    expect(running.locator(".jp-InputPrompt")).to_have_text("[*]:")
    page.locator('.jp-NotebookPanel-toolbar [data-command="notebook:interrupt-kernel"]').click()

    prompt = running.locator(".jp-InputPrompt")
    expect(prompt).to_have_text(re.compile(r"^\[\d+\]:$"), timeout=STEP_MS)
    output = running.locator(".jp-Cell-outputArea")  # the cell's own (the widget holds one for results)
    expect(output).to_contain_text(re.compile(r"Cancelled run \d+ on interrupt; it is now CANCELED\."))
    no_stack_trace(output_text(running))
    expect(badge(page)).to_have_text("CANCELED", timeout=STEP_MS)
    expect(running.locator(".dbx-progress-hint")).to_have_text("")  # no more "interrupt to stop"

    printed = run_cell(page, 3)
    expect(printed.locator(".jp-OutputArea")).to_contain_text("NS: CANCELED True")
    screenshot(page, "browser-interrupt.png")


def test_repair_from_the_form_by_a_click(open_notebook: OpenNotebook) -> None:
    """A run fails on a parameter; the progress widget offers Repair; fix the parameter, click it: only the
    failed task and the one after it run again, and the namespace holds both attempts and the repair."""
    page = open_notebook(
        "repair.ipynb",
        [
            "%load_ext dbx_magic",
            "%dbx_sandbox --speed 2",
            "%dbx_form etl-with-checks --out fixed",
            "print('NS:', fixed.ok, [r.kind for r in fixed.repairs], fixed.repairs[-1].tasks,"
            " [(a.key, a.attempt_number) for a in fixed.attempts if a.key == 'validate'])",
        ],
    )
    run_cell(page, 0)
    expect(run_cell(page, 1).locator(".jp-OutputArea")).to_contain_text("Sandbox workspace at")
    form = run_cell(page, 2).locator(".dbx-form")
    expect(form.locator(".dbx-form-status")).to_contain_text("pre-filled with their defaults")
    expect(form.locator(".dbx-param-row")).to_have_count(3)  # run_date, strict, checks: the job's parameters
    # strict is a true/false dropdown in the job's notebook, so the form shows it as a checkbox
    value = form.locator(".dbx-param-row").filter(has_text="strict").locator("input[type=checkbox]")
    value.check()

    form.locator(".dbx-form-run").click()
    expect(badge(page)).to_have_text("FAILED", timeout=STEP_MS)
    expect(form.locator(".dbx-task-table")).to_contain_text("strict checks failed")
    repair = form.locator(".dbx-progress-repair")
    expect(repair).to_be_visible()
    form.scroll_into_view_if_needed()
    screenshot(page, "browser-repair-offered.png")
    value.uncheck()
    page.evaluate(RECORD_BADGES_JS)
    repair.click()
    expect(badge(page)).to_have_text("SUCCESS", timeout=STEP_MS)
    states = recorded_states(page)
    assert any(s in LIVE_STATES for s in states), f"the repair was never seen going: {states}"
    expect(form.locator(".dbx-task-table")).to_contain_text("attempt 2")
    expect(form.locator(".dbx-form-status")).to_contain_text("SUCCESS; the result is in fixed")
    expect(form.locator(".dbx-progress-repair")).to_be_hidden()

    printed = run_cell(page, 3)
    expect(printed.locator(".jp-OutputArea")).to_contain_text(
        "NS: True ['ORIGINAL', 'REPAIR'] ('validate', 'publish') [('validate', 0), ('validate', 1)]"
    )
    form.scroll_into_view_if_needed()
    screenshot(page, "browser-repair.png")


# -- results and the typed form (issue 18) -----------------------------------------------------------

TYPED_JOB_CELL = """from dbx_magic.sandbox import Task
_sb = get_ipython().magics_manager.registry["DbxMagics"].sandbox
_src = '''# Databricks notebook source
dbutils.widgets.text("run_date", "2026-11-01", "Run date")
dbutils.widgets.dropdown("region", "emea", ["emea", "amer", "apac"], "Region")
dbutils.widgets.dropdown("dry_run", "true", ["true", "false"], "Dry run")
dbutils.widgets.text("owner", "data-team", "Owner")'''
_sb.add_job("typed-report", tasks=[Task("report", "/Workspace/Shared/typed_report", source=_src)]);"""


def test_results_show_in_an_isolated_frame_the_planted_script_cannot_reach(
    open_notebook: OpenNotebook,
) -> None:
    """``result.show()`` and the widget's Results button: the page's table is visible inside a sandboxed
    frame, and its script, which tries to set ``window.parent.__dbx_export_reached``, cannot."""
    page = open_notebook(
        "results.ipynb",
        [
            "%load_ext dbx_magic",
            "%dbx_sandbox --speed 5",
            "%%dbx_run daily-sales-report --out sales\ndate = 2026-11-05",
            "sales.show()",
        ],
    )
    run_cell(page, 0)
    expect(run_cell(page, 1).locator(".jp-OutputArea")).to_contain_text("Sandbox workspace at")
    run = run_cell(page, 2)
    expect(run.locator(".dbx-progress .dbx-state-badge")).to_have_text("SUCCESS")
    shown = run_cell(page, 3)
    frame = shown.locator("iframe.dbx-export-frame")
    expect(frame).to_have_count(1)
    expect(frame).to_have_attribute("sandbox", "allow-scripts")  # JupyterLab kept it: no same-origin
    inside = shown.frame_locator("iframe.dbx-export-frame")
    expect(inside.locator("td", has_text="2026-11-05").first).to_be_visible()
    expect(inside.locator("img")).to_be_visible()  # the page's inline image
    frame.scroll_into_view_if_needed()
    screenshot(page, "browser-results-frame.png")

    # The same from the progress widget's Results button, once the cell is done (clicks arrive then).
    results = run.locator(".dbx-progress-results")
    expect(results).to_be_visible()
    results.click()
    expect(
        run.frame_locator("iframe.dbx-export-frame").locator("td", has_text="2026-11-05").first
    ).to_be_visible()
    expect(run.locator("iframe.dbx-export-frame")).to_have_attribute("sandbox", "allow-scripts")

    # Both frames' scripts ran into the isolation: the notebook's window was never touched.
    assert page.evaluate("() => typeof window.__dbx_export_reached") == "undefined"
    frames = [f for f in page.frames if f is not page.main_frame and f.url in ("about:srcdoc", "")]
    assert frames and all(f.evaluate("() => window.origin") == "null" for f in frames)  # opaque origins


def test_the_form_has_typed_inputs_prefilled_with_the_defaults(open_notebook: OpenNotebook) -> None:
    """A job whose notebook declares a date, a dropdown and a true/false flag: the form shows a date
    picker, a dropdown and a checkbox with the defaults, and marks a value changed from its default."""
    page = open_notebook(
        "typed_form.ipynb",
        [
            "%load_ext dbx_magic",
            "%dbx_sandbox --speed 5",
            TYPED_JOB_CELL,
            "%dbx_form typed-report --out typed",
        ],
    )
    run_cell(page, 0)
    expect(run_cell(page, 1).locator(".jp-OutputArea")).to_contain_text("Sandbox workspace at")
    run_cell(page, 2)
    form = run_cell(page, 3).locator(".dbx-form")
    expect(form.locator(".dbx-param-row")).to_have_count(4)
    expect(form.locator(".dbx-param-date input[type=date]")).to_have_value("2026-11-01")
    expect(form.locator(".dbx-param-dropdown select")).to_have_value("emea")
    expect(form.locator(".dbx-param-flag input[type=checkbox]")).to_be_checked()
    expect(form.locator(".dbx-param-text input")).to_have_value("data-team")
    expect(form.locator(".dbx-param-note", has_text="default")).to_have_count(4)

    form.locator(".dbx-param-dropdown select").select_option("apac")
    changed = form.locator(".dbx-param-row.dbx-param-changed")
    expect(changed).to_have_count(1)
    expect(changed.locator(".dbx-param-note")).to_contain_text("changed (default emea)")
    form.scroll_into_view_if_needed()
    screenshot(page, "browser-typed-form.png")


def test_a_saved_notebook_reopened_shows_each_runs_final_state(lab: Lab, open_notebook: OpenNotebook) -> None:
    """The live widget hides its static copy; saved and reopened without that kernel, where no widget can
    render, the copy shows the run's end (not the first "Launching…")."""
    name = "reopened.ipynb"
    page = open_notebook(name, [*SETUP_CELLS, "%%dbx_run daily-sales-report --out res\ndate = 2026-11-01"])
    run_setup(page)
    done = run_cell(page, 2)
    expect(done.locator(".dbx-progress .dbx-state-badge")).to_have_text("SUCCESS", timeout=STEP_MS)
    expect(done.locator(".dbx-progress-snapshot")).to_be_visible()  # at its end, the record: one display
    expect(done.locator(".widget-box.dbx-progress")).to_have_count(0)  # and no widget
    save(page)
    for kernel in lab.api("GET", "/api/kernels") or []:
        lab.api("DELETE", f"/api/kernels/{kernel['id']}")
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    reopened = cell(page, 2)
    copy = reopened.locator(".dbx-progress-snapshot")
    expect(copy).to_be_visible(timeout=STEP_MS)
    expect(copy).to_contain_text("SUCCESS")
    expect(copy).to_contain_text("took")
    assert "Launching" not in copy.inner_text()
    screenshot(page, "browser-reopened.png")


def test_the_journeys_a_newcomer_takes_end_honestly(open_notebook: OpenNotebook) -> None:
    """A job that fails, an unknown job, a sweep, a re-attach: each display says how it ended, with no
    'Launching' and no live control left, and the whole output is on the page."""
    page = open_notebook(
        "journeys.ipynb",
        [
            *SETUP_CELLS,
            "%%dbx_run flaky-ingest --out bad\nfail = true",
            "%dbx_run no-such-job",
            "grid = [{'date': '2026-11-01'}, {'date': '2026-11-02'}]",
            "%dbx_run daily-sales-report --foreach grid --out runs",
            "%dbx_run daily-sales-report --no-wait --out later",
            "%dbx_wait {later.run_id} --out later",
        ],
    )
    run_setup(page)
    failed = run_cell(page, 2)
    expect(failed.locator(".dbx-progress .dbx-state-badge")).to_have_text("FAILED")
    expect(failed.locator(".jp-Cell-outputArea")).to_contain_text("ended FAILED: ValueError: asked to fail")
    no_stack_trace(output_text(failed))
    screenshot(page, "browser-journey-failed.png")

    unknown = run_cell(page, 3)
    expect(unknown.locator(".jp-Cell-outputArea")).to_contain_text("No job is named 'no-such-job'")
    assert "Launching" not in output_text(unknown) and "LAUNCHING" not in output_text(unknown)
    expect(unknown.locator(".dbx-progress-cancel:visible")).to_have_count(0)
    expect(unknown.locator(".dbx-progress:visible")).to_have_count(0)  # one block: the error alone

    run_cell(page, 4)
    sweep = run_cell(page, 5)
    expect(sweep.locator(".dbx-sweep-summary")).to_contain_text("2/2 finished · 2 succeeded")
    expect(sweep.locator(".dbx-sweep-table")).to_contain_text('"date": "2026-11-02"')  # outputs whole
    screenshot(page, "browser-journey-sweep.png")

    run_cell(page, 6)
    again = run_cell(page, 7)
    expect(again.locator(".dbx-progress .dbx-state-badge")).to_have_text("SUCCESS")
    expect(again.locator(".dbx-progress-elapsed")).to_contain_text("took")
    for index in (2, 3, 5, 7):
        shown = output_text(cell(page, index))
        assert "Launching" not in shown, (index, shown)
    expect(page.locator(".dbx-progress-cancel:visible")).to_have_count(0)  # nothing left that cannot act
    screenshot(page, "browser-journey-reattach.png")


def test_the_form_with_an_unknown_job_and_under_a_restarted_sandbox(open_notebook: OpenNotebook) -> None:
    """In the form: a job name that matches none says so and leaves no parameters; after %dbx_sandbox is
    run again under the open form, Run goes to the new sandbox and succeeds (no hang, no network advice)."""
    page = open_notebook(
        "form_journeys.ipynb",
        [*SETUP_CELLS, "%dbx_form daily-sales-report --out again", "%dbx_sandbox --speed 4"],
    )
    run_setup(page)
    form = run_cell(page, 2).locator(".dbx-form")
    expect(form.locator(".dbx-param-row")).not_to_have_count(0)
    job = form.locator(".dbx-form-job input")
    job.fill("daily-sales-reprot")
    job.press("Enter")
    expect(form.locator(".dbx-form-status")).to_contain_text("did you mean 'daily-sales-report'?")
    expect(form.locator(".dbx-param-row")).to_have_count(0)
    screenshot(page, "browser-form-unknown-job.png")
    job.fill("daily-sales-report")
    job.press("Enter")
    expect(form.locator(".dbx-param-row")).not_to_have_count(0)
    run_cell(page, 3)  # a new sandbox; the first one stops
    form.locator(".dbx-form-run").click()
    expect(form.locator(".dbx-form-status")).to_contain_text("SUCCESS", timeout=STEP_MS)
    screenshot(page, "browser-form-restarted-sandbox.png")
