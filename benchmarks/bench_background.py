"""What background runs cost: requests of one watcher for many runs, and a shell's latency meanwhile.

1. On the fake clock (deterministic, no real waiting): 50 background runs of 5 jobs are watched by one
   :class:`~dbx_magic.Watcher`; every cycle's requests are counted from the sandbox's request log and
   checked against the budget (at most ceil(runs/25) ``runs/list`` pages per job per cycle, plus one
   ``runs/get`` per finished run). The same runs watched one poller each give the comparison.
2. In real time: the same 50 runs started with ``%%dbx_run --background`` in a real InteractiveShell, on
   the watcher's thread; meanwhile a trivial cell is executed again and again and timed.

Run: ``python benchmarks/bench_background.py [--runs 50 --jobs 5]``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import statistics
import time
from collections import Counter
from typing import Any

from dbx_magic import DatabricksClient, Watcher, start_background
from dbx_magic.api.client import RetryPolicy
from dbx_magic.run.launch import Launch, launch
from dbx_magic.run.watch import WatchedRun
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock


def _jobs(sb: Sandbox, jobs: int, base: float) -> list[str]:
    names = []
    for i in range(jobs):
        name = f"bench-{i}"
        sb.add_job(name, duration=base + 13 * i, max_concurrent_runs=1000, history=5)
        names.append(name)
    return names


def batched(runs: int, jobs: int) -> dict[str, Any]:
    """One watcher for all runs, on the fake clock; checks the budget cycle by cycle."""
    clock = ManualClock()
    with Sandbox(clock=clock.monotonic, epoch=clock.wall()) as sb:
        names = _jobs(sb, jobs, base=60.0)
        client = DatabricksClient(sb.url, sb.token, clock=clock, retry=RetryPolicy(jitter=0.0))
        watcher = Watcher(clock, threaded=False)
        handles = [start_background(client, names[i % jobs], watcher=watcher) for i in range(runs)]
        per_job = Counter(str(h.job_id) for h in handles)
        sb.clear_requests()
        cycles = worst = 0
        while watcher.active:
            before = len(sb.requests)
            delay = watcher.step()
            if watcher.active:
                clock.sleep(delay)
            cycle = sb.requests[before:]
            if not cycle:
                continue
            cycles += 1
            pages = Counter(
                str(r.query.get("job_id"))
                for r in cycle
                if r.path.endswith("runs/list") and r.query.get("active_only")
            )
            for job_id, count in pages.items():
                budget = math.ceil(per_job[job_id] / 25)
                assert count <= budget, f"job {job_id}: {count} pages in one cycle, budget {budget}"
                worst = max(worst, count)
        assert all(h.done and h.ok for h in handles)
        counts = Counter(r.path.rsplit("/jobs/", 1)[-1] for r in sb.requests)
        history = sum(
            1 for r in sb.requests if r.path.endswith("runs/list") and r.query.get("completed_only")
        )
        assert counts["runs/get"] == runs, counts
        return {
            "cycles": cycles,
            "list pages": counts["runs/list"] - history,
            "history reads": history,
            "runs/get": counts["runs/get"],
            "get-output": counts["runs/get-output"],
            "total": sum(counts.values()),
            "worst pages per job per cycle": worst,
            "simulated seconds": round(clock.monotonic() - 1000.0),
        }


def one_poller_each(runs: int, jobs: int) -> dict[str, Any]:
    """The same runs, each watched by its own poller (what N blocking waits cost), interleaved on one
    fake time line: the poller due soonest polls next."""
    clock = ManualClock()
    with Sandbox(clock=clock.monotonic, epoch=clock.wall()) as sb:
        names = _jobs(sb, jobs, base=60.0)
        client = DatabricksClient(sb.url, sb.token, clock=clock, retry=RetryPolicy(jitter=0.0))
        launched = [launch(client, Launch.check(names[i % jobs])) for i in range(runs)]
        pollers = [WatchedRun(client, r.run_id, launched=r, clock=clock) for r in launched]
        sb.clear_requests()
        due = {id(w): clock.monotonic() for w in pollers}
        while any(not w.done for w in pollers):
            poller = min((w for w in pollers if not w.done), key=lambda w: due[id(w)])
            clock.advance(due[id(poller)] - clock.monotonic())
            poller.poll()
            due[id(poller)] = clock.monotonic() + poller.next_delay()
        counts = Counter(r.path.rsplit("/jobs/", 1)[-1] for r in sb.requests)
        return {
            "runs/get": counts["runs/get"],
            "runs/list": counts["runs/list"],
            "get-output": counts["runs/get-output"],
            "total": sum(counts.values()),
        }


def shell_latency(runs: int, jobs: int, cells: int) -> dict[str, Any]:
    """Background runs started by the magic in a real shell; a trivial cell timed while they are watched."""
    from IPython.core.interactiveshell import InteractiveShell

    from dbx_magic.notebook.background import notices

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dbx_magic")
    shell.run_line_magic("dbx_sandbox", "--speed 2")
    sb = shell.magics_manager.registry["DbxMagics"].sandbox
    session = shell.magics_manager.registry["DbxMagics"].session
    names = _jobs(sb, jobs, base=40.0)
    notices(session, shell).stream = io.StringIO()  # the end's terminal lines, kept quiet here
    idle = _cell_times(shell, cells)
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        for i in range(runs):
            result = shell.run_cell(
                f"%dbx_run {names[i % jobs]} --background --out bg{i}", store_history=False
            )
            assert result.success, result.error_in_exec
    launch_each = (time.perf_counter() - started) / runs
    watched = len(session.watcher.active)
    times = _cell_times(shell, cells)
    still = len(session.watcher.active)
    for handle in list(session.watcher.active):
        handle.cancel()
    for handle in session.watcher.handles:
        handle.wait(timeout=30, raise_on_failure=False)
    shell.run_line_magic("unload_ext", "dbx_magic")
    return {
        "runs watched when the cells began": watched,
        "still watched after": still,
        "cell median ms, nothing watched": round(statistics.median(idle) * 1000, 2),
        "cell median ms": round(statistics.median(times) * 1000, 2),
        "ratio of medians": round(statistics.median(times) / statistics.median(idle), 2),
        "cell max ms": round(max(times) * 1000, 2),
        "launch cell mean ms": round(launch_each * 1000, 1),
    }


def kernel_latency(runs: int, jobs: int, cells: int) -> dict[str, Any]:
    """The same in a real ipykernel (as a notebook runs it, progress widgets and all): a trivial cell's
    round trip, execute request to reply, before the runs are launched and while they are watched."""
    from jupyter_client.manager import start_new_kernel

    manager, kernel = start_new_kernel(kernel_name="python3")
    try:

        def execute(code: str) -> float:
            t0 = time.perf_counter()
            reply = kernel.execute_interactive(code, timeout=120, output_hook=lambda _msg: None)
            assert reply["content"]["status"] == "ok", reply["content"]
            return time.perf_counter() - t0

        execute("%load_ext dbx_magic\n%dbx_sandbox --speed 2")
        execute(
            "sb = get_ipython().magics_manager.registry['DbxMagics'].sandbox\n"
            f"for i in range({jobs}):\n"
            "    sb.add_job(f'bench-{i}', duration=40.0 + 13 * i, max_concurrent_runs=1000, history=5)"
        )

        def timed() -> list[float]:
            times = []
            for _ in range(cells):
                times.append(execute("x = 1 + 1"))
                time.sleep(0.05)
            return times

        idle = timed()
        execute(
            f"for i in range({runs}):\n"
            f"    get_ipython().run_cell(f'%dbx_run bench-{{i % {jobs}}} --background --out bg{{i}}')"
        )
        busy = timed()
        execute(
            "session = get_ipython().magics_manager.registry['DbxMagics'].session\n"
            "for h in session.watcher.active: h.cancel()"
        )
    finally:
        kernel.stop_channels()
        manager.shutdown_kernel(now=True)
    return {
        "cell median ms, nothing watched": round(statistics.median(idle) * 1000, 2),
        "cell median ms": round(statistics.median(busy) * 1000, 2),
        "ratio of medians": round(statistics.median(busy) / statistics.median(idle), 2),
        "cell max ms": round(max(busy) * 1000, 2),
    }


def _cell_times(shell: Any, cells: int) -> list[float]:
    """Seconds each of ``cells`` trivial cells took, spread over the watcher's cycles."""
    times = []
    for _ in range(cells):
        t0 = time.perf_counter()
        result = shell.run_cell("x = 1 + 1", store_history=False)
        times.append(time.perf_counter() - t0)
        assert result.success
        time.sleep(0.05)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument(
        "--cells", type=int, default=100, help="trivial cells timed while the runs are watched"
    )
    args = parser.parse_args()
    together = batched(args.runs, args.jobs)
    print(f"one watcher, {args.runs} runs of {args.jobs} jobs (fake clock): {together}")
    alone = one_poller_each(args.runs, args.jobs)
    print(f"one poller per run, same runs: {alone}")
    latency = shell_latency(args.runs, args.jobs, args.cells)
    print(f"a trivial cell while they are watched (real shell, real clock): {latency}")
    in_kernel = kernel_latency(args.runs, args.jobs, args.cells)
    print(f"a trivial cell while they are watched (real kernel, round trip): {in_kernel}")
    for where in (latency, in_kernel):
        assert where["cell max ms"] < 100, "a trivial cell took 100 ms or more while runs were watched"


if __name__ == "__main__":
    main()
