"""Parameter sweeps end to end against the sandbox: order, outputs, concurrency, requests per cycle."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import DatabricksClient, RunResult
from dbx_magic.errors import InvalidInput
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.progress import TextSweepProgress, describe_sweep
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.run.sweep import SweepFailed, run_many
from dbx_magic.sandbox import Sandbox, Task
from dbx_magic.testing import ManualClock

from .conftest import InterruptAt

N = 40


def echo(params: dict[str, str]) -> str:
    if params.get("fail") == "true":
        raise ValueError(f"run {params.get('i')} asked to fail")
    return json.dumps(params, sort_keys=True)


def add_sweep_job(sb: Sandbox, name: str, *, limit: int, queue: bool = True) -> int:
    task = Task(
        "main",
        f"/Workspace/Shared/{name}",
        {"i": "-1", "fail": "false", "region": ""},
        duration=1.0,
        notebook=echo,
    )
    return sb.add_job(name, tasks=[task], max_concurrent_runs=limit, queue=queue)


@pytest.fixture
def sb(sandbox: Sandbox) -> Sandbox:
    """The sandbox on the fake clock."""
    return sandbox


@pytest.fixture
def client(sandbox_client: DatabricksClient) -> DatabricksClient:
    return sandbox_client


class Cycles:
    """A sleep on the fake clock that marks where each poll cycle starts in the sandbox's request log."""

    def __init__(self, sb: Sandbox, clock: ManualClock) -> None:
        self.sb, self.clock, self.marks = sb, clock, []

    def __call__(self, seconds: float) -> None:
        self.marks.append(len(self.sb.requests))
        self.clock.sleep(seconds)

    def per_cycle(self) -> list[list[Any]]:
        log = self.sb.requests
        bounds = [*self.marks, len(log)]
        return [log[a:b] for a, b in itertools.pairwise(bounds)]


def test_forty_runs_in_order_with_batched_polling(sb, client, clock):
    add_sweep_job(sb, "sweep", limit=10)  # queueing on: all 40 launched, 30 wait QUEUED
    cycles = Cycles(sb, clock)
    updates: list[list[Any]] = []
    params = [{"i": i, "region": ["eu", "us"][i % 2]} for i in range(N)]
    results = run_many(client, "sweep", params, on_update=updates.append, sleep=cycles)

    assert [json.loads(r.output)["i"] for r in results] == [str(i) for i in range(N)]  # input order
    assert all(r.ok for r in results) and len({r.run_id for r in results}) == N
    assert any(r is not None and r.life_cycle_state == "QUEUED" for u in updates for r in u)
    tokens = [r.body["idempotency_token"] for r in sb.requests if r.path.endswith("run-now")]
    assert len(tokens) == N and len(set(tokens)) == N  # each launch its own token

    lists_total = alone = 0
    for cycle in cycles.per_cycle():
        lists = [r for r in cycle if r.path.endswith("runs/list") and "completed_only" not in r.query]
        assert len(lists) <= math.ceil(N / 25)  # one page covers 25 active runs, not one request a run
        lists_total += len(lists)
        alone += not lists  # one run left: its runs/get costs what a page would, and brings its tasks
    assert lists_total <= 2 * len(cycles.per_cycle())
    assert sum("completed_only" in r.query for r in sb.requests) == 1  # the job's history: read once
    # one runs/get per run, when it ends (and one a cycle for a run left alone)
    assert sum(r.path.endswith("runs/get") for r in sb.requests) <= N + alone


def test_no_queue_means_never_more_than_the_limit(sb, client):
    add_sweep_job(sb, "strict", limit=3, queue=False)
    peak = [0]

    def watch(results: list[Any]) -> None:
        peak[0] = max(peak[0], sum(1 for r in results if r is not None and not r.finished))

    results = run_many(client, "strict", [{"i": i} for i in range(9)], on_update=watch)
    assert all(r.ok for r in results), [r.life_cycle_state for r in results]  # none SKIPPED
    assert 1 <= peak[0] <= 3


def test_max_parallel_overrides(sb, client):
    add_sweep_job(sb, "wide", limit=20)
    peak = [0]

    def watch(results: list[Any]) -> None:
        peak[0] = max(peak[0], sum(1 for r in results if r is not None and not r.finished))

    run_many(
        client,
        "wide",
        [{"i": i} for i in range(8)],
        max_parallel=2,
        on_update=watch,
    )
    assert peak[0] == 2


def test_a_failed_run_does_not_stop_the_others(sb, client):
    add_sweep_job(sb, "mixed", limit=10)
    params = [{"i": i, "fail": "true" if i in (2, 5) else "false"} for i in range(8)]
    results = run_many(client, "mixed", params)
    assert [r.ok for r in results] == [i not in (2, 5) for i in range(8)]
    assert "run 2 asked to fail" in results[2].tasks[0].error


def test_the_same_token_base_finds_the_same_runs(sb, client):
    add_sweep_job(sb, "again", limit=10)
    first = run_many(
        client,
        "again",
        [{"i": i} for i in range(4)],
        idempotency_token="nightly-sweep",
    )
    second = run_many(
        client,
        "again",
        [{"i": i} for i in range(4)],
        idempotency_token="nightly-sweep",
    )
    assert [r.run_id for r in first] == [r.run_id for r in second]
    assert len(sb.run_ids("again")) == 4


