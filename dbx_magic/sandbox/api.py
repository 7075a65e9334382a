"""The Jobs API endpoints over a :class:`~dbx_magic.sandbox.workspace.Workspace`.

Validation, error bodies and response shapes follow the real service (see the shared
``reference/jobs-api.md``): a missing job or run is a 400 ``INVALID_PARAMETER_VALUE``, a wrong JSON type a
400 ``MALFORMED_REQUEST``, and empty arrays and maps are left out of responses, as the service leaves them
out. ``handle`` is called with the workspace lock held.

Parameter sizes are measured as the compact UTF-8 JSON of the map
(``json.dumps(m, separators=(",", ":"), ensure_ascii=False)``); more than 10,000 bytes is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from dbx_magic.sandbox.workspace import (
    Job,
    Run,
    Segment,
    Workspace,
    current,
    status_state_of,
    termination_type,
)

WORKSPACE_ID = "4271858234617093"
"""The sandbox's made-up Azure workspace id (in run page URLs only: nothing talks to that host)."""
PAGE_HOST = f"https://adb-{WORKSPACE_ID}.13.azuredatabricks.net"
CREATOR = "sandbox.user@example.com"
MAX_PARAMS_BYTES = 10_000
MAX_TOKEN_CHARS = 64
_CLUSTER = {
    "job_cluster_key": "job_cluster",
    "new_cluster": {
        "spark_version": "15.4.x-scala2.12",
        "node_type_id": "Standard_D4ds_v5",
        "num_workers": 2,
    },
}
_PARAM_FIELDS = ("notebook_params", "python_named_params", "sql_params", "job_parameters")
_LIST_FIELDS = ("jar_params", "python_params", "spark_submit_params", "dbt_commands")


class ApiError(Exception):
    """An error answer: HTTP status plus the API's ``{error_code, message}`` body."""

    def __init__(self, status: int, error_code: str | int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"error_code": self.error_code, "message": self.message}


def invalid(message: str) -> ApiError:
    """A 400 ``INVALID_PARAMETER_VALUE``."""
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)


def malformed(message: str) -> ApiError:
    """A 400 ``MALFORMED_REQUEST``."""
    return ApiError(400, "MALFORMED_REQUEST", f"Could not parse request object: {message}")


