"""A cap on the request rate: a token bucket that every HTTP attempt of a client takes a token from.

Each :class:`~dbx_magic.api.client.DatabricksClient` has one (100 requests a second, bursts of 200:
generous enough that no user notices it, tight enough that one runaway process cannot spend the
workspace's whole rate limit, which every user of it shares). Clients that should stay under one rate
together share one limiter: ``DatabricksClient(host, token, rate_limiter=shared)``; the notebook
session shares one among all the magics' clients. ``Retry-After`` is honoured separately, by the
client's retries and by the poller.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from ..clock import Clock, as_clock

__all__ = ["DEFAULT_BURST", "DEFAULT_RATE", "RateLimiter"]

DEFAULT_RATE = 100.0
"""Requests per second a limiter allows unless told otherwise."""
DEFAULT_BURST = 200.0
"""How many requests may go at once after a quiet spell."""


class RateLimiter:
    """A thread-safe token bucket: ``rate`` tokens a second, at most ``burst`` saved up.

    ``acquire()`` takes a token, waiting (outside the lock) until one is due. Waiters are served in
    the order they arrived: each reserves the next token and sleeps until its time, so a burst of
    threads is spread out evenly instead of all retrying at once.

    Args:
        rate: Tokens (requests) per second; must be positive.
        burst: The bucket's size: requests that may go at once (default: ``DEFAULT_BURST`` at the
            default rate, else one second's worth, at least 1).
        clock: The clock it reads and sleeps on (a :class:`~dbx_magic.clock.Clock`, or a monotonic
            function together with ``sleep``), so tests can drive time by hand.
        sleep: The function that waits, when ``clock`` is a plain function.
        on_grant: Called (under the limiter's lock) with the moment each token was granted for, in the
            clock's monotonic seconds: the schedule the bucket enforces, to observe it.
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: float | None = None,
        *,
        clock: Clock | Callable[[], float] | None = None,
        sleep: Callable[[float], Any] | None = None,
        on_grant: Callable[[float], Any] | None = None,
    ) -> None:
        self._on_grant = on_grant
        self._lock = threading.Lock()
        self._clock = as_clock(clock, sleep)
        if burst is None and rate == DEFAULT_RATE:
            burst = DEFAULT_BURST
        self._rate, self._burst = _checked(rate, burst)
        self._tokens = self._burst
        self._stamp = self._clock.monotonic()
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
            now = self._clock.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            self._tokens -= 1.0  # reserve it; a negative balance is the queue of waiters
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
            self.waited += wait
            if self._on_grant is not None:
                self._on_grant(now + wait)
        if wait > 0:
            self._clock.sleep(wait)
        return wait

    def acquire_by(self, deadline: float | None) -> bool:
        """Take one token if it is due by ``deadline`` (monotonic seconds; None: whenever it is due),
        waiting for it; otherwise take none and return False at once."""
        if deadline is None:
            self.acquire()
            return True
        with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            wait = (1.0 - self._tokens) / self._rate if self._tokens < 1.0 else 0.0
            if wait > 0 and now + wait > deadline:
                return False
            self._tokens -= 1.0
            self.waited += wait
            if self._on_grant is not None:
                self._on_grant(now + wait)
        if wait > 0:
            self._clock.sleep(wait)
        return True


def _checked(rate: float, burst: float | None) -> tuple[float, float]:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
        raise ValueError(f"The rate must be a positive number of requests per second, not {rate!r}.")
    size = max(1.0, float(rate)) if burst is None else burst
    if isinstance(size, bool) or not isinstance(size, int | float) or not size >= 1:
        raise ValueError(f"The burst must be a number of requests, at least 1, not {burst!r}.")
    return float(rate), float(size)
