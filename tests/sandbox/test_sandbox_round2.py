"""The sandbox's second round: repair, only, cancel-all, 2.2 paging, for-each and condition tasks, exports,
notebook sources, timings, run pages, and answers to malformed requests (all on a fake clock)."""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
import threading
import time
from typing import Any

import pytest
import requests

from dbx_magic.sandbox import Sandbox, Task

from .api import Api, FakeClock, error


def by_key(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Task key -> its attempts, in attempt order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for task in run["tasks"]:
        out.setdefault(task["task_key"], []).append(task)
    return out


def results(run: dict[str, Any]) -> dict[str, str | None]:
    """Task key -> the result of its latest attempt."""
    return {k: v[-1]["state"].get("result_state") for k, v in by_key(run).items()}


def failed_flaky_run(api: Api, clock: FakeClock) -> int:
    run_id = api.run_now("flaky-ingest", notebook_params={"fail": "true"})
    clock.advance(10)
    assert api.run(run_id)["state"]["result_state"] == "FAILED"
    return run_id


# ---------------------------------------------------------------- repair
def test_repair_reruns_a_failed_task_with_new_parameters(api: Api, clock: FakeClock) -> None:
    run_id = failed_flaky_run(api, clock)
    body = {"run_id": run_id, "rerun_tasks": ["ingest"], "notebook_params": {"fail": "false"}}
    repair_id = api.ok("POST", "jobs/runs/repair", body)["repair_id"]
    assert api.state(run_id) == "PENDING"  # active again
    clock.advance(1.2)
    assert api.state(run_id) == "RUNNING"
    clock.advance(10)
    run = api.ok("GET", "jobs/runs/get", run_id=run_id, include_history="true")
    assert run["state"]["result_state"] == "SUCCESS"
    first, second = run["tasks"]
    assert (first["attempt_number"], second["attempt_number"]) == (0, 1)
    assert first["run_id"] != second["run_id"] and first["state"]["result_state"] == "FAILED"
    assert second["notebook_task"]["base_parameters"]["fail"] == "false"
    original, repair = run["repair_history"]
    assert original["type"] == "ORIGINAL" and "id" not in original
    assert original["task_run_ids"] == [first["run_id"]] and original["state"]["result_state"] == "FAILED"
    assert repair["type"] == "REPAIR" and repair["id"] == repair_id
    assert repair["task_run_ids"] == [second["run_id"]] and repair["state"]["result_state"] == "SUCCESS"
    assert original["end_time"] <= repair["start_time"] < repair["end_time"] == run["end_time"]
    assert "repair_history" not in api.run(run_id)
    output = api.output(second["run_id"])
    assert json.loads(output["notebook_output"]["result"])["source"] == "events"
    assert output["metadata"]["attempt_number"] == 1
    assert output["metadata"]["original_attempt_run_id"] == first["run_id"]
    assert api.output(first["run_id"])["error"] == "ValueError: asked to fail"


def test_a_second_repair_needs_the_latest_repair_id(api: Api, clock: FakeClock) -> None:
    run_id = failed_flaky_run(api, clock)
    again = {"run_id": run_id, "rerun_tasks": ["ingest"], "notebook_params": {"fail": "true"}}
    first = api.ok("POST", "jobs/runs/repair", again)["repair_id"]
    clock.advance(10)
    assert api.run(run_id)["state"]["result_state"] == "FAILED"
    status, code, message = error(api.post("jobs/runs/repair", again))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "latest_repair_id" in message
    stale = error(api.post("jobs/runs/repair", {**again, "latest_repair_id": first - 1}))
    assert stale[:2] == (400, "INVALID_PARAMETER_VALUE") and str(first) in stale[2]
    fixed = {**again, "latest_repair_id": first, "notebook_params": {"fail": "false"}}
    second = api.ok("POST", "jobs/runs/repair", fixed)["repair_id"]
    assert second != first
    clock.advance(10)
    run = api.ok("GET", "jobs/runs/get", run_id=run_id, include_history=True)
    assert [t["attempt_number"] for t in run["tasks"]] == [0, 1, 2]
    assert [h["type"] for h in run["repair_history"]] == ["ORIGINAL", "REPAIR", "REPAIR"]
    assert run["state"]["result_state"] == "SUCCESS"


def test_a_repeated_repair_token_returns_the_same_repair(api: Api, clock: FakeClock) -> None:
    run_id = failed_flaky_run(api, clock)
    body = {"run_id": run_id, "rerun_all_failed_tasks": True, "idempotency_token": "fix-1"}
    first = api.ok("POST", "jobs/runs/repair", body)
    assert api.ok("POST", "jobs/runs/repair", body) == first  # even while the repair runs
    clock.advance(10)
    assert api.ok("POST", "jobs/runs/repair", body) == first
    assert len(api.run(run_id)["tasks"]) == 2


def test_etl_with_checks_is_repaired_with_strict_off(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("etl-with-checks", job_parameters={"strict": "true"})
    clock.advance(10)
    run = api.run(run_id)
    assert results(run) == {"ingest": "SUCCESS", "validate": "FAILED", "publish": "UPSTREAM_FAILED"}
    assert "validate failed" in run["state"]["state_message"]
    body = {"run_id": run_id, "rerun_all_failed_tasks": True, "job_parameters": {"strict": "false"}}
    api.ok("POST", "jobs/runs/repair", body)
    clock.advance(10)
    run = api.run(run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    assert {k: len(v) for k, v in by_key(run).items()} == {"ingest": 1, "validate": 2, "publish": 2}
    assert {p["name"]: p["value"] for p in run["job_parameters"]}["strict"] == "false"


def test_repair_with_dependents(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("etl-pipeline")
    clock.advance(10)
    body = {"run_id": run_id, "rerun_tasks": ["transform"], "rerun_dependent_tasks": True}
    api.ok("POST", "jobs/runs/repair", body)
    clock.advance(1.2)
    states = {k: v[-1]["state"]["life_cycle_state"] for k, v in by_key(api.run(run_id)).items()}
    assert states == {"ingest": "TERMINATED", "transform": "RUNNING", "publish": "BLOCKED"}
    clock.advance(10)
    run = api.run(run_id)
    assert {k: len(v) for k, v in by_key(run).items()} == {"ingest": 1, "transform": 2, "publish": 2}


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"rerun_tasks": ["nope", "ingest", "also_nope"]}, 400, "INVALID_PARAMETER_VALUE", "nope, also_nope"),
        ({"rerun_all_failed_tasks": True}, 400, "INVALID_PARAMETER_VALUE", "no failed tasks"),
        ({}, 400, "INVALID_PARAMETER_VALUE", "rerun_tasks"),
        (
            {"rerun_tasks": ["ingest"], "rerun_all_failed_tasks": True},
            400,
            "INVALID_PARAMETER_VALUE",
            "Only one",
        ),
        ({"rerun_tasks": "ingest"}, 400, "MALFORMED_REQUEST", "rerun_tasks"),
        (
            {"rerun_tasks": ["ingest"], "latest_repair_id": 5},
            400,
            "INVALID_PARAMETER_VALUE",
            "not been repaired",
        ),
        (
            {"rerun_tasks": ["ingest"], "notebook_params": {"x": 1}},
            400,
            "MALFORMED_REQUEST",
            "notebook_params",
        ),
    ],
)
def test_repair_refusals(
    api: Api, clock: FakeClock, body: dict[str, Any], status: int, code: str, words: str
) -> None:
    run_id = api.run_now("etl-pipeline")
    clock.advance(10)
    got = error(api.post("jobs/runs/repair", {"run_id": run_id, **body}))
    assert got[:2] == (status, code) and words in got[2]
    assert len(api.run(run_id)["tasks"]) == 3  # nothing was rerun


