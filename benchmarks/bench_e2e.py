"""End to end, in real time: dbx-magic and the official databricks-sdk wait on the same kind of run.

One process, one sandbox workspace on 127.0.0.1 (``dbx_magic.sandbox.Sandbox``, speed 1, so a run
takes as long as it says). For each run length, twin jobs are added (one per client, so they never
queue behind each other), once with 20 past runs of history and once without; then, a handful of times,
both clients launch a run of their twin and wait for it, side by side in two threads:

- dbx-magic: ``run_job_and_wait(DatabricksClient(sb.url, sb.token), job_id)``;
- databricks-sdk: ``WorkspaceClient(host=sb.url, token=sb.token).jobs.run_now(job_id=...).result()``.

Measured from the sandbox's own request log and clock, per run: the polling requests (``runs/get``
for the run, plus dbx-magic's one ``runs/list``) and the detection latency (from the run's end to the
first poll that saw it), and the seconds from the end until the call returned (dbx-magic's
includes fetching the task's output). Medians over the repetitions.

Run ``python benchmarks/bench_e2e.py`` (about three minutes) or ``--quick``. Needs ``databricks-sdk``
(``pip install -e ".[dev]"``). No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dbx_magic import DatabricksClient, run_job_and_wait
from dbx_magic.sandbox import Sandbox


@dataclass(frozen=True)
class Measure:
    """One run as one client waited on it."""

    requests: int  # polling requests: runs/get for the run (+ runs/list for dbx-magic)
    latency: float  # run end -> the first poll that saw it
    returned: float  # run end -> the call returned


def _measure(sb: Sandbox, job_id: int, run_id: int, since: float, returned_at: float) -> Measure:
    log = [r for r in sb.requests if since <= r.timestamp <= returned_at]
    polls = [r for r in log if r.path.endswith("/jobs/runs/get") and r.query.get("run_id") == str(run_id)]
    lists = [r for r in log if r.path.endswith("/jobs/runs/list") and r.query.get("job_id") == str(job_id)]
    offset = sb.workspace.epoch_ms(0.0) / 1000  # epoch seconds = sandbox clock + offset
    end_ms = _run_end_ms(sb, run_id)
    end = end_ms / 1000 - offset
    seen = min(r.timestamp for r in [*polls, *lists] if r.timestamp >= end)
    return Measure(len(polls) + len(lists), seen - end, returned_at - end)


def _run_end_ms(sb: Sandbox, run_id: int) -> int:
    import requests

    answer = requests.get(
        f"{sb.url}/api/2.1/jobs/runs/get",
        params={"run_id": run_id},
        headers={"Authorization": f"Bearer {sb.token}"},
        timeout=10,
    ).json()
    return int(answer["end_time"])


def run_dbx(sb: Sandbox, job_id: int) -> Measure:
    client = DatabricksClient(sb.url, sb.token)
    since = sb.workspace.clock()
    result = run_job_and_wait(client, job_id)
    returned = sb.workspace.clock()
    assert result.ok, result
    return _measure(sb, job_id, result.run_id, since, returned)


def run_sdk(sb: Sandbox, job_id: int, workspace: object) -> Measure:
    since = sb.workspace.clock()
    run = workspace.jobs.run_now(job_id=job_id).result()  # type: ignore[attr-defined]
    returned = sb.workspace.clock()
    assert run.state.result_state.value == "SUCCESS", run.state
    return _measure(sb, job_id, run.run_id, since, returned)


def _both(left: Callable[[], Measure], right: Callable[[], Measure]) -> tuple[Measure, Measure]:
    out: dict[str, Measure] = {}
    errors: list[BaseException] = []

    def go(key: str, fn: Callable[[], Measure]) -> None:
        try:
            out[key] = fn()
        except BaseException as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(k, f)) for k, f in (("l", left), ("r", right))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return out["l"], out["r"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short length, two repetitions")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per case (default 5)")
    args = parser.parse_args(argv)
    try:
        from databricks.sdk import WorkspaceClient
    except ImportError:
        print("bench_e2e needs databricks-sdk: pip install -e '.[dev]'", file=sys.stderr)
        return 2
    logging.getLogger("databricks.sdk").setLevel(logging.ERROR)  # its probe of /.well-known fails here
    reps = args.reps or (2 if args.quick else 5)
    lengths = (3.0,) if args.quick else (3.0, 8.0)
    started = time.perf_counter()
    rows = []
    with Sandbox(speed=1.0) as sb:
        workspace = WorkspaceClient(host=sb.url, token=sb.token)
        for task_seconds in lengths:
            for history in (20, 0):
                name = f"bench-{task_seconds:g}s-{'hist' if history else 'new'}"
                dbx: list[Measure] = []
                sdk: list[Measure] = []
                for rep in range(reps):
                    # A job with history keeps it; one without gets a fresh twin each time (else
                    # the runs before it would be its history).
                    if rep == 0 or not history:
                        ours = sb.add_job(f"{name}-{rep}-dbx", duration=task_seconds, history=history)
                        theirs = sb.add_job(f"{name}-{rep}-sdk", duration=task_seconds, history=history)
                    d, s = _both(
                        functools.partial(run_dbx, sb, ours),
                        functools.partial(run_sdk, sb, theirs, workspace),
                    )
                    dbx.append(d)
                    sdk.append(s)
                rows.append((task_seconds + 1.4, history, dbx, sdk))
    print(f"bench_e2e: sandbox at speed 1, {reps} runs per case, both clients side by side in one process")
    head = (
        f"{'run':>6} {'history':>7} | {'dbx-magic req':>13} {'latency':>8} {'returned':>8} | "
        f"{'SDK req':>7} {'latency':>8} {'returned':>8} | {'req ratio':>9} {'lat ratio':>9}"
    )
    print(head)
    print("-" * len(head))
    med = statistics.median
    for seconds, history, dbx, sdk in rows:
        d_req, d_lat, d_ret = (med(getattr(m, f) for m in dbx) for f in ("requests", "latency", "returned"))
        s_req, s_lat, s_ret = (med(getattr(m, f) for m in sdk) for f in ("requests", "latency", "returned"))
        print(
            f"{seconds:5.1f}s {'yes' if history else 'no':>7} | {d_req:13.1f} {d_lat:8.2f} {d_ret:8.2f} | "
            f"{s_req:7.1f} {s_lat:8.2f} {s_ret:8.2f} | {d_req / s_req:9.2f} "
            f"{(d_lat / s_lat) if s_lat else float('nan'):9.2f}"
        )
    print(f"(medians; latency: run end -> first poll that saw it; {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
