"""python -m dbx_magic: run, wait for, repair and cancel jobs of your workspace; demo and sandbox on loopback.

Each command's one-line help is given where it is declared (``_parser``), so ``--help`` lists it once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from .errors import CLI, DatabricksError, InvalidInput, RunInterrupted
from .run.checks import check_if_running, check_performance_target, task_keys

__all__ = ["main"]


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number: give one such as 5.")
    return value


def _run_id(text: str) -> int:
    from .run.checks import positive_id

    try:
        return positive_id(text, "run id")
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _choice(check: Any) -> Any:
    """An argparse type from a check that raises InvalidInput (argparse then shows its sentence)."""

    def convert(text: str) -> Any:
        try:
            return check(text)
        except InvalidInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _params(given: list[str]) -> dict[str, str]:
    from .run.params import parse_param_lines

    bad = [p for p in given if "=" not in p]
    if bad:
        raise InvalidInput(f"-p {bad[0]} has no '=': write -p NAME=VALUE, one -p per parameter.")
    return parse_param_lines("\n".join(given))


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """The text progress of a run, its line ended whatever happens (Ctrl-C included), so what is
    printed next starts on a line of its own."""
    from .notebook.progress import TextProgress

    progress = TextProgress()
    try:
        yield progress
    finally:
        progress.close()


def _finish(result: Any) -> int:
    """The result once: its details when it succeeded; when it did not, the one-line cause (the
    error below), after the workflow's outputs."""
    if result.ok:
        print(result.summary_text())
    print(json.dumps(result.outputs))
    result.raise_for_state()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .api.client import DatabricksClient
    from .notebook.progress import TextProgress
    from .run.runs import run_job_and_wait
    from .sandbox import Sandbox

    params = {"date": "2026-11-01", "table": "main.sales.transactions"}
    with Sandbox(speed=args.speed) as sandbox:
        print(f"Sandbox workspace at {sandbox.url} (an emulator of the Jobs API on loopback)")
        print(f"Running job {args.job!r} with {json.dumps(params)}")
        client = DatabricksClient(sandbox.url, sandbox.token)
        result = run_job_and_wait(
            client, args.job, notebook_params=params, on_update=TextProgress(heartbeat=2.0)
        )
        print()
        print(result.summary_text())
        print("Workflow outputs:", json.dumps(result.outputs))
        return 0 if result.ok else 1


def _tour(args: argparse.Namespace) -> int:
    import shutil
    from pathlib import Path

    source = Path(__file__).resolve().parents[1] / "notebooks"
    if not source.is_dir():
        raise InvalidInput(
            "The tour's notebooks ship with the source tree, not with this installation: clone the "
            "project and install it with pip install -e . to get them."
        )
    target = Path(args.dir).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for notebook in sorted(source.glob("*.ipynb")):
        if not (target / notebook.name).exists():  # a copy already worked in is left as it is
            shutil.copy2(notebook, target / notebook.name)
            copied.append(notebook.name)
    print(
        f"The tour is in {target} ({', '.join(copied) or 'already there'}); run the notebooks there, so the "
        f"project's own stay clean: python -m jupyterlab {target / 'quickstart.ipynb'}"
    )
    return 0


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import serve

    data = ["--data", args.data] if args.data else []
    return serve(["--port", str(args.port), "--speed", str(args.speed), *data])


def _run(args: argparse.Namespace) -> int:
    from .api.client import DatabricksClient
    from .run.engine import Watcher
    from .run.launch import Launch, adopt_or_launch
    from .run.runs import launch_and_wait

    spec = Launch.check(
        args.job,
        _params(args.param),
        idempotency_token=args.idempotency_token,
        timeout=args.timeout,
        only=args.only,
        if_running=args.if_running,
        allow_unknown_params=args.allow_unknown_params,
        performance_target=args.performance_target,
    )
    client = DatabricksClient.from_config(profile=args.profile)
    if args.no_wait:
        launched, adopted = adopt_or_launch(client, spec, on_notice=print)
        print(
            f"{'Found' if adopted else 'Started'} run {launched.run_id} of {launched.job_name or args.job!r}: "
            f"python -m dbx_magic wait {launched.run_id} watches it, "
            f"python -m dbx_magic cancel {launched.run_id} cancels it."
        )
        return 0
    watcher = Watcher(client.clock, threaded=False)  # one run: the waiting steps it, no thread
    with _progress() as progress:
        result = launch_and_wait(client, spec, watcher, on_update=progress, on_notice=print)
    return _finish(result)


