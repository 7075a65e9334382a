"""The sample jobs every sandbox starts with, each with five past successful runs.

| job | what it shows |
|---|---|
| ``daily-sales-report`` | a notebook job with ``base_parameters`` (date, table); exit value echoes them plus ``rows`` |
| ``train-model`` | job-level ``parameters`` (model_name, max_depth, learning_rate); exit value echoes them plus ``auc`` |
| ``etl-pipeline`` | three tasks, ingest -> transform -> publish, each with an exit value |
| ``flaky-ingest`` | fails with ``ValueError: asked to fail`` when run with ``fail=true`` |
| ``nightly-backfill`` | ``max_concurrent_runs=1`` with queueing: a second run waits QUEUED |
| ``etl-with-checks`` | job parameters (run_date, strict, checks): ingest -> validate -> publish; validate fails when ``strict=true`` (repair it with ``strict=false``) |
| ``regional-scoring`` | a for-each task over six regions (two at a time), then a condition task on the job parameter ``notify``; ``notify_owners`` runs only when it is ``true``, and its notebook source is not readable (403) |
| ``wide-batch`` | 120 independent small tasks ``part_001`` ... ``part_120``: more than one 2.2 page |
| ``store-forecast`` | a for-each task over 150 stores (15 at a time); with ``horizon_days`` over 28 the iteration of ``store_117`` fails (too little history) |
| ``attribution-daily`` | job parameters (run_date, lookback_days) referred to as ``{{job.parameters...}}`` in task parameters (resolved values); a disabled task ``legacy_export`` |
| ``gpu-training`` | its cluster fails to start: PENDING, then INTERNAL_ERROR with ``CLUSTER_ERROR`` (a cloud failure) |
| ``shared-refresh`` | is cancelled by another user while it runs (``USER_CANCELED``) |
| ``finance-close`` | the token may view it but not run, cancel or repair it (403 ``PERMISSION_DENIED``) |

At speed 1 a run takes 3-5 s. The notebooks are plain functions of their parameters (see ``Task.notebook``);
each notebook path has a source (``workspace/export``) declaring its parameters as widgets: ``text``
(among them the date ``date``), ``dropdown`` (among them the true/false ``fail`` and ``strict``),
``combobox`` (``learning_rate``) and ``multiselect`` (``checks``).
"""

from __future__ import annotations

import json
import zlib

from dbx_magic.sandbox.workspace import Condition, ForEach, Phase, Task, Workspace

HISTORY = 5
"""Past successful runs per sample job."""


def _figure(*parts: str, low: int, high: int) -> int:
    """A made-up but stable number for these inputs."""
    return low + zlib.crc32("|".join(parts).encode()) % (high - low)


def daily_sales_report(params: dict[str, str]) -> str:
    """Count the day's sales rows."""
    rows = _figure(params.get("date", ""), params.get("table", ""), low=10_000, high=99_999)
    return json.dumps({**params, "rows": rows})


def train_model(params: dict[str, str]) -> str:
    """Train a model and report its AUC."""
    auc = _figure(*(f"{k}={v}" for k, v in sorted(params.items())), low=8_000, high=9_500) / 10_000
    return json.dumps({**params, "auc": auc})


def ingest(params: dict[str, str]) -> str:
    """Land the raw orders."""
    return json.dumps({"source": params.get("source", ""), "rows_ingested": 12_840})


def transform(params: dict[str, str]) -> str:
    """Clean the orders."""
    return json.dumps({"rows_out": 12_612, "rows_rejected": 228})


def publish(params: dict[str, str]) -> str:
    """Publish the gold table."""
    return json.dumps({"table": params.get("target", ""), "version": 42})


def flaky_ingest(params: dict[str, str]) -> str:
    """Ingest events, or fail when asked to."""
    if params.get("fail", "false").strip().lower() == "true":
        raise ValueError("asked to fail")
    rows = _figure(params.get("source", ""), low=1_000, high=9_999)
    return json.dumps({"source": params.get("source", ""), "rows": rows})


def nightly_backfill(params: dict[str, str]) -> str:
    """Rebuild the last N days of partitions."""
    days = int(params.get("days", "7"))
    return json.dumps({"days": days, "partitions_rebuilt": days * 24})


def ingest_orders(params: dict[str, str]) -> str:
    """Land the day's orders."""
    rows = _figure(params.get("run_date", ""), low=5_000, high=20_000)
    return json.dumps({"run_date": params.get("run_date", ""), "rows_ingested": rows})


