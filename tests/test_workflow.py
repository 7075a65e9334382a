"""The run-and-wait workflow at the HTTP level: every state sequence, every result state."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from responses import matchers

from dbx_magic import RunFailed, RunInterrupted, RunResult, WaitTimeout, run_job_and_wait, wait_for_run
from dbx_magic.errors import CLI, NOTEBOOK, InvalidInput, ResourceDoesNotExist, RunNotFinished, TransportError

from .conftest import API, HOST

JOB_ID, RUN_ID, TASK_RUN = 7, 1001, 2001
PAGE = f"{HOST}/?o=1234567890123456#job/{JOB_ID}/run/{RUN_ID}"


def run_json(
    life_cycle: str | None, result: str | None = None, *, message: str = "", status: dict | None = None
) -> dict[str, Any]:
    state: dict[str, Any] = {"state_message": message}
    if life_cycle:
        state["life_cycle_state"] = life_cycle
    if result:
        state["result_state"] = result
    body: dict[str, Any] = {
        "job_id": JOB_ID,
        "run_id": RUN_ID,
        "number_in_job": RUN_ID,
        "run_page_url": PAGE,
        "state": state,
        "tasks": [{"task_key": "main", "run_id": TASK_RUN, "state": dict(state)}],
    }
    if status is not None:
        body["status"] = status
    return body


def script(
    rsps: responses.RequestsMock,
    runs: list[dict[str, Any]],
    *,
    settings: dict[str, Any] | None = None,
    output: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> None:
    """Register one job, its launch, the given runs/get answers in order, history and output."""
    rsps.get(
        f"{API}/get",
        json={"job_id": JOB_ID, "settings": settings or {"name": "nightly", "tasks": [{"task_key": "main"}]}},
    )
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID, "number_in_job": RUN_ID})
    for run in runs:
        rsps.get(f"{API}/runs/get", json=run)
    rsps.get(f"{API}/runs/list", json={"runs": history or [], "has_more": False})
    if runs and (
        runs[-1].get("state", {}).get("life_cycle_state") in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR")
        or (runs[-1].get("status") or {}).get("state") == "TERMINATED"
    ):
        rsps.get(
            f"{API}/runs/get-output",
            match=[matchers.query_param_matcher({"run_id": str(TASK_RUN)})],
            json=output or {},
        )


def go(client, **kwargs) -> tuple[RunResult, list[RunResult]]:
    updates: list[RunResult] = []
    kwargs.setdefault("sleep", lambda seconds: None)
    result = run_job_and_wait(client, JOB_ID, on_update=updates.append, **kwargs)
    return result, updates


def test_happy_path_outputs_and_every_poll_reported(client, rsps):
    script(
        rsps,
        [
            run_json("PENDING"),
            run_json("RUNNING"),
            run_json("TERMINATING"),
            run_json("TERMINATED", "SUCCESS"),
        ],
        output={"notebook_output": {"result": '{"rows": 3}', "truncated": False}},
    )
    result, updates = go(client, notebook_params={"date": "2026-11-01"})
    assert result.outputs == {"jobId": JOB_ID, "runId": RUN_ID, "resultState": "SUCCESS", "runPageUrl": PAGE}
    assert (result.job_id, result.run_id, result.result_state, result.run_page_url) == (
        JOB_ID,
        RUN_ID,
        "SUCCESS",
        PAGE,
    )
    assert result.ok and result.finished and result.job_name == "nightly" and result.number_in_job == RUN_ID
    assert result.output == '{"rows": 3}' and result.output_json() == {"rows": 3}
    assert result.tasks[0].key == "main" and result.tasks[0].run_id == TASK_RUN
    assert result.run["state"]["result_state"] == "SUCCESS"
    assert [u.life_cycle_state for u in updates] == ["PENDING", "RUNNING", "TERMINATING", "TERMINATED"]
    assert updates[-1] is result  # the last call carries the final result, outputs included
    assert result.raise_for_state() is result
    launch = json.loads(rsps.calls[1].request.body)
    assert launch["notebook_params"] == {"date": "2026-11-01"} and "job_parameters" not in launch
    assert 0 < len(launch["idempotency_token"]) <= 64


@pytest.mark.parametrize(
    "waiting",
    [
        ["QUEUED"],
        ["BLOCKED"],
        ["WAITING_FOR_RETRY"],
        ["A_STATE_ADDED_LATER"],
        ["QUEUED", "PENDING", "BLOCKED", "WAITING_FOR_RETRY", "RUNNING"],
    ],
)
def test_non_final_states_keep_polling(client, rsps, waiting):
    script(rsps, [run_json(s) for s in waiting] + [run_json("TERMINATED", "SUCCESS")])
    result, updates = go(client)
    assert result.ok
    assert [u.life_cycle_state for u in updates] == [*waiting, "TERMINATED"]  # unknown states shown verbatim


def test_skipped_ends_the_wait_as_a_failure(client, rsps):
    msg = "Skipping this run because the limit of 1 maximum concurrent runs has been reached."
    script(rsps, [run_json("PENDING"), run_json("SKIPPED", message=msg)])
    result, _ = go(client)
    assert result.finished and not result.ok and result.life_cycle_state == "SKIPPED"
    with pytest.raises(
        RunFailed, match=r"Run 1001 of job 'nightly' ended SKIPPED: Skipping this run"
    ) as info:
        result.raise_for_state()
    assert info.value.run_id == RUN_ID and PAGE in str(info.value)


def test_internal_error_ends_the_wait_as_a_failure(client, rsps):
    script(rsps, [run_json("RUNNING"), run_json("INTERNAL_ERROR", message="Cluster lost")])
    result, _ = go(client)
    assert result.finished and not result.ok
    with pytest.raises(RunFailed, match="INTERNAL_ERROR: Cluster lost"):
        result.raise_for_state()


def test_status_terminated_ends_an_unknown_life_cycle_state(client, rsps):
    final = run_json(
        "SOMETHING_NEW",
        status={"state": "TERMINATED", "termination_details": {"code": "SUCCESS", "type": "SUCCESS"}},
    )
    script(rsps, [run_json("SOMETHING_NEW"), final])
    result, _ = go(client)
    assert result.finished and result.ok and result.result_state == "SUCCESS"


def test_status_only_answer_is_understood(client, rsps):
    only_status = {"job_id": JOB_ID, "run_id": RUN_ID, "status": {"state": "RUNNING"}}
    final = {
        "job_id": JOB_ID,
        "run_id": RUN_ID,
        "status": {
            "state": "TERMINATED",
            "termination_details": {"code": "USER_CANCELED", "type": "SUCCESS"},
        },
    }
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "nightly"}})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    rsps.get(f"{API}/runs/get", json=only_status)
    rsps.get(f"{API}/runs/get", json=final)
    rsps.get(f"{API}/runs/list", json={"runs": []})
    result, updates = go(client)
    assert updates[0].life_cycle_state == "RUNNING"
    assert result.finished and not result.ok and result.result_state == "USER_CANCELED"


@pytest.mark.parametrize(
    ("result_state", "ok"),
    [
        ("SUCCESS", True),
        ("SUCCESS_WITH_FAILURES", True),
        ("FAILED", False),
        ("TIMEDOUT", False),
        ("CANCELED", False),
        ("MAXIMUM_CONCURRENT_RUNS_REACHED", False),
        ("EXCLUDED", False),
        ("UPSTREAM_FAILED", False),
        ("UPSTREAM_CANCELED", False),
        ("DISABLED", False),
        ("A_RESULT_ADDED_LATER", False),
    ],
)
def test_each_result_state(client, rsps, result_state, ok):
    script(rsps, [run_json("RUNNING"), run_json("TERMINATED", result_state, message="the message")])
    result, _ = go(client)
    assert result.ok is ok
    assert result.outputs["resultState"] == result_state
    if ok:
        assert result.raise_for_state() is result
        assert bool(result.warnings) is (result_state == "SUCCESS_WITH_FAILURES")
    else:
        with pytest.raises(RunFailed, match=f"ended {result_state}: the message") as info:
            result.raise_for_state()
        assert info.value.result is result


def test_failed_task_error_and_trace_reach_the_result(client, rsps):
    failed = run_json("TERMINATED", "FAILED", message="Task main failed")
    script(
        rsps,
        [failed],
        output={
            "error": "ValueError: asked to fail",
            "error_trace": "Traceback...\nValueError: asked to fail",
        },
    )
    result, _ = go(client)
    task = result.tasks[0]
    assert task.error == "ValueError: asked to fail" and task.error_trace.startswith("Traceback")
    # the cause first, with its task; the API's boilerplate state message left out
    with pytest.raises(
        RunFailed, match=r"ended FAILED: ValueError: asked to fail \(task 'main'\)\. See "
    ) as info:
        result.raise_for_state()
    assert "Task main failed" not in str(info.value)


def test_cancelled_run(client, rsps):
    script(
        rsps,
        [
            run_json("RUNNING"),
            run_json("TERMINATING"),
            run_json("TERMINATED", "CANCELED", message="Run cancelled by user"),
        ],
    )
    result, _ = go(client)
    assert result.result_state == "CANCELED" and not result.ok


def test_timeout_stops_waiting_names_the_run_and_keeps_the_result(client, rsps):
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "nightly"}})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    rsps.get(f"{API}/runs/get", json=run_json("RUNNING"))
    rsps.get(f"{API}/runs/list", json={"runs": []})
    with pytest.raises(WaitTimeout) as info:
        run_job_and_wait(client, JOB_ID, timeout=5, clock=lambda: now[0], sleep=sleep)
    err = info.value
    assert isinstance(err, TimeoutError)
    assert err.run_id == RUN_ID and "wait_for_run(client, 1001)" in str(err) and "still RUNNING" in str(err)
    assert "`%dbx_wait 1001`" in err.render(NOTEBOOK) and "python -m dbx_magic wait 1001" in err.render(CLI)
    assert err.result.run_id == RUN_ID and err.result.life_cycle_state == "RUNNING"
    assert sum(sleeps) == pytest.approx(5.0)  # it waited exactly up to the deadline, then looked once more
    assert not any(
        c.request.url.startswith(f"{API}/runs/cancel") for c in rsps.calls
    )  # the run is not touched
    with pytest.raises(RunNotFinished, match="still RUNNING"):
        err.result.raise_for_state()


def test_polls_are_paced_not_a_tight_loop(client, rsps):
    script(rsps, [run_json("RUNNING")] * 5 + [run_json("TERMINATED", "SUCCESS")])
    waits: list[float] = []
    run_job_and_wait(client, JOB_ID, sleep=waits.append)
    assert len(waits) == 5 and all(w >= 1.0 for w in waits) and max(waits) <= 10.0


def test_job_by_name(client, rsps):
    rsps.get(
        f"{API}/list",
        match=[matchers.query_param_matcher({"limit": "100", "name": "Nightly"})],
        json={"jobs": [{"job_id": JOB_ID, "settings": {"name": "nightly"}}]},
    )
    script(rsps, [run_json("TERMINATED", "SUCCESS")])
    result = run_job_and_wait(client, "Nightly", sleep=lambda s: None)
    assert result.job_id == JOB_ID


def test_unknown_job_name_lists_close_names_and_sends_no_launch(client, rsps):
    rsps.get(
        f"{API}/list",
        match=[matchers.query_param_matcher({"limit": "100", "name": "nightly-reprot"})],
        json={"jobs": []},
    )
    rsps.get(
        f"{API}/list",
        match=[matchers.query_param_matcher({"limit": "100"})],
        json={
            "jobs": [
                {"job_id": 1, "settings": {"name": "nightly-report"}},
                {"job_id": 2, "settings": {"name": "train"}},
            ]
        },
    )
    with pytest.raises(InvalidInput, match="No job is named 'nightly-reprot': did you mean 'nightly-report'"):
        run_job_and_wait(client, "nightly-reprot")
    assert not any("run-now" in c.request.url for c in rsps.calls)


def test_ambiguous_job_name_lists_the_ids(client, rsps):
    jobs = [{"job_id": 1, "settings": {"name": "dup"}}, {"job_id": 2, "settings": {"name": "DUP"}}]
    rsps.get(f"{API}/list", json={"jobs": jobs})
    with pytest.raises(InvalidInput, match=r"matches 2 jobs \(ids 1, 2\): pass the id"):
        run_job_and_wait(client, "dup")


def test_missing_job(client, rsps):
    rsps.get(
        f"{API}/get",
        status=400,
        json={"error_code": "INVALID_PARAMETER_VALUE", "message": "Job 7 does not exist."},
    )
    with pytest.raises(ResourceDoesNotExist, match="Job 7 does not exist"):
        run_job_and_wait(client, JOB_ID)


@pytest.mark.parametrize("job", [0, -3, True, 1.5, None, "", "  ", [7]])
def test_bad_job_ids_are_refused_before_sending(client, rsps, job):
    with pytest.raises(InvalidInput):
        run_job_and_wait(client, job)
    assert len(rsps.calls) == 0


def test_job_level_parameters_are_sent_as_job_parameters(client, rsps):
    settings = {
        "name": "train",
        "parameters": [{"name": "epochs", "default": "3"}, {"name": "fast", "default": "false"}],
    }
    script(rsps, [run_json("TERMINATED", "SUCCESS")], settings=settings)
    run_job_and_wait(client, JOB_ID, notebook_params={"epochs": 5, "fast": True}, sleep=lambda s: None)
    launch = json.loads(rsps.calls[1].request.body)
    assert launch["job_parameters"] == {"epochs": "5", "fast": "true"} and "notebook_params" not in launch


def test_both_kinds_of_parameters_are_refused(client, rsps):
    with pytest.raises(InvalidInput, match="a run takes one kind"):
        run_job_and_wait(client, JOB_ID, notebook_params={"a": "1"}, job_parameters={"b": "2"})
    assert not rsps.calls  # judged locally: nothing is sent


def test_given_idempotency_token_is_sent(client, rsps):
    script(rsps, [run_json("TERMINATED", "SUCCESS")])
    result = run_job_and_wait(client, JOB_ID, idempotency_token="my-token", sleep=lambda s: None)
    assert json.loads(rsps.calls[1].request.body)["idempotency_token"] == "my-token"
    assert result.idempotency_token == "my-token"


def test_runs_get_without_state_is_polled_again(client, rsps):
    script(rsps, [{"run_id": RUN_ID}, run_json("RUNNING"), run_json("TERMINATED", "SUCCESS")])
    result, updates = go(client, sleep=lambda s: None)
    assert result.ok and len(updates) == 3


def test_run_now_without_run_id_is_asked_again_with_the_same_token(client, rsps):
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "n"}})
    rsps.post(f"{API}/run-now", json={})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    rsps.get(f"{API}/runs/get", json=run_json("TERMINATED", "SUCCESS"))
    rsps.get(f"{API}/runs/list", json={"runs": []})
    rsps.get(f"{API}/runs/get-output", json={})
    assert run_job_and_wait(client, JOB_ID, sleep=lambda s: None).run_id == RUN_ID
    tokens = [
        json.loads(c.request.body)["idempotency_token"] for c in rsps.calls if "run-now" in c.request.url
    ]
    assert len(tokens) == 2 and tokens[0] == tokens[1]


def test_error_while_polling_names_the_run(client, rsps):
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "n"}})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    for _ in range(6):
        rsps.get(f"{API}/runs/get", body="not json")
    with pytest.raises(TransportError) as info:
        run_job_and_wait(client, JOB_ID)
    assert info.value.run_id == RUN_ID and "1001" in str(info.value)
    assert "wait_for_run(client, 1001)" in str(info.value) and "%dbx_wait 1001" in info.value.render(NOTEBOOK)


def test_output_fetch_failure_becomes_a_warning_not_a_lost_run(client, rsps):
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "n"}})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    rsps.get(f"{API}/runs/get", json=run_json("TERMINATED", "SUCCESS"))
    rsps.get(f"{API}/runs/list", json={"runs": []})
    rsps.get(
        f"{API}/runs/get-output",
        status=400,
        json={"error_code": "INVALID_PARAMETER_VALUE", "message": "Run 2001 does not exist"},
    )
    result = run_job_and_wait(client, JOB_ID, sleep=lambda s: None)
    assert result.ok and "could not be fetched" in result.warnings[0]


def test_history_gives_the_expected_duration(client, rsps):
    history = [
        {"state": {"result_state": "SUCCESS"}, "start_time": 0, "end_time": 60_000},
        {"state": {"result_state": "SUCCESS"}, "run_duration": 62_000},
        {"state": {"result_state": "FAILED"}, "run_duration": 5_000},
    ]
    script(rsps, [run_json("RUNNING"), run_json("TERMINATED", "SUCCESS")], history=history)
    result, updates = go(client, sleep=lambda s: None)
    assert result.expected_duration == pytest.approx(61.0)
    assert updates[0].expected_duration == pytest.approx(61.0)


def test_interrupt_while_polling_keeps_the_run(client, rsps):
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "n"}})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    rsps.get(f"{API}/runs/get", json=run_json("RUNNING"))
    rsps.get(f"{API}/runs/list", json={"runs": []})

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, JOB_ID, sleep=interrupt)
    err = info.value
    assert isinstance(err, KeyboardInterrupt)
    assert err.run_id == RUN_ID and err.result.life_cycle_state == "RUNNING" and not err.cancelled
    assert "wait_for_run(client, 1001)" in str(err) and "client.cancel_run(1001)" in str(err)
    assert "%dbx_wait 1001" in err.render(NOTEBOOK) and "%dbx_cancel 1001" in err.render(NOTEBOOK)


def test_interrupt_with_cancel_cancels_and_shows_it(client, rsps):
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "n"}})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    rsps.get(f"{API}/runs/get", json=run_json("RUNNING"))
    rsps.get(f"{API}/runs/list", json={"runs": []})
    rsps.post(f"{API}/runs/cancel", match=[matchers.json_params_matcher({"run_id": RUN_ID})], json={})
    rsps.get(f"{API}/runs/get", json=run_json("TERMINATED", "CANCELED"))
    calls = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 1:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, JOB_ID, sleep=sleep, cancel_on_interrupt=True)
    err = info.value
    assert err.cancelled and err.result.result_state == "CANCELED"
    assert "Cancelled run 1001" in str(err)


def test_interrupt_during_launch_reports_the_idempotency_token(client, rsps):
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "n"}})

    def interrupt(request):
        raise KeyboardInterrupt

    rsps.add_callback(responses.POST, f"{API}/run-now", callback=interrupt)
    with pytest.raises(RunInterrupted) as info:
        run_job_and_wait(client, JOB_ID, idempotency_token="tok-123")
    assert info.value.idempotency_token == "tok-123" and "idempotency token 'tok-123'" in str(info.value)
    assert "--idempotency-token tok-123" in info.value.render(NOTEBOOK)


def test_wait_for_run_reattaches(client, rsps):
    rsps.get(f"{API}/runs/get", json=run_json("RUNNING"))
    rsps.get(f"{API}/runs/list", json={"runs": []})
    rsps.get(f"{API}/runs/get", json=run_json("TERMINATED", "SUCCESS"))
    rsps.get(f"{API}/runs/get-output", json={"notebook_output": {"result": "42"}})
    result = wait_for_run(client, RUN_ID, sleep=lambda s: None)
    assert result.ok and result.job_id == JOB_ID and result.output == "42"


@pytest.mark.parametrize("run_id", [0, -1, "abc", None, True])
def test_wait_for_run_refuses_bad_ids(client, rsps, run_id):
    with pytest.raises(InvalidInput, match="not a positive integer"):
        wait_for_run(client, run_id)


def test_the_first_poll_and_the_history_are_one_request(client, rsps):
    """A just-launched run is in its job's newest runs/list page, with the history beside it."""
    past = [
        {
            "run_id": 900 + i,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
            "run_duration": 60_000,
        }
        for i in range(3)
    ]
    rsps.get(f"{API}/get", json={"job_id": JOB_ID, "settings": {"name": "nightly"}})
    rsps.post(f"{API}/run-now", json={"run_id": RUN_ID})
    rsps.get(
        f"{API}/runs/list",
        match=[matchers.query_param_matcher({"job_id": str(JOB_ID), "limit": "25"})],
        json={"runs": [run_json("PENDING"), *past]},
    )
    rsps.get(f"{API}/runs/get", json=run_json("TERMINATED", "SUCCESS"))
    rsps.get(f"{API}/runs/get-output", json={})
    result, updates = go(client)
    assert updates[0].life_cycle_state == "PENDING" and updates[0].expected_duration == pytest.approx(60.0)
    paths = [c.request.url.split("/jobs/")[1].split("?")[0] for c in rsps.calls]
    assert paths == ["get", "run-now", "runs/list", "runs/get", "runs/get-output"]
    assert result.ok
