"""Which progress display a shell gets: the widget where a widget frontend exists, text otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..run.models import RunResult
from .progress import TextProgress

__all__ = ["has_widget_frontend", "progress_display", "sweep_display"]


def has_widget_frontend(shell: Any) -> bool:
    """True inside a Jupyter kernel (a frontend that can render widgets is attached)."""
    return getattr(shell, "kernel", None) is not None


def progress_display(
    shell: Any, *, cancel_on_interrupt: bool = False, lives: Any = None
) -> Callable[[RunResult], Any]:
    """Show a progress display for a run that blocks the cell; return its ``on_update`` callback.

    In a Jupyter kernel this is the progress widget (with no Cancel button: a busy cell gets no
    clicks, so it points at the kernel's interrupt), which gives way to a record of the run's end
    when the watching ends (``lives``: the session's, so the Results button under it goes when the
    kernel stops); elsewhere, text lines.
    """
    if has_widget_frontend(shell):
        from .widgets import ProgressWidget

        return ProgressWidget(blocking=True, cancel_on_interrupt=cancel_on_interrupt).show(lives)
    return TextProgress()


def sweep_display(shell: Any, params: list[dict[str, Any]]) -> Callable[[list[RunResult | None]], Any]:
    """Show a sweep's progress (the grid widget in a kernel, summary lines elsewhere)."""
    if has_widget_frontend(shell):
        from .widgets import SweepWidget

        return SweepWidget(params, blocking=True).show()
    from .progress import TextSweepProgress

    return TextSweepProgress(params)
