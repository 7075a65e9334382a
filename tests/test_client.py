"""The Jobs API client at the HTTP level: requests, error mapping, retries, token hygiene."""

from __future__ import annotations

import json
import logging

import pytest
import requests
import responses
from responses import matchers

from dbx_magic import DatabricksClient, start_run
from dbx_magic.api.client import RetryPolicy
from dbx_magic.errors import (
    ApiError,
    BadRequest,
    DatabricksError,
    InvalidInput,
    InvalidParameterValue,
    NotFound,
    PermissionDenied,
    ResourceConflict,
    ResourceDoesNotExist,
    ServerError,
    TooManyRequests,
    TransportError,
    Unauthenticated,
)

from .conftest import API, HOST, TOKEN, Sleeps

AUTH = matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})


# -- each endpoint's request ----------------------------------------------------------------------


def test_get_job_sends_query_and_bearer_token(client, rsps):
    rsps.get(
        f"{API}/get",
        match=[matchers.query_param_matcher({"job_id": "42"}), AUTH],
        json={"job_id": 42, "settings": {"name": "nightly"}},
    )
    assert client.get_job(42)["settings"]["name"] == "nightly"


def test_list_jobs_follows_pages_and_filters_by_name(client, rsps):
    rsps.get(
        f"{API}/list",
        match=[matchers.query_param_matcher({"limit": "100", "name": "etl"}), AUTH],
        json={"jobs": [{"job_id": 1}], "has_more": True, "next_page_token": "p2"},
    )
    rsps.get(
        f"{API}/list",
        match=[matchers.query_param_matcher({"limit": "100", "name": "etl", "page_token": "p2"})],
        json={"jobs": [{"job_id": 2}]},
    )
    assert [j["job_id"] for j in client.list_jobs(name="etl")] == [1, 2]


def test_run_now_sends_params_and_the_given_token(client, rsps):
    body = {
        "job_id": 7,
        "idempotency_token": "tok-1",
        "notebook_params": {"date": "2026-11-01"},
    }
    rsps.post(
        f"{API}/run-now",
        match=[matchers.json_params_matcher(body), AUTH],
        json={"run_id": 99, "number_in_job": 99},
    )
    assert (
        client.run_now(7, idempotency_token="tok-1", notebook_params={"date": "2026-11-01"})["run_id"] == 99
    )


def test_run_now_always_carries_an_idempotency_token_and_omits_absent_inputs(client, rsps):
    rsps.post(f"{API}/run-now", json={"run_id": 1})
    rsps.post(f"{API}/run-now", json={"run_id": 2})
    client.run_now(7)
    client.run_now(7, job_parameters={"a": "b"})
    first, second = (json.loads(c.request.body) for c in rsps.calls)
    assert set(first) == {"job_id", "idempotency_token"}  # no nulls for absent inputs
    assert 0 < len(first["idempotency_token"]) <= 64
    assert second["job_parameters"] == {"a": "b"} and "notebook_params" not in second
    assert first["idempotency_token"] != second["idempotency_token"]


def test_an_overlong_token_is_refused_before_sending(client, rsps):
    # Checked once, where the launch is made (the client sends what it is given).
    with pytest.raises(InvalidInput, match="1 to 64"):
        start_run(client, 7, idempotency_token="x" * 65)
    assert len(rsps.calls) == 0


def test_get_run_cancel_output_and_list_runs(client, rsps):
    rsps.get(
        f"{API}/runs/get", match=[matchers.query_param_matcher({"run_id": "5"}), AUTH], json={"run_id": 5}
    )
    rsps.post(f"{API}/runs/cancel", match=[matchers.json_params_matcher({"run_id": 5}), AUTH], json={})
    rsps.get(
        f"{API}/runs/get-output",
        match=[matchers.query_param_matcher({"run_id": "6"}), AUTH],
        json={"notebook_output": {"result": "done"}},
    )
    rsps.get(
        f"{API}/runs/list",
        match=[
            matchers.query_param_matcher({"job_id": "7", "completed_only": "true", "limit": "25"}),
            AUTH,
        ],
        json={"runs": [], "has_more": False},
    )
    assert client.get_run(5) == {"run_id": 5}
    assert client.cancel_run(5) is None
    assert client.get_run_output(6)["notebook_output"]["result"] == "done"
    assert client.list_runs(7, completed_only=True) == {"runs": [], "has_more": False}


