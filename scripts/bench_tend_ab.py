"""Benchmark: first tends of two (or more) checkouts or settings, interleaved, on one machine.

On a shared machine the speed of a single run drifts by 10-20% over minutes, so "before" and
"after" measured minutes apart say little. This runs them in turns, round by round, each on a
fresh copy of the same generated garden, and prints every run and the median per variant:

    .venv/bin/python scripts/bench_tend_ab.py [--rounds 3] [--library 3600] [--corpus DIR]
        NAME=CHECKOUT[,VAR=VALUE...] NAME=CHECKOUT[,VAR=VALUE...] ...

CHECKOUT is a folder with this project and its `.venv` (e.g. a `git worktree` of another
commit); VAR=VALUE are environment variables for that variant's tends, e.g.
`after=.` `one-process=.,GARDEN_SECOND_PROCESS=off`. Every tend is `garden tend --json` with the
same --today, as bench_tend.py runs it; all share one Prefect home, migrated by a first tend that
is not counted. bench_tend.py stays the place for each figure beside its goal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _generate import write_garden  # noqa: E402

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "patterns"
TODAY = "2026-11-22"


def variant(spec: str) -> tuple[str, Path, dict[str, str]]:
    name, _, rest = spec.partition("=")
    checkout, *pairs = rest.split(",")
    return name, Path(checkout).resolve(), dict(pair.split("=", 1) for pair in pairs)


def first_tend(checkout: Path, garden: Path, work: Path, env: dict[str, str]) -> tuple[float, dict]:
    shutil.copytree(garden, work / "patterns", copy_function=shutil.copyfile)
    started = time.perf_counter()
    done = subprocess.run([str(checkout / ".venv" / "bin" / "garden"), "tend", "--json", "--today", TODAY],
                          cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{checkout}: garden tend failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="+", help="NAME=CHECKOUT[,VAR=VALUE...]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--library", type=int, default=3600, help="patterns in the generated garden")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()
    variants = [variant(spec) for spec in args.variants]
    walls: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    with tempfile.TemporaryDirectory(prefix="bench-tend-ab-") as tmp:
        tmp = Path(tmp)
        write_garden(args.corpus, tmp / "garden", args.library)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("GARDEN_", "PREFECT_"))}
        base.update(PREFECT_HOME=str(tmp / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
        first_tend(variants[0][1], tmp / "garden", Path(tempfile.mkdtemp(dir=tmp)), base)  # migrates Prefect
        print(f"{args.library} patterns, {args.rounds} rounds; load average {os.getloadavg()[0]:.2f}")
        for _ in range(args.rounds):
            for name, checkout, extra in variants:
                wall, summary = first_tend(checkout, tmp / "garden", Path(tempfile.mkdtemp(dir=tmp)),
                                           dict(base, **extra))
                walls[name].append(wall)
                stages = " ".join(f"{k} {v:.1f}" for k, v in summary["timings"].items())
                print(f"{name:>14} {wall:6.1f} s   {stages}", flush=True)
    for name, values in walls.items():
        print(f"{name:>14} median {statistics.median(values):.1f} s  (runs: "
              f"{', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