def validate_orders(params: dict[str, str]) -> str:
    """Check the orders; the strict checks find bad rows."""
    checks = [c for c in params.get("checks", "").split(",") if c]
    if params.get("strict", "false").strip().lower() == "true":
        raise ValueError("strict checks failed: 3 rows with a null customer_id")
    return json.dumps({"checks": checks, "passed": len(checks), "warnings": 3})


def publish_orders(params: dict[str, str]) -> str:
    """Publish the checked orders."""
    return json.dumps({"table": params.get("target", ""), "run_date": params.get("run_date", "")})


def score_region(params: dict[str, str]) -> str:
    """Score one region's customers."""
    region = params.get("region", "")
    return json.dumps({"region": region, "scored": _figure(region, low=1_000, high=9_000)})


def notify_owners(params: dict[str, str]) -> str:
    """Tell the owners the scores are in."""
    return json.dumps({"channel": params.get("channel", ""), "notified": True})


def forecast_store(params: dict[str, str]) -> str:
    """Forecast one store's sales; store_117 opened recently and has four weeks of history."""
    store, horizon = params.get("store", ""), int(params.get("horizon", "28") or 28)
    if store == "store_117" and horizon > 28:
        raise ValueError(f"store_117 has 28 days of sales history, too few for a {horizon}-day horizon")
    return json.dumps({"store": store, "forecast": _figure(store, str(horizon), low=100, high=999)})


def load_touches(params: dict[str, str]) -> str:
    """Load the marketing touches of the window."""
    rows = _figure(params.get("from_date", ""), params.get("window", ""), low=50_000, high=90_000)
    return json.dumps(
        {"from_date": params.get("from_date", ""), "window": params.get("window", ""), "rows": rows}
    )


def attribute(params: dict[str, str]) -> str:
    """Attribute the conversions to the touches."""
    return json.dumps({"model": params.get("model", ""), "conversions": 1_284})


def process_part(params: dict[str, str]) -> str:
    """Process one part of the batch."""
    return json.dumps(
        {"part": params.get("part", ""), "rows": _figure(params.get("part", ""), low=10, high=99)}
    )


REGIONS = ("emea", "amer", "apac", "latam", "anz", "india")
STORES = tuple(f"store_{i:03d}" for i in range(1, 151))
WIDE_TASKS = 120


def _source(title: str, *widgets: str, body: str = 'dbutils.notebook.exit("done")') -> str:
    """A Databricks Python notebook source: a title cell, the widgets cell, the body cell."""
    cells = [f"# MAGIC %md\n# MAGIC # {title}", "\n".join(widgets), body]
    return "# Databricks notebook source\n" + "\n\n# COMMAND ----------\n\n".join(cells) + "\n"


