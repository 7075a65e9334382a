"""What a job declares: notebook sources parsed (never run), the check of a launch's parameters
against the declarations, and the pure renderers of results (ANSI traces, timing), with the client's
two new calls at the HTTP level."""

from __future__ import annotations

import base64

import pytest
import responses

from dbx_magic import RunResult
from dbx_magic.errors import InvalidInput, PermissionDenied, ResourceDoesNotExist, TransportError
from dbx_magic.run.declared import Declarations, Declared, parse_widgets
from dbx_magic.run.outputs import ansi_to_html, strip_ansi
from dbx_magic.run.timing import Timing

from .conftest import HOST

PY = "# Databricks notebook source\n"
CELL = "\n\n# COMMAND ----------\n\n"

# (what, source, the declarations expected as (name, kind, default, choices, label), unsure)
SOURCES: list[
    tuple[str, str, list[tuple[str, str, str | None, tuple[str, ...] | None, str | None]], bool]
] = [
    (
        "python text, positional",
        PY + 'dbutils.widgets.text("date", "2026-11-01", "Report date")',
        [("date", "text", "2026-11-01", None, "Report date")],
        False,
    ),
    (
        "python dropdown with keywords",
        PY
        + 'dbutils.widgets.dropdown(name="fail", defaultValue="false", choices=["true", "false"], label="Fail")',
        [("fail", "dropdown", "false", ("true", "false"), "Fail")],
        False,
    ),
    (
        "combobox and multiselect across cells",
        PY
        + 'dbutils.widgets.combobox("lr", "0.1", ["0.01", "0.1"])'
        + CELL
        + 'dbutils.widgets.multiselect("checks", "a,b", ("a", "b", "c"), "Checks")',
        [
            ("lr", "combobox", "0.1", ("0.01", "0.1"), None),
            ("checks", "multiselect", "a,b", ("a", "b", "c"), "Checks"),
        ],
        False,
    ),
    (
        "a call over several lines, a paren inside a string",
        PY + 'dbutils.widgets.text(\n    "label",\n    "a (b)",\n    "Label )",\n)',
        [("label", "text", "a (b)", None, "Label )")],
        False,
    ),
    ("a commented-out declaration", PY + '# dbutils.widgets.text("old", "x")', [], False),
    (
        "a SQL cell in a Python notebook",
        PY + "# MAGIC %sql\n# MAGIC CREATE WIDGET TEXT region DEFAULT 'emea'",
        [("region", "text", "emea", None, None)],
        False,
    ),
    (
        "a SQL notebook with a dropdown of values",
        '-- Databricks notebook source\nCREATE WIDGET DROPDOWN env DEFAULT "dev" CHOICES '
        'SELECT * FROM (VALUES ("dev"), ("prod"));',
        [("env", "dropdown", "dev", ("dev", "prod"), None)],
        False,
    ),
    (
        "a SQL dropdown whose choices come from a table",
        "-- Databricks notebook source\nCREATE WIDGET DROPDOWN `my state` DEFAULT 'CA' CHOICES "
        "SELECT DISTINCT state FROM main.geo.states",
        [("my state", "dropdown", "CA", None, None)],
        False,
    ),
    (
        "Scala's Seq and R's c()",
        '// Databricks notebook source\ndbutils.widgets.dropdown("a", "1", Seq("1", "2"))\n'
        'dbutils.widgets.dropdown("b", "x", c("x", "y"))',
        [("a", "dropdown", "1", ("1", "2"), None), ("b", "dropdown", "x", ("x", "y"), None)],
        False,
    ),
    (
        "a name computed at run time",
        PY + 'for n in names:\n    dbutils.widgets.text(n, "")',
        [],
        True,
    ),
    (
        "a default that is code is not run",
        PY + 'dbutils.widgets.text("cmd", __import__("os").getcwd())',
        [("cmd", "text", None, None, None)],
        False,
    ),
    (
        "reads count as taking the name",
        PY + 'x = dbutils.widgets.get("limit")\ny = getArgument("mode", "fast")',
        [("limit", "text", None, None, None), ("mode", "text", None, None, None)],
        False,
    ),
    (
        "a read after the declaration keeps the declaration",
        PY + 'dbutils.widgets.dropdown("d", "1", ["1", "2"])\nv = dbutils.widgets.get("d")',
        [("d", "dropdown", "1", ("1", "2"), None)],
        False,
    ),
    (
        "broken code does not stop the parse",
        PY + "def (:\n" + 'dbutils.widgets.text("ok", "1")',
        [("ok", "text", "1", None, None)],
        False,
    ),
    ("an unclosed call", PY + 'dbutils.widgets.text("half", ', [], True),
    ("nothing declared", PY + "print(1)", [], False),
]


