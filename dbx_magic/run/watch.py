"""A run's state and its poll step: what the watcher holds for each run.

:class:`WatchedRun` is pollRun made correct: every state that is not final keeps it going (QUEUED,
BLOCKED, WAITING_FOR_RETRY and states the API adds later included); SKIPPED and INTERNAL_ERROR end it
as failures; polls are paced by :class:`~dbx_magic.run.polling.PollPolicy` (``Retry-After`` wins);
once finished, each task's output is fetched. One ``poll()`` is one step; nothing here loops or waits:
the :class:`~dbx_magic.run.background.Watcher` decides when to poll, and a
:class:`~dbx_magic.run.background.RunHandle` owns the WatchedRun of its run. No UI is imported here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..api.client import DatabricksClient
from ..clock import Clock
from ..errors import DatabricksError, ResourceDoesNotExist
from .checks import positive_id
from .iterations import with_iterations
from .models import RunResult, TaskResult, is_finished
from .polling import History, PollPolicy

if TYPE_CHECKING:
    from .journal import Journal

__all__ = ["OnUpdate", "WatchedRun", "fetch_outputs"]

log = logging.getLogger(__name__)

OnUpdate = Callable[[RunResult], Any]


class WatchedRun:
    """A run being watched: its last known state, the job's history, and when to poll next.

    Args:
        client: The workspace client.
        run_id: The run to watch.
        launched: What the launch returned (or what was known of the run before its first poll).
        policy: When to poll next (default: ``PollPolicy()``).
        clock: The clock it waits on (default: the client's).
        on_update: Called with the current RunResult after every poll, the last one included.
        include_history: Poll with ``include_history`` so the result carries the run's repairs
            (a repair's watch does).
        earlier: The run as an earlier round left it (a repair's watch): the outputs of the tasks
            the repair does not rerun are taken from it, not read again.
        journal: The run journal its watching and its end are written to (None: none).
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
        earlier: RunResult | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.client = client
        self.earlier = earlier
        self.include_history = include_history
        self.run_id = positive_id(run_id, "run id")
        self.policy = policy or PollPolicy()
        self.clock = clock or client.clock
        self.on_update = on_update
        self._lock = threading.RLock()
        self._polling = threading.Lock()
        self._launched = launched is not None
        self._result = launched or RunResult(job_id=None, run_id=self.run_id)
        self._history: History | None = None
        self._polls = 0
        self._began = self.clock.monotonic()
        self._age = 0.0  # how long the run had been going when the watching began (re-attaching)
        self._seen: tuple[str | None, float] = (None, self._began)  # the state last seen, and since when
        self._retry_after: float | None = None
        self._queued = 0.0
        self._setup: float | None = None  # seconds from leaving the queue to RUNNING, once seen
        self.journal = journal
        if self.journal is not None and (launched is None or include_history):  # waited on, adopted, repaired
            self.journal.watching(client.host, self.run_id, again=include_history)

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

    @property
    def first_poll(self) -> bool:
        """True before the first poll."""
        with self._lock:
            return self._polls == 0

    # -- one step --------------------------------------------------------------------------------
    def poll(self, run: Mapping[str, Any] | None = None) -> RunResult:
        """Poll once (or take ``run``, a ``runs/get``-shaped answer someone else fetched, such as an
        item of a ``runs/list`` page) and return the run as now seen; when it is finished, its tasks'
        outputs are fetched too.

        Raises:
            DatabricksError: the poll failed; the error names the run, which goes on.
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
                self._absorb(run)
                merged = self._result
                if merged.finished:
                    self._result = before  # not done until its outputs are in
            result = merged
            if merged.finished:
                result = fetch_outputs(self.client, merged, known=self.earlier)
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
            return self.client.get_run(self.run_id, self.include_history, include_resolved_values=True)
        except ResourceDoesNotExist:
            raise
        except DatabricksError as exc:
            raise exc.about_run(self.run_id, result) from None

    def _absorb(self, run: Mapping[str, Any]) -> None:
        """Take in one answer (under the lock)."""
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

    def note_trouble(self, text: str) -> None:
        """Say, on the run as last seen, why it was not seen lately (the next good poll clears it)."""
        with self._lock:
            self._result = replace(self._result, trouble=text)
            result = self._result
        _notify(self.on_update, result)

    def share_history(self, history: History | None) -> None:
        """Use the job's history (the watcher reads it once for all the job's runs)."""
        with self._lock:
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
        "defaults": previous.defaults,
        "history": previous.history,
        "client": previous.client,
        "exports": previous.exports,
        # the launch's warnings (parameters not declared) stay with the run
        "warnings": tuple(dict.fromkeys(previous.warnings + fresh.warnings)),
    }
    if "tasks" not in run or run.get("has_more"):  # a runs/list item: no tasks, or the first 100
        keep.update(tasks=_known_tasks(previous.tasks, fresh.tasks), attempts=previous.attempts)
    if previous.repairs and not fresh.repairs:  # a runs/list page carries no repair history
        keep["repairs"] = previous.repairs
    if previous.number_in_job and not fresh.number_in_job:
        keep["number_in_job"] = previous.number_in_job
    return replace(fresh, **keep)


def _known_tasks(before: tuple[TaskResult, ...], seen: tuple[TaskResult, ...]) -> tuple[TaskResult, ...]:
    """The tasks as known, updated by those a partial answer holds (by task key)."""
    if not before:
        return seen
    fresh = {t.key: t for t in seen}
    return tuple(fresh.pop(t.key, t) for t in before) + tuple(fresh.values())


def _notify(on_update: OnUpdate | None, result: RunResult) -> None:
    if on_update is None:
        return
    try:
        on_update(result)
    except Exception:  # a broken display must not lose the run
        log.warning("on_update raised while showing run %s", result.run_id, exc_info=True)


def fetch_outputs(client: DatabricksClient, result: RunResult, known: RunResult | None = None) -> RunResult:
    """Fetch each task's exit value or error (get-output takes task run ids, not the job's).

    The outputs are read a few at a time (each request still takes its turn in the client's rate
    limiter); a task whose output ``known`` (the run as seen before: a repaired run's earlier round)
    already holds is not read again. A task whose output cannot be fetched keeps its state, with a
    warning on the result.
    """
    have = {
        t.run_id: t for t in (known.tasks if known else ()) if t.output is not None or t.error is not None
    }
    todo = list(
        dict.fromkeys(t.run_id for t in result.tasks if t.run_id is not None and t.run_id not in have)
    )
    answers = _read_outputs(client, todo)
    warnings = list(result.warnings)
    tasks: list[TaskResult] = []
    for task in result.tasks:
        answer = answers.get(task.run_id) if task.run_id is not None else None
        if task.run_id in have:
            tasks.append(replace(task, **_output_of(have[task.run_id])))
        elif isinstance(answer, DatabricksError):
            warnings.append(f"The output of task {task.key!r} could not be fetched: {answer}")
            tasks.append(task)
        else:
            tasks.append(task if answer is None else task.with_output(answer))
    result = replace(result, tasks=tuple(tasks), warnings=tuple(warnings), client=result.client or client)
    return with_iterations(client, result)


_OUTPUT_READERS = 8  # outputs read at once: the rate limiter, not the round trips, bounds a wide run


def _read_outputs(client: DatabricksClient, run_ids: list[int]) -> dict[int, Any]:
    """Each task run's ``runs/get-output`` answer, or the DatabricksError that reading it raised."""

    def read(run_id: int) -> Any:
        try:
            with client.until(deadline):
                return client.get_run_output(run_id)
        except DatabricksError as exc:
            return exc

    deadline = client.deadline
    if not run_ids:
        return {}
    # on threads of their own even for one task: a poll made while the workspace was not answering
    # sends one attempt a request (the watcher backs off itself), but an output read gets the client's
    # retries (and only the deadline is passed on)
    with ThreadPoolExecutor(min(_OUTPUT_READERS, len(run_ids)), thread_name_prefix="dbx-outputs") as pool:
        return dict(zip(run_ids, pool.map(read, run_ids), strict=True))


def _output_of(task: TaskResult) -> dict[str, Any]:
    return {
        "output": task.output,
        "output_truncated": task.output_truncated,
        "error": task.error,
        "error_trace": task.error_trace,
    }
