"""The watch: a run as an object that holds its own state and can be polled by whoever holds it.

:class:`WatchedRun` is pollRun made correct: every state that is not final keeps it going (QUEUED,
BLOCKED, WAITING_FOR_RETRY and states the API adds later included); SKIPPED and INTERNAL_ERROR end it
as failures; polls are paced by :class:`~dbx_magic.run.polling.PollPolicy` (``Retry-After`` wins);
once finished, each task's output is fetched. One ``poll()`` is one step, so a loop (``wait``), a
sweep or a background watcher can drive it; it is safe to use from several threads.

``run_job_and_wait`` is :func:`~dbx_magic.run.launch.launch` followed by ``WatchedRun.wait``.
Progress flows out through ``on_update``, called with the current ``RunResult`` on every poll, the
last one included. No UI is imported here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from ..api.client import DatabricksClient
from ..clock import Clock, as_clock
from ..errors import (
    CANCEL_FAILED,
    GOES_ON,
    DatabricksError,
    ResourceDoesNotExist,
    RunInterrupted,
    WaitTimeout,
)
from .checks import check_timeout, positive_id
from .journal import journal_of
from .launch import Launch, Notice, adopt_or_launch
from .models import RunResult, TaskResult, is_finished
from .polling import History, PollPolicy, history_from_runs

__all__ = ["OnUpdate", "WatchedRun", "fetch_outputs", "run_job_and_wait", "wait_for_run"]

log = logging.getLogger(__name__)

OnUpdate = Callable[[RunResult], Any]
_CANCEL_GRACE = 30.0  # after a cancel on interrupt, poll this long for the run to show it ended


class WatchedRun:
    """A run being watched: its last known state, the job's history, and when to poll next.

    Args:
        client: The workspace client.
        run_id: The run to watch.
        launched: What the launch returned, when this session launched the run (its first poll then
            also reads the job's history, in the same request).
        policy: When to poll next (default: ``PollPolicy()``).
        clock: The clock it waits on (default: the client's).
        on_update: Called with the current RunResult after every poll, the last one included.
        include_history: Poll with ``include_history`` so the result carries the run's repairs
            (a repair's watch does).
    """

    def __init__(
        self,
        client: DatabricksClient,
        run_id: int,
        *,
        launched: RunResult | None = None,
        policy: PollPolicy | None = None,
        clock: Clock | None = None,
        on_update: OnUpdate | None = None,
        include_history: bool = False,
    ) -> None:
        self.client = client
        self.include_history = include_history
        self.run_id = positive_id(run_id, "run id")
        self.policy = policy or PollPolicy()
        self.clock = clock or client.clock
        self.on_update = on_update
        self._lock = threading.RLock()
        self._polling = threading.Lock()
        self._wake = threading.Event()
        self._launched = launched is not None
        self._result = launched or RunResult(job_id=None, run_id=self.run_id)
        self._history: History | None = None
        self._history_asked = False
        self._polls = 0
        self._began = self.clock.monotonic()
        self._age = 0.0  # how long the run had been going when the watching began (re-attaching)
        self._seen: tuple[str | None, float] = (None, self._began)  # the state last seen, and since when
        self._retry_after: float | None = None
        self._queued = 0.0
        self._setup: float | None = None  # seconds from leaving the queue to RUNNING, once seen
        self.journal = journal_of(client)
        if self.journal is not None and launched is None:  # waited on, adopted or repaired: journaled too
            self.journal.watching(client.host, self.run_id)

    def __repr__(self) -> str:
        state = self.result.result_state or self.result.life_cycle_state or "starting"
        return f"WatchedRun(run_id={self.run_id}, {state})"

    # -- what it knows ---------------------------------------------------------------------------
    @property
    def result(self) -> RunResult:
        """The run as last seen."""
        with self._lock:
            return self._result

    @property
    def done(self) -> bool:
        """True once the run is finished (and its outputs fetched)."""
        return self.result.finished

    @property
    def history(self) -> History | None:
        """What the job's recent runs say about this one's duration (None until known)."""
        with self._lock:
            return self._history

    @property
    def job_id(self) -> int | None:
        return self.result.job_id

    # -- one step --------------------------------------------------------------------------------
    def poll(self, run: Mapping[str, Any] | None = None) -> RunResult:
        """Poll once (or take ``run``, a ``runs/get``-shaped answer someone else fetched) and return
        the run as now seen; when it is finished, its tasks' outputs are fetched too.

        Raises:
            DatabricksError: the poll failed for good; the error names the run, which goes on.
        """
        # One poll at a time; the requests go out without the state lock, so whoever reads the run's
        # state meanwhile (a display, the notebook's main thread) never waits for them.
        with self._polling:
            with self._lock:
                if self._result.finished:
                    return self._result
            if run is None or is_finished(run):  # a finished run needs its tasks, as runs/get gives them
                run = self._fetch()
            with self._lock:
                before = self._result
                job_for_history = self._absorb(run)
                merged = self._result
                if merged.finished:
                    self._result = before  # not done until its outputs are in
            if job_for_history is not None:
                history = _history(self.client, job_for_history, self.run_id)
                with self._lock:
                    self._set_history(history)
            result = merged
            if merged.finished:
                result = fetch_outputs(self.client, merged)
                with self._lock:
                    self._result = result
                if self.journal is not None:
                    self.journal.ended(self.client.host, result)
            else:
                result = self.result
        _notify(self.on_update, result)
        return result

    def _fetch(self) -> Mapping[str, Any]:
        result = self.result
        try:
            if self._polls == 0 and self._launched and result.job_id and not self._history_asked:
                self._history_asked = True
                run, history = _first_look(self.client, result.job_id, self.run_id)
                with self._lock:
                    self._set_history(history)
                return run
            if self.include_history:
                return self.client.get_run(self.run_id, include_history=True)
            return self.client.get_run(self.run_id)
        except ResourceDoesNotExist:
            raise
        except DatabricksError as exc:
            raise exc.about_run(self.run_id, result) from None

    def _absorb(self, run: Mapping[str, Any]) -> int | None:
        """Take in one answer (under the lock); return the job whose history is still to be read."""
        now = self.clock.monotonic()
        self._polls += 1
        self._retry_after = getattr(run, "retry_after", None)
        if _has_state(run):
            self._result = _merge(self._result, run)
            self._queued = _seconds(run.get("queue_duration"))
        else:
            log.debug("run %s: answer without state, polling again", self.run_id)
        result = self._result
        if self._polls == 1 and not self._launched and result.start_time:
            self._age = max(0.0, self.clock.wall() - result.start_time / 1000 - (now - self._began))
        if result.life_cycle_state != self._seen[0]:
            self._seen = (result.life_cycle_state, now)
            if result.life_cycle_state == "RUNNING" and self._setup is None:
                reported = _seconds(run.get("setup_duration"))
                self._setup = reported or max(0.0, now - self._began + self._age - self._queued)
        if not self._history_asked and result.job_id:
            self._history_asked = True
            return result.job_id  # the caller reads its history, without the lock
        return None

    def share_history(self, history: History | None) -> None:
        """Use a history someone else read (a sweep reads its job's once for all its runs)."""
        with self._lock:
            self._history_asked = True
            self._set_history(history)

    def _set_history(self, history: History | None) -> None:
        self._history = history
        if history is not None:
            self._result = replace(self._result, expected_duration=history.median, history=history)

    def next_delay(self) -> float:
        """Seconds until the next poll is due, by the policy (``Retry-After`` wins)."""
        with self._lock:
            now = self.clock.monotonic()
            return self.policy.next_delay(
                elapsed=now - self._began + self._age,
                polls=self._polls,
                life_cycle_state=self._result.life_cycle_state,
                history=self._history,
                queued=self._queued,
                state_elapsed=now - self._seen[1],
                retry_after=self._retry_after,
                setup=self._setup,
            )

    def wake(self) -> None:
        """Cut the current wait short: the next poll comes now (after a cancel, say)."""
        self._wake.set()

    def cancel(self) -> None:
        """Ask the workspace to cancel the run (asynchronous), and poll again at once to see it end."""
        self.client.cancel_run(self.run_id)
        self.wake()

    # -- the loop --------------------------------------------------------------------------------
    def wait(self, timeout: float | None = None, *, cancel_on_interrupt: bool = False) -> RunResult:
        """Poll until the run is finished and return it.

        Args:
            timeout: Seconds to wait (0 polls once); None waits as long as the run lasts. A timeout
                stops the waiting, not the run.
            cancel_on_interrupt: On a kernel interrupt, also cancel the run.

        Raises:
            WaitTimeout: the timeout passed; ``error.result`` holds the run as last seen.
            DatabricksError: a poll failed for good; the error names the run.
            RunInterrupted: the kernel was interrupted.
        """
        deadline = None if timeout is None else self.clock.monotonic() + max(0.0, timeout)
        # The client's retries and its rate limiter stop at the same moment (on the client's clock).
        bound = None if timeout is None else self.client.clock.monotonic() + max(0.0, timeout)
        interrupted = False
        try:
            with self.client.until(bound):
                return self._loop(timeout, deadline)
        except KeyboardInterrupt:
            interrupted = True
        assert interrupted  # raised here, not in the except block: nothing of the request is chained
        raise self._interrupted(cancel_on_interrupt)

    def _loop(self, timeout: float | None, deadline: float | None) -> RunResult:
        while True:
            result = self.poll()
            if result.finished:
                return result
            now = self.clock.monotonic()
            if deadline is not None and now >= deadline:
                raise WaitTimeout(
                    f"Stopped waiting for run {self.run_id} after {timeout:.3g} s; it is still "
                    f"{result.life_cycle_state or 'starting'}.",
                    run_id=self.run_id,
                    result=result,
                    follow_up=GOES_ON,
                )
            delay = self.next_delay()
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - now))
            if self.clock.wait(self._wake, delay):
                self._wake.clear()

    def _interrupted(self, cancel: bool) -> RunInterrupted:
        result = self.result
        state = result.life_cycle_state or "starting"
        if not cancel:
            return RunInterrupted(
                f"Stopped waiting for run {self.run_id} ({state}).",
                run_id=self.run_id,
                result=result,
                follow_up=GOES_ON,
            )
        return cancelled_on_interrupt(self.run_id, result, self._cancel_and_see)

    def _cancel_and_see(self) -> RunResult:
        self.client.cancel_run(self.run_id)
        return self._await_end()

    def _await_end(self) -> RunResult:
        """After a cancel, poll briefly so the result shows the run ended (shown to on_update too)."""
        deadline = self.clock.monotonic() + _CANCEL_GRACE
        while True:
            result = self.poll()
            if result.finished or self.clock.monotonic() >= deadline:
                return result
            self.clock.sleep(0.5)


def cancelled_on_interrupt(run_id: int, last: RunResult, cancel: Callable[[], RunResult]) -> RunInterrupted:
    """The error for a wait interrupted with cancel-on-interrupt: ``cancel()`` cancels the run and
    returns it once seen to end; when that fails, the error says so (the run goes on)."""
    try:
        result = cancel()
    except (DatabricksError, KeyboardInterrupt) as exc:
        return RunInterrupted(
            f"Stopped waiting for run {run_id}, but cancelling it failed ({exc}).",
            run_id=run_id,
            result=last,
            follow_up=CANCEL_FAILED,
        )
    return RunInterrupted(
        f"Cancelled run {run_id} on interrupt; it is now {result.result_state or result.life_cycle_state}.",
        run_id=run_id,
        result=result,
        cancelled=True,
    )


def wait_for_run(
    client: DatabricksClient,
    run_id: int,
    *,
    timeout: float | None = None,
    on_update: OnUpdate | None = None,
    launched: RunResult | None = None,
    cancel_on_interrupt: bool = False,
    policy: PollPolicy | None = None,
    clock: Clock | Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> RunResult:
    """pollRun: watch a run until it is finished, then fetch each task's output.

    Use it to re-attach to a run started earlier. Arguments as for ``run_job_and_wait``;
    ``launched`` is what ``start_run`` returned, when known.
    """
    watched = WatchedRun(
        client,
        run_id,
        launched=launched,
        policy=policy,
        clock=_clock(client, clock, sleep),
        on_update=on_update,
    )
    return watched.wait(check_timeout(timeout), cancel_on_interrupt=cancel_on_interrupt)


def run_job_and_wait(
    client: DatabricksClient,
    job: int | str,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    idempotency_token: str | None = None,
    timeout: float | None = None,
    on_update: OnUpdate | None = None,
    *,
    cancel_on_interrupt: bool = False,
    policy: PollPolicy | None = None,
    clock: Clock | Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    only: str | Iterable[str] | None = None,
    if_running: str | None = None,
    on_notice: Notice | None = None,
    allow_unknown_params: bool = False,
) -> RunResult:
    """Run an existing job and wait for it: the seed workflow, made correct.

    Args:
        client: The workspace client.
        job: A job id, or the job's exact name (looked up with ``jobs/list``).
        notebook_params: ``{name: value}``; numbers become strings, bools ``"true"``/``"false"``.
            Sent as ``job_parameters`` when the job defines job-level parameters.
        job_parameters: The same, for jobs with job-level parameters (give one or the other).
        idempotency_token: At most 64 characters; None makes a fresh one, so a retried launch
            never starts a second run.
        timeout: Seconds to wait; None waits as long as the run lasts. A timeout stops the
            waiting, not the run (nor the launch: a run it started is always reported).
        on_update: Called with the current RunResult on every poll, the last one included.
        cancel_on_interrupt: On a kernel interrupt, also cancel the run.
        policy: When to poll next (default: history-aware ``PollPolicy()``).
        clock: The clock to wait on (a :class:`~dbx_magic.clock.Clock` or a monotonic function;
            default: the client's).
        sleep: Waits between polls, with a plain ``clock`` function.
        only: Task keys to run (a list or ``"a,b"``; ``+key`` adds its upstream tasks, ``key+``
            its downstream ones); checked against the job's tasks before anything is launched.
        if_running: When the job has a run going: ``"new"`` (default) starts another, ``"wait"``
            watches that run instead, ``"cancel"`` cancels it and then launches.
        on_notice: Called with one sentence when ``if_running`` did something (default: a
            logged warning).
        allow_unknown_params: Send names the job does not declare (and values outside a dropdown's
            choices) as given; otherwise they are refused before the launch.

    Returns:
        The finished run; check ``result.ok`` or call ``result.raise_for_state()``.

    Raises:
        InvalidInput: bad input (nothing was sent when it could be judged locally).
        WaitTimeout: the timeout passed; ``error.result`` holds the run as last seen.
        DatabricksError: any other failure; once the run exists, the message names it.
        RunInterrupted: the kernel was interrupted (a ``KeyboardInterrupt``).
    """
    spec = Launch.check(
        job,
        notebook_params,
        job_parameters,
        idempotency_token,
        timeout,
        only=only,
        if_running=if_running,
        allow_unknown_params=allow_unknown_params,
    )
    return run_launch(
        client,
        spec,
        on_update=on_update,
        cancel_on_interrupt=cancel_on_interrupt,
        policy=policy,
        clock=_clock(client, clock, sleep),
        on_notice=on_notice,
    )


def run_launch(
    client: DatabricksClient,
    spec: Launch,
    *,
    on_update: OnUpdate | None = None,
    cancel_on_interrupt: bool = False,
    policy: PollPolicy | None = None,
    clock: Clock | None = None,
    on_watch: Callable[[WatchedRun], Any] | None = None,
    on_notice: Notice | None = None,
) -> RunResult:
    """Launch a checked :class:`Launch` and wait for its run (what every face that waits calls).

    ``on_watch`` is given the :class:`WatchedRun` as soon as the run exists (to cancel it, say);
    ``on_notice`` hears what ``spec.if_running`` did. A run already going that is watched instead
    (``if_running="wait"``) is watched as a re-attach.
    """
    clock = clock or client.clock
    started = clock.monotonic()
    bound = None if spec.timeout is None else client.clock.monotonic() + spec.timeout
    launched: RunResult | None = None
    try:
        with client.until(bound):  # a timeout bounds the launch's retries too, not only the polls
            launched, adopted = adopt_or_launch(client, spec, on_notice=on_notice)
        watched = WatchedRun(
            client,
            launched.run_id,
            launched=None if adopted else launched,
            policy=policy,
            clock=clock,
            on_update=on_update,
        )
        remaining = None if spec.timeout is None else max(0.0, spec.timeout - (clock.monotonic() - started))
        if on_watch is not None:
            on_watch(watched)
    except KeyboardInterrupt as exc:
        if launched is None or isinstance(exc, RunInterrupted):
            raise
        raise RunInterrupted(
            f"Stopped waiting for run {launched.run_id} (just launched).",
            run_id=launched.run_id,
            result=launched,
            follow_up=GOES_ON,
        ) from None
    return watched.wait(remaining, cancel_on_interrupt=cancel_on_interrupt)


def _clock(
    client: DatabricksClient, clock: Clock | Callable[[], float] | None, sleep: Callable[[float], Any] | None
) -> Clock:
    if clock is None and sleep is None:
        return client.clock
    if clock is None:
        return Clock(
            client.clock.monotonic, client.clock.sleep if sleep is None else sleep, client.clock.wall
        )
    return as_clock(clock, sleep)


def _seconds(milliseconds: Any) -> float:
    """A duration the API gives in milliseconds, in seconds (0 when absent or not a number)."""
    try:
        return max(0.0, float(milliseconds) / 1000) if milliseconds else 0.0
    except (TypeError, ValueError):
        return 0.0


def _has_state(run: Mapping[str, Any]) -> bool:
    return isinstance(run.get("state"), dict) or isinstance(run.get("status"), dict)


def _merge(previous: RunResult, run: Mapping[str, Any]) -> RunResult:
    fresh = RunResult.from_api(
        dict(run),
        job_name=previous.job_name,
        run_id=previous.run_id,
        job_id=previous.job_id,
        idempotency_token=previous.idempotency_token,
        expected_duration=previous.expected_duration,
    )
    keep: dict[str, Any] = {
        "parameters": previous.parameters,
        "history": previous.history,
        "client": previous.client,
        "exports": previous.exports,
        # the launch's warnings (parameters not declared) stay with the run
        "warnings": tuple(dict.fromkeys(previous.warnings + fresh.warnings)),
    }
    if previous.repairs and not fresh.repairs:  # a runs/list page carries no repair history
        keep["repairs"] = previous.repairs
    if previous.number_in_job and not fresh.number_in_job:
        keep["number_in_job"] = previous.number_in_job
    return replace(fresh, **keep)


def _first_look(
    client: DatabricksClient, job_id: int, run_id: int
) -> tuple[Mapping[str, Any], History | None]:
    """The first poll and the job's history in one request.

    A just-launched run is among the newest of its job, so one ``runs/list`` page holds both its
    state and the durations of the job's recent runs. When it is not there (another sort order, a
    busy job) or the list fails, one ``runs/get`` does the poll instead.
    """
    try:
        page = client.list_runs(job_id, limit=25)
    except DatabricksError as exc:  # history only sharpens the estimate; never fail for it
        log.debug("no history for job %s: %s", job_id, exc)
        return client.get_run(run_id), None
    runs = [r for r in page.get("runs") or () if isinstance(r, dict)]
    mine: Mapping[str, Any] | None = next(
        (r for r in runs if str(r.get("run_id")) == str(run_id) and _has_state(r)), None
    )
    if mine is None or is_finished(mine):  # a finished run needs its tasks, which list pages leave out
        mine = client.get_run(run_id)
    return mine, history_from_runs(runs, run_id=run_id)


def _history(client: DatabricksClient, job_id: int, run_id: int) -> History | None:
    try:
        page = client.list_runs(job_id, completed_only=True, limit=25)
    except DatabricksError as exc:  # history only sharpens the estimate; never fail for it
        log.debug("no history for job %s: %s", job_id, exc)
        return None
    return history_from_runs([r for r in page.get("runs") or () if isinstance(r, dict)], run_id=run_id)


def _notify(on_update: OnUpdate | None, result: RunResult) -> None:
    if on_update is None:
        return
    try:
        on_update(result)
    except Exception:  # a broken display must not lose the run
        log.warning("on_update raised while showing run %s", result.run_id, exc_info=True)


def fetch_outputs(client: DatabricksClient, result: RunResult) -> RunResult:
    """Fetch each task's exit value or error (get-output takes task run ids, not the job's).

    A task whose output cannot be fetched keeps its state, with a warning on the result.
    """
    warnings = list(result.warnings)
    tasks: list[TaskResult] = []
    for task in result.tasks:
        if task.run_id is None:
            tasks.append(task)
            continue
        try:
            tasks.append(task.with_output(client.get_run_output(task.run_id)))
        except DatabricksError as exc:
            warnings.append(f"The output of task {task.key!r} could not be fetched: {exc}")
            tasks.append(task)
    return replace(result, tasks=tuple(tasks), warnings=tuple(warnings), client=result.client or client)
