"""Shared fixtures: a fake workspace for HTTP-level tests; the fake clock, the sandbox on it, and the
interrupt helpers for end-to-end ones."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from dbx_magic import DatabricksClient
from dbx_magic.api.client import RetryPolicy
from dbx_magic.run.polling import PollPolicy
from dbx_magic.sandbox import Sandbox
from dbx_magic.testing import ManualClock

# jsonschema (under nbformat and nbclient) imports its optional IRI checker, rfc3987_syntax, whenever it
# is installed (the browser extra's jupyter-events brings it), and that module builds 38 grammars at
# import: about 3 s of CPU in every xdist worker. No schema the suite validates has an IRI format, so
# the workers go without that one checker (jsonschema skips it when the import fails).
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]

# For tests on the real clock against a fast sandbox, where what is tested is not the pace of polling:
# the first poll 0.07 s after a launch instead of 1.5 s, none more than 0.5 s apart (the pace itself is
# tested on the fake clock, in test_polling and benchmarks/bench_polling.py).
BRISK = PollPolicy(pace=0.5, floor=0.02)


def fresh_shell() -> Any:
    """IPython's shell, its namespace emptied as a fresh notebook's is.

    The shell is the process's one instance, shared by every module (and set up again when a worker
    comes back to a module after another's tests). A handle a test left in its namespace (of an earlier
    sandbox, whose first run had the same id as the next sandbox's) would otherwise join the next
    session's board: its watcher is taken in after every cell, as a notebook's own handles are.
    """
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    return shell


def brisk_shell() -> Any:
    """A fresh shell with the extension loaded and a sandbox at speed 20, its runs polled BRISK."""
    shell = fresh_shell()
    shell.run_line_magic("load_ext", "dbx_magic")
    shell.magics_manager.registry["DbxMagics"].session.policy = BRISK  # before its watcher is made
    shell.run_line_magic("dbx_sandbox", "--speed 20")
    return shell


HOST = "https://adb-1234567890123456.7.azuredatabricks.net"
# Recognisable, obviously fake: the hygiene tests look for it everywhere it must not be.
TOKEN = "dbx-test-SECRET-token-0123456789"
API = f"{HOST}/api/2.2/jobs"


class Sleeps(list):
    """A stand-in for time.sleep that records the waits instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> DatabricksClient:
    return DatabricksClient(HOST, TOKEN, sleep=sleeps, retry=RetryPolicy(jitter=0.0))


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def ordered() -> Iterator[responses.RequestsMock]:
    """A fake workspace that answers in exactly the order the test registered, every answer used once:
    for tests where the order is the point (a retry sequence, a launch then its polls)."""
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=responses.registries.OrderedRegistry
    ) as mock:
        yield mock


@pytest.fixture(autouse=True)
def dbx_magic_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every test (and every kernel or process it starts) keeps its run journal in a directory of its
    own, never in the user's."""
    home = tmp_path_factory.mktemp("dbx-home")
    monkeypatch.setenv("DBX_MAGIC_HOME", str(home))
    return home


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


# -- one fake clock, one sandbox factory, one interrupt helper ---------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    """The one fake clock: time moves only when something sleeps on it (or ``clock.advance``)."""
    return ManualClock()


@pytest.fixture
def make_sandbox(clock: ManualClock) -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes on the fake clock (over real loopback HTTP); all are stopped after the test.

    ``make_sandbox(speed=1, **kwargs)`` returns a started Sandbox whose runs move with ``clock``.
    """
    started: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("clock", clock.monotonic)
        kwargs.setdefault("epoch", clock.wall())
        sandbox = Sandbox(**kwargs).start()
        started.append(sandbox)
        return sandbox

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A sandbox with the sample jobs, on the fake clock."""
    return make_sandbox()


@pytest.fixture
def sandbox_client(sandbox: Sandbox, clock: ManualClock) -> DatabricksClient:
    """A client of ``sandbox`` that waits on the fake clock (retries, rate limiter and polls)."""
    return DatabricksClient(sandbox.url, sandbox.token, clock=clock, retry=RetryPolicy(jitter=0.0))


