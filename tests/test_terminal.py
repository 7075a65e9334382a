"""Progress in a real terminal: the command line's demo in a pseudo-terminal, read as a person sees it."""

from __future__ import annotations

import itertools
import os
import pty
import select
import subprocess
import sys
import time

from dbx_magic.notebook.progress import TextProgress
from dbx_magic.run.models import RunResult
from dbx_magic.testing import ManualClock


def test_the_demo_updates_its_line_at_a_steady_pace_in_a_terminal():
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dbx_magic", "demo"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        close_fds=True,
    )
    os.close(follower)
    chunks: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 5.0)
            if not ready:
                break
            try:
                data = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append((time.monotonic(), data))
    finally:
        proc.wait(timeout=30)
        os.close(leader)
    text = b"".join(c for _, c in chunks).decode()
    assert proc.returncode == 0, text
    updates = [t for t, c in chunks if b"\r" in c]
    assert len(updates) >= 2, text  # the line is updated in place, not only on state changes
    # while the run goes on, the screen changes at least every few seconds (generous margin: 3 s)
    shown = [t for t, c in chunks if b"Running job" in c or b"\r" in c]
    gaps = [b - a for a, b in itertools.pairwise(shown)]
    assert max(gaps) < 3.0, gaps
    assert "SUCCESS" in text and "Workflow outputs" in text


class Lines:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def running(start_ms: int) -> RunResult:
    run = {"run_id": 1, "start_time": start_ms, "state": {"life_cycle_state": "RUNNING"}}
    return RunResult.from_api(run, job_name="job")


def test_without_a_terminal_a_line_comes_every_heartbeat_between_polls():
    clock = ManualClock()
    out = Lines()
    show = TextProgress(stream=out, heartbeat=5, clock=clock, tick=None)  # ticks driven by hand
    show(running(int(clock.wall() * 1000)))
    for _ in range(12):  # 12 s with no poll
        clock.advance(1)
        show.tick()
    lines = out.text.splitlines()
    assert len(lines) == 3 and "elapsed 0:05" in lines[1] and "elapsed 0:10" in lines[2]


def test_elapsed_comes_from_the_run_so_re_attaching_does_not_restart_it():
    clock = ManualClock()
    out = Lines()
    show = TextProgress(stream=out, clock=clock, tick=None)
    show(running(int(clock.wall() * 1000) - 125_000))  # the run began 2 min 5 s ago
    assert "elapsed 2:05" in out.text


def test_the_tour_is_copied_out_so_running_it_leaves_the_project_clean(tmp_path):
    from dbx_magic.__main__ import main

    target = tmp_path / "tour"
    assert main(["tour", str(target)]) == 0
    assert sorted(p.name for p in target.glob("*.ipynb")) == ["python_api.ipynb", "quickstart.ipynb"]
    (target / "quickstart.ipynb").write_text("{}")  # the user's own work in the copy...
    assert main(["tour", str(target)]) == 0
    assert (target / "quickstart.ipynb").read_text() == "{}"  # ...is never overwritten
