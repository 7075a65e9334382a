"""When to poll next: pure functions of elapsed time, the run's state and the job's history.

Nothing here sleeps or sends a request; the workflow asks :meth:`PollPolicy.next_delay` and waits that
long with the clock and sleep it was given. Only the standard library is imported.

Every poll spends a request against the workspace's rate limit, and every second between a run's end
and the poll that sees it is a second the user waits. A run can end at any time: it fails on a typo in
its first seconds, its cluster fails to start, someone cancels it, it succeeds early on a small input,
or it ends where its history says. So :class:`PollPolicy` has two parts:

- **A ceiling that leaves no blind spot.** No wait is ever longer than databricks-sdk's at the same
  point of the run: its average schedule (waits of 1.5, 2.5, ... s from the launch) up to ``cap``
  (11 s, the SDK's longest wait). An end nobody predicted is seen no later than the SDK would see
  it, whatever the state (QUEUED, PENDING and overrunning runs included). ``pace`` stretches the
  ceiling (at 30, Airflow's period, the ceiling starts at 21 s and settles at 31.4 s).
- **Dense polling where the end is likely, bought with a budget.** The job's history (one
  ``runs/list`` page, :func:`history_from_runs`) gives a distribution of when this run ends: a
  mixture of log-normals, one per group of similar successful runs (so bimodal jobs get two), each as
  wide as its group's spread (never narrower than 1 % or 0.3 s, wider when the group is small); one
  per group of the job's failed, cancelled and timed-out runs, weighted by how often they happen; and
  a heavy tail for the 5 % of successes that do not behave. A steady drift of the durations is
  projected to this run; runs with other parameters are left out when the run's own are known. Each
  wait is the longest whose expected detection delay stays under a price per poll (the inspection
  schedule: the gap shrinks with the square root of the hazard rate), the price set once per history
  so that a run of the expected length costs 1.25x the requests databricks-sdk would spend on it
  (one per ``pace`` seconds, or the SDK's ramp), falling to 0.97x at pace 30 (Airflow's count is a
  hard bound there). The runs that overrun pay for all of the window's dense polls, and the budget
  counts them, so it buys density early in the window rather than late. Past the predicted window
  the run is overrunning: the waits grow again as they do from a launch, up to the ceiling.

The state refines it. QUEUED: the run's own clock has not started (``queued`` is its
``queue_duration`` once known). PENDING: no run succeeds from set-up, so it is polled at the ceiling;
a set-up much longer than usual (``setup``, passed once RUNNING is seen) shifts the run's clock by
the excess. TERMINATING means the end is seconds away: poll at
``floor``, backing off if it lingers. ``Retry-After`` always wins: no poll comes sooner than the
workspace asked.

The progress widget's ETA comes from the same model::

    estimate(history: History | None, running: float) -> Estimate
    # Estimate(expected=600.0, remaining=120.0, overrunning=False, text="about 2 min left")
    # Estimate(expected=300.0, remaining=None, overrunning=True,
    #          text="past what history predicts (usually 5 min)")

``running`` is the seconds since the run left the queue; ``expected`` the run's likely total length
given that it is still going, ``remaining`` what is left of it (None when overrunning or without
history). ``benchmarks/bench_polling.py`` plays every kind of end against the SDK's and Airflow's
schedules and checks the targets.
"""

from __future__ import annotations

import functools
import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Estimate",
    "History",
    "LastSuccess",
    "PollPolicy",
    "estimate",
    "history_from_runs",
    "run_parameters",
]

