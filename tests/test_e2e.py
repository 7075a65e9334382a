"""run_job_and_wait end to end against the sandbox over loopback, for every sample job."""

from __future__ import annotations

import json

import pytest

from dbx_magic import DatabricksClient, RunResult, run_job_and_wait, start_run, wait_for_run
from dbx_magic.sandbox import Sandbox


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The sandbox on the fake clock: runs of minutes take milliseconds."""
    return sandbox


@pytest.fixture
def client(sandbox_client: DatabricksClient) -> DatabricksClient:
    return sandbox_client


def test_notebook_job_gets_its_parameters_over_its_defaults(client):
    result = run_job_and_wait(client, "daily-sales-report", {"date": "2026-11-02"})
    out = json.loads(result.output)
    assert result.ok and out["date"] == "2026-11-02" and out["table"] == "main.sales.transactions"
    assert result.outputs["resultState"] == "SUCCESS" and "#job/" in result.run_page_url


def test_job_level_parameters(client, sb):
    result = run_job_and_wait(client, "train-model", {"max_depth": 8})
    launch = [r.body for r in sb.requests if r.path.endswith("run-now")][-1]
    assert launch["job_parameters"] == {"max_depth": "8"} and "notebook_params" not in launch
    assert result.ok and json.loads(result.output)["max_depth"] in ("8", 8)


def test_multi_task_job_outputs_per_task(client):
    updates: list[RunResult] = []
    result = run_job_and_wait(client, "etl-pipeline", on_update=updates.append)
    assert result.ok and [t.key for t in result.tasks] == ["ingest", "transform", "publish"]
    assert all(t.output for t in result.tasks) and result.output is None  # three outputs, no single one
    assert updates[-1] is result and all(t.result_state == "SUCCESS" for t in result.tasks)


@pytest.mark.parametrize("fail", ["true", "false"])
def test_flaky_job(client, fail):
    result = run_job_and_wait(client, "flaky-ingest", {"fail": fail})
    assert result.ok is (fail == "false")
    if fail == "true":
        (task,) = result.tasks
        assert task.error == "ValueError: asked to fail" and "Traceback" in task.error_trace


def test_queued_behind_the_concurrency_limit(client):
    """Two runs of a job that allows one: the second waits QUEUED, then runs (the seed would stop)."""
    first = start_run(client, "nightly-backfill")
    second = start_run(client, "nightly-backfill")
    states: list[str | None] = []
    queued = wait_for_run(
        client, second.run_id, launched=second, on_update=lambda r: states.append(r.life_cycle_state)
    )
    assert queued.ok and "QUEUED" in states  # waited through, not ended early as the seed would
    assert wait_for_run(client, first.run_id, launched=first).ok


def test_the_same_idempotency_token_finds_the_same_run_with_its_outputs(client):
    first = run_job_and_wait(
        client, "daily-sales-report", {"date": "2026-11-03"}, idempotency_token="tok-e2e-1"
    )
    again = run_job_and_wait(
        client, "daily-sales-report", {"date": "2026-11-03"}, idempotency_token="tok-e2e-1"
    )
    assert again.run_id == first.run_id and again.output == first.output and again.output
