"""The run journal: every run launched, waited on, repaired or adopted, kept in a local SQLite file.

One row a run: the workspace host (never a credential), the job, the run id, the idempotency token,
the parameters (a value that is or holds a known secret, or looks like a credential, is kept as
``***``), the notebook it came from, the names it was published under, when it was launched, answered
and ended, its final state and a short summary. A row is written before the launch request is sent
(so a launch whose answer never came is known, with its token), when the answer comes, and when the
run ends::

    journal = Journal.default()            # DBX_MAGIC_HOME, else the platform's user data directory
    journal.entries(notebook="/work/report.ipynb", since=7 * 86400)

Several kernels use one file at once (WAL, a busy timeout); the file and its directory are the user's
alone (0600, 0700). A journal that cannot be written (a read-only home, a full disk, a corrupt file)
never fails a run: it says so once, in a warning, and the runs go on unjournaled. Entries older than
``keep_days`` (90, or ``DBX_MAGIC_JOURNAL_DAYS``) are dropped when the journal is opened.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

    from ..api.client import DatabricksClient
    from .models import RunResult

__all__ = [
    "CREDENTIAL",
    "Journal",
    "JournalEntry",
    "age_seconds",
    "credentials",
    "default_path",
    "hide_credentials",
    "history",
]

log = logging.getLogger("dbx_magic")

CREDENTIAL = r"\bdapi[0-9a-f]{32}(-\d+)?\b|\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]+|\bBearer\s+\S{16,}"
"""What a credential looks like, whatever it is called: a personal access token, a JWT (Entra ID and
Databricks OAuth tokens), an Authorization header's value. A pattern (case-insensitive): compiling it
costs milliseconds, so it is compiled on first use (``re`` keeps it), not at ``%load_ext``."""


def credentials(text: str) -> re.Match[str] | None:
    """The first thing in ``text`` shaped like a credential, if any."""
    return re.search(CREDENTIAL, text, re.IGNORECASE)


def hide_credentials(text: str) -> str:
    """``text`` with everything shaped like a credential as ``***``."""
    return re.sub(CREDENTIAL, "***", text, flags=re.IGNORECASE)


_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"": 86400.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}
LAUNCHING = "LAUNCHING"
"""The state of a row whose launch request was sent and whose answer never came (yet)."""
WATCHING = "WATCHING"
"""The state of a row whose run is known and not seen to end."""
KEEP_DAYS = 90.0
_SUMMARY = 300
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    job_id INTEGER,
    job_name TEXT,
    run_id INTEGER,
    token TEXT,
    params TEXT NOT NULL DEFAULT '{}',
    notebook TEXT,
    names TEXT NOT NULL DEFAULT '[]',
    launched_at REAL NOT NULL,
    answered_at REAL,
    ended_at REAL,
    state TEXT NOT NULL,
    result_state TEXT,
    summary TEXT NOT NULL DEFAULT '',
    run_page_url TEXT,
    elapsed REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_token ON runs (host, token) WHERE token IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_run ON runs (host, run_id) WHERE run_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (launched_at);
"""
_COLUMNS = (
    "host, job_id, job_name, run_id, token, params, notebook, names, launched_at, answered_at, ended_at, "
    "state, result_state, summary, run_page_url, elapsed"
)


def default_path() -> Path:
    """Where the journal lives: ``$DBX_MAGIC_HOME/journal.sqlite3``, else the platform's user data
    directory (``~/.local/share/dbx-magic`` or ``$XDG_DATA_HOME``, ``~/Library/Application Support``,
    ``%LOCALAPPDATA%``)."""
    home = os.environ.get("DBX_MAGIC_HOME")
    if home:
        return Path(home).expanduser() / "journal.sqlite3"
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "dbx-magic" / "journal.sqlite3"


