"""The board (``%dbx_runs``) as a person reads it: which parameters set a run apart, a sweep's runs under
their sweep, results whole (on hover where cut, and cut only between words), status lines that end with
their run. In a real InteractiveShell against the sandbox (the watcher on its own thread); the widget
board is built as ``%dbx_runs`` builds it in a notebook, and read through its widgets."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic.notebook.board import RunBoard, cut_words
from dbx_magic.sandbox import Task

from .conftest import brisk_shell, until

LONG = (
    "the input table main.sales.transactions holds 3 rows whose amount is negative, which the report "
    "refuses to sum"
)


def refuse(_params: dict[str, str]) -> str:
    raise RuntimeError(LONG)


@pytest.fixture(scope="module")
def ip() -> Iterator[InteractiveShell]:
    shell = brisk_shell()
    sandbox = shell.magics_manager.registry["DbxMagics"].sandbox
    sandbox.add_job("slow-job", duration=600)
    sandbox.add_job(
        "refuses", tasks=[Task("main", "/Shared/refuses", {"day": "2026-11-01"}, notebook=refuse)]
    )
    yield shell
    shell.run_line_magic("unload_ext", "dbx_magic")


@pytest.fixture
def session(ip: InteractiveShell) -> Any:
    return ip.magics_manager.registry["DbxMagics"].session


def run(ip: InteractiveShell, code: str) -> Any:
    return ip.run_cell(code, store_history=False)


def walk(widget: Any) -> Iterator[Any]:
    """A widget and every widget inside it."""
    yield widget
    for child in getattr(widget, "children", ()):
        yield from walk(child)


def board_text(ip: InteractiveShell, capsys: Any) -> str:
    capsys.readouterr()
    result = run(ip, "%dbx_runs")
    assert result.success, result.error_in_exec
    printed = capsys.readouterr().out
    return printed if result.result is None else str(result.result)


@pytest.fixture(scope="module")
def runs(ip: InteractiveShell) -> dict[str, Any]:
    """A run at the defaults, one with a parameter changed, a sweep of three, one that fails at length."""
    ip.user_ns["grid"] = [{"max_depth": d} for d in ("4", "8", "10")]
    for code in (
        "%dbx_run daily-sales-report --out plain",
        "%%dbx_run daily-sales-report --out changed\ndate = 2026-12-24\ntable = main.sales.transactions",
        "%%dbx_run train-model --foreach grid --out sweep\nlearning_rate = 0.3",
        "%dbx_run refuses --out refused",
    ):
        ip.run_cell(code, store_history=False)
    return {k: ip.user_ns[k] for k in ("plain", "changed", "sweep", "refused")}


def test_the_parameters_column_shows_what_differs_from_the_defaults(ip, runs, capsys):
    table = board_text(ip, capsys)
    assert table.splitlines()[0].split() == [
        "job", "run", "state", "elapsed", "eta", "parameters", "watched", "result",
    ]  # fmt: skip
    changed = next(line for line in table.splitlines() if f" {runs['changed'].run_id} " in line)
    assert "date=2026-12-24" in changed and "table=" not in changed  # the table sent was the default
    plain = next(line for line in table.splitlines() if f" {runs['plain'].run_id} " in line)
    assert "=" not in plain


def test_a_sweeps_runs_are_grouped_under_it(ip, runs, capsys):
    lines = board_text(ip, capsys).splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("sweep of train-model: 3 runs"))
    members = lines[title + 1 : title + 4]
    assert [int(line.split()[1]) for line in members] == sorted(
        (r.run_id for r in runs["sweep"]), reverse=True
    )
    assert all(line.startswith("  train-model") for line in members)
    assert {re.search(r"max_depth=(\d+)", line).group(1) for line in members} == {"4", "8", "10"}
    assert all("learning_rate=0.3" in line for line in members)  # 0.1 is the default


def test_the_result_is_whole_in_a_terminal_and_on_hover_in_a_notebook(ip, session, runs, capsys):
    assert LONG in board_text(ip, capsys)  # the last column: never cut
    board = RunBoard(session, tick=3600)
    try:
        row = next(
            box
            for box in board.body.children
            if any("refuses" in str(getattr(w, "value", "")) for w in walk(box))
            and "dbx-board-row" in box._dom_classes
        )
        cell = next(w for w in walk(row) if "dbx-board-result" in w._dom_classes)
        title = html.unescape(re.search(r'title="([^"]*)"', cell.value).group(1))
        shown = html.unescape(re.search(r">([^<]*)</small>", cell.value).group(1))
        assert LONG in title
        assert shown.endswith("…") and title.startswith(shown[:-1])
        assert title[len(shown) - 1] == " "  # cut between two words
        groups = [b for b in board.body.children if "dbx-board-group" in getattr(b, "_dom_classes", ())]
        assert [g.value for g in groups] == ["<b>sweep of train-model: 3 runs · 3 ended</b>"]
    finally:
        board.close()


def test_a_status_line_ends_with_its_run(ip, session, runs):
    run(ip, "%dbx_run slow-job --background --out slow")
    handle = ip.user_ns["slow"]
    board = RunBoard(session, tick=3600)
    try:
        row = next(b for b in board.body.children if f"dbx-board-run-{handle.run_id}" in b._dom_classes)
        cancel = next(w for w in walk(row) if "dbx-board-cancel" in w._dom_classes)
        cancel.click()
        assert f"Asked the workspace to cancel run {handle.run_id}" in board.message.value
        until(lambda: handle.done)
        board.refresh()
        assert board.message.value == ""
    finally:
        board.close()


@pytest.mark.parametrize(
    ("text", "limit", "shown"),
    [
        ("short", 10, "short"),
        ("1 more task failed (task 'x')", 20, "1 more task failed…"),
        ("averyveryverylongwordwithoutspaces", 10, "averyvery…"),
    ],
)
def test_cutting_is_between_words(text, limit, shown):
    assert cut_words(text, limit) == shown and len(cut_words(text, limit)) <= limit
