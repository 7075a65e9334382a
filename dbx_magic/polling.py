"""When to poll next: pure functions of elapsed time, the run's state and the job's history.

Nothing here sleeps or sends a request; the workflow asks ``PollPolicy.next_delay`` and waits that
long with the clock and sleep it was given.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

__all__ = ["History", "PollPolicy", "history_from_runs"]


@dataclass(frozen=True)
class History:
    """What the job's recent successful runs say about how long this one will take.

    Attributes:
        median: Median duration in seconds.
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
    if run.get("run_duration"):
        return float(run["run_duration"]) / 1000
    start, end = run.get("start_time"), run.get("end_time")
    if start is not None and end and end > start:
        return (float(end) - float(start)) / 1000
    return None


@dataclass(frozen=True)
class PollPolicy:
    """How long to wait before the next ``runs/get``.

    Attributes:
        first: The first wait, in seconds.
        factor: Each next wait is this much longer...
        cap: ...up to this many seconds.
    """

    first: float = 1.0
    factor: float = 1.5
    cap: float = 10.0

    def next_delay(
        self,
        *,
        elapsed: float,
        polls: int,
        life_cycle_state: str | None,
        history: History | None = None,
    ) -> float:
        """Seconds to wait after poll number ``polls`` (1 after the first poll).

        Args:
            elapsed: Seconds since the run was launched (or since we started watching).
            polls: How many polls were made so far.
            life_cycle_state: The state the last poll saw.
            history: The job's history, when known.
        """
        return min(self.cap, self.first * self.factor ** max(0, polls - 1))