@pytest.mark.parametrize(("what", "source", "expected", "unsure"), SOURCES, ids=[s[0] for s in SOURCES])
def test_widgets_are_read_from_the_source(what, source, expected, unsure):
    found, computed = parse_widgets(source)
    assert [(d.name, d.kind, d.default, d.choices, d.label) for d in found] == expected
    assert computed is unsure


def declarations(complete: bool = True) -> Declarations:
    params = {
        "date": Declared("date", "text", "2026-11-01"),
        "table": Declared("table", "dropdown", "a.b", ("a.b", "a.c")),
        "checks": Declared("checks", "multiselect", "x", ("x", "y", "z")),
        "lr": Declared("lr", "combobox", "0.1", ("0.1", "0.3")),
    }
    return Declarations(
        7, "report", params, () if complete else ("the source of notebook /n could not be read",)
    )


# (what, parameters, words in the refusal (None: accepted))
CHECKS: list[tuple[str, dict[str, str], str | None]] = [
    ("declared names and values", {"date": "2026-01-01", "table": "a.c", "checks": "x,z"}, None),
    ("no parameters", {}, None),
    ("a misspelt name", {"dat": "2026-01-01"}, "declares no parameter 'dat' (did you mean 'date'?)"),
    ("a name in the wrong case", {"Date": "x"}, "did you mean 'date'?"),
    ("a name with nothing close", {"zzz": "1"}, "(it takes 'date', 'table', 'checks', 'lr')"),
    ("two unknown names", {"dat": "1", "tabel": "2"}, "parameters 'dat' (did you mean 'date'?) and 'tabel'"),
    (
        "a value outside a dropdown",
        {"table": "a.d"},
        "The dropdown 'table' of job 'report' takes 'a.b', 'a.c', not 'a.d'",
    ),
    ("an item outside a multiselect", {"checks": "x,w"}, "takes 'x', 'y', 'z', not 'w'"),
    ("a combobox takes any value", {"lr": "0.7"}, None),
    ("an empty multiselect", {"checks": ""}, None),
]


@pytest.mark.parametrize(("what", "params", "words"), CHECKS, ids=[c[0] for c in CHECKS])
def test_the_check_refuses_what_the_job_does_not_take(what, params, words):
    if words is None:
        assert declarations().check(params) == ()
        return
    with pytest.raises(InvalidInput) as info:
        declarations().check(params)
    message = str(info.value)
    assert words in message and "--allow-unknown-params" in message and "\n" not in message
    assert declarations().check(params, allow_unknown=True) == ()  # sent as given when asked
    (warning,) = declarations(complete=False).check(params)  # a warning when a source is unreadable
    assert "it is sent as given, since the source of notebook /n could not be read" in warning


def test_a_job_that_declares_nothing_says_so():
    with pytest.raises(InvalidInput, match=r"declares no parameter 'x' \(it declares none\)"):
        Declarations(1, None, {}).check({"x": "1"})


def test_merged_declarations_keep_the_widget_kind_and_the_job_default():
    job = Declared("strict", default="false", where=("job parameter",))
    widget = Declared("strict", "dropdown", "true", ("true", "false"), "Strict", ("notebook /v",))
    merged = job.merged(widget)
    assert (merged.kind, merged.default, merged.choices, merged.label) == (
        "dropdown",
        "false",
        ("true", "false"),
        "Strict",
    )
    assert merged.where == ("job parameter", "notebook /v") and merged.is_flag


