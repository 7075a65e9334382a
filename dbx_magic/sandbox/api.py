"""The Jobs API endpoints over a :class:`~dbx_magic.sandbox.workspace.Workspace`.

Validation, error bodies and response shapes follow the real service (see the shared
``reference/jobs-api.md``): a missing job or run is a 400 ``INVALID_PARAMETER_VALUE``, a wrong JSON type a
400 ``MALFORMED_REQUEST``, and empty arrays and maps are left out of responses, as the service leaves them
out. ``handle`` is called with the workspace lock held.

Parameter sizes are measured as the compact UTF-8 JSON of the map
(``json.dumps(m, separators=(",", ":"), ensure_ascii=False)``); more than 10,000 bytes is refused.

On ``/api/2.2/``, ``jobs/get`` and ``runs/get`` give at most :data:`PAGE_SIZE` entries of each array
property (``tasks``, ``job_clusters``, ``parameters`` / ``job_parameters``, ``repair_history``) with a
``next_page_token`` while any has more; ``page_token`` reads the next page, where the arrays already
complete come back empty. ``jobs/list`` and ``runs/list`` with ``expand_tasks`` cut ``tasks`` at 100 and
say ``has_more: true`` on that item. ``/api/2.1/`` gives everything.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from dbx_magic.sandbox import pages
from dbx_magic.sandbox.workspace import (
    PERFORMANCE_TARGETS,
    UNSUCCESSFUL,
    Attempt,
    Job,
    Run,
    Segment,
    Task,
    TaskOutcome,
    Timeline,
    Workspace,
    current,
    downstream_of,
    select,
    status_state_of,
    termination_type,
)

WORKSPACE_ID = "4271858234617093"
"""The sandbox's made-up workspace id (the ``?o=`` of its run page URLs)."""
CREATOR = "sandbox.user@example.com"
MAX_PARAMS_BYTES = 10_000
MAX_TOKEN_CHARS = 64
PAGE_SIZE = 100
"""Entries of each array property per page on ``/api/2.2/``."""
RUN_TYPES = ("JOB_RUN", "WORKFLOW_RUN", "SUBMIT_RUN")
VIEWS = ("CODE", "DASHBOARDS", "ALL")
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
    """A request body as JSON (None when empty); raises :class:`ApiError` when it is not UTF-8 JSON."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise malformed(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise malformed(str(exc)) from None
    except RecursionError:
        raise malformed("the JSON is nested too deeply") from None


def handle(
    ws: Workspace, method: str, endpoint: str, query: dict[str, str], body: Any, version: str = "2.2"
) -> Any:
    """Answer one API call (``endpoint`` without the ``/api/2.x/`` prefix) or raise ApiError."""
    route = ROUTES.get(endpoint)
    if route is None or route[0] != method or version not in route[2]:
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{method} /{endpoint}'")
    if method == "POST":
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise malformed(f"Expected object, found {_json_type(body)}")
        return route[1](ws, body, version)
    return route[1](ws, query, version)


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


def _str_list(body: dict[str, Any], name: str) -> list[str] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed(f"Expected array of strings for field {name}")
    return value


def _idempotency_token(body: dict[str, Any]) -> str | None:
    token = body.get("idempotency_token")
    if token is not None and not isinstance(token, str):
        raise malformed(f"Expected string for field idempotency_token, found {_json_type(token)}")
    if token is not None and len(token) > MAX_TOKEN_CHARS:
        raise invalid(
            f"The idempotency token is {len(token)} characters long; "
            f"it must be at most {MAX_TOKEN_CHARS} characters."
        )
    return token


def _check_size(name: str, value: Any) -> None:
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_PARAMS_BYTES:
        raise invalid(f"The size of {name} ({size} bytes) exceeds the limit of {MAX_PARAMS_BYTES} bytes.")


def _parameters(body: dict[str, Any]) -> tuple[dict[str, dict[str, str] | None], dict[str, Any]]:
    """The ``*_params`` maps, and everything sent as ``overriding_parameters`` (size-checked)."""
    maps = {name: _str_map(body, name) for name in _PARAM_FIELDS}
    overriding: dict[str, Any] = {k: v for k, v in maps.items() if v is not None}
    for name in _LIST_FIELDS:
        value = _str_list(body, name)
        if value is not None:
            overriding[name] = value
    for name, value in overriding.items():
        _check_size(name, value)
    return maps, overriding


def _no_mixing(job: Job, maps: dict[str, dict[str, str] | None]) -> None:
    if job.parameters and maps["job_parameters"] is not None and maps["notebook_params"]:
        raise invalid(
            f"Job {job.job_id} defines job parameters: job_parameters cannot be combined with "
            "task-level parameters such as notebook_params."
        )


def _page(args: dict[str, str], items: list[Any], limit: int) -> tuple[list[Any], dict[str, Any]]:
    offset = _int(args, "offset", default=0) or 0
    token = args.get("page_token")
    if token:
        offset = _read_token(token, "offset")
    offset = max(offset, 0)
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    extra: dict[str, Any] = {"has_more": more}
    if more:
        extra["next_page_token"] = _token(offset=offset + limit)
    if offset > 0:
        extra["prev_page_token"] = _token(offset=max(offset - limit, 0))
    return page, extra


def _token(**fields: int) -> str:
    return base64.urlsafe_b64encode(json.dumps(fields).encode()).decode()


def _read_token(token: str, name: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))[name])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise invalid(f"Invalid page token: {token}") from None


def _array_page(args: dict[str, str], version: str) -> int | None:
    """The page of array properties asked for: None on 2.1 (everything)."""
    if version != "2.2":
        return None
    token = args.get("page_token")
    return max(_read_token(token, "page"), 0) if token else 0


def _paged(container: dict[str, Any], arrays: dict[str, list[Any]], page: int | None) -> bool:
    """Put one page of each array in ``container`` (all of it when ``page`` is None); True if more."""
    more = False
    for name, items in arrays.items():
        if page is None:
            chunk = items
        else:
            chunk = items[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
            more = more or len(items) > (page + 1) * PAGE_SIZE
        if chunk or (page or 0) > 0:
            container[name] = chunk
    return more


def _performance_target(body: dict[str, Any]) -> str | None:
    value = body.get("performance_target")
    if value is None:
        return None
    if value not in PERFORMANCE_TARGETS:
        raise invalid(
            f"Invalid performance_target {value!r}: one of {', '.join(PERFORMANCE_TARGETS)}."
            if isinstance(value, str)
            else f"Expected string for field performance_target, found {_json_type(value)}"
        )
    return str(value)


def _may_run(job: Job, action: str) -> None:
    """Refuse ``action`` on a job the token may only view: 403 ``PERMISSION_DENIED``."""
    if not job.runnable:
        raise ApiError(
            403,
            "PERMISSION_DENIED",
            f"User {CREATOR} does not have Can Manage Run permissions on job {job.job_id} to {action}.",
        )


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


def _task_run(ws: Workspace, run_id: int, refusal: str) -> tuple[Run, Attempt]:
    """A task run, or ``refusal`` (formatted with the id) for a job run; a missing run is refused."""
    if run_id not in ws.task_runs:
        _run(ws, run_id)
        raise invalid(refusal.format(run_id=run_id))
    return ws.task_runs[run_id]


# ------------------------------------------------------------------ jobs endpoints
def get_job(ws: Workspace, args: dict[str, str], version: str) -> dict[str, Any]:
    """``GET jobs/get`` (paged arrays on 2.2)."""
    job = _job(ws, _required_int(args, "job_id"))
    return job_json(ws, job, expand=True, page=_array_page(args, version))


def list_jobs(ws: Workspace, args: dict[str, str], version: str) -> dict[str, Any]:
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
    cut = 0 if version == "2.2" else None
    return _with("jobs", [job_json(ws, j, expand=expand, page=cut, listed=True) for j in page], extra)


def run_now(ws: Workspace, body: dict[str, Any], version: str) -> dict[str, Any]:
    """``POST jobs/run-now``."""
    job_id = _required_int(body, "job_id")
    maps, overriding = _parameters(body)
    token = _idempotency_token(body)
    queue = body.get("queue")
    if queue is not None and not isinstance(queue, dict):
        raise malformed(f"Expected object for field queue, found {_json_type(queue)}")
    only = _str_list(body, "only")
    target = _performance_target(body)
    job = _job(ws, job_id)
    _may_run(job, "run it")
    _no_mixing(job, maps)
    keys = _only(job, only) if only else None
    overriding.pop("job_parameters", None)
    run = ws.run_now(
        job,
        notebook_params=maps["notebook_params"],
        job_parameters=maps["job_parameters"],
        overriding=overriding,
        idempotency_token=token,
        queue=bool(queue.get("enabled")) if queue is not None else None,
        only=keys,
        performance_target=target,
    )
    return {"run_id": run.run_id, "number_in_job": run.run_id}


def _only(job: Job, names: list[str]) -> list[str]:
    keys, unknown = select(job, names)
    if unknown:
        raise invalid(f"Task keys not found in job {job.job_id}: {', '.join(unknown)}.")
    return keys


# ------------------------------------------------------------------ runs endpoints
def get_run(ws: Workspace, args: dict[str, str], version: str) -> dict[str, Any]:
    """``GET jobs/runs/get`` (a task run id gives that task run; paged arrays on 2.2)."""
    run_id = _required_int(args, "run_id")
    history = _bool(args, "include_history")
    resolved = _bool(args, "include_resolved_values")
    page = _array_page(args, version)
    now = ws.clock()
    ws.settle(now)
    if run_id in ws.iteration_runs:
        return iteration_metadata(ws, *ws.iteration_runs[run_id], now, resolved=resolved)
    if run_id in ws.task_runs:
        run, attempt = ws.task_runs[run_id]
        return task_run_json(ws, run, attempt, now, resolved=resolved, page=page)
    run = _run(ws, run_id)
    return run_json(ws, run, now, tasks=True, history=history, page=page, resolved=resolved)


def list_runs(ws: Workspace, args: dict[str, str], version: str) -> dict[str, Any]:
    """``GET jobs/runs/list``: newest run first."""
    active_only, completed_only = _bool(args, "active_only"), _bool(args, "completed_only")
    if active_only and completed_only:
        raise invalid("active_only and completed_only cannot both be true.")
    limit = _int(args, "limit", default=20)
    if limit is None or not 0 <= limit <= 25:
        raise invalid(f"Invalid limit {limit}: the limit must be between 0 and 25.")
    run_type = args.get("run_type")
    if run_type is not None and run_type not in RUN_TYPES:
        raise invalid(f"Invalid run_type {run_type}: one of {', '.join(RUN_TYPES)}.")
    now = ws.clock()
    ws.settle(now)
    runs = _filtered_runs(ws, args, now, active_only or completed_only, completed_only)
    if run_type not in (None, "JOB_RUN"):
        runs = []
    runs.sort(key=lambda r: (r.created, r.run_id), reverse=True)
    page, extra = _page(args, runs, limit or 25)
    expand = _bool(args, "expand_tasks")
    cut = 0 if version == "2.2" else None
    items = [run_json(ws, r, now, tasks=expand, page=cut, listed=True) for r in page]
    return _with("runs", items, extra)


def _filtered_runs(
    ws: Workspace, args: dict[str, str], now: float, by_state: bool, completed: bool
) -> list[Run]:
    job_id = _int(args, "job_id")
    start_from, start_to = _int(args, "start_time_from"), _int(args, "start_time_to")
    runs = [r for r in ws.runs.values() if job_id is None or r.job.job_id == job_id]
    if by_state:
        runs = [r for r in runs if (ws.end_time(r) <= now) == completed]
    if start_from is not None:
        runs = [r for r in runs if ws.epoch_ms(r.created) >= start_from]
    if start_to is not None:
        runs = [r for r in runs if ws.epoch_ms(r.created) <= start_to]
    return runs


def cancel_run(ws: Workspace, body: dict[str, Any], version: str) -> dict[str, Any]:
    """``POST jobs/runs/cancel`` (cancelling a task run cancels its job run)."""
    run_id = _required_int(body, "run_id")
    run = ws.task_runs[run_id][0] if run_id in ws.task_runs else _run(ws, run_id)
    _may_run(run.job, f"cancel run {run.run_id}")
    ws.cancel(run)
    return {}


def cancel_all_runs(ws: Workspace, body: dict[str, Any], version: str) -> dict[str, Any]:
    """``POST jobs/runs/cancel-all``: a job's active runs, or with no job every queued run."""
    job_id = _int(body, "job_id")
    all_queued = _bool(body, "all_queued_runs")
    if job_id is None and not all_queued:
        raise invalid("Either job_id or all_queued_runs must be provided.")
    job = _job(ws, job_id) if job_id is not None else None
    if job is not None:
        _may_run(job, "cancel its runs")
    ws.cancel_all(job, queued_only=job is None)
    return {}


