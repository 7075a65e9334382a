"""The sandbox's third round, over loopback on a fake clock: queue reasons, termination codes (a cluster
that fails to start, a run cancelled by another user), resolved values, a disabled task, a for-each task
of 150 iterations (paged on 2.2), performance targets, and a job the token may view but not run; and
databricks-sdk reading all of it unchanged."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from dbx_magic.sandbox import Sandbox

from .api import Api, FakeClock, error

if TYPE_CHECKING:  # databricks-sdk is imported in the tests that use it: the import costs a second of
    from databricks.sdk import WorkspaceClient  # CPU in every xdist worker that collects this module

WAIT = timedelta(seconds=60)


def test_a_second_run_of_a_limited_job_says_why_it_is_queued(api: Api, clock: FakeClock) -> None:
    api.run_now("nightly-backfill")
    second = api.run(api.run_now("nightly-backfill"))
    assert second["state"]["life_cycle_state"] == "QUEUED"
    assert second["status"]["state"] == "QUEUED"
    assert second["status"]["queue_details"] == {
        "code": "MAX_CONCURRENT_RUNS_REACHED",
        "message": "Queued due to reaching maximum concurrent runs of 1.",
    }


def test_a_cluster_that_fails_to_start_ends_internal_error_with_a_cloud_failure(
    api: Api, clock: FakeClock
) -> None:
    run_id = api.run_now("gpu-training")
    clock.advance(1)
    assert api.run(run_id)["state"]["life_cycle_state"] == "PENDING"
    clock.advance(10)
    run = api.run(run_id)
    assert run["state"]["life_cycle_state"] == "INTERNAL_ERROR" and run["status"]["state"] == "TERMINATED"
    details = run["status"]["termination_details"]
    assert details["code"] == "CLUSTER_ERROR" and details["type"] == "CLOUD_FAILURE"
    assert "AllocationFailed" in details["message"]


def test_a_run_cancelled_by_another_user_says_who(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("shared-refresh")
    clock.advance(10)
    run = api.run(run_id)
    assert run["state"]["result_state"] == "CANCELED" and run["state"]["user_cancelled_or_timedout"]
    assert run["status"]["termination_details"] == {
        "code": "USER_CANCELED",
        "type": "SUCCESS",
        "message": "Run cancelled by maria.lopez@example.com.",
    }


def test_resolved_values_and_a_disabled_task(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("attribution-daily", job_parameters={"run_date": "2026-12-01"})
    clock.advance(10)
    plain = {t["task_key"]: t for t in api.run(run_id)["tasks"]}
    assert "resolved_values" not in plain["load_touches"]  # only when asked
    assert (
        plain["load_touches"]["notebook_task"]["base_parameters"]["from_date"]
        == "{{job.parameters.run_date}}"
    )
    run = api.ok("GET", "jobs/runs/get", run_id=run_id, include_resolved_values="true")
    tasks = {t["task_key"]: t for t in run["tasks"]}
    assert tasks["load_touches"]["resolved_values"] == {
        "notebook_task": {"base_parameters": {"from_date": "2026-12-01", "window": "30d"}}
    }
    assert tasks["attribute"]["resolved_values"]["notebook_task"]["base_parameters"]["run"] == str(run_id)
    disabled = tasks["legacy_export"]
    assert disabled["disabled"] is True and "disabled" not in tasks["attribute"]
    assert disabled["state"]["result_state"] == "DISABLED"
    assert disabled["status"]["termination_details"]["code"] == "DISABLED"
    assert run["state"]["result_state"] == "SUCCESS"  # a disabled task fails nothing


def test_a_for_each_task_run_lists_its_150_iterations_in_pages(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("store-forecast", job_parameters={"horizon_days": "56"})
    clock.advance(30)
    run = api.run(run_id)
    assert run["state"]["result_state"] == "FAILED"
    each = run["tasks"][0]
    stats = each["for_each_task"]["stats"]["task_run_stats"]
    assert (stats["total_iterations"], stats["failed_iterations"], stats["succeeded_iterations"]) == (
        150,
        1,
        149,
    )
    first = api.ok("GET", "jobs/runs/get", run_id=each["run_id"], include_resolved_values="true")
    assert [t["run_id"] for t in first["tasks"]] == [each["run_id"]] and len(first["iterations"]) == 100
    second = api.ok("GET", "jobs/runs/get", run_id=each["run_id"], page_token=first["next_page_token"])
    assert second["tasks"] == [] and len(second["iterations"]) == 50 and "next_page_token" not in second
    iterations = first["iterations"] + second["iterations"]
    assert len({i["run_id"] for i in iterations}) == 150
    failed = [i for i in iterations if i["state"]["result_state"] == "FAILED"]
    assert len(failed) == 1 and failed[0]["notebook_task"]["base_parameters"]["store"] == "store_117"
    assert first["iterations"][0]["resolved_values"]["notebook_task"]["base_parameters"]["horizon"] == "56"
    assert "too few for a 56-day horizon" in api.output(failed[0]["run_id"])["error"]
    assert api.output(iterations[0]["run_id"])["notebook_output"]["result"].startswith(
        '{"store": "store_001"'
    )
    page = api.session.get(failed[0]["run_page_url"].split("?")[0], timeout=5)
    assert page.status_code == 200 and "iteration 116" in page.text and "store_117" in page.text
    whole = Api(api.sandbox, prefix="/api/2.1/").ok("GET", "jobs/runs/get", run_id=each["run_id"])
    assert len(whole["iterations"]) == 150  # 2.1 gives everything at once


def test_iterations_appear_as_they_begin(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("store-forecast")
    clock.advance(1.5)  # the cluster is up after 1 s; 15 iterations run at a time, 0.2 s each
    each = api.run(run_id)["tasks"][0]
    listed = api.ok("GET", "jobs/runs/get", run_id=each["run_id"])["iterations"]
    states = [i["state"]["life_cycle_state"] for i in listed]
    assert len(listed) == 45 and states.count("RUNNING") == 15 and states.count("TERMINATED") == 30


def test_performance_targets_are_checked_and_echoed(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("daily-sales-report", performance_target="PERFORMANCE_OPTIMIZED")
    assert api.run(run_id)["effective_performance_target"] == "PERFORMANCE_OPTIMIZED"
    assert "effective_performance_target" not in api.run(api.run_now("train-model"))
    body = {"job_id": api.sandbox.job_id("daily-sales-report"), "performance_target": "FAST"}
    status, code, message = error(api.post("jobs/run-now", body))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "PERFORMANCE_OPTIMIZED, STANDARD" in message


def test_a_job_the_token_may_only_view(api: Api, clock: FakeClock) -> None:
    job_id = api.sandbox.job_id("finance-close")
    assert api.ok("GET", "jobs/get", job_id=job_id)["settings"]["name"] == "finance-close"
    past = api.ok("GET", "jobs/runs/list", job_id=job_id)["runs"]
    assert len(past) == 5  # its history is readable
    for endpoint, body in (
        ("jobs/run-now", {"job_id": job_id}),
        ("jobs/runs/cancel", {"run_id": past[0]["run_id"]}),
        ("jobs/runs/repair", {"run_id": past[0]["run_id"], "rerun_all_failed_tasks": True}),
        ("jobs/runs/cancel-all", {"job_id": job_id}),
    ):
        status, code, message = error(api.post(endpoint, body))
        assert (status, code) == (403, "PERMISSION_DENIED") and f"job {job_id}" in message, endpoint


# -- databricks-sdk reads all of it -------------------------------------------------------------------


@pytest.fixture
def w(sb: Sandbox, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> WorkspaceClient:
    from databricks.sdk import WorkspaceClient

    monkeypatch.setattr(time, "sleep", clock.advance)  # the SDK's waits move the fake clock
    return WorkspaceClient(host=sb.url, token=sb.token)


def test_sdk_get_run_with_iterations_and_resolved_values(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.service.jobs import RunResultState

    run = w.jobs.run_now(job_id=sb.job_id("store-forecast"), job_parameters={"horizon_days": "56"}).result(
        timeout=WAIT
    )
    assert run.state.result_state == RunResultState.FAILED
    each = w.jobs.get_run(run.tasks[0].run_id, include_resolved_values=True)  # follows the pages
    assert len(each.iterations) == 150 and len(each.tasks) == 1
    failed = [i for i in each.iterations if i.state.result_state == RunResultState.FAILED]
    assert failed[0].resolved_values.notebook_task.base_parameters == {"store": "store_117", "horizon": "56"}
    assert "store_117" in (w.jobs.get_run_output(failed[0].run_id).error or "")
    other = w.jobs.run_now(job_id=sb.job_id("attribution-daily")).result(timeout=WAIT)
    tasks = {t.task_key: t for t in w.jobs.get_run(other.run_id, include_resolved_values=True).tasks}
    assert tasks["legacy_export"].disabled and tasks["legacy_export"].state.result_state.value == "DISABLED"
    assert tasks["load_touches"].resolved_values.notebook_task.base_parameters["window"] == "30d"


def test_sdk_repair_run_with_a_performance_target(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.service.jobs import PerformanceTarget, RunResultState

    failed = w.jobs.run_now(
        job_id=sb.job_id("store-forecast"),
        job_parameters={"horizon_days": "56"},
        performance_target=PerformanceTarget.PERFORMANCE_OPTIMIZED,
    ).result(timeout=WAIT)
    assert failed.effective_performance_target == PerformanceTarget.PERFORMANCE_OPTIMIZED
    repaired = w.jobs.repair_run(
        run_id=failed.run_id,
        rerun_all_failed_tasks=True,
        job_parameters={"horizon_days": "28"},
        performance_target=PerformanceTarget.STANDARD,
    ).result(timeout=WAIT)
    assert repaired.state.result_state == RunResultState.SUCCESS
    assert repaired.effective_performance_target == PerformanceTarget.STANDARD


def test_sdk_sees_the_cluster_failure_the_cancel_and_the_refusal(w: WorkspaceClient, sb: Sandbox) -> None:
    from databricks.sdk.errors import OperationFailed, PermissionDenied

    with pytest.raises(
        OperationFailed, match="AllocationFailed"
    ):  # the SDK's waiter raises on INTERNAL_ERROR
        w.jobs.run_now(job_id=sb.job_id("gpu-training")).result(timeout=WAIT)
    cancelled = w.jobs.run_now(job_id=sb.job_id("shared-refresh")).result(timeout=WAIT)
    assert cancelled.status.termination_details.code.value == "USER_CANCELED"
    with pytest.raises(PermissionDenied, match="Can Manage Run"):
        w.jobs.run_now(job_id=sb.job_id("finance-close"))
