"""The live progress widget. It only renders: every word and colour comes from ``progress.describe``.

Elapsed time ticks every second from a small timer thread, whatever the poll interval; widget
updates from a thread reach the frontend even while a cell is busy (outgoing messages are not
blocked, only incoming clicks are). While ``%%dbx_run`` blocks the cell the kernel sees no clicks,
so there the widget shows no Cancel button and points at the kernel's interrupt instead.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..clock import SYSTEM, Clock, as_clock
from ..run.models import RunResult
from ..run.render import GOING_STATES
from ..safe import web_link
from .progress import DANGER, INFO, SUCCESS, WARNING, View, describe, elapsed_of, format_duration

__all__ = ["ProgressWidget", "Shown", "SweepWidget"]

_COLOURS = {INFO: "#1565c0", SUCCESS: "#2e7d32", DANGER: "#c62828", WARNING: "#ef6c00"}


def _bar_value(view: View) -> float:
    """The bar's fill: the estimate when there is one; without history, a pulse that shows life."""
    if view.finished:
        return 1.0
    if view.fraction is not None:
        return view.fraction
    return (view.elapsed % 4.0) / 4.0


def _badge(state: str, colour: str) -> str:
    # A fixed minimum width, so a table's columns do not shift when a state's word changes.
    return (
        f'<span class="dbx-state-badge" style="background:{_COLOURS[colour]};color:white;'
        "padding:1px 8px;border-radius:8px;font-weight:bold;display:inline-block;min-width:96px;"
        f'text-align:center">{html.escape(state)}</span>'
    )


def _count_colour(state: str) -> str:
    """The colour of a state in a wide run's counts (going, succeeded, or anything else: failed)."""
    if state in GOING_STATES:
        return INFO
    return SUCCESS if state.startswith("SUCCESS") else DANGER


def _link(url: str | None, text: str) -> str:
    """A link that looks like one (JupyterLab's widgets show anchors as plain text otherwise); only
    an http(s) URL becomes a link."""
    url = web_link(url)
    if not url:
        return html.escape(text)
    return (
        f'<a class="dbx-run-link" href="{html.escape(url)}" target="_blank" rel="noopener" '
        f'style="color:#1565c0;text-decoration:underline">{html.escape(text)}</a>'
    )


def _folded(text: str, limit: int = 80) -> str:
    """A value whole: as it is when short, behind a click (its start shown) when long."""
    esc = html.escape
    if len(text) <= limit:
        return f'<span style="white-space:pre-wrap">{esc(text)}</span>'
    return (
        f"<details><summary>{esc(text[: limit - 1])}…</summary>"
        f'<pre style="white-space:pre-wrap;margin:0">{esc(text)}</pre></details>'
    )


_SWEEP_COLUMNS = (
    ("#", "4%"),
    ("parameters", "26%"),
    ("state", "14%"),
    ("ran", "14%"),
    ("run", "8%"),
    ("output", "34%"),
)


def _sweep_table(rows: Any) -> str:
    """The sweep's grid: fixed columns, running time with the queue said apart, outputs whole."""
    cell = 'style="text-align:left;vertical-align:top;overflow-wrap:anywhere"'
    head = "".join(f'<col style="width:{width}">' for _, width in _SWEEP_COLUMNS)
    titles = "".join(f"<th {cell}>{name}</th>" for name, _ in _SWEEP_COLUMNS)
    body = []
    for row in rows:
        ran = format_duration(row.elapsed) if row.elapsed is not None else ""
        if ran and row.queued >= 1:
            ran += f" (+{format_duration(row.queued)} queued)"
        body.append(
            f"<tr><td {cell}>{row.index}</td><td {cell}>{html.escape(row.params)}</td>"
            f"<td {cell}>{_badge(row.state, row.colour)}</td><td {cell}>{ran}</td>"
            f"<td {cell}>{_link(row.run_page_url, str(row.run_id or ''))}</td>"
            f"<td {cell}>{_folded(row.output) if row.output else ''}</td></tr>"
        )
    return (
        f'<table class="dbx-sweep-table" style="table-layout:fixed;width:100%"><colgroup>{head}</colgroup>'
        f"<tr>{titles}</tr>{''.join(body)}</table>"
    )


def _has_results(result: RunResult | None) -> bool:
    """True when the run has notebook tasks whose results pages can be fetched."""
    return (
        result is not None
        and result.client is not None
        and any(t.notebook_path and t.run_id is not None for t in result.tasks)
    )


