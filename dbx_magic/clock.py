"""Time, as one object: monotonic seconds, wall-clock seconds and sleeping, injected together.

Everything in dbx-magic that reads the time or waits (the client's retries, the rate limiter, the
poller, the displays' elapsed time) takes a :class:`Clock`, so a test or a benchmark can play an
hour-long run in milliseconds with :class:`dbx_magic.testing.ManualClock`::

    clock = ManualClock()
    sandbox = Sandbox(clock=clock.monotonic, epoch=clock.wall())
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    run_job_and_wait(client, "daily-sales-report", clock=clock)   # no real waiting
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["SYSTEM", "Clock", "as_clock"]


class Clock:
    """Monotonic time, wall time and sleep, from one source.

    Args:
        monotonic: Seconds that only go forward (default ``time.monotonic``).
        sleep: Waits that many seconds (default ``time.sleep``).
        wall: Epoch seconds. By default ``time.time`` for the system clock; for any other
            ``monotonic`` it is derived from it (the epoch read once, when the clock is made), so
            wall time and monotonic time never disagree.
    """

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        if wall is None and monotonic is not time.monotonic:
            offset = time.time() - monotonic()
            wall = lambda: offset + monotonic()  # noqa: E731
        self._wall = wall or time.time

    def monotonic(self) -> float:
        """Seconds on a clock that only goes forward."""
        return self._monotonic()

    def wall(self) -> float:
        """Seconds since the epoch (for the API's timestamps, which are epoch milliseconds)."""
        return self._wall()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a negative wait is none)."""
        self._sleep(max(0.0, seconds))

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Wait up to ``seconds`` or until ``event`` is set; True when it was set."""
        if self._sleep is time.sleep:
            return event.wait(max(0.0, seconds))
        if not event.is_set():
            self.sleep(seconds)
        return event.is_set()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


SYSTEM = Clock()
"""The real clock (immutable: nothing about it can be changed)."""


def as_clock(
    clock: Clock | Callable[[], float] | None = None, sleep: Callable[[float], Any] | None = None
) -> Clock:
    """One Clock from what a caller passed: a Clock, or a monotonic function and a sleep function."""
    if isinstance(clock, Clock):
        return clock if sleep is None else Clock(clock.monotonic, sleep, clock.wall)
    if clock is None and sleep is None:
        return SYSTEM
    return Clock(time.monotonic if clock is None else clock, time.sleep if sleep is None else sleep)
