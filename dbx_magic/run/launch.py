"""The launch: getJob and runJobNow, with every input checked once, where the launch is made.

:meth:`Launch.check` judges everything that can be judged locally (the job, the parameters, the
idempotency token, the timeout) before anything is sent; :func:`launch` sends it. Every face (the
magics, the form, sweeps, the command line, Python) goes through these two.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..api.client import DatabricksClient, new_idempotency_token
from ..errors import (
    GOES_ON,
    MAY_HAVE_STARTED,
    DatabricksError,
    InvalidInput,
    PermissionDenied,
    ResourceConflict,
    ResourceDoesNotExist,
    RunInterrupted,
    ServerError,
    TooManyRequests,
    TransportError,
    WaitTimeout,
)
from .checks import (
    MAX_ID,
    a_kind,
    check_if_running,
    check_performance_target,
    check_timeout,
    check_token,
    digits,
    known_tasks,
    positive_id,
    task_keys,
)
from .declared import Declarations, declared_params
from .journal import Journal
from .models import RunResult
from .params import normalise_params

__all__ = [
    "JobInfo",
    "Launch",
    "Notice",
    "adopt_or_launch",
    "check_declared",
    "job_info",
    "launch",
    "resolve_job",
    "start_run",
]

#: Called with one sentence when a launch does something other than start a run (``if_running``).
Notice = Callable[[str], object]

log = logging.getLogger(__name__)

_LAUNCH_ATTEMPTS = 3
_CANCEL_WAIT = 60.0  # seconds if_running="cancel" waits for the cancelled runs to end before launching


class JobInfo:
    """What getJob said about a job: its name and the parameters it takes, with their defaults."""

    def __init__(self, job_id: int, payload: Mapping[str, Any]) -> None:
        raw = payload.get("settings")
        settings: dict[str, Any] = raw if isinstance(raw, dict) else {}
        self.job_id = job_id
        self.settings = settings
        self.name: str | None = settings.get("name")
        self.job_parameters: dict[str, str] = {
            str(p.get("name")): str(p.get("default", ""))
            for p in settings.get("parameters") or ()
            if isinstance(p, dict) and p.get("name")
        }
        self.notebook_parameters: dict[str, str] = {}
        self.task_keys: list[str] = [
            str(t["task_key"])
            for t in settings.get("tasks") or ()
            if isinstance(t, dict) and t.get("task_key")
        ]
        for task in settings.get("tasks") or ():
            notebook = task.get("notebook_task") if isinstance(task, dict) else None
            if isinstance(notebook, dict):
                for key, value in (notebook.get("base_parameters") or {}).items():
                    self.notebook_parameters.setdefault(str(key), str(value))
        self.max_concurrent_runs = settings.get("max_concurrent_runs")
        self.queueing = bool((settings.get("queue") or {}).get("enabled"))
        self.more_pages = bool(payload.get("next_page_token"))  # 2.2: more tasks than this page shows
        self._declared: Declarations | None = None

    def declared(self, client: DatabricksClient) -> Declarations:
        """What the job declares it takes (its notebooks' sources read once, then remembered)."""
        if self._declared is None:
            self._declared = declared_params(client, self)
        return self._declared

    @property
    def uses_job_parameters(self) -> bool:
        """True when the job defines job-level parameters (and so takes ``job_parameters``)."""
        return bool(self.job_parameters)

    @property
    def defaults(self) -> dict[str, str]:
        """The parameters the job takes, with their defaults (to pre-fill a form)."""
        return dict(self.job_parameters if self.uses_job_parameters else self.notebook_parameters)


MAX_JOB_NAME = 4096  # the Jobs API's limit on a job's name
NAME_PREFIX = "name:"
"""``name:123`` is the job *named* "123" (a string of digits alone is a job id)."""


def _job_id_from(job: Any) -> int | None:
    """The job id when ``job`` is one, None when it is a name (``name:`` forces a name)."""
    if isinstance(job, str):
        text = job.strip()
        if not text or text.lower() == NAME_PREFIX:
            raise InvalidInput("The job is empty: pass a job id or a job name.")
        if len(text) > MAX_JOB_NAME:
            raise InvalidInput(
                f"The job name is {len(text):,} characters long, over the {MAX_JOB_NAME:,} a job name can "
                "have: pass the job's id or its name as the workspace shows it."
            )
        if text.lower().startswith(NAME_PREFIX) or not digits(text.lstrip("+-")):
            return None
    if not isinstance(job, int | str) or isinstance(job, bool):
        raise InvalidInput(
            f"The job {job!r} is {a_kind(job)}: pass a job id (a positive integer) or a job name."
        )
    return positive_id(job, "job id")


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name}={value!r} is not a bool: pass True or False.")
    return value


