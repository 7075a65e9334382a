"""The notebook side of background runs: ``--background``, ``%dbx_wait NAME|RUN_ID``, ``%dbx_runs``,
the form's launches, and what happens when a run ends (its result published, a notice given).

The session's watcher (:mod:`dbx_magic.run.engine`) polls the runs on its own thread, so a cell
returns at once and the kernel stays idle: the progress widget goes on updating from that thread and
its buttons, and the board's, get their clicks. When a run ends, the variable that holds its handle
gets the final RunResult (only while it still holds that handle: a name the user reassigned is left
alone), and a notice is given outside the cell (:mod:`dbx_magic.notebook.notices`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, RunInterrupted, WaitTimeout
from ..run.engine import RunHandle
from ..run.models import RunResult
from .args import usage_errors
from .display import has_widget_frontend
from .session import NotebookSession

if TYPE_CHECKING:
    from ..api.client import DatabricksClient
    from ..run.launch import Launch

__all__ = [
    "background_cell",
    "check_background",
    "goes_on",
    "launch_in_session",
    "notices",
    "runs_cell",
    "settled",
    "wait_cell",
]


def notices(session: NotebookSession, shell: Any = None) -> Any:
    """The session's notice channel, made on first use (on the kernel's thread, in a cell)."""
    if session.notices is None:
        from .notices import Notices

        session.notices = Notices(
            page=has_widget_frontend(shell), mask=session.mask, fade=session.notice_seconds
        )
    return session.notices


def settled(session: NotebookSession, handle: RunHandle) -> None:
    """A run of the session ended (or its watching stopped): publish it under its name, announce it."""
    if handle.done:
        for name in handle.names:  # every name still holding this run gets its end
            if _still_holds(session.namespace.get(name), handle):
                session.publish(name, handle.result)
    if handle.notify:
        if session.notices is None:  # a run from Python: the first end makes the channel
            from IPython import get_ipython

            notices(session, get_ipython())
        held = [n for n in handle.names if session.namespace.get(n) in (handle, handle.result)]
        session.notices.announce(handle, held)


def _still_holds(value: Any, handle: RunHandle) -> bool:
    """The name still holds this run as it was before its end: its handle, or what a ``--no-wait``
    launch or a stopped wait left there (a name the user reassigned is left alone)."""
    if value is handle:
        return True
    return (
        isinstance(value, RunResult)
        and value.run_id == handle.run_id
        and value.client in (None, handle.client)
        and not value.finished
    )


def hold(session: NotebookSession, out: str, handle: RunHandle) -> None:
    """Put the handle under ``out`` until its end replaces it; a run that ended meanwhile (before the
    name held it, so its end was not published there) goes there at once."""
    session.publish(out, handle)
    if handle.done:
        session.publish(out, handle.result)


def own(session: NotebookSession, handle: RunHandle, out: str | None = None) -> RunHandle:
    """The handle's end goes under ``out`` too (and ``%dbx_wait RUN_ID`` finds that name)."""
    if out is not None:
        handle.out = out
        if out not in handle.names:
            handle.names.append(out)
        session.names[handle.run_id] = out
        session.journal.named(handle.client.host, handle.run_id, out)
    return handle


def goes_on(session: NotebookSession, shell: Any, handle: RunHandle, out: str | None = None) -> None:
    """A wait stopped (an interrupt, a timeout) while the run goes on, still watched: its end will be
    announced, and ``out`` (when given) holds the handle until that end replaces it."""
    if handle.done or not handle.watching:
        return
    handle.notify = True
    notices(session, shell)
    if out is not None:
        hold(session, out, handle)


# -- %%dbx_run --background ---------------------------------------------------------------------------


def check_background(args: Any) -> None:
    """The flags ``--background`` cannot go with, judged before anything is sent."""
    if not args.background:
        return
    if args.foreach:
        raise InvalidInput(
            "--background runs one job in the background, and --foreach waits for its runs to show their "
            "summary: leave out one of them."
        )
    if args.no_wait:
        raise InvalidInput(
            "--background and --no-wait both return at once (--background keeps watching the run, --no-wait "
            "does not): pick one."
        )
    if args.timeout is not None:
        raise InvalidInput(
            "--timeout limits the waiting, and --background does not wait: leave it out "
            "(`%dbx_wait NAME --timeout S` waits with one)."
        )
    if args.cancel_on_interrupt:
        raise InvalidInput(
            "--cancel-on-interrupt is for a run that blocks the cell; an interrupt never stops a background "
            "run: leave it out (its Cancel button, `%dbx_runs` or `%dbx_cancel RUN_ID` cancel it)."
        )


