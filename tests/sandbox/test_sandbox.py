"""The sandbox workspace: the official SDK drives it, and its HTTP behaviour matches the Jobs API."""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests

from dbx_magic.sandbox import Phase, Sandbox, Task, serve

from .api import Api, FakeClock, error

FIRST_SAMPLES = {"daily-sales-report", "train-model", "etl-pipeline", "flaky-ingest", "nightly-backfill"}
SAMPLES = FIRST_SAMPLES | {"etl-with-checks", "regional-scoring", "wide-batch"}
SAMPLES |= {"store-forecast", "attribution-daily", "gpu-training", "shared-refresh", "finance-close"}
PAGE_URL = re.compile(r"^http://127\.0\.0\.1:\d+/jobs/(\d+)/runs/(\d+)\?o=(\d{16})#job/(\d+)/run/(\d+)$")


# ---------------------------------------------------------------- the official SDK
@pytest.fixture(scope="module")
def fast() -> Iterator[Sandbox]:
    with Sandbox(speed=20) as sandbox:
        yield sandbox


def test_sdk_lists_and_gets_jobs(fast: Sandbox) -> None:
    from databricks.sdk import WorkspaceClient  # imported here: a second of CPU in every worker otherwise

    w = WorkspaceClient(host=fast.url, token=fast.token)
    assert {job.settings.name for job in w.jobs.list()} == SAMPLES
    assert [job.job_id for job in w.jobs.list(name="ETL-Pipeline")] == [fast.job_id("etl-pipeline")]
    etl = w.jobs.get(fast.job_id("etl-pipeline"))
    assert [t.task_key for t in etl.settings.tasks] == ["ingest", "transform", "publish"]
    assert [d.task_key for d in etl.settings.tasks[2].depends_on] == ["transform"]
    train = w.jobs.get(fast.job_id("train-model"))
    assert {p.name: p.default for p in train.settings.parameters}["max_depth"] == "6"


def test_sdk_run_now_waits_for_success_and_reads_output(fast: Sandbox) -> None:
    from databricks.sdk import WorkspaceClient

    w = WorkspaceClient(host=fast.url, token=fast.token)
    waiter = w.jobs.run_now(job_id=fast.job_id("daily-sales-report"), notebook_params={"date": "2025-03-01"})
    run = waiter.result(timeout=timedelta(seconds=20))
    assert run.state.life_cycle_state.value == "TERMINATED"
    assert run.state.result_state.value == "SUCCESS"
    assert run.status.termination_details.code.value == "SUCCESS"
    output = w.jobs.get_run_output(run.tasks[0].run_id)
    result = json.loads(output.notebook_output.result)
    assert result["date"] == "2025-03-01" and result["table"] == "main.sales.transactions"
    assert isinstance(result["rows"], int)


def test_sdk_errors(fast: Sandbox) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist

    w = WorkspaceClient(host=fast.url, token=fast.token)
    with pytest.raises(ResourceDoesNotExist, match="Job 987654 does not exist"):
        w.jobs.get(987654)
    with pytest.raises(ResourceDoesNotExist):
        w.jobs.get_run(987654)
    past = next(iter(w.jobs.list_runs(job_id=fast.job_id("flaky-ingest"), completed_only=True)))
    with pytest.raises(InvalidParameterValue, match="multiple tasks is not supported"):
        w.jobs.get_run_output(past.run_id)
    intruder = WorkspaceClient(host=fast.url, token="dapi" + "0" * 32)
    with pytest.raises(PermissionDenied, match="Invalid access token"):
        intruder.jobs.get(fast.job_id("train-model"))


# ---------------------------------------------------------------- paths, auth, prefixes
def test_well_known_probe_and_unknown_paths(api: Api, sb: Sandbox) -> None:
    probe = requests.get(sb.url + "/.well-known/databricks-config", timeout=5)
    assert probe.status_code == 404 and probe.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert error(api.get("jobs/nope"))[:2] == (404, "ENDPOINT_NOT_FOUND")
    assert error(api.get("jobs/run-now"))[:2] == (404, "ENDPOINT_NOT_FOUND")
    api.prefix = "/api/2.0/"
    assert api.get("jobs/get", job_id=1).status_code == 404


