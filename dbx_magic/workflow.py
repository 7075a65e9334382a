"""The seed workflow ``run-existing-job-and-wait``: getJob -> runJobNow -> pollRun, made correct.

``run_job_and_wait`` is ``start_run`` (getJob, runJobNow) followed by ``wait_for_run`` (pollRun until
the run is finished, then each task's output). Progress flows out through ``on_update``, called with
the current ``RunResult`` on every poll, the last one included. No UI is imported here.

Where the seed is wrong, this is not: every state that is not final keeps the poller going (QUEUED,
BLOCKED, WAITING_FOR_RETRY and states the API adds later included); SKIPPED and INTERNAL_ERROR end
the wait as failures; polls are paced, not a tight loop; absent inputs are left out, not sent as
null; the launch always carries an idempotency token; and once a run exists every error names it.
"""

from __future__ import annotations

import difflib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .client import MAX_IDEMPOTENCY_TOKEN, DatabricksClient, new_idempotency_token
from .errors import (
    DatabricksError,
    InvalidInput,
    ResourceDoesNotExist,
    RunInterrupted,
    ServerError,
    TooManyRequests,
    TransportError,
    WaitTimeout,
)
from .models import RunResult, TaskResult, is_finished
from .params import normalise_params
from .polling import History, PollPolicy, history_from_runs

__all__ = [
    "JobInfo",
    "check_timeout",
    "fetch_outputs",
    "launch_run",
    "positive_id",
    "resolve_job",
    "run_job_and_wait",
    "start_run",
    "wait_for_run",
]

log = logging.getLogger("dbx_magic.workflow")

OnUpdate = Callable[[RunResult], Any]
_LAUNCH_ATTEMPTS = 3


class JobInfo:
    """What getJob said about a job: its name and the parameters it takes, with their defaults."""

    def __init__(self, job_id: int, payload: Mapping[str, Any]) -> None:
        raw = payload.get("settings")
        settings: dict[str, Any] = raw if isinstance(raw, dict) else {}
        self.job_id = job_id
        self.name: str | None = settings.get("name")
        self.job_parameters: dict[str, str] = {
            str(p.get("name")): str(p.get("default", ""))
            for p in settings.get("parameters") or ()
            if isinstance(p, dict) and p.get("name")
        }
        self.notebook_parameters: dict[str, str] = {}
        for task in settings.get("tasks") or ():
            notebook = task.get("notebook_task") if isinstance(task, dict) else None
            if isinstance(notebook, dict):
                for key, value in (notebook.get("base_parameters") or {}).items():
                    self.notebook_parameters.setdefault(str(key), str(value))
        self.max_concurrent_runs = settings.get("max_concurrent_runs")

    @property
    def uses_job_parameters(self) -> bool:
        """True when the job defines job-level parameters (and so takes ``job_parameters``)."""
        return bool(self.job_parameters)

    @property
    def defaults(self) -> dict[str, str]:
        """The parameters the job takes, with their defaults (to pre-fill a form)."""
        return dict(self.job_parameters if self.uses_job_parameters else self.notebook_parameters)


def positive_id(value: Any, what: str) -> int:
    """``value`` as a positive int (an int, or a string of digits), or InvalidInput."""
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"The {what} {value!r} is not a positive integer: pass one such as 1042.")
    return value


def _job_id_from(job: Any) -> int | None:
    """The job id when ``job`` is one, None when it is a name."""
    if isinstance(job, str):
        text = job.strip()
        if not text:
            raise InvalidInput("The job is empty: pass a job id or a job name.")
        if not text.lstrip("+-").isdigit():
            return None
    if not isinstance(job, int | str) or isinstance(job, bool):
        raise InvalidInput(
            f"The job {job!r} is a {type(job).__name__}: pass a job id (a positive integer) or a job name."
        )
    return positive_id(job, "job id")


