"""End to end on the sandbox, on the fake clock: parameters checked against what the job declares
(in the magic, the form, Python, sweeps and the command line), and what the job's notebooks made
(results pages in isolated frames, exported files, the progress widget's Results button)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import RunResult, run_job_and_wait, start_run
from dbx_magic.errors import InvalidInput
from dbx_magic.notebook.form import RunForm
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.notebook.widgets import ProgressWidget
from dbx_magic.run.declared import Declarations
from dbx_magic.run.outputs import LARGE_EXPORT
from dbx_magic.run.sweep import run_many
from dbx_magic.sandbox import Sandbox, Task

JOB = "daily-sales-report"
SUGGESTION = "declares no parameter 'dat' (did you mean 'date'?)"


def sent(sandbox: Sandbox, endpoint: str) -> list[Any]:
    return [r for r in sandbox.requests if r.path.endswith(endpoint)]


def launches(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [r.body for r in sent(sandbox, "/jobs/run-now")]


@pytest.fixture
def env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Sandbox:
    """The environment points at the fake-clock sandbox (as DATABRICKS_HOST/TOKEN would at a workspace)."""
    monkeypatch.setenv("DATABRICKS_HOST", sandbox.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", sandbox.token)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "absent"))
    for name in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_AUTH_TYPE"):
        monkeypatch.delenv(name, raising=False)
    return sandbox


@pytest.fixture
def ip(env: Sandbox, clock: Any) -> Iterator[InteractiveShell]:
    """A real InteractiveShell whose magics' session runs on the fake clock, against the sandbox."""
    shell = InteractiveShell.instance()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    env.clear_requests()
    yield shell
    unload(shell)


def cell(ip: InteractiveShell, code: str) -> Any:
    return ip.run_cell(code, store_history=False)


# -- parameters the job does not declare --------------------------------------------------------------


def test_a_misspelt_parameter_is_refused_in_the_magic_and_nothing_is_launched(ip, env):
    res = cell(ip, f"%%dbx_run {JOB} --out sales\ndat = 2026-11-02\n")
    assert isinstance(res.error_in_exec, UsageError)  # one line, no stack trace
    assert SUGGESTION in str(res.error_in_exec) and "--allow-unknown-params" in str(res.error_in_exec)
    assert launches(env) == [] and len(sent(env, "/workspace/export")) == 1  # judged from the source


def test_with_allow_unknown_params_the_magic_sends_it(ip, env):
    res = cell(ip, f"%%dbx_run {JOB} --out sales --allow-unknown-params\ndat = 2026-11-02\n")
    assert res.success, res.error_in_exec
    assert launches(env)[0]["notebook_params"] == {"dat": "2026-11-02"}
    assert sent(env, "/workspace/export") == []  # nothing to judge, nothing read
    assert ip.user_ns["sales"].ok


@pytest.mark.parametrize(
    ("job", "body", "words"),
    [
        (JOB, "table = main.sales.tx", "The dropdown 'table' of job 'daily-sales-report' takes"),
        ("etl-with-checks", "checks = not_null,uniq", "not 'uniq' (did you mean 'unique'?)"),
        ("train-model", "max_depht = 8", "did you mean 'max_depth'?"),
    ],
)
def test_values_and_names_the_job_does_not_take_are_refused(ip, env, job, body, words):
    res = cell(ip, f"%%dbx_run {job}\n{body}\n")
    assert isinstance(res.error_in_exec, UsageError) and words in str(res.error_in_exec)
    assert launches(env) == []


def test_a_combobox_takes_a_value_of_its_own(ip, env):
    res = cell(ip, "%%dbx_run train-model --out m\nlearning_rate = 0.2\n")
    assert res.success, res.error_in_exec
    assert launches(env)[0]["job_parameters"] == {"learning_rate": "0.2"}


def test_when_a_source_cannot_be_read_an_unknown_name_is_a_warning(ip, env, capsys):
    from dbx_magic.sandbox.workspace import Task

    env.add_job("opaque", tasks=[Task("main", "/Workspace/Shared/opaque", {"x": "1"}, readable=False)])
    res = cell(ip, "%%dbx_run opaque --out scores\nrecipients = ops\n")
    assert res.success, res.error_in_exec
    assert launches(env)[0]["notebook_params"] == {"recipients": "ops"}
    (warning,) = [w for w in ip.user_ns["scores"].warnings if "recipients" in w]
    assert "it is sent as given, since the source of notebook /Workspace/Shared/opaque" in warning
    assert "403" in warning
    assert "warning: Job 'opaque' declares no parameter 'recipients'" in res.result.summary_text()


