"""Requests a sweep costs: run_many's batched polling against one poller per run, side by side.

Both launch the same N runs of one job on the sandbox (in real time) and wait for all of them; the
sandbox's request log counts what each sent. Run: ``python benchmarks/bench_sweep.py [--runs 40]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter

from dbx_magic import DatabricksClient, RunResult, run_job_and_wait
from dbx_magic.run.sweep import run_many
from dbx_magic.sandbox import Sandbox, Task


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--speed", type=float, default=4.0, help="sandbox speed (runs last 8 s / speed)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
