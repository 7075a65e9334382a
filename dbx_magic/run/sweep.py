"""Parameter sweeps: launch many runs of one job and watch them all, with few requests.

``run_many`` launches one run per parameter set (each with its own idempotency token) into one
:class:`~dbx_magic.run.engine.Watcher`, keeps no more in flight than the job allows, and waits for
all of them; the watcher polls them together, as it polls every run. A failed run never stops the
others; results come back in input order; every way out names every run.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..api.client import DatabricksClient
from ..clock import Clock
from ..errors import MAY_HAVE_STARTED, DatabricksError, InvalidInput, RunInterrupted
from . import stops
from .checks import MAX_IDEMPOTENCY_TOKEN, a_kind
from .engine import RunHandle, Watcher
from .launch import JobInfo, Launch, check_declared, job_info
from .models import RunResult
from .polling import PollPolicy

__all__ = ["SweepFailed", "run_many"]

log = logging.getLogger(__name__)

OnSweepUpdate = Callable[[list[RunResult | None]], Any]


class SweepFailed(DatabricksError):
    """Some runs of a sweep did not succeed, could not be launched, or could not be watched to the end;
    ``results`` holds them all (None for a run never launched)."""

    def __init__(self, message: str, results: Sequence[RunResult | None], **fields: Any) -> None:
        fields.pop("results", None)
        super().__init__(message, results=list(results), **fields)


@dataclass
class _Slot:
    index: int
    spec: Launch
    handle: RunHandle | None = None
    error: DatabricksError | None = None

    @property
    def result(self) -> RunResult | None:
        return None if self.handle is None else self.handle.result

    @property
    def active(self) -> bool:
        return self.handle is not None and not self.handle.settled


def _check_parallel(max_parallel: int | None) -> None:
    if max_parallel is not None and (
        isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1
    ):
        raise InvalidInput(f"max_parallel={max_parallel!r} is not a positive integer: pass e.g. 5, or None.")


def _limit(info: JobInfo, max_parallel: int | None) -> int | None:
    allowed = info.max_concurrent_runs if isinstance(info.max_concurrent_runs, int) else 1
    if allowed <= 0:
        raise InvalidInput(
            f"Job {info.job_id} allows 0 concurrent runs (every run would be skipped): raise its "
            "max_concurrent_runs in the job's settings."
        )
    # With queueing on, the workspace holds extra runs in its queue (shown QUEUED); without it,
    # a run over the limit would be SKIPPED, so we hold it back ourselves, whatever was asked.
    if info.queueing:
        return max_parallel
    return allowed if max_parallel is None else min(max_parallel, allowed)


def _specs(
    job: int | str,
    params: Sequence[Mapping[str, Any]],
    idempotency_token: str | None,
    timeout: float | None,
    allow_unknown_params: bool = False,
    performance_target: str | None = None,
) -> list[Launch]:
    if isinstance(params, Mapping | str) or not isinstance(params, Sequence):
        raise InvalidInput(
            f"params must be a list of dicts, one per run, not {a_kind(params)}: e.g. [{{'date': '2026-11-01'}}, ...]."
        )
    base = Launch.check(
        job,
        idempotency_token=idempotency_token or f"dbx-sweep-{uuid.uuid4().hex[:16]}",
        timeout=timeout,
        allow_unknown_params=allow_unknown_params,
        performance_target=performance_target,
    )
    base = replace(base, token_given=idempotency_token is not None)  # a fresh base finds no earlier runs
    if len(f"{base.idempotency_token}-{len(params)}") > MAX_IDEMPOTENCY_TOKEN:
        raise InvalidInput(
            f"The idempotency token base {base.idempotency_token!r} is too long for {len(params)} "
            f"run{'s' if len(params) != 1 else ''}: keep it "
            f"under {MAX_IDEMPOTENCY_TOKEN - 6} characters."
        )
    specs = []
    for i, p in enumerate(params):
        try:
            Launch.check(job, p)  # each set judged on its own, so the message names the set
        except InvalidInput as exc:
            raise InvalidInput(f"Parameter set #{i}: {exc.message}") from None
        specs.append(base.with_params(p, f"{base.idempotency_token}-{i}"))
    return specs


def _check_sets(client: DatabricksClient, info: JobInfo, specs: list[Launch]) -> None:
    """Judge every set against the job's declarations (read once) before the first launch."""
    for i, spec in enumerate(specs):
        try:
            check_declared(client, info, spec)
        except InvalidInput as exc:
            raise InvalidInput(f"Parameter set #{i + 1} of {len(specs)}: {exc.message}") from None