# The model of a job's durations: see the module docstring. Measured by benchmarks/bench_polling.py.
_MIN_REL = 0.01  # durations are never assumed to be more regular than 1 %...
_MIN_ABS = 0.3  # ...or 0.3 s (launch latency, timestamps in whole milliseconds)
_FEW_RUNS = 0.2  # extra relative width for a small group of runs: 0.2 / count
_MAX_WIDTH = 0.7  # a group's width at most (a sub-second job's 0.3 s would make it absurd)
_EARLY_WIDTH = 0.3  # failures and cancellations are less regular than successes: at least this wide
_SPLIT = 0.2  # groups of runs are at least this far apart in log-duration (22 %)...
_SPLIT_SIGMAS = 4.0  # ...and this many of their own widths
_TAIL_WEIGHT = 0.05  # the share of successes that do not follow their history
_TAIL_WIDTH = 0.5  # their log-normal width (at least; 3x the main width when that is wider)...
_MAX_TAIL = 1.2  # ...but at most this (they may take 3x the median, rarely 30x)
_EDGE = 0.02  # past the point where this share of the successes is left, the run is overrunning...
_DENSE_EDGE = 0.08  # ...and dense polling stops where this share is left (an overrun pays for less)
_OVERRUN_WEIGHT = 0.1  # the share of runs that overrun their window, paying for all of its polls
_FLATTEN = 1.5  # above pace 10.5 the ceiling's ramp flattens: its first wait grows 1.5 s per second of pace
_BUDGET_SHARE = 1.25  # with history, a run costs this many times one request per ``pace`` seconds...
_AIRFLOW_PACE = (
    30.0  # ...falling to _AIRFLOW_SHARE at Airflow's pace (its request count is a hard bound there):
)
_AIRFLOW_SHARE = 0.97  # a little under it, so that a run overrunning its window spends no more either
_MIN_POLLS = 0.5  # ...and at least half a poll after the first: the sparsest settings then spend one
_SDK_PACE = 10.5  # databricks-sdk's wait settles at 10 s plus 0-1 s of jitter
_SDK_CAP = 11.0  # ...and is never longer than 11 s
_LONG_SETUP = 1.5  # a set-up this many times the usual one (plus _SETUP_SLACK) shifts the run's clock
_SETUP_SLACK = 10.0
_SETUP_SHARE = 0.25  # without set-up times in the history, a set-up may take this share of the run
_FAR = 5.0  # a success this many times the median of the others is left out of the history...
_FAR_SHARE = 0.2  # ...when fewer than this share of the successes are so far (a repair hours later)
_CHANGED = 5  # the newest runs, this many or more, that differ from all older ones: the job changed
_SLOW_STATES = frozenset({"QUEUED", "PENDING", "BLOCKED", "WAITING_FOR_RETRY"})  # no success from these
_SUCCESS = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})
_EARLY_ENDS = frozenset(
    {"FAILED", "CANCELED", "CANCELLED", "TIMEDOUT", "TIMED_OUT", "INTERNAL_ERROR", "UPSTREAM_FAILED"}
)
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class History:
    """What the job's recent runs say about how long this one will take.

    Attributes:
        median: Median duration of the successful runs in seconds (queue time excluded).
        spread: Their median absolute deviation relative to the median (0.05 is 5 %).
        count: How many successful runs it is drawn from.
        durations: The successful runs' durations, newest first (empty: one group of ``count``
            runs around ``median`` with ``spread``).
        early: Durations of the failed, cancelled and timed-out runs among the same recent runs,
            newest first.
        setup: Median set-up (cluster start) of the successful runs in seconds; 0 when unknown.
        last_success: The newest successful run among them (whatever its parameters), None if none.
    """

    median: float
    spread: float
    count: int
    durations: tuple[float, ...] = ()
    early: tuple[float, ...] = ()
    setup: float = 0.0
    last_success: LastSuccess | None = field(default=None, compare=False)  # not part of the model's cache key


@dataclass(frozen=True)
class LastSuccess:
    """The job's newest successful run in its history: what a failure is compared with.

    Attributes:
        run_id: Its run id.
        start_time: When it started (epoch ms); 0 when unknown.
        parameters: Its parameters (job parameters with their values, else the notebook parameters sent).
    """

    run_id: int
    start_time: int
    parameters: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_run(cls, run: Mapping[str, Any]) -> LastSuccess | None:
        """From a ``runs/list`` item; None without a run id."""
        try:
            return cls(int(run["run_id"]), int(run.get("start_time") or 0), run_parameters(run))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Estimate:
    """The widget's ETA: see :func:`estimate`."""

    expected: float | None
    remaining: float | None
    overrunning: bool
    text: str


