"""A saved notebook tells the truth in JupyterLab (and then in Notebook 7): a blocking run, a failed run, a background run still
going, a sweep, the board and the form; the kernel shut down, the notebook saved, the page reloaded:
no "Error displaying widget", every run's last state visible, no button enabled; the .ipynb's
text/plain outputs and ``jupyter nbconvert --to html`` say the same."""

# ruff: noqa: F811 - the fixtures imported from test_browser are named as test parameters

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest

from .test_browser import (  # noqa: F401 - fixtures used by name
    SETUP_CELLS,
    STEP_MS,
    Lab,
    OpenNotebook,
    browser,
    cell,
    chromium,
    lab,
    open_notebook,
    run_cell,
    run_setup,
    save,
    screenshot,
    wait_idle,
)

with contextlib.suppress(ImportError):
    from playwright.sync_api import expect

pytestmark = pytest.mark.browser

CELLS = [
    *SETUP_CELLS,
    "%%dbx_run daily-sales-report --out ok\ndate = 2026-11-01",  # 2
    "%%dbx_run flaky-ingest --out bad\nfail = true",  # 3
    "%dbx_run slow-job --background --out bg",  # 4: still going when the kernel stops
    "grid = [{'date': '2026-11-01'}, {'date': '2026-11-02'}]\n%dbx_run daily-sales-report --foreach grid --out runs",
    "%dbx_runs",  # 6
    "%dbx_form daily-sales-report --out formed",  # 7
]
STATES = {
    2: "SUCCESS",
    3: "FAILED",
    4: "Watching stopped",
    5: "2 succeeded",
    6: "slow-job",
    7: "This form was live",
}


def test_a_saved_notebook_reopened_without_its_kernel_tells_the_truth(
    lab: Lab, open_notebook: OpenNotebook
) -> None:
    name = "saved_truth.ipynb"
    page = open_notebook(name, CELLS)
    run_setup(page)
    for index in range(2, len(CELLS)):
        run_cell(page, index)
    expect(cell(page, 7).locator(".dbx-form")).to_be_visible()

    page.locator(".jp-NotebookPanel-toolbar").click()  # the notebook has the focus for the menu
    for kernel in lab.api("GET", "/api/kernels") or []:
        lab.api("DELETE", f"/api/kernels/{kernel['id']}")  # as Kernel > Shut Down Kernel does
    expect(cell(page, 4).locator(".jp-Cell-outputArea")).to_contain_text("Watching stopped", timeout=STEP_MS)
    save(page)

    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    expect(cell(page, len(CELLS) - 1)).to_be_visible(timeout=STEP_MS)  # (Shift+Enter added one more)
    for index, text in STATES.items():
        expect(cell(page, index).locator(".jp-Cell-outputArea")).to_contain_text(text, timeout=STEP_MS)
    notebook = page.locator(".jp-Notebook")
    expect(notebook).not_to_contain_text("Error displaying widget")
    expect(notebook).not_to_contain_text("Launching")
    expect(page.locator(".jp-Notebook .jp-OutputArea button:enabled")).to_have_count(0)
    screenshot(page, "browser-saved-truth.png")

    saved = json.loads((lab.root / name).read_text())
    plain = [
        "".join(
            str(o.get("data", {}).get("text/plain", "")) + "".join(o.get("text", "")) for o in c["outputs"]
        )
        for c in saved["cells"]
    ]
    for index, text in STATES.items():
        assert text in plain[index], (index, plain[index])
    subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(lab.root / name)],
        check=True,
        capture_output=True,
    )
    html = (lab.root / name).with_suffix(".html").read_text()
    for text in STATES.values():
        assert text in html, text
    assert "model not found" not in html

    # The same file in Notebook 7 (served by the same server): the same truth.
    page.goto(f"{lab.url}/notebooks/{name}?token={lab.token}")
    expect(cell(page, len(CELLS) - 1)).to_be_visible(timeout=STEP_MS)
    for index, text in STATES.items():
        expect(cell(page, index).locator(".jp-Cell-outputArea")).to_contain_text(text, timeout=STEP_MS)
    notebook = page.locator(".jp-Notebook")
    expect(notebook).not_to_contain_text("Error displaying widget")
    expect(page.locator(".jp-Notebook .jp-OutputArea button:enabled")).to_have_count(0)
    screenshot(page, "browser-saved-truth-notebook7.png")
