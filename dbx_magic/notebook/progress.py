"""What a run looks like while it is watched: one pure ``describe()``, and the plain-text display.

``describe(result, elapsed)`` turns a RunResult into a ``View``: the words, the colour, the progress
fraction and ETA, the task rows. The progress widget (``widgets.py``) and ``TextProgress`` (for
terminals and plain-text outputs) both render that one View, so they never disagree.
"""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from ..clock import SYSTEM, Clock, as_clock
from ..run.explain import waiting_words
from ..run.models import RunResult, TaskResult
from ..safe import terminal_text

__all__ = [
    "SweepRow",
    "SweepView",
    "TaskRow",
    "TextProgress",
    "TextSweepProgress",
    "View",
    "describe",
    "describe_sweep",
    "format_duration",
    "task_note",
]

#: The colour of a state, in Bootstrap's words, as ipywidgets' ``bar_style`` and ``button_style`` take.
INFO, SUCCESS, DANGER, WARNING = "info", "success", "danger", "warning"


def format_duration(seconds: float | None) -> str:
    """``75.2`` -> ``"1:15"``; ``3725`` -> ``"1:02:05"``; None -> ``"?"``."""
    if seconds is None:
        return "?"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class TaskRow:
    """One task in the task table.

    Attributes:
        key: The task key.
        state: Its state word.
        colour: Its colour.
        detail: The last line of its error, output or state message.
        run_page_url: Its page.
        note: What else the task says: a for-each task's iterations (``5 iterations: 2 succeeded, 1
            failed, 2 running``), a condition's outcome (``outcome true``), a later attempt
            (``attempt 2``), a disabled task (``disabled``).
    """

    key: str
    state: str
    colour: str
    detail: str
    run_page_url: str | None
    note: str = ""


@dataclass(frozen=True)
class View:
    """Everything a display shows about a run at one moment.

    Attributes:
        title: ``job name · run N``.
        state: The state word shown (result state once finished, else the life-cycle state).
        colour: ``info`` while running, ``success``, ``danger`` or ``warning`` once finished.
        elapsed: Seconds since the run started (or since we began watching).
        fraction: 0..1 when the job's history gives an expected duration, else None.
        eta: Seconds left by that estimate; None without one, 0 when overrunning.
        overrun: True when the run has gone past its expected duration.
        message: The state message (queue reason, failure reason).
        tasks: One row a task, for multi-task runs.
        finished: True once the run is over.
        run_id, run_page_url: For the link.
        line: The whole view as one line of text.
    """

    title: str
    state: str
    colour: str
    elapsed: float
    fraction: float | None
    eta: float | None
    overrun: bool
    message: str
    tasks: tuple[TaskRow, ...]
    finished: bool
    run_id: int
    run_page_url: str | None
    line: str


def _colour(result: RunResult) -> str:
    if not result.finished:
        return INFO
    if result.ok:
        return WARNING if result.warnings else SUCCESS
    return DANGER


def _task_colour(state: str | None, result_state: str | None) -> str:
    if result_state is None:
        return INFO
    if result_state == "DISABLED":
        return WARNING
    return SUCCESS if result_state in ("SUCCESS", "SUCCESS_WITH_FAILURES") else DANGER


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _message(result: RunResult, elapsed: float) -> str:
    """The one line worth reading: a failed run's own cause first (its task's error, else why it
    ended, in words) and what differs from the job's last success; while it waits, what for."""
    if result.finished and not result.ok:
        tasks = result.failed_tasks if result.termination_code in (None, "RUN_EXECUTION_ERROR") else ()
        cause = next((f"{_last_line(t.error)} (task {t.key})" for t in tasks if t.error), result.cause())
        since = result.since_success
        return " · ".join(x for x in (cause, since) if x)
    if not result.finished:
        if result.trouble:  # the workspace does not answer: what was last seen may be stale
            return result.trouble
        waiting = waiting_words(result, elapsed)
        if waiting:
            return waiting
    return result.state_message or (result.queue_reason or "")


