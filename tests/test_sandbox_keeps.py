"""The sandbox keeps its history: ``%dbx_sandbox`` again changes the speed only, ``--fresh`` starts a
new one whose ids go on, and ``Sandbox(data=DIR)`` / ``python -m dbx_magic sandbox --data DIR`` keep
the runs on disk for a sandbox started again there."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import DatabricksClient, RunResult
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock


@pytest.fixture
def ip(clock: ManualClock):
    shell = InteractiveShell.instance()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    yield shell
    unload(shell)


def test_dbx_sandbox_again_changes_the_speed_and_keeps_the_runs(ip, capsys):
    ip.run_line_magic("dbx_sandbox", "--speed 10")
    sandbox = ip.magics_manager.registry["DbxMagics"].sandbox
    for name in ("a", "b"):
        assert ip.run_cell(f"%dbx_run daily-sales-report --out {name}").success
    bg = ip.run_cell("%dbx_run daily-sales-report --out bg --background")
    assert bg.success
    before = sorted(h.run_id for h in ip.magics_manager.registry["DbxMagics"].session.handles)
    capsys.readouterr()

    ip.run_line_magic("dbx_sandbox", "--speed 1")

    assert "kept with its runs" in capsys.readouterr().out
    assert ip.magics_manager.registry["DbxMagics"].sandbox is sandbox
    after = sorted(h.run_id for h in ip.magics_manager.registry["DbxMagics"].session.handles)
    assert after == before  # the board keeps its runs
    assert ip.run_cell("%dbx_run daily-sales-report --out c").success
    ids = [ip.user_ns[n].run_id for n in ("a", "b", "c")]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert ip.user_ns["c"].run_id > max(before)
    # the runs started at speed 10 kept their timelines: a and b still read as the successes they were
    client = DatabricksClient(sandbox.url, sandbox.token)
    assert all(client.get_run(ip.user_ns[n].run_id)["state"]["result_state"] == "SUCCESS" for n in "ab")


def test_fresh_starts_a_new_sandbox_whose_run_ids_go_on(ip):
    ip.run_line_magic("dbx_sandbox", "")
    old = ip.magics_manager.registry["DbxMagics"].sandbox
    assert ip.run_cell("%dbx_run daily-sales-report --out a").success
    ip.run_line_magic("dbx_sandbox", "--fresh")
    new = ip.magics_manager.registry["DbxMagics"].sandbox
    assert new is not old
    assert ip.run_cell("%dbx_run daily-sales-report --out b").success
    assert isinstance(ip.user_ns["b"], RunResult)
    assert ip.user_ns["b"].run_id > ip.user_ns["a"].run_id


def test_a_sandbox_started_again_on_its_data_has_its_runs_and_goes_on(tmp_path: Path, clock: ManualClock):
    data = tmp_path / "sb"
    first = Sandbox(data=data, clock=clock.monotonic, epoch=clock.wall(), speed=5).start()
    client = DatabricksClient(first.url, first.token, clock=clock)
    job = first.job_id("daily-sales-report")
    done = client.run_now(job, notebook_params={"date": "2026-11-01"}, idempotency_token="tok-1")["run_id"]
    going = client.run_now(first.job_id("etl-pipeline"))["run_id"]
    clock.advance(1)
    client.cancel_run(going)
    clock.advance(3600)
    seen = {rid: client.get_run(rid)["state"] for rid in (done, going)}
    first.stop()

    second = Sandbox(data=data, clock=clock.monotonic, epoch=clock.wall()).start()
    try:
        assert second.token == first.token
        client = DatabricksClient(second.url, second.token, clock=clock)
        assert {rid: client.get_run(rid)["state"] for rid in (done, going)} == seen
        again = client.run_now(job, notebook_params={"date": "2026-11-01"}, idempotency_token="tok-1")
        assert again["run_id"] == done  # the token still finds its run: nothing is launched twice
        new = client.run_now(job)["run_id"]
        assert new > going
    finally:
        second.stop()
    for name in ("token", "changes.jsonl"):
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600
    assert first.token not in (data / "changes.jsonl").read_text()


def test_the_cli_sandbox_keeps_its_runs_in_its_data_directory(tmp_path: Path):
    data = tmp_path / "sb"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    def serve() -> tuple[subprocess.Popen[str], str, str]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dbx_magic",
                "sandbox",
                "--port",
                "0",
                "--speed",
                "50",
                "--data",
                str(data),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        host = lines[1].strip().split("=", 1)[1]
        token = lines[2].strip().split("=", 1)[1]
        return proc, host, token

    proc, host, token = serve()
    try:
        auth = {"Authorization": f"Bearer {token}"}
        listed = requests.get(
            f"{host}/api/2.2/jobs/list", params={"name": "daily-sales-report"}, headers=auth, timeout=10
        )
        job = listed.json()["jobs"][0]["job_id"]
        body = {"job_id": job, "idempotency_token": "cli-1"}
        run_id = requests.post(f"{host}/api/2.2/jobs/run-now", json=body, headers=auth, timeout=10).json()[
            "run_id"
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    proc, host, again = serve()
    try:
        assert again == token
        auth = {"Authorization": f"Bearer {token}"}
        got = requests.get(
            f"{host}/api/2.2/jobs/runs/get", params={"run_id": run_id}, headers=auth, timeout=10
        )
        assert got.json()["run_id"] == run_id
        rerun = requests.post(f"{host}/api/2.2/jobs/run-now", json=body, headers=auth, timeout=10).json()
        assert rerun["run_id"] == run_id
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