@pytest.mark.parametrize(
    ("declared", "flag", "date"),
    [
        (Declared("d", "text", "2026-11-01"), False, True),
        (Declared("d", "text", "11/01/2026"), False, False),
        (Declared("d", "dropdown", "2026-11-01", ("2026-11-01",)), False, False),
        (Declared("f", "dropdown", "false", ("True", "False")), True, False),
        (Declared("f", "dropdown", "no", ("yes", "no")), False, False),
        (Declared("f", "combobox", "true", ("true", "false")), False, False),
        (Declared("t", "text", None), False, False),
    ],
)
def test_which_parameters_are_dates_and_flags(declared, flag, date):
    assert (declared.is_flag, declared.is_date) == (flag, date)


# -- results rendered -------------------------------------------------------------------------------

ANSI = [
    ("\x1b[0;31mValueError\x1b[0m: no", '<span style="color:#c62828">ValueError</span>: no'),
    ("\x1b[1mbold\x1b[22m plain", '<span style="font-weight:bold">bold</span> plain'),
    ("\x1b[38;5;196mx\x1b[39m", '<span style="color:#ff0000">x</span>'),
    ("\x1b[38;2;1;2;3mx", '<span style="color:#010203">x</span>'),
    ("\x1b[92;41mx\x1b[m", '<span style="color:#66bb6a;background:#c62828">x</span>'),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("\x1b[2Kcleared", "cleared"),
    ("\x1b[38;5mbroken", "broken"),
    ("no codes", "no codes"),
]


@pytest.mark.parametrize(("text", "expected"), ANSI)
def test_ansi_colours_become_html(text, expected):
    assert ansi_to_html(text) == expected
    assert "\x1b" not in strip_ansi(text)


def test_a_failed_task_shows_its_cause_first_with_its_colours_and_a_cut_output_is_flagged():
    run = {
        "run_id": 9,
        "job_id": 1,
        "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
        "tasks": [
            {
                "task_key": "load",
                "run_id": 91,
                "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED"},
            },
            {
                "task_key": "big",
                "run_id": 92,
                "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
            },
        ],
    }
    trace = "\x1b[0;31m---------\x1b[0m\n\x1b[0;31mKeyError\x1b[0m: 'region' <missing>"
    result = RunResult.from_api(run)
    load, big = result.tasks
    tasks = (
        load.with_output({"error": "KeyError: 'region'", "error_trace": trace}),
        big.with_output({"notebook_output": {"result": "x" * 100, "truncated": True}}),
    )
    from dataclasses import replace

    page = replace(result, tasks=tasks)._repr_html_()
    cause = page.index("KeyError: &#x27;region&#x27;</span>")
    assert cause < page.index('class="dbx-result-trace"')  # the cause, then the trace
    assert '<span style="color:#c62828">KeyError</span>: &#x27;region&#x27; &lt;missing&gt;' in page
    assert "[cut by the API at 5 MB]" in page
    assert "\x1b" not in replace(result, tasks=tasks).summary_text()


TIMINGS = [
    (
        {
            "queue_duration": 1000,
            "setup_duration": 30000,
            "execution_duration": 120000,
            "cleanup_duration": 5000,
        },
        "queue 1.0 s · set-up 30 s · execution 2:00 · clean-up 5.0 s",
    ),
    (
        {"setup_duration": 0, "execution_duration": 0, "cleanup_duration": 0, "run_duration": 94000},
        "run 1:34",
    ),
    ({"queue_duration": 65000, "run_duration": 3_723_000}, "queue 1:05 · run 1:02:03"),
    ({"execution_duration": "x"}, ""),
    ({}, ""),
]


