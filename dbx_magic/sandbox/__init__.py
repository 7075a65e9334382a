"""The sandbox workspace: an in-process emulator of the Databricks Jobs API on 127.0.0.1.

Faithful enough that the official ``databricks-sdk`` works against it unchanged::

    from dbx_magic.sandbox import Sandbox

    with Sandbox(speed=10) as sb:          # listening on a free port until the block ends
        w = WorkspaceClient(host=sb.url, token=sb.token)
        run = w.jobs.run_now(job_id=sb.job_id("daily-sales-report")).result()

It serves, under both ``/api/2.1/`` and ``/api/2.2/``: ``jobs/get``, ``jobs/list``, ``jobs/run-now`` (with
``only``: task keys, ``+key`` adding upstream and ``key+`` downstream tasks; the others end EXCLUDED),
``jobs/runs/get`` (``include_history`` adds ``repair_history``), ``jobs/runs/list`` (``run_type`` filter),
``jobs/runs/cancel``, ``jobs/runs/cancel-all`` (``job_id``, ``all_queued_runs``), ``jobs/runs/repair``
(``rerun_tasks`` or ``rerun_all_failed_tasks``, ``rerun_dependent_tasks``, ``latest_repair_id``, new
``job_parameters``/``notebook_params``, ``idempotency_token``; answers ``{"repair_id": N}``),
``jobs/runs/get-output`` and ``jobs/runs/export`` (a notebook task run as an HTML page with a table, an
inline image and a script probing ``window.parent``); and under ``/api/2.0/``: ``workspace/export``
(``format=SOURCE``: the notebook's source, base64). On 2.2, ``jobs/get`` and ``runs/get`` give at most 100
entries of each array with ``next_page_token``. Errors use the service's bodies; credentials:
``Authorization: Bearer <sb.token>`` (a wrong token: 403 ``{"error_code": 403}``; none or not a bearer one:
401 ``{"error_code": 401}``). Every answer, to any method or malformed request, is JSON, except the HTML
pages: ``/`` (the jobs), ``/jobs/<job>`` (its runs) and ``/jobs/<job>/runs/<run>`` (a run or task run),
served without credentials, which ``run_page_url`` points at: ``<sb.url>/jobs/<job>/runs/<run>?o=<workspace
id>#job/<job>/run/<run>``.

Third round: run-now and repair take ``performance_target`` (``STANDARD`` or ``PERFORMANCE_OPTIMIZED``,
echoed as ``effective_performance_target``); ``runs/get?include_resolved_values=true`` adds each task's
``resolved_values`` (its parameters with ``{{job.parameters.x}}``, ``{{job.id}}``, ``{{job.run_id}}``
filled in); ``Task(..., disabled=True)`` ends DISABLED (``disabled: true``) and so do the tasks that need it;
``runs/get`` on a for-each task's run id lists its ``iterations`` (100 a page on 2.2), each a task run of its
own for ``runs/get`` and ``get-output``; a queued run says ``status.queue_details``; a ``Phase(...,
code=...)`` ends with that termination code; ``add_job(..., runnable=False)`` makes a job the token may view
but not run, cancel or repair (403 ``PERMISSION_DENIED``).

Runs are laid out from the clock, with no background work: ``Sandbox(clock=fake, epoch=seconds)`` lets a
test move time by hand and fixes the wall-clock times reported (no ``time.time()`` is read then);
``speed`` divides every run duration. Each task run is an attempt: a repair makes the run active again and
gives each rerun task its next attempt (``attempt_number``) with its own run id; ``runs/get`` lists every
attempt. Job-level parameters win over task parameters of the same name (pushdown). The sample jobs are
those of :mod:`dbx_magic.sandbox.samples`; every notebook path has a source declaring its widgets.

Notebooks
    ``sb.add_notebook(path, source)`` serves a source at ``workspace/export`` (None: 403, unreadable);
    ``Task(..., source=..., readable=False)`` does the same for a task's notebook. ``Task(...,
    for_each=ForEach(inputs, concurrency))`` makes a for-each task (``{{input}}`` in a parameter value is
    each input), ``Task(..., condition=Condition(left, op, right))`` a condition task, and a
    ``depends_on`` entry ``(key, "true")`` waits on a condition's outcome. ``sb.run_page(run_id)`` is a
    run's page URL.

Scripted jobs
    ``sb.add_job(name, *, tasks=None, parameters=None, max_concurrent_runs=1, queue=True, script=None,
    history=0, duration=2.0) -> job_id``. ``tasks`` is a list of :class:`Task` (key, notebook path,
    base parameters, depends_on, duration, notebook function); ``parameters`` the job-level parameters
    (name -> default). A ``script`` replaces the normal life cycle with phases, played by the run and
    by each of its tasks::

        sb.add_job("odd", script=[("PENDING", 1.0), ("BLOCKED", 1.0), ("SOME_NEW_STATE", 1.0),
                                  ("RUNNING", 2.0), ("TERMINATED", "FAILED", "it broke")])

    A phase is ``(state, seconds[, message])``, or, for the last one, ``(state, result_state_or_None
    [, message])``; a :class:`Phase` also sets ``status.state``. States are served verbatim, unknown
    ones included. The last phase lasts for ever: ``("TERMINATED", "SUCCESS")``, ``("SKIPPED",
    None)``, ``("INTERNAL_ERROR", None)`` end the run; ``("RUNNING", None)`` never ends.

Faults
    ``sb.inject(endpoint, kind, *, count=1, status=None, retry_after=None, delay=None)``: the next
    ``count`` requests to ``endpoint`` (``"jobs/runs/get"``... either prefix; ``"*"`` for any) get:

    - ``status``: that status (default 503), a JSON error body, ``Retry-After`` if given; not processed;
    - ``html``: that status (default 502) with an HTML error page; not processed;
    - ``drop``: the connection closed with no response; not processed;
    - ``delay``: an answer after ``delay`` real seconds (for read timeouts);
    - ``drop_after``: processed (run-now starts its run), then the connection closed with no response;
    - ``invalid_json``: processed, then 200 with the JSON cut in half;
    - ``missing_fields``: processed, then 200 without the main fields (runs/get: ``state``/``status``,
      run-now: ``run_id``, jobs/get: ``settings``, get-output: ``metadata``/outputs, lists: the list);
    - ``echo_headers``: that status (default 502) with a JSON error whose message echoes the request's
      headers, ``Authorization`` included, as some proxies do; not processed;
    - ``bad_gzip``: processed, then 200 saying ``Content-Encoding: gzip`` with a body that is not;
    - ``zero_id`` / ``text_id``: processed, then 200 with the answer's id (run-now's and runs/get's
      ``run_id``, jobs/get's ``job_id``) set to 0 / to a word.

    Bodies are read only as ``Content-Length`` says: a missing-number or negative one is a 400, over
    10 MiB a 413 (unread), chunked a 411; the listen backlog holds hundreds of clients connecting at once.

Inspect traffic with ``sb.requests`` (a list of :class:`RequestRecord`: method, path, query, body,
status, timestamp, fault) and ``sb.clear_requests()``. ``python -m dbx_magic.sandbox`` runs :func:`serve`.
"""

from __future__ import annotations

from dbx_magic.sandbox.server import FAULT_KINDS, RequestRecord, Sandbox, serve
from dbx_magic.sandbox.workspace import Condition, ForEach, Phase, Task

__all__ = ["FAULT_KINDS", "Condition", "ForEach", "Phase", "RequestRecord", "Sandbox", "Task", "serve"]
