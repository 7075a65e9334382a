"""The bad-input table: every mistake a user can make, across the Python API, the magics and the form.

Each gets one sentence that says what was wrong and what to do; when the input can be judged
locally, nothing is sent to the workspace at all.
"""

from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import (
    DatabricksClient,
    DatabricksError,
    repair_run,
    run_job_and_wait,
    start_background,
    start_run,
    wait_for_run,
)
from dbx_magic.api.client import RetryPolicy
from dbx_magic.api.config import Config
from dbx_magic.notebook.form import RunForm
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.run.sweep import run_many
from dbx_magic.sandbox import Task
from dbx_magic.testing import ManualClock, stepped_watcher

from .conftest import fresh_shell

JOB = "daily-sales-report"
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, jitter=0)


@dataclass
class World:
    shell: InteractiveShell
    sandbox: Any
    tmp: Path
    clock: ManualClock

    def client(self, **kwargs: Any) -> DatabricksClient:
        kwargs.setdefault("clock", self.clock)
        return DatabricksClient(self.sandbox.url, self.sandbox.token, **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = ManualClock()  # the magics, their sandbox and every client of the table on fake time
    shell = fresh_shell()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    shell.run_line_magic("dbx_sandbox", "")
    sandbox = shell.magics_manager.registry["DbxMagics"].sandbox
    sandbox.add_job("twin", duration=1)
    sandbox.add_job("twin", duration=1)
    sandbox.add_job("123", duration=1)
    shell.user_ns.update(num=7, unprintable=Unprintable(), grid=[{"a": 1}])
    sandbox.add_job("long-going", duration=6000)
    typed = {"day": "2026-11-01", "rows": "100", "rate": "0.5", "dry_run": "false"}
    sandbox.add_job("typed", tasks=[Task("main", "/Shared/typed", typed, duration=1)])
    shell.user_ns.update(
        typed_bad={"rows": "many"}, typed_grid=[{"rate": "0.1"}, {"rate": "fast"}], typed_ok={"rows": 7}
    )
    yield World(shell, sandbox, tmp_path_factory.mktemp("bad-input"), clock)
    unload(shell)


def api(call: Callable[[World], Any]) -> Callable[[World], str]:
    def attempt(w: World) -> str:
        with pytest.raises(DatabricksError) as info:
            call(w)
        return str(info.value)

    return attempt


def cell(source: str) -> Callable[[World], str]:
    def attempt(w: World) -> str:
        result = w.shell.run_cell(source, store_history=False)
        assert result.error_in_exec is not None, "the cell must fail"
        assert "Traceback" not in str(result.error_in_exec)
        return str(result.error_in_exec)

    return attempt


def form(setup: Callable[[RunForm], Any]) -> Callable[[World], str]:
    def attempt(w: World) -> str:
        f = RunForm(client=w.client(), namespace={})
        setup(f)
        w.sandbox.clear_requests()
        f.run()
        if f.running:
            with pytest.raises(DatabricksError):
                f.wait(timeout=30)
        assert f.error is not None and str(f.error).replace("'", "&#x27;") in f.status.value
        return str(f.error)

    return attempt


def cli(*argv: str) -> Callable[[World], str]:
    """The command line: its one line on stderr (argparse's own mistakes included), without the prefix."""

    def attempt(w: World) -> str:
        from dbx_magic.__main__ import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(list(argv))
            except SystemExit as exit_:  # argparse refusing a flag's value
                code = exit_.code
        assert code in (1, 2), code
        last = err.getvalue().strip().splitlines()[-1]
        return last.split("error: ", 1)[-1]

    return attempt


class BrokenMapping(dict):  # type: ignore[type-arg]
    def items(self) -> Any:
        raise RuntimeError("no items for me")


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for me")


def planted_profile(w: World, token: str) -> dict[str, str]:
    path = w.tmp / "planted.cfg"
    path.write_text(f"[dev]\nhost = {w.sandbox.url}\ntoken = {token}\n", encoding="utf-8")
    return {"DATABRICKS_CONFIG_FILE": str(path)}


def reuse_token(w: World) -> Any:
    from dbx_magic import start_run

    start_run(w.client(), JOB, {"date": "2026-11-01"}, idempotency_token="reused-token-1")
    return start_run(w.client(), JOB, {"date": "2026-11-02"}, idempotency_token="reused-token-1")


def pick(job: str = JOB) -> Callable[[RunForm], Any]:
    return lambda f: setattr(f.job, "value", job)


def failed_checks(w: World) -> Any:
    """A finished run of etl-with-checks whose validate task failed."""
    return run_job_and_wait(w.client(), "etl-with-checks", {"strict": "true"})


def cli_on(*argv: str) -> Callable[[World], str]:
    """The command line, configured for the world's sandbox by the environment."""

    def attempt(w: World) -> str:
        import os

        saved = dict(os.environ)
        os.environ.update(
            DATABRICKS_HOST=w.sandbox.url,
            DATABRICKS_TOKEN=w.sandbox.token,
            DATABRICKS_CONFIG_FILE=str(w.tmp / "absent"),
        )
        try:
            return cli(*argv)(w)
        finally:
            os.environ.clear()
            os.environ.update(saved)

    return attempt


def no_config(w: World) -> dict[str, str]:
    return {"DATABRICKS_CONFIG_FILE": str(w.tmp / "absent")}


# (surface, what, attempt, words the message must hold, judged locally: nothing may be sent)
CASES: list[tuple[str, str, Callable[[World], str], str, bool]] = [
    # -- the Python API -------------------------------------------------------------------------
    ("api", "job id 0", api(lambda w: run_job_and_wait(w.client(), 0)), "not a positive integer", True),
    (
        "api",
        "negative job id",
        api(lambda w: run_job_and_wait(w.client(), -3)),
        "not a positive integer",
        True,
    ),
    ("api", "job given as a bool", api(lambda w: run_job_and_wait(w.client(), True)), "is a bool", True),
    ("api", "job given as a float", api(lambda w: run_job_and_wait(w.client(), 1.5)), "is a float", True),
    ("api", "job given as None", api(lambda w: run_job_and_wait(w.client(), None)), "is a NoneType", True),
    ("api", "empty job name", api(lambda w: run_job_and_wait(w.client(), "  ")), "job is empty", True),
    (
        "api",
        "unknown job name",
        api(lambda w: run_job_and_wait(w.client(), "daily-sales-reprot")),
        "did you mean 'daily-sales-report'",
        False,
    ),
    (
        "api",
        "ambiguous job name",
        api(lambda w: run_job_and_wait(w.client(), "twin")),
        "matches 2 jobs",
        False,
    ),
    (
        "api",
        "job that does not exist",
        api(lambda w: run_job_and_wait(w.client(), 999_999)),
        "Job 999999 does not exist",
        False,
    ),
    (
        "api",
        "parameters not a mapping",
        api(lambda w: run_job_and_wait(w.client(), JOB, "date=2026")),
        "must be a mapping",
        True,
    ),
    (
        "api",
        "parameter value None",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"date": None})),
        "is None",
        True,
    ),
    (
        "api",
        "parameter value a list",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"days": [1, 2]})),
        "json.dumps",
        True,
    ),
    (
        "api",
        "parameter value NaN",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"x": math.nan})),
        "finite",
        True,
    ),
    (
        "api",
        "empty parameter name",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"": "x"})),
        "not a non-empty string",
        True,
    ),
    (
        "api",
        "parameters over 10,000 bytes",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"blob": "x" * 10_001})),
        "limit of 10,000",
        True,
    ),
    (
        "api",
        "idempotency token over 64",
        api(lambda w: run_job_and_wait(w.client(), JOB, idempotency_token="t" * 65)),
        "1 to 64 characters",
        True,
    ),
    (
        "api",
        "negative timeout",
        api(lambda w: run_job_and_wait(w.client(), JOB, timeout=-1)),
        "not a positive number",
        True,
    ),
    (
        "api",
        "timeout as text",
        api(lambda w: run_job_and_wait(w.client(), JOB, timeout="soon")),
        "not a positive number",
        True,
    ),
    (
        "api",
        "both kinds of parameters",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"a": "1"}, {"b": "2"})),
        "a run takes one kind",
        True,
    ),
    (
        "api",
        "run id not a number",
        api(lambda w: wait_for_run(w.client(), "abc")),
        "not a positive integer",
        True,
    ),
    (
        "api",
        "run that does not exist",
        api(lambda w: wait_for_run(w.client(), 999_999)),
        "Run 999999 does not exist",
        False,
    ),
    (
        "api",
        "host without a name",
        api(lambda w: DatabricksClient("https://", "t")),
        "not a workspace URL",
        True,
    ),
    (
        "api",
        "host with a path",
        api(lambda w: DatabricksClient("https://adb-1.1.azuredatabricks.net/browse", "t")),
        "has a path",
        True,
    ),
    (
        "api",
        "host with a bad port",
        api(lambda w: DatabricksClient("http://127.0.0.1:port", "t")),
        "malformed port",
        True,
    ),
    ("api", "empty token", api(lambda w: DatabricksClient(w.sandbox.url, " ")), "token is empty", True),
    (
        "api",
        "wrong token",
        api(lambda w: run_job_and_wait(DatabricksClient(w.sandbox.url, "dsbx-wrong"), JOB)),
        "DATABRICKS_TOKEN",
        False,
    ),
    (
        "api",
        "nothing listening at the host",
        api(lambda w: run_job_and_wait(DatabricksClient("http://127.0.0.1:9", "t", retry=FAST), JOB)),
        "check the host and your network",
        False,
    ),
    (
        "api",
        "a server that is not the Jobs API",
        api(lambda w: run_job_and_wait(w.client(api_version="9.9"), JOB)),
        "is your workspace URL",
        False,
    ),
    (
        "api",
        "answers that are not JSON",
        api(
            lambda w: (
                w.sandbox.inject("jobs/get", "invalid_json", count=FAST.attempts),
                run_job_and_wait(w.client(retry=FAST), JOB),
            )
        ),
        "not a JSON object",
        False,
    ),
    (
        "api",
        "unknown profile",
        api(lambda w: Config.resolve(profile="staging", env=no_config(w))),
        "is not in",
        True,
    ),
    (
        "api",
        "nothing configured",
        api(lambda w: Config.resolve(env=no_config(w))),
        "set DATABRICKS_HOST and DATABRICKS_TOKEN",
        True,
    ),
    (
        "api",
        "https to a host that serves plain HTTP",
        api(lambda w: run_job_and_wait(DatabricksClient(w.sandbox.url.replace("http:", "https:"), "t"), JOB)),
        "give it as http://HOST:PORT",
        False,
    ),
    (
        "api",
        "run id that does not exist, re-attaching",
        api(lambda w: wait_for_run(w.client(), 424_242)),
        "check the run id",
        False,
    ),
    ("api", "host None", api(lambda w: DatabricksClient(None, "t")), "host is missing", True),  # type: ignore[arg-type]
    (
        "api",
        "client timeout (0, 0)",
        api(lambda w: DatabricksClient(w.sandbox.url, "t", timeout=(0, 0))),
        "not a positive number of seconds",
        True,
    ),
    (
        "api",
        "host with a 64-character label",
        api(lambda w: DatabricksClient(f"https://{'a' * 64}.azuredatabricks.net", "t")),
        "not a valid host name",
        True,
    ),
    ("api", "token None", api(lambda w: DatabricksClient(w.sandbox.url, None)), "token is empty", True),  # type: ignore[arg-type]
    (
        "api",
        "token with a line break",
        api(lambda w: DatabricksClient(w.sandbox.url, "dapi-secret\n-tail")),
        "the token argument has a line break",
        True,
    ),
    (
        "api",
        "token with a curly dash",
        api(lambda w: DatabricksClient(w.sandbox.url, "dapi\u2013secret")),
        "not plain ASCII",
        True,
    ),
    (
        "api",
        "DATABRICKS_TOKEN with a line break",
        api(
            lambda w: Config.resolve(env={"DATABRICKS_HOST": w.sandbox.url, "DATABRICKS_TOKEN": "dapi-x\ny"})
        ),
        "from DATABRICKS_TOKEN has a line break",
        True,
    ),
    (
        "api",
        "profile token with a non-Latin-1 character",
        api(lambda w: Config.resolve(profile="dev", env=planted_profile(w, "dapi\u2603secret"))),
        "from the profile [dev] of",
        True,
    ),
    (
        "api",
        "token provider giving a line break",
        api(lambda w: run_job_and_wait(DatabricksClient(w.sandbox.url, lambda: "dapi-a\nb"), JOB)),
        "from the token provider has a line break",
        True,
    ),
    (
        "api",
        "job id beyond int64",
        api(lambda w: run_job_and_wait(w.client(), 2**63)),
        "larger than any id",
        True,
    ),
    (
        "api",
        "empty idempotency token",
        api(lambda w: run_job_and_wait(w.client(), JOB, idempotency_token=" ")),
        "idempotency token is empty",
        True,
    ),
    (
        "api",
        "max_parallel 0",
        api(lambda w: __import__("dbx_magic").run_many(w.client(), JOB, [{}], max_parallel=0)),
        "not a positive integer",
        True,
    ),
    (
        "api",
        "a number that is no job's id but a job's name",
        api(lambda w: run_job_and_wait(w.client(), "123")),
        "pass name:123 to run it by name",
        False,
    ),
    ("api", "name: and nothing", api(lambda w: run_job_and_wait(w.client(), "name:")), "job is empty", True),
    (
        "api",
        "idempotency token reused with other parameters",
        api(reuse_token),
        "asked now: date=2026-11-02",
        False,
    ),
    (
        "api",
        "repair of a run still going",
        api(lambda w: repair_run(w.client(), start_run(w.client(), "long-going"))),
        "only an ended run can be repaired",
        False,
    ),
    (
        "api",
        "repair of a run that succeeded",
        api(lambda w: repair_run(w.client(), run_job_and_wait(w.client(), JOB))),
        "so there is nothing to repair",
        False,
    ),
    (
        "api",
        "repair of a task the run lacks",
        api(lambda w: repair_run(w.client(), failed_checks(w), ["valdate"])),
        "has no task 'valdate': did you mean 'validate'?",
        False,
    ),
    (
        "api",
        "repair of a run that does not exist",
        api(lambda w: repair_run(w.client(), 999_999)),
        "Run 999999 does not exist",
        False,
    ),
    (
        "api",
        "repair naming no task",
        api(lambda w: repair_run(w.client(), 5, [])),
        "tasks names no task",
        True,
    ),
    ("api", "repair of run id 0", api(lambda w: repair_run(w.client(), 0)), "not a positive integer", True),
    (
        "api",
        "only naming nothing",
        api(lambda w: run_job_and_wait(w.client(), JOB, only="")),
        "names no task",
        True,
    ),
    (
        "api",
        "only naming a task the job lacks",
        api(lambda w: run_job_and_wait(w.client(), "etl-pipeline", only=["ingets"])),
        "did you mean 'ingest'?",
        False,
    ),
    (
        "api",
        "if_running unknown",
        api(lambda w: run_job_and_wait(w.client(), JOB, if_running="later")),
        "is not one of new, wait, cancel",
        True,
    ),
    (
        "api",
        "a parameter name the job does not declare",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"dat": "2026-11-01"})),
        "did you mean 'date'?",
        False,
    ),
    (
        "api",
        "a value outside a dropdown's choices",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"table": "main.sales.tx"})),
        "not 'main.sales.tx'",
        False,
    ),
    (
        "api",
        "a misspelt name in one set of a sweep",
        api(lambda w: run_many(w.client(), JOB, [{"date": "2026-11-01"}, {"tabel": "x"}])),
        "Parameter set #2 of 2",
        False,
    ),
    (
        "api",
        "allow_unknown_params not a bool",
        api(lambda w: run_job_and_wait(w.client(), JOB, allow_unknown_params="yes")),
        "is not a bool",
        True,
    ),
    (
        "api",
        "parameters over 10,000 bytes of UTF-8",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"date": "é" * 5_000})),
        "limit of 10,000",
        True,
    ),
    # -- the earlier hostile tables (issue 25) ---------------------------------------------------
    (
        "api",
        "a 100,000-character job name",
        api(lambda w: run_job_and_wait(w.client(), "x" * 100_000)),
        "over the 4,096 a job name can have",
        True,
    ),
    (
        "api",
        "parameter names equal once trimmed",
        api(lambda w: run_job_and_wait(w.client(), JOB, {" date": "1", "date": "2"})),
        "same name once spaces are trimmed",
        True,
    ),
    (
        "api",
        "a parameters mapping whose items() raises",
        api(lambda w: run_job_and_wait(w.client(), JOB, BrokenMapping(date="1"))),
        "items() raised RuntimeError",
        True,
    ),
    (
        "api",
        "run_many with numbers for parameter sets",
        api(lambda w: run_many(w.client(), JOB, [1, 2])),
        "Parameter set #0: The notebook parameters must be a mapping of names to values, not an int",
        True,
    ),
    (
        "api",
        "a sweep token base too long for one run",
        api(lambda w: run_many(w.client(), JOB, [{"date": "1"}], idempotency_token="t" * 63)),
        "too long for 1 run:",
        True,
    ),
    (
        "api",
        "a control character in a parameter name",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"da\x1bte": "1"})),
        "holds a control character",
        True,
    ),
    (
        "api",
        "a NUL in a parameter value",
        api(lambda w: run_job_and_wait(w.client(), JOB, {"date": "2026\x0011"})),
        "holds a NUL character",
        True,
    ),
    (
        "api",
        "repair_run with tasks=5",
        api(lambda w: repair_run(w.client(), failed_checks(w), tasks=5)),
        "tasks takes task keys (a list of strings, or 'a,b'), not an int",
        False,
    ),
    # -- the magics -----------------------------------------------------------------------------
    ("magic", "--only with nothing", cell(f'%dbx_run {JOB} --only ""'), "--only names no task", True),
    ("magic", "--only with only commas", cell(f"%dbx_run {JOB} --only ,,"), "--only names no task", True),
    (
        "magic",
        "--only naming a task the job lacks",
        cell("%dbx_run etl-pipeline --only transfrom"),
        "did you mean 'transform'?",
        False,
    ),
    (
        "magic",
        "--if-running unknown",
        cell(f"%dbx_run {JOB} --if-running later"),
        "--if-running 'later' is not one of new, wait, cancel",
        True,
    ),
    (
        "magic",
        "--if-running with --foreach",
        cell(f"%dbx_run {JOB} --foreach [{{}}] --if-running wait"),
        "go with one run",
        True,
    ),
    (
        "magic",
        "%dbx_repair of a run that does not exist",
        cell("%dbx_repair 424242"),
        "check the run id",
        False,
    ),
    ("magic", "%dbx_repair of an undefined name", cell("%dbx_repair no_such_result"), "not defined in", True),
    ("magic", "%dbx_repair of a name holding no run", cell("%dbx_repair JOB_TEXT"), "not a run", True),
    (
        "magic",
        "%dbx_repair --tasks with nothing",
        cell('%dbx_repair 5 --tasks ""'),
        "--tasks names no task",
        True,
    ),
    (
        "magic",
        "%dbx_repair of a run that succeeded",
        cell(f"%dbx_run {JOB} --out good_run\n%dbx_repair good_run"),
        "so there is nothing to repair",
        False,
    ),
    (
        "magic",
        "%dbx_repair of a run still going",
        cell("%dbx_run long-going --no-wait --out going_run\n%dbx_repair going_run"),
        "only an ended run can be repaired",
        False,
    ),
    ("magic", "job id 0", cell("%dbx_run 0"), "not a positive integer", True),
    ("magic", "negative job id", cell("%dbx_run -5"), "not a positive integer", True),
    ("magic", "parameter line without =", cell(f"%%dbx_run {JOB}\ndate 2026\n"), "has no '='", True),
    ("magic", "parameter line without a name", cell(f"%%dbx_run {JOB}\n= 2026\n"), "has no name", True),
    ("magic", "duplicate parameter", cell(f"%%dbx_run {JOB}\na = 1\na = 2\n"), "given twice", True),
    ("magic", "broken JSON body", cell(f'%%dbx_run {JOB}\n{{"date": \n'), "not valid JSON", True),
    (
        "magic",
        "--out not a name",
        cell(f"%dbx_run {JOB} --out 1bad"),
        "not a valid Python variable name",
        True,
    ),
    (
        "magic",
        "--params undefined",
        cell(f"%dbx_run {JOB} --params not_defined_anywhere"),
        "could not be evaluated",
        True,
    ),
    ("magic", "--params not a dict", cell(f"%dbx_run {JOB} --params 5"), "not a dict", True),
    ("magic", "--timeout negative", cell(f"%dbx_run {JOB} --timeout -1"), "not positive", True),
    ("magic", "--token on the line", cell(f"%dbx_run {JOB} --token abc"), "token does not belong", True),
    (
        "magic",
        "a PAT in the cell",
        cell(f"%%dbx_run {JOB}\nkey = " + "dapi" + "0f" * 16 + "\n"),
        "token does not belong",
        True,
    ),
    (
        "magic",
        "{name} not defined",
        cell(f"%%dbx_run {JOB}\ntable = {{undefined_name}}.x\n"),
        "not defined in the notebook",
        True,
    ),
    (
        "magic",
        "idempotency token over 64",
        cell(f"%dbx_run {JOB} --idempotency-token " + "x" * 65),
        "1 to 64 characters",
        True,
    ),
    ("magic", "unknown flag", cell(f"%dbx_run {JOB} --bogus-flag"), "unrecognized arguments", True),
    (
        "magic",
        "parameters over 10,000 bytes",
        cell(f"%%dbx_run {JOB}\nbig = " + "x" * 10_001 + "\n"),
        "limit of 10,000",
        True,
    ),
    (
        "magic",
        "unknown job name",
        cell('%dbx_run "daily-sales-reprot"'),
        "did you mean 'daily-sales-report'",
        False,
    ),
    ("magic", "%dbx_wait with a bad run id", cell("%dbx_wait 0"), "not a positive integer", True),
    ("magic", "%dbx_wait with a negative run id", cell("%dbx_wait -4"), "not a positive integer", True),
    ("magic", "%dbx_wait with a superscript digit", cell("%dbx_wait ²"), "neither a run id nor", True),
    ("magic", "%dbx_wait with Arabic-Indic digits", cell("%dbx_wait ١٢٣"), "neither a run id nor", True),
    ("magic", "%dbx_wait with a keyword", cell("%dbx_wait lambda"), "`lambda` is not defined", True),
    ("magic", "%dbx_wait of a name never defined", cell("%dbx_wait abc"), "`abc` is not defined", True),
    (
        "magic",
        "%dbx_wait of a name that holds no run",
        cell("not_a_run = 'x'\n%dbx_wait not_a_run"),
        "`not_a_run` holds a str, not a run",
        True,
    ),
    (
        "magic",
        "%dbx_wait of a name that holds a sweep's list",
        cell("sweep_like = [1, 2]\n%dbx_wait sweep_like"),
        "holds a list, not a run",
        True,
    ),
    (
        "magic",
        "%dbx_wait of a run id the workspace does not have",
        cell("%dbx_wait 987654321"),
        "987654321",
        False,
    ),
    (
        "magic",
        "--background with --foreach",
        cell(f"%dbx_run {JOB} --background --foreach [{{}}]"),
        "leave out one of them",
        True,
    ),
    (
        "magic",
        "--background with --no-wait",
        cell(f"%dbx_run {JOB} --background --no-wait"),
        "pick one",
        True,
    ),
    (
        "magic",
        "--background with --timeout",
        cell(f"%dbx_run {JOB} --background --timeout 5"),
        "--background does not wait",
        True,
    ),
    (
        "magic",
        "--background with --cancel-on-interrupt",
        cell(f"%dbx_run {JOB} --background --cancel-on-interrupt"),
        "never stops a background run",
        True,
    ),
    (
        "magic",
        "--background with a job that does not exist",
        cell('%dbx_run "no-such-job" --background --out never'),
        "No job is named",
        False,
    ),
    (
        "magic",
        "--background with an --out IPython relies on",
        cell(f"%dbx_run {JOB} --background --out get_ipython"),
        "get_ipython",
        True,
    ),
    (
        "magic",
        "%dbx_runs --job with an id no job has",
        cell("%dbx_runs --active --job 987654"),
        "987654",
        False,
    ),
    (
        "magic",
        "%dbx_runs --job that does not exist",
        cell('%dbx_runs --active --job "no-such-job"'),
        "No job is named",
        False,
    ),
    (
        "api",
        "start_background with job id 0",
        api(lambda w: start_background(w.client(), 0)),
        "not a positive integer",
        True,
    ),
    (
        "api",
        "start_background with a parameter the job does not declare",
        api(lambda w: start_background(w.client(), JOB, {"no_such_param": "1"})),
        "no_such_param",
        False,
    ),
    (
        "api",
        "start_background with both kinds of parameters",
        api(lambda w: start_background(w.client(), JOB, {"a": "1"}, {"b": "2"})),
        "pass the parameters once",
        True,
    ),
    (
        "api",
        "a handle's wait with a negative timeout",
        api(
            lambda w: start_background(
                w.client(), JOB, {"date": "2026-11-01"}, watcher=stepped_watcher(w.clock)
            ).wait(timeout=-1)
        ),
        "timeout",
        False,
    ),
    ("magic", "%dbx_cancel with a bad run id", cell("%dbx_cancel 0"), "not a positive integer", True),
    ("magic", "%dbx_sandbox with a bad speed", cell("%dbx_sandbox --speed 0"), "not positive", True),
    (
        "magic",
        "job name with spaces, unquoted",
        cell("%dbx_run nightly report"),
        "quote a job name with spaces",
        True,
    ),
    (
        "magic",
        "--max-parallel without --foreach",
        cell(f"%dbx_run {JOB} --max-parallel 2"),
        "goes with --foreach",
        True,
    ),
    ("magic", "%dbx_wait on a run that does not exist", cell("%dbx_wait 424242"), "check the run id", False),
    (
        "magic",
        "a parameter name the job does not declare",
        cell(f"%%dbx_run {JOB}\ndat = 2026-11-01\n"),
        "did you mean 'date'?",
        False,
    ),
    (
        "magic",
        "an item outside a multiselect's choices",
        cell("%%dbx_run etl-with-checks\nchecks = not_null,uniq\n"),
        "did you mean 'unique'?",
        False,
    ),
    (
        "magic",
        "%dbx_params of an unknown job",
        cell('%dbx_params "daily-sales-reprot"'),
        "did you mean",
        False,
    ),
    ("magic", "%dbx_params without a job", cell("%dbx_params"), "%dbx_params?", True),
    ("magic", "--out get_ipython", cell(f"%dbx_run {JOB} --out get_ipython"), "relies on", True),
    ("magic", "--out print", cell(f"%dbx_run {JOB} --out print"), "relies on", True),
    ("magic", "--idempotency-token ''", cell(f"%dbx_run {JOB} --idempotency-token ''"), "is empty", True),
    ("magic", "%dbx_sandbox --speed nan", cell("%dbx_sandbox --speed nan"), "not positive", True),
    (
        "magic",
        "{num[0]} in the cell",
        cell(f"%%dbx_run {JOB}\nx = {{num[0]}}\n"),
        "could not be expanded",
        True,
    ),
    (
        "magic",
        "an object whose str() raises",
        cell(f"%%dbx_run {JOB}\nx = {{unprintable}}\n"),
        "could not be expanded (RuntimeError",
        True,
    ),
    ("magic", "job id beyond int64", cell(f"%dbx_run {2**63}"), "larger than any id", True),
    (
        "magic",
        "--max-parallel 0",
        cell(f"%dbx_run {JOB} --foreach grid --max-parallel 0"),
        "at least 1",
        True,
    ),
    (
        "magic",
        "a JWT in the cell",
        cell(f"%%dbx_run {JOB}\nauth = eyJhbGciOiJI.eyJzdWIiOiIx.sig\n"),
        "token does not belong",
        True,
    ),
    (
        "magic",
        "a password parameter",
        cell(f"%%dbx_run {JOB}\npassword = hunter2\n"),
        "token does not belong",
        True,
    ),
    (
        "magic",
        "a PAT as a parameter named token",
        cell(f"%%dbx_run {JOB}\ntoken = dapi{'0a' * 16}\n"),
        "token does not belong",
        True,
    ),
    (
        "magic",
        "--out with quotes inside its quotes",
        cell(f"""%dbx_run {JOB} --out '"x"'"""),
        "not a valid Python",
        True,
    ),
    (
        "magic",
        "a control character in a cell's parameter name",
        cell(f"%%dbx_run {JOB}\nda\x07te = 1\n"),
        "control character",
        True,
    ),
    # -- the form -------------------------------------------------------------------------------
    ("form", "no job selected", form(lambda f: None), "job is empty", True),
    (
        "form",
        "a value without a name",
        form(lambda f: (pick()(f), f.add_row("", "orphan"))),
        "has a value but no name",
        True,
    ),
    ("form", "duplicate parameter", form(lambda f: (pick()(f), f.add_row("date", "x"))), "given twice", True),
    (
        "form",
        "result variable not a name",
        form(lambda f: (pick()(f), setattr(f.out, "value", "not valid"))),
        "not a valid Python variable name",
        True,
    ),
    (
        "form",
        "parameters over 10,000 bytes",
        form(lambda f: (pick()(f), f.add_row("big", "x" * 10_001))),
        "limit of 10,000",
        True,
    ),
    (
        "form",
        "idempotency token over 64",
        form(lambda f: (pick()(f), setattr(f.token, "value", "t" * 65))),
        "1 to 64 characters",
        True,
    ),
    ("form", "unknown job typed in", form(pick("no-such-job")), "No job is named 'no-such-job'", False),
    (
        "form",
        "a parameter name the job does not declare",
        form(lambda f: (pick()(f), f.add_row("dat", "2026-11-01"))),
        "did you mean 'date'?",
        False,
    ),
    (
        "form",
        "a PAT in a parameter value",
        form(lambda f: (pick()(f), f.add_row("key", "dapi" + "0f" * 16))),
        "token does not belong",
        True,
    ),
    (
        "form",
        "the session's own token in a value",
        form(
            lambda f: (
                pick()(f),
                f.add_row("key", f"x {f.client.secrets()[0]} y"),
            )
        ),
        "token does not belong",
        True,
    ),
    (
        "form",
        "job name: with no name",
        form(lambda f: pick("name:")(f)),
        "job is empty",
        True,
    ),
    # -- typed parameters: a text parameter's default shows its type (date, whole number, number,
    # true/false); every face refuses a value of another type before run-now, in one sentence
    (
        "magic",
        "a date that does not exist",
        cell("%%dbx_run typed\nday = 2026-13-45\n"),
        "is no such day",
        False,
    ),
    ("magic", "a date in another form", cell("%%dbx_run typed\nday = 11/01/2026\n"), "YYYY-MM-DD", False),
    (
        "magic",
        "a word for a whole number, from --params",
        cell("%dbx_run typed --params typed_bad"),
        "takes a whole number",
        False,
    ),
    (
        "magic",
        "a word for a number in one set of --foreach",
        cell("%%dbx_run typed --foreach typed_grid\nday = 2026-11-01\n"),
        "Parameter set #2 of 2",
        False,
    ),
    (
        "magic",
        "yes for a boolean, --background",
        cell("%%dbx_run typed --background\ndry_run = yes\n"),
        "takes true or false",
        False,
    ),
    ("magic", "True for a boolean", cell("%%dbx_run typed\ndry_run = True\n"), "did you mean 'true'?", False),
    (
        "magic",
        "a value outside a dropdown's choices (a cell)",
        cell(f"%%dbx_run {JOB}\ntable = main.sales.tx\n"),
        "not 'main.sales.tx'",
        False,
    ),
    (
        "api",
        "a date that does not exist",
        api(lambda w: run_job_and_wait(w.client(), "typed", {"day": "2026-02-30"})),
        "is no such day",
        False,
    ),
    (
        "api",
        "a fraction for a whole number",
        api(lambda w: start_run(w.client(), "typed", {"rows": 2.5})),
        "takes a whole number",
        False,
    ),
    (
        "api",
        "a word for a number in the background",
        api(lambda w: start_background(w.client(), "typed", {"rate": "fast"})),
        "takes a number",
        False,
    ),
    (
        "api",
        "a bad date in one set of a sweep",
        api(lambda w: run_many(w.client(), "typed", [{"day": "2026-11-01"}, {"day": "2026-11-31"}])),
        "Parameter set #2 of 2",
        False,
    ),
    (
        "form",
        "a date that does not exist",
        form(lambda f: (pick("typed")(f), f.set_params({"day": "2026-13-45"}))),
        "is no such day",
        False,
    ),
    (
        "form",
        "a word for a whole number",
        form(lambda f: (pick("typed")(f), f.set_params({"rows": "many"}))),
        "takes a whole number",
        False,
    ),
    (
        "form",
        "a value outside a multiselect's choices",
        form(lambda f: (pick("etl-with-checks")(f), f.set_params({"checks": "not_null,uniq"}))),
        "did you mean 'unique'?",
        False,
    ),
    (
        "cli",
        "run with a date that does not exist",
        cli_on("run", "typed", "-p", "day=2026-13-45"),
        "is no such day",
        False,
    ),
    (
        "cli",
        "run with yes for a boolean",
        cli_on("run", "typed", "-p", "dry_run=yes"),
        "takes true or false",
        False,
    ),
    (
        "cli",
        "run with a value outside a dropdown's choices",
        cli_on("run", JOB, "-p", "table=x"),
        "not 'x'",
        False,
    ),
    (
        "form",
        "result name get_ipython",
        form(lambda f: (pick()(f), setattr(f.out, "value", "get_ipython"))),
        "The result variable get_ipython would replace",
        True,
    ),
    (
        "form",
        "result name 1x",
        form(lambda f: (pick()(f), setattr(f.out, "value", "1x"))),
        "The result variable '1x' is not a valid",
        True,
    ),
    (
        "form",
        "result name with a space",
        form(lambda f: (pick()(f), setattr(f.out, "value", "my result"))),
        "is not a valid Python variable name",
        True,
    ),
    (
        "form",
        "a NUL in a parameter value",
        form(lambda f: (pick()(f), f.add_row("note", "2026\x00"))),
        "holds a NUL character",
        True,
    ),
    # -- the command line -----------------------------------------------------------------------
    ("cli", "demo --speed 0", cli("demo", "--speed", "0"), "0 is not a positive number", True),
    ("cli", "run with job id 0", cli("run", "0"), "not a positive integer", True),
    (
        "cli",
        "run with an empty idempotency token",
        cli("run", JOB, "--idempotency-token", " "),
        "is empty",
        True,
    ),
    ("cli", "run with --timeout 0", cli("run", JOB, "--timeout", "0"), "not a positive number", True),
    ("cli", "wait with a bad run id", cli("wait", "abc"), "not a positive integer", True),
    ("cli", "run with a parameter without =", cli("run", JOB, "-p", "date"), "has no '='", True),
]