@pytest.mark.parametrize(("fields", "text"), TIMINGS)
def test_timing_reads_the_api_durations(fields, text):
    timing = Timing.from_api(fields)
    assert timing.text() == text and bool(timing) is bool(text)


def test_the_result_shows_the_run_and_task_timing():
    result = RunResult.from_api(
        {
            "run_id": 3,
            "state": {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS"},
            "queue_duration": 2000,
            "run_duration": 50000,
            "tasks": [
                {"task_key": "a", "setup_duration": 10000, "execution_duration": 20000, "state": {}},
                {"task_key": "b", "execution_duration": 15000, "state": {}},
            ],
        }
    )
    assert result.timing.queue == 2.0 and result.tasks[0].timing.setup == 10.0
    text, page = result.summary_text(), result._repr_html_()
    assert "queue 2.0 s · run 50 s" in text and "task a: None (set-up 10 s · execution 20 s)" in text
    assert "set-up 10 s · execution 20 s" in page and "queue 2.0 s · run 50 s" in page


# -- the client's calls -----------------------------------------------------------------------------


def test_export_notebook_reads_the_workspace_api_and_decodes(client, rsps):
    source = PY + 'dbutils.widgets.text("é", "ü")'
    rsps.get(
        f"{HOST}/api/2.0/workspace/export",
        match=[responses.matchers.query_param_matcher({"path": "/Shared/n", "format": "SOURCE"})],
        json={"content": base64.b64encode(source.encode()).decode(), "file_type": "py"},
    )
    assert client.export_notebook("/Shared/n") == source


@pytest.mark.parametrize(
    ("status", "body", "error", "words"),
    [
        (
            404,
            {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Path (/x) doesn't exist."},
            ResourceDoesNotExist,
            "doesn't exist",
        ),
        (403, {"error_code": "PERMISSION_DENIED", "message": "no Can Read"}, PermissionDenied, "Can Read"),
        (200, {"content": "not base64!"}, TransportError, "no readable source"),
        (200, {}, TransportError, "no readable source"),
    ],
)
def test_export_notebook_errors(client, rsps, status, body, error, words):
    rsps.get(f"{HOST}/api/2.0/workspace/export", status=status, json=body)
    with pytest.raises(error, match=words):
        client.export_notebook("/x")


def test_export_run_asks_for_the_views(client, rsps):
    rsps.get(
        f"{HOST}/api/2.2/jobs/runs/export",
        match=[responses.matchers.query_param_matcher({"run_id": "77", "views_to_export": "ALL"})],
        json={"views": [{"content": "<html></html>", "name": "n", "type": "NOTEBOOK"}]},
    )
    assert client.export_run(77, "ALL")["views"][0]["name"] == "n"


@pytest.mark.parametrize(
    ("declared", "kind", "good", "bad"),
    [
        (
            Declared("d", "text", "2026-11-01"),
            "date",
            ["2026-02-28", "", "{{job.start_time.iso_date}}"],
            ["2026-02-30", "2026-1-1", "today"],
        ),
        (Declared("n", "text", "100"), "integer", ["7", "-3", "007"], ["2.5", "many", "1e3"]),
        (Declared("r", "text", "0.5"), "number", ["1", "1e-3", ".5"], ["fast", "nan", "1,5"]),
        (Declared("b", "text", "false"), "boolean", ["true", "false"], ["True", "yes", "1"]),
        (Declared("c", "combobox", "0.1", ("0.01", "0.1")), "number", ["0.3"], ["high"]),
        (Declared("c", "combobox", "0.1", ("0.1", "auto")), None, ["auto", "x"], []),
        (Declared("t", "text", "main.sales"), None, ["anything"], []),
        (Declared("f", "dropdown", "6", ("4", "6")), None, ["9"], []),  # its choices judge it
    ],
)
def test_a_default_shows_the_type_and_other_values_are_refused(declared, kind, good, bad):
    assert declared.value_type == kind
    assert [v for v in good if declared.mistyped(v)] == []
    assert [v for v in bad if not declared.mistyped(v)] == []
