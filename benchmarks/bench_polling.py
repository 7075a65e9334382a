"""Polling on a simulated clock: dbx-magic's PollPolicy against databricks-sdk's and Airflow's schedules.

Pure and seeded: no network, no sleeping. Each scenario scripts many runs of one job and plays three
pollers against the very same runs:

- dbx-magic: the first poll at once (a ``runs/list`` page that holds the new run and the job's
  history, so it costs one request), then ``PollPolicy.next_delay`` exactly as ``wait_for_run``
  calls it;
- databricks-sdk: the first poll at once, then ``min(attempt, 10) + random()`` seconds
  (``wait_get_run_job_terminated_or_skipped``);
- Airflow: the first poll at once, then every 30 s (``polling_period_seconds``' default).

A scenario is a run length (10 s, 1 min, 10 min, 2 h) and a spread: the relative standard deviation of
the job's durations around its median (0 %, 5 %, 20 %). Per run: the job's median is the length times a
factor in [0.9, 1.1] (so runs do not all end on a round number); its history is 20 successful runs
drawn from the spread, turned into a ``History`` by ``history_from_runs`` from ``runs/list``-shaped
items; this run's duration is drawn the same way. The run is PENDING for its set-up (5 to 15 % of the
duration, at most 3 min), RUNNING, then TERMINATING for its last 5 % (at most 1 s); the poller starts
50 to 300 ms after the run did (the launch's round trip). Requests take no time.

Reported per poller: requests per run (mean; dbx-magic's first is the ``runs/list``) and detection
latency, the seconds from the run's end to the poll that sees it (median and p95). Scenarios without
history play four times as many runs: there the schedules are close, and medians need the numbers.

Targets (exit status 1 when one is missed):
  T1  with history, default settings, every scenario: requests <= the SDK's and median latency <= half
      the SDK's;
  T2  with history and a spread <= 5 %: median latency <= 1 s;
  T3  without history: requests <= the SDK's and median latency <= the SDK's;
  T4  along the trade-off (``PollPolicy(pace=...)``), at Airflow's request count: some setting that
      spends no more requests than Airflow has a lower median latency, every scenario.

Run ``python benchmarks/bench_polling.py`` (about a minute) or ``--quick`` (fewer runs, a few seconds);
``--bare`` scripts the runs without their PENDING and TERMINATING phases, so that no poller can learn
anything from the state (a check on how much of the gain those phases make).
"""

from __future__ import annotations

import argparse
import functools
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dbx_magic.run.polling import History, PollPolicy, history_from_runs

LENGTHS = (10.0, 60.0, 600.0, 7200.0)
SPREADS = (0.0, 0.05, 0.20)
PACES = (5.0, 10.5, 15.0, 20.0, 25.0, 30.0, 35.0, 45.0, 60.0, 90.0)
HISTORY_RUNS = 20
AIRFLOW_PERIOD = 30.0


@dataclass(frozen=True)
class Scenario:
    """A job of about ``length`` seconds whose durations vary by ``spread``; with or without history."""

    length: float
    spread: float
    history: bool

    @property
    def name(self) -> str:
        return f"{_fmt_len(self.length):>6} {self.spread:4.0%} {'hist' if self.history else 'none'}"


@dataclass(frozen=True)
class Trial:
    """One scripted run, in the poller's frame (t = 0 is the first poll, right after the launch)."""

    duration: float  # the run's own duration (start to end)
    setup: float  # PENDING for this long from the run's start
    terminating: float  # TERMINATING for this long before the end
    offset: float  # the first poll comes this long after the run started
    history: History | None
    seed: int

    @property
    def end(self) -> float:
        return self.duration - self.offset

    def state(self, t: float) -> str:
        """The life cycle state the poll at ``t`` sees."""
        run_time = t + self.offset
        if run_time >= self.duration:
            return "TERMINATED"
        if run_time < self.setup:
            return "PENDING"
        if run_time >= self.duration - self.terminating:
            return "TERMINATING"
        return "RUNNING"


