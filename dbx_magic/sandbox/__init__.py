"""The sandbox workspace: an in-process emulator of the Databricks Jobs API on 127.0.0.1.

Faithful enough that the official ``databricks-sdk`` works against it unchanged::

    from dbx_magic.sandbox import Sandbox

    with Sandbox(speed=10) as sb:          # listening on a free port until the block ends
        w = WorkspaceClient(host=sb.url, token=sb.token)
        run = w.jobs.run_now(job_id=sb.job_id("daily-sales-report")).result()

It serves ``jobs/get``, ``jobs/list``, ``jobs/run-now``, ``jobs/runs/get``, ``jobs/runs/list``,
``jobs/runs/cancel`` and ``jobs/runs/get-output`` under both ``/api/2.1/`` and ``/api/2.2/``, with the
service's error bodies, ``Authorization: Bearer <sb.token>`` (anything else: 403), and the sample jobs of
:mod:`dbx_magic.sandbox.samples`. Run states are computed from the clock: no background work.
``Sandbox(clock=fake)`` lets a test move time by hand; ``speed`` divides every run duration.

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
      run-now: ``run_id``, jobs/get: ``settings``, get-output: ``metadata``/outputs, lists: the list).

Inspect traffic with ``sb.requests`` (a list of :class:`RequestRecord`: method, path, query, body,
status, timestamp, fault) and ``sb.clear_requests()``. ``python -m dbx_magic.sandbox`` runs :func:`serve`.
"""

from __future__ import annotations

from dbx_magic.sandbox.server import FAULT_KINDS, RequestRecord, Sandbox, serve
from dbx_magic.sandbox.workspace import Phase, Task

__all__ = ["FAULT_KINDS", "Phase", "RequestRecord", "Sandbox", "Task", "serve"]
