"""The notebooks a person opens first, executed by nbclient as they are shipped."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from .conftest import execute_notebook

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
# Every sandbox token has this shape; none may reach a saved notebook, widget state included.
SANDBOX_TOKEN = re.compile(r"dsbx-[0-9a-f]{16,}")


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[nbformat.NotebookNode, str]]:
    """Each notebook executed once for the module (a kernel start costs seconds)."""

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, name: str) -> tuple[nbformat.NotebookNode, str]:
            self[name] = execute(name, tmp_path_factory.mktemp(name.split(".")[0]))
            return self[name]

    return Lazy()


def execute(name: str, tmp_path: Path) -> tuple[nbformat.NotebookNode, str]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # store_widget_state=True on purpose: the saved widget state is where a credential would hide.
    execute_notebook(nb, tmp_path, timeout=180, store_widget_state=True)
    saved = tmp_path / name
    nbformat.write(nb, saved)
    return nb, saved.read_text()


def errors(nb: nbformat.NotebookNode) -> list[tuple[int, str]]:
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append((index, output.get("ename", "")))
    return found


@pytest.mark.parametrize("name", ["quickstart.ipynb", "python_api.ipynb"])
def test_notebook_runs_with_no_error_but_the_one_meant_to_fail(name, executed):
    nb, text = executed[name]
    expected = [
        i for i, c in enumerate(nb.cells) if "raises-exception" in c.get("metadata", {}).get("tags", [])
    ]
    assert [i for i, _ in errors(nb)] == expected
    assert not SANDBOX_TOKEN.search(text), "a token reached the saved notebook"
    for index, ename in errors(nb):
        assert ename == "RunFailed"
        tb = "".join(nb.cells[index].outputs[-1].get("traceback", []))
        assert "Traceback" not in tb and "ended FAILED" in tb  # one short message, no stack


def test_quickstart_shows_results_and_the_form(executed):
    nb, text = executed["quickstart.ipynb"]
    assert "application/vnd.jupyter.widget-view+json" in text  # the form and the progress widgets
    assert nb.metadata.get("widgets"), "widget state was stored (and checked for tokens)"
    outputs = "\n".join(
        o.get("text", "") + o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "'resultState': 'SUCCESS'" in outputs and '"table": "main.sales.transactions"' in outputs
    # from_form.ok, and the run page link: the sandbox serves its own run pages on loopback
    assert re.search(r"\(True,\s+'http://127\.0\.0\.1:\d+/jobs/\d+/runs/\d+", outputs)
    # the background section: the cell returned at once, the next one ran meanwhile, the wait filled `bg`
    assert "was launched in the background: `bg` holds its handle, then" in outputs
    assert "the kernel is free meanwhile: RunHandle" in outputs
    background = next(c for c in nb.cells if c.cell_type == "code" and "--background" in c.source)
    kept = [o for o in background.outputs if "text/html" in o.get("data", {})]  # put there from a thread
    assert kept and ": SUCCESS · took" in kept[0]["data"]["text/plain"], background.outputs
    assert "{'date': '2026-11-02'" in outputs and re.search(r"job +run +state +elapsed", outputs)


def test_the_saved_notebook_keeps_each_runs_final_state(executed):
    """Reopened without its kernel, a widget cannot render: a static copy of its end is in the cell."""
    nb, _ = executed["quickstart.ipynb"]
    cell = next(c for c in nb.cells if c.source.startswith("%%dbx_run daily-sales-report"))
    copies = [o for o in cell.outputs if "dbx-progress-snapshot" in o.get("data", {}).get("text/html", "")]
    assert len(copies) == 1
    html, text = copies[0]["data"]["text/html"], copies[0]["data"]["text/plain"]
    assert "SUCCESS" in html and "took" in html and "Launching" not in html
    assert "SUCCESS" in text and "daily-sales-report" in text