@dataclass
class Outcome:
    """What one poller did over the runs of one scenario."""

    requests: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def add(self, requests: int, latency: float) -> None:
        self.requests.append(requests)
        self.latencies.append(latency)

    @property
    def mean_requests(self) -> float:
        return statistics.fmean(self.requests)

    @property
    def median(self) -> float:
        return statistics.median(self.latencies)

    @property
    def p95(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _draw(rng: random.Random, median: float, spread: float) -> float:
    return median * max(0.2, 1.0 + spread * rng.gauss(0.0, 1.0))


def make_trials(scenario: Scenario, count: int, seed: int, *, phases: bool = True) -> list[Trial]:
    """``count`` scripted runs of a scenario; the same seed gives the same runs.

    ``phases=False`` leaves out the PENDING and TERMINATING phases (RUNNING from start to end).
    """
    rng = random.Random(f"{seed}-{scenario.length}-{scenario.spread}")
    trials = []
    for _ in range(count):
        median = scenario.length * rng.uniform(0.9, 1.1)
        items = [
            {
                "state": {"result_state": "SUCCESS"},
                "run_duration": round(1000 * _draw(rng, median, scenario.spread)),
            }
            for _ in range(HISTORY_RUNS)
        ]
        duration = _draw(rng, median, scenario.spread)
        stretch = rng.uniform(0.5, 1.5)  # drawn either way: --bare plays the same runs otherwise
        trials.append(
            Trial(
                duration=duration,
                setup=min(0.10 * duration, 180.0) * stretch if phases else 0.0,
                terminating=min(0.05 * duration, 1.0) if phases else 0.0,
                offset=rng.uniform(0.05, 0.3),
                history=history_from_runs(items) if scenario.history else None,
                seed=rng.getrandbits(32),
            )
        )
    return trials


def poll_dbx(trial: Trial, policy: PollPolicy) -> tuple[int, float]:
    """dbx-magic: as ``wait_for_run`` drives the policy. Returns (requests, latency)."""
    t, polls, requests = 0.0, 1, 1  # the first poll is the runs/list that also brings the history
    state = trial.state(t)
    seen_at = t
    while state != "TERMINATED":
        t += policy.next_delay(
            elapsed=t,
            polls=polls,
            life_cycle_state=state,
            history=trial.history,
            state_elapsed=t - seen_at,
        )
        polls += 1
        requests += 1
        new = trial.state(t)
        if new != state:
            state, seen_at = new, t
    return requests, t - trial.end


def poll_sdk(trial: Trial) -> tuple[int, float]:
    """databricks-sdk 0.156: sleep ``min(attempt, 10) + random()`` between polls."""
    rng = random.Random(trial.seed)
    t, attempt, requests = 0.0, 1, 1
    while t < trial.end:
        t += min(attempt, 10) + rng.random()
        attempt += 1
        requests += 1
    return requests, t - trial.end


def poll_airflow(trial: Trial) -> tuple[int, float]:
    """Airflow's DatabricksRunNowOperator: a poll every ``polling_period_seconds`` (30)."""
    k = max(0, math.ceil(trial.end / AIRFLOW_PERIOD))  # the first poll at or after the end
    return k + 1, k * AIRFLOW_PERIOD - trial.end


def play(trials: Sequence[Trial], poller: Callable[[Trial], tuple[int, float]]) -> Outcome:
    outcome = Outcome()
    for trial in trials:
        outcome.add(*poller(trial))
    return outcome


@dataclass
class Row:
    scenario: Scenario
    dbx: Outcome
    sdk: Outcome
    airflow: Outcome
    curve: dict[float, Outcome] = field(default_factory=dict)


@dataclass
class Report:
    rows: list[Row]
    missed: list[str]
    seconds: float


def run(
    *,
    trials: int = 300,
    seed: int = 7,
    paces: Sequence[float] = PACES,
    lengths: Sequence[float] = LENGTHS,
    spreads: Sequence[float] = SPREADS,
    phases: bool = True,
) -> Report:
    """Play every scenario; return the rows and the targets missed."""
    started = time.perf_counter()
    rows = []
    for history in (True, False):
        for length in lengths:
            for spread in spreads:
                scenario = Scenario(length, spread, history)
                # Without history the two schedules are close: more runs to tell them apart.
                runs = make_trials(scenario, trials if history else 4 * trials, seed, phases=phases)
                row = Row(
                    scenario,
                    dbx=play(runs, functools.partial(poll_dbx, policy=PollPolicy())),
                    sdk=play(runs, poll_sdk),
                    airflow=play(runs, poll_airflow),
                )
                if history:
                    for pace in paces:
                        policy = PollPolicy(pace=pace)
                        row.curve[pace] = play(runs, functools.partial(poll_dbx, policy=policy))
                rows.append(row)
    return Report(rows, check(rows), time.perf_counter() - started)


def airflow_point(row: Row) -> tuple[float, Outcome] | None:
    """Among the settings that spend no more requests than Airflow, the one that notices soonest."""
    cheap = [(p, o) for p, o in row.curve.items() if o.mean_requests <= row.airflow.mean_requests]
    return min(cheap, key=lambda po: po[1].median) if cheap else None


def check(rows: Sequence[Row]) -> list[str]:
    """The targets each row misses, as sentences."""
    missed = []
    for row in rows:
        s, dbx, sdk = row.scenario, row.dbx, row.sdk
        if s.history:
            if dbx.mean_requests > sdk.mean_requests or dbx.median > sdk.median / 2:
                missed.append(
                    f"T1 {s.name}: {dbx.mean_requests:.1f} req / {dbx.median:.2f} s vs SDK "
                    f"{sdk.mean_requests:.1f} req / {sdk.median:.2f} s"
                )
            if s.spread <= 0.05 and dbx.median > 1.0:
                missed.append(f"T2 {s.name}: median latency {dbx.median:.2f} s > 1 s")
            point = airflow_point(row)
            if point is None:
                cheapest = min(o.mean_requests for o in row.curve.values())
                missed.append(
                    f"T4 {s.name}: no setting spends as little as Airflow "
                    f"({row.airflow.mean_requests:.1f} req; the sparsest spends {cheapest:.1f})"
                )
            elif point[1].median >= row.airflow.median:
                missed.append(
                    f"T4 {s.name}: at pace {point[0]:g}, {point[1].median:.2f} s >= Airflow's "
                    f"{row.airflow.median:.2f} s"
                )
        elif dbx.mean_requests > sdk.mean_requests or dbx.median > sdk.median:
            missed.append(
                f"T3 {s.name}: {dbx.mean_requests:.1f} req / {dbx.median:.2f} s vs SDK "
                f"{sdk.mean_requests:.1f} req / {sdk.median:.2f} s"
            )
    return missed


def _fmt_len(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def render(report: Report) -> str:
    """The tables: one line per scenario, then the trade-off curve."""
    out = []
    head = (
        f"{'length':>6} {'spread':>6} {'history':>7} | {'dbx-magic req':>13} {'median':>7} {'p95':>7} | "
        f"{'SDK req':>8} {'median':>7} {'p95':>7} | {'Airflow req':>11} {'median':>7} | "
        f"{'req ratio':>9} {'lat ratio':>9}"
    )
    out += [head, "-" * len(head)]
    for row in report.rows:
        s, d, k, a = row.scenario, row.dbx, row.sdk, row.airflow
        lat_ratio = d.median / k.median if k.median else math.nan
        out.append(
            f"{_fmt_len(s.length):>6} {s.spread:>6.0%} {'yes' if s.history else 'no':>7} | "
            f"{d.mean_requests:13.1f} {d.median:7.2f} {d.p95:7.2f} | "
            f"{k.mean_requests:8.1f} {k.median:7.2f} {k.p95:7.2f} | "
            f"{a.mean_requests:11.1f} {a.median:7.2f} | "
            f"{d.mean_requests / k.mean_requests:9.2f} {lat_ratio:9.2f}"
        )
    curve_rows = [r for r in report.rows if r.curve]
    if curve_rows:
        paces = sorted(curve_rows[0].curve)
        out += [
            "",
            "Trade-off (with history): requests per run / median latency (s), by PollPolicy(pace=...)",
        ]
        head = f"{'length':>6} {'spread':>6} | " + " | ".join(f"{f'pace {p:g}':>13}" for p in paces)
        head += f" | {'Airflow':>13}"
        out += [head, "-" * len(head)]
        for row in curve_rows:
            cells = [f"{row.curve[p].mean_requests:6.1f}/{row.curve[p].median:6.2f}" for p in paces]
            air = f"{row.airflow.mean_requests:6.1f}/{row.airflow.median:6.2f}"
            out.append(
                f"{_fmt_len(row.scenario.length):>6} {row.scenario.spread:>6.0%} | "
                + " | ".join(cells)
                + f" | {air}"
            )
    out.append("")
    if report.missed:
        out.append(f"Targets missed ({len(report.missed)}):")
        out += [f"  {m}" for m in report.missed]
    else:
        out.append("All targets met (T1-T4).")
    out.append(f"({len(report.rows)} scenarios in {report.seconds:.1f} s)")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs per scenario (a smoke test)")
    parser.add_argument("--trials", type=int, default=None, help="runs per scenario (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--bare", action="store_true", help="runs without PENDING and TERMINATING phases (RUNNING only)"
    )
    args = parser.parse_args(argv)
    trials = args.trials or (60 if args.quick else 300)
    paces = (10.5, 20.0, 30.0, 45.0, 60.0) if args.quick else PACES
    report = run(trials=trials, seed=args.seed, paces=paces, phases=not args.bare)
    print(
        f"bench_polling: {trials} scripted runs per scenario ({4 * trials} without history), seed "
        f"{args.seed}{', RUNNING only (--bare)' if args.bare else ''}"
    )
    print(render(report))
    return 1 if report.missed else 0


if __name__ == "__main__":
    sys.exit(main())
