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
import contextlib
import json as json_module
import logging
import math
import random
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.util.retry import Retry

from ..clock import Clock, as_clock
from ..errors import (
    ApiError,
    DatabricksError,
    InvalidInput,
    PermissionDenied,
    TransportError,
    WaitTimeout,
    error_from_response,
)
from ..safe import web_link
from .auth import BearerAuth, TokenProvider, token_rejected, token_source
from .config import Config, normalise_host
from .ratelimit import RateLimiter

__all__ = ["Answer", "DatabricksClient", "RetryPolicy", "merge_page", "new_idempotency_token"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_PAGES = 1000  # 100,000 entries of an array: a guard against a workspace that pages for ever


class Answer(dict):  # type: ignore[type-arg]
    """A JSON object the workspace answered, and the ``Retry-After`` (seconds) that came with it.

    It is the dict the API sent; ``retry_after`` is None unless that very answer asked the caller to
    slow down (a ``Retry-After`` the client already waited out while retrying is not repeated here).
    ``warnings`` says what the client could not read whole (pages that went round in a loop).
    """

    retry_after: float | None = None
    warnings: tuple[str, ...] = ()


def _package_version() -> str:
    import dbx_magic

    return str(dbx_magic.__version__)


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
        api_version: ``"2.2"`` (the default, as databricks-sdk speaks) or ``"2.1"``. On 2.2 the
            workspace pages long arrays (more than 100 tasks, say); ``get_job`` and ``get_run``
            follow ``next_page_token`` and return them whole either way.
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
        timeout: float | tuple[float, float] = (10.0, 60.0),
        retry: RetryPolicy | None = None,
        api_version: str = "2.2",
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
        self.timeout = _checked_timeout(timeout)
        self._local = threading.local()
        self.retry = retry or RetryPolicy()
        self.api_version = api_version
        self._session = session or requests.Session()
        self._session.auth = self._auth
        self._session.headers["User-Agent"] = f"dbx-magic/{_package_version()}"
        self.rate_limiter = rate_limiter or RateLimiter(clock=self.clock)
        self.lock = threading.Lock()

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

    def secrets(self) -> tuple[str, ...]:
        """The tokens this client has sent: for refusing them where they do not belong (a notebook
        cell, a form's values) and masking them in answers. Never shown anywhere."""
        return self._auth.secrets()

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    # -- the Jobs API ----------------------------------------------------------------------
    def get_job(self, job_id: int) -> Answer:
        """``GET jobs/get``: the job's settings (name, tasks, parameters), every page of them."""
        return self._whole("jobs/get", {"job_id": job_id}, what=f"getting job {job_id}")

    def list_jobs(
        self, name: str | None = None, *, limit: int = 100, max_pages: int = 20
    ) -> list[dict[str, Any]]:
        """``GET jobs/list``, following pages; ``name`` is an exact, case-insensitive match."""
        params: dict[str, Any] = {"limit": limit}
        if name is not None:
            params["name"] = name
        whole: dict[str, Any] = {"jobs": []}
        pages = _Pages(whole)
        for _ in range(max_pages):
            page = self._request("GET", "jobs/list", params=params, what="listing jobs")
            token = page.get("next_page_token")
            added = pages.merged(
                whole, {"jobs": [j for j in page.get("jobs") or () if isinstance(j, dict)]}, ()
            )
            problem = pages.turn(token) if token else None
            if not token or problem or not added:
                if token:
                    why = problem or "brought a page with nothing new"
                    log.warning(
                        "While listing jobs, the workspace's pages %s: the jobs read so far are used.", why
                    )
                break
            params["page_token"] = token
        return list(whole["jobs"])

    def run_now(
        self,
        job_id: int,
        *,
        idempotency_token: str | None = None,
        notebook_params: Mapping[str, str] | None = None,
        job_parameters: Mapping[str, str] | None = None,
        only: Sequence[str] | None = None,
        performance_target: str | None = None,
    ) -> Answer:
        """``POST jobs/run-now``. Always sends an idempotency token (one is made when none is given),
        so that retrying the launch can never start a second run. Absent inputs are left out, not
        sent as ``null``. ``only`` runs just those task keys (``+key`` adds its upstream tasks,
        ``key+`` its downstream ones). ``performance_target`` (``STANDARD`` or
        ``PERFORMANCE_OPTIMIZED``) sets how a serverless run trades cost for speed."""
        token = idempotency_token or new_idempotency_token()
        body: dict[str, Any] = {"job_id": job_id, "idempotency_token": token}
        if notebook_params:
            body["notebook_params"] = dict(notebook_params)
        if job_parameters:
            body["job_parameters"] = dict(job_parameters)
        if only:
            body["only"] = list(only)
        if performance_target:
            body["performance_target"] = performance_target
        try:
            return self._request("POST", "jobs/run-now", json=body, what=f"launching job {job_id}")
        except PermissionDenied as exc:
            raise exc.refused(f"run job {job_id}", f"job {job_id}") from None

    def get_run(
        self, run_id: int, include_history: bool = False, *, include_resolved_values: bool = False
    ) -> Answer:
        """``GET jobs/runs/get``: the run's state, tasks (one entry per attempt) and page URL, every
        page of them; ``include_history`` adds ``repair_history`` (the original run, then each repair),
        ``include_resolved_values`` each task's parameters resolved. For a for-each task's run id,
        its ``iterations``, every page of them."""
        params: dict[str, Any] = {"run_id": run_id}
        if include_history:
            params["include_history"] = "true"
        if include_resolved_values:
            params["include_resolved_values"] = "true"
        return self._linked(self._whole("jobs/runs/get", params, what=f"getting run {run_id}"))

    def repair_run(
        self,
        run_id: int,
        *,
        rerun_tasks: Sequence[str] | None = None,
        rerun_all_failed_tasks: bool = False,
        rerun_dependent_tasks: bool = False,
        latest_repair_id: int | None = None,
        notebook_params: Mapping[str, str] | None = None,
        job_parameters: Mapping[str, str] | None = None,
        idempotency_token: str | None = None,
        performance_target: str | None = None,
    ) -> Answer:
        """``POST jobs/runs/repair``: rerun tasks of an ended run; answers ``{"repair_id": N}``.

        Like ``run_now`` it always carries an idempotency token (one is made when none is given), so a
        retried repair is the same repair. ``latest_repair_id`` is required once the run was repaired.
        """
        body: dict[str, Any] = {
            "run_id": run_id,
            "idempotency_token": idempotency_token or new_idempotency_token(),
        }
        if rerun_tasks:
            body["rerun_tasks"] = list(rerun_tasks)
        if rerun_all_failed_tasks:
            body["rerun_all_failed_tasks"] = True
        if rerun_dependent_tasks:
            body["rerun_dependent_tasks"] = True
        if latest_repair_id is not None:
            body["latest_repair_id"] = latest_repair_id
        if notebook_params:
            body["notebook_params"] = dict(notebook_params)
        if job_parameters:
            body["job_parameters"] = dict(job_parameters)
        if performance_target:
            body["performance_target"] = performance_target
        try:
            return self._request("POST", "jobs/runs/repair", json=body, what=f"repairing run {run_id}")
        except PermissionDenied as exc:
            raise exc.refused(f"repair run {run_id}", self._job_of(run_id)) from None

    def cancel_all_runs(self, job_id: int, *, all_queued_runs: bool = False) -> None:
        """``POST jobs/runs/cancel-all``: cancel the job's active runs (asynchronous, like a cancel)."""
        body: dict[str, Any] = {"job_id": job_id}
        if all_queued_runs:
            body["all_queued_runs"] = True
        try:
            self._request(
                "POST", "jobs/runs/cancel-all", json=body, what=f"cancelling the runs of job {job_id}"
            )
        except PermissionDenied as exc:
            raise exc.refused(f"cancel the runs of job {job_id}", f"job {job_id}") from None

    def cancel_run(self, run_id: int) -> None:
        """``POST jobs/runs/cancel``. Cancelling is asynchronous: the run ends shortly after."""
        try:
            self._request(
                "POST", "jobs/runs/cancel", json={"run_id": run_id}, what=f"cancelling run {run_id}"
            )
        except PermissionDenied as exc:
            raise exc.refused(f"cancel run {run_id}", self._job_of(run_id)) from None

    def _job_of(self, run_id: int) -> str:
        """``job 12 ('name')`` for a refused action on a run: one ``runs/get``, on that error path only
        (credentials that may not run a job may still view it)."""
        try:
            run = self._request(
                "GET", "jobs/runs/get", params={"run_id": run_id}, what=f"getting run {run_id}"
            )
        except DatabricksError:
            return f"the job of run {run_id}"
        job, name = run.get("job_id"), run.get("run_name")
        if job is None:
            return f"the job of run {run_id}"
        return f"job {job} ({name!r})" if name else f"job {job}"

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
        page = self._request("GET", "jobs/runs/list", params=params, what="listing runs")
        for run in page.get("runs") or ():
            if isinstance(run, dict):
                self._linked(run)
        return page

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

    def _linked(self, run: Answer | dict[str, Any]) -> Any:
        """``run`` (and its tasks and for-each iterations) with a ``run_page_url`` that is an http(s)
        link: one the answer gives that is anything else (``javascript:``, say) is rebuilt from the host."""
        parts = [*(run.get("tasks") or ()), *(run.get("iterations") or ())]
        for item in [run, *(t for t in parts if isinstance(t, dict))]:
            url = item.get("run_page_url")
            if url is not None and web_link(url) is None:
                job, run_id = item.get("job_id", run.get("job_id")), item.get("run_id")
                item["run_page_url"] = f"{self.host}/#job/{job}/run/{run_id}"
        return run

    # -- the one request path --------------------------------------------------------------
    @contextlib.contextmanager
    def until(self, deadline: float | None) -> Iterator[None]:
        """Within the block, this thread's requests stop waiting at ``deadline`` (the client's
        monotonic clock): no retry, and no wait in the rate limiter, ends past it.

        A request past its deadline raises :class:`~dbx_magic.errors.WaitTimeout`. Deadlines nest (the
        sooner wins); other threads are not affected.
        """
        previous = getattr(self._local, "deadline", None)
        if deadline is not None and previous is not None:
            deadline = min(deadline, previous)
        self._local.deadline = deadline if deadline is not None else previous
        try:
            yield
        finally:
            self._local.deadline = previous

    def _whole(self, endpoint: str, params: Mapping[str, Any], *, what: str) -> Answer:
        """A ``GET`` whose arrays 2.2 pages (100 entries at most): follow ``next_page_token`` and
        merge the pages into one answer, as 2.1 gives it. A page token that comes again, or a page
        that brings no entry not already read, ends the reading: the answer keeps what was read and
        says so in its ``warnings``; no entry is merged twice."""
        answer = self._request("GET", endpoint, params=params, what=what)
        pages = _Pages(answer)
        token = answer.pop("next_page_token", None)
        while token:
            problem = pages.turn(token)
            if problem is None:
                page = self._request("GET", endpoint, params={**params, "page_token": token}, what=what)
                token = page.pop("next_page_token", None)
                answer.retry_after = page.retry_after
                added = pages.merged(answer, page, ())
                problem = None if added or not token else "brought a page with nothing new"
            if problem:
                answer.warnings += (
                    f"While {what}, the workspace's pages {problem}: what they held is used.",
                )
                log.warning("%s", answer.warnings[-1])
                break
        answer.pop("has_more", None)
        return answer

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
        deadline: float | None = getattr(self._local, "deadline", None)
        started = self.clock.monotonic()
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if not self.rate_limiter.acquire_by(deadline):
                raise _past_deadline(
                    what, "waiting for this client's own request-rate limit", attempt - 1, started, self
                )
            answer, failure, retry_after = self._attempt(method, endpoint, url, params, json, what, attempt)
            if answer is not None:
                return answer
            assert failure is not None
            # A refused token is renewed once per request, and the request sent once more.
            if (
                not refreshed
                and isinstance(failure, ApiError)
                and failure.status_code is not None
                and token_rejected(failure.status_code, failure.api_message or "")
                and self._auth.refresh()
            ):
                refreshed = True
                log.debug("%s %s: the token was refused; retrying with a new one", method, endpoint)
                continue
            if isinstance(failure, ApiError) and failure.status_code not in RETRY_STATUSES:
                raise failure
            spent = self.clock.monotonic() - started
            wait = policy.wait(attempt, retry_after)
            if (
                attempt >= policy.attempts
                or spent + wait > policy.budget
                or (retry_after is not None and retry_after > policy.max_retry_after)
            ):
                raise _exhausted(failure, attempt, spent, retry_after)
            if deadline is not None and self.clock.monotonic() + wait > deadline:
                raise _past_deadline(what, _brief(failure), attempt, started, self, retry_after)
            log.debug("%s %s: retry %d in %.2f s", method, endpoint, attempt, wait)
            self.clock.sleep(wait)

    def _attempt(
        self,
        method: str,
        endpoint: str,
        url: str,
        params: Mapping[str, Any] | None,
        json: Mapping[str, Any] | None,
        what: str,
        attempt: int,
    ) -> tuple[Answer | None, DatabricksError | None, float | None]:
        """One HTTP attempt: the answer, or the failure (with the ``Retry-After`` that came with it).

        Whatever ``requests`` raises is turned into one of our errors *after* its except block, so no
        exception of theirs (which holds the request, its headers and so the token) is ever chained.
        """
        response: requests.Response | None = None
        problem: BaseException | None = None
        try:
            response = self._session.request(method, url, params=params, json=json, timeout=self.timeout)
        except DatabricksError:  # the token provider's own, already one sentence
            raise
        except (requests.RequestException, ValueError) as exc:  # ValueError: urllib3 refusing a URL or header
            problem = exc
        if response is None:
            kind = type(problem).__name__
            del problem  # its traceback holds the prepared request
            log.debug("%s %s -> no answer (%s), attempt %d", method, endpoint, kind, attempt)
            return None, self._transport_failure(kind, what), None
        # requests' own measure: no clock is read between an answer and its return (an interrupt
        # there would lose a launched run's id)
        log.debug(
            "%s %s -> %d (%.0f ms), attempt %d",
            method,
            endpoint,
            response.status_code,
            response.elapsed.total_seconds() * 1000,
            attempt,
        )
        body, parsed, text = _read(response, self._auth.secrets())
        if response.status_code < 400:
            if parsed and isinstance(body, dict):
                answer = Answer(body)
                answer.retry_after = _retry_after(response)
                return answer, None, None
            return (
                None,
                TransportError(
                    f"{what.capitalize()} failed: {self.host} answered with a body that is not "
                    "a JSON object (a proxy or login page?); check that the host is your "
                    "workspace URL, then try again.",
                    status_code=response.status_code,
                ),
                None,
            )
        failure = error_from_response(
            response.status_code,
            body if parsed else None,
            host=self.host,
            what=what,
            fallback_text="" if parsed else text,
        )
        return None, failure, _retry_after(response)

    def _transport_failure(self, kind: str, what: str) -> DatabricksError:
        """The error for an attempt that got no usable answer (``kind``: the requests exception's name)."""
        if kind in _RETRIED_TRANSPORT or kind in ("ConnectTimeout", "ReadTimeout", "Timeout"):
            verb = "timed out" if "Timeout" in kind else "failed"
            if kind in ("ContentDecodingError", "ChunkedEncodingError"):
                return TransportError(
                    f"{what.capitalize()} failed: {self.host} sent an answer that could not be decoded "
                    f"({kind}, a proxy in the way?); check the host and your network, then try again."
                )
            return TransportError(
                f"{what.capitalize()} failed: the connection to {self.host} {verb} "
                f"({kind}); check the host and your network, then try again."
            )
        if kind == "SSLError":
            raise TransportError(
                f"{what.capitalize()} failed: the TLS handshake with {self.host} failed "
                f"({kind}); if the host serves plain HTTP (a local sandbox), give it "
                "as http://HOST:PORT, otherwise check its certificate."
            )
        if kind in ("InvalidURL", "InvalidSchema", "MissingSchema", "URLRequired"):
            raise InvalidInput(f"The host {self.host!r} is not a usable URL ({kind}): fix DATABRICKS_HOST.")
        raise TransportError(
            f"{what.capitalize()} failed: the request could not be sent ({kind}); check the host, "
            "the token and the proxy settings, then try again."
        )


_RETRIED_TRANSPORT = frozenset(
    {"ConnectionError", "ProxyError", "ContentDecodingError", "ChunkedEncodingError", "RetryError"}
)


def _read(response: requests.Response, secrets: tuple[str, ...]) -> tuple[Any, bool, str]:
    """The body parsed as JSON (and whether it was), and its text; any secret it echoes is masked."""
    content = response.content
    if not content:
        return None, False, ""
    masked = [s for s in secrets if len(s) >= 8 and s.encode("utf-8", "replace") in content]
    if not masked:
        try:
            return response.json(), True, response.text
        except ValueError:
            return None, False, response.text
    text = response.text
    for secret in masked:
        text = text.replace(secret, "***")
    log.debug("an answer echoed the token; it was masked")
    try:
        return json_module.loads(text), True, text
    except ValueError:
        return None, False, text


def merge_page(whole: dict[str, Any], page: Mapping[str, Any]) -> int:
    """Add a later page of a paged answer to ``whole``: its arrays extend those already read (in
    nested objects too, as ``settings.tasks``), leaving out entries already there; other fields fill
    only what is missing. Returns how many entries it added."""
    return _Pages(whole).merged(whole, page, ())


class _Pages:
    """The reading of one paged answer: the page tokens followed and the entries already merged."""

    def __init__(self, whole: dict[str, Any]) -> None:
        self.tokens: set[str] = set()
        self.seen: dict[tuple[str, ...], set[str]] = {}
        self._index(whole, ())

    def _index(self, node: Mapping[str, Any], path: tuple[str, ...]) -> None:
        for key, value in node.items():
            where = (*path, key)
            if isinstance(value, list):
                self.seen[where] = {_identity(v) for v in value}
            elif isinstance(value, dict):
                self._index(value, where)

    def turn(self, token: Any) -> str | None:
        """None when ``token`` leads to a page not read yet; else why the reading ends."""
        key = str(token)
        if key in self.tokens:
            return f"came back to a page already read (page token {_short(key)} repeated)"
        if len(self.tokens) >= _MAX_PAGES:
            return f"went on past {_MAX_PAGES} pages"
        self.tokens.add(key)
        return None

    def merged(self, whole: dict[str, Any], page: Mapping[str, Any], path: tuple[str, ...]) -> int:
        added = 0
        for key, value in page.items():
            mine = whole.get(key)
            if isinstance(value, list) and isinstance(mine, list):
                seen = self.seen.setdefault((*path, key), set())
                for item in value:
                    identity = _identity(item)
                    if identity not in seen:
                        seen.add(identity)
                        mine.append(item)
                        added += 1
            elif isinstance(value, dict) and isinstance(mine, dict):
                added += self.merged(mine, value, (*path, key))
            elif key not in whole:
                whole[key] = value
                self._index({key: value}, path)
                added += len(value) if isinstance(value, list) else 0
        return added


def _identity(entry: Any) -> str:
    return json_module.dumps(entry, sort_keys=True, default=str)


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _brief(failure: DatabricksError) -> str:
    """The last failure in a few words, for a message about something else (the timeout)."""
    if isinstance(failure, ApiError):
        return f"the last answer was HTTP {failure.status_code}: {(failure.api_message or '').rstrip('.')}"
    reason = failure.message.split(" failed: ", 1)[-1].split(";", 1)[0]
    return f"the last attempt: {reason}"


def _past_deadline(
    what: str,
    reason: str,
    attempts: int,
    started: float,
    client: DatabricksClient,
    retry_after: float | None = None,
) -> WaitTimeout:
    return WaitTimeout(
        f"The timeout ran out while {what} ({reason.rstrip('.')}).",
        attempts=attempts if attempts > 1 else None,
        elapsed=client.clock.monotonic() - started,
        retry_after=retry_after,
    )


def _checked_timeout(timeout: Any) -> float | tuple[float, float]:
    """A request timeout as requests takes it: positive finite seconds, or a (connect, read) pair."""
    values = timeout if isinstance(timeout, tuple) else (timeout,)
    if len(values) in (1, 2) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and v > 0 and math.isfinite(v) for v in values
    ):
        return timeout  # type: ignore[no-any-return]
    raise InvalidInput(
        f"The client timeout {timeout!r} is not a positive number of seconds or a (connect, read) pair "
        "of them: pass e.g. timeout=(10, 60)."
    )


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