def repair_run(ws: Workspace, body: dict[str, Any], version: str) -> dict[str, Any]:
    """``POST jobs/runs/repair``: rerun tasks of an ended run; ``{"repair_id": N}``."""
    run_id = _required_int(body, "run_id")
    rerun = _str_list(body, "rerun_tasks") or []
    all_failed, dependents = _bool(body, "rerun_all_failed_tasks"), _bool(body, "rerun_dependent_tasks")
    latest = _int(body, "latest_repair_id")
    maps, _ = _parameters(body)
    token = _idempotency_token(body)
    target = _performance_target(body)
    if run_id in ws.task_runs:
        raise invalid(f"Run {run_id} is a task run: repair its job run {ws.task_runs[run_id][0].run_id}.")
    run = _run(ws, run_id)
    _may_run(run.job, f"repair run {run_id}")
    for done in run.repairs:
        if token is not None and done.idempotency_token == token:
            return {"repair_id": done.repair_id}
    if ws.is_active(run):
        raise ApiError(
            400, "INVALID_STATE", f"Run {run_id} is still active: only an ended run can be repaired."
        )
    _check_latest_repair(run, latest)
    _no_mixing(run.job, maps)
    keys = _rerun_keys(ws, run, rerun, all_failed)
    if dependents:
        keys |= downstream_of(run.job, sorted(keys))
    repair = ws.repair(
        run,
        [t.key for t in run.job.tasks if t.key in keys],
        notebook_params=maps["notebook_params"],
        job_parameters=maps["job_parameters"],
        idempotency_token=token,
        performance_target=target,
    )
    return {"repair_id": repair.repair_id}


