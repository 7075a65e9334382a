"""The fault matrix: every transient fault on every workflow step, against the sandbox over HTTP.

For each step (getJob, runJobNow, pollRun) and each fault, twice: a burst the retries outlast (the
workflow must complete with the right result) and a fault that outlasts the retry budget (the
workflow must raise one clear error, naming the run when one exists). In every case at most one run
is created: exactly one whenever the workspace processed a launch.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from dbx_magic import DatabricksClient, DatabricksError, RetryPolicy, run_job_and_wait
from dbx_magic.errors import NOTEBOOK
from dbx_magic.sandbox import Sandbox

STEPS = {"getJob": "jobs/get", "runJobNow": "jobs/run-now", "pollRun": "jobs/runs/get"}
FAULTS: dict[str, dict[str, Any]] = {
    "429 with Retry-After": {"kind": "status", "status": 429, "retry_after": 1},
    "429 without Retry-After": {"kind": "status", "status": 429},
    "500": {"kind": "status", "status": 500},
    "502 HTML page": {"kind": "html", "status": 502},
    "503": {"kind": "status", "status": 503},
    "504 HTML page": {"kind": "html", "status": 504},
    "dropped connection": {"kind": "drop"},
    "dropped after processing": {"kind": "drop_after"},
    "read timeout": {"kind": "delay", "delay": 0.6},
    "invalid JSON": {"kind": "invalid_json"},
    "missing fields": {"kind": "missing_fields"},
}
# Faults after which the workspace has done the work (so a launch did create its run).
PROCESSED = {"dropped after processing", "read timeout", "invalid JSON", "missing fields"}
BURST, OUTLAST = 2, 8  # the client tries 6 times per request
JOB = "daily-sales-report"


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox(speed=50) as sandbox:
        yield sandbox


def client_for(sb: Sandbox, waits: list[float]) -> DatabricksClient:
    policy = RetryPolicy(attempts=6, backoff=0.01, max_backoff=0.05, jitter=0.0)
    return DatabricksClient(sb.url, sb.token, timeout=(2.0, 0.3), retry=policy, sleep=waits.append)


def quick(seconds: float) -> None:
    time.sleep(min(seconds, 0.02))


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", STEPS)
def test_a_burst_is_outlasted(sb, step, fault):
    before = len(sb.run_ids(JOB))
    waits: list[float] = []
    sb.inject(STEPS[step], count=BURST, **FAULTS[fault])
    result = run_job_and_wait(client_for(sb, waits), JOB, {"date": "2026-11-01"}, sleep=quick)
    assert result.ok and result.result_state == "SUCCESS"
    assert result.outputs["runId"] == result.run_id and result.output and "2026-11-01" in result.output
    time.sleep(0.7 if fault == "read timeout" else 0)  # let a delayed request land before counting
    assert len(sb.run_ids(JOB)) == before + 1, "exactly one run"
    if fault == "429 with Retry-After":
        assert waits.count(1.0) == BURST  # the server's Retry-After was honoured


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", STEPS)
def test_a_fault_that_outlasts_the_budget(sb, step, fault):
    before = len(sb.run_ids(JOB))
    sb.inject(STEPS[step], count=OUTLAST, **FAULTS[fault])
    failed: DatabricksError | None = None
    try:
        result = run_job_and_wait(client_for(sb, []), JOB, sleep=quick)
    except DatabricksError as exc:
        failed = exc
    time.sleep(0.7 if fault == "read timeout" else 0)
    created = len(sb.run_ids(JOB)) - before

    if fault == "missing fields" and step != "runJobNow":
        # Answers without the fields are waited through (getJob: the name is just unknown;
        # pollRun: polled again), so the run completes.
        assert failed is None and result.ok and created == 1
        return
    assert failed is not None, "the workflow must not succeed past a fault it cannot outlast"
    message = str(failed)
    assert "\n" not in message and "Traceback" not in message and len(message) < 600
    if step == "getJob":
        assert created == 0 and "getting job" in message.lower()
    elif step == "runJobNow":
        assert created == (1 if fault in PROCESSED else 0)
        assert "idempotency token" in message  # how to find the run if the launch got through
    else:
        assert created == 1
        assert failed.run_id is not None and f"wait_for_run(client, {failed.run_id})" in message
        assert f"%dbx_wait {failed.run_id}" in failed.render(NOTEBOOK)
        assert failed.result is not None and failed.result.run_id == failed.run_id
