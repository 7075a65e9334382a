"""The launch: getJob and runJobNow, with every input checked once, where the launch is made.

:meth:`Launch.check` judges everything that can be judged locally (the job, the parameters, the
idempotency token, the timeout) before anything is sent; :func:`launch` sends it. Every face (the
magics, the form, sweeps, the command line, Python) goes through these two.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..api.client import DatabricksClient, new_idempotency_token
from ..errors import (
    MAY_HAVE_STARTED,
    DatabricksError,
    InvalidInput,
    RunInterrupted,
    ServerError,
    TooManyRequests,
    TransportError,
)
from .checks import MAX_ID, check_timeout, check_token, positive_id
from .declared import Declarations, declared_params
from .models import RunResult
from .params import normalise_params

__all__ = ["JobInfo", "Launch", "check_declared", "job_info", "launch", "resolve_job", "start_run"]

log = logging.getLogger(__name__)

_LAUNCH_ATTEMPTS = 3


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


def _job_id_from(job: Any) -> int | None:
    """The job id when ``job`` is one, None when it is a name."""
    if isinstance(job, str):
        text = job.strip()
        if not text:
            raise InvalidInput("The job is empty: pass a job id or a job name.")
        if not text.lstrip("+-").isdigit():
            return None
    if not isinstance(job, int | str) or isinstance(job, bool):
        raise InvalidInput(
            f"The job {job!r} is a {type(job).__name__}: pass a job id (a positive integer) or a job name."
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
        allow_unknown_params: Send names the job does not declare, and values outside a dropdown's
            choices, as given (otherwise they are refused before anything is launched).
    """

    job: int | str
    notebook_params: dict[str, str] = field(default_factory=dict)
    job_parameters: dict[str, str] = field(default_factory=dict)
    idempotency_token: str = field(default_factory=new_idempotency_token)
    timeout: float | None = None
    allow_unknown_params: bool = False

    @classmethod
    def check(
        cls,
        job: int | str,
        notebook_params: Mapping[str, Any] | None = None,
        job_parameters: Mapping[str, Any] | None = None,
        idempotency_token: str | None = None,
        timeout: float | None = None,
        *,
        allow_unknown_params: bool = False,
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
        token = check_token(idempotency_token) or new_idempotency_token()
        return cls(
            job=job_id if job_id is not None else str(job).strip(),
            notebook_params=notebook,
            job_parameters=jobp,
            idempotency_token=token,
            timeout=check_timeout(timeout),
            allow_unknown_params=_flag(allow_unknown_params, "allow_unknown_params"),
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
    """getJob: resolve the job and read its settings."""
    job_id = resolve_job(client, job)
    return JobInfo(job_id, client.get_job(job_id))


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


def launch(client: DatabricksClient, spec: Launch, info: JobInfo | None = None) -> RunResult:
    """getJob (unless ``info`` is given), the check of the parameters against what the job declares,
    and runJobNow: start the run and return it, not yet polled.

    The parameters go the way the job takes them (job-level parameters or notebook parameters).

    Raises:
        InvalidInput: a job name that matches no job, or several; a parameter the job does not
            declare, or a value outside a dropdown's choices (nothing is launched).
        DatabricksError: the workspace refused; once a run may exist, the error names the token.
        RunInterrupted: the kernel was interrupted; says whether a run may have started.
    """
    try:
        if info is None:
            info = job_info(client, spec.job)
        warnings = check_declared(client, info, spec)
    except KeyboardInterrupt:
        raise RunInterrupted("Interrupted before the launch: no run was started.") from None
    token = spec.idempotency_token
    values = spec.params
    notebook, jobp = ({}, values) if info.uses_job_parameters else (values, {})
    try:
        answer = _run_now(client, info.job_id, token, notebook, jobp)
        run_id = int(answer["run_id"])
    except KeyboardInterrupt:
        raise RunInterrupted(
            f"Interrupted while launching job {info.job_id}.",
            idempotency_token=token,
            follow_up=MAY_HAVE_STARTED,
        ) from None
    log.debug("launched job %s as run %s", info.job_id, run_id)
    return RunResult(
        job_id=info.job_id,
        run_id=run_id,
        job_name=info.name,
        number_in_job=_int_or_none(answer.get("number_in_job")),
        life_cycle_state=None,
        idempotency_token=token,
        parameters=dict(values),
        warnings=warnings,
        client=client,
    )


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
    return text.isdigit() and 0 < int(text) <= MAX_ID


def _run_now(
    client: DatabricksClient, job_id: int, token: str, notebook: dict[str, str], jobp: dict[str, str]
) -> Mapping[str, Any]:
    # The token makes the launch idempotent, so an answer without a usable run id is safely asked again.
    for _ in range(_LAUNCH_ATTEMPTS):
        try:
            answer = client.run_now(
                job_id, idempotency_token=token, notebook_params=notebook, job_parameters=jobp
            )
        except (TransportError, ServerError, TooManyRequests) as exc:
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
    idempotency_token: str | None = None,
    *,
    allow_unknown_params: bool = False,
) -> RunResult:
    """getJob and runJobNow: launch the job and return the new run (not yet polled).

    Raises:
        InvalidInput: bad input, judged before anything is sent where possible.
        DatabricksError: the workspace refused; once the run may exist, the error names the token.
        RunInterrupted: the kernel was interrupted; says whether a run may have started.
    """
    spec = Launch.check(
        job, notebook_params, job_parameters, idempotency_token, allow_unknown_params=allow_unknown_params
    )
    return launch(client, spec)
