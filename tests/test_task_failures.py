"""A task that fails while its run goes on is shown as soon as the SDK's schedule would see it, whether
its run is watched alone (``runs/get``) or with other runs of its job (``runs/list`` pages, which then
carry the tasks). On the sandbox and the fake clock, through the public faces."""

from __future__ import annotations

import io

import pytest

from dbx_magic import DatabricksClient, PollPolicy, Watcher, start_background
from dbx_magic.api.client import RetryPolicy
from dbx_magic.notebook.progress import TextProgress
from dbx_magic.sandbox import Task

FAILS_AT, RUNS_FOR = 20.0, 600.0


def bad_rows(params: dict[str, str]) -> str:
    raise ValueError("bad rows in the input")


@pytest.mark.parametrize("watched", [1, 3])
def test_a_task_failing_early_is_shown_while_the_run_goes_on(make_sandbox, clock, watched):
    sb = make_sandbox()
    tasks = [
        Task("check", "/Workspace/Shared/check", duration=FAILS_AT, notebook=bad_rows),
        Task("load", "/Workspace/Shared/load", duration=RUNS_FOR),
    ]
    sb.add_job("nightly", tasks=tasks, max_concurrent_runs=10, history=3)
    client = DatabricksClient(sb.url, sb.token, clock=clock, retry=RetryPolicy(jitter=0.0))
    watcher = Watcher(clock, threaded=False)
    handles = [start_background(client, "nightly", watcher=watcher) for _ in range(watched)]
    lines = TextProgress(stream=io.StringIO(), tick=None, live=False)
    handles[0].add_listener(lines)
    seen_at = None
    sb.clear_requests()
    while seen_at is None and clock.monotonic() < 1000 + RUNS_FOR / 2:
        clock.sleep(watcher.step())
        if any(t.result_state == "FAILED" for t in handles[0].result.tasks):
            seen_at = clock.wall()
    assert seen_at is not None, "the failed task was not shown while the run went on"
    assert handles[0].state == "RUNNING" and "check FAILED" in lines.lines[-1]
    failed_at = next(t for t in handles[0].wait(raise_on_failure=False).tasks if t.key == "check").end_time
    assert failed_at is not None and seen_at - failed_at / 1000 <= PollPolicy().longest  # the SDK's gap
    reads = [r for r in sb.requests if r.path.endswith(("runs/get", "runs/list"))]
    if watched > 1:  # one page for the job's runs, tasks included, not a runs/get per run
        assert all(r.query.get("expand_tasks") == "true" for r in reads if r.query.get("active_only"))
