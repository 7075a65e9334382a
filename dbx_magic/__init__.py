"""dbx-magic: run existing Databricks jobs from a notebook, watch them, get their results.

``%load_ext dbx_magic`` registers the magics; the Python API is importable directly::

    from dbx_magic import DatabricksClient, run_job_and_wait
    result = run_job_and_wait(DatabricksClient.from_config(), 123, {"date": "2026-11-01"})
"""

from __future__ import annotations

from typing import Any

from .client import DatabricksClient, RetryPolicy
from .config import Config
from .errors import (
    ApiError,
    ConfigError,
    DatabricksError,
    InvalidInput,
    PermissionDenied,
    ResourceDoesNotExist,
    RunFailed,
    RunInterrupted,
    RunNotFinished,
    TransportError,
    WaitTimeout,
)
from .models import RunResult, TaskResult
from .workflow import run_job_and_wait, start_run, wait_for_run

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "Config",
    "ConfigError",
    "DatabricksClient",
    "DatabricksError",
    "InvalidInput",
    "PermissionDenied",
    "ResourceDoesNotExist",
    "RetryPolicy",
    "RunFailed",
    "RunInterrupted",
    "RunNotFinished",
    "RunResult",
    "TaskResult",
    "TransportError",
    "WaitTimeout",
    "__version__",
    "load_ipython_extension",
    "run_job_and_wait",
    "start_run",
    "unload_ipython_extension",
    "wait_for_run",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dbx_magic``: register the magics."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext dbx_magic``: remove the magics."""
    from .magics import unload

    unload(ipython)
