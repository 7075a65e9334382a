"""The sandbox's jobs and runs: a pure, clock-driven state machine (no HTTP, no threads).

A run's state is never stored; it is *computed* from the clock. When a run is admitted (at once, or when a
concurrency slot frees), its whole future is laid out as a timeline of segments, each a life cycle state
from a start time on; the state at any instant is the last segment that has begun. Cancelling cuts the
timeline and appends TERMINATING then TERMINATED/CANCELED. Nothing happens between requests, so a test can
drive time by hand with a fake clock.

A normal job lays out: [QUEUED ->] PENDING (cluster start) -> RUNNING (the tasks, each after its
``depends_on``; a waiting task is BLOCKED) -> TERMINATING -> TERMINATED with SUCCESS, or FAILED when a task's
notebook raised (its downstream tasks end UPSTREAM_FAILED). A scripted job plays its script instead, the same
for the run and every task. All durations are seconds divided by ``speed``.

The caller (the HTTP layer) holds one lock around every call into a :class:`Workspace`.
"""

from __future__ import annotations

import itertools
import math
import random
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATES = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
"""Life cycle states that end a run."""

Notebook = Callable[[dict[str, str]], str | None]
"""A task's behaviour: gets the notebook's parameters, returns its exit value (or None); raising fails it."""

_STATUS_STATE = {"BLOCKED": "BLOCKED", "WAITING_FOR_RETRY": "WAITING", "SKIPPED": "TERMINATED"}
_STATUS_STATE["INTERNAL_ERROR"] = "TERMINATED"
# status.termination_details.code for a final result state; anything else is an execution error.
_TERMINATION_CODE = {
    "SUCCESS": "SUCCESS",
    "SUCCESS_WITH_FAILURES": "SUCCESS_WITH_FAILURES",
    "CANCELED": "CANCELED",
    "MAXIMUM_CONCURRENT_RUNS_REACHED": "MAX_CONCURRENT_RUNS_EXCEEDED",
    "DISABLED": "DISABLED",
}
_SUCCESS_CODES = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES", "CANCELED", "USER_CANCELED", "SKIPPED"})
_DEFAULT_MESSAGES = {
    "PENDING": "Waiting for cluster",
    "RUNNING": "In run",
    "SKIPPED": "Skipped",
    "INTERNAL_ERROR": "An internal error occurred.",
}
WORKLOAD_FAILED = "Workload failed, see run output for details"


@dataclass(frozen=True)
class Phase:
    """One step of a scripted run.

    Args:
        state: the life cycle state, served verbatim (unknown values included).
        duration: seconds (before ``speed``) the phase lasts; None makes it the last phase, which lasts
            for ever (a run that never ends, unless cancelled).
        result: the ``result_state`` of a final phase.
        message: the ``state_message``; a default one when empty.
        status_state: ``status.state``; by default derived from ``state`` (unknown values verbatim).
    """

    state: str
    duration: float | None = None
    result: str | None = None
    message: str = ""
    status_state: str | None = None

    @classmethod
    def of(cls, item: PhaseLike) -> Phase:
        """Turn ``(state, seconds)`` / ``(state, result_or_None)`` [+ ``message``] into a Phase."""
        if isinstance(item, Phase):
            return item
        state, arg, *rest = item
        message = str(rest[0]) if rest else ""
        if isinstance(arg, (int, float)) and not isinstance(arg, bool):
            return cls(state, duration=float(arg), message=message)
        return cls(state, result=arg, message=message)


PhaseLike = Phase | tuple[Any, ...]
"""A :class:`Phase`, or a tuple ``(state, seconds_or_result[, message])``."""


@dataclass(frozen=True)
class Task:
    """A notebook task of a job.

    Args:
        key: the ``task_key``.
        notebook_path: the notebook's workspace path.
        base_parameters: the task's default notebook parameters.
        depends_on: keys of the tasks that must succeed first.
        duration: seconds (before ``speed``) the notebook runs.
        notebook: the notebook's behaviour (see :data:`Notebook`); None: no exit value.
    """

    key: str
    notebook_path: str
    base_parameters: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[str] = ()
    duration: float = 2.0
    notebook: Notebook | None = None


@dataclass
class Job:
    """A job: its settings and its runs (oldest first)."""

    job_id: int
    name: str
    tasks: list[Task]
    parameters: dict[str, str]
    max_concurrent_runs: int
    queue: bool
    script: list[Phase] | None
    created: float
    pending: float = 1.0
    terminating: float = 0.4
    runs: list[Run] = field(default_factory=list)


@dataclass(frozen=True)
class Segment:
    """A state a run (or task run) is in from ``start`` (clock seconds) until the next segment."""

    start: float
    state: str
    message: str = ""
    result: str | None = None
    status_state: str | None = None
    final: bool = False
    code: str | None = None

    @property
    def ended(self) -> bool:
        """True when this is an end: the run has an end time and counts as completed."""
        status = self.status_state or status_state_of(self.state)
        return self.final and (self.state in TERMINAL_STATES or status == "TERMINATED")