def resolve_job(client: DatabricksClient, job: int | str) -> int:
    """Turn a job id or a job name into a job id (a name is looked up with ``jobs/list``).

    Raises:
        InvalidInput: a bad id, or a name that matches no job (the message lists close names) or
            several (the message lists their ids).
    """
    job_id = _job_id_from(job)
    if job_id is not None:
        return job_id
    name = str(job).strip()
    matches = client.list_jobs(name=name)
    exact = [j for j in matches if str((j.get("settings") or {}).get("name", "")).lower() == name.lower()]
    if len(exact) == 1:
        return int(exact[0]["job_id"])
    if len(exact) > 1:
        ids = ", ".join(str(j.get("job_id")) for j in exact)
        raise InvalidInput(
            f"The job name {name!r} matches {len(exact)} jobs (ids {ids}): pass the id instead."
        )
    names = sorted({str((j.get("settings") or {}).get("name")) for j in client.list_jobs()})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        hint = f"did you mean {', '.join(repr(c) for c in close)}?"
    elif names:
        shown = ", ".join(repr(n) for n in names[:10])
        hint = f"the jobs found are {shown}{', ...' if len(names) > 10 else ''}."
    else:
        hint = "the workspace has no jobs you can see."
    raise InvalidInput(f"No job is named {name!r}: {hint}")


