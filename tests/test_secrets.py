"""Token hygiene: a recognisable token, used everywhere, found nowhere it must not be.

The sandbox's tokens all have one shape (``dsbx-`` and 32 hex digits); these tests drive the Python
API, the magics, the form and the demo with logging at DEBUG everywhere, and look for that shape in
every output, log record, exception text with its traceback, repr and widget state. (The executed
notebooks, widget state included, are checked in test_notebooks.py.)
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import traceback

import ipywidgets as widgets
import pytest
from IPython.core.interactiveshell import InteractiveShell

from dbx_magic import Config, DatabricksClient, DatabricksError, RetryPolicy, run_job_and_wait
from dbx_magic.notebook.form import RunForm
from dbx_magic.notebook.progress import describe
from dbx_magic.sandbox import Sandbox

TOKEN_SHAPE = re.compile(r"dsbx-[0-9a-f]{32}")


def leaks(texts: list[str], token: str) -> list[str]:
    return [t[:200] for t in texts if token in t or TOKEN_SHAPE.search(t)]


def formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_python_api_and_form_leak_no_token(caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3's included
    texts: list[str] = []
    with Sandbox(speed=50) as sb:
        client = DatabricksClient(sb.url, sb.token, retry=RetryPolicy(backoff=0.01, jitter=0))
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
            run_job_and_wait(DatabricksClient(sb.url, sb.token + "0"), "daily-sales-report")  # a wrong token
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


def test_magics_leak_no_token(caplog, capfd):
    caplog.set_level(logging.DEBUG)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "dbx_magic")
    try:
        shell.run_cell("%dbx_sandbox --speed 50")
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
        shell.run_line_magic("unload_ext", "dbx_magic")
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