@dataclass(frozen=True)
class Launch:
    """A launch, checked: what :func:`launch` sends. Build it with :meth:`check`.

    Attributes:
        job: The job id, or the job's name (looked up with ``jobs/list`` at launch).
        notebook_params: Parameters given as notebook parameters, as strings.
        job_parameters: Parameters given as job parameters, as strings.
        idempotency_token: The token the launch carries (a fresh one unless given).
        timeout: Seconds to wait for the run, None for as long as it lasts.
        token_given: The token came from the caller, so it may find a run started earlier: the
            launch then checks that run was started with the same parameters.
        only: Task keys to run (``+key`` adds its upstream tasks, ``key+`` its downstream
            ones); empty for every task. Checked against the job's tasks before run-now is sent.
        if_running: When the job already has a run going: ``"new"`` starts another, ``"wait"``
            watches that one instead, ``"cancel"`` cancels it and then launches.
        allow_unknown_params: Send names the job does not declare, and values outside a dropdown's
            choices, as given (otherwise they are refused before anything is launched).
        performance_target: ``STANDARD`` or ``PERFORMANCE_OPTIMIZED`` (serverless); None: the job's own.
    """

    job: int | str
    notebook_params: dict[str, str] = field(default_factory=dict)
    job_parameters: dict[str, str] = field(default_factory=dict)
    idempotency_token: str = field(default_factory=new_idempotency_token)
    timeout: float | None = None
    token_given: bool = False
    only: tuple[str, ...] = ()
    if_running: str = "new"
    allow_unknown_params: bool = False
    performance_target: str | None = None

    @classmethod
    def check(
        cls,
        job: int | str,
        notebook_params: Mapping[str, Any] | None = None,
        job_parameters: Mapping[str, Any] | None = None,
        idempotency_token: str | None = None,
        timeout: float | None = None,
        *,
        only: str | Iterable[str] | None = None,
        if_running: str | None = None,
        allow_unknown_params: bool = False,
        performance_target: str | None = None,
    ) -> Launch:
        """Judge every input locally; raise InvalidInput on the first mistake, before anything is sent.

        The names and values are judged against what the job declares at :func:`launch`, once the
        job is known (``allow_unknown_params=True`` sends them as given)."""
        job_id = _job_id_from(job)
        notebook = normalise_params(notebook_params, "notebook parameter")
        jobp = normalise_params(job_parameters, "job parameter")
        if notebook and jobp:
            raise InvalidInput(
                "Both notebook_params and job_parameters were given, and a run takes one kind: pass the "
                "parameters once (they are sent the way the job takes them)."
            )
        given = check_token(idempotency_token)
        token = given or new_idempotency_token()
        return cls(
            job=job_id if job_id is not None else str(job).strip(),
            notebook_params=notebook,
            job_parameters=jobp,
            idempotency_token=token,
            timeout=check_timeout(timeout),
            token_given=given is not None,
            only=task_keys(only) or (),
            if_running=check_if_running(if_running),
            allow_unknown_params=_flag(allow_unknown_params, "allow_unknown_params"),
            performance_target=check_performance_target(performance_target),
        )

    @property
    def params(self) -> dict[str, str]:
        """The parameters, whichever kind they were given as."""
        return self.notebook_params or self.job_parameters

    def with_params(self, params: Mapping[str, Any], idempotency_token: str) -> Launch:
        """The same launch with other parameters and token (a sweep's runs), checked."""
        return replace(
            self,
            notebook_params=normalise_params(params, "parameter"),
            job_parameters={},
            idempotency_token=check_token(idempotency_token) or new_idempotency_token(),
        )


