"""The iterations of a run's for-each tasks, read once when the run has ended.

``runs/get`` of a for-each task's own run id lists its iterations (100 a page on 2.2; the client reads
every page), each a task run with its parameters and state; ``runs/get-output`` of an iteration's run id
gives its exit value or error. Outputs are read for every iteration up to :data:`OUTPUTS_READ`
iterations a task, beyond that for the failed ones only (a task of 5,000 iterations must not cost 5,000
requests at the end of its run).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..api.client import DatabricksClient
from ..errors import DatabricksError
from .models import Iteration, RunResult, TaskResult

__all__ = ["OUTPUTS_READ", "read_iterations", "with_iterations"]

log = logging.getLogger(__name__)

OUTPUTS_READ = 200
"""Iterations of one task whose outputs are all read; beyond it only the failed ones' are."""


def read_iterations(client: DatabricksClient, task: TaskResult) -> tuple[Iteration, ...]:
    """A for-each task run's iterations with their outputs (see the module docstring).

    Raises:
        DatabricksError: the iterations could not be listed.
    """
    if task.run_id is None:
        return ()
    answer = client.get_run(task.run_id, include_resolved_values=True)
    items = [i for i in answer.get("iterations") or () if isinstance(i, dict)]
    iterations = [Iteration.from_api(n, item) for n, item in enumerate(items)]
    every = len(iterations) <= OUTPUTS_READ
    return tuple(_with_output(client, it) if every or it.failed else it for it in iterations)


def _with_output(client: DatabricksClient, iteration: Iteration) -> Iteration:
    if iteration.run_id is None or iteration.result_state is None:
        return iteration
    try:
        output = client.get_run_output(iteration.run_id)
    except DatabricksError as exc:  # an iteration's output is a detail: keep its state
        log.debug("no output for iteration %s: %s", iteration.run_id, exc)
        return iteration
    notebook = output.get("notebook_output") or {}
    return replace(iteration, output=notebook.get("result"), error=output.get("error") or None)


def with_iterations(client: DatabricksClient, result: RunResult) -> RunResult:
    """The result with each ended for-each task's iterations read (a warning when they cannot be)."""
    if not any(t.iteration_counts is not None for t in result.tasks):
        return result
    warnings = list(result.warnings)
    tasks = []
    for task in result.tasks:
        if task.iteration_counts is not None and task.result_state is not None:
            try:
                task = replace(task, iterations=read_iterations(client, task))
            except DatabricksError as exc:
                warnings.append(f"The iterations of task {task.key!r} could not be read: {exc}")
        tasks.append(task)
    return replace(result, tasks=tuple(tasks), warnings=tuple(warnings))