def test_repair_run_sends_what_is_given_and_always_a_token(client, rsps):
    full = {
        "run_id": 5,
        "idempotency_token": "fix-1",
        "rerun_tasks": ["validate"],
        "rerun_dependent_tasks": True,
        "latest_repair_id": 77,
        "job_parameters": {"strict": "false"},
    }
    rsps.post(f"{API}/runs/repair", match=[matchers.json_params_matcher(full), AUTH], json={"repair_id": 78})
    rsps.post(f"{API}/runs/repair", json={"repair_id": 79})
    answer = client.repair_run(
        5,
        rerun_tasks=["validate"],
        rerun_dependent_tasks=True,
        latest_repair_id=77,
        job_parameters={"strict": "false"},
        idempotency_token="fix-1",
    )
    assert answer == {"repair_id": 78}
    client.repair_run(5, rerun_all_failed_tasks=True)
    second = json.loads(rsps.calls[1].request.body)
    assert set(second) == {"run_id", "idempotency_token", "rerun_all_failed_tasks"}  # no nulls, no falses
    assert second["rerun_all_failed_tasks"] is True and 0 < len(second["idempotency_token"]) <= 64


def test_a_repair_whose_answer_is_lost_is_sent_again_with_the_same_token(client, rsps, sleeps):
    rsps.post(f"{API}/runs/repair", body=requests.ConnectionError("reset by peer"))
    rsps.post(f"{API}/runs/repair", json={"repair_id": 78})
    assert client.repair_run(5, rerun_all_failed_tasks=True)["repair_id"] == 78
    first, second = (json.loads(c.request.body)["idempotency_token"] for c in rsps.calls)
    assert first == second and len(sleeps) == 1


def test_cancel_all_runs_and_run_now_only(client, rsps):
    rsps.post(f"{API}/runs/cancel-all", match=[matchers.json_params_matcher({"job_id": 7}), AUTH], json={})
    rsps.post(
        f"{API}/runs/cancel-all",
        match=[matchers.json_params_matcher({"job_id": 7, "all_queued_runs": True})],
        json={},
    )
    rsps.post(f"{API}/run-now", json={"run_id": 9})
    assert client.cancel_all_runs(7) is None
    client.cancel_all_runs(7, all_queued_runs=True)
    client.run_now(7, only=["ingest", "validate+"])
    assert json.loads(rsps.calls[2].request.body)["only"] == ["ingest", "validate+"]


def test_get_run_with_history_follows_every_page_into_one_answer(client, rsps):
    tasks = [{"task_key": f"t{i}", "run_id": 100 + i} for i in range(150)]
    first = {
        "run_id": 5,
        "state": {"life_cycle_state": "TERMINATED"},
        "tasks": tasks[:100],
        "repair_history": [{"type": "ORIGINAL"}],
        "job_parameters": [{"name": "a", "value": "1"}],
        "next_page_token": "p2",
    }
    second = {
        "run_id": 5,
        "tasks": tasks[100:],
        "repair_history": [],
        "job_parameters": [],
        "next_page_token": "p3",
    }
    third = {"run_id": 5, "tasks": [], "repair_history": [{"type": "REPAIR", "id": 9}]}
    base = {"run_id": "5", "include_history": "true"}
    rsps.get(f"{API}/runs/get", match=[matchers.query_param_matcher(base), AUTH], json=first)
    rsps.get(
        f"{API}/runs/get", match=[matchers.query_param_matcher({**base, "page_token": "p2"})], json=second
    )
    rsps.get(
        f"{API}/runs/get", match=[matchers.query_param_matcher({**base, "page_token": "p3"})], json=third
    )
    run = client.get_run(5, include_history=True)
    assert [t["task_key"] for t in run["tasks"]] == [f"t{i}" for i in range(150)]
    assert [h["type"] for h in run["repair_history"]] == ["ORIGINAL", "REPAIR"]
    assert run["job_parameters"] == [{"name": "a", "value": "1"}]
    assert "next_page_token" not in run and run["state"] == {"life_cycle_state": "TERMINATED"}


