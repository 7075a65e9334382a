"""Load: 50 concurrent waits in one process, under bursts of 429s, within a set request rate."""

from __future__ import annotations

import threading
from typing import Any

from dbx_magic import DatabricksClient, RunResult, run_job_and_wait
from dbx_magic.api.client import RetryPolicy
from dbx_magic.api.ratelimit import RateLimiter
from dbx_magic.sandbox import Sandbox, Task

WAITS = 50
RATE, BURST = 50.0, 10.0


def test_fifty_concurrent_waits_under_429_bursts_stay_under_the_rate():
    granted: list[float] = []  # the moments the limiter let each request go (what it answers for;
    # arrival times at the server also carry the scheduling jitter of a busy machine)
    limiter = RateLimiter(RATE, BURST, on_grant=granted.append)
    with Sandbox(speed=60) as sb:
        task = Task("main", "/Workspace/Shared/load", {"i": "0"}, duration=30)  # 0.5 s a run at speed 60
        sb.add_job("load", tasks=[task], max_concurrent_runs=WAITS)
        before = set(sb.run_ids("load"))
        # Bursts of rate limiting on the launch and on the polls, some with Retry-After.
        sb.inject("jobs/run-now", "status", status=429, count=15)
        sb.inject("jobs/runs/get", "status", status=429, retry_after=1, count=40)
        sb.inject("jobs/runs/get", "status", status=429, count=40)
        results: list[RunResult | None] = [None] * WAITS
        errors: list[BaseException] = []

        def wait(i: int) -> None:
            client = DatabricksClient(
                sb.url, sb.token, rate_limiter=limiter, retry=RetryPolicy(attempts=10, backoff=0.2)
            )
            try:
                results[i] = run_job_and_wait(client, "load", {"i": str(i)}, timeout=120)
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)

        threads = [threading.Thread(target=wait, args=(i,)) for i in range(WAITS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
        log = sb.requests
        created = set(sb.run_ids("load")) - before

    assert errors == []
    done = [r for r in results if r is not None]
    assert len(done) == WAITS and all(r.ok for r in done)
    assert {r.run_id for r in done} == created  # every run id accounted for, none extra
    assert sum(r.status == 429 for r in log) == 95  # the bursts were met, and outlasted

    # A token bucket lets at most BURST + RATE * w requests through in any window of w seconds.
    assert len(granted) >= len(log)  # every request the server saw went through the limiter
    stamps = sorted(granted)
    worst: dict[str, Any] = {"excess": -1e9}
    for window in (0.5, 1.0, 2.0):
        j = 0
        for i, start in enumerate(stamps):
            while j < len(stamps) and stamps[j] < start + window:
                j += 1
            excess = (j - i) - (BURST + RATE * window)
            if excess > worst["excess"]:
                worst = {"excess": excess, "window": window, "count": j - i}
    assert worst["excess"] <= 1, worst  # one request of slack for timestamp rounding


CLIENTS = 200


def test_two_hundred_clients_at_once_are_all_answered_and_every_run_accounted_for(make_sandbox, clock):
    """200 clients, each with its own connection, launch at the same instant and watch their runs to
    the end: none is reset or refused (one attempt each, no retries to hide one), every run is found."""
    sb = make_sandbox()
    sb.add_job("crowd", duration=3, max_concurrent_runs=CLIENTS)
    before = set(sb.run_ids("crowd"))
    start = threading.Barrier(CLIENTS)
    results: list[RunResult | None] = [None] * CLIENTS
    errors: list[BaseException] = []
    limiter = RateLimiter(1e6, 1e6, clock=clock)  # not the subject here

    def client_run(i: int) -> None:
        client = DatabricksClient(
            sb.url, sb.token, clock=clock, retry=RetryPolicy(attempts=1), rate_limiter=limiter
        )
        try:
            start.wait(timeout=30)
            results[i] = run_job_and_wait(
                client, "crowd", {"i": str(i)}, timeout=3600, allow_unknown_params=True
            )
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=client_run, args=(i,), daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "every client finished"
    assert errors == [], [str(e) for e in errors[:3]]
    done = [r for r in results if r is not None]
    assert len(done) == CLIENTS and all(r.ok for r in done)
    assert {r.run_id for r in done} == set(sb.run_ids("crowd")) - before  # every run, none extra
    log = sb.requests
    assert sum(r.path.endswith("run-now") for r in log) == CLIENTS
    assert all(r.status is not None and r.status < 400 for r in log)  # every request answered, none refused