def parse_body(raw: bytes) -> Any:
    """A request body as JSON (None when empty); raises :class:`ApiError` when it is not JSON."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise malformed(str(exc)) from None


def handle(ws: Workspace, method: str, endpoint: str, query: dict[str, str], body: Any) -> Any:
    """Answer one API call (``endpoint`` without the ``/api/2.x/`` prefix) or raise ApiError."""
    route = ROUTES.get(endpoint)
    if route is None or route[0] != method:
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")
    if method == "POST":
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise malformed(f"Expected object, found {_json_type(body)}")
        return route[1](ws, body)
    return route[1](ws, query)


# ------------------------------------------------------------------ arguments
def _json_type(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, (int, float)):
        return "NUMBER"
    names: dict[type, str] = {str: "STRING", list: "ARRAY", dict: "OBJECT"}
    return names.get(type(value), "VALUE")


def _int(args: dict[str, Any], name: str, *, default: int | None = None) -> int | None:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise malformed(f"Expected int64 for field {name}, found {_json_type(value)}")


def _required_int(args: dict[str, Any], name: str) -> int:
    value = _int(args, name)
    if value is None:
        raise invalid(f"Missing required field: {name}")
    return value


def _bool(args: dict[str, Any], name: str) -> bool:
    value = args.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise malformed(f"Expected boolean for field {name}, found {_json_type(value)}")


def _str_map(body: dict[str, Any], name: str) -> dict[str, str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise malformed(f"Expected object for field {name}, found {_json_type(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise malformed(f"Expected string for field {name}.{key}, found {_json_type(item)}")
    return value


def _check_size(name: str, value: Any) -> None:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PARAMS_BYTES:
        raise invalid(f"The size of {name} ({size} bytes) exceeds the limit of {MAX_PARAMS_BYTES} bytes.")


def _page(args: dict[str, str], items: list[Any], limit: int) -> tuple[list[Any], dict[str, Any]]:
    offset = _int(args, "offset", default=0) or 0
    token = args.get("page_token")
    if token:
        try:
            offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise invalid(f"Invalid page token: {token}") from None
    offset = max(offset, 0)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    extra: dict[str, Any] = {"has_more": more}
    if more:
        extra["next_page_token"] = _token(offset + limit)
    if offset > 0:
        extra["prev_page_token"] = _token(max(offset - limit, 0))
    return page, extra


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _job(ws: Workspace, job_id: int) -> Job:
    job = ws.jobs.get(job_id)
    if job is None:
        raise invalid(f"Job {job_id} does not exist.")
    return job


def _run(ws: Workspace, run_id: int) -> Run:
    run = ws.runs.get(run_id)
    if run is None:
        raise invalid(f"Run {run_id} does not exist.")
    return run


# ------------------------------------------------------------------ endpoints
def get_job(ws: Workspace, args: dict[str, str]) -> dict[str, Any]:
    """``GET jobs/get``."""
    return job_json(ws, _job(ws, _required_int(args, "job_id")), expand=True)


def list_jobs(ws: Workspace, args: dict[str, str]) -> dict[str, Any]:
    """``GET jobs/list``: newest job first."""
    limit = _int(args, "limit", default=20)
    if limit is None or not 1 <= limit <= 100:
        raise invalid(f"Invalid limit {limit}: the limit must be between 1 and 100.")
    jobs = sorted(ws.jobs.values(), key=lambda j: -j.job_id)
    name = args.get("name")
    if name:
        jobs = [j for j in jobs if j.name.casefold() == name.casefold()]
    page, extra = _page(args, jobs, limit)
    expand = _bool(args, "expand_tasks")
    return _with("jobs", [job_json(ws, j, expand=expand) for j in page], extra)


def run_now(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
    """``POST jobs/run-now``."""
    job_id = _required_int(body, "job_id")
    maps = {name: _str_map(body, name) for name in _PARAM_FIELDS}
    overriding: dict[str, Any] = {k: v for k, v in maps.items() if v is not None}
    for name in _LIST_FIELDS:
        value = body.get(name)
        if value is not None:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise malformed(f"Expected array of strings for field {name}")
            overriding[name] = value
    token = body.get("idempotency_token")
    if token is not None and not isinstance(token, str):
        raise malformed(f"Expected string for field idempotency_token, found {_json_type(token)}")
    queue = body.get("queue")
    if queue is not None and not isinstance(queue, dict):
        raise malformed(f"Expected object for field queue, found {_json_type(queue)}")
    job = _job(ws, job_id)
    for name, value in overriding.items():
        _check_size(name, value)
    if token is not None and len(token) > MAX_TOKEN_CHARS:
        raise invalid(
            f"The idempotency token is {len(token)} characters long; "
            f"it must be at most {MAX_TOKEN_CHARS} characters."
        )
    if job.parameters and maps["job_parameters"] is not None and maps["notebook_params"]:
        raise invalid(
            f"Job {job_id} defines job parameters: job_parameters cannot be combined with "
            "task-level parameters such as notebook_params."
        )
    overriding.pop("job_parameters", None)
    run = ws.run_now(
        job,
        notebook_params=maps["notebook_params"],
        job_parameters=maps["job_parameters"],
        overriding=overriding,
        idempotency_token=token,
        queue=bool(queue.get("enabled")) if queue is not None else None,
    )
    return {"run_id": run.run_id, "number_in_job": run.run_id}


def get_run(ws: Workspace, args: dict[str, str]) -> dict[str, Any]:
    """``GET jobs/runs/get`` (a task run id gives that task run)."""
    run_id = _required_int(args, "run_id")
    now = ws.clock()
    ws.settle(now)
    if run_id in ws.task_runs:
        run, key = ws.task_runs[run_id]
        return task_metadata(ws, run, key, now)
    return run_json(ws, _run(ws, run_id), now, tasks=True)


def list_runs(ws: Workspace, args: dict[str, str]) -> dict[str, Any]:
    """``GET jobs/runs/list``: newest run first."""
    active_only, completed_only = _bool(args, "active_only"), _bool(args, "completed_only")
    if active_only and completed_only:
        raise invalid("active_only and completed_only cannot both be true.")
    limit = _int(args, "limit", default=20)
    if limit is None or not 0 <= limit <= 25:
        raise invalid(f"Invalid limit {limit}: the limit must be between 0 and 25.")
    limit = limit or 25
    job_id = _int(args, "job_id")
    start_from, start_to = _int(args, "start_time_from"), _int(args, "start_time_to")
    now = ws.clock()
    ws.settle(now)
    runs = [r for r in ws.runs.values() if job_id is None or r.job.job_id == job_id]
    if active_only or completed_only:
        runs = [r for r in runs if (ws.end_time(r) <= now) == completed_only]
    if start_from is not None:
        runs = [r for r in runs if ws.epoch_ms(r.created) >= start_from]
    if start_to is not None:
        runs = [r for r in runs if ws.epoch_ms(r.created) <= start_to]
    runs.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    page, extra = _page(args, runs, limit)
    expand = _bool(args, "expand_tasks")
    return _with("runs", [run_json(ws, r, now, tasks=expand) for r in page], extra)


def cancel_run(ws: Workspace, body: dict[str, Any]) -> dict[str, Any]:
    """``POST jobs/runs/cancel`` (cancelling a task run cancels its job run)."""
    run_id = _required_int(body, "run_id")
    run = ws.task_runs[run_id][0] if run_id in ws.task_runs else _run(ws, run_id)
    ws.cancel(run)
    return {}


def get_output(ws: Workspace, args: dict[str, str]) -> dict[str, Any]:
    """``GET jobs/runs/get-output``: task run ids only, as the service."""
    run_id = _required_int(args, "run_id")
    if run_id not in ws.task_runs:
        _run(ws, run_id)
        raise invalid(
            "Retrieving the output of runs with multiple tasks is not supported. "
            "Please retrieve the output of each individual task run instead."
        )
    now = ws.clock()
    ws.settle(now)
    run, key = ws.task_runs[run_id]
    out: dict[str, Any] = {"metadata": task_metadata(ws, run, key, now)}
    seg = current(ws.timeline(run)[1][key], now)
    if not seg.ended:
        return out
    outcome = run.outcomes[key]
    if seg.result in ("SUCCESS", "SUCCESS_WITH_FAILURES"):
        if outcome.result is not None:
            out["notebook_output"] = {"result": outcome.result, "truncated": False}
        else:
            out["notebook_output"] = {}
    elif seg.result == "FAILED":
        out["error"] = outcome.error or seg.message or "Workload failed"
        if outcome.error_trace:
            out["error_trace"] = outcome.error_trace
    return out


Handler = Callable[[Workspace, dict[str, Any]], Any]
ROUTES: dict[str, tuple[str, Handler]] = {
    "jobs/get": ("GET", get_job),
    "jobs/list": ("GET", list_jobs),
    "jobs/run-now": ("POST", run_now),
    "jobs/runs/get": ("GET", get_run),
    "jobs/runs/list": ("GET", list_runs),
    "jobs/runs/cancel": ("POST", cancel_run),
    "jobs/runs/get-output": ("GET", get_output),
}
"""Endpoint (without the ``/api/2.x/`` prefix) -> (method, handler)."""


# ------------------------------------------------------------------ JSON shapes
def _with(name: str, items: list[Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {name: items, **extra} if items else extra


def page_url(job_id: int, run_id: int) -> str:
    """A run page URL in the Azure legacy form the API returns."""
    return f"{PAGE_HOST}/?o={WORKSPACE_ID}#job/{job_id}/run/{run_id}"


def _notebook_task(path: str, params: dict[str, str]) -> dict[str, Any]:
    task: dict[str, Any] = {"notebook_path": path, "source": "WORKSPACE"}
    if params:
        task["base_parameters"] = dict(params)
    return task


def job_json(ws: Workspace, job: Job, *, expand: bool) -> dict[str, Any]:
    """A ``Job`` (jobs/get) or, without ``expand``, a ``BaseJob`` as jobs/list gives it."""
    settings: dict[str, Any] = {
        "name": job.name,
        "email_notifications": {},
        "timeout_seconds": 0,
        "max_concurrent_runs": job.max_concurrent_runs,
        "queue": {"enabled": job.queue},
        "format": "MULTI_TASK",
        "run_as": {"user_name": CREATOR},
    }
    if expand:
        settings["tasks"] = []
        for task in job.tasks:
            entry: dict[str, Any] = {"task_key": task.key}
            if task.depends_on:
                entry["depends_on"] = [{"task_key": d} for d in task.depends_on]
            entry["run_if"] = "ALL_SUCCESS"
            entry["notebook_task"] = _notebook_task(task.notebook_path, dict(task.base_parameters))
            entry.update(job_cluster_key="job_cluster", timeout_seconds=0, email_notifications={})
            settings["tasks"].append(entry)
        settings["job_clusters"] = [_CLUSTER]
    if job.parameters:
        settings["parameters"] = [{"name": k, "default": v} for k, v in job.parameters.items()]
    out = {
        "job_id": job.job_id,
        "creator_user_name": CREATOR,
        "run_as_user_name": CREATOR,
        "created_time": ws.epoch_ms(job.created),
        "settings": settings,
    }
    if not expand:
        out["has_more"] = False
    return out


def _state(seg: Segment) -> dict[str, Any]:
    state: dict[str, Any] = {"life_cycle_state": seg.state}
    if seg.final and seg.result is not None:
        state["result_state"] = seg.result
    state["state_message"] = seg.message
    stopped = seg.code == "USER_CANCELED" or seg.result == "TIMEDOUT"
    state["user_cancelled_or_timedout"] = seg.ended and stopped
    if seg.state == "QUEUED":
        state["queue_reason"] = seg.message
    return state


def _status(seg: Segment) -> dict[str, Any]:
    status: dict[str, Any] = {"state": seg.status_state or status_state_of(seg.state)}
    if seg.ended:
        code = seg.code or "SUCCESS"
        status["termination_details"] = {
            "code": code,
            "type": termination_type(code),
            "message": seg.message,
        }
    if seg.state == "QUEUED":
        status["queue_details"] = {"code": "MAX_CONCURRENT_RUNS_REACHED", "message": seg.message}
    return status


def _times(ws: Workspace, segs: list[Segment], now: float) -> dict[str, int]:
    """start/end/setup/execution/cleanup/run durations (ms) of a task run's segments."""
    ms = ws.epoch_ms
    begun = [s for s in segs if s.state != "QUEUED" and s.start <= now]
    seg = current(segs, now)
    times = {"start_time": ms(begun[0].start) if begun else 0, "end_time": 0}
    times.update(setup_duration=0, execution_duration=0, cleanup_duration=0)
    running = [s.start for s in begun if s.state == "RUNNING"]
    if seg.ended:
        times["end_time"] = ms(seg.start)
        if begun and running:
            times["setup_duration"] = ms(running[0]) - ms(begun[0].start)
            times["execution_duration"] = ms(seg.start) - ms(running[0])
        times["run_duration"] = times["end_time"] - times["start_time"] if begun else 0
    return times


