"""The run journal: every run is written before its launch is sent, when the answer comes and when it
ends; several processes write at once; a journal that cannot be used says so once and runs go on; no
credential or secret value is ever in the file, which is the user's alone."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dbx_magic
from dbx_magic import DatabricksClient, repair_run, run_job_and_wait
from dbx_magic.api.client import RetryPolicy
from dbx_magic.errors import BadRequest, InvalidInput, TransportError
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.run.journal import LAUNCHING, Journal, default_path
from dbx_magic.testing import ManualClock, stepped_watcher

from .conftest import fresh_shell

PAT = "dapi" + "0123456789abcdef" * 2
SECRET = "hunter2-very-secret-value"


@pytest.fixture
def ip(clock: ManualClock):
    shell = fresh_shell()
    session = NotebookSession(shell.user_ns, clock=clock, threaded=False, notebook="/work/report.ipynb")
    shell.register_magics(DbxMagics(shell, session))
    shell.run_line_magic("dbx_sandbox", "")
    yield shell
    unload(shell)


def journal_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.iterdir() if p.name.startswith("journal"))


def test_a_magic_run_is_journaled_with_its_token_names_state_and_notebook(ip, dbx_magic_home):
    assert ip.run_cell("%%dbx_run daily-sales-report --out res\ndate = 2026-11-01\n").success
    res = ip.user_ns["res"]
    (entry,) = Journal().entries()
    assert (entry.run_id, entry.job_id, entry.job_name) == (res.run_id, res.job_id, "daily-sales-report")
    assert entry.idempotency_token == res.idempotency_token
    assert entry.parameters == {"date": "2026-11-01"}
    assert entry.notebook == "/work/report.ipynb" and entry.names == ("res",)
    assert entry.ended and entry.result_state == "SUCCESS" and entry.elapsed and entry.elapsed > 0
    assert entry.host == ip.magics_manager.registry["DbxMagics"].sandbox.url
    assert entry.run_page_url == res.run_page_url
    assert default_path() == dbx_magic_home / "journal.sqlite3"


def test_no_credential_or_secret_value_is_in_the_journal_and_its_files_are_the_users(
    sandbox, clock, dbx_magic_home
):
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    journal = Journal(secrets={SECRET}, clock=clock.wall)
    job = sandbox.add_job("takes-anything", parameters={"a": "", "b": "", "note": ""})
    run_job_and_wait(
        client,
        job,
        job_parameters={"a": SECRET, "b": PAT, "note": f"x {SECRET} y"},
        watcher=stepped_watcher(clock, journal=journal),
    )
    data = journal_bytes(dbx_magic_home)
    for secret in (sandbox.token, SECRET, PAT):
        assert secret.encode() not in data
    (entry,) = journal.entries()
    assert entry.parameters == {"a": "***", "b": "***", "note": "x *** y"}
    assert stat.S_IMODE(dbx_magic_home.stat().st_mode) & 0o077 == 0 or dbx_magic_home.name.startswith(
        "dbx-home"
    )
    for path in dbx_magic_home.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_the_journal_directory_is_made_for_the_user_alone(tmp_path, monkeypatch):
    home = tmp_path / "new" / "home"
    monkeypatch.setenv("DBX_MAGIC_HOME", str(home))
    Journal().watching("http://h", 1)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "journal.sqlite3").stat().st_mode) == 0o600


def test_a_launch_whose_answer_never_came_keeps_its_token_and_a_refused_one_goes(make_sandbox, clock):
    sandbox = make_sandbox()
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock, retry=RetryPolicy(jitter=0.0))
    sandbox.inject("jobs/run-now", "drop", count=1000)
    with pytest.raises(TransportError) as lost:
        run_job_and_wait(client, "daily-sales-report", idempotency_token="lost-answer-1")
    (entry,) = Journal().entries()
    assert entry.state == LAUNCHING and not entry.answered and entry.idempotency_token == "lost-answer-1"
    assert "lost-answer-1" in str(lost.value)

    sandbox = make_sandbox()
    other = DatabricksClient(sandbox.url, sandbox.token, clock=clock, retry=RetryPolicy(jitter=0.0))
    sandbox.inject("jobs/run-now", "status", status=400, count=1)
    with pytest.raises(BadRequest):
        run_job_and_wait(other, "etl-pipeline", idempotency_token="refused-1")
    assert [e.idempotency_token for e in Journal().entries()] == ["lost-answer-1"]


def test_entries_older_than_90_days_are_dropped_when_the_journal_opens(tmp_path):
    clock = ManualClock()
    path = tmp_path / "j.sqlite3"
    Journal(path, clock=clock.wall).watching("http://h", 1)
    clock.advance(89 * 86400)
    Journal(path, clock=clock.wall).watching("http://h", 2)
    clock.advance(2 * 86400)
    assert [e.run_id for e in Journal(path, clock=clock.wall).entries()] == [2]


def test_how_long_entries_are_kept_can_be_set(tmp_path, monkeypatch):
    clock = ManualClock()
    path = tmp_path / "j.sqlite3"
    monkeypatch.setenv("DBX_MAGIC_JOURNAL_DAYS", "7")
    Journal(path, clock=clock.wall).watching("http://h", 1)
    clock.advance(8 * 86400)
    assert Journal(path, clock=clock.wall).entries() == []


WRITER = textwrap.dedent(
    """
    import sys, time
    from dbx_magic.run.journal import Journal
    from dbx_magic.run.models import RunResult
    start, count = int(sys.argv[1]), int(sys.argv[2])
    while time.time() < float(sys.argv[3]):
        pass
    j = Journal(notebook=f"nb{start}")
    for run_id in range(start, start + count):
        j.launching("http://h", job_id=1, job_name="j", token=f"t{run_id}", params={"i": str(run_id)})
        j.launched("http://h", f"t{run_id}", run_id)
        j.ended("http://h", RunResult(job_id=1, run_id=run_id, life_cycle_state="TERMINATED",
                                      result_state="SUCCESS", finished=True))
    print(j.broken or "ok")
    """
)


def test_two_processes_writing_at_once_lose_nothing(dbx_magic_home):
    import time

    at = str(time.time() + 1.5)  # both start writing at the same instant
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(start), "150", at], stdout=subprocess.PIPE, text=True
        )
        for start in (10_000, 20_000)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert outs == ["ok", "ok"]
    entries = Journal().entries()
    assert len(entries) == 300
    assert all(e.ended and e.result_state == "SUCCESS" for e in entries)


def test_a_corrupt_journal_gives_one_warning_and_the_runs_go_on(ip, dbx_magic_home, caplog):
    (dbx_magic_home / "journal.sqlite3").write_bytes(b"this is not a database" * 100)
    caplog.set_level(logging.WARNING, logger="dbx_magic")
    for name in ("a", "b"):
        assert ip.run_cell(f"%dbx_run daily-sales-report --out {name}").success
        assert ip.user_ns[name].ok
    said = [r for r in caplog.records if "journal" in r.getMessage()]
    assert len(said) == 1 and "runs go on" in said[0].getMessage()


def test_a_journal_that_cannot_be_written_gives_one_warning_and_the_runs_go_on(
    clock, tmp_path, monkeypatch, caplog
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DBX_MAGIC_HOME", str(blocker / "home"))  # cannot be made: a read-only place
    shell = fresh_shell()
    shell.register_magics(
        DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False, notebook="/n.ipynb"))
    )
    caplog.set_level(logging.WARNING, logger="dbx_magic")
    try:
        shell.run_line_magic("dbx_sandbox", "")
        for name in ("a", "b"):
            assert shell.run_cell(f"%dbx_run daily-sales-report --out {name} --background").success
        assert shell.run_cell("%dbx_wait a").success and shell.run_cell("%dbx_wait b").success
        assert shell.user_ns["a"].ok and shell.user_ns["b"].ok
    finally:
        unload(shell)
    assert len([r for r in caplog.records if "journal" in r.getMessage()]) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_journal_gives_one_warning(dbx_magic_home, caplog):
    Journal().watching("http://h", 1)
    for path in dbx_magic_home.iterdir():
        path.chmod(0o400)
    dbx_magic_home.chmod(0o500)
    caplog.set_level(logging.WARNING, logger="dbx_magic")
    try:
        journal = Journal()
        journal.watching("http://h", 2)
        journal.watching("http://h", 3)
    finally:
        dbx_magic_home.chmod(0o700)
    assert len([r for r in caplog.records if "journal" in r.getMessage()]) == 1


def test_history_in_python_reopens_a_past_run_from_its_workspace(sandbox, clock, monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", sandbox.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", sandbox.token)
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    journal = Journal(clock=clock.wall)  # the journal on the test's clock
    watcher = stepped_watcher(clock, journal=journal)
    first = run_job_and_wait(client, "daily-sales-report", {"date": "2026-11-01"}, watcher=watcher)
    clock.advance(8 * 86400)
    run_job_and_wait(client, "etl-pipeline", watcher=watcher)
    entries = dbx_magic.history(journal=journal)
    assert [e.job_name for e in entries] == ["etl-pipeline", "daily-sales-report"]
    assert [e.job_name for e in dbx_magic.history(since="7d", journal=journal)] == ["etl-pipeline"]
    (only,) = dbx_magic.history("daily-sales-report", journal=journal)
    again = only.result()
    assert (again.run_id, again.result_state, again.output) == (first.run_id, "SUCCESS", first.output)
    with pytest.raises(InvalidInput):
        dbx_magic.history(since="a week")


def test_the_cli_lists_and_forgets_the_journal(sandbox, clock, dbx_magic_home):
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    journal = Journal(notebook="/nb/a.ipynb", clock=clock.wall)
    result = run_job_and_wait(client, "daily-sales-report", watcher=stepped_watcher(clock, journal=journal))
    env = {**os.environ, "DBX_MAGIC_HOME": str(dbx_magic_home)}
    shown = subprocess.run(
        [sys.executable, "-m", "dbx_magic", "runs", "--job", "daily-sales-report"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert f"run {result.run_id} of daily-sales-report: SUCCESS" in shown and "(/nb/a.ipynb)" in shown
    forgot = subprocess.run(
        [sys.executable, "-m", "dbx_magic", "runs", "--forget"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    assert forgot.startswith("Forgot 1 journal entry")
    assert Journal().entries() == []


def test_a_repair_makes_the_run_unfinished_again_until_its_new_end(sandbox, clock):
    client = DatabricksClient(sandbox.url, sandbox.token, clock=clock)
    journal = Journal(clock=clock.wall)
    watcher = stepped_watcher(clock, journal=journal)
    failed = run_job_and_wait(client, "flaky-ingest", {"fail": "true"}, watcher=watcher)
    run_id = failed.run_id
    assert [(e.run_id, e.result_state) for e in journal.entries()] == [(run_id, "FAILED")]
    seen: list[bool] = []
    repaired = repair_run(
        client,
        run_id,
        notebook_params={"fail": "false"},
        watcher=watcher,
        on_update=lambda r: seen.append(bool(journal.entries(unfinished=True))),
    )
    assert repaired.ok and seen[0]  # while the repair ran, the run was unfinished in the journal
    assert [(e.run_id, e.result_state) for e in journal.entries()] == [(run_id, "SUCCESS")]
