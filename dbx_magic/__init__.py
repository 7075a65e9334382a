"""dbx-magic: run existing Databricks jobs from a notebook, watch them, get their results.

``%load_ext dbx_magic`` registers the magics; the Python API is importable directly::

    from dbx_magic import DatabricksClient, run_job_and_wait
    result = run_job_and_wait(DatabricksClient.from_config(), 123, {"date": "2026-11-01"})

The names below are imported when first used, so that ``%load_ext`` stays cheap (the HTTP stack is
imported when the first magic needs it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .api.client import DatabricksClient, RetryPolicy
    from .api.config import Config
    from .api.ratelimit import RateLimiter
    from .clock import Clock, ManualClock
    from .notebook.form import RunForm
    from .run.background import RunHandle, Watcher, start_background
    from .run.declared import Declarations, declared_params
    from .run.journal import history
    from .run.launch import Launch, start_run
    from .run.models import RepairRecord, RunResult, TaskResult
    from .run.polling import PollPolicy
    from .run.repair import Repair, repair_run
    from .run.sweep import SweepFailed, run_many
    from .run.watch import WatchedRun, run_job_and_wait, wait_for_run

_LAZY = {
    "DatabricksClient": "api.client",
    "RetryPolicy": "api.client",
    "Config": "api.config",
    "RateLimiter": "api.ratelimit",
    "Clock": "clock",
    "ManualClock": "clock",
    "RunForm": "notebook.form",
    "Declarations": "run.declared",
    "declared_params": "run.declared",
    "Launch": "run.launch",
    "RunHandle": "run.background",
    "history": "run.journal",
    "Watcher": "run.background",
    "start_background": "run.background",
    "start_run": "run.launch",
    "RunResult": "run.models",
    "TaskResult": "run.models",
    "PollPolicy": "run.polling",
    "Repair": "run.repair",
    "repair_run": "run.repair",
    "RepairRecord": "run.models",
    "SweepFailed": "run.sweep",
    "run_many": "run.sweep",
    "WatchedRun": "run.watch",
    "run_job_and_wait": "run.watch",
    "wait_for_run": "run.watch",
}

__all__ = [
    "ApiError",
    "Clock",
    "Config",
    "ConfigError",
    "DatabricksClient",
    "DatabricksError",
    "Declarations",
    "InvalidInput",
    "Launch",
    "ManualClock",
    "PermissionDenied",
    "PollPolicy",
    "RateLimiter",
    "Repair",
    "RepairRecord",
    "ResourceDoesNotExist",
    "RetryPolicy",
    "RunFailed",
    "RunForm",
    "RunHandle",
    "RunInterrupted",
    "RunNotFinished",
    "RunResult",
    "SweepFailed",
    "TaskResult",
    "TransportError",
    "WaitTimeout",
    "WatchedRun",
    "Watcher",
    "__version__",
    "declared_params",
    "history",
    "load_ipython_extension",
    "repair_run",
    "run_job_and_wait",
    "run_many",
    "start_background",
    "start_run",
    "unload_ipython_extension",
    "wait_for_run",
]


def _version() -> str:
    """The version, read once from the package's metadata (pyproject.toml is its one source)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dbx-magic")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'dbx_magic' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dbx_magic``: register the magics."""
    from .notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext dbx_magic``: remove the magics."""
    from .notebook.magics import unload

    unload(ipython)
