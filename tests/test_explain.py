"""Why a run waits, why it ended and what changed since the last success, in words: every code the API
documents has a sentence, an unknown one is shown verbatim; end to end against the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from dbx_magic import RunFailed, RunResult, run_job_and_wait
from dbx_magic.notebook.progress import describe
from dbx_magic.run.explain import QUEUE_REASONS, TERMINATIONS, ended_words, queue_words
from dbx_magic.run.polling import History


def test_every_documented_code_has_a_sentence() -> None:
    from databricks.sdk.service.jobs import QueueDetailsCodeCode, TerminationCodeCode  # a second to import

    assert {c.value for c in TerminationCodeCode} - {"SUCCESS"} <= set(TERMINATIONS)
    assert {c.value for c in QueueDetailsCodeCode} <= set(QUEUE_REASONS)
    assert all(code not in words for code, words in TERMINATIONS.items())  # never the bare code


def test_an_unknown_code_is_shown_verbatim() -> None:
    assert ended_words("SOME_NEW_CODE", "It stopped.") == "It stopped (SOME_NEW_CODE)"
    assert ended_words("SOME_NEW_CODE") == "SOME_NEW_CODE"
    assert queue_words("SOME_NEW_REASON", "Waiting.") == "queued (SOME_NEW_REASON): Waiting"


def _run(life_cycle: str, result: str | None = None, **status: Any) -> dict[str, Any]:
    state = {"life_cycle_state": life_cycle, "state_message": status.pop("message", "")}
    if result:
        state["result_state"] = result
    return {"job_id": 7, "run_id": 1001, "start_time": 1_000_000, "state": state, "status": status}


@pytest.mark.parametrize(
    ("code", "message", "words"),
    [
        (
            "MAX_CONCURRENT_RUNS_REACHED",
            "Queued due to reaching maximum concurrent runs of 1.",
            "queued: the job already has its maximum of 1 concurrent run; it starts when one ends",
        ),
        (
            "MAX_CONCURRENT_RUNS_REACHED",
            "Queued due to reaching maximum concurrent runs of 3.",
            "queued: the job already has its maximum of 3 concurrent runs; it starts when one ends",
        ),
        ("ACTIVE_RUNS_LIMIT_REACHED", "", "queued: the workspace has reached its limit of active runs"),
    ],
)
def test_the_queue_reason_in_words(code: str, message: str, words: str) -> None:
    run = _run("QUEUED", state="QUEUED", queue_details={"code": code, "message": message})
    view = describe(RunResult.from_api(run), 12.0)
    assert view.message.startswith(words) and words in view.line


def test_a_long_pending_is_a_cluster_starting_and_says_how_long_it_usually_takes() -> None:
    result = RunResult.from_api(_run("PENDING", message="Waiting for cluster"))
    usual = History(median=600.0, spread=0.1, count=5, setup=240.0)
    view = describe(
        RunResult.from_api(_run("PENDING")).__class__(**{**result.__dict__, "history": usual}), 370.0
    )
    assert view.message == "waiting for a cluster: 6:10 so far; this job's clusters usually take 4 min"
    assert describe(result, 5.0).message == "waiting for a cluster: 0:05 so far"  # no history: no "usually"
    blocked = describe(RunResult.from_api(_run("BLOCKED")), 5.0)
    assert blocked.message == "waiting for the tasks it depends on"


def test_how_a_run_ended_in_words() -> None:
    run = _run(
        "INTERNAL_ERROR",
        "FAILED",
        state="TERMINATED",
        message="Cluster c-1 could not start: AllocationFailed.",
        termination_details={"code": "CLUSTER_ERROR", "type": "CLOUD_FAILURE", "message": "x"},
    )
    result = RunResult.from_api(run)
    assert (
        result.cause()
        == "Cluster c-1 could not start: AllocationFailed (the cluster failed or could not start)"
    )
    assert describe(result, 9.0).message == result.cause()


# -- against the sandbox ----------------------------------------------------------------------------------


def test_a_queued_run_says_why_while_it_waits(sandbox_client) -> None:
    from dbx_magic import start_run

    start_run(sandbox_client, "nightly-backfill")
    messages: list[str] = []
    run_job_and_wait(
        sandbox_client, "nightly-backfill", on_update=lambda r: messages.append(describe(r, 1.0).message)
    )
    assert "queued: the job already has its maximum of 1 concurrent run; it starts when one ends" in messages
    assert any(m.startswith("waiting for a cluster: ") for m in messages)


@pytest.mark.parametrize(
    ("job", "said"),
    [
        (
            "gpu-training",
            "(AllocationFailed). Try another node type or region, or retry later (the cluster failed",
        ),
        (
            "shared-refresh",
            "ended CANCELED: Run cancelled by maria.lopez@example.com (a person cancelled it)",
        ),
    ],
)
def test_how_sample_runs_end_is_said(sandbox_client, job: str, said: str) -> None:
    with pytest.raises(RunFailed) as failed:
        run_job_and_wait(sandbox_client, job).raise_for_state()
    assert said in str(failed.value)
    assert said.split(" (", 1)[-1].rstrip(")") in describe(failed.value.result, 9.0).message


def test_a_failure_says_what_differs_from_the_last_success_without_a_request_more(
    sandbox_client, sandbox
) -> None:
    sandbox.clear_requests()
    result = run_job_and_wait(sandbox_client, "etl-with-checks", job_parameters={"strict": "true"})
    history = result.history.last_success
    line = f"last success: run {history.run_id}, 1 day ago; differs in strict=true (was false)"
    assert result.since_success == line
    with pytest.raises(RunFailed) as failed:
        result.raise_for_state()
    assert str(failed.value).splitlines()[-1] == line and "\n" not in result.failure_summary()
    assert line in describe(result, 9.0).message
    listed = [r for r in sandbox.requests if r.path.endswith("/jobs/runs/list")]
    assert len(listed) == 1  # the history the watcher reads anyway; nothing more on failure
    ok = run_job_and_wait(sandbox_client, "etl-with-checks")
    assert ok.ok and ok.since_success == "" and "last success" not in ok.summary_text()


def test_no_line_when_the_job_never_succeeded_before(sandbox_client, sandbox) -> None:
    sandbox.add_job("new-job", script=[("PENDING", 1.0), ("TERMINATED", "FAILED", "boom")])
    result = run_job_and_wait(sandbox_client, "new-job")
    assert not result.ok and result.since_success == ""
    with pytest.raises(RunFailed, match="ended FAILED: boom") as failed:
        result.raise_for_state()
    assert "last success" not in str(failed.value)


def test_the_board_says_why_a_run_waits_and_the_notice_what_differs(make_sandbox, clock) -> None:
    from dbx_magic import Watcher, start_background
    from dbx_magic.notebook.board import describe_board
    from dbx_magic.notebook.notices import notice_for
    from tests.test_background import client_of, drive

    watcher = Watcher(clock, threaded=False)
    client = client_of(make_sandbox(), clock)
    bad = start_background(client, "etl-with-checks", job_parameters={"strict": "true"}, watcher=watcher)
    start_background(client, "nightly-backfill", watcher=watcher)
    second = start_background(client, "nightly-backfill", watcher=watcher)
    drive(watcher, clock, until=lambda: second.result.life_cycle_state == "QUEUED")
    rows = {row.run_id: row for row in describe_board(watcher.handles, clock.wall())}
    assert rows[second.run_id].result == (
        "queued: the job already has its maximum of 1 concurrent run; it starts when one ends"
    )
    drive(watcher, clock)
    notice = notice_for(bad)
    assert notice.level == "danger" and "strict checks failed" in notice.body
    assert "Last success: run " in notice.body and "differs in strict=true (was false)." in notice.body


@pytest.mark.parametrize(
    ("ms", "words"),
    [
        (40_000, "40 s ago"),
        (5 * 60_000, "5 min ago"),
        (3 * 3_600_000, "3 hours ago"),
        (23.9 * 3_600_000, "1 day ago"),
        (2 * 86_400_000, "2 days ago"),
    ],
)
def test_how_long_ago_in_words(ms: float, words: str) -> None:
    from dbx_magic.run.timing import ago

    assert ago(ms) == words


def test_the_wire_queue_details_then_a_cluster_error_then_the_last_success(client, rsps) -> None:
    from tests.test_workflow import go, run_json, script

    queued = run_json(
        "QUEUED",
        status={"state": "QUEUED", "queue_details": {"code": "ACTIVE_RUNS_LIMIT_REACHED", "message": "m"}},
    )
    ended = run_json(
        "INTERNAL_ERROR",
        "FAILED",
        message="Cluster c-1 terminated: SPOT_INSTANCE_TERMINATION",
        status={
            "state": "TERMINATED",
            "termination_details": {"code": "CLOUD_FAILURE", "type": "CLOUD_FAILURE"},
        },
    )
    success = {
        "run_id": 990,
        "start_time": 1,
        "run_duration": 60_000,
        "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
        "overriding_parameters": {"notebook_params": {"size": "small"}},
    }
    script(rsps, [queued, run_json("PENDING"), ended], history=[success])
    result, updates = go(client, notebook_params={"size": "large"})
    assert result.termination_code == "CLOUD_FAILURE"
    said = [describe(u, 5.0).message for u in updates]
    assert said[0] == "queued: the workspace has reached its limit of active runs; it starts when others end"
    assert said[1] == "waiting for a cluster: 0:05 so far"
    assert said[-1].startswith("Cluster c-1 terminated: SPOT_INSTANCE_TERMINATION (the cloud provider failed")
    assert said[-1].endswith(" · last success: run 990; differs in size=large (was small)")