def background_cell(
    session: NotebookSession, shell: Any, client: DatabricksClient, spec: Launch, out: str
) -> None:
    """Launch the run, put its handle under ``out`` and return; the watcher does the rest."""
    holder: list[RunHandle] = []
    progress = _progress(shell, lambda: holder[0].cancel() if holder else None, session)
    channel = notices(session, shell)
    try:
        with usage_errors():  # a job name that matches nothing, say
            handle = launch_in_session(session, client, spec, progress, out, source="magic", on_notice=print)
    except BaseException as exc:
        from .faces import show_end

        if progress is not None:
            show_end(progress, exc)
        raise
    holder.append(handle)
    hold(session, out, handle)
    channel.show_channel(session.lives)
    name = handle.job_name or spec.job
    print(
        f"Run {handle.run_id} of {name!r} was launched in the background: `{out}` holds its handle, then its "
        f"RunResult once it ends. `%dbx_wait {out}` waits for it, `%dbx_runs` lists this session's runs."
    )


def _progress(shell: Any, cancel: Any, session: NotebookSession) -> Any:
    """A progress widget with a working Cancel, shown in the cell (None in a terminal: no lines
    printed from a thread over what the user types; the notice line says the end). It gives way to
    a record of the end, put there by display id from the watcher's thread (so it lands in the cell's
    own output, whichever cell runs by then), or of the watching stopped when the kernel stops."""
    if not has_widget_frontend(shell):
        return None
    from .widgets import ProgressWidget

    widget = ProgressWidget(cancel=cancel)
    widget.hint.value = "<small>In the background: keep working; a notice comes when it ends.</small>"
    return widget.show(session.lives)


def launch_in_session(
    session: NotebookSession,
    client: DatabricksClient,
    spec: Launch,
    progress: Any,
    out: str,
    *,
    source: str,
    on_notice: Callable[[str], Any] | None = None,
) -> RunHandle:
    """Launch one more background run of the session (a ``--background`` cell's, the form's): on its
    board, its end published under ``out`` and announced."""
    handle = session.watcher_for(client).launch(
        client, spec, on_update=progress, on_notice=on_notice, source=source
    )
    return own(session, handle, out)


# -- %dbx_wait ----------------------------------------------------------------------------------------


def _holds(value: Any) -> int | None:
    """The run id a namespace value holds (a handle or a RunResult), else None."""
    if isinstance(value, RunHandle | RunResult):
        return value.run_id
    return None


def wait_target(
    session: NotebookSession, client: Callable[[], DatabricksClient], target: int | str, out: str | None
) -> tuple[RunHandle | RunResult, str]:
    """What ``%dbx_wait`` waits on (a handle; or a RunResult already finished, which needs no
    request), and the name its result goes under. ``client()`` gives the session's client, asked
    for only when the target does not carry its own.

    Raises:
        InvalidInput: a name that holds no run (nothing is sent).
    """
    if isinstance(target, str):
        value = session.namespace.get(target)
        if isinstance(value, RunHandle):
            session.watch_over(value.watcher)
            return value, out or target
        run_id = _holds(value)
        if run_id is None:
            what = (
                "is not defined"
                if target not in session.namespace
                else f"holds a {type(value).__name__}, not a run"
            )
            raise InvalidInput(
                f"`{target}` {what}: give a run id, or the name that `%%dbx_run --background` or `--no-wait` "
                "put a run in."
            )
        if isinstance(value, RunResult) and value.finished:
            return value, out or target  # its end is known: nothing to read again, nothing to lose
        return _handle(session, getattr(value, "client", None) or client(), run_id), out or target
    remembered = session.names.get(target)
    if out is None and remembered and _holds(session.namespace.get(remembered)) == target:
        out = remembered
    known = _known(session, target)
    return known or _handle(session, client(), target), out or "dbx_result"


def _known(session: NotebookSession, run_id: int) -> RunHandle | None:
    """The session's latest handle of that run, whatever its client (when only one workspace has it)."""
    found = [h for h in session.handles if h.run_id == run_id]
    return found[-1] if found and len({id(h.client) for h in found}) == 1 else None


def _handle(session: NotebookSession, client: DatabricksClient, run_id: int) -> RunHandle:
    """The session's live handle of that run, else a new one watching it."""
    for handle in reversed(session.handles):  # the latest (a finished one has its end: the wait is over)
        if handle.run_id == run_id and handle.client is client:
            return handle
    return session.watcher_for(client).watch(client, run_id, source="wait", notify=False)


