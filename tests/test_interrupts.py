"""A kernel interrupt at each step of the workflow leaves no run unreported.

The interrupt is a real SIGINT delivered to the main thread while it waits on the sandbox over HTTP,
as the kernel's interrupt delivers it.
"""

from __future__ import annotations

import pytest

from dbx_magic import DatabricksClient, RunInterrupted, run_job_and_wait
from dbx_magic.errors import NOTEBOOK
from dbx_magic.sandbox import Sandbox

from .conftest import InterruptAt, interrupt_main

JOB = "daily-sales-report"


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The sandbox on the fake clock, with a job that runs ten minutes."""
    sandbox.add_job("slow-job", duration=600)
    return sandbox


@pytest.fixture
def client(sandbox_client: DatabricksClient) -> DatabricksClient:
    return sandbox_client


@pytest.mark.signals
def test_interrupt_before_the_launch_starts_no_run(sb, client):
    before = len(sb.run_ids(JOB))
    # The interrupt lands while jobs/get is in flight (the sandbox holds it a moment).
    sb.inject("jobs/get", "delay", delay=0.3, on_arrival=interrupt_main)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, JOB)
    assert sb.wait_for_request("jobs/get")
    assert "no run was started" in str(info.value) and info.value.run_id is None
    assert len(sb.run_ids(JOB)) == before
    assert not any(r.path.endswith("run-now") for r in sb.requests)


@pytest.mark.signals
def test_interrupt_during_the_launch_names_the_token_that_finds_the_run(sb, client):
    before = len(sb.run_ids(JOB))
    # The workspace is slow to answer, but starts the run; the interrupt lands meanwhile.
    sb.inject("jobs/run-now", "delay", delay=0.3, on_arrival=interrupt_main)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, JOB, {"date": "2026-11-01"})
    assert sb.wait_for_request("jobs/run-now")
    token = info.value.idempotency_token
    assert token and token in str(info.value) and "a run may have started" in str(info.value)
    assert f"--idempotency-token {token}" in info.value.render(NOTEBOOK)
    started = sb.run_ids(JOB)[before:]
    assert len(started) == 1
    # Launching again with that token finds the run instead of starting a second one.
    again = run_job_and_wait(client, JOB, {"date": "2026-11-01"}, idempotency_token=token)
    assert again.run_id == started[0] and len(sb.run_ids(JOB)) == before + 1


def test_interrupt_while_polling_reports_the_run(make_sandbox):
    interrupting = InterruptAt(60.0)  # a minute into the wait
    sb = make_sandbox(clock=interrupting.monotonic, epoch=interrupting.wall())
    sb.add_job("slow-job", duration=600)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(DatabricksClient(sb.url, sb.token, clock=interrupting), "slow-job")
    err = info.value
    assert err.run_id == sb.run_ids("slow-job")[-1]
    assert err.result is not None and not err.result.finished
    assert f"wait_for_run(client, {err.run_id})" in str(err)
    assert f"client.cancel_run({err.run_id})" in str(err)
    shown = err.render(NOTEBOOK)
    assert f"%dbx_wait {err.run_id}" in shown and f"%dbx_cancel {err.run_id}" in shown


@pytest.mark.signals
@pytest.mark.signals
@pytest.mark.parametrize("endpoint", ["jobs/runs/list", "jobs/runs/get"])
def test_interrupt_while_a_poll_is_in_flight_reports_the_run(sb, client, endpoint):
    # jobs/runs/list is the first poll (it brings the history too); jobs/runs/get a later one.
    if endpoint == "jobs/runs/get":
        sb.inject("jobs/runs/list", "status", status=503, count=99)  # no history: polls go to runs/get
    sb.inject(endpoint, "delay", delay=0.3, on_arrival=interrupt_main)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, "slow-job")
    assert info.value.run_id == sb.run_ids("slow-job")[-1]
    assert info.value.result is not None


def test_interrupt_with_cancel_ends_the_run(make_sandbox):
    interrupting = InterruptAt(60.0)
    sb = make_sandbox(clock=interrupting.monotonic, epoch=interrupting.wall())
    sb.add_job("slow-job", duration=600)
    client = DatabricksClient(sb.url, sb.token, clock=interrupting)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, "slow-job", cancel_on_interrupt=True)
    assert info.value.cancelled and info.value.result.result_state == "CANCELED"
