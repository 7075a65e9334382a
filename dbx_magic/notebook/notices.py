"""A notice when a background run ends, wherever the user is: on the page, in the browser, in a terminal.

In a notebook the notice travels as an anywidget custom message (``widget.send``), which the frontend
does not replay when a saved notebook is reopened, so a notice fires once. The page shows it as a
small pill in the free right end of the menu bar (``notices.js``: never over a cell; at most three,
older ones fold into "N more"; a click shows its details, x dismisses it; a success goes by itself
after ``fade`` seconds, a failure stays), the browser shows a system notification where the user
allowed them (the small link under a background cell asks), and JupyterLab lists it in its
notification center where the server exposes the app (``--LabApp.expose_app_in_browser``).
``IPython.display.Javascript`` is not used: saved Javascript outputs run again on reload.

In a terminal IPython the notice is one printed line. Without anywidget (an optional dependency) a
notebook still shows the end in the cell's own progress widget, and the log says why no notice came.
"""

from __future__ import annotations

import logging
import pathlib
import sys
import threading
import uuid
from collections.abc import Callable
from typing import IO, Any

from ..errors import ResourceDoesNotExist
from ..run.engine import RunHandle
from ..run.models import RunResult
from ..safe import terminal_text, web_link
from .progress import format_duration

__all__ = ["Notice", "Notices", "notice_for", "one_line_reason"]

log = logging.getLogger(__name__)


#: Seconds a success notice stays on the page by default (``%config DbxMagics.notice_seconds``).
NOTICE_SECONDS = 20.0


class Notice:
    """What one notice says: a title, a body line, a level (success, danger, warning), the run's link,
    and ``short``, the few words its pill shows (``job: STATE``)."""

    def __init__(
        self, run_id: int, title: str, body: str, level: str, url: str | None, short: str = ""
    ) -> None:
        self.run_id, self.title, self.body, self.level = run_id, title, body, level
        self.url = web_link(url)  # only an http(s) link becomes the notice's link
        self.short = short or f"run {run_id}"

    @property
    def line(self) -> str:
        """The notice as one line of text, safe for a terminal."""
        return terminal_text(f"{self.title} {self.body}".strip())

    def message(self, fade: float | None = NOTICE_SECONDS) -> dict[str, Any]:
        """The message the page receives; ``fade``: seconds a success stays (None or 0: until dismissed)."""
        return {
            "kind": "dbx-run-ended",
            "id": f"{self.run_id}-{uuid.uuid4().hex[:12]}",
            "run_id": self.run_id,
            "title": self.title,
            "body": self.body,
            "short": self.short,
            "level": self.level,
            "url": self.url,
            "fade": fade or None,
        }

    def __repr__(self) -> str:
        return f"Notice({self.line!r})"


def one_line_reason(result: RunResult) -> str:
    """The one-line reason a run did not succeed (its failing task's error first), at most 200 characters."""
    reason = " ".join(result.cause().split())
    return reason if len(reason) <= 200 else reason[:199] + "…"


def notice_for(handle: RunHandle, names: list[str] | None = None) -> Notice:
    """The notice for a run that ended (or whose watching stopped on an error); ``names``: the
    notebook names that hold it now (default: its ``--out`` name)."""
    result = handle.result
    name = f" of {result.job_name!r}" if result.job_name else ""
    names = ([handle.out] if handle.out else []) if names is None else names
    notice = _notice(handle, result, name, names)
    job = result.job_name or f"run {handle.run_id}"
    job = job if len(job) <= 28 else job[:27] + "…"
    state = result.result_state or result.life_cycle_state or "UNKNOWN"
    notice.short = f"{job}: {state if result.finished else 'not watched'}"
    return notice


