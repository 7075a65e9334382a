"""A saved notebook tells the truth: executed by nbclient, every display of a run is, in the .ipynb, a
record of its last state (HTML and a readable sentence as ``text/plain``) with no widget left; a run
still going when the extension is unloaded, the board and the form say that watching stopped and how
to re-attach; nbconvert's HTML (``jupyter nbconvert --to html``) shows the same states."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest

from .conftest import execute_notebook

WIDGET = "application/vnd.jupyter.widget-view+json"
CELLS = [
    "%load_ext dbx_magic",
    "%dbx_sandbox --speed 20\n"
    "sb = get_ipython().magics_manager.registry['DbxMagics'].sandbox\n"
    "sb.add_job('forever', script=[('RUNNING', None)])",
    "%%dbx_run daily-sales-report --out ok\ndate = 2026-11-01",  # 2
    "%%dbx_run flaky-ingest --out bad\nfail = true",  # 3: fails its cell
    "%dbx_run daily-sales-report --background --out bg",  # 4
    "grid = [{'date': '2026-11-01'}, {'date': '2026-11-02'}]\n%dbx_run daily-sales-report --foreach grid --out runs",
    "%dbx_run forever --background --out longrun",  # 6: still going at the end
    "%dbx_wait bg",  # 7
    "%dbx_runs",  # 8
    "%dbx_form daily-sales-report --out formed",  # 9
    "%unload_ext dbx_magic",  # 10
]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    tmp = tmp_path_factory.mktemp("saved-nb")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.cells[3].metadata["tags"] = ["raises-exception"]
    execute_notebook(nb, tmp, store_widget_state=False)
    path = tmp / "saved.ipynb"
    nbformat.write(nb, path)
    return nb, path


def plain(cell: Any) -> str:
    return "\n".join(str(o.get("data", {}).get("text/plain", "")) + o.get("text", "") for o in cell.outputs)


def test_no_widget_is_left_in_the_saved_notebook(saved):
    nb, _ = saved
    left = [
        (i, o["output_type"])
        for i, c in enumerate(nb.cells)
        for o in c.outputs
        if WIDGET in o.get("data", {})
    ]
    assert left == []


def test_each_runs_text_plain_is_a_sentence_of_its_last_state(saved):
    nb, _ = saved
    for cell in nb.cells:
        text = plain(cell)
        assert "VBox(" not in text and "HTML(value=" not in text and "Launching" not in text, text
    assert "daily-sales-report · run " in plain(nb.cells[2]) and ": SUCCESS · took" in plain(nb.cells[2])
    assert ": FAILED" in plain(nb.cells[3])
    assert ": SUCCESS · took" in plain(nb.cells[4])  # the background run's end, put there from a thread
    assert "#0 date=2026-11-01: SUCCESS" in plain(nb.cells[5]) and "2/2 finished" in plain(nb.cells[5])
    longrun = plain(nb.cells[6])
    assert "RUNNING" in longrun and "Watching stopped when the kernel stopped" in longrun
    assert "`%load_ext dbx_magic` watches this notebook's runs again" in longrun
    board = plain(nb.cells[8])
    assert "forever" in board and "This board was live while its kernel ran" in board
    assert "This form was live while its kernel ran: run `%dbx_form` again" in plain(nb.cells[9])


def test_nbconvert_html_shows_the_same_states(saved):
    # what `jupyter nbconvert --to html` runs, without a process of its own
    from nbconvert import HTMLExporter

    _, path = saved
    page, _ = HTMLExporter().from_filename(str(path))
    for text in ("SUCCESS", "FAILED", "Watching stopped when the kernel stopped", "This board was live"):
        assert text in page, text
    assert "model not found" not in page and "Launching" not in page
