"""Token hygiene: a recognisable token, used everywhere, found nowhere it must not be.

The sandbox's tokens all have one shape (``dsbx-`` and 32 hex digits); these tests drive the Python
API, the magics, the form and the demo with logging at DEBUG everywhere, and look for that shape in
every output, log record, exception text with its traceback, repr and widget state. (The executed
notebooks, widget state included, are checked in test_notebooks.py.)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import sys
import time
import traceback
from typing import Any

import ipywidgets as widgets
import nbformat
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from dbx_magic import DatabricksClient, DatabricksError, run_job_and_wait
from dbx_magic.api.client import RetryPolicy
from dbx_magic.api.config import Config
from dbx_magic.notebook.form import RunForm
from dbx_magic.notebook.magics import DbxMagics, unload
from dbx_magic.notebook.progress import describe
from dbx_magic.notebook.session import NotebookSession
from dbx_magic.sandbox import Sandbox

TOKEN_SHAPE = re.compile(r"dsbx-[0-9a-f]{32}")


def leaks(texts: list[str], token: str) -> list[str]:
    return [t[:200] for t in texts if token in t or TOKEN_SHAPE.search(t)]


def formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_python_api_and_form_leak_no_token(caplog, capfd, clock):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    texts: list[str] = []
    with Sandbox(clock=clock.monotonic, epoch=clock.wall()) as sb:
        client = DatabricksClient(sb.url, sb.token, retry=RetryPolicy(backoff=0.01, jitter=0), clock=clock)
        sb.inject("jobs/runs/get", "status", status=503, count=2)  # retries log at DEBUG
        ok = run_job_and_wait(client, "daily-sales-report", {"date": "2026-11-01"})
        texts += [repr(ok), ok._repr_html_(), ok.summary_text(), json.dumps(ok.run), describe(ok, 1).line]
        texts += [repr(client), repr(Config.resolve(host=sb.url, token=sb.token, env={}))]
        failed = run_job_and_wait(client, "flaky-ingest", {"fail": "true"})
        with pytest.raises(DatabricksError) as info:
            failed.raise_for_state()
        texts.append(formatted(info.value))
        for bad in (999_999, "no-such-job", 0):
            with pytest.raises(DatabricksError) as info:
                run_job_and_wait(client, bad)
            texts.append(formatted(info.value))
        with pytest.raises(DatabricksError) as info:
            run_job_and_wait(
                DatabricksClient(sb.url, sb.token + "0", clock=clock), "daily-sales-report"
            )  # wrong
        texts.append(formatted(info.value))
        form = RunForm(client=client, job="daily-sales-report", namespace={})
        form.run()
        form.wait(timeout=30)
        texts += [repr(form), json.dumps(widgets.Widget.get_manager_state(drop_defaults=False))]
        token = sb.token
    out = capfd.readouterr()
    texts += [out.out, out.err, caplog.text, *(r.getMessage() for r in caplog.records)]
    assert caplog.records, "DEBUG logging was captured"
    assert not leaks(texts, token)


def test_magics_leak_no_token(caplog, capfd, clock):
    caplog.set_level(logging.DEBUG)
    shell = InteractiveShell.instance()
    shell.register_magics(DbxMagics(shell, NotebookSession(shell.user_ns, clock=clock, threaded=False)))
    try:
        shell.run_cell("%dbx_sandbox")
        token = shell.magics_manager.registry["DbxMagics"].sandbox.token
        cells = [
            "%%dbx_run daily-sales-report --out ok\ndate = 2026-11-01\n",
            "%%dbx_run flaky-ingest --out bad\nfail = true\n",
            "%dbx_run 999999",
            '%dbx_run "no-such-job"',
            "%dbx_run daily-sales-report --no-wait --out bg",
            "%dbx_wait {bg.run_id}",
            "ok",
        ]
        errors = [shell.run_cell(c, store_history=False).error_in_exec for c in cells]
        texts = [formatted(e) for e in errors if e is not None]
        texts += [repr(shell.user_ns[name]) for name in ("ok", "bad", "bg")]
        texts += [shell.user_ns["ok"]._repr_html_()]
    finally:
        unload(shell)
    out = capfd.readouterr()
    texts += [out.out, out.err, caplog.text]
    assert "Sandbox workspace at http://127.0.0.1:" in out.out
    assert not leaks(texts, token)


def test_demo_leaks_no_token():
    done = subprocess.run(
        [sys.executable, "-m", "dbx_magic", "demo", "--speed", "20"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout
    assert not TOKEN_SHAPE.search(done.stdout + done.stderr)


# -- token paths x outputs ----------------------------------------------------------------------------
#
# Each path plants a token where it could slip out: read with a stray character (environment,
# profile file, argument, provider), echoed by a proxy's error body, typed into the form. Each is
# driven through a real shell with %xmode Verbose and DEBUG logging, and every output is searched:
# stdout/stderr (the Verbose tracebacks among them), log records, the cells' exceptions with their
# whole chains (texts, reprs and attributes), the published values' reprs, the widget state, and a
# notebook saved from what the cells displayed. Add a path: one function and one PATHS entry.

PLANTED = "dapi" + "5ec7e7" * 5 + "ab"  # a PAT's shape: 36 characters after "dapi"...
JOB = "daily-sales-report"


@dataclasses.dataclass
class Plant:
    sandbox: Sandbox
    shell: InteractiveShell
    monkeypatch: pytest.MonkeyPatch
    tmp: Any
    errors: list[BaseException] = dataclasses.field(default_factory=list)
    texts: list[str] = dataclasses.field(default_factory=list)

    def cell(self, source: str) -> None:
        result = self.shell.run_cell(source, store_history=False)
        if result.error_in_exec is not None:
            self.errors.append(result.error_in_exec)
        if result.error_before_exec is not None:
            self.errors.append(result.error_before_exec)

    def env(self, token: str) -> None:
        self.monkeypatch.setenv("DATABRICKS_HOST", self.sandbox.url)
        self.monkeypatch.setenv("DATABRICKS_TOKEN", token)
        self.monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(self.tmp / "absent.cfg"))


def env_with_a_line_break(p: Plant) -> str:
    p.env(PLANTED + "\n" + "tail")
    p.cell(f"%dbx_run {JOB} --out r1")
    p.cell("from dbx_magic import DatabricksClient\nDatabricksClient.from_config().get_job(1)")
    return PLANTED


def profile_with_a_non_latin1_character(p: Plant) -> str:
    path = p.tmp / "planted.cfg"
    path.write_text(f"[dev]\nhost = {p.sandbox.url}\ntoken = {PLANTED}\u2603\n", encoding="utf-8")
    p.monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(path))
    p.monkeypatch.delenv("DATABRICKS_TOKEN", raising=False)
    p.cell(f"%dbx_run {JOB} --profile dev --out r1")
    return PLANTED


def argument_with_a_line_break(p: Plant) -> str:
    p.shell.user_ns["planted"] = PLANTED + "\r\n-x"  # as if read from a file in an earlier session
    p.cell(f"from dbx_magic import DatabricksClient\nDatabricksClient({p.sandbox.url!r}, planted)")
    return PLANTED


def provider_with_a_line_break(p: Plant) -> str:
    p.shell.user_ns["provider"] = lambda: (PLANTED + "\n-x", 4_000_000_000.0)
    p.cell(
        "from dbx_magic import DatabricksClient, run_job_and_wait\n"
        f"run_job_and_wait(DatabricksClient({p.sandbox.url!r}, provider), {JOB!r})"
    )
    return PLANTED


def proxy_echoing_the_headers(p: Plant) -> str:
    p.env(p.sandbox.token)
    p.sandbox.inject("jobs/get", "echo_headers", status=400, count=1)
    p.cell(f"%dbx_run {JOB} --out r1")
    p.sandbox.inject(
        "jobs/run-now", "echo_headers", status=502, count=2
    )  # outlasts the retries (two attempts)
    p.cell(
        "from dbx_magic import DatabricksClient, run_job_and_wait\n"
        "from dbx_magic.api.client import RetryPolicy\n"
        "run_job_and_wait(DatabricksClient.from_config(retry=RetryPolicy(attempts=2, backoff=0.001, jitter=0)), "
        f"{JOB!r})"
    )
    magics = p.shell.magics_manager.registry["DbxMagics"]
    form = RunForm(session=magics.session, job=JOB)
    p.sandbox.inject("jobs/runs/get", "echo_headers", status=400, count=1)
    form.run()
    form.wait(timeout=30)  # the run as last seen (the poll failed)
    assert isinstance(form.error, DatabricksError) and form.error.run_id == form.run_id
    p.errors.append(form.error)
    p.texts += [form.status.value, repr(form)]
    return p.sandbox.token


def form_values(p: Plant) -> str:
    p.env(p.sandbox.token)
    magics = p.shell.magics_manager.registry["DbxMagics"]
    form = RunForm(session=magics.session, job=JOB)
    form.add_row("key", f"prefix {p.sandbox.token} suffix")
    form.run()
    assert form.error is not None and not form.running and "was cleared" in str(form.error)
    form.rows[-1].value.value = PLANTED
    form.run()
    assert form.error is not None and not form.running
    p.errors.append(form.error)
    p.texts += [form.status.value, repr(form)]
    return p.sandbox.token


PATHS = [
    env_with_a_line_break,
    profile_with_a_non_latin1_character,
    argument_with_a_line_break,
    provider_with_a_line_break,
    proxy_echoing_the_headers,
    form_values,
]


def chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def exception_texts(exc: BaseException) -> list[str]:
    """Every text an exception shows or holds: its traceback, repr, and each attribute of each one
    in its chain (a requests object among them would hold the headers, the token with them)."""
    texts = [formatted(exc)]
    for link in chain(exc):
        texts += [str(link), repr(link), repr(link.args)]
        for name, value in vars(link).items():
            texts.append(f"{name}={value!r}")
            for inner in ("headers", "request", "response"):
                if hasattr(value, inner):
                    texts.append(repr(getattr(value, inner)))
        assert not hasattr(link, "request") or link.request is None, f"{type(link).__name__} holds a request"
    return texts


@pytest.fixture
def planting(monkeypatch, tmp_path, caplog, make_sandbox):
    caplog.set_level(logging.DEBUG)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dbx_magic")
    shell.run_line_magic("xmode", "Verbose")
    yield Plant(make_sandbox(speed=50, clock=time.monotonic, epoch=None), shell, monkeypatch, tmp_path)
    shell.run_line_magic("xmode", "Context")
    shell.run_line_magic("unload_ext", "dbx_magic")


@pytest.mark.parametrize("path", PATHS, ids=[p.__name__ for p in PATHS])
def test_a_planted_token_reaches_no_output(planting, path, capfd, caplog):
    with capture_output(display=True) as shown:
        token = path(planting)
    out = capfd.readouterr()
    texts = [out.out, out.err, shown.stdout, shown.stderr, caplog.text]
    texts += [r.getMessage() for r in caplog.records] + planting.texts
    for exc in planting.errors:
        texts += exception_texts(exc)
    texts += [repr(v) for k, v in planting.shell.user_ns.items() if k.startswith("r")]
    texts.append(json.dumps(widgets.Widget.get_manager_state(drop_defaults=False), default=str))
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=out.out + shown.stdout)]
    cell.outputs += [nbformat.v4.new_output("display_data", data=o.data) for o in shown.outputs]
    notebook.cells.append(cell)
    texts.append(nbformat.writes(notebook))
    assert planting.errors, "the path must end in an error (that is where a token would be)"
    assert all(
        not isinstance(e, Exception) or isinstance(e, DatabricksError | UsageError) for e in planting.errors
    ), [type(e).__name__ for e in planting.errors]
    assert "Traceback" not in out.out, "an expected failure is one sentence, not a traceback"
    found = [t[:300] for t in texts if token in t or PLANTED in t]
    assert not found, found


def test_a_parameter_named_token_is_a_parameter(sandbox, clock):
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dbx_magic")
    try:
        magics = shell.magics_manager.registry["DbxMagics"]
        magics.session.refuse_secrets("%dbx_run x", "token = page-2\nnext_token = abc\n")  # not refused
        for refused in ("token = dapi" + "0a" * 16, "password = hunter2", f"token = {sandbox.token}"):
            magics.session.secrets.add(sandbox.token)
            with pytest.raises(DatabricksError, match="token does not belong"):
                magics.session.refuse_secrets("%dbx_run x", refused)
        with pytest.raises(DatabricksError, match="token does not belong"):
            magics.session.refuse_secrets("%dbx_run x --token abc", None)
    finally:
        shell.run_line_magic("unload_ext", "dbx_magic")
