"""Background runs: one watcher polls many runs together while the caller goes on working.

A :class:`Watcher` holds runs as :class:`RunHandle` objects. Its cycle (:meth:`Watcher.step`) polls
what is due job by job, as a sweep does: one ``runs/list?active_only=true`` page covers up to 25 of a
job's active runs, a run that left the list gets one ``runs/get`` (and its tasks' outputs), and the
job's history is read once for all its runs. The next cycle comes when the soonest run is due by the
run core's policy (``Retry-After`` wins). Requests go through each client's own rate limiter (a
notebook session's clients share one). A failure while polling one run is kept on that run's handle;
it never stops the others.

Nothing here is process-wide. A watcher belongs to whoever made it: a notebook session makes one and
gives it to its clients (``client.watcher``); :func:`start_background` uses the client's, making it on
first use. A watcher runs on one clock, the clock of the clients it polls. On the real clock it polls
on one daemon thread; on a :class:`~dbx_magic.clock.ManualClock` there is no thread, and whoever waits
(``handle.wait()``, a test) drives :meth:`Watcher.step`, so a test plays an hour in milliseconds.

A handle can also *follow* a run that someone else polls (a blocking cell, a sweep, a repair), so a
board lists every run; when that watching stops before the end, ``resume()`` hands the run over.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..api.client import DatabricksClient
from ..clock import SYSTEM, Clock, ManualClock
from ..errors import (
    GOES_ON,
    DatabricksError,
    InvalidInput,
    ResourceDoesNotExist,
    RunInterrupted,
    WaitTimeout,
)
from .checks import check_timeout
from .launch import Launch, Notice, adopt_or_launch
from .models import RunResult
from .polling import History, PollPolicy
from .sweep import active_runs, job_history
from .watch import OnUpdate, WatchedRun, cancelled_on_interrupt

__all__ = [
    "FOLLOWING",
    "STOPPED",
    "WATCHING",
    "RunHandle",
    "Watcher",
    "launch_background",
    "start_background",
    "watcher_of",
]

log = logging.getLogger(__name__)

WATCHING, FOLLOWING, STOPPED = "watching", "following", "stopped"
GIVE_UP_AFTER = 5  # consecutive failed polls of a run before the watcher stops watching it
POLL_BUDGET = 10.0  # seconds a job's runs/list page (its retries included) may take in one cycle
HISTORY_AGE = 600.0  # seconds a job's history is used before it is read again
NO_HISTORY_AGE = 60.0  # the same, when the job had no finished run to learn from
_IDLE = 3600.0  # with nothing to watch, the thread sleeps until woken
_CANCEL_GRACE = 30.0  # after a cancel on interrupt, wait this long to see the run end

OnSettled = Callable[["RunHandle"], Any]


class RunHandle:
    """A live handle on a run: its id, its state as last seen, and ways to wait for it or cancel it.

    Made by a :class:`Watcher` (``start_background``, ``%%dbx_run --background``); safe to use from
    any thread.

    Attributes:
        watcher: The watcher that knows the run.
        client: The workspace client the run is polled with.
        source: Who started it: ``"python"``, ``"magic"``, ``"form"``, ``"sweep"``, ``"wait"``,
            ``"no-wait"``, ``"repair"`` or ``"board"``.
        notify: Whether the end of the run is announced (a notebook shows a notice).
        out: The notebook variable that holds the handle, and then the final RunResult (or None).
        last_error: The last failure while polling the run (cleared by the next good poll).
    """

    def __init__(
        self,
        watcher: Watcher,
        client: DatabricksClient,
        watched: WatchedRun,
        *,
        source: str,
        notify: bool,
    ) -> None:
        self.watcher = watcher
        self.client = client
        self.source = source
        self.notify = notify
        self.out: str | None = None
        self.names: list[str] = []
        """Every notebook name the run was published under (its end goes to those still holding it)."""
        self.last_error: BaseException | None = None
        self.started_wall = watcher.clock.wall()
        self._watched = watched
        self._lock = threading.RLock()
        self._settled = threading.Event()
        self._mode = STOPPED
        self._error: DatabricksError | None = None
        self._failures = 0
        self._due = watcher.clock.monotonic()
        self._announced = False
        self._gone = False  # its workspace went away: never watched again
        self._broken: set[int] = set()
        self._listeners: list[OnUpdate] = [] if watched.on_update is None else [watched.on_update]
        watched.on_update = self._fan_out

    # -- what it knows ---------------------------------------------------------------------------
    @property
    def run_id(self) -> int:
        return self._watched.run_id

    @property
    def result(self) -> RunResult:
        """The run as last seen (the final RunResult, task outputs included, once ``done``)."""
        return self._watched.result

    @property
    def job_id(self) -> int | None:
        return self.result.job_id

    @property
    def job_name(self) -> str | None:
        return self.result.job_name

    @property
    def state(self) -> str:
        """The result state once finished, else the life-cycle state (``LAUNCHING`` before the first poll)."""
        result = self.result
        return (result.result_state if result.finished else None) or result.life_cycle_state or "LAUNCHING"

    @property
    def done(self) -> bool:
        """True once the run is finished (and its outputs fetched)."""
        return self.result.finished

    @property
    def ok(self) -> bool:
        return self.result.ok

    @property
    def watching(self) -> bool:
        """True while someone polls the run: the watcher, or the cell or sweep this handle follows."""
        with self._lock:
            return self._mode != STOPPED and not self.done

    @property
    def mode(self) -> str:
        """``watching`` (the watcher polls it), ``following`` (a cell or sweep does), ``stopped``."""
        with self._lock:
            return self._mode

    @property
    def error(self) -> DatabricksError | None:
        """Why the watching stopped before the end, when it did (the run goes on)."""
        with self._lock:
            return self._error

    def __repr__(self) -> str:
        name = f" of {self.job_name!r}" if self.job_name else ""
        how = "" if self.done else f", {self.mode}"
        return f"RunHandle(run {self.run_id}{name}: {self.state}{how})"

    def _repr_html_(self) -> str:
        from .render import handle_html

        return handle_html(self)

    # -- listening ------------------------------------------------------------------------------
    def add_listener(self, on_update: OnUpdate) -> None:
        """Call ``on_update(result)`` after every poll of this run (from the polling thread)."""
        with self._lock:
            self._listeners.append(on_update)

    def remove_listener(self, on_update: OnUpdate) -> None:
        with self._lock:
            self._listeners = [f for f in self._listeners if f is not on_update]

    def _fan_out(self, result: RunResult) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(result)
            except Exception:  # a broken display must not stop the watching; said once, in full
                first = id(listener) not in self._broken
                self._broken.add(id(listener))
                log.log(
                    logging.WARNING if first else logging.DEBUG,
                    "a listener of run %s raised",
                    self.run_id,
                    exc_info=first,
                )

    # -- acting ---------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the workspace to cancel the run; the handle then sees it end (watched again if the
        watching had stopped)."""
        try:
            self.client.cancel_run(self.run_id)
        except DatabricksError as exc:
            raise exc.about_run(self.run_id, self.result) from None
        if self.mode == FOLLOWING:
            self._watched.wake()
        else:
            self.watcher.resume(self)

    def resume(self) -> None:
        """Watch the run again in the background (after a blocking cell, a sweep or an error stopped)."""
        self.watcher.resume(self)

    def wait(
        self,
        timeout: float | None = None,
        *,
        raise_on_failure: bool = True,
        cancel_on_interrupt: bool = False,
    ) -> RunResult:
        """Wait until the run ends and return its RunResult, as ``run_job_and_wait`` would.

        The run is watched again if its watching had stopped. A timeout or an interrupt stops the
        waiting only: the run goes on, still watched in the background.

        Args:
            timeout: Seconds to wait; None waits as long as the run lasts.
            raise_on_failure: Raise RunFailed when the run did not succeed (else return it).
            cancel_on_interrupt: On a kernel interrupt, also cancel the run.

        Raises:
            RunFailed: the run ended without success (with ``raise_on_failure``).
            WaitTimeout: the timeout passed; ``error.result`` holds the run as last seen.
            DatabricksError: the watching failed for good (the error names the run).
            RunInterrupted: the kernel was interrupted.
        """
        timeout = check_timeout(timeout)
        if self.watcher._stepping == threading.get_ident() and not self.done:
            raise InvalidInput(
                f"wait() on run {self.run_id} was called from a listener, on the thread that polls it: it would "
                "wait for itself; wait in your own code, or act on the result the listener is given."
            )
        if not self.done and self.mode == STOPPED and not isinstance(self.error, ResourceDoesNotExist):
            self.watcher.resume(self)  # stopped (by an error, or a cell that followed it): try again
        interrupted = False
        try:
            result = self._await(timeout)
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:  # raised here, not in the except block: nothing of a request is chained
            raise self._interrupted(cancel_on_interrupt)
        return result.raise_for_state() if raise_on_failure else result

    def _await(self, timeout: float | None) -> RunResult:
        clock = self.watcher.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        while True:
            if self.done:
                return self.result
            error = self.error
            if error is not None and self.mode == STOPPED:
                raise error
            if self.mode == STOPPED:  # a followed run whose watching stopped: the watcher takes it
                self.watcher.resume(self)
            now = clock.monotonic()
            if deadline is not None and now >= deadline:
                raise WaitTimeout(
                    f"Stopped waiting for run {self.run_id} after {timeout:.3g} s; it is still {self.state}, "
                    "watched in the background.",
                    run_id=self.run_id,
                    result=self.result,
                    follow_up=GOES_ON,
                )
            left = None if deadline is None else deadline - now
            self._pause(left)

    def _pause(self, left: float | None) -> None:
        if self.watcher.threaded or self.mode == FOLLOWING:
            self._settled.wait(1.0 if left is None else min(1.0, left))
            return
        delay = self.watcher.step()  # no thread: the waiter drives the watcher
        if not self.done and not self._settled.is_set():
            self.watcher.clock.sleep(delay if left is None else min(delay, left))

    def _interrupted(self, cancel: bool) -> RunInterrupted:
        result = self.result
        if not cancel or result.finished:
            return RunInterrupted(
                f"Stopped waiting for run {self.run_id} ({self.state}); it is still watched in the background.",
                run_id=self.run_id,
                result=result,
                follow_up=None if result.finished else GOES_ON,
            )
        return cancelled_on_interrupt(self.run_id, result, self._cancel_and_see)

    def _cancel_and_see(self) -> RunResult:
        self.cancel()
        return self._await(_CANCEL_GRACE)

    def stop_following(self) -> None:
        """The cell or sweep this handle followed stopped watching: the handle keeps the run as last
        seen (``resume()`` watches it again)."""
        with self._lock:
            if self._mode == FOLLOWING:
                self._mode = STOPPED
        self._settled.set()
        if self.done:
            self.watcher._settle(self)


