"""The magics in a real InteractiveShell, end to end against the sandbox over loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import RunFailed, RunInterrupted, RunResult, WaitTimeout
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.testing import ManualClock

from .conftest import InterruptAt, fresh_shell


@pytest.fixture
def make_ip() -> Iterator[Callable[[ManualClock], InteractiveShell]]:
    """A real InteractiveShell with the magics on a session whose clock the test gives (its
    ``%dbx_sandbox`` runs on that clock too); unloaded after the test."""
    shells: list[InteractiveShell] = []

    def make(clock: ManualClock) -> InteractiveShell:
        shell = fresh_shell()
        shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
        shell.run_line_magic("dbx_sandbox", "")
        shell.magics_manager.registry["DbxMagics"].sandbox.add_job("slow-job", duration=600)
        shells.append(shell)
        return shell

    yield make
    for shell in shells:
        unload(shell)


@pytest.fixture
def ip(make_ip: Callable[[ManualClock], InteractiveShell], clock: ManualClock) -> InteractiveShell:
    return make_ip(clock)


@pytest.fixture
def sandbox(ip: InteractiveShell) -> Any:
    sb = ip.magics_manager.registry["DbxMagics"].sandbox
    sb.clear_requests()
    return sb


def run(ip: InteractiveShell, code: str) -> Any:
    """Run a cell as a notebook would; return its ExecutionResult."""
    return ip.run_cell(code, store_history=False)


def launches(sandbox: Any) -> list[dict[str, Any]]:
    return [r.body for r in sandbox.requests if r.path.endswith("/jobs/run-now")]


def test_parameters_reach_the_api_as_typed_and_expanded(ip, sandbox, capsys):
    ip.user_ns["catalog"] = "main"
    res = run(
        ip,
        "%%dbx_run daily-sales-report --out res --allow-unknown-params\n# a comment\ndate  = 2026-11-01\ntable = {catalog}.sales\nnote = a=b\n",
    )
    assert res.success, res.error_in_exec
    (body,) = launches(sandbox)
    assert body["notebook_params"] == {"date": "2026-11-01", "table": "main.sales", "note": "a=b"}
    result = ip.user_ns["res"]
    assert isinstance(result, RunResult) and result.ok and result.job_name == "daily-sales-report"
    assert res.result is result  # the cell's value displays it
    assert "2026-11-01" in result.output and "main.sales" in result.output
    assert "<a href=" in result._repr_html_()


def test_params_expression_merges_under_the_cell(ip, sandbox):
    ip.user_ns["base"] = {"date": "2026-01-01", "table": "x.y", "limit": 5}
    res = run(ip, "%%dbx_run daily-sales-report --params base --allow-unknown-params\ndate = 2026-11-02\n")
    assert res.success, res.error_in_exec
    assert launches(sandbox)[0]["notebook_params"] == {"date": "2026-11-02", "table": "x.y", "limit": "5"}


def test_line_magic_without_parameters_and_job_by_id(ip, sandbox):
    job_id = sandbox.job_id("etl-pipeline")
    res = run(ip, f"%dbx_run {job_id} --out etl")
    assert res.success, res.error_in_exec
    result = ip.user_ns["etl"]
    assert result.ok and len(result.tasks) == 3
    assert "notebook_params" not in launches(sandbox)[0]


def test_job_name_in_quotes_and_job_level_parameters(ip, sandbox):
    res = run(ip, '%%dbx_run "train-model" --out model\nmax_depth = 8\n')
    assert res.success, res.error_in_exec
    assert launches(sandbox)[0]["job_parameters"]["max_depth"] == "8"
    assert ip.user_ns["model"].ok


def test_failed_run_fails_the_cell_with_a_short_message_and_publishes(ip, sandbox, capsys):
    res = run(ip, "%%dbx_run flaky-ingest --out bad\nfail = true\n")
    assert isinstance(res.error_in_exec, RunFailed)
    shown = capsys.readouterr().out
    result = ip.user_ns["bad"]
    assert result.result_state == "FAILED" and result.run_id == res.error_in_exec.run_id
    assert "Traceback" not in shown
    assert f"Run {result.run_id} of job 'flaky-ingest' ended FAILED" in shown
    assert "asked to fail" in shown and result.run_page_url in shown


def test_timeout_keeps_the_result_and_says_how_to_reattach(ip, sandbox, capsys):
    res = run(ip, "%dbx_run slow-job --timeout 0.3 --out slow")
    assert isinstance(res.error_in_exec, WaitTimeout)
    result = ip.user_ns["slow"]
    assert not result.finished and result.run_id
    shown = capsys.readouterr().out
    assert f"%dbx_wait {result.run_id}" in shown and "Traceback" not in shown
    # re-attach: the same run is watched again
    res = run(ip, f"%dbx_wait {result.run_id} --timeout 0.3 --out again")
    assert isinstance(res.error_in_exec, WaitTimeout)
    assert ip.user_ns["again"].run_id == result.run_id
    run(ip, f"%dbx_cancel {result.run_id}")


def test_no_wait_returns_at_once_then_wait_and_cancel(ip, sandbox, capsys):
    res = run(ip, "%dbx_run slow-job --no-wait --out bg")
    assert res.success, res.error_in_exec
    launched = ip.user_ns["bg"]
    assert launched.run_id and not launched.finished
    assert not any(r.path.endswith("/runs/get") for r in sandbox.requests)  # no polling
    assert "`%dbx_wait bg` waits for it" in capsys.readouterr().out
    res = run(ip, f"%dbx_cancel {launched.run_id}")
    assert res.success, res.error_in_exec
    ip.user_ns.pop("dbx_result", None)
    res = run(ip, "%dbx_wait bg")  # the --no-wait name: the result goes under it, not dbx_result
    assert isinstance(res.error_in_exec, RunFailed)
    assert ip.user_ns["bg"].result_state == "CANCELED" and "dbx_result" not in ip.user_ns


def test_interrupt_stops_waiting_and_keeps_the_run(make_ip, capsys):
    ip = make_ip(InterruptAt(60.0))  # the kernel is interrupted a minute into the wait
    res = run(ip, "%dbx_run slow-job --out inter")
    assert isinstance(res.error_in_exec, RunInterrupted)
    result = ip.user_ns["inter"]
    assert result.run_id and not result.finished
    shown = capsys.readouterr().out
    assert f"%dbx_wait {result.run_id}" in shown and f"%dbx_cancel {result.run_id}" in shown
    assert "Traceback" not in shown
    run(ip, f"%dbx_cancel {result.run_id}")


def test_interrupt_with_cancel_cancels_the_run(make_ip, capsys):
    ip = make_ip(InterruptAt(60.0))
    res = run(ip, "%dbx_run slow-job --cancel-on-interrupt --out inter")
    assert isinstance(res.error_in_exec, RunInterrupted) and res.error_in_exec.cancelled
    assert ip.user_ns["inter"].result_state == "CANCELED"
    assert "Cancelled run" in capsys.readouterr().out


def test_no_token_in_any_output(ip, sandbox, capsys):
    token = sandbox.token
    run(ip, "%dbx_sandbox --speed 20")  # a new sandbox, a new token
    run(ip, "%dbx_run daily-sales-report --out t1")
    run(ip, "%%dbx_run flaky-ingest --out t2\nfail = true\n")
    run(ip, "%dbx_run 999999")
    captured = capsys.readouterr()
    assert captured.out and token not in captured.out and token not in captured.err
    new_token = ip.magics_manager.registry["DbxMagics"].sandbox.token
    assert new_token not in captured.out
    for value in (ip.user_ns["t1"], ip.user_ns["t2"]):
        assert new_token not in repr(value) and new_token not in value._repr_html_()


def test_the_form_says_it_needs_a_notebook_in_a_terminal(ip, capsys):
    res = run(ip, "%dbx_form daily-sales-report")
    assert res.success and res.result is None
    assert "needs a notebook frontend" in capsys.readouterr().out


def test_help_lists_the_flags(ip):
    doc = ip.find_cell_magic("dbx_run").__doc__
    for flag in (
        "--out",
        "--params",
        "--profile",
        "--timeout",
        "--no-wait",
        "--idempotency-token",
        "--cancel-on-interrupt",
    ):
        assert flag in doc


def test_unload_removes_the_magics_and_stops_the_sandbox():
    shell = fresh_shell()
    shell.run_line_magic("load_ext", "dbx_magic")
    magics = shell.magics_manager.registry["DbxMagics"]
    assert isinstance(magics, DbxMagics)
    shell.run_line_magic("unload_ext", "dbx_magic")
    assert shell.find_cell_magic("dbx_run") is None and shell.find_line_magic("dbx_wait") is None
    shell.run_line_magic("load_ext", "dbx_magic")  # loads again cleanly
    assert shell.find_cell_magic("dbx_run") is not None
    shell.run_line_magic("unload_ext", "dbx_magic")


def test_without_configuration_the_message_points_at_the_sandbox(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.delenv("DATABRICKS_HOST", raising=False)
    monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    shell = fresh_shell()
    shell.run_line_magic("load_ext", "dbx_magic")
    try:
        res = shell.run_cell("%dbx_run 123\n")
        assert "No Databricks host and token configured" in str(res.error_in_exec)
        assert "%dbx_sandbox" in str(res.error_in_exec)
        assert "Traceback" not in capsys.readouterr().out
    finally:
        shell.run_line_magic("unload_ext", "dbx_magic")


def test_cancel_of_a_run_that_ended_says_so_and_sends_nothing(ip, sandbox, capsys):
    res = run(ip, "%%dbx_run daily-sales-report --out done\ndate = 2026-11-01\n")
    assert res.success, res.error_in_exec
    run_id = ip.user_ns["done"].run_id
    capsys.readouterr()
    sandbox.clear_requests()
    res = run(ip, f"%dbx_cancel {run_id}")
    assert res.success, res.error_in_exec
    assert capsys.readouterr().out.strip() == f"Run {run_id} already ended SUCCESS: nothing was cancelled."
    assert not any(r.path.endswith("/runs/cancel") for r in sandbox.requests)


def test_the_help_says_how_to_call_it_in_plain_words(ip, capsys):
    ip.run_cell("%%dbx_run?", store_history=False)
    shown = capsys.readouterr().out
    usage = next(line for line in shown.splitlines() if line.startswith("Usage:"))
    assert usage.startswith("Usage: %%dbx_run JOB [--out NAME] [--params NAME]"), usage
    assert "::" not in shown and "date = 2026-11-01" in shown
    assert "--params NAME" in shown and "EXPR" not in shown
    for magic in ("dbx_wait", "dbx_repair", "dbx_runs", "dbx_cancel", "dbx_form", "dbx_params"):
        assert "::" not in ip.find_magic(magic).__doc__, magic
