"""Outages while a run is watched: dbx-magic's real Watcher and client against databricks-sdk's schedule.

On a fake clock (:class:`~dbx_magic.testing.ManualClock`) and a fake transport (a ``requests`` adapter
that plays one scripted run of a job with 20 finished runs in its history), each run is watched by
``handle.wait()`` on a stepped :class:`~dbx_magic.Watcher`, the very code a cell, the board or the CLI
uses. In the middle of the run the workspace stops answering for 2 or 10 minutes, one way per kind:

- ``503``: a JSON 503 at once;
- ``refused``: the connection is refused at once (``requests.ConnectionError``);
- ``timeout``: the connection times out after 10 s (``requests.ConnectTimeout``; the SDK loses the same);
- ``429``: ``Retry-After: 10`` at once.

databricks-sdk is played on the same scripts, on its own schedule: its waiter sleeps
``min(attempt, 10) + random()`` between ``runs/get`` calls; each call is retried on these faults with
``min(attempt, 10) + random()`` (``Retry-After`` + random() on a 429) for up to 300 s, and then raises
(its wait fails). The run ends between 30 s after the outage began and 90 s after it ended; its
history's median is the run's length times 0.9-1.1. Latency after recovery: from the later of the run's
end and the outage's end to the poll that sees the end. Requests: every HTTP attempt (dbx-magic's first
``runs/list``, history and output reads included; the SDK's up to the wait's end or failure).

Targets (exit status 1 when one is missed): no wait of dbx-magic fails; its latency after recovery
(median, p95, worst) is at most the SDK's (10 % and 0.3 s tolerance), the SDK's from the waits it
survived, or from the same scripts without the outage when it survived none.

Run ``python benchmarks/bench_watch.py`` (200 runs a kind, a few minutes) or ``--quick`` (20 runs a kind;
only the failed waits are checked).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import BaseAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dbx_magic import DatabricksClient, Watcher
from dbx_magic.errors import DatabricksError
from dbx_magic.run.models import RunResult
from dbx_magic.testing import ManualClock

JOB, RUN, TASK = 7, 1000, 1001
MINUTES = 60.0
CONNECT_TIMEOUT = 10.0  # what a timed-out attempt costs, ours and the SDK's
RETRY_AFTER = 10.0
SDK_RETRY_BUDGET = 300.0  # databricks-sdk's retry_timeout_seconds
LATENCY_REL, LATENCY_ABS = 1.10, 0.3
FAULTS = ("503", "refused", "timeout", "429")


@dataclass(frozen=True)
class Script:
    """One run in the watcher's frame (t = 0 is the launch); the outage is [down, up)."""

    setup: float
    end: float
    down: float
    up: float
    fault: str
    history: tuple[float, ...]
    seed: int

    def state(self, t: float) -> str:
        if t >= self.end:
            return "TERMINATED"
        if t < self.setup:
            return "PENDING"
        return "TERMINATING" if t >= self.end - 1.0 else "RUNNING"

    def out(self, t: float) -> bool:
        return self.down <= t < self.up


def make_scripts(fault: str, outage: float, count: int, seed: int) -> list[Script]:
    rng = random.Random(f"{seed}-{fault}-{outage}")
    scripts = []
    for _ in range(count):
        down = rng.uniform(5, 15) * MINUTES
        end = rng.uniform(down + 30.0, down + outage + 90.0)
        median = end * rng.uniform(0.9, 1.1)
        history = tuple(median * max(0.2, 1.0 + 0.05 * rng.gauss(0, 1)) for _ in range(20))
        setup = min(0.1 * end, 180.0) * rng.uniform(0.5, 1.5)
        scripts.append(Script(setup, end, down, down + outage, fault, history, rng.getrandbits(32)))
    return scripts


