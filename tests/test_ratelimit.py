"""The request-rate limiter: a token bucket on a fake clock, across threads, in the client."""

from __future__ import annotations

import threading

import pytest

from dbx_magic import DatabricksClient, wait_for_run
from dbx_magic.api.client import RetryPolicy
from dbx_magic.api.ratelimit import DEFAULT_BURST, DEFAULT_RATE, RateLimiter
from dbx_magic.notebook.session import NotebookSession

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
    # Time stands still (the sleeps are recorded, not waited): 8 threads x 5 requests at 200/s with a
    # burst of 10 must reserve 40 distinct slots, the first 10 at once, then one every 1/200 s.
    t = FakeTime()
    limiter = RateLimiter(200.0, burst=10, clock=t.clock, sleep=lambda s: None)
    waits: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            wait = limiter.acquire()
            with lock:
                waits.append(wait)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(waits) == pytest.approx([0.0] * 10 + [k / 200 for k in range(1, 31)])


def test_each_client_has_its_own_limiter_unless_given_a_shared_one():
    first, second = DatabricksClient(HOST, TOKEN), DatabricksClient(HOST, TOKEN)
    assert first.rate_limiter is not second.rate_limiter  # no process-wide state
    assert (first.rate_limiter.rate, first.rate_limiter.burst) == (DEFAULT_RATE, DEFAULT_BURST)
    shared = RateLimiter(1.0)
    assert DatabricksClient(HOST, TOKEN, rate_limiter=shared).rate_limiter is shared


def test_the_notebook_session_shares_one_limiter_among_its_clients(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "cfg"))
    (tmp_path / "cfg").write_text(f"[a]\nhost = {HOST}\ntoken = t-a\n[b]\nhost = {HOST}\ntoken = t-b\n")
    session = NotebookSession({})
    a, b = session.client("a"), session.client("b")
    assert a is not b and a.rate_limiter is b.rate_limiter is session.limiter
    assert session.client("a") is a  # one client per configuration, its sign-in reused


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


def test_a_retry_after_the_client_waited_out_is_not_handed_on(rsps, sleeps):
    client = DatabricksClient(HOST, TOKEN, sleep=sleeps, retry=RetryPolicy(jitter=0.0))
    rsps.get(f"{API}/runs/get", status=429, headers={"Retry-After": "7"}, json={"message": "slow down"})
    rsps.get(f"{API}/runs/get", json={"run_id": 1, "state": {"life_cycle_state": "RUNNING"}})
    rsps.get(f"{API}/runs/get", json={"run_id": 1}, headers={"Retry-After": "4"})
    first = client.get_run(1)
    assert sleeps == [7.0] and first.retry_after is None  # waited out already: not waited twice
    assert client.get_run(1).retry_after == 4.0  # the answer itself asks to slow down


def test_a_retry_after_on_an_answer_stretches_the_next_poll(rsps):
    client = DatabricksClient(HOST, TOKEN, sleep=lambda s: None, retry=RetryPolicy(jitter=0.0))
    running = {"job_id": 7, "run_id": 1, "state": {"life_cycle_state": "TERMINATING"}}
    done = {"job_id": 7, "run_id": 1, "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}}
    rsps.get(f"{API}/runs/get", json=running, headers={"Retry-After": "30"})
    rsps.get(f"{API}/runs/list", json={"runs": []})
    rsps.get(f"{API}/runs/get", json=done)
    waits: list[float] = []
    assert wait_for_run(client, 1, sleep=waits.append).ok
    assert waits == [30.0]  # TERMINATING alone would poll again in 0.5 s: Retry-After wins


def test_a_429_the_client_waited_out_does_not_make_the_poller_wait_again(rsps):
    retry_waits: list[float] = []
    client = DatabricksClient(HOST, TOKEN, sleep=retry_waits.append, retry=RetryPolicy(jitter=0.0))
    running = {"job_id": 7, "run_id": 1, "state": {"life_cycle_state": "TERMINATING"}}
    done = {"job_id": 7, "run_id": 1, "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}}
    rsps.get(f"{API}/runs/get", status=429, headers={"Retry-After": "30"}, json={"message": "slow down"})
    rsps.get(f"{API}/runs/get", json=running)
    rsps.get(f"{API}/runs/list", json={"runs": []})
    rsps.get(f"{API}/runs/get", json=done)
    waits: list[float] = []
    assert wait_for_run(client, 1, sleep=waits.append).ok
    assert retry_waits == [30.0] and waits == [0.5]