def _repair(args: argparse.Namespace) -> int:
    from .api.client import DatabricksClient
    from .run.engine import Watcher
    from .run.repair import Repair, repair_and_wait

    spec = Repair.check(
        args.run_id,
        args.tasks,
        rerun_dependents=args.rerun_dependents,
        notebook_params=_params(args.param),
        idempotency_token=args.idempotency_token,
        timeout=args.timeout,
        performance_target=args.performance_target,
    )
    client = DatabricksClient.from_config(profile=args.profile)
    handle = Watcher(client.clock, threaded=False).add(client, spec.run_id, source="repair")
    with _progress() as progress:
        result = repair_and_wait(handle, spec, on_update=progress, on_plan=lambda plan: print(plan.line))
    return _finish(result)


def _list_params(args: argparse.Namespace) -> int:
    from .api.client import DatabricksClient
    from .run.launch import job_info

    client = DatabricksClient.from_config(profile=args.profile)
    print(job_info(client, args.job).declared(client).summary_text())
    return 0


def _wait(args: argparse.Namespace) -> int:
    from .api.client import DatabricksClient
    from .run.runs import wait_for_run

    client = DatabricksClient.from_config(profile=args.profile)
    seen: list[Any] = []
    with _progress() as progress:

        def update(result: Any) -> None:
            seen.append(result.finished)
            progress(result)

        result = wait_for_run(client, args.run_id, timeout=args.timeout, on_update=update)
    if seen[:1] == [True]:
        print(f"Run {args.run_id} had already ended: nothing to wait for.")
    return _finish(result)


def _cancel(args: argparse.Namespace) -> int:
    from .api.client import DatabricksClient
    from .run.cancel import cancel

    print(cancel(DatabricksClient.from_config(profile=args.profile), args.run_id).line(CLI))
    return 0


