"""The fault matrix: every fault on every workflow step, against the sandbox over HTTP, on the fake clock.

For each step (getJob, runJobNow, pollRun) and each fault, twice: a burst the retries outlast (the
workflow must complete with the right result) and a fault that outlasts the client's retry budget:
on getJob and runJobNow the workflow must raise one clear error (naming the idempotency token that
finds the run when a launch may have got through); on pollRun the watcher rides it out (the run is
watched, so an outage of minutes never fails the wait) and an outage longer than the policy's
``outage`` budget raises one clear error naming the run. A fault that is no use retrying (a 409) ends in that
error at once, burst or not. In every case at most one run is created, exactly one whenever the
workspace processed a launch, and no message holds the token (some faults echo it back).

Add a fault: one line in FAULTS (and its name in PROCESSED if the workspace does the work before it
strikes, in FINAL if it is not retried, in IGNORED_OFF_LAUNCH if only the launch cares about it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from dbx_magic import DatabricksClient, DatabricksError, PollPolicy, run_job_and_wait
from dbx_magic.api.client import RetryPolicy
from dbx_magic.errors import NOTEBOOK
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock

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
    # the kinds a healthy workspace never gives, but a proxy or an outage might
    "409 conflict": {"kind": "status", "status": 409},
    "502 echoing the request's headers": {"kind": "echo_headers", "status": 502},
    "200 with a broken gzip body": {"kind": "bad_gzip"},
    "id 0 in the answer": {"kind": "zero_id"},
    "id not a number in the answer": {"kind": "text_id"},
}
# Faults after which the workspace has done the work (so a launch did create its run).
PROCESSED = {
    "dropped after processing",
    "read timeout",
    "invalid JSON",
    "missing fields",
    "200 with a broken gzip body",
    "id 0 in the answer",
    "id not a number in the answer",
}
FINAL = {"409 conflict"}  # not retried: the burst ends in the error too
# Answers whose missing or spoiled fields only the launch needs: elsewhere they are waited through.
IGNORED_OFF_LAUNCH = {"missing fields", "id 0 in the answer", "id not a number in the answer"}
BURST, OUTLAST, ATTEMPTS = 2, 8, 6
JOB = "daily-sales-report"


def client_for(sb: Sandbox, clock: ManualClock) -> DatabricksClient:
    policy = RetryPolicy(attempts=ATTEMPTS, backoff=0.01, max_backoff=0.05, jitter=0.0)
    return DatabricksClient(sb.url, sb.token, timeout=(2.0, 0.3), retry=policy, clock=clock)


def wait_until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (really) until ``condition`` holds: a request the sandbox still holds (a delay fault) lands."""
    pause = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        pause.wait(0.01)
    raise AssertionError("the sandbox never finished the delayed requests")


def settle(sb: Sandbox, fault: str, sent: int) -> None:
    if FAULTS[fault]["kind"] == "delay":
        wait_until(lambda: sum(r.fault == "delay" for r in sb.requests) >= sent)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", STEPS)
def test_a_burst_is_outlasted(make_sandbox, clock, step, fault):
    sb = make_sandbox()
    before = len(sb.run_ids(JOB))
    sb.inject(STEPS[step], count=BURST, **FAULTS[fault])
    if fault in FINAL:
        check_failure(sb, clock, step, fault, before)
        return
    result = run_job_and_wait(client_for(sb, clock), JOB, {"date": "2026-11-01"})
    assert result.ok and result.result_state == "SUCCESS"
    assert result.outputs["runId"] == result.run_id and result.output and "2026-11-01" in result.output
    settle(sb, fault, BURST)
    assert len(sb.run_ids(JOB)) == before + 1, "exactly one run"
    if fault == "429 with Retry-After":
        assert clock.slept.count(1.0) == BURST  # the server's Retry-After was honoured


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("step", STEPS)
def test_a_fault_that_outlasts_the_budget(make_sandbox, clock, step, fault):
    sb = make_sandbox()
    before = len(sb.run_ids(JOB))
    sb.inject(STEPS[step], count=OUTLAST, **FAULTS[fault])
    if (fault in IGNORED_OFF_LAUNCH and step != "runJobNow") or (step == "pollRun" and fault not in FINAL):
        # getJob: the name is just unknown; pollRun: the watcher polls again, so the run completes.
        result = run_job_and_wait(client_for(sb, clock), JOB)
        assert result.ok and len(sb.run_ids(JOB)) == before + 1
        return
    check_failure(sb, clock, step, fault, before)


@pytest.mark.parametrize("fault", sorted(set(FAULTS) - IGNORED_OFF_LAUNCH - FINAL))
def test_an_outage_longer_than_the_budget_ends_the_wait_naming_the_run(make_sandbox, clock, fault):
    sb = make_sandbox()
    before = len(sb.run_ids(JOB))
    sb.inject(STEPS["pollRun"], count=10_000, **FAULTS[fault])
    with pytest.raises(DatabricksError) as info:
        run_job_and_wait(client_for(sb, clock), JOB, policy=PollPolicy(outage=60))
    failed = info.value
    message = str(failed)
    assert len(sb.run_ids(JOB)) == before + 1
    assert "\n" not in message and sb.token not in message and len(message) < 700, message
    assert failed.run_id is not None and f"wait_for_run(client, {failed.run_id})" in message


def check_failure(sb: Sandbox, clock: ManualClock, step: str, fault: str, before: int) -> None:
    with pytest.raises(DatabricksError) as info:
        run_job_and_wait(client_for(sb, clock), JOB)
    failed = info.value
    settle(sb, fault, ATTEMPTS)
    created = len(sb.run_ids(JOB)) - before
    message = str(failed)
    assert "\n" not in message and "Traceback" not in message and len(message) < 700, message
    assert sb.token not in message and sb.token not in failed.render(NOTEBOOK)
    assert failed.__context__ is None or isinstance(failed.__context__, DatabricksError)
    if step == "getJob":
        assert created == 0 and "getting job" in message.lower()
    elif step == "runJobNow":
        assert created == (1 if fault in PROCESSED else 0)
        assert "idempotency token" in message  # how to find the run if the launch got through
        assert failed.idempotency_token and failed.idempotency_token in message
    else:
        assert created == 1
        assert failed.run_id is not None and f"wait_for_run(client, {failed.run_id})" in message
        assert f"%dbx_wait {failed.run_id}" in failed.render(NOTEBOOK)
        assert failed.result is not None and failed.result.run_id == failed.run_id


def test_the_matrix_is_wide():
    assert len(FAULTS) * len(STEPS) * 2 >= 96
    assert set(FAULTS) >= PROCESSED | FINAL | IGNORED_OFF_LAUNCH