def html_to_text(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", markup)).strip()


class Snapshot:
    """A static copy of a display's last state: HTML that hides itself while the live widget is
    mounted in the same output area (so it is seen only where the widget cannot be, as in a saved
    notebook reopened without its kernel), and plain text for viewers without HTML."""

    def __init__(self, body: str, text: str) -> None:
        self.body, self.text = body, text

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, str]:
        hide = "<style>.jp-OutputArea:has(.dbx-progress) .dbx-progress-snapshot{display:none}</style>"
        return {
            "text/html": f'{hide}<div class="dbx-progress-snapshot">{self.body}</div>',
            "text/plain": self.text,
        }


class Shown:
    """A display that can take itself off the page: ``widget`` is its box, ``place`` the display
    handle it was shown with (set by whoever displayed it; None inside a form)."""

    widget: Any
    place: Any = None
    withdrawn: bool = False

    def withdraw(self) -> None:
        """The launch was refused before any run existed: take the display off the page, so the
        one block shown is the error (in a cell, as for a mistake in the magic's line; in a form,
        its status line)."""
        self.withdrawn = True
        self.widget.layout.display = "none"
        live = getattr(self, "live", None)
        if live is not None:  # shown as a live output: emptied for good (no record comes after)
            live.settle({"text/plain": ""})
        elif self.place is not None:
            self.place.update({"text/plain": ""}, raw=True)


