"""Background runs in the run layer: the watcher and its handles, against the sandbox over loopback.

Most tests run on the fake clock with a watcher that has no thread: the test steps it
(``watcher.step()`` then ``clock.sleep(delay)``), so every cycle is deterministic and costs no real
time. The last ones use the real clock and the watcher's thread, as a kernel does.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from dbx_magic import (
    DatabricksClient,
    DatabricksError,
    RunFailed,
    RunHandle,
    RunInterrupted,
    WaitTimeout,
    Watcher,
    run_job_and_wait,
    start_background,
)
from dbx_magic.api.client import RetryPolicy
from dbx_magic.errors import ResourceDoesNotExist
from dbx_magic.run.engine import NO_HISTORY_AGE, STOPPED, WATCHING
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock

from .conftest import interrupt_main, main_thread_waits

NO_RETRY = RetryPolicy(attempts=1, jitter=0.0)


@pytest.fixture
def watcher(clock: ManualClock) -> Watcher:
    return Watcher(clock, threaded=False)


def client_of(sb: Sandbox, clock: ManualClock, **kwargs: Any) -> DatabricksClient:
    kwargs.setdefault("retry", RetryPolicy(jitter=0.0))
    return DatabricksClient(sb.url, sb.token, clock=clock, **kwargs)


def drive(
    watcher: Watcher, clock: ManualClock, until: Callable[[], bool] | None = None, cycles: int = 10_000
) -> int:
    """Step the watcher on the fake clock until nothing is watched (or ``until()``); returns the cycles."""
    for done in range(cycles):
        if (until is not None and until()) or not watcher.active:
            return done
        clock.sleep(watcher.step())
    raise AssertionError("the watcher never settled")


def polls(sb: Sandbox) -> Counter[str]:
    return Counter(r.path.split("/api/", 1)[-1].split("/", 1)[-1] for r in sb.requests)


# -- the handle ----------------------------------------------------------------------------------------


def test_start_background_returns_at_once_and_ends_as_a_blocking_run(sandbox, sandbox_client, clock, watcher):
    handle = start_background(sandbox_client, "daily-sales-report", {"date": "2026-11-01"}, watcher=watcher)
    assert isinstance(handle, RunHandle) and handle.run_id and not handle.done
    assert handle.state == "LAUNCHING" and handle.mode == WATCHING
    assert not any("runs/" in r.path for r in sandbox.requests)  # launched, not polled yet
    assert f"run {handle.run_id}" in repr(handle) and "watching" in repr(handle)
    result = handle.wait()
    assert handle.done and result.ok and result is handle.result
    assert result.output and "2026-11-01" in result.output  # task outputs, as the blocking run has them
    blocking = run_job_and_wait(sandbox_client, "daily-sales-report", {"date": "2026-11-01"}, clock=clock)
    assert (result.result_state, [t.key for t in result.tasks]) == (
        blocking.result_state,
        [t.key for t in blocking.tasks],
    )
    assert "SUCCESS" in repr(handle) and "<a href=" in handle._repr_html_()


def test_wait_raises_as_the_blocking_run_would(sandbox_client, watcher):
    handle = start_background(sandbox_client, "flaky-ingest", {"fail": "true"}, watcher=watcher)
    with pytest.raises(RunFailed) as info:
        handle.wait()
    assert info.value.run_id == handle.run_id and "asked to fail" in str(info.value)
    assert handle.wait(raise_on_failure=False).result_state == "FAILED"  # again: at once, same result


def test_a_timeout_stops_the_waiting_not_the_watching(make_sandbox, clock, watcher):
    sb = make_sandbox()
    sb.add_job("slow-job", duration=600)
    handle = start_background(client_of(sb, clock), "slow-job", watcher=watcher)
    with pytest.raises(WaitTimeout) as info:
        handle.wait(timeout=30)
    assert info.value.run_id == handle.run_id and "watched in the background" in str(info.value)
    assert handle.mode == WATCHING and not handle.done
    assert handle.wait().ok  # the same handle, waited again to the end


def test_cancel_ends_the_run_canceled(make_sandbox, clock, watcher):
    sb = make_sandbox()
    sb.add_job("slow-job", duration=600)
    handle = start_background(client_of(sb, clock), "slow-job", watcher=watcher)
    drive(watcher, clock, until=lambda: handle.state == "RUNNING")
    handle.cancel()
    assert handle.wait(raise_on_failure=False).result_state == "CANCELED"
    assert clock.monotonic() - 1000.0 < 120  # seen soon after the cancel, not at the run's planned end


def test_listeners_get_every_poll_and_settled_comes_once(sandbox_client, clock, watcher):
    seen: list[str] = []
    settled: list[int] = []
    watcher.add_listener(lambda h: settled.append(h.run_id))
    handle = start_background(
        sandbox_client,
        "daily-sales-report",
        watcher=watcher,
        on_update=lambda r: seen.append(r.life_cycle_state),
    )
    drive(watcher, clock)
    handle.wait()
    watcher.step()
    assert seen[-1] == "TERMINATED" and len(seen) >= 2
    assert settled == [handle.run_id]


# -- one watcher for all: batching -----------------------------------------------------------------------

BATCHES = [
    # (runs, jobs): the 50 of 5, one job over a page, exactly a page, a page and one, one run
    (50, 5),
    (30, 1),
    (25, 1),
    (26, 1),
    (1, 1),
    (12, 4),
]


@pytest.mark.parametrize(("runs", "jobs"), BATCHES, ids=[f"{r}-runs-{j}-jobs" for r, j in BATCHES])
def test_runs_are_polled_together_by_job(make_sandbox, clock, runs, jobs):
    sb = make_sandbox()
    names = [f"batch-{i}" for i in range(jobs)]
    for i, name in enumerate(names):
        sb.add_job(name, duration=20.0 + 7 * i, max_concurrent_runs=100, history=3)
    client = client_of(sb, clock)
    watcher = Watcher(clock, threaded=False)
    handles = [start_background(client, names[i % jobs], watcher=watcher) for i in range(runs)]
    sb.clear_requests()
    cycles = 0
    while watcher.active:
        before = len(sb.requests)
        clock.sleep(watcher.step())
        cycle = sb.requests[before:]
        if not cycle:
            continue
        cycles += 1
        pages = Counter(
            r.query.get("job_id")
            for r in cycle
            if r.path.endswith("runs/list") and r.query.get("active_only")
        )
        for job_id, count in pages.items():
            per_job = sum(1 for h in handles if str(h.job_id) == job_id)
            assert count <= math.ceil(per_job / 25), (job_id, count, per_job)
    assert all(h.done and h.ok for h in handles)
    counted = polls(sb)
    if runs == jobs:  # one run a job: a runs/get a cycle costs what a page would, and brings its tasks
        assert counted["jobs/runs/get"] <= cycles + runs
    else:
        assert counted["jobs/runs/get"] == runs  # one runs/get per run, when it leaves the active list
    history = sum(1 for r in sb.requests if r.path.endswith("runs/list") and not r.query.get("active_only"))
    assert history == jobs  # the history of each job read once, for all its runs
    assert counted["jobs/runs/list"] - history <= cycles * sum(math.ceil(runs / jobs / 25) for _ in names)


def test_the_soonest_run_paces_the_cycle(make_sandbox, clock, watcher):
    sb = make_sandbox()
    sb.add_job("short", duration=4)
    sb.add_job("long", duration=3600)
    client = client_of(sb, clock)
    long_run = start_background(client, "long", watcher=watcher)
    short = start_background(client, "short", watcher=watcher)
    drive(watcher, clock, until=lambda: short.done)
    assert clock.monotonic() - 1000.0 < 30  # the short run's end was seen within seconds
    assert not long_run.done and watcher.active == [long_run]


# -- failures stay with their run ------------------------------------------------------------------------


def test_a_run_that_does_not_exist_is_dropped_and_the_others_go_on(sandbox, clock, watcher):
    client = client_of(sandbox, clock)
    ghost = watcher.watch(client, 424_242)
    real = start_background(client, "daily-sales-report", watcher=watcher)
    drive(watcher, clock)
    assert real.done and real.ok
    assert isinstance(ghost.error, ResourceDoesNotExist) and ghost.mode == STOPPED
    assert ghost not in watcher.handles
    with pytest.raises(ResourceDoesNotExist) as info:
        ghost.wait()
    assert "goes on" not in str(info.value)


def test_a_workspace_gone_away_is_recorded_on_its_runs_only(make_sandbox, clock):
    """Two workspaces watched together; one stops answering: its runs record the failure and stop being
    watched, the other's runs are watched to their end."""
    gone, well = make_sandbox(), make_sandbox()
    gone.add_job("slow-job", duration=600)
    watcher = Watcher(clock, threaded=False, give_up_after=2)
    lost = [
        start_background(client_of(gone, clock, retry=NO_RETRY), "slow-job", watcher=watcher)
        for _ in range(2)
    ]
    kept = [start_background(client_of(well, clock), "daily-sales-report", watcher=watcher) for _ in range(2)]
    gone.stop()
    drive(watcher, clock)
    assert all(h.done and h.ok for h in kept)
    for handle in lost:
        assert handle.mode == STOPPED and not handle.done
        assert handle.error is not None and handle.error.run_id == handle.run_id
        assert "goes on in the workspace" in str(handle.error)


