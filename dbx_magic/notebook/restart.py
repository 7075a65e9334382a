"""After a kernel restart: the notebook's runs found again in the run journal, and its history.

``%load_ext dbx_magic`` calls :func:`reattach`: the runs of this notebook (same workspace) that the
journal says were going when its kernel stopped are watched again, each under the name it had (unless
this kernel bound that name already); one that ended meanwhile is published at once; a launch whose
answer never came is listed with its idempotency token and ``%dbx_runs --resend TOKEN``, which sends
it again with that token (finding its run if it started, else starting it). ``DBX_MAGIC_REATTACH=0``
or ``c.DbxMagics.reattach = False`` (an IPython profile's config) turns it off.

``%dbx_runs --history`` is :func:`history_cell`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DatabricksError, InvalidInput, ResourceDoesNotExist
from .args import usage_errors
from .session import NotebookSession, notebook_path, reattach_enabled

if TYPE_CHECKING:
    from ..api.client import DatabricksClient
    from ..run.engine import RunHandle
    from ..run.journal import JournalEntry

__all__ = ["history_cell", "notebook_path", "reattach", "reattach_enabled", "resend_cell"]


# -- re-attaching -------------------------------------------------------------------------------------


def reattach(session: NotebookSession) -> str | None:
    """Watch again the runs of this notebook the journal says were going; return the line that says
    so (None when there is nothing to say)."""
    if not session.notebook or not session.journal.path.exists():  # no journal yet: no sqlite3 to import
        return None
    pending = session.journal.entries(notebook=session.notebook, unfinished=True)
    if not pending:
        return None
    try:
        client = session.client()
    except DatabricksError:  # no workspace configured yet: nothing to watch them in
        return None
    mine = [e for e in pending if e.host == client.host]
    going: list[str] = []
    ended: list[str] = []
    for entry in (e for e in reversed(mine) if e.answered):
        said = _reattach_one(session, client, entry)
        if said is not None:
            (ended if said[0] else going).append(said[1])
    lost = [_lost(e) for e in reversed(mine) if not e.answered]
    return _line(going, ended, lost) or None


def _reattach_one(
    session: NotebookSession, client: DatabricksClient, entry: JournalEntry
) -> tuple[bool, str] | None:
    """Watch one run again; ``(ended, words)`` for the line, None when it is gone from the workspace."""
    from ..run.models import RunResult
    from .background import hold, own

    assert entry.run_id is not None
    try:
        run = client.get_run(entry.run_id)
    except ResourceDoesNotExist:  # not in this workspace any more: never to be looked for again
        session.journal.ended(
            client.host, RunResult(job_id=entry.job_id, run_id=entry.run_id, life_cycle_state="GONE")
        )
        return None
    except DatabricksError as exc:
        return False, f"run {entry.run_id} (not read: {exc}; `%dbx_wait {entry.run_id}` tries again)"
    watcher = session.watcher_for(client)
    handle = watcher.adopt(client, run, source="reattach")
    handle.notify = True
    name = entry.name
    kept = name is not None and not _rebound(session, name, entry.run_id)
    if kept:
        assert name is not None
        own(session, handle, name)
        hold(session, name, handle)
    watcher.resume(handle)
    return handle.done, _words(handle, name, kept)


def _rebound(session: NotebookSession, name: str, run_id: int) -> bool:
    """True when this kernel already bound ``name`` to something else than that run."""
    if name not in session.namespace:
        return False
    return getattr(session.namespace[name], "run_id", None) != run_id


def _words(handle: RunHandle, name: str | None, kept: bool) -> str:
    result = handle.result
    state = result.result_state if handle.done else (result.life_cycle_state or "state not known yet")
    if name is None:
        return f"run {handle.run_id} ({state})"
    if not kept:
        return f"run {handle.run_id} ({state}; `{name}` was bound again here, so `%dbx_wait {handle.run_id}` gets it)"
    return f"`{name}` (run {handle.run_id}, {state})"


def _lost(entry: JournalEntry) -> str:
    job = entry.job_name or f"job {entry.job_id}"
    return (
        f"the launch of {job!r} whose answer never came (idempotency token {entry.idempotency_token}): "
        f"`%dbx_runs --resend {entry.idempotency_token}` sends it again with that token, which finds its run "
        "if it started, or starts it"
    )


def _line(going: list[str], ended: list[str], lost: list[str]) -> str:
    parts = []
    if going:
        n = len(going)
        were = f"{n} run{'s' if n > 1 else ''} of this notebook {'were' if n > 1 else 'was'}"
        gets = "their names get the results" if n > 1 else "its name gets the result"
        parts.append(
            f"{were} going when its kernel stopped: {_joined(going)}; {gets} when {'they end' if n > 1 else 'it ends'}"
        )
    if ended:
        parts.append(f"ended while no kernel watched: {_joined(ended)}, published now")
    if lost:
        parts.append("; ".join(lost))
    text = ". ".join(p[0].upper() + p[1:] for p in parts)
    return f"{text}." if text else ""


def _joined(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" and {items[-1]}"


# -- %dbx_runs --history and --resend -----------------------------------------------------------------


def history_cell(session: NotebookSession, args: Any) -> None:
    """``%dbx_runs --history [--all] [--job JOB] [--since AGE] [--forget]``: this notebook's past runs
    (every notebook's with ``--all``) as lines, newest first; ``--forget`` deletes them instead.
    (``dbx_magic.history(...)`` gives the entries themselves.)"""
    from ..run.journal import age_seconds

    with usage_errors():
        since = age_seconds(args.since) if args.since else None
    notebook = None if args.all else session.notebook
    if not args.all and notebook is None:
        print("This kernel does not know its notebook's path, so its history is every notebook's (as --all).")
    jobs = list(args.job or ()) or [None]
    if args.forget:
        count = sum(session.journal.forget(notebook=notebook, job=j, since=since) for j in jobs)
        print(f"Forgot {count} journal entr{'y' if count == 1 else 'ies'}.")
        return
    entries = [e for j in jobs for e in session.journal.entries(notebook=notebook, job=j, since=since)]
    entries.sort(key=lambda e: e.launched_at, reverse=True)
    where = "every notebook" if notebook is None else "this notebook"
    if not entries:
        print(f"The run journal has no runs of {where}{' in that time' if since else ''}.")
        return
    print(f"{len(entries)} run{'s' if len(entries) != 1 else ''} of {where}, newest first:")
    for entry in entries:
        print("  " + session.mask(entry.describe()))


def resend_cell(session: NotebookSession, shell: Any, token: str, profile: str | None) -> Any:
    """``%dbx_runs --resend TOKEN``: send again a launch whose answer never came, with the same token
    (the workspace gives the run it started, if it did; else it starts one), and watch it in the
    background under the name the launch had."""
    from ..run.launch import Launch
    from .background import background_cell

    found = [e for e in session.journal.entries() if e.idempotency_token == token]
    if not found:
        raise InvalidInput(f"The run journal has no launch with the idempotency token {token!r}.")
    entry = found[0]
    if any(v == "***" for v in entry.parameters.values()):
        raise InvalidInput(
            "This launch had a secret among its parameters, which the journal does not keep: launch it again yourself."
        )
    client = session.client(profile)
    if client.host != entry.host:
        raise InvalidInput(f"That launch went to {entry.host}, not to this kernel's workspace {client.host}.")
    spec = Launch.check(entry.job_id or entry.job_name or "", entry.parameters, idempotency_token=token)
    background_cell(session, shell, client, spec, entry.name or "dbx_result")
    return None