def test_get_job_merges_paged_settings(client, rsps):
    first = {
        "job_id": 7,
        "settings": {"name": "wide", "tasks": [{"task_key": "a"}], "parameters": [{"name": "p"}]},
        "has_more": True,
        "next_page_token": "p2",
    }
    second = {"job_id": 7, "settings": {"tasks": [{"task_key": "b"}], "parameters": []}}
    rsps.get(f"{API}/get", match=[matchers.query_param_matcher({"job_id": "7"})], json=first)
    rsps.get(
        f"{API}/get", match=[matchers.query_param_matcher({"job_id": "7", "page_token": "p2"})], json=second
    )
    job = client.get_job(7)
    assert [t["task_key"] for t in job["settings"]["tasks"]] == ["a", "b"]
    assert job["settings"]["name"] == "wide" and job["settings"]["parameters"] == [{"name": "p"}]
    assert "next_page_token" not in job and "has_more" not in job


def test_api_2_1_stays_selectable(rsps, sleeps):
    old = DatabricksClient(HOST, TOKEN, api_version="2.1", sleep=sleeps)
    rsps.get(f"{HOST}/api/2.1/jobs/runs/get", json={"run_id": 5})
    assert old.get_run(5) == {"run_id": 5} and DatabricksClient(HOST, TOKEN).api_version == "2.2"


def test_list_runs_refuses_active_and_completed_together(client, rsps):
    with pytest.raises(InvalidInput):
        client.list_runs(7, active_only=True, completed_only=True)


def test_api_version_22_paths(sleeps):
    c = DatabricksClient(HOST, TOKEN, api_version="2.2", sleep=sleeps)
    with responses.RequestsMock() as rsps:
        rsps.get(f"{HOST}/api/2.2/jobs/get", json={"job_id": 1})
        assert c.get_job(1) == {"job_id": 1}


def test_host_without_scheme_gets_https():
    assert (
        DatabricksClient("adb-1.2.azuredatabricks.net/", TOKEN).host == "https://adb-1.2.azuredatabricks.net"
    )


# -- error mapping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": "Job 42 does not exist."},
            ResourceDoesNotExist,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            400,
            {"error_code": "INVALID_PARAMETER_VALUE", "message": "Bad value"},
            InvalidParameterValue,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            400,
            {"error_code": "MALFORMED_REQUEST", "message": "Could not parse request object"},
            BadRequest,
            "MALFORMED_REQUEST",
        ),
        (
            400,
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "gone"},
            ResourceDoesNotExist,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (401, {"error_code": "UNAUTHENTICATED", "message": "no"}, Unauthenticated, "UNAUTHENTICATED"),
        (403, {"error_code": 403, "message": "Invalid access token."}, PermissionDenied, "403"),
        (
            403,
            {"error_code": "PERMISSION_DENIED", "message": "not allowed"},
            PermissionDenied,
            "PERMISSION_DENIED",
        ),
        (
            404,
            {"error_code": "ENDPOINT_NOT_FOUND", "message": "No API found"},
            NotFound,
            "ENDPOINT_NOT_FOUND",
        ),
        (
            409,
            {"error_code": "RESOURCE_CONFLICT", "message": "conflict"},
            ResourceConflict,
            "RESOURCE_CONFLICT",
        ),
        (400, {"error": "legacy message"}, BadRequest, None),
        (418, {"message": "teapot"}, ApiError, None),
    ],
)
def test_error_bodies_map_by_code_then_status(client, rsps, status, body, cls, code):
    rsps.get(f"{API}/get", status=status, json=body)
    with pytest.raises(cls) as info:
        client.get_job(42)
    err = info.value
    assert type(err) is cls
    assert err.status_code == status and err.error_code == code
    assert str(err).startswith("Getting job 42 failed:")
    assert len(rsps.calls) == 1  # 4xx other than 429 is never retried


