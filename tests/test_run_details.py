"""What a RunResult says beyond its state: resolved parameters, disabled tasks, for-each iterations (paged
on the wire, read once at the end), performance targets; against the sandbox and at the HTTP level."""

from __future__ import annotations

from typing import Any

import responses
from responses import matchers

from dbx_magic import run_job_and_wait, wait_for_run
from dbx_magic.notebook.progress import describe

from .conftest import API

JOB_ID, RUN_ID, EACH_RUN = 7, 1001, 2001


def test_a_failed_iteration_of_150_is_found_with_its_parameters_and_error(sandbox_client) -> None:
    result = run_job_and_wait(sandbox_client, "store-forecast", job_parameters={"horizon_days": "56"})
    assert result.result_state == "FAILED"
    task = result.tasks[0]
    assert task.iteration_counts["total_iterations"] == 150 and len(task.iterations) == 150
    bad = [it for it in task.iterations if it.failed]
    assert [(it.index, it.parameters) for it in bad] == [(116, {"store": "store_117", "horizon": "56"})]
    assert "too few for a 56-day horizon" in bad[0].error
    assert task.iterations[0].value["store"] == "store_001" and task.iterations[0].result_state == "SUCCESS"
    text = result.summary_text()
    assert "150 iterations: 149 succeeded, 1 failed" in text
    assert "iteration 116 (store=store_117, horizon=56): FAILED: ValueError: store_117 has 28 days" in text
    assert "150 iterations: 149 succeeded, 1 failed" in describe(result, 5.0).line


def test_resolved_parameters_and_a_disabled_task(sandbox_client) -> None:
    result = run_job_and_wait(sandbox_client, "attribution-daily", job_parameters={"run_date": "2026-12-01"})
    tasks = {t.key: t for t in result.tasks}
    load = tasks["load_touches"]
    assert load.parameters["from_date"] == "{{job.parameters.run_date}}"
    assert load.resolved_parameters == {"from_date": "2026-12-01", "window": "30d"}
    off = tasks["legacy_export"]
    assert off.disabled and off.result_state == "DISABLED" and not off.failed
    assert result.ok and result.failed_tasks == ()
    text = result.summary_text()
    assert "task legacy_export: DISABLED" in text and "disabled in the job: not run" in text
    assert "resolved: from_date=2026-12-01, window=30d" in text
    row = next(r for r in describe(result, 3.0).tasks if r.key == "legacy_export")
    assert (row.state, row.colour, row.note) == ("DISABLED", "warning", "disabled in the job: not run")
    assert "disabled in the job" in result._repr_html_()


# -- the wire, with responses --------------------------------------------------------------------------


def _iteration(n: int, result: str = "SUCCESS") -> dict[str, Any]:
    return {
        "task_key": "each_iteration",
        "run_id": 5000 + n,
        "state": {"life_cycle_state": "TERMINATED", "result_state": result, "state_message": ""},
        "notebook_task": {"notebook_path": "/n", "base_parameters": {"item": "{{input}}"}},
        "resolved_values": {"notebook_task": {"base_parameters": {"item": f"i{n}"}}},
    }


