"""Wide jobs: a run of 1,000 tasks, launched, watched and read back, and its display.

1. Launch to result, on the fake clock: ``run_job_and_wait`` of a 1,000-task job (four waves of 250
   tasks, 30-90 s each) on the sandbox completes; its requests and the real seconds it took.
2. Reading a finished run with every output, in real time on the sandbox (speed 1), side by side in one
   process, interleaved, medians of ``--reps``: dbx-magic's ``get_run`` and then ``fetch_outputs`` (the
   outputs read a few at a time, each through the client's rate limiter: 100 requests a second in bursts
   of 200) against databricks-sdk's ``jobs.get_run`` and one ``jobs.get_run_output`` per task, one after
   the other. For 100 and 1,000 tasks, on loopback and with 25 ms added to every answer (a workspace
   over the internet: Azure's round trips are tens of milliseconds).
3. The display of the finished 1,000-task run: the progress widget's text (``describe``/``render``) and
   the result's HTML, timed (medians of 5).

Targets (exit status 1 when missed): the launch completes; reading the run with 25 ms round trips takes
at most 1.2x the SDK's time; the display renders in under 200 ms. On loopback the reads of 1,000
outputs are bounded by the client's own rate limit (about 8 s), while the SDK, which has none, is
bounded by its round trips: that row is printed, not checked.

Run ``python benchmarks/bench_wide.py`` (a few minutes) or ``--quick`` (100 tasks only).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dbx_magic import DatabricksClient, RunFailed, run_job_and_wait
from dbx_magic.api.client import RetryPolicy
from dbx_magic.run.models import RunResult
from dbx_magic.run.watch import fetch_outputs
from dbx_magic.sandbox import Sandbox, Task
from dbx_magic.testing import ManualClock

RATIO = 1.2
RENDER_MS = 200.0
RTT = 0.025


def wide_tasks(count: int, waves: int = 4) -> list[Task]:
    """``count`` notebook tasks in ``waves`` waves, each wave after the one before; one in 50 fails."""
    per = max(1, count // waves)
    tasks = []
    for i in range(count):
        wave = min(i // per, waves - 1)
        after = [f"t{wave - 1}-0"] if wave else []
        key = f"t{wave}-{i % per}" if i % per else f"t{wave}-0"
        tasks.append(
            Task(
                key,
                f"/Workspace/Shared/wide/{key}",
                depends_on=after,
                duration=30.0 + (i * 7) % 61,
                notebook=_fails if i % 50 == 49 else _value,
            )
        )
    return tasks


def _value(params: dict[str, str]) -> str:
    return "ok"


def _fails(params: dict[str, str]) -> str:
    raise ValueError("bad rows in the input")


def launch_to_result(count: int) -> dict[str, Any]:
    clock = ManualClock()
    with Sandbox(clock=clock.monotonic, epoch=clock.wall()) as sb:
        sb.add_job("wide", tasks=wide_tasks(count), history=0)
        client = DatabricksClient(sb.url, sb.token, clock=clock, retry=RetryPolicy(jitter=0.0))
        started = time.perf_counter()
        result = _ended(client, "wide")
        seconds = time.perf_counter() - started
        assert result.finished and len(result.tasks) == count, (result.life_cycle_state, len(result.tasks))
        return {
            "tasks": len(result.tasks),
            "failed": sum(t.failed for t in result.tasks),
            "requests": len(sb.requests),
            "real s": seconds,
            "simulated s": clock.monotonic() - 1000.0,
            "result": result,
        }


def finished_run(sb: Sandbox, count: int) -> int:
    """A finished run of ``count`` tasks on a real-time sandbox (run at a high speed, then read back)."""
    sb.add_job(f"wide-{count}", tasks=wide_tasks(count), history=0)
    return _ended(DatabricksClient(sb.url, sb.token), f"wide-{count}").run_id


def _ended(client: DatabricksClient, job: str) -> RunResult:
    """``run_job_and_wait``'s result, whether the run succeeded or not (one task in 50 fails)."""
    try:
        return run_job_and_wait(client, job)
    except RunFailed as failed:
        assert failed.result is not None
        return failed.result