@pytest.mark.parametrize(
    ("params", "kwargs", "match"),
    [
        ({"i": 1}, {}, "list of dicts"),
        ([{"i": None}], {}, "is None"),
        ([{"i": 1}], {"max_parallel": 0}, "not a positive integer"),
        ([{"i": 1}], {"timeout": -5}, "not a positive number"),
    ],
)
def test_bad_sweep_input_sends_nothing(sb, client, params, kwargs, match):
    add_sweep_job(sb, "bad", limit=2)
    sb.clear_requests()
    with pytest.raises(InvalidInput, match=match):
        run_many(client, "bad", params, **kwargs)
    assert sb.requests == []  # judged locally: nothing at all is sent


def test_describe_sweep_counts():
    view = describe_sweep([None, None], [{"a": "1"}, {"a": "2"}], now_ms=0)
    assert (
        view.waiting == 2
        and not view.finished
        and view.line == "sweep: 0/2 finished · 0 succeeded · 2 waiting"
    )


def test_foreach_magic_publishes_all_and_fails_at_the_end(capsys, clock):
    shell = InteractiveShell.instance()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    try:
        shell.run_cell("%dbx_sandbox")
        sandbox = shell.magics_manager.registry["DbxMagics"].sandbox
        add_sweep_job(sandbox, "grid-job", limit=4)
        shell.user_ns["grid"] = [{"i": i, "fail": "true" if i == 3 else "false"} for i in range(6)]
        res = shell.run_cell(
            "%%dbx_run grid-job --foreach grid --out runs\nregion = eu\n", store_history=False
        )
        assert isinstance(res.error_in_exec, SweepFailed)
        runs = shell.user_ns["runs"]
        assert len(runs) == 6 and [r.ok for r in runs] == [i != 3 for i in range(6)]
        assert all(json.loads(r.output)["region"] == "eu" for r in runs if r.ok)
        shown = capsys.readouterr().out
        assert "1 of 6 runs did not succeed" in shown and "Traceback" not in shown
        assert "sweep: 6/6 finished · 5 succeeded · 1 failed" in shown  # the text fallback
        bad = shell.run_cell("%dbx_run grid-job --foreach 5", store_history=False)
        assert "not a list of dicts" in str(bad.error_in_exec)
    finally:
        unload(shell)


def test_text_sweep_progress_prints_changes_only():
    lines: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            lines.append(text)

        def flush(self) -> None:
            pass

    show = TextSweepProgress([{"a": "1"}], stream=Sink())  # type: ignore[arg-type]
    show([None])
    show([None])
    assert "".join(lines).count("sweep:") == 1


def test_sweep_grid_widget_rows_summary_and_cancel_all(sb, client):
    from dbx_magic.notebook.widgets import SweepWidget

    add_sweep_job(sb, "gridw", limit=2)
    params = [{"i": str(i)} for i in range(3)]
    cancelled: list[bool] = []
    grid = SweepWidget(params, cancel_all=lambda: cancelled.append(True))
    results = run_many(client, "gridw", params, on_update=grid)
    assert grid.grid.value.count("<tr>") == 1 + len(params)
    assert all(f">{r.run_id}</a>" in grid.grid.value for r in results)
    assert "3/3 finished · 3 succeeded" in grid.summary.value
    assert grid.cancel_button.layout.display == "none"  # nothing left to cancel
    live = SweepWidget(params, cancel_all=lambda: cancelled.append(True))
    live.cancel_button.click()
    assert cancelled == [True]


def test_interrupt_cancels_every_run_still_going(make_sandbox):
    from dbx_magic import RunInterrupted

    interrupting = InterruptAt(60.0)  # the kernel is interrupted a minute into the sweep
    sb = make_sandbox(clock=interrupting.monotonic, epoch=interrupting.wall())
    sb.add_job("slow-sweep", duration=600, max_concurrent_runs=10)
    client = DatabricksClient(sb.url, sb.token, clock=interrupting)
    with pytest.raises(RunInterrupted) as info:
        run_many(
            client,
            "slow-sweep",
            [{"i": str(i)} for i in range(5)],
            cancel_on_interrupt=True,
            allow_unknown_params=True,  # the job declares nothing; the names go as given
        )
    err = info.value
    assert err.cancelled and len(err.results) == 5 and all(r is not None for r in err.results)
    interrupting.advance(30)  # cancelling is asynchronous: the runs end shortly after
    states = {client.get_run(r.run_id)["state"].get("result_state") for r in err.results}
    assert states == {"CANCELED"}


def test_the_grid_shows_outputs_whole_and_says_queue_time_apart():
    from dbx_magic.notebook.widgets import SweepWidget

    long_output = json.dumps({"auc": 0.91234, "notes": "x" * 200})
    run = {
        "run_id": 9,
        "start_time": 1_000_000,
        "end_time": 1_042_000,
        "queue_duration": 10_000,
        "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
        "tasks": [{"task_key": "t", "run_id": 91, "state": {"life_cycle_state": "TERMINATED"}}],
    }
    result = RunResult.from_api(run)
    result = dataclasses.replace(result, tasks=(dataclasses.replace(result.tasks[0], output=long_output),))
    view = describe_sweep([result], [{"a": "1"}], now_ms=2_000_000)
    (row,) = view.rows
    assert row.elapsed == 32.0 and row.queued == 10.0 and row.output == long_output
    grid = SweepWidget([{"a": "1"}])
    grid([result])
    assert "0:32 (+0:10 queued)" in grid.grid.value
    assert long_output.replace('"', "&quot;") in grid.grid.value  # whole, folded behind a click
    assert "<details>" in grid.grid.value and "table-layout:fixed" in grid.grid.value