def _runs(args: argparse.Namespace) -> int:
    from .run.journal import Journal, age_seconds

    journal = Journal()
    since = age_seconds(args.since) if args.since else None
    if args.forget:
        count = journal.forget(notebook=args.notebook, job=args.job, since=since)
        print(f"Forgot {count} journal entr{'y' if count == 1 else 'ies'} ({journal.path}).")
        return 0
    entries = journal.entries(notebook=args.notebook, job=args.job, since=since)
    if not entries:
        print(
            f"The run journal ({journal.path}) has no runs{' that match' if args.job or args.since or args.notebook else ''}."
        )
        return 0
    for entry in entries:
        where = f"  ({entry.notebook})" if entry.notebook and not args.notebook else ""
        print(journal.mask(entry.describe()) + where)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .api.client import DatabricksClient
    from .run.compare import compare_runs

    print(compare_runs(DatabricksClient.from_config(profile=args.profile), args.a, args.b).text())
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dbx_magic",
        description=(
            "Run, wait for, repair and cancel jobs of your Azure Databricks workspace "
            "(DATABRICKS_HOST/DATABRICKS_TOKEN or a ~/.databrickscfg profile); try it on the sandbox."
        ),
        epilog="python -m dbx_magic COMMAND --help shows a command's options.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    demo = sub.add_parser("demo", help="run a sample job on the embedded sandbox, with live progress")
    demo.add_argument("--job", default="daily-sales-report", help="sample job name (default: %(default)s)")
    demo.add_argument("--speed", type=_positive, default=1.0, help="make the sandbox's runs N times faster")
    demo.set_defaults(func=_demo)

    tour = sub.add_parser("tour", help="copy the tour's notebooks to a folder of your own, to run them there")
    tour.add_argument("dir", nargs="?", default="dbx-magic-tour", help="where to (default: %(default)s)")
    tour.set_defaults(func=_tour)

    sandbox = sub.add_parser("sandbox", help="serve the sandbox workspace on 127.0.0.1 until Ctrl-C")
    sandbox.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    sandbox.add_argument("--speed", type=_positive, default=1.0, help="make runs N times faster")
    sandbox.add_argument("--data", metavar="DIR", help="keep its token and runs in DIR: they outlive it")
    sandbox.set_defaults(func=_sandbox)

    run = sub.add_parser("run", help="run a job of your workspace and wait for it, with text progress")
    run.add_argument("job", help="the job id, or its name (quoted when it has spaces)")
    run.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a parameter; repeat for more",
    )
    run.add_argument(
        "--profile", default=None, help="the ~/.databrickscfg profile (default: DATABRICKS_* or DEFAULT)"
    )
    run.add_argument("--timeout", type=_positive, default=None, help="seconds to wait; the run goes on after")
    run.add_argument(
        "--idempotency-token",
        default=None,
        help="at most 64 characters; the same token never starts a second run",
    )
    run.add_argument("--no-wait", action="store_true", help="launch, print the run id and return")
    run.add_argument(
        "--only",
        type=_choice(lambda t: task_keys(t, "--only")),
        default=None,
        metavar="TASKS",
        help="run just these tasks: a,b (+a adds what a needs, a+ what follows a)",
    )
    run.add_argument(
        "--performance-target",
        type=_choice(check_performance_target),
        default=None,
        metavar="STANDARD|PERFORMANCE_OPTIMIZED",
        help="serverless jobs: cost first (STANDARD) or speed first",
    )
    run.add_argument(
        "--if-running",
        type=_choice(lambda t: check_if_running(t, "--if-running")),
        default="new",
        metavar="new|wait|cancel",
        help="when the job has a run going: start another (default), watch it, or cancel it first",
    )
    run.add_argument(
        "--allow-unknown-params",
        action="store_true",
        help="send parameters the job does not declare (and values outside a dropdown's choices) as given",
    )
    run.set_defaults(func=_run)

    repair = sub.add_parser("repair", help="rerun the failed tasks of a run and watch it")
    repair.add_argument("run_id", type=_run_id, help="the run id")
    repair.add_argument(
        "--tasks",
        type=_choice(lambda t: task_keys(t, "--tasks")),
        default=None,
        metavar="TASKS",
        help="rerun these tasks (default: every failed task and the tasks after them)",
    )
    repair.add_argument(
        "--rerun-dependents", action="store_true", help="with --tasks: also what follows them"
    )
    repair.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a changed parameter; repeat for more",
    )
    repair.add_argument("--profile", default=None, help="the ~/.databrickscfg profile")
    repair.add_argument(
        "--timeout", type=_positive, default=None, help="seconds to wait; the run goes on after"
    )
    repair.add_argument("--idempotency-token", default=None, help="the same token never repairs twice")
    repair.add_argument(
        "--performance-target",
        type=_choice(check_performance_target),
        default=None,
        metavar="STANDARD|PERFORMANCE_OPTIMIZED",
        help="serverless jobs: cost first (STANDARD) or speed first",
    )
    repair.set_defaults(func=_repair)

    params = sub.add_parser("params", help="list the parameters a job takes: names, defaults, kinds, choices")
    params.add_argument("job", help="the job id, or its name (quoted when it has spaces)")
    params.add_argument("--profile", default=None, help="the ~/.databrickscfg profile")
    params.set_defaults(func=_list_params)

    wait = sub.add_parser("wait", help="watch a run to its end (after run --no-wait, or Ctrl-C)")
    wait.add_argument("run_id", type=_run_id, help="the run id")
    wait.add_argument("--profile", default=None, help="the ~/.databrickscfg profile")
    wait.add_argument(
        "--timeout", type=_positive, default=None, help="seconds to wait; the run goes on after"
    )
    wait.set_defaults(func=_wait)

    runs = sub.add_parser("runs", help="the runs in the run journal, newest first (every notebook's)")
    runs.add_argument("--job", default=None, help="one job's runs (id or name)")
    runs.add_argument("--since", default=None, metavar="AGE", help="runs of the last AGE: 7d, 12h, 30m")
    runs.add_argument("--notebook", default=None, metavar="PATH", help="one notebook's runs")
    runs.add_argument("--forget", action="store_true", help="delete those entries instead")
    runs.set_defaults(func=_runs)

    cancel = sub.add_parser("cancel", help="cancel a run still going (one that ended is left as it is)")
    cancel.add_argument("run_id", type=_run_id, help="the run id")
    cancel.add_argument("--profile", default=None, help="the ~/.databrickscfg profile")
    cancel.set_defaults(func=_cancel)

    compare = sub.add_parser("compare", help="compare two runs of a job side by side")
    compare.add_argument("a", type=_run_id, help="the run in question")
    compare.add_argument(
        "b",
        type=_run_id,
        nargs="?",
        default=None,
        help="the run to compare with (default: the last success before A)",
    )
    compare.add_argument("--profile", default=None, help="the ~/.databrickscfg profile")
    compare.set_defaults(func=_compare)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m dbx_magic`` and the ``dbx-magic`` command."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except DatabricksError as exc:
        print(f"error: {exc.render(CLI)}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"interrupted: {exc.render(CLI)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
