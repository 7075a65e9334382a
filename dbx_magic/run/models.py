"""Runs and their results: plain dataclasses built from the API's JSON, and the state logic.

Which life-cycle states end a run, and which results count as success, is decided here and only
here (``is_finished``, ``RunResult.ok``). The Arazzo seed only knows PENDING/RUNNING/TERMINATING as
"keep polling" and stops early on anything else; here every state that is not known to be final
keeps the poller going, so QUEUED, BLOCKED, WAITING_FOR_RETRY and values the API adds later are waited
through, while TERMINATED, SKIPPED and INTERNAL_ERROR (or ``status.state == "TERMINATED"``) end it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import GOES_ON, RunFailed, RunNotFinished
from ..safe import web_link
from .polling import Estimate, History, estimate, run_parameters
from .timing import Timing

if TYPE_CHECKING:
    from .compare import RunComparison
    from .outputs import ResultsPage

if TYPE_CHECKING:
    from ..api.client import DatabricksClient

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "OK_RESULTS",
    "Iteration",
    "RepairRecord",
    "RunResult",
    "TaskResult",
    "is_finished",
]

FINAL_STATES = frozenset({"TERMINATED", "SKIPPED", "INTERNAL_ERROR"})
ACTIVE_STATES = frozenset({"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING_FOR_RETRY"})
OK_RESULTS = frozenset({"SUCCESS", "SUCCESS_WITH_FAILURES"})
NOT_RUN = frozenset({"DISABLED"})
"""Results of a task that was never meant to run: neither a failure nor a skip."""


def _state(run: Mapping[str, Any]) -> dict[str, Any]:
    state = run.get("state")
    return state if isinstance(state, dict) else {}


def _status(run: Mapping[str, Any]) -> dict[str, Any]:
    status = run.get("status")
    return status if isinstance(status, dict) else {}


def is_finished(run: Mapping[str, Any]) -> bool:
    """True when a ``runs/get`` answer describes a run that will not change any more."""
    return _state(run).get("life_cycle_state") in FINAL_STATES or _status(run).get("state") == "TERMINATED"


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def resolved_values(task: Mapping[str, Any]) -> dict[str, str] | None:
    """A task's ``resolved_values`` as one flat map (None when the API gave none): a notebook task's
    ``base_parameters``, another kind's ``parameters``, a condition's ``left`` and ``right``."""
    values = task.get("resolved_values")
    if not isinstance(values, dict):
        return None
    out: dict[str, str] = {}
    for kind in values.values():
        if not isinstance(kind, dict):
            continue
        for name in ("base_parameters", "parameters", "named_parameters", "job_parameters"):
            if isinstance(kind.get(name), dict):
                out.update({str(k): str(v) for k, v in kind[name].items()})
        out.update({k: str(kind[k]) for k in ("left", "right") if kind.get(k) is not None})
    return out


def _task_parameters(task: Mapping[str, Any]) -> dict[str, str]:
    notebook = task.get("notebook_task")
    params = notebook.get("base_parameters") if isinstance(notebook, dict) else None
    return {str(k): str(v) for k, v in params.items()} if isinstance(params, dict) else {}


@dataclass(frozen=True)
class Iteration:
    """One iteration of a for-each task: a task run of its own.

    Attributes:
        index: Its place among the iterations (0 first).
        run_id: Its own task run id.
        parameters: Its parameters, resolved (``{{input}}`` filled in) when the API said so.
        life_cycle_state, result_state, state_message: Its state, as for a task.
        output: Its notebook's exit value; error: its error, for a failed one.
        run_page_url: Its page.
    """

    index: int
    run_id: int | None
    parameters: dict[str, str] = field(default_factory=dict, compare=False)
    life_cycle_state: str | None = None
    result_state: str | None = None
    state_message: str = ""
    output: str | None = None
    error: str | None = None
    run_page_url: str | None = None

    @classmethod
    def from_api(cls, index: int, item: Mapping[str, Any]) -> Iteration:
        state = _state(item)
        return cls(
            index=index,
            run_id=_int_or_none(item.get("run_id")),
            parameters=resolved_values(item) or _task_parameters(item),
            life_cycle_state=state.get("life_cycle_state") or _status(item).get("state"),
            result_state=state.get("result_state"),
            state_message=state.get("state_message") or "",
            run_page_url=web_link(item.get("run_page_url")),
        )

    @property
    def failed(self) -> bool:
        return self.result_state is not None and self.result_state not in OK_RESULTS

    @property
    def value(self) -> Any:
        """The exit value decoded when it is JSON (the text otherwise; None without one)."""
        from .render import decode

        return decode(self.output)


@dataclass(frozen=True)
class TaskResult:
    """One task of a run: its state, and once finished its notebook exit value or error.

    Attributes:
        key: The task key.
        run_id: The task run's own id (``runs/get-output`` takes this one).
        life_cycle_state: e.g. ``RUNNING``; shown verbatim even when unknown.
        result_state: e.g. ``SUCCESS``, ``FAILED``; None until the task is finished.
        state_message: The API's message for the task, often empty.
        output: The value the notebook passed to ``dbutils.notebook.exit``, if any.
        output_truncated: True when the API truncated that value.
        error: The error, for a failed task.
        error_trace: The error's trace, for a failed task.
        run_page_url: The task run's page.
        attempt_number: The API's count, from 0: 0 for the first attempt; a retry or a repair makes
            the next one. Every display counts from 1, as :attr:`attempt` does ("attempt 2").
        iteration_counts: For a for-each task, its iterations' counts (``task_run_stats``: active,
            completed, failed, succeeded, total...), else None.
        iterations: For a for-each task that ended, each iteration (parameters, state, output, error),
            read once at the end; empty otherwise.
        resolved_parameters: The task's parameters after ``{{job.parameters.x}}`` and the like were
            filled in (``include_resolved_values``); None when the API did not say.
        parameters: The task's parameters as the run shows them (before resolution).
        disabled: True for a task disabled in the job (it ends ``DISABLED``: neither failed nor skipped).
        outcome: For a condition task that ran, ``"true"`` or ``"false"``, else None.
        notebook_path: The notebook a notebook task runs (None for other kinds of task); only
            notebook tasks have a results page to export.
        timing: Its queue, set-up, execution and clean-up durations.
    """

    key: str
    run_id: int | None
    life_cycle_state: str | None
    result_state: str | None = None
    state_message: str = ""
    output: str | None = None
    output_truncated: bool = False
    error: str | None = None
    error_trace: str | None = None
    run_page_url: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    attempt_number: int = 0
    iteration_counts: dict[str, int] | None = field(default=None, compare=False)
    outcome: str | None = None
    notebook_path: str | None = None
    timing: Timing = field(default_factory=Timing, compare=False)
    iterations: tuple[Iteration, ...] = field(default=(), compare=False)
    resolved_parameters: dict[str, str] | None = field(default=None, compare=False)
    parameters: dict[str, str] = field(default_factory=dict, compare=False)
    disabled: bool = False

    @classmethod
    def from_api(cls, task: dict[str, Any]) -> TaskResult:
        state = _state(task)
        status = _status(task)
        for_each = task.get("for_each_task")
        stats = (for_each.get("stats") or {}).get("task_run_stats") if isinstance(for_each, dict) else None
        condition = task.get("condition_task")
        outcome = condition.get("outcome") if isinstance(condition, dict) else None
        return cls(
            key=str(task.get("task_key", "")),
            run_id=_int_or_none(task.get("run_id")),
            life_cycle_state=state.get("life_cycle_state") or status.get("state"),
            result_state=state.get("result_state"),
            state_message=state.get("state_message") or "",
            run_page_url=web_link(task.get("run_page_url")),
            start_time=_int_or_none(task.get("start_time")) or None,
            end_time=_int_or_none(task.get("end_time")) or None,
            attempt_number=_int_or_none(task.get("attempt_number")) or 0,
            iteration_counts=_counts(stats) if isinstance(stats, dict) else None,
            outcome=None if outcome is None else str(outcome),
            notebook_path=(task.get("notebook_task") or {}).get("notebook_path") or None,
            timing=Timing.from_api(task),
            resolved_parameters=resolved_values(task),
            parameters=_task_parameters(task),
            disabled=bool(task.get("disabled")) or state.get("result_state") in NOT_RUN,
        )

    def with_output(self, output: dict[str, Any]) -> TaskResult:
        """Return a copy holding what ``runs/get-output`` said for this task."""
        notebook = output.get("notebook_output") or {}
        return replace(
            self,
            output=notebook.get("result"),
            output_truncated=bool(notebook.get("truncated")),
            error=output.get("error") or None,
            error_trace=output.get("error_trace") or None,
        )

    @property
    def attempt(self) -> int:
        """Which attempt this is, counted from 1 as every display says it (``attempt_number + 1``)."""
        return self.attempt_number + 1

    @property
    def failed(self) -> bool:
        return self.result_state is not None and self.result_state not in OK_RESULTS | NOT_RUN

    @property
    def value(self) -> Any:
        """The exit value decoded when it is JSON (the text otherwise; None without one)."""
        from .render import decode

        return decode(self.output)


def _counts(stats: Mapping[str, Any]) -> dict[str, int]:
    return {str(k): n for k, v in stats.items() if (n := _int_or_none(v)) is not None}


def _latest_attempts(tasks: tuple[TaskResult, ...]) -> tuple[TaskResult, ...]:
    """The latest attempt of each task, in the order the tasks first appear (runs/get lists every
    attempt of a repaired or retried task)."""
    latest: dict[str, TaskResult] = {}
    for task in tasks:
        seen = latest.get(task.key)
        if seen is None or task.attempt_number >= seen.attempt_number:
            latest[task.key] = task
    return tuple(latest.values())


@dataclass(frozen=True)
class RepairRecord:
    """One round of a run: the original run, or a repair of it (``runs/get`` ``repair_history``).

    Attributes:
        repair_id: The repair's id; None for the original run.
        kind: ``"ORIGINAL"`` or ``"REPAIR"``.
        start_time: When the round began (epoch ms).
        end_time: When it ended (epoch ms), None while it goes on.
        result_state: How the round ended (``SUCCESS``, ``FAILED``...), None while it goes on.
        tasks: The task keys it ran, in the order of their runs.
        task_run_ids: Their task run ids.
    """

    repair_id: int | None
    kind: str
    start_time: int | None
    end_time: int | None
    result_state: str | None
    tasks: tuple[str, ...]
    task_run_ids: tuple[int, ...]

    @classmethod
    def from_api(cls, item: Mapping[str, Any], keys: Mapping[int, str]) -> RepairRecord:
        """One ``repair_history`` entry; ``keys`` maps task run ids to task keys."""
        ids = tuple(i for i in (_int_or_none(r) for r in item.get("task_run_ids") or ()) if i is not None)
        return cls(
            repair_id=_int_or_none(item.get("id")),
            kind=str(item.get("type") or ("REPAIR" if item.get("id") else "ORIGINAL")),
            start_time=_int_or_none(item.get("start_time")) or None,
            end_time=_int_or_none(item.get("end_time")) or None,
            result_state=_state(item).get("result_state"),
            tasks=tuple(keys[i] for i in ids if i in keys),
            task_run_ids=ids,
        )

    @property
    def line(self) -> str:
        """One line: which round, which tasks, how it ended."""
        name = "original run" if self.repair_id is None else f"repair {self.repair_id}"
        return f"{name}: {', '.join(self.tasks) or 'no tasks'} -> {self.result_state or 'going'}"


@dataclass(frozen=True)
class RunResult:
    """A run as last seen: the seed workflow's outputs and everything else worth having.

    ``job_id``, ``run_id``, ``result_state`` and ``run_page_url`` are the seed's outputs; the same
    four come as a dict under the seed's own names in ``outputs``.

    ``tasks`` holds the latest attempt of each task; ``attempts`` every attempt, oldest first;
    ``repairs`` the run's rounds (the original run, then each repair) once they were read with
    ``include_history`` (a repair reads them). ``client`` is the client that launched or watched the
    run (``show()``, ``export()`` and ``repair()`` go through it; it is left out of reprs and pickles);
    ``exports`` holds the pages already fetched. ``parameters`` are the parameters sent at launch,
    ``defaults`` the job's own defaults then (``changed_parameters``: those that differ).
    """

    job_id: int | None
    run_id: int
    job_name: str | None = None
    number_in_job: int | None = None
    life_cycle_state: str | None = None
    result_state: str | None = None
    state_message: str = ""
    run_page_url: str | None = None
    tasks: tuple[TaskResult, ...] = ()
    run: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    finished: bool = False
    termination_code: str | None = None
    queue_reason: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    warnings: tuple[str, ...] = ()
    idempotency_token: str | None = None
    expected_duration: float | None = None
    parameters: dict[str, str] = field(default_factory=dict, compare=False)
    defaults: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    history: History | None = field(default=None, repr=False, compare=False)
    attempts: tuple[TaskResult, ...] = field(default=(), repr=False, compare=False)
    repairs: tuple[RepairRecord, ...] = field(default=(), compare=False)
    client: Any = field(default=None, repr=False, compare=False)
    exports: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    queue_code: str | None = None
    termination_type: str | None = None
    performance_target: str | None = None
    trouble: str = field(default="", repr=False, compare=False)
    """While the workspace does not answer: what the watcher says of it ("workspace unreachable for
    1:40 (503), still trying"); empty once it answers again."""

    @classmethod
    def from_api(
        cls,
        run: dict[str, Any],
        *,
        job_name: str | None = None,
        run_id: int | None = None,
        job_id: int | None = None,
        idempotency_token: str | None = None,
        expected_duration: float | None = None,
    ) -> RunResult:
        """Build a RunResult from a ``runs/get`` answer (fields it lacks stay None)."""
        state = _state(run)
        status = _status(run)
        termination = status.get("termination_details") or {}
        queue = status.get("queue_details") or {}
        life_cycle = state.get("life_cycle_state") or status.get("state")
        result_state = state.get("result_state")
        finished = is_finished(run)
        if finished and result_state is None:
            # The new `status` says how it ended where the legacy `state` does not.
            code = termination.get("code")
            if code in OK_RESULTS:
                result_state = code
            elif life_cycle == "INTERNAL_ERROR" or termination.get("type") == "INTERNAL_ERROR":
                result_state = "INTERNAL_ERROR"
            elif code:
                result_state = code
        attempts = tuple(TaskResult.from_api(t) for t in run.get("tasks") or () if isinstance(t, dict))
        keys = {a.run_id: a.key for a in attempts if a.run_id is not None}
        history = [h for h in run.get("repair_history") or () if isinstance(h, dict)]
        warnings = []
        if result_state == "SUCCESS_WITH_FAILURES":
            warnings.append("The run succeeded, but some of its tasks failed (SUCCESS_WITH_FAILURES).")
        warnings.extend(getattr(run, "warnings", ()))  # what the client could not read whole
        return cls(
            job_id=_int_or_none(run.get("job_id")) or job_id,
            run_id=_int_or_none(run.get("run_id")) or int(run_id or 0),
            job_name=job_name or run.get("run_name"),
            number_in_job=_int_or_none(run.get("number_in_job")),
            life_cycle_state=life_cycle,
            result_state=result_state,
            state_message=state.get("state_message") or termination.get("message") or "",
            run_page_url=web_link(run.get("run_page_url")),
            tasks=_latest_attempts(attempts),
            run=run,
            finished=finished,
            termination_code=termination.get("code"),
            queue_reason=state.get("queue_reason") or queue.get("message"),
            start_time=_int_or_none(run.get("start_time")) or None,
            end_time=_int_or_none(run.get("end_time")) or None,
            warnings=tuple(warnings),
            idempotency_token=idempotency_token,
            expected_duration=expected_duration,
            attempts=attempts,
            repairs=tuple(RepairRecord.from_api(h, keys) for h in history),
            queue_code=queue.get("code"),
            termination_type=termination.get("type"),
            performance_target=run.get("effective_performance_target"),
        )

    @property
    def sent_parameters(self) -> dict[str, str]:
        """The run's parameters as the workspace holds them: its job parameters' values (defaults
        included), else the notebook parameters sent with it; what the launch sent when the answer
        says neither."""
        return run_parameters(self.run) or dict(self.parameters)

    # -- the seed's outputs -------------------------------------------------------------------
    @property
    def outputs(self) -> dict[str, Any]:
        """The seed workflow's outputs under its own names."""
        return {
            "jobId": self.job_id,
            "runId": self.run_id,
            "resultState": self.result_state,
            "runPageUrl": self.run_page_url,
        }

    # -- verdict ------------------------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """True when the run finished with SUCCESS (or SUCCESS_WITH_FAILURES, with a warning)."""
        return self.finished and self.life_cycle_state != "INTERNAL_ERROR" and self.result_state in OK_RESULTS

    @property
    def changed_parameters(self) -> dict[str, str]:
        """The parameters sent that differ from the job's defaults (all of them when the defaults
        are not known): what tells this run from the job's usual one."""
        return {k: v for k, v in self.parameters.items() if self.defaults.get(k) != v}

    @property
    def failed_tasks(self) -> tuple[TaskResult, ...]:
        return tuple(t for t in self.tasks if t.failed)

    @property
    def output(self) -> str | None:
        """The exit value, when exactly one task has one."""
        values = [t.output for t in self.tasks if t.output is not None]
        return values[0] if len(values) == 1 else None

    @property
    def round(self) -> int:
        """How many times the run was repaired (0 for a run never repaired)."""
        return max(0, len(self.repairs) - 1)

    @property
    def round_started(self) -> int | None:
        """When the latest round began (epoch ms): the latest repair's start, else the run's."""
        latest = self.repairs[-1] if len(self.repairs) > 1 else None
        return (latest.start_time if latest is not None else None) or self.start_time

    def elapsed(self, now_wall: float) -> float | None:
        """Seconds the latest round has been going at ``now_wall`` (epoch seconds), to its end once it
        has one; None before the run's start time is known. A repair counts from its own start."""
        started = self.round_started
        if not started:
            return None
        end = self.end_time / 1000 if (self.finished and self.end_time) else now_wall
        return max(0.0, end - started / 1000)

    @property
    def queued(self) -> float:
        """Seconds the run spent in the queue (its ``queue_duration``), 0 when unknown."""
        try:
            return max(0.0, float(self.run.get("queue_duration") or 0) / 1000)
        except (TypeError, ValueError):
            return 0.0

    def estimate(self, elapsed: float) -> Estimate:
        """What the job's history says about the end, ``elapsed`` seconds after the run started
        (the poll model's own estimate: the widget's ETA)."""
        return estimate(self.history, elapsed - self.queued)

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (or to now's last sight, when still running)."""
        if not self.start_time:
            return None
        end = self.end_time or None
        return None if end is None else max(0.0, (end - self.start_time) / 1000)

    def failure_summary(self) -> str:
        """One short line: how the run ended and its cause first (the failing task's own error when
        there is one, else the state message), then the link."""
        name = f" of job {self.job_name!r}" if self.job_name else ""
        state = self.result_state or self.life_cycle_state or "UNKNOWN"
        if self.life_cycle_state in ("SKIPPED", "INTERNAL_ERROR") and state != self.life_cycle_state:
            state = f"{self.life_cycle_state} ({state})"
        cause = self.cause()
        text = f"Run {self.run_id}{name} ended {state}" + (f": {cause}." if cause else ".")
        if self.run_page_url:
            text += f" See {self.run_page_url}"
        return text

    @property
    def since_success(self) -> str:
        """For a failed run, one line on the job's last success and how this run's parameters differ
        (``last success: run 1204, 2 days ago; differs in strict=true (was false)``); "" otherwise."""
        from .explain import since_success

        return since_success(self)

    def cause(self) -> str:
        """Why the run did not succeed, in one line: the failing task's own error when there is one
        (with the task's key), else the state message ("" for a run that succeeded or gave no reason)."""
        if self.termination_code and self.termination_code not in ("RUN_EXECUTION_ERROR", *OK_RESULTS):
            # The run itself ended it (a cluster, a cancel, a limit): that is the cause, said in words.
            from .explain import ended_words

            return ended_words(self.termination_code, self.state_message)
        failed = [t for t in self.failed_tasks if t.error] or list(self.failed_tasks)
        if failed and failed[0].error:
            first = failed[0]
            cause = f"{_headline(first.error or '')} (task {first.key!r}"
            others = len(self.failed_tasks) - 1
            return cause + (f"; {others} more task{'s' if others != 1 else ''} failed)" if others else ")")
        if self.state_message:
            return self.state_message.rstrip(".")
        if failed:
            return f"task {failed[0].key!r} {failed[0].result_state}"
        return ""

    def raise_for_state(self) -> RunResult:
        """Return self when the run succeeded; raise otherwise.

        Raises:
            RunNotFinished: the run is still going.
            RunFailed: the run finished without success; the message says how and why.
        """
        if not self.finished:
            raise RunNotFinished(
                f"Run {self.run_id} is still {self.life_cycle_state or 'starting'}, so it has no result yet.",
                run_id=self.run_id,
                result=self,
                follow_up=GOES_ON,
            )
        if not self.ok:
            since = self.since_success  # a second line: what differs from the job's last success
            raise RunFailed(
                self.failure_summary() + (f"\n{since}" if since else ""), run_id=self.run_id, result=self
            )
        return self

    def repair(self, client: DatabricksClient | None = None, tasks: Any = None, **kwargs: Any) -> RunResult:
        """Repair this run and wait for it: :func:`dbx_magic.run.repair.repair_run` on this run.

        Args:
            client: The workspace client; None: the one that watched the run, else one built with
                ``DatabricksClient.from_config()`` (a result unpickled elsewhere has none).
            tasks: Task keys to rerun; None reruns every failed task and the tasks after them.
            **kwargs: As for ``repair_run`` (``rerun_dependents``, ``job_parameters``,
                ``notebook_params``, ``idempotency_token``, ``timeout``, ``on_update``...).

        Returns:
            The repaired run, as ``repair_run`` returns it.
        """
        from .repair import repair_run

        if client is None:
            from ..api.client import DatabricksClient

            client = self.client or DatabricksClient.from_config()
        return repair_run(client, self, tasks, **kwargs)

    def compare(self, other: Any = None, client: DatabricksClient | None = None) -> RunComparison:
        """Compare this run with ``other`` (a RunResult, handle or run id; default: the job's last
        success before this run): :func:`dbx_magic.run.compare.compare_runs`."""
        from .compare import compare_runs

        return compare_runs(client or self.client, self, other)

    def __getstate__(self) -> dict[str, Any]:
        # A pickled result leaves its client behind: the client holds the credentials.
        state = dict(self.__dict__)
        state.update(client=None, exports={})
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def timing(self) -> Timing:
        """The run's queue, set-up, execution and clean-up durations (per task: ``task.timing``)."""
        return Timing.from_api(self.run)

    # -- what the notebooks made ------------------------------------------------------------------
    def show(
        self, task: str | None = None, *, confirm: bool = False, views: str = "CODE", client: Any = None
    ) -> ResultsPage:
        """The executed notebooks' results pages (``runs/export``), fetched now, shown in isolated frames.

        In a notebook, the returned page renders as one sandboxed frame per notebook task (its scripts
        cannot reach the notebook). A page over 2 MB is not put into the notebook unless
        ``confirm=True``: its size is said instead.

        Args:
            task: One task's key; None for every notebook task.
            confirm: Render large pages too.
            views: ``CODE``, ``DASHBOARDS`` or ``ALL``.
            client: The client to fetch with (default: the one that watched the run).

        Raises:
            InvalidInput: no such notebook task; DatabricksError: the export failed.
        """
        from .outputs import ResultsPage, fetch_exports

        return ResultsPage(self, fetch_exports(client or self.client, self, task, views), confirm=confirm)

    def export(
        self, path: str | Path, task: str | None = None, *, views: str = "CODE", client: Any = None
    ) -> Path:
        """Save the results pages as one HTML file a browser opens; returns its path.

        One notebook task: its page as exported. Several: one page holding each in an isolated frame.
        """
        return self.show(task, confirm=True, views=views, client=client).save(path)

    # -- display ------------------------------------------------------------------------------
    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        if cycle:
            p.text("RunResult(...)")
            return
        p.text(self.summary_text())

    def summary_text(self) -> str:
        """The result as text: state, reason, parameters, time, each task's whole output, link."""
        from .render import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        from .render import result_html

        return result_html(self)

    @property
    def value(self) -> Any:
        """The single exit value decoded when it is JSON (the text otherwise; None without one)."""
        from .render import decode

        return decode(self.output)

    def output_json(self) -> Any:
        """The exit value parsed as JSON (None when there is no single exit value)."""
        return None if self.output is None else json.loads(self.output)


def _headline(text: str) -> str:
    lines = [line for line in text.strip().split("\n") if line.strip()]  # a lone \r ends no line
    return lines[-1].strip() if lines else ""