def run_json(ws: Workspace, run: Run, now: float, *, tasks: bool) -> dict[str, Any]:
    """A ``Run`` as runs/get gives it (runs/list gives it without ``tasks`` unless expanded)."""
    job, ms = run.job, ws.epoch_ms
    segs, task_segs = ws.timeline(run)
    seg = current(segs, now)
    start = ms(run.created)
    queued_until = run.admitted if run.admitted is not None else (segs[-1].start if seg.ended else now)
    out: dict[str, Any] = {
        "job_id": job.job_id,
        "run_id": run.run_id,
        "number_in_job": run.run_id,
        "original_attempt_run_id": run.run_id,
        "creator_user_name": CREATOR,
        "run_name": job.name,
        "run_page_url": page_url(job.job_id, run.run_id),
        "run_type": "JOB_RUN",
        "trigger": run.trigger,
        "format": "MULTI_TASK",
        "attempt_number": 0,
        "state": _state(seg),
        "status": _status(seg),
        "start_time": start,
        "end_time": ms(seg.start) if seg.ended else 0,
        "setup_duration": 0,
        "execution_duration": 0,
        "cleanup_duration": 0,
        "queue_duration": max(ms(min(queued_until, now)) - start, 0),
    }
    if seg.ended:
        out["run_duration"] = out["end_time"] - start - out["queue_duration"]
    if run.job_parameter_values:
        out["job_parameters"] = [
            {"name": k, **({"default": job.parameters[k]} if k in job.parameters else {}), "value": v}
            for k, v in run.job_parameter_values.items()
        ]
    if run.overriding_parameters:
        out["overriding_parameters"] = dict(run.overriding_parameters)
    if tasks:
        out["tasks"] = [_task_json(ws, run, t.key, task_segs[t.key], now) for t in job.tasks]
    return out