def test_an_active_or_missing_run_cannot_be_repaired(api: Api) -> None:
    run_id = api.run_now("etl-pipeline")
    body = {"run_id": run_id, "rerun_tasks": ["ingest"]}
    assert error(api.post("jobs/runs/repair", body))[:2] == (400, "INVALID_STATE")
    assert error(api.post("jobs/runs/repair", {**body, "run_id": 77})) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Run 77 does not exist.",
    )
    api.prefix = "/api/2.1/"  # both prefixes serve it
    assert error(api.post("jobs/runs/repair", body))[:2] == (400, "INVALID_STATE")


# ---------------------------------------------------------------- only
@pytest.mark.parametrize(
    ("only", "ran"),
    [
        (["transform"], {"transform"}),
        (["+transform"], {"ingest", "transform"}),
        (["transform+"], {"transform", "publish"}),
        (["+publish"], {"ingest", "transform", "publish"}),
        (["ingest", "publish"], {"ingest", "publish"}),
    ],
)
def test_only_runs_a_subset(api: Api, clock: FakeClock, only: list[str], ran: set[str]) -> None:
    run_id = api.run_now("etl-pipeline", only=only)
    clock.advance(10)
    run = api.run(run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    got = results(run)
    assert {k for k, v in got.items() if v == "SUCCESS"} == ran
    assert {k for k, v in got.items() if v == "EXCLUDED"} == set(got) - ran
    excluded = [t for t in run["tasks"] if t["state"].get("result_state") == "EXCLUDED"]
    assert all(t["state"]["life_cycle_state"] == "SKIPPED" for t in excluded)
    assert all(t["status"]["state"] == "TERMINATED" and t["execution_duration"] == 0 for t in excluded)


def test_only_refuses_unknown_keys(api: Api, sb: Sandbox) -> None:
    before = sb.run_ids("etl-pipeline")
    got = error(api.post("jobs/run-now", {"job_id": sb.job_id("etl-pipeline"), "only": ["+nope", "ingest"]}))
    assert got[:2] == (400, "INVALID_PARAMETER_VALUE") and "+nope" in got[2]
    bad = error(api.post("jobs/run-now", {"job_id": sb.job_id("etl-pipeline"), "only": "ingest"}))
    assert bad[:2] == (400, "MALFORMED_REQUEST")
    assert sb.run_ids("etl-pipeline") == before


def test_an_excluded_task_can_be_run_by_a_repair(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("etl-pipeline", only=["ingest"])
    clock.advance(10)
    body = {"run_id": run_id, "rerun_all_failed_tasks": True}
    assert "no failed tasks" in error(api.post("jobs/runs/repair", body))[2]  # excluded is not failed
    api.ok("POST", "jobs/runs/repair", {"run_id": run_id, "rerun_tasks": ["transform", "publish"]})
    clock.advance(10)
    assert set(results(api.run(run_id)).values()) == {"SUCCESS"}


# ---------------------------------------------------------------- cancel-all, run_type
def test_cancel_all_cancels_running_and_queued_runs(api: Api, sb: Sandbox, clock: FakeClock) -> None:
    first, second = api.run_now("nightly-backfill"), api.run_now("nightly-backfill")
    other = api.run_now("daily-sales-report")
    assert api.ok("POST", "jobs/runs/cancel-all", {"job_id": sb.job_id("nightly-backfill")}) == {}
    clock.advance(1)
    assert api.run(first)["state"]["result_state"] == "CANCELED"
    assert api.run(second)["state"]["result_state"] == "CANCELED"
    assert api.state(other) == "RUNNING"


def test_cancel_all_queued_runs_leaves_the_running_ones(api: Api, clock: FakeClock) -> None:
    first, second = api.run_now("nightly-backfill"), api.run_now("nightly-backfill")
    api.ok("POST", "jobs/runs/cancel-all", {"all_queued_runs": True})
    assert api.run(second)["state"]["result_state"] == "CANCELED"
    assert api.state(first) == "PENDING"
    assert error(api.post("jobs/runs/cancel-all", {}))[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error(api.post("jobs/runs/cancel-all", {"job_id": 4242}))[2] == "Job 4242 does not exist."


def test_runs_list_run_type(api: Api, sb: Sandbox) -> None:
    job_id = sb.job_id("train-model")
    runs = api.ok("GET", "jobs/runs/list", job_id=job_id, run_type="JOB_RUN")["runs"]
    assert len(runs) == 5 and {r["run_type"] for r in runs} == {"JOB_RUN"}
    assert api.ok("GET", "jobs/runs/list", job_id=job_id, run_type="SUBMIT_RUN") == {"has_more": False}
    assert error(api.get("jobs/runs/list", run_type="NOPE"))[:2] == (400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- 2.2 paging
def test_jobs_get_pages_tasks_on_2_2_only(api: Api, sb: Sandbox) -> None:
    job_id = sb.job_id("wide-batch")
    first = api.ok("GET", "jobs/get", job_id=job_id)
    assert len(first["settings"]["tasks"]) == 100 and len(first["settings"]["job_clusters"]) == 1
    second = api.ok("GET", "jobs/get", job_id=job_id, page_token=first["next_page_token"])
    assert [t["task_key"] for t in second["settings"]["tasks"]] == [f"part_{i:03d}" for i in range(101, 121)]
    assert second["settings"]["job_clusters"] == [] and "next_page_token" not in second
    assert "next_page_token" not in api.ok("GET", "jobs/get", job_id=sb.job_id("etl-pipeline"))
    api.prefix = "/api/2.1/"
    whole = api.ok("GET", "jobs/get", job_id=job_id)
    assert len(whole["settings"]["tasks"]) == 120 and "next_page_token" not in whole
    api.prefix = "/api/2.2/"
    assert error(api.get("jobs/get", job_id=job_id, page_token="!!"))[:2] == (400, "INVALID_PARAMETER_VALUE")


def test_runs_get_pages_tasks_and_lists_say_has_more(api: Api, sb: Sandbox, clock: FakeClock) -> None:
    run_id = api.run_now("wide-batch")
    clock.advance(10)
    first = api.ok("GET", "jobs/runs/get", run_id=run_id, include_history="true")
    assert len(first["tasks"]) == 100 and len(first["repair_history"]) == 1
    second = api.ok(
        "GET", "jobs/runs/get", run_id=run_id, include_history="true", page_token=first["next_page_token"]
    )
    assert len(second["tasks"]) == 20 and second["repair_history"] == [] and "next_page_token" not in second
    ids = {t["run_id"] for t in first["tasks"] + second["tasks"]}
    assert len(ids) == 120
    listed = api.ok("GET", "jobs/runs/list", job_id=sb.job_id("wide-batch"), limit=1, expand_tasks="true")
    assert listed["runs"][0]["has_more"] is True and len(listed["runs"][0]["tasks"]) == 100
    jobs = api.ok("GET", "jobs/list", expand_tasks="true", name="wide-batch")["jobs"]
    assert jobs[0]["has_more"] is True and len(jobs[0]["settings"]["tasks"]) == 100
    api.prefix = "/api/2.1/"
    assert len(api.run(run_id)["tasks"]) == 120


# ---------------------------------------------------------------- for-each and condition
def test_for_each_stats_move_with_the_clock(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("regional-scoring")

    def stats() -> dict[str, int]:
        task = by_key(api.run(run_id))["score_regions"][-1]
        return task["for_each_task"]["stats"]["task_run_stats"]

    task = by_key(api.run(run_id))["score_regions"][0]
    assert json.loads(task["for_each_task"]["inputs"])[:2] == ["emea", "amer"]
    assert task["for_each_task"]["concurrency"] == 2
    assert task["for_each_task"]["task"]["notebook_task"]["base_parameters"]["region"] == "{{input}}"
    assert stats()["active_iterations"] == 0 and stats()["total_iterations"] == 6
    seen = []
    for at in (1.1, 1.9, 2.7, 3.5):
        clock.now = 5000.0 + at
        s = stats()
        seen.append((s["active_iterations"], s["completed_iterations"], s["succeeded_iterations"]))
    assert seen == [(2, 0, 0), (2, 2, 2), (2, 4, 4), (0, 6, 6)]
    assert stats()["failed_iterations"] == 0


@pytest.mark.parametrize(
    ("notify", "outcome", "notified"), [("false", "false", "EXCLUDED"), ("true", "true", "SUCCESS")]
)
def test_condition_outcome_decides_the_branch(
    api: Api, clock: FakeClock, notify: str, outcome: str, notified: str
) -> None:
    run_id = api.run_now("regional-scoring", job_parameters={"notify": notify})
    clock.advance(10)
    run = api.run(run_id)
    check = by_key(run)["check_notify"][0]
    assert check["condition_task"] == {
        "op": "EQUAL_TO",
        "left": "{{job.parameters.notify}}",
        "right": "true",
        "outcome": outcome,
    }
    assert results(run)["notify_owners"] == notified and run["state"]["result_state"] == "SUCCESS"
    assert by_key(run)["notify_owners"][0]["depends_on"] == [{"task_key": "check_notify", "outcome": "true"}]


def test_job_parameter_pushdown(api: Api, sb: Sandbox, clock: FakeClock) -> None:
    job_id = sb.add_job(
        "pushdown",
        tasks=[
            Task("t", "/Shared/t", {"region": "task-value", "own": "x"}, notebook=lambda p: json.dumps(p))
        ],
        parameters={"region": "job-default"},
    )
    run_id = api.run_now(job_id, job_parameters={"region": "job-value"})
    clock.advance(10)
    task = api.run(run_id)["tasks"][0]
    assert task["notebook_task"]["base_parameters"] == {"region": "job-value", "own": "x"}
    assert json.loads(api.output(task["run_id"])["notebook_output"]["result"]) == {
        "region": "job-value",
        "own": "x",
    }
    plain = api.run(api.run_now(job_id))["tasks"][0]
    assert plain["notebook_task"]["base_parameters"]["region"] == "job-default"


# ---------------------------------------------------------------- timings
def test_task_timings_follow_the_phases(api: Api, clock: FakeClock) -> None:
    first = api.run_now("nightly-backfill")
    second = api.run_now("nightly-backfill")
    clock.advance(20)
    for run_id, queued in ((first, 0), (second, 3900)):
        run = api.run(run_id)
        assert (run["setup_duration"], run["execution_duration"], run["cleanup_duration"]) == (0, 0, 0)
        assert run["queue_duration"] == queued
        task = run["tasks"][0]
        assert task["queue_duration"] == queued
        assert (task["setup_duration"], task["execution_duration"], task["cleanup_duration"]) == (
            1000,
            2500,
            0,
        )
        assert task["end_time"] - task["start_time"] == task["setup_duration"] + task["execution_duration"]
        assert task["start_time"] == run["start_time"] + queued


# ---------------------------------------------------------------- exports and sources
def test_export_of_a_notebook_task_run(api: Api, clock: FakeClock) -> None:
    run = api.run(api.run_now("daily-sales-report", notebook_params={"date": "2024-02-29"}))
    clock.advance(10)
    task_run = run["tasks"][0]["run_id"]
    for views in ("CODE", "ALL", None):
        params = {"run_id": task_run, **({"views_to_export": views} if views else {})}
        (view,) = api.ok("GET", "jobs/runs/export", **params)["views"]
        assert view["type"] == "NOTEBOOK" and view["name"] == "daily_sales_report"
    html = view["content"]
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "2024-02-29" in html
    assert "rows" in html and 'src="data:image/svg+xml;base64,' in html
    assert "<script>" in html and "window.parent.__dbx_export_reached = true" in html
    assert api.ok("GET", "jobs/runs/export", run_id=task_run, views_to_export="DASHBOARDS") == {}


@pytest.mark.parametrize(
    ("which", "code", "words"),
    [
        ("job run", "INVALID_PARAMETER_VALUE", "job run"),
        ("for-each", "INVALID_PARAMETER_VALUE", "for-each"),
        ("condition", "INVALID_PARAMETER_VALUE", "condition"),
        ("missing", "INVALID_PARAMETER_VALUE", "Run 77 does not exist."),
        ("bad views", "INVALID_PARAMETER_VALUE", "views_to_export"),
    ],
)
def test_export_refusals(api: Api, which: str, code: str, words: str) -> None:
    run = api.run(api.run_now("regional-scoring"))
    tasks = by_key(run)
    run_id = {
        "job run": run["run_id"],
        "for-each": tasks["score_regions"][0]["run_id"],
        "condition": tasks["check_notify"][0]["run_id"],
        "missing": 77,
        "bad views": tasks["notify_owners"][0]["run_id"],
    }[which]
    extra = {"views_to_export": "PDF"} if which == "bad views" else {}
    got = error(api.get("jobs/runs/export", run_id=run_id, **extra))
    assert got[:2] == (400, code) and words in got[2]


def test_notebook_sources(api: Api, sb: Sandbox) -> None:
    api.prefix = "/api/2.0/"
    seen = ""
    paths = set()
    for name in sb.jobs:
        job = Api(sb).ok("GET", "jobs/get", job_id=sb.job_id(name))
        for task in job["settings"]["tasks"]:
            notebook = task.get("notebook_task") or task.get("for_each_task", {}).get("task", {}).get(
                "notebook_task"
            )
            if notebook:
                paths.add(notebook["notebook_path"])
    readable = paths - {"/Workspace/Shared/scoring/notify_owners"}
    for path in readable:
        source = base64.b64decode(
            api.ok("GET", "workspace/export", path=path, format="SOURCE")["content"]
        ).decode()
        assert source.startswith("# Databricks notebook source")
        seen += source
    for kind in ("text", "dropdown", "combobox", "multiselect"):
        assert f"dbutils.widgets.{kind}(" in seen
    assert 'dbutils.widgets.text("date", "2026-11-01"' in seen
    assert 'dbutils.widgets.dropdown("fail", "false", ["true", "false"]' in seen
    assert error(api.get("workspace/export", path="/Workspace/nope")) == (
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Path (/Workspace/nope) doesn't exist.",
    )
    denied = error(api.get("workspace/export", path="/Workspace/Shared/scoring/notify_owners"))
    assert denied[:2] == (403, "PERMISSION_DENIED")
    sb.add_notebook("/Workspace/Users/me/secret", None)
    sb.add_notebook("/Workspace/Users/me/mine", "# Databricks notebook source\nprint(1)\n")
    assert error(api.get("workspace/export", path="/Workspace/Users/me/secret"))[0] == 403
    assert api.get("workspace/export", path="/Workspace/Users/me/mine").status_code == 200
    api.prefix = "/api/2.2/"
    assert api.get("workspace/export", path="/Workspace/Users/me/mine").status_code == 404


def test_add_job_can_make_a_source_unreadable(api: Api, sb: Sandbox) -> None:
    sb.add_job("locked", tasks=[Task("t", "/Workspace/Team/locked", {"a": "1"}, readable=False)])
    sb.add_job("open", tasks=[Task("t", "/Workspace/Team/open", {"a": "1"})])
    api.prefix = "/api/2.0/"
    assert error(api.get("workspace/export", path="/Workspace/Team/locked"))[:2] == (403, "PERMISSION_DENIED")
    source = base64.b64decode(
        api.ok("GET", "workspace/export", path="/Workspace/Team/open")["content"]
    ).decode()
    assert 'dbutils.widgets.text("a", "1", "a")' in source


def test_error_trace_names_no_file_of_this_machine(api: Api, clock: FakeClock) -> None:
    run_id = failed_flaky_run(api, clock)
    trace = api.output(api.run(run_id)["tasks"][0]["run_id"])["error_trace"]
    assert trace.startswith("Traceback (most recent call last)") and "ValueError: asked to fail" in trace
    assert '"/Workspace/Shared/ingest/flaky_ingest"' in trace
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout
    for secret in (here, sys.prefix, '.py"', os.path.expanduser("~")):
        assert secret not in trace


# ---------------------------------------------------------------- epoch and run pages
def test_epoch_and_clock_drive_every_time(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    real = time.time
    callers: list[str] = []

    def watched() -> float:
        callers.append(sys._getframe(1).f_globals.get("__name__", ""))
        return real()

    monkeypatch.setattr(time, "time", watched)
    with Sandbox(clock=clock, epoch=1_800_000_000.0) as sandbox:
        api = Api(sandbox)
        run_id = api.run_now("daily-sales-report")
        clock.advance(10)
        run = api.run(run_id)
        api.output(run["tasks"][0]["run_id"])
        api.ok("GET", "jobs/runs/list", expand_tasks="true")
    assert run["start_time"] == 1_800_000_000_000 and run["end_time"] == 1_800_000_003_400
    assert [c for c in callers if c.startswith("dbx_magic")] == []


def test_run_pages_are_served(api: Api, sb: Sandbox, clock: FakeClock) -> None:
    run_id = api.run_now("etl-pipeline")
    clock.advance(10)
    run = api.run(run_id)
    assert run["run_page_url"] == sb.run_page(run_id)
    page = requests.get(run["run_page_url"], timeout=5)  # as a browser would: no token
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "etl-pipeline" in page.text and "transform" in page.text and "SUCCESS" in page.text
    job_link = f'href="/jobs/{run["job_id"]}"'
    assert job_link in page.text
    task = requests.get(run["tasks"][0]["run_page_url"], timeout=5)
    assert task.status_code == 200 and f"/runs/{run_id}" in task.text and "source" in task.text
    job_page = requests.get(sb.url + f"/jobs/{run['job_id']}", timeout=5)
    assert job_page.status_code == 200 and f"/runs/{run_id}" in job_page.text
    index = requests.get(sb.url + "/", timeout=5)
    assert index.status_code == 200 and "wide-batch" in index.text
    missing = requests.get(sb.url + f"/jobs/{run['job_id']}/runs/77", timeout=5)
    assert missing.status_code == 401 and missing.json()["error_code"] == 401


# ---------------------------------------------------------------- malformed requests
def raw_request(sb: Sandbox, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; read one answer (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", sb.port), timeout=5) as conn:
        conn.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body


def post(sb: Sandbox, body: bytes, length: str | None = None, path: str = "/api/2.2/jobs/run-now") -> bytes:
    size = str(len(body)) if length is None else length
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {sb.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode() + body


CASES = {
    "deeply nested": (lambda sb: post(sb, b"[" * 100_000), 400, "MALFORMED_REQUEST"),
    "deeply nested object": (lambda sb: post(sb, b'{"a":' * 50_000), 400, "MALFORMED_REQUEST"),
    "length abc": (lambda sb: post(sb, b"{}", "abc"), 400, "MALFORMED_REQUEST"),
    "negative length": (lambda sb: post(sb, b"{}", "-5"), 400, "MALFORMED_REQUEST"),
    "absurd length": (lambda sb: post(sb, b"{}", str(10**12)), 413, "REQUEST_ENTITY_TOO_LARGE"),
    "not UTF-8": (lambda sb: post(sb, b'{"job_id": "\xff\xfe"}'), 400, "MALFORMED_REQUEST"),
    "UTF-16": (lambda sb: post(sb, '{"job_id": 1}'.encode("utf-16")), 400, "MALFORMED_REQUEST"),
    "array body": (lambda sb: post(sb, b"[1, 2]"), 400, "MALFORMED_REQUEST"),
    "string body": (lambda sb: post(sb, b'"run"'), 400, "MALFORMED_REQUEST"),
    "chunked": (
        lambda sb: (
            f"POST /api/2.2/jobs/run-now HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sb.token}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        ).encode(),
        411,
        "LENGTH_REQUIRED",
    ),
    "OPTIONS": (
        lambda sb: f"OPTIONS /api/2.2/jobs/get HTTP/1.1\r\nAuthorization: Bearer {sb.token}\r\n\r\n".encode(),
        404,
        "ENDPOINT_NOT_FOUND",
    ),
    "TRACE": (
        lambda sb: f"TRACE /api/2.2/jobs/get HTTP/1.1\r\nAuthorization: Bearer {sb.token}\r\n\r\n".encode(),
        404,
        "ENDPOINT_NOT_FOUND",
    ),
    "made-up method": (
        lambda sb: f"BREW /api/2.2/jobs/get HTTP/1.1\r\nAuthorization: Bearer {sb.token}\r\n\r\n".encode(),
        404,
        "ENDPOINT_NOT_FOUND",
    ),
    "PUT without auth": (lambda sb: b"PUT /api/2.2/jobs/get HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 401, 401),
    "garbage request line": (lambda sb: b"HELLO\r\n\r\n", 400, "BAD_REQUEST"),
    "bad HTTP version": (lambda sb: b"GET / HTTP/9.9\r\n\r\n", 505, "HTTP_VERSION_NOT_SUPPORTED"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_requests_get_json_errors(
    sb: Sandbox, case: str, capfd: pytest.CaptureFixture[str]
) -> None:
    make, status, code = CASES[case]
    before = len(sb.run_ids("daily-sales-report"))
    got, headers, body = raw_request(sb, make(sb))
    assert got == status and headers["content-type"] == "application/json"
    answer = json.loads(body)
    assert answer["error_code"] == code and isinstance(answer["message"], str)
    assert len(sb.run_ids("daily-sales-report")) == before
    assert capfd.readouterr().err == ""


def test_head_answers_headers_only(sb: Sandbox) -> None:
    got, headers, body = raw_request(
        sb,
        f"HEAD /api/2.2/jobs/get HTTP/1.1\r\nAuthorization: Bearer {sb.token}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert got == 404 and headers["content-type"] == "application/json" and body == b""


def test_two_hundred_concurrent_clients(sb: Sandbox) -> None:
    """200 connections at once (a burst far past the old backlog of 5): none reset, every answer JSON."""
    clients = 200
    start = threading.Barrier(clients, timeout=10)
    answers: list[Any] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    request = f"GET /api/2.2/jobs/list?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sb.token}\r\nConnection: close\r\n\r\n".encode()

    def client() -> None:
        try:
            start.wait()
            status, _, body = raw_request(sb, request)
            with lock:
                answers.append((status, json.loads(body)))
        except Exception as exc:  # collected and reported below
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not failures, failures[:3]
    assert len(answers) == clients and all(status == 200 and "jobs" in body for status, body in answers)
