"""The one place that words a wait that stopped before its run ended: a timeout, an interrupt, a
cancel on interrupt, a watch that was lost or shut down (for one run and for a sweep).

Each function returns the error; the face that shows it names its own next step (``%dbx_wait`` in a
notebook, ``python -m dbx_magic wait`` in a shell, a Python call) through the error's ``follow_up``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import (
    CANCEL_FAILED,
    GOES_ON,
    MANY_GO_ON,
    DatabricksError,
    RunInterrupted,
    WaitTimeout,
)
from .models import RunResult

__all__ = [
    "cancelled_on_interrupt",
    "interrupted",
    "just_launched",
    "sweep_interrupted",
    "sweep_timed_out",
    "sweep_watch_lost",
    "wait_timeout",
    "watch_lost",
    "watch_stopped",
]


_WATCHED = ", watched in the background"


def wait_timeout(run_id: int, result: RunResult, timeout: float, state: str, *, watched: bool) -> WaitTimeout:
    """The waiting passed its timeout; the run goes on (``watched``: its watcher goes on polling it)."""
    return WaitTimeout(
        f"Stopped waiting for run {run_id} after {timeout:.3g} s; it is still {state}{_WATCHED if watched else ''}.",
        run_id=run_id,
        result=result,
        follow_up=GOES_ON,
    )


def interrupted(run_id: int, result: RunResult, state: str, *, watched: bool) -> RunInterrupted:
    """The kernel was interrupted while waiting; the run goes on (an ended run: nothing to add)."""
    still = "; it is still watched in the background" if watched and not result.finished else ""
    return RunInterrupted(
        f"Stopped waiting for run {run_id} ({state}){still}.",
        run_id=run_id,
        result=result,
        follow_up=None if result.finished else GOES_ON,
    )


def just_launched(run_id: int, result: RunResult | None) -> RunInterrupted:
    """Interrupted right after the launch returned, before the waiting began."""
    return RunInterrupted(
        f"Stopped waiting for run {run_id} (just launched).",
        run_id=run_id,
        result=result,
        follow_up=GOES_ON,
    )


def cancelled_on_interrupt(run_id: int, last: RunResult, cancel: Callable[[], RunResult]) -> RunInterrupted:
    """Interrupted with cancel-on-interrupt: ``cancel()`` cancels the run and returns it once seen to
    end; when that fails, the error says so (the run goes on)."""
    try:
        result = cancel()
    except (DatabricksError, KeyboardInterrupt) as exc:
        return RunInterrupted(
            f"Stopped waiting for run {run_id}, but cancelling it failed ({exc}).",
            run_id=run_id,
            result=last,
            follow_up=CANCEL_FAILED,
        )
    return RunInterrupted(
        f"Cancelled run {run_id} on interrupt; it is now {result.result_state or result.life_cycle_state}.",
        run_id=run_id,
        result=result,
        cancelled=True,
    )


def watch_lost(run_id: int, result: RunResult, exc: BaseException) -> DatabricksError:
    """Polling failed in a way that is not the workspace's word (a bug, an odd answer)."""
    return DatabricksError(
        f"Watching run {run_id} failed ({type(exc).__name__}: {exc}).",
        run_id=run_id,
        result=result,
        follow_up=GOES_ON,
    )


def watch_stopped(run_id: int, result: RunResult, state: str) -> DatabricksError:
    """The watcher was shut down (the kernel going away, the extension unloaded) while the run went on."""
    return DatabricksError(
        f"The watching of run {run_id} stopped ({state} when last seen).",
        run_id=run_id,
        result=result,
        follow_up=GOES_ON,
    )


def _count(ids: Sequence[int], verb: str = "") -> str:
    """ "N runs (ids)", and the verb agreeing with N: "2 runs (7, 8) go on", "1 run (7) goes on"."""
    text = f"{len(ids)} run{'s' if len(ids) != 1 else ''} ({', '.join(map(str, ids)) or 'none'})"
    if verb:
        text += f" {verb}{'es' if len(ids) == 1 else ''}"
    return text


def sweep_timed_out(timeout: float, going: Sequence[int], results: list[Any], cut: str) -> WaitTimeout:
    return WaitTimeout(
        f"Stopped waiting for the sweep after {timeout:g} s with {_count(going)} still going in the "
        f"workspace.{cut}",
        results=results,
        follow_up=MANY_GO_ON,
    )


def sweep_watch_lost(exc: DatabricksError, going: Sequence[int], results: list[Any], cut: str) -> Any:
    from .sweep import SweepFailed

    return SweepFailed(
        f"Watching the sweep failed ({exc.message.rstrip('.')}); {_count(going, 'go')} on in the "
        f"workspace.{cut}",
        results,
        follow_up=MANY_GO_ON,
        status_code=exc.status_code,
        error_code=exc.error_code,
    )


def sweep_interrupted(
    going: Sequence[int], cancelled: Sequence[int] | None, results: list[Any], cut: str, token: str | None
) -> RunInterrupted:
    """``cancelled`` is None when the runs were left going, else the ids cancelled."""
    ids = ", ".join(map(str, going))
    count = f"{len(going)} run{'s' if len(going) != 1 else ''}"
    what = (
        f"cancelled {len(cancelled)} of {count} still going ({ids})"
        if cancelled is not None
        else f"{count} {'goes' if len(going) == 1 else 'go'} on in the workspace ({ids})"
    )
    return RunInterrupted(
        f"Stopped waiting for the sweep; {what}.{cut}",
        cancelled=cancelled is not None,
        follow_up=None if cancelled is not None else MANY_GO_ON,
        results=results,
        idempotency_token=token,
    )
