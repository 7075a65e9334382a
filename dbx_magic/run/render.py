"""How a RunResult reads, as text and as HTML: the outputs whole (the value users ran the job for),
folded rather than cut when long, with the parameters and the time it took. Pure functions of the
result; the notebook's displays and the command line both use them.
"""

from __future__ import annotations

import html
import json
import textwrap
from typing import TYPE_CHECKING, Any

from ..safe import terminal_text, web_link
from .outputs import ansi_to_html, strip_ansi

if TYPE_CHECKING:
    from .models import RunResult, TaskResult

__all__ = ["decode", "handle_html", "result_html", "result_text"]

FOLD = 1_500  # outputs longer than this are folded (a click opens them), never cut
_WIDTH = 100


def decode(text: str | None) -> Any:
    """An exit value decoded when it is JSON; the text itself otherwise (None stays None)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _duration_words(result: RunResult) -> str:
    """The run's time: its parts as the API reports them (queue, set-up, execution, clean-up) when
    it does, else 'took 1:02 (queued 0:10)'; empty when unknown."""
    if result.timing:
        return result.timing.text()
    seconds = result.duration
    if seconds is None:
        return ""
    words = f"took {_clock_text(seconds)}"
    if result.queued >= 1:
        words += f" (queued {_clock_text(result.queued)})"
    return words


def _clock_text(seconds: float) -> str:
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _params_words(params: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _indented(text: str, prefix: str) -> list[str]:
    """``text`` wrapped to the width, its first line after ``prefix``, the rest aligned under it."""
    lines: list[str] = []
    hang = " " * len(prefix)
    for raw in text.splitlines() or [""]:
        first = prefix if not lines else hang
        lines.extend(textwrap.wrap(raw, _WIDTH, initial_indent=first, subsequent_indent=hang) or [first])
    return lines


def result_text(result: RunResult) -> str:
    """The result as text: state, reason, parameters, time, every task with its whole output, link."""
    state = result.result_state or result.life_cycle_state or "UNKNOWN"
    head = f"RunResult: run {result.run_id}" + (f" of {result.job_name!r}" if result.job_name else "")
    lines = [f"{head} {state}" + ("" if result.finished else " (not finished)")]
    if result.state_message:
        lines.append(f"  {result.state_message}")
    if result.parameters:
        lines.append(f"  parameters: {_params_words(result.parameters)}")
    took = _duration_words(result)
    if took:
        lines.append(f"  {took}")
    single = result.output is not None and len(result.tasks) == 1
    for task in result.tasks:
        again = f" (attempt {task.attempt})" if task.attempt_number else ""
        when = f" ({task.timing.text()})" if task.timing and len(result.tasks) > 1 else ""
        off = " (disabled in the job: not run)" if task.disabled else ""
        lines.append(f"  task {task.key}: {task.result_state or task.life_cycle_state}{again}{when}{off}")
        if task.output is not None and not single:
            lines.extend(_indented(task.output + _cut(task), "    output: "))
        if task.error:
            lines.append(f"    error: {_headline(strip_ansi(task.error))}")
        lines.extend(task_detail_lines(task))
    lines.extend(f"  {r.line}" for r in result.repairs if len(result.repairs) > 1)
    if single and result.output is not None:
        lines.extend(_indented(result.output + _cut(result.tasks[0]), "  output: "))
    if result.run_page_url:
        lines.append(f"  {result.run_page_url}")
    lines.extend(f"  warning: {w}" for w in result.warnings)
    return terminal_text("\n".join(lines))


_CELL = 'style="text-align:left;vertical-align:top;padding:2px 8px"'


def _resolved_words(task: TaskResult) -> str:
    """The resolved parameters that differ from the task's own (``{{job.parameters.x}}`` filled in)."""
    resolved = task.resolved_parameters or {}
    changed = {k: v for k, v in resolved.items() if task.parameters.get(k) != v}
    return _params_words(changed)


def iteration_summary(task: TaskResult) -> str:
    """``150 iterations: 149 succeeded, 1 failed`` from a for-each task's iterations ("" without)."""
    if not task.iterations:
        return ""
    counts: dict[str, int] = {}
    for it in task.iterations:
        word = (
            "running"
            if it.result_state is None
            else "succeeded"
            if not it.failed
            else it.result_state.lower()
        )
        counts[word] = counts.get(word, 0) + 1
    n = len(task.iterations)
    return f"{n} iteration{'s' if n != 1 else ''}: " + ", ".join(f"{c} {w}" for w, c in counts.items())


def task_detail_lines(task: TaskResult, limit: int = 5) -> list[str]:
    """Text lines under a task: its resolved parameters, its iterations and the failed ones."""
    lines = []
    resolved = _resolved_words(task)
    if resolved:
        lines.append(f"    resolved: {resolved}")
    if task.iterations:
        lines.append(f"    {iteration_summary(task)}")
        failed = [it for it in task.iterations if it.failed]
        for it in failed[:limit]:
            why = _headline(strip_ansi(it.error or it.state_message or ""))
            lines.append(
                f"      iteration {it.index} ({_params_words(it.parameters)}): {it.result_state}: {why}"
            )
        if len(failed) > limit:
            lines.append(f"      ... and {len(failed) - limit} more failed iterations (task.iterations)")
    return lines