# -- how many workers ----------------------------------------------------------------------------------


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default in pyproject): most tests wait on the sandbox's runs, kernels and
    processes rather than compute, so eight workers overlap those waits on this 2-core machine (the
    suite without the browser, measured side by side: 49-58 s with eight workers, 54-56 s with seven,
    58-61 s with six; 83 s with four). The browser tests each drive a Jupyter server and Chromium: with
    them in the run, four workers, and two for them alone."""
    marks = (config.getoption("markexpr") or "").replace(" ", "")
    if marks == "browser":
        return 2
    return 8 if marks == "notbrowser" else 4


# Modules whose tests share a costly module-scoped fixture (a kernel, a notebook executed): one worker
# takes each of them whole, so that fixture runs once in the run, not once in every worker a test of the
# module lands on. Every other test is a unit of its own, handed to whichever worker is free.
WHOLE = {
    "tests/test_background_notebook.py",
    "tests/test_board.py",
    "tests/test_mistakes.py",
    "tests/test_notebooks.py",
    "tests/test_saved_notebook.py",
}


# Tests that take seconds of real time (kernels, processes, sample runs as the docs write them): handed
# out first, right after the modules of WHOLE, so that none of them starts last and holds up the end.
LONG = (
    "tests/test_docs.py::test_the_",
    "tests/test_restart_notebook.py",
    "tests/test_polling.py::test_the_benchmark",
    "tests/test_load.py",
    "tests/test_readme.py",
    "tests/test_repair.py::test_the_command_line",
    "tests/test_terminal.py::test_the_demo",
    "tests/test_faults.py::test_an_outage_longer_than_the_budget",
)


def uses_the_sdk(nodeid: str) -> bool:
    """The tests that drive databricks-sdk (named ``test_sdk_*``, and two more): one worker runs them all,
    so the SDK, a second of CPU to import, is imported once in the run rather than in every worker."""
    return "::test_sdk_" in nodeid or nodeid.startswith(SDK_TESTS)


SDK_TESTS = (
    "tests/sandbox/test_sandbox_sdk.py",
    "tests/test_explain.py::test_every_documented_code_has_a_sentence",
)


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle: the same order in every worker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not (item.nodeid.startswith(LONG) or uses_the_sdk(item.nodeid)))  # stable


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The default distribution (``-n`` without ``--dist``), with the modules of WHOLE kept whole."""
    if config.getoption("dist") != "load":
        return None  # a --dist asked for on the command line is honoured
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module in WHOLE:
                return module
            return "databricks-sdk" if uses_the_sdk(nodeid) else nodeid

    return Scheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Before the workers start, compile once what every process of the run would compile again.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (as on this project's machines), no process caches its
    bytecode: each of eight workers rewrites the asserts of every test module (2 s of CPU each), and each
    of the ~60 kernels and processes the suite starts compiles the package. The controller compiles the
    package, and imports the test modules once with bytecode on so that pytest keeps their rewritten
    code, into ``__pycache__`` (ignored by git), where the workers and their processes read them: 10-20 s
    of the run's CPU. A run in one process (``-n 0``), or a worker, changes nothing.
    """
    config = session.config
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        return
    if not sys.dont_write_bytecode:
        return  # every process caches its own bytecode already
    import compileall
    import importlib

    compileall.compile_dir(Path(__file__).resolve().parent.parent / "dbx_magic", quiet=1)
    sys.dont_write_bytecode = False
    try:
        here = Path(__file__).parent
        for path in sorted(here.rglob("test_*.py")):
            try:
                importlib.import_module(
                    ".".join((__package__, *path.relative_to(here).with_suffix("").parts))
                )
            except (Exception, pytest.skip.Exception):  # the worker that collects it will say why
                continue
    finally:
        sys.dont_write_bytecode = True


@pytest.hookimpl(wrapper=True, tryfirst=True)  # the outermost wrapper: after every plugin's own
def pytest_unconfigure(config: pytest.Config) -> Iterator[None]:
    """A worker leaves at once when its run is over.

    By then it has sent the controller its last report and its exit status, its fixtures are torn
    down (kernels and servers stopped) and every plugin has unconfigured. What is left is the
    interpreter's own shutdown (atexit handlers, the garbage of ~200 tests), about 1.5 s, which the
    controller waits for, worker by worker, before it prints the summary: 3 s of every run, on this
    2-core machine. What a thread of a test might still print after that is lost (a worker's output
    is not shown anyway).
    """
    yield
    output = getattr(config, "workeroutput", None)
    if output is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(int(output.get("exitstatus", 0)))


# -- isolation: real signals in a child process, kernels without TCP ports ----------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """A test marked ``signals`` runs in a fresh Python process (its own pytest), so a SIGINT it sends
    meets no state of the xdist worker (a half-finished request of another test, a handler someone
    else installed): the worker only checks that the child passed."""
    if pyfuncitem.get_closest_marker("signals") is None or os.environ.get("DBX_MAGIC_ISOLATED"):
        return None
    env = {**os.environ, "DBX_MAGIC_ISOLATED": "1"}
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:randomly", "-p", "no:cacheprovider"]
    child = subprocess.run(
        [*command, pyfuncitem.nodeid], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    if child.returncode != 0:
        pytest.fail(
            f"the isolated run failed:\n{child.stdout[-6000:]}\n{child.stderr[-2000:]}", pytrace=False
        )
    return True


def ipc_kernel(tmp: Path) -> Any:
    """A kernel manager whose kernel talks over Unix sockets under ``tmp``: no TCP port, so none to
    lose to another test's race ("Address already in use")."""
    from jupyter_client.manager import KernelManager

    return KernelManager(kernel_name="python3", transport="ipc", ip=str(tmp / "kernel"))


def execute_notebook(nb: Any, where: Path, *, timeout: int = 120, **options: Any) -> None:
    """Execute ``nb`` with nbclient in a fresh kernel (``ipc_kernel(where)``) whose working directory is
    ``where``; the kernel is shut down at the end (a client given its kernel manager would leave it
    running). ``options`` go to ``NotebookClient`` (``allow_errors``, ``store_widget_state``)."""
    from nbclient import NotebookClient

    client = NotebookClient(
        nb, km=ipc_kernel(where), timeout=timeout, resources={"metadata": {"path": str(where)}}, **options
    )
    client.execute(cleanup_kc=True)


def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait, bounded, for a condition another thread makes true (the watcher's, a worker's)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        threading.Event().wait(0.02)


def interrupt_main() -> None:
    """Deliver a real SIGINT to the main thread, as the kernel's interrupt does."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def main_thread_waits(function: str = "_await") -> bool:
    """True when the main thread is inside ``function`` (a handle's wait loop, by default)."""
    frame = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        if frame.f_code.co_name == function:
            return True
        frame = frame.f_back
    return False


class InterruptAt(ManualClock):
    """A fake clock that raises KeyboardInterrupt in the sleeper once time reaches ``at``: an
    interrupt while the poller waits, at a moment the test chooses."""

    def __init__(self, at: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.at = self.monotonic() + at
        self.fired = False

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        if not self.fired and self.monotonic() >= self.at:
            self.fired = True
            raise KeyboardInterrupt