def run_many(
    client: DatabricksClient,
    job: int | str,
    params: Sequence[Mapping[str, Any]],
    *,
    max_parallel: int | None = None,
    idempotency_token: str | None = None,
    timeout: float | None = None,
    on_update: OnSweepUpdate | None = None,
    cancel_on_interrupt: bool = False,
    policy: PollPolicy | None = None,
    watcher: Watcher | None = None,
    clock: Clock | Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    allow_unknown_params: bool = False,
    on_handle: Callable[[RunHandle], Any] | None = None,
    performance_target: str | None = None,
) -> list[RunResult]:
    """Run one job once per parameter set and wait for all of them.

    The runs are launched into one watcher (no more in flight than ``max_parallel``), which polls
    them together: one ``runs/list`` page covers up to 25 of the job's active runs.

    Args:
        client: The workspace client.
        job: A job id or name.
        params: One mapping per run (values are turned into strings as for ``run_job_and_wait``).
        max_parallel: At most this many runs in flight. None: as the job allows (its
            ``max_concurrent_runs``; with queueing on, all are launched and the workspace queues them).
            With queueing off, never more than the job allows (more would be SKIPPED).
        idempotency_token: A base for the runs' tokens (run i gets ``<base>-<i>``); the same base
            finds the same runs again instead of starting new ones. None makes a fresh one.
        timeout: Seconds to wait for the whole sweep; the runs go on after it.
        on_update: Called with the list of results (None for runs not launched yet) every cycle.
        cancel_on_interrupt: On a kernel interrupt, also cancel the runs still going.
        policy: When to poll next, as for a single run.
        watcher: The watcher that polls the runs (default: one of this call's own, stepped while it
            waits).
        clock: The clock to wait on (default: the client's).
        sleep: Waits between poll cycles, with a plain ``clock`` function.
        allow_unknown_params: Send names the job does not declare as given (otherwise every set is
            checked against the job's declarations before the first run is launched).
        on_handle: Given each run's :class:`~dbx_magic.run.engine.RunHandle` as soon as it is launched.
        performance_target: As for ``run_job_and_wait``, for every run.

    Returns:
        One RunResult per parameter set, in input order; check each ``ok``.

    Raises:
        InvalidInput: bad input (all parameter sets are checked before anything is launched).
        SweepFailed: a launch failed for good, or the polling did (``results`` has every run).
        WaitTimeout, RunInterrupted: with ``results`` holding every run as last seen.
    """
    from .runs import _watcher

    _check_parallel(max_parallel)
    specs = _specs(job, params, idempotency_token, timeout, allow_unknown_params, performance_target)
    if not specs:
        return []
    info = job_info(client, specs[0].job)
    _check_sets(client, info, specs)
    own = _watcher(client, watcher, threaded=False, policy=policy, clock=clock, sleep=sleep)
    sweep = _Sweep(client, info, specs, _limit(info, max_parallel), own, on_update, on_handle)
    timeout = specs[0].timeout
    interrupted = False
    try:
        with client.until(None if timeout is None else client.clock.monotonic() + timeout):
            sweep.run(timeout)
    except KeyboardInterrupt:
        interrupted = True
    if interrupted:  # raised here, not in the except block: nothing of a request is chained
        raise sweep.interrupted(cancel_on_interrupt)
    failed_launches = [s for s in sweep.slots if s.error is not None]
    results = sweep.results()
    if failed_launches:
        named = "; ".join(
            f"run {s.index} (token {s.spec.idempotency_token}): {s.error}" for s in failed_launches[:5]
        )
        raise SweepFailed(
            f"{len(failed_launches)} of {len(specs)} runs could not be launched ({named}); the others ran: "
            "their results are in the error's `results`.",
            results,
        )
    return [r for r in results if r is not None]


