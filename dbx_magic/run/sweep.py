"""Parameter sweeps: launch many runs of one job and watch them all, with few requests.

``run_many`` launches one run per parameter set (each with its own idempotency token), keeps no
more in flight than the job allows, and watches each as a :class:`~dbx_magic.run.watch.WatchedRun`,
polled in batches: one ``runs/list?active_only=true`` page covers up to 25 active runs, so a poll
cycle costs about N/25 requests instead of N. A run that leaves the active list gets one
``runs/get`` (and its tasks' outputs) to settle its result. The cycles are paced by the same policy
as a single run (the soonest any run is due; ``Retry-After`` wins). A failed run never stops the
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
from ..errors import MANY_GO_ON, MAY_HAVE_STARTED, DatabricksError, InvalidInput, RunInterrupted, WaitTimeout
from .checks import MAX_IDEMPOTENCY_TOKEN, digits
from .launch import JobInfo, Launch, check_declared, job_info, launch
from .models import RunResult
from .polling import History, PollPolicy, history_from_runs
from .watch import WatchedRun, _clock

__all__ = ["SweepFailed", "active_runs", "job_history", "run_many"]

log = logging.getLogger(__name__)

PAGE = 25  # runs/list's page size limit ("less than 25" per the docs; 25 is accepted and 0 means it)
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
    watched: WatchedRun | None = None
    error: DatabricksError | None = None

    @property
    def result(self) -> RunResult | None:
        return None if self.watched is None else self.watched.result

    @property
    def active(self) -> bool:
        return self.watched is not None and not self.watched.done


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
            f"params must be a list of dicts, one per run, not a {type(params).__name__}: e.g. [{{'date': '2026-11-01'}}, ...]."
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
            f"The idempotency token base {base.idempotency_token!r} is too long for {len(params)} runs: keep it "
            f"under {MAX_IDEMPOTENCY_TOKEN - 6} characters."
        )
    specs = []
    for i, p in enumerate(params):
        Launch.check(job, p)  # each set judged on its own, so the message names the run
        specs.append(base.with_params(p, f"{base.idempotency_token}-{i}"))
    return specs


def _check_sets(client: DatabricksClient, info: JobInfo, specs: list[Launch]) -> None:
    """Judge every set against the job's declarations (read once) before the first launch."""
    for i, spec in enumerate(specs):
        try:
            check_declared(client, info, spec)
        except InvalidInput as exc:
            raise InvalidInput(f"Parameter set #{i}: {exc.message}") from None


def run_many(
    client: DatabricksClient,
    job: int | str,
    params: Sequence[Mapping[str, Any]],
    max_parallel: int | None = None,
    *,
    idempotency_token: str | None = None,
    timeout: float | None = None,
    on_update: OnSweepUpdate | None = None,
    cancel_on_interrupt: bool = False,
    policy: PollPolicy | None = None,
    clock: Clock | Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    allow_unknown_params: bool = False,
    on_watch: Callable[[WatchedRun], Any] | None = None,
    performance_target: str | None = None,
) -> list[RunResult]:
    """Run one job once per parameter set and wait for all of them.

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
        clock: The clock to wait on (default: the client's).
        sleep: Waits between poll cycles, with a plain ``clock`` function.
        allow_unknown_params: Send names the job does not declare as given (otherwise every set is
            checked against the job's declarations before the first run is launched).
        on_watch: Given each run's :class:`~dbx_magic.run.watch.WatchedRun` as soon as it is launched
            (a notebook lists them on its board).
        performance_target: As for ``run_job_and_wait``, for every run.

    Returns:
        One RunResult per parameter set, in input order; check each ``ok``.

    Raises:
        InvalidInput: bad input (all parameter sets are checked before anything is launched).
        SweepFailed: a launch failed for good, or the polling did (``results`` has every run).
        WaitTimeout, RunInterrupted: with ``results`` holding every run as last seen.
    """
    _check_parallel(max_parallel)
    specs = _specs(job, params, idempotency_token, timeout, allow_unknown_params, performance_target)
    if not specs:
        return []
    info = job_info(client, specs[0].job)
    _check_sets(client, info, specs)
    sweep = _Sweep(
        client, info, specs, _limit(info, max_parallel), _clock(client, clock, sleep), policy, on_update
    )
    sweep.on_watch = on_watch
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


def active_runs(client: DatabricksClient, job_id: int) -> tuple[dict[int, dict[str, Any]], float | None]:
    """Every active run of a job, by run id (one ``runs/list`` page per 25), and the last page's
    ``Retry-After``: how a sweep and the background watcher poll many runs of one job at once."""
    seen: dict[int, dict[str, Any]] = {}
    page_token: str | None = None
    while True:
        page = client.list_runs(job_id, active_only=True, limit=PAGE, page_token=page_token)
        for run in page.get("runs") or ():
            if isinstance(run, dict) and digits(str(run.get("run_id", ""))):
                seen[int(run["run_id"])] = run
        page_token = page.get("next_page_token")
        if not page_token or not page.get("runs"):
            return seen, page.retry_after


def job_history(client: DatabricksClient, job_id: int) -> History | None:
    """What a job's last 25 finished runs say about its durations (None when they cannot be read:
    history only sharpens the pacing, so it never fails a watch)."""
    try:
        page = client.list_runs(job_id, completed_only=True, limit=PAGE)
    except DatabricksError as exc:
        log.debug("no history for job %s: %s", job_id, exc)
        return None
    return history_from_runs([r for r in page.get("runs") or () if isinstance(r, dict)])