def wait_cell(session: NotebookSession, shell: Any, args: Any) -> RunResult:
    """``%dbx_wait NAME|RUN_ID``: wait for the run to end, publish it under the same name, and fail
    the cell when it did not succeed. A timeout or an interrupt leaves it watched in the background."""
    from .faces import watch_in_cell

    with usage_errors():
        target, out = wait_target(session, lambda: session.client(args.profile), args.target, args.out)
    if isinstance(target, RunResult):
        session.publish(out, target)
        return target.raise_for_state()
    handle = own(session, target, out)
    if not has_widget_frontend(shell):  # a terminal: the cell prints the end; no notice line repeats it
        handle.notify = False

    def call(progress: Any) -> RunResult:
        handle.add_listener(progress)
        try:
            progress(handle.result)
            return handle.wait(
                args.timeout, raise_on_failure=False, cancel_on_interrupt=args.cancel_on_interrupt
            )
        finally:
            handle.remove_listener(progress)

    try:
        return watch_in_cell(session, shell, out, call, args.cancel_on_interrupt)
    except (WaitTimeout, RunInterrupted):
        goes_on(session, shell, handle, out)  # the name gets its end
        raise


# -- %dbx_runs ----------------------------------------------------------------------------------------


def touched_jobs(session: NotebookSession, client: DatabricksClient | None = None) -> list[int]:
    """The jobs of the session's runs (in the workspace of ``client``, when given), in the order first seen."""
    seen: dict[int, None] = {}
    for handle in session.handles:
        if handle.job_id is not None and (client is None or handle.client.host == client.host):
            seen.setdefault(handle.job_id, None)
    return list(seen)


def find_active(
    session: NotebookSession, client: DatabricksClient, jobs: list[int | str]
) -> tuple[list[RunHandle], list[str]]:
    """The active runs of the jobs the session touched in this client's workspace (and of ``jobs``)
    that this kernel does not watch, as handles not yet watched (the board's Watch, or
    ``%dbx_wait RUN_ID``, watches one); and what could not be listed, one phrase per job."""
    from ..errors import DatabricksError
    from ..run.engine import active_runs
    from ..run.launch import job_info

    job_ids = touched_jobs(session, client)
    for job in jobs:  # a job named on the line that does not exist is refused here, in one sentence
        job_id = job_info(client, job).job_id
        if job_id not in job_ids:
            job_ids.append(job_id)
    known = {(h.client.host, h.run_id) for h in session.handles if not h.done}
    found, failed = [], []
    for job_id in job_ids:
        try:
            seen, _retry = active_runs(client, job_id)
        except DatabricksError as exc:  # one job that cannot be listed hides none of the others
            failed.append(f"job {job_id}: {exc.message.rstrip('.')}")
            continue
        for run_id, run in seen.items():
            if (client.host, run_id) not in known:
                run.setdefault("job_id", job_id)
                found.append(session.watcher_for(client).adopt(client, run))
    return found, failed


def runs_cell(session: NotebookSession, shell: Any, args: Any) -> Any:
    """``%dbx_runs [--active]``: the board of the session's runs (a widget, or a table in a terminal)."""
    session.find_handles()
    found: list[RunHandle] = []
    failed: list[str] = []
    looked = False
    if args.active or args.job:
        client = session.client(args.profile)
        looked = bool(args.job) or bool(touched_jobs(session, client))
        if looked:
            with usage_errors():
                found, failed = find_active(session, client, list(args.job or ()))
    if has_widget_frontend(shell):
        from .board import RunBoard

        board = RunBoard(session)
        if args.active or args.job:
            board.message.value = _found_text(found, looked, failed, html=True)
        return board
    from .board import text_board

    print(text_board(session.handles, session.clock.wall(), session.mask))
    if args.active or args.job:
        print(_found_text(found, looked, failed, html=False))
    return None


def _found_text(found: list[RunHandle], looked: bool, failed: list[str], *, html: bool) -> str:
    if not looked:
        text = (
            "This kernel has run no job yet (after a restart, say), so --active had no job to look at: "
            "`%dbx_runs --active --job JOB` lists that job's active runs."
        )
    elif not found:
        text = "No other active runs of these jobs."
    else:
        ids = ", ".join(str(h.run_id) for h in found)
        text = f"{len(found)} active run{'s' if len(found) != 1 else ''} not watched by this kernel ({ids}): "
        text += "Watch on its row watches it." if html else "`%dbx_wait RUN_ID` waits for one."
    if failed:
        text += (
            f" Not listed ({'; '.join(failed)}): run `%dbx_runs --active` again once the workspace answers."
        )
    if html:
        import html as markup

        return f"<small>{markup.escape(text)}</small>"
    return text
