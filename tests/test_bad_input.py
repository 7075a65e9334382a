"""The bad-input table: every mistake a user can make, across the Python API, the magics and the form.

Each gets one sentence that says what was wrong and what to do; when the input can be judged
locally, nothing is sent to the workspace at all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import Config, DatabricksClient, DatabricksError, RetryPolicy, run_job_and_wait, wait_for_run
from dbx_magic.notebook.form import RunForm
from dbx_magic.run.sweep import run_many

JOB = "daily-sales-report"
FAST = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.02, jitter=0)


@dataclass
class World:
    shell: InteractiveShell
    sandbox: Any
    tmp: Path

    def client(self, **kwargs: Any) -> DatabricksClient:
        return DatabricksClient(self.sandbox.url, self.sandbox.token, **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dbx_magic")
    shell.run_line_magic("dbx_sandbox", "--speed 50")
    sandbox = shell.magics_manager.registry["DbxMagics"].sandbox
    sandbox.add_job("twin", duration=1)
    sandbox.add_job("twin", duration=1)
    yield World(shell, sandbox, tmp_path_factory.mktemp("bad-input"))
    shell.run_line_magic("unload_ext", "dbx_magic")


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


def pick(job: str = JOB) -> Callable[[RunForm], Any]:
    return lambda f: setattr(f.job, "value", job)


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
        "Parameter set #1",
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
    # -- the magics -----------------------------------------------------------------------------
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
    ("magic", "%dbx_wait with a bad run id", cell("%dbx_wait abc"), "not a positive integer", True),
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
]


@pytest.mark.parametrize(
    ("surface", "what", "attempt", "words", "local"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES]
)
def test_bad_input_gets_one_clear_sentence(world, surface, what, attempt, words, local):
    world.sandbox.clear_requests()
    message = attempt(world)
    assert words in message
    assert "\n" not in message and "Traceback" not in message and len(message) < 400, message
    # what was wrong, then what to do: "...: do this." or "...; do this."
    assert re.search(r"[:;] \S", message) or "did you mean" in message, message
    assert message.rstrip(")").endswith((".", "?")), message
    if local:
        assert world.sandbox.requests == [], f"{what}: nothing may be sent for a mistake judged locally"
    launched = [r for r in world.sandbox.requests if r.path.endswith("/jobs/run-now")]
    assert launched == [], f"{what}: a mistake must never launch a run"


def test_a_missing_run_is_not_said_to_go_on(world):
    message = api(lambda w: wait_for_run(w.client(), 424_242))(world)
    assert "goes on" not in message and "%dbx_wait" not in message


def test_the_command_line_says_how_to_give_a_parameter(capsys):
    from dbx_magic.__main__ import main

    assert main(["run", "daily-sales-report", "-p", "date"]) == 1
    assert "-p date has no '=': write -p NAME=VALUE" in capsys.readouterr().err


def test_the_table_is_wide():
    assert len(CASES) >= 30 and {c[0] for c in CASES} == {"api", "magic", "form"}