@dataclass
class TaskOutcome:
    """What a task's notebook did: its exit value, or the error it raised."""

    result: str | None = None
    error: str | None = None
    error_trace: str | None = None


@dataclass
class Run:
    """A job run. Its states come from :meth:`Workspace.timeline`."""

    run_id: int
    job: Job
    created: float
    task_run_ids: dict[str, int]
    task_params: dict[str, dict[str, str]]
    outcomes: dict[str, TaskOutcome]
    job_parameter_values: dict[str, str] = field(default_factory=dict)
    overriding_parameters: dict[str, Any] = field(default_factory=dict)
    idempotency_token: str | None = None
    trigger: str = "ONE_TIME"
    history: bool = False
    scale: float = 1.0
    admitted: float | None = None
    cancelled: float | None = None
    skipped: str | None = None


def status_state_of(state: str) -> str:
    """The ``status.state`` (v2) for a life cycle state; unknown states verbatim."""
    return _STATUS_STATE.get(state, state)


def termination_code(result: str | None, state: str) -> str:
    """The ``status.termination_details.code`` for a final state and result."""
    if state == "INTERNAL_ERROR":
        return "INTERNAL_ERROR"
    if state == "SKIPPED" and result is None:
        return "SKIPPED"
    return _TERMINATION_CODE.get(result or "", "RUN_EXECUTION_ERROR")


def termination_type(code: str) -> str:
    """The ``status.termination_details.type`` of a termination code."""
    if code == "INTERNAL_ERROR":
        return "INTERNAL_ERROR"
    return "SUCCESS" if code in _SUCCESS_CODES else "CLIENT_ERROR"


