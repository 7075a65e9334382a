"""One engine for every run: whatever face starts a run, one watcher polls it, and the handle is the run.

On the fake clock, with the session's watcher stepped by whoever waits (no thread): a blocking cell,
background cells, a sweep, a repair and Python runs of one job are polled together, a repair is a
new round of its run (its time counted from its own start), the board's Repair lets the parameters
change, and the form, ``%dbx_params`` and the launch check agree on what a job takes.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import dbx_magic
from dbx_magic import DatabricksClient, run_many, start_background
from dbx_magic.errors import InvalidInput
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.progress import describe, elapsed_of
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.run.launch import Launch, job_info
from dbx_magic.sandbox.workspace import Task
from dbx_magic.testing import ManualClock, stepped_watcher

from .conftest import fresh_shell, until

PACKAGE = Path(dbx_magic.__file__).resolve().parent


def fails_when_asked(params: dict[str, str]) -> str:
    if params.get("fail") == "true":
        raise ValueError("asked to fail")
    return "done"


@pytest.fixture
def ip(clock: ManualClock) -> Iterator[InteractiveShell]:
    shell = fresh_shell()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    shell.run_line_magic("dbx_sandbox", "")
    sb = shell.magics_manager.registry["DbxMagics"].sandbox
    task = Task(
        "main", "/Workspace/Shared/shared", {"fail": "false"}, duration=200, notebook=fails_when_asked
    )
    sb.add_job("shared", tasks=[task], max_concurrent_runs=100)
    yield shell
    unload(shell)


def session_of(ip: InteractiveShell) -> NotebookSession:
    return ip.magics_manager.registry["DbxMagics"].session


def run(ip: InteractiveShell, code: str) -> Any:
    return ip.run_cell(code, store_history=False)


def test_every_face_of_one_job_is_polled_together(ip, clock):
    """A blocking cell, two background cells, a sweep of three and a repair, live at once on one job:
    each cycle reads one runs/list page for all of them (ceil(7 / 25) = 1) and no runs/get."""
    session = session_of(ip)
    sb = session.sandbox
    assert not run(ip, "%%dbx_run shared --background --out bad\nfail = true").error_in_exec
    assert run(ip, "%dbx_wait bad").error_in_exec is not None  # it failed: the cell says so
    run(ip, "%%dbx_run shared --background --out bg1\nfail = false")
    run(ip, "%%dbx_run shared --background --out bg2\nfail = false")
    bad = next(h for h in session.handles if h.run_id == ip.user_ns["bad"].run_id)
    bad.repair(notebook_params={"fail": "false"})  # what the board's Repair does: a new round, returns
    watcher = session.watcher
    cycles: list[tuple[int, int, list[Any]]] = []  # (runs watched before, after, the cycle's requests)
    step, one_at_a_time = watcher.step, threading.Lock()

    def counted(now: float | None = None) -> float:  # the cycles as they happen: their requests
        with one_at_a_time:  # two threads step it: each cycle's requests apart
            before, going = len(sb.requests), len(watcher.active)
            delay = step(now)
            cycles.append((going, len(watcher.active), sb.requests[before:]))
        return delay

    watcher.step = counted  # type: ignore[method-assign]
    swept: list[Any] = []
    sweep = threading.Thread(
        target=lambda: swept.extend(
            run_many(session.client(), "shared", [{"fail": "false"}] * 3, watcher=watcher)
        )
    )
    sweep.start()
    blocking = run(ip, "%%dbx_run shared --out blk\nfail = false")  # blocks, stepping the same watcher
    sweep.join(timeout=60)
    assert not blocking.error_in_exec and len(swept) == 3 and all(r.ok for r in swept)
    assert ip.user_ns["bg1"].ok and ip.user_ns["bg2"].ok and bad.result.ok and bad.round == 1

    all_live = [(after, sent) for going, after, sent in cycles if going == 7]  # all seven runs going
    assert len(all_live) >= 3, "several cycles while all seven were live"
    for after, sent in all_live:
        pages = [r for r in sent if r.path.endswith("/runs/list") and r.query.get("active_only")]
        gets = [r for r in sent if r.path.endswith("/runs/get")]
        assert len(pages) <= 1, sent  # ceil(7 / 25): one page for all of them
        assert len(gets) <= 7 - after, sent  # and one runs/get per run that ended in that cycle


def test_a_repair_counts_its_time_from_its_own_start(make_sandbox, clock):
    sb = make_sandbox()
    task = Task("main", "/Workspace/Shared/shared", {"fail": "false"}, duration=20, notebook=fails_when_asked)
    sb.add_job("shared", tasks=[task], history=5)
    client = DatabricksClient(sb.url, sb.token, clock=clock)
    handle = start_background(client, "shared", {"fail": "true"}, watcher=stepped_watcher(clock))
    assert not handle.wait(raise_on_failure=False).ok
    clock.advance(600)  # the repair comes ten minutes later
    same = handle.repair(notebook_params={"fail": "false"})
    assert same is handle and handle.round == 1
    result = handle.wait()
    assert result.ok and result.round == 1 and [r.kind for r in result.repairs] == ["ORIGINAL", "REPAIR"]
    took = result.elapsed(clock.wall())
    assert took is not None and 18 <= took <= 30, took  # the repair's own time, not 600 s and more
    view = describe(result, elapsed_of(result, clock, clock.monotonic()))
    assert view.elapsed == took and not view.overrun


def test_the_boards_repair_lets_the_parameters_change(ip, clock):
    from dbx_magic.notebook.board import RunBoard

    session = session_of(ip)
    handle = start_background(
        session.client(), "etl-with-checks", {"strict": "true"}, watcher=session.watcher
    )
    assert not handle.wait(raise_on_failure=False).ok
    board = RunBoard(session, tick=3600)
    try:
        row = find(board.widget, f"dbx-board-run-{handle.run_id}")
        find(row, "dbx-board-repair").click()
        boxes = {b.description: b for b in all_with(row, "dbx-board-param")}
        assert boxes["strict"].value == "true" and boxes["run_date"].value == "2026-11-01"  # pre-filled
        boxes["strict"].value = "false"
        find(row, "dbx-board-repair-go").click()
        until(lambda: handle.round == 1)  # sent from a worker thread: the kernel stays free
        assert handle.wait().ok
        (body,) = [r.body for r in session.sandbox.requests if r.path.endswith("/jobs/runs/repair")]
        assert body["job_parameters"]["strict"] == "false"
        board.refresh()
        rows = all_with(board.widget, f"dbx-board-run-{handle.run_id}")
        assert len(rows) == 1 and "repair 1" in find(rows[0], "dbx-board-job").value  # one row, its round
    finally:
        board.close()


def test_the_form_params_and_the_check_agree_on_what_a_job_takes(sandbox_client):
    from dbx_magic.notebook.form import RunForm

    form = RunForm(client=sandbox_client, namespace={})
    for job in form.job.options:
        form.job.value = job
        info = job_info(sandbox_client, job)
        declared = info.declared(sandbox_client)
        offered = {r.name.value for r in form.rows}
        assert offered == set(declared.params), job  # the form offers what %dbx_params lists
        Launch.check(job, form.get_params())  # and what it offers passes the launch's check
        from dbx_magic.run.launch import check_declared

        check_declared(sandbox_client, info, Launch.check(job, form.get_params()))
        for name in declared.fixed:  # a name the job fills itself is refused, before anything is sent
            with pytest.raises(InvalidInput):
                check_declared(sandbox_client, info, Launch.check(job, {name: "x"}))


def test_the_public_api_is_small_and_holds_the_contract():
    contract = {
        "DatabricksClient",
        "run_job_and_wait",
        "wait_for_run",
        "start_run",
        "start_background",
        "RunHandle",
        "RunResult",
        "DatabricksError",
        "PollPolicy",
        "RunForm",
        "run_many",
        "repair_run",
        "Watcher",
    }
    assert len(dbx_magic.__all__) <= 20 and contract <= set(dbx_magic.__all__)
    for name in contract:
        assert getattr(dbx_magic, name) is not None
    from dbx_magic import testing

    assert testing.ManualClock and testing.stepped_watcher


# -- the layers, attributes included -------------------------------------------------------------------


def test_no_production_code_tests_for_the_fake_clock():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "testing.py":
            code = ast.walk(ast.parse(path.read_text()))  # names in code; a docstring may mention it
            assert not any(isinstance(n, ast.Name) and n.id == "ManualClock" for n in code), path


def test_no_handler_swallows_an_interrupt_or_an_exit():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ExceptHandler)
                and ast.unparse(node.type or ast.Name("")) == "BaseException"
            ):
                assert any(isinstance(n, ast.Raise) for n in ast.walk(node)), f"{path}:{node.lineno}"


def test_no_layer_hangs_its_objects_on_a_client():
    """Nothing outside the HTTP layer sets an attribute on a client (the run layer's watcher was one)."""
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] == "api":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute) and "client" in ast.unparse(target.value).lower():
                        raise AssertionError(f"{path}:{node.lineno}: {ast.unparse(target)} set on a client")


def test_a_client_holds_only_what_the_http_layer_gave_it(sandbox, clock):
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    made = set(vars(client))
    session = NotebookSession({}, clock=clock, threaded=False)
    start_background(client, "daily-sales-report", watcher=session.watcher_for(client)).wait()
    assert set(vars(client)) == made
    for value in vars(client).values():
        assert not type(value).__module__.startswith(("dbx_magic.run", "dbx_magic.notebook"))


# -- helpers -------------------------------------------------------------------------------------------


def all_with(widget: Any, css: str) -> list[Any]:
    found = [widget] if css in getattr(widget, "_dom_classes", ()) else []
    for child in getattr(widget, "children", ()):
        found += all_with(child, css)
    return found


def find(widget: Any, css: str) -> Any:
    (found,) = all_with(widget, css)[:1] or [None]
    assert found is not None, f"no .{css}"
    return found