def test_iterations_are_read_through_their_pages_with_their_outputs(client, rsps) -> None:
    ended = {"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": ""}
    each = {
        "task_key": "each",
        "run_id": EACH_RUN,
        "state": ended,
        "for_each_task": {"stats": {"task_run_stats": {"total_iterations": 120, "failed_iterations": 1}}},
    }
    run = {"job_id": JOB_ID, "run_id": RUN_ID, "state": ended, "tasks": [each]}
    resolved = matchers.query_param_matcher({"run_id": str(RUN_ID), "include_resolved_values": "true"})
    rsps.get(f"{API}/runs/get", match=[resolved], json=run)
    rsps.get(
        f"{API}/runs/get-output",
        match=[matchers.query_param_matcher({"run_id": str(EACH_RUN)})],
        json={"error": "1 iteration failed"},
    )
    first = {"run_id": EACH_RUN, "tasks": [each], "iterations": [_iteration(n) for n in range(100)]}
    first["next_page_token"] = "p2"
    second = {"run_id": EACH_RUN, "tasks": [], "iterations": [_iteration(n) for n in range(100, 119)]}
    second["iterations"].append(_iteration(119, "FAILED"))
    page = {"run_id": str(EACH_RUN), "include_resolved_values": "true"}
    rsps.get(f"{API}/runs/get", match=[matchers.query_param_matcher(page)], json=first)
    rsps.get(
        f"{API}/runs/get", match=[matchers.query_param_matcher({**page, "page_token": "p2"})], json=second
    )
    for n in range(120):
        body = {"notebook_output": {"result": f'{{"n": {n}}}'}} if n < 119 else {"error": "ZeroDivisionError"}
        rsps.get(
            f"{API}/runs/get-output",
            match=[matchers.query_param_matcher({"run_id": str(5000 + n)})],
            json=body,
        )
    result = wait_for_run(client, RUN_ID)
    iterations = result.tasks[0].iterations
    assert [it.parameters["item"] for it in iterations] == [f"i{n}" for n in range(120)]
    assert iterations[7].value == {"n": 7} and iterations[119].error == "ZeroDivisionError"
    assert [it.index for it in iterations if it.failed] == [119]
    gets = [c.request.url for c in rsps.calls if "/runs/get?" in c.request.url]
    assert len(gets) == 3  # the run, then its for-each task's two pages


def test_a_run_says_its_performance_target(client, rsps) -> None:
    ended = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}
    run = {"job_id": JOB_ID, "run_id": RUN_ID, "state": ended, "effective_performance_target": "STANDARD"}
    rsps.get(f"{API}/runs/get", json=run)
    assert wait_for_run(client, RUN_ID).performance_target == "STANDARD"


@responses.activate
def test_nothing_more_is_read_for_a_run_without_for_each_tasks(client) -> None:
    ended = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}
    run = {
        "job_id": JOB_ID,
        "run_id": RUN_ID,
        "state": ended,
        "tasks": [{"task_key": "t", "run_id": 9, "state": ended}],
    }
    responses.get(f"{API}/runs/get", json=run)
    responses.get(f"{API}/runs/get-output", json={"notebook_output": {"result": "ok"}})
    assert wait_for_run(client, RUN_ID).output == "ok"
    # a run found ended is read once (no history: its watch is over), then its one task's output
    assert [c.request.url.split("?")[0].rsplit("/", 1)[-1] for c in responses.calls] == ["get", "get-output"]


def test_show_lists_a_for_each_tasks_iterations(sandbox_client) -> None:
    result = run_job_and_wait(sandbox_client, "store-forecast", job_parameters={"horizon_days": "56"})
    page = result.show()  # no notebook task to export: the iterations are what there is to show
    html = page._repr_html_()
    assert html.count('<tr class="dbx-iteration') == 150 and html.count("dbx-iteration-failed") == 1
    assert "forecast_stores</b> · 150 iterations: 149 succeeded, 1 failed" in html
    text = page.summary_text()
    assert "iteration 116 (store=store_117, horizon=56): FAILED" in text
    assert "150 iterations" in result.show("forecast_stores").summary_text()


def test_an_iterations_link_that_is_not_http_is_rebuilt_from_the_host(client, rsps) -> None:
    from dbx_magic.run.models import Iteration

    assert Iteration.from_api(0, {"run_id": 1, "run_page_url": "javascript:alert(1)"}).run_page_url is None
    item = {**_iteration(0), "run_page_url": "javascript:alert(1)"}
    rsps.get(f"{API}/runs/get", json={"run_id": EACH_RUN, "job_id": JOB_ID, "iterations": [item]})
    (linked,) = client.get_run(EACH_RUN)["iterations"]
    assert linked["run_page_url"] == f"{client.host}/#job/{JOB_ID}/run/5000"
