"""Requests a sweep costs, and how they grow with its sets.

1. Scaling (the default; fake clock, deterministic): ``run_many`` of 20 and of 200 parameter sets of one
   job (max_concurrent_runs=10, queueing on; each run 60 s) on the sandbox, its watcher stepped on a
   :class:`~dbx_magic.testing.ManualClock`; the sandbox's log counts the ``runs/list`` pages and
   ``runs/get`` calls, ``time.thread_time`` the CPU of the thread that runs the sweep (the sandbox
   serves on threads of its own). Three rounds, interleaved; medians. Target (exit status 1 when
   missed): ten times the sets cost at most 11x the pages and 11x the CPU.
2. ``--real``: run_many against one poller per run (``run_job_and_wait`` on a thread each), both on the
   sandbox in real time; the sandbox's request log counts what each sent.

Run: ``python benchmarks/bench_sweep.py`` (a minute or so) or ``python benchmarks/bench_sweep.py --real
[--runs 40]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import Counter

from dbx_magic import DatabricksClient, RunResult, run_job_and_wait
from dbx_magic.api.client import RetryPolicy
from dbx_magic.run.sweep import run_many
from dbx_magic.sandbox import Sandbox, Task
from dbx_magic.testing import ManualClock

GROWTH = 11.0  # ten times the sets: at most this many times the pages and the CPU


def echo(params: dict[str, str]) -> str:
    return json.dumps(params)


def measure(runs: int, speed: float, way: str) -> tuple[Counter[str], float]:
    with Sandbox(speed=speed) as sb:
        task = Task("main", "/Workspace/Shared/sweep", {"i": "0"}, duration=8.0, notebook=echo)
        sb.add_job("sweep", tasks=[task], max_concurrent_runs=10, queue=True)
        client = DatabricksClient(sb.url, sb.token)
        params = [{"i": str(i)} for i in range(runs)]
        sb.clear_requests()
        started = time.monotonic()
        results: list[RunResult | None] = [None] * runs
        if way == "run_many":
            results[:] = run_many(client, "sweep", params)
        else:

            def one(i: int) -> None:
                results[i] = run_job_and_wait(DatabricksClient(sb.url, sb.token), "sweep", params[i])

            threads = [threading.Thread(target=one, args=(i,)) for i in range(runs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        elapsed = time.monotonic() - started
        assert all(r is not None and r.ok for r in results)
        counts = Counter(r.path.split("/jobs/", 1)[-1] for r in sb.requests)
        return counts, elapsed


def scaled(sets: int) -> dict[str, float]:
    """One sweep of ``sets`` on the fake clock: its pages, runs/get calls, requests and CPU seconds."""
    clock = ManualClock()
    with Sandbox(clock=clock.monotonic, epoch=clock.wall()) as sb:
        task = Task("main", "/Workspace/Shared/sweep", {"i": "0"}, duration=60.0)
        sb.add_job("sweep", tasks=[task], max_concurrent_runs=10, queue=True, history=5)
        client = DatabricksClient(sb.url, sb.token, clock=clock, retry=RetryPolicy(jitter=0.0))
        sb.clear_requests()
        cpu, began = time.thread_time(), clock.monotonic()
        results = run_many(client, "sweep", [{"i": str(i)} for i in range(sets)])
        cpu, took = time.thread_time() - cpu, clock.monotonic() - began
        assert len(results) == sets and all(r.ok for r in results)
        pages = sum(1 for r in sb.requests if r.path.endswith("runs/list") and r.query.get("active_only"))
        gets = sum(1 for r in sb.requests if r.path.endswith("runs/get"))
        return {"pages": pages, "runs/get": gets, "requests": len(sb.requests), "cpu s": cpu, "sweep s": took}


def scaling(rounds: int = 3) -> int:
    """20 and 200 sets, interleaved ``rounds`` times; prints the medians and checks the growth."""
    seen: dict[int, list[dict[str, float]]] = {20: [], 200: []}
    for _ in range(rounds):
        for sets in seen:
            seen[sets].append(scaled(sets))
    medians = {n: {k: statistics.median(m[k] for m in runs) for k in runs[0]} for n, runs in seen.items()}
    print(
        f"run_many on the fake clock (max_concurrent_runs=10, queueing on, 60 s runs), medians of {rounds}:"
    )
    print(f"{'sets':>5} {'pages':>7} {'runs/get':>9} {'requests':>9} {'CPU s':>7} {'simulated s':>12}")
    for n, m in medians.items():
        print(
            f"{n:>5} {m['pages']:7.0f} {m['runs/get']:9.0f} {m['requests']:9.0f} {m['cpu s']:7.2f} "
            f"{m['sweep s']:12.0f}"
        )
    growth = {k: medians[200][k] / max(medians[20][k], 1e-9) for k in ("pages", "cpu s")}
    print(
        f"200 sets / 20 sets: pages {growth['pages']:.1f}x, CPU {growth['cpu s']:.1f}x (target <= {GROWTH:g}x)"
    )
    missed = [k for k, g in growth.items() if g > GROWTH]
    return 1 if missed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", action="store_true", help="run_many against a poller per run, real time")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--speed", type=float, default=4.0, help="sandbox speed (runs last 8 s / speed)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.real:
        return scaling()
    totals: dict[str, list[int]] = {"run_many": [], "one poller per run": []}
    polls: dict[str, list[int]] = {"run_many": [], "one poller per run": []}
    walls: dict[str, list[float]] = {"run_many": [], "one poller per run": []}
    for _ in range(args.repeat):  # interleaved, so both see the same machine
        for way in totals:
            counts, elapsed = measure(args.runs, args.speed, way)
            totals[way].append(sum(counts.values()))
            polls[way].append(counts["runs/get"] + counts["runs/list"])
            walls[way].append(elapsed)
    print(
        f"{args.runs} runs of one job (max_concurrent_runs=10, queueing on), {args.repeat} repetitions, medians:"
    )
    print(f"{'':22} {'requests':>9} {'of which polls':>15} {'wall s':>8}")
    for way in totals:
        print(
            f"{way:22} {statistics.median(totals[way]):9.0f} {statistics.median(polls[way]):15.0f} "
            f"{statistics.median(walls[way]):8.1f}"
        )
    ratio = statistics.median(polls["one poller per run"]) / max(1, statistics.median(polls["run_many"]))
    print(f"polling requests: one poller per run / run_many = {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