def _check_latest_repair(run: Run, latest: int | None) -> None:
    if not run.repairs:
        if latest is not None:
            raise invalid(
                f"Run {run.run_id} has not been repaired: latest_repair_id {latest} is not its repair."
            )
        return
    newest = run.repairs[-1].repair_id
    if latest is None:
        raise invalid(
            f"Run {run.run_id} has been repaired before: latest_repair_id must be given "
            f"(its latest repair is {newest})."
        )
    if latest != newest:
        raise invalid(
            f"latest_repair_id {latest} is not the latest repair of run {run.run_id} "
            f"(that is {newest}): the run was repaired since."
        )


def _rerun_keys(ws: Workspace, run: Run, rerun: list[str], all_failed: bool) -> set[str]:
    if rerun and all_failed:
        raise invalid("Only one of rerun_tasks or rerun_all_failed_tasks can be used.")
    if not rerun and not all_failed:
        raise invalid("Either rerun_tasks or rerun_all_failed_tasks must be provided.")
    if rerun:
        known = {t.key for t in run.job.tasks}
        unknown = [k for k in rerun if k not in known]
        if unknown:
            raise invalid(f"Task keys not found in job {run.job.job_id}: {', '.join(unknown)}.")
        return set(rerun)
    failed = {k for k, result in ws.final_results(run).items() if result in UNSUCCESSFUL}
    if not failed:
        raise invalid(f"Run {run.run_id} has no failed tasks to repair.")
    return failed