def iterations_html(task: TaskResult) -> str:
    """A for-each task's iterations as a table (folded): index, parameters, state, output or error."""
    esc = html.escape
    rows = "".join(
        f'<tr class="dbx-iteration{" dbx-iteration-failed" if it.failed else ""}"><td {_CELL}>{it.index}</td>'
        f"<td {_CELL}>{esc(_params_words(it.parameters))}</td><td {_CELL}>{esc(it.result_state or it.life_cycle_state or '')}</td>"
        f"<td {_CELL}>{esc(_headline(strip_ansi(it.error or '')) if it.failed else (it.output or ''))}</td></tr>"
        for it in task.iterations
    )
    head = (
        f"<tr><th {_CELL}>#</th><th {_CELL}>parameters</th><th {_CELL}>state</th><th {_CELL}>output</th></tr>"
    )
    return (
        f'<details class="dbx-iterations" open><summary><b>{esc(task.key)}</b> · {esc(iteration_summary(task))}'
        f'</summary><table style="text-align:left">{head}{rows}</table></details>'
    )


def _output_html(text: str) -> str:
    """An output whole: wrapped in a <pre>, folded behind its first line when long."""
    esc = html.escape
    body = f'<pre class="dbx-output" style="white-space:pre-wrap;text-align:left;margin:0">{esc(text)}</pre>'
    if len(text) <= FOLD:
        return body
    head = esc(" ".join(text[:120].split()))
    return f"<details><summary>{head}… ({len(text):,} characters: click to open)</summary>{body}</details>"


def _cut(task: TaskResult) -> str:
    return " [cut by the API at 5 MB]" if task.output_truncated else ""


def _headline(text: str) -> str:
    lines = [line for line in text.strip().split("\n") if line.strip()]  # a lone \r ends no line
    return lines[-1].strip() if lines else ""


def _task_rows(tasks: tuple[TaskResult, ...]) -> str:
    esc = html.escape
    rows = []
    for t in tasks:
        detail = t.output + _cut(t) if t.output is not None else _headline(strip_ansi(t.error or ""))
        extra = "\n".join(line.strip() for line in task_detail_lines(t))
        detail = "\n".join(x for x in (detail, extra) if x)
        state = (t.result_state or t.life_cycle_state or "") + (
            " (disabled in the job)" if t.disabled else ""
        )
        rows.append(
            f"<tr><td {_CELL}>{esc(t.key)}</td><td {_CELL}>{esc(state)}</td>"
            f"<td {_CELL}>{esc(t.timing.text())}</td><td {_CELL}>{_output_html(detail) if detail else ''}</td></tr>"
        )
    return "".join(rows)


def _failure_html(task: TaskResult) -> str:
    """A failed task: its error first (the cause), then the trace with the API's colours."""
    cause = _headline(strip_ansi(task.error or task.error_trace or ""))
    trace = ansi_to_html(task.error_trace) if task.error_trace else ""
    folded = (
        f'<details><summary>trace</summary><pre class="dbx-result-trace" style="white-space:pre-wrap">{trace}</pre>'
        "</details>"
        if trace
        else ""
    )
    return (
        f'<div class="dbx-result-failure"><b>{html.escape(task.key)}</b>: '
        f'<span style="color:#c62828;font-weight:bold">{html.escape(cause)}</span>{folded}</div>'
    )


def _run_link(result: RunResult) -> str:
    """ "run N", linked to the run's page when it has one (an http or https one: nothing else)."""
    url = web_link(result.run_page_url)
    if not url:
        return f"run {result.run_id}"
    return (
        f'<a href="{html.escape(url)}" target="_blank" rel="noopener" '
        f'style="color:#1565c0;text-decoration:underline">run {result.run_id}</a>'
    )


def _job_name(result: RunResult) -> str:
    return f" of <b>{html.escape(result.job_name)}</b>" if result.job_name else ""


def result_html(result: RunResult) -> str:
    """The result as HTML: left-aligned, outputs whole (folded when long), parameters and time."""
    esc = html.escape
    state = result.result_state or result.life_cycle_state or "UNKNOWN"
    colour = "#2e7d32" if result.ok else ("#1565c0" if not result.finished else "#c62828")
    link, name = _run_link(result), _job_name(result)
    parts = [
        f'<div class="dbx-result" style="text-align:left">{link}{name}: '
        f'<span style="color:{colour};font-weight:bold">{esc(state)}</span>'
    ]
    took = _duration_words(result)
    if took:
        parts.append(f' <small class="dbx-result-timing">{esc(took)}</small>')
    if result.state_message:
        parts.append(f"<div>{esc(result.state_message)}</div>")
    if result.parameters:
        parts.append(f"<div><small>parameters: {esc(_params_words(result.parameters))}</small></div>")
    if result.tasks:
        parts.append(
            f'<table class="dbx-result-tasks" style="text-align:left"><tr><th {_CELL}>task</th>'
            f"<th {_CELL}>state</th><th {_CELL}>time</th><th {_CELL}>output</th></tr>{_task_rows(result.tasks)}"
            "</table>"
        )
    parts.extend(_failure_html(t) for t in result.failed_tasks[:5] if t.error or t.error_trace)
    if len(result.repairs) > 1:
        items = "".join(f"<li>{esc(r.line)}</li>" for r in result.repairs)
        parts.append(f'<div class="dbx-repairs">rounds:<ul>{items}</ul></div>')
    parts.extend(f'<div class="dbx-result-warning">&#9888; {esc(w)}</div>' for w in result.warnings)
    parts.append("</div>")
    return "".join(parts)


def handle_html(handle: Any) -> str:
    """A background run's handle as HTML: its run linked, its state, and what can be done with it."""
    result = handle.result
    if result.finished:
        return result_html(result)
    esc = html.escape
    link, name = _run_link(result), _job_name(result)
    error = handle.error
    note = (
        f" ({esc(error.message)})"
        if error is not None
        else f" ({esc(handle.mode)}; <code>.wait()</code>, <code>.cancel()</code>)"
    )
    return (
        f'<div class="dbx-handle" style="text-align:left">{link}{name}: '
        f'<span style="color:#1565c0;font-weight:bold">{esc(handle.state)}</span>{note}</div>'
    )
