"""What each magic does once its flags are parsed: build the launch, call the run core, publish.

One function per magic; the publish-before-raise is :meth:`NotebookSession.settle`, the display is
:func:`~dbx_magic.notebook.display.progress_display`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import NOTEBOOK, InvalidInput, RunInterrupted
from ..run.models import RunResult
from .args import cell_params, foreach_sets, usage_errors
from .session import NotebookSession

__all__ = ["params_cell", "run_cell", "wait_cell", "watch_in_cell"]


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

    progress = progress_display(shell, cancel_on_interrupt=cancel_on_interrupt)
    close = getattr(progress, "close", lambda note=None: None)
    try:
        with usage_errors():  # judged from the workspace's answer (a job name that matches nothing, say)
            result = session.settle(out, lambda: call(progress))
    except RunInterrupted as exc:
        if not exc.cancelled:  # the display stops with the waiting, saying so
            close(note=exc.render(NOTEBOOK))
        raise
    finally:
        close()
    return result.raise_for_state()


def run_cell(session: NotebookSession, shell: Any, args: Any, cell: str | None) -> Any:
    """``%%dbx_run``: one run (blocking or not), or a sweep with ``--foreach``."""
    from ..run.launch import Launch, launch
    from ..run.watch import run_launch

    with usage_errors():
        params = cell_params(args.params, cell, session.namespace)
        if args.max_parallel is not None and not args.foreach:
            raise InvalidInput("--max-parallel goes with --foreach: add --foreach LIST, or leave it out.")
        if args.foreach:
            if args.no_wait:
                raise InvalidInput("--foreach waits for its runs: leave out --no-wait.")
            sets = foreach_sets(args.foreach, params, session.namespace)
        else:
            spec = Launch.check(
                args.job,
                params,
                idempotency_token=args.idempotency_token,
                timeout=args.timeout,
                allow_unknown_params=args.allow_unknown_params,
            )
    client = session.client(args.profile)
    if args.foreach:
        return _sweep(session, shell, client, args, sets)
    if args.no_wait:
        with usage_errors():
            launched = session.settle(args.out, lambda: launch(client, spec))
        run_id = launched.run_id
        print(
            f"Started run {run_id} of {launched.job_name or args.job!r}; it is in `{args.out}`. "
            f"`%dbx_wait {run_id} --out {args.out}` watches it, `%dbx_cancel {run_id}` cancels it."
        )
        return None
    return watch_in_cell(
        session,
        shell,
        args.out,
        lambda progress: run_launch(
            client, spec, on_update=progress, cancel_on_interrupt=args.cancel_on_interrupt
        ),
        args.cancel_on_interrupt,
    )


def wait_cell(session: NotebookSession, shell: Any, args: Any) -> RunResult:
    """``%dbx_wait``: re-attach to a run and watch it to its end."""
    from ..run.watch import wait_for_run

    client = session.client(args.profile)
    return watch_in_cell(
        session,
        shell,
        args.out,
        lambda progress: wait_for_run(
            client,
            args.run_id,
            timeout=args.timeout,
            on_update=progress,
            cancel_on_interrupt=args.cancel_on_interrupt,
        ),
        args.cancel_on_interrupt,
    )


def params_cell(session: NotebookSession, args: Any) -> Any:
    """``%dbx_params``: what the job takes (a table: HTML in a notebook, text elsewhere)."""
    from ..run.launch import job_info

    client = session.client(args.profile)
    with usage_errors():
        return job_info(client, args.job).declared(client)


def _sweep(
    session: NotebookSession, shell: Any, client: Any, args: Any, sets: list[dict[str, Any]]
) -> list[RunResult]:
    from ..run.sweep import SweepFailed, run_many
    from .display import sweep_display

    progress = sweep_display(shell, sets)
    with usage_errors():
        results = session.settle(
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
            ),
        )
    failed = [(i, r) for i, r in enumerate(results) if not r.ok]
    if failed:
        index, first = failed[0]
        shown = ", ".join(f"{k}={v}" for k, v in sets[index].items())
        error = SweepFailed(
            f"{len(failed)} of {len(results)} runs did not succeed; the first: {first.failure_summary()} "
            f"(parameters #{index}: {shown}).",
            results,
        )
        error.published_as = args.out
        raise error
    return results