def resolve_job(client: DatabricksClient, job: int | str) -> int:
    """Turn a job id or a job name into a job id (a name is looked up with ``jobs/list``).

    Raises:
        InvalidInput: a bad id, or a name that matches no job (the message lists close names) or
            several (the message lists their ids).
    """
    job_id = _job_id_from(job)
    if job_id is not None:
        return job_id
    name = str(job).strip()
    if name.lower().startswith(NAME_PREFIX):
        name = name[len(NAME_PREFIX) :].strip()
    matches = client.list_jobs(name=name)
    exact = [j for j in matches if str((j.get("settings") or {}).get("name", "")).lower() == name.lower()]
    if len(exact) == 1:
        return int(exact[0]["job_id"])
    if len(exact) > 1:
        ids = ", ".join(str(j.get("job_id")) for j in exact)
        raise InvalidInput(
            f"The job name {name!r} matches {len(exact)} jobs (ids {ids}): pass the id instead."
        )
    names = sorted({str((j.get("settings") or {}).get("name")) for j in client.list_jobs()})
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        hint = f"did you mean {', '.join(repr(c) for c in close)}?"
    elif names:
        shown = ", ".join(repr(n) for n in names[:10])
        hint = f"the jobs found are {shown}{', ...' if len(names) > 10 else ''}."
    else:
        hint = "the workspace has no jobs you can see."
    raise InvalidInput(f"No job is named {name!r}: {hint}")


def job_info(client: DatabricksClient, job: int | str) -> JobInfo:
    """getJob: resolve the job and read its settings.

    A job id that does not exist, when a job is *named* like it, says how to run that one.
    """
    job_id: int | None = None
    try:
        job_id = resolve_job(client, job)
        return JobInfo(job_id, client.get_job(job_id))
    except ResourceDoesNotExist as exc:
        missing = exc
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc.message.rstrip('.')}; no run was started.", **exc.fields()) from None
    if job_id is None or not _named(client, str(job_id)):
        raise missing
    raise ResourceDoesNotExist(
        f"There is no job with id {job_id}, but a job is named {str(job_id)!r}: pass "
        f"{NAME_PREFIX}{job_id} to run it by name (a number alone is a job id).",
        **missing.fields(),
    )


def _named(client: DatabricksClient, name: str) -> bool:
    try:
        jobs = client.list_jobs(name=name)
    except DatabricksError:  # only a hint; the job's absence is the error
        return False
    return any(str((j.get("settings") or {}).get("name", "")) == name for j in jobs)


def check_declared(client: DatabricksClient, info: JobInfo, spec: Launch) -> tuple[str, ...]:
    """Judge the launch's parameters against what the job declares (read only when there are some).

    Returns:
        Warnings for the run: names or values not declared where the sources could be read, while
        some source could not be.

    Raises:
        InvalidInput: a name the job does not declare, or a value outside a dropdown's choices
            (unless ``spec.allow_unknown_params``).
    """
    if not spec.params or spec.allow_unknown_params:
        return ()
    return info.declared(client).check(spec.params)


def launch(
    client: DatabricksClient, spec: Launch, info: JobInfo | None = None, *, on_notice: Notice | None = None
) -> RunResult:
    """getJob (unless ``info`` is given), the check of the parameters against what the job declares,
    and runJobNow: start the run and return it, not yet polled.

    The parameters go the way the job takes them (job-level parameters or notebook parameters).
    With ``spec.if_running`` ``"wait"`` and a run going, that run is returned instead (see
    :func:`adopt_or_launch`, which also says whether it did).

    Raises:
        InvalidInput: a job name that matches no job, or several; ``only`` naming a task the job
            does not have; a parameter the job does not declare, or a value outside a dropdown's
            choices (run-now is not sent).
        DatabricksError: the workspace refused; once a run may exist, the error names the token.
        RunInterrupted: the kernel was interrupted; says whether a run may have started.
    """
    return adopt_or_launch(client, spec, info, on_notice=on_notice)[0]


def adopt_or_launch(
    client: DatabricksClient,
    spec: Launch,
    info: JobInfo | None = None,
    *,
    on_notice: Notice | None = None,
    journal: Journal | None = None,
) -> tuple[RunResult, bool]:
    """:func:`launch`, saying whether the run returned is one already going (``if_running="wait"``)
    rather than a new one. What it does besides launching goes to ``on_notice`` (else the log); the
    launch is written to ``journal`` (default: the one in ``DBX_MAGIC_HOME`` or the user data directory)
    before run-now is sent, and again when its answer comes."""
    try:
        if info is None:
            info = job_info(client, spec.job)
        if spec.only:
            known_tasks(spec.only, info.task_keys, f"job {info.job_id}")
        warnings = check_declared(client, info, spec)
        if spec.if_running != "new":
            going = _runs_going(client, info, spec.if_running, on_notice)
            if going is not None:
                return going, True
    except KeyboardInterrupt:
        raise RunInterrupted("Interrupted before the launch: no run was started.") from None
    return _start(client, spec, info, warnings, journal or Journal(clock=client.clock.wall)), False


