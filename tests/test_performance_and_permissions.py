"""performance_target on every launch and repair (a bad value refused in one sentence, before anything
is sent), and a 403 on a run action said plainly: which job, which action, which permission."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import RunForm, Watcher, repair_run, run_job_and_wait, run_many, start_background
from dbx_magic.errors import InvalidInput, PermissionDenied
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.session import NotebookSession

from .conftest import fresh_shell


def sent(sandbox: Any, endpoint: str) -> list[dict[str, Any]]:
    return [r.body for r in sandbox.requests if r.path.endswith(endpoint)]


def test_every_launch_carries_the_performance_target(sandbox, sandbox_client, clock) -> None:
    result = run_job_and_wait(
        sandbox_client, "daily-sales-report", performance_target="performance_optimized"
    )
    assert result.ok and result.performance_target == "PERFORMANCE_OPTIMIZED"
    handle = start_background(
        sandbox_client,
        "daily-sales-report",
        watcher=Watcher(clock, threaded=False),
        performance_target="STANDARD",
    )
    assert handle.wait().performance_target == "STANDARD"
    swept = run_many(
        sandbox_client,
        "daily-sales-report",
        [{"date": "2026-11-01"}, {"date": "2026-11-02"}],
        performance_target="STANDARD",
    )
    assert [r.performance_target for r in swept] == ["STANDARD", "STANDARD"]
    targets = [b.get("performance_target") for b in sent(sandbox, "/jobs/run-now")]
    assert targets == ["PERFORMANCE_OPTIMIZED", "STANDARD", "STANDARD", "STANDARD"]


def test_a_repair_carries_it_too(sandbox, sandbox_client) -> None:
    failed = run_job_and_wait(sandbox_client, "etl-with-checks", job_parameters={"strict": "true"})
    repaired = repair_run(
        sandbox_client, failed, job_parameters={"strict": "false"}, performance_target="STANDARD"
    )
    assert repaired.ok and repaired.performance_target == "STANDARD"
    assert sent(sandbox, "/jobs/runs/repair")[0]["performance_target"] == "STANDARD"


def test_a_handles_repair_round_carries_it(sandbox, sandbox_client, clock) -> None:
    handle = start_background(
        sandbox_client,
        "etl-with-checks",
        job_parameters={"strict": "true"},
        watcher=Watcher(clock, threaded=False),
    )
    assert not handle.wait(raise_on_failure=False).ok
    handle.repair(job_parameters={"strict": "false"}, performance_target="performance_optimized")
    repaired = handle.wait()
    assert repaired.ok and handle.round == 1 and repaired.performance_target == "PERFORMANCE_OPTIMIZED"
    assert sent(sandbox, "/jobs/runs/repair")[0]["performance_target"] == "PERFORMANCE_OPTIMIZED"


@pytest.mark.parametrize("call", ["run", "background", "sweep", "repair"])
def test_a_value_the_api_does_not_take_is_refused_before_anything_is_sent(
    sandbox, sandbox_client, clock, call
) -> None:
    attempts = {
        "run": lambda: run_job_and_wait(sandbox_client, "daily-sales-report", performance_target="FAST"),
        "background": lambda: start_background(
            sandbox_client, "daily-sales-report", performance_target="FAST"
        ),
        "sweep": lambda: run_many(sandbox_client, "daily-sales-report", [{}], performance_target="FAST"),
        "repair": lambda: repair_run(sandbox_client, 1000, performance_target="FAST"),
    }
    sandbox.clear_requests()
    with pytest.raises(InvalidInput) as refused:
        attempts[call]()
    assert str(refused.value) == (
        "performance_target 'FAST' is not one the API takes: STANDARD (cost first) or "
        "PERFORMANCE_OPTIMIZED (faster start and run, serverless only)."
    )
    assert sandbox.requests == []


@pytest.fixture
def ip(clock: Any) -> Iterator[InteractiveShell]:
    shell = fresh_shell()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    shell.run_line_magic("dbx_sandbox", "")
    yield shell
    unload(shell)


def test_the_magics_and_the_form_take_it(ip) -> None:
    sandbox = ip.magics_manager.registry["DbxMagics"].sandbox
    ok = ip.run_cell(
        "%dbx_run daily-sales-report --out res --performance-target standard", store_history=False
    )
    assert ok.success and ip.user_ns["res"].performance_target == "STANDARD"
    bad = ip.run_cell("%dbx_run daily-sales-report --performance-target fast", store_history=False)
    assert not bad.success and "is not one the API takes" in str(bad.error_in_exec)
    failed = ip.run_cell("%%dbx_run etl-with-checks --out chk\nstrict = true\n", store_history=False)
    assert not failed.success
    fixed = ip.run_cell(
        "%%dbx_repair chk --performance-target PERFORMANCE_OPTIMIZED\nstrict = false\n", store_history=False
    )
    assert fixed.success and ip.user_ns["chk"].performance_target == "PERFORMANCE_OPTIMIZED"
    form = RunForm(job="daily-sales-report", session=ip.magics_manager.registry["DbxMagics"].session)
    form.performance.value = "PERFORMANCE_OPTIMIZED"
    form.run()
    assert form.wait().ok
    assert sent(sandbox, "/jobs/run-now")[-1]["performance_target"] == "PERFORMANCE_OPTIMIZED"


def test_the_command_line_refuses_a_bad_target_in_one_sentence() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dbx_magic", "run", "1", "--performance-target", "turbo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "performance_target 'turbo' is not one the API takes" in done.stderr


# -- 403 on a run action --------------------------------------------------------------------------------


def test_a_job_the_credentials_may_only_view(sandbox, sandbox_client) -> None:
    job_id = sandbox.job_id("finance-close")
    with pytest.raises(PermissionDenied) as refused:
        run_job_and_wait(sandbox_client, "finance-close")
    assert str(refused.value).startswith(
        f"You may not run job {job_id}: that takes the Can Manage Run permission on job {job_id} "
        "('finance-close'), which these credentials do not have (they may only view it)."
    )
    past = sandbox.run_ids("finance-close")[-1]
    with pytest.raises(
        PermissionDenied,
        match=rf"You may not cancel run {past}: .*Can Manage Run permission on job {job_id} \('finance-close'\)",
    ):
        sandbox_client.cancel_run(past)
    with pytest.raises(
        PermissionDenied, match=rf"You may not repair run {past}: .*on job {job_id} \('finance-close'\)"
    ):
        sandbox_client.repair_run(past, rerun_tasks=["close_books"])


def test_the_wire_a_permission_refusal_and_a_wrong_token_stay_apart(client, rsps) -> None:
    from .conftest import API

    body = {"error_code": "PERMISSION_DENIED", "message": "User x does not have Manage Run on job 7."}
    rsps.post(f"{API}/runs/cancel", status=403, json=body)
    rsps.get(f"{API}/runs/get", json={"job_id": 7, "run_id": 70, "run_name": "nightly"})
    with pytest.raises(PermissionDenied) as refused:
        client.cancel_run(70)
    assert str(refused.value).startswith(
        "You may not cancel run 70: that takes the Can Manage Run permission on job 7 ('nightly')"
    )
    assert "The workspace said: User x does not have Manage Run on job 7." in str(refused.value)
    assert refused.value.status_code == 403 and refused.value.error_code == "PERMISSION_DENIED"
    rsps.post(f"{API}/run-now", status=403, json={"error_code": 403, "message": "Invalid access token."})
    with pytest.raises(PermissionDenied) as wrong:
        client.run_now(7)
    assert "You may not" not in str(wrong.value)  # a wrong token is said as before