def _iterations(stats: dict[str, int]) -> str:
    """``40 iterations: 38 succeeded, 1 failed, 1 running``: a for-each task's counts in words."""
    total = stats.get("total_iterations")
    failed, running = stats.get("failed_iterations", 0), stats.get("active_iterations", 0)
    succeeded = stats.get("succeeded_iterations", max(0, stats.get("completed_iterations", 0) - failed))
    counts = [(succeeded, "succeeded"), (failed, "failed"), (running, "running")]
    if total is not None:
        counts.append((max(0, total - succeeded - failed - running), "waiting"))
    words = ", ".join(f"{n} {word}" for n, word in counts if n) or "none begun"
    head = f"{total} iteration{'s' if total != 1 else ''}" if total is not None else "iterations"
    return f"{head}: {words}"


def task_note(task: TaskResult) -> str:
    """What a task row says besides its state: for-each iterations, a condition's outcome, the attempt."""
    parts = []
    if task.iteration_counts is not None:
        parts.append(_iterations(task.iteration_counts))
    if task.outcome is not None:
        parts.append(f"outcome {task.outcome}")
    if task.attempt_number:
        parts.append(f"attempt {task.attempt}")
    if task.disabled:
        parts.append("disabled in the job: not run")
    return ", ".join(parts)


def _outlook(result: RunResult, elapsed: float) -> tuple[float | None, float | None, bool, str]:
    """(fraction, seconds left, overrunning, words) from the poll model's estimate of the end."""
    expected = result.expected_duration
    if result.finished:
        return (1.0, 0.0, False, "") if expected else (None, None, False, "")
    if result.history is not None:
        guess = result.estimate(elapsed)
        if guess.overrunning:
            return 0.99, 0.0, True, guess.text
        if guess.expected and guess.remaining is not None:
            running = max(0.0, elapsed - result.queued)
            return min(0.99, running / guess.expected), guess.remaining, False, guess.text
        return None, None, False, ""
    if not expected or expected <= 0:
        return None, None, False, ""
    if elapsed > expected:
        return 0.99, 0.0, True, f"over the usual {format_duration(expected)}"
    fraction, eta = min(0.99, elapsed / expected), max(0.0, expected - elapsed)
    return fraction, eta, False, f"~{format_duration(eta)} left ({fraction:.0%})"


def describe(result: RunResult, elapsed: float) -> View:
    """Describe a run for display (pure: same inputs, same View).

    Args:
        result: The run as last polled.
        elapsed: Seconds since the run started (the caller's clock; it ticks between polls).
    """
    state = (result.result_state if result.finished else None) or result.life_cycle_state or "LAUNCHING"
    fraction, eta, overrun, outlook = _outlook(result, elapsed)
    title = f"{result.job_name} · run {result.run_id}" if result.job_name else f"run {result.run_id}"
    tasks = tuple(
        TaskRow(
            key=t.key,
            state=t.result_state or t.life_cycle_state or "PENDING",
            colour=_task_colour(t.life_cycle_state, t.result_state),
            detail=_last_line(t.error or t.output or t.state_message or ""),
            run_page_url=t.run_page_url,
            note=task_note(t),
        )
        for t in result.tasks
    )
    message = _message(result, elapsed)
    parts = [f"{title}: {state}", f"{'took' if result.finished else 'elapsed'} {format_duration(elapsed)}"]
    if outlook:
        parts.append(outlook)
    if message:
        parts.append(message)
    if len(tasks) > 1 or any(t.note for t in tasks):
        parts.append(
            "tasks: " + ", ".join(f"{t.key} {t.state}" + (f" ({t.note})" if t.note else "") for t in tasks)
        )
    return View(
        title=title,
        state=state,
        colour=_colour(result),
        elapsed=elapsed,
        fraction=fraction,
        eta=eta,
        overrun=overrun,
        message=message,
        tasks=tasks,
        finished=result.finished,
        run_id=result.run_id,
        run_page_url=result.run_page_url,
        line=" · ".join(parts),
    )