def test_transient_and_lasting_failures(make_sandbox, clock):
    sb = make_sandbox()
    sb.add_job("slow-job", duration=60)
    client = client_of(sb, clock, retry=NO_RETRY)
    watcher = Watcher(clock, threaded=False, give_up_after=3)
    handle = start_background(client, "slow-job", watcher=watcher)
    clock.sleep(watcher.step())  # the first look: the job's newest runs, this one among them
    # One failed cycle: recorded, and the next good poll clears it (one run: polled with runs/get).
    sb.inject("jobs/runs/get", "status", count=1, status=503)
    clock.sleep(watcher.step())
    assert handle.last_error is not None and handle.mode == WATCHING and handle.error is None
    clock.sleep(watcher.step())
    assert handle.last_error is None
    # Failures in a row: the watching stops, the error names the run, which goes on.
    sb.inject("jobs/runs/get", "status", count=3, status=503)
    drive(watcher, clock, until=lambda: handle.mode == STOPPED)
    assert handle.error is not None and handle.error.run_id == handle.run_id
    assert f"wait_for_run(client, {handle.run_id})" in str(handle.error)
    assert handle not in watcher.active and not handle.done
    # wait() watches it again, and this time it ends.
    assert handle.wait().ok


def test_a_refusal_stops_the_watching_at_once_and_names_the_run(make_sandbox, clock):
    sb = make_sandbox()
    sb.add_job("slow-job", duration=60)
    watcher = Watcher(clock, threaded=False, give_up_after=5)
    handle = start_background(client_of(sb, clock), "slow-job", watcher=watcher)
    clock.sleep(watcher.step())  # the first look: the job's newest runs, this one among them
    sb.inject("jobs/runs/get", "status", count=1, status=403)  # asking again would not help
    clock.sleep(watcher.step())
    assert handle.mode == STOPPED and handle.error is not None and handle.error.run_id == handle.run_id
    assert not handle.done and handle not in watcher.active


