"""When to poll next: pure functions of elapsed time, the run's state and the job's history.

Nothing here sleeps or sends a request; the workflow asks :meth:`PollPolicy.next_delay` and waits that
long with the clock and sleep it was given.

Every poll spends a request against the workspace's rate limit, and every second between a run's end
and the poll that sees it is a second the user waits. :class:`PollPolicy` trades one against the
other with the job's own history (one ``runs/list`` call per wait, see :func:`history_from_runs`):

- **With history**, the durations of the job's recent successful runs give a distribution of when
  this run will end: a log-normal around their median, as wide as their spread (never narrower than
  1 % or 0.3 s, wider when the runs are few), plus a heavy tail for the 5 % that do not behave. The
  policy gets a budget, 85 % of the requests databricks-sdk's schedule would spend on a run of the
  expected length, and places it where the end is likely: each sleep is the longest whose expected
  detection delay stays under a price per poll, the price set once per history so that the expected
  number of polls meets the budget (the classic inspection schedule: the gap between polls shrinks
  with the square root of the hazard rate). So it sleeps long (at most ``cap``) while the end is
  far, polls densely (down to ``floor``) near it, and, when the run overruns its history, backs off
  again as the schedule without history would from the edge of the expected window. A budget too
  large to use is not spent: the price never drops below what a ``floor``-long sleep risks where the
  end is likeliest, so a very regular job costs far fewer requests.
- **Without history** it follows databricks-sdk's average schedule one poll on (waits of 2.5, 3.5,
  ... s, settling at ``pace``): the SDK's 1.5 s poll rarely sees an end (the immediate first poll
  catches a run that ends at once) and pays for the ``runs/list``. No jitter.
- **Queue and set-up.** A QUEUED run has not begun, so the history is applied from the moment it
  leaves the queue (``queued``, the run's own ``queue_duration``); without history, QUEUED and
  PENDING (cluster set-up) are polled at half the usual rate once seen twice, since a run cannot
  succeed from them.
- **TERMINATING** means the end is seconds away: poll at ``floor``, backing off if it lingers.
- **Retry-After** always wins: no poll comes sooner than the workspace asked.

``pace`` is the one setting that moves along the trade-off, in seconds per poll: the schedule without
history settles at it (10.5 is databricks-sdk's average wait; 30 is Airflow's fixed period), and with
history the budget scales by ``10.5 / pace``. A larger ``pace`` means fewer requests and later
detection; ``cap`` grows to at least twice ``pace``. ``benchmarks/bench_polling.py`` prints the curve.
"""

from __future__ import annotations

import functools
import math
import statistics
from dataclasses import dataclass
from typing import Any

__all__ = ["History", "PollPolicy", "history_from_runs"]

# The model of a job's durations: see PollPolicy. Fixed here, measured by benchmarks/bench_polling.py.
_MIN_REL = 0.01  # durations are never assumed to be more regular than 1 %...
_MIN_ABS = 0.3  # ...or 0.3 s (launch latency, timestamps in whole milliseconds)
_FEW_RUNS = 0.1  # extra relative width per run missing from the history: 0.1 / count
_TAIL_WEIGHT = 0.05  # the share of runs that do not follow their history
_TAIL_WIDTH = 0.5  # their log-normal width (at least; 3x the main width when that is wider)...
_MAX_TAIL = 1.2  # ...but at most this (they may take 3x the median, rarely 30x)
_MAX_WIDTH = 0.7  # the main width at most (a sub-second job's 0.3 s would make it absurd)
_BUDGET_SHARE = 0.85  # with history, spend at most this share of the SDK's requests
_MIN_POLLS = 0.5  # ...and at least half a poll after the first: the sparsest settings then spend one
_SDK_PACE = 10.5  # databricks-sdk's wait settles at 10 s plus 0-1 s of jitter
_RAMP_START = 4.0  # sqrt(2t + 4) + 0.5: the SDK's average wait one poll later (2.5, 3.5, ... s)
_SLOW_STATES = frozenset({"QUEUED", "PENDING"})  # a run cannot succeed from these
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class History:
    """What the job's recent successful runs say about how long this one will take.

    Attributes:
        median: Median duration in seconds (queue time excluded).
        spread: Median absolute deviation relative to the median (0.05 is 5 %).
        count: How many runs it is drawn from.
    """

    median: float
    spread: float
    count: int


