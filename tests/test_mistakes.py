"""A mistake caught before launch shows one block, whatever kind it is: a notebook executed by nbclient
in a real kernel (widgets and all), each cell's outputs read as the saved notebook keeps them."""

from __future__ import annotations

from typing import Any

import nbformat
import pytest

from .conftest import execute_notebook

MISTAKES = {
    "a flag the magic does not have": "%dbx_run daily-sales-report --bogus",
    "a job the workspace does not have": "%dbx_run no-such-job",
    "a parameter the job does not take": "%%dbx_run daily-sales-report\ndat = 2026-11-01",
    "a date that does not exist": "%%dbx_run daily-sales-report\ndate = 2026-13-45",
    "the same, in the background": "%%dbx_run daily-sales-report --background\ndate = 2026-13-45",
    "one set of a sweep": "%dbx_run daily-sales-report --foreach grid",
}


def shown(output: dict[str, Any]) -> bool:
    """True for an output a person sees: an error, text, or a display with something in it."""
    if output.get("output_type") == "error":
        return True
    if output.get("output_type") == "stream":
        return bool(output.get("text", "").strip())
    data = output.get("data", {})
    return any(str(v).strip() for v in data.values())


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    cells = [
        "%load_ext dbx_magic\n%dbx_sandbox --speed 20",
        "grid = [{'date': '2026-11-01'}, {'date': 'tomorrow'}]",
        *MISTAKES.values(),
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    tmp = tmp_path_factory.mktemp("mistakes")
    execute_notebook(nb, tmp, allow_errors=True)
    return nb


@pytest.mark.parametrize("what", list(MISTAKES))
def test_a_mistake_caught_before_launch_shows_one_block(executed, what):
    index = 2 + list(MISTAKES).index(what)
    outputs = [o for o in executed.cells[index].outputs if shown(o)]
    assert len(outputs) == 1, outputs  # IPython prints a UsageError on stderr: a block all the same
    text = outputs[0].get("text", "") + "".join(outputs[0].get("traceback", []))
    assert text.startswith("UsageError: ") and text.count("\n") <= 1, text
    assert "NOT STARTED" not in str(executed.cells[index].outputs)


def test_the_notebook_has_no_widget_left_for_them(executed):
    """No progress widget or grid stays on the page for a launch that never happened."""
    for cell in executed.cells[2:]:
        views = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert views == [], cell.source
