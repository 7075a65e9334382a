"""The pure describe() that every display renders, and the plain-text display."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from dbx_magic.notebook.progress import (
    DANGER,
    INFO,
    SUCCESS,
    WARNING,
    TextProgress,
    describe,
    format_duration,
)
from dbx_magic.run.models import RunResult

PAGE = "https://adb-1234567890123456.7.azuredatabricks.net/?o=1234567890123456#job/7/run/1001"


def result(
    life_cycle: str | None,
    result_state: str | None = None,
    *,
    expected: float | None = None,
    tasks: list | None = None,
    message: str = "",
    status: dict | None = None,
) -> RunResult:
    state = {"state_message": message}
    if life_cycle:
        state["life_cycle_state"] = life_cycle
    if result_state:
        state["result_state"] = result_state
    run = {"job_id": 7, "run_id": 1001, "run_page_url": PAGE, "state": state, "tasks": tasks or []}
    if status:
        run["status"] = status
    return RunResult.from_api(run, job_name="nightly", expected_duration=expected)


@pytest.mark.parametrize(
    ("life_cycle", "result_state", "shown", "colour", "finished"),
    [
        ("QUEUED", None, "QUEUED", INFO, False),
        ("PENDING", None, "PENDING", INFO, False),
        ("RUNNING", None, "RUNNING", INFO, False),
        ("TERMINATING", None, "TERMINATING", INFO, False),
        ("BLOCKED", None, "BLOCKED", INFO, False),
        ("WAITING_FOR_RETRY", None, "WAITING_FOR_RETRY", INFO, False),
        ("SOMETHING_NEW", None, "SOMETHING_NEW", INFO, False),
        ("TERMINATED", "SUCCESS", "SUCCESS", SUCCESS, True),
        ("TERMINATED", "SUCCESS_WITH_FAILURES", "SUCCESS_WITH_FAILURES", WARNING, True),
        ("TERMINATED", "FAILED", "FAILED", DANGER, True),
        ("TERMINATED", "CANCELED", "CANCELED", DANGER, True),
        ("TERMINATED", "TIMEDOUT", "TIMEDOUT", DANGER, True),
        ("SKIPPED", None, "SKIPPED", DANGER, True),
        ("INTERNAL_ERROR", None, "INTERNAL_ERROR", DANGER, True),
        (None, None, "LAUNCHING", INFO, False),
    ],
)
def test_every_state(life_cycle, result_state, shown, colour, finished):
    view = describe(result(life_cycle, result_state), elapsed=12.0)
    assert (view.state, view.colour, view.finished) == (shown, colour, finished)
    assert view.title == "nightly · run 1001" and view.run_page_url == PAGE
    words = "took" if finished else "elapsed"  # a finished run shows what it took
    assert view.line.startswith(f"nightly · run 1001: {shown} · {words} 0:12")
    assert view.fraction is None and view.eta is None  # no history, no made-up estimate


def test_history_gives_fraction_and_eta():
    view = describe(result("RUNNING", expected=120.0), elapsed=30.0)
    assert view.fraction == pytest.approx(0.25) and view.eta == pytest.approx(90.0) and not view.overrun
    assert "~1:30 left (25%)" in view.line


def test_overrun_is_said_and_the_bar_never_claims_done():
    view = describe(result("RUNNING", expected=60.0), elapsed=75.0)
    assert view.overrun and view.eta == 0.0 and view.fraction < 1.0
    assert "over the usual 1:00" in view.line


def test_finished_with_history_is_full():
    view = describe(result("TERMINATED", "SUCCESS", expected=60.0), elapsed=61.0)
    assert view.fraction == 1.0 and view.eta == 0.0


def test_tasks_rows_and_line():
    tasks = [
        {
            "task_key": "ingest",
            "run_id": 1,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
        },
        {"task_key": "transform", "run_id": 2, "state": {"life_cycle_state": "RUNNING"}},
        {"task_key": "publish", "run_id": 3, "state": {"life_cycle_state": "BLOCKED"}},
    ]
    view = describe(result("RUNNING", tasks=tasks), elapsed=5)
    assert [(t.key, t.state, t.colour) for t in view.tasks] == [
        ("ingest", "SUCCESS", SUCCESS),
        ("transform", "RUNNING", INFO),
        ("publish", "BLOCKED", INFO),
    ]
    assert "tasks: ingest SUCCESS, transform RUNNING, publish BLOCKED" in view.line


def test_failed_task_detail_is_the_last_line_of_its_error():
    failed = RunResult.from_api(
        {
            "run_id": 1,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            "tasks": [
                {
                    "task_key": "t",
                    "run_id": 5,
                    "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
                }
            ],
        }
    )
    failed = replace(
        failed, tasks=(failed.tasks[0].with_output({"error": "Traceback\n  ...\nValueError: boom"}),)
    )
    view = describe(failed, 3)
    assert view.tasks[0].detail == "ValueError: boom" and view.tasks[0].colour == DANGER


def test_queue_reason_is_the_message():
    view = describe(result("QUEUED", message="Queued due to reaching maximum concurrent runs of 1."), 2)
    assert view.message.startswith("Queued due to")


def test_describe_is_pure():
    r = result("RUNNING", expected=100.0)
    assert describe(r, 10) == describe(r, 10)


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "?"), (0, "0:00"), (75.2, "1:15"), (3725, "1:02:05"), (-3, "0:00")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_text_progress_prints_changes_and_heartbeats():
    now = [0.0]
    out = io.StringIO()
    show = TextProgress(stream=out, heartbeat=30, clock=lambda: now[0])
    for t, state in [(1, "PENDING"), (2, "PENDING"), (3, "RUNNING"), (40, "RUNNING"), (41, "RUNNING")]:
        now[0] = t
        show(result(state))
    now[0] = 50
    show(result("TERMINATED", "SUCCESS"))
    lines = out.getvalue().splitlines()
    assert [line.split(": ")[1].split(" ·")[0] for line in lines] == [
        "PENDING",
        "RUNNING",
        "RUNNING",
        "SUCCESS",
    ]
    assert lines[-1].endswith(PAGE)  # the link comes with the final line


# -- task notes: for-each iterations, condition outcomes, later attempts ---------------------------------


def _task(key: str, result_state: str | None = None, **extra: object) -> dict:
    state = {"life_cycle_state": "TERMINATED" if result_state else "RUNNING"}
    if result_state:
        state["result_state"] = result_state
    return {"task_key": key, "run_id": hash(key) % 1000 + 1, "state": state, **extra}


@pytest.mark.parametrize(
    ("task", "note"),
    [
        (
            _task(
                "each",
                for_each_task={
                    "stats": {
                        "task_run_stats": {
                            "total_iterations": 5,
                            "completed_iterations": 2,
                            "failed_iterations": 1,
                            "active_iterations": 2,
                        }
                    }
                },
            ),
            "5 iterations: 1 succeeded, 1 failed, 2 running, 1 waiting",
        ),
        (
            _task(
                "each",
                "SUCCESS",
                for_each_task={
                    "stats": {"task_run_stats": {"total_iterations": 3, "completed_iterations": 3}}
                },
            ),
            "3 iterations: 3 succeeded",
        ),
        (_task("each", for_each_task={"inputs": "[1]"}), ""),  # no stats yet
        (_task("check", "SUCCESS", condition_task={"op": "EQUAL_TO", "outcome": "true"}), "outcome true"),
        (_task("again", "SUCCESS", attempt_number=2), "attempt 3"),
        (_task("plain", "SUCCESS"), ""),
        (_task("off", "DISABLED", disabled=True), "disabled in the job: not run"),
        (
            _task(
                "many",
                for_each_task={
                    "stats": {
                        "task_run_stats": {
                            "total_iterations": 40,
                            "succeeded_iterations": 38,
                            "failed_iterations": 1,
                            "completed_iterations": 39,
                            "active_iterations": 1,
                        }
                    }
                },
            ),
            "40 iterations: 38 succeeded, 1 failed, 1 running",
        ),
    ],
)
def test_task_rows_say_iterations_outcomes_and_attempts(task, note):
    view = describe(result("RUNNING", tasks=[task, _task("other")]), 1.0)
    assert view.tasks[0].note == note
    if note:
        assert f"({note})" in view.line


def test_the_latest_attempt_of_each_task_is_shown():
    tasks = [
        _task("a", "FAILED"),
        _task("b", "UPSTREAM_FAILED"),
        {**_task("a", "SUCCESS"), "attempt_number": 1},
    ]
    run = result("TERMINATED", "SUCCESS", tasks=tasks)
    assert [(t.key, t.result_state, t.attempt_number) for t in run.tasks] == [
        ("a", "SUCCESS", 1),
        ("b", "UPSTREAM_FAILED", 0),
    ]
    assert len(run.attempts) == 3


def test_repair_shows_on_a_failed_run_only_where_clicks_arrive():
    from dbx_magic.notebook.widgets import ProgressWidget

    clicked: list[bool] = []
    offering = ProgressWidget(repair=lambda: clicked.append(True), tick=60)
    blocking = ProgressWidget(blocking=True, tick=60)
    for widget in (offering, blocking):
        widget(result("RUNNING", tasks=[_task("a"), _task("b")]))
        assert widget.repair_button.layout.display == "none"
        widget(result("TERMINATED", "FAILED", tasks=[_task("a", "FAILED"), _task("b", "UPSTREAM_FAILED")]))
    assert offering.repair_button.layout.display is None and blocking.repair_button.layout.display == "none"
    offering.repair_button.click()
    assert clicked == [True] and offering.repair_button.disabled
    succeeded = ProgressWidget(repair=lambda: None, tick=60)
    succeeded(result("TERMINATED", "SUCCESS"))
    assert succeeded.repair_button.layout.display == "none"