def _route_params(
    info: JobInfo, notebook_params: dict[str, str], job_parameters: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Send the values the way the job takes them: job-level parameters or notebook parameters."""
    if notebook_params and job_parameters:
        raise InvalidInput(
            "Both notebook_params and job_parameters were given, and a run takes one kind: "
            f"job {info.job_id} takes {'job_parameters' if info.uses_job_parameters else 'notebook_params'}."
        )
    values = notebook_params or job_parameters
    if info.uses_job_parameters:
        return {}, values
    return values, {}


def start_run(
    client: DatabricksClient,
    job: int | str,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    idempotency_token: str | None = None,
) -> RunResult:
    """getJob and runJobNow: launch the job and return the new run (not yet polled).

    Raises:
        InvalidInput: bad input, judged before anything is sent where possible.
        DatabricksError: the workspace refused; once the run exists, the error names it.
        RunInterrupted: the kernel was interrupted; says whether a run may have started.
    """
    notebook = normalise_params(notebook_params, "notebook parameter")
    jobp = normalise_params(job_parameters, "job parameter")
    _check_token(idempotency_token)
    try:
        job_id = resolve_job(client, job)
        info = JobInfo(job_id, client.get_job(job_id))
    except KeyboardInterrupt:
        raise RunInterrupted("Interrupted before the launch: no run was started.") from None
    return launch_run(client, info, notebook, jobp, idempotency_token)


def _check_token(token: str | None) -> None:
    if token is not None and not (0 < len(str(token).strip()) <= MAX_IDEMPOTENCY_TOKEN):
        raise InvalidInput(
            f"The idempotency token must be 1 to {MAX_IDEMPOTENCY_TOKEN} characters, not "
            f"{len(str(token).strip())}: use a shorter one, or none to get a fresh one."
        )


def launch_run(
    client: DatabricksClient,
    info: JobInfo,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    idempotency_token: str | None = None,
) -> RunResult:
    """runJobNow for a job already looked up (``JobInfo``): the parameters go the way it takes them.

    Raises:
        InvalidInput: bad parameters, or both kinds given.
        DatabricksError: the workspace refused; a lost answer names the idempotency token.
        RunInterrupted: the kernel was interrupted; names the token that finds the run.
    """
    _check_token(idempotency_token)
    notebook, jobp = _route_params(
        info,
        normalise_params(notebook_params, "notebook parameter"),
        normalise_params(job_parameters, "job parameter"),
    )
    token = str(idempotency_token).strip() if idempotency_token else new_idempotency_token()
    try:
        launched = _launch(client, info.job_id, token, notebook, jobp)
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"Interrupted while launching job {info.job_id}: a run may have started. Launch again "
            f"with idempotency token {token!r} (--idempotency-token {token}) to get that run back "
            "without starting a second one.",
            idempotency_token=token,
        ) from None
    run_id = int(launched["run_id"])
    log.debug("launched job %s as run %s", info.job_id, run_id)
    return RunResult(
        job_id=info.job_id,
        run_id=run_id,
        job_name=info.name,
        number_in_job=launched.get("number_in_job"),
        life_cycle_state=None,
        idempotency_token=token,
    )


def _launch(
    client: DatabricksClient,
    job_id: int,
    token: str,
    notebook: dict[str, str],
    jobp: dict[str, str],
) -> dict[str, Any]:
    # The token makes the launch idempotent, so an answer without a run id is safely asked again.
    for _ in range(_LAUNCH_ATTEMPTS):
        try:
            answer = client.run_now(
                job_id, idempotency_token=token, notebook_params=notebook, job_parameters=jobp
            )
        except (TransportError, ServerError, TooManyRequests) as exc:
            # The workspace may have started the run before the answer was lost.
            exc.message = (
                f"{exc.message.rstrip('.')}. A run may have started: launch again with idempotency "
                f"token {token!r} to get it back without starting a second one."
            )
            exc.args = (exc.message,)
            raise
        if isinstance(answer.get("run_id"), int | str) and str(answer["run_id"]).isdigit():
            return answer
    raise TransportError(
        f"Launching job {job_id} failed: the workspace answered without a run id "
        f"{_LAUNCH_ATTEMPTS} times; launch again with idempotency token {token!r} to find the run "
        "if one was started."
    )


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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
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
            waiting, not the run.
        on_update: Called with the current RunResult on every poll, the last one included.
        cancel_on_interrupt: On a kernel interrupt, also cancel the run.
        policy: When to poll next (default: history-aware ``PollPolicy()``).
        clock: Monotonic clock in seconds.
        sleep: Waits between polls.

    Returns:
        The finished run; check ``result.ok`` or call ``result.raise_for_state()``.

    Raises:
        InvalidInput: bad input (nothing was sent when it could be judged locally).
        WaitTimeout: the timeout passed; ``error.result`` holds the run as last seen.
        DatabricksError: any other failure; once the run exists, the message names it.
        RunInterrupted: the kernel was interrupted (a ``KeyboardInterrupt``).
    """
    check_timeout(timeout)
    started_at = clock()
    launched = start_run(client, job, notebook_params, job_parameters, idempotency_token)
    remaining = None if timeout is None else max(0.0, timeout - (clock() - started_at))
    return wait_for_run(
        client,
        launched.run_id,
        timeout=remaining,
        on_update=on_update,
        launched=launched,
        cancel_on_interrupt=cancel_on_interrupt,
        policy=policy,
        clock=clock,
        sleep=sleep,
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
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = time.sleep,
) -> RunResult:
    """pollRun: watch a run until it is finished, then fetch each task's output.

    Use it to re-attach to a run started earlier (``%dbx_wait`` does). Arguments as for
    ``run_job_and_wait``; ``launched`` is what ``start_run`` returned, when known.
    """
    run_id = positive_id(run_id, "run id")
    check_timeout(timeout)
    policy = policy or PollPolicy()
    result = launched or RunResult(job_id=None, run_id=run_id)
    deadline = None if timeout is None else clock() + timeout
    began = clock()
    history: History | None = None
    history_asked = False
    polls = 0
    age = 0.0  # how long the run had been going when the waiting began (when re-attaching)
    seen: tuple[str | None, float] = (None, began)  # the state last seen, and since when
    try:
        while True:
            try:
                if polls == 0 and launched is not None and launched.job_id:
                    history_asked = True
                    run, history = _first_look(client, launched.job_id, run_id)
                    if history is not None:
                        result = replace(result, expected_duration=history.median)
                else:
                    run = client.get_run(run_id)
            except DatabricksError as exc:
                if isinstance(exc, ResourceDoesNotExist):
                    raise
                raise exc.attach_run(run_id, result) from None
            polls += 1
            polled_at = clock()
            throttled = getattr(client, "last_retry_after", None)  # before runs/list resets it
            if _has_state(run):
                result = _merge(result, run)
            else:
                log.debug("run %s: answer without state, polling again", run_id)
            if polls == 1 and launched is None and result.start_time:
                age = max(0.0, time.time() - result.start_time / 1000 - (clock() - began))
            if result.life_cycle_state != seen[0]:
                seen = (result.life_cycle_state, polled_at)
            if not history_asked and result.job_id:
                history_asked = True
                history = _history(client, result.job_id)
                if history is not None:
                    result = replace(result, expected_duration=history.median)
            if result.finished:
                result = fetch_outputs(client, result)
                _notify(on_update, result)
                return result
            _notify(on_update, result)
            now = clock()
            if deadline is not None and now >= deadline:
                raise WaitTimeout(
                    f"Stopped waiting for run {run_id} after {timeout:.3g} s; it is still "
                    f"{result.life_cycle_state or 'starting'} and goes on in the workspace: "
                    f"`%dbx_wait {run_id}` (or wait_for_run(client, {run_id})) re-attaches, "
                    f"`%dbx_cancel {run_id}` cancels it.",
                    run_id=run_id,
                    result=result,
                )
            delay = policy.next_delay(
                elapsed=now - began + age,
                polls=polls,
                life_cycle_state=result.life_cycle_state,
                history=history,
                queued=_seconds(run.get("queue_duration")),
                state_elapsed=polled_at - seen[1],
                retry_after=throttled,  # Retry-After wins
            )
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - now))
            sleep(delay)
    except KeyboardInterrupt:
        interrupted = _interrupted(client, result, cancel_on_interrupt, clock, sleep)
        if interrupted.cancelled and interrupted.result is not None:
            _notify(on_update, interrupted.result)  # the last poll, the cancelled end, is shown too
        raise interrupted from None


