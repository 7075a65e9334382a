"""A notice when a background run ends, wherever the user is: on the page, in the browser, in a terminal.

In a notebook the notice travels as an anywidget custom message (``widget.send``), which the frontend
does not replay when a saved notebook is reopened, so a notice fires once. The page shows it as a
fixed-position box in the top right corner (a user scrolled elsewhere sees it), the browser shows a
system notification where the user allowed them (the small link under a background cell asks), and
JupyterLab shows its own toast where the server exposes the app (``--LabApp.expose_app_in_browser``).
``IPython.display.Javascript`` is not used: saved Javascript outputs run again on reload.

In a terminal IPython the notice is one printed line. Without anywidget (an optional dependency) a
notebook still shows the end in the cell's own progress widget, and the log says why no notice came.
"""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Callable
from typing import IO, Any

from ..errors import ResourceDoesNotExist
from ..run.engine import RunHandle
from ..run.models import RunResult
from .progress import format_duration

__all__ = ["Notice", "Notices", "notice_for", "one_line_reason"]

log = logging.getLogger(__name__)

_ESM = r"""
const COLOURS = {success: "#2e7d32", danger: "#c62828", warning: "#ef6c00", info: "#1565c0"};

function box() {
  let stack = document.getElementById("dbx-notices");
  if (!stack) {
    stack = document.createElement("div");
    stack.id = "dbx-notices";
    // above the status bar, clear of the toolbar's kernel status: bottom right, or bottom left where
    // JupyterLab's own toasts take the bottom right
    const app = window.jupyterapp;
    const toasts = app && app.commands && app.commands.hasCommand("apputils:notify");
    stack.style.cssText = "position:fixed;bottom:40px;" + (toasts ? "left:16px" : "right:16px") +
      ";z-index:100000;display:flex;" +
      "flex-direction:column;gap:8px;max-width:440px;font-family:var(--jp-ui-font-family,sans-serif)";
    document.body.appendChild(stack);
  }
  return stack;
}

function tidy(stack) {
  // "dismiss all" above the notices while there are two or more
  let all = stack.querySelector(".dbx-notices-dismiss");
  const count = stack.querySelectorAll(".dbx-notice").length;
  if (count < 2) { if (all) all.remove(); return; }
  if (!all) {
    all = document.createElement("button");
    all.className = "dbx-notices-dismiss";
    all.textContent = "dismiss all";
    all.style.cssText = "align-self:flex-end;border:none;background:var(--jp-layout-color2,#eee);" +
      "cursor:pointer;font-size:11px;padding:2px 8px;border-radius:4px";
    all.onclick = () => { stack.querySelectorAll(".dbx-notice").forEach((n) => n.remove()); all.remove(); };
    stack.prepend(all);
  }
}

function show(msg) {
  if (!msg || msg.kind !== "dbx-run-ended") return;
  const seen = (window.__dbxNoticesSeen = window.__dbxNoticesSeen || new Set());
  if (seen.has(msg.id)) return;  // several views of the channel: one notice
  seen.add(msg.id);
  const note = document.createElement("div");
  note.className = "dbx-notice dbx-notice-" + msg.level;
  note.setAttribute("role", "status");
  note.dataset.runId = String(msg.run_id);
  note.style.cssText = "background:var(--jp-layout-color1,white);color:var(--jp-ui-font-color1,black);" +
    "border-left:6px solid " + (COLOURS[msg.level] || COLOURS.info) + ";box-shadow:0 2px 8px rgba(0,0,0,.3);" +
    "padding:8px 28px 8px 12px;border-radius:4px;position:relative;font-size:13px";
  const title = document.createElement("div");
  title.className = "dbx-notice-title";
  title.style.fontWeight = "bold";
  title.textContent = msg.title;
  const body = document.createElement("div");
  body.className = "dbx-notice-body";
  body.textContent = msg.body;
  note.append(title, body);
  if (msg.url) {
    const link = document.createElement("a");
    link.href = msg.url; link.target = "_blank"; link.rel = "noopener"; link.textContent = "open the run";
    link.style.cssText = "color:#1565c0;text-decoration:underline";
    note.append(link);
  }
  const close = document.createElement("button");
  close.className = "dbx-notice-close";
  close.textContent = "\u00d7";
  close.title = "dismiss";
  close.style.cssText = "position:absolute;top:2px;right:4px;border:none;background:none;cursor:pointer;font-size:16px";
  close.onclick = () => { note.remove(); tidy(box()); };
  note.append(close);
  const stack = box();
  stack.append(note);
  while (stack.querySelectorAll(".dbx-notice").length > 4) stack.querySelector(".dbx-notice").remove();
  if (msg.level === "success") setTimeout(() => { note.remove(); tidy(stack); }, 20000);  // failures stay
  tidy(stack);
  try {
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification(msg.title, {body: msg.body, tag: msg.id});
    }
  } catch (e) { /* notifications are a bonus */ }
  try {
    const app = window.jupyterapp;
    if (app && app.commands && app.commands.hasCommand("apputils:notify")) {
      app.commands.execute("apputils:notify", {
        message: msg.title + " " + msg.body,
        type: msg.level === "success" ? "success" : (msg.level === "danger" ? "error" : "warning"),
        options: {autoClose: 15000},
      });
    }
  } catch (e) { /* the toast is a bonus */ }
}

export default {
  initialize({ model }) { model.on("msg:custom", show); },
  render({ model, el }) {
    model.on("msg:custom", show);
    el.className = "dbx-notice-channel";
    if ("Notification" in window && Notification.permission === "default") {
      const ask = document.createElement("a");
      ask.href = "#";
      ask.textContent = "Also tell me through browser notifications";
      ask.style.fontSize = "11px";
      ask.onclick = (event) => {
        event.preventDefault();
        Notification.requestPermission().then(() => ask.remove());
      };
      el.append(ask);
    }
  },
};
"""


class Notice:
    """What one notice says: a title, a body line, a level (success, danger, warning), the run's link."""

    def __init__(self, run_id: int, title: str, body: str, level: str, url: str | None) -> None:
        self.run_id, self.title, self.body, self.level, self.url = run_id, title, body, level, url

    @property
    def line(self) -> str:
        return f"{self.title} {self.body}".strip()

    def message(self) -> dict[str, Any]:
        return {
            "kind": "dbx-run-ended",
            "id": f"{self.run_id}-{uuid.uuid4().hex[:12]}",
            "run_id": self.run_id,
            "title": self.title,
            "body": self.body,
            "level": self.level,
            "url": self.url,
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
        self, page: bool, stream: IO[str] | None = None, mask: Callable[[str], str] | None = None
    ) -> None:
        self.page = page
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
        with self._lock:
            self.sent.append(notice)
        if self.widget is not None:
            self.widget.send(notice.message())
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
        _esm = _ESM

        def __repr__(self) -> str:  # what a saved notebook shows where the widget cannot render
            return "(dbx-magic: a notice comes when a background run ends)"

    widget = NoticeChannel()
    widget.add_class("dbx-notice-channel")
    return widget