class Watcher:
    """Polls many runs together, job by job, on one thread (or stepped by whoever waits).

    Args:
        clock: The clock it paces the polls on: the clock of the clients it polls (default: the real one).
        policy: When to poll next (default: ``PollPolicy()``).
        threaded: Poll on a daemon thread (default: yes, unless ``clock`` is a ManualClock; without
            a thread, :meth:`step` is driven by whoever waits, or by a test).
        give_up_after: Consecutive failed polls of a run before its watching stops.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        policy: PollPolicy | None = None,
        threaded: bool | None = None,
        give_up_after: int = GIVE_UP_AFTER,
    ) -> None:
        self.clock = clock or SYSTEM
        self.policy = policy
        self.threaded = (not isinstance(self.clock, ManualClock)) if threaded is None else threaded
        self.give_up_after = give_up_after
        self._lock = threading.RLock()
        self._step_lock = threading.Lock()
        self._stepping: int | None = None  # the thread inside step(), while one is
        self._handles: list[RunHandle] = []
        self._histories: dict[tuple[int, int], tuple[History | None, float]] = {}
        self._listeners: list[OnSettled] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._atexit = False
        self._said = False

    def __repr__(self) -> str:
        how = "threaded" if self.threaded else "stepped"
        return f"Watcher({len(self.active)} watched of {len(self.handles)} runs, {how})"

    # -- the runs --------------------------------------------------------------------------------
    @property
    def handles(self) -> list[RunHandle]:
        """Every run this watcher knows, in the order it learnt of them."""
        with self._lock:
            return list(self._handles)

    @property
    def active(self) -> list[RunHandle]:
        """The runs the watcher itself polls (not finished, not followed, not stopped)."""
        with self._lock:
            return [h for h in self._handles if h.mode == WATCHING and not h.done]

    def find(self, run_id: int, client: DatabricksClient | None = None) -> RunHandle | None:
        """The latest handle of that run (of that client, when given), if the watcher knows it."""
        with self._lock:
            for handle in reversed(self._handles):
                if handle.run_id == run_id and (client is None or handle.client is client):
                    return handle
        return None

    def add_listener(self, on_settled: OnSettled) -> None:
        """Call ``on_settled(handle)`` once each time a run ends, or its watching stops on an error."""
        with self._lock:
            if on_settled not in self._listeners:
                self._listeners.append(on_settled)

    def remove_listener(self, on_settled: OnSettled) -> None:
        with self._lock:
            self._listeners = [f for f in self._listeners if f != on_settled]

    def _check_clock(self, client: DatabricksClient) -> None:
        if client.clock is not self.clock:
            raise InvalidInput(
                "This watcher runs on another clock than the client: make the watcher with the client's "
                "clock (Watcher(client.clock)), or leave the watcher out to use the client's own."
            )

    def _new(self, client: DatabricksClient, watched: WatchedRun, source: str, notify: bool) -> RunHandle:
        handle = RunHandle(self, client, watched, source=source, notify=notify)
        with self._lock:
            self._handles.append(handle)
        return handle

    def watch(
        self,
        client: DatabricksClient,
        run_id: int,
        *,
        launched: RunResult | None = None,
        on_update: OnUpdate | None = None,
        source: str = "python",
        notify: bool = True,
    ) -> RunHandle:
        """Watch a run in the background and return its handle (the same one when already known)."""
        self._check_clock(client)
        handle = self.find(run_id, client)
        if handle is None or handle.done:
            watched = WatchedRun(client, run_id, launched=launched, policy=self.policy, clock=self.clock)
            handle = self._new(client, watched, source, notify)
        else:
            handle.notify = handle.notify or notify
        if on_update is not None:
            handle.add_listener(on_update)
        self.resume(handle)
        return handle

    def follow(
        self, client: DatabricksClient, watched: WatchedRun, *, source: str, notify: bool = False
    ) -> RunHandle:
        """A handle for a run someone else polls (a blocking cell, a sweep): listed, not polled here.
        Call ``stop_following()`` on it when that watching ends."""
        handle = self._new(client, watched, source, notify)
        with handle._lock:
            handle._mode = FOLLOWING
        return handle

    def adopt(self, client: DatabricksClient, run: Mapping[str, Any], *, source: str = "board") -> RunHandle:
        """A handle, not watched, for a run found in a ``runs/list`` page (a run the caller did not
        launch, still going); ``resume()`` watches it."""
        self._check_clock(client)
        run_id = int(run["run_id"])
        known = self.find(run_id, client)
        if known is not None:
            return known
        watched = WatchedRun(client, run_id, policy=self.policy, clock=self.clock)
        job_id = run.get("job_id")
        if isinstance(job_id, int):
            watched.share_history(self._history(client, job_id))
        watched.poll(run)
        return self._new(client, watched, source, notify=False)

    def resume(self, handle: RunHandle) -> None:
        """Let the watcher poll this handle's run (at once)."""
        with handle._lock:
            if handle.done or handle._gone:
                return
            handle._mode = WATCHING
            handle._error = None
            handle._failures = 0
            handle._settled.clear()
            handle._announced = False
            handle._due = self.clock.monotonic()
        with self._lock:
            if all(h is not handle for h in self._handles):  # forgotten earlier: listed again
                self._handles.append(handle)
        self.wake()

    def forget(self, handle: RunHandle, why: str | None = None) -> None:
        """Drop a handle (its run is no longer listed or polled); with ``why``, a wait on it raises
        that (the workspace went away, say), and no notice is given."""
        with self._lock:
            self._handles = [h for h in self._handles if h is not handle]
        if why is not None and not handle.done:
            with handle._lock:
                handle._mode = STOPPED
                handle._error = DatabricksError(why, run_id=handle.run_id)
                handle._announced = True
                handle._gone = True
            handle._settled.set()

    def wake(self) -> None:
        """Cut the thread's wait short: it looks at what is due now."""
        self._wake.set()
        if self.threaded:
            self._ensure_thread()

    # -- one cycle -------------------------------------------------------------------------------
    def step(self) -> float:
        """Poll every run that is due, job by job; return the seconds until the next one is due
        (a long idle wait when nothing is watched)."""
        with self._step_lock:
            self._stepping = threading.get_ident()
            try:
                return self._step()
            finally:
                self._stepping = None

    def _step(self) -> float:
        now = self.clock.monotonic()
        due = [h for h in self.active if h._due <= now]
        jobs: dict[tuple[int, int], DatabricksClient] = {}
        for handle in due:
            if handle.job_id is None:
                self._poll_one(handle, None)
            else:
                jobs.setdefault((id(handle.client), handle.job_id), handle.client)
        for (client_id, job_id), client in jobs.items():
            # every active run of the job rides on the page, due or not: it costs nothing more
            going = [h for h in self.active if id(h.client) == client_id and h.job_id == job_id]
            self._poll_job(client, job_id, going)
        return self.next_delay()

    def next_delay(self) -> float:
        """Seconds until the soonest watched run is due."""
        active = self.active
        if not active:
            return _IDLE
        return max(0.0, min(h._due for h in active) - self.clock.monotonic())

    def _poll_job(self, client: DatabricksClient, job_id: int, handles: list[RunHandle]) -> None:
        try:
            # one sick workspace holds the thread up for this long at most, then the other jobs' turn
            with client.until(client.clock.monotonic() + POLL_BUDGET):
                seen, retry_after = active_runs(client, job_id)
        except Exception as exc:  # the job's page failed: each of its runs records it
            for handle in handles:
                self._failed(handle, exc)
            return
        history = self._history(client, job_id)
        for handle in handles:
            if handle._watched.history is None or (
                history is not None and handle._watched.history is not history
            ):
                handle._watched.share_history(history)
            self._poll_one(handle, seen.get(handle.run_id), retry_after)

    def _history(self, client: DatabricksClient, job_id: int) -> History | None:
        """The job's history, read once for all its runs and read again when it is old (a job with no
        finished run yet gets one as its runs end; one that has runs, their latest)."""
        key = (id(client), job_id)
        now = self.clock.monotonic()
        with self._lock:
            cached = self._histories.get(key)
        if cached is not None:
            history, read_at = cached
            if now - read_at < (HISTORY_AGE if history is not None else NO_HISTORY_AGE):
                return history
        history = job_history(client, job_id)
        with self._lock:
            self._histories[key] = (history, now)
        return history

    def _poll_one(
        self, handle: RunHandle, run: Mapping[str, Any] | None, retry_after: float | None = None
    ) -> None:
        try:
            handle._watched.poll(run)
        except Exception as exc:  # kept on this run; the others go on
            self._failed(handle, exc)
            return
        with handle._lock:
            handle.last_error = None
            handle._failures = 0
            handle._due = self.clock.monotonic() + max(handle._watched.next_delay(), retry_after or 0.0)
        if handle.done:
            handle._settled.set()
            self._settle(handle)

    def _failed(self, handle: RunHandle, exc: BaseException) -> None:
        log.debug("polling run %s failed: %s", handle.run_id, exc)
        gone = isinstance(exc, ResourceDoesNotExist)
        throttled = getattr(exc, "status_code", None) == 429  # asked to wait, not refused: not counted
        retry_after = getattr(exc, "retry_after", None)
        with handle._lock:
            handle.last_error = exc
            handle._failures += 0 if throttled else 1
            # a run not found twice in a row is gone (once may be the workspace catching up with a launch)
            final = (gone and handle._failures >= 2) or (not gone and _refused(exc))
            final = final or handle._failures >= self.give_up_after
            backoff = min(60.0, 2.0 ** max(1, handle._failures))
            handle._due = self.clock.monotonic() + max(backoff, retry_after or 0.0)  # Retry-After wins
            if final:
                handle._error = _watch_error(handle, exc)
                handle._mode = STOPPED
        if final:
            if gone:
                self.forget(handle)  # no such run: nothing to list
            handle._settled.set()
            self._settle(handle)

    def _settle(self, handle: RunHandle) -> None:
        """Tell the listeners, once, that the run ended (or that its watching stopped on an error)."""
        with handle._lock:
            if handle._announced:
                return
            handle._announced = True
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(handle)
            except Exception:
                log.warning("a listener raised at the end of run %s", handle.run_id, exc_info=True)

    # -- the thread ------------------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._loop, name="dbx-watcher", daemon=True)
            self._thread.start()
            if not self._atexit:
                self._atexit = True
                atexit.register(self.shutdown)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                delay = self.step()
            except BaseException:  # never let the watching die (a listener's SystemExit included)
                log.exception("the background watcher's cycle failed; it goes on")
                delay = 1.0
            if self._stopping.is_set():
                return
            self.clock.wait(self._wake, delay)

    def shutdown(self) -> list[RunHandle]:
        """Stop watching (the thread ends); the runs go on in the workspace and are named in the log.

        Returns:
            The handles of the runs that were still being watched.
        """
        going = self.active
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None
        if going and not self._said:
            self._said = True  # once: the session's own shutdown asks again, to print them
            log.warning("%s", going_on(going))
        return going