def _notice(handle: RunHandle, result: RunResult, name: str, names: list[str]) -> Notice:
    where = f" The result is in {', '.join(f'`{n}`' for n in names)}." if names else ""
    if not result.finished:
        error = handle.error
        if isinstance(error, ResourceDoesNotExist):  # nothing goes on: the workspace has no such run
            return Notice(
                handle.run_id, f"Stopped watching run {handle.run_id}{name}.", error.message, "warning", None
            )
        text = error.message if error is not None else "the watching stopped"
        return Notice(
            handle.run_id,
            f"Stopped watching run {handle.run_id}{name}.",
            f"{text.rstrip('.')}; the run goes on in the workspace.",
            "warning",
            result.run_page_url,
        )
    took = f" in {format_duration(result.duration)}" if result.duration is not None else ""
    state = result.result_state or result.life_cycle_state or "UNKNOWN"
    if result.ok:
        return Notice(
            handle.run_id,
            f"Run {handle.run_id}{name} ended {state}{took}.",
            where.strip(),
            "success",
            result.run_page_url,
        )
    reason = one_line_reason(result)
    body = (f"{reason[0].upper()}{reason[1:].rstrip('.')}." if reason else "") + where
    since = result.since_success
    body += f" {since[0].upper()}{since[1:]}." if since else ""
    return Notice(
        handle.run_id,
        f"Run {handle.run_id}{name} ended {state}{took}.",
        body.strip(),
        "danger",
        result.run_page_url,
    )


class Notices:
    """One session's notice channel: the page (in a kernel with anywidget) or printed lines (a terminal).

    Args:
        page: True in a kernel with a widget frontend, False in a terminal.
        stream: Where terminal lines go (default: the real standard output).
    """

    def __init__(
        self,
        page: bool,
        stream: IO[str] | None = None,
        mask: Callable[[str], str] | None = None,
        fade: float | None = NOTICE_SECONDS,
    ) -> None:
        self.page = page
        self.fade = fade
        """Seconds a success notice stays on the page (None or 0: until dismissed; failures always stay)."""
        self.mask = mask or (lambda text: text)
        self.stream = stream
        self.sent: list[Notice] = []
        """Every notice given, in order."""
        self._lock = threading.Lock()
        self.widget: Any = _channel() if page else None

    def __repr__(self) -> str:
        where = "page" if self.page else "terminal"
        return f"Notices({where}, {len(self.sent)} sent)"

    def show_channel(self, lives: Any = None) -> None:
        """Display the channel (an invisible widget, with the link that asks for browser notifications);
        with ``lives`` (the session's), the output is emptied when the kernel stops, so a saved notebook
        shows nothing there rather than a widget that cannot render."""
        if self.widget is not None:
            from .live import Live

            live = Live(self.widget, str, on_stop=lambda: {"text/plain": ""})
            if lives is not None:
                lives.add(live)

    def announce(self, handle: RunHandle, names: list[str] | None = None) -> Notice:
        """Give the notice for this handle's end, on every channel there is."""
        notice = notice_for(handle, names)
        notice.title, notice.body = self.mask(notice.title), self.mask(notice.body)
        notice.short = self.mask(notice.short)
        with self._lock:
            self.sent.append(notice)
        if self.widget is not None:
            self.widget.send(notice.message(self.fade))
        elif not self.page:
            stream = self.stream or sys.stdout
            print(f"[dbx] {notice.line}", file=stream, flush=True)
        else:
            log.info("no page notice (anywidget is not installed): %s", notice.line)
        return notice


def _channel() -> Any:
    try:
        import anywidget
    except ImportError:
        log.info(
            "anywidget is not installed: background runs end without a page notice (pip install anywidget)"
        )
        return None

    class NoticeChannel(anywidget.AnyWidget):  # type: ignore[misc]
        _esm = pathlib.Path(__file__).parent / "notices.js"

        def __repr__(self) -> str:  # what a saved notebook shows where the widget cannot render
            return "(dbx-magic: a notice comes when a background run ends)"

    widget = NoticeChannel()
    widget.add_class("dbx-notice-channel")
    return widget
