"""The README's code blocks run as written: its notebook and Python blocks, in order, in a real kernel.

Conventions (the README keeps to them, and this test holds it to them):
- ```python blocks are cells a user pastes into one notebook, top to bottom; they run here in that order
  in one kernel (nbclient), and must raise nothing unless marked ``<!-- raises -->`` on the line before;
- ```bash blocks are shell commands: the first screen's two commands are what CI runs verbatim
  (.ci/run), and ``python -m dbx_magic demo`` is also run in a real terminal by test_terminal.py;
- ```ini blocks are configuration files, ```text blocks are diagrams and listings: nothing to run;
- a block that needs a real workspace is marked ``<!-- not run: ... -->`` on the line before.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from .conftest import execute_notebook

README = Path(__file__).resolve().parent.parent / "README.md"
FENCE = re.compile(r"(?:^<!-- (?P<mark>[^>]*) -->\n)?^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.M | re.S)
KNOWN = {"python", "bash", "ini", "text"}


def blocks() -> list[tuple[str, str, str]]:
    """(language, mark, body) of every fenced block, in order."""
    return [(m["lang"], m["mark"] or "", m["body"]) for m in FENCE.finditer(README.read_text())]


def test_every_block_says_what_it_is():
    found = blocks()
    assert found, "the README has code blocks"
    unknown = [(lang, body[:40]) for lang, _, body in found if lang not in KNOWN]
    assert unknown == [], "a block without a language (python, bash, ini, text) is ambiguous"


def test_the_first_screen_commands_are_the_ones_ci_runs():
    bash = [body.strip() for lang, _, body in blocks() if lang == "bash"]
    assert bash[:2] == [
        "python -m pip install -e . && python -m dbx_magic demo",
        'python -m pip install -e ".[test]" && python -m pytest -m "not browser"',
    ]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "python -m pip install -q -e . && python -m dbx_magic demo" in ci
    assert 'python -m pip install -q -e ".[test]"' in ci and "python -m pytest\n" in ci


def test_the_notebook_and_python_blocks_run_as_written(tmp_path):
    cells = []
    for lang, mark, body in blocks():
        if lang != "python" or mark.startswith("not run"):
            continue
        cell = nbformat.v4.new_code_cell(body.rstrip("\n"))
        if mark == "raises":
            cell.metadata["tags"] = ["raises-exception"]
        cells.append(cell)
    assert len(cells) >= 5, "the README's notebook and Python sections are here"
    nb = nbformat.v4.new_notebook(cells=cells)
    execute_notebook(nb, tmp_path, timeout=180)
    failures = []
    for cell in nb.cells:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        meant = "raises-exception" in cell.metadata.get("tags", [])
        if bool(errors) != meant:
            failures.append((cell.source.splitlines()[0], [e.ename + ": " + e.evalue for e in errors]))
        for error in errors:
            assert "Traceback" not in "".join(error.traceback), cell.source  # one short message
    assert failures == [], failures


@pytest.mark.parametrize("lang", ["ini"])
def test_configuration_blocks_name_no_real_token(lang):
    for found, _, body in blocks():
        if found == lang:
            assert not re.search(r"dapi[0-9a-f]{32}", body)