def history_from_runs(runs: list[dict[str, Any]]) -> History | None:
    """Estimate the duration from ``runs/list`` items: successful, finished runs only."""
    durations = []
    for run in runs:
        state = run.get("state") or {}
        if state.get("result_state") != "SUCCESS":
            continue
        seconds = _duration(run)
        if seconds is not None and seconds > 0:
            durations.append(seconds)
    if not durations:
        return None
    median = statistics.median(durations)
    mad = statistics.median(abs(d - median) for d in durations)
    return History(median=median, spread=(mad / median) if median else 0.0, count=len(durations))


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
        pace: The trade-off setting, in seconds per poll: the schedule without history settles at
            it (10.5 is databricks-sdk's average wait; 30 is Airflow's period), and with history the
            budget (85 % of the requests databricks-sdk would spend on a run of the expected length)
            scales by ``10.5 / pace``. Larger: fewer requests, later detection.
        cap: The longest wait, in seconds (keeps the task table and a cancellation fresh); at least
            twice ``pace``.
        floor: The shortest wait, in seconds (near the expected end, and in TERMINATING).
    """

    pace: float = 10.5
    cap: float = 60.0
    floor: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.cap or self.pace <= 0:
            raise ValueError(f"PollPolicy needs 0 < floor <= cap and pace > 0, got {self!r}")

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
        """
        state = life_cycle_state or ""
        cap = max(self.cap, 2.0 * self.pace)
        running = max(0.0, elapsed - max(0.0, queued))  # the run's own clock
        if history is None or history.median <= 0:
            delay = _ramp(running, self.pace)
            if state in _SLOW_STATES and state_elapsed > 0:
                delay *= 2.0  # seen twice: set-up or queue, which take a while
        else:
            model, price = _calibrated(history, self.pace, cap, self.floor)
            delay = model.sleep(0.0 if state == "QUEUED" else running, price, self.floor, cap)
            edge = history.median * math.exp(2.0 * model.width)
            if running > edge and state != "QUEUED":
                # Overrunning its history, the run is one we know little about: back off as the
                # schedule without history would from the edge of the expected window, never
                # beyond twice that schedule.
                delay = min(max(delay, _ramp(running - edge, self.pace)), 2.0 * _ramp(running, self.pace))
        if state == "TERMINATING":
            delay = min(delay, max(self.floor, state_elapsed / 2))
        delay = min(cap, max(self.floor, delay))
        if retry_after is not None and retry_after > delay:
            delay = retry_after
        return delay


def _ramp(t: float, pace: float) -> float:
    """The wait without history: databricks-sdk's average schedule, stretched by ``pace / 10.5``."""
    scale = pace / _SDK_PACE
    return scale * min(_SDK_PACE, math.sqrt(2.0 * t / scale + _RAMP_START) + 0.5)


def _sdk_polls(duration: float) -> float:
    """The polls databricks-sdk's average schedule (1.5, 2.5, ... 10.5 s) spends on a run."""
    t, polls = 0.0, 1
    while t < duration:
        t += min(polls, 10) + 0.5
        polls += 1
    return float(polls)