class ProgressWidget(Shown):
    """A run's live progress: name, linked run id, state colour, elapsed, bar with ETA, tasks, Cancel.

    Use it as ``on_update``; ``widget`` is the ipywidgets box to display.

    Args:
        cancel: Called when Cancel is clicked; None shows no Cancel button.
        blocking: True while the watching blocks the cell (``%%dbx_run``): the widget then says
            that the kernel's interrupt stops the waiting, instead of offering a button.
        cancel_on_interrupt: Whether an interrupt also cancels the run (for that hint).
        repair: Called when Repair is clicked; the button shows once the run ended without
            success, and only when this is given (where the kernel can take the click: a form's run,
            not a blocking cell).
        tick: Seconds between elapsed-time updates; None: no ticker thread (for tests on a fake clock,
            where a sleeping thread would move time).
        clock: The clock (elapsed time comes from the run's own start time once it is known).

    When the watching ends, for whatever reason (the run ended, the launch failed, the kernel was
    interrupted), the widget says so once and leaves no control live that can no longer act.
    """

    def __init__(
        self,
        *,
        cancel: Callable[[], Any] | None = None,
        blocking: bool = False,
        cancel_on_interrupt: bool = False,
        repair: Callable[[], Any] | None = None,
        tick: float | None = 1.0,
        clock: Clock | Callable[[], float] | None = None,
    ) -> None:
        self._clock = as_clock(clock)
        self._repair = repair
        self._started = self._clock.monotonic()
        self._tick = tick
        self._stopped: str | None = None  # why the watching ended before the run did
        self._blocking = blocking
        self._cancelling = False
        self._lock = threading.Lock()
        self._result: RunResult | None = None
        self._danger_seen = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._cancel = cancel

        self.header = widgets.HTML(value="Launching…")
        self.header.add_class("dbx-progress-header")
        self.state = widgets.HTML(value=_badge("LAUNCHING", INFO))
        self.state.add_class("dbx-progress-state")
        self.elapsed = widgets.HTML(value="elapsed 0:00")
        self.elapsed.add_class("dbx-progress-elapsed")
        self.bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style=INFO, description="")
        self.bar.add_class("dbx-progress-bar")
        self.message = widgets.HTML(value="")
        self.message.add_class("dbx-progress-message")
        self.tasks = widgets.HTML(value="")
        self.tasks.add_class("dbx-progress-tasks")
        self.cancel_button = widgets.Button(description="Cancel run", button_style=DANGER, icon="stop")
        self.cancel_button.add_class("dbx-progress-cancel")
        self.cancel_button.on_click(self._on_cancel)
        self.cancel_button.layout.display = None if cancel else "none"
        self.repair_button = widgets.Button(description="Repair", button_style=WARNING, icon="wrench")
        self.repair_button.add_class("dbx-progress-repair")
        self.repair_button.tooltip = "rerun the failed tasks and the tasks after them"
        self.repair_button.on_click(self._on_repair)
        self.repair_button.layout.display = "none"
        hint = ""
        if blocking:
            hint = "Interrupt the kernel (■) to stop waiting" + (
                "; the run will be cancelled." if cancel_on_interrupt else "; the run goes on."
            )
        self.hint = widgets.HTML(value=f"<small>{html.escape(hint)}</small>" if hint else "")
        self.hint.add_class("dbx-progress-hint")
        # Once the run is finished (the kernel then takes clicks), its notebooks' results on demand.
        self.results_button = widgets.Button(
            description="Results", icon="table", tooltip="show what the job's notebooks made"
        )
        self.results_button.add_class("dbx-progress-results")
        self.results_button.layout.display = "none"
        self.results_button.on_click(self._on_results)
        self.results_out = widgets.Output()
        self.results_out.add_class("dbx-progress-results-out")
        row = widgets.HBox(
            [self.state, self.elapsed, self.cancel_button, self.repair_button, self.results_button]
        )
        self.widget = widgets.VBox(
            [self.header, row, self.bar, self.message, self.tasks, self.hint, self.results_out]
        )
        self.widget.add_class("dbx-progress")
        self.live: Any = None
        """The output it is shown in (:meth:`show`); None while it is only a widget."""
        self._actions: Any = None

    def show(self, lives: Any = None) -> ProgressWidget:
        """Display it in the cell as a live output that gives way to a static record of the run's end
        (Results and Repair, when offered, then come in an output under it); ``lives`` (the session's
        :class:`~dbx_magic.notebook.live.Lives`) turns it into a "watching stopped" record when the
        kernel stops first."""
        from .live import STOPPED, Live, record

        def stopped() -> dict[str, str]:
            self._stop.set()
            self._stopped, self.hint.value = STOPPED, ""  # "a notice comes when it ends" no longer holds
            self._render()
            shot = self.snapshot()
            return record(
                f'<div class="dbx-progress dbx-progress-snapshot">{shot.body}</div>', shot.text, STOPPED
            )

        self.live = Live(self.widget, self.plain, on_stop=stopped)
        self.place = self.live.handle
        self._actions = Live(None, str, on_stop=lambda: {"text/plain": ""})  # no dead button is left
        if lives is not None:
            lives.add(self.live)
            lives.add(self._actions)
        return self

    def plain(self) -> str:
        """The display's state as a sentence (its ``text/plain``)."""
        return self.snapshot().text

    def settle(self) -> None:
        """The watching ended: the live output becomes the record of how it ended."""
        if self.live is None or self.live.settled:
            return
        from .live import record

        shot = self.snapshot()
        self.live.settle(
            record(f'<div class="dbx-progress dbx-progress-snapshot">{shot.body}</div>', shot.text)
        )
        offered = [b for b in (self.repair_button, self.results_button) if b.layout.display is None]
        if offered:
            actions = widgets.VBox([widgets.HBox(offered), self.results_out])
            actions.add_class("dbx-progress-actions")
            self._actions.show(actions)

    # -- on_update ------------------------------------------------------------------------------
    def __call__(self, result: RunResult) -> None:
        with self._lock:
            self._result = result
        self._render()
        if result.finished:
            self.close()
            return
        if self.live is not None:
            self.live.refresh()
        if self._ticker is None and self._tick is not None:
            self._ticker = threading.Thread(target=self._tick_loop, name="dbx-progress-tick", daemon=True)
            self._ticker.start()

    def view(self) -> View | None:
        """The View currently shown (None before the first update)."""
        with self._lock:
            result = self._result
        if result is None:
            return None
        return describe(result, self._elapsed(result))

    def close(self, note: str | None = None) -> None:
        """The watching ended: stop the clock and leave no live control. ``note`` (one short line)
        says why when the run itself has not ended (it then replaces the hint, and the ETA goes)."""
        self._stop.set()
        self._retire_cancel()
        finished = self._result is not None and self._result.finished
        if note is not None and not finished:
            self._stopped = note
            self.hint.value = f"<small>{html.escape(note)}</small>"
            self._render()
        if finished or note is not None:
            self.settle()

    def snapshot(self) -> Snapshot:
        """The widget as it reads now, as static HTML (and a line of text): what a saved notebook
        shows when it is reopened without the kernel, where the live widget cannot render. While the
        live widget is on the page, a style rule hides it."""
        view = self.view()
        body = "".join(
            (
                f'<div class="dbx-progress-header">{self.header.value}</div>',
                f'<div><span class="dbx-progress-state">{self.state.value}</span> '
                f'<span class="dbx-progress-elapsed">{self.elapsed.value}</span></div>',
                f'<div class="dbx-progress-message">{self.message.value}</div>' if self.message.value else "",
                self.tasks.value,
                f'<div class="dbx-progress-hint">{self.hint.value}</div>',
            )
        )
        return Snapshot(body, view.line if view is not None else html_to_text(self.header.value))

    def withdraw(self) -> None:
        """As :meth:`Shown.withdraw`, the clock stopped and Cancel retired too."""
        self._stop.set()
        self._retire_cancel()
        super().withdraw()

    def not_started(self, reason: str) -> None:
        """The launch failed: no run exists, and the widget must not pretend one does."""
        self._stop.set()
        self._retire_cancel()
        self.header.value = "<b>Not started</b>"
        self.state.value = _badge("NOT STARTED", DANGER)
        self.elapsed.value = ""
        self.bar.layout.display = "none"
        self.message.value = f"<small>{html.escape(reason)}</small>"
        self.hint.value = ""
        self.settle()

    def _retire_cancel(self) -> None:
        self.cancel_button.disabled = True
        self.cancel_button.layout.display = "none"

    # -- rendering ------------------------------------------------------------------------------
    def _elapsed(self, result: RunResult) -> float:
        return elapsed_of(result, self._clock, self._started)

    def _render(self) -> None:
        view = self.view()
        if view is None:
            return
        # A later success never paints over a danger.
        colour = DANGER if self._danger_seen else view.colour
        self._danger_seen = colour == DANGER
        link = _link(view.run_page_url, f"run {view.run_id}")
        name = view.title.rsplit(" · run ", 1)[0] if " · run " in view.title else ""
        self.header.value = f"<b>{html.escape(name)}</b> · {link}" if name else link
        self.state.value = _badge(view.state, colour)
        self.elapsed.value = self._elapsed_text(view)
        self.bar.bar_style = colour
        self.bar.value = _bar_value(view)
        self.message.value = f"<small>{html.escape(view.message)}</small>" if view.message else ""
        # A blocking cell shows the result's own table below once the run succeeded: not twice.
        shown_below = self._blocking and view.finished and self._result is not None and self._result.ok
        self.tasks.value = "" if shown_below else self._task_table(view)
        if view.finished:
            self._retire_cancel()
            self.hint.value = ""
            if self._repair is not None and view.colour == DANGER:
                self.repair_button.layout.display = None
            if _has_results(self._result):
                self.results_button.layout.display = None

    def _on_results(self, _button: Any) -> None:
        """Fetch the run's results pages and show them below, in isolated frames."""
        from IPython.display import HTML

        result = self._result
        if result is None:
            return
        self.results_button.disabled = True
        try:
            page = result.show()
        except Exception as exc:  # shown, never lost
            self.message.value = f"<small>The results could not be fetched: {html.escape(str(exc))}</small>"
            return
        finally:
            self.results_button.disabled = False
        self.results_out.outputs = ()
        self.results_out.append_display_data(HTML(page._repr_html_()))

    def _elapsed_text(self, view: View) -> str:
        if view.finished:
            return f"took {format_duration(view.elapsed)}"
        text = f"elapsed {format_duration(view.elapsed)}"
        if self._stopped is not None:
            return text + " · no longer watched"
        if self._cancelling:
            return text + " · cancelling"
        if view.eta is not None:
            text += " · overrunning" if view.overrun else f" · ~{format_duration(view.eta)} left"
        return text

    @staticmethod
    def _task_table(view: View) -> str:
        if len(view.tasks) < 2 and not any(t.note for t in view.tasks):
            return ""
        counts = ""
        if view.counts:  # a wide run: counts by state, its failed tasks first, the rest folded
            badges = " ".join(f"{n} {_badge(state, _count_colour(state))}" for state, n in view.counts)
            counts = f'<div class="dbx-task-counts">{sum(n for _, n in view.counts)} tasks: {badges}</div>'
        more = f'<tr><td colspan="4">… and {view.folded} more</td></tr>' if view.folded else ""
        rows = "".join(
            f"<tr><td>{html.escape(t.key)}</td><td>{_badge(t.state, t.colour)}</td>"
            f'<td class="dbx-task-note">{html.escape(t.note)}</td>'
            f"<td>{html.escape(t.detail[:120])}</td></tr>"
            for t in view.tasks
        )
        head = "<tr><th>task</th><th>state</th><th></th><th></th></tr>"
        return f'{counts}<table class="dbx-task-table">{head}{rows}{more}</table>'

    def _tick_loop(self) -> None:
        assert self._tick is not None
        while not self._clock.wait(self._stop, self._tick):
            view = self.view()
            if view is None or view.finished or self._stopped is not None:
                return
            self.elapsed.value = self._elapsed_text(view)
            self.bar.value = _bar_value(view)

    def _on_repair(self, _button: Any) -> None:
        if self._repair is None:
            return
        self.repair_button.disabled = True
        self.repair_button.description = "Repairing…"
        try:
            self._repair()
        except Exception as exc:  # shown, never lost
            self.message.value = f"<small>Repair failed: {html.escape(str(exc))}</small>"
            self.repair_button.disabled = False
            self.repair_button.description = "Repair"

    def _on_cancel(self, _button: Any) -> None:
        if self._cancel is None:
            return
        self.cancel_button.disabled = True  # stays so through TERMINATING: asked once is enough
        self.cancel_button.description = "Cancelling…"
        self._cancelling = True
        try:
            self._cancel()
        except Exception as exc:  # shown, never lost
            self._cancelling = False
            self.message.value = f"<small>Cancel failed: {html.escape(str(exc))}</small>"
            self.cancel_button.disabled = False
            self.cancel_button.description = "Cancel run"


