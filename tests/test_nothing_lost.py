"""Nothing lost: once run-now may have been sent, every way out names every run id or token involved
and publishes what it has; a timeout bounds the waiting (the launch's retries and the rate limiter
included) and never refuses a run it already started. All on the fake clock, over loopback HTTP.

Each table row is one way out; add a row for a way out the table lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dbx_magic import (
    DatabricksClient,
    DatabricksError,
    PollPolicy,
    RunInterrupted,
    WaitTimeout,
    run_job_and_wait,
    run_many,
    wait_for_run,
)
from dbx_magic.api.client import RetryPolicy
from dbx_magic.api.ratelimit import RateLimiter
from dbx_magic.errors import MAY_HAVE_STARTED, NOTEBOOK
from dbx_magic.notebook.form import RunForm
from dbx_magic.run.sweep import SweepFailed
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock

from .conftest import InterruptAt, fresh_shell

JOB = "daily-sales-report"
FAST = RetryPolicy(attempts=6, backoff=0.5, jitter=0.0)


def client_of(sb: Sandbox, clock: ManualClock, **kwargs: Any) -> DatabricksClient:
    kwargs.setdefault("retry", FAST)
    return DatabricksClient(sb.url, sb.token, clock=clock, **kwargs)


# -- timeouts are kept, whatever the workspace does --------------------------------------------------
# (what is rate-limited or failing, the call, what the error must name: "run", "token" or "nothing")
Timed = Callable[[Sandbox, DatabricksClient], Any]
TIMEOUTS: list[tuple[str, Callable[[Sandbox], Any], Timed, str]] = [
    (
        "getJob rate-limited for a second, so the launch ends at the timeout",
        lambda sb: sb.inject("jobs/get", "status", status=429, retry_after=1, count=1),
        lambda sb, c: run_job_and_wait(c, JOB, timeout=1),
        "run",
    ),
    (
        "getJob rate-limited for good",
        lambda sb: sb.inject("jobs/get", "status", status=429, retry_after=1, count=50),
        lambda sb, c: run_job_and_wait(c, JOB, timeout=1),
        "nothing",
    ),
    (
        "run-now rate-limited for good",
        lambda sb: sb.inject("jobs/run-now", "status", status=429, count=50),
        lambda sb, c: run_job_and_wait(c, JOB, timeout=1),
        "token",
    ),
    (
        "run-now answering 503 for good",
        lambda sb: sb.inject("jobs/run-now", "status", status=503, count=50),
        lambda sb, c: run_job_and_wait(c, JOB, timeout=1),
        "token",
    ),
    (
        "runs/get answering 503 for good",
        lambda sb: sb.inject("jobs/runs/get", "status", status=503, count=50),
        lambda sb, c: run_job_and_wait(c, JOB, timeout=1),
        "run",
    ),
    (
        "re-attaching while runs/get is rate-limited",
        lambda sb: sb.inject("jobs/runs/get", "status", status=429, retry_after=5, count=50),
        lambda sb, c: wait_for_run(c, sb.run_ids(JOB)[-1], timeout=1),
        "run",
    ),
    (
        "a sweep whose launches are rate-limited",
        lambda sb: sb.inject("jobs/run-now", "status", status=429, count=50),
        lambda sb, c: run_many(c, JOB, [{"date": "2026-11-01"}, {"date": "2026-11-02"}], timeout=1),
        "token",
    ),
]


@pytest.mark.parametrize(("what", "setup", "call", "named"), TIMEOUTS, ids=[t[0] for t in TIMEOUTS])
def test_a_timeout_is_kept_and_names_what_exists(make_sandbox, clock, what, setup, call, named):
    sb = make_sandbox()
    before = set(sb.run_ids(JOB))
    setup(sb)
    started = clock.monotonic()
    with pytest.raises(DatabricksError) as info:
        call(sb, client_of(sb, clock))
    assert clock.monotonic() - started <= 1.0 + 1e-6, "the timeout of 1 s was kept"
    error, created = info.value, set(sb.run_ids(JOB)) - before
    message = error.render(NOTEBOOK)
    assert isinstance(error, WaitTimeout | SweepFailed), message
    if named == "run":
        run_id = error.run_id or (created and next(iter(created)))
        assert run_id and str(run_id) in message and error.result is not None
    elif named == "token":
        token = error.idempotency_token or "dbx-sweep-"  # a sweep names each launch's token
        assert token in message and "may have started" in message
        assert not created
    else:
        assert "no run was started" in message and not created


def test_the_rate_limiter_keeps_the_timeout(make_sandbox, clock):
    sb = make_sandbox()
    limiter = RateLimiter(0.1, 1, clock=clock)  # one request, then one every 10 s
    client = client_of(sb, clock, rate_limiter=limiter)
    limiter.acquire()
    started = clock.monotonic()
    with pytest.raises(WaitTimeout) as info:
        run_job_and_wait(client, JOB, timeout=1)
    assert clock.monotonic() - started <= 1.0 and "request-rate limit" in str(info.value)
    assert "no run was started" in str(info.value) and sb.requests == []


# -- sweeps -------------------------------------------------------------------------------------------


def test_a_sweep_whose_polling_fails_for_good_names_every_run(make_sandbox, clock):
    sb = make_sandbox()
    sb.inject("jobs/runs/list", "status", status=503, count=10_000)
    sb.inject("jobs/runs/get", "status", status=503, count=10_000)
    with pytest.raises(SweepFailed) as info:  # an outage longer than the policy rides out
        run_many(client_of(sb, clock), JOB, [{"date": "2026-11-01"}], policy=PollPolicy(outage=60))
    error = info.value
    assert error.results and error.results[0] is not None
    run_id = error.results[0].run_id
    assert f"1 run ({run_id}) goes on" in str(error), str(error)  # and in good grammar


def test_a_sweep_interrupted_in_a_launch_names_its_token(make_sandbox):
    clock = InterruptAt(0.2)
    sb = make_sandbox(clock=clock.monotonic, epoch=clock.wall())
    sb.inject("jobs/run-now", "status", status=429, count=3)  # the launch waits to retry: interrupted there
    with pytest.raises(RunInterrupted) as info:
        run_many(
            client_of(sb, clock),
            JOB,
            [{"date": "2026-11-01"}, {"date": "2026-11-02"}],
            idempotency_token="sweep-a",
        )
    assert info.value.idempotency_token == "sweep-a-0" and "sweep-a-0" in str(info.value)
    assert info.value.__context__ is None  # raised outside the handler: no request is chained


def test_two_failed_launches_are_both_named(make_sandbox, clock):
    sb = make_sandbox()
    sb.inject("jobs/run-now", "status", status=400, count=2)
    with pytest.raises(SweepFailed) as info:
        run_many(
            client_of(sb, clock),
            JOB,
            [{"d": "1"}, {"d": "2"}, {"d": "3"}],
            idempotency_token="two",
            allow_unknown_params=True,  # the names are not the point here
        )
    message = str(info.value)
    assert "2 of 3 runs could not be launched" in message and "two-0" in message and "two-1" in message
    assert info.value.results[2] is not None and info.value.results[2].ok


def test_max_parallel_is_capped_when_the_job_does_not_queue(make_sandbox, clock):
    sb = make_sandbox()
    sb.add_job("narrow", duration=5, max_concurrent_runs=2, queue=False)
    results = run_many(
        client_of(sb, clock),
        "narrow",
        [{"i": str(i)} for i in range(5)],
        max_parallel=5,
        allow_unknown_params=True,
    )
    assert [r.result_state for r in results] == ["SUCCESS"] * 5  # none SKIPPED


# -- the form and the magics --------------------------------------------------------------------------


def test_the_form_reuses_the_token_after_a_launch_whose_answer_was_lost(make_sandbox, clock):
    sb = make_sandbox()
    form = RunForm(client=client_of(sb, clock, retry=RetryPolicy(attempts=2, backoff=0.01)), namespace={})
    form.job.value = JOB
    before = set(sb.run_ids(JOB))
    sb.inject("jobs/run-now", "drop_after", count=2)  # started, but the answer never came back
    form.run()
    with pytest.raises(DatabricksError):
        form.wait(timeout=30)
    assert form.error is not None and form.error.follow_up == MAY_HAVE_STARTED
    token = form.error.idempotency_token
    assert form.token.value == token and token in form.status.value
    form.run()
    result = form.wait(timeout=30)
    assert result.ok and set(sb.run_ids(JOB)) - before == {result.run_id}  # one run, found again


def test_a_job_named_with_digits_runs_by_name_on_every_face(make_sandbox, clock):
    sb = make_sandbox()
    job_id = sb.add_job("123", duration=1)
    client = client_of(sb, clock)
    assert run_job_and_wait(client, "name:123").job_id == job_id
    form = RunForm(client=client, namespace={})
    form.job.value = "123"  # picked from the list of names
    form.run()
    assert form.wait(timeout=30).job_id == job_id


def test_a_bad_sandbox_speed_leaves_the_running_sandbox_alone():
    shell = fresh_shell()
    shell.run_line_magic("load_ext", "dbx_magic")
    try:
        shell.run_line_magic("dbx_sandbox", "--speed 50")
        magics = shell.magics_manager.registry["DbxMagics"]
        running = magics.sandbox
        result = shell.run_cell("%dbx_sandbox --speed nan", store_history=False)
        assert result.error_in_exec is not None and "not positive" in str(result.error_in_exec)
        assert magics.sandbox is running and magics.session.client().get_job(running.job_id(JOB))
    finally:
        shell.run_line_magic("unload_ext", "dbx_magic")