_EXIT = "import json\n\ndbutils.notebook.exit(json.dumps({k: dbutils.widgets.get(k) for k in %s}))"
SOURCES = {
    "/Workspace/Shared/reports/daily_sales_report": _source(
        "Daily sales report",
        'dbutils.widgets.text("date", "2026-11-01", "Report date (YYYY-MM-DD)")',
        'dbutils.widgets.dropdown("table", "main.sales.transactions", '
        '["main.sales.transactions", "main.sales.returns"], "Table")',
        body=_EXIT % '["date", "table"]',
    ),
    "/Workspace/Shared/ml/train_model": _source(
        "Train the churn model",
        'dbutils.widgets.text("model_name", "churn-xgb", "Model name")',
        'dbutils.widgets.dropdown("max_depth", "6", ["4", "6", "8", "10"], "Max depth")',
        'dbutils.widgets.combobox("learning_rate", "0.1", ["0.01", "0.05", "0.1", "0.3"], "Learning rate")',
        body=_EXIT % '["model_name", "max_depth", "learning_rate"]',
    ),
    "/Workspace/Shared/etl/ingest": _source(
        "Ingest orders", 'dbutils.widgets.text("source", "", "Landing path")', body=_EXIT % '["source"]'
    ),
    "/Workspace/Shared/etl/transform": _source("Transform orders", "# no parameters"),
    "/Workspace/Shared/etl/publish": _source(
        "Publish orders", 'dbutils.widgets.text("target", "main.gold.orders", "Target table")'
    ),
    "/Workspace/Shared/ingest/flaky_ingest": _source(
        "Flaky ingest",
        'dbutils.widgets.text("source", "events", "Source")',
        'dbutils.widgets.dropdown("fail", "false", ["true", "false"], "Fail on purpose")',
        body='if dbutils.widgets.get("fail") == "true":\n    raise ValueError("asked to fail")',
    ),
    "/Workspace/Shared/maintenance/nightly_backfill": _source(
        "Nightly backfill", 'dbutils.widgets.dropdown("days", "7", ["1", "7", "14", "30"], "Days to rebuild")'
    ),
    "/Workspace/Shared/checks/ingest_orders": _source(
        "Ingest the day's orders", 'dbutils.widgets.text("run_date", "2026-11-01", "Run date")'
    ),
    "/Workspace/Shared/checks/validate_orders": _source(
        "Validate orders",
        'dbutils.widgets.dropdown("strict", "false", ["true", "false"], "Strict checks")',
        'dbutils.widgets.multiselect("checks", "not_null,unique", ["not_null", "unique", "freshness"], "Checks")',
    ),
    "/Workspace/Shared/checks/publish_orders": _source(
        "Publish checked orders", 'dbutils.widgets.text("target", "main.gold.checked_orders", "Target table")'
    ),
    "/Workspace/Shared/scoring/score_region": _source(
        "Score a region",
        'dbutils.widgets.text("region", "emea", "Region")',
        'dbutils.widgets.dropdown("model", "churn-xgb", ["churn-xgb", "churn-lr"], "Model")',
    ),
    "/Workspace/Shared/batch/process_part": _source(
        "Process a part", 'dbutils.widgets.text("part", "001", "Part")'
    ),
}
"""Notebook path -> source, for every sample notebook but ``notify_owners`` (unreadable)."""


def add_samples(ws: Workspace) -> None:
    """Add the sample jobs (and their history) to a workspace."""
    for path, source in SOURCES.items():
        ws.add_notebook(path, source)
    _add_first_samples(ws)
    _add_round_two_samples(ws)
    _add_round_three_samples(ws)


def _add_first_samples(ws: Workspace) -> None:
    ws.add_job(
        "daily-sales-report",
        tasks=[
            Task(
                "report",
                "/Workspace/Shared/reports/daily_sales_report",
                {"date": "2026-11-01", "table": "main.sales.transactions"},
                duration=2.0,
                notebook=daily_sales_report,
            )
        ],
        history=HISTORY,
    )
    ws.add_job(
        "train-model",
        tasks=[Task("train", "/Workspace/Shared/ml/train_model", duration=3.0, notebook=train_model)],
        parameters={"model_name": "churn-xgb", "max_depth": "6", "learning_rate": "0.1"},
        history=HISTORY,
    )
    lake = "abfss://landing@sandboxlake.dfs.core.windows.net/orders"
    ws.add_job(
        "etl-pipeline",
        tasks=[
            Task("ingest", "/Workspace/Shared/etl/ingest", {"source": lake}, (), 1.0, ingest),
            Task("transform", "/Workspace/Shared/etl/transform", {}, ("ingest",), 1.5, transform),
            Task(
                "publish",
                "/Workspace/Shared/etl/publish",
                {"target": "main.gold.orders"},
                ("transform",),
                0.8,
                publish,
            ),
        ],
        history=HISTORY,
    )
    ws.add_job(
        "flaky-ingest",
        tasks=[
            Task(
                "ingest",
                "/Workspace/Shared/ingest/flaky_ingest",
                {"source": "events", "fail": "false"},
                duration=1.5,
                notebook=flaky_ingest,
            )
        ],
        history=HISTORY,
    )
    ws.add_job(
        "nightly-backfill",
        tasks=[
            Task(
                "backfill",
                "/Workspace/Shared/maintenance/nightly_backfill",
                {"days": "7"},
                duration=2.5,
                notebook=nightly_backfill,
            )
        ],
        max_concurrent_runs=1,
        queue=True,
        history=HISTORY,
    )