def test_a_job_with_job_parameters_takes_those_alone_whatever_its_sources_say(ip, env):
    """regional-scoring's notify_owners source cannot be read, but the job takes job parameters: a
    name that is not one of them is refused (the workspace would refuse it), before anything is sent."""
    res = cell(ip, "%%dbx_run regional-scoring --out scores\nrecipients = ops\n")
    assert not res.success and "declares no parameter 'recipients' (it takes 'notify')" in str(
        res.error_in_exec
    )
    assert launches(env) == []


def test_python_refuses_then_sends_when_allowed(sandbox, sandbox_client):
    sandbox.clear_requests()
    with pytest.raises(InvalidInput, match=re.escape(SUGGESTION)):
        run_job_and_wait(sandbox_client, JOB, {"dat": "2026-11-02"})
    with pytest.raises(InvalidInput, match=re.escape(SUGGESTION)):
        start_run(sandbox_client, JOB, {"dat": "2026-11-02"})
    assert launches(sandbox) == []
    result = run_job_and_wait(sandbox_client, JOB, {"dat": "x"}, allow_unknown_params=True)
    assert result.ok and launches(sandbox)[0]["notebook_params"] == {"dat": "x"}


def test_the_form_refuses_with_the_suggestion_and_sends_when_allowed(sandbox, sandbox_client):
    form = RunForm(client=sandbox_client, job=JOB, namespace={})
    row = form.add_row("dat", "2026-11-02")
    assert "did you mean &#x27;date&#x27;?" in row.note.value  # marked as it is typed
    sandbox.clear_requests()
    form.run()
    with pytest.raises(InvalidInput, match=re.escape(SUGGESTION)):
        form.wait(timeout=30)
    assert "did you mean &#x27;date&#x27;?" in form.status.value and launches(sandbox) == []
    form.allow_unknown.value = True
    form.run()
    assert form.wait(timeout=30).ok
    assert launches(sandbox)[0]["notebook_params"]["dat"] == "2026-11-02"


def test_a_sweep_checks_every_set_once_before_launching(sandbox, sandbox_client):
    sandbox.clear_requests()
    sets = [{"date": "2026-11-01"}, {"dat": "2026-11-02"}]
    with pytest.raises(
        InvalidInput, match=r"Parameter set #2 of 2: Job 'daily-sales-report' declares no parameter 'dat'"
    ):
        run_many(sandbox_client, JOB, sets)
    assert launches(sandbox) == [] and len(sent(sandbox, "/workspace/export")) == 1
    results = run_many(sandbox_client, JOB, [{"date": f"2026-11-0{i}"} for i in range(1, 4)])
    assert all(r.ok for r in results) and len(sent(sandbox, "/workspace/export")) == 2  # one per sweep


def test_dbx_params_shows_names_kinds_defaults_and_choices(ip, env):
    res = cell(ip, "%dbx_params etl-with-checks")
    assert res.success, res.error_in_exec
    table = res.result
    assert isinstance(table, Declarations)
    text, page = table.summary_text(), table._repr_html_()
    for words in (
        "run_date",
        "text (date)",
        "2026-11-01",
        "dropdown (flag)",
        "multiselect",
        "not_null, unique, freshness",
    ):
        assert words in text and html.escape(words) in page
    missing = cell(ip, '%dbx_params "no-such-job"')
    assert isinstance(missing.error_in_exec, UsageError) and "No job is named" in str(missing.error_in_exec)


def test_dbx_params_notes_what_could_not_be_read(ip, env):
    text = cell(ip, "%dbx_params regional-scoring").result.summary_text()
    assert "channel" in text and "could not be read: 403 PermissionDenied; it may take more." in text


def test_the_command_line_checks_and_lists(env, capsys):
    from dbx_magic.__main__ import main

    assert main(["run", JOB, "-p", "dat=2026-11-02"]) == 1
    assert SUGGESTION in capsys.readouterr().err and launches(env) == []
    assert main(["params", JOB]) == 0
    out = capsys.readouterr().out
    assert "date" in out and "main.sales.transactions, main.sales.returns" in out


# -- what the notebooks made -------------------------------------------------------------------------


def srcdocs(page: str) -> list[str]:
    return [html.unescape(s) for s in re.findall(r'srcdoc="([^"]*)"', page)]


