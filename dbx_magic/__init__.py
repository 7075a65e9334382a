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

from .errors import DatabricksError, RunFailed, RunInterrupted, WaitTimeout

if TYPE_CHECKING:
    from .api.client import DatabricksClient
    from .notebook.form import RunForm
    from .run.compare import RunComparison, compare_runs
    from .run.engine import RunHandle, Watcher
    from .run.journal import history
    from .run.launch import start_run
    from .run.models import RunResult
    from .run.polling import PollPolicy
    from .run.repair import repair_run
    from .run.runs import run_job_and_wait, start_background, wait_for_run
    from .run.sweep import run_many

# The public API: the contract names and the errors a caller catches. Everything else stays importable
# from its own module (``dbx_magic.errors``, ``dbx_magic.run.models``...); test helpers (the fake
# clock) are in ``dbx_magic.testing``.
_LAZY = {
    "DatabricksClient": "api.client",
    "RunForm": "notebook.form",
    "RunComparison": "run.compare",
    "compare_runs": "run.compare",
    "RunHandle": "run.engine",
    "Watcher": "run.engine",
    "history": "run.journal",
    "start_run": "run.launch",
    "RunResult": "run.models",
    "PollPolicy": "run.polling",
    "repair_run": "run.repair",
    "run_job_and_wait": "run.runs",
    "start_background": "run.runs",
    "wait_for_run": "run.runs",
    "run_many": "run.sweep",
}

__all__ = [
    "DatabricksClient",
    "DatabricksError",
    "PollPolicy",
    "RunComparison",
    "RunFailed",
    "RunForm",
    "RunHandle",
    "RunInterrupted",
    "RunResult",
    "WaitTimeout",
    "Watcher",
    "__version__",
    "compare_runs",
    "history",
    "repair_run",
    "run_job_and_wait",
    "run_many",
    "start_background",
    "start_run",
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
