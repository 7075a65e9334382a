"""``%dbx_compare A [B]``: two runs side by side, published for the next step."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from ..run.compare import RunComparison, compare_runs
from .args import usage_errors
from .session import NotebookSession

__all__ = ["compare_cell"]


def _run_named(session: NotebookSession, ref: int | str | None) -> Any:
    """A run id as given, or the run a notebook variable holds (a RunResult or a handle)."""
    if ref is None or isinstance(ref, int):
        return ref
    if ref not in session.namespace:
        raise InvalidInput(
            f"`{ref}` is not defined in the notebook: give a run id, or the --out name of a run."
        )
    value = session.namespace[ref]
    if not isinstance(getattr(value, "run_id", None), int):
        raise InvalidInput(
            f"`{ref}` holds a {type(value).__name__}, not a run: give a run id, or the --out name of a run."
        )
    return value


def compare_cell(session: NotebookSession, args: Any) -> RunComparison:
    """Compare run ``args.a`` with ``args.b`` (default: the job's last success before it); the
    comparison goes under ``args.out`` and is returned for display."""
    with usage_errors():
        a, b = _run_named(session, args.a), _run_named(session, args.b)
    comparison = compare_runs(session.client(args.profile), a, b)
    session.publish(args.out, comparison)
    return comparison
