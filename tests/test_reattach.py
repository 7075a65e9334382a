"""After a restart: ``%load_ext dbx_magic`` watches again this notebook's runs from the run journal,
publishes those that ended meanwhile, lists a launch whose answer never came with its token, and leaves
alone a name the new kernel bound; ``%dbx_runs --history`` and ``--resend``.

In one process: the "restart" is ``%unload_ext`` (the kernel's shutdown) and a namespace reset, on a
sandbox on real time (its never-ending job is ended by cancelling it). The kill of a real kernel is in
test_restart_notebook.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import RunHandle, RunResult
from dbx_magic.notebook.magics import load, unload
from dbx_magic.run.journal import Journal

from .conftest import until

NOTEBOOK = "/work/notebooks/report.ipynb"


@pytest.fixture
def workspace(make_sandbox: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Any:
    sandbox = make_sandbox(clock=time.monotonic, epoch=time.time(), speed=20)
    sandbox.add_job("forever", script=[("RUNNING", None)])
    monkeypatch.setenv("DATABRICKS_HOST", sandbox.url)
    monkeypatch.setenv("DATABRICKS_TOKEN", sandbox.token)
    monkeypatch.delenv("DATABRICKS_CONFIG_PROFILE", raising=False)
    return sandbox


@pytest.fixture
def kernel(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], InteractiveShell]]:
    """``kernel()`` is a kernel (re)started on the notebook: a fresh namespace, then ``%load_ext``
    (what it prints is what the test reads next)."""
    shell = InteractiveShell.instance()

    def start() -> InteractiveShell:
        unload(shell)
        shell.reset(new_session=False)
        capsys.readouterr()
        shell.user_ns["__vsc_ipynb_file__"] = NOTEBOOK
        load(shell)
        return shell

    yield start
    unload(shell)


def cancel(sandbox: Any, run_id: int) -> None:
    import requests

    requests.post(
        f"{sandbox.url}/api/2.2/jobs/runs/cancel",
        json={"run_id": run_id},
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=10,
    ).raise_for_status()


def state(sandbox: Any, run_id: int) -> str:
    import requests

    got = requests.get(
        f"{sandbox.url}/api/2.2/jobs/runs/get",
        params={"run_id": run_id},
        headers={"Authorization": f"Bearer {sandbox.token}"},
        timeout=10,
    )
    return str(got.json()["state"]["life_cycle_state"])


def launches(sandbox: Any) -> int:
    return sum(1 for r in sandbox.requests if r.path.endswith("/jobs/run-now"))


def test_load_ext_watches_the_runs_that_were_going_and_their_names_get_the_results(workspace, kernel, capsys):
    ip = kernel()
    assert ip.run_cell("%dbx_run forever --background --out longrun").success
    assert ip.run_cell("%dbx_run forever --no-wait --out nw").success
    ids = {name: ip.user_ns[name].run_id for name in ("longrun", "nw")}
    capsys.readouterr()

    ip = kernel()  # the restart

    line = capsys.readouterr().out
    assert line.count("\n") == 1, line
    assert line.startswith("2 runs of this notebook were going when its kernel stopped: ")
    for name, run_id in ids.items():
        assert f"`{name}` (run {run_id}, " in line
    assert "their names get the results when they end" in line
    assert isinstance(ip.user_ns["longrun"], RunHandle)
    for run_id in ids.values():
        cancel(workspace, run_id)
    until(lambda: all(isinstance(ip.user_ns[n], RunResult) and ip.user_ns[n].finished for n in ids))
    assert {n: (ip.user_ns[n].run_id, ip.user_ns[n].result_state) for n in ids} == {
        n: (i, "CANCELED") for n, i in ids.items()
    }
    assert launches(workspace) == 2  # nothing launched twice
    capsys.readouterr()
    ip.run_line_magic("dbx_runs", "")
    board = capsys.readouterr().out
    rows = [line.split()[1] for line in board.splitlines() if line.startswith("forever ")]
    assert sorted(rows) == sorted(str(i) for i in ids.values()), board  # each run listed once
    assert not Journal().entries(unfinished=True)


def test_a_run_that_ended_while_no_kernel_was_there_is_published_at_once(workspace, kernel, capsys):
    ip = kernel()
    assert ip.run_cell("%dbx_run forever --background --out gone").success
    run_id = ip.user_ns["gone"].run_id
    unload(ip)  # the kernel stops
    cancel(workspace, run_id)
    until(lambda: state(workspace, run_id) == "TERMINATED")

    ip = kernel()

    line = capsys.readouterr().out
    assert f"Ended while no kernel watched: `gone` (run {run_id}, CANCELED), published now." in line
    assert isinstance(ip.user_ns["gone"], RunResult) and ip.user_ns["gone"].result_state == "CANCELED"


def test_a_name_the_new_kernel_bound_is_left_alone(workspace, kernel, capsys):
    ip = kernel()
    assert ip.run_cell("%dbx_run forever --background --out mine").success
    run_id = ip.user_ns["mine"].run_id
    unload(ip)
    ip.reset(new_session=False)
    ip.user_ns["__vsc_ipynb_file__"] = NOTEBOOK
    ip.user_ns["mine"] = "bound here"
    capsys.readouterr()
    load(ip)
    line = capsys.readouterr().out
    assert f"run {run_id} (" in line and "`mine` was bound again here" in line
    cancel(workspace, run_id)
    until(lambda: not Journal().entries(unfinished=True))
    assert ip.user_ns["mine"] == "bound here"
    unload(ip)


def test_reattaching_can_be_turned_off(workspace, kernel, capsys, monkeypatch):
    ip = kernel()
    assert ip.run_cell("%dbx_run forever --background --out longrun").success
    capsys.readouterr()
    monkeypatch.setenv("DBX_MAGIC_REATTACH", "0")
    ip = kernel()
    assert capsys.readouterr().out == "" and "longrun" not in ip.user_ns


def test_a_launch_whose_answer_never_came_is_listed_with_its_token_and_can_be_resent(
    workspace, kernel, capsys
):
    import requests

    # What a kernel killed while run-now was on its way leaves: the journal's row, and the run it started.
    job = workspace.job_id("daily-sales-report")
    Journal(notebook=NOTEBOOK).launching(
        workspace.url,
        job_id=job,
        job_name="daily-sales-report",
        token="lost-answer-7",
        params={"date": "2026-11-02"},
    )
    Journal().named(workspace.url, 0, "lost")  # (no run id yet: no name either)
    requests.post(
        f"{workspace.url}/api/2.2/jobs/run-now",
        json={"job_id": job, "idempotency_token": "lost-answer-7", "notebook_params": {"date": "2026-11-02"}},
        headers={"Authorization": f"Bearer {workspace.token}"},
        timeout=10,
    ).raise_for_status()
    started = workspace.run_ids("daily-sales-report")

    ip = kernel()
    line = capsys.readouterr().out
    assert "whose answer never came (idempotency token lost-answer-7)" in line
    assert "`%dbx_runs --resend lost-answer-7`" in line
    ip.run_line_magic("dbx_runs", "--resend lost-answer-7")
    until(lambda: isinstance(ip.user_ns.get("dbx_result"), RunResult) and ip.user_ns["dbx_result"].finished)
    assert ip.user_ns["dbx_result"].ok and ip.user_ns["dbx_result"].run_id == started[-1]
    assert workspace.run_ids("daily-sales-report") == started  # found, not started again
    until(lambda: not Journal().entries(unfinished=True))  # its end is written from the watcher's thread


def test_history_lists_this_notebooks_runs_and_forget_clears_them(workspace, kernel, capsys):
    ip = kernel()
    assert ip.run_cell("%dbx_run daily-sales-report --out a").success
    Journal(notebook="/other.ipynb").watching(workspace.url, 99999)
    capsys.readouterr()
    ip.run_line_magic("dbx_runs", "--history --since 7d")
    text = capsys.readouterr().out
    assert text.startswith("1 run of this notebook, newest first:\n")
    assert f"run {ip.user_ns['a'].run_id} of daily-sales-report: SUCCESS" in text and "in `a`" in text
    ip.run_line_magic("dbx_runs", "--history --all")
    assert capsys.readouterr().out.startswith("2 runs of every notebook")
    ip.run_line_magic("dbx_runs", "--history --job daily-sales-report")
    assert capsys.readouterr().out.startswith("1 run of this notebook")
    ip.run_line_magic("dbx_runs", "--history --forget")
    assert "Forgot 1 journal entry." in capsys.readouterr().out
    assert [e.run_id for e in Journal().entries()] == [99999]
