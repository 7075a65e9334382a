"""Every error dbx-magic raises, in one small tree.

::

    DatabricksError                     anything this library raises (KeyboardInterrupt aside)
    ├── ConfigError (ValueError)        host, token or profile missing or malformed
    ├── InvalidInput (ValueError)       bad input judged locally, before anything is sent
    ├── ApiError                        the workspace answered with an error
    │   ├── BadRequest                  400
    │   │   └── InvalidParameterValue   400 INVALID_PARAMETER_VALUE
    │   │       └── ResourceDoesNotExist  "Job N does not exist." / "Run N does not exist"
    │   ├── Unauthenticated             401
    │   ├── PermissionDenied            403 (also a wrong or expired token)
    │   ├── NotFound                    404
    │   ├── ResourceConflict            409
    │   ├── TooManyRequests             429
    │   └── ServerError                 5xx
    ├── TransportError (ConnectionError)  no usable answer: connection refused or reset, timeout, bad JSON
    ├── RunFailed                       the run ended, and not with SUCCESS
    ├── RunNotFinished                  raise_for_state() on a run that is still going
    └── WaitTimeout (TimeoutError)      we stopped waiting; the run goes on

    RunInterrupted (KeyboardInterrupt)  the kernel was interrupted while a run was launched or watched

Each error carries ``status_code``, ``error_code`` and the API's own ``message`` where there was an
answer, and ``run_id`` once a run exists, so nothing is lost. Errors render in IPython as their one
message, without a stack trace (``_render_traceback_``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .safe import terminal_text

if TYPE_CHECKING:
    from .run.models import RunResult

__all__ = [
    "CLI",
    "NOTEBOOK",
    "PYTHON",
    "ApiError",
    "BadRequest",
    "ConfigError",
    "DatabricksError",
    "Face",
    "InvalidInput",
    "InvalidParameterValue",
    "NotFound",
    "PermissionDenied",
    "ResourceConflict",
    "ResourceDoesNotExist",
    "RunFailed",
    "RunInterrupted",
    "RunNotFinished",
    "ServerError",
    "TooManyRequests",
    "TransportError",
    "Unauthenticated",
    "WaitTimeout",
    "error_from_response",
]


@dataclass(frozen=True)
class Face:
    """How one face names the next step a message offers (re-attach, cancel, launch again).

    The run core's messages name Python calls (:data:`PYTHON`); the notebook layer renders the same
    error with its magics (:data:`NOTEBOOK`), the command line with its commands (:data:`CLI`).
    """

    wait: str
    cancel: str
    token: str


PYTHON = Face("wait_for_run(client, {run_id})", "client.cancel_run({run_id})", "idempotency token {token!r}")
NOTEBOOK = Face("`%dbx_wait {run_id}`", "`%dbx_cancel {run_id}`", "--idempotency-token {token}")
CLI = Face(
    "python -m dbx_magic wait {run_id}", "python -m dbx_magic cancel {run_id}", "--idempotency-token {token}"
)

#: What a message offers after its sentence, given the error's fields.
GOES_ON, MAY_HAVE_STARTED, CANCEL_FAILED, MANY_GO_ON, REPAIR_MAY_HAVE_STARTED = (
    "goes_on",
    "may_have_started",
    "cancel_failed",
    "many_go_on",
    "repair_may_have_started",
)


class _Composed:
    """The fields every error carries, and the one place its text is composed from them."""

    message: str
    result: Any
    results: Any
    run_id: int | None
    idempotency_token: str | None
    follow_up: str | None
    attempts: int | None
    elapsed: float | None
    retry_after: float | None
    published_as: str | None

    def render(self, face: Face = PYTHON) -> str:
        """The whole message, its next step named the way ``face`` names it."""
        text = terminal_text(self.message)  # the workspace's words may hold control sequences
        if (self.attempts or 0) > 1 or self.retry_after is not None:
            plural = "s" if self.attempts != 1 else ""
            extra = f"; the workspace asked to wait {self.retry_after:.0f} s more" if self.retry_after else ""
            text = f"{text.rstrip('.')} (gave up after {self.attempts} attempt{plural} in {self.elapsed or 0:.1f} s{extra})."
        step = self._step(face)
        if step:
            text = f"{text.rstrip('.')}{'; ' if step[0].islower() else '. '}{step}"
        if self.published_as:
            what = "runs as last seen are" if self.result is None else "run as last seen is"
            text = f"{text.rstrip('.')}. The {what} in `{self.published_as}`."
        return text

    def _step(self, face: Face) -> str:
        run, token = self.run_id, self.idempotency_token
        if self.follow_up == GOES_ON and run is not None:
            return (
                f"Run {run} goes on in the workspace: {face.wait.format(run_id=run)} re-attaches, "
                f"{face.cancel.format(run_id=run)} cancels it."
            )
        if self.follow_up == MANY_GO_ON:
            return (
                f"{face.wait.format(run_id='RUN_ID')} re-attaches to one of them, "
                f"{face.cancel.format(run_id='RUN_ID')} cancels one."
            )
        if self.follow_up == CANCEL_FAILED and run is not None:
            return f"Cancel it with {face.cancel.format(run_id=run)} or on its page."
        if self.follow_up == REPAIR_MAY_HAVE_STARTED and token and run is not None:
            return (
                f"the repair of run {run} may have started: repair again with "
                f"{face.token.format(token=token)} to get it back without repairing twice."
            )
        if self.follow_up == MAY_HAVE_STARTED and token:
            return (
                f"a run may have started: launch again with {face.token.format(token=token)} to get "
                "it back without starting a second one."
            )
        return ""

    def __str__(self) -> str:
        return self.render(PYTHON)


class DatabricksError(_Composed, Exception):
    """Base of every error raised by dbx-magic.

    The text is composed once from the fields (``render(face)`` composes it for another face); it is
    never edited afterwards.

    Args:
        message: One sentence: what was wrong and what to do.
        status_code: The HTTP status, when the workspace answered.
        error_code: The API's ``error_code`` (a string; a numeric one is turned into a string).
        api_message: The API's own ``message``, verbatim.
        run_id: The run this error concerns, once a run exists.
        idempotency_token: The token that finds the run when its id never came back.
        result: The last known state of that run, when there is one.
        results: For a sweep, every run as last seen (None for a run never launched).
        follow_up: The next step the message offers: ``GOES_ON`` (re-attach or cancel the run),
            ``MAY_HAVE_STARTED`` (launch again with the token), ``REPAIR_MAY_HAVE_STARTED`` (repair
            again with the token), ``CANCEL_FAILED``, or None.
        attempts: How many attempts were made, when the request was retried.
        elapsed: Seconds those attempts took.
        retry_after: The workspace's last ``Retry-After``, in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        api_message: str | None = None,
        run_id: int | None = None,
        idempotency_token: str | None = None,
        result: RunResult | None = None,
        results: list[RunResult | None] | None = None,
        follow_up: str | None = None,
        attempts: int | None = None,
        elapsed: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.api_message = api_message
        self.run_id = run_id
        self.idempotency_token = idempotency_token
        self.result = result
        self.results = results
        self.follow_up = follow_up
        self.attempts = attempts
        self.elapsed = elapsed
        self.retry_after = retry_after
        self.published_as: str | None = None
        super().__init__(self.render())

    def fields(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this error (for :meth:`about_run`)."""
        keys = ("status_code", "error_code", "api_message", "run_id", "idempotency_token", "result")
        more = ("results", "follow_up", "attempts", "elapsed", "retry_after")
        return {k: getattr(self, k) for k in keys + more}

    def about_run(self, run_id: int, result: RunResult | None = None) -> DatabricksError:
        """A new error of the same kind that names the run going on when this one struck."""
        fields = self.fields()
        fields.update(run_id=self.run_id or run_id, result=self.result or result, follow_up=GOES_ON)
        return type(self)(self.message, **fields)

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a stack trace: an expected failure is one clear message.
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self.render(NOTEBOOK)}"]


class ConfigError(DatabricksError, ValueError):
    """The host, token or profile is missing or malformed."""


class InvalidInput(DatabricksError, ValueError):
    """An argument is wrong; nothing was sent."""


class ApiError(DatabricksError):
    """The workspace answered with an error status."""


class BadRequest(ApiError):
    """HTTP 400."""


class InvalidParameterValue(BadRequest):
    """HTTP 400 with ``INVALID_PARAMETER_VALUE``."""


class ResourceDoesNotExist(InvalidParameterValue):
    """The job or run does not exist (the API says so with a 400, not a 404)."""


class Unauthenticated(ApiError):
    """HTTP 401."""


class PermissionDenied(ApiError):
    """HTTP 403: no permission, or a wrong or expired token."""

    def refused(self, action: str, job: str) -> DatabricksError:
        """This refusal said for a run action: what was refused, on which job, and the permission it
        takes (a wrong token, error code 403, is left as it is)."""
        if self.error_code != "PERMISSION_DENIED":
            return self
        said = f" The workspace said: {self.api_message.rstrip('.')}." if self.api_message else ""
        message = (
            f"You may not {action}: that takes the Can Manage Run permission on {job}, which these "
            f"credentials do not have (they may only view it). Ask the job's owner for it.{said}"
        )
        return PermissionDenied(message, **self.fields())


class NotFound(ApiError):
    """HTTP 404: the endpoint does not exist (usually a wrong host)."""


class ResourceConflict(ApiError):
    """HTTP 409."""


class TooManyRequests(ApiError):
    """HTTP 429, after the retry budget ran out."""


class ServerError(ApiError):
    """HTTP 5xx, after the retry budget ran out."""


class TransportError(DatabricksError, ConnectionError):
    """No usable answer: the connection failed or timed out, or the body was not JSON."""


class RunFailed(DatabricksError):
    """The run finished without success (FAILED, CANCELED, TIMEDOUT, SKIPPED, INTERNAL_ERROR...)."""


class RunNotFinished(DatabricksError):
    """The run has not finished yet, so it has no result to check."""


class WaitTimeout(DatabricksError, TimeoutError):
    """Waiting stopped at the timeout; the run itself goes on."""


class RunInterrupted(_Composed, KeyboardInterrupt):
    """The kernel was interrupted while dbx-magic launched or watched a run.

    It is a ``KeyboardInterrupt`` (so anything that stops on an interrupt still does), carrying
    what is needed to find the run again: ``run_id`` and ``result`` when the run was started,
    ``idempotency_token`` when the launch was cut short and the run id never came back.
    """

    def __init__(
        self,
        message: str,
        *,
        run_id: int | None = None,
        result: RunResult | None = None,
        idempotency_token: str | None = None,
        cancelled: bool = False,
        results: list[RunResult | None] | None = None,
        follow_up: str | None = None,
    ) -> None:
        self.message = message
        self.run_id = run_id
        self.result = result
        self.idempotency_token = idempotency_token
        self.cancelled = cancelled
        self.results = results
        self.follow_up = follow_up
        self.attempts = self.elapsed = self.retry_after = None
        self.published_as: str | None = None
        super().__init__(self.render())

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;33mInterrupted\x1b[0m: {self.render(NOTEBOOK)}"]


_BY_CODE: dict[str, type[ApiError]] = {
    "INVALID_PARAMETER_VALUE": InvalidParameterValue,
    "RESOURCE_DOES_NOT_EXIST": ResourceDoesNotExist,
    "RESOURCE_ALREADY_EXISTS": ResourceConflict,
    "ALREADY_EXISTS": ResourceConflict,
    "ABORTED": ResourceConflict,
    "REQUEST_LIMIT_EXCEEDED": TooManyRequests,
    "RESOURCE_EXHAUSTED": TooManyRequests,
    "PERMISSION_DENIED": PermissionDenied,
    "UNAUTHENTICATED": Unauthenticated,
    "ENDPOINT_NOT_FOUND": NotFound,
    "NOT_FOUND": NotFound,
    "TEMPORARILY_UNAVAILABLE": ServerError,
    "INTERNAL_ERROR": ServerError,
    "UNKNOWN": ServerError,
    "DATA_LOSS": ServerError,
}

_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: ResourceConflict,
    429: TooManyRequests,
}

_DOES_NOT_EXIST = re.compile(r"(Job|Run)\b.*(does not exist|doesn't exist)", re.IGNORECASE)
_TOKEN_PROBLEM = re.compile(r"(invalid|expired).*token|token.*(invalid|expired)", re.IGNORECASE)


def _hint(cls: type[ApiError], status: int, message: str, host: str) -> str:
    if cls in (Unauthenticated, PermissionDenied) and (status == 401 or _TOKEN_PROBLEM.search(message)):
        return (
            f"the workspace {host} refused the token: set a valid one in DATABRICKS_TOKEN or in "
            "your ~/.databrickscfg profile (tokens expire; create a new one under User Settings)"
        )
    if cls is PermissionDenied:
        return "ask the job's owner for CAN MANAGE RUN permission, or use a profile that has it"
    if cls is NotFound:
        return f"check that {host} is your workspace URL (it has no such API endpoint)"
    if cls is ResourceDoesNotExist:
        if message.lower().startswith("run"):
            return "check the run id (it is in the result of the cell or call that launched it, and in the run's page URL)"
        return "check the job id (the workspace's Jobs page lists the jobs you can see)"
    if cls is ResourceConflict:
        return "the workspace reported a conflict (another change to the same job or run at that moment?)"
    if cls is TooManyRequests:
        return "the workspace is rate-limiting requests: try again in a minute"
    if cls is ServerError:
        return "the workspace had a server error and retries did not help; try again later"
    return "check the arguments"


def error_from_response(status: int, body: Any, *, host: str, what: str, fallback_text: str = "") -> ApiError:
    """Build the error for an HTTP error answer, mapped by ``error_code`` first, then status.

    Args:
        status: The HTTP status code.
        body: The parsed JSON body (a dict) or None when the body was not JSON (an HTML page).
        host: The workspace host, for the hint.
        what: What was being done, e.g. ``"getting job 42"``.
        fallback_text: The raw body text, used for the message when there is no JSON message.
    """
    error_code: str | None = None
    api_message = ""
    if isinstance(body, dict):
        raw_code = body.get("error_code")
        error_code = None if raw_code is None else str(raw_code)
        api_message = str(body.get("message") or body.get("error") or "")
    if not api_message:
        api_message = _summarise_text(fallback_text) or f"HTTP {status}"

    cls: type[ApiError] | None = _BY_CODE.get(error_code or "")
    if cls is None:
        cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    if issubclass(cls, BadRequest) and _DOES_NOT_EXIST.search(api_message):
        cls = ResourceDoesNotExist
    message = (
        f"{what.capitalize()} failed: {api_message.rstrip('.')}; {_hint(cls, status, api_message, host)}."
    )
    return cls(message, status_code=status, error_code=error_code, api_message=api_message)


def _summarise_text(text: str) -> str:
    """One line from a non-JSON body (an HTML error page's title, or the first line of text)."""
    if not text:
        return ""
    title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    if title:
        return " ".join(title.group(1).split())[:200]
    stripped = re.sub(r"<[^>]+>", " ", text)
    return " ".join(stripped.split())[:200]
