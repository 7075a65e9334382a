"""Repair: rerun the failed tasks of an ended run (and the tasks after them), then watch it again.

:meth:`Repair.check` judges the inputs locally; :func:`plan_repair` reads the run (with its repair
history) and refuses, before anything is sent, what cannot be repaired: a run still going, a run
that succeeded, task keys the run does not have, a run with nothing failed. :func:`repair_run` sends
the repair with its own idempotency token (so a retried repair is the same repair); the repair is a
new round of the run's :class:`~dbx_magic.run.engine.RunHandle`, watched by the same watcher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.client import DatabricksClient, new_idempotency_token
from ..clock import Clock
from ..errors import (
    GOES_ON,
    REPAIR_MAY_HAVE_STARTED,
    DatabricksError,
    InvalidInput,
    PermissionDenied,
    ResourceConflict,
    RunInterrupted,
    ServerError,
    TooManyRequests,
    TransportError,
)
from .checks import check_performance_target, check_timeout, check_token, known_tasks, positive_id, task_keys
from .launch import job_info
from .models import RunResult, TaskResult
from .params import normalise_params
from .watch import OnUpdate

__all__ = [
    "FAILED_RESULTS",
    "Repair",
    "RepairPlan",
    "plan_repair",
    "repair_and_wait",
    "repair_run",
    "send_and_read",
    "send_repair",
]

log = logging.getLogger(__name__)

#: The task results a default repair reruns (with the tasks after them).
FAILED_RESULTS = frozenset(
    {
        "FAILED",
        "TIMEDOUT",
        "CANCELED",
        "UPSTREAM_FAILED",
        "UPSTREAM_CANCELED",
        "INTERNAL_ERROR",
        "MAXIMUM_CONCURRENT_RUNS_REACHED",
    }
)
_SEND_ATTEMPTS = 3
_VISIBLE_WAIT = 30.0  # seconds to wait for runs/get to show an accepted repair


def _run_id_of(run: Any) -> int:
    """The run id of a run id, a RunResult, or anything holding one (a handle, a watched run)."""
    if isinstance(run, int | str) and not isinstance(run, bool):
        return positive_id(run, "run id")
    value = getattr(run, "run_id", None)
    if value is None:
        raise InvalidInput(
            f"The run {run!r} is a {type(run).__name__}: pass a run id, or the RunResult of the run to repair."
        )
    return positive_id(value, "run id")


@dataclass(frozen=True)
class Repair:
    """A repair, checked: what :func:`repair_run` sends. Build it with :meth:`check`.

    Attributes:
        run_id: The run to repair (its job run id).
        tasks: Task keys to rerun; empty for every failed task and the tasks after them.
        rerun_dependents: With ``tasks``, also rerun the tasks after them.
        notebook_params: Changed parameters, given as notebook parameters.
        job_parameters: Changed parameters, given as job parameters.
        idempotency_token: The token the repair carries (a fresh one unless given).
        timeout: Seconds to wait for the repaired run, None for as long as it lasts.
        performance_target: ``STANDARD`` or ``PERFORMANCE_OPTIMIZED`` for the repaired tasks (serverless).
    """

    run_id: int
    tasks: tuple[str, ...] = ()
    rerun_dependents: bool = False
    notebook_params: dict[str, str] = field(default_factory=dict)
    job_parameters: dict[str, str] = field(default_factory=dict)
    idempotency_token: str = field(default_factory=new_idempotency_token)
    timeout: float | None = None
    performance_target: str | None = None

    @classmethod
    def check(
        cls,
        run: Any,
        tasks: str | Iterable[str] | None = None,
        *,
        rerun_dependents: bool = False,
        notebook_params: Mapping[str, Any] | None = None,
        job_parameters: Mapping[str, Any] | None = None,
        idempotency_token: str | None = None,
        timeout: float | None = None,
        performance_target: str | None = None,
    ) -> Repair:
        """Judge every input locally; raise InvalidInput on the first mistake, before anything is sent."""
        run_id = _run_id_of(run)
        keys = task_keys(tasks, "tasks") or ()
        if rerun_dependents and not keys:
            rerun_dependents = False  # the default repair reruns the dependents anyway
        notebook = normalise_params(notebook_params, "notebook parameter")
        jobp = normalise_params(job_parameters, "job parameter")
        if notebook and jobp:
            raise InvalidInput(
                "Both notebook_params and job_parameters were given, and a run takes one kind: pass the "
                "parameters once (they are sent the way the job takes them)."
            )
        return cls(
            run_id=run_id,
            tasks=keys,
            rerun_dependents=rerun_dependents,
            notebook_params=notebook,
            job_parameters=jobp,
            idempotency_token=check_token(idempotency_token) or new_idempotency_token(),
            timeout=check_timeout(timeout),
            performance_target=check_performance_target(performance_target),
        )

    @property
    def params(self) -> dict[str, str]:
        """The changed parameters, whichever kind they were given as."""
        return self.notebook_params or self.job_parameters


@dataclass(frozen=True)
class RepairPlan:
    """What a repair will do, judged from the run as it is now.

    Attributes:
        spec: The checked repair.
        run: The run before the repair (with its repair history).
        reruns: The task keys expected to run again, in the run's order.
        latest_repair_id: The run's latest repair, which the API wants named (None if never repaired).
        notebook_params / job_parameters: The changed parameters, the way the job takes them.
    """

    spec: Repair
    run: RunResult
    reruns: tuple[str, ...]
    latest_repair_id: int | None
    notebook_params: dict[str, str]
    job_parameters: dict[str, str]

    @property
    def line(self) -> str:
        """One sentence saying what the repair reruns."""
        return f"Repairing run {self.run.run_id}: rerunning {', '.join(self.reruns)}."


def _downstream(tasks: Iterable[TaskResult], run: Mapping[str, Any], keys: set[str]) -> set[str]:
    """Every task of the run that depends, directly or not, on one of ``keys``."""
    needs: dict[str, set[str]] = {}
    for task in run.get("tasks") or ():
        if isinstance(task, dict):
            deps = {str(d.get("task_key")) for d in task.get("depends_on") or () if isinstance(d, dict)}
            needs.setdefault(str(task.get("task_key")), set()).update(deps)
    found = set(keys)
    grew = True
    while grew:
        more = {t.key for t in tasks if t.key not in found and needs.get(t.key, set()) & found}
        found |= more
        grew = bool(more)
    return found


def _judge(spec: Repair, run: RunResult) -> tuple[str, ...]:
    """The tasks the repair reruns, or InvalidInput when the run cannot be repaired as asked."""
    rid = run.run_id
    if not run.finished:
        state = run.life_cycle_state or "starting"
        raise InvalidInput(
            f"Run {rid} is still {state}, and only an ended run can be repaired: wait for it to end, "
            "then repair it."
        )
    if run.ok:
        raise InvalidInput(
            f"Run {rid} succeeded ({run.result_state}), so there is nothing to repair: launch the job "
            "again to run it anew."
        )
    if spec.tasks:
        known_tasks(spec.tasks, [t.key for t in run.tasks], f"run {rid}")
        chosen = set(spec.tasks)
        dependents = spec.rerun_dependents
    else:
        chosen = {t.key for t in run.tasks if t.result_state in FAILED_RESULTS}
        dependents = True
        if not chosen:
            raise InvalidInput(
                f"Run {rid} ended {run.result_state or run.life_cycle_state} with no failed task to "
                "rerun: name the tasks to rerun."
            )
    if dependents:
        chosen = _downstream(run.tasks, run.run, chosen)
    return tuple(t.key for t in run.tasks if t.key in chosen)


def plan_repair(client: DatabricksClient, spec: Repair) -> RepairPlan:
    """Read the run (``include_history``) and judge the repair; nothing is sent but reads.

    Raises:
        ResourceDoesNotExist: the run does not exist (or is too old: runs are kept 60 days).
        InvalidInput: the run is still going, succeeded, has none of the tasks named, or nothing failed.
    """
    run = RunResult.from_api(dict(client.get_run(spec.run_id, include_history=True)), run_id=spec.run_id)
    reruns = _judge(spec, run)
    notebook: dict[str, str] = {}
    jobp: dict[str, str] = {}
    if spec.params:
        info = job_info(client, run.job_id or 0)
        notebook, jobp = ({}, spec.params) if info.uses_job_parameters else (spec.params, {})
    latest = next((r.repair_id for r in reversed(run.repairs) if r.repair_id is not None), None)
    return RepairPlan(spec, run, reruns, latest, notebook, jobp)


def _may_have_started(exc: DatabricksError, run_id: int, token: str) -> DatabricksError:
    fields = exc.fields()
    fields.update(run_id=run_id, idempotency_token=token, follow_up=REPAIR_MAY_HAVE_STARTED)
    return type(exc)(exc.message, **fields)


def send_repair(client: DatabricksClient, plan: RepairPlan) -> int:
    """``runs/repair`` for a plan; returns the repair id. Safe to retry: the token makes it one repair.

    Raises:
        DatabricksError: the workspace refused (the message names the run) or did not answer (the
            message also names the token that finds the repair again).
    """
    spec, run_id = plan.spec, plan.spec.run_id
    token = spec.idempotency_token
    for _ in range(_SEND_ATTEMPTS):
        try:
            answer = client.repair_run(
                run_id,
                rerun_tasks=spec.tasks or None,
                rerun_all_failed_tasks=not spec.tasks,
                rerun_dependent_tasks=spec.rerun_dependents or not spec.tasks,
                latest_repair_id=plan.latest_repair_id,
                notebook_params=plan.notebook_params,
                job_parameters=plan.job_parameters,
                idempotency_token=token,
                performance_target=spec.performance_target,
            )
        except (TransportError, ServerError, TooManyRequests, ResourceConflict) as exc:
            raise _may_have_started(exc, run_id, token) from None
        except PermissionDenied as exc:  # a job the credentials may view but not run: say which
            raise exc.refused(f"repair run {run_id}", _job_label(plan.run)) from None
        except DatabricksError as exc:
            fields = exc.fields()
            fields.update(run_id=run_id)
            raise type(exc)(exc.message, **fields) from None
        repair_id = answer.get("repair_id")
        if isinstance(repair_id, int) and not isinstance(repair_id, bool):
            return repair_id
    raise _may_have_started(
        TransportError(f"Repairing run {run_id} failed: the workspace answered without a repair id."),
        run_id,
        token,
    )


def _job_label(run: RunResult) -> str:
    job = f"job {run.job_id}" if run.job_id else f"the job of run {run.run_id}"
    return f"{job} ({run.job_name!r})" if run.job_name else job


def _await_visible(
    client: DatabricksClient, clock: Clock, run_id: int, repair_id: int
) -> Mapping[str, Any] | None:
    """The run once runs/get lists the repair (right away on the service, as a rule); None if it
    still does not after a while (the watch then goes ahead)."""
    deadline = clock.monotonic() + _VISIBLE_WAIT
    while True:
        answer = client.get_run(run_id, include_history=True)
        ids = {h.get("id") for h in answer.get("repair_history") or () if isinstance(h, dict)}
        if repair_id in ids:
            return answer
        if clock.monotonic() >= deadline:
            log.debug("run %s: repair %s not yet in its history; watching anyway", run_id, repair_id)
            return None
        clock.sleep(1.0)


def send_and_read(
    client: DatabricksClient, spec: Repair, *, on_plan: Callable[[RepairPlan], Any] | None = None
) -> tuple[RunResult, Mapping[str, Any] | None, bool]:
    """Plan and send a checked repair, then read the run once the repair shows in it.

    Returns:
        The run as the repair leaves it (before its first poll), the run as read once the repair
        shows (None if it did not yet), and whether every task reruns.

    Raises:
        RunInterrupted: interrupted; the message says whether anything was sent.
        DatabricksError: as :func:`send_repair` and :func:`plan_repair`.
    """
    run_id, token = spec.run_id, spec.idempotency_token
    stage = "planning"
    try:
        plan = plan_repair(client, spec)
        if on_plan is not None:
            on_plan(plan)
        stage = "sending"
        repair_id = send_repair(client, plan)
        stage = "accepted"
        log.debug("run %s: repair %s accepted, rerunning %s", run_id, repair_id, plan.reruns)
        old = plan.run
        before = RunResult(
            job_id=old.job_id,
            run_id=run_id,
            job_name=old.job_name,
            number_in_job=old.number_in_job,
            run_page_url=old.run_page_url,
            idempotency_token=token,
            parameters=dict(spec.params),
            repairs=old.repairs,
        )
        visible = _await_visible(client, client.clock, run_id, repair_id)
    except KeyboardInterrupt as exc:
        if isinstance(exc, RunInterrupted):
            raise
        if stage == "planning":
            raise RunInterrupted(f"Interrupted before repairing run {run_id}: nothing was sent.") from None
        if stage == "accepted":
            raise RunInterrupted(
                f"Stopped waiting for run {run_id} (its repair was just accepted).",
                run_id=run_id,
                follow_up=GOES_ON,
            ) from None
        raise RunInterrupted(
            f"Interrupted while repairing run {run_id}.",
            run_id=run_id,
            idempotency_token=token,
            follow_up=REPAIR_MAY_HAVE_STARTED,
        ) from None
    whole = set(plan.reruns) >= {t.key for t in old.tasks}
    return before, visible, whole


def repair_run(
    client: DatabricksClient,
    run: Any,
    tasks: str | Iterable[str] | None = None,
    *,
    rerun_dependents: bool = False,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    idempotency_token: str | None = None,
    timeout: float | None = None,
    on_update: OnUpdate | None = None,
    cancel_on_interrupt: bool = False,
    watcher: Any = None,
    on_plan: Callable[[RepairPlan], Any] | None = None,
    performance_target: str | None = None,
) -> RunResult:
    """Repair a run that did not succeed and wait for it, as ``run_job_and_wait`` waits for a launch.

    Args:
        client: The workspace client.
        run: The run id, its RunResult or its RunHandle (a handle's next round is the repair).
        tasks: Task keys to rerun (a list or ``"a,b"``); None reruns every failed task and the tasks
            after them.
        rerun_dependents: With ``tasks``, also rerun the tasks after them.
        notebook_params: Changed parameters (sent the way the job takes them).
        job_parameters: The same, for jobs with job-level parameters (give one or the other).
        idempotency_token: At most 64 characters; None makes a fresh one. The repair carries it, so
            retrying finds the same repair instead of repairing twice.
        timeout: Seconds to wait; a timeout stops the waiting, not the run.
        on_update: Called with the current RunResult on every poll, the last one included.
        cancel_on_interrupt: On a kernel interrupt, also cancel the run.
        watcher: The :class:`~dbx_magic.run.engine.Watcher` that watches the repair (default: the
            handle's, else one of this call's own, stepped while it waits).
        on_plan: Given the :class:`RepairPlan` before the repair is sent (to say what it reruns).
        performance_target: ``STANDARD`` or ``PERFORMANCE_OPTIMIZED`` (serverless); None: the job's own.

    Returns:
        The run after the repair: ``tasks`` holds each task's latest attempt with its output,
        ``attempts`` every attempt, ``repairs`` the original run and each repair.

    Raises:
        InvalidInput: bad input, or a run that cannot be repaired (nothing is sent).
        ResourceDoesNotExist: no such run.
        WaitTimeout: the timeout passed; ``error.result`` holds the run as last seen.
        DatabricksError: any other failure; the message names the run (and the token when the
            repair may have started).
        RunInterrupted: the kernel was interrupted.
    """
    from .engine import RunHandle, Watcher

    spec = Repair.check(
        run,
        tasks,
        rerun_dependents=rerun_dependents,
        notebook_params=notebook_params,
        job_parameters=job_parameters,
        idempotency_token=idempotency_token,
        timeout=timeout,
        performance_target=performance_target,
    )
    if isinstance(run, RunHandle):
        handle = run
    else:
        watcher = watcher or Watcher(client.clock, threaded=False)
        handle = watcher.add(client, spec.run_id, source="repair")
    return repair_and_wait(
        handle, spec, on_update=on_update, cancel_on_interrupt=cancel_on_interrupt, on_plan=on_plan
    )


def repair_and_wait(
    handle: Any,
    spec: Repair,
    *,
    on_update: OnUpdate | None = None,
    cancel_on_interrupt: bool = False,
    on_plan: Callable[[RepairPlan], Any] | None = None,
) -> RunResult:
    """Send a checked repair of a handle's run, as its next round, and wait for it (what every face
    that repairs and waits calls)."""
    clock = handle.watcher.clock
    started = clock.monotonic()
    if on_update is not None:
        handle.add_listener(on_update)
    try:
        handle.watcher.repair(handle, spec, on_plan=on_plan)
        remaining = None if spec.timeout is None else max(0.0, spec.timeout - (clock.monotonic() - started))
        return handle.wait_within(remaining, raise_on_failure=False, cancel_on_interrupt=cancel_on_interrupt)
    finally:
        if on_update is not None:
            handle.remove_listener(on_update)