def _add_round_two_samples(ws: Workspace) -> None:
    ws.add_job(
        "etl-with-checks",
        tasks=[
            Task("ingest", "/Workspace/Shared/checks/ingest_orders", {}, (), 0.8, ingest_orders),
            Task(
                "validate",
                "/Workspace/Shared/checks/validate_orders",
                {"checks": "not_null,unique"},
                ("ingest",),
                0.8,
                validate_orders,
            ),
            Task(
                "publish",
                "/Workspace/Shared/checks/publish_orders",
                {"target": "main.gold.checked_orders"},
                ("validate",),
                0.6,
                publish_orders,
            ),
        ],
        parameters={"run_date": "2026-11-01", "strict": "false", "checks": "not_null,unique"},
        history=HISTORY,
    )
    ws.add_job(
        "regional-scoring",
        tasks=[
            Task(
                "score_regions",
                "/Workspace/Shared/scoring/score_region",
                {"region": "{{input}}", "model": "churn-xgb"},
                duration=0.8,
                notebook=score_region,
                for_each=ForEach(REGIONS, concurrency=2),
            ),
            Task(
                "check_notify",
                "",
                depends_on=("score_regions",),
                duration=0.2,
                condition=Condition("{{job.parameters.notify}}", "EQUAL_TO", "true"),
            ),
            Task(
                "notify_owners",
                "/Workspace/Shared/scoring/notify_owners",
                {"channel": "#churn-scores"},
                (("check_notify", "true"),),
                0.5,
                notify_owners,
                readable=False,
            ),
        ],
        parameters={"notify": "false"},
        history=HISTORY,
    )
    ws.add_job(
        "wide-batch",
        tasks=[
            Task(
                f"part_{i:03d}",
                "/Workspace/Shared/batch/process_part",
                {"part": f"{i:03d}"},
                duration=1.0,
                notebook=process_part,
            )
            for i in range(1, WIDE_TASKS + 1)
        ],
        history=HISTORY,
    )


CLUSTER_FAILED = (
    "Cluster 1207-081533-gpu4a100 could not start: Azure could not allocate Standard_NC24ads_A100_v4 "
    "instances in westeurope (AllocationFailed). Try another node type or region, or retry later."
)
CANCELLED_BY = "maria.lopez@example.com"


def _add_round_three_samples(ws: Workspace) -> None:
    ws.add_job(
        "store-forecast",
        tasks=[
            Task(
                "forecast_stores",
                "/Workspace/Shared/forecast/forecast_store",
                {"store": "{{input}}", "horizon": "{{job.parameters.horizon_days}}"},
                duration=0.2,
                notebook=forecast_store,
                for_each=ForEach(STORES, concurrency=15),
            )
        ],
        parameters={"horizon_days": "28"},
        history=HISTORY,
    )
    ws.add_job(
        "attribution-daily",
        tasks=[
            Task(
                "load_touches",
                "/Workspace/Shared/marketing/load_touches",
                {"from_date": "{{job.parameters.run_date}}", "window": "{{job.parameters.lookback_days}}d"},
                duration=0.8,
                notebook=load_touches,
            ),
            Task(
                "legacy_export",
                "/Workspace/Shared/marketing/legacy_export",
                {"target": "sftp://legacy.example.com/attribution"},
                duration=0.5,
                disabled=True,
            ),
            Task(
                "attribute",
                "/Workspace/Shared/marketing/attribute",
                {"model": "last-touch", "run": "{{job.run_id}}"},
                ("load_touches",),
                0.8,
                attribute,
            ),
        ],
        parameters={"run_date": "2026-11-01", "lookback_days": "30"},
        history=HISTORY,
    )
    ws.add_job(
        "gpu-training",
        tasks=[Task("train", "/Workspace/Shared/ml/train_gpu", duration=3.0)],
        script=[
            ("PENDING", 4.0, "Waiting for cluster"),
            Phase("INTERNAL_ERROR", result="FAILED", message=CLUSTER_FAILED, code="CLUSTER_ERROR"),
        ],
        history=HISTORY,
    )
    ws.add_job(
        "shared-refresh",
        tasks=[Task("refresh", "/Workspace/Shared/dashboards/refresh", duration=3.0)],
        script=[
            ("PENDING", 1.0, "Waiting for cluster"),
            ("RUNNING", 2.0),
            ("TERMINATING", 0.5, "Run cancellation requested."),
            Phase(
                "TERMINATED",
                result="CANCELED",
                message=f"Run cancelled by {CANCELLED_BY}.",
                code="USER_CANCELED",
            ),
        ],
        history=HISTORY,
    )
    ws.add_job(
        "finance-close",
        tasks=[
            Task("close_books", "/Workspace/Shared/finance/close_books", {"period": "2026-11"}, duration=2.0)
        ],
        history=HISTORY,
        runnable=False,
    )
