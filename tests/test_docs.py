"""The docs site (docs/, mkdocs.yml) as written: every code block runs, and the magics and commands it
documents are the ones the parsers have.

Conventions (as tests/test_readme.py holds the README to them):
- each page's ```python blocks are cells of one notebook, top to bottom, run in a kernel of their own
  (nbclient); a cell must raise nothing unless marked ``<!-- raises -->`` on the line before;
- ```bash blocks are command lines; those of ``python -m dbx_magic`` run, in the page's order, against a
  fresh sandbox (DATABRICKS_HOST/TOKEN set), each line must exit 0 (a block marked ``raises``: not 0);
- a block marked ``<!-- not run: why -->`` is not run (an install command CI runs, a server that runs
  until Ctrl-C); ```ini, ```text and ```yaml blocks are files and listings.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic.sandbox import Sandbox

from .conftest import execute_notebook

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
FENCE = re.compile(r"(?:^<!-- (?P<mark>[^>]*) -->\n)?^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```$", re.M | re.S)
KNOWN = {"python", "bash", "ini", "text", "yaml"}
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
WITH_PYTHON = [p for p in PAGES if "```python" in (DOCS / p).read_text()]
WITH_COMMANDS = [p for p in PAGES if re.search(r"^python -m dbx_magic ", (DOCS / p).read_text(), re.M)]


def blocks(page: str) -> list[tuple[str, str, str]]:
    """(language, mark, body) of every fenced block of a page, in order."""
    return [(m["lang"], m["mark"] or "", m["body"]) for m in FENCE.finditer((DOCS / page).read_text())]


def section(page: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    text = (DOCS / page).read_text()
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"{page} has no section '## {heading}'"
    return match.group(1)


def test_every_page_is_in_the_nav_and_every_block_says_what_it_is():
    nav = (ROOT / "mkdocs.yml").read_text()
    assert [p for p in PAGES if p not in nav] == []
    for page in PAGES:
        unknown = [(lang, body[:40]) for lang, _, body in blocks(page) if lang not in KNOWN]
        assert unknown == [], page


@pytest.mark.parametrize("page", WITH_PYTHON)
def test_the_python_blocks_of_a_page_run_as_written(page, tmp_path):
    cells = []
    for lang, mark, body in blocks(page):
        if lang != "python" or mark.startswith("not run"):
            continue
        cell = nbformat.v4.new_code_cell(body.rstrip("\n"))
        if mark == "raises":
            cell.metadata["tags"] = ["raises-exception"]
        cells.append(cell)
    nb = nbformat.v4.new_notebook(cells=cells)
    execute_notebook(nb, tmp_path, timeout=180)
    failures = []
    for cell in nb.cells:
        errors = [o for o in cell.outputs if o.output_type == "error"]
        usage = [o for o in cell.outputs if o.output_type == "stream" and o.text.startswith("UsageError: ")]
        errors += [
            nbformat.from_dict({"ename": "UsageError", "evalue": o.text, "traceback": []}) for o in usage
        ]
        meant = "raises-exception" in cell.metadata.get("tags", [])
        if bool(errors) != meant:
            failures.append((cell.source.splitlines()[0], [e.ename + ": " + e.evalue for e in errors]))
        for error in errors:
            assert "Traceback" not in "".join(error.traceback), cell.source  # one short message
    assert failures == [], failures


@pytest.mark.parametrize("page", WITH_COMMANDS)
def test_the_command_lines_of_a_page_run_as_written(page, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_"))}
    with Sandbox(speed=20) as sandbox:
        env.update(
            DATABRICKS_HOST=sandbox.url,
            DATABRICKS_TOKEN=sandbox.token,
            DATABRICKS_CONFIG_FILE=str(tmp_path / "absent.cfg"),
            DBX_MAGIC_HOME=str(tmp_path / "home"),
        )
        ran = 0
        for lang, mark, body in blocks(page):
            if lang != "bash" or mark.startswith("not run"):
                continue
            for line in body.strip().splitlines():
                assert line.startswith("python -m dbx_magic "), (
                    f"{page}: mark a block that is not run: {line}"
                )
                argv = [sys.executable, "-m", "dbx_magic", *line.split()[3:]]
                done = subprocess.run(
                    argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
                )
                assert (done.returncode != 0) == (mark == "raises"), (line, done.stdout[-800:], done.stderr)
                assert "Traceback" not in done.stderr, (line, done.stderr)
                ran += 1
    assert ran


def test_every_bash_block_runs_or_says_why_not():
    for page in PAGES:
        for lang, mark, body in blocks(page):
            if lang == "bash" and not mark.startswith("not run"):
                assert all(line.startswith("python -m dbx_magic ") for line in body.strip().splitlines()), (
                    page,
                    body,
                )


# -- the parsers and the docs say the same -----------------------------------------------------------


def magic_parsers() -> dict[str, argparse.ArgumentParser]:
    from dbx_magic.notebook.magics import MAGIC_NAMES, DbxMagics

    shell = InteractiveShell.instance()
    magics = DbxMagics(shell)
    try:
        return {name: getattr(magics, name).parser for name in MAGIC_NAMES}
    finally:
        magics.stop()


def cli_parsers() -> dict[str, argparse.ArgumentParser]:
    from dbx_magic.__main__ import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o not in ("-h", "--help")}


def documented(text: str) -> set[str]:
    """The flags a section's tables name (their first column)."""
    cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("| `")]
    return {flag for cell in cells for flag in re.findall(r"`(-[-\w]+)", cell)}


def test_every_magic_and_flag_is_documented_and_nothing_else():
    text = (DOCS / "magics.md").read_text()
    headings = set(re.findall(r"^## %{1,2}(dbx_\w+)$", text, re.M))
    parsers = magic_parsers()
    assert headings == set(parsers)
    for name, parser in parsers.items():
        prefix = "%%" if f"## %%{name}\n" in text else "%"
        assert documented(section("magics.md", f"{prefix}{name}")) == flags(parser), name


def test_every_command_and_option_is_documented_and_nothing_else():
    text = (DOCS / "cli.md").read_text()
    headings = set(re.findall(r"^## (\w+)$", text, re.M))
    parsers = cli_parsers()
    assert headings == set(parsers)
    for name, parser in parsers.items():
        assert documented(section("cli.md", name)) == flags(parser), name


def test_the_readme_links_to_the_site_and_stays_short():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for page in ("magics.md", "cli.md", "python.md", "development.md"):
        assert f"docs/{page}" in readme, page
