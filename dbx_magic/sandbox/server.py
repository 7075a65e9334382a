"""The sandbox's HTTP face: a loopback server thread, authentication, fault injection, a request log.

Every request takes one lock around the workspace (and the log and the fault queues); the server writes
nothing to stderr. See the package docstring for how to use :class:`Sandbox`.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dbx_magic.sandbox import api
from dbx_magic.sandbox.samples import add_samples
from dbx_magic.sandbox.store import Store
from dbx_magic.sandbox.workspace import PhaseLike, Task, Workspace

FAULT_KINDS = (
    "status",
    "html",
    "invalid_json",
    "delay",
    "drop",
    "drop_after",
    "missing_fields",
    "echo_headers",
    "bad_gzip",
    "zero_id",
    "text_id",
)
"""What :meth:`Sandbox.inject` can do to a request."""

_API_PATH = re.compile(r"^/api/(2\.[012])/(.+?)/?$")
MAX_BODY_BYTES = 10 * 1024 * 1024
"""Bodies over this are refused with 413 before a byte of them is read."""
REQUEST_QUEUE_SIZE = 512
"""The listen backlog: hundreds of clients connecting at once are all accepted, none reset."""
_WELL_KNOWN = "/.well-known/databricks-config"
_ERROR_CODES = {
    429: ("TOO_MANY_REQUESTS", "Too many requests. Please wait a moment and try again."),
    500: ("INTERNAL_ERROR", "Internal server error."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable."),
    504: ("DEADLINE_EXCEEDED", "The request timed out."),
}
_MISSING_FIELDS = {
    "jobs/runs/get": ("state", "status"),
    "jobs/run-now": ("run_id", "number_in_job"),
    "jobs/get": ("settings",),
    "jobs/list": ("jobs",),
    "jobs/runs/list": ("runs",),
    "jobs/runs/get-output": ("metadata", "notebook_output", "error", "error_trace"),
}
# The id an answer is about, which ``zero_id`` and ``text_id`` spoil.
_ID_FIELDS = {"jobs/run-now": "run_id", "jobs/runs/get": "run_id", "jobs/get": "job_id"}
_HTML = (
    "<html>\r\n<head><title>{0} {1}</title></head>\r\n<body>\r\n<center><h1>{0} {1}</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the sandbox saw it.

    Attributes:
        method: ``GET``, ``POST``...
        path: the URL path, e.g. ``/api/2.2/jobs/runs/get``.
        query: the query parameters (the last value of each).
        body: the JSON body, the raw text if it was not JSON, or None when empty.
        status: the HTTP status sent, None when the connection was dropped.
        timestamp: the sandbox clock (monotonic seconds) when the request arrived.
        fault: the injected fault kind applied to it, if any.
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int | None
    timestamp: float
    fault: str | None = None


@dataclass
class _Fault:
    kind: str
    remaining: int
    status: int
    retry_after: int | float | str | None
    delay: float
    on_arrival: Callable[[], Any] | None = None


class Sandbox:
    """An emulated Databricks workspace (Jobs API) served on ``127.0.0.1``.

    Args:
        speed: all run durations are divided by it (``speed=10``: ten times faster).
        clock: monotonic seconds (default ``time.monotonic``); pass a fake one to drive time by hand.
        port: the port to listen on; 0 picks a free one.
        samples: add the sample jobs (see :mod:`dbx_magic.sandbox.samples`).
        epoch: the wall-clock time (epoch seconds) that ``clock()`` reads at construction, from which
            every ``start_time``/``end_time`` is computed; default ``time.time()`` (read once). With both
            ``clock`` and ``epoch`` given the sandbox never reads the real time.
        data: a directory that keeps the token and the runs (see :mod:`dbx_magic.sandbox.store`): a
            sandbox started again on it has every run, and run ids go on from there.
        first_run_id: the first run id to give (a new sandbox that must not reuse an old one's ids).
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        clock: Callable[[], float] | None = None,
        port: int = 0,
        samples: bool = True,
        epoch: float | None = None,
        data: str | os.PathLike[str] | None = None,
        first_run_id: int | None = None,
    ) -> None:
        self.store = Store(data) if data is not None else None
        self.token = self.store.token() if self.store else "dsbx-" + secrets.token_hex(16)
        self.clock = clock or time.monotonic
        self.workspace = Workspace(self.clock, speed, epoch, first_run_id=first_run_id)
        self.lock = threading.Lock()
        self._logged = threading.Condition(self.lock)
        self._port = port
        self._log: list[RequestRecord] = []
        self._faults: dict[str, deque[_Fault]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        if samples:
            add_samples(self.workspace)
        if self.store is not None:
            self.store.restore(self.workspace)

    @property
    def speed(self) -> float:
        """Run durations are divided by it; setting it changes the runs started from then on."""
        return self.workspace.speed

    @speed.setter
    def speed(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"speed must be positive, not {value!r}")
        with self.lock:
            self.workspace.speed = float(value)

    @property
    def next_run_id(self) -> int:
        """The run id the next run (or task run, or repair) will get."""
        with self.lock:
            return self.workspace.next_run_id

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        """Start listening (returns at once, the server ready). Idempotent."""
        if self._server is None:
            self._stopping.clear()
            server = _Server(("127.0.0.1", self._port), _Handler)
            server.sandbox = self
            self._server = server
            with self.lock:
                self.workspace.base_url = self.url
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.5},
                name=f"dbx-magic-sandbox-{server.server_address[1]}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and the socket, and join the thread. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():  # wake the accept loop at once rather than at its next poll
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            stopper.join(0.01)
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on (raises RuntimeError before :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running: call start() or use it in a `with`")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The workspace host, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ jobs
    @property
    def jobs(self) -> dict[str, int]:
        """Job name -> job id, for every job in the workspace."""
        with self.lock:
            return {job.name: job.job_id for job in self.workspace.jobs.values()}

    def job_id(self, name: str) -> int:
        """The id of the job with this name (KeyError if there is none)."""
        jobs = self.jobs
        if name not in jobs:
            raise KeyError(f"no job named {name!r}; jobs: {sorted(jobs)}")
        return jobs[name]

    def run_ids(self, job: int | str) -> list[int]:
        """The ids of a job's runs (its history included), oldest first."""
        job_id = self.job_id(job) if isinstance(job, str) else job
        with self.lock:
            return [run.run_id for run in self.workspace.jobs[job_id].runs]

    def add_job(
        self,
        name: str,
        *,
        tasks: Sequence[Task] | None = None,
        parameters: Mapping[str, str] | None = None,
        max_concurrent_runs: int = 1,
        queue: bool = True,
        script: Sequence[PhaseLike] | None = None,
        history: int = 0,
        duration: float = 2.0,
        runnable: bool = True,
    ) -> int:
        """Add a job; returns its id.

        Args:
            name: the job name.
            tasks: its notebook tasks; default one task ``main`` running ``duration`` seconds.
            parameters: job-level parameters, name -> default.
            max_concurrent_runs: the concurrency limit (0 skips every run).
            queue: queue runs over the limit (else they are SKIPPED).
            script: play these phases instead of the normal life cycle (package docstring).
            history: how many past successful runs (one a day, durations within 10%) to add; their
                tasks' notebooks run once for each set of parameters, not once a run.
            duration: seconds the default task runs (ignored when ``tasks`` is given).
            runnable: False: the token may view the job but run-now, cancel and repair get 403.
        """
        if tasks is None:
            tasks = [Task("main", f"/Workspace/Shared/{name}", duration=duration)]
        with self.lock:
            job = self.workspace.add_job(
                name,
                tasks=tasks,
                parameters=parameters,
                max_concurrent_runs=max_concurrent_runs,
                queue=queue,
                script=script,
                history=history,
                runnable=runnable,
            )
            return job.job_id

    def add_notebook(self, path: str, source: str | None) -> None:
        """Serve ``source`` at ``workspace/export?path=<path>``; None makes the notebook unreadable (403)."""
        with self.lock:
            self.workspace.add_notebook(path, source)

    def run_page(self, run_id: int) -> str:
        """The URL of a run's (or task run's) page on this sandbox, as ``run_page_url`` gives it."""
        with self.lock:
            if run_id in self.workspace.task_runs:
                job_id = self.workspace.task_runs[run_id][0].job.job_id
            elif run_id in self.workspace.runs:
                job_id = self.workspace.runs[run_id].job.job_id
            else:
                raise KeyError(f"no run {run_id}")
            return api.page_url(self.workspace, job_id, run_id)

    # ------------------------------------------------------------ faults and log
    def inject(
        self,
        endpoint: str,
        kind: str,
        *,
        count: int = 1,
        status: int | None = None,
        retry_after: int | float | str | None = None,
        delay: float | None = None,
        on_arrival: Callable[[], Any] | None = None,
    ) -> None:
        """Make the next ``count`` requests to ``endpoint`` misbehave.

        Args:
            endpoint: e.g. ``"jobs/runs/get"`` (either API prefix matches, both accepted here), or
                ``"*"`` for any request.
            kind: one of :data:`FAULT_KINDS` (see the package docstring).
            count: how many requests in a row get the fault.
            status: the HTTP status for ``status`` (default 503) and ``html`` (default 502).
            retry_after: a ``Retry-After`` header value for ``status`` and ``html``.
            delay: seconds (real, not scaled by speed) to wait for ``delay``.
            on_arrival: called (on the server's thread) as each faulted request arrives, before the
                fault is played: a test's hook for "while this request is in flight".
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {FAULT_KINDS}")
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        if kind == "delay" and (delay is None or delay < 0):
            raise ValueError("a 'delay' fault needs delay=<seconds>")
        endpoint = _normalise(endpoint)
        known = {*api.ROUTES, "*", _WELL_KNOWN.strip("/")}
        if endpoint not in known:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {sorted(known)}")
        default = 502 if kind in ("html", "echo_headers") else 503
        fault = _Fault(kind, count, status or default, retry_after, delay or 0.0, on_arrival)
        with self.lock:
            self._faults.setdefault(endpoint, deque()).append(fault)

    def _take_fault(self, endpoint: str | None) -> _Fault | None:
        """Consume one pending fault for this endpoint (or ``"*"``), if any."""
        with self.lock:
            for key in (endpoint, "*"):
                queue = self._faults.get(key) if key else None
                if queue:
                    fault = queue[0]
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        queue.popleft()
                    return fault
        return None

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log, oldest first (a copy)."""
        with self.lock:
            return list(self._log)

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self.lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        """Append to the request log (and wake whoever waits for it)."""
        with self._logged:
            self._log.append(record)
            self._logged.notify_all()

    def wait_for_request(self, endpoint: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait (up to ``timeout`` real seconds) until ``count`` requests to ``endpoint`` are logged.

        For tests: a request held by a ``delay`` fault is logged once it has been processed.
        """
        name = _normalise(endpoint)

        def done() -> bool:
            return sum(1 for r in self._log if _normalise(r.path) == name) >= count

        with self._logged:
            return self._logged.wait_for(done, timeout)

    def _dispatch(
        self, method: str, path: str, query: dict[str, str], raw: bytes, authorization: str
    ) -> tuple[int, Any]:
        """Answer one request: (status, JSON payload), or (200, :class:`_Html`) for a page."""
        if path == _WELL_KNOWN:
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for '{path}'"}
        match = _API_PATH.match(path)
        if match is None and method in ("GET", "HEAD"):
            with self.lock:
                html = api.html_page(self.workspace, path)
            if html is not None:
                return 200, _Html(html)
        refused = self._authenticate(authorization)
        if refused is not None:
            return refused
        if match is None:
            return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for '{path}'"}
        try:
            body = api.parse_body(raw) if method == "POST" else None
            with self.lock:
                return 200, api.handle(self.workspace, method, match.group(2), query, body, match.group(1))
        except api.ApiError as exc:
            return exc.status, exc.body()
        except Exception as exc:  # a sandbox bug: answer as the service's 500s do
            return 500, {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}

    def _authenticate(self, authorization: str) -> tuple[int, Any] | None:
        """None when the request carries ``Bearer <token>``; else the service's 401 or 403."""
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return 401, {"error_code": 401, "message": UNAUTHENTICATED}
        if not hmac.compare_digest(credential.encode(), self.token.encode()):
            return 403, {"error_code": 403, "message": "Invalid access token."}
        return None


UNAUTHENTICATED = "Credential was not sent or was of an unsupported type for this API."
"""The message of the 401 for a request with no ``Authorization: Bearer ...`` header."""


class _Html(str):
    """A page to send as ``text/html``."""


def _normalise(endpoint: str) -> str:
    endpoint = endpoint.strip().strip("/")
    match = _API_PATH.match("/" + endpoint)
    return match.group(2) if match else endpoint


class _BadBody(Exception):
    """A request whose body cannot be read: answered with this status and message, then closed."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = REQUEST_QUEUE_SIZE
    sandbox: Sandbox

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log nothing: a client that went away is no news, and every request is answered in JSON."""

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            (self._connections.add if add else self._connections.discard)(conn)

    def close_connections(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "dbx-magic-sandbox"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection frees its thread after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing (the base class writes every request to stderr)."""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def __getattr__(self, name: str) -> Callable[[], None]:
        """``do_<METHOD>`` for every method: HEAD, OPTIONS, TRACE, made-up ones... all get JSON."""
        if name.startswith("do_"):
            return lambda: self._serve_safely(name[3:])
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own refusals (bad request line, header too long...) as the API's JSON."""
        if self.request_version == "HTTP/0.9":  # an unparsable request line: still send a status line
            self.request_version = "HTTP/1.0"
        error_code = _ERROR_CODES.get(code, (_code(code), ""))[0]
        body = json.dumps({"error_code": error_code, "message": message or _phrase(code)}).encode()
        self.close_connection = True
        self._send(code, body, "application/json", {"Connection": "close"})

    def _serve_safely(self, method: str) -> None:
        try:
            self._serve(method)
        except OSError:  # the client went away
            self.close_connection = True
        except Exception as exc:  # a sandbox bug: still a JSON answer, and no traceback on stderr
            body = {"error_code": "INTERNAL_ERROR", "message": f"{type(exc).__name__}: {exc}"}
            self.close_connection = True
            self._send(500, json.dumps(body).encode(), "application/json", {"Connection": "close"})

    def _read_body(self) -> bytes:
        """The body as ``Content-Length`` says; raises :class:`_BadBody` rather than guess or over-read."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise _BadBody(411, "LENGTH_REQUIRED", "A request body needs a Content-Length header.")
        length = (self.headers.get("Content-Length") or "").strip()
        if not length:
            return b""
        if not (length.isascii() and length.isdigit()):
            raise _BadBody(400, "MALFORMED_REQUEST", f"Invalid Content-Length header: {length[:40]}")
        size = int(length)
        if size > MAX_BODY_BYTES:
            raise _BadBody(
                413,
                "REQUEST_ENTITY_TOO_LARGE",
                f"The request body ({size} bytes) exceeds the limit of {MAX_BODY_BYTES} bytes.",
            )
        return self.rfile.read(size)

    def _serve(self, method: str) -> None:
        sandbox = self.server.sandbox
        split = urlsplit(self.path)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        stamp = sandbox.clock()
        try:
            raw = self._read_body()
        except _BadBody as bad:
            sandbox._record(RequestRecord(method, path, query, None, bad.status, stamp))
            body = json.dumps({"error_code": bad.error_code, "message": bad.message}).encode()
            self.close_connection = True
            self._send(bad.status, body, "application/json", {"Connection": "close"})
            return
        match = _API_PATH.match(path)
        fault = sandbox._take_fault(match.group(2) if match else path.strip("/"))
        kind = fault.kind if fault else None

        def log(status: int | None) -> None:
            record = RequestRecord(method, path, query, _logged(raw), status, stamp, kind)
            sandbox._record(record)

        if fault is not None and fault.on_arrival is not None:
            fault.on_arrival()
        if fault is not None and fault.kind == "delay":
            sandbox._stopping.wait(fault.delay)
        if fault is not None and fault.kind == "echo_headers":
            log(fault.status)
            self._echo(fault, method, path)
            return
        if fault is not None and fault.kind in ("drop", "status", "html"):
            log(None if fault.kind == "drop" else fault.status)
            self._play(fault)
            return
        status, payload = sandbox._dispatch(method, path, query, raw, self.headers.get("Authorization", ""))
        if kind == "drop_after":
            log(None)
            self.close_connection = True
            return
        if isinstance(payload, _Html):
            log(status)
            self._send(status, payload.encode(), "text/html; charset=utf-8", {})
            return
        data, extra = _spoiled(kind, match.group(2) if match else "", status, payload)
        log(status)
        self._send(status, data, "application/json", extra)

    def _echo(self, fault: _Fault, method: str, path: str) -> None:
        """An error whose message echoes the request's headers, as some proxies' do; not processed."""
        headers = "; ".join(f"{name}: {value}" for name, value in self.headers.items())
        message = f"Upstream refused {method} {path} (request headers: {headers})"
        code, _ = _ERROR_CODES.get(fault.status, (_code(fault.status), ""))
        extra = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        self._send(
            fault.status,
            json.dumps({"error_code": code, "message": message}).encode(),
            "application/json",
            extra,
        )

    def _play(self, fault: _Fault) -> None:
        """Answer (or drop) a request with a ``drop``, ``status`` or ``html`` fault; not processed."""
        if fault.kind == "drop":
            self.close_connection = True
            return
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        if fault.kind == "html":
            page = _HTML.format(fault.status, _phrase(fault.status)).encode()
            self._send(fault.status, page, "text/html", headers)
            return
        code, message = _ERROR_CODES.get(fault.status, (_code(fault.status), _phrase(fault.status)))
        body = json.dumps({"error_code": code, "message": message}).encode()
        self._send(fault.status, body, "application/json", headers)

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # the client gave up (a read timeout): nothing to tell it
            self.close_connection = True


def _spoiled(kind: str | None, endpoint: str, status: int, payload: Any) -> tuple[bytes, dict[str, str]]:
    """The answer's bytes and extra headers, spoiled as a processed fault says (200 answers only)."""
    if status == 200 and isinstance(payload, dict):
        if kind == "missing_fields":
            for name in _MISSING_FIELDS.get(endpoint, ()):
                payload.pop(name, None)
        field = _ID_FIELDS.get(endpoint)
        if kind in ("zero_id", "text_id") and field:
            payload[field] = 0 if kind == "zero_id" else "not-a-number"
    data = json.dumps(payload).encode()
    if kind == "invalid_json" and status == 200:
        data = data[: len(data) // 2] if len(data) > 4 else b'{"run'
    # bad_gzip: the answer says it is gzip, and is not
    return data, {"Content-Encoding": "gzip"} if kind == "bad_gzip" and status == 200 else {}


def _logged(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _code(status: int) -> str:
    return _phrase(status).upper().replace(" ", "_").replace("-", "_")


def serve(argv: list[str] | None = None) -> int:
    """Run a sandbox in the foreground until Ctrl-C: ``python -m dbx_magic sandbox [--port N] [--data DIR]``.

    Args:
        argv: the command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 when stopped by Ctrl-C, 1 when the port cannot be used.
    """
    parser = argparse.ArgumentParser(
        prog="python -m dbx_magic sandbox",
        description="Serve an emulated Databricks workspace (Jobs API, sample jobs) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    parser.add_argument("--speed", type=float, default=1.0, help="run durations divided by this")
    parser.add_argument(
        "--data", metavar="DIR", help="keep the token and the runs in DIR (they outlive this)"
    )
    args = parser.parse_args(argv)
    if not args.speed > 0:
        parser.error("--speed must be a positive number")
    sandbox = Sandbox(speed=args.speed, port=args.port, data=args.data)
    try:
        sandbox.start()
    except OSError as exc:
        print(f"Cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        print(f"Sandbox Databricks workspace with {len(sandbox.jobs)} sample jobs at {sandbox.url}")
        print(f"export DATABRICKS_HOST={sandbox.url}")
        print(f"export DATABRICKS_TOKEN={sandbox.token}")
        print("Press Ctrl-C to stop it.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    print("Sandbox stopped.", flush=True)
    return 0