def test_no_watcher_is_shared_behind_the_callers_back(make_sandbox, clock):
    from dbx_magic.notebook.session import NotebookSession

    sb = make_sandbox()
    one = client_of(sb, clock)
    assert not hasattr(one, "watcher")  # the HTTP client holds no run-layer object
    first, second = (
        NotebookSession({}, clock=clock, threaded=False),
        NotebookSession({}, clock=clock, threaded=False),
    )
    assert first.watcher is not second.watcher
    assert first.watcher_for(client_of(sb, clock)) is first.watcher
    other_clock = ManualClock()
    foreign = client_of(sb, other_clock)
    assert first.watcher_for(foreign).clock is other_clock  # its own watcher, on its own clock
    with pytest.raises(DatabricksError, match="another clock"):
        start_background(foreign, "daily-sales-report", watcher=first.watcher)
    assert sb.requests == [] or all(not r.path.endswith("run-now") for r in sb.requests)


def test_a_form_with_a_client_on_another_clock_ends_without_hanging(make_sandbox, clock):
    from dbx_magic.notebook.form import RunForm
    from dbx_magic.notebook.session import NotebookSession

    sb = make_sandbox()
    session = NotebookSession({}, clock=ManualClock(), threaded=False)  # not the client's clock
    form = RunForm(client=client_of(sb, clock), session=session, job="daily-sales-report", out="r")
    form.run()
    result = form.wait(timeout=30)
    assert result.ok and session.namespace["r"] is result
    assert any(h.run_id == result.run_id for h in session.handles)  # on the session's board


def test_a_broken_listener_never_stops_the_watching(sandbox_client, clock, watcher):
    def broken(_result: Any) -> None:
        raise RuntimeError("display gone")

    handle = start_background(sandbox_client, "daily-sales-report", watcher=watcher, on_update=broken)
    other = start_background(sandbox_client, "train-model", watcher=watcher)
    drive(watcher, clock)
    assert handle.ok and other.ok


# -- runs found elsewhere ----------------------------------------------------------------------------