class Workspace:
    """Jobs and their runs, with states computed from a clock.

    Args:
        clock: monotonic seconds.
        speed: all durations are divided by it.
        epoch: the wall-clock time (epoch seconds) that ``clock()`` reads now; default ``time.time()``.
    """

    def __init__(self, clock: Callable[[], float], speed: float = 1.0, epoch: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed!r}")
        self.clock = clock
        self.speed = float(speed)
        self._offset = (time.time() if epoch is None else epoch) - clock()
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, Run] = {}
        self.task_runs: dict[int, tuple[Run, str]] = {}
        self._job_ids = itertools.count(1)
        self._run_ids = itertools.count(1000)

    def epoch_ms(self, t: float) -> int:
        """Clock seconds as epoch milliseconds, as the API gives times."""
        return round((t + self._offset) * 1000)

    # ------------------------------------------------------------------ jobs
    def add_job(
        self,
        name: str,
        *,
        tasks: Sequence[Task] | None = None,
        parameters: Mapping[str, str] | None = None,
        max_concurrent_runs: int = 1,
        queue: bool = True,
        script: Sequence[PhaseLike] | None = None,
        history: int = 0,
        pending: float = 1.0,
        terminating: float = 0.4,
    ) -> Job:
        """Add a job (see :meth:`dbx_magic.sandbox.Sandbox.add_job`) and ``history`` past successful runs."""
        tasks = list(tasks) if tasks else [Task("main", f"/Workspace/Shared/{name}")]
        keys = [t.key for t in tasks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"duplicate task keys in {keys}")
        for task in tasks:
            missing = [d for d in task.depends_on if d not in keys]
            if missing:
                raise ValueError(f"task {task.key!r} depends on unknown tasks {missing}")
        phases = [Phase.of(p) for p in script] if script is not None else None
        if phases is not None and not phases:
            raise ValueError("a script needs at least one phase")
        job = Job(
            job_id=next(self._job_ids),
            name=name,
            tasks=tasks,
            parameters=dict(parameters or {}),
            max_concurrent_runs=max_concurrent_runs,
            queue=queue,
            script=phases,
            created=self.clock() - 40 * 86400,
            pending=pending,
            terminating=terminating,
        )
        self.jobs[job.job_id] = job
        rng = random.Random(name)
        for days_ago in range(history, 0, -1):
            start = self.clock() - days_ago * 86400 + rng.uniform(-600, 600)
            run = self._new_run(job, {}, {}, start, trigger="PERIODIC")
            run.history, run.scale = True, rng.uniform(0.9, 1.1)
            run.admitted = start
        return job

    # ------------------------------------------------------------------ runs
    def run_now(
        self,
        job: Job,
        *,
        notebook_params: Mapping[str, str] | None = None,
        job_parameters: Mapping[str, str] | None = None,
        overriding: Mapping[str, Any] | None = None,
        idempotency_token: str | None = None,
        queue: bool | None = None,
    ) -> Run:
        """Start a run (or return the run an earlier call with the same token started)."""
        if idempotency_token is not None:
            for run in job.runs:
                if run.idempotency_token == idempotency_token:
                    return run
        now = self.clock()
        self.settle(now)
        run = self._new_run(job, dict(notebook_params or {}), dict(job_parameters or {}), now)
        run.overriding_parameters = dict(overriding or {})
        run.idempotency_token = idempotency_token
        queue_enabled = job.queue if queue is None else queue
        limit = job.max_concurrent_runs
        others = [r for r in job.runs if r is not run and not self._done_by(r, now)]
        if limit <= 0 or (len(others) >= limit and not queue_enabled):
            run.skipped = (
                f"Skipping this run because the limit of {limit} maximum concurrent runs has been reached."
            )
        elif len(others) < limit:
            run.admitted = now
        return run

    def cancel(self, run: Run) -> None:
        """Cancel a run: no effect once it has ended."""
        now = self.clock()
        self.settle(now)
        if run.cancelled is None and not self._done_by(run, now):
            run.cancelled = now
        self.settle(now)

    def _new_run(
        self,
        job: Job,
        notebook_params: dict[str, str],
        job_params: dict[str, str],
        start: float,
        trigger: str = "ONE_TIME",
    ) -> Run:
        values = {**job.parameters, **job_params}
        run = Run(
            run_id=next(self._run_ids),
            job=job,
            created=start,
            task_run_ids={},
            task_params={},
            outcomes={},
            job_parameter_values=values if (job.parameters or job_params) else {},
            trigger=trigger,
        )
        for task in job.tasks:
            run.task_run_ids[task.key] = next(self._run_ids)
            params = {**task.base_parameters, **values, **notebook_params}
            run.task_params[task.key] = {**task.base_parameters, **notebook_params}
            run.outcomes[task.key] = _execute(task, params)
            self.task_runs[run.task_run_ids[task.key]] = (run, task.key)
        job.runs.append(run)
        self.runs[run.run_id] = run
        return run

    # ------------------------------------------------------------ time line
    def settle(self, now: float) -> None:
        """Admit queued runs whose concurrency slot has freed by ``now`` (first come, first served)."""
        for job in self.jobs.values():
            for run in job.runs:
                if run.admitted is not None or run.skipped or run.cancelled is not None:
                    continue
                ends = sorted(
                    e for r in job.runs if r.admitted is not None and (e := self.end_time(r)) > run.created
                )
                free_at = run.created
                if len(ends) >= job.max_concurrent_runs:
                    free_at = ends[len(ends) - job.max_concurrent_runs]
                if free_at > now:
                    break
                run.admitted = max(free_at, run.created)

    def end_time(self, run: Run) -> float:
        """When the run ends (clock seconds), as far as known now; ``inf`` if never or not yet known."""
        segments, _ = self.timeline(run)
        return segments[-1].start if segments[-1].ended else math.inf

    def _done_by(self, run: Run, now: float) -> bool:
        return self.end_time(run) <= now

    def timeline(self, run: Run) -> tuple[list[Segment], dict[str, list[Segment]]]:
        """The run's segments and each task's, oldest first."""
        job = run.job
        if run.skipped:
            seg = Segment(
                run.created,
                "SKIPPED",
                run.skipped,
                "MAXIMUM_CONCURRENT_RUNS_REACHED",
                final=True,
                code="MAX_CONCURRENT_RUNS_EXCEEDED",
            )
            return [seg], {t.key: [seg] for t in job.tasks}
        if run.admitted is None:
            queued = [Segment(run.created, "QUEUED", queue_message(job))]
            if run.cancelled is None:
                return queued, {t.key: list(queued) for t in job.tasks}
            cancelled = _cancelled(queued, run.cancelled, 0.0)
            return cancelled, {t.key: list(cancelled) for t in job.tasks}
        head = []
        if run.admitted > run.created:
            head = [Segment(run.created, "QUEUED", queue_message(job))]
        if job.script is not None and not run.history:
            body = self._scripted(job.script, run.admitted, run.scale)
            segments, tasks = head + body, {t.key: head + body for t in job.tasks}
        else:
            segments, tasks = self._laid_out(run, run.admitted)
            segments = head + segments
            tasks = {k: head + v for k, v in tasks.items()}
        if run.cancelled is not None:
            delay = 0.5 / self.speed
            segments = _cancelled(segments, run.cancelled, delay)
            tasks = {k: _cancelled(v, run.cancelled, delay) for k, v in tasks.items()}
        return segments, tasks

    def _scripted(self, phases: list[Phase], start: float, scale: float) -> list[Segment]:
        segments, t = [], start
        for i, phase in enumerate(phases):
            final = phase.duration is None or i == len(phases) - 1
            message = phase.message or _DEFAULT_MESSAGES.get(phase.state, "")
            code = termination_code(phase.result, phase.state) if final else None
            segments.append(
                Segment(
                    t, phase.state, message, phase.result if final else None, phase.status_state, final, code
                )
            )
            if final:
                break
            t += (phase.duration or 0.0) * scale / self.speed
        return segments

    def _laid_out(self, run: Run, start: float) -> tuple[list[Segment], dict[str, list[Segment]]]:
        job, k = run.job, run.scale / self.speed
        ready = start + job.pending * k
        ends: dict[str, float] = {}
        ok: dict[str, bool] = {}
        tasks: dict[str, list[Segment]] = {}
        for task in _in_order(job.tasks):
            begin = max([ends[d] for d in task.depends_on], default=ready)
            segs = [Segment(start, "PENDING", _DEFAULT_MESSAGES["PENDING"])]
            if begin > ready:
                segs.append(Segment(ready, "BLOCKED", "Waiting for upstream tasks"))
            if not all(ok[d] for d in task.depends_on):
                segs.append(
                    Segment(
                        begin,
                        "TERMINATED",
                        "Upstream task(s) failed.",
                        "UPSTREAM_FAILED",
                        final=True,
                        code="RUN_EXECUTION_ERROR",
                    )
                )
                ends[task.key], ok[task.key] = begin, False
            else:
                failed = run.outcomes[task.key].error is not None
                end = begin + task.duration * k
                segs.append(Segment(begin, "RUNNING", _DEFAULT_MESSAGES["RUNNING"]))
                segs.append(
                    Segment(
                        end,
                        "TERMINATED",
                        WORKLOAD_FAILED if failed else "",
                        "FAILED" if failed else "SUCCESS",
                        final=True,
                        code="RUN_EXECUTION_ERROR" if failed else "SUCCESS",
                    )
                )
                ends[task.key], ok[task.key] = end, not failed
            tasks[task.key] = segs
        finish = max(ends.values(), default=ready)
        failed_keys = [t.key for t in job.tasks if not ok[t.key] and run.outcomes[t.key].error]
        message = ""
        if failed_keys:
            message = (
                f"Task {failed_keys[0]} failed with message: {WORKLOAD_FAILED}. "
                "This caused all downstream tasks to get skipped."
            )
        segments = [
            Segment(start, "PENDING", _DEFAULT_MESSAGES["PENDING"]),
            Segment(ready, "RUNNING", _DEFAULT_MESSAGES["RUNNING"]),
            Segment(finish, "TERMINATING", ""),
            Segment(
                finish + job.terminating * k,
                "TERMINATED",
                message,
                "FAILED" if failed_keys else "SUCCESS",
                final=True,
                code="RUN_EXECUTION_ERROR" if failed_keys else "SUCCESS",
            ),
        ]
        return segments, tasks


