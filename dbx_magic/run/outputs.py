"""What a job's notebooks made: their exported results pages, shown safely, and readable failures.

``runs/export`` answers a notebook task run as a whole HTML page with its own scripts. It is fetched
only when asked for (:meth:`RunResult.show`, :meth:`RunResult.export`), and shown only inside an
``<iframe sandbox="allow-scripts" srcdoc=...>``: without ``allow-same-origin`` the page runs in an
opaque origin, so its scripts cannot reach the notebook's window, cookies or storage. A page over
:data:`LARGE_EXPORT` bytes is not put into the notebook (which would save it) unless confirmed; its
size is said instead. Error traces arrive with ANSI colour codes; :func:`ansi_to_html` keeps the
colours and escapes everything else.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DatabricksError, InvalidInput
from ..safe import terminal_text

if TYPE_CHECKING:
    from .models import RunResult, TaskResult

__all__ = [
    "LARGE_EXPORT",
    "VIEWS",
    "ExportedView",
    "ResultsPage",
    "ansi_to_html",
    "fetch_exports",
    "strip_ansi",
]

VIEWS = ("CODE", "DASHBOARDS", "ALL")
LARGE_EXPORT = 2_000_000
"""Bytes of exported HTML over which ``show()`` says the size instead of rendering (``confirm=True``)."""

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]")
_BASIC = ("#000000", "#c62828", "#2e7d32", "#b8860b", "#1565c0", "#8e24aa", "#00838f", "#9e9e9e")
_BRIGHT = ("#616161", "#ef5350", "#66bb6a", "#fbc02d", "#42a5f5", "#ab47bc", "#26c6da", "#ffffff")


def strip_ansi(text: str) -> str:
    """The text without its ANSI escape codes."""
    return _OTHER_ESCAPES.sub("", _SGR.sub("", text))


def _extended(codes: list[int], i: int) -> tuple[str | None, int]:
    """A 256-colour (``38;5;n``) or true-colour (``38;2;r;g;b``) code at ``codes[i]``: colour, next index."""
    if i + 2 < len(codes) and codes[i + 1] == 5:
        n = codes[i + 2]
        if n < 16:
            return (_BASIC + _BRIGHT)[n], i + 3
        if n < 232:
            n -= 16
            r, g, b = (v * 51 for v in (n // 36, n // 6 % 6, n % 6))
            return f"#{r:02x}{g:02x}{b:02x}", i + 3
        grey = min(255, 8 + (n - 232) * 10)
        return f"#{grey:02x}{grey:02x}{grey:02x}", i + 3
    if i + 4 < len(codes) and codes[i + 1] == 2:
        r, g, b = (min(255, c) for c in codes[i + 2 : i + 5])
        return f"#{r:02x}{g:02x}{b:02x}", i + 5
    return None, len(codes)


_RESETS = {22: "bold", 39: "color", 49: "background"}


def _colour(code: int) -> tuple[str, str] | None:
    """The (key, colour) a basic or bright foreground or background code sets, else None."""
    for low, key, palette in (
        (30, "color", _BASIC),
        (90, "color", _BRIGHT),
        (40, "background", _BASIC),
        (100, "background", _BRIGHT),
    ):
        if low <= code <= low + 7:
            return key, palette[code - low]
    return None


def _apply(state: dict[str, Any], params: str) -> None:
    """Update ``state`` (colour, background, bold) with one SGR sequence's parameters."""
    codes = [int(c) if c.isdigit() else 0 for c in params.split(";")] if params else [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        basic = _colour(code)
        if code == 0:
            state.clear()
        elif code == 1:
            state["bold"] = True
        elif code in _RESETS:
            state.pop(_RESETS[code], None)
        elif basic is not None:
            state[basic[0]] = basic[1]
        elif code in (38, 48):
            colour, i = _extended(codes, i - 1)
            if colour:
                state["color" if code == 38 else "background"] = colour


def _span(text: str, state: dict[str, Any]) -> str:
    if not text:
        return ""
    escaped = html.escape(text)
    style = ";".join(
        [f"{k}:{v}" for k, v in state.items() if k in ("color", "background")]
        + (["font-weight:bold"] if state.get("bold") else [])
    )
    return f'<span style="{style}">{escaped}</span>' if style else escaped


def ansi_to_html(text: str) -> str:
    """Text with ANSI colour codes as escaped HTML whose colours are ``<span style=...>``."""
    text = _OTHER_ESCAPES.sub("", text)
    state: dict[str, Any] = {}
    out: list[str] = []
    pos = 0
    for match in _SGR.finditer(text):
        out.append(_span(text[pos : match.start()], state))
        _apply(state, match.group(1))
        pos = match.end()
    out.append(_span(text[pos:], state))
    return "".join(out)


# -- exports --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedView:
    """One exported view of a notebook task run.

    Attributes:
        task: The task key.
        run_id: The task run's id.
        name: The view's name (the notebook's, for a notebook view).
        type: ``NOTEBOOK`` or ``DASHBOARD``.
        content: The whole HTML page.
    """

    task: str
    run_id: int
    name: str
    type: str
    content: str

    @property
    def size(self) -> int:
        """Bytes of HTML (UTF-8)."""
        return len(self.content.encode("utf-8"))

    def frame(self, height: int = 520) -> str:
        """The page in an isolated frame: scripts run, but in an opaque origin (no
        ``allow-same-origin``), so they cannot reach the page that embeds it."""
        return (
            f'<div class="dbx-export" style="resize:vertical;overflow:hidden;height:{height}px;'
            'border:1px solid #ccc;margin:4px 0">'
            f'<iframe class="dbx-export-frame" sandbox="allow-scripts" title="{html.escape(self.name)}" '
            f'style="width:100%;height:100%;border:0" srcdoc="{html.escape(self.content, quote=True)}">'
            "</iframe></div>"
        )


def _exportable(result: RunResult, task: str | None) -> list[TaskResult]:
    tasks = [t for t in result.tasks if t.notebook_path and t.run_id is not None]
    if task is None:
        if not tasks and any(t.iterations for t in result.tasks):
            return []  # a for-each task's iterations are shown instead (ResultsPage)
        if not tasks:
            raise InvalidInput(
                f"Run {result.run_id} has no notebook task with a results page: only notebook tasks export."
            )
        return tasks
    chosen = [t for t in result.tasks if t.key == task]
    if not chosen:
        keys = ", ".join(repr(t.key) for t in result.tasks) or "none"
        raise InvalidInput(f"Run {result.run_id} has no task {task!r}: its tasks are {keys}.")
    if chosen[0].iterations:
        return []  # its iterations are shown instead (ResultsPage)
    if not chosen[0].notebook_path or chosen[0].run_id is None:
        raise InvalidInput(
            f"Task {task!r} of run {result.run_id} is not a notebook task, so it has no results page: "
            "pick a notebook task."
        )
    return chosen


def fetch_exports(
    client: Any, result: RunResult, task: str | None = None, views: str = "CODE"
) -> list[ExportedView]:
    """Fetch the exported pages of a run's notebook tasks (or of one task), once per run.

    Pages of a finished run are remembered on the result; a run still going is asked again.

    Raises:
        InvalidInput: an unknown task, a task that is not a notebook task, or bad ``views``.
        DatabricksError: the export failed; the message names the task run.
    """
    views = str(views).upper()
    if views not in VIEWS:
        raise InvalidInput(f"views={views!r} is not one of {', '.join(VIEWS)}: pass e.g. views='CODE'.")
    if client is None:
        raise InvalidInput(
            f"Run {result.run_id} has no client to fetch its results with: pass client= (a DatabricksClient)."
        )
    pages: list[ExportedView] = []
    for t in _exportable(result, task):
        key = (t.run_id, views)
        if key not in result.exports:
            try:
                answer = client.export_run(t.run_id, views)
            except DatabricksError as exc:
                raise exc.about_run(result.run_id, result) from None
            found = [
                ExportedView(
                    t.key,
                    int(t.run_id or 0),
                    str(v.get("name") or t.key),
                    str(v.get("type") or ""),
                    str(v.get("content") or ""),
                )
                for v in answer.get("views") or ()
                if isinstance(v, dict) and v.get("content")
            ]
            if not result.finished:
                pages.extend(found)
                continue
            result.exports[key] = found
        pages.extend(result.exports[key])
    return pages


class ResultsPage:
    """The exported results of a run's notebook tasks, ready to show (``_repr_html_``) or save.

    Args:
        result: The run.
        views: The pages.
        confirm: Render pages over :data:`LARGE_EXPORT` bytes too (the notebook then saves them).
    """

    def __init__(self, result: RunResult, views: list[ExportedView], *, confirm: bool = False) -> None:
        self.result = result
        self.views = views
        self.confirm = confirm

    @property
    def size(self) -> int:
        """Bytes of HTML in all the pages."""
        return sum(v.size for v in self.views)

    def __repr__(self) -> str:
        return f"ResultsPage(run {self.result.run_id}: {len(self.views)} pages, {_size(self.size)})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.summary_text())

    def summary_text(self) -> str:
        """One line per page: task, name, size (plain text cannot show HTML); a for-each task's iterations."""
        from .render import task_detail_lines

        lines = [f"Results of job run {self.result.run_id}:"]
        lines += [
            f"  task {v.task} (task run {v.run_id}): {v.name} ({_size(v.size)} of HTML)" for v in self.views
        ]
        for t in self.result.tasks:
            if t.iterations:
                lines += [f"  task {t.key}:", *task_detail_lines(t)]
        if not self.views and not any(t.iterations for t in self.result.tasks):
            lines.append("  no page was exported")
        lines.append("  result.export('results.html') saves them for a browser.")
        return terminal_text("\n".join(lines))

    def _repr_html_(self) -> str:
        parts = [f'<div class="dbx-results">Results of job run {self.result.run_id}']
        for view in self.views:
            parts.append(
                f'<div class="dbx-results-task">task <b>{html.escape(view.task)}</b> '
                f"(task run {view.run_id}) · {html.escape(view.name)} <small>({_size(view.size)})</small></div>"
            )
            if view.size > LARGE_EXPORT and not self.confirm:
                parts.append(
                    f'<div class="dbx-results-large">This page is {_size(view.size)}, over '
                    f"{_size(LARGE_EXPORT)}: <code>result.show(task={view.task!r}, confirm=True)</code> shows "
                    "it here (the notebook then saves it), <code>result.export('results.html')</code> "
                    "saves it to open in a browser.</div>"
                )
            else:
                parts.append(view.frame())
        from .render import iterations_html

        parts.extend(iterations_html(t) for t in self.result.tasks if t.iterations)
        if not self.views and not any(t.iterations for t in self.result.tasks):
            parts.append("<div>No page was exported.</div>")
        parts.append("</div>")
        return "".join(parts)

    def html(self) -> str:
        """One whole HTML page with each task's page in an isolated frame (one task as several: its
        page's scripts never run with the saved file's rights)."""
        body = "".join(
            f"<h2>{html.escape(v.task)} · {html.escape(v.name)}</h2>{v.frame(height=700)}" for v in self.views
        )
        title = html.escape(f"Results of job run {self.result.run_id}")
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
            f'<body style="font-family:sans-serif"><h1>{title}</h1>{body}</body></html>\n'
        )

    def save(self, path: str | Path) -> Path:
        """Write :meth:`html` to ``path`` (UTF-8) and return the path.

        Raises:
            InvalidInput: ``path`` is a folder, holds a NUL character, is in a folder that does not
                exist, or cannot be written.
        """
        if not isinstance(path, str | Path) or "\0" in str(path):
            raise InvalidInput(
                f"The path to export to is {_path_words(path)}: give a file name such as results.html."
            )
        target = Path(path).expanduser()
        if target.is_dir():
            raise InvalidInput(f"{str(target)!r} is a directory: give a file name such as results.html.")
        if not target.parent.is_dir():
            raise InvalidInput(
                f"The folder {str(target.parent)!r} does not exist: create it first, or export to a file in "
                "an existing folder."
            )
        try:
            target.write_text(self.html(), encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(
                f"{str(target)!r} cannot be written ({exc.strerror or type(exc).__name__}): export to a "
                "file in a folder you can write to."
            ) from None
        return target


def _path_words(path: object) -> str:
    if isinstance(path, str | Path):
        return "a path with a NUL character in it"
    return f"a {type(path).__name__}, not a path"


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f} MB"
    if n >= 1_000:
        return f"{n / 1_000:.0f} kB"
    return f"{n} bytes"