def _say(on_notice: Notice | None, text: str) -> None:
    if on_notice is None:
        log.warning("%s", text)
    else:
        log.info("%s", text)
        on_notice(text)


def _active_runs(client: DatabricksClient, job_id: int) -> list[dict[str, Any]]:
    page = client.list_runs(job_id, active_only=True, limit=25)
    runs = [r for r in page.get("runs") or () if isinstance(r, dict) and r.get("run_id")]
    return sorted(
        runs, key=lambda r: (_int_or_none(r.get("start_time")) or 0, int(r["run_id"])), reverse=True
    )


def _runs_going(
    client: DatabricksClient, info: JobInfo, if_running: str, on_notice: Notice | None
) -> RunResult | None:
    """``if_running`` "wait": the newest run going, to watch; "cancel": cancel them, wait for them to
    end (up to a minute), and return None so the launch goes ahead."""
    active = _active_runs(client, info.job_id)
    name = f"job {info.job_id}" + (f" ({info.name})" if info.name else "")
    if not active:
        _say(on_notice, f"No run of {name} is going: launching a new one.")
        return None
    ids = ", ".join(str(r["run_id"]) for r in active)
    if if_running == "wait":
        newest = active[0]
        more = f" (the newest of {len(active)} going: {ids})" if len(active) > 1 else ""
        _say(
            on_notice,
            f"{name.capitalize()} is already running as run {newest['run_id']}{more}: watching it instead of starting another.",
        )
        return RunResult.from_api(newest, job_name=info.name, job_id=info.job_id)
    client.cancel_all_runs(info.job_id)
    _say(
        on_notice,
        f"Cancelled the run{'s' if len(active) > 1 else ''} of {name} going ({ids}); launching a new one once they end.",
    )
    deadline = client.clock.monotonic() + _CANCEL_WAIT
    while _active_runs(client, info.job_id):
        if client.clock.monotonic() >= deadline:
            _say(
                on_notice,
                f"The cancelled runs of {name} are still ending after {_CANCEL_WAIT:.0f} s: launching anyway.",
            )
            break
        client.clock.sleep(1.0)
    return None


def _start(
    client: DatabricksClient, spec: Launch, info: JobInfo, warnings: tuple[str, ...], journal: Journal
) -> RunResult:
    token = spec.idempotency_token
    values = spec.params
    notebook, jobp = ({}, values) if info.uses_job_parameters else (values, {})
    answer: Mapping[str, Any] | None = None
    # Before the request: a launch whose answer never comes is still known, with its token.
    journal.launching(client.host, job_id=info.job_id, job_name=info.name, token=token, params=values)
    try:
        answer = _run_now(client, info.job_id, token, notebook, jobp, spec.only, spec.performance_target)
        run_id = int(answer["run_id"])
        journal.launched(client.host, token, run_id)
        if spec.token_given:
            _check_reuse(client, info, run_id, token, values)
    except KeyboardInterrupt:
        answer = None
    except PermissionDenied as exc:  # a job the credentials may view but not run: say which
        raise exc.refused(f"run job {info.job_id}", f"job {info.job_id} ({info.name!r})") from None
    except DatabricksError as exc:
        if exc.follow_up != MAY_HAVE_STARTED and answer is None:
            journal.refused(client.host, token)  # refused: no run started
        raise
    if answer is None:  # raised here, not in the except block: nothing of the request is chained
        raise RunInterrupted(
            f"Interrupted while launching job {info.job_id}.",
            idempotency_token=token,
            follow_up=MAY_HAVE_STARTED,
        )
    log.debug("launched job %s as run %s", info.job_id, run_id)
    return RunResult(
        job_id=info.job_id,
        run_id=run_id,
        job_name=info.name,
        number_in_job=_int_or_none(answer.get("number_in_job")),
        life_cycle_state=None,
        idempotency_token=token,
        parameters=dict(values),
        defaults=info.defaults,
        warnings=warnings,
        client=client,
    )