@dataclass(frozen=True)
class JournalEntry:
    """One run as the journal knows it. ``state`` is ``LAUNCHING`` for a launch whose answer never
    came, ``WATCHING`` for a run not seen to end, else the life cycle state it ended in."""

    host: str
    job_id: int | None
    job_name: str | None
    run_id: int | None
    idempotency_token: str | None
    parameters: dict[str, str]
    notebook: str | None
    names: tuple[str, ...]
    launched_at: float
    answered_at: float | None
    ended_at: float | None
    state: str
    result_state: str | None
    summary: str
    run_page_url: str | None
    elapsed: float | None

    @property
    def ended(self) -> bool:
        """True once the run was seen to end."""
        return self.ended_at is not None

    @property
    def answered(self) -> bool:
        """False for a launch whose answer never came (the run may or may not exist)."""
        return self.run_id is not None

    @property
    def name(self) -> str | None:
        """The name that last held the run (None when it was never published)."""
        return self.names[0] if self.names else None

    def describe(self) -> str:
        """The entry in one line: run, job, parameters, state, elapsed, name, link."""
        what = f"run {self.run_id}" if self.run_id else f"launch (token {self.idempotency_token})"
        job = self.job_name or (f"job {self.job_id}" if self.job_id else "a job")
        if self.parameters:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(self.parameters.items()))
            job += f" ({shown if len(shown) <= 80 else shown[:79] + '…'})"
        if not self.answered:
            state = "answer never came"
        else:
            state = self.result_state or (self.state if self.ended else "not seen to end")
        parts = [f"{what} of {job}: {state}"]
        if self.elapsed is not None:
            parts.append(f"{self.elapsed:.0f} s")
        if self.names:
            parts.append(f"in `{self.names[0]}`")
        if self.run_page_url:
            parts.append(self.run_page_url)
        return " · ".join(parts)

    def result(self, client: DatabricksClient | None = None) -> RunResult:
        """The run read again from its workspace, as a RunResult (outputs included once it ended).

        Args:
            client: A client of the entry's workspace (default: the configured one).

        Raises:
            InvalidInput: the launch was never answered, or the client is for another workspace.
            DatabricksError: the workspace refused.
        """
        from ..errors import InvalidInput
        from .models import RunResult
        from .watch import fetch_outputs

        if self.run_id is None:
            raise InvalidInput(
                f"This launch was never answered: launch again with idempotency_token="
                f"{self.idempotency_token!r} to find its run (or start it)."
            )
        if client is None:
            from ..api.client import DatabricksClient

            client = DatabricksClient.from_config()
        if client.host != self.host:
            raise InvalidInput(
                f"Run {self.run_id} is in {self.host}, not in {client.host}: give a client of it."
            )
        result = RunResult.from_api(
            dict(client.get_run(self.run_id)),
            job_name=self.job_name,
            idempotency_token=self.idempotency_token,
        )
        result = fetch_outputs(client, result) if result.finished else result
        from dataclasses import replace

        return replace(result, client=client, parameters=dict(self.parameters))


