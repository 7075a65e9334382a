"""The process-wide request-rate limiter: a token bucket on a fake clock, across threads, in the client."""

from __future__ import annotations

import threading
import time

import pytest

from dbx_magic import DatabricksClient, RetryPolicy, wait_for_run
from dbx_magic.ratelimit import DEFAULT_RATE, RateLimiter, default_limiter, set_default_rate

from .conftest import API, HOST, TOKEN


class FakeTime:
    """A clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_burst_goes_at_once_then_the_rate_holds():
    t = FakeTime()
    limiter = RateLimiter(2.0, burst=3, clock=t.clock, sleep=t.sleep)
    waits = [limiter.acquire() for _ in range(7)]
    assert waits[:3] == [0, 0, 0]  # the bucket starts full
    assert waits[3:] == pytest.approx([0.5, 0.5, 0.5, 0.5])  # then one every 1/rate seconds
    assert t.now == pytest.approx(2.0) and limiter.waited == pytest.approx(2.0)


def test_tokens_come_back_while_idle_up_to_the_burst():
    t = FakeTime()
    limiter = RateLimiter(1.0, burst=2, clock=t.clock, sleep=t.sleep)
    limiter.acquire()
    limiter.acquire()
    t.now += 100  # a long quiet spell refills the bucket, but only up to its size
    assert [limiter.acquire() for _ in range(3)] == pytest.approx([0, 0, 1.0])


def test_reconfiguring_changes_the_rate():
    t = FakeTime()
    limiter = RateLimiter(1.0, burst=1, clock=t.clock, sleep=t.sleep)
    limiter.acquire()
    limiter.configure(10.0, burst=1)
    assert limiter.acquire() == pytest.approx(0.1)
    assert (limiter.rate, limiter.burst) == (10.0, 1.0)
    assert repr(limiter) == "RateLimiter(rate=10, burst=1)"


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (True, None), ("5", None), (5, 0.5)])
def test_bad_settings_are_refused(rate, burst):
    with pytest.raises(ValueError):
        RateLimiter(rate, burst)


def test_threads_share_one_bucket_and_are_spread_out():
    # Real time, a high rate: 8 threads x 5 requests at 200/s with a burst of 10 take >= 0.15 s.
    limiter = RateLimiter(200.0, burst=10)
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(stamps) == 40
    assert max(stamps) - started >= (40 - 10) / 200 * 0.95
    # No window of 0.1 s holds more than the burst plus 0.1 s worth of tokens (a little slack).
    stamps.sort()
    for i, first in enumerate(stamps):
        inside = sum(1 for s in stamps[i:] if s - first < 0.1)
        assert inside <= 10 + 20 + 2


def test_every_client_shares_the_default_limiter_unless_given_one():
    assert DatabricksClient(HOST, TOKEN)._limiter is default_limiter()
    own = RateLimiter(1.0)
    assert DatabricksClient(HOST, TOKEN, rate_limiter=own)._limiter is own
    assert default_limiter().rate == DEFAULT_RATE


def test_set_default_rate_applies_to_every_client():
    before = (default_limiter().rate, default_limiter().burst)
    try:
        set_default_rate(3.5, burst=7)
        assert (default_limiter().rate, default_limiter().burst) == (3.5, 7.0)
    finally:
        set_default_rate(*before)


def test_the_client_takes_a_token_before_every_attempt_retries_included(rsps):
    t = FakeTime()
    limiter = RateLimiter(1.0, burst=1, clock=t.clock, sleep=t.sleep)
    retry_sleeps: list[float] = []
    client = DatabricksClient(
        HOST, TOKEN, rate_limiter=limiter, sleep=retry_sleeps.append, retry=RetryPolicy(jitter=0.0)
    )
    rsps.get(f"{API}/runs/get", status=503, json={"error_code": "TEMPORARILY_UNAVAILABLE", "message": "x"})
    rsps.get(f"{API}/runs/get", json={"run_id": 1, "state": {"life_cycle_state": "RUNNING"}})
    rsps.get(f"{API}/get", json={"job_id": 7})
    client.get_run(1)
    client.get_job(7)
    assert len(rsps.calls) == 3
    assert t.sleeps == pytest.approx([1.0, 1.0])  # three attempts, one token a second: two waits


def test_the_client_remembers_retry_after_for_the_poller(rsps, sleeps):
    client = DatabricksClient(HOST, TOKEN, sleep=sleeps, retry=RetryPolicy(jitter=0.0))
    rsps.get(f"{API}/runs/get", status=429, headers={"Retry-After": "7"}, json={"message": "slow down"})
    rsps.get(f"{API}/runs/get", json={"run_id": 1, "state": {"life_cycle_state": "RUNNING"}})
    rsps.get(f"{API}/runs/get", json={"run_id": 1, "state": {"life_cycle_state": "RUNNING"}})
    client.get_run(1)
    assert sleeps == [7.0] and client.last_retry_after == 7.0
    client.get_run(1)
    assert client.last_retry_after is None  # each request starts afresh


def test_a_429_on_runs_get_stretches_the_next_poll(rsps):
    client = DatabricksClient(HOST, TOKEN, sleep=lambda s: None, retry=RetryPolicy(jitter=0.0))
    running = {"job_id": 7, "run_id": 1, "state": {"life_cycle_state": "TERMINATING"}}
    done = {"job_id": 7, "run_id": 1, "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}}
    rsps.get(f"{API}/runs/get", status=429, headers={"Retry-After": "30"}, json={"message": "slow down"})
    rsps.get(f"{API}/runs/get", json=running)
    rsps.get(f"{API}/runs/list", json={"runs": []})
    rsps.get(f"{API}/runs/get", json=done)
    waits: list[float] = []
    assert wait_for_run(client, 1, sleep=waits.append).ok
    assert waits == [30.0]  # TERMINATING alone would poll again in 0.5 s: Retry-After wins
