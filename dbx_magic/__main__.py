"""python -m dbx_magic: demo (the workflow on the sandbox), sandbox (serve it), run (a job in your workspace)."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import DatabricksError, InvalidInput, RunInterrupted
from .params import parse_param_lines

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .client import DatabricksClient
    from .progress import TextProgress
    from .sandbox import Sandbox
    from .workflow import run_job_and_wait

    params = {"date": "2026-11-01", "table": "main.sales"}
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


def _sandbox(args: argparse.Namespace) -> int:
    from .sandbox import serve

    argv = ["--port", str(args.port), "--speed", str(args.speed)]
    return serve(argv)


def _run(args: argparse.Namespace) -> int:
    from .client import DatabricksClient
    from .progress import TextProgress
    from .workflow import run_job_and_wait, start_run

    bad = [p for p in args.param if "=" not in p]
    if bad:
        raise InvalidInput(f"-p {bad[0]} has no '=': write -p NAME=VALUE, one -p per parameter.")
    params = parse_param_lines("\n".join(args.param))
    client = DatabricksClient.from_config(profile=args.profile)
    if args.no_wait:
        launched = start_run(client, args.job, params, idempotency_token=args.idempotency_token)
        print(
            f"Started run {launched.run_id} of {launched.job_name or args.job!r}; follow it on its page "
            "or from a notebook with %dbx_wait, or from Python with wait_for_run(client, run_id)."
        )
        return 0
    result = run_job_and_wait(
        client,
        args.job,
        params,
        idempotency_token=args.idempotency_token,
        timeout=args.timeout,
        on_update=TextProgress(),
    )
    print(result.summary_text())
    print(json.dumps(result.outputs))
    result.raise_for_state()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m dbx_magic`` and the ``dbx-magic`` command."""
    parser = argparse.ArgumentParser(prog="python -m dbx_magic", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run a sample job on the embedded sandbox, with live progress")
    demo.add_argument("--job", default="daily-sales-report", help="sample job name (default: %(default)s)")
    demo.add_argument("--speed", type=float, default=1.0, help="make the sandbox's runs N times faster")
    demo.set_defaults(func=_demo)

    sandbox = sub.add_parser("sandbox", help="serve the sandbox workspace on 127.0.0.1 until Ctrl-C")
    sandbox.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    sandbox.add_argument("--speed", type=float, default=1.0, help="make runs N times faster")
    sandbox.set_defaults(func=_sandbox)

    run = sub.add_parser("run", help="run a job in your workspace (DATABRICKS_HOST/TOKEN or a profile)")
    run.add_argument("job", help="job id or name")
    run.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--profile", default=None)
    run.add_argument("--timeout", type=float, default=None)
    run.add_argument("--idempotency-token", default=None)
    run.add_argument("--no-wait", action="store_true")
    run.set_defaults(func=_run)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except DatabricksError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RunInterrupted as exc:
        print(f"interrupted: {exc}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