class SweepWidget(Shown):
    """A sweep's live grid: one row a run (parameters, state colour, elapsed, link), a summary line,
    and Cancel all (only where clicks can arrive).

    Use it as ``on_update`` for ``run_many``; ``widget`` is the box to display.

    Args:
        params: The parameter sets, in order.
        cancel_all: Called when Cancel all is clicked; None shows no button.
        blocking: True while the sweep blocks the cell: the widget points at the kernel's interrupt.
    """

    def __init__(
        self,
        params: list[dict[str, Any]],
        *,
        cancel_all: Callable[[], Any] | None = None,
        blocking: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self._params = params
        self._clock = clock or SYSTEM
        self._cancel_all = cancel_all
        self.summary = widgets.HTML(value=f"sweep: {len(params)} runs to launch")
        self.summary.add_class("dbx-sweep-summary")
        self.grid = widgets.HTML(value="")
        self.grid.add_class("dbx-sweep-grid")
        self.cancel_button = widgets.Button(description="Cancel all", button_style=DANGER, icon="stop")
        self.cancel_button.add_class("dbx-sweep-cancel")
        self.cancel_button.layout.display = None if cancel_all else "none"
        self.cancel_button.on_click(lambda _b: self._on_cancel())
        hint = "Interrupt the kernel (■) to stop waiting; the runs go on." if blocking else ""
        self.hint = widgets.HTML(value=f"<small>{hint}</small>" if hint else "")
        self.widget = widgets.VBox([widgets.HBox([self.summary, self.cancel_button]), self.grid, self.hint])
        self.widget.add_class("dbx-sweep")
        self.live: Any = None
        self._rows: Any = ()

    def __call__(self, results: list[RunResult | None]) -> None:
        from .progress import describe_sweep

        view = describe_sweep(results, self._params, int(self._clock.wall() * 1000))
        self._rows = view.rows
        self.summary.value = f"<b>{html.escape(view.line)}</b>"
        self.grid.value = _sweep_table(view.rows)
        if view.finished:
            self.cancel_button.layout.display = "none"
            self.hint.value = ""
            if self.live is not None:
                from .live import record

                body = f'<div class="dbx-sweep-summary">{self.summary.value}</div>{self.grid.value}'
                self.live.settle(record(f'<div class="dbx-sweep">{body}</div>', self.plain()))
        elif self.live is not None:
            self.live.refresh()

    def show(self) -> SweepWidget:
        """Display it in the cell as a live output that gives way to a static record at the sweep's end."""
        from .live import Live

        self.live = Live(self.widget, self.plain)
        self.place = self.live.handle
        return self

    def plain(self) -> str:
        """The sweep's state as a sentence, then one line a run (its ``text/plain``)."""
        return html_to_text(self.summary.value) + "".join(
            f"\n  #{row.index} {row.params}: {row.state}" + (f" (run {row.run_id})" if row.run_id else "")
            for row in self._rows
        )

    def _on_cancel(self) -> None:
        if self._cancel_all is None:
            return
        self.cancel_button.disabled = True
        try:
            self._cancel_all()
        except Exception as exc:  # shown, never lost
            self.hint.value = f"<small>Cancel failed: {html.escape(str(exc))}</small>"
            self.cancel_button.disabled = False
