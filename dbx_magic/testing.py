"""Helpers for testing code that uses dbx-magic: a fake clock, and a watcher that such a clock can drive.

A :class:`ManualClock` moves only when something sleeps on it, so an hour-long run on the sandbox
plays in milliseconds::

    from dbx_magic.testing import ManualClock, stepped_watcher
    from dbx_magic.sandbox import Sandbox

    clock = ManualClock()
    sandbox = Sandbox(clock=clock.monotonic, epoch=clock.wall()).start()
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    handle = start_background(client, "daily-sales-report", watcher=stepped_watcher(clock))
    handle.wait()   # steps the watcher: no thread, no real waiting
"""

from __future__ import annotations

import threading
from typing import Any

from .clock import Clock

__all__ = ["ManualClock", "stepped_watcher"]


class ManualClock(Clock):
    """A clock that moves only when slept on: time for tests and benchmarks.

    ``sleep(d)`` moves the time forward by ``d`` at once (and records it in ``slept``); ``advance(d)``
    moves it by hand. Thread-safe.

    Args:
        start: The monotonic time it starts at.
        epoch: The wall time (epoch seconds) at ``start``.
    """

    def __init__(self, start: float = 1000.0, epoch: float = 1_790_000_000.0) -> None:
        self._now = float(start)
        self._epoch = float(epoch) - float(start)
        self._lock = threading.Lock()
        self.slept: list[float] = []
        """Every sleep asked for, in order."""
        super().__init__(self._read, self._advance_to_wake, lambda: self._epoch + self._read())

    def _read(self) -> float:
        with self._lock:
            return self._now

    def _advance_to_wake(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self._now += seconds

    def advance(self, seconds: float) -> None:
        """Move the time forward by hand."""
        with self._lock:
            self._now += max(0.0, seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """As :meth:`Clock.wait`; a set event returns at once without moving time."""
        if event.is_set():
            return True
        self.sleep(seconds)
        return event.is_set()


def stepped_watcher(clock: Clock, **options: Any) -> Any:
    """A :class:`~dbx_magic.run.engine.Watcher` with no thread, on ``clock``: whoever waits steps it
    (the only way to run one on a :class:`ManualClock`)."""
    from .run.engine import Watcher

    return Watcher(clock, threaded=False, **options)
