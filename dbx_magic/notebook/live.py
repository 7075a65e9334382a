"""Displays that tell the truth in a saved notebook.

A widget can only render while its kernel runs: reopened without it, JupyterLab says "Error displaying
widget: model not found", and a renderer without widgets (GitHub, nbviewer, a text diff) shows the
output's ``text/plain``. So every live display of dbx-magic is one output with a display id, changed in
place from any thread:

- while it is live, the widget, with a ``text/plain`` that is a sentence of its state as it is now;
- when its run ends, a static record of that end (HTML and a sentence), and no widget;
- when the kernel stops or the extension is unloaded (:meth:`Lives.stop`), whatever is still live
  becomes a record that says watching stopped and how to re-attach: no control is left that looks
  alive and cannot act.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["STOPPED", "Live", "Lives", "record", "show_widget"]

STOPPED = (
    "Watching stopped when the kernel stopped; the run goes on in the workspace. In a new kernel, "
    "`%load_ext dbx_magic` watches this notebook's runs again (`%dbx_runs --history` lists them)."
)
"""What a display still live when its kernel stopped says."""


def record(body_html: str, text: str, note: str = "") -> dict[str, str]:
    """A static record: HTML (the display as it last read, then ``note``) and the same in a sentence."""
    import html

    extra = f'<div class="dbx-record-note"><small>{html.escape(note)}</small></div>' if note else ""
    plain = f"{text}\n{note}" if note else text
    return {"text/html": f'<div class="dbx-record">{body_html}{extra}</div>', "text/plain": plain}


class Live:
    """One output that changes in place: a widget while live, a record once settled.

    Args:
        widget: The ipywidgets widget to show (None: an empty output, to be filled later).
        text: A sentence of the display's state as it is now (its ``text/plain``).
        on_stop: The record to leave when the kernel stops before the display settled (default: the
            last sentence and :data:`STOPPED`).
    """

    def __init__(
        self,
        widget: Any,
        text: Callable[[], str],
        on_stop: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        from IPython.display import display

        self.widget = widget
        self.text = text
        self.on_stop = on_stop
        self.settled = False
        self._lock = threading.Lock()
        self._last = ""
        handle = display(self._bundle(), raw=True, display_id=True) if widget is not None else None
        self.handle = handle if handle is not None else display(display_id=True)

    def _bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = {}
        if self.widget is not None:
            made = self.widget._repr_mimebundle_()
            bundle = dict(made[0] if isinstance(made, tuple) else made)
        self._last = self.text()
        bundle["text/plain"] = self._last
        return bundle

    def refresh(self) -> None:
        """Update the ``text/plain`` when the sentence changed (the widget updates itself)."""
        with self._lock:
            if self.settled or self.widget is None or self.text() == self._last:
                return
            self.handle.update(self._bundle(), raw=True)

    def show(self, widget: Any) -> None:
        """Put a (new) widget in this output."""
        with self._lock:
            self.widget, self.settled = widget, False
            self.handle.update(self._bundle(), raw=True)

    def settle(self, bundle: dict[str, str]) -> None:
        """Replace the widget with a static record, for good (once: a display emptied or settled stays so)."""
        with self._lock:
            if self.settled:
                return
            self.settled = True
            self.widget = None
            self.handle.update(bundle, raw=True)

    def stop(self) -> None:
        """The kernel stops: a display still live becomes a record saying watching stopped."""
        if self.settled:
            return
        if self.widget is None:  # an output never filled: left empty
            self.settle({"text/plain": ""})
            return
        import html

        bundle = (
            self.on_stop()
            if self.on_stop is not None
            else record(html.escape(self.text()), self.text(), STOPPED)
        )
        self.settle(bundle)


class Lives:
    """The live displays of one session, replaced by records when it stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Live] = []

    def add(self, live: Live) -> Live:
        """Keep ``live`` to stop it with the session; returns it."""
        with self._lock:
            self._items = [x for x in self._items if not x.settled]
            self._items.append(live)
        return live

    def stop(self) -> int:
        """Replace every display still live by its record; returns how many were."""
        with self._lock:
            items, self._items = self._items, []
        count = 0
        for live in items:
            if not live.settled:
                try:
                    live.stop()
                except Exception:  # the kernel is going: a display that cannot be updated stays as it is
                    continue
                count += 1
        return count


def show_widget(lives: Lives | None, widget: Any, text: Callable[[], str], note: str) -> Live:
    """Display a widget (a board, a form) as a live output; when the kernel stops it becomes its last
    sentence and ``note`` (what to run in a new kernel)."""

    def stopped() -> dict[str, str]:
        import html

        last = text()
        return record(f'<pre style="white-space:pre-wrap">{html.escape(last)}</pre>', last, note)

    live = Live(widget, text, on_stop=stopped)
    return lives.add(live) if lives is not None else live
