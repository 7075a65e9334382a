"""What the run journal costs a run, and what reading it costs ``%load_ext``.

Writes ``--runs`` runs the way a launch does (before run-now, its answer, the run's name, its end: four
transactions), in a fresh journal under a temporary ``DBX_MAGIC_HOME``, then reads this notebook's
unfinished runs as ``%load_ext`` does; prints the median milliseconds of each.

Run ``python benchmarks/bench_journal.py`` (``--runs 200``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dbx_magic.run.journal import Journal
from dbx_magic.run.models import RunResult


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        journal = Journal(Path(home) / "journal.sqlite3", notebook="/work/report.ipynb")
        host, per_run = "https://adb-1.azuredatabricks.net", []
        for run_id in range(1, args.runs + 1):
            start = time.perf_counter()
            journal.launching(
                host, job_id=7, job_name="daily", token=f"t{run_id}", params={"date": "2026-11-01"}
            )
            journal.launched(host, f"t{run_id}", run_id)
            journal.named(host, run_id, "res")
            journal.ended(
                host,
                RunResult(job_id=7, run_id=run_id, life_cycle_state="TERMINATED", result_state="SUCCESS"),
            )
            per_run.append((time.perf_counter() - start) * 1000)
        reads = []
        for _ in range(20):
            fresh = Journal(Path(home) / "journal.sqlite3", notebook="/work/report.ipynb")
            start = time.perf_counter()
            fresh.entries(notebook="/work/report.ipynb", unfinished=True)
            reads.append((time.perf_counter() - start) * 1000)
            fresh.close()
    print(f"  journal writes of one run (4 transactions)   median {statistics.median(per_run):6.2f} ms")
    print(f"  open + this notebook's unfinished runs        median {statistics.median(reads):6.2f} ms")
    print(f"  ({args.runs} runs in the journal)")


if __name__ == "__main__":
    main()