class _Sweep:
    def __init__(
        self,
        client: DatabricksClient,
        info: JobInfo,
        specs: list[Launch],
        limit: int | None,
        clock: Clock,
        policy: PollPolicy | None,
        on_update: OnSweepUpdate | None,
    ) -> None:
        self.client, self.info, self.limit, self.clock = client, info, limit, clock
        self.policy, self.on_update = policy, on_update
        self.slots = [_Slot(i, spec) for i, spec in enumerate(specs)]
        self.launching: _Slot | None = None
        self.history_read = False
        self.retry_after: float | None = None
        self.on_watch: Callable[[WatchedRun], Any] | None = None

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

    def run(self, timeout: float | None) -> None:
        deadline = None if timeout is None else self.clock.monotonic() + timeout
        waiting = list(self.slots)
        while True:
            while waiting and (self.limit is None or len(self._active()) < self.limit):
                if deadline is not None and self.clock.monotonic() >= deadline:
                    break  # the timeout bounds the waiting: no run is launched after it
                self._launch(waiting.pop(0))
            self._notify()
            active = self._active()
            if not waiting and not active:
                return
            now = self.clock.monotonic()
            if deadline is not None and now >= deadline:
                raise self._timed_out(timeout or 0.0)
            delay = min((s.watched.next_delay() for s in active if s.watched), default=1.0)
            delay = max(delay, self.retry_after or 0.0)  # Retry-After wins
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - now))
            self.clock.sleep(delay)
            try:
                self._poll()
            except DatabricksError as exc:
                raise self._poll_failed(exc) from None

    def _launch(self, slot: _Slot) -> None:
        self.launching = slot  # an interrupt leaves it set: the message then names its token
        try:
            launched = launch(self.client, slot.spec, self.info)
        except DatabricksError as exc:
            slot.error = exc
            log.debug("sweep run %d could not be launched: %s", slot.index, exc)
            launched = None
        self.launching = None
        if launched is None:
            return
        slot.watched = WatchedRun(
            self.client, launched.run_id, launched=launched, policy=self.policy, clock=self.clock
        )
        if self.on_watch is not None:
            self.on_watch(slot.watched)

    def _poll(self) -> None:
        """One cycle: page through the job's active runs, settle the ones that left the list."""
        seen, self.retry_after = active_runs(self.client, self.info.job_id)
        if not self.history_read:
            self.history_read = True
            history = job_history(self.client, self.info.job_id)
            for slot in self.slots:
                if slot.watched is not None:
                    slot.watched.share_history(history)
        for slot in self._active():
            assert slot.watched is not None
            slot.watched.poll(seen.get(slot.watched.run_id))  # absent from the list: one runs/get

    def _going(self, verb: str = "") -> str:
        """ "N runs (ids)", and the verb agreeing with N: "2 runs (7, 8) go on", "1 run (7) goes on"."""
        ids = [str(s.watched.run_id) for s in self._active() if s.watched]
        text = f"{len(ids)} run{'s' if len(ids) != 1 else ''} ({', '.join(ids) or 'none'})"
        if verb:  # "go" -> "goes" for one run
            text += f" {verb}{'es' if len(ids) == 1 else ''}"
        return text

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

    def _timed_out(self, timeout: float) -> WaitTimeout:
        return WaitTimeout(
            f"Stopped waiting for the sweep after {timeout:g} s with {self._going()} still going in the "
            f"workspace.{self._cut_short()}",
            results=self.results(),
            follow_up=MANY_GO_ON,
        )

    def _poll_failed(self, exc: DatabricksError) -> SweepFailed:
        return SweepFailed(
            f"Watching the sweep failed ({exc.message.rstrip('.')}); {self._going('go')} on in the "
            f"workspace.{self._cut_short()}",
            self.results(),
            follow_up=MANY_GO_ON,
            status_code=exc.status_code,
            error_code=exc.error_code,
        )

    def interrupted(self, cancel: bool) -> RunInterrupted:
        going = [s.watched for s in self._active() if s.watched]
        cancelled = []
        if cancel:
            for watched in going:
                try:
                    self.client.cancel_run(watched.run_id)
                    cancelled.append(watched.run_id)
                except (DatabricksError, KeyboardInterrupt):
                    pass
        ids = ", ".join(str(w.run_id) for w in going)
        count = f"{len(going)} run{'s' if len(going) != 1 else ''}"
        what = (
            f"cancelled {len(cancelled)} of {count} still going ({ids})"
            if cancel
            else f"{count} {'goes' if len(going) == 1 else 'go'} on in the workspace ({ids})"
        )
        cut = ""
        if self.launching is not None:
            cut = (
                f" The launch of run {self.launching.index} was cut short: launching the sweep again with the same "
                f"idempotency token base finds it (token {self.launching.spec.idempotency_token})."
            )
        return RunInterrupted(
            f"Stopped waiting for the sweep; {what}.{cut}{self._cut_short()}",
            cancelled=bool(cancel),
            follow_up=None if cancel else MANY_GO_ON,
            results=self.results(),
            idempotency_token=self.launching.spec.idempotency_token if self.launching else None,
        )
