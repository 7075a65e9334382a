"""What each magic does once its flags are parsed: build the launch, call the run core, publish.

One function per magic; the publish-before-raise is :meth:`NotebookSession.settle`, the display is
:func:`~dbx_magic.notebook.display.progress_display`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError

from ..errors import DatabricksError, InvalidInput, RunInterrupted
from ..run.models import RunResult
from .args import cell_params, foreach_sets, usage_errors
from .session import NotebookSession

__all__ = ["params_cell", "repair_cell", "run_cell", "wait_cell", "watch_in_cell"]


def watch_in_cell(
    session: NotebookSession,
    shell: Any,
    out: str,
    call: Callable[[Callable[[RunResult], Any]], RunResult],
    cancel_on_interrupt: bool = False,
) -> RunResult:
    """Run ``call`` (given the display's ``on_update``) with a progress display in the cell, publish
    what it leaves behind under ``out`` whatever happens, and fail the cell when the run did not succeed."""
    from .display import progress_display

    progress = progress_display(shell, cancel_on_interrupt=cancel_on_interrupt, lives=session.lives)
    try:
        with usage_errors():  # judged from the workspace's answer (a job name that matches nothing, say)
            result = session.settle(out, lambda: call(progress))
    except (DatabricksError, RunInterrupted, UsageError) as exc:
        show_end(progress, exc, still_watched=_goes_on(session, shell, exc))
        raise
    finally:
        getattr(progress, "close", lambda: None)()
        _keep_final_state(progress)
    return result.raise_for_state()


def _goes_on(session: NotebookSession, shell: Any, exc: BaseException) -> bool:
    """After a wait that stopped early (an interrupt, a timeout), the session's watcher goes on
    watching the run: its end is announced and fills the names still holding it. True when it does."""
    from ..errors import WaitTimeout
    from .background import goes_on

    run_id = getattr(exc, "run_id", None)
    if not isinstance(exc, WaitTimeout | RunInterrupted) or run_id is None:
        return False
    going = [h for h in session.handles if h.run_id == run_id and h.watching]
    for handle in going:
        goes_on(session, shell, handle)
    return bool(going)


def _keep_final_state(progress: Any) -> None:
    """Leave a static copy of the display's end in the cell, for the saved notebook (a widget has
    no view once the kernel is gone)."""
    settle = getattr(progress, "settle", None)
    if settle is not None:  # a live display: it becomes the record of the end
        settle()
        return
    snapshot = getattr(progress, "snapshot", None)
    if snapshot is not None and not getattr(progress, "withdrawn", False):
        from IPython.display import display

        display(snapshot())


def show_end(progress: Any, exc: BaseException, *, still_watched: bool = False) -> None:
    """Tell a display, once and briefly, why the watching ended before the run did (the error
    itself is shown once, below it)."""
    if isinstance(exc, RunInterrupted) and exc.cancelled:
        return  # the display shows the cancelled end itself
    started = any(getattr(exc, name, None) for name in ("run_id", "result", "results"))
    close = getattr(progress, "close", lambda note=None: None)
    if not started and getattr(exc, "idempotency_token", None) is None:
        withdraw = getattr(progress, "withdraw", None)
        if withdraw is not None:  # nothing ran: the error is the one block the cell shows
            withdraw()
            return
        not_started = getattr(progress, "not_started", None)
        if not_started is not None:
            not_started("No run was started: the message below says why.")
        else:
            close()
        return
    if not started:
        close(
            note="The launch was cut short: a run may have started (the message below says how to find it)."
        )
        return
    if still_watched:
        close(note="Stopped waiting; the run goes on, still watched: a notice comes when it ends.")
        return
    close(
        note="Stopped watching; the run goes on in the workspace (the message below says how to re-attach)."
    )


def run_cell(session: NotebookSession, shell: Any, args: Any, cell: str | None) -> Any:
    """``%%dbx_run``: one run (blocking, in the background or not watched), or a sweep with ``--foreach``."""
    from ..run.launch import Launch
    from ..run.runs import launch_and_wait
    from .background import background_cell, check_background, own

    with usage_errors():
        check_background(args)
        params = cell_params(args.params, cell, session.namespace)
        if args.max_parallel is not None and not args.foreach:
            raise InvalidInput("--max-parallel goes with --foreach: add --foreach LIST, or leave it out.")
        if args.foreach:
            if args.no_wait:
                raise InvalidInput("--foreach waits for its runs: leave out --no-wait.")
            if args.only or args.if_running != "new":
                raise InvalidInput("--only and --if-running go with one run: leave them out with --foreach.")
            sets = foreach_sets(args.foreach, params, session.namespace)
        else:
            spec = Launch.check(
                args.job,
                params,
                idempotency_token=args.idempotency_token,
                timeout=args.timeout,
                only=args.only,
                if_running=args.if_running,
                allow_unknown_params=args.allow_unknown_params,
                performance_target=args.performance_target,
            )
    client = session.client(args.profile)
    if args.foreach:
        return _sweep(session, shell, client, args, sets)
    if args.background:
        return background_cell(session, shell, client, spec, args.out)
    if args.no_wait:
        return _launch_only(session, client, args, spec)
    watcher = session.watcher_for(client)  # the session's one watcher polls this run with all the others
    return watch_in_cell(
        session,
        shell,
        args.out,
        lambda progress: launch_and_wait(
            client,
            spec,
            watcher,
            on_update=progress,
            cancel_on_interrupt=args.cancel_on_interrupt,
            on_notice=print,
            on_handle=lambda handle: own(session, handle, args.out),
            source="magic",
        ),
        args.cancel_on_interrupt,
    )


def _launch_only(session: NotebookSession, client: Any, args: Any, spec: Any) -> None:
    """``--no-wait``: launch (or find the run going, with ``--if-running wait``) and say how to watch it."""
    from ..run.launch import adopt_or_launch
    from .background import own

    adopted: list[bool] = []

    def call() -> RunResult:
        launched, found = adopt_or_launch(client, spec, on_notice=print, journal=session.journal)
        adopted.append(found)
        return launched

    with usage_errors():
        launched = session.settle(args.out, call)
    run_id = launched.run_id
    watcher = session.watcher_for(client)  # on the board, not watched
    own(session, watcher.add(client, run_id, launched=launched, source="no-wait"), args.out)
    verb = "Found" if adopted[0] else "Started"
    print(
        f"{verb} run {run_id} of {launched.job_name or args.job!r}; it is in `{args.out}`. "
        f"`%dbx_wait {args.out}` waits for it (run {run_id}), `%dbx_cancel {run_id}` cancels it."
    )


def _run_in(session: NotebookSession, ref: int | str) -> tuple[int, str | None]:
    """The run id ``%dbx_repair`` was given, directly or through a variable; and that variable's name."""
    if isinstance(ref, int):
        return ref, None
    if ref not in session.namespace:
        raise InvalidInput(
            f"`{ref}` is not defined in the notebook: give a run id, or the --out name of a run."
        )
    value = session.namespace[ref]
    run_id = getattr(value, "run_id", None)
    if not isinstance(run_id, int) or isinstance(run_id, bool):
        raise InvalidInput(
            f"`{ref}` holds a {type(value).__name__}, not a run: give a run id, or the --out name of a run."
        )
    return run_id, ref


