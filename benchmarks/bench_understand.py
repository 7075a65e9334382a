"""What understanding a run costs in requests: a for-each task's iterations read at its end, the
last-success line of a failure, and a comparison with the last success.

Against the sandbox on a fake clock (no waiting), counting the requests it receives by endpoint and the
wall time each step took on loopback. Run ``python benchmarks/bench_understand.py``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Any

from dbx_magic import DatabricksClient, run_job_and_wait
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock


def _measure(sandbox: Sandbox, label: str, step: Callable[[], Any]) -> Any:
    sandbox.clear_requests()
    began = time.perf_counter()
    out = step()
    took = time.perf_counter() - began
    counts = collections.Counter(r.path.split("/api/", 1)[-1].split("/", 1)[-1] for r in sandbox.requests)
    print(f"{label}: {sum(counts.values())} requests, {took * 1000:.0f} ms on loopback")
    print("    " + ", ".join(f"{name} {n}" for name, n in sorted(counts.items())))
    return out


def main() -> None:
    clock = ManualClock()
    with Sandbox(clock=clock.monotonic, epoch=clock.wall()) as sandbox:
        client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
        _measure(
            sandbox,
            "a run of store-forecast (one for-each task, 150 iterations, one failing)",
            lambda: run_job_and_wait(client, "store-forecast", job_parameters={"horizon_days": "56"}),
        )
        _measure(
            sandbox,
            "a run of etl-with-checks that fails (its last-success line included)",
            lambda: run_job_and_wait(client, "etl-with-checks", job_parameters={"strict": "true"}),
        )
        _measure(
            sandbox,
            "a run of etl-with-checks that succeeds (for comparison)",
            lambda: run_job_and_wait(client, "etl-with-checks"),
        )
        failed = run_job_and_wait(client, "etl-with-checks", job_parameters={"strict": "true"})
        _measure(sandbox, "failed.compare() (with the job's last success)", failed.compare)


if __name__ == "__main__":
    main()
