"""Comparing two runs: from Python (result.compare, compare_runs), the %dbx_compare magic and the command
line, against the sandbox; the next steps (rerun a side, repair the failed one)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import DatabricksClient, RunComparison, compare_runs, run_job_and_wait
from dbx_magic.errors import InvalidInput
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.session import NotebookSession

from .conftest import fresh_shell

CHECKS = "etl-with-checks"


@pytest.fixture
def failed(sandbox_client: DatabricksClient) -> Any:
    result = run_job_and_wait(sandbox_client, CHECKS, job_parameters={"strict": "true"})
    assert result.result_state == "FAILED"
    return result


def test_a_failed_run_is_compared_with_the_last_success_before_it(failed, sandbox, sandbox_client) -> None:
    sandbox.clear_requests()
    comparison = failed.compare()
    b = comparison.b
    assert b.ok and b.start_time < failed.start_time and b.run_id == failed.history.last_success.run_id
    assert comparison.parameters == {"strict": ("true", "false")}
    tasks = {t.key: (t.a[0], t.b[0]) for t in comparison.tasks}
    assert tasks == {
        "ingest": ("SUCCESS", "SUCCESS"),
        "validate": ("FAILED", "SUCCESS"),
        "publish": ("UPSTREAM_FAILED", "SUCCESS"),
    }
    task, mine, theirs = comparison.first_difference
    assert task == "validate" and "strict checks failed" in mine and '"passed": 2' in theirs
    text = comparison.text()
    assert f"Run {failed.run_id} (a) compared with run {b.run_id} (b) of job '{CHECKS}'" in text
    assert "parameter strict  true" in text and "queue" in text and "set-up" in text
    assert "comparison.repair()` repairs run" in text
    html = comparison._repr_html_()
    assert 'class="dbx-compare-table"' in html and "strict checks failed" in html
    paths = [r.path.rsplit("/api/2.2/", 1)[-1] for r in sandbox.requests]
    assert paths.count("jobs/runs/list") == 1 and paths.count("jobs/runs/get") == 1  # found, then read


def test_two_runs_named_by_id(failed, sandbox_client) -> None:
    other = run_job_and_wait(sandbox_client, CHECKS, job_parameters={"run_date": "2026-12-01"})
    comparison = compare_runs(sandbox_client, str(failed.run_id), other.run_id)
    assert isinstance(comparison, RunComparison) and comparison.b.run_id == other.run_id
    assert comparison.parameters == {"run_date": ("2026-11-01", "2026-12-01"), "strict": ("true", "false")}


def test_the_next_steps_rerun_a_side_and_repair_the_failed_one(failed, sandbox, sandbox_client) -> None:
    comparison = failed.compare()
    sandbox.clear_requests()
    again = comparison.rerun("b")
    (launch,) = [r.body for r in sandbox.requests if r.path.endswith("/jobs/run-now")]
    # b's parameters as the workspace holds them: its job parameters, defaults included
    sent = {"run_date": "2026-11-01", "strict": "false", "checks": "not_null,unique"}
    assert launch["job_parameters"] == sent and again.ok
    repaired = comparison.repair()
    assert repaired.ok and repaired.run_id == failed.run_id
    with pytest.raises(InvalidInput, match="side must be 'a'"):
        comparison.rerun("c")


def test_no_success_to_compare_with_is_said(sandbox, sandbox_client) -> None:
    sandbox.add_job("never-worked", script=[("PENDING", 1.0), ("TERMINATED", "FAILED", "boom")])
    result = run_job_and_wait(sandbox_client, "never-worked")
    with pytest.raises(
        InvalidInput, match=r"has no successful run before run .* name the run to compare it with"
    ):
        result.compare()
    with pytest.raises(InvalidInput, match="is not a run"):
        compare_runs(sandbox_client, "yesterday")


# -- the magic -----------------------------------------------------------------------------------------


@pytest.fixture
def ip(clock: Any) -> Iterator[InteractiveShell]:
    shell = fresh_shell()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    shell.run_line_magic("dbx_sandbox", "")
    yield shell
    unload(shell)


def test_dbx_compare_shows_the_table_and_publishes_the_comparison(ip: InteractiveShell) -> None:
    res = ip.run_cell(f"%%dbx_run {CHECKS} --out res\nstrict = true\n", store_history=False)
    assert not res.success and ip.user_ns["res"].result_state == "FAILED"
    shown = ip.run_cell("%dbx_compare res", store_history=False)
    assert shown.success, shown.error_in_exec
    comparison = ip.user_ns["dbx_comparison"]
    assert shown.result is comparison and comparison.parameters == {"strict": ("true", "false")}
    both = ip.run_cell(
        f"%dbx_compare {comparison.a.run_id} {comparison.b.run_id} --out cmp", store_history=False
    )
    assert both.success and ip.user_ns["cmp"].b.run_id == comparison.b.run_id
    wrong = ip.run_cell("%dbx_compare nothing_here", store_history=False)
    assert not wrong.success and "`nothing_here` is not defined in the notebook" in str(wrong.error_in_exec)


# -- the command line, as a process ----------------------------------------------------------------------


def test_python_m_dbx_magic_compare(tmp_path) -> None:
    from dbx_magic.sandbox import Sandbox

    with Sandbox(speed=50) as sb:  # the process waits on the real clock: a fast sandbox on it
        client = DatabricksClient(sb.url, sb.token)
        failed = run_job_and_wait(client, CHECKS, job_parameters={"strict": "true"})
        env = {
            **os.environ,
            "DATABRICKS_HOST": sb.url,
            "DATABRICKS_TOKEN": sb.token,
            "DATABRICKS_CONFIG_FILE": str(tmp_path / "absent"),
        }
        done = subprocess.run(
            [sys.executable, "-m", "dbx_magic", "compare", str(failed.run_id)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert f"Run {failed.run_id} (a) compared with run" in done.stdout
    assert "parameter strict  true" in done.stdout and "first difference, task validate:" in done.stdout


def test_a_background_handle_is_compared_once_it_ended(make_sandbox, clock) -> None:
    from dbx_magic import Watcher, start_background
    from tests.test_background import client_of, drive

    watcher = Watcher(clock, threaded=False)
    client = client_of(make_sandbox(), clock)
    handle = start_background(client, CHECKS, job_parameters={"strict": "true"}, watcher=watcher)
    drive(watcher, clock)
    comparison = compare_runs(None, handle)  # the handle's own client
    assert comparison.a is handle.result and comparison.parameters == {"strict": ("true", "false")}


def test_the_workspaces_words_reach_the_terminal_without_control_sequences(sandbox, sandbox_client) -> None:
    from dbx_magic.sandbox import Task

    hostile = "\x1b]0;owned\x07\x1b[2J{}\x1b[31m"
    echo = Task("main", "/Shared/hostile", {"x": ""}, duration=1, notebook=lambda p: hostile.format(p["x"]))
    sandbox.add_job("hostile-echo", tasks=[echo])
    a = run_job_and_wait(sandbox_client, "hostile-echo", {"x": "1"})
    b = run_job_and_wait(sandbox_client, "hostile-echo", {"x": "2"})
    comparison = compare_runs(sandbox_client, a, b.run_id)
    assert comparison.first_difference is not None and "\x1b" in comparison.first_difference[1]
    text = comparison.text()
    assert "\x1b" not in text and "\x07" not in text and "a: 1" in text and "b: 2" in text


def test_a_link_that_is_not_http_is_not_made_clickable(failed, sandbox_client) -> None:
    from dataclasses import replace

    from dbx_magic.run.compare import build

    b = replace(failed, run_id=failed.run_id + 1, run_page_url="javascript:alert(1)")
    html = build(failed, b, sandbox_client)._repr_html_()
    assert "javascript:" not in html and f"run {failed.run_id + 1}" in html