def test_token_is_fake_and_required(sb: Sandbox) -> None:
    assert sb.token.startswith("dsbx-") and not re.fullmatch(r"dapi[0-9a-f]{32}", sb.token)
    url = sb.url + "/api/2.1/jobs/list"
    for headers in (
        {"Authorization": "Bearer dapi" + "1" * 32},
        {"Authorization": "Bearer " + sb.token[:-1]},
    ):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 403
        assert response.json() == {"error_code": 403, "message": "Invalid access token."}
    # no credential, or not a bearer one: 401, as the service answers
    for headers in ({}, {"Authorization": sb.token}, {"Authorization": "Basic dXNlcjpwdw=="}):
        response = requests.get(url, headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json() == {
            "error_code": 401,
            "message": "Credential was not sent or was of an unsupported type for this API.",
        }


def test_both_api_prefixes(api: Api, sb: Sandbox) -> None:
    job_id = sb.job_id("daily-sales-report")
    v22 = api.ok("GET", "jobs/get", job_id=job_id)
    api.prefix = "/api/2.1/"
    assert api.ok("GET", "jobs/get", job_id=job_id) == v22
    run_id = api.run_now(job_id)
    api.prefix = "/api/2.2/"
    assert api.run(run_id)["run_id"] == run_id


# ---------------------------------------------------------------- error bodies
def test_missing_job_and_run(api: Api) -> None:
    missing_job = (400, "INVALID_PARAMETER_VALUE", "Job 424242 does not exist.")
    assert error(api.get("jobs/get", job_id=424242)) == missing_job
    assert error(api.post("jobs/run-now", {"job_id": 424242})) == missing_job
    missing_run = (400, "INVALID_PARAMETER_VALUE", "Run 77 does not exist.")
    assert error(api.get("jobs/runs/get", run_id=77)) == missing_run
    assert error(api.get("jobs/runs/get-output", run_id=77)) == missing_run
    assert error(api.post("jobs/runs/cancel", {"run_id": 77})) == missing_run


def test_get_output_of_a_job_run_is_refused(api: Api) -> None:
    run_id = api.run_now("daily-sales-report")
    assert error(api.get("jobs/runs/get-output", run_id=run_id)) == (
        400,
        "INVALID_PARAMETER_VALUE",
        "Retrieving the output of runs with multiple tasks is not supported. "
        "Please retrieve the output of each individual task run instead.",
    )


def test_malformed_requests(api: Api, sb: Sandbox) -> None:
    job_id = sb.job_id("daily-sales-report")
    assert error(api.post("jobs/run-now", {"job_id": job_id, "notebook_params": "date=1"})) == (
        400,
        "MALFORMED_REQUEST",
        "Could not parse request object: Expected object for field notebook_params, found STRING",
    )
    bad_value = {"job_id": job_id, "notebook_params": {"n": 1}}
    assert error(api.post("jobs/run-now", bad_value))[:2] == (400, "MALFORMED_REQUEST")
    garbage = api.session.post(sb.url + "/api/2.2/jobs/run-now", data=b"{not json", timeout=5)
    assert error(garbage)[:2] == (400, "MALFORMED_REQUEST")
    assert error(api.post("jobs/run-now", {}))[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert error(api.get("jobs/get", job_id="abc"))[:2] == (400, "MALFORMED_REQUEST")
    assert sb.run_ids(job_id) == sb.run_ids("daily-sales-report")  # nothing was started
    assert len(sb.run_ids(job_id)) == 5


@pytest.mark.parametrize(
    ("job", "field"), [("daily-sales-report", "notebook_params"), ("train-model", "job_parameters")]
)
def test_parameters_over_10000_bytes_are_refused(api: Api, sb: Sandbox, job: str, field: str) -> None:
    job_id = sb.job_id(job)
    at_limit = {"k": "x" * (10_000 - len('{"k":""}'))}
    assert api.post("jobs/run-now", {"job_id": job_id, field: at_limit}).status_code == 200
    over = {"k": at_limit["k"] + "x"}
    status, code, message = error(api.post("jobs/run-now", {"job_id": job_id, field: over}))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "10000 bytes" in message


def test_idempotency_token_longer_than_64_is_refused(api: Api, sb: Sandbox) -> None:
    job_id = sb.job_id("daily-sales-report")
    assert error(api.post("jobs/run-now", {"job_id": job_id, "idempotency_token": "t" * 65}))[:2] == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert api.post("jobs/run-now", {"job_id": job_id, "idempotency_token": "t" * 64}).ok


def test_job_parameters_and_notebook_params_do_not_mix(api: Api, sb: Sandbox) -> None:
    body = {"job_id": sb.job_id("train-model"), "job_parameters": {"max_depth": "8"}}
    mixed = {**body, "notebook_params": {"max_depth": "9"}}
    status, code, message = error(api.post("jobs/run-now", mixed))
    assert (status, code) == (400, "INVALID_PARAMETER_VALUE") and "job_parameters" in message
    assert api.post("jobs/run-now", body).ok


# ---------------------------------------------------------------- run-now and runs/get
def test_idempotency_token_returns_the_same_run(api: Api, sb: Sandbox) -> None:
    before = sb.run_ids("flaky-ingest")
    first = api.run_now("flaky-ingest", idempotency_token="launch-1")
    again = api.ok(
        "POST", "jobs/run-now", {"job_id": sb.job_id("flaky-ingest"), "idempotency_token": "launch-1"}
    )
    assert again == {"run_id": first, "number_in_job": first}
    assert sb.run_ids("flaky-ingest") == [*before, first]
    assert api.run_now("daily-sales-report", idempotency_token="launch-1") != first


def test_notebook_params_are_merged_over_base_parameters(api: Api, clock: FakeClock) -> None:
    sent = {"date": "2024-02-29", "region": "emea"}
    run = api.run(api.run_now("daily-sales-report", notebook_params=sent))
    assert run["overriding_parameters"] == {"notebook_params": sent}
    merged = {"date": "2024-02-29", "table": "main.sales.transactions", "region": "emea"}
    assert run["tasks"][0]["notebook_task"]["base_parameters"] == merged
    clock.advance(10)
    result = json.loads(api.output(run["tasks"][0]["run_id"])["notebook_output"]["result"])
    assert {k: result[k] for k in merged} == merged and result["rows"] > 0


def test_job_parameters_are_merged_over_defaults(api: Api, clock: FakeClock) -> None:
    run = api.run(api.run_now("train-model", job_parameters={"max_depth": "8"}))
    assert run["job_parameters"] == [
        {"name": "model_name", "default": "churn-xgb", "value": "churn-xgb"},
        {"name": "max_depth", "default": "6", "value": "8"},
        {"name": "learning_rate", "default": "0.1", "value": "0.1"},
    ]
    assert "base_parameters" not in run["tasks"][0]["notebook_task"]
    clock.advance(10)
    output = api.output(run["tasks"][0]["run_id"])
    result = json.loads(output["notebook_output"]["result"])
    assert result["max_depth"] == "8" and result["model_name"] == "churn-xgb" and 0.8 <= result["auc"] < 0.95
    assert output["notebook_output"]["truncated"] is False


def test_a_run_goes_pending_running_terminating_terminated(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("daily-sales-report")
    run = api.run(run_id)
    assert run["number_in_job"] == run_id and run["run_type"] == "JOB_RUN"
    assert run["trigger"] == "ONE_TIME" and run["end_time"] == 0
    assert run["state"] == {
        "life_cycle_state": "PENDING",
        "state_message": "Waiting for cluster",
        "user_cancelled_or_timedout": False,
    }
    assert run["status"] == {"state": "PENDING"}
    path_job, path_run, _, job, page_run = PAGE_URL.match(run["run_page_url"]).groups()
    assert (path_job, path_run) == (job, page_run) and (int(job), int(page_run)) == (run["job_id"], run_id)
    task = run["tasks"][0]
    assert task["run_id"] != run_id and PAGE_URL.match(task["run_page_url"])
    seen = []
    for _ in range(8):
        seen.append(api.state(run_id))
        clock.advance(0.5)
    assert seen == ["PENDING"] * 2 + ["RUNNING"] * 4 + ["TERMINATING", "TERMINATED"]
    run = api.run(run_id)
    assert run["state"]["result_state"] == "SUCCESS" and run["status"]["state"] == "TERMINATED"
    assert run["status"]["termination_details"] == {"code": "SUCCESS", "type": "SUCCESS", "message": ""}
    assert run["end_time"] - run["start_time"] == run["run_duration"] == 3400


def test_speed_divides_durations(clock: FakeClock) -> None:
    with Sandbox(speed=10, clock=clock) as sandbox:
        api = Api(sandbox)
        run_id = api.run_now("daily-sales-report")
        clock.advance(0.35)
        assert api.run(run_id)["run_duration"] == 340


def test_multi_task_run_follows_depends_on(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("etl-pipeline")

    def states() -> dict[str, str]:
        return {t["task_key"]: t["state"]["life_cycle_state"] for t in api.run(run_id)["tasks"]}

    clock.advance(1.2)
    assert states() == {"ingest": "RUNNING", "transform": "BLOCKED", "publish": "BLOCKED"}
    clock.advance(1.0)
    assert states() == {"ingest": "TERMINATED", "transform": "RUNNING", "publish": "BLOCKED"}
    clock.advance(5)
    run = api.run(run_id)
    assert run["state"]["result_state"] == "SUCCESS"
    assert [t["depends_on"] for t in run["tasks"][1:]] == [
        [{"task_key": "ingest"}],
        [{"task_key": "transform"}],
    ]
    outputs = [json.loads(api.output(t["run_id"])["notebook_output"]["result"]) for t in run["tasks"]]
    assert outputs[0]["rows_ingested"] > 0 and outputs[2]["table"] == "main.gold.orders"


def test_flaky_ingest_fails_when_asked(api: Api, clock: FakeClock) -> None:
    run_id = api.run_now("flaky-ingest", notebook_params={"fail": "true"})
    clock.advance(10)
    run = api.run(run_id)
    assert run["state"]["result_state"] == "FAILED"
    assert "ingest failed" in run["state"]["state_message"]
    assert run["status"]["termination_details"]["code"] == "RUN_EXECUTION_ERROR"
    task = run["tasks"][0]
    assert task["state"]["result_state"] == "FAILED" and task["state"]["state_message"]
    output = api.output(task["run_id"])
    assert output["error"] == "ValueError: asked to fail"
    assert output["error_trace"].startswith("Traceback (most recent call last)")
    assert output["error_trace"].rstrip().endswith("ValueError: asked to fail")
    assert "notebook_output" not in output
    assert output["metadata"]["run_id"] == task["run_id"] and output["metadata"]["job_run_id"] == run_id
    ok = api.run_now("flaky-ingest", notebook_params={"fail": "false"})
    clock.advance(10)
    assert api.run(ok)["state"]["result_state"] == "SUCCESS"


def test_a_failed_task_fails_its_downstream_tasks(api: Api, sb: Sandbox, clock: FakeClock) -> None:
    def boom(params: dict[str, str]) -> str:
        raise RuntimeError("no data")

    job_id = sb.add_job(
        "two-steps",
        tasks=[
            Task("load", "/Shared/load", notebook=boom),
            Task("report", "/Shared/report", depends_on=["load"]),
        ],
    )
    run_id = api.run_now(job_id)
    clock.advance(30)
    run = api.run(run_id)
    assert run["state"]["result_state"] == "FAILED"
    assert [t["state"].get("result_state") for t in run["tasks"]] == ["FAILED", "UPSTREAM_FAILED"]
    assert api.output(run["tasks"][0]["run_id"])["error"] == "RuntimeError: no data"


# ---------------------------------------------------------------- queueing, skipping, cancel
def test_second_run_of_nightly_backfill_is_queued_then_runs(api: Api, clock: FakeClock) -> None:
    first = api.run_now("nightly-backfill")
    clock.advance(1)
    second = api.run_now("nightly-backfill")
    queued = api.run(second)
    assert queued["state"]["life_cycle_state"] == "QUEUED"
    assert queued["state"]["queue_reason"] == "Queued due to reaching maximum concurrent runs of 1."
    assert queued["status"]["state"] == "QUEUED"
    assert queued["status"]["queue_details"]["code"] == "MAX_CONCURRENT_RUNS_REACHED"
    assert queued["tasks"][0]["state"]["life_cycle_state"] == "QUEUED"
    clock.advance(3.0)  # the first run ends at 3.9 s
    assert api.state(first) == "TERMINATED" and api.state(second) == "PENDING"
    clock.advance(10)
    done = api.run(second)
    assert done["state"]["result_state"] == "SUCCESS"
    assert done["queue_duration"] == 2900
    assert done["run_duration"] == done["end_time"] - done["start_time"] - 2900


def test_run_over_the_limit_is_skipped_when_queueing_is_off(api: Api, sb: Sandbox) -> None:
    job_id = sb.add_job("no-queue", queue=False)
    api.run_now(job_id)
    skipped = api.run(api.run_now(job_id))
    assert skipped["state"]["life_cycle_state"] == "SKIPPED"
    assert skipped["state"]["state_message"] == (
        "Skipping this run because the limit of 1 maximum concurrent runs has been reached."
    )
    assert skipped["status"]["state"] == "TERMINATED"
    assert skipped["status"]["termination_details"]["code"] == "MAX_CONCURRENT_RUNS_EXCEEDED"
    # run-now's own queue setting wins over the job's
    api.run_now("nightly-backfill")
    override = api.run_now("nightly-backfill", queue={"enabled": False})
    assert api.state(override) == "SKIPPED"


def test_cancel_stops_a_run_and_lets_the_queued_one_in(api: Api, clock: FakeClock) -> None:
    first = api.run_now("nightly-backfill")
    second = api.run_now("nightly-backfill")
    clock.advance(1.5)
    assert api.ok("POST", "jobs/runs/cancel", {"run_id": first}) == {}
    assert api.state(first) == "TERMINATING"
    clock.advance(0.5)
    run = api.run(first)
    assert run["state"]["life_cycle_state"] == "TERMINATED"
    assert run["state"]["result_state"] == "CANCELED"
    assert run["state"]["user_cancelled_or_timedout"] is True
    assert run["status"]["termination_details"]["code"] == "USER_CANCELED"
    assert run["tasks"][0]["state"]["result_state"] == "CANCELED"
    assert api.state(second) == "PENDING"


def test_cancel_a_queued_run_and_a_finished_one(api: Api, clock: FakeClock) -> None:
    first = api.run_now("nightly-backfill")
    second = api.run_now("nightly-backfill")
    api.ok("POST", "jobs/runs/cancel", {"run_id": second})
    assert api.run(second)["state"]["result_state"] == "CANCELED"
    clock.advance(10)
    assert api.ok("POST", "jobs/runs/cancel", {"run_id": first}) == {}
    assert api.run(first)["state"]["result_state"] == "SUCCESS"


# ---------------------------------------------------------------- scripts
def test_scripted_states_are_served_verbatim(api: Api, sb: Sandbox, clock: FakeClock) -> None:
    script = [
        ("PENDING", 1.0),
        ("BLOCKED", 1.0),
        ("WAITING_FOR_RETRY", 0.5),
        ("SOME_NEW_STATE", 1.0, "something new"),
        ("RUNNING", 2.0),
        ("TERMINATED", "FAILED", "it broke"),
    ]
    run_id = api.run_now(sb.add_job("scripted", script=script))
    seen, start = [], clock.now
    for at in (0.5, 1.5, 2.2, 3.0, 4.0, 6.0):
        clock.now = start + at
        run = api.run(run_id)
        seen.append(
            (run["state"]["life_cycle_state"], run["status"]["state"], "result_state" in run["state"])
        )
    assert seen == [
        ("PENDING", "PENDING", False),
        ("BLOCKED", "BLOCKED", False),
        ("WAITING_FOR_RETRY", "WAITING", False),
        ("SOME_NEW_STATE", "SOME_NEW_STATE", False),
        ("RUNNING", "RUNNING", False),
        ("TERMINATED", "TERMINATED", True),
    ]
    run = api.run(run_id)
    assert run["state"]["result_state"] == "FAILED" and run["state"]["state_message"] == "it broke"
    assert run["tasks"][0]["state"]["life_cycle_state"] == "TERMINATED"


@pytest.mark.parametrize(
    ("last", "state", "code"),
    [
        (("SKIPPED", None), "SKIPPED", "SKIPPED"),
        (("INTERNAL_ERROR", None), "INTERNAL_ERROR", "INTERNAL_ERROR"),
    ],
)
def test_scripted_endings(
    api: Api, sb: Sandbox, clock: FakeClock, last: tuple, state: str, code: str
) -> None:
    run_id = api.run_now(sb.add_job("ends", script=[("PENDING", 1.0), last]))
    clock.advance(1)
    run = api.run(run_id)
    assert run["state"]["life_cycle_state"] == state and "result_state" not in run["state"]
    assert run["status"]["state"] == "TERMINATED" and run["end_time"] > 0
    assert run["status"]["termination_details"]["code"] == code


def test_a_script_can_run_for_ever_and_end_in_a_new_terminal_state(
    api: Api, sb: Sandbox, clock: FakeClock
) -> None:
    forever = api.run_now(sb.add_job("forever", script=[("RUNNING", None)]))
    clock.advance(10**6)
    assert api.state(forever) == "RUNNING"
    api.ok("POST", "jobs/runs/cancel", {"run_id": forever})
    clock.advance(1)
    assert api.run(forever)["state"]["result_state"] == "CANCELED"
    new = api.run_now(sb.add_job("new-end", script=[Phase("FINISHED_SOMEHOW", status_state="TERMINATED")]))
    run = api.run(new)
    assert run["state"]["life_cycle_state"] == "FINISHED_SOMEHOW" and run["end_time"] > 0


# ---------------------------------------------------------------- lists and history
def test_runs_list_filters_and_paging(api: Api, sb: Sandbox) -> None:
    job_id = sb.job_id("daily-sales-report")
    completed = api.ok("GET", "jobs/runs/list", job_id=job_id, completed_only="true")
    assert len(completed["runs"]) == 5 and completed["has_more"] is False
    assert "tasks" not in completed["runs"][0]
    new = api.run_now(job_id)
    active = api.ok("GET", "jobs/runs/list", job_id=job_id, active_only="true")
    assert [r["run_id"] for r in active["runs"]] == [new]
    assert error(api.get("jobs/runs/list", active_only="true", completed_only="true"))[:2] == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert error(api.get("jobs/runs/list", limit=26))[:2] == (400, "INVALID_PARAMETER_VALUE")
    assert len(api.ok("GET", "jobs/runs/list", limit=0)["runs"]) == 25
    assert len(api.ok("GET", "jobs/runs/list")["runs"]) == 20
    pages, token = [], None
    while True:
        page = api.ok("GET", "jobs/runs/list", job_id=job_id, limit=4, expand_tasks="true", page_token=token)
        pages.append(page["runs"])
        token = page.get("next_page_token")
        if not token:
            break
    runs = [r for page in pages for r in page]
    assert [len(p) for p in pages] == [4, 2] and runs[0]["run_id"] == new and "tasks" in runs[0]
    assert [r["start_time"] for r in runs] == sorted((r["start_time"] for r in runs), reverse=True)
    by_offset = api.ok("GET", "jobs/runs/list", job_id=job_id, offset=4, limit=4, expand_tasks="true")
    assert by_offset["runs"] == pages[1]
    recent = api.ok("GET", "jobs/runs/list", job_id=job_id, start_time_from=runs[1]["start_time"])
    assert [r["run_id"] for r in recent["runs"]] == [r["run_id"] for r in runs[:2]]


def test_history_has_realistic_durations(api: Api, sb: Sandbox) -> None:
    for name in SAMPLES:
        runs = api.ok("GET", "jobs/runs/list", job_id=sb.job_id(name), completed_only="true")["runs"]
        assert len(runs) == 5
        assert {r["state"]["result_state"] for r in runs} == {"SUCCESS"}
        durations = sorted(r["run_duration"] for r in runs)
        median = durations[2]
        assert 2000 <= median <= 6000, name
        assert len(set(durations)) == 5 and all(abs(d - median) <= 0.25 * median for d in durations)


def test_jobs_list(api: Api) -> None:
    everything = api.ok("GET", "jobs/list")
    assert {j["settings"]["name"] for j in everything["jobs"]} == SAMPLES
    assert "tasks" not in everything["jobs"][0]["settings"] and everything["has_more"] is False
    named = api.ok("GET", "jobs/list", name="Train-Model", expand_tasks="true")
    assert [j["settings"]["name"] for j in named["jobs"]] == ["train-model"]
    assert named["jobs"][0]["settings"]["tasks"][0]["task_key"] == "train"
    assert api.ok("GET", "jobs/list", name="no such job") == {"has_more": False}
    first = api.ok("GET", "jobs/list", limit=2)
    assert len(first["jobs"]) == 2 and first["has_more"] is True
    second = api.ok("GET", "jobs/list", limit=2, page_token=first["next_page_token"])
    assert not {j["job_id"] for j in first["jobs"]} & {j["job_id"] for j in second["jobs"]}
    assert error(api.get("jobs/list", limit=101))[:2] == (400, "INVALID_PARAMETER_VALUE")


# ---------------------------------------------------------------- faults
def test_status_fault_with_retry_after(api: Api, sb: Sandbox) -> None:
    sb.inject("jobs/get", "status", status=429, retry_after=3, count=2)
    for _ in range(2):
        response = api.get("jobs/get", job_id=1)
        assert response.status_code == 429 and response.headers["Retry-After"] == "3"
        assert response.json()["error_code"] == "TOO_MANY_REQUESTS"
    assert api.get("jobs/get", job_id=1).status_code == 200
    sb.inject("/api/2.1/jobs/get", "status")  # either prefix names the same endpoint
    response = api.get("jobs/get", job_id=1)
    assert response.status_code == 503 and "Retry-After" not in response.headers


def test_html_fault(api: Api, sb: Sandbox) -> None:
    sb.inject("jobs/runs/get", "html")
    response = api.get("jobs/runs/get", run_id=1000)
    assert response.status_code == 502 and response.headers["Content-Type"] == "text/html"
    assert "<html>" in response.text and "502 Bad Gateway" in response.text


def test_invalid_json_and_missing_fields_faults(api: Api, sb: Sandbox) -> None:
    sb.inject("jobs/runs/get", "invalid_json")
    response = api.get("jobs/runs/get", run_id=1000)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    sb.inject("jobs/runs/get", "missing_fields")
    run = api.ok("GET", "jobs/runs/get", run_id=1000)
    assert run["run_id"] == 1000 and "state" not in run and "status" not in run
    sb.inject("jobs/run-now", "missing_fields")
    before = len(sb.run_ids("train-model"))
    assert "run_id" not in api.ok("POST", "jobs/run-now", {"job_id": sb.job_id("train-model")})
    assert len(sb.run_ids("train-model")) == before + 1


def test_delay_fault_makes_a_read_timeout(api: Api, sb: Sandbox) -> None:
    sb.inject("jobs/runs/list", "delay", delay=0.6)
    with pytest.raises(requests.ReadTimeout):
        api.session.get(sb.url + "/api/2.2/jobs/runs/list", timeout=0.15)
    assert api.get("jobs/runs/list").status_code == 200
    sb.inject("jobs/runs/list", "delay", delay=0.1)
    assert api.get("jobs/runs/list").status_code == 200


def test_drop_fault_starts_nothing(api: Api, sb: Sandbox) -> None:
    sb.inject("jobs/run-now", "drop")
    before = sb.run_ids("daily-sales-report")
    with pytest.raises(requests.ConnectionError):
        api.post("jobs/run-now", {"job_id": sb.job_id("daily-sales-report")})
    assert sb.run_ids("daily-sales-report") == before


def test_drop_after_fault_starts_exactly_one_run(api: Api, sb: Sandbox) -> None:
    sb.inject("jobs/run-now", "drop_after")
    body = {"job_id": sb.job_id("daily-sales-report"), "idempotency_token": "retry-me"}
    before = sb.run_ids("daily-sales-report")
    with pytest.raises(requests.ConnectionError):
        api.post("jobs/run-now", body)
    after = sb.run_ids("daily-sales-report")
    assert len(after) == len(before) + 1
    assert api.ok("POST", "jobs/run-now", body)["run_id"] == after[-1]  # the retry finds it
    assert sb.run_ids("daily-sales-report") == after


def test_wildcard_fault_and_bad_arguments(api: Api, sb: Sandbox) -> None:
    sb.inject("*", "status", status=500)
    assert api.get("jobs/list").status_code == 500
    assert api.get("jobs/list").status_code == 200
    with pytest.raises(ValueError):
        sb.inject("jobs/get", "explode")
    with pytest.raises(ValueError):
        sb.inject("jobs/get", "delay")
    with pytest.raises(ValueError, match="unknown endpoint"):
        sb.inject("jobs/run_now", "drop")


def test_request_log(api: Api, sb: Sandbox, clock: FakeClock) -> None:
    sb.clear_requests()
    api.get("jobs/get", job_id=2)
    clock.advance(1)
    sb.inject("jobs/run-now", "drop")
    with pytest.raises(requests.ConnectionError):
        api.post("jobs/run-now", {"job_id": 2})
    first, second = sb.requests
    assert (first.method, first.path, first.query, first.body, first.status, first.fault) == (
        "GET",
        "/api/2.2/jobs/get",
        {"job_id": "2"},
        None,
        200,
        None,
    )
    assert (second.method, second.body, second.status, second.fault) == ("POST", {"job_id": 2}, None, "drop")
    assert second.timestamp - first.timestamp == 1
    sb.clear_requests()
    assert sb.requests == []


def test_concurrent_requests_are_all_logged(sb: Sandbox) -> None:
    sb.clear_requests()

    def poll() -> None:
        client = Api(sb)
        for _ in range(10):
            assert client.get("jobs/runs/list", limit=5).status_code == 200
        client.session.close()

    threads = [threading.Thread(target=poll) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sb.requests) == 40


# ---------------------------------------------------------------- lifecycle and CLI
def test_start_stop_and_quiet_server(capfd: pytest.CaptureFixture[str]) -> None:
    sandbox = Sandbox(samples=False)
    with pytest.raises(RuntimeError):
        _ = sandbox.url
    sandbox.start()
    url = sandbox.url
    assert sandbox.jobs == {}
    assert Api(sandbox).get("jobs/list").json() == {"has_more": False}
    sandbox.stop()
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/api/2.2/jobs/list", timeout=2)
    assert capfd.readouterr().err == ""
    with pytest.raises(KeyError, match="no job named"):
        sandbox.job_id("nope")


def test_serve_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert serve(["--port", str(busy.getsockname()[1])]) == 1
    assert "Cannot listen" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
@pytest.mark.parametrize("command", [["dbx_magic", "sandbox"], ["dbx_magic.sandbox"]])
def test_python_m_sandbox_serves_until_ctrl_c(command: list[str]) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", *command, "--speed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        printed: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [printed.put(x) for x in proc.stdout], daemon=True)
        reader.start()
        lines: dict[str, str] = {}
        while "DATABRICKS_TOKEN" not in lines or "ctrl" not in lines:
            line = printed.get(timeout=20)
            if line.startswith("export "):
                name, value = line[len("export ") :].strip().split("=", 1)
                lines[name] = value
            elif "Ctrl-C" in line:
                lines["ctrl"] = line
        host, token = lines["DATABRICKS_HOST"], lines["DATABRICKS_TOKEN"]
        assert host.startswith("http://127.0.0.1:")
        response = requests.get(
            host + "/api/2.1/jobs/list", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert {j["settings"]["name"] for j in response.json()["jobs"]} == SAMPLES
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0, proc.stderr.read()
        assert "Traceback" not in proc.stderr.read()
        reader.join(timeout=5)
        assert "stopped" in "".join(printed.queue)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_past_runs_with_the_same_parameters_run_the_notebook_once(api: Api, sb: Sandbox) -> None:
    # Every sandbox adds five past runs of each sample job (600 task runs for `wide-batch` alone): one
    # execution per set of parameters makes a sandbox a third cheaper to build, and each run still
    # shows the output, as its own task run.
    calls: list[dict[str, str]] = []

    def notebook(params: dict[str, str]) -> str:
        calls.append(params)
        return json.dumps({"n": len(calls)})

    job_id = sb.add_job(
        "counted", tasks=[Task("main", "/Shared/counted", {"day": "mon"}, notebook=notebook)], history=5
    )
    runs = api.ok("GET", "jobs/runs/list", job_id=job_id)["runs"]
    assert len(runs) == 5 and calls == [{"day": "mon"}]
    task_runs = {api.run(r["run_id"])["tasks"][0]["run_id"] for r in runs}
    assert len(task_runs) == 5
    assert {api.output(t)["notebook_output"]["result"] for t in task_runs} == {'{"n": 1}'}
    api.run_now(job_id)  # a new run runs the notebook again
    assert len(calls) == 2


def test_past_runs_whose_parameters_differ_each_run_the_notebook(api: Api, sb: Sandbox) -> None:
    # A parameter that refers to the run ({{job.run_id}}) resolves differently in each past run: none
    # may take another's output.
    seen: list[str] = []

    def notebook(params: dict[str, str]) -> str:
        seen.append(params["run"])
        return json.dumps({"run": params["run"]})

    task = Task("main", "/Shared/own-run", {"run": "{{job.run_id}}"}, notebook=notebook)
    job_id = sb.add_job("own-run", tasks=[task], history=5)
    runs = api.ok("GET", "jobs/runs/list", job_id=job_id)["runs"]
    assert sorted(seen) == sorted(str(r["run_id"]) for r in runs)
    for r in runs:
        output = api.output(api.run(r["run_id"])["tasks"][0]["run_id"])["notebook_output"]["result"]
        assert json.loads(output) == {"run": str(r["run_id"])}


def test_no_two_past_runs_of_a_job_last_the_same_to_the_millisecond() -> None:
    # Times are whole milliseconds: two past runs 0.2 ms apart in length read the same or not, as the
    # sandbox's epoch falls. At this epoch two of regional-scoring's did (test_history_has_realistic_durations
    # failed one run in twenty). Lengths at least 2 ms apart never read the same, whatever the epoch.
    with Sandbox(clock=FakeClock(), epoch=1_700_000_000.00079) as sandbox:
        api = Api(sandbox)
        for name in SAMPLES:
            runs = api.ok("GET", "jobs/runs/list", job_id=sandbox.job_id(name), completed_only="true")["runs"]
            assert len({r["run_duration"] for r in runs}) == 5, name
            ws = sandbox.workspace
            lengths = sorted(ws.end_time(ws.runs[r["run_id"]]) - ws.runs[r["run_id"]].created for r in runs)
            assert min(b - a for a, b in itertools.pairwise(lengths)) >= 0.002, name
        api.session.close()


def test_a_history_longer_than_the_spread_allows_is_still_added(sb: Sandbox, api: Api) -> None:
    # 0.1 % apart in a 20 % range leaves room for about 150 runs: the draw gives up, rather than hang.
    job_id = sb.add_job("long-history", history=400)
    assert len(sb.workspace.jobs[job_id].runs) == 400
    assert api.ok("GET", "jobs/runs/list", job_id=job_id)["has_more"] is True