def read_dbx(sb: Sandbox, run_id: int) -> float:
    client = DatabricksClient(sb.url, sb.token)
    started = time.perf_counter()
    run = client.get_run(run_id)
    result = fetch_outputs(client, RunResult.from_api(dict(run)))
    took = time.perf_counter() - started
    assert all(t.output is not None or t.error is not None for t in result.tasks)
    return took


def read_sdk(workspace: Any, run_id: int) -> float:
    started = time.perf_counter()
    run = workspace.jobs.get_run(run_id)
    outputs = [workspace.jobs.get_run_output(t.run_id) for t in run.tasks or ()]
    took = time.perf_counter() - started
    assert all(o.notebook_output is not None or o.error is not None for o in outputs)
    return took


def reads(counts: Sequence[int], reps: int) -> list[tuple[int, float, float, float]]:
    """(tasks, added round trip, dbx-magic's median s, the SDK's median s) for each case."""
    from databricks.sdk import WorkspaceClient

    logging.getLogger("databricks.sdk").setLevel(logging.ERROR)
    rows = []
    with Sandbox(speed=1000.0) as sb:
        workspace = WorkspaceClient(host=sb.url, token=sb.token)
        runs = {count: finished_run(sb, count) for count in counts}
        for count in counts:
            for rtt in (0.0, RTT):
                ours, theirs = [], []
                for _ in range(reps):  # interleaved: both see the same machine
                    ours.append(_timed(sb, rtt, f"dbx-{count}", lambda c=count: read_dbx(sb, runs[c])))
                    theirs.append(
                        _timed(sb, rtt, f"sdk-{count}", lambda c=count: read_sdk(workspace, runs[c]))
                    )
                rows.append((count, rtt, statistics.median(ours), statistics.median(theirs)))
    return rows


_SENT: dict[str, int] = {}  # requests one read makes, counted on its first time without delay


def _timed(sb: Sandbox, rtt: float, key: str, read: Any) -> float:
    """Run ``read`` with every answer ``rtt`` seconds late (the sandbox holds each request that long)."""
    if rtt and key in _SENT:
        sb.inject("*", "delay", count=_SENT[key], delay=rtt)
    before = len(sb.requests)
    took: float = read()
    _SENT.setdefault(key, len(sb.requests) - before)
    return took


def display(result: RunResult) -> dict[str, float]:
    """Milliseconds to render the finished run: the progress widget and text line, and the result's
    HTML (medians of 5)."""
    from dbx_magic.notebook.progress import describe
    from dbx_magic.notebook.widgets import ProgressWidget

    def timed(make: Any) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            make()
            times.append(time.perf_counter() - started)
        return 1000 * statistics.median(times)

    return {
        "progress widget ms": timed(lambda: ProgressWidget(tick=None)(result)),
        "text line ms": timed(lambda: describe(result, 600.0).line),
        "html ms": timed(result._repr_html_),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 tasks only")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    count = 100 if args.quick else 1000
    missed = []
    launched = launch_to_result(count)
    result = launched.pop("result")
    print(f"launch to result, {count} tasks, fake clock: {launched}")
    shown = display(result)
    print("display of the finished run: " + ", ".join(f"{k} {v:.1f}" for k, v in shown.items()))
    missed += [f"{k} {v:.0f} > {RENDER_MS:g}" for k, v in shown.items() if v > RENDER_MS]
    print("reading the finished run with every output (real time, medians):")
    print(f"{'tasks':>6} {'added rtt':>9} | {'dbx-magic s':>11} {'SDK s':>7} {'ratio':>6}")
    for tasks, rtt, ours, theirs in reads((100, count) if count > 100 else (100,), args.reps):
        print(f"{tasks:>6} {1000 * rtt:7.0f}ms | {ours:11.2f} {theirs:7.2f} {ours / theirs:6.2f}")
        if rtt and ours > theirs * RATIO:
            missed.append(
                f"{tasks} tasks, {1000 * rtt:.0f} ms: {ours / theirs:.2f}x the SDK's time > {RATIO}x"
            )
    print("\n".join(f"Target missed: {m}" for m in missed) or "All targets met.")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
