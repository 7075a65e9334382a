"""The ways to run and wait, each a launch (or an adoption) into a :class:`~dbx_magic.run.engine.Watcher`
followed, when it waits, by ``handle.wait()``.

``run_job_and_wait`` is ``start_background`` plus ``handle.wait()``; ``wait_for_run`` watches a run
started earlier and waits. Given no ``watcher``, a blocking call makes one of its own that it steps
while it waits (no thread), and ``start_background`` makes one with its thread; pass a shared
``Watcher`` to poll many runs together (a notebook session shares one among all its runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..api.client import DatabricksClient
from ..clock import Clock, as_clock
from . import stops
from .checks import check_timeout, positive_id
from .engine import RunHandle, Watcher
from .launch import Launch, Notice
from .models import RunResult
from .polling import PollPolicy
from .watch import OnUpdate

__all__ = ["launch_and_wait", "run_job_and_wait", "start_background", "wait_for_run"]


def _watcher(
    client: DatabricksClient,
    watcher: Watcher | None,
    *,
    threaded: bool,
    policy: PollPolicy | None = None,
    clock: Clock | Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> Watcher:
    """The watcher given, else one of the call's own (on the client's clock, or the one passed)."""
    if watcher is not None:
        return watcher
    if clock is None and sleep is None:
        own = client.clock
    elif clock is None:
        own = Clock(client.clock.monotonic, client.clock.sleep if sleep is None else sleep, client.clock.wall)
    else:
        own = as_clock(clock, sleep)
    made = Watcher(own, policy=policy, threaded=threaded)
    made.same_clock = own is client.clock  # a clock the caller chose for the waiting is theirs to pair
    made.shared = threaded  # a blocking call's own watcher stops with the call
    return made


def start_background(
    client: DatabricksClient,
    job: int | str,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    *,
    idempotency_token: str | None = None,
    on_update: OnUpdate | None = None,
    watcher: Watcher | None = None,
    only: str | list[str] | None = None,
    if_running: str | None = None,
    allow_unknown_params: bool = False,
    performance_target: str | None = None,
) -> RunHandle:
    """Run an existing job in the background: launch it and return a live handle at once.

    The run is polled by a watcher on its own thread, so the caller keeps working;
    ``handle.wait()`` returns the RunResult (raising as ``run_job_and_wait`` would),
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
        watcher: The watcher to use; share one (``Watcher()``) among many runs to poll them on one
            thread, batched by job (default: one of the run's own).
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
    return _watcher(client, watcher, threaded=True).launch(client, spec, on_update=on_update)


def launch_and_wait(
    client: DatabricksClient,
    spec: Launch,
    watcher: Watcher,
    *,
    on_update: OnUpdate | None = None,
    cancel_on_interrupt: bool = False,
    on_notice: Notice | None = None,
    on_handle: Callable[[RunHandle], Any] | None = None,
    source: str = "python",
) -> RunResult:
    """Launch a checked :class:`Launch` into ``watcher`` and wait for its run (what every face that
    blocks calls). ``on_handle`` is given the handle as soon as the run exists (a notebook names it)."""
    started = watcher.clock.monotonic()
    bound = None if spec.timeout is None else client.clock.monotonic() + spec.timeout
    handle: RunHandle | None = None
    try:
        with client.until(bound):  # a timeout bounds the launch's retries too, not only the polls
            handle = watcher.launch(
                client, spec, on_update=on_update, on_notice=on_notice, source=source, notify=False
            )
        if on_handle is not None:
            on_handle(handle)
    except KeyboardInterrupt as exc:
        if handle is None or isinstance(exc, stops.RunInterrupted):
            raise
        raise stops.just_launched(handle.run_id, handle.result) from None
    remaining = (
        None if spec.timeout is None else max(0.0, spec.timeout - (watcher.clock.monotonic() - started))
    )
    try:
        return handle.wait_within(remaining, raise_on_failure=False, cancel_on_interrupt=cancel_on_interrupt)
    finally:
        if on_update is not None:
            handle.remove_listener(on_update)


def wait_for_run(
    client: DatabricksClient,
    run_id: int,
    *,
    timeout: float | None = None,
    on_update: OnUpdate | None = None,
    launched: RunResult | None = None,
    cancel_on_interrupt: bool = False,
    policy: PollPolicy | None = None,
    watcher: Watcher | None = None,
    clock: Clock | Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
) -> RunResult:
    """pollRun: watch a run until it is finished, then fetch each task's output.

    Use it to re-attach to a run started earlier. Arguments as for ``run_job_and_wait``;
    ``launched`` is what ``start_run`` returned, when known.
    """
    run_id = positive_id(run_id, "run id")
    timeout = check_timeout(timeout)
    own = _watcher(client, watcher, threaded=False, policy=policy, clock=clock, sleep=sleep)
    handle = own.watch(client, run_id, launched=launched, on_update=on_update, notify=False)
    try:
        return handle.wait(timeout, raise_on_failure=False, cancel_on_interrupt=cancel_on_interrupt)
    finally:
        if on_update is not None:
            handle.remove_listener(on_update)


def run_job_and_wait(
    client: DatabricksClient,
    job: int | str,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    *,
    idempotency_token: str | None = None,
    timeout: float | None = None,
    on_update: OnUpdate | None = None,
    cancel_on_interrupt: bool = False,
    policy: PollPolicy | None = None,
    watcher: Watcher | None = None,
    clock: Clock | Callable[[], float] | None = None,
    sleep: Callable[[float], Any] | None = None,
    only: str | Iterable[str] | None = None,
    if_running: str | None = None,
    on_notice: Notice | None = None,
    allow_unknown_params: bool = False,
    performance_target: str | None = None,
) -> RunResult:
    """Run an existing job and wait for it: the seed workflow, made correct.

    Args:
        client: The workspace client.
        job: A job id, or the job's exact name (looked up with ``jobs/list``).
        notebook_params: ``{name: value}``; numbers become strings, bools ``"true"``/``"false"``.
            Sent as ``job_parameters`` when the job defines job-level parameters.
        job_parameters: The same, for jobs with job-level parameters (give one or the other).
        idempotency_token: At most 64 characters; None makes a fresh one, so a retried launch
            never starts a second run.
        timeout: Seconds to wait; None waits as long as the run lasts. A timeout stops the
            waiting, not the run (nor the launch: a run it started is always reported).
        on_update: Called with the current RunResult on every poll, the last one included.
        cancel_on_interrupt: On a kernel interrupt, also cancel the run.
        policy: When to poll next (default: history-aware ``PollPolicy()``).
        watcher: The watcher that polls the run (default: one of this call's own, stepped while it
            waits; a shared one polls this run with its others, batched by job).
        clock: The clock to wait on (a :class:`~dbx_magic.clock.Clock` or a monotonic function;
            default: the client's).
        sleep: Waits between polls, with a plain ``clock`` function.
        only: Task keys to run (a list or ``"a,b"``; ``+key`` adds its upstream tasks, ``key+``
            its downstream ones); checked against the job's tasks before anything is launched.
        if_running: When the job has a run going: ``"new"`` (default) starts another, ``"wait"``
            watches that run instead, ``"cancel"`` cancels it and then launches.
        on_notice: Called with one sentence when ``if_running`` did something (default: a
            logged warning).
        allow_unknown_params: Send names the job does not declare (and values outside a dropdown's
            choices) as given; otherwise they are refused before the launch.
        performance_target: ``STANDARD`` or ``PERFORMANCE_OPTIMIZED`` for a serverless job (None:
            the job's own setting); another value is refused before anything is sent.

    Returns:
        The finished run; check ``result.ok`` or call ``result.raise_for_state()``.

    Raises:
        InvalidInput: bad input (nothing was sent when it could be judged locally).
        WaitTimeout: the timeout passed; ``error.result`` holds the run as last seen.
        DatabricksError: any other failure; once the run exists, the message names it.
        RunInterrupted: the kernel was interrupted (a ``KeyboardInterrupt``).
    """
    spec = Launch.check(
        job,
        notebook_params,
        job_parameters,
        idempotency_token,
        timeout,
        only=only,
        if_running=if_running,
        allow_unknown_params=allow_unknown_params,
        performance_target=performance_target,
    )
    own = _watcher(client, watcher, threaded=False, policy=policy, clock=clock, sleep=sleep)
    return launch_and_wait(
        client, spec, own, on_update=on_update, cancel_on_interrupt=cancel_on_interrupt, on_notice=on_notice
    )