def history_from_runs(runs: list[dict[str, Any]], *, run_id: Any = None) -> History | None:
    """The job's history from ``runs/list`` items (finished runs; active ones are left out).

    Successful runs give the durations; failed, cancelled, timed-out and internal-error runs say how
    often and when a run ends early. With ``run_id`` (the run being waited for, which a fresh
    ``runs/list`` page holds), only runs with the same parameters count when there are successful ones
    among them. None without a successful run.
    """
    mine = next((r for r in runs if run_id is not None and str(r.get("run_id")) == str(run_id)), None)
    ended = sorted(
        (r for r in runs if r is not mine and _result(r)),
        key=lambda r: -float(r.get("start_time") or 0),
    )
    before = float((mine or {}).get("start_time") or math.inf)
    newest = next(
        (r for r in ended if _result(r) in _SUCCESS and float(r.get("start_time") or 0) < before), None
    )
    own = _parameters(mine) if mine is not None else None
    if own is not None:
        same = [r for r in ended if _parameters(r) == own]
        if any(_result(r) in _SUCCESS for r in same):
            ended = same
    durations, early, setups = [], [], []
    for run in ended:
        seconds = _duration(run)
        if seconds is None or seconds <= 0 or _repaired(run):
            continue
        if _result(run) in _SUCCESS:
            durations.append(seconds)
            setup = _seconds(run.get("setup_duration"))
            if setup > 0:
                setups.append(setup)
        elif _result(run) in _EARLY_ENDS:
            early.append(seconds)
    durations = _without_far(durations)
    if not durations:
        return None
    median = statistics.median(durations)
    mad = statistics.median(abs(d - median) for d in durations)
    return History(
        median=median,
        spread=(mad / median) if median else 0.0,
        count=len(durations),
        durations=tuple(durations),
        early=tuple(early),
        setup=statistics.median(setups) if setups else 0.0,
        last_success=LastSuccess.from_run(newest) if newest is not None else None,
    )


def _repaired(run: dict[str, Any]) -> bool:
    """A run repaired after it ended: its duration spans the wait for the repair (when the item says)."""
    rounds = run.get("repair_history")
    return isinstance(rounds, list) and len(rounds) > 1


def _without_far(durations: list[float]) -> list[float]:
    """The successes without the few that lasted many times the others (a run repaired hours later,
    whose duration spans the wait): they would buy dense polling where no run ends."""
    if len(durations) < 3:
        return durations
    middle = statistics.median(durations)
    near = [d for d in durations if d <= _FAR * middle]
    return near if len(durations) - len(near) < _FAR_SHARE * len(durations) else durations


def run_parameters(run: Mapping[str, Any]) -> dict[str, str]:
    """A ``runs/get`` or ``runs/list`` item's parameters: its ``job_parameters`` values (defaults
    included), else the ``notebook_params`` it was sent with."""
    out: dict[str, str] = {}
    for item in run.get("job_parameters") or ():
        if isinstance(item, dict) and item.get("name") is not None:
            value = item.get("value", item.get("default"))
            out[str(item["name"])] = "" if value is None else str(value)
    if out:
        return out
    overriding = run.get("overriding_parameters")
    sent = overriding.get("notebook_params") if isinstance(overriding, dict) else None
    return {str(k): str(v) for k, v in sent.items()} if isinstance(sent, dict) else {}


def _result(run: dict[str, Any]) -> str:
    state = run.get("state")
    return str(state.get("result_state") or "") if isinstance(state, dict) else ""


def _parameters(run: dict[str, Any]) -> tuple[Any, ...] | None:
    """The run's parameters as a comparable value; None when the item does not say."""
    params = run.get("job_parameters")
    if isinstance(params, list):
        pairs = (
            (str(p.get("name")), str(p.get("value", p.get("default")))) for p in params if isinstance(p, dict)
        )
        return tuple(sorted(pairs))
    overriding = run.get("overriding_parameters")
    if isinstance(overriding, dict):
        return tuple(sorted((str(k), repr(v)) for k, v in overriding.items()))
    return None


def _seconds(milliseconds: Any) -> float:
    try:
        return max(0.0, float(milliseconds) / 1000) if milliseconds else 0.0
    except (TypeError, ValueError):
        return 0.0


