"""The command line as a process: honest answers about runs that ended, its help, Ctrl-C in a terminal.

The CLI runs in a child process against the sandbox (on the test's fake clock, over loopback), so a
run is going until the test moves the clock, and ended once it has.
"""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from dbx_magic import start_run
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock


def env_for(sb: Sandbox, tmp_path: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "ARM_"))}
    env.update(
        DATABRICKS_HOST=sb.url,
        DATABRICKS_TOKEN=sb.token,
        DATABRICKS_CONFIG_FILE=str(tmp_path / "none.cfg"),
        DBX_MAGIC_HOME=str(tmp_path / "home"),
    )
    return env


def cli(sb: Sandbox, tmp_path: Any, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbx_magic", *argv],
        env=env_for(sb, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )


def sent(sb: Sandbox, endpoint: str) -> int:
    return sum(1 for r in sb.requests if r.path.endswith(endpoint))


@pytest.fixture
def ended(sandbox_client: Any, sandbox: Sandbox, clock: ManualClock) -> int:
    """A run of daily-sales-report that ended SUCCESS."""
    run_id = start_run(sandbox_client, "daily-sales-report", {"date": "2026-11-01"}).run_id
    clock.advance(600)
    sandbox.clear_requests()
    return run_id


def test_the_help_lists_each_command_once():
    out = subprocess.run(
        [sys.executable, "-m", "dbx_magic", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    for command in ("demo", "tour", "sandbox", "run", "repair", "params", "wait", "cancel"):
        assert sum(line.split()[:1] == [command] for line in out.splitlines()) == 1, (command, out)


def test_cancel_of_a_run_that_ended_says_so_and_sends_no_cancel(sandbox, ended, tmp_path):
    done = cli(sandbox, tmp_path, "cancel", str(ended))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Run {ended} already ended SUCCESS: nothing was cancelled."
    assert sent(sandbox, "runs/cancel") == 0


def test_cancel_of_a_run_going_asks_the_workspace(sandbox, sandbox_client, tmp_path):
    sandbox.add_job("slow-job", duration=600)
    run_id = start_run(sandbox_client, "slow-job").run_id
    done = cli(sandbox, tmp_path, "cancel", str(run_id))
    assert done.returncode == 0, done.stderr
    assert f"Asked the workspace to cancel run {run_id}; python -m dbx_magic wait {run_id}" in done.stdout
    assert sent(sandbox, "runs/cancel") == 1


def test_wait_on_a_run_that_ended_says_there_was_nothing_to_wait_for(sandbox, ended, tmp_path):
    done = cli(sandbox, tmp_path, "wait", str(ended))
    assert done.returncode == 0, done.stderr
    assert f"Run {ended} had already ended: nothing to wait for." in done.stdout
    assert "SUCCESS" in done.stdout


def read_until(fd: int, words: bytes, seen: bytearray, limit: float = 60) -> bool:
    """Read the terminal until ``words`` shows (select waits on the child's output, never sleeps)."""
    deadline = time.monotonic() + limit
    while words not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return words in seen
            if not chunk:
                break
            seen.extend(chunk)
    return words in seen


def test_ctrl_c_during_a_run_prints_its_message_on_a_line_of_its_own(sandbox, tmp_path):
    sandbox.add_job("slow-job", duration=600)  # the fake clock never moves: it runs until cancelled
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbx_magic", "run", "slow-job"],
        env=env_for(sandbox, tmp_path),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    seen = bytearray()
    try:
        assert read_until(leader, b"slow-job \xc2\xb7 run", seen), seen.decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        read_until(leader, b"re-attaches", seen)
    finally:
        proc.wait(timeout=60)
        os.close(leader)
    text = seen.decode(errors="replace")
    assert proc.returncode == 130, text
    before = text[: text.index("interrupted:")]
    assert before.endswith("\n"), repr(text[-300:])
    assert "python -m dbx_magic wait" in text
