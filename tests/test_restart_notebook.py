"""Runs outlive the kernel, end to end: a standalone sandbox (``python -m dbx_magic sandbox --data``),
kernel A starts runs and is killed (SIGKILL: no shutdown hook runs) or shut down, kernel B opens the
same notebook and ``%load_ext dbx_magic`` watches the runs again; their names get the results."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests
from nbclient import NotebookClient

from .conftest import ipc_kernel

# The sample jobs' runs take 10-11 s at this speed: long enough to outlive kernel A and B's start even on a
# loaded machine. A test whose runs need only outlive kernel A's shutdown asks for a faster one.
SPEED = "0.3"


@pytest.fixture
def workspace(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    data = tmp_path / "sandbox"
    speed = getattr(request, "param", SPEED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbx_magic", "sandbox", "--port", "0", "--speed", speed, "--data", str(data)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    host, token = (line.strip().split("=", 1)[1] for line in lines[1:3])
    yield {"host": host, "token": token, "data": data, "notebook": str(tmp_path / "report.ipynb")}
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)


def kernel(workspace: dict[str, Any], cells: list[str], name: str) -> NotebookClient:
    """A kernel (over Unix sockets, ``name`` its own directory) that will run these cells."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    where = workspace["data"].parent / name
    where.mkdir()
    return NotebookClient(nb, km=ipc_kernel(where), timeout=120, allow_errors=True)


@contextlib.contextmanager
def running(client: NotebookClient, workspace: dict[str, Any]) -> Iterator[None]:
    """The client's kernel, started with the workspace's environment and shut down at the end as
    Jupyter shuts a kernel down (its hooks run), unless the test killed it first."""
    with client.setup_kernel(env=env(workspace)):
        try:
            yield
        finally:
            if client.km.is_alive():
                client.km.shutdown_kernel()


def env(workspace: dict[str, Any]) -> dict[str, str]:
    """The kernel's environment: the workspace, and the notebook's path as Jupyter server gives it."""
    return {
        **os.environ,
        "DATABRICKS_HOST": workspace["host"],
        "DATABRICKS_TOKEN": workspace["token"],
        "JPY_SESSION_NAME": workspace["notebook"],
    }


def run_cells(client: NotebookClient) -> list[str]:
    """Execute every cell in the client's kernel; return each cell's text (streams and text/plain)."""
    out = []
    for index, cell in enumerate(client.nb.cells):
        client.execute_cell(cell, index)
        out.append(
            "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)
        )
    return out


def state(workspace: dict[str, Any], run_id: int) -> dict[str, Any]:
    got = requests.get(
        f"{workspace['host']}/api/2.2/jobs/runs/get",
        params={"run_id": run_id},
        headers={"Authorization": f"Bearer {workspace['token']}"},
        timeout=10,
    )
    return dict(got.json()["state"])


def launches(workspace: dict[str, Any]) -> int:
    changes = (workspace["data"] / "changes.jsonl").read_text().splitlines()
    return sum(1 for line in changes if json.loads(line)["op"] == "run_now")


A_CELLS = [
    "%load_ext dbx_magic",
    "%dbx_run daily-sales-report --background --out longrun",
    "%dbx_run flaky-ingest --no-wait --out nw",  # another job: a second run of the first would queue
    "print(longrun.run_id, nw.run_id)",
]
B_CELLS = [
    "%load_ext dbx_magic",
    "%dbx_wait longrun",
    "%dbx_wait nw",
    "print(type(longrun).__name__, longrun.result_state, type(nw).__name__, nw.result_state)",
    "%dbx_runs",
]


def test_a_killed_kernels_runs_are_watched_again_and_their_names_get_the_results(workspace):
    a = kernel(workspace, A_CELLS, "a")
    with running(a, workspace):
        texts = run_cells(a)
        long_id, nw_id = (int(x) for x in texts[3].split())
        pid = a.km.provisioner.process.pid  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)  # no atexit, no shutdown hook
        os.waitpid(pid, 0)
    assert not state(workspace, long_id)["life_cycle_state"].startswith("TERMINATED")

    b = kernel(workspace, B_CELLS, "b")
    with running(b, workspace):
        texts = run_cells(b)
    line = texts[0].strip()
    assert line.startswith("2 runs of this notebook were going when its kernel stopped: "), line
    assert f"`longrun` (run {long_id}, " in line and f"`nw` (run {nw_id}, " in line
    assert line.endswith("their names get the results when they end.") and "\n" not in line
    assert "RunResult SUCCESS RunResult SUCCESS" in texts[3]
    rows = [
        r.split()[1] for r in texts[4].splitlines() if r.startswith(("daily-sales-report ", "flaky-ingest "))
    ]
    assert sorted(rows) == sorted([str(long_id), str(nw_id)])  # listed once each
    assert launches(workspace) == 2  # no run was launched twice


@pytest.mark.parametrize("workspace", ["0.6"], indirect=True)  # the run (6 s) need only outlive A's shutdown
def test_after_a_graceful_restart_a_run_that_ended_meanwhile_is_published_at_once(workspace):
    a = kernel(workspace, [*A_CELLS[:2], "print(longrun.run_id)"], "a")
    with running(a, workspace):
        texts = run_cells(a)
    run_id = int(texts[2])  # the kernel was shut down as Jupyter does it (its hooks ran)
    deadline = time.monotonic() + 60
    while state(workspace, run_id).get("result_state") is None:  # ends while no kernel is there
        assert time.monotonic() < deadline
        time.sleep(0.2)

    b = kernel(workspace, ["%load_ext dbx_magic", "print(type(longrun).__name__, longrun.result_state)"], "b")
    with running(b, workspace):
        texts = run_cells(b)
    assert f"Ended while no kernel watched: `longrun` (run {run_id}, SUCCESS), published now." in texts[0]
    assert "RunResult SUCCESS" in texts[1]
    assert launches(workspace) == 1