def _task_json(ws: Workspace, run: Run, key: str, segs: list[Segment], now: float) -> dict[str, Any]:
    task = next(t for t in run.job.tasks if t.key == key)
    seg = current(segs, now)
    task_run_id = run.task_run_ids[key]
    out: dict[str, Any] = {
        "task_key": key,
        "run_id": task_run_id,
        "state": _state(seg),
        "status": _status(seg),
        "attempt_number": 0,
        **_times(ws, segs, now),
        "run_page_url": page_url(run.job.job_id, task_run_id),
        "notebook_task": _notebook_task(task.notebook_path, run.task_params[key]),
        "job_cluster_key": "job_cluster",
        "run_if": "ALL_SUCCESS",
    }
    if task.depends_on:
        out["depends_on"] = [{"task_key": d} for d in task.depends_on]
    return out


def task_metadata(ws: Workspace, run: Run, key: str, now: float) -> dict[str, Any]:
    """A task run as a ``Run`` (get-output's ``metadata``, runs/get on a task run id)."""
    task = _task_json(ws, run, key, ws.timeline(run)[1][key], now)
    return {
        "job_id": run.job.job_id,
        "job_run_id": run.run_id,
        "number_in_job": task["run_id"],
        "original_attempt_run_id": task["run_id"],
        "creator_user_name": CREATOR,
        "run_name": run.job.name,
        "run_type": "JOB_RUN",
        "trigger": run.trigger,
        "format": "MULTI_TASK",
        **task,
    }
