"""The official databricks-sdk against the sandbox's second-round endpoints, unchanged."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from dbx_magic.sandbox import Sandbox

from .api import FakeClock

if TYPE_CHECKING:  # databricks-sdk is imported in the tests that use it: the import costs a second of
    from databricks.sdk import WorkspaceClient  # CPU in every xdist worker that collects this module

WAIT = timedelta(seconds=20)


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A sandbox on a fake clock; the SDK's waits between polls move that clock instead of sleeping."""
    clock = FakeClock()
    monkeypatch.setattr(time, "sleep", clock.advance)
    with Sandbox(clock=clock) as sandbox:
        yield sandbox


@pytest.fixture
def w(sb: Sandbox) -> WorkspaceClient:
    from databricks.sdk import WorkspaceClient

    return WorkspaceClient(host=sb.url, token=sb.token)


def test_repair_run_waits_for_the_repaired_run(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.errors import InvalidParameterValue
    from databricks.sdk.service.jobs import RunResultState

    failed = w.jobs.run_now(job_id=sb.job_id("flaky-ingest"), notebook_params={"fail": "true"}).result(
        timeout=WAIT
    )
    assert failed.state.result_state == RunResultState.FAILED
    with pytest.raises(InvalidParameterValue, match="nope"):
        w.jobs.repair_run(run_id=failed.run_id, rerun_tasks=["nope"])
    waiter = w.jobs.repair_run(run_id=failed.run_id, rerun_tasks=["ingest"], notebook_params={"fail": "true"})
    first = waiter.response.repair_id
    assert waiter.result(timeout=WAIT).state.result_state == RunResultState.FAILED
    repaired = w.jobs.repair_run(
        run_id=failed.run_id,
        rerun_tasks=["ingest"],
        latest_repair_id=first,
        notebook_params={"fail": "false"},
    ).result(timeout=WAIT)
    assert repaired.state.result_state == RunResultState.SUCCESS
    run = w.jobs.get_run(failed.run_id, include_history=True)
    assert [t.attempt_number for t in run.tasks] == [0, 1, 2]
    assert [h.type.value for h in run.repair_history] == ["ORIGINAL", "REPAIR", "REPAIR"]
    output = w.jobs.get_run_output(run.tasks[-1].run_id)
    assert output.notebook_output.result and output.metadata.attempt_number == 2


def test_repairing_an_active_run_is_invalid_state(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.errors import InvalidState

    waiter = w.jobs.run_now(job_id=sb.job_id("etl-pipeline"))
    with pytest.raises(InvalidState):
        w.jobs.repair_run(run_id=waiter.run_id, rerun_all_failed_tasks=True)
    waiter.result(timeout=WAIT)


def test_run_now_only(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.service.jobs import RunResultState

    run = w.jobs.run_now(job_id=sb.job_id("etl-with-checks"), only=["validate+"]).result(timeout=WAIT)
    assert run.state.result_state == RunResultState.SUCCESS
    got = {t.task_key: t.state.result_state.value for t in run.tasks}
    assert got == {"ingest": "EXCLUDED", "validate": "SUCCESS", "publish": "SUCCESS"}


def test_the_120_task_job_is_read_whole_through_the_pages(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.service.jobs import RunResultState

    job = w.jobs.get(sb.job_id("wide-batch"))
    assert [t.task_key for t in job.settings.tasks] == [f"part_{i:03d}" for i in range(1, 121)]
    run = w.jobs.run_now(job_id=job.job_id).result(timeout=WAIT)  # the waiter reads it through get_run
    assert len(run.tasks) == 120 and run.state.result_state == RunResultState.SUCCESS
    whole = w.jobs.get_run(run.run_id, include_history=True)
    assert len({t.run_id for t in whole.tasks}) == 120 and len(whole.repair_history) == 1
    listed = next(iter(w.jobs.list_runs(job_id=job.job_id, expand_tasks=True, limit=1)))
    assert len(listed.tasks) == 120


def test_cancel_all_exports_and_sources(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.errors import NotFound, PermissionDenied
    from databricks.sdk.service.jobs import RunResultState, ViewsToExport
    from databricks.sdk.service.workspace import ExportFormat

    job_id = sb.job_id("nightly-backfill")
    first, second = w.jobs.run_now(job_id=job_id), w.jobs.run_now(job_id=job_id)
    w.jobs.cancel_all_runs(job_id=job_id)
    for waiter in (first, second):
        assert waiter.result(timeout=WAIT).state.result_state == RunResultState.CANCELED
    run = w.jobs.run_now(job_id=sb.job_id("daily-sales-report")).result(timeout=WAIT)
    export = w.jobs.export_run(run.tasks[0].run_id, views_to_export=ViewsToExport.CODE)
    assert export.views[0].type.value == "NOTEBOOK" and "<table>" in export.views[0].content
    source = w.workspace.export(run.tasks[0].notebook_task.notebook_path, format=ExportFormat.SOURCE)
    assert "dbutils.widgets.text" in base64.b64decode(source.content).decode()
    with pytest.raises(NotFound):
        w.workspace.export("/Workspace/nope", format=ExportFormat.SOURCE)
    with pytest.raises(PermissionDenied):
        w.workspace.export("/Workspace/Shared/scoring/notify_owners", format=ExportFormat.SOURCE)