class TextProgress:
    """The plain-text display, at a steady pace: a line as soon as something changes, and between
    polls a fresh line (elapsed time, ETA) at least every ``heartbeat`` seconds, as tqdm does; on a
    terminal the line updates in place instead.

    Use it as an ``on_update`` callback; ``close()`` stops it early (the watching stopped). A ticker
    thread keeps the pace between polls; ``tick()`` is what it calls (public so a test can drive it).

    Args:
        stream: Where lines go (default stdout).
        heartbeat: Seconds between lines while nothing changes (on a terminal: between updates of
            the line in place, ``tick``).
        clock: The clock time is read from (elapsed comes from the run's own start time when known).
        tick: Seconds between the ticker's checks; None: no ticker thread (lines on polls only).
        live: Update one line in place (default: when ``stream`` is a terminal).
    """

    def __init__(
        self,
        stream: IO[str] | None = None,
        heartbeat: float = 5.0,
        clock: Clock | Callable[[], float] | None = None,
        tick: float | None = 1.0,
        live: bool | None = None,
    ) -> None:
        self._stream = stream
        self._heartbeat = heartbeat
        self._clock = as_clock(clock)
        self._started = self._clock.monotonic()
        self._tick = tick
        self._live = _is_terminal(stream or sys.stdout) if live is None else live
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._result: RunResult | None = None
        self._last_key: tuple[object, ...] | None = None
        self._last_time = 0.0
        self._open_line = False  # a live line is on screen without its newline
        self.lines: list[str] = []

    def __call__(self, result: RunResult) -> None:
        with self._lock:
            self._result = result
            view = self._view(result)
            # What changed, not what ticks: a waiting message counts its seconds ("0:42 so far"), and
            # so does a workspace that does not answer ("unreachable for 1:40"): its start and end count.
            ticking = (result.state_message, result.queue_code, bool(result.trouble))
            said = view.message if result.finished else ticking
            key = (view.state, said, tuple((t.key, t.state, t.note) for t in view.tasks))
            changed = key != self._last_key
            self._last_key = key
            if changed or (not view.finished and self._due()):
                self._emit(view, final=view.finished)
        if result.finished:
            self.close()
        elif self._tick is not None and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_loop, name="dbx-text-progress", daemon=True)
            self._ticker.start()

    def tick(self) -> None:
        """Between polls: refresh the line (in place on a terminal, a new one when ``heartbeat`` is due)."""
        with self._lock:
            if self._result is None or self._result.finished or self._stop.is_set():
                return
            if self._live or self._due():
                self._emit(self._view(self._result), final=False)

    def close(self, note: str | None = None) -> None:
        """Stop the pace (the run ended, or the watching stopped); the line on screen is kept."""
        self._stop.set()
        with self._lock:
            if self._open_line:
                self._write("\n")
                self._open_line = False

    # -- helpers ---------------------------------------------------------------------------------
    def _view(self, result: RunResult) -> View:
        return describe(result, elapsed_of(result, self._clock, self._started))

    def _due(self) -> bool:
        return self._clock.monotonic() - self._last_time >= self._heartbeat

    def _emit(self, view: View, final: bool) -> None:
        line = terminal_text(view.line + (f" · {view.run_page_url}" if final and view.run_page_url else ""))
        self._last_time = self._clock.monotonic()
        self.lines.append(line)
        if self._live:
            if not final:  # a line wider than the terminal would wrap, and \r returns to its last row
                line = _fit(line, shutil.get_terminal_size((120, 24)).columns - 1)
            # said open before the write: a Ctrl-C landing just after it still gets the line ended by close()
            self._open_line = not final
            self._write(f"\r\x1b[2K{line}" + ("\n" if final else ""))
        else:
            self._write(line + "\n")

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stdout
        stream.write(text)
        stream.flush()

    def _tick_loop(self) -> None:
        assert self._tick is not None
        while not self._clock.wait(self._stop, self._tick):
            self.tick()


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(1, width - 1)] + "…"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def elapsed_of(result: RunResult, clock: Clock, started: float) -> float:
    """Seconds the run has been going: from its own start time (so re-attaching does not restart at
    zero), to its end once it has one; before the first poll, since the watching began."""
    elapsed = result.elapsed(clock.wall())
    return max(0.0, clock.monotonic() - started) if elapsed is None else elapsed


