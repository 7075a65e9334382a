"""A run of 1,000 tasks shows compactly in every face: counts by state, failed tasks first, the rest folded.

``benchmarks/bench_wide.py`` times the same displays (under 200 ms) and reads such a run back.
"""

from __future__ import annotations

from typing import Any

from dbx_magic import RunResult
from dbx_magic.notebook.progress import TextProgress, describe
from dbx_magic.notebook.widgets import ProgressWidget

FAILED = (499, 998)
GOING = range(990, 995)


def wide_run(count: int = 1000) -> RunResult:
    tasks: list[dict[str, Any]] = []
    for i in range(count):
        state: dict[str, Any] = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"}
        if i in FAILED:
            state = {"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": "bad rows"}
        elif i in GOING:
            state = {"life_cycle_state": "RUNNING"}
        tasks.append({"task_key": f"t{i:04d}", "run_id": 10_000 + i, "state": state})
    run = {
        "job_id": 1,
        "run_id": 5,
        "run_name": "wide",
        "state": {"life_cycle_state": "RUNNING"},
        "tasks": tasks,
    }
    return RunResult.from_api(run, job_name="wide")


def test_the_progress_view_counts_the_states_and_shows_the_failed_tasks_first():
    view = describe(wide_run(), 600.0)
    assert view.counts == (("FAILED", 2), ("RUNNING", 5), ("SUCCESS", 993))
    assert [t.key for t in view.tasks[:7]] == ["t0499", "t0998", "t0990", "t0991", "t0992", "t0993", "t0994"]
    assert len(view.tasks) == 20 and view.folded == 980
    assert "1000 tasks: 2 FAILED, 5 RUNNING, 993 SUCCESS; failed: t0499, t0998" in view.line
    assert len(view.line) < 400  # one line, not a thousand task names


def test_the_text_display_says_the_same_in_one_line():
    progress = TextProgress(stream=_Sink(), tick=None, live=False)
    progress(wide_run())
    assert len(progress.lines) == 1 and "2 FAILED" in progress.lines[0] and "t0499" in progress.lines[0]


def test_the_widget_shows_the_counts_the_failed_tasks_and_how_many_more():
    widget = ProgressWidget(tick=None)
    widget(wide_run())
    table = widget.tasks.value
    assert "dbx-task-counts" in table and "1000 tasks" in table
    assert table.index("t0499") < table.index("t0990") < table.index("t0000")
    assert "… and 980 more" in table and table.count("<tr>") == 1 + 20 + 1  # head, rows, the fold


def test_the_results_html_and_text_put_the_failures_first_and_fold_the_rest():
    result = wide_run()
    page = result._repr_html_()
    assert "1000 tasks: 2 FAILED, 5 RUNNING, 993 SUCCESS" in page
    assert page.index("t0499") < page.index("t0000")
    assert '<details class="dbx-result-folded"><summary>980 more tasks</summary>' in page
    text = _pretty(result)
    assert "1000 tasks: 2 FAILED" in text and "... and 980 more tasks" in text
    assert text.index("task t0499") < text.index("task t0000") and len(text.splitlines()) < 40


def test_a_run_of_a_few_tasks_keeps_its_order_and_every_row():
    result = wide_run(12)
    view = describe(result, 60.0)
    assert [t.key for t in view.tasks] == [f"t{i:04d}" for i in range(12)] and not view.counts
    assert "more tasks" not in result._repr_html_()


class _Sink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def _pretty(result: RunResult) -> str:
    from IPython.lib.pretty import pretty

    return str(pretty(result))