def repair_cell(session: NotebookSession, shell: Any, args: Any, cell: str | None) -> RunResult:
    """``%dbx_repair``: rerun the failed tasks of a run (the cell's lines change parameters), watch it,
    and publish the repaired run under ``--out``, else the name given, else ``dbx_result``."""
    from ..run.repair import Repair, repair_and_wait
    from .background import own

    with usage_errors():
        run_id, name = _run_in(session, args.run)
        params = cell_params(None, cell, session.namespace)
        spec = Repair.check(
            run_id,
            args.tasks,
            rerun_dependents=args.rerun_dependents,
            notebook_params=params,
            idempotency_token=args.idempotency_token,
            timeout=args.timeout,
            performance_target=args.performance_target,
        )
    out = args.out or name or "dbx_result"
    handle = _repair_handle(session, session.client(args.profile), run_id, name)
    own(session, handle, out)
    return watch_in_cell(
        session,
        shell,
        out,
        lambda progress: repair_and_wait(
            handle,
            spec,
            on_update=progress,
            cancel_on_interrupt=args.cancel_on_interrupt,
            on_plan=lambda plan: print(plan.line),
        ),
        args.cancel_on_interrupt,
    )


def _repair_handle(session: NotebookSession, client: Any, run_id: int, name: str | None) -> Any:
    """The run's handle: the one the name holds, else the session's, else a new one (not watched yet)."""
    from ..run.engine import RunHandle

    held = session.namespace.get(name) if name else None
    if isinstance(held, RunHandle):
        return held
    known = [h for h in session.handles if h.run_id == run_id and h.client is client]
    if known:
        return known[-1]
    return session.watcher_for(client).add(client, run_id, source="repair")


def wait_cell(session: NotebookSession, shell: Any, args: Any) -> RunResult:
    """``%dbx_wait NAME|RUN_ID``: wait for a run to its end (see :func:`.background.wait_cell`)."""
    from .background import wait_cell as wait_in_session

    return wait_in_session(session, shell, args)


def params_cell(session: NotebookSession, args: Any) -> Any:
    """``%dbx_params``: what the job takes (a table: HTML in a notebook, text elsewhere)."""
    from ..run.launch import job_info

    client = session.client(args.profile)
    with usage_errors():
        return job_info(client, args.job).declared(client)


def _sweep(
    session: NotebookSession, shell: Any, client: Any, args: Any, sets: list[dict[str, Any]]
) -> list[RunResult]:
    from ..run.sweep import SweepFailed
    from .display import sweep_display

    progress = sweep_display(shell, sets)
    try:
        results = _sweep_runs(session, client, args, sets, progress)
    except BaseException as exc:
        show_end(progress, exc)
        raise
    failed = [(i, r) for i, r in enumerate(results) if not r.ok]
    if failed:
        index, first = failed[0]
        shown = ", ".join(f"{k}={v}" for k, v in sets[index].items())
        error = SweepFailed(
            f"{len(failed)} of {len(results)} runs did not succeed; the first: {first.failure_summary()} "
            f"(parameter set #{index + 1} of {len(results)}: {shown}).",
            results,
        )
        error.published_as = args.out
        raise error
    return results


def _sweep_runs(
    session: NotebookSession, client: Any, args: Any, sets: list[dict[str, Any]], progress: Any
) -> list[RunResult]:
    from ..run.sweep import run_many
    from .background import own

    with usage_errors():
        return session.settle(
            args.out,
            lambda: run_many(
                client,
                args.job,
                sets,
                max_parallel=args.max_parallel,
                idempotency_token=args.idempotency_token,
                timeout=args.timeout,
                on_update=progress,
                cancel_on_interrupt=args.cancel_on_interrupt,
                allow_unknown_params=args.allow_unknown_params,
                watcher=session.watcher_for(client),
                on_handle=lambda handle: own(session, handle),
                performance_target=args.performance_target,
            ),
        )
