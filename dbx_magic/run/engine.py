"""The engine: one :class:`Watcher` polls every run, and a :class:`RunHandle` is the run.

Whatever starts a run (a blocking cell, a background cell, ``%dbx_wait``, a sweep, the form, a repair,
the board, the CLI, Python), it becomes a :class:`RunHandle` of a watcher. The handle holds the run's
state (through the :class:`~dbx_magic.run.watch.WatchedRun` it owns); displays, the board and the
namespace hold the handle or the RunResult it gives them, never a copy they keep up to date.

The watcher's cycle (:meth:`Watcher.step`) polls what is due, job by job, the cheapest way: one
``runs/list?active_only=true`` page covers up to 25 of a job's active runs, so when a job has several
runs watched, a page (or ceil(active/25) pages) replaces one ``runs/get`` per run; a run that left the
list gets one ``runs/get`` (and its tasks' outputs). The job's history is read once for all its runs.
The next cycle comes when the soonest run is due by the policy (``Retry-After`` wins).

A watcher is given a way to run: ``threaded=True`` polls on one daemon thread (a notebook session's,
background runs); ``threaded=False`` has no thread, and whoever waits (``handle.wait()``, a sweep, a
test on a fake clock) steps it. Either way :meth:`Watcher.wait_for` is the one waiting loop.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..api.client import DatabricksClient
from ..clock import SYSTEM, Clock
from ..errors import DatabricksError, InvalidInput, ResourceDoesNotExist, RunInterrupted
from . import stops
from .cancel import CancelAnswer
from .checks import check_timeout
from .journal import Journal
from .launch import Launch, Notice, adopt_or_launch
from .models import RunResult
from .polling import History, PollPolicy, history_from_runs
from .watch import OnUpdate, WatchedRun

__all__ = [
    "STOPPED",
    "WATCHING",
    "OnSettled",
    "RunHandle",
    "Watcher",
    "active_runs",
    "going_on",
    "job_history",
]

log = logging.getLogger(__name__)

WATCHING, STOPPED = "watching", "stopped"
PAGE = 25  # runs/list's page size limit ("less than 25" per the docs; 25 is accepted)
POLL_BUDGET = 10.0  # seconds a job's runs/list page (its retries included) may take in one cycle
HISTORY_AGE = 600.0  # seconds a job's history is used before it is read again
NO_HISTORY_AGE = 60.0  # the same, when the job had no finished run to learn from
CANCEL_GRACE = 30.0  # after a cancel on interrupt, wait this long to see the run end
_IDLE = 3600.0  # with nothing to watch, the thread sleeps until woken
_EPSILON = 1e-6  # seconds: a poll due this soon is due now (float sums are not exact)
_TICK = 1.0  # a waiter on a threaded watcher looks again at least this often (real seconds)

OnSettled = Callable[["RunHandle"], Any]


class RunHandle:
    """A run: its id, its state as last seen, and ways to wait for it, cancel it or repair it.

    Made by a :class:`Watcher` (every face makes one: ``start_background``, ``run_job_and_wait``,
    ``%%dbx_run``, the form, the board); safe to use from any thread.

    Attributes:
        watcher: The watcher that polls the run.
        client: The workspace client the run is polled with.
        source: Who started it: ``"python"``, ``"magic"``, ``"form"``, ``"sweep"``, ``"wait"``,
            ``"no-wait"``, ``"repair"`` or ``"board"``.
        notify: Whether the end of the run is announced (a notebook shows a notice).
        names: Every notebook name the run was published under (its end goes to those still holding it).
        last_error: The last failure while polling the run (cleared by the next good poll).
    """

    def __init__(
        self,
        watcher: Watcher,
        client: DatabricksClient,
        run_id: int,
        *,
        launched: RunResult | None = None,
        source: str,
        notify: bool,
    ) -> None:
        self.watcher = watcher
        self.client = client
        self.source = source
        self.notify = notify
        self.out: str | None = None
        """The notebook variable that holds the run (the first name it was published under), if any."""
        self.names: list[str] = []
        self.last_error: BaseException | None = None
        self.started_wall = watcher.clock.wall()
        self._lock = threading.RLock()
        self._run = self._new_round(run_id, launched, include_history=False)
        self._settled = threading.Event()
        self._mode = STOPPED
        self._error: DatabricksError | None = None
        self._failures = 0
        self._failing_since: float | None = None  # when the current run of failed polls began
        self._next: tuple[float, float] = (watcher.clock.monotonic(), 0.0)  # (scheduled at, delay)
        self._announced = False
        self._gone = False  # its workspace went away: never watched again
        self._broken: set[int] = set()
        self._listeners: list[OnUpdate] = []
        self._whole_round = True  # the round reruns every task (the job's history predicts it)

    def _new_round(
        self,
        run_id: int,
        launched: RunResult | None,
        *,
        include_history: bool,
        earlier: RunResult | None = None,
    ) -> WatchedRun:
        watcher = self.watcher
        run = WatchedRun(
            self.client,
            run_id,
            launched=launched,
            policy=watcher.policy,
            clock=watcher.clock,
            include_history=include_history,
            earlier=earlier,
            journal=watcher.journal,
        )
        run.on_update = self._fan_out
        return run

    # -- what it knows ---------------------------------------------------------------------------
    @property
    def run_id(self) -> int:
        return self._run.run_id

    @property
    def result(self) -> RunResult:
        """The run as last seen (the final RunResult, task outputs included, once ``done``)."""
        with self._lock:
            return self._run.result

    @property
    def job_id(self) -> int | None:
        return self.result.job_id

    @property
    def job_name(self) -> str | None:
        return self.result.job_name

    @property
    def round(self) -> int:
        """How many times the run was repaired (0 for the original run)."""
        return self.result.round

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
        """True while the watcher polls the run."""
        with self._lock:
            return self._mode == WATCHING and not self.done

    @property
    def mode(self) -> str:
        """``watching`` (the watcher polls it) or ``stopped`` (ended, or its watching stopped)."""
        with self._lock:
            return self._mode

    @property
    def error(self) -> DatabricksError | None:
        """Why the watching stopped before the end, when it did (the run goes on)."""
        with self._lock:
            return self._error

    @property
    def settled(self) -> bool:
        """True once the run ended or its watching stopped (a wait on it would return or raise now)."""
        return self._settled.is_set()

    def __repr__(self) -> str:
        name = f" of {self.job_name!r}" if self.job_name else ""
        how = "" if self.done else f", {self.mode}"
        return f"RunHandle(run {self.run_id}{name}: {self.state}{how})"

    def _repr_html_(self) -> str:
        from .render import handle_html

        return handle_html(self)

    # -- listening ------------------------------------------------------------------------------
    def add_listener(self, on_update: OnUpdate) -> None:
        """Call ``on_update(result)`` after every poll of this run (from the thread that polls)."""
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
    def cancel(self) -> CancelAnswer:
        """Ask the workspace to cancel the run; the handle then sees it end (watched again if the
        watching had stopped). A run known to have ended is left as it is, nothing sent: the answer
        says so (``answer.sent``, ``answer.line()``)."""
        if self.done:
            return CancelAnswer(self.run_id, self.result)
        try:
            self.client.cancel_run(self.run_id)
        except DatabricksError as exc:
            raise exc.about_run(self.run_id, self.result) from None
        self.watcher.resume(self)
        return CancelAnswer(self.run_id)

    def resume(self) -> None:
        """Watch the run again (after an error stopped the watching, or a shutdown)."""
        self.watcher.resume(self)

    def wait(
        self,
        timeout: float | None = None,
        *,
        raise_on_failure: bool = True,
        cancel_on_interrupt: bool = False,
    ) -> RunResult:
        """Wait until the run ends and return its RunResult.

        The run is watched again if its watching had stopped. A timeout or an interrupt stops the
        waiting only: the run goes on, still watched.

        Args:
            timeout: Seconds to wait (0 looks once); None waits as long as the run lasts.
            raise_on_failure: Raise RunFailed when the run did not succeed (else return it).
            cancel_on_interrupt: On a kernel interrupt, also cancel the run.

        Raises:
            RunFailed: the run ended without success (with ``raise_on_failure``).
            WaitTimeout: the timeout passed; ``error.result`` holds the run as last seen.
            DatabricksError: the watching failed for good (the error names the run).
            RunInterrupted: the kernel was interrupted.
        """
        return self.wait_within(
            check_timeout(timeout), raise_on_failure=raise_on_failure, cancel_on_interrupt=cancel_on_interrupt
        )

    def wait_within(
        self, seconds: float | None, *, raise_on_failure: bool = True, cancel_on_interrupt: bool = False
    ) -> RunResult:
        """As :meth:`wait`, with what is left of a budget the caller already checked (0 looks once)."""
        timeout = seconds
        if self.watcher.stepping_here() and not self.done:
            raise InvalidInput(
                f"wait() on run {self.run_id} was called from a listener, on the thread that polls it: it would "
                "wait for itself; wait in your own code, or act on the result the listener is given."
            )
        if not self.done and self.mode == STOPPED and not isinstance(self.error, ResourceDoesNotExist):
            self.watcher.resume(self)  # stopped by an error or a shutdown: try again
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
        with self.client.until(None if timeout is None else self.client.clock.monotonic() + timeout):
            self.watcher.wait_for(lambda: self.done or self.settled, deadline)
        if self.done:
            return self.result
        error = self.error
        if error is not None:
            raise error
        raise stops.wait_timeout(
            self.run_id, self.result, timeout or 0.0, self.state, watched=self._goes_on()
        )

    def _goes_on(self) -> bool:
        """True when the run stays watched after a wait stops (its watcher is shared, not a call's own)."""
        return self.watching and self.watcher.shared

    def _interrupted(self, cancel: bool) -> BaseException:
        result = self.result
        if not cancel or result.finished:
            return stops.interrupted(self.run_id, result, self.state, watched=self._goes_on())
        return stops.cancelled_on_interrupt(self.run_id, result, self._cancel_and_see)

    def _cancel_and_see(self) -> RunResult:
        self.cancel()
        deadline = self.watcher.clock.monotonic() + CANCEL_GRACE
        self.watcher.wait_for(lambda: self.settled, deadline)
        return self.result

    def repair(
        self,
        tasks: Any = None,
        *,
        rerun_dependents: bool = False,
        notebook_params: Mapping[str, Any] | None = None,
        job_parameters: Mapping[str, Any] | None = None,
        idempotency_token: str | None = None,
        on_plan: Callable[[Any], Any] | None = None,
        performance_target: str | None = None,
    ) -> RunHandle:
        """Repair the run (it must have ended without success): rerun its failed tasks and the tasks
        after them (or ``tasks``), with changed parameters if given. The repair is a new round of this
        handle, watched by the same watcher; its elapsed time counts from the repair's start. Returns
        the handle at once (``wait()`` waits for the repaired run). ``performance_target``:
        ``STANDARD`` or ``PERFORMANCE_OPTIMIZED`` for the repaired tasks (serverless; None: the job's own).

        Raises:
            InvalidInput: a run that cannot be repaired, or bad input (nothing is sent).
            DatabricksError: the workspace refused or did not answer (the message names the run, and
                the token when the repair may have started).
        """
        from .repair import Repair

        spec = Repair.check(
            self.run_id,
            tasks,
            rerun_dependents=rerun_dependents,
            notebook_params=notebook_params,
            job_parameters=job_parameters,
            idempotency_token=idempotency_token,
            performance_target=performance_target,
        )
        return self.watcher.repair(self, spec, on_plan=on_plan)

    # -- what the watcher tells it ------------------------------------------------------------------
    def due(self) -> float:
        """When the run's next poll is due (the watcher's monotonic clock)."""
        with self._lock:
            return sum(self._next)

    def wait_left(self, now: float) -> float:
        """Seconds from ``now`` until the next poll is due (exactly the delay chosen, when ``now`` is the
        moment it was chosen)."""
        with self._lock:
            at, delay = self._next
        return delay - (now - at)

    @property
    def first_poll(self) -> bool:
        """True before the run was first polled."""
        return self._run.first_poll

    def share_history(self, history: History | None) -> None:
        """Take the job's history, read once by the watcher for all the job's runs (not for a repair
        round that reruns some tasks only: the job's durations are those of whole runs)."""
        with self._lock:
            run = self._run
            if not self._whole_round:
                return
            if run.history is None or (history is not None and run.history is not history):
                run.share_history(history)

    def poll(
        self,
        run: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        *,
        now: float | None = None,
    ) -> bool:
        """Poll once (or take ``run``, an item of a list page) and schedule the next poll from ``now``
        (the cycle's moment); True when the run has just ended. A failure is raised to the watcher,
        which keeps it on the handle."""
        with self._lock:
            watched = self._run
        watched.poll(run)
        now = self.watcher.clock.monotonic() if now is None else now
        with self._lock:
            self.last_error = None
            self._failures = 0
            self._failing_since = None
            self._next = (now, max(watched.next_delay(), retry_after or 0.0))
            if watched.done:
                self._mode = STOPPED
        if watched.done:
            self._settled.set()
        return watched.done

    def poll_failed(
        self, exc: BaseException, give_up_after: int | None = None, *, now: float | None = None
    ) -> bool:
        """Keep a failed poll on the handle and back off; True when the watching stops for good.

        A refusal (a 4xx other than 429) stops it at once, a run not found twice in a row too; a
        workspace that does not answer is ridden out for the policy's ``outage`` seconds (or
        ``give_up_after`` failed polls, when given), the display saying so meanwhile."""
        gone = isinstance(exc, ResourceDoesNotExist)
        throttled = getattr(exc, "status_code", None) == 429  # asked to wait, not refused: not counted
        retry_after = getattr(exc, "retry_after", None)
        policy = self._run.policy
        now = self.watcher.clock.monotonic() if now is None else now
        with self._lock:
            self.last_error = exc
            self._failures += 0 if throttled else 1
            since = self._failing_since = now if self._failing_since is None else self._failing_since
            # a run not found twice in a row is gone (once may be the workspace catching up with a launch)
            final = (gone and self._failures >= 2) or (not gone and _refused(exc))
            final = final or (give_up_after is not None and self._failures >= give_up_after)
            final = final or (policy.outage is not None and now - since >= policy.outage and not gone)
            backoff = min(policy.longest, 2.0 ** max(1, self._failures))
            # from the cycle's start (a timed-out attempt has waited already), but never at once after
            # the client's retries; Retry-After wins
            spent = self.watcher.clock.monotonic() - now
            self._next = (now, max(backoff, spent + policy.floor, retry_after or 0.0))
        if final:
            self.stop(_watch_error(self, exc))
        elif not gone:
            self._run.note_trouble(_trouble(exc, now - since))
        return final

    def start_watching(self) -> bool:
        """Be polled again from now (False for a run that ended or whose workspace went away)."""
        with self._lock:
            if self.done or self._gone:
                return False
            self._mode = WATCHING
            self._error = None
            self._failures = 0
            self._settled.clear()
            self._announced = False
            self._next = (self.watcher.clock.monotonic(), 0.0)
        return True

    def stop(self, error: DatabricksError | None, *, gone: bool = False) -> None:
        """Stop the watching (an error, a shutdown, the workspace gone); a wait on it raises ``error``."""
        with self._lock:
            self._mode = STOPPED
            if error is not None and not self.done:
                self._error = error
            if gone:
                self._gone = self._announced = True
        if error is not None or gone:
            self._settled.set()

    def claim_end(self) -> bool:
        """True the first time it is asked after the run ended (or its watching stopped): the end is
        announced once."""
        with self._lock:
            if self._announced:
                return False
            self._announced = True
            return True

    def begin_round(self, before: RunResult, *, whole: bool) -> None:
        """A repair was accepted: the run starts a new round (``before`` is the run as the repair left
        it); the watcher polls it from now. ``whole`` when every task reruns (the job's history then
        predicts the round)."""
        with self._lock:
            self._run = self._new_round(self.run_id, before, include_history=True, earlier=self._run.result)
            self._whole_round = whole
            self._mode = STOPPED
        self.start_watching()

    def take(self, run: Mapping[str, Any]) -> None:
        """Take a ``runs/get`` answer read elsewhere (the repair reads one right after it is accepted)."""
        self.poll(run)


class Watcher:
    """Polls many runs together, job by job: on one thread, or stepped by whoever waits.

    Args:
        clock: The clock it paces the polls on: the clock of the clients it polls (default: the real one).
        policy: When to poll next (default: ``PollPolicy()``).
        threaded: Poll on a daemon thread (the default). ``False``: no thread; whoever waits on one
            of its runs steps it (the way to run on a fake clock, where time moves only when slept on).
        give_up_after: Consecutive failed polls of a run before its watching stops (default: none;
            the policy's ``outage`` seconds bound how long a workspace that does not answer is ridden out).
        journal: The run journal its runs are written to (default: the one in ``DBX_MAGIC_HOME`` or the
            user data directory; a notebook session gives its own, which knows the notebook).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        policy: PollPolicy | None = None,
        threaded: bool = True,
        give_up_after: int | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.clock = clock or SYSTEM
        self.journal = journal if journal is not None else Journal(clock=self.clock.wall)
        self.policy = policy
        self.threaded = threaded
        self.give_up_after = give_up_after
        self.same_clock = True
        """Refuse clients on another clock (a blocking call given its own clock turns this off)."""
        self.shared = True
        """False for a watcher a blocking call made for itself: nothing polls its runs after the call."""
        self._lock = threading.RLock()
        self._step_lock = threading.Lock()
        self._stepping: int | None = None  # the thread inside step(), while one is
        self._handles: list[RunHandle] = []
        self._live: dict[int, RunHandle] = {}  # the handles that may be watched (pruned as they stop)
        self._histories: dict[tuple[int, int], tuple[History | None, float]] = {}
        self._crowds: dict[tuple[int, int], int] = {}  # a job's active runs, as its last page counted them
        self._listeners: list[OnSettled] = []
        self._wake = threading.Event()
        self._changed = threading.Condition()
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
        """The runs the watcher polls (not finished, not stopped)."""
        with self._lock:  # the runs that stopped leave: a cycle costs what is watched, not what is known
            for key in [k for k, h in self._live.items() if not h.watching]:
                del self._live[key]
            return list(self._live.values())

    def find(self, run_id: int, client: DatabricksClient | None = None) -> RunHandle | None:
        """The handle of that run (of that client, when given), if the watcher knows it."""
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

    def check_clock(self, client: DatabricksClient) -> None:
        """Refuse a client on another clock (its waits and this watcher's would disagree)."""
        if self.same_clock and client.clock is not self.clock:
            raise InvalidInput(
                "This watcher runs on another clock than the client: make the watcher with the client's "
                "clock (Watcher(client.clock)), or leave the watcher out to use one of the client's own."
            )

    def _add(self, handle: RunHandle) -> RunHandle:
        with self._lock:
            if id(handle) not in self._live and all(h is not handle for h in self._handles):
                self._handles.append(handle)
            self._live[id(handle)] = handle
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
        """Watch a run and return its handle (the same one when the run is already known)."""
        self.check_clock(client)
        handle = self.find(run_id, client)
        if handle is None or handle.done:
            handle = self._add(
                RunHandle(self, client, run_id, launched=launched, source=source, notify=notify)
            )
        else:
            handle.notify = handle.notify or notify
        if on_update is not None:
            handle.add_listener(on_update)
        self.resume(handle)
        return handle

    def launch(
        self,
        client: DatabricksClient,
        spec: Launch,
        *,
        on_update: OnUpdate | None = None,
        on_notice: Notice | None = None,
        source: str = "python",
        notify: bool = True,
        watch: bool = True,
        info: Any = None,
    ) -> RunHandle:
        """Launch a checked :class:`~dbx_magic.run.launch.Launch` (or find the run going, with
        ``if_running="wait"``) and return its handle, watched (or, with ``watch=False``, only known:
        ``--no-wait``). ``info`` is the job's :class:`~dbx_magic.run.launch.JobInfo` when already read."""
        self.check_clock(client)
        launched, adopted = adopt_or_launch(client, spec, info, on_notice=on_notice, journal=self.journal)
        try:
            if not watch:
                handle = self.add(client, launched.run_id, launched=launched, source=source)
                if on_update is not None:
                    handle.add_listener(on_update)
                return handle
            return self.watch(
                client,
                launched.run_id,
                launched=None if adopted else launched,
                on_update=on_update,
                source=source,
                notify=notify,
            )
        except RunInterrupted:
            raise
        except KeyboardInterrupt:  # between the launch and its handle: the error names the run
            raise stops.just_launched(launched.run_id, launched) from None

    def add(
        self,
        client: DatabricksClient,
        run_id: int,
        *,
        launched: RunResult | None = None,
        source: str = "python",
    ) -> RunHandle:
        """The handle of a run, known but not watched (``--no-wait``, a run to repair): the one already
        known, else a new one. ``resume()`` or ``wait()`` watches it."""
        self.check_clock(client)
        known = self.find(run_id, client)
        if known is not None:
            return known
        return self._add(RunHandle(self, client, run_id, launched=launched, source=source, notify=False))

    def adopt(self, client: DatabricksClient, run: Mapping[str, Any], *, source: str = "board") -> RunHandle:
        """A handle, not watched, for a run found in a ``runs/list`` page (a run the caller did not
        launch, still going); ``resume()`` watches it."""
        self.check_clock(client)
        run_id = int(run["run_id"])
        known = self.find(run_id, client)
        if known is not None:
            return known
        handle = RunHandle(self, client, run_id, source=source, notify=False)
        job_id = run.get("job_id")
        if isinstance(job_id, int):
            handle.share_history(self._history(client, job_id))
        handle.take(run)
        return self._add(handle)

    def repair(
        self, handle: RunHandle, spec: Any, *, on_plan: Callable[[Any], Any] | None = None
    ) -> RunHandle:
        """Send a checked :class:`~dbx_magic.run.repair.Repair` of a handle's run and watch the repair
        as the handle's next round."""
        from .repair import send_and_read

        before, visible, whole = send_and_read(handle.client, spec, on_plan=on_plan)
        handle.begin_round(before, whole=whole)
        self._add(handle)
        if visible is not None:
            try:
                handle.take(visible)
            except DatabricksError as exc:  # the watcher polls it again shortly
                handle.poll_failed(exc, self.give_up_after)
        if handle.done:
            self._settle(handle)
        self.wake()
        return handle

    def resume(self, handle: RunHandle) -> None:
        """Let the watcher poll this handle's run (at once)."""
        if handle.start_watching():
            self._add(handle)
            self.wake()

    def forget(self, handle: RunHandle, why: str | None = None) -> None:
        """Drop a handle (its run is no longer listed or polled); with ``why``, a wait on it raises
        that (the workspace went away, say), and no notice is given."""
        with self._lock:
            self._handles = [h for h in self._handles if h is not handle]
            self._live.pop(id(handle), None)
        if why is not None and not handle.done:
            handle.stop(DatabricksError(why, run_id=handle.run_id), gone=True)
            self._changed_now()

    def wake(self) -> None:
        """Cut the current wait short: the watcher looks at what is due now."""
        self._wake.set()
        if self.threaded:
            self._ensure_thread()
        self._changed_now()

    def _changed_now(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- waiting ---------------------------------------------------------------------------------
    def stepping_here(self) -> bool:
        """True on the thread that is polling right now (a listener's thread)."""
        return self._stepping == threading.get_ident()

    def wait_for(self, done: Callable[[], bool], deadline: float | None = None) -> bool:
        """Wait until ``done()`` (checked after every cycle and every end) or the ``deadline`` on the
        watcher's clock; True when done. The one waiting loop: on a threaded watcher it waits for the
        thread's news, otherwise it steps the watcher itself (and trusts its sleep: a clock whose
        ``sleep`` does not move its time still sees the next poll come due)."""
        slept_to: float | None = None
        while not done():
            if self.threaded:
                now = self.clock.monotonic()
                if deadline is not None and now >= deadline:
                    return False
                self._ensure_thread()
                with self._changed:
                    if not done():
                        self._changed.wait(_TICK if deadline is None else min(_TICK, deadline - now))
                continue
            now = self.clock.monotonic() if slept_to is None else max(self.clock.monotonic(), slept_to)
            delay = self.step(now)
            now = max(now, self.clock.monotonic())  # the cycle's requests may have taken time
            if done():
                return True
            if deadline is not None and now >= deadline:
                return False
            pause = delay if deadline is None else min(delay, deadline - now)
            woken = self.clock.wait(self._wake, pause)
            self._wake.clear()
            slept_to = None if woken else now + pause
        return True

    # -- one cycle -------------------------------------------------------------------------------
    def step(self, now: float | None = None) -> float:
        """Poll every run that is due at ``now`` (default: the clock's time), job by job; return the
        seconds from then until the next one is due (a long idle wait when nothing is watched)."""
        with self._step_lock:
            self._stepping = threading.get_ident()
            self._wake.clear()  # what woke it is looked at now
            now = self.clock.monotonic() if now is None else now
            try:
                self._step(now)
            finally:
                self._stepping = None
        self._changed_now()
        # from when the cycle ended: a cycle that spent a minute retrying is not followed by a full wait
        return self.next_delay(max(now, self.clock.monotonic()))

    def _step(self, now: float) -> None:
        # one pass groups the runs by job (a cycle's cost is linear in the runs watched)
        by_job: dict[tuple[int, int], list[RunHandle]] = {}
        due: dict[tuple[int, int], None] = {}  # in the order the runs were added: a cycle is reproducible
        for handle in self.active:
            job_id = handle.job_id
            if job_id is None:
                if handle.wait_left(now) <= _EPSILON:
                    with _quietly(handle, [handle]):
                        self._poll_one(handle, None, now=now)
                continue
            key = (id(handle.client), job_id)
            by_job.setdefault(key, []).append(handle)
            if handle.wait_left(now) <= _EPSILON:
                due[key] = None
        for key in due:
            # every active run of the job rides on the job's read, due or not: it costs nothing more
            going = [h for h in by_job[key] if h.watching]
            with _quietly(going[0], going):
                self._poll_job(going[0].client, key[1], going, now)

    def next_delay(self, now: float | None = None) -> float:
        """Seconds from ``now`` (default: the clock's time) until the soonest watched run is due."""
        active = self.active
        if not active:
            return _IDLE
        now = self.clock.monotonic() if now is None else now
        left = min(h.wait_left(now) for h in active)
        return left if left > _EPSILON else 0.0

    def _poll_job(self, client: DatabricksClient, job_id: int, handles: list[RunHandle], now: float) -> None:
        """One job's turn: its runs the cheapest way (``runs/list`` pages when they cost fewer
        requests than one ``runs/get`` per run), with the job's history read once for all of them."""
        key = (id(client), job_id)
        seen: dict[int, dict[str, Any]] = {}
        retry_after: float | None = None
        pages = -(-max(self._crowds.get(key, 0), 1) // PAGE)
        try:
            # one sick workspace holds the thread up for this long at most, then the other jobs' turn
            with client.until(client.clock.monotonic() + POLL_BUDGET):
                if key not in self._histories and len(handles) == 1 and handles[0].first_poll:
                    seen, retry_after = self._first_look(client, job_id, handles[0].run_id)
                elif len(handles) > pages:
                    seen, retry_after = active_runs(client, job_id)
                    self._crowds[key] = len(seen)
        except Exception as exc:  # the job's page failed: each of its runs records it
            for handle in handles:
                self._failed(handle, exc, now)
            return
        # a workspace that did not answer lately is not asked for history now: the runs come first
        troubled = any(h.last_error is not None for h in handles)
        history = self._history(client, job_id, refresh=not troubled)
        for handle in handles:
            handle.share_history(history)
            self._poll_one(handle, seen.get(handle.run_id), retry_after, now=now)

    def _first_look(
        self, client: DatabricksClient, job_id: int, own: int
    ) -> tuple[dict[int, dict[str, Any]], float | None]:
        """A job's first read with one run just launched: one page of its newest runs holds both that
        run's state and the job's recent runs (its history), in one request."""
        try:
            page = client.list_runs(job_id, limit=PAGE)
        except DatabricksError as exc:  # history only sharpens the pacing: the run is polled alone
            log.debug("no history for job %s: %s", job_id, exc)
            return {}, None
        runs = [r for r in page.get("runs") or () if isinstance(r, dict)]
        seen = {run_id: r for r in runs if (run_id := _run_id(r)) is not None and _has_state(r)}
        self._store_history((id(client), job_id), history_from_runs(runs, run_id=own))
        return seen, page.retry_after

    def _history_due(self, key: tuple[int, int]) -> bool:
        with self._lock:
            cached = self._histories.get(key)
        if cached is None:
            return True
        history, read_at = cached
        return self.clock.monotonic() - read_at >= (HISTORY_AGE if history is not None else NO_HISTORY_AGE)

    def _store_history(self, key: tuple[int, int], history: History | None) -> None:
        with self._lock:
            self._histories[key] = (history, self.clock.monotonic())

    def _history(self, client: DatabricksClient, job_id: int, *, refresh: bool = True) -> History | None:
        """The job's history as last read (read again when it is old and ``refresh``: a job with no
        finished run yet gets one as its runs end). A read that fails keeps what was known."""
        key = (id(client), job_id)
        with self._lock:
            known = self._histories.get(key, (None, 0.0))[0]
        if refresh and self._history_due(key):
            self._store_history(key, job_history(client, job_id) or known)
        with self._lock:
            return self._histories.get(key, (known, 0.0))[0]

    def _poll_one(
        self,
        handle: RunHandle,
        run: Mapping[str, Any] | None,
        retry_after: float | None = None,
        *,
        now: float | None = None,
    ) -> None:
        try:
            ended = handle.poll(run, retry_after, now=now)
        except Exception as exc:  # kept on this run; the others go on
            self._failed(handle, exc, now)
            return
        if ended:
            self._settle(handle)

    def _failed(self, handle: RunHandle, exc: BaseException, now: float | None = None) -> None:
        log.debug("polling run %s failed: %s", handle.run_id, exc)
        if handle.poll_failed(exc, self.give_up_after, now=now):
            if isinstance(exc, ResourceDoesNotExist):
                self.forget(handle)  # no such run: nothing to list
            self._settle(handle)

    def _settle(self, handle: RunHandle) -> None:
        """Tell the listeners, once, that the run ended (or that its watching stopped on an error)."""
        self._changed_now()
        if not handle.claim_end():
            return
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
            try:
                delay = self.step()
            except Exception:  # never let the watching die of a bug: said in full, then on
                log.exception("the watcher's cycle failed; it goes on")
                delay = 1.0
            with self._lock:  # nothing to watch: the thread ends (wake() starts another when needed)
                if not self.active and not self._wake.is_set():
                    self._thread = None
                    return
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
        for handle in going:
            handle.stop(stops.watch_stopped(handle.run_id, handle.result, handle.state))
        self._changed_now()
        if going and not self._said:
            self._said = True  # once: the session's own shutdown asks again, to print them
            log.warning("%s", going_on(going))
        return going


@contextlib.contextmanager
def _quietly(first: RunHandle, handles: list[RunHandle]) -> Iterator[None]:
    """While the workspace does not answer these runs' polls, each poll is one request: the watcher's
    own backoff spaces them out (the client's retries would only add requests)."""
    if all(h.last_error is None for h in handles):
        yield
        return
    with first.client.attempts_at_most(1):
        yield


def active_runs(client: DatabricksClient, job_id: int) -> tuple[dict[int, dict[str, Any]], float | None]:
    """Every active run of a job, by run id, with its tasks (one ``runs/list`` page per 25 runs, so a
    task that fails while its run goes on is seen as a ``runs/get`` would see it), and the last page's
    ``Retry-After``."""
    seen: dict[int, dict[str, Any]] = {}
    page_token: str | None = None
    followed: set[str] = set()  # a token that comes again, or a page with no new run, ends the reading
    while True:
        page = client.list_runs(
            job_id, active_only=True, limit=PAGE, page_token=page_token, expand_tasks=True
        )
        before = len(seen)
        for run in page.get("runs") or ():
            run_id = _run_id(run)
            if run_id is not None:
                seen[run_id] = run
        page_token = page.get("next_page_token")
        if not page_token or len(seen) == before or str(page_token) in followed:
            return seen, page.retry_after
        followed.add(str(page_token))


def job_history(client: DatabricksClient, job_id: int) -> History | None:
    """What a job's last 25 finished runs say about its durations (None when they cannot be read:
    history only sharpens the pacing, so it never fails a watch)."""
    try:
        page = client.list_runs(job_id, completed_only=True, limit=PAGE)
    except DatabricksError as exc:
        log.debug("no history for job %s: %s", job_id, exc)
        return None
    return history_from_runs([r for r in page.get("runs") or () if isinstance(r, dict)])


def _has_state(run: Mapping[str, Any]) -> bool:
    return isinstance(run.get("state"), dict) or isinstance(run.get("status"), dict)


def _run_id(run: Any) -> int | None:
    if not isinstance(run, dict):
        return None
    value = run.get("run_id")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() else None


def going_on(handles: list[RunHandle]) -> str:
    """One sentence naming the runs whose watching stopped while they go on, and how to find them again."""
    listed = ", ".join(f"{h.run_id} ({h.job_name or h.job_id}, {h.state})" for h in handles)
    many = len(handles) != 1
    return (
        f"dbx-magic stopped watching {len(handles)} run{'s' if many else ''} that "
        f"{'go' if many else 'goes'} on in the workspace: {listed}. `%dbx_wait RUN_ID` (or "
        "wait_for_run(client, RUN_ID)) watches one again."
    )


def _trouble(exc: BaseException, lasted: float) -> str:
    """What a display says while the workspace does not answer."""
    status = getattr(exc, "status_code", None)
    why = str(status) if isinstance(status, int) else type(exc).__name__
    minutes, seconds = divmod(int(lasted), 60)
    return f"workspace unreachable for {minutes}:{seconds:02d} ({why}), still trying"


def _refused(exc: BaseException) -> bool:
    """The workspace refused the request itself (a 4xx other than 429): asking again would not help.
    Other failures (the network, a 5xx, 429) already outlasted the client's retries; the watcher tries
    again a few times more, further apart, since a run may last hours."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status != 429


def _watch_error(handle: RunHandle, exc: BaseException) -> DatabricksError:
    if isinstance(exc, ResourceDoesNotExist):
        return exc  # the run does not exist: nothing goes on
    if isinstance(exc, DatabricksError):
        return exc.about_run(handle.run_id, handle.result)
    return stops.watch_lost(handle.run_id, handle.result, exc)
