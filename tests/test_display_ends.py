"""When the watching ends, for whatever reason, every display says so once and no control stays live."""

from __future__ import annotations

import contextlib
import html

from dbx_magic import DatabricksClient, DatabricksError, RunResult
from dbx_magic.notebook.form import RunForm
from dbx_magic.notebook.widgets import ProgressWidget
from dbx_magic.testing import ManualClock

from .conftest import fresh_shell


def running(clock: ManualClock, *, seconds_ago: float = 30.0, expected: float | None = 300.0) -> RunResult:
    start = int((clock.wall() - seconds_ago) * 1000)
    run = {"run_id": 7, "job_id": 1, "start_time": start, "state": {"life_cycle_state": "RUNNING"}}
    return RunResult.from_api(run, job_name="nightly", expected_duration=expected)


def shown(widget: ProgressWidget) -> str:
    return " ".join(
        str(w.value) for w in (widget.header, widget.state, widget.elapsed, widget.message, widget.hint)
    )


def test_a_launch_that_fails_leaves_no_run_pretended(clock):
    widget = ProgressWidget(cancel=lambda: None, clock=clock, tick=None)
    widget.not_started("No run was started: the message below says why.")
    text = shown(widget)
    assert "NOT STARTED" in text and "Launching" not in text and "LAUNCHING" not in text
    assert widget.cancel_button.disabled and widget.cancel_button.layout.display == "none"


def test_stopping_the_watch_stops_the_eta_and_retires_cancel(clock):
    widget = ProgressWidget(cancel=lambda: None, clock=clock, tick=None)
    widget(running(clock))
    assert "left" in widget.elapsed.value and not widget.cancel_button.disabled
    widget.close(note="Stopped watching; the run goes on in the workspace.")
    clock.advance(60)
    widget.close()  # closing again changes nothing, and says nothing twice
    assert "left" not in widget.elapsed.value and "no longer watched" in widget.elapsed.value
    assert widget.hint.value.count("Stopped watching") == 1
    assert widget.cancel_button.disabled and widget.cancel_button.layout.display == "none"


def test_after_cancel_the_button_stays_disabled_and_the_eta_stops(clock):
    asked: list[bool] = []
    widget = ProgressWidget(cancel=lambda: asked.append(True), clock=clock, tick=None)
    widget(running(clock))
    widget.cancel_button.click()
    terminating = RunResult.from_api(
        {"run_id": 7, "start_time": running(clock).start_time, "state": {"life_cycle_state": "TERMINATING"}},
        expected_duration=300.0,
    )
    widget(terminating)
    assert asked == [True] and widget.cancel_button.disabled
    assert "cancelling" in widget.elapsed.value and "left" not in widget.elapsed.value


def test_elapsed_comes_from_the_run_and_the_end_shows_what_it_took(clock):
    widget = ProgressWidget(clock=clock, tick=None)
    widget(running(clock, seconds_ago=125))  # re-attached to a run that began 2 min 5 s ago
    assert "elapsed 2:05" in widget.elapsed.value
    start = running(clock, seconds_ago=125).start_time
    done = {
        "run_id": 7,
        "start_time": start,
        "end_time": start + 126_000,
        "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
    }
    widget(RunResult.from_api(done))
    assert widget.elapsed.value == "took 2:06" and widget.cancel_button.layout.display == "none"


def test_the_form_shows_no_live_run_after_an_unknown_job(sandbox, clock):
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    form = RunForm(client=client, namespace={})
    form.job.value = "no-such-job"
    form.run()
    with contextlib.suppress(DatabricksError):
        form.wait(30)
    assert form.error is not None and "No job is named 'no-such-job'" in str(form.error)
    assert form.progress is not None
    assert form.progress.widget.layout.display == "none"  # one block: the form's status says why
    assert form.progress.cancel_button.disabled
    assert form.cancel_button.disabled and not form.run_button.disabled


def test_an_unknown_job_typed_in_says_so_and_drops_the_last_jobs_parameters(sandbox, clock):
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    form = RunForm(client=client, job="daily-sales-report", namespace={})
    assert {r.name.value for r in form.rows} >= {"date"}
    form.job.value = "daily-sales-reprot"
    said = html.unescape(form.status.value)
    assert "No job is named 'daily-sales-reprot'" in said and "did you mean 'daily-sales-report'?" in said
    assert form.rows == []  # nothing of the last job's parameters is left to be sent


def test_a_form_follows_the_session_when_the_sandbox_is_started_again(clock):

    from dbx_magic.notebook.magics import DbxMagics, unload
    from dbx_magic.notebook.session import NotebookSession

    shell = fresh_shell()
    session = NotebookSession(shell.user_ns, clock=clock, threaded=False)
    shell.register_magics(DbxMagics(shell, session))
    try:
        shell.run_line_magic("dbx_sandbox", "")
        form = RunForm(job="daily-sales-report", session=session)
        first = form.client.host
        shell.run_line_magic("dbx_sandbox", "--fresh")  # the first sandbox stops; a new one starts
        assert form.client.host != first and form.client.host == session.sandbox.url
        form.run()
        assert form.wait(timeout=30).ok  # runs on the new sandbox, not against the stopped one
    finally:
        unload(shell)


def test_the_forms_status_follows_the_run_and_a_blocking_cell_shows_one_task_table(sandbox, clock):
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    form = RunForm(client=client, job="etl-pipeline", namespace={})
    said: list[str] = []
    form.status.observe(lambda change: said.append(html.unescape(change["new"])), names="value")
    form.run()
    assert form.wait(timeout=30).ok
    assert any("is PENDING" in s or "is RUNNING" in s for s in said)  # not 'Launching…' to the end
    blocking = ProgressWidget(blocking=True, clock=clock, tick=None)
    blocking(form.result)
    assert blocking.tasks.value == ""  # the cell's result below holds the table, whole
    assert "ingest" in form.progress.tasks.value  # the form has no result below: its widget keeps it
