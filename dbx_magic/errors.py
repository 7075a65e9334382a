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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import RunResult

__all__ = [
    "ApiError",
    "BadRequest",
    "ConfigError",
    "DatabricksError",
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


class DatabricksError(Exception):
    """Base of every error raised by dbx-magic.

    Args:
        message: One sentence: what was wrong and what to do.
        status_code: The HTTP status, when the workspace answered.
        error_code: The API's ``error_code`` (a string; a numeric one is turned into a string).
        api_message: The API's own ``message``, verbatim.
        run_id: The run this error concerns, once a run exists.
        result: The last known state of that run, when there is one.
        results: For a sweep, every run as last seen (None for a run never launched).
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        api_message: str | None = None,
        run_id: int | None = None,
        result: RunResult | None = None,
        results: list[RunResult | None] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.error_code = error_code
        self.api_message = api_message
        self.run_id = run_id
        self.result = result
        self.results = results

    def __str__(self) -> str:
        return self.message

    def attach_run(self, run_id: int, result: RunResult | None = None) -> DatabricksError:
        """Record the run that was going when this error struck, say so in the message, return self."""
        if self.run_id is None:
            self.run_id = run_id
        if result is not None and self.result is None:
            self.result = result
        if "%dbx_wait" not in self.message:
            self.message = (
                f"{self.message.rstrip('.')} (run {run_id} was started and goes on; "
                f"`%dbx_wait {run_id}` re-attaches to it)."
            )
            self.args = (self.message,)
        return self

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a stack trace: an expected failure is one clear message.
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


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


class RunInterrupted(KeyboardInterrupt):
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
    ) -> None:
        super().__init__(message)
        self.message = message
        self.run_id = run_id
        self.result = result
        self.idempotency_token = idempotency_token
        self.cancelled = cancelled
        self.results = results

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;33mInterrupted\x1b[0m: {self.message}"]


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
        return "check the job id (the workspace's Jobs page, or `%dbx_form`, lists the jobs)"
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