# Rows whose setup launches a run on purpose (the mistake is made about that run).
SETS_UP_A_RUN = {
    "idempotency token reused with other parameters",
    "repair of a run still going",
    "repair of a run that succeeded",
    "repair of a task the run lacks",
    "%dbx_repair of a run that succeeded",
    "%dbx_repair of a run still going",
    "a handle's wait with a negative timeout",
    "repair_run with tasks=5",
}


@pytest.mark.parametrize(
    ("surface", "what", "attempt", "words", "local"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES]
)
def test_bad_input_gets_one_clear_sentence(world, surface, what, attempt, words, local):
    world.shell.user_ns["JOB_TEXT"] = "not a run"
    world.sandbox.clear_requests()
    message = attempt(world)
    assert words in message
    assert "\n" not in message and "Traceback" not in message and len(message) < 400, message
    # what was wrong, then what to do: "...: do this." or "...; do this."
    assert re.search(r"[:;] \S", message) or "did you mean" in message, message
    assert message.rstrip(")").endswith((".", "?")), message
    if local:
        assert world.sandbox.requests == [], f"{what}: nothing may be sent for a mistake judged locally"
    if what not in SETS_UP_A_RUN:
        launched = [r for r in world.sandbox.requests if r.path.endswith("/jobs/run-now")]
        assert launched == [], f"{what}: a mistake must never launch a run"
    repairs = [r for r in world.sandbox.requests if r.path.endswith("/jobs/runs/repair")]
    assert repairs == [], f"{what}: a repair judged from the run must not be sent"


def test_a_missing_run_is_not_said_to_go_on(world):
    message = api(lambda w: wait_for_run(w.client(), 424_242))(world)
    assert "goes on" not in message and "%dbx_wait" not in message


def test_the_command_line_says_how_to_give_a_parameter(capsys):
    from dbx_magic.__main__ import main

    assert main(["run", "daily-sales-report", "-p", "date"]) == 1
    assert "-p date has no '=': write -p NAME=VALUE" in capsys.readouterr().err


def test_the_table_is_wide():
    assert len(CASES) >= 90 and {c[0] for c in CASES} == {"api", "magic", "form", "cli"}
