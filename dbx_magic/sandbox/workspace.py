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

Every task run is an :class:`Attempt`. The original run makes attempt 0 of each task (tasks left out by
``only`` are EXCLUDED); each repair is a further *round* laid out after the run ended: the run goes
PENDING -> RUNNING -> TERMINATING -> TERMINATED again while the chosen tasks make their next attempt, and the
run's result is computed from the latest attempt of every task. A condition task ends with an outcome
(``"true"``/``"false"``); a task that depends on the other outcome is EXCLUDED, and so are its dependents.
A for-each task runs its notebook once per input, ``concurrency`` at a time.

The caller (the HTTP layer) holds one lock around every call into a :class:`Workspace`.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

TERMINAL_STATES = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
"""Life cycle states that end a run."""

Notebook = Callable[[dict[str, str]], str | None]
"""A task's behaviour: gets the notebook's parameters, returns its exit value (or None); raising fails it."""

Dependency = str | tuple[str, str]
"""A ``depends_on`` entry: a task key, or ``(condition task key, outcome)``."""

_STATUS_STATE = {"BLOCKED": "BLOCKED", "WAITING_FOR_RETRY": "WAITING", "SKIPPED": "TERMINATED"}
_STATUS_STATE["INTERNAL_ERROR"] = "TERMINATED"
# status.termination_details.code for a final result state; anything else is an execution error.
_TERMINATION_CODE = {
    "SUCCESS": "SUCCESS",
    "SUCCESS_WITH_FAILURES": "SUCCESS_WITH_FAILURES",
    "CANCELED": "CANCELED",
    "MAXIMUM_CONCURRENT_RUNS_REACHED": "MAX_CONCURRENT_RUNS_EXCEEDED",
    "DISABLED": "DISABLED",
    "EXCLUDED": "SKIPPED",
}
_SUCCESS_CODES = frozenset(
    {"SUCCESS", "SUCCESS_WITH_FAILURES", "CANCELED", "USER_CANCELED", "SKIPPED", "DISABLED"}
)
_CLOUD_CODES = frozenset({"CLUSTER_ERROR", "CLOUD_FAILURE", "CLUSTER_REQUEST_LIMIT_EXCEEDED"})
PERFORMANCE_TARGETS = ("PERFORMANCE_OPTIMIZED", "STANDARD")
"""The ``performance_target`` values run-now and repair take."""
_DEFAULT_MESSAGES = {
    "PENDING": "Waiting for cluster",
    "RUNNING": "In run",
    "SKIPPED": "Skipped",
    "INTERNAL_ERROR": "An internal error occurred.",
}
WORKLOAD_FAILED = "Workload failed, see run output for details"
NOT_SELECTED = "This task was not selected to run."
CONDITION_NOT_MET = "Excluded: the condition of an upstream task was not met."
TASK_DISABLED = "This task is disabled."
_REFERENCE = re.compile(r"\{\{\s*([\w.]+)\s*\}\}")
UNSUCCESSFUL = frozenset({"FAILED", "TIMEDOUT", "CANCELED", "UPSTREAM_FAILED", "UPSTREAM_CANCELED"})
"""Final task results that ``rerun_all_failed_tasks`` reruns and that fail a run."""
_CONDITION_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "EQUAL_TO": lambda a, b: a == b,
    "NOT_EQUAL": lambda a, b: a != b,
    "GREATER_THAN": lambda a, b: a > b,
    "GREATER_THAN_OR_EQUAL": lambda a, b: a >= b,
    "LESS_THAN": lambda a, b: a < b,
    "LESS_THAN_OR_EQUAL": lambda a, b: a <= b,
}


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
        code: the ``status.termination_details.code`` of a final phase; by default derived from the
            result (``CLUSTER_ERROR``, ``USER_CANCELED``... served verbatim, unknown ones included).
    """

    state: str
    duration: float | None = None
    result: str | None = None
    message: str = ""
    status_state: str | None = None
    code: str | None = None

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
class ForEach:
    """Makes a task a for-each task: its notebook runs once per input.

    Args:
        inputs: the values; each iteration gets its value wherever a parameter value says ``{{input}}``.
        concurrency: how many iterations run at once.
    """

    inputs: Sequence[str]
    concurrency: int = 1


@dataclass(frozen=True)
class Condition:
    """Makes a task a condition task: it runs no notebook and ends with outcome ``"true"`` or ``"false"``.

    Args:
        left: the left operand; ``{{job.parameters.NAME}}`` (or ``{{NAME}}``) reads a parameter of the run.
        op: ``EQUAL_TO``, ``NOT_EQUAL``, ``GREATER_THAN``, ``GREATER_THAN_OR_EQUAL``, ``LESS_THAN`` or
            ``LESS_THAN_OR_EQUAL`` (numbers compare as numbers).
        right: the right operand, resolved like ``left``.
    """

    left: str
    op: str
    right: str

    def operands(self, params: Mapping[str, str]) -> tuple[str, str]:
        """The left and right operands resolved over these parameters."""
        return _resolve(self.left, params), _resolve(self.right, params)

    def outcome(self, params: Mapping[str, str]) -> str:
        """``"true"`` or ``"false"``: the condition evaluated over these parameters."""
        left, right = _resolve(self.left, params), _resolve(self.right, params)
        compare = _CONDITION_OPS[self.op]
        try:
            result = compare(float(left), float(right))
        except ValueError:
            result = compare(left, right)
        return "true" if result else "false"


@dataclass(frozen=True)
class Task:
    """A task of a job: a notebook task, or a for-each or condition task.

    Args:
        key: the ``task_key``.
        notebook_path: the notebook's workspace path (of each iteration for a for-each task; ignored for a
            condition task).
        base_parameters: the task's default notebook parameters.
        depends_on: keys of the tasks that must succeed first; ``(key, outcome)`` for a condition task
            whose outcome must be that one.
        duration: seconds (before ``speed``) the notebook runs (each iteration, for a for-each task).
        notebook: the notebook's behaviour (see :data:`Notebook`); None: no exit value.
        for_each: makes this a for-each task over these inputs.
        condition: makes this a condition task.
        source: the notebook's source as ``workspace/export`` serves it; None: one is made up from the
            parameters (unless another task already gave that path a source).
        readable: False: ``workspace/export`` of the notebook is refused (403), as without permission.
        disabled: the task is disabled: it ends DISABLED at once, and so do the tasks that need it.

    A parameter value may refer to ``{{job.parameters.NAME}}``, ``{{job.id}}``, ``{{job.name}}`` or
    ``{{job.run_id}}``: the notebook gets it resolved (``runs/get?include_resolved_values=true`` shows it).
    """

    key: str
    notebook_path: str
    base_parameters: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[Dependency] = ()
    duration: float = 2.0
    notebook: Notebook | None = None
    for_each: ForEach | None = None
    condition: Condition | None = None
    source: str | None = None
    readable: bool = True
    disabled: bool = False

    @property
    def deps(self) -> list[tuple[str, str | None]]:
        """The dependencies as ``(task key, required outcome or None)``."""
        return [(d, None) if isinstance(d, str) else (d[0], d[1]) for d in self.depends_on]

    @property
    def upstream(self) -> list[str]:
        """The keys this task depends on."""
        return [key for key, _ in self.deps]

    @property
    def is_notebook(self) -> bool:
        """True for a plain notebook task (the only kind a run export covers)."""
        return self.for_each is None and self.condition is None


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
    runnable: bool = True
    """False: the token may view the job but not run, cancel or repair it (403)."""

    def task(self, key: str) -> Task:
        """The task with this key."""
        return next(t for t in self.tasks if t.key == key)


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


@dataclass(frozen=True)
class TaskOutcome:
    """What a task's notebook did: its exit value, or the error it raised (never changed: past runs
    with the same parameters share one)."""

    result: str | None = None
    error: str | None = None
    error_trace: str | None = None


@dataclass
class Attempt:
    """One attempt of one task in a run (a task run, with its own run id)."""

    key: str
    run_id: int
    number: int
    round: int
    params: dict[str, str]
    shown: dict[str, str]
    outcome: TaskOutcome
    selected: bool = True
    outcome_value: str | None = None
    iterations: list[TaskOutcome] = field(default_factory=list)
    resolved: dict[str, str] = field(default_factory=dict)
    iteration_ids: list[int] = field(default_factory=list)
    iteration_params: list[dict[str, str]] = field(default_factory=list)


_Executed = dict[tuple[str, tuple[tuple[str, str], ...]], Attempt]
"""A task and its parameters -> an attempt already executed with them (a job's past runs share one)."""


@dataclass
class Repair:
    """A repair of a run: a round of attempts of the chosen tasks, from ``at`` on."""

    repair_id: int
    at: float
    keys: list[str]
    idempotency_token: str | None = None
    cancelled: float | None = None
    speed: float = 1.0


@dataclass
class Run:
    """A job run. Its states come from :meth:`Workspace.timeline`."""

    run_id: int
    job: Job
    created: float
    attempts: list[Attempt] = field(default_factory=list)
    notebook_params: dict[str, str] = field(default_factory=dict)
    job_params: dict[str, str] = field(default_factory=dict)
    overriding_parameters: dict[str, Any] = field(default_factory=dict)
    repairs: list[Repair] = field(default_factory=list)
    idempotency_token: str | None = None
    trigger: str = "ONE_TIME"
    history: bool = False
    scale: float = 1.0
    admitted: float | None = None
    cancelled: float | None = None
    skipped: str | None = None
    performance_target: str | None = None
    speed: float = 1.0
    """The workspace's speed when the run started: a later change of speed leaves its timeline alone."""

    @property
    def job_parameter_values(self) -> dict[str, str]:
        """The job-level parameter values of the run (defaults under the run's own); empty when none."""
        if not (self.job.parameters or self.job_params):
            return {}
        return {**self.job.parameters, **self.job_params}

    def latest(self) -> dict[str, Attempt]:
        """Task key -> its latest attempt."""
        return {a.key: a for a in self.attempts}


class Timeline(NamedTuple):
    """A run's segments, each attempt's (by task run id), and the run's segments per round."""

    segments: list[Segment]
    tasks: dict[int, list[Segment]]
    rounds: list[list[Segment]]


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
    if code in _CLOUD_CODES:
        return "CLOUD_FAILURE"
    return "SUCCESS" if code in _SUCCESS_CODES else "CLIENT_ERROR"


class Workspace:
    """Jobs and their runs, with states computed from a clock.

    Args:
        clock: monotonic seconds.
        speed: all durations are divided by it.
        epoch: the wall-clock time (epoch seconds) that ``clock()`` reads now; default ``time.time()``.
        first_run_id: the first run id given (default 1000).
    """

    def __init__(
        self,
        clock: Callable[[], float],
        speed: float = 1.0,
        epoch: float | None = None,
        *,
        first_run_id: int | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed!r}")
        self.clock = clock
        self.speed = float(speed)
        self._offset = (time.time() if epoch is None else epoch) - clock()
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, Run] = {}
        self.task_runs: dict[int, tuple[Run, Attempt]] = {}
        self.iteration_runs: dict[int, tuple[Run, Attempt, int]] = {}
        """An iteration's run id -> its run, its for-each attempt, and its index."""
        self.notebooks: dict[str, str | None] = {}
        """Notebook path -> its source (None: not readable)."""
        self.base_url = "http://127.0.0.1"
        """Where run pages are served (the HTTP layer sets it)."""
        self._job_ids = itertools.count(1)
        self._run_ids = itertools.count(1000 if first_run_id is None else first_run_id)
        self._timelines: dict[int, tuple[tuple[Any, ...], Timeline]] = {}
        self._iteration_ids = itertools.count(900_000_000)  # apart, so other run ids stay as they were
        self.recorder: Callable[[dict[str, Any]], None] | None = None
        """Called with each change a request made (a run started, cancelled, repaired) as a JSON-able
        dict that :meth:`replay` takes back (``Sandbox(data=DIR)`` keeps them in DIR)."""

    @property
    def next_run_id(self) -> int:
        """The id the next run, task run or repair will get (without taking it)."""
        taken = next(self._run_ids)
        self._run_ids = itertools.count(taken)
        return taken

    def _record(self, op: str, now: float, **fields: Any) -> None:
        if self.recorder is not None:
            self.recorder({"op": op, "at": now + self._offset, "speed": self.speed, **fields})

    def replay(self, change: Mapping[str, Any]) -> None:
        """Make again a change :attr:`recorder` was given, at the wall time and speed it was made."""
        clock, speed, recorder = self.clock, self.speed, self.recorder
        at = float(change["at"]) - self._offset
        self.clock, self.speed, self.recorder = (lambda: at), float(change["speed"]), None
        try:
            self._replay(change)
        finally:
            self.clock, self.speed, self.recorder = clock, speed, recorder

    def _replay(self, change: Mapping[str, Any]) -> None:
        op = change["op"]
        if op == "run_now":
            self.run_now(
                self.jobs[change["job_id"]],
                notebook_params=change["notebook_params"],
                job_parameters=change["job_parameters"],
                overriding=change["overriding"],
                idempotency_token=change["token"],
                queue=change["queue"],
                only=change["only"],
                performance_target=change.get("performance_target"),
            )
        elif op == "cancel":
            self.cancel(self.runs[change["run_id"]])
        elif op == "repair":
            self.repair(
                self.runs[change["run_id"]],
                change["keys"],
                notebook_params=change["notebook_params"],
                job_parameters=change["job_parameters"],
                idempotency_token=change["token"],
                performance_target=change.get("performance_target"),
            )

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
        runnable: bool = True,
    ) -> Job:
        """Add a job (see :meth:`dbx_magic.sandbox.Sandbox.add_job`) and ``history`` past successful runs."""
        tasks = list(tasks) if tasks else [Task("main", f"/Workspace/Shared/{name}")]
        _check_tasks(tasks)
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
            runnable=runnable,
        )
        self.jobs[job.job_id] = job
        for task in tasks:
            self._add_source(task, job.parameters)
        rng = random.Random(name)
        executed: _Executed = {}
        scales: list[float] = []
        for days_ago in range(history, 0, -1):
            start = self.clock() - days_ago * 86400 + rng.uniform(-600, 600)
            run = self._new_run(job, {}, {}, start, trigger="PERIODIC", executed=executed)
            scales.append(_past_scale(rng, scales))
            run.history, run.scale = True, scales[-1]
            run.admitted = start
        return job

    def add_notebook(self, path: str, source: str | None) -> None:
        """Serve this source for ``path`` (None: the notebook exists but cannot be read)."""
        self.notebooks[path] = source

    def _add_source(self, task: Task, job_parameters: Mapping[str, str]) -> None:
        if task.condition is not None or not task.notebook_path:
            return
        if task.source is not None or task.notebook_path not in self.notebooks:
            source = task.source or default_source(task, job_parameters)
            self.notebooks[task.notebook_path] = source
        if not task.readable:
            self.notebooks[task.notebook_path] = None

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
        only: Sequence[str] | None = None,
        performance_target: str | None = None,
    ) -> Run:
        """Start a run (or return the run an earlier call with the same token started).

        ``only`` (already expanded, see :func:`select`) runs just those tasks: the others are EXCLUDED.
        """
        if idempotency_token is not None:
            for run in job.runs:
                if run.idempotency_token == idempotency_token:
                    return run
        now = self.clock()
        self.settle(now)
        run = self._new_run(job, dict(notebook_params or {}), dict(job_parameters or {}), now, only=only)
        run.overriding_parameters = dict(overriding or {})
        run.idempotency_token = idempotency_token
        run.performance_target = performance_target
        queue_enabled = job.queue if queue is None else queue
        limit = job.max_concurrent_runs
        others = [r for r in job.runs if r is not run and not self._done_by(r, now)]
        if limit <= 0 or (len(others) >= limit and not queue_enabled):
            run.skipped = (
                f"Skipping this run because the limit of {limit} maximum concurrent runs has been reached."
            )
        elif len(others) < limit:
            run.admitted = now
        self._record(
            "run_now",
            now,
            job_id=job.job_id,
            run_id=run.run_id,
            notebook_params=run.notebook_params,
            job_parameters=run.job_params,
            overriding=run.overriding_parameters,
            token=idempotency_token,
            queue=queue,
            only=list(only) if only is not None else None,
            performance_target=performance_target,
        )
        return run

    def cancel(self, run: Run) -> None:
        """Cancel a run (its latest repair, if repaired): no effect once it has ended."""
        now = self.clock()
        self.settle(now)
        if not self._done_by(run, now):
            if run.repairs:
                run.repairs[-1].cancelled = now
            elif run.cancelled is None:
                run.cancelled = now
            self._record("cancel", now, run_id=run.run_id)
        self.settle(now)

    def cancel_all(self, job: Job | None, *, queued_only: bool) -> list[Run]:
        """Cancel the active runs of ``job`` (every job when None), or only the queued ones; returns them."""
        now = self.clock()
        self.settle(now)
        jobs = [job] if job is not None else list(self.jobs.values())
        chosen = [
            r
            for j in jobs
            for r in j.runs
            if not self._done_by(r, now) and (not queued_only or self.is_queued(r))
        ]
        for run in chosen:
            self.cancel(run)
        return chosen

    def is_queued(self, run: Run) -> bool:
        """True while the run waits for a concurrency slot."""
        return run.admitted is None and not run.skipped and run.cancelled is None

    def repair(
        self,
        run: Run,
        keys: Sequence[str],
        *,
        notebook_params: Mapping[str, str] | None = None,
        job_parameters: Mapping[str, str] | None = None,
        idempotency_token: str | None = None,
        performance_target: str | None = None,
    ) -> Repair:
        """Rerun these tasks of an ended run (checked by the caller) as a new round of attempts."""
        now = self.clock()
        self._record(
            "repair",
            now,
            run_id=run.run_id,
            keys=list(keys),
            notebook_params=dict(notebook_params or {}),
            job_parameters=dict(job_parameters or {}),
            token=idempotency_token,
            performance_target=performance_target,
        )
        run.performance_target = performance_target or run.performance_target
        run.notebook_params.update(notebook_params or {})
        run.job_params.update(job_parameters or {})
        if run.notebook_params:
            run.overriding_parameters["notebook_params"] = dict(run.notebook_params)
        repair = Repair(next(self._run_ids), now, list(keys), idempotency_token, speed=self.speed)
        number = len(run.repairs) + 1
        counts = {k: sum(a.key == k for a in run.attempts) for k in keys}
        for task in run.job.tasks:
            if task.key in counts:
                self._attempt(run, task, number, counts[task.key])
        run.repairs.append(repair)
        return repair

    def is_active(self, run: Run) -> bool:
        """True until the run (with its latest repair) has ended."""
        return not self._done_by(run, self.clock())

    def final_results(self, run: Run) -> dict[str, str | None]:
        """Task key -> the final result of its latest attempt (None: not ended, or not selected)."""
        tasks = self.timeline(run).tasks
        out: dict[str, str | None] = {}
        for key, attempt in run.latest().items():
            last = tasks[attempt.run_id][-1]
            out[key] = last.result if last.final and attempt.selected else None
        return out

    def _new_run(
        self,
        job: Job,
        notebook_params: dict[str, str],
        job_params: dict[str, str],
        start: float,
        trigger: str = "ONE_TIME",
        only: Sequence[str] | None = None,
        executed: _Executed | None = None,
    ) -> Run:
        """A new run of ``job`` with an attempt of each task, executed at once.

        ``executed`` (for a job's past runs) maps a task and its parameters to an attempt already
        executed with them: the notebook is run once for them, not once a run.
        """
        run = Run(
            run_id=next(self._run_ids),
            job=job,
            created=start,
            notebook_params=notebook_params,
            job_params=job_params,
            trigger=trigger,
            speed=self.speed,
        )
        for task in job.tasks:
            self._attempt(run, task, 0, 0, selected=only is None or task.key in only, executed=executed)
        job.runs.append(run)
        self.runs[run.run_id] = run
        return run

    def _attempt(
        self,
        run: Run,
        task: Task,
        round_: int,
        number: int,
        selected: bool = True,
        executed: _Executed | None = None,
    ) -> Attempt:
        """Make (and execute) the next attempt of a task with the run's current parameters."""
        raw = {**task.base_parameters, **run.notebook_params}
        # Job parameter pushdown: a job-level parameter wins over a task parameter of the same name.
        pushed = {**raw, **run.job_parameter_values}
        params = {k: resolve_references(v, run) for k, v in pushed.items()}
        shown = {k: pushed[k] for k in raw}
        attempt = Attempt(task.key, next(self._run_ids), number, round_, params, shown, TaskOutcome())
        attempt.resolved = {k: params[k] for k in raw}
        attempt.selected = selected and not task.disabled
        if attempt.selected:
            _execute_once(task, attempt, executed)
        for index in range(len(attempt.iterations)):
            attempt.iteration_ids.append(next(self._iteration_ids))
            self.iteration_runs[attempt.iteration_ids[-1]] = (run, attempt, index)
        run.attempts.append(attempt)
        self.task_runs[attempt.run_id] = (run, attempt)
        return attempt

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
        segments = self.timeline(run).segments
        return segments[-1].start if segments[-1].ended else math.inf

    def _done_by(self, run: Run, now: float) -> bool:
        return self.end_time(run) <= now

    def timeline(self, run: Run) -> Timeline:
        """The run's segments, each attempt's, and the run's per round (original, then each repair).

        Laid out once for what the run is now (a 1,000-task run's layout takes tens of milliseconds,
        and every request about the run asks for it); again when it changes (admitted, cancelled, a
        repair, more attempts)."""
        key = (
            run.admitted,
            run.cancelled,
            run.skipped,
            run.scale,
            self.speed,
            len(run.attempts),
            tuple((r.repair_id, r.at, r.cancelled) for r in run.repairs),
        )
        cached = self._timelines.get(run.run_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        timeline = self._lay_out(run)
        self._timelines[run.run_id] = (key, timeline)
        return timeline

    def _lay_out(self, run: Run) -> Timeline:
        segments, tasks = self._original(run)
        rounds = [list(segments)]
        for number, repair in enumerate(run.repairs, start=1):
            attempts = [a for a in run.attempts if a.round == number]
            prior = _latest_results(run, tasks, number)
            if run.job.script is not None:
                segs = self._scripted(run.job.script, repair.at, 1.0 / repair.speed)
                more = {a.run_id: list(segs) for a in attempts}
            else:
                segs, more = self._laid_out(run, attempts, repair.at, 1.0 / repair.speed, prior)
            if repair.cancelled is not None:
                segs, more = self._cut(segs, more, repair.cancelled, repair.speed)
            segments, rounds = segments + segs, [*rounds, segs]
            tasks.update(more)
        return Timeline(segments, tasks, rounds)

    def _original(self, run: Run) -> tuple[list[Segment], dict[int, list[Segment]]]:
        job = run.job
        ids = [a.run_id for a in run.attempts if a.round == 0]
        if run.skipped:
            seg = Segment(
                run.created,
                "SKIPPED",
                run.skipped,
                "MAXIMUM_CONCURRENT_RUNS_REACHED",
                final=True,
                code="MAX_CONCURRENT_RUNS_EXCEEDED",
            )
            return [seg], {i: [seg] for i in ids}
        if run.admitted is None:
            queued = [Segment(run.created, "QUEUED", queue_message(job))]
            if run.cancelled is not None:
                queued = _cancelled(queued, run.cancelled, 0.0)
            return queued, {i: list(queued) for i in ids}
        head = []
        if run.admitted > run.created:
            head = [Segment(run.created, "QUEUED", queue_message(job))]
        if job.script is not None and not run.history:
            body = self._scripted(job.script, run.admitted, run.scale / run.speed)
            segments, tasks = head + body, {i: head + body for i in ids}
        else:
            attempts = [a for a in run.attempts if a.round == 0]
            segments, tasks = self._laid_out(run, attempts, run.admitted, run.scale / run.speed, {})
            segments = head + segments
            tasks = {k: head + v for k, v in tasks.items()}
        if run.cancelled is not None:
            segments, tasks = self._cut(segments, tasks, run.cancelled, run.speed)
        return segments, tasks

    def _cut(
        self, segments: list[Segment], tasks: dict[int, list[Segment]], at: float, speed: float
    ) -> tuple[list[Segment], dict[int, list[Segment]]]:
        delay = 0.5 / speed
        return _cancelled(segments, at, delay), {k: _cancelled(v, at, delay) for k, v in tasks.items()}

    def _scripted(self, phases: list[Phase], start: float, k: float) -> list[Segment]:
        segments, t = [], start
        for i, phase in enumerate(phases):
            final = phase.duration is None or i == len(phases) - 1
            message = phase.message or _DEFAULT_MESSAGES.get(phase.state, "")
            code = (phase.code or termination_code(phase.result, phase.state)) if final else None
            segments.append(
                Segment(
                    t, phase.state, message, phase.result if final else None, phase.status_state, final, code
                )
            )
            if final:
                break
            t += (phase.duration or 0.0) * k
        return segments

    def _laid_out(
        self,
        run: Run,
        attempts: list[Attempt],
        start: float,
        k: float,
        prior: dict[str, tuple[str | None, str | None]],
    ) -> tuple[list[Segment], dict[int, list[Segment]]]:
        """Lay out one round: these attempts from ``start``, the other tasks as ``prior`` left them."""
        job = run.job
        ready = start + job.pending * k
        by_key = {a.key: a for a in attempts}
        results = dict(prior)
        ends: dict[str, float] = {}
        tasks: dict[int, list[Segment]] = {}
        for task in _in_order(job.tasks):
            attempt = by_key.get(task.key)
            if attempt is None:
                continue
            if task.disabled:
                tasks[attempt.run_id] = [gate_segment("DISABLED", start)]
                results[task.key], ends[task.key] = ("DISABLED", None), start
                continue
            if not attempt.selected:
                tasks[attempt.run_id] = [_excluded(start, NOT_SELECTED)]
                results[task.key], ends[task.key] = (None, None), start
                continue
            begin = max([ends[d] for d in task.upstream if d in ends], default=ready)
            segs = self._task_segments(task, attempt, start, ready, begin, k, results)
            tasks[attempt.run_id] = segs
            last = segs[-1]
            ends[task.key] = last.start
            results[task.key] = (last.result, attempt.outcome_value if last.result == "SUCCESS" else None)
        finish = max(ends.values(), default=ready)
        return _run_segments(job, start, ready, finish, finish + job.terminating * k, results), tasks

    def _task_segments(
        self,
        task: Task,
        attempt: Attempt,
        start: float,
        ready: float,
        begin: float,
        k: float,
        results: dict[str, tuple[str | None, str | None]],
    ) -> list[Segment]:
        segs = [Segment(start, "PENDING", _DEFAULT_MESSAGES["PENDING"])]
        if begin > ready:
            segs.append(Segment(ready, "BLOCKED", "Waiting for upstream tasks"))
        gate = _gate(task, results)
        if gate is not None:
            segs.append(gate_segment(gate, begin))
            return segs
        failed = attempt.outcome.error is not None
        segs.append(Segment(begin, "RUNNING", _DEFAULT_MESSAGES["RUNNING"]))
        segs.append(
            Segment(
                begin + task_seconds(task) * k,
                "TERMINATED",
                WORKLOAD_FAILED if failed else "",
                "FAILED" if failed else "SUCCESS",
                final=True,
                code="RUN_EXECUTION_ERROR" if failed else "SUCCESS",
            )
        )
        return segs

    def iteration_stats(self, run: Run, attempt: Attempt, now: float) -> dict[str, int]:
        """A for-each attempt's ``task_run_stats`` at ``now``."""
        task = run.job.task(attempt.key)
        assert task.for_each is not None
        segs = self.timeline(run).tasks[attempt.run_id]
        total = len(task.for_each.inputs)
        stats = dict.fromkeys(("active", "completed", "failed", "succeeded", "scheduled"), 0)
        running = [s.start for s in segs if s.state == "RUNNING"]
        if running and attempt.selected:
            stopped = min((s.start for s in segs if s.state in ("TERMINATING", "TERMINATED")), default=now)
            speed = run.speed if attempt.round == 0 else run.repairs[attempt.round - 1].speed
            k = (run.scale if attempt.round == 0 else 1.0) / speed
            _count_iterations(stats, task, attempt, running[0], task.duration * k, min(now, stopped))
        out = {f"{name}_iterations": value for name, value in stats.items()}
        out["total_iterations"] = total
        return out

    def iteration_segments(self, run: Run, attempt: Attempt, now: float) -> list[list[Segment]]:
        """Each iteration of a for-each attempt that has begun by ``now``, as its segments."""
        task = run.job.task(attempt.key)
        segs = self.timeline(run).tasks[attempt.run_id]
        running = [s.start for s in segs if s.state == "RUNNING"]
        if task.for_each is None or not running or not attempt.selected:
            return []
        stopped = min((s.start for s in segs if s.state in ("TERMINATING", "TERMINATED")), default=math.inf)
        k = run.scale / self.speed if attempt.round == 0 else 1.0 / self.speed
        each, concurrency = task.duration * k, max(task.for_each.concurrency, 1)
        out = []
        for i, outcome in enumerate(attempt.iterations):
            start = running[0] + (i // concurrency) * each
            if start > now or start >= stopped:
                continue
            end, failed = start + each, outcome.error is not None
            iteration = [Segment(start, "RUNNING", _DEFAULT_MESSAGES["RUNNING"])]
            if end > stopped + 1e-9:
                iteration.append(
                    Segment(
                        stopped, "TERMINATED", "Run cancelled.", "CANCELED", final=True, code="USER_CANCELED"
                    )
                )
            else:
                result, code = ("FAILED", "RUN_EXECUTION_ERROR") if failed else ("SUCCESS", "SUCCESS")
                message = WORKLOAD_FAILED if failed else ""
                iteration.append(Segment(end, "TERMINATED", message, result, final=True, code=code))
            out.append(iteration)
        return out


def _count_iterations(
    stats: dict[str, int], task: Task, attempt: Attempt, begin: float, each: float, now: float
) -> None:
    concurrency = max(task.for_each.concurrency if task.for_each else 1, 1)
    for i, outcome in enumerate(attempt.iterations):
        start = begin + (i // concurrency) * each
        if start > now:
            continue
        stats["scheduled"] += 1
        if start + each > now + 1e-9:  # float sums: the last wave ends exactly when the task does
            stats["active"] += 1
            continue
        stats["completed"] += 1
        stats["failed" if outcome.error else "succeeded"] += 1


def task_seconds(task: Task) -> float:
    """How long (before speed and scale) a task runs: a for-each task runs its iterations in waves."""
    if task.for_each is None:
        return task.duration
    waves = math.ceil(len(task.for_each.inputs) / max(task.for_each.concurrency, 1))
    return waves * task.duration


def gate_segment(result: str, at: float) -> Segment:
    """The end of a task that never ran: its upstream failed, was cancelled, or excluded it."""
    if result == "EXCLUDED":
        return _excluded(at, CONDITION_NOT_MET)
    if result == "DISABLED":
        return Segment(at, "SKIPPED", TASK_DISABLED, "DISABLED", final=True, code="DISABLED")
    if result == "UPSTREAM_CANCELED":
        return Segment(at, "TERMINATED", "Upstream task(s) canceled.", result, final=True, code="CANCELED")
    return Segment(
        at, "TERMINATED", "Upstream task(s) failed.", result, final=True, code="RUN_EXECUTION_ERROR"
    )


def _excluded(at: float, message: str) -> Segment:
    return Segment(at, "SKIPPED", message, "EXCLUDED", final=True, code="SKIPPED")


def _gate(task: Task, results: dict[str, tuple[str | None, str | None]]) -> str | None:
    """None when the task may run; else the result it ends with unrun (ALL_SUCCESS semantics)."""
    seen = [(results.get(key, (None, None)), want) for key, want in task.deps]
    found = {result for (result, _), _ in seen}
    if found & {"FAILED", "TIMEDOUT", "UPSTREAM_FAILED"}:
        return "UPSTREAM_FAILED"
    if found & {"CANCELED", "UPSTREAM_CANCELED"}:
        return "UPSTREAM_CANCELED"
    if "DISABLED" in found:
        return "DISABLED"
    if "EXCLUDED" in found or any(want is not None and got != want for (_, got), want in seen):
        return "EXCLUDED"
    return None


def _run_segments(
    job: Job,
    start: float,
    ready: float,
    finish: float,
    end: float,
    results: dict[str, tuple[str | None, str | None]],
) -> list[Segment]:
    """A round's run-level segments; its result comes from the latest result of every task."""
    failed = [t.key for t in job.tasks if results.get(t.key, (None, None))[0] in UNSUCCESSFUL]
    errors = [k for k in failed if results[k][0] == "FAILED"]
    message = ""
    if errors:
        message = (
            f"Task {errors[0]} failed with message: {WORKLOAD_FAILED}. "
            "This caused all downstream tasks to get skipped."
        )
    elif failed:
        message = f"Task {failed[0]} ended {results[failed[0]][0]}."
    return [
        Segment(start, "PENDING", _DEFAULT_MESSAGES["PENDING"]),
        Segment(ready, "RUNNING", _DEFAULT_MESSAGES["RUNNING"]),
        Segment(finish, "TERMINATING", ""),
        Segment(
            end,
            "TERMINATED",
            message,
            "FAILED" if failed else "SUCCESS",
            final=True,
            code="RUN_EXECUTION_ERROR" if failed else "SUCCESS",
        ),
    ]


def _latest_results(
    run: Run, tasks: dict[int, list[Segment]], before_round: int
) -> dict[str, tuple[str | None, str | None]]:
    """Task key -> (result, outcome) of its latest attempt before a round (None, None: not selected)."""
    out: dict[str, tuple[str | None, str | None]] = {}
    for attempt in run.attempts:
        if attempt.round >= before_round:
            continue
        last = tasks[attempt.run_id][-1]
        if not attempt.selected:
            out[attempt.key] = (None, None)
        else:
            ok = last.result == "SUCCESS"
            out[attempt.key] = (last.result, attempt.outcome_value if ok else None)
    return out


def select(job: Job, names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Expand ``only``: ``+key`` adds its upstream tasks, ``key+`` its downstream ones.

    Returns:
        The chosen task keys in job order, and the names that match no task.
    """
    keys = {t.key for t in job.tasks}
    chosen: set[str] = set()
    unknown: list[str] = []
    for name in names:
        key = name.removeprefix("+").removesuffix("+")
        if key not in keys:
            unknown.append(name)
            continue
        chosen.add(key)
        if name.startswith("+"):
            chosen |= upstream_of(job, [key])
        if name.endswith("+") and len(name) > 1:
            chosen |= downstream_of(job, [key])
    return [t.key for t in job.tasks if t.key in chosen], unknown


def upstream_of(job: Job, keys: Sequence[str]) -> set[str]:
    """Every task the given ones depend on, directly or not."""
    found: set[str] = set()
    todo = list(keys)
    while todo:
        for dep in job.task(todo.pop()).upstream:
            if dep not in found:
                found.add(dep)
                todo.append(dep)
    return found


def downstream_of(job: Job, keys: Sequence[str]) -> set[str]:
    """Every task that depends on the given ones, directly or not."""
    found: set[str] = set()
    todo = list(keys)
    while todo:
        key = todo.pop()
        for task in job.tasks:
            if key in task.upstream and task.key not in found:
                found.add(task.key)
                todo.append(task.key)
    return found


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


def default_source(task: Task, job_parameters: Mapping[str, str]) -> str:
    """A made-up notebook source declaring the task's parameters as text widgets."""
    lines = ["# Databricks notebook source", f"# MAGIC %md # {task.key}", "", "# COMMAND ----------", ""]
    for name, value in {**task.base_parameters, **job_parameters}.items():
        lines.append(f"dbutils.widgets.text({json.dumps(name)}, {json.dumps(value)}, {json.dumps(name)})")
    lines += ["", "# COMMAND ----------", "", 'dbutils.notebook.exit("done")', ""]
    return "\n".join(lines)


def _check_tasks(tasks: list[Task]) -> None:
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate task keys in {keys}")
    for task in tasks:
        missing = [d for d in task.upstream if d not in keys]
        if missing:
            raise ValueError(f"task {task.key!r} depends on unknown tasks {missing}")
        if task.condition is not None and task.condition.op not in _CONDITION_OPS:
            raise ValueError(f"task {task.key!r}: unknown condition op {task.condition.op!r}")
    _in_order(tasks)


def resolve_references(value: str, run: Run) -> str:
    """A parameter value with its ``{{job.parameters.NAME}}``, ``{{job.id}}``, ``{{job.name}}`` and
    ``{{job.run_id}}`` filled in (other references, ``{{input}}`` among them, stay as they are)."""
    if "{{" not in value:
        return value
    known = {"job.id": str(run.job.job_id), "job.name": run.job.name, "job.run_id": str(run.run_id)}
    known.update({f"job.parameters.{k}": v for k, v in run.job_parameter_values.items()})

    def fill(match: re.Match[str]) -> str:
        return known.get(match.group(1), match.group(0))

    return _REFERENCE.sub(fill, value)


def _resolve(operand: str, params: Mapping[str, str]) -> str:
    text = operand.strip()
    if text.startswith("{{") and text.endswith("}}"):
        name = text[2:-2].strip().removeprefix("job.parameters.")
        return params.get(name, "")
    return operand


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
        progress = [t for t in pending if all(d in done for d in t.upstream)]
        if not progress:
            raise ValueError(f"circular depends_on among {[t.key for t in pending]}")
        for task in progress:
            ordered.append(task)
            done.add(task.key)
        pending = [t for t in pending if t.key not in done]
    return ordered


def _past_scale(rng: random.Random, taken: Sequence[float]) -> float:
    """A past run's length, as a share of the task's (0.9 to 1.1), at least 0.1 % from the others'.

    Times are whole milliseconds: two runs of a few seconds whose lengths differ by a fraction of one
    read the same or not as the epoch falls. Drawn again (20 times at most: a history of a hundred
    or more runs must let some come close) while it falls that near another.
    """
    scale = rng.uniform(0.9, 1.1)
    for _ in range(20):
        if all(abs(scale - other) >= 0.001 for other in taken):
            break
        scale = rng.uniform(0.9, 1.1)
    return scale


def _execute_once(task: Task, attempt: Attempt, executed: _Executed | None) -> None:
    """Execute the attempt, or take what an attempt of the same task with the same parameters did."""
    if executed is None:
        _execute_attempt(task, attempt)
        return
    key = (task.key, tuple(sorted(attempt.params.items())))
    done = executed.get(key)
    if done is None:
        _execute_attempt(task, attempt)
        executed[key] = attempt
        return
    attempt.outcome, attempt.outcome_value = done.outcome, done.outcome_value
    attempt.iterations = list(done.iterations)
    attempt.iteration_params = [dict(p) for p in done.iteration_params]


def _execute_attempt(task: Task, attempt: Attempt) -> None:
    """Run the task's notebook (each iteration's, for a for-each task) or evaluate its condition."""
    if task.condition is not None:
        attempt.outcome_value = task.condition.outcome(attempt.params)
        return
    if task.for_each is None:
        attempt.outcome = _execute(task, attempt.params)
        return
    for item in task.for_each.inputs:
        params = {k: v.replace("{{input}}", item) for k, v in attempt.params.items()}
        attempt.iteration_params.append({k: params[k] for k in attempt.resolved})
        attempt.iterations.append(_execute(task, params))
    errors = [o for o in attempt.iterations if o.error]
    if errors:
        attempt.outcome = TaskOutcome(error=errors[0].error, error_trace=errors[0].error_trace)


def _execute(task: Task, params: dict[str, str]) -> TaskOutcome:
    if task.notebook is None:
        return TaskOutcome()
    try:
        return TaskOutcome(result=task.notebook(dict(params)))
    except Exception as exc:  # the notebook "failed": report it as Databricks does
        return TaskOutcome(error=f"{type(exc).__name__}: {exc}", error_trace=_notebook_trace(task, exc))


def _notebook_trace(task: Task, exc: BaseException) -> str:
    """The trace from the notebook's own frame on, its frames named after the notebook's workspace path.

    No file of this machine is named: the frames below the notebook (its helpers) show as the notebook too,
    with line numbers counted from the start of each function.
    """
    tb = exc.__traceback__
    frames = traceback.extract_tb(tb.tb_next if tb else None)
    lines = ["Traceback (most recent call last):\n"]
    first_lines = _first_lines(tb.tb_next if tb else None)
    for frame, first in zip(frames, first_lines, strict=False):
        lineno = (frame.lineno or first) - first + 1
        lines.append(f'  File "{task.notebook_path}", line {lineno}, in {frame.name}\n')
        if frame.line:
            lines.append(f"    {frame.line.strip()}\n")
    lines.extend(traceback.format_exception_only(type(exc), exc))
    return "".join(lines)


def _first_lines(tb: Any) -> list[int]:
    out = []
    while tb is not None:
        out.append(tb.tb_frame.f_code.co_firstlineno)
        tb = tb.tb_next
    return out
