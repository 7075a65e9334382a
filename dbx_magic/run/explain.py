"""Why a run waits, why it ended, and what changed since the job last worked: codes in words.

The API says ``status.queue_details.code`` while a run is queued, a life-cycle state while it waits (a
long PENDING is a cluster finding instances, which is normal), and ``status.termination_details.code``
once it ended. Every display says these as sentences (``queued: the job already has its maximum of 1
concurrent run``); a code the API adds later is shown verbatim. Pure functions: no request is made here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .timing import ago

if TYPE_CHECKING:
    from .models import RunResult

__all__ = ["QUEUE_REASONS", "TERMINATIONS", "ended_words", "queue_words", "since_success", "waiting_words"]

QUEUE_REASONS = {
    "MAX_CONCURRENT_RUNS_REACHED": "the job already has its maximum of {limit} concurrent run{s}; it starts "
    "when one ends",
    "ACTIVE_RUNS_LIMIT_REACHED": "the workspace has reached its limit of active runs; it starts when others end",
    "ACTIVE_RUN_JOB_TASKS_LIMIT_REACHED": "the workspace has reached its limit of active run-job tasks; it "
    "starts when others end",
}
"""``status.queue_details.code`` -> why the run is queued."""

TERMINATIONS = {
    "SUCCESS_WITH_FAILURES": "it succeeded, but some of its tasks failed",
    "USER_CANCELED": "a person cancelled it",
    "CANCELED": "Databricks cancelled it (for example, it ran past its timeout)",
    "SKIPPED": "it never ran: an upstream task failed, a condition was not met, or nothing was left to run",
    "INTERNAL_ERROR": "Databricks had an internal error; run it again, and check the Azure Databricks status "
    "page if it happens again",
    "DRIVER_ERROR": "the Spark driver could not be reached; the cluster may be overloaded",
    "CLUSTER_ERROR": "the cluster failed or could not start",
    "REPOSITORY_CHECKOUT_FAILED": "the Git checkout failed; check the repository and its credentials",
    "INVALID_CLUSTER_REQUEST": "the cluster request was invalid; check the job's cluster settings",
    "WORKSPACE_RUN_LIMIT_EXCEEDED": "the workspace is at its limit of active runs; spread the runs out",
    "FEATURE_DISABLED": "it used a feature this workspace does not have",
    "CLUSTER_REQUEST_LIMIT_EXCEEDED": "too many clusters were asked for at once; spread the runs out",
    "STORAGE_ACCESS_ERROR": "storage could not be reached; check the storage account and its access",
    "RUN_EXECUTION_ERROR": "a task failed",
    "UNAUTHORIZED_ERROR": "it lacked a permission on something it uses",
    "LIBRARY_INSTALLATION_ERROR": "a library failed to install; check the library and where it comes from",
    "MAX_CONCURRENT_RUNS_EXCEEDED": "the job was already at its limit of concurrent runs and does not queue",
    "MAX_SPARK_CONTEXTS_EXCEEDED": "the cluster has too many execution contexts open",
    "RESOURCE_NOT_FOUND": "something it needs does not exist (a notebook, a file, a cluster)",
    "INVALID_RUN_CONFIGURATION": "the job's configuration is invalid",
    "CLOUD_FAILURE": "the cloud provider failed (no capacity, a quota, the network); a later retry often works",
    "MAX_JOB_QUEUE_SIZE_EXCEEDED": "the job's queue was full, so the run was skipped",
    "DISABLED": "it is disabled in the job",
    "BREAKING_CHANGE": "a change in Spark broke it; Databricks retries it with a mitigation",
    "CLUSTER_TERMINATED_BY_USER": "its cluster was terminated or restarted outside the job",
    "BUDGET_POLICY_LIMIT_EXCEEDED": "its budget policy's limit was reached",
}
"""``status.termination_details.code`` -> why the run ended, for every code but ``SUCCESS``."""

_WAITING = {
    "BLOCKED": "waiting for the tasks it depends on",
    "WAITING": "waiting to retry a failed task",
    "WAITING_FOR_RETRY": "waiting to retry a failed task",
    "TERMINATING": "finishing: the cluster is being cleaned up",
}
_NUMBER = re.compile(r"\b(\d+)\b")


def queue_words(code: str | None, message: str = "") -> str:
    """Why a run is queued, as a sentence (``queued: ...``); an unknown code verbatim with the message."""
    if code == "MAX_CONCURRENT_RUNS_REACHED":
        found = _NUMBER.search(message or "")
        limit = int(found.group(1)) if found else None
        if limit is None:
            return "queued: the job already runs as many runs at once as it allows; it starts when one ends"
        return "queued: " + QUEUE_REASONS[code].format(limit=limit, s="" if limit == 1 else "s")
    if code in QUEUE_REASONS:
        return "queued: " + QUEUE_REASONS[code]
    if code:
        return f"queued ({code})" + (f": {message.rstrip('.')}" if message else "")
    return message or "queued"


def _minutes(seconds: float) -> str:
    return f"{round(seconds)} s" if seconds < 90 else f"{round(seconds / 60)} min"


def _clock(seconds: float) -> str:
    total = max(0, round(seconds))
    return f"{total // 60}:{total % 60:02d}"


def waiting_words(result: RunResult, elapsed: float) -> str:
    """What a run that is not finished is waiting for ("" when it is running or its state says enough).

    ``elapsed``: seconds since it started (queue included), as the displays count them.
    """
    state = result.life_cycle_state
    if state == "QUEUED" or result.queue_code:
        return queue_words(result.queue_code, result.queue_reason or result.state_message)
    if state == "PENDING":
        waited = max(0.0, elapsed - result.queued)
        usual = result.history.setup if result.history is not None else 0.0
        text = f"waiting for a cluster: {_clock(waited)} so far"
        return text + (f"; this job's clusters usually take {_minutes(usual)}" if usual > 0 else "")
    return _WAITING.get(state or "", "")


def ended_words(code: str | None, message: str = "") -> str:
    """Why a run ended, as a sentence: the API's message, then what the code means ("" for a success
    without a message); an unknown code is shown verbatim."""
    message = (message or "").strip().rstrip(".")
    if not code or code == "SUCCESS":
        return message
    words = TERMINATIONS.get(code, code)
    return f"{message} ({words})" if message else words[0].upper() + words[1:]


def since_success(result: RunResult) -> str:
    """For a failed run, the one line on the job's last success: ``last success: run 1204, 2 days ago;
    differs in strict=true (was false)``. Read from the history the watcher already has (no request);
    "" when the run did not fail or the job has no earlier success in it."""
    last = result.history.last_success if result.history is not None else None
    if not result.finished or result.ok or last is None or last.run_id == result.run_id:
        return ""
    if result.start_time and last.start_time and last.start_time > result.start_time:
        return ""
    when = (
        f", {ago((result.start_time or 0) - last.start_time)}"
        if result.start_time and last.start_time
        else ""
    )
    mine, theirs = result.sent_parameters, last.parameters
    changed = [
        f"{k}={mine.get(k, '(unset)')} (was {theirs.get(k, 'unset')})"
        for k in sorted(set(mine) | set(theirs))
        if mine.get(k) != theirs.get(k)
    ]
    differs = "; differs in " + ", ".join(changed) if changed else "; same parameters"
    return f"last success: run {last.run_id}{when}{differs}"
