"""The session's run board (``%dbx_runs``): every run of this kernel, live, with Cancel and Watch.

``describe_board`` turns the session's handles into rows (pure); :class:`RunBoard` renders them as a
widget that refreshes itself from a small timer thread (its buttons get their clicks because the kernel
is idle between cells), ``text_board`` as a table for terminals. Each row has Cancel (a run going),
Watch (a run no one polls) and Repair (a run that ended without success).
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import NOTEBOOK, DatabricksError
from ..run.engine import STOPPED, RunHandle
from ..run.models import RunResult
from ..safe import terminal_text, web_link
from .progress import DANGER, INFO, SUCCESS, WARNING, describe, format_duration
from .session import NotebookSession

__all__ = ["BoardRow", "RunBoard", "describe_board", "text_board"]

_COLOURS = {INFO: "#1565c0", SUCCESS: "#2e7d32", DANGER: "#c62828", WARNING: "#ef6c00"}


@dataclass(frozen=True)
class BoardRow:
    """One run on the board, as shown (``key``: the handle's identity; two workspaces may share a run id)."""

    key: int
    run_id: int
    job: str
    url: str | None
    state: str
    colour: str
    elapsed: float | None
    eta: str
    result: str
    source: str
    watched: str
    can_cancel: bool
    can_watch: bool
    can_repair: bool
    params: str = ""
    """The parameters that differ from the job's defaults, ``k=v, ...``."""
    group: str | None = None
    """The sweep the run belongs to (its idempotency token's base), else None."""


COLUMNS = ("job", "run", "state", "elapsed", "ETA", "parameters", "watched", "result")
"""The text board's columns; the widget's are the same but "watched", which its state's hover says."""


def cut_words(text: str, limit: int) -> str:
    """``text`` whole when it fits, else cut at the last word boundary before ``limit``, with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,;:") + "…"


def _group(handle: RunHandle) -> str | None:
    token = handle.result.idempotency_token or ""
    if handle.source != "sweep" or "-" not in token:
        return None
    return f"{id(handle.client)}:{token.rsplit('-', 1)[0]}"


def _parameters(result: RunResult) -> dict[str, str]:
    """What sets the run apart: the parameters it sent that differ from the job's defaults; for a run
    this kernel did not launch, what the workspace says it ran with."""
    return result.changed_parameters if result.parameters else run_parameters(result)


def grouped(rows: list[BoardRow]) -> list[tuple[str | None, list[BoardRow]]]:
    """The rows in order, a sweep's runs together at the place of its newest run: ``(group, rows)``
    pairs, ``group`` None for a run of its own."""
    out: list[tuple[str | None, list[BoardRow]]] = []
    where: dict[str, list[BoardRow]] = {}
    for row in rows:
        if row.group is None:
            out.append((None, [row]))
        elif row.group in where:
            where[row.group].append(row)
        else:
            where[row.group] = [row]
            out.append((row.group, where[row.group]))
    return out


def group_title(rows: list[BoardRow]) -> str:
    """A sweep's header: its job, how many runs, how they stand."""
    ended = sum(1 for r in rows if not r.can_cancel)
    failed = sum(1 for r in rows if r.can_repair)
    going = len(rows) - ended
    parts = (
        [f"{ended} ended"] + ([f"{failed} failed"] if failed else []) + ([f"{going} going"] if going else [])
    )
    return f"sweep of {rows[0].job}: {len(rows)} runs · " + ", ".join(parts)


def _elapsed(handle: RunHandle, now_wall: float) -> float:
    elapsed = handle.result.elapsed(now_wall)
    return max(0.0, now_wall - handle.started_wall) if elapsed is None else elapsed


def _verdict(handle: RunHandle) -> str:
    from .notices import one_line_reason

    result = handle.result
    if result.finished:
        state = result.result_state or result.life_cycle_state or "UNKNOWN"
        reason = "" if result.ok else one_line_reason(result)
        return f"{state}: {reason}" if reason else state
    if handle.error is not None:
        return f"watching stopped: {handle.error.message}"
    return ""


def _how_watched(mode: str) -> str:
    return "not watched" if mode == STOPPED else "watched"


def latest_per_run(handles: list[RunHandle]) -> list[RunHandle]:
    """One handle per run (a wait, a repair or a re-watch makes another): the latest, newest run first."""
    latest: dict[tuple[int, int], RunHandle] = {}
    for handle in handles:  # oldest first: a later handle of the same run replaces an earlier one
        key = (id(handle.client), handle.run_id)
        latest.pop(key, None)
        latest[key] = handle
    first_seen: dict[tuple[int, int], float] = {}
    for handle in handles:
        first_seen.setdefault((id(handle.client), handle.run_id), handle.started_wall)
    return sorted(latest.values(), key=lambda h: first_seen[(id(h.client), h.run_id)], reverse=True)


def describe_board(
    handles: list[RunHandle], now_wall: float, mask: Callable[[str], str] = str
) -> list[BoardRow]:
    """The board's rows, newest run first (pure: same handles, same time, same rows); ``mask`` hides
    credentials a run's own error text may quote."""
    rows = []
    for handle in latest_per_run(handles):
        result = handle.result
        elapsed = _elapsed(handle, now_wall)
        view = describe(result, elapsed)
        eta = ""
        if not result.finished and view.eta is not None:
            eta = "late" if view.overrun else f"~{format_duration(view.eta)}"
        mode = handle.mode
        watched = "done" if result.finished else _how_watched(mode)
        state = view.state
        if mode == STOPPED and result.life_cycle_state is None and not result.finished:
            state = "STARTED"  # launched and never polled (--no-wait): its state is not known here
        rows.append(
            BoardRow(
                key=id(handle),
                run_id=handle.run_id,
                job=(result.job_name or (str(result.job_id) if result.job_id else "?"))
                + (f" · repair {result.round}" if result.round else ""),
                url=web_link(result.run_page_url),
                state=state,
                colour=view.colour,
                elapsed=elapsed,
                eta=eta,
                result=mask(_verdict(handle) or ("" if result.finished else view.message)),  # why it waits
                source=handle.source,
                watched=watched,
                can_cancel=not result.finished,
                can_watch=not result.finished and mode == STOPPED,
                can_repair=result.finished and result.result_state not in (None, "SUCCESS", "CANCELED"),
                params=mask(", ".join(f"{k}={v}" for k, v in _parameters(result).items())),
                group=_group(handle),
            )
        )
    return rows


def text_board(handles: list[RunHandle], now_wall: float, mask: Callable[[str], str] = str) -> str:
    """The board as a plain-text table (for terminals): a sweep's runs indented under its title, the
    result whole in the last column."""
    rows = describe_board(handles, now_wall, mask)
    if not rows:
        return "No runs in this session yet: `%%dbx_run JOB --background` starts one."
    table: list[tuple[str, ...]] = [tuple(c.lower() if c != "ETA" else "eta" for c in COLUMNS)]
    titles: dict[int, str] = {}
    for group, members in grouped(rows):
        if group is not None:
            titles[len(table)] = group_title(members)
        for row in members:
            job = f"  {row.job}" if group is not None else row.job
            elapsed = format_duration(row.elapsed)
            params = cut_words(row.params, 40)
            table.append((job, str(row.run_id), row.state, elapsed, row.eta, params, row.watched, row.result))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    lines = []
    for index, r in enumerate(table):
        if index in titles:
            lines.append(titles[index])
        cells = "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True))
        lines.append((cells + "  " + r[-1]).rstrip())
    links = [f"  run {row.run_id}: {row.url}" for row in rows if row.url]
    return terminal_text("\n".join(lines + links))


def run_parameters(result: RunResult) -> dict[str, str]:
    """The parameters a run ran with: what the workspace says (every job parameter with its value, or
    the notebook parameters sent), with what this session sent over them."""
    from ..run.polling import run_parameters as ran_with

    return {**ran_with(result.run or {}), **result.parameters}


def _badge(state: str, colour: str) -> str:
    return (
        f'<span class="dbx-state-badge" style="background:{_COLOURS[colour]};color:white;'
        f'padding:1px 8px;border-radius:8px;font-weight:bold">{html.escape(state)}</span>'
    )


_WIDGET_COLUMNS = ("job", "run", "state", "elapsed", "ETA", "parameters", "result")
_WIDTHS = ("132px", "52px", "104px", "70px", "56px", "130px", "")  # the result takes what is left
_RESULT_CHARS = 60  # about two lines of the result column; the whole text is on hover


def _cell_layout(width: str) -> Any:
    import ipywidgets as widgets

    if not width:  # the result: grows into the room left, shrinks before anything else does
        return widgets.Layout(flex="1 1 180px", min_width="120px", padding="0 8px 0 0")
    return widgets.Layout(width=width, flex="0 0 auto", padding="0 8px 0 0")


def _hover(text: str, limit: int) -> str:
    """Small text cut at a word boundary, the whole of it on hover (``title``)."""
    shown = cut_words(text, limit)
    title = f' title="{html.escape(text)}"' if shown != text else ""
    return f'<small style="line-height:1.3"{title}>{html.escape(shown)}</small>'


class _Row:
    """The widgets of one board row, updated in place."""

    def __init__(self, board: RunBoard, handle: RunHandle) -> None:
        import ipywidgets as widgets

        self.handle = handle
        self.cells = [widgets.HTML(layout=_cell_layout(w)) for w in _WIDTHS]
        for name, cell in zip(
            ("job", "run", "state", "elapsed", "eta", "params", "result"), self.cells, strict=True
        ):
            cell.add_class(f"dbx-board-{name}")
        self.cancel = widgets.Button(
            description="Cancel", button_style=DANGER, icon="stop", layout=widgets.Layout(width="90px")
        )
        self.cancel.add_class("dbx-board-cancel")
        self.cancel.on_click(lambda _b: board._act(self, "cancel"))
        self.watch = widgets.Button(
            description="Watch", button_style=INFO, icon="eye", layout=widgets.Layout(width="90px")
        )
        self.watch.add_class("dbx-board-watch")
        self.watch.on_click(lambda _b: board._act(self, "watch"))
        self.repair = widgets.Button(
            description="Repair", button_style=WARNING, icon="wrench", layout=widgets.Layout(width="90px")
        )
        self.repair.add_class("dbx-board-repair")
        self.repair.tooltip = "rerun the failed tasks and the tasks after them"
        self.repair.on_click(lambda _b: board._act(self, "repair"))
        self.actions = widgets.HBox([self.cancel, self.watch, self.repair])
        self.actions.add_class("dbx-board-actions")
        self.line = widgets.HBox([*self.cells, self.actions])
        self.editor = widgets.VBox([])
        self.editor.add_class("dbx-board-editor")
        self.box = widgets.VBox([self.line, self.editor])
        self.box.add_class("dbx-board-row")
        self.box.add_class(f"dbx-board-run-{handle.run_id}")
        self._board = board

    def open_editor(self, params: dict[str, str]) -> None:
        """Show the repair editor: one text box per parameter, pre-filled, and Repair / Close."""
        import ipywidgets as widgets

        boxes = []
        for name, value in params.items():
            box = widgets.Text(value=value, description=name, style={"description_width": "120px"})
            box.add_class("dbx-board-param")
            boxes.append(box)
        go = widgets.Button(description="Repair", button_style=WARNING, icon="wrench")
        go.add_class("dbx-board-repair-go")
        close = widgets.Button(description="Close", icon="times")
        close.add_class("dbx-board-repair-close")

        def send(_b: Any) -> None:
            edited = {b.description: b.value for b in boxes}
            self.editor.children = ()
            # the whole set when any value changed (explicit), else none: the run's own values stay
            self._board.repair(self.handle, edited if edited != params else None)

        go.on_click(send)
        close.on_click(lambda _b: setattr(self.editor, "children", ()))
        note = widgets.HTML(
            "<small>Repair reruns the failed tasks and the tasks after them with these parameters.</small>"
            if boxes
            else "<small>This run has no parameters to change.</small>"
        )
        self.editor.children = (note, *boxes, widgets.HBox([go, close]))

    def show(self, row: BoardRow) -> None:
        link = (
            f'<a class="dbx-run-link" href="{html.escape(row.url)}" target="_blank" rel="noopener" '
            f'style="color:#1565c0;text-decoration:underline">{row.run_id}</a>'
            if row.url
            else str(row.run_id)
        )
        job = html.escape(cut_words(row.job, 30))
        if row.group is not None:  # a run of a sweep: under the sweep's title
            job = f'<span style="padding-left:12px">&#8627; {job}</span>'
        values = [
            f'<span title="{html.escape(row.job)}">{job}</span>',
            link,
            f'<span title="{html.escape(row.watched)}">{_badge(row.state, row.colour)}</span>',
            format_duration(row.elapsed),
            html.escape(row.eta),
            _hover(row.params, 34),
            _hover(row.result, _RESULT_CHARS),
        ]
        for cell, value in zip(self.cells, values, strict=True):
            if cell.value != value:
                cell.value = value
        self.cancel.layout.display = None if row.can_cancel else "none"
        self.watch.layout.display = None if row.can_watch else "none"
        self.repair.layout.display = None if row.can_repair else "none"


class RunBoard:
    """A live board of a session's runs: job, linked run id, state colour (how it is watched on hover),
    elapsed, ETA, the parameters that differ from the job's defaults, result (whole on hover), with
    Cancel, Watch for runs no one polls, and Repair for runs that failed; a sweep's runs under its
    title. ``widget`` is the box to display.

    Args:
        session: Whose runs to show (new ones get a row as they appear).
        tick: Seconds between refreshes (real seconds: the board redraws on a timer thread).
    """

    def __init__(self, session: NotebookSession, *, tick: float = 1.0) -> None:
        import ipywidgets as widgets

        self.session = session
        self._tick = tick
        self._rows: dict[int, _Row] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        header = widgets.HBox(
            [
                widgets.HTML(f"<b>{name}</b>", layout=_cell_layout(w))
                for name, w in zip(_WIDGET_COLUMNS, _WIDTHS, strict=True)
            ]
        )
        header.add_class("dbx-board-header")
        self._groups: dict[str, Any] = {}
        self._said_about: RunHandle | None = None
        self.summary = widgets.HTML()
        self.summary.add_class("dbx-board-summary")
        self.message = widgets.HTML()
        self.message.add_class("dbx-board-message")
        self.body = widgets.VBox([])
        self.widget = widgets.VBox([self.summary, header, self.body, self.message])
        self.widget.add_class("dbx-board")
        self.live: Any = None
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="dbx-board", daemon=True)
        self._thread.start()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):  # where the widget cannot render (a saved notebook), the table
            bundle["text/plain"] = text_board(
                self.session.handles, self.session.clock.wall(), self.session.mask
            )
        return bundle

    def __repr__(self) -> str:
        return f"RunBoard({len(self._rows)} runs)"

    def _ipython_display_(self) -> None:
        """Shown as a live output whose text is the table; when the kernel stops, the table as it last
        read and what shows the runs again."""
        from .live import show_widget

        self.live = show_widget(
            self.session.lives,
            self.widget,
            self.plain,
            "This board was live while its kernel ran: in a new kernel, `%load_ext dbx_magic` watches "
            "this notebook's runs again and `%dbx_runs` shows them.",
        )

    def plain(self) -> str:
        """The board as a table of text (its ``text/plain``)."""
        return text_board(self.session.handles, self.session.clock.wall(), self.session.mask)

    def refresh(self) -> None:
        """Show the runs as they are now (new runs get a row)."""
        handles = self.session.handles
        rows = describe_board(handles, self.session.clock.wall(), self.session.mask)
        by_key = {id(h): h for h in handles}
        with self._lock:
            for row in rows:
                if row.key not in self._rows:
                    self._rows[row.key] = _Row(self, by_key[row.key])
                self._rows[row.key].show(row)
            order = tuple(self._boxes(grouped(rows)))
            if tuple(self.body.children) != order:
                self.body.children = order
        going = sum(1 for r in rows if r.can_cancel)
        text = f"{len(rows)} run{'s' if len(rows) != 1 else ''} in this session · {going} going"
        self.summary.value = f"<b>{html.escape(text)}</b>"
        about = self._said_about
        if about is not None and about.result.finished:  # a status line ends with its run
            self._said_about = None
            self.message.value = ""

    def _boxes(self, groups: list[tuple[str | None, list[BoardRow]]]) -> list[Any]:
        """The body's boxes: a run's row; a sweep's title, then its runs' rows indented."""
        import ipywidgets as widgets

        boxes: list[Any] = []
        for group, rows in groups:
            if group is None:
                boxes.append(self._rows[rows[0].key].box)
                continue
            title = self._groups.get(group)
            if title is None:
                title = self._groups[group] = widgets.HTML()
                title.add_class("dbx-board-group")
            value = f"<b>{html.escape(group_title(rows))}</b>"
            if title.value != value:
                title.value = value
            boxes.append(title)
            for row in rows:
                box = self._rows[row.key].box
                box.add_class("dbx-board-in-sweep")
                boxes.append(box)
        return boxes

    def close(self) -> None:
        """Stop refreshing (the board stays on screen as last drawn)."""
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._tick):
            try:
                self.refresh()
                if self.live is not None:
                    if self.live.settled:
                        return
                    self.live.refresh()
            except Exception:  # a frontend gone: stop quietly
                return

    def _act(self, row: _Row, action: str) -> None:
        handle = row.handle
        button = getattr(row, action)
        button.disabled = True
        try:
            if action == "cancel":
                self._say(handle.cancel().line(NOTEBOOK), about=handle)
            elif action == "watch":
                handle.notify = True  # watched on request: its end is announced, and fills its name
                handle.resume()
                self._say(f"Watching run {handle.run_id}: a notice comes when it ends.", about=handle)
            else:
                self._repair(handle)
        except DatabricksError as exc:  # shown as a notebook says it (the magics to use, not Python calls)
            self._say(exc.render(NOTEBOOK))
        except Exception as exc:  # shown, never lost
            self._say(f"{action.capitalize()} of run {handle.run_id} failed ({type(exc).__name__}: {exc}).")
        finally:
            button.disabled = False
        self.refresh()

    def _repair(self, handle: RunHandle) -> None:
        """Open the row's repair editor, pre-filled with the failed run's parameters (a run that cannot
        be repaired is refused here, nothing sent)."""
        from ..run.repair import Repair

        Repair.check(handle.result, None)
        row = self._rows.get(id(handle))
        if row is not None:
            row.open_editor(run_parameters(handle.result))
            self._say(f"Repair run {handle.run_id}: change its parameters if needed, then Repair.")

    def repair(self, handle: RunHandle, params: dict[str, str] | None = None) -> None:
        """Repair the run as the editor's Repair does: its failed tasks and the tasks after them, with
        ``params`` (changed parameters); a new round of the same row, watched by the session's watcher.
        The request goes out from a worker thread, so the kernel stays idle."""
        self._say(f"Repairing run {handle.run_id}: its failed tasks and the tasks after them…")
        handle.notify = True  # its end is announced, and fills the names holding it
        threading.Thread(
            target=self._repair_work, args=(handle, params or {}), name="dbx-board-repair", daemon=True
        ).start()

    def _repair_work(self, handle: RunHandle, params: dict[str, str]) -> None:
        try:
            handle.repair(notebook_params=params or None)
            self._say(f"Repairing run {handle.run_id} (repair {handle.round}): a notice comes when it ends.")
        except DatabricksError as exc:
            self._say(exc.render(NOTEBOOK))
        except Exception as exc:  # shown on the board, never lost in a thread
            self._say(
                f"Repairing run {handle.run_id} failed ({type(exc).__name__}: {exc}); please report it."
            )

    def _say(self, text: str, about: RunHandle | None = None) -> None:
        """A status line under the board; one ``about`` a run going is taken away when the run ends."""
        self._said_about = about
        self.message.value = f"<small>{html.escape(self.session.mask(text))}</small>"
