"""A process-wide cap on the request rate: one token bucket shared by every client and every wait.

Every HTTP attempt ``DatabricksClient`` makes (retries included) first takes a token from a
:class:`RateLimiter`. Unless a client is given its own, they all share :func:`default_limiter`, so a
notebook that waits on many runs at once (threads, forms, a loop of launches) stays under one rate
against the workspace, however the waits are paced. The default is generous (100 requests a second,
bursts of 200; third-party figures put the workspace's own limit on ``runs/get`` near 100 a second):
a user never notices it, a sweep of many runs or a test suite against a mock barely does (at 20 a
second this project's own suite took 40 s longer and a sweep's batched polling broke); it stops one
runaway process from spending the workspace's whole rate limit, which every user of it shares.

Change it for the whole process with ``dbx_magic.ratelimit.set_default_rate(5)`` (5 requests a second),
or give one client its own: ``DatabricksClient(host, token, rate_limiter=RateLimiter(2.0))``.
``Retry-After`` is honoured separately, by the client's retries and by the poller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["DEFAULT_BURST", "DEFAULT_RATE", "RateLimiter", "default_limiter", "set_default_rate"]

DEFAULT_RATE = 100.0
"""Requests per second allowed by the process-wide limiter unless changed."""
DEFAULT_BURST = 200.0
"""How many requests may go at once after a quiet spell."""


class RateLimiter:
    """A thread-safe token bucket: ``rate`` tokens a second, at most ``burst`` saved up.

    ``acquire()`` takes a token, waiting (outside the lock) until one is due. Waiters are served in
    the order they arrived: each reserves the next token and sleeps until its time, so a burst of
    threads is spread out evenly instead of all retrying at once.

    Args:
        rate: Tokens (requests) per second; must be positive.
        burst: The bucket's size: requests that may go at once (default: one second's worth, at
            least 1).
        clock: A monotonic clock in seconds (a parameter so tests can drive time by hand).
        sleep: The function that waits.
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self._rate, self._burst = _checked(rate, burst)
        self._tokens = self._burst
        self._stamp = clock()
        self.waited = 0.0
        """Seconds spent waiting in ``acquire`` so far, over all callers."""

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self._rate:g}, burst={self._burst:g})"

    @property
    def rate(self) -> float:
        """Tokens (requests) per second."""
        return self._rate

    @property
    def burst(self) -> float:
        """The bucket's size."""
        return self._burst

    def configure(self, rate: float, burst: float | None = None) -> None:
        """Change the rate (and the burst; default one second's worth, at least 1)."""
        rate, size = _checked(rate, burst)
        with self._lock:
            self._rate, self._burst = rate, size
            self._tokens = min(self._tokens, size)

    def acquire(self) -> float:
        """Take one token, waiting until one is due. Returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            self._tokens -= 1.0  # reserve it; a negative balance is the queue of waiters
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
            self.waited += wait
        if wait > 0:
            self._sleep(wait)
        return wait


def _checked(rate: float, burst: float | None) -> tuple[float, float]:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise ValueError(f"The rate must be a positive number of requests per second, not {rate!r}.")
    size = max(1.0, float(rate)) if burst is None else burst
    if isinstance(size, bool) or not isinstance(size, int | float) or not size >= 1:
        raise ValueError(f"The burst must be a number of requests, at least 1, not {burst!r}.")
    return float(rate), float(size)


_default = RateLimiter(DEFAULT_RATE, DEFAULT_BURST)


def default_limiter() -> RateLimiter:
    """The limiter every ``DatabricksClient`` shares unless it is given its own."""
    return _default


def set_default_rate(rate: float, burst: float | None = None) -> None:
    """Change the process-wide rate (requests per second) and burst, for every client at once.

    Args:
        rate: Requests per second; must be positive.
        burst: Requests that may go at once (default: one second's worth, at least 1).
    """
    _default.configure(rate, burst)