class FakeWorkspace(BaseAdapter):
    """A ``requests`` transport that answers for one scripted run on the fake clock."""

    def __init__(self, clock: ManualClock, script: Script) -> None:
        super().__init__()
        self.clock, self.script = clock, script
        self.t0 = clock.monotonic()
        self.requests = 0
        self.seen_at: float | None = None  # when a runs/get first showed the end

    def now(self) -> float:
        return self.clock.monotonic() - self.t0

    def send(self, request: Any, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests += 1
        t = self.now()
        if self.script.out(t):
            return self._fault(request)
        path = request.path_url.split("?")[0]
        if path.endswith("runs/get-output"):
            return _json(request, 200, {"notebook_output": {"result": "ok"}})
        if path.endswith("runs/get"):
            run = self._run(t, tasks=True)
            if run["state"]["life_cycle_state"] == "TERMINATED" and self.seen_at is None:
                self.seen_at = t
            return _json(request, 200, run)
        if path.endswith("runs/list"):
            return _json(request, 200, {"runs": self._page(t, "active_only" in request.path_url)})
        return _json(request, 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": path})

    def _fault(self, request: Any) -> requests.Response:
        fault = self.script.fault
        if fault == "refused":
            raise requests.ConnectionError("[Errno 111] Connection refused")
        if fault == "timeout":
            self.clock.sleep(CONNECT_TIMEOUT)
            raise requests.ConnectTimeout("connect timeout")
        if fault == "429":
            body = {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}
            return _json(request, 429, body, {"Retry-After": str(int(RETRY_AFTER))})
        return _json(request, 503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": "maintenance"})

    def _run(self, t: float, *, tasks: bool) -> dict[str, Any]:
        state = self.script.state(t)
        body: dict[str, Any] = {
            "job_id": JOB,
            "run_id": RUN,
            "start_time": round(1000 * (self.clock.wall() - t)),
            "state": {"life_cycle_state": state},
        }
        if state == "TERMINATED":
            body["state"]["result_state"] = "SUCCESS"
        if tasks:
            body["tasks"] = [{"task_key": "main", "run_id": TASK, "state": dict(body["state"])}]
        return body

    def _page(self, t: float, active: bool) -> list[dict[str, Any]]:
        mine = [] if self.script.state(t) == "TERMINATED" else [self._run(t, tasks=False)]
        if active:
            return mine
        old = [
            {
                "job_id": JOB,
                "run_id": RUN - 1 - i,
                "start_time": round(1000 * (self.clock.wall() - 86_400 * (i + 1))),
                "run_duration": round(1000 * d),
                "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
            }
            for i, d in enumerate(self.script.history)
        ]
        return mine + old

    def close(self) -> None:
        pass


def _json(request: Any, status: int, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.encoding = "utf-8"
    response._content = json.dumps(body).encode()
    response.headers.update({"Content-Type": "application/json", **(headers or {})})
    response.request = request
    response.url = request.url
    return response


def watch_dbx(script: Script) -> tuple[bool, float, int]:
    """dbx-magic: the run watched by a stepped Watcher; (the wait succeeded, latency, requests)."""
    random.seed(script.seed)  # the client's retries add jitter from the random module: the same each time
    clock = ManualClock()
    workspace = FakeWorkspace(clock, script)
    session = requests.Session()
    session.trust_env = False  # no proxy look-ups in the environment: the transport is fake
    session.mount("https://", workspace)
    client = DatabricksClient("https://fake.azuredatabricks.net", "dapi-x", session=session, clock=clock)
    watcher = Watcher(clock, threaded=False)
    handle = watcher.watch(client, RUN, launched=RunResult(job_id=JOB, run_id=RUN), source="python")
    try:
        handle.wait(raise_on_failure=False)
    except DatabricksError:
        return False, math.inf, workspace.requests
    seen = workspace.seen_at if workspace.seen_at is not None else math.inf
    return True, seen - max(script.end, script.up), workspace.requests


def _sdk_call(script: Script, t: float, rng: random.Random, outage: bool, sent: list[int]) -> float | None:
    """One SDK ``get_run`` from ``t``, retried as ``retried(timeout=300 s)`` does: the time its answer
    comes, or None when it gave up (``sent`` counts the requests)."""
    deadline, attempt = t + SDK_RETRY_BUDGET, 1
    while t < deadline:
        sent[0] += 1
        if not (outage and script.out(t)):
            return t
        if script.fault == "timeout":
            t += CONNECT_TIMEOUT
        sleep = RETRY_AFTER if script.fault == "429" else min(10, attempt)
        t += sleep + rng.random()
        attempt += 1
    return None


def watch_sdk(script: Script, *, outage: bool = True) -> tuple[bool, float, int]:
    """databricks-sdk's waiter and retries on the same script; (the wait succeeded, latency, requests)."""
    rng = random.Random(script.seed)
    t, attempt, sent = 0.0, 1, [0]
    while True:
        answered = _sdk_call(script, t, rng, outage, sent)
        if answered is None:
            return False, math.inf, sent[0]
        t = answered
        if script.state(t) == "TERMINATED":
            return True, t - max(script.end, script.up if outage else 0.0), sent[0]
        t += min(attempt, 10) + rng.random()
        attempt += 1


@dataclass
class Row:
    fault: str
    outage: float
    dbx: list[float] = field(default_factory=list)
    sdk: list[float] = field(default_factory=list)
    sdk_calm: list[float] = field(default_factory=list)
    dbx_failed: int = 0
    sdk_failed: int = 0
    dbx_requests: list[int] = field(default_factory=list)
    sdk_requests: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.fault}, {self.outage / 60:g} min"

    def reference(self) -> list[float]:
        return self.sdk if self.sdk else self.sdk_calm


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    if not ordered:
        return math.nan, math.nan, math.nan
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
    return statistics.median(ordered), p95, ordered[-1]


def play(fault: str, outage: float, count: int, seed: int) -> Row:
    row = Row(fault, outage)
    for script in make_scripts(fault, outage, count, seed):
        ok, latency, requests_made = watch_dbx(script)
        row.dbx_requests.append(requests_made)
        if ok:
            row.dbx.append(latency)
        else:
            row.dbx_failed += 1
        ok, latency, requests_made = watch_sdk(script)
        row.sdk_requests.append(requests_made)
        if ok:
            row.sdk.append(latency)
        else:
            row.sdk_failed += 1
        row.sdk_calm.append(watch_sdk(script, outage=False)[1])
    return row


def check(rows: Sequence[Row], *, latency: bool = True) -> list[str]:
    """The targets missed (``latency=False``: only the failed waits; 20 runs are too few for medians)."""
    missed = []
    for row in rows:
        if row.dbx_failed:
            missed.append(f"{row.name}: {row.dbx_failed} waits failed")
        if not latency:
            continue
        ours, theirs = _stats(row.dbx), _stats(row.reference())
        for name, a, b in zip(("median", "p95", "worst"), ours, theirs, strict=True):
            if a > b * LATENCY_REL + LATENCY_ABS:
                missed.append(f"{row.name}: latency after recovery, {name} {a:.1f} s > the SDK's {b:.1f} s")
    return missed


def render(rows: Sequence[Row], missed: Sequence[str], seconds: float) -> str:
    head = (
        f"{'outage':<15} | {'waits failed dbx / SDK':>22} | {'after recovery median / p95 / worst (s): dbx':>45}"
        f" | {'SDK':>17} | requests dbx / SDK"
    )
    out = [head, "-" * len(head)]
    for row in rows:
        ours = "/".join(f"{x:5.1f}" for x in _stats(row.dbx))
        theirs = "/".join(f"{x:5.1f}" for x in _stats(row.reference()))
        mark = "" if row.sdk else " (no outage)"
        n = len(row.dbx_requests)
        out.append(
            f"{row.name:<15} | {row.dbx_failed:>10} / {row.sdk_failed:<3} of {n:<4} | {ours:>45} | "
            f"{theirs:>17}{mark} | {statistics.fmean(row.dbx_requests):6.1f} / "
            f"{statistics.fmean(row.sdk_requests):.1f}"
        )
    out.append("")
    out += [f"Target missed: {m}" for m in missed] or ["All targets met: no wait failed, ends seen as soon."]
    out.append(f"({len(rows)} rows in {seconds:.1f} s)")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 runs a kind (a smoke test)")
    parser.add_argument("--trials", type=int, default=None, help="runs a kind (default 200)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    trials = args.trials or (20 if args.quick else 200)
    started = time.perf_counter()
    rows = [play(f, m * MINUTES, trials, args.seed) for m in (2, 10) for f in FAULTS]
    missed = check(rows, latency=trials >= 200)
    print(f"bench_watch: {trials} scripted runs per outage kind, seed {args.seed}, fake clock and transport")
    print(render(rows, missed, time.perf_counter() - started))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
