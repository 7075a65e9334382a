"""A kernel interrupt at each step of the workflow leaves no run unreported.

The interrupt is a real SIGINT delivered to the main thread while it waits on the sandbox over HTTP,
as the kernel's interrupt delivers it.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from dbx_magic import DatabricksClient, RunInterrupted, run_job_and_wait
from dbx_magic.errors import NOTEBOOK
from dbx_magic.sandbox import Sandbox

JOB = "daily-sales-report"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(speed=20) as sandbox:
        sandbox.add_job("slow-job", duration=600)
        yield sandbox


def interrupt_after(seconds: float) -> threading.Timer:
    main = threading.main_thread().ident
    timer = threading.Timer(seconds, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    return timer


def settle(sb: Sandbox, seconds: float = 1.2) -> None:
    """Let a request the server is still holding finish, as the real service would."""
    time.sleep(seconds)


def test_interrupt_before_the_launch_starts_no_run(sb):
    before = len(sb.run_ids(JOB))
    sb.inject("jobs/get", "delay", delay=1.0)
    interrupt_after(0.3)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(DatabricksClient(sb.url, sb.token), JOB)
    settle(sb)
    assert "no run was started" in str(info.value) and info.value.run_id is None
    assert len(sb.run_ids(JOB)) == before
    assert not any(r.path.endswith("run-now") for r in sb.requests)


def test_interrupt_during_the_launch_names_the_token_that_finds_the_run(sb):
    before = len(sb.run_ids(JOB))
    sb.inject("jobs/run-now", "delay", delay=1.0)  # the workspace is slow to answer, but starts the run
    interrupt_after(0.3)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(DatabricksClient(sb.url, sb.token), JOB, {"date": "2026-11-01"})
    settle(sb)
    token = info.value.idempotency_token
    assert token and token in str(info.value) and "a run may have started" in str(info.value)
    started = sb.run_ids(JOB)[before:]
    assert len(started) == 1
    # Launching again with that token finds the run instead of starting a second one.
    again = run_job_and_wait(
        DatabricksClient(sb.url, sb.token), JOB, {"date": "2026-11-01"}, idempotency_token=token
    )
    assert again.run_id == started[0] and len(sb.run_ids(JOB)) == before + 1


def test_interrupt_while_polling_reports_the_run(sb):
    interrupt_after(0.5)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(DatabricksClient(sb.url, sb.token), "slow-job")
    err = info.value
    assert err.run_id == sb.run_ids("slow-job")[-1]
    assert err.result is not None and not err.result.finished
    assert f"wait_for_run(client, {err.run_id})" in str(err) and f"client.cancel_run({err.run_id})" in str(
        err
    )
    shown = err.render(NOTEBOOK)
    assert f"%dbx_wait {err.run_id}" in shown and f"%dbx_cancel {err.run_id}" in shown


def test_interrupt_while_a_poll_is_in_flight_reports_the_run(sb):
    client = DatabricksClient(sb.url, sb.token)
    sb.inject("jobs/runs/list", "delay", delay=1.0)  # the first poll (it brings the history too)
    sb.inject("jobs/runs/get", "delay", delay=1.0)
    interrupt_after(0.4)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, "slow-job")
    assert info.value.run_id == sb.run_ids("slow-job")[-1]


def test_interrupt_with_cancel_ends_the_run(sb):
    interrupt_after(0.5)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(DatabricksClient(sb.url, sb.token), "slow-job", cancel_on_interrupt=True)
    assert info.value.cancelled and info.value.result.result_state == "CANCELED"