def test_results_show_from_the_magic_result_in_an_isolated_frame(ip, env):
    assert cell(ip, f"%%dbx_run {JOB} --out sales\ndate = 2026-11-05\n").success
    result: RunResult = ip.user_ns["sales"]
    page = result.show()._repr_html_()
    frames = re.findall(r"<iframe[^>]*>", page)
    assert len(frames) == 1 and 'sandbox="allow-scripts"' in frames[0]
    assert "allow-same-origin" not in page and "allow-top-navigation" not in page
    (doc,) = srcdocs(page)
    assert "<td>date</td><td>2026-11-05</td>" in doc and "<td>rows</td>" in doc  # the tables
    assert "window.parent.__dbx_export_reached" in doc  # the planted script is there, inside the frame
    result.show()
    assert len(sent(env, "/jobs/runs/export")) == 1  # a finished run's page is fetched once


def test_export_writes_a_page_a_browser_opens(sandbox_client, tmp_path):
    one = run_job_and_wait(sandbox_client, JOB)
    path = one.export(tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    # one task is treated as several: its page framed and sandboxed, its scripts never run unframed
    assert text.startswith("<!DOCTYPE html>") and "allow-same-origin" not in text
    assert text.count('<iframe class="dbx-export-frame" sandbox="allow-scripts"') == 1
    (doc,) = srcdocs(text)
    assert "<td>table</td>" in doc
    many = run_job_and_wait(sandbox_client, "etl-pipeline")
    text = many.export(tmp_path / "etl.html").read_text(encoding="utf-8")
    assert text.count('<iframe class="dbx-export-frame" sandbox="allow-scripts"') == 3
    assert "allow-same-origin" not in text and "<h2>transform" in text
    only = many.export(tmp_path / "publish.html", task="publish").read_text(encoding="utf-8")
    (doc,) = srcdocs(only)
    assert "<td>version</td><td>42</td>" in doc


def test_a_large_page_shows_its_size_until_confirmed(sandbox, sandbox_client):
    big = "x" * (LARGE_EXPORT + 1000)
    sandbox.add_job("big-report", tasks=[Task("report", "/Workspace/Shared/big", notebook=lambda p: big)])
    result = run_job_and_wait(sandbox_client, "big-report")
    shown = result.show()._repr_html_()
    assert "<iframe" not in shown and "2.0 MB, over 2.0 MB" in shown and "confirm=True" in shown
    assert "<iframe" in result.show(confirm=True)._repr_html_()
    assert len(sent(sandbox, "/jobs/runs/export")) == 1


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {"task": "nope"},
            "has no task 'nope': its tasks are 'score_regions', 'check_notify', 'notify_owners'",
        ),
        ({"task": "check_notify"}, "is not a notebook task"),
        ({"views": "EVERYTHING"}, "is not one of CODE, DASHBOARDS, ALL"),
    ],
)
def test_results_of_what_has_none_are_refused(sandbox_client, kwargs, words):
    result = run_job_and_wait(sandbox_client, "regional-scoring")
    with pytest.raises(InvalidInput, match=re.escape(words)):
        result.show(**kwargs)


def test_a_result_without_a_client_says_how_to_give_one(sandbox_client):
    result = RunResult.from_api(run_job_and_wait(sandbox_client, JOB).run)
    with pytest.raises(InvalidInput, match="pass client="):
        result.show()
    assert "<iframe" in result.show(client=sandbox_client)._repr_html_()


def test_the_progress_widget_offers_the_results_once_finished(sandbox_client):
    widget = ProgressWidget()
    run_job_and_wait(sandbox_client, JOB, on_update=widget)
    assert widget.results_button.layout.display is None
    widget.results_button.click()
    (shown,) = widget.results_out.outputs
    page = shown["data"]["text/html"]
    assert 'sandbox="allow-scripts"' in page and "<td>table</td>" in srcdocs(page)[0]


def test_no_results_button_without_notebook_tasks_or_a_client():
    finished = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}
    task = {"task_key": "t", "run_id": 2, "notebook_task": {"notebook_path": "/n"}, "state": finished}
    for result in (
        RunResult.from_api({"run_id": 1, "state": finished}),  # no tasks
        RunResult.from_api({"run_id": 1, "state": finished, "tasks": [task]}),  # no client to fetch with
    ):
        widget = ProgressWidget()
        widget(result)
        assert widget.results_button.layout.display == "none"


def test_timing_of_the_run_and_its_tasks_reach_the_result(sandbox_client):
    result = run_job_and_wait(sandbox_client, "etl-pipeline")
    assert result.timing.total and all(t.timing.execution is not None for t in result.tasks)
    assert "execution" in result._repr_html_() and json.loads(result.tasks[0].output or "{}")