class Journal:
    """The run journal (see the module's docstring).

    Args:
        path: The SQLite file (default: :func:`default_path`).
        notebook: The notebook the runs written through this journal come from (the path Jupyter or
            VS Code gives the kernel), None outside a notebook.
        secrets: Values never to be written (the set is read at each write, so it may grow).
        clock: Wall-clock seconds.
        keep_days: Entries older than this are dropped when the journal is opened (default:
            ``DBX_MAGIC_JOURNAL_DAYS``, else 90).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        notebook: str | None = None,
        secrets: set[str] | None = None,
        clock: Callable[[], float] | None = None,
        keep_days: float | None = None,
    ) -> None:
        import time

        self.path = Path(path) if path is not None else default_path()
        self.notebook = notebook
        self.secrets: set[str] = secrets if secrets is not None else set()
        self.clock = clock or time.time
        self.keep_days = keep_days if keep_days is not None else _keep_days()
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self.broken: str | None = None
        """Why the journal cannot be used (said once, in a warning); None while it works."""

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}{', not writable' if self.broken else ''})"

    # -- the file --------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            import sqlite3

            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not self.path.exists():
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
            try:
                _wal(db)
                db.execute("PRAGMA synchronous = NORMAL")  # with WAL: no fsync a write, never corrupt
                with db:
                    db.execute("BEGIN IMMEDIATE")
                    for statement in _SCHEMA.split(";"):
                        db.execute(statement)
                    db.execute(
                        "DELETE FROM runs WHERE launched_at < ?", (self.clock() - self.keep_days * 86400,)
                    )
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _use(
        self, work: Callable[[sqlite3.Connection], Any], default: Any = None, *, write: bool = True
    ) -> Any:
        """Run ``work`` on the open file, in one transaction; any failure turns the journal off, once,
        with a warning."""
        import sqlite3

        with self._lock:
            if self.broken:
                return default
            try:
                db = self._connect()
                with db:  # a transaction: committed, or rolled back on error
                    db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    return work(db)
            except (sqlite3.Error, OSError) as exc:
                self.broken = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "The run journal %s cannot be used (%s): runs go on, but are not journaled, so a "
                    "restarted kernel will not re-attach them.",
                    self.path,
                    self.broken,
                )
                return default

    def close(self) -> None:
        """Close the file (it opens again when next used)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- masking ---------------------------------------------------------------------------------
    def mask(self, text: str) -> str:
        """``text`` with every known secret, and anything shaped like a credential, as ``***``."""
        for secret in list(self.secrets):
            if secret:
                text = text.replace(secret, "***")
        return hide_credentials(text)

    def _params(self, params: Mapping[str, Any]) -> str:
        return json.dumps({self.mask(str(k)): self.mask(str(v)) for k, v in params.items()}, sort_keys=True)

    # -- writing ---------------------------------------------------------------------------------
    def launching(
        self,
        host: str,
        *,
        job_id: int | None,
        job_name: str | None,
        token: str,
        params: Mapping[str, Any],
    ) -> None:
        """Before run-now is sent: the launch, with its idempotency token."""
        row = (host, job_id, job_name, token, self._params(params), self.notebook, self.clock(), LAUNCHING)

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO runs (host, job_id, job_name, token, params, notebook, launched_at, "
                "state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

        self._use(work)

    def launched(self, host: str, token: str, run_id: int) -> None:
        """The answer to run-now came: the launch's row gets its run id."""

        def work(db: sqlite3.Connection) -> None:
            known = db.execute("SELECT id FROM runs WHERE host = ? AND run_id = ?", (host, run_id)).fetchone()
            if known is not None:  # the token found a run already journaled: one row for it
                db.execute("DELETE FROM runs WHERE host = ? AND token = ? AND run_id IS NULL", (host, token))
                return
            db.execute(
                "UPDATE runs SET run_id = ?, answered_at = ?, state = ? WHERE host = ? AND token = ?",
                (run_id, self.clock(), WATCHING, host, token),
            )

        self._use(work)

    def refused(self, host: str, token: str) -> None:
        """The launch was refused, so no run started: its row goes."""
        self._use(
            lambda db: db.execute(
                "DELETE FROM runs WHERE host = ? AND token = ? AND run_id IS NULL", (host, token)
            )
        )

    def watching(self, host: str, run_id: int, job_id: int | None = None, *, again: bool = False) -> None:
        """A run is watched (waited on, adopted, repaired): it gets a row unless it has one; ``again``
        (a repair) makes it unfinished again, so a kernel that stops during the repair re-attaches it."""
        row = (host, job_id, run_id, self.notebook, self.clock(), self.clock(), WATCHING)

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO runs (host, job_id, run_id, notebook, launched_at, answered_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            if again:
                db.execute(
                    "UPDATE runs SET ended_at = NULL, state = ? WHERE host = ? AND run_id = ?",
                    (WATCHING, host, run_id),
                )

        self._use(work)

    def ended(self, host: str, result: RunResult) -> None:
        """The run ended: its final state, elapsed time, link and a short summary."""
        summary = self.mask(_summary(result))[:_SUMMARY]
        elapsed = (
            (result.end_time - result.start_time) / 1000 if result.end_time and result.start_time else None
        )
        now = self.clock()

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR IGNORE INTO runs (host, run_id, notebook, launched_at, answered_at, state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (host, result.run_id, self.notebook, now, now, WATCHING),
            )
            db.execute(
                "UPDATE runs SET ended_at = ?, state = ?, result_state = ?, summary = ?, run_page_url = ?, "
                "elapsed = ?, job_id = coalesce(job_id, ?), job_name = coalesce(job_name, ?) "
                "WHERE host = ? AND run_id = ?",
                (
                    now,
                    result.life_cycle_state or "TERMINATED",
                    result.result_state,
                    summary,
                    result.run_page_url,
                    elapsed,
                    result.job_id,
                    result.job_name,
                    host,
                    result.run_id,
                ),
            )

        self._use(work)

    def named(self, host: str, run_id: int, name: str) -> None:
        """The run was published under ``name`` (the newest name first)."""

        def work(db: sqlite3.Connection) -> None:
            row = db.execute(
                "SELECT names FROM runs WHERE host = ? AND run_id = ?", (host, run_id)
            ).fetchone()
            if row is None:
                return
            names = [name, *(n for n in json.loads(row[0]) if n != name)][:5]
            db.execute(
                "UPDATE runs SET names = ? WHERE host = ? AND run_id = ?", (json.dumps(names), host, run_id)
            )

        self._use(work)

    # -- reading ---------------------------------------------------------------------------------
    def entries(
        self,
        *,
        notebook: str | None = None,
        host: str | None = None,
        job: int | str | None = None,
        since: float | None = None,
        unfinished: bool = False,
    ) -> list[JournalEntry]:
        """Entries, newest first: of one notebook, workspace, job (id or name), launched in the last
        ``since`` seconds, or not seen to end (each filter only when given)."""
        where, args = _filters(notebook, host, job, None if since is None else self.clock() - since)
        if unfinished:
            where.append("ended_at IS NULL")
        sql = f"SELECT {_COLUMNS} FROM runs {_where(where)} ORDER BY launched_at DESC, id DESC"
        rows = self._use(lambda db: db.execute(sql, args).fetchall(), default=[], write=False)
        return [_entry(row) for row in rows]

    def forget(
        self,
        *,
        notebook: str | None = None,
        host: str | None = None,
        job: int | str | None = None,
        since: float | None = None,
    ) -> int:
        """Delete the entries these filters select (every entry when none is given); returns how many."""
        where, args = _filters(notebook, host, job, None if since is None else self.clock() - since)
        count = self._use(
            lambda db: db.execute(f"DELETE FROM runs {_where(where)}", args).rowcount, default=0
        )
        return int(count)


def age_seconds(age: str | float | int) -> float:
    """An age as seconds: a number of seconds, or text such as ``7d``, ``12h``, ``30m``, ``90s``, ``2w``
    (a bare number in text: days).

    Raises:
        InvalidInput: anything else.
    """
    from ..errors import InvalidInput

    if isinstance(age, int | float) and not isinstance(age, bool) and age >= 0:
        return float(age)
    match = _AGE.match(age) if isinstance(age, str) else None
    if not match:
        raise InvalidInput(f"An age is a number of seconds, or text such as 7d, 12h or 30m, not {age!r}.")
    return float(match.group(1)) * _UNIT[match.group(2)]


def history(
    job: int | str | None = None,
    *,
    since: str | float | None = None,
    notebook: str | None = None,
    host: str | None = None,
    journal: Journal | None = None,
) -> list[JournalEntry]:
    """The runs in the run journal, newest first: every notebook's, or one ``notebook``'s (its path),
    of one ``job`` (id or name), ``since`` an age ago (``"7d"``, or seconds), in one workspace ``host``::

        import dbx_magic
        for entry in dbx_magic.history("daily-sales-report", since="7d"):
            print(entry.describe())
        result = dbx_magic.history()[0].result()      # the newest run, read again from its workspace

    Args:
        journal: The journal to read (default: the one in ``DBX_MAGIC_HOME`` or the user data directory).
    """
    journal = journal or Journal()
    return journal.entries(
        notebook=notebook, host=host, job=job, since=None if since is None else age_seconds(since)
    )


def _keep_days() -> float:
    """``DBX_MAGIC_JOURNAL_DAYS`` when it is a positive number, else 90."""
    try:
        days = float(os.environ.get("DBX_MAGIC_JOURNAL_DAYS", KEEP_DAYS))
    except ValueError:
        return KEEP_DAYS
    return days if days > 0 else KEEP_DAYS


def _wal(db: sqlite3.Connection) -> None:
    """Switch the file to write-ahead logging. Another process doing the same at that instant makes
    SQLite answer "locked" at once (no busy wait for this one), so it is tried again a few times."""
    import sqlite3
    import time

    for attempt in range(50):
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.02)


def _filters(
    notebook: str | None, host: str | None, job: int | str | None, after: float | None
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("notebook", notebook), ("host", host)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if isinstance(job, int) or (isinstance(job, str) and job.strip().isdigit()):
        where.append("job_id = ?")
        args.append(int(job))
    elif job is not None:
        where.append("job_name = ?")
        args.append(job)
    if after is not None:
        where.append("launched_at >= ?")
        args.append(after)
    return where, args


def _where(clauses: Iterable[str]) -> str:
    clauses = list(clauses)
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    (
        host,
        job_id,
        job_name,
        run_id,
        token,
        params,
        notebook,
        names,
        *times,
        state,
        result,
        summary,
        url,
        el,
    ) = row
    return JournalEntry(
        host=host,
        job_id=job_id,
        job_name=job_name,
        run_id=run_id,
        idempotency_token=token,
        parameters=json.loads(params),
        notebook=notebook,
        names=tuple(json.loads(names)),
        launched_at=times[0],
        answered_at=times[1],
        ended_at=times[2],
        state=state,
        result_state=result,
        summary=summary,
        run_page_url=url,
        elapsed=el,
    )


def _summary(result: RunResult) -> str:
    """A line about how the run ended: its state message, its failing task's error, or its output."""
    failed = result.failed_tasks
    if failed:
        task = failed[0]
        return f"{task.key}: {task.error or task.result_state}"
    try:
        output = result.output
    except Exception:  # several outputs: not one line
        output = None
    return output if output is not None else result.state_message or ""
