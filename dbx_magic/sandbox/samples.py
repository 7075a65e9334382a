"""The sample jobs every sandbox starts with, each with five past successful runs.

| job | what it shows |
|---|---|
| ``daily-sales-report`` | a notebook job with ``base_parameters`` (date, table); exit value echoes them plus ``rows`` |
| ``train-model`` | job-level ``parameters`` (model_name, max_depth, learning_rate); exit value echoes them plus ``auc`` |
| ``etl-pipeline`` | three tasks, ingest -> transform -> publish, each with an exit value |
| ``flaky-ingest`` | fails with ``ValueError: asked to fail`` when run with ``fail=true`` |
| ``nightly-backfill`` | ``max_concurrent_runs=1`` with queueing: a second run waits QUEUED |

At speed 1 a run takes 3-5 s. The notebooks are plain functions of their parameters (see ``Task.notebook``).
"""

from __future__ import annotations

import json
import zlib

from dbx_magic.sandbox.workspace import Task, Workspace

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


def add_samples(ws: Workspace) -> None:
    """Add the sample jobs (and their history) to a workspace."""
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
