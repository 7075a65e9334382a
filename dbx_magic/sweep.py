"""Parameter sweeps: launch many runs of one job and watch them all, with few requests.

``run_many`` launches one run per parameter set (each with its own idempotency token), keeps no
more in flight than the job allows, and polls them in batches: one ``runs/list?active_only=true``
page covers up to 25 active runs, so a poll cycle costs about N/25 requests instead of N. A run that
leaves the active list gets one ``runs/get`` (and its tasks' outputs) to settle its result. A failed
run never stops the others; results come back in input order.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .client import MAX_IDEMPOTENCY_TOKEN, DatabricksClient
from .errors import DatabricksError, InvalidInput, RunInterrupted, WaitTimeout
from .models import RunResult, is_finished
from .params import normalise_params
from .workflow import JobInfo, check_timeout, fetch_outputs, launch_run, resolve_job

__all__ = ["SweepFailed", "run_many"]

log = logging.getLogger("dbx_magic.sweep")

CYCLE_MIN, CYCLE_MAX, CYCLE_SHARE = 1.0, 15.0, 0.1
PAGE = 25  # runs/list's page size limit ("less than 25" per the docs; 25 is accepted and 0 means it)
OnSweepUpdate = Callable[[list[RunResult | None]], Any]


class SweepFailed(DatabricksError):
    """Some runs of a sweep did not succeed (or could not be launched); ``results`` holds them all."""

    def __init__(self, message: str, results: Sequence[RunResult | None]) -> None:
        super().__init__(message, results=list(results))


@dataclass
class _Slot:
    index: int
    params: dict[str, str]
    token: str
    result: RunResult | None = None
    error: DatabricksError | None = None
    done: bool = False


def _limit(info: JobInfo, max_parallel: int | None, settings: Mapping[str, Any]) -> int | None:
    if max_parallel is not None:
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) or max_parallel < 1:
            raise InvalidInput(
                f"max_parallel={max_parallel!r} is not a positive integer: pass e.g. 5, or None."
            )
        return max_parallel
    queue = settings.get("queue") or {}
    allowed = info.max_concurrent_runs if isinstance(info.max_concurrent_runs, int) else 1
    if allowed <= 0:
        raise InvalidInput(
            f"Job {info.job_id} allows 0 concurrent runs (every run would be skipped): raise its "
            "max_concurrent_runs in the job's settings."
        )
    # With queueing on, the workspace holds extra runs in its queue (shown QUEUED); without it,
    # a run over the limit would be SKIPPED, so we hold it back ourselves.
    return None if queue.get("enabled") else allowed


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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> list[RunResult]:
    """Run one job once per parameter set and wait for all of them.

    Args:
        client: The workspace client.
        job: A job id or name.
        params: One mapping per run (values are turned into strings as for ``run_job_and_wait``).
        max_parallel: At most this many runs in flight. None: as the job allows (its
            ``max_concurrent_runs``; with queueing on, all are launched and the workspace queues them).
        idempotency_token: A base for the runs' tokens (run i gets ``<base>-<i>``); the same base
            finds the same runs again instead of starting new ones. None makes a fresh one.
        timeout: Seconds to wait for the whole sweep; the runs go on after it.
        on_update: Called with the list of results (None for runs not launched yet) every cycle.
        cancel_on_interrupt: On a kernel interrupt, also cancel the runs still going.
        clock: Monotonic clock in seconds.
        sleep: Waits between poll cycles.

    Returns:
        One RunResult per parameter set, in input order; check each ``ok``.

    Raises:
        InvalidInput: bad input (all parameter sets are checked before anything is launched).
        SweepFailed: a launch failed for good (the others still ran; ``results`` has them all).
        WaitTimeout, RunInterrupted: with ``results`` holding every run as last seen.
    """
    if isinstance(params, Mapping) or not isinstance(params, Sequence):
        raise InvalidInput(
            f"params must be a list of dicts, one per run, not a {type(params).__name__}: e.g. [{{'date': '2026-11-01'}}, ...]."
        )
    checked = [normalise_params(p, f"parameter (run {i})") for i, p in enumerate(params)]
    base = idempotency_token or f"dbx-sweep-{uuid.uuid4().hex[:16]}"
    if len(f"{base}-{len(checked)}") > MAX_IDEMPOTENCY_TOKEN:
        raise InvalidInput(
            f"The idempotency token base {base!r} is too long for {len(checked)} runs: keep it under {MAX_IDEMPOTENCY_TOKEN - 6} characters."
        )
    check_timeout(timeout)
    if not checked:
        return []
    job_id = resolve_job(client, job)
    payload = client.get_job(job_id)
    info = JobInfo(job_id, payload)
    limit = _limit(info, max_parallel, payload.get("settings") or {})
    slots = [_Slot(i, p, f"{base}-{i}") for i, p in enumerate(checked)]
    sweep = _Sweep(client, job_id, info, slots, limit, clock, sleep, on_update)
    try:
        sweep.run(timeout)
    except KeyboardInterrupt:
        raise sweep.interrupted(cancel_on_interrupt) from None
    failed_launches = [s for s in slots if s.error is not None]
    results = sweep.results()
    if failed_launches:
        first = failed_launches[0]
        raise SweepFailed(
            f"{len(failed_launches)} of {len(slots)} runs could not be launched (run {first.index}: "
            f"{first.error}); the others ran: their results are in the error's `results`.",
            results,
        )
    return [r for r in results if r is not None]


class _Sweep:
    def __init__(
        self,
        client: DatabricksClient,
        job_id: int,
        info: JobInfo,
        slots: list[_Slot],
        limit: int | None,
        clock: Callable[[], float],
        sleep: Callable[[float], Any],
        on_update: OnSweepUpdate | None,
    ) -> None:
        self.client, self.job_id, self.info, self.slots = client, job_id, info, slots
        self.limit, self.clock, self.sleep, self.on_update = limit, clock, sleep, on_update

    def results(self) -> list[RunResult | None]:
        return [s.result for s in self.slots]

    def _active(self) -> list[_Slot]:
        return [s for s in self.slots if s.result is not None and not s.done]

    def _notify(self) -> None:
        if self.on_update is not None:
            try:
                self.on_update(self.results())
            except Exception:
                log.warning("on_update raised while showing a sweep", exc_info=True)

    def run(self, timeout: float | None) -> None:
        started = self.clock()
        deadline = None if timeout is None else started + timeout
        waiting = list(self.slots)
        while True:
            while waiting and (self.limit is None or len(self._active()) < self.limit):
                self._launch(waiting.pop(0))
            self._notify()
            if not waiting and not self._active():
                return
            if deadline is not None and self.clock() >= deadline:
                going = [s.result.run_id for s in self._active() if s.result]
                raise WaitTimeout(
                    f"Stopped waiting for the sweep after {timeout:g} s with {len(going)} runs still "
                    f"going (runs {', '.join(map(str, going[:10]))}{'...' if len(going) > 10 else ''}); "
                    "they go on in the workspace: `%dbx_wait RUN_ID` re-attaches to one.",
                    results=self.results(),
                )
            # A cycle costs about N/25 requests whatever N is, so poll at a tenth of the time the
            # sweep has taken so far: noticing an end costs at most ~10 % more waiting (1 to 15 s).
            delay = min(CYCLE_MAX, max(CYCLE_MIN, CYCLE_SHARE * (self.clock() - started)))
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - self.clock()))
            self.sleep(delay)
            self._poll()

    def _launch(self, slot: _Slot) -> None:
        try:
            launched = launch_run(self.client, self.info, slot.params, idempotency_token=slot.token)
        except DatabricksError as exc:
            slot.error, slot.done = exc, True
            log.debug("sweep run %d could not be launched: %s", slot.index, exc)
            return
        slot.result = launched

    def _poll(self) -> None:
        """One cycle: page through the job's active runs, settle the ones that left the list."""
        seen: dict[int, dict[str, Any]] = {}
        page_token: str | None = None
        while True:
            page = self.client.list_runs(self.job_id, active_only=True, limit=PAGE, page_token=page_token)
            for run in page.get("runs") or ():
                if isinstance(run, dict) and str(run.get("run_id", "")).isdigit():
                    seen[int(run["run_id"])] = run
            page_token = page.get("next_page_token")
            if not page_token or not page.get("runs"):
                break
        for slot in self._active():
            assert slot.result is not None
            run = seen.get(slot.result.run_id)
            if run is None or is_finished(run):  # it left the active list: settle it with one runs/get
                run = self.client.get_run(slot.result.run_id)
            fresh = RunResult.from_api(
                run,
                job_name=self.info.name,
                run_id=slot.result.run_id,
                job_id=self.job_id,
                idempotency_token=slot.token,
            )
            if fresh.finished:
                fresh = fetch_outputs(self.client, fresh)
                slot.done = True
            slot.result = fresh

    def interrupted(self, cancel: bool) -> RunInterrupted:
        going = [s for s in self._active() if s.result is not None]
        cancelled = []
        if cancel:
            for slot in going:
                try:
                    self.client.cancel_run(slot.result.run_id)  # type: ignore[union-attr]
                    cancelled.append(slot.result.run_id)  # type: ignore[union-attr]
                except (DatabricksError, KeyboardInterrupt):
                    pass
        ids = ", ".join(str(s.result.run_id) for s in going if s.result)
        what = (
            f"cancelled {len(cancelled)} runs still going ({ids})"
            if cancel
            else f"{len(going)} runs go on in the workspace ({ids})"
        )
        return RunInterrupted(
            f"Stopped waiting for the sweep; {what}: `%dbx_wait RUN_ID` re-attaches to one, "
            "`%dbx_cancel RUN_ID` cancels one.",
            cancelled=bool(cancel),
            results=self.results(),
        )