def check_timeout(timeout: float | None) -> None:
    """Refuse a timeout that is not a positive number of seconds (None means no timeout)."""
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise InvalidInput(
            f"The timeout {timeout!r} is not a positive number of seconds: pass e.g. 600, or None to wait "
            "as long as the run lasts."
        )


def _seconds(milliseconds: Any) -> float:
    """A duration the API gives in milliseconds, in seconds (0 when absent or not a number)."""
    try:
        return max(0.0, float(milliseconds) / 1000) if milliseconds else 0.0
    except (TypeError, ValueError):
        return 0.0


def _has_state(run: Mapping[str, Any]) -> bool:
    return isinstance(run.get("state"), dict) or isinstance(run.get("status"), dict)


def _merge(previous: RunResult, run: dict[str, Any]) -> RunResult:
    fresh = RunResult.from_api(
        run,
        job_name=previous.job_name,
        run_id=previous.run_id,
        job_id=previous.job_id,
        idempotency_token=previous.idempotency_token,
        expected_duration=previous.expected_duration,
    )
    if previous.number_in_job and not fresh.number_in_job:
        fresh = replace(fresh, number_in_job=previous.number_in_job)
    return fresh


def _first_look(client: DatabricksClient, job_id: int, run_id: int) -> tuple[dict[str, Any], History | None]:
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
    mine = next((r for r in runs if str(r.get("run_id")) == str(run_id) and _has_state(r)), None)
    if mine is None or is_finished(mine):  # a finished run needs its tasks, which list pages leave out
        mine = client.get_run(run_id)
    return mine, history_from_runs(runs)


def _history(client: DatabricksClient, job_id: int) -> History | None:
    try:
        page = client.list_runs(job_id, completed_only=True, limit=25)
    except DatabricksError as exc:  # history only sharpens the estimate; never fail for it
        log.debug("no history for job %s: %s", job_id, exc)
        return None
    return history_from_runs([r for r in page.get("runs") or () if isinstance(r, dict)])


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
    return replace(result, tasks=tuple(tasks), warnings=tuple(warnings))


def _interrupted(
    client: DatabricksClient,
    result: RunResult,
    cancel: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], Any],
) -> RunInterrupted:
    run_id = result.run_id
    if not cancel:
        return RunInterrupted(
            f"Stopped waiting for run {run_id} ({result.life_cycle_state or 'starting'}); it goes on "
            f"in the workspace: `%dbx_wait {run_id}` re-attaches, `%dbx_cancel {run_id}` cancels it.",
            run_id=run_id,
            result=result,
        )
    try:
        client.cancel_run(run_id)
        result = _await_end(client, result, clock, sleep)
    except (DatabricksError, KeyboardInterrupt) as exc:
        return RunInterrupted(
            f"Stopped waiting for run {run_id}, but cancelling it failed ({exc}): cancel it with "
            f"`%dbx_cancel {run_id}` or on its page.",
            run_id=run_id,
            result=result,
        )
    state = result.result_state or result.life_cycle_state
    return RunInterrupted(
        f"Cancelled run {run_id} on interrupt; it is now {state}.",
        run_id=run_id,
        result=result,
        cancelled=True,
    )


def _await_end(
    client: DatabricksClient,
    result: RunResult,
    clock: Callable[[], float],
    sleep: Callable[[float], Any],
    limit: float = 30.0,
) -> RunResult:
    """After a cancel, poll briefly so the result shows the run cancelled."""
    deadline = clock() + limit
    while True:
        run = client.get_run(result.run_id)
        if _has_state(run):
            result = _merge(result, run)
        if result.finished or clock() >= deadline:
            return result
        sleep(0.5)