def going_on(handles: list[RunHandle]) -> str:
    """One sentence naming the runs whose watching stopped while they go on, and how to find them again."""
    listed = ", ".join(f"{h.run_id} ({h.job_name or h.job_id}, {h.state})" for h in handles)
    many = len(handles) != 1
    return (
        f"dbx-magic stopped watching {len(handles)} run{'s' if many else ''} that "
        f"{'go' if many else 'goes'} on in the workspace: {listed}. `%dbx_wait RUN_ID` (or "
        "wait_for_run(client, RUN_ID)) watches one again."
    )


def _refused(exc: BaseException) -> bool:
    """The workspace refused the request itself (a 4xx other than 429): asking again would not help.
    Other failures (the network, a 5xx, 429) already outlasted the client's retries; the watcher tries
    again a few times more, further apart, since a background run may last hours."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status != 429


def _watch_error(handle: RunHandle, exc: BaseException) -> DatabricksError:
    if isinstance(exc, ResourceDoesNotExist):
        return exc  # the run does not exist: nothing goes on
    if isinstance(exc, DatabricksError):
        return exc.about_run(handle.run_id, handle.result)
    return DatabricksError(
        f"Watching run {handle.run_id} failed ({type(exc).__name__}: {exc}); the run goes on: "
        f"`handle.wait()` or `%dbx_wait {handle.run_id}` tries again.",
        run_id=handle.run_id,
        result=handle.result,
        follow_up=GOES_ON,
    )


def watcher_of(client: DatabricksClient) -> Watcher:
    """The watcher that polls this client's background runs (``client.watcher``), made on first use
    on the client's clock. A notebook session gives its clients the session's."""
    watcher = client.watcher
    if not isinstance(watcher, Watcher):
        with client.lock:
            if not isinstance(client.watcher, Watcher):
                client.watcher = Watcher(client.clock)
            watcher = client.watcher
    return watcher


def launch_background(
    client: DatabricksClient,
    spec: Launch,
    *,
    watcher: Watcher | None = None,
    on_update: OnUpdate | None = None,
    on_notice: Notice | None = None,
    source: str = "python",
    notify: bool = True,
) -> RunHandle:
    """Launch a checked :class:`~dbx_magic.run.launch.Launch` (or find the run going, with
    ``if_running="wait"``) and watch its run in the background."""
    watcher = watcher or watcher_of(client)
    watcher._check_clock(client)
    launched, adopted = adopt_or_launch(client, spec, on_notice=on_notice)
    return watcher.watch(
        client,
        launched.run_id,
        launched=None if adopted else launched,
        on_update=on_update,
        source=source,
        notify=notify,
    )


def start_background(
    client: DatabricksClient,
    job: int | str,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    idempotency_token: str | None = None,
    *,
    on_update: OnUpdate | None = None,
    watcher: Watcher | None = None,
    only: str | list[str] | None = None,
    if_running: str | None = None,
    allow_unknown_params: bool = False,
    performance_target: str | None = None,
) -> RunHandle:
    """Run an existing job in the background: launch it and return a live handle at once.

    The run is polled by a watcher (one thread for many runs, batched by job), so the caller keeps
    working; ``handle.wait()`` returns the RunResult (raising as ``run_job_and_wait`` would),
    ``handle.cancel()`` cancels it, ``handle.done`` and ``handle.state`` say where it is::

        handle = start_background(client, "daily-sales-report", {"date": "2026-11-01"})
        ...                                  # other work
        result = handle.wait()

    Args:
        client: The workspace client.
        job: A job id, or the job's exact name.
        notebook_params: As for ``run_job_and_wait``.
        job_parameters: As for ``run_job_and_wait`` (give one kind or the other).
        idempotency_token: At most 64 characters; None makes a fresh one.
        on_update: Called with the current RunResult after every poll (from the watcher's thread).
        watcher: The watcher to use (default: the client's own, ``client.watcher``).
        only: As for ``run_job_and_wait``.
        if_running: As for ``run_job_and_wait``.
        allow_unknown_params: As for ``run_job_and_wait``.
        performance_target: As for ``run_job_and_wait``.

    Raises:
        InvalidInput: bad input (nothing was sent when it could be judged locally).
        DatabricksError: the launch failed; once a run may exist, the error names the token.
    """
    spec = Launch.check(
        job,
        notebook_params,
        job_parameters,
        idempotency_token,
        only=only,
        if_running=if_running,
        allow_unknown_params=allow_unknown_params,
        performance_target=performance_target,
    )
    return launch_background(client, spec, watcher=watcher, on_update=on_update)
