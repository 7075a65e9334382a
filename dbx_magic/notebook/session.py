"""The notebook session: what one kernel's magics and forms share, in one object that is handed over.

A :class:`NotebookSession` holds the sandbox this kernel started (if any), one client per resolved
configuration (so a sign-in is reused), the request-rate limiter those clients share, the secrets to
refuse in cells and forms, and the namespace results are published in. ``%load_ext dbx_magic``
makes one and gives it to the magics; the magics give it to each form they show.

:meth:`NotebookSession.settle` is the one piece of publish-before-raise: whatever a call returns, or
whatever its error carries (a run as last seen, a sweep's runs), is in the namespace before anything
is raised, so a failed, timed-out or interrupted run is never lost.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..clock import SYSTEM, Clock
from ..errors import DatabricksError, InvalidInput, RunInterrupted
from .live import Lives

if TYPE_CHECKING:
    from ..api.client import DatabricksClient
    from ..api.config import Config
    from ..api.ratelimit import RateLimiter
    from ..run.engine import RunHandle, Watcher
    from ..run.journal import Journal
    from ..run.polling import PollPolicy

__all__ = ["NotebookSession", "notebook_path", "reattach_enabled", "refuse_secrets"]

T = TypeVar("T")

# A flag naming a credential, and a password given as a parameter. A parameter merely *named* token
# (a pagination or feature token, say) is a parameter like any other: refused only for a value that
# looks like a credential (above) or is one this session knows.
_TOKEN_FLAG = re.compile(r"(^|\s)--?(token|pat|password)\b|(^|\s)password\s*=", re.IGNORECASE)
WHERE_TOKENS_GO = (
    "a token does not belong in a notebook (the notebook saves it): set DATABRICKS_TOKEN in the "
    "kernel's environment, or put it in a ~/.databrickscfg profile and pass --profile NAME."
)


def refuse_secrets(texts: tuple[str | None, ...], known: set[str], *, flags: bool = True) -> None:
    """Raise InvalidInput when any text holds a token: a known one, one shaped like a PAT, or a
    ``--token`` flag (``flags``: magic lines and cells, not form values)."""
    from ..run.journal import credentials

    for text in texts:
        if not text:
            continue
        if (flags and _TOKEN_FLAG.search(text)) or credentials(text) or any(k and k in text for k in known):
            raise InvalidInput(f"Refused: {WHERE_TOKENS_GO}")


class NotebookSession:
    """One kernel's shared state: sandbox, clients, rate limiter, known secrets, namespace.

    Args:
        namespace: Where results are published (the shell's ``user_ns``).
        clock: The clock every client of the session runs on.
        threaded: The session's watcher polls on a thread of its own (the default); ``False``: it is
            stepped by whoever waits (what a fake clock needs).
        notebook: The notebook this kernel runs (the path Jupyter or VS Code gives it), if known.
        policy: When the session's watcher polls (default: ``PollPolicy()``).
    """

    def __init__(
        self,
        namespace: dict[str, Any] | None = None,
        *,
        clock: Clock = SYSTEM,
        threaded: bool = True,
        notebook: str | None = None,
        policy: PollPolicy | None = None,
    ) -> None:
        self.policy = policy
        self.namespace: dict[str, Any] = {} if namespace is None else namespace
        self.clock = clock
        self.threaded = threaded
        self.sandbox: Any = None
        self._sandbox_client: DatabricksClient | None = None
        self._clients: dict[Config, DatabricksClient] = {}
        self._limiter: RateLimiter | None = None
        self.secrets: set[str] = set()
        self.notices: Any = None
        """Where the end of a background run is announced (``notebook.notices``), once one ran."""
        self.notice_seconds: float | None = 20.0
        """Seconds a success notice stays on the page (None or 0: until dismissed)."""
        self.names: dict[int, str] = {}
        """The variable each run was published under, by run id (so ``%dbx_wait RUN_ID`` finds it)."""
        self._watcher: Watcher | None = None
        self._watchers: list[Watcher] = []
        self._own: dict[int, Watcher] = {}  # the watchers of clients on another clock, by client
        self._shut = False
        self.lives = Lives()
        """The displays still live: each becomes a record when the session shuts down."""
        self.notebook = notebook
        """The notebook this kernel runs, as its front end said (None: not known)."""
        self._journal: Journal | None = None

    def __repr__(self) -> str:
        where = f"sandbox at {self.sandbox.url}" if self.sandbox is not None else "configured workspace"
        return f"NotebookSession({where}, {len(self._clients)} clients)"

    @property
    def journal(self) -> Journal:
        """The run journal every client of this session writes to, its entries marked with the notebook
        (opened on first use: ``%load_ext`` in a kernel that knows no notebook never reads it)."""
        if self._journal is None:
            from ..run.journal import Journal

            self._journal = Journal(notebook=self.notebook, secrets=self.secrets, clock=self.clock.wall)
        return self._journal

    @property
    def limiter(self) -> RateLimiter:
        """The request-rate limiter every client of this session shares."""
        if self._limiter is None:
            from ..api.ratelimit import RateLimiter

            self._limiter = RateLimiter(clock=self.clock)
        return self._limiter

    # -- background runs -------------------------------------------------------------------------
    @property
    def watcher(self) -> Watcher:
        """The watcher that polls every run of this session, on the session's clock."""
        if self._watcher is None:
            from ..run.engine import Watcher

            self._watcher = Watcher(
                self.clock, policy=self.policy, threaded=self.threaded, journal=self.journal
            )
            self.watch_over(self._watcher)
            if self._watcher.threaded:  # the kernel going away names the runs that go on, in its last output
                import atexit

                atexit.register(self.shutdown)
        return self._watcher

    def watcher_for(self, client: DatabricksClient) -> Watcher:
        """The watcher for a client's runs: the session's, unless the client runs on a clock of its own
        (a test's, given to a form), which gets a watcher of its own, stepped by whoever waits (such a
        clock may not move by itself); either way its runs are on this session's board and in its notices."""
        if client.clock is self.clock:
            return self.watcher
        from ..run.engine import Watcher

        watcher = self._own.get(id(client))
        if watcher is None:
            watcher = self._own[id(client)] = Watcher(
                client.clock, policy=self.policy, threaded=False, journal=self.journal
            )
        self.watch_over(watcher)
        return watcher

    def watch_over(self, watcher: Watcher) -> None:
        """List a watcher's runs on this session's board, and publish and announce their ends."""
        if any(w is watcher for w in self._watchers):
            return
        self._watchers.append(watcher)
        watcher.add_listener(self._settled)

    def _settled(self, handle: RunHandle) -> None:
        from .background import settled

        settled(self, handle)

    @property
    def handles(self) -> list[RunHandle]:
        """Every run this session knows of (from magics, forms, sweeps and Python), oldest first."""
        found = [h for w in self._watchers for h in w.handles]
        return sorted(found, key=lambda h: h.started_wall)

    def find_handles(self) -> None:
        """Take in the watchers of run handles the notebook holds (``start_background`` from Python
        with a watcher of its own): their runs join the board and their ends are announced."""
        from ..run.engine import RunHandle

        for value in list(self.namespace.values()):
            items = value if isinstance(value, list | tuple) and len(value) <= 1000 else (value,)
            for item in items:
                if isinstance(item, RunHandle):
                    self.watch_over(item.watcher)

    def after_cell(self, *_args: Any) -> None:
        """After each cell: take in the run handles it left in the namespace (none can exist before the
        run layer was imported, so a notebook that runs no job pays nothing)."""
        import sys

        if "dbx_magic.run.engine" in sys.modules:
            self.find_handles()

    def shutdown(self) -> None:
        """Stop watching (the kernel is going): the runs that go on are named in the log and printed."""
        if self._shut:
            return
        self._shut = True
        from ..run.engine import going_on

        self.lives.stop()  # every display still live says watching stopped, and how to re-attach
        going = [h for w in self._watchers for h in w.shutdown()]
        # With no logging set up, Python's last-resort handler already put the log line in the
        # output (stderr); with logging set up, it went there, so the output gets it too.
        if going and logging.getLogger("dbx_magic").hasHandlers():
            print(going_on(going), flush=True)

    # -- clients ---------------------------------------------------------------------------------
    def client(self, profile: str | None = None) -> DatabricksClient:
        """The client to use: the sandbox's after ``%dbx_sandbox`` (unless a profile is named), else
        the one for the resolved configuration."""
        from ..api.client import DatabricksClient
        from ..api.config import Config

        if profile is None and self._sandbox_client is not None:
            return self._sandbox_client
        config = Config.resolve(profile=profile)
        if config not in self._clients:
            if config.token:
                self.secrets.add(config.token)
            client = DatabricksClient.from_config(config=config, rate_limiter=self.limiter, clock=self.clock)
            self._clients[config] = client
        return self._clients[config]

    def start_sandbox(self, speed: float = 1.0, *, fresh: bool = False, **options: Any) -> Any:
        """Start the embedded sandbox workspace and point this session's magics and forms at it.

        A sandbox already started here is kept, with its runs, and only its speed changes (for the runs
        started from then on); ``fresh=True`` replaces it with a new one whose run ids go on after the
        old one's. ``options`` go to :class:`~dbx_magic.sandbox.Sandbox`; it runs on the session's clock
        unless they say otherwise.
        """
        from ..api.client import DatabricksClient
        from ..sandbox import Sandbox

        if self.sandbox is not None and not fresh and not options:
            self.sandbox.speed = speed
            return self.sandbox
        if self.sandbox is not None:
            options.setdefault("first_run_id", self.sandbox.next_run_id)
        self.stop_sandbox()
        options.setdefault("clock", self.clock.monotonic)
        options.setdefault("epoch", self.clock.wall())
        sandbox = Sandbox(speed=speed, **options).start()
        self.sandbox = sandbox
        self.secrets.add(sandbox.token)
        self._sandbox_client = DatabricksClient(
            sandbox.url, sandbox.token, rate_limiter=self.limiter, clock=self.clock
        )
        return sandbox

    def stop_sandbox(self) -> None:
        """Stop the sandbox this session started (if any)."""
        if self.sandbox is not None:
            old = self._sandbox_client
            self.sandbox.stop()
            self.sandbox, self._sandbox_client = None, None
            for handle in self.handles:  # its runs went with it: off the board, no longer polled
                if handle.client is old:
                    handle.watcher.forget(
                        handle, f"Run {handle.run_id} was in the sandbox, which stopped: it is gone with it."
                    )

    # -- input and output ------------------------------------------------------------------------
    def mask(self, text: str) -> str:
        """``text`` with anything shaped like a credential, and every secret this session knows, as ``***``
        (a run's own error text may quote one: notices and the board show it through this)."""
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        from ..run.journal import hide_credentials

        return hide_credentials(text)

    def refuse_secrets(self, *texts: str | None, flags: bool = True) -> None:
        """Raise InvalidInput when a text holds a token (see :func:`refuse_secrets`)."""
        refuse_secrets(texts, self.secrets, flags=flags)

    def publish(self, name: str, value: Any) -> None:
        """Put ``value`` in the notebook's namespace under ``name`` (a run's name goes in the journal)."""
        self.namespace[name] = value
        run_id, host = getattr(value, "run_id", None), getattr(getattr(value, "client", None), "host", None)
        if isinstance(run_id, int) and isinstance(host, str):
            self.journal.named(host, run_id, name)

    def settle(self, out: str, call: Callable[[], T]) -> T:
        """Run ``call``; publish what it returns, or what its error carries, under ``out`` before
        anything is raised (the error then says where it is)."""
        try:
            value = call()
        except (DatabricksError, RunInterrupted) as exc:
            carried = exc.result if exc.result is not None else exc.results
            if carried is not None:
                self.publish(out, carried)
                exc.published_as = out
            raise
        self.publish(out, value)
        return value


def notebook_path(shell: Any) -> str | None:
    """The notebook this kernel runs, as its front end tells the kernel: VS Code's
    ``__vsc_ipynb_file__``, else Jupyter server's ``JPY_SESSION_NAME``; None when neither does."""
    namespace = getattr(shell, "user_ns", None) or {}
    found = namespace.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME")
    return str(found) if found else None


def reattach_enabled(configured: bool) -> bool:
    """Whether ``%load_ext`` re-attaches: ``DBX_MAGIC_REATTACH=0`` (or false, no, off) turns it off."""
    flag = os.environ.get("DBX_MAGIC_REATTACH", "").strip().lower()
    return configured and flag not in ("0", "false", "no", "off")
