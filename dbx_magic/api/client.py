"""The synchronous Jobs API client: one ``requests.Session``, one ``_request()`` every call goes through.

Retries live in one place, ``_request``: transient answers (429, 500, 502, 503, 504), connection
failures, read timeouts and bodies that are not JSON are tried again with capped exponential backoff
(``Retry-After`` wins when the server sends it) inside a budget of attempts and seconds. Every method
is retried, the launch included: ``run_now`` always carries an idempotency token, so a retried launch
returns the run the first attempt started instead of starting a second one.

Why not urllib3's ``Retry`` on the adapter: it sleeps inside the adapter with the real clock (so a test
or a benchmark cannot run an hour of backoff in milliseconds), it cannot bound the total time spent,
and it cannot see a 200 whose body is broken. Its ``Retry-After`` parser (seconds or an HTTP date) is
used as is.
"""

from __future__ import annotations

import base64
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.util.retry import Retry

from ..clock import Clock, as_clock
from ..errors import (
    DatabricksError,
    InvalidInput,
    TransportError,
    error_from_response,
)
from .auth import BearerAuth, TokenProvider, token_rejected, token_source
from .config import Config, normalise_host
from .ratelimit import RateLimiter

__all__ = ["Answer", "DatabricksClient", "RetryPolicy", "new_idempotency_token"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class Answer(dict):  # type: ignore[type-arg]
    """A JSON object the workspace answered, and the ``Retry-After`` (seconds) that came with it.

    It is the dict the API sent; ``retry_after`` is None unless that very answer asked the caller to
    slow down (a ``Retry-After`` the client already waited out while retrying is not repeated here).
    """

    retry_after: float | None = None


def new_idempotency_token() -> str:
    """A fresh idempotency token (42 characters, under the API's 64)."""
    return f"dbx-magic-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class RetryPolicy:
    """How transient faults are retried.

    Attributes:
        attempts: Tries per request, the first included.
        budget: Seconds one request may spend in total, waits included.
        backoff: First wait in seconds; each next wait doubles, up to ``max_backoff``.
        max_backoff: The cap on one wait without ``Retry-After``.
        jitter: Up to this fraction of each wait is added at random, so that many clients
            rate-limited together do not all come back at the same moment.
        max_retry_after: The longest ``Retry-After`` honoured; a longer one ends the retries.
    """

    attempts: int = 6
    budget: float = 120.0
    backoff: float = 0.5
    max_backoff: float = 10.0
    jitter: float = 0.2
    max_retry_after: float = 60.0

    def wait(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        if retry_after is not None:
            return retry_after
        base = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return base * (1 + self.jitter * random.random())


class DatabricksClient:
    """A synchronous client for the Jobs API endpoints dbx-magic uses.

    Args:
        host: The workspace URL (a host without a scheme gets ``https://``).
        token: A personal access token, or a token provider (a callable returning a fresh token; see
            :mod:`dbx_magic.auth`), or a ready :class:`~dbx_magic.auth.BearerAuth`. Never shown in a
            repr, message or log line.
        timeout: ``(connect, read)`` seconds for each HTTP request.
        retry: How transient faults are retried.
        api_version: ``"2.1"`` or ``"2.2"``.
        session: A ``requests.Session`` to use (one is made otherwise).
        sleep: The function that waits between retries (a parameter so tests can skip the waits).
        clock: A :class:`~dbx_magic.clock.Clock`, or a monotonic function in seconds: the retry
            budget, the rate limiter and the waits all run on it.
        azure_workspace_resource_id: Sent as ``X-Databricks-Azure-Workspace-Resource-Id`` (Azure
            service principals and managed identities need it to be let in as workspace users).
        rate_limiter: Takes a token before every HTTP attempt. Share one among clients to keep them
            under one rate together (the notebook session does); default: the client's own,
            100 requests a second in bursts of 200.
    """

    def __init__(
        self,
        host: str,
        token: str | TokenProvider | BearerAuth,
        *,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        api_version: str = "2.1",
        session: requests.Session | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Clock | Callable[[], float] | None = None,
        azure_workspace_resource_id: str | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        # An empty token is refused (InvalidInput) before anything else.
        self.clock = as_clock(clock, sleep)
        self._auth = (
            token
            if isinstance(token, BearerAuth)
            else BearerAuth(token, workspace_resource_id=azure_workspace_resource_id, clock=self.clock.wall)
        )
        self.host = normalise_host(host)
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.api_version = api_version
        self._session = session or requests.Session()
        self._session.auth = self._auth
        self._session.headers["User-Agent"] = "dbx-magic/0.1"
        self.rate_limiter = rate_limiter or RateLimiter(clock=self.clock)

    @classmethod
    def from_config(
        cls,
        profile: str | None = None,
        *,
        host: str | None = None,
        token: str | None = None,
        config: Config | None = None,
        **kwargs: Any,
    ) -> DatabricksClient:
        """Build a client from arguments, then ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``, then a profile.

        A profile or environment that names another sign-in method (``auth_type``, Azure service
        principal or managed identity settings) signs in through :func:`dbx_magic.auth.token_source`.

        Args:
            profile: A ``~/.databrickscfg`` profile (default: ``DATABRICKS_CONFIG_PROFILE``, else DEFAULT).
            host: The workspace URL, overriding everything else.
            token: The token, overriding everything else.
            config: A Config already resolved (``Config.resolve``); profile, host and token are then unused.
            **kwargs: Passed to the constructor (timeout, retry, ...).

        Raises:
            ConfigError: something is missing (the message lists the profiles found), or the sign-in
                method cannot be set up.
        """
        config = config or Config.resolve(host=host, token=token, profile=profile)
        kwargs.setdefault("azure_workspace_resource_id", config.azure_workspace_resource_id)
        return cls(config.host, token_source(config), **kwargs)

    def __repr__(self) -> str:
        return f"DatabricksClient(host={self.host!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    # -- the Jobs API ----------------------------------------------------------------------
    def get_job(self, job_id: int) -> Answer:
        """``GET jobs/get``: the job's settings (name, tasks, parameters)."""
        return self._request("GET", "jobs/get", params={"job_id": job_id}, what=f"getting job {job_id}")

    def list_jobs(
        self, name: str | None = None, *, limit: int = 100, max_pages: int = 20
    ) -> list[dict[str, Any]]:
        """``GET jobs/list``, following pages; ``name`` is an exact, case-insensitive match."""
        params: dict[str, Any] = {"limit": limit}
        if name is not None:
            params["name"] = name
        jobs: list[dict[str, Any]] = []
        for _ in range(max_pages):
            page = self._request("GET", "jobs/list", params=params, what="listing jobs")
            jobs.extend(j for j in page.get("jobs") or () if isinstance(j, dict))
            token = page.get("next_page_token")
            if not token:
                break
            params["page_token"] = token
        return jobs

    def run_now(
        self,
        job_id: int,
        *,
        idempotency_token: str | None = None,
        notebook_params: Mapping[str, str] | None = None,
        job_parameters: Mapping[str, str] | None = None,
    ) -> Answer:
        """``POST jobs/run-now``. Always sends an idempotency token (one is made when none is given),
        so that retrying the launch can never start a second run. Absent inputs are left out, not
        sent as ``null``."""
        token = idempotency_token or new_idempotency_token()
        body: dict[str, Any] = {"job_id": job_id, "idempotency_token": token}
        if notebook_params:
            body["notebook_params"] = dict(notebook_params)
        if job_parameters:
            body["job_parameters"] = dict(job_parameters)
        return self._request("POST", "jobs/run-now", json=body, what=f"launching job {job_id}")

    def get_run(self, run_id: int) -> Answer:
        """``GET jobs/runs/get``: the run's state, tasks and page URL."""
        return self._request("GET", "jobs/runs/get", params={"run_id": run_id}, what=f"getting run {run_id}")

    def cancel_run(self, run_id: int) -> None:
        """``POST jobs/runs/cancel``. Cancelling is asynchronous: the run ends shortly after."""
        self._request("POST", "jobs/runs/cancel", json={"run_id": run_id}, what=f"cancelling run {run_id}")

    def get_run_output(self, run_id: int) -> Answer:
        """``GET jobs/runs/get-output`` for a *task* run id (the job-level run id is refused)."""
        return self._request(
            "GET",
            "jobs/runs/get-output",
            params={"run_id": run_id},
            what=f"getting the output of run {run_id}",
        )

    def list_runs(
        self,
        job_id: int | None = None,
        *,
        active_only: bool = False,
        completed_only: bool = False,
        limit: int = 25,
        page_token: str | None = None,
        expand_tasks: bool = False,
    ) -> Answer:
        """``GET jobs/runs/list``: one page (``runs``, ``has_more``, ``next_page_token``)."""
        if active_only and completed_only:
            raise InvalidInput("active_only and completed_only cannot both be true: pick one.")
        params: dict[str, Any] = {"limit": limit}
        if job_id is not None:
            params["job_id"] = job_id
        if active_only:
            params["active_only"] = "true"
        if completed_only:
            params["completed_only"] = "true"
        if expand_tasks:
            params["expand_tasks"] = "true"
        if page_token:
            params["page_token"] = page_token
        return self._request("GET", "jobs/runs/list", params=params, what="listing runs")

    def export_run(self, run_id: int, views: str = "CODE") -> Answer:
        """``GET jobs/runs/export`` for a notebook *task* run id: ``{"views": [{"content": html, "name",
        "type"}]}``. ``views`` is ``CODE``, ``DASHBOARDS`` or ``ALL``. The pages carry their own
        scripts: show them only in an isolated frame."""
        return self._request(
            "GET",
            "jobs/runs/export",
            params={"run_id": run_id, "views_to_export": views},
            what=f"exporting run {run_id}",
        )

    def export_notebook(self, path: str) -> str:
        """``GET /api/2.0/workspace/export?format=SOURCE``: a notebook's source, decoded to text.

        Raises:
            ResourceDoesNotExist: no notebook at ``path`` (404).
            PermissionDenied: the notebook cannot be read with these credentials (403).
            TransportError: the answer holds no decodable source.
        """
        answer = self._request(
            "GET",
            "workspace/export",
            params={"path": path, "format": "SOURCE"},
            what=f"reading the notebook {path}",
            version="2.0",  # the Workspace API has no 2.1 or 2.2
        )
        content = answer.get("content")
        try:
            if not isinstance(content, str):
                raise ValueError("no content")
            return base64.b64decode(content, validate=True).decode("utf-8")
        except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
            raise TransportError(
                f"Reading the notebook {path} failed: the workspace's answer held no readable source."
            ) from None

    # -- the one request path --------------------------------------------------------------
    def _request(
        self,
        method: str,
        endpoint: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
        what: str,
        version: str | None = None,
    ) -> Answer:
        url = f"{self.host}/api/{version or self.api_version}/{endpoint}"
        policy = self.retry
        started = self.clock.monotonic()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            retry_after: float | None = None
            self.rate_limiter.acquire()
            t0 = self.clock.monotonic()
            try:
                response = self._session.request(method, url, params=params, json=json, timeout=self.timeout)
            except requests.exceptions.InvalidURL as exc:
                raise InvalidInput(
                    f"The host {self.host!r} is not a usable URL ({exc}): fix DATABRICKS_HOST."
                ) from None
            except requests.exceptions.SSLError as exc:
                raise TransportError(
                    f"{what.capitalize()} failed: the TLS handshake with {self.host} failed "
                    f"({type(exc).__name__}); if the host serves plain HTTP (a local sandbox), give it "
                    "as http://HOST:PORT, otherwise check its certificate."
                ) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
                log.debug(
                    "%s %s -> connection %s (%s), attempt %d",
                    method,
                    endpoint,
                    kind,
                    type(exc).__name__,
                    attempt,
                )
                failure: DatabricksError = TransportError(
                    f"{what.capitalize()} failed: the connection to {self.host} {kind} "
                    f"({type(exc).__name__}); check the host and your network, then try again."
                )
            else:
                elapsed_ms = (self.clock.monotonic() - t0) * 1000
                log.debug(
                    "%s %s -> %d (%.0f ms), attempt %d",
                    method,
                    endpoint,
                    response.status_code,
                    elapsed_ms,
                    attempt,
                )
                body, parsed = _json_body(response)
                if response.status_code < 400:
                    if parsed and isinstance(body, dict):
                        answer = Answer(body)
                        answer.retry_after = _retry_after(response)
                        return answer
                    failure = TransportError(
                        f"{what.capitalize()} failed: {self.host} answered with a body that is not "
                        "a JSON object (a proxy or login page?); check that the host is your "
                        "workspace URL, then try again.",
                        status_code=response.status_code,
                    )
                else:
                    failure = error_from_response(
                        response.status_code,
                        body if parsed else None,
                        host=self.host,
                        what=what,
                        fallback_text="" if parsed else response.text,
                    )
                    # A refused token is renewed once per request, and the request sent once more.
                    if (
                        not refreshed
                        and token_rejected(response.status_code, failure.api_message or "")
                        and self._auth.refresh()
                    ):
                        refreshed = True
                        log.debug("%s %s: the token was refused; retrying with a new one", method, endpoint)
                        continue
                    if response.status_code not in RETRY_STATUSES:
                        raise failure
                    retry_after = _retry_after(response)

            spent = self.clock.monotonic() - started
            wait = policy.wait(attempt, retry_after)
            if (
                attempt >= policy.attempts
                or spent + wait > policy.budget
                or (retry_after is not None and retry_after > policy.max_retry_after)
            ):
                raise _exhausted(failure, attempt, spent, retry_after)
            log.debug("%s %s: retry %d in %.2f s", method, endpoint, attempt, wait)
            self.clock.sleep(wait)


def _json_body(response: requests.Response) -> tuple[Any, bool]:
    if not response.content:
        return None, False
    try:
        return response.json(), True
    except ValueError:
        return None, False


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(Retry.parse_retry_after(Retry(), value)))
    except Exception:  # an unparseable header is as good as none
        return None


def _exhausted(
    failure: DatabricksError, attempts: int, spent: float, retry_after: float | None
) -> DatabricksError:
    """The error to raise once retries are over: the last failure, with what the retries spent."""
    if attempts <= 1 and retry_after is None:
        return failure
    fields = failure.fields()
    fields.update(attempts=attempts, elapsed=spent, retry_after=retry_after)
    return type(failure)(failure.message, **fields)