def test_adopt_lists_a_run_found_in_a_page_without_watching_it(make_sandbox, clock, watcher):
    sb = make_sandbox()
    sb.add_job("slow-job", duration=300)
    client = client_of(sb, clock)
    other = Watcher(clock, threaded=False)
    elsewhere = start_background(client, "slow-job", watcher=other)
    drive(other, clock, until=lambda: elsewhere.state == "RUNNING")
    page = client.list_runs(sb.job_id("slow-job"), active_only=True)
    handle = watcher.adopt(client, page["runs"][0])
    assert handle.run_id == elsewhere.run_id and handle.mode == STOPPED and handle.state == "RUNNING"
    assert watcher.adopt(client, page["runs"][0]) is handle
    handle.resume()
    assert handle.wait().ok


# -- the real clock: the thread ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast() -> Any:
    with Sandbox(speed=50) as sb:
        sb.add_job("slow-job", duration=600)
        yield sb


def interrupt_on_next_poll(handle: RunHandle) -> None:
    """The kernel's interrupt, delivered to the main thread after a poll of the run by the watcher's
    thread, once the main thread is inside a wait (an event, not a timer; the wait is seen on the
    main thread's stack, so the interrupt never lands before it)."""
    fired = threading.Event()

    def once(_result: Any) -> None:
        if fired.is_set() or not main_thread_waits():
            return
        fired.set()
        interrupt_main()

    handle.add_listener(once)