def get_output(ws: Workspace, args: dict[str, str], version: str) -> dict[str, Any]:
    """``GET jobs/runs/get-output``: task run ids only, as the service."""
    run_id = _required_int(args, "run_id")
    now = ws.clock()
    ws.settle(now)
    if run_id in ws.iteration_runs:
        return _iteration_output(ws, *ws.iteration_runs[run_id], now)
    run, attempt = _task_run(
        ws,
        run_id,
        "Retrieving the output of runs with multiple tasks is not supported. "
        "Please retrieve the output of each individual task run instead.",
    )
    out: dict[str, Any] = {"metadata": task_metadata(ws, run, attempt, now)}
    seg = current(ws.timeline(run).tasks[attempt.run_id], now)
    return _with_outcome(out, seg, attempt.outcome)


def _iteration_output(ws: Workspace, run: Run, attempt: Attempt, index: int, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": iteration_metadata(ws, run, attempt, index, now)}
    segs = ws.iteration_segments(run, attempt, now)
    if index >= len(segs):
        return out
    return _with_outcome(out, current(segs[index], now), attempt.iterations[index])


def _with_outcome(out: dict[str, Any], seg: Segment, outcome: TaskOutcome) -> dict[str, Any]:
    """get-output's answer: the metadata in ``out``, and once ended the exit value or the error."""
    if not seg.ended:
        return out
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


def export_run(ws: Workspace, args: dict[str, str], version: str) -> dict[str, Any]:
    """``GET jobs/runs/export``: a notebook task run as an HTML page (``views``)."""
    run_id = _required_int(args, "run_id")
    views = (args.get("views_to_export") or "CODE").upper()
    if views not in VIEWS:
        raise invalid(f"Invalid views_to_export {args.get('views_to_export')}: one of {', '.join(VIEWS)}.")
    run, attempt = _task_run(
        ws,
        run_id,
        "Run {run_id} is a job run: export the runs of its notebook tasks instead (tasks[].run_id).",
    )
    task = run.job.task(attempt.key)
    if not task.is_notebook:
        kind = "for-each" if task.for_each is not None else "condition"
        raise invalid(f"Only notebook task runs can be exported: task {task.key} is a {kind} task.")
    if views == "DASHBOARDS":
        return {}
    now = ws.clock()
    seg = current(ws.timeline(run).tasks[attempt.run_id], now)
    content = pages.export_page(run.job.name, run.run_id, task, attempt, _state(seg), seg.ended)
    return {
        "views": [{"content": content, "name": task.notebook_path.rsplit("/", 1)[-1], "type": "NOTEBOOK"}]
    }


def export_notebook(ws: Workspace, args: dict[str, str], version: str) -> dict[str, Any]:
    """``GET /api/2.0/workspace/export``: a notebook's source, base64, for ``format=SOURCE``."""
    path = args.get("path")
    if not path:
        raise invalid("Missing required field: path")
    fmt = (args.get("format") or "SOURCE").upper()
    if fmt != "SOURCE":
        raise invalid(f"The sandbox exports notebooks as SOURCE only, not {fmt}.")
    if path not in ws.notebooks:
        raise ApiError(404, "RESOURCE_DOES_NOT_EXIST", f"Path ({path}) doesn't exist.")
    source = ws.notebooks[path]
    if source is None:
        raise ApiError(
            403, "PERMISSION_DENIED", f"User {CREATOR} does not have Can Read permission on {path}."
        )
    return {"content": base64.b64encode(source.encode()).decode(), "file_type": "py"}


Handler = Callable[[Workspace, dict[str, Any], str], Any]
_JOBS = ("2.1", "2.2")
ROUTES: dict[str, tuple[str, Handler, tuple[str, ...]]] = {
    "jobs/get": ("GET", get_job, _JOBS),
    "jobs/list": ("GET", list_jobs, _JOBS),
    "jobs/run-now": ("POST", run_now, _JOBS),
    "jobs/runs/get": ("GET", get_run, _JOBS),
    "jobs/runs/list": ("GET", list_runs, _JOBS),
    "jobs/runs/cancel": ("POST", cancel_run, _JOBS),
    "jobs/runs/cancel-all": ("POST", cancel_all_runs, _JOBS),
    "jobs/runs/repair": ("POST", repair_run, _JOBS),
    "jobs/runs/get-output": ("GET", get_output, _JOBS),
    "jobs/runs/export": ("GET", export_run, _JOBS),
    "workspace/export": ("GET", export_notebook, ("2.0",)),
}
"""Endpoint (without the ``/api/2.x/`` prefix) -> (method, handler, API versions)."""


# ------------------------------------------------------------------ JSON shapes
def _with(name: str, items: list[Any], extra: dict[str, Any]) -> dict[str, Any]:
    return {name: items, **extra} if items else extra


def page_url(ws: Workspace, job_id: int, run_id: int) -> str:
    """The run's page on the sandbox itself, in a shape that keeps the API's ``#job/<job>/run/<run>``."""
    return f"{ws.base_url}/jobs/{job_id}/runs/{run_id}?o={WORKSPACE_ID}#job/{job_id}/run/{run_id}"


def _notebook_task(path: str, params: dict[str, str]) -> dict[str, Any]:
    task: dict[str, Any] = {"notebook_path": path, "source": "WORKSPACE"}
    if params:
        task["base_parameters"] = dict(params)
    return task


def _depends_on(task: Task) -> list[dict[str, str]]:
    return [{"task_key": key, **({"outcome": want} if want else {})} for key, want in task.deps]


def _task_settings(task: Task, params: dict[str, str]) -> dict[str, Any]:
    """The kind-specific part of a task: notebook, for-each or condition."""
    if task.condition is not None:
        c = task.condition
        return {"condition_task": {"op": c.op, "left": c.left, "right": c.right}}
    notebook = {"notebook_task": _notebook_task(task.notebook_path, params), "job_cluster_key": "job_cluster"}
    if task.for_each is None:
        return notebook
    inner = {"task_key": f"{task.key}_iteration", **notebook}
    each = task.for_each
    return {
        "for_each_task": {
            "inputs": json.dumps(list(each.inputs)),
            "concurrency": each.concurrency,
            "task": inner,
        }
    }


def job_json(
    ws: Workspace, job: Job, *, expand: bool, page: int | None = None, listed: bool = False
) -> dict[str, Any]:
    """A ``Job`` (jobs/get, one page of arrays) or, ``listed``, a ``BaseJob`` as jobs/list gives it."""
    settings: dict[str, Any] = {
        "name": job.name,
        "email_notifications": {},
        "timeout_seconds": 0,
        "max_concurrent_runs": job.max_concurrent_runs,
        "queue": {"enabled": job.queue},
        "format": "MULTI_TASK",
        "run_as": {"user_name": CREATOR},
    }
    arrays: dict[str, list[Any]] = {}
    if expand:
        arrays["tasks"] = [_job_task(t) for t in job.tasks]
        arrays["job_clusters"] = [_CLUSTER]
    arrays["parameters"] = [{"name": k, "default": v} for k, v in job.parameters.items()]
    more = _paged(settings, arrays, page)
    out: dict[str, Any] = {
        "job_id": job.job_id,
        "creator_user_name": CREATOR,
        "run_as_user_name": CREATOR,
        "created_time": ws.epoch_ms(job.created),
        "settings": settings,
    }
    if listed:
        out["has_more"] = more
    elif more:
        out["next_page_token"] = _token(page=(page or 0) + 1)
    return out


def _job_task(task: Task) -> dict[str, Any]:
    entry: dict[str, Any] = {"task_key": task.key}
    if task.depends_on:
        entry["depends_on"] = _depends_on(task)
    entry["run_if"] = "ALL_SUCCESS"
    entry.update(_task_settings(task, dict(task.base_parameters)))
    entry.update(timeout_seconds=0, email_notifications={})
    return entry


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
    """start/end times and queue/setup/execution/cleanup/run durations (ms) of a task run's segments."""
    ms = ws.epoch_ms
    seen = [s for s in segs if s.start <= now] or segs[:1]
    begun = [s for s in seen if s.state != "QUEUED"]
    seg = current(segs, now)
    queued = [s.start for s in seen if s.state == "QUEUED"]
    times = {"start_time": ms(begun[0].start) if begun else 0, "end_time": 0}
    times["queue_duration"] = ms(begun[0].start if begun else now) - ms(queued[0]) if queued else 0
    times.update(setup_duration=0, execution_duration=0, cleanup_duration=0)
    running = [s.start for s in begun if s.state == "RUNNING"]
    if begun and running:
        times["setup_duration"] = ms(running[0]) - ms(begun[0].start)
    if seg.ended:
        times["end_time"] = ms(seg.start)
        if begun and running:
            times["execution_duration"] = ms(seg.start) - ms(running[0])
        times["run_duration"] = times["end_time"] - times["start_time"] if begun else 0
    return times


def run_json(
    ws: Workspace,
    run: Run,
    now: float,
    *,
    tasks: bool,
    history: bool = False,
    page: int | None = None,
    listed: bool = False,
    resolved: bool = False,
) -> dict[str, Any]:
    """A ``Run`` as runs/get gives it (one page of arrays); runs/list's items (``listed``) have no token;
    ``resolved``: each task says its parameters resolved (``resolved_values``)."""
    job, ms = run.job, ws.epoch_ms
    timeline = ws.timeline(run)
    segs = timeline.segments
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
        "run_page_url": page_url(ws, job.job_id, run.run_id),
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
    if run.overriding_parameters:
        out["overriding_parameters"] = dict(run.overriding_parameters)
    if run.performance_target:
        out["effective_performance_target"] = run.performance_target
    arrays = _run_arrays(ws, run, timeline, now, tasks=tasks, history=history, resolved=resolved)
    more = _paged(out, arrays, page)
    if listed:
        out["has_more"] = more
    elif more:
        out["next_page_token"] = _token(page=(page or 0) + 1)
    return out


def _run_arrays(
    ws: Workspace, run: Run, timeline: Timeline, now: float, *, tasks: bool, history: bool, resolved: bool
) -> dict[str, list[Any]]:
    job = run.job
    arrays: dict[str, list[Any]] = {}
    if tasks:
        order = {t.key: i for i, t in enumerate(job.tasks)}
        attempts = sorted(run.attempts, key=lambda a: (order[a.key], a.number))
        arrays["tasks"] = [
            _task_json(ws, run, a, timeline.tasks[a.run_id], now, resolved=resolved) for a in attempts
        ]
    arrays["job_parameters"] = [
        {"name": k, **({"default": job.parameters[k]} if k in job.parameters else {}), "value": v}
        for k, v in run.job_parameter_values.items()
    ]
    if history:
        arrays["repair_history"] = _repair_history(ws, run, timeline, now)
    return arrays


def _repair_history(ws: Workspace, run: Run, timeline: Timeline, now: float) -> list[dict[str, Any]]:
    items = []
    for number, segs in enumerate(timeline.rounds):
        seg = current(segs, now)
        item: dict[str, Any] = {"type": "REPAIR" if number else "ORIGINAL"}
        if number:
            item["id"] = run.repairs[number - 1].repair_id
        item.update(
            start_time=ws.epoch_ms(segs[0].start),
            end_time=ws.epoch_ms(seg.start) if seg.ended else 0,
            state=_state(seg),
            status=_status(seg),
            task_run_ids=[a.run_id for a in run.attempts if a.round == number],
        )
        items.append(item)
    return items


def _task_json(
    ws: Workspace, run: Run, attempt: Attempt, segs: list[Segment], now: float, *, resolved: bool = False
) -> dict[str, Any]:
    task = run.job.task(attempt.key)
    seg = current(segs, now)
    out: dict[str, Any] = {
        "task_key": attempt.key,
        "run_id": attempt.run_id,
        "state": _state(seg),
        "status": _status(seg),
        "attempt_number": attempt.number,
        **_times(ws, segs, now),
        "run_page_url": page_url(ws, run.job.job_id, attempt.run_id),
        **_task_settings(task, attempt.shown),
        "run_if": "ALL_SUCCESS",
    }
    if task.depends_on:
        out["depends_on"] = _depends_on(task)
    if task.disabled:
        out["disabled"] = True
    if resolved:
        out.update(_resolved_values(task, attempt))
    if "for_each_task" in out:
        out["for_each_task"]["stats"] = {"task_run_stats": ws.iteration_stats(run, attempt, now)}
    if "condition_task" in out and seg.ended and seg.result == "SUCCESS" and attempt.outcome_value:
        out["condition_task"]["outcome"] = attempt.outcome_value
    return out


def _resolved_values(task: Task, attempt: Attempt) -> dict[str, Any]:
    """``resolved_values`` of a task run: its parameters with the references filled in."""
    if task.condition is not None:
        left, right = task.condition.operands(attempt.params)
        values = {"left": left, "right": right}
        return {"resolved_values": {"condition_task": values}}
    if not attempt.resolved or task.for_each is not None:
        return {}
    return {"resolved_values": {"notebook_task": {"base_parameters": dict(attempt.resolved)}}}


def task_run_json(
    ws: Workspace, run: Run, attempt: Attempt, now: float, *, resolved: bool, page: int | None
) -> dict[str, Any]:
    """runs/get on a task run id: the task run; a for-each one lists its iterations (paged on 2.2),
    with the for-each task itself as its one task."""
    out = task_metadata(ws, run, attempt, now, resolved=resolved)
    if run.job.task(attempt.key).for_each is None:
        return out
    task = _task_json(ws, run, attempt, ws.timeline(run).tasks[attempt.run_id], now, resolved=resolved)
    iterations = [
        _iteration_json(ws, run, attempt, i, segs, now, resolved=resolved)
        for i, segs in enumerate(ws.iteration_segments(run, attempt, now))
    ]
    if _paged(out, {"tasks": [task] if not page else [], "iterations": iterations}, page):
        out["next_page_token"] = _token(page=(page or 0) + 1)
    return out


def _iteration_json(
    ws: Workspace, run: Run, attempt: Attempt, index: int, segs: list[Segment], now: float, *, resolved: bool
) -> dict[str, Any]:
    task = run.job.task(attempt.key)
    seg = current(segs, now)
    params = attempt.iteration_params[index]
    run_id = attempt.iteration_ids[index]
    out: dict[str, Any] = {
        "task_key": f"{attempt.key}_iteration",
        "run_id": run_id,
        "state": _state(seg),
        "status": _status(seg),
        "attempt_number": 0,
        **_times(ws, segs, now),
        "run_page_url": page_url(ws, run.job.job_id, run_id),
        "notebook_task": _notebook_task(task.notebook_path, params),
        "job_cluster_key": "job_cluster",
        "run_if": "ALL_SUCCESS",
    }
    if resolved:
        out["resolved_values"] = {"notebook_task": {"base_parameters": dict(params)}}
    return out


def iteration_metadata(
    ws: Workspace, run: Run, attempt: Attempt, index: int, now: float, *, resolved: bool = False
) -> dict[str, Any]:
    """An iteration of a for-each task run as a ``Run`` (runs/get and get-output's ``metadata``)."""
    begun = ws.iteration_segments(run, attempt, now)
    segs = begun[index] if index < len(begun) else [Segment(now, "PENDING", "Waiting for its turn")]
    item = _iteration_json(ws, run, attempt, index, segs, now, resolved=resolved)
    return {
        "job_id": run.job.job_id,
        "job_run_id": run.run_id,
        "parent_run_id": attempt.run_id,
        "number_in_job": item["run_id"],
        "original_attempt_run_id": item["run_id"],
        "creator_user_name": CREATOR,
        "run_name": run.job.name,
        "run_type": "JOB_RUN",
        "trigger": run.trigger,
        "format": "MULTI_TASK",
        **item,
    }


def task_metadata(
    ws: Workspace, run: Run, attempt: Attempt, now: float, *, resolved: bool = False
) -> dict[str, Any]:
    """A task run as a ``Run`` (get-output's ``metadata``, runs/get on a task run id)."""
    task = _task_json(ws, run, attempt, ws.timeline(run).tasks[attempt.run_id], now, resolved=resolved)
    first = next(a for a in run.attempts if a.key == attempt.key)
    return {
        "job_id": run.job.job_id,
        "job_run_id": run.run_id,
        "number_in_job": task["run_id"],
        "original_attempt_run_id": first.run_id,
        "creator_user_name": CREATOR,
        "run_name": run.job.name,
        "run_type": "JOB_RUN",
        "trigger": run.trigger,
        "format": "MULTI_TASK",
        **task,
    }


# ------------------------------------------------------------------ run pages
def html_page(ws: Workspace, path: str) -> str | None:
    """The HTML page served at ``path`` (``/``, ``/jobs/<id>``, ``/jobs/<id>/runs/<run>``), None if none."""
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return _index_page(ws)
    if parts[0] != "jobs" or len(parts) not in (2, 4) or not all(p.isdigit() for p in parts[1::2]):
        return None
    if len(parts) == 4 and parts[2] != "runs":
        return None
    job = ws.jobs.get(int(parts[1]))
    if job is None:
        return None
    if len(parts) == 2:
        return _job_page(ws, job)
    run_id = int(parts[3])
    now = ws.clock()
    ws.settle(now)
    if run_id in ws.task_runs and ws.task_runs[run_id][0].job is job:
        owner, attempt = ws.task_runs[run_id]
        return _task_page(ws, owner, attempt, now)
    if run_id in ws.iteration_runs and ws.iteration_runs[run_id][0].job is job:
        return _iteration_page(ws, *ws.iteration_runs[run_id], now)
    run = ws.runs.get(run_id)
    return _run_page(ws, run, now) if run is not None and run.job is job else None


def _index_page(ws: Workspace) -> str:
    rows = [(pages.link(f"/jobs/{j.job_id}", j.name), str(len(j.tasks))) for j in ws.jobs.values()]
    return pages.page("Sandbox workspace", "<h1>Jobs</h1>" + pages.table(("job", "tasks"), rows))


def _job_page(ws: Workspace, job: Job) -> str:
    now = ws.clock()
    ws.settle(now)
    rows = []
    for run in sorted(job.runs, key=lambda r: r.created, reverse=True)[:25]:
        state = _state(current(ws.timeline(run).segments, now))
        label = state.get("result_state") or state["life_cycle_state"]
        rows.append(
            (pages.link(f"/jobs/{job.job_id}/runs/{run.run_id}", str(run.run_id)), pages.escape(label))
        )
    body = (
        f"<h1>{pages.escape(job.name)}</h1><p>{pages.link('/', 'All jobs')}</p>"
        + "<h2>Runs</h2>"
        + pages.table(("run", "state"), rows)
    )
    return pages.page(job.name, body)


def _run_page(ws: Workspace, run: Run, now: float) -> str:
    data = run_json(ws, run, now, tasks=True)
    job = run.job
    rows = []
    for task in data.get("tasks", []):
        state = task["state"]
        rows.append(
            (
                pages.escape(task["task_key"]),
                str(task["attempt_number"]),
                pages.link(f"/jobs/{job.job_id}/runs/{task['run_id']}", str(task["run_id"])),
                pages.escape(state.get("result_state") or state["life_cycle_state"]),
            )
        )
    state = data["state"]
    body = (
        f"<h1>{pages.escape(job.name)}: run {run.run_id}</h1>"
        f"<p>{pages.escape(state['life_cycle_state'])} {pages.escape(state.get('result_state', ''))} "
        f"{pages.escape(state['state_message'])}</p>"
        f"<p>{pages.link(f'/jobs/{job.job_id}', 'Back to the job')}</p>"
        + pages.table(("task", "attempt", "task run", "state"), rows)
    )
    return pages.page(f"{job.name} run {run.run_id}", body)


def _iteration_page(ws: Workspace, run: Run, attempt: Attempt, index: int, now: float) -> str:
    data = iteration_metadata(ws, run, attempt, index, now)
    state = data["state"]
    params = [(pages.escape(k), pages.escape(v)) for k, v in sorted(attempt.iteration_params[index].items())]
    job = run.job
    body = (
        f"<h1>{pages.escape(job.name)}: task {pages.escape(attempt.key)}, iteration {index}</h1>"
        f"<p>{pages.escape(state['life_cycle_state'])} {pages.escape(state.get('result_state', ''))} "
        f"{pages.escape(state['state_message'])}</p>"
        f"<p>{pages.link(f'/jobs/{job.job_id}/runs/{attempt.run_id}', f'Back to task run {attempt.run_id}')}</p>"
        + pages.table(("parameter", "value"), params)
    )
    return pages.page(f"{job.name} iteration run {data['run_id']}", body)


def _task_page(ws: Workspace, run: Run, attempt: Attempt, now: float) -> str:
    data = task_metadata(ws, run, attempt, now)
    state = data["state"]
    params = [(pages.escape(k), pages.escape(v)) for k, v in sorted(attempt.params.items())]
    job = run.job
    body = (
        f"<h1>{pages.escape(job.name)}: task {pages.escape(attempt.key)} (attempt {attempt.number})</h1>"
        f"<p>{pages.escape(state['life_cycle_state'])} {pages.escape(state.get('result_state', ''))} "
        f"{pages.escape(state['state_message'])}</p>"
        f"<p>{pages.link(f'/jobs/{job.job_id}/runs/{run.run_id}', f'Back to run {run.run_id}')}</p>"
        + pages.table(("parameter", "value"), params)
    )
    return pages.page(f"{job.name} task run {attempt.run_id}", body)