class _Model:
    """When the run ends: a log-normal around the history's median with a heavy tail, as a mixture."""

    def __init__(self, median: float, width: float) -> None:
        self.mu = math.log(median)
        self.width = width
        self.tail = min(_MAX_TAIL, max(_TAIL_WIDTH, 3.0 * width))
        # (weight, width, mean) of the two log-normals
        self.parts = tuple(
            (w, s, median * math.exp(s * s / 2.0))
            for w, s in ((1.0 - _TAIL_WEIGHT, self.width), (_TAIL_WEIGHT, self.tail))
        )
        self.mean = sum(w * m for w, _, m in self.parts)

    def survival(self, t: float) -> float:
        """P(the run is still going at t)."""
        if t <= 0:
            return 1.0
        lt = (math.log(t) - self.mu) / _SQRT2
        return 0.5 * (
            (1.0 - _TAIL_WEIGHT) * math.erfc(lt / self.width) + _TAIL_WEIGHT * math.erfc(lt / self.tail)
        )

    def hazard(self, t: float) -> float:
        """The rate at which runs still going at t end."""
        alive = self.survival(t)
        if t <= 0 or alive <= 0:
            return 0.0
        lt = math.log(t) - self.mu
        a, b = lt / self.width, lt / self.tail
        density = (1.0 - _TAIL_WEIGHT) * math.exp(-0.5 * a * a) / self.width
        density += _TAIL_WEIGHT * math.exp(-0.5 * b * b) / self.tail
        return density / (t * _SQRT2PI * alive)

    def excess(self, t: float) -> tuple[float, float]:
        """``(P(T > t), E[max(T - t, 0)])``: the chance the run is still going, and by how much."""
        if t <= 0:
            return 1.0, self.mean - t
        lt = (math.log(t) - self.mu) / _SQRT2
        alive = excess = 0.0
        for weight, width, mean in self.parts:
            sf = 0.5 * math.erfc(lt / width)
            alive += weight * sf
            excess += weight * (mean * 0.5 * math.erfc(lt / width - width / _SQRT2) - t * sf)
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

        if risk(cap) <= price:
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

    def slices(self) -> list[tuple[float, float]]:
        """(survival x length, hazard) over slices of time that resolve both the peak and the tail."""
        median = math.exp(self.mu)
        times = sorted(
            {median * math.exp(s * z / 8.0) for s in (self.width, self.tail) for z in range(-48, 49)}
        )
        out, previous = [], 0.0
        for t in times:
            mid = (previous + t) / 2.0
            alive = self.survival(mid)
            if alive < 1e-9:
                break
            out.append((alive * (t - previous), self.hazard(mid)))
            previous = t
        return out


def _expected_polls(slices: list[tuple[float, float]], price: float, floor: float, cap: float) -> float:
    """Polls a run costs on average under the local rule ``sleep = sqrt(2 price / hazard)``."""
    total = 0.0
    for weight, hazard in slices:
        step = cap if hazard <= 0 else min(cap, max(floor, math.sqrt(2.0 * price / hazard)))
        total += weight / step
    return total


@functools.lru_cache(maxsize=256)
def _calibrated(history: History, pace: float, cap: float, floor: float) -> tuple[_Model, float]:
    """The model of a history and the price per poll that spends the budget."""
    median = history.median
    width = min(
        _MAX_WIDTH,
        math.sqrt(
            (1.4826 * history.spread) ** 2  # the MAD of a normal is 0.6745 of its standard deviation
            + _MIN_REL**2
            + (_MIN_ABS / median) ** 2
            + (_FEW_RUNS / max(1, history.count)) ** 2
        ),
    )
    model = _Model(median, width)
    # Requests per run: this share of the SDK's, scaled by pace; the first poll and runs/list are two.
    budget = max(_MIN_POLLS, _BUDGET_SHARE * _sdk_polls(median) * _SDK_PACE / pace - 2.0)
    slices = model.slices()
    lo, hi = 1e-8, 1e4
    for _ in range(60):  # bisection on a log scale for the price that spends the budget
        mid = math.sqrt(lo * hi)
        if _expected_polls(slices, mid, floor, cap) > budget:
            lo = mid
        else:
            hi = mid
        if hi < lo * 1.05:
            break
    # Never cheaper than a floor-long sleep where the end is likeliest: a budget too large to spend
    # near the end must not buy dense polling anywhere else (a run overrunning by hours, say).
    peak = max((hazard for _, hazard in slices), default=0.0)
    return model, max(hi, peak * floor * floor / 2.0)