def _duration(run: dict[str, Any]) -> float | None:
    """Seconds the run took, time in the queue left out."""
    try:
        if run.get("run_duration"):
            return float(run["run_duration"]) / 1000
        start, end = run.get("start_time"), run.get("end_time")
        if start is not None and end and end > start:
            queued = float(run.get("queue_duration") or 0)
            return (float(end) - float(start) - queued) / 1000
    except (TypeError, ValueError):
        pass
    return None


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait before the next ``runs/get`` (see the module docstring for the design).

    Attributes:
        pace: The trade-off setting, in seconds per poll: 10.5 is databricks-sdk's average wait, 30
            Airflow's period. The ceiling on every wait and the budget of requests scale with it.
            Larger: fewer requests, later detection.
        cap: The longest wait at pace 10.5, in seconds (the SDK's longest, 11 s, by default); it
            scales by ``pace / 10.5``. A ``Retry-After`` may still ask for longer.
        floor: The shortest wait, in seconds (near the expected end, and in TERMINATING).
        outage: Seconds a watched run rides out a workspace that does not answer (connection errors,
            timeouts, 5xx, 429) before its watching stops; None rides out any outage. A refused
            credential or a run that does not exist still ends the watching at once.
    """

    pace: float = 10.5
    cap: float = _SDK_CAP
    floor: float = 0.5
    outage: float | None = 900.0

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.cap or self.pace <= 0:
            raise ValueError(f"PollPolicy needs 0 < floor <= cap and pace > 0, got {self!r}")
        if self.outage is not None and not self.outage >= 0:
            raise ValueError(f"PollPolicy needs outage >= 0 seconds or None, got {self!r}")

    @property
    def longest(self) -> float:
        """The longest wait at this pace (``cap`` scaled by ``pace / 10.5``, never below ``floor``)."""
        return max(self.floor, self.cap * self.pace / _SDK_PACE)

    def ceiling(self, elapsed: float) -> float:
        """The longest wait ``elapsed`` seconds after the launch: databricks-sdk's, stretched by pace."""
        base = math.sqrt(1.0 + 2.0 * max(0.0, elapsed)) + 0.5  # 1.5, 2.5, 3.5 ... s after the launch
        if self.pace <= _SDK_PACE:
            scale = self.pace / _SDK_PACE
            wait = scale * (math.sqrt(1.0 + 2.0 * max(0.0, elapsed) / scale) + 0.5)
        else:
            wait = base + _FLATTEN * (self.pace - _SDK_PACE)  # flat (Airflow-like) from pace 30
        return max(self.floor, min(self.longest, wait))

    def next_delay(
        self,
        *,
        elapsed: float,
        polls: int,
        life_cycle_state: str | None,
        history: History | None = None,
        queued: float = 0.0,
        state_elapsed: float = 0.0,
        retry_after: float | None = None,
        setup: float | None = None,
    ) -> float:
        """Seconds to wait after poll number ``polls`` (1 after the first poll).

        Args:
            elapsed: Seconds since the run was launched (the queue included).
            polls: How many polls were made so far (the schedule depends on time, not on this).
            life_cycle_state: The state the last poll saw.
            history: The job's history, when known.
            queued: Seconds the run spent in the queue (its ``queue_duration``); the run's own
                clock starts when it leaves the queue.
            state_elapsed: Seconds since the poller first saw ``life_cycle_state``.
            retry_after: The workspace's last ``Retry-After``, in seconds: no poll comes sooner.
            setup: Seconds the run took to set up (from leaving the queue to RUNNING), once known:
                a set-up much longer than the history's shifts the run's clock by the excess.
        """
        state = life_cycle_state or ""
        delay = ceiling = self.ceiling(elapsed)
        if history is not None and history.median > 0 and state != "QUEUED":
            running = max(0.0, elapsed - max(0.0, queued))  # the run's own clock
            if setup is not None:
                running -= _setup_excess(history, setup)
            delay = min(ceiling, self._model_delay(history, running, ceiling))
        if state == "TERMINATING":
            delay = min(delay, max(self.floor, state_elapsed / 2))
        delay = max(self.floor, delay)
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return delay

    def _model_delay(self, history: History, running: float, ceiling: float) -> float:
        model, price = _calibrated(history, self.pace, self.longest, self.floor)
        delay = model.sleep(running, price, self.floor, ceiling)
        if running > model.dense_edge:
            # Overrunning what history predicts: a run we know little about. Back off as from a launch,
            # from the edge of the predicted window.
            delay = max(delay, self.ceiling(running - model.dense_edge))
        return delay


def _setup_excess(history: History, setup: float) -> float:
    """How much longer than usual the run's set-up took (``setup``: seconds before RUNNING was seen).

    Only a set-up well beyond the usual one counts (set-up times vary, and RUNNING is seen a poll
    late); then the run's clock is shifted by all of its excess over the usual set-up.
    """
    usual = history.setup if history.setup > 0 else history.median * _SETUP_SHARE / _LONG_SETUP
    return setup - usual if setup > usual * _LONG_SETUP + _SETUP_SLACK else 0.0


def estimate(history: History | None, running: float) -> Estimate:
    """The progress widget's ETA for a run ``running`` seconds past its queue, from the poll model.

    ``expected`` is the run's likely total length given that it is still going (the median of the
    successes' distribution past ``running``), ``remaining`` what is left of it; past the predicted
    window the run is ``overrunning`` and the text says what history expected instead.
    """
    if history is None or history.median <= 0:
        return Estimate(None, None, False, "")
    model = _model(history)
    running = max(0.0, running)
    if running > model.edge:
        usual = _fmt(history.median)
        return Estimate(None, None, True, f"past what history predicts (usually {usual})")
    alive = model.success_survival(running)
    lo, hi = running, max(running, model.edge)
    for _ in range(60):  # bisection: where half of the successes still going at `running` are done
        mid = (lo + hi) / 2.0
        if model.success_survival(mid) > alive / 2.0:
            lo = mid
        else:
            hi = mid
    expected = hi
    remaining = max(0.0, expected - running)
    text = "about to end" if remaining < 1.0 else f"about {_fmt(remaining)} left"
    return Estimate(expected, remaining, False, text)


def _fmt(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def _sdk_polls(duration: float) -> float:
    """The polls databricks-sdk's average schedule (1.5, 2.5, ... 10.5 s) spends on a run."""
    t, polls = 0.0, 1
    while t < duration:
        t += min(polls, 10) + 0.5
        polls += 1
    return float(polls)


Part = tuple[float, float, float, float]  # (weight, log-median, width, mean) of one log-normal


def _part(weight: float, median: float, width: float) -> Part:
    return weight, math.log(median), width, median * math.exp(width * width / 2.0)


class _Model:
    """When the run ends: a mixture of log-normals (successes, early ends, a tail)."""

    def __init__(self, success: Sequence[Part], others: Sequence[Part]) -> None:
        self.success = tuple(success)
        self.parts = self.success + tuple(others)
        self.mean = sum(w * m for w, _, _, m in self.parts)
        self.total = sum(w for w, _, _, _ in self.parts)
        self._success_total = sum(w for w, _, _, _ in self.success)
        self.edge = self._quantile(_EDGE)  # the edge of the predicted window
        self.dense_edge = self._quantile(_DENSE_EDGE)

    def _quantile(self, share: float) -> float:
        """Where only ``share`` of the successes are left."""
        lo, hi = 0.0, max(math.exp(mu + 6 * s) for _, mu, s, _ in self.success)
        for _ in range(60):
            mid = (lo + hi) / 2.0
            if self.success_survival(mid) > share:
                lo = mid
            else:
                hi = mid
        return hi

    def success_survival(self, t: float) -> float:
        """The share of the (non-tail) successes still going at ``t``."""
        return _survival(self.success, t) / self._success_total

    def survival(self, t: float) -> float:
        return _survival(self.parts, t)

    def density(self, t: float) -> float:
        if t <= 0:
            return 0.0
        lt = math.log(t)
        total = 0.0
        for weight, mu, width, _ in self.parts:
            z = (lt - mu) / width
            total += weight * math.exp(-0.5 * z * z) / width
        return total / (t * _SQRT2PI)

    def excess(self, t: float) -> tuple[float, float]:
        """``(P(T > t), E[max(T - t, 0)])``: the chance the run is still going, and by how much."""
        if t <= 0:
            return sum(w for w, _, _, _ in self.parts), self.mean - t
        lt = math.log(t)
        alive = excess = 0.0
        for weight, mu, width, mean in self.parts:
            z = (lt - mu) / (width * _SQRT2)
            sf = 0.5 * math.erfc(z)
            alive += weight * sf
            excess += weight * (mean * 0.5 * math.erfc(z - width / _SQRT2) - t * sf)
        return alive, excess

    def sleep(self, t: float, price: float, floor: float, cap: float) -> float:
        """The longest sleep from ``t`` whose expected detection delay stays within ``price`` seconds.

        A sleep of ``d`` seconds delays noticing an end at ``u`` in ``[t, t + d]`` by ``t + d - u``;
        its expected delay, for a run still going at ``t``, is
        ``d - (E[(T - t)+] - E[(T - t - d)+]) / P(T > t)``. Looking ahead over the whole sleep keeps a
        long sleep from jumping over the expected end, and lets one sleep end just after it.
        """
        alive, before = self.excess(t)
        if alive <= 1e-12:
            return cap

        def risk(d: float) -> float:
            return d - (before - self.excess(t + d)[1]) / alive

        if cap <= floor or risk(cap) <= price:
            return cap
        if risk(floor) >= price:
            return floor
        lo, hi = floor, cap
        while hi > lo * 1.02:  # bisection on a log scale: 2 % precision is plenty
            mid = math.sqrt(lo * hi)
            if risk(mid) <= price:
                lo = mid
            else:
                hi = mid
        return lo

    def slices(self) -> list[tuple[float, float, float, float]]:
        """(start, length, survival, hazard) over slices of time resolving every part."""
        times = {math.exp(mu + s * z / 8.0) for _, mu, s, _ in self.parts for z in range(-40, 41)}
        times |= {1.25**k for k in range(int(math.log(max(times)) / math.log(1.25)) + 1)}  # the ramp
        out, previous = [], 0.0
        for t in sorted(times):
            mid = (previous + t) / 2.0
            alive = self.survival(mid)
            if alive < 1e-9:
                break
            out.append((previous, t - previous, alive, self.density(mid) / alive))
            previous = t
        return out


def _survival(parts: Iterable[Part], t: float) -> float:
    if t <= 0:
        return sum(w for w, _, _, _ in parts)
    lt = math.log(t)
    return sum(w * 0.5 * math.erfc((lt - mu) / (s * _SQRT2)) for w, mu, s, _ in parts)


def _groups(durations: Sequence[float]) -> list[list[float]]:
    """Runs of similar length, split where the log-durations leave a gap much wider than the groups."""
    logs = sorted(math.log(d) for d in durations)
    out, todo = [], [logs]
    while todo:
        group = todo.pop()
        gaps = [(b - a, i) for i, (a, b) in enumerate(itertools.pairwise(group), start=1)]
        if gaps:
            gap, at = max(gaps)
            left, right = group[:at], group[at:]
            if gap > max(_SPLIT, _SPLIT_SIGMAS * max(_log_width(left), _log_width(right))):
                todo += [left, right]
                continue
        out.append([math.exp(x) for x in group])
    return out


def _log_width(logs: Sequence[float]) -> float:
    if len(logs) < 2:
        return 0.0
    middle = statistics.median(logs)
    return 1.4826 * statistics.median(abs(x - middle) for x in logs)


def _detrended(durations: Sequence[float]) -> list[float]:
    """The durations (newest first) projected to the next run when they drift steadily."""
    n = len(durations)
    if n < 5:
        return list(durations)
    # Theil-Sen: the median of the pairwise slopes, per run (index 0 is the newest, so a growing job
    # has a negative slope)
    slope = statistics.median(
        (durations[j] - durations[i]) / (j - i) for i in range(n) for j in range(i + 1, n)
    )
    projected = [d - slope * (i + 1) for i, d in enumerate(durations)]
    before, after = (
        _log_width([math.log(d) for d in durations]),
        _log_width([math.log(max(d, 1e-3)) for d in projected]),
    )
    if min(projected) <= 0 or after > 0.6 * before:  # no steady drift: keep the runs as they are
        return list(durations)
    return projected


def _recent(durations: Sequence[float]) -> Sequence[float]:
    """The durations (newest first) since the job changed: when its newest runs (at least
    ``_CHANGED``) all fall in a group of similar runs that no older run falls in, only they count."""
    groups = [(min(g), max(g)) for g in _groups(durations)]
    if len(groups) < 2:
        return durations
    lo, hi = next((a, b) for a, b in groups if a * 0.999 <= durations[0] <= b * 1.001)
    inside = [lo * 0.999 <= d <= hi * 1.001 for d in durations]
    newest = inside.index(False) if False in inside else len(inside)
    return durations[:newest] if newest >= _CHANGED and not any(inside[newest:]) else durations


def _width(spread: float, median: float, count: int) -> float:
    return min(
        _MAX_WIDTH,
        math.sqrt(spread**2 + _MIN_REL**2 + (_MIN_ABS / median) ** 2 + (_FEW_RUNS / max(1, count)) ** 2),
    )


def _parts_of(durations: Sequence[float], weight: float, least: float = 0.0) -> list[Part]:
    groups = _groups(durations)
    parts = []
    for group in groups:
        median = statistics.median(group)
        spread = _log_width([math.log(d) for d in group])
        width = max(least, _width(spread, median, len(group)))
        parts.append(_part(weight * len(group) / len(durations), median, width))
    return parts


@functools.lru_cache(maxsize=256)
def _model(history: History) -> _Model:
    """The mixture a history stands for."""
    if history.durations:
        successes = _parts_of(_detrended(_recent(history.durations)), 1.0)
    else:
        width = _width(1.4826 * history.spread, history.median, history.count)
        successes = [_part(1.0, history.median, width)]
    early = [d for d in history.early if d > 0]
    share = len(early) / (len(early) + max(1, history.count))
    main = max(s for _, _, s, _ in successes)
    middle = statistics.median(history.durations) if history.durations else history.median
    tail = _part(_TAIL_WEIGHT, middle, min(_MAX_TAIL, max(_TAIL_WIDTH, 3.0 * main)))
    scaled = [(w * (1.0 - _TAIL_WEIGHT), mu, s, m) for w, mu, s, m in successes]
    others = [tail, *(_parts_of(early, 1.0, _EARLY_WIDTH) if early else [])]
    others = [others[0]] + [(w * share / (1.0 - share), mu, s, m) for w, mu, s, m in others[1:]]
    return _Model(scaled, others)


def _expected_polls(
    model: _Model,
    slices: Sequence[tuple[float, float, float, float]],
    tops: Sequence[float],
    floor: float,
    price: float,
) -> float:
    """Polls a run costs on average under the local rule ``sleep = sqrt(2 price / hazard)``.

    ``tops`` holds the policy's ceiling for each slice (they do not depend on the price, so the
    bisection over prices reads them, not computes them again). The runs that overrun
    (``_OVERRUN_WEIGHT`` of them) pay for every poll of the window that is denser than the ceiling, not
    only for those before their end: counted here, they keep a budget from buying dense polling late in
    the window, where few runs that end in it are left.
    """
    total = 0.0
    overrun = _OVERRUN_WEIGHT * model.total
    for (start, length, alive, hazard), top in zip(slices, tops, strict=True):
        step = top if hazard <= 0 else min(top, max(floor, math.sqrt(2.0 * price / hazard)))
        total += alive * length / step
        if start < model.dense_edge:
            total += overrun * length * (1.0 / step - 1.0 / top)
    return total


@functools.lru_cache(maxsize=256)
def _calibrated(history: History, pace: float, cap: float, floor: float) -> tuple[_Model, float]:
    """The model of a history and the price per poll that spends the budget."""
    model = _model(history)
    policy = PollPolicy(pace=pace, cap=cap * _SDK_PACE / pace, floor=floor)
    total = sum(w for w, _, _, _ in model.parts)
    # Requests per run: the share of a reference, one request per ``pace`` seconds of the expected length
    # plus the first and the last poll (or the SDK's ramp, stretched by pace, when that is more); the
    # first poll (the runs/list) and the last are not in the sum.
    share = _AIRFLOW_SHARE + (_BUDGET_SHARE - _AIRFLOW_SHARE) * min(
        1.0, max(0.0, (_AIRFLOW_PACE - pace) / (_AIRFLOW_PACE - _SDK_PACE))
    )
    length = model.mean / total
    reference = max(length / pace + 1.5, _sdk_polls(length) * _SDK_PACE / pace)  # SDK's ramp included
    budget = max(_MIN_POLLS, share * reference - 1.5)
    slices = model.slices()
    tops = [policy.ceiling(start * 1.1) for start, _, _, _ in slices]
    lo, hi = 1e-8, 1e4
    for _ in range(60):  # bisection on a log scale for the price that spends the budget
        mid = math.sqrt(lo * hi)
        if _expected_polls(model, slices, tops, policy.floor, mid) > budget * total:
            lo = mid
        else:
            hi = mid
        if hi < lo * 1.05:
            break
    # Never cheaper than a floor-long sleep where the end is likeliest: a budget too large to spend
    # near the end must not buy dense polling anywhere else.
    peak = max((hazard for _, _, _, hazard in slices), default=0.0)
    return model, max(hi, peak * floor * floor / 2.0)
