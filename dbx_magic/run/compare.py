"""Two runs of a job side by side: what differs, and the next step.

``compare_runs(client, a, b=None)`` reads both runs (a RunResult or a handle is used as it is once it
has ended; a run id is read with ``runs/get``, its outputs and iterations too) and, without ``b``, finds
the job's newest successful run that started before ``a`` (``runs/list``, completed runs, up to
:data:`LOOK_BACK` of them). The :class:`RunComparison` says the parameters that differ (sent and
resolved), each task's state, attempts and duration on both sides, the first task whose output or error
differs (both texts), and the queue and set-up time of each run; it renders as a table in a notebook and
as text in a terminal, and offers ``rerun(side)`` and ``repair()``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from ..api.client import DatabricksClient
from ..errors import InvalidInput
from ..safe import terminal_text, web_link
from .models import RunResult, TaskResult
from .timing import format_seconds

__all__ = ["LOOK_BACK", "RunComparison", "TaskSides", "compare_runs", "run_of"]

LOOK_BACK = 100
"""Completed runs of the job read (25 a page) to find the last success before a run."""
_PAGE = 25


@dataclass(frozen=True)
class TaskSides:
    """One task on both sides: ``(state, attempts, seconds)`` each, None where the run has no such task."""

    key: str
    a: tuple[str, int, float | None] | None
    b: tuple[str, int, float | None] | None

    @property
    def differs(self) -> bool:
        return (self.a or ("",))[0] != (self.b or ("",))[0]


@dataclass(frozen=True)
class RunComparison:
    """Two runs of a job compared (see the module docstring); ``a`` is the one in question.

    Attributes:
        a, b: The two runs.
        parameters: ``name -> (a's value, b's value)`` for each parameter sent that differs (None: unset).
        resolved: ``(task, name) -> (a's, b's)`` for each resolved task parameter that differs.
        tasks: Each task on both sides, in ``a``'s order then ``b``'s.
        first_difference: ``(task, a's text, b's text)``: the first task whose output or error differs.
        client: The client the next steps go through.
    """

    a: RunResult
    b: RunResult
    parameters: dict[str, tuple[str | None, str | None]]
    resolved: dict[tuple[str, str], tuple[str | None, str | None]]
    tasks: tuple[TaskSides, ...]
    first_difference: tuple[str, str, str] | None
    client: Any = field(default=None, repr=False, compare=False)

    # -- next steps ------------------------------------------------------------------------------
    def rerun(self, side: str = "b", **kwargs: Any) -> RunResult:
        """Run the job again with that side's parameters and wait for it (``run_job_and_wait``;
        ``kwargs`` as for it: ``timeout``, ``on_update``, ``performance_target``...)."""
        from .runs import run_job_and_wait

        run = self._side(side)
        kind = "job_parameters" if _takes_job_parameters(run) else "notebook_params"
        job = run.job_id or self.a.job_id
        if job is None:
            raise InvalidInput(f"Run {run.run_id} does not say its job: rerun it with run_job_and_wait.")
        kwargs[kind] = run.sent_parameters
        return run_job_and_wait(self._client(), job, **kwargs)

    def repair(self, **kwargs: Any) -> RunResult:
        """Repair the side that failed with the other side's parameters, and wait for it
        (``RunResult.repair``; ``kwargs`` as for ``repair_run``)."""
        failed = next((r for r in (self.a, self.b) if r.finished and not r.ok), None)
        if failed is None:
            raise InvalidInput(
                f"Neither run {self.a.run_id} nor run {self.b.run_id} failed: there is nothing to repair."
            )
        other = self.b if failed is self.a else self.a
        kind = "job_parameters" if _takes_job_parameters(failed) else "notebook_params"
        kwargs[kind] = other.sent_parameters
        return failed.repair(self._client(), **kwargs)

    def _side(self, side: str) -> RunResult:
        if side not in ("a", "b"):
            raise InvalidInput(
                f"side must be 'a' (run {self.a.run_id}) or 'b' (run {self.b.run_id}), not {side!r}."
            )
        return self.a if side == "a" else self.b

    def _client(self) -> DatabricksClient:
        client = self.client or self.a.client or self.b.client
        return client if client is not None else DatabricksClient.from_config()

    # -- display ---------------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, str, str]]:
        """The comparison as ``(what, a, b)`` rows: the runs, the parameters, the tasks."""
        a, b = self.a, self.b
        rows = [
            ("run", f"{a.run_id}", f"{b.run_id}"),
            ("state", _state(a), _state(b)),
            ("queue", _secs(a.timing.queue), _secs(b.timing.queue)),
            ("set-up", _secs(_setup(a)), _secs(_setup(b))),
            ("took", _secs(a.duration), _secs(b.duration)),
        ]
        rows += [(f"parameter {k}", _value(x), _value(y)) for k, (x, y) in self.parameters.items()]
        rows += [(f"resolved {t}.{k}", _value(x), _value(y)) for (t, k), (x, y) in self.resolved.items()]
        rows += [(f"task {t.key}", _task_words(t.a), _task_words(t.b)) for t in self.tasks]
        return rows

    @property
    def next_steps(self) -> str:
        """What to do next, in one sentence."""
        failed = next((r for r in (self.a, self.b) if r.finished and not r.ok), None)
        steps = ['`comparison.rerun("a")` or `rerun("b")` runs the job with that side\'s parameters']
        if failed is not None:
            other = "b" if failed is self.a else "a"
            steps.append(f"`comparison.repair()` repairs run {failed.run_id} with {other}'s parameters")
        return "; ".join(steps) + "."

    def text(self) -> str:
        """The comparison as text, for a terminal."""
        name = f" of job {self.a.job_name!r}" if self.a.job_name else ""
        lines = [f"Run {self.a.run_id} (a) compared with run {self.b.run_id} (b){name}:"]
        rows = self.rows()
        width = max(len(r[0]) for r in rows)
        col = max(len(r[1]) for r in rows)
        lines += [f"  {what:<{width}}  {x:<{col}}  {y}" for what, x, y in rows]
        if not self.parameters:
            lines.append("  the same parameters were sent")
        if self.first_difference is not None:
            task, x, y = self.first_difference
            lines += [f"  first difference, task {task}:", f"    a: {_line(x)}", f"    b: {_line(y)}"]
        lines.append(f"  next: {self.next_steps}")
        return terminal_text("\n".join(lines))  # outputs, errors and names are the workspace's words

    def __str__(self) -> str:
        return self.text()

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text("RunComparison(...)" if cycle else self.text())

    def _repr_html_(self) -> str:
        esc = html.escape
        cell = 'style="text-align:left;vertical-align:top;padding:2px 8px"'
        head = (
            f"<tr><th {cell}></th><th {cell}>a: {_link(self.a)}</th><th {cell}>b: {_link(self.b)}</th></tr>"
        )
        body = "".join(
            f'<tr class="{"dbx-differs" if x != y else ""}"><td {cell}>{esc(what)}</td>'
            f"<td {cell}>{esc(x)}</td><td {cell}>{esc(y)}</td></tr>"
            for what, x, y in self.rows()[1:]
        )
        parts = [
            '<div class="dbx-compare">',
            f"<b>{esc(self.a.job_name or 'job')}</b>: run {self.a.run_id} (a) compared with run {self.b.run_id} (b)",
            f'<table class="dbx-compare-table" style="text-align:left">{head}{body}</table>',
        ]
        if self.first_difference is not None:
            task, x, y = self.first_difference
            pre = 'style="white-space:pre-wrap;text-align:left;margin:0"'
            parts.append(
                f"<div>first difference, task <b>{esc(task)}</b>:<br>a: <pre {pre}>{esc(x)}</pre>"
                f"b: <pre {pre}>{esc(y)}</pre></div>"
            )
        parts.append(f"<div><small>next: {esc(self.next_steps)}</small></div></div>")
        return "".join(parts)


def _takes_job_parameters(run: RunResult) -> bool:
    return bool(run.run.get("job_parameters"))


def _state(run: RunResult) -> str:
    return run.result_state or run.life_cycle_state or "?"


def _secs(seconds: float | None) -> str:
    return "-" if seconds is None else format_seconds(seconds)


def _setup(run: RunResult) -> float | None:
    if run.timing.setup:
        return run.timing.setup
    setups = [t.timing.setup for t in run.tasks if t.timing.setup is not None]
    return max(setups) if setups else None


def _value(value: str | None) -> str:
    return "(unset)" if value is None else value


def _task_words(side: tuple[str, int, float | None] | None) -> str:
    if side is None:
        return "(no such task)"
    state, attempts, seconds = side
    tries = f", {attempts} attempts" if attempts > 1 else ""
    return f"{state}{tries}" + (f", {format_seconds(seconds)}" if seconds is not None else "")


def _line(text: str) -> str:
    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    return lines[-1] if lines else "(nothing)"


def _link(run: RunResult) -> str:
    label = f"run {run.run_id}"
    url = web_link(run.run_page_url)
    if url is None:
        return html.escape(label)
    return f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{html.escape(label)}</a>'


# -- building a comparison -----------------------------------------------------------------------------


def _differences(mine: dict[str, str], theirs: dict[str, str]) -> dict[str, tuple[str | None, str | None]]:
    return {
        k: (mine.get(k), theirs.get(k))
        for k in sorted(set(mine) | set(theirs))
        if mine.get(k) != theirs.get(k)
    }


def _side(run: RunResult, task: TaskResult) -> tuple[str, int, float | None]:
    attempts = sum(1 for t in run.attempts if t.key == task.key) or 1
    seconds = task.timing.total
    if seconds is None and task.start_time and task.end_time:
        seconds = (task.end_time - task.start_time) / 1000
    return (task.result_state or task.life_cycle_state or "?", attempts, seconds)


def _said(task: TaskResult) -> str:
    return (task.error or "") if task.failed else (task.output or "")


def build(a: RunResult, b: RunResult, client: Any = None) -> RunComparison:
    """Compare two runs already read (pure)."""
    by_b = {t.key: t for t in b.tasks}
    keys = [t.key for t in a.tasks] + [t.key for t in b.tasks if t.key not in {x.key for x in a.tasks}]
    by_a = {t.key: t for t in a.tasks}
    tasks, resolved = [], {}
    first: tuple[str, str, str] | None = None
    for key in keys:
        ta, tb = by_a.get(key), by_b.get(key)
        tasks.append(TaskSides(key, _side(a, ta) if ta else None, _side(b, tb) if tb else None))
        if ta is None or tb is None:
            continue
        for name, pair in _differences(ta.resolved_parameters or {}, tb.resolved_parameters or {}).items():
            resolved[(key, name)] = pair
        if first is None and _said(ta) != _said(tb):
            first = (key, _said(ta) or "(no output)", _said(tb) or "(no output)")
    return RunComparison(
        a=a,
        b=b,
        parameters=_differences(a.sent_parameters, b.sent_parameters),
        resolved=resolved,
        tasks=tuple(tasks),
        first_difference=first,
        client=client,
    )


def run_of(client: DatabricksClient, run: Any) -> RunResult:
    """A run to compare: a RunResult (or a handle's) that has ended is used as it is; a run id is read
    (its state, resolved values, outputs and iterations)."""
    from .checks import positive_id
    from .watch import fetch_outputs

    result = getattr(run, "result", None) if not isinstance(run, RunResult) else run
    if isinstance(result, RunResult) and result.finished:
        return result
    if isinstance(result, RunResult):
        run = result.run_id
    if isinstance(run, str) and not run.strip().isdigit():
        raise InvalidInput(f"{run!r} is not a run: give a RunResult, a run handle or a run id.")
    run_id = positive_id(run, "run id")
    read = RunResult.from_api(client.get_run(run_id, include_resolved_values=True))
    return fetch_outputs(client, read) if read.finished else read


def last_success_before(client: DatabricksClient, run: RunResult) -> RunResult:
    """The job's newest successful run that started before ``run`` (read whole).

    Raises:
        InvalidInput: none among the job's last :data:`LOOK_BACK` completed runs.
    """
    if run.job_id is None:
        raise InvalidInput(f"Run {run.run_id} does not say its job: name the run to compare it with.")
    token: str | None = None
    for _ in range(LOOK_BACK // _PAGE):
        page = client.list_runs(run.job_id, completed_only=True, limit=_PAGE, page_token=token)
        for item in page.get("runs") or ():
            ok = (item.get("state") or {}).get("result_state") == "SUCCESS"
            earlier = not run.start_time or int(item.get("start_time") or 0) < run.start_time
            if ok and earlier and item.get("run_id") != run.run_id:
                return run_of(client, int(item["run_id"]))
        token = page.get("next_page_token")
        if not token:
            break
    raise InvalidInput(
        f"Job {run.job_id} has no successful run before run {run.run_id} among its last {LOOK_BACK} "
        "completed runs: name the run to compare it with."
    )


def compare_runs(client: DatabricksClient | None, a: Any, b: Any = None) -> RunComparison:
    """Compare run ``a`` with run ``b`` (default: the job's last success before ``a``).

    Args:
        client: The workspace client (None: ``a``'s own, else ``DatabricksClient.from_config()``).
        a, b: RunResults, run handles or run ids.

    Raises:
        InvalidInput: not a run, or no earlier success to compare with; DatabricksError: a read failed.
    """
    if client is None:
        client = getattr(a, "client", None) or DatabricksClient.from_config()
    first = run_of(client, a)
    second = run_of(client, b) if b is not None else last_success_before(client, first)
    return build(first, second, client)