def queue_message(job: Job) -> str:
    """The ``queue_reason`` / queue details message of a job's queued runs."""
    return f"Queued due to reaching maximum concurrent runs of {job.max_concurrent_runs}."


def current(segments: list[Segment], now: float) -> Segment:
    """The segment in force at ``now`` (the first one if none has begun)."""
    found = segments[0]
    for seg in segments:
        if seg.start > now:
            break
        found = seg
    return found


def _cancelled(segments: list[Segment], at: float, delay: float) -> list[Segment]:
    if any(s.ended and s.start <= at for s in segments):
        return segments
    kept = [s for s in segments if s.start < at] or segments[:1]
    if delay > 0:
        kept.append(Segment(at, "TERMINATING", "Run cancellation requested."))
    message = "Run cancelled." if delay > 0 else "The run was cancelled while queued."
    kept.append(Segment(at + delay, "TERMINATED", message, "CANCELED", final=True, code="USER_CANCELED"))
    return kept


def _in_order(tasks: list[Task]) -> list[Task]:
    """Tasks with every task after the tasks it depends on."""
    done: set[str] = set()
    ordered: list[Task] = []
    pending = list(tasks)
    while pending:
        progress = [t for t in pending if all(d in done for d in t.depends_on)]
        if not progress:
            raise ValueError(f"circular depends_on among {[t.key for t in pending]}")
        for task in progress:
            ordered.append(task)
            done.add(task.key)
        pending = [t for t in pending if t.key not in done]
    return ordered


def _execute(task: Task, params: dict[str, str]) -> TaskOutcome:
    if task.notebook is None:
        return TaskOutcome()
    try:
        return TaskOutcome(result=task.notebook(dict(params)))
    except Exception as exc:  # the notebook "failed": report it as Databricks does
        # The trace starts at the notebook's own frame, as a notebook's trace would.
        tb = exc.__traceback__
        frames = traceback.format_exception(type(exc), exc, tb.tb_next if tb else None)
        return TaskOutcome(error=f"{type(exc).__name__}: {exc}", error_trace="".join(frames))