def test_the_thread_watches_while_the_caller_does_other_work(fast):
    client = DatabricksClient(fast.url, fast.token)
    watcher = Watcher()
    assert watcher.threaded
    handles = [start_background(client, "daily-sales-report", watcher=watcher) for _ in range(3)]
    done = threading.Event()
    watcher.add_listener(lambda h: done.set() if all(x.done for x in handles) else None)
    assert done.wait(30), "the thread never saw the runs end"
    results: list[Any] = []
    threads = [threading.Thread(target=lambda h=h: results.append(h.wait())) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == 3 and all(r.ok for r in results)
    watcher.shutdown()


@pytest.mark.signals
def test_an_interrupt_stops_the_waiting_and_the_run_stays_watched(fast):
    client = DatabricksClient(fast.url, fast.token)
    watcher = Watcher()
    handle = start_background(client, "slow-job", watcher=watcher)
    interrupt_on_next_poll(handle)
    with pytest.raises(RunInterrupted) as info:
        handle.wait()
    assert info.value.run_id == handle.run_id and "still watched in the background" in str(info.value)
    assert handle.mode == WATCHING and not handle.done
    going = watcher.shutdown()
    assert going == [handle]  # listed as going on
    client.cancel_run(handle.run_id)


@pytest.mark.signals
def test_an_interrupt_with_cancel_ends_the_run(fast):
    client = DatabricksClient(fast.url, fast.token)
    watcher = Watcher()
    handle = start_background(client, "slow-job", watcher=watcher)
    interrupt_on_next_poll(handle)
    with pytest.raises(RunInterrupted) as info:
        handle.wait(cancel_on_interrupt=True)
    assert info.value.cancelled and handle.result.result_state == "CANCELED"
    watcher.shutdown()


def test_shutdown_lists_the_runs_that_go_on(fast, caplog):
    client = DatabricksClient(fast.url, fast.token)
    watcher = Watcher()
    handle = start_background(client, "slow-job", watcher=watcher)
    assert watcher.shutdown() == [handle]
    assert f"{handle.run_id} (slow-job" in caplog.text and "go" in caplog.text
    client.cancel_run(handle.run_id)


def test_the_board_and_the_notices_say_how_each_run_stands(make_sandbox, clock):
    from dbx_magic.notebook.board import describe_board, text_board
    from dbx_magic.notebook.notices import notice_for

    gone, well = make_sandbox(), make_sandbox()
    gone.add_job("slow-job", duration=600)
    watcher = Watcher(clock, threaded=False, give_up_after=1)
    lost = start_background(client_of(gone, clock, retry=NO_RETRY), "slow-job", watcher=watcher)
    ok = start_background(client_of(well, clock), "daily-sales-report", watcher=watcher)
    bad = start_background(client_of(well, clock), "flaky-ingest", {"fail": "true"}, watcher=watcher)
    bad.out = "bad"
    gone.stop()
    drive(watcher, clock)
    by_key = {row.key: row for row in describe_board(watcher.handles, clock.wall())}
    rows = {h.run_id if h is not lost else -1: by_key[id(h)] for h in (ok, bad, lost)}
    assert (
        rows[ok.run_id].state == "SUCCESS"
        and rows[ok.run_id].watched == "done"
        and not rows[ok.run_id].can_cancel
    )
    assert rows[bad.run_id].result.startswith("FAILED: ") and "asked to fail" in rows[bad.run_id].result
    assert rows[-1].watched == "not watched" and rows[-1].can_watch
    assert rows[-1].result.startswith("watching stopped: ")
    table = text_board(watcher.handles, clock.wall())
    assert table.splitlines()[0].split() == [
        "job",
        "run",
        "state",
        "elapsed",
        "eta",
        "parameters",
        "watched",
        "result",
    ]
    assert all(str(h.run_id) in table for h in (ok, bad, lost)) and len(table.splitlines()) >= 4
    assert (notice_for(ok).level, notice_for(bad).level, notice_for(lost).level) == (
        "success",
        "danger",
        "warning",
    )
    assert "ended FAILED" in notice_for(bad).title and "asked to fail" in notice_for(bad).body
    assert "`bad`" in notice_for(bad).body and "\n" not in notice_for(bad).line
    assert "goes on in the workspace" in notice_for(lost).body


def test_a_job_without_history_gets_one_as_its_runs_end(make_sandbox, clock):

    sb = make_sandbox()
    sb.add_job("new-job", duration=30)  # no finished run yet
    watcher = Watcher(clock, threaded=False)
    client = client_of(sb, clock)
    first = start_background(client, "new-job", watcher=watcher)
    drive(watcher, clock)
    assert first.ok and first.result.expected_duration is None  # nothing to learn from then
    clock.sleep(NO_HISTORY_AGE)
    second = start_background(client, "new-job", watcher=watcher)
    drive(watcher, clock, until=lambda: second.result.life_cycle_state == "RUNNING")
    assert second.result.expected_duration is not None  # read again: the first run is history now
    drive(watcher, clock)


def test_the_state_is_read_at_once_while_a_poll_is_in_flight(sandbox, sandbox_client, clock, watcher):
    handle = start_background(sandbox_client, "daily-sales-report", {"date": "2026-11-01"}, watcher=watcher)
    read: list[bool] = []

    def probe() -> None:  # on the server's thread, while the watcher waits for this very answer
        reader = threading.Thread(target=lambda: handle.state, daemon=True)
        reader.start()
        reader.join(2)  # a reader blocked behind the poll would still be waiting: the answer is held
        read.append(not reader.is_alive())

    for endpoint in ("jobs/runs/list", "jobs/runs/get-output"):
        sandbox.inject(endpoint, "delay", delay=0.0, on_arrival=probe)
    drive(watcher, clock)
    assert handle.ok and read == [True, True], read


def test_a_throttled_poll_waits_as_asked_and_never_ends_the_watching(make_sandbox, clock):
    sb = make_sandbox()
    sb.add_job("slow-job", duration=600)
    client = client_of(sb, clock, retry=NO_RETRY)
    watcher = Watcher(clock, threaded=False, give_up_after=2)
    handle = start_background(client, "slow-job", watcher=watcher)
    clock.sleep(watcher.step())
    sb.inject("jobs/runs/get", "status", status=429, retry_after=120, count=3)
    for _ in range(3):  # more throttled cycles than give_up_after: still watched
        before = clock.monotonic()
        clock.sleep(watcher.step())
        assert clock.monotonic() - before >= 120 or not watcher.active  # the next poll waits as asked
    assert handle.mode == WATCHING and handle.error is None
    clock.sleep(watcher.step())
    assert handle.last_error is None  # answered again
    handle.cancel()
    drive(watcher, clock)
    assert handle.result.result_state == "CANCELED"


def test_a_wait_inside_a_listener_is_refused_instead_of_waiting_for_itself(sandbox_client, clock, watcher):
    said: list[str] = []

    def impatient(_result: Any) -> None:
        try:
            handle.wait()
        except DatabricksError as exc:
            said.append(str(exc))

    handle = start_background(sandbox_client, "daily-sales-report", watcher=watcher, on_update=impatient)
    drive(watcher, clock)
    assert handle.ok and said and "called from a listener" in said[0]


def test_a_handle_cancelled_after_its_end_says_so_and_sends_nothing(sandbox, clock):
    from dbx_magic import start_background
    from dbx_magic.testing import stepped_watcher

    client = client_of(sandbox, clock)
    handle = start_background(
        client, "daily-sales-report", {"date": "2026-11-01"}, watcher=stepped_watcher(clock)
    )
    handle.wait()
    sandbox.clear_requests()
    answer = handle.cancel()
    assert (
        not answer.sent
        and answer.line() == f"Run {handle.run_id} already ended SUCCESS: nothing was cancelled."
    )
    assert not any(r.path.endswith("/runs/cancel") for r in sandbox.requests)