def test_the_form_reads_typed_inputs_back_as_the_strings_the_job_takes(sandbox_client):
    form = RunForm(client=sandbox_client, job="flaky-ingest", namespace={})
    kinds = {r.name.value: type(r.value).__name__ for r in form.rows}
    assert kinds == {"source": "Text", "fail": "Checkbox"}
    fail = next(r for r in form.rows if r.name.value == "fail")
    assert form.get_params()["fail"] == "false" and not fail.changed
    fail.value.value = True
    assert form.get_params()["fail"] == "true" and fail.changed and "changed" in fail.note.value
    assert "dbx-param-changed" in fail.box._dom_classes
    form.job.value = "daily-sales-report"
    date, table = form.rows
    assert type(date.value).__name__ == "DatePicker" and date.value.value.isoformat() == "2026-11-01"
    assert table.value.options == ("main.sales.transactions", "main.sales.returns")
    date.value.value = None  # a cleared date picker sends an empty value
    assert form.get_params()["date"] == ""
    row = form.add_row("checks", "a,b")  # a name the job does not declare stays a text row
    assert type(row.value).__name__ == "Text" and "not declared by the job" in row.note.value


def test_the_form_offers_a_multiselect_and_a_combobox(sandbox_client):
    form = RunForm(client=sandbox_client, job="train-model", namespace={})
    rate = next(r for r in form.rows if r.name.value == "learning_rate")
    assert type(rate.value).__name__ == "Combobox" and rate.value.options == ("0.01", "0.05", "0.1", "0.3")
    form.job.value = "etl-with-checks"
    checks = next(r for r in form.rows if r.name.value == "checks")  # pre-filled: the job takes it
    assert type(checks.value).__name__ == "SelectMultiple" and checks.value.value == ("not_null", "unique")
    checks.value.value = ("freshness",)
    assert form.get_params()["checks"] == "freshness" and checks.changed


def test_python_lists_what_a_job_takes(sandbox_client):

    declared = __import__("dbx_magic.run.declared", fromlist=["x"]).declared_params(
        sandbox_client, "train-model"
    )
    assert (
        isinstance(declared, __import__("dbx_magic.run.declared", fromlist=["x"]).Declarations)
        and declared.complete
    )
    assert declared["max_depth"].choices == ("4", "6", "8", "10") and declared["max_depth"].default == "6"
    assert declared.defaults == {"model_name": "churn-xgb", "max_depth": "6", "learning_rate": "0.1"}


def test_a_pickled_result_leaves_its_client_and_token_behind(sandbox, sandbox_client):
    import pickle

    result = run_job_and_wait(sandbox_client, JOB)
    assert result.client is sandbox_client
    data = pickle.dumps(result)
    assert sandbox.token.encode() not in data
    back = pickle.loads(data)
    assert back.client is None and back.run_id == result.run_id and back.tasks == result.tasks
    assert "<iframe" in back.show(client=sandbox_client)._repr_html_()


def test_the_results_name_the_job_run_and_each_task_run_and_the_chart_label_is_whole(sandbox_client):
    import base64

    result = run_job_and_wait(sandbox_client, JOB, {"date": "2026-11-05"})
    (task,) = result.tasks
    page = result.show()
    text = page.summary_text()
    assert text.startswith(f"Results of job run {result.run_id}:")
    assert f"task report (task run {task.run_id})" in text
    (doc,) = srcdocs(page._repr_html_())
    assert f"task run {task.run_id} of job run {result.run_id}" in doc
    assert "attempt 1 " in doc  # the first attempt, counted as every display counts: from 1
    svg = base64.b64decode(re.search(r"data:image/svg\+xml;base64,([^\"]+)", doc).group(1)).decode()
    width = int(re.search(r'width="(\d+)"', svg).group(1))
    label = re.search(r"<text x=\"(\d+)\"[^>]*>([^<]+)</text>", svg)
    assert label.group(2) == "daily_sales_report"
    assert int(label.group(1)) + 7 * len(label.group(2)) <= width  # ~7 px a character at 12 px


def test_attempts_count_from_one_in_every_display_and_attempt_says_so(sandbox_client):
    from dbx_magic.notebook.progress import describe

    failed = run_job_and_wait(sandbox_client, "etl-with-checks", {"strict": "true"})
    fixed = failed.repair(sandbox_client, notebook_params={"strict": "false"})
    again = next(t for t in fixed.tasks if t.key == "validate")
    assert (again.attempt_number, again.attempt) == (1, 2)
    assert f"task validate: SUCCESS (attempt {again.attempt})" in fixed.summary_text()
    row = next(t for t in describe(fixed, 10.0).tasks if t.key == "validate")
    assert row.note == f"attempt {again.attempt}"
