"""The declared-parameter parser on hostile notebook sources: time proportional to size.

Each hostile shape (the ones that broke the parser before, and a few more) is grown to 1 MB and to
a quarter of that; the parser (:func:`dbx_magic.run.declared.parse_widgets`, its cache bypassed) must
take at most ``RATIO`` times what Python's ``tokenize`` takes on the same text, and its time per
megabyte must stay the same as the source grows (linear, not quadratic). Last, a job whose notebook
is the worst of them is launched on the sandbox: the launch must start.

Run ``python benchmarks/bench_parser.py`` (1 MB) or ``--quick`` (256 kB).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence

from dbx_magic.run import declared

RATIO = 10.0  # the parser may take at most this many times tokenize's time
TOKENIZE_LIMIT = 60.0  # seconds tokenize is given on one source (shown as "> 60 s" past it)
MB = 1_000_000

SHAPES: dict[str, Callable[[int], str]] = {
    # a widget default of 1+1+1...: ast's recursion (RecursionError before)
    "deep sum default": lambda n: 'dbutils.widgets.text("a", ' + "1+" * (n // 2) + "1)\n",
    # 200,000 minus signs and more: the parser's memory (MemoryError before)
    "minus signs": lambda n: 'dbutils.widgets.text("a", ' + "-" * n + "1)\n",
    # unclosed calls: each scanned to the end (quadratic before: 2,000 of them took 6.3 s)
    "unclosed calls": lambda n: 'dbutils.widgets.text("x", "1"\n' * (n // 29),
    # nested calls, all closed: every level a call with long arguments
    "nested calls": lambda n: ("dbutils.widgets.text(" * 150 + '"a"' + ")" * 150 + "\n") * (n // 3_300 + 1),
    # quotes that open strings the next call closes, alternately
    "quote parities": lambda n: "dbutils.widgets.text(\"'" * (n // 23),
    # escaped quotes that never close, in SQL widget choices
    "sql escaped quotes": lambda n: (
        "CREATE WIDGET DROPDOWN d DEFAULT 'a' CHOICES VALUES '" + "\\'" * (n // 2)
    ),
    # many SQL widgets whose default is never closed
    "sql unclosed defaults": lambda n: "CREATE WIDGET TEXT a DEFAULT '\\" * (n // 31),
    # brackets only, deeply nested, around one call
    "bracket soup": lambda n: "dbutils.widgets.text(" + "([{" * (n // 3),
    # an ordinary notebook, repeated: the baseline
    "ordinary notebook": lambda n: (
        (
            "# Databricks notebook source\n"
            'dbutils.widgets.text("date", "2026-11-01", "Date")\n'
            'dbutils.widgets.dropdown("env", "dev", ["dev", "prod"])\n'
            'df = spark.table(f"{catalog}.sales").where("date = \'{}\'".format(d))\n'
            "# COMMAND ----------\n"
        )
        * (n // 200 + 1)
    ),
}


def best(call: Callable[[], object], repeat: int = 3) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by the machine's load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return min(times)


TOKENIZE = """
import io, sys, time, tokenize
source = open(sys.argv[1], encoding="utf-8").read()
start = time.perf_counter()
try:
    for _ in tokenize.generate_tokens(io.StringIO(source).readline):
        pass
except (tokenize.TokenError, IndentationError, SyntaxError):
    pass
print(time.perf_counter() - start)
"""


def tokenize_seconds(source: str, limit: float) -> float:
    """Seconds Python's tokenize takes over the text (in a child process; its errors ignored, as
    hostile sources do not tokenize whole), or ``inf`` past ``limit`` (tokenize is itself quadratic
    on some of the shapes)."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", encoding="utf-8", delete=False) as file:
        file.write(source)
    try:
        done = subprocess.run(
            [sys.executable, "-c", TOKENIZE, file.name], capture_output=True, text=True, timeout=limit
        )
        return float(done.stdout)
    except subprocess.TimeoutExpired:
        return math.inf
    finally:
        os.unlink(file.name)


def parse(source: str) -> None:
    declared.parse_source.cache_clear()
    declared.parse_widgets(source)


def measure(size: int) -> list[tuple[str, float, float, float]]:
    """(shape, parser seconds at ``size``, tokenize seconds, parser seconds at a quarter size)."""
    rows = []
    for name, make in SHAPES.items():
        source, small = make(size), make(size // 4)
        parsed = best(functools.partial(parse, source))
        quarter = best(functools.partial(parse, small))
        tokens = tokenize_seconds(source, TOKENIZE_LIMIT)
        rows.append((name, parsed, tokens, quarter))
    return rows


def launch_hostile() -> float:
    """Seconds until a job whose notebook is hostile is launched on the sandbox (its run started)."""
    from dbx_magic import DatabricksClient, start_run
    from dbx_magic.sandbox import Sandbox, Task

    with Sandbox() as sandbox:
        source = SHAPES["unclosed calls"](MB) + SHAPES["deep sum default"](MB // 4)
        sandbox.add_job("hostile", tasks=[Task("main", "/Shared/hostile", duration=1, source=source)])
        client = DatabricksClient(sandbox.url, sandbox.token)
        start = time.perf_counter()
        run = start_run(client, "hostile", {"anything": "1"})
        took = time.perf_counter() - start
        assert run.run_id, "the launch must start a run"
        print(f"launch of a job whose notebook is hostile: run {run.run_id} started in {took:.2f} s")
        for warning in run.warnings:
            print(f"  warning: {warning}")
        return took


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="256 kB sources instead of 1 MB")
    args = parser.parse_args(argv)
    size = MB // 4 if args.quick else MB
    print(f"{'shape':<24}{'parser':>10}{'tokenize':>10}{'ratio':>8}{'per MB at 1/4':>15}{'per MB':>9}")
    worst = 0.0
    growth = []
    for name, parsed, tokens, quarter in measure(size):
        ratio = parsed / max(tokens, 1e-9)
        worst = max(worst, ratio)
        growth.append(parsed / max(4 * quarter, 1e-9))
        shown = f"{tokens:>9.3f}s" if tokens < math.inf else f"{'>' + str(int(TOKENIZE_LIMIT)):>9}s"
        print(
            f"{name:<24}{parsed:>9.3f}s{shown}{ratio:>8.2f}"
            f"{4 * quarter * MB / size:>14.3f}s{parsed * MB / size:>8.3f}s"
        )
    print(
        f"worst ratio to tokenize: {worst:.2f} (at most {RATIO:g}); time per byte, full size over a quarter: "
        f"median {statistics.median(growth):.2f}, worst {max(growth):.2f} (1 is linear, 4 quadratic)"
    )
    launch_hostile()
    return 0 if worst <= RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
