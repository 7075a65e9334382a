"""Where a run's time went: queue, set-up, execution and clean-up, as the API reports them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Timing", "ago", "format_seconds"]


def _seconds(value: Any) -> float | None:
    """Milliseconds from the API as seconds; None when absent or not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return max(0.0, float(value) / 1000)
    except (TypeError, ValueError):
        return None


def format_seconds(seconds: float) -> str:
    """``0.4 s``, ``42 s``, ``3:05``, ``1:02:03``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def ago(milliseconds: float) -> str:
    """How long before, in words: ``40 s ago``, ``5 min ago``, ``3 hours ago``, ``2 days ago`` (from 20
    hours on it counts days, from 50 minutes hours: a daily job's last run was "1 day ago")."""
    seconds = max(0.0, milliseconds / 1000)
    if seconds >= 20 * 3600:
        days = max(1, round(seconds / 86400))
        return f"{days} day{'s' if days != 1 else ''} ago"
    if seconds >= 50 * 60:
        hours = max(1, round(seconds / 3600))
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    if seconds >= 60:
        return f"{int(seconds // 60)} min ago"
    return f"{round(seconds)} s ago"


@dataclass(frozen=True)
class Timing:
    """The durations of a run or a task, in seconds (None where the API gave none).

    For a multi-task run the API reports set-up, execution and clean-up per task and 0 for the run,
    whose whole length is ``run_duration``; those zeros are read as "not reported here".

    Attributes:
        queue: Seconds spent queued (``queue_duration``).
        setup: Seconds setting up the cluster (``setup_duration``).
        execution: Seconds running the commands (``execution_duration``).
        cleanup: Seconds cleaning up (``cleanup_duration``).
        total: ``run_duration`` when given, else the sum of the others.
    """

    queue: float | None = None
    setup: float | None = None
    execution: float | None = None
    cleanup: float | None = None
    total: float | None = None

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> Timing:
        """Read the durations of a ``runs/get`` answer or of one of its tasks."""
        queue = _seconds(obj.get("queue_duration"))
        parts = [_seconds(obj.get(f"{k}_duration")) for k in ("setup", "execution", "cleanup")]
        total = _seconds(obj.get("run_duration"))
        if total and not any(parts):  # a multi-task run: the parts are on its tasks
            parts = [None, None, None]
        if total is None and any(p is not None for p in parts):
            total = sum(p or 0.0 for p in parts)
        return cls(queue, parts[0], parts[1], parts[2], total or None)

    def parts(self) -> list[tuple[str, float]]:
        """``(label, seconds)`` for every duration known, in the order a run goes through them."""
        named = [
            ("queue", self.queue),
            ("set-up", self.setup),
            ("execution", self.execution),
            ("clean-up", self.cleanup),
        ]
        shown = [(label, s) for label, s in named if s is not None and (s > 0 or label == "execution")]
        if self.total is not None and not any(label != "queue" for label, _ in shown):
            shown.append(("run", self.total))
        return shown

    def text(self) -> str:
        """``queue 1.0 s · set-up 0:30 · execution 2:00 · clean-up 5.0 s`` (empty when nothing is known)."""
        return " · ".join(f"{label} {format_seconds(s)}" for label, s in self.parts())

    def __bool__(self) -> bool:
        return bool(self.parts())