def test_invalid_token_message_says_what_to_do(client, rsps):
    rsps.get(f"{API}/get", status=403, json={"error_code": 403, "message": "Invalid access token."})
    with pytest.raises(PermissionDenied) as info:
        client.get_job(1)
    assert "DATABRICKS_TOKEN" in str(info.value) and TOKEN not in str(info.value)


def test_html_error_page_becomes_one_line(client, rsps):
    page = "<html><head><title>403 Forbidden</title></head><body><h1>Forbidden</h1></body></html>"
    rsps.get(f"{API}/get", status=403, body=page, content_type="text/html")
    with pytest.raises(PermissionDenied, match="403 Forbidden") as info:
        client.get_job(1)
    assert "<" not in str(info.value)


def test_empty_error_body(client, rsps):
    rsps.get(f"{API}/get", status=404, body="")
    with pytest.raises(NotFound, match="HTTP 404"):
        client.get_job(1)


def test_errors_render_without_traceback_in_ipython(client, rsps):
    rsps.get(
        f"{API}/get",
        status=400,
        json={"error_code": "INVALID_PARAMETER_VALUE", "message": "Job 1 does not exist."},
    )
    with pytest.raises(DatabricksError) as info:
        client.get_job(1)
    rendered = info.value._render_traceback_()
    assert len(rendered) == 1 and "Job 1 does not exist" in rendered[0]


# -- retries -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_with_backoff(client, ordered, sleeps: Sleeps, status):
    for _ in range(2):
        ordered.get(f"{API}/runs/get", status=status, body="<html><title>busy</title></html>")
    ordered.get(f"{API}/runs/get", json={"run_id": 5})
    assert client.get_run(5) == {"run_id": 5}
    assert len(ordered.calls) == 3
    assert sleeps == [0.5, 1.0]  # exponential backoff, jitter off in this client


def test_retry_after_is_honoured(client, ordered, sleeps: Sleeps):
    ordered.get(
        f"{API}/runs/get",
        status=429,
        headers={"Retry-After": "7"},
        json={"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"},
    )
    ordered.get(f"{API}/runs/get", status=503, headers={"Retry-After": "2"}, json={"message": "busy"})
    ordered.get(f"{API}/runs/get", json={"run_id": 5})
    client.get_run(5)
    assert sleeps == [7.0, 2.0]


