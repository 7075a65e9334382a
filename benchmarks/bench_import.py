"""What ``%load_ext dbx_magic`` adds to the start of an IPython shell.

Two commands, each in a fresh interpreter, alternated so that disk caches and machine load hit both
alike:

- bare: ``import IPython; InteractiveShell.instance()``;
- with dbx-magic: the same, then ``shell.run_line_magic("load_ext", "dbx_magic")``.

Prints the median wall time of each, their difference (the target: at most 30 ms), and, from one run
under ``python -X importtime``, the modules that cost most of the difference.

Run ``python benchmarks/bench_import.py`` (20 pairs) or ``--quick`` (8 pairs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = "import IPython; shell = IPython.core.interactiveshell.InteractiveShell.instance()"
LOADED = BARE + "; shell.run_line_magic('load_ext', 'dbx_magic')"
TARGET_MS = 30.0


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["IPYTHONDIR"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / "dbx-magic-bench-ipython")
    return env


def timed(code: str) -> float:
    """Seconds one fresh interpreter takes to run ``code`` (start-up included)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(), capture_output=True)
    return time.perf_counter() - started


def heaviest(limit: int = 8) -> list[tuple[float, str]]:
    """The top-level modules ``load_ext`` imports beyond the bare shell, by cumulative ms."""

    def profile(code: str) -> dict[str, float]:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], env=_env(), capture_output=True, text=True
        )
        costs: dict[str, float] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "|" not in line:
                continue
            _, _cumulative, name = (part.strip() for part in line.split("|"))
            if not name or name.startswith(" "):
                continue
            try:
                costs[name] = int(_cumulative) / 1000
            except ValueError:
                continue
        return costs

    bare, loaded = profile(BARE), profile(LOADED)
    extra = [(ms, name) for name, ms in loaded.items() if name not in bare and "." not in name.strip()]
    extra += [(ms, name) for name, ms in loaded.items() if name.startswith("dbx_magic.")]
    return sorted(extra, reverse=True)[:limit]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 pairs instead of 20")
    parser.add_argument("--pairs", type=int, default=None)
    args = parser.parse_args(argv)
    pairs = args.pairs or (8 if args.quick else 20)
    timed(BARE)  # warm the caches (and IPython's profile directory) once
    timed(LOADED)
    bare: list[float] = []
    loaded: list[float] = []
    for i in range(pairs):
        order = [(BARE, bare), (LOADED, loaded)]
        for code, out in order if i % 2 == 0 else reversed(order):
            out.append(timed(code))
    b, lo = statistics.median(bare) * 1000, statistics.median(loaded) * 1000
    diffs = sorted((x - y) * 1000 for x, y in zip(loaded, bare, strict=True))
    print(f"bench_import: {pairs} interleaved pairs, {sys.executable}")
    print(f"  bare IPython shell               median {b:7.1f} ms")
    print(f"  + %load_ext dbx_magic            median {lo:7.1f} ms")
    print(
        f"  difference                       median {lo - b:7.1f} ms "
        f"(pairwise median {statistics.median(diffs):.1f} ms; target <= {TARGET_MS:.0f} ms)"
    )
    print("  heaviest imports it adds (cumulative ms, one -X importtime run):")
    for ms, name in heaviest():
        print(f"    {ms:7.1f}  {name}")
    return 0 if lo - b <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
