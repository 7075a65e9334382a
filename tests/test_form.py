"""The progress widget and the run form, driven through their public faces against the sandbox."""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets
import pytest

from dbx_magic import DatabricksClient, RunResult
from dbx_magic.errors import InvalidInput
from dbx_magic.notebook.form import RunForm
from dbx_magic.notebook.widgets import ProgressWidget
from dbx_magic.sandbox import Sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(speed=20) as sandbox:
        sandbox.add_job("slow-job", duration=600)
        # With history the poller sleeps long while the end is far: Cancel must still show at once.
        sandbox.add_job("slow-job-with-history", duration=1200, history=5)
        yield sandbox


@pytest.fixture
def client(sb: Sandbox) -> DatabricksClient:
    sb.clear_requests()
    return DatabricksClient(sb.url, sb.token)


def launches(sb: Sandbox) -> list[dict[str, Any]]:
    return [r.body for r in sb.requests if r.path.endswith("/jobs/run-now")]


def until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# -- the progress widget ----------------------------------------------------------------------------


def run_result(life_cycle: str, result_state: str | None = None, **extra: Any) -> RunResult:
    state = {"life_cycle_state": life_cycle}
    if result_state:
        state["result_state"] = result_state
    return RunResult.from_api(
        {"run_id": 5, "job_id": 1, "run_page_url": "http://127.0.0.1/run/5", "state": state},
        job_name="nightly",
        **extra,
    )


def test_progress_widget_renders_the_view():
    w = ProgressWidget()
    w(run_result("RUNNING", expected_duration=100.0))
    assert "nightly" in w.header.value and 'href="http://127.0.0.1/run/5"' in w.header.value
    assert "RUNNING" in w.state.value and w.bar.bar_style == "info"
    w(run_result("TERMINATED", "SUCCESS"))
    assert "SUCCESS" in w.state.value and w.bar.bar_style == "success" and w.bar.value == 1.0
    assert w.cancel_button.layout.display == "none"


def test_elapsed_ticks_between_polls():
    now = [0.0]
    w = ProgressWidget(tick=0.02, clock=lambda: now[0])
    w(run_result("RUNNING"))
    assert "elapsed 0:00" in w.elapsed.value
    now[0] = 65.0
    until(lambda: "elapsed 1:05" in w.elapsed.value, timeout=2)
    w(run_result("TERMINATED", "SUCCESS"))
    now[0] = 500.0
    time.sleep(0.1)
    assert "elapsed 8:20" not in w.elapsed.value  # the ticker stopped with the run


def test_a_later_success_never_paints_over_a_danger():
    w = ProgressWidget()
    w(run_result("TERMINATED", "FAILED"))
    w(run_result("TERMINATED", "SUCCESS"))
    assert w.bar.bar_style == "danger"


def test_blocking_widget_points_at_the_interrupt_and_has_no_button():
    w = ProgressWidget(blocking=True)
    assert "Interrupt the kernel" in w.hint.value and "goes on" in w.hint.value
    assert w.cancel_button.layout.display == "none"
    assert "will be cancelled" in ProgressWidget(blocking=True, cancel_on_interrupt=True).hint.value


# -- the form ----------------------------------------------------------------------------------------


def test_form_lists_jobs_and_prefills_defaults(client):
    form = RunForm(client=client, namespace={})
    assert {"daily-sales-report", "train-model", "etl-pipeline"} <= set(form.job.options)
    form.job.value = "daily-sales-report"
    assert set(form.get_params()) >= {"date", "table"}
    form.job.value = "train-model"
    params = form.get_params()
    assert params and "date" not in params  # job-level parameters now
    assert "job parameters" in form.status.value


def test_run_from_the_form_publishes_the_result(client, sb):
    ns: dict[str, Any] = {}
    form = RunForm(client=client, job="daily-sales-report", out="sales", namespace=ns)
    form.rows[0].value.value = datetime.date(2026, 12, 24)  # pick a day as a user would
    form.allow_unknown.value = True  # "region" is not a parameter the job declares
    extra = form.add_row("region", "eu")
    form.add_row("dropme", "x")
    form.remove_row(form.rows[-1])
    assert extra in form.rows
    form.run_button.click()
    assert form.running  # the click returned while the run goes on in the form's thread
    result = form.wait(timeout=30)
    assert ns["sales"] is result and result.ok
    sent = launches(sb)[0]["notebook_params"]
    assert sent["region"] == "eu" and "dropme" not in sent and "2026-12-24" in sent.values()
    assert "SUCCESS" in form.status.value and "sales" in form.status.value
    assert "SUCCESS" in form.progress.state.value


def test_failed_run_shows_in_the_form(client):
    ns: dict[str, Any] = {}
    form = RunForm(client=client, job="flaky-ingest", namespace=ns)
    form.set_params({"fail": "true"})
    form.run()
    result = form.wait(timeout=30)
    assert not result.ok and ns["dbx_result"] is result
    assert "ended FAILED" in form.status.value and "asked to fail" in form.status.value
    assert form.progress.bar.bar_style == "danger"


@pytest.mark.parametrize("job", ["slow-job", "slow-job-with-history"])
@pytest.mark.parametrize("via", ["form", "progress"])
def test_cancel_from_the_form(client, sb, via, job):
    form = RunForm(client=client, job=job, namespace={})
    form.run()
    until(lambda: form.run_id is not None and not form.cancel_button.disabled)
    assert sb.wait_for_request("jobs/runs/list")  # the first poll was made: the poller now sleeps
    (form.cancel_button if via == "form" else form.progress.cancel_button).click()
    # The click wakes the poller: the end shows at once, not after the poller's sleep (up to 11 s);
    # a generous bound, since this one runs on the real clock (the form's thread waits on it).
    result = form.wait(timeout=8)
    assert result.result_state == "CANCELED"
    assert "CANCELED" in form.progress.state.value


def test_launch_error_shows_in_the_form_and_wait_raises_it(client, sb):
    form = RunForm(client=client, namespace={})
    form.job.value = "no-such-job"
    form.run()
    with pytest.raises(InvalidInput, match="No job is named 'no-such-job'"):
        form.wait(timeout=10)
    assert "No job is named" in form.status.value and launches(sb) == []


def test_no_widget_ever_holds_the_token(client, sb):
    form = RunForm(client=client, job="daily-sales-report", namespace={})
    form.run()
    form.wait(timeout=30)
    state = json.dumps(widgets.Widget.get_manager_state(drop_defaults=False))
    assert sb.token not in state
    assert sb.token not in repr(form)