class _Sweep:
    def __init__(
        self,
        client: DatabricksClient,
        info: JobInfo,
        specs: list[Launch],
        limit: int | None,
        watcher: Watcher,
        on_update: OnSweepUpdate | None,
        on_handle: Callable[[RunHandle], Any] | None,
    ) -> None:
        self.client, self.info, self.limit, self.watcher = client, info, limit, watcher
        self.on_update, self.on_handle = on_update, on_handle
        self.slots = [_Slot(i, spec) for i, spec in enumerate(specs)]
        self.waiting = list(self.slots)
        self.launching: _Slot | None = None

    def results(self) -> list[RunResult | None]:
        return [s.result for s in self.slots]

    def _active(self) -> list[_Slot]:
        return [s for s in self.slots if s.active]

    def _notify(self) -> None:
        if self.on_update is not None:
            try:
                self.on_update(self.results())
            except Exception:
                log.warning("on_update raised while showing a sweep", exc_info=True)

    def _room(self) -> bool:
        return bool(self.waiting) and (self.limit is None or len(self._active()) < self.limit)

    def _moved(self) -> bool:
        """Checked after every cycle: shows the sweep, and says whether the sweep has something to do."""
        self._notify()
        return self._room() or not self._active() or self._lost() is not None

    def _lost(self) -> DatabricksError | None:
        return next((s.handle.error for s in self.slots if s.handle is not None and s.handle.error), None)

    def run(self, timeout: float | None) -> None:
        clock = self.watcher.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        while True:
            while self._room() and (deadline is None or clock.monotonic() < deadline):
                self._launch(self.waiting.pop(0))  # the timeout bounds the waiting: none launched after it
            lost = self._lost()
            if lost is not None:
                raise stops.sweep_watch_lost(lost, self._going(), self.results(), self._cut_short())
            if not self.waiting and not self._active():
                self._notify()
                return
            if deadline is not None and clock.monotonic() >= deadline:
                raise stops.sweep_timed_out(timeout or 0.0, self._going(), self.results(), self._cut_short())
            self.watcher.wait_for(self._moved, deadline)

    def _launch(self, slot: _Slot) -> None:
        self.launching = slot  # an interrupt leaves it set: the message then names its token
        try:
            slot.handle = self.watcher.launch(
                self.client, slot.spec, source="sweep", notify=False, info=self.info
            )
        except DatabricksError as exc:
            slot.error = exc
            log.debug("sweep run %d could not be launched: %s", slot.index, exc)
        self.launching = None
        if slot.handle is not None and self.on_handle is not None:
            self.on_handle(slot.handle)

    def _going(self) -> list[int]:
        """The runs launched and not ended (a run whose watching stopped goes on too)."""
        return [s.handle.run_id for s in self.slots if s.handle is not None and not s.handle.done]

    def _cut_short(self) -> str:
        """The launches that may have started a run without its id coming back, with their tokens."""
        cut = [s for s in self.slots if s.error is not None and s.error.follow_up == MAY_HAVE_STARTED]
        if not cut:
            return ""
        tokens = ", ".join(s.spec.idempotency_token for s in cut[:10])
        return (
            f" {len(cut)} launch{'es' if len(cut) != 1 else ''} may have started a run whose id never came "
            f"back (tokens {tokens}{', ...' if len(cut) > 10 else ''}): launching the sweep again with the same "
            "idempotency token base finds them."
        )

    def interrupted(self, cancel: bool) -> RunInterrupted:
        going = [s.handle for s in self._active() if s.handle]
        cancelled: list[int] | None = [] if cancel else None
        if cancelled is not None:
            for handle in going:
                try:
                    self.client.cancel_run(handle.run_id)
                    cancelled.append(handle.run_id)
                except (DatabricksError, KeyboardInterrupt):
                    pass
        cut = ""
        if self.launching is not None:
            cut = (
                f" The launch of run {self.launching.index} was cut short: launching the sweep again with the same "
                f"idempotency token base finds it (token {self.launching.spec.idempotency_token})."
            )
        return stops.sweep_interrupted(
            [h.run_id for h in going],
            cancelled,
            self.results(),
            cut + self._cut_short(),
            self.launching.spec.idempotency_token if self.launching else None,
        )
