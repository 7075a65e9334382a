"""Fix and rerun, end to end on the sandbox over loopback, on the fake clock: repair (Python, magic,
command line), a subset of tasks (``only``), and what a launch does with a run already going."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import DatabricksClient, RunResult, repair_run, run_job_and_wait, start_run, wait_for_run
from dbx_magic.errors import NOTEBOOK, InvalidInput, TransportError
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.progress import TextProgress, describe
from dbx_magic.notebook.session import NotebookSession

from .conftest import fresh_shell

CHECKS = "etl-with-checks"  # ingest -> validate (fails when strict=true) -> publish


def requests_to(sandbox: Any, endpoint: str) -> list[Any]:
    return [r for r in sandbox.requests if r.path.endswith(endpoint)]


@pytest.fixture
def failed(sandbox_client: DatabricksClient) -> RunResult:
    """A run of etl-with-checks whose validate task failed (so publish never ran)."""
    result = run_job_and_wait(sandbox_client, CHECKS, {"strict": "true"})
    assert not result.ok
    assert {t.key: t.result_state for t in result.tasks} == {
        "ingest": "SUCCESS",
        "validate": "FAILED",
        "publish": "UPSTREAM_FAILED",
    }
    return result


# -- repair from Python --------------------------------------------------------------------------------


def test_repair_reruns_the_failed_task_and_its_dependents_with_a_changed_parameter(
    sandbox_client, sandbox, failed
):
    sandbox.clear_requests()
    seen: list[RunResult] = []
    repaired = repair_run(sandbox_client, failed, job_parameters={"strict": "false"}, on_update=seen.append)

    assert repaired.ok and repaired.run_id == failed.run_id
    assert [(t.key, t.attempt_number, t.result_state) for t in repaired.tasks] == [
        ("ingest", 0, "SUCCESS"),
        ("validate", 1, "SUCCESS"),
        ("publish", 1, "SUCCESS"),
    ]
    assert [(a.key, a.attempt_number) for a in repaired.attempts] == [
        ("ingest", 0),
        ("validate", 0),
        ("validate", 1),
        ("publish", 0),
        ("publish", 1),
    ]
    assert all(t.output for t in repaired.tasks), "every latest attempt's output was fetched"
    original, repair = repaired.repairs
    assert (original.kind, original.repair_id, original.result_state) == ("ORIGINAL", None, "FAILED")
    assert original.tasks == ("ingest", "validate", "publish")
    assert repair.kind == "REPAIR" and repair.repair_id and repair.result_state == "SUCCESS"
    assert repair.tasks == ("validate", "publish") and repair.start_time >= original.end_time

    (sent,) = [r.body for r in requests_to(sandbox, "/jobs/runs/repair")]
    assert sent["run_id"] == failed.run_id and sent["job_parameters"] == {"strict": "false"}
    assert sent["rerun_all_failed_tasks"] is True and sent["rerun_dependent_tasks"] is True
    assert sent["idempotency_token"] == repaired.idempotency_token and "latest_repair_id" not in sent
    assert (
        seen and seen[-1] is repaired and not seen[0].finished
    )  # watched like a run, the last poll included
    assert "repair" in repaired.summary_text() and "attempt 2" in repaired.summary_text()


def test_a_second_repair_names_the_latest_one(sandbox_client, sandbox, failed):
    again = repair_run(sandbox_client, failed.run_id, job_parameters={"strict": "true"})
    assert not again.ok and len(again.repairs) == 2
    fixed = repair_run(sandbox_client, again, job_parameters={"strict": "false"})
    assert fixed.ok and [r.kind for r in fixed.repairs] == ["ORIGINAL", "REPAIR", "REPAIR"]
    first, second = (r.body for r in requests_to(sandbox, "/jobs/runs/repair"))
    assert "latest_repair_id" not in first
    assert second["latest_repair_id"] == again.repairs[-1].repair_id
    assert fixed.tasks[1].attempt_number == 2


def test_chosen_tasks_and_their_dependents(sandbox_client, sandbox, failed):
    only_validate = repair_run(sandbox_client, failed, ["validate"], job_parameters={"strict": "false"})
    assert only_validate.repairs[-1].tasks == ("validate",)
    assert {t.key: t.result_state for t in only_validate.tasks}["publish"] == "UPSTREAM_FAILED"
    assert not only_validate.ok
    both = repair_run(sandbox_client, only_validate, "validate", rerun_dependents=True)
    assert both.ok and both.repairs[-1].tasks == ("validate", "publish")
    body = requests_to(sandbox, "/jobs/runs/repair")[-1].body
    assert body["rerun_tasks"] == ["validate"] and body["rerun_dependent_tasks"] is True


def test_a_lost_answer_is_retried_as_the_same_repair(sandbox_client, sandbox, failed):
    sandbox.inject("jobs/runs/repair", "drop_after")  # processed, then the connection closes
    repaired = repair_run(sandbox_client, failed, job_parameters={"strict": "false"})
    assert repaired.ok and len(repaired.repairs) == 2, "one repair, not two"
    tokens = {r.body["idempotency_token"] for r in requests_to(sandbox, "/jobs/runs/repair")}
    assert len(requests_to(sandbox, "/jobs/runs/repair")) == 2 and len(tokens) == 1


def test_a_repair_that_never_gets_an_answer_names_the_run_and_the_token(sandbox_client, sandbox, failed):
    sandbox.inject("jobs/runs/repair", "drop", count=50)
    with pytest.raises(TransportError) as info:
        repair_run(sandbox_client, failed, idempotency_token="fix-1", job_parameters={"strict": "false"})
    error = info.value
    assert error.run_id == failed.run_id and error.idempotency_token == "fix-1"
    assert f"the repair of run {failed.run_id} may have started" in str(error)
    assert "idempotency token 'fix-1'" in str(error)
    assert "--idempotency-token fix-1" in error.render(NOTEBOOK)


def test_result_repair_takes_the_client(sandbox_client, failed):
    repaired = failed.repair(sandbox_client, job_parameters={"strict": "false"})
    assert repaired.ok and repaired.repairs[-1].tasks == ("validate", "publish")


@pytest.mark.parametrize(
    ("what", "tasks", "words"),
    [
        (
            "an unknown task, with the close name",
            ["valdate"],
            "has no task 'valdate': did you mean 'validate'?",
        ),
        ("an unknown task, nothing close", ["zzz"], "its tasks are ingest, validate, publish."),
        ("no task at all", [], "tasks names no task"),
        ("tasks as a number", [3], "as strings"),
    ],
)
def test_repairs_judged_before_anything_is_sent(sandbox_client, sandbox, failed, what, tasks, words):
    sandbox.clear_requests()
    with pytest.raises(InvalidInput) as info:
        repair_run(sandbox_client, failed, tasks)
    assert words in str(info.value)
    assert requests_to(sandbox, "/jobs/runs/repair") == []


def test_a_succeeded_or_active_run_is_not_repaired(sandbox_client, sandbox):
    good = run_job_and_wait(sandbox_client, "daily-sales-report")
    with pytest.raises(InvalidInput, match=rf"Run {good.run_id} succeeded \(SUCCESS\), so there is nothing"):
        repair_run(sandbox_client, good)
    sandbox.add_job("long-one", duration=600)
    going = start_run(sandbox_client, "long-one")
    with pytest.raises(InvalidInput, match=rf"Run {going.run_id} is still \w+, and only an ended run"):
        repair_run(sandbox_client, going.run_id)
    assert requests_to(sandbox, "/jobs/runs/repair") == []


# -- a subset of tasks -------------------------------------------------------------------------------------


def test_only_runs_just_those_tasks(sandbox_client, sandbox):
    result = run_job_and_wait(sandbox_client, "etl-pipeline", only="ingest,transform")
    assert result.ok
    states = {t.key: t.result_state for t in result.tasks}
    assert states["ingest"] == states["transform"] == "SUCCESS" and states["publish"] == "EXCLUDED"
    (body,) = [r.body for r in requests_to(sandbox, "/jobs/run-now")]
    assert body["only"] == ["ingest", "transform"]


def test_only_with_a_task_the_job_lacks_sends_no_launch(sandbox_client, sandbox):
    with pytest.raises(InvalidInput, match=r"has no task 'transfrom': did you mean 'transform'\?"):
        run_job_and_wait(sandbox_client, "etl-pipeline", only=["ingest", "transfrom+"])
    assert requests_to(sandbox, "/jobs/run-now") == []


# -- a run already going -----------------------------------------------------------------------------------


@pytest.fixture
def going(sandbox, sandbox_client) -> RunResult:
    sandbox.add_job("long-one", duration=600)
    run = start_run(sandbox_client, "long-one")
    sandbox.clear_requests()
    return run


def test_if_running_wait_watches_the_run_going(sandbox_client, sandbox, going):
    notices: list[str] = []
    result = run_job_and_wait(sandbox_client, "long-one", if_running="wait", on_notice=notices.append)
    assert result.run_id == going.run_id and result.ok
    assert requests_to(sandbox, "/jobs/run-now") == []
    assert notices == [
        f"Job {going.job_id} (long-one) is already running as run {going.run_id}: watching it instead of starting another."
    ]


def test_if_running_cancel_cancels_it_then_launches(sandbox_client, sandbox, going):
    notices: list[str] = []
    result = run_job_and_wait(sandbox_client, "long-one", if_running="cancel", on_notice=notices.append)
    assert result.run_id != going.run_id and result.ok
    assert wait_for_run(sandbox_client, going.run_id).result_state == "CANCELED"
    (cancel,) = [r.body for r in requests_to(sandbox, "/jobs/runs/cancel-all")]
    assert cancel == {"job_id": going.job_id}
    assert len(requests_to(sandbox, "/jobs/run-now")) == 1
    assert notices[0].startswith(f"Cancelled the run of job {going.job_id} (long-one) going ({going.run_id})")


def test_if_running_with_nothing_going_launches(sandbox_client, sandbox):
    notices: list[str] = []
    result = run_job_and_wait(
        sandbox_client, "daily-sales-report", if_running="wait", on_notice=notices.append
    )
    assert result.ok and len(requests_to(sandbox, "/jobs/run-now")) == 1
    assert notices and "launching a new one" in notices[0]


# -- 2.2 paging, for-each and condition tasks ----------------------------------------------------------------


def test_more_than_100_tasks_are_read_whole(sandbox_client, sandbox):
    assert sandbox_client.api_version == "2.2"
    job = sandbox_client.get_job(sandbox.job_id("wide-batch"))
    assert len(job["settings"]["tasks"]) == 120 and "next_page_token" not in job
    result = run_job_and_wait(sandbox_client, "wide-batch")
    assert result.ok and len(result.tasks) == 120 and len({t.key for t in result.tasks}) == 120
    assert any("page_token" in r.query for r in requests_to(sandbox, "/jobs/runs/get"))


def test_the_task_table_shows_for_each_progress_and_the_condition(sandbox_client, sandbox):
    views: list[Any] = []
    result = run_job_and_wait(
        sandbox_client,
        "regional-scoring",
        on_update=lambda r: views.append(describe(r, 0.0)),
    )
    notes = {row.key: row.note for view in views for row in view.tasks if row.note}
    going = [
        row.note
        for view in views
        for row in view.tasks
        if row.key == "score_regions" and "running" in row.note
    ]
    assert going, f"no poll saw the for-each task with active iterations: {notes}"
    total = result.tasks[0].iteration_counts["total_iterations"]
    assert describe(result, 0.0).tasks[0].note == f"{total} iterations: {total} succeeded"
    assert notes["check_notify"] == "outcome false"
    assert "score_regions SUCCESS (" in describe(result, 0.0).line


# -- the magics, in a real InteractiveShell on the fake clock --------------------------------------------------


@pytest.fixture
def ip(clock) -> Iterator[InteractiveShell]:
    shell = fresh_shell()
    before = shell.magics_manager.registry.get("DbxMagics")
    session = NotebookSession(shell.user_ns, clock=clock, threaded=False)
    shell.register_magics(DbxMagics(shell, session))
    session.start_sandbox(clock=clock.monotonic, epoch=clock.wall())
    session.sandbox.add_job("long-one", duration=600)
    yield shell
    session.stop_sandbox()
    if before is not None:
        shell.register_magics(before)
    else:
        unload(shell)


def sandbox_of(ip: InteractiveShell) -> Any:
    return ip.magics_manager.registry["DbxMagics"].sandbox


def test_repair_from_the_magic_with_a_changed_parameter(ip, capsys):
    failed = ip.run_cell(f"%%dbx_run {CHECKS} --out res\nstrict = true\n", store_history=False)
    assert failed.error_in_exec is not None and "validate" in str(failed.error_in_exec)
    first = ip.user_ns["res"]
    assert not first.ok
    sb = sandbox_of(ip)
    sb.clear_requests()

    fixed = ip.run_cell("%%dbx_repair res\nstrict = false\n", store_history=False)
    assert fixed.success, fixed.error_in_exec
    result = ip.user_ns["res"]
    assert result is fixed.result and result.ok and result.run_id == first.run_id
    assert [(a.key, a.attempt_number) for a in result.attempts if a.key == "validate"] == [
        ("validate", 0),
        ("validate", 1),
    ]
    assert [r.kind for r in result.repairs] == ["ORIGINAL", "REPAIR"]
    assert result.repairs[-1].tasks == ("validate", "publish")
    (body,) = [r.body for r in requests_to(sb, "/jobs/runs/repair")]
    assert body["job_parameters"] == {"strict": "false"}
    assert f"Repairing run {first.run_id}: rerunning validate, publish." in capsys.readouterr().out


def test_repair_magic_by_id_publishes_under_out(ip):
    ip.run_cell(f"%%dbx_run {CHECKS} --out broken\nstrict = true\n", store_history=False)
    run_id = ip.user_ns["broken"].run_id
    res = ip.run_cell(
        f"%%dbx_repair {run_id} --tasks validate --rerun-dependents --out fixed\nstrict = false\n",
        store_history=False,
    )
    assert res.success, res.error_in_exec
    assert ip.user_ns["fixed"].ok and not ip.user_ns["broken"].ok


def test_repairing_a_succeeded_run_from_the_magic_is_one_sentence(ip):
    ip.run_cell("%dbx_run daily-sales-report --out good", store_history=False)
    good = ip.user_ns["good"]
    res = ip.run_cell("%dbx_repair good", store_history=False)
    assert f"Run {good.run_id} succeeded" in str(res.error_in_exec)
    assert ip.user_ns["good"] is good  # nothing replaced


def test_only_from_the_magic(ip):
    res = ip.run_cell("%dbx_run etl-pipeline --only ingest --out part", store_history=False)
    assert res.success, res.error_in_exec
    states = {t.key: t.result_state for t in ip.user_ns["part"].tasks}
    assert states == {"ingest": "SUCCESS", "transform": "EXCLUDED", "publish": "EXCLUDED"}


@pytest.mark.parametrize("choice", ["wait", "cancel"])
def test_if_running_from_the_magic(ip, capsys, choice):
    ip.run_cell("%dbx_run long-one --no-wait --out first", store_history=False)
    first = ip.user_ns["first"]
    capsys.readouterr()
    res = ip.run_cell(f"%dbx_run long-one --if-running {choice} --out second", store_history=False)
    assert res.success, res.error_in_exec
    second = ip.user_ns["second"]
    said = capsys.readouterr().out
    if choice == "wait":
        assert second.run_id == first.run_id and "watching it instead of starting another" in said
    else:
        assert second.run_id != first.run_id and f"Cancelled the run of job {first.job_id}" in said
        res = ip.run_cell(f"%dbx_wait {first.run_id} --out first", store_history=False)
        assert ip.user_ns["first"].result_state == "CANCELED"


# -- the command line ---------------------------------------------------------------------------------------


def test_the_command_line_runs_a_subset_and_repairs(monkeypatch, capsys, tmp_path):
    from dbx_magic.__main__ import main
    from dbx_magic.sandbox import Sandbox

    # The command line waits on the real clock: a fast sandbox on it.
    with Sandbox(speed=50) as sb:
        monkeypatch.setenv("DATABRICKS_HOST", sb.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", sb.token)
        monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "absent"))
        assert main(["run", CHECKS, "--only", "ingest"]) == 0
        assert "task validate: EXCLUDED" in capsys.readouterr().out
        assert main(["run", CHECKS, "-p", "strict=true"]) == 1
        run_id = sb.run_ids(CHECKS)[-1]
        capsys.readouterr()
        assert main(["repair", str(run_id), "-p", "strict=false"]) == 0
        out = capsys.readouterr().out
        assert f"Repairing run {run_id}: rerunning validate, publish." in out
        assert f"RunResult: run {run_id} of '{CHECKS}' SUCCESS" in out and "repair " in out
        with pytest.raises(SystemExit):
            main(["run", CHECKS, "--if-running", "later"])
        assert "--if-running 'later' is not one of new, wait, cancel" in capsys.readouterr().err


def test_text_progress_says_the_attempt(sandbox_client, failed):
    lines: list[str] = []
    progress = TextProgress(stream=_Sink(lines))
    repair_run(sandbox_client, failed, job_parameters={"strict": "false"}, on_update=progress)
    assert "validate SUCCESS (attempt 2)" in progress.lines[-1]


class _Sink:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def write(self, text: str) -> None:
        self.lines.append(text)

    def flush(self) -> None:
        pass


# -- the form ---------------------------------------------------------------------------------------------


def test_the_form_repairs_its_failed_run_with_its_parameters(sandbox_client, sandbox):
    from dbx_magic.notebook.form import RunForm

    namespace: dict[str, Any] = {}
    form = RunForm(client=sandbox_client, job=CHECKS, out="checked", namespace=namespace)
    strict = next(r for r in form.rows if r.name.value == "strict")
    strict.value.value = True  # a true/false dropdown is a checkbox in the form
    form.run()
    assert not form.wait(timeout=30).ok
    assert form.progress is not None and form.progress.repair_button.layout.display is None
    strict.value.value = False
    form.progress.repair_button.click()  # what the click does: form.repair()
    repaired = form.wait(timeout=30)
    assert repaired.ok and namespace["checked"] is repaired
    assert [r.kind for r in repaired.repairs] == ["ORIGINAL", "REPAIR"]
    (body,) = [r.body for r in requests_to(sandbox, "/jobs/runs/repair")]
    assert body["job_parameters"] == {
        "run_date": "2026-11-01",
        "strict": "false",
        "checks": "not_null,unique",
    }


def test_the_form_watches_the_run_going_when_asked(sandbox_client, sandbox, going):
    from dbx_magic.notebook.form import RunForm

    form = RunForm(client=sandbox_client, job="long-one", namespace={})
    form.if_running.value = "wait"
    form.run()
    assert form.wait().run_id == going.run_id
    assert requests_to(sandbox, "/jobs/run-now") == []


def test_a_repair_reads_only_the_outputs_of_the_tasks_it_reran(sandbox_client, sandbox, failed):
    assert failed.tasks[0].output is not None  # ingest's exit value, read when the run ended
    sandbox.clear_requests()
    repaired = repair_run(sandbox_client, failed, job_parameters={"strict": "false"})
    assert repaired.ok
    read = [int(r.query["run_id"]) for r in requests_to(sandbox, "runs/get-output")]
    rerun = {t.run_id for t in repaired.tasks if t.attempt_number == 1}
    assert sorted(read) == sorted(rerun)  # each rerun task once; ingest's output is kept, not read again
    assert repaired.tasks[0].output == failed.tasks[0].output