def _check_reuse(
    client: DatabricksClient, info: JobInfo, run_id: int, token: str, asked: Mapping[str, str]
) -> None:
    """A token given by the caller may find a run started earlier: refuse it when that run was
    started with other parameters than the ones asked for now (both sets are shown)."""
    try:
        run = client.get_run(run_id)
    except DatabricksError as exc:
        raise exc.about_run(run_id) from None
    found = _started_with(run, info)
    wanted = {**info.job_parameters, **asked} if info.uses_job_parameters else dict(asked)
    if found is None or found == wanted:
        return
    raise ResourceConflict(
        f"The idempotency token {token!r} found run {run_id}, started earlier with other parameters "
        f"({_shown(found)}; asked now: {_shown(wanted)}), so it is not the run asked for: launch "
        "again with another token, or none, to start a new one.",
        run_id=run_id,
        idempotency_token=token,
        follow_up=GOES_ON,
    )


def _started_with(run: Mapping[str, Any], info: JobInfo) -> dict[str, str] | None:
    """The parameters a run was started with, from ``runs/get`` (None when it does not say)."""
    if info.uses_job_parameters:
        listed = run.get("job_parameters")
        if isinstance(listed, list):
            return {
                str(p.get("name")): str(p.get("value", p.get("default", "")))
                for p in listed
                if isinstance(p, dict) and p.get("name")
            }
    overriding = run.get("overriding_parameters")
    if not isinstance(overriding, dict):
        return None if info.uses_job_parameters else {}
    key = "job_parameters" if info.uses_job_parameters else "notebook_params"
    given = overriding.get(key) or {}
    if not isinstance(given, dict):
        return None
    values = {str(k): str(v) for k, v in given.items()}
    return {**info.job_parameters, **values} if info.uses_job_parameters else values


def _shown(params: Mapping[str, str]) -> str:
    if not params:
        return "no parameters"
    text = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return text if len(text) <= 160 else text[:157] + "..."


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _usable_run_id(answer: Mapping[str, Any]) -> bool:
    value = answer.get("run_id")
    if isinstance(value, bool) or not isinstance(value, int | str):
        return False
    text = str(value).strip()
    return digits(text) and 0 < int(text) <= MAX_ID


def _run_now(
    client: DatabricksClient,
    job_id: int,
    token: str,
    notebook: dict[str, str],
    jobp: dict[str, str],
    only: tuple[str, ...] = (),
    performance_target: str | None = None,
) -> Mapping[str, Any]:
    # The token makes the launch idempotent, so an answer without a usable run id is safely asked again.
    for _ in range(_LAUNCH_ATTEMPTS):
        try:
            answer = client.run_now(
                job_id,
                idempotency_token=token,
                notebook_params=notebook,
                job_parameters=jobp,
                only=only or None,
                performance_target=performance_target,
            )
        except (TransportError, ServerError, TooManyRequests, WaitTimeout) as exc:
            # The workspace may have started the run before the answer was lost.
            fields = exc.fields()
            fields.update(idempotency_token=token, follow_up=MAY_HAVE_STARTED)
            raise type(exc)(exc.message, **fields) from None
        except DatabricksError as exc:
            if exc.status_code == 409:  # a conflict says nothing about the input: it may have started
                fields = exc.fields()
                fields.update(idempotency_token=token, follow_up=MAY_HAVE_STARTED)
                raise type(exc)(exc.message, **fields) from None
            raise
        if _usable_run_id(answer):
            return answer
    raise TransportError(
        f"Launching job {job_id} failed: the workspace answered without a usable run id "
        f"{_LAUNCH_ATTEMPTS} times.",
        idempotency_token=token,
        follow_up=MAY_HAVE_STARTED,
    )


def start_run(
    client: DatabricksClient,
    job: int | str,
    notebook_params: Mapping[str, Any] | None = None,
    job_parameters: Mapping[str, Any] | None = None,
    *,
    idempotency_token: str | None = None,
    only: str | Iterable[str] | None = None,
    if_running: str | None = None,
    on_notice: Notice | None = None,
    allow_unknown_params: bool = False,
    performance_target: str | None = None,
) -> RunResult:
    """getJob and runJobNow: launch the job and return the new run (not yet polled).

    ``only`` runs just those task keys; ``if_running`` (``"new"``, ``"wait"``, ``"cancel"``) says what
    to do when the job has a run going (``"wait"`` returns that run); ``on_notice`` hears about it.

    Raises:
        InvalidInput: bad input, judged before anything is sent where possible.
        DatabricksError: the workspace refused; once the run may exist, the error names the token.
        RunInterrupted: the kernel was interrupted; says whether a run may have started.
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
    return launch(client, spec, on_notice=on_notice)
