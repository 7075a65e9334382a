"""A watched run rides out a workspace that stops answering, politely, and sees its end soon after.

On the sandbox and the fake clock; ``benchmarks/bench_watch.py`` measures the same against
databricks-sdk's schedule over many runs.
"""

from __future__ import annotations

import itertools

import pytest

from dbx_magic import DatabricksClient, PollPolicy, Watcher, start_background
from dbx_magic.api.client import RetryPolicy
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock

ATTEMPTS = RetryPolicy().attempts


def _running(make_sandbox, clock: ManualClock, duration: float):  # type: ignore[no-untyped-def]
    sb: Sandbox = make_sandbox()
    sb.add_job("nightly-load", duration=duration, history=5)
    client = DatabricksClient(sb.url, sb.token, clock=clock, retry=RetryPolicy(jitter=0.0))
    watcher = Watcher(clock, threaded=False)
    handle = start_background(client, "nightly-load", watcher=watcher)
    started = clock.monotonic()
    while clock.monotonic() < started + 60:
        clock.sleep(watcher.step())
    assert handle.state == "RUNNING"
    return sb, handle


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 503}, {"kind": "drop"}])
def test_during_an_outage_each_poll_is_one_request_no_further_apart_than_the_sdk_polls(
    make_sandbox, clock, fault
):
    sb, handle = _running(make_sandbox, clock, duration=600)
    sb.clear_requests()
    sb.inject("*", count=60, **fault)
    assert handle.wait().ok
    faulted = [r for r in sb.requests if r.fault]
    assert len(faulted) == 60
    # the first failed poll was the client's usual retries; after it, one request a poll, backing off
    # to the policy's longest gap (the SDK's 11 s), never a burst
    gaps = [b.timestamp - a.timestamp for a, b in itertools.pairwise(faulted[ATTEMPTS - 1 :])]
    assert all(PollPolicy().floor <= gap <= PollPolicy().longest + 1e-6 for gap in gaps), gaps
    assert max(gaps) == pytest.approx(PollPolicy().longest)


def test_a_run_that_ended_during_an_outage_is_seen_ended_by_the_first_answer_after_it(make_sandbox, clock):
    sb, handle = _running(make_sandbox, clock, duration=200)
    sb.clear_requests()
    sb.inject("jobs/runs/get", "status", count=80, status=503)
    sb.inject("jobs/runs/get-output", "status", count=1, status=503)  # still shaky when the end is seen
    result = handle.wait(raise_on_failure=False)
    assert result.ok and result.trouble == ""
    outputs = [r for r in sb.requests if r.path.endswith("runs/get-output")]
    assert [r.fault for r in outputs] == ["status", None] and not result.warnings  # retried, not lost
    polls = [r for r in sb.requests if r.path.endswith("runs/get")]
    answered = [r for r in polls if r.fault is None]
    last_fault = max(r.timestamp for r in polls if r.fault)
    assert len(answered) == 1  # the workspace's first answer showed the end
    assert answered[0].timestamp - last_fault <= PollPolicy().longest + 1e-6
    assert answered[0].timestamp > sb.requests[0].timestamp + 200  # the run had ended during the outage