def test_retry_after_as_http_date(client, rsps, sleeps: Sleeps):
    rsps.get(f"{API}/runs/get", status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    rsps.get(f"{API}/runs/get", json={"run_id": 5})
    client.get_run(5)
    assert sleeps == [0.0]  # a date in the past: go now


def test_retries_stop_at_the_attempt_budget_with_a_clear_error(client, rsps, sleeps: Sleeps):
    for _ in range(6):
        rsps.get(
            f"{API}/runs/get", status=503, json={"error_code": "TEMPORARILY_UNAVAILABLE", "message": "down"}
        )
    with pytest.raises(ServerError, match=r"gave up after 6 attempts") as info:
        client.get_run(5)
    assert info.value.status_code == 503
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_retries_stop_at_the_time_budget(sleeps: Sleeps):
    now = [0.0]

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    c = DatabricksClient(
        HOST, TOKEN, sleep=sleep, clock=lambda: now[0], retry=RetryPolicy(attempts=50, budget=10.0, jitter=0)
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(f"{API}/runs/get", status=502, body="bad gateway")
        with pytest.raises(ServerError, match="gave up after 5 attempts"):
            c.get_run(5)
    assert sum(sleeps) <= 10.0 and sleeps == [0.5, 1.0, 2.0, 4.0]


def test_too_long_retry_after_gives_up_at_once_and_says_why(client, rsps, sleeps: Sleeps):
    rsps.get(f"{API}/runs/get", status=429, headers={"Retry-After": "3600"}, json={"message": "rate limited"})
    with pytest.raises(TooManyRequests, match="asked to wait 3600 s"):
        client.get_run(5)
    assert sleeps == []


def test_no_retry_on_4xx_other_than_429(client, rsps, sleeps: Sleeps):
    rsps.get(
        f"{API}/runs/get",
        status=400,
        json={"error_code": "INVALID_PARAMETER_VALUE", "message": "Run 5 does not exist"},
    )
    with pytest.raises(ResourceDoesNotExist):
        client.get_run(5)
    assert len(rsps.calls) == 1 and sleeps == []


def test_connection_errors_and_timeouts_are_retried(client, rsps, sleeps: Sleeps):
    rsps.get(f"{API}/runs/get", body=requests.ConnectionError("reset by peer"))
    rsps.get(f"{API}/runs/get", body=requests.ReadTimeout("read timed out"))
    rsps.get(f"{API}/runs/get", json={"run_id": 5})
    assert client.get_run(5) == {"run_id": 5}
    assert len(sleeps) == 2


def test_run_now_is_retried_with_the_same_idempotency_token(client, rsps):
    rsps.post(f"{API}/run-now", body=requests.ConnectionError("connection dropped"))
    rsps.post(f"{API}/run-now", status=503, json={"message": "busy"})
    rsps.post(f"{API}/run-now", json={"run_id": 11, "number_in_job": 11})
    assert client.run_now(3)["run_id"] == 11
    tokens = {json.loads(c.request.body)["idempotency_token"] for c in rsps.calls}
    assert len(tokens) == 1  # one token across the retries: the service starts one run


def test_invalid_json_on_success_is_retried_then_reported(client, rsps, sleeps: Sleeps):
    for _ in range(6):
        rsps.get(f"{API}/runs/get", body='{"run_id": 5, "sta', content_type="application/json")
    with pytest.raises(TransportError, match="not a JSON object"):
        client.get_run(5)
    assert len(sleeps) == 5


def test_persistent_connection_failure_is_a_transport_error(client, rsps):
    for _ in range(6):
        rsps.get(f"{API}/get", body=requests.ConnectionError("refused"))
    with pytest.raises(TransportError, match="check the host and your network") as info:
        client.get_job(1)
    assert isinstance(info.value, ConnectionError)


# -- the token stays secret ----------------------------------------------------------------------


def test_token_never_in_repr_messages_or_debug_logs(client, rsps, debug_logs):
    rsps.get(f"{API}/get", status=503, json={"message": "busy"})
    rsps.get(f"{API}/get", status=403, json={"error_code": 403, "message": "Invalid access token."})
    with pytest.raises(PermissionDenied) as info:
        client.get_job(1)
    assert TOKEN not in repr(client)
    assert TOKEN not in repr(client._session.auth)
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert debug_logs.records, "the client logs its requests at DEBUG"
    for record in debug_logs.records:
        assert TOKEN not in record.getMessage()
    # urllib3 logs at DEBUG too; nothing it logs carries the header
    assert TOKEN not in debug_logs.text


def test_empty_token_is_refused():
    with pytest.raises(InvalidInput, match="token is empty"):
        DatabricksClient(HOST, "  ")


def test_logger_names(client, rsps, debug_logs):
    rsps.get(f"{API}/get", json={"job_id": 1})
    client.get_job(1)
    assert any(r.name == "dbx_magic.api.client" and r.levelno == logging.DEBUG for r in debug_logs.records)