# -- sweeps ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepRow:
    """One run of a sweep: ``elapsed`` is its running time (queue left out), ``queued`` its time in
    the queue, ``output`` its whole exit value (None until it has one)."""

    index: int
    params: str
    state: str
    colour: str
    elapsed: float | None
    run_id: int | None
    run_page_url: str | None
    queued: float = 0.0
    output: str | None = None


@dataclass(frozen=True)
class SweepView:
    """A sweep at one moment: one row a run, the counts, and a summary line."""

    rows: tuple[SweepRow, ...]
    done: int
    failed: int
    running: int
    queued: int
    waiting: int
    finished: bool
    line: str


def _params_text(params: dict[str, Any], limit: int = 60) -> str:
    text = ", ".join(f"{k}={v}" for k, v in params.items())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_sweep(results: list[RunResult | None], params: list[dict[str, Any]], now_ms: int) -> SweepView:
    """Describe a sweep for display (pure).

    Args:
        results: One entry per run, None for runs not launched yet.
        params: The parameter sets, in the same order.
        now_ms: The current time in epoch milliseconds (for the elapsed time of runs still going).
    """
    rows = []
    done = failed = running = queued = waiting = 0
    for index, (result, values) in enumerate(zip(results, params, strict=True)):
        if result is None:
            waiting += 1
            rows.append(SweepRow(index, _params_text(values), "WAITING", INFO, None, None, None, 0.0, None))
            continue
        if result.finished:
            done += result.ok
            failed += not result.ok
        elif result.life_cycle_state == "QUEUED":
            queued += 1
        else:
            running += 1
        state = (result.result_state if result.finished else None) or result.life_cycle_state or "LAUNCHING"
        elapsed = None
        if result.start_time:
            elapsed = max(0.0, ((result.end_time or now_ms) - result.start_time) / 1000 - result.queued)
        output = (
            result.output
            if result.output is not None
            else _last_line(result.failure_summary())
            if result.finished and not result.ok
            else None
        )
        rows.append(
            SweepRow(
                index,
                _params_text(values),
                state,
                _colour(result),
                elapsed,
                result.run_id,
                result.run_page_url,
                result.queued,
                output,
            )
        )
    total = len(rows)
    parts = [f"{done + failed}/{total} finished", f"{done} succeeded"]
    parts += [
        f"{n} {word}"
        for n, word in ((failed, "failed"), (running, "running"), (queued, "queued"), (waiting, "waiting"))
        if n
    ]
    return SweepView(
        rows=tuple(rows),
        done=done,
        failed=failed,
        running=running,
        queued=queued,
        waiting=waiting,
        finished=done + failed == total,
        line="sweep: " + " · ".join(parts),
    )


class TextSweepProgress:
    """The plain-text display of a sweep: the summary line whenever the counts change.

    Args:
        params: The parameter sets, in order.
        stream: Where lines go (default stdout).
    """

    def __init__(
        self, params: list[dict[str, Any]], stream: IO[str] | None = None, clock: Clock | None = None
    ) -> None:
        self._params = params
        self._clock = clock or SYSTEM
        self._stream = stream
        self._last: str | None = None
        self.lines: list[str] = []

    def __call__(self, results: list[RunResult | None]) -> None:
        view = describe_sweep(results, self._params, int(self._clock.wall() * 1000))
        if view.line == self._last:
            return
        self._last = view.line
        self.lines.append(terminal_text(view.line))
        print(self.lines[-1], file=self._stream or sys.stdout, flush=True)
        if view.finished:
            for row in view.rows:
                if row.colour == DANGER:
                    print(
                        terminal_text(
                            f"  run {row.run_id} ({row.params}): {row.state} {row.run_page_url or ''}"
                        ),
                        file=self._stream or sys.stdout,
                    )
