"""``--background``, ``%dbx_wait NAME|RUN_ID`` and ``%dbx_runs`` in a real InteractiveShell, against the
sandbox over loopback, with the session's watcher on its own thread (as in a terminal IPython)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import RunFailed, RunHandle, RunInterrupted, RunResult, WaitTimeout, start_background
from dbx_magic.notebook.form import RunForm
from dbx_magic.sandbox import Task

from .conftest import BRISK, brisk_shell, interrupt_main, main_thread_waits, until


@pytest.fixture(scope="module")
def ip() -> Iterator[InteractiveShell]:
    shell = brisk_shell()
    yield shell
    shell.run_line_magic("unload_ext", "dbx_magic")


@pytest.fixture
def sandbox(ip: InteractiveShell) -> Any:
    sb = ip.magics_manager.registry["DbxMagics"].sandbox
    if "slow-job" not in sb.jobs:
        sb.add_job("slow-job", duration=600)  # 30 s at speed 20
        echo = Task(
            "main", "/Shared/echo", {"date": ""}, duration=30, notebook=lambda p: json.dumps(p)
        )  # 1.5 s at speed 20
        sb.add_job("ten-seconds", tasks=[echo])
    sb.clear_requests()
    return sb


@pytest.fixture
def session(ip: InteractiveShell) -> Any:
    return ip.magics_manager.registry["DbxMagics"].session


def run(ip: InteractiveShell, code: str) -> Any:
    return ip.run_cell(code, store_history=False)


def test_background_returns_at_once_and_the_name_gets_the_final_result(ip, sandbox, capsys):
    res = run(ip, "%%dbx_run ten-seconds --background --out bg\ndate = 2026-11-01\n")
    assert res.success, res.error_in_exec
    handle = ip.user_ns["bg"]
    assert isinstance(handle, RunHandle) and handle.run_id and not handle.done  # returned before the end
    shown = capsys.readouterr().out
    assert f"Run {handle.run_id} of 'ten-seconds' was launched in the background" in shown
    assert "`%dbx_wait bg`" in shown
    res = run(ip, "x = 1 + 1")  # the kernel is free meanwhile
    assert res.success and ip.user_ns["x"] == 2 and not handle.done
    until(lambda: isinstance(ip.user_ns["bg"], RunResult))
    result = ip.user_ns["bg"]
    assert result.ok and result.run_id == handle.run_id
    assert json.loads(result.output) == {"date": "2026-11-01"}  # the task's output, as a blocking run has it


def test_the_end_is_announced_once_in_the_terminal(ip, sandbox, session):
    from dbx_magic.notebook.background import notices

    channel = notices(session)
    res = run(ip, "%%dbx_run flaky-ingest --background --out bad\nfail = true\n")
    assert res.success, res.error_in_exec
    handle = ip.user_ns["bad"]
    until(lambda: any(n.run_id == handle.run_id for n in channel.sent))
    notice = next(n for n in channel.sent if n.run_id == handle.run_id)
    assert (
        notice.level == "danger" and f"Run {handle.run_id}" in notice.title and "ended FAILED" in notice.title
    )
    assert "asked to fail" in notice.body and "`bad`" in notice.body
    handle.wait(raise_on_failure=False)
    assert len([n for n in session.notices.sent if n.run_id == handle.run_id]) == 1


def test_wait_on_a_failed_background_run_fails_the_cell(ip, sandbox, capsys):
    run(ip, "%%dbx_run flaky-ingest --background --out bad\nfail = true\n")
    res = run(ip, "%dbx_wait bad")
    assert isinstance(res.error_in_exec, RunFailed)
    result = ip.user_ns["bad"]
    assert isinstance(result, RunResult) and result.result_state == "FAILED"
    shown = capsys.readouterr().out
    assert "ended FAILED" in shown and "Traceback" not in shown


def test_wait_on_a_background_run_publishes_under_the_same_name(ip, sandbox):
    run(ip, "%dbx_run daily-sales-report --background --out later")
    res = run(ip, "%dbx_wait later")
    assert res.success, res.error_in_exec
    assert isinstance(ip.user_ns["later"], RunResult) and ip.user_ns["later"].ok
    assert res.result is ip.user_ns["later"]


@pytest.mark.parametrize("how", ["name", "run id"])
def test_no_wait_and_wait_use_the_same_name(ip, sandbox, how):
    run(ip, "%dbx_run daily-sales-report --no-wait --out nw")
    launched = ip.user_ns["nw"]
    ip.user_ns.pop("dbx_result", None)
    res = run(ip, "%dbx_wait nw" if how == "name" else f"%dbx_wait {launched.run_id}")
    assert res.success, res.error_in_exec
    assert ip.user_ns["nw"].finished and ip.user_ns["nw"].run_id == launched.run_id
    assert "dbx_result" not in ip.user_ns


def test_a_reassigned_name_is_left_alone(ip, sandbox):
    run(ip, "%dbx_run daily-sales-report --background --out mine")
    handle = ip.user_ns["mine"]
    ip.user_ns["mine"] = "the user's own value"
    handle.wait()
    until(lambda: handle.done)
    assert ip.user_ns["mine"] == "the user's own value"


def interrupt_on_first_poll(handle: RunHandle, inside: str = "_await") -> None:
    """The kernel's interrupt, delivered to the main thread after a poll of the run by the watcher's
    thread, once the main thread is inside a wait (an event, not a timer; the wait is seen on the
    main thread's stack, so the interrupt never lands before it)."""
    fired = threading.Event()

    def once(_result: Any) -> None:
        if fired.is_set() or not main_thread_waits(inside):
            return
        fired.set()
        interrupt_main()

    handle.add_listener(once)


@pytest.mark.signals
def test_an_interrupt_stops_no_background_run(ip, sandbox):
    run(ip, "%dbx_run slow-job --background --out bg10")  # 30 s: it outlasts the test, until cancelled
    handle = ip.user_ns["bg10"]
    interrupt_on_first_poll(handle, inside="user_sleeps")
    res = run(
        ip, "import threading\ndef user_sleeps():\n    threading.Event().wait(30)\nuser_sleeps()\n"
    )  # a cell the user interrupts
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    assert handle.watching and not handle.done
    handle.cancel()  # still watched after the interrupt: it sees the end, and the name gets it
    until(lambda: isinstance(ip.user_ns["bg10"], RunResult))
    assert ip.user_ns["bg10"].result_state == "CANCELED"


@pytest.mark.signals
def test_interrupting_a_wait_leaves_the_run_watched(ip, sandbox, capsys):
    run(ip, "%dbx_run slow-job --background --out iw")
    handle = ip.user_ns["iw"]
    interrupt_on_first_poll(handle)
    res = run(ip, "%dbx_wait iw")
    assert isinstance(res.error_in_exec, RunInterrupted)
    assert ip.user_ns["iw"] is handle and handle.watching
    assert "still watched in the background" in capsys.readouterr().out
    handle.cancel()
    until(lambda: isinstance(ip.user_ns["iw"], RunResult))


def test_a_wait_timeout_leaves_the_run_watched(ip, sandbox):
    run(ip, "%dbx_run slow-job --no-wait --out tw")
    res = run(ip, "%dbx_wait tw --timeout 0.3")
    assert isinstance(res.error_in_exec, WaitTimeout)
    handle = ip.user_ns["tw"]
    assert isinstance(handle, RunHandle) and handle.watching
    run(ip, f"%dbx_cancel {handle.run_id}")
    until(lambda: isinstance(ip.user_ns["tw"], RunResult))
    assert ip.user_ns["tw"].result_state == "CANCELED"


def test_the_board_lists_runs_of_every_face(ip, sandbox, session, capsys):
    run(ip, "%dbx_run daily-sales-report --out blocking")  # a blocking cell
    run(ip, "grid = [{'date': '2026-11-01'}, {'date': '2026-11-02'}]")
    run(ip, "%dbx_run daily-sales-report --foreach grid --out swept")  # a sweep
    run(ip, "%dbx_run slow-job --background --out going")  # the magic's background
    python = start_background(session.client(), "train-model", watcher=session.watcher)  # Python
    form = RunForm(job="daily-sales-report", out="from_form", session=session)
    form.run()
    form.wait(30)
    capsys.readouterr()
    res = run(ip, "%dbx_runs")
    assert res.success, res.error_in_exec
    board = capsys.readouterr().out
    ids = [
        ip.user_ns["blocking"].run_id,
        *(r.run_id for r in ip.user_ns["swept"]),
        ip.user_ns["going"].run_id,
        python.run_id,
        form.run_id,
    ]
    for run_id in ids:
        assert f" {run_id} " in board, (run_id, board)
    assert "job" in board.splitlines()[0] and "state" in board.splitlines()[0]
    going = next(line for line in board.splitlines() if f" {ip.user_ns['going'].run_id} " in line)
    assert "slow-job" in going and "watched" in going
    ip.user_ns["going"].cancel()
    python.wait()


def test_active_lists_runs_this_kernel_does_not_watch(ip, sandbox, session, capsys):
    from dbx_magic import DatabricksClient, Watcher

    other = Watcher()  # another kernel, as far as this one knows
    client = DatabricksClient(sandbox.url, sandbox.token)
    elsewhere = start_background(client, "slow-job", watcher=other)
    until(lambda: elsewhere.state == "RUNNING")
    run(ip, "%dbx_run slow-job --background --out mine2")  # the session touches slow-job
    capsys.readouterr()
    res = run(ip, "%dbx_runs --active")
    assert res.success, res.error_in_exec
    shown = capsys.readouterr().out
    line = next(line for line in shown.splitlines() if f" {elsewhere.run_id} " in line)
    assert "not watched" in line and "RUNNING" in line
    assert "not watched by this kernel" in shown
    adopted = next(
        h for h in session.handles if h.run_id == elsewhere.run_id and h.watcher is session.watcher
    )
    assert adopted is not None and not adopted.watching
    res = run(ip, f"%dbx_wait {elsewhere.run_id} --timeout 0.2")  # watch it again, from the board's list
    assert isinstance(res.error_in_exec, WaitTimeout) and adopted.watching
    for handle in (elsewhere, ip.user_ns["mine2"]):
        handle.cancel()
    other.shutdown()


def test_python_runs_with_a_client_of_their_own_join_the_board_and_are_announced(
    ip, sandbox, session, capsys
):
    # a user's own client, as the README's Python section makes one: its watcher is its own
    run(
        ip,
        "from dbx_magic import DatabricksClient, start_background\n"
        f"own = DatabricksClient({sandbox.url!r}, {sandbox.token!r})\n"
        "mine_py = start_background(own, 'daily-sales-report', {'date': '2026-11-01'})",
    )
    handle = ip.user_ns["mine_py"]
    assert handle.watcher is not session.watcher
    capsys.readouterr()
    res = run(ip, "%dbx_runs")
    assert res.success, res.error_in_exec
    assert f" {handle.run_id} " in capsys.readouterr().out
    before = len(session.notices.sent) if session.notices is not None else 0
    handle.wait()
    until(lambda: session.notices is not None and len(session.notices.sent) > before)
    assert any(n.run_id == handle.run_id and n.level == "success" for n in session.notices.sent)


def test_a_session_shutting_down_names_the_runs_that_go_on(capsys, caplog):
    from dbx_magic.notebook.session import NotebookSession

    session = NotebookSession({}, policy=BRISK)
    sb = session.start_sandbox(speed=50)
    try:
        sb.add_job("slow-job", duration=600)
        handle = start_background(session.client(), "slow-job", watcher=session.watcher)
        assert handle.watcher is session.watcher  # the session's one watcher
        capsys.readouterr()
        session.shutdown()
        printed = capsys.readouterr().out
        assert f"{handle.run_id} (slow-job" in printed and "goes on in the workspace" in printed
        assert printed.count(str(handle.run_id)) == 1 and caplog.text.count(f"{handle.run_id} (slow-job") == 1
        assert not session.watcher._thread  # the watching stopped; the run did not
        assert session.client().get_run(handle.run_id)["state"]["life_cycle_state"] != "TERMINATED"
        session.shutdown()  # twice: nothing more
        assert capsys.readouterr().out == ""
        session.client().cancel_run(handle.run_id)
    finally:
        session.stop_sandbox()


def test_active_after_a_restart_says_how_to_name_a_job_and_then_finds_its_runs(capsys, monkeypatch):
    import argparse

    from dbx_magic.notebook.background import runs_cell
    from dbx_magic.notebook.session import NotebookSession

    before = NotebookSession({}, policy=BRISK)  # the kernel before the restart
    sb = before.start_sandbox(speed=50)
    try:
        sb.add_job("slow-job", duration=600)
        going = start_background(before.client(), "slow-job", watcher=before.watcher)
        before.shutdown()  # the kernel restarts: the run goes on, unwatched
        capsys.readouterr()
        monkeypatch.setenv("DATABRICKS_HOST", sb.url)  # the same workspace, as configured
        monkeypatch.setenv("DATABRICKS_TOKEN", sb.token)
        after = NotebookSession({}, policy=BRISK)
        sb.clear_requests()
        runs_cell(after, None, argparse.Namespace(active=True, job=None, profile=None))
        shown = capsys.readouterr().out
        assert "has run no job yet" in shown and "`%dbx_runs --active --job JOB`" in shown
        assert sb.requests == []  # nothing to look at, nothing sent
        runs_cell(after, None, argparse.Namespace(active=True, job=["slow-job"], profile=None))
        shown = capsys.readouterr().out
        line = next(line for line in shown.splitlines() if f" {going.run_id} " in line)
        assert "not watched" in line and "1 active run not watched by this kernel" in shown
        after.client().cancel_run(going.run_id)
    finally:
        before.stop_sandbox()


def test_the_board_has_one_row_per_run_after_waits_and_a_repair(ip, sandbox, session, capsys):
    from dbx_magic.notebook.board import describe_board

    run(ip, "%dbx_run daily-sales-report --background --out once")
    handle = ip.user_ns["once"]
    handle.wait()
    for _ in range(2):  # waits on a run already ended add no row
        assert run(ip, "%dbx_wait once").success
    assert run(ip, f"%dbx_wait {handle.run_id}").success
    run(ip, "%%dbx_run flaky-ingest --out broken\nfail = true\n")
    broken = ip.user_ns["broken"]
    run(ip, "%%dbx_repair broken\nfail = false\n")  # a repair watched in its cell: the same run
    rows = describe_board(session.handles, session.clock.wall())
    assert [r.run_id for r in rows].count(handle.run_id) == 1
    repaired = [r for r in rows if r.run_id == broken.run_id]
    assert len(repaired) == 1 and repaired[0].state == "SUCCESS" and not repaired[0].can_repair


def test_a_no_wait_run_watched_from_the_board_fills_its_name(ip, sandbox, session):
    from dbx_magic.notebook.board import describe_board

    run(ip, "%dbx_run daily-sales-report --no-wait --out later_nw")
    launched = ip.user_ns["later_nw"]
    row = next(r for r in describe_board(session.handles, 0.0) if r.run_id == launched.run_id)
    assert row.state == "STARTED" and row.watched == "not watched" and row.can_watch
    handle = next(h for h in reversed(session.handles) if h.run_id == launched.run_id)
    handle.notify = True  # what the board's Watch does, then resume
    handle.resume()
    until(lambda: isinstance(ip.user_ns["later_nw"], RunResult) and ip.user_ns["later_nw"].finished)
    assert ip.user_ns["later_nw"].ok
    # the name is filled, then the end announced, on the watcher's thread: wait for that too (bounded)
    until(
        lambda: session.notices is not None and any(n.run_id == launched.run_id for n in session.notices.sent)
    )


def test_wait_on_a_finished_result_reads_nothing_and_keeps_it(ip, sandbox, session):
    from dbx_magic import run_job_and_wait

    done = run_job_and_wait(session.client(), "daily-sales-report", {"date": "2026-11-01"})
    ip.user_ns["kept"] = done
    sandbox.clear_requests()
    res = run(ip, "%dbx_wait kept")
    assert res.success and ip.user_ns["kept"] is done and res.result is done
    assert sandbox.requests == []  # its end is known: nothing read again (a failed read lost it before)


def test_every_name_holding_the_run_gets_its_end(ip, sandbox, session):
    run(ip, "%dbx_run slow-job --background --out first_name")
    handle = ip.user_ns["first_name"]
    run(ip, "%dbx_wait first_name --timeout 0.1 --out second_name")  # the wait stops; both names hold it
    assert ip.user_ns["second_name"] is handle
    ip.user_ns["first_name"] = "reassigned"  # left alone
    handle.cancel()
    until(lambda: isinstance(ip.user_ns["second_name"], RunResult))
    assert ip.user_ns["first_name"] == "reassigned"
    # the names are filled, then the end announced, on the watcher's thread: wait for that too (bounded)
    until(
        lambda: session.notices is not None and any(n.run_id == handle.run_id for n in session.notices.sent)
    )
    notice = next(n for n in session.notices.sent if n.run_id == handle.run_id)
    assert "`second_name`" in notice.body and "first_name" not in notice.body


def test_runs_of_a_stopped_sandbox_leave_the_board_and_a_wait_says_why():
    from dbx_magic.notebook.session import NotebookSession

    session = NotebookSession({}, policy=BRISK)
    first = session.start_sandbox(speed=50)
    first.add_job("slow-job", duration=600)
    handle = start_background(session.client(), "slow-job", watcher=session.watcher)
    session.start_sandbox(speed=50, fresh=True)  # %dbx_sandbox --fresh: a new workspace
    try:
        assert all(h is not handle for h in session.handles) and handle not in handle.watcher.active
        with pytest.raises(Exception, match=f"Run {handle.run_id} was in the sandbox, which stopped"):
            handle.wait(timeout=5)
    finally:
        session.shutdown()
        session.stop_sandbox()


def test_a_credential_quoted_by_a_failing_run_is_masked_on_the_board_and_in_the_notice():
    from dbx_magic.notebook.background import notices
    from dbx_magic.notebook.board import text_board
    from dbx_magic.notebook.session import NotebookSession

    planted = "dapi" + "0123456789abcdef" * 2

    def leaks(_params: Any) -> str:
        raise ValueError(f"could not connect with {planted}")

    session = NotebookSession({}, policy=BRISK)
    sb = session.start_sandbox(speed=50)
    try:
        sb.add_job("leaky", tasks=[Task("main", "/Shared/leaky", duration=1, notebook=leaks)])
        channel = notices(session)
        handle = start_background(session.client(), "leaky", watcher=session.watcher)
        assert not handle.wait(raise_on_failure=False).ok
        until(lambda: any(n.run_id == handle.run_id for n in channel.sent))
        notice = next(n for n in channel.sent if n.run_id == handle.run_id)
        board = text_board(session.handles, session.clock.wall(), session.mask)
        assert planted not in notice.line and planted not in board and "***" in board, board
    finally:
        session.shutdown()
        session.stop_sandbox()


def test_a_wait_in_a_cell_says_the_end_once(ip, sandbox, session, capsys):
    from dbx_magic.notebook.background import notices

    channel = notices(session)
    run(ip, "%%dbx_run ten-seconds --background --out k1\ndate = 2026-11-01\n")
    handle = ip.user_ns["k1"]
    res = run(ip, "%dbx_wait k1")
    assert res.success, res.error_in_exec
    shown = capsys.readouterr().out
    assert sum(f"run {handle.run_id}: SUCCESS" in line for line in shown.splitlines()) == 1, shown
    assert not [n for n in channel.sent if n.run_id == handle.run_id]  # the cell said it: no notice


def test_how_long_a_success_notice_stays_is_a_setting(ip, sandbox, session):
    from dbx_magic.notebook.background import notices

    channel = notices(session)
    try:
        run(ip, "%config DbxMagics.notice_seconds = 0")  # until dismissed
        assert session.notice_seconds is None and channel.fade is None
        run(ip, "%config DbxMagics.notice_seconds = 45")
        assert session.notice_seconds == 45 and channel.fade == 45
        run(ip, "%%dbx_run flaky-ingest --background --out bad\nfail = true\n")
        handle = ip.user_ns["bad"]
        until(lambda: any(n.run_id == handle.run_id for n in channel.sent))
        notice = next(n for n in channel.sent if n.run_id == handle.run_id)
        message = notice.message(channel.fade)
        assert message["short"] == "flaky-ingest: FAILED" and message["fade"] == 45
        assert (
            message["level"] == "danger"
        )  # the page keeps a failure until it is dismissed, whatever the fade
    finally:
        run(ip, "%config DbxMagics.notice_seconds = 20")
