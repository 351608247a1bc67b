"""Benchmark: how long a curator waits for `garden review`, `garden diff` and `garden health`.

Run from the repo root:

    .venv/bin/python scripts/bench_curate.py [--corpus DIR] [--big N] [--skip-big] [--json]

For each garden (a copy of the corpus, default ../shared/corpus/patterns, and a garden of --big
patterns, default 20,000, generated from it by scripts/_generate.py), it tends once without
Prefect (flows.tending's steps, in this process: the same events a nightly run records), then
times each command as a user runs it: a subprocess `garden <command> --json`, wall clock,
Python start-up and imports included. `review --json` lists every pending proposal with its
diff, so it is the heaviest form of review. Nothing is written into the corpus.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _generate import tend_once, write_garden  # noqa: E402


GARDEN_BIN = str(Path(sys.executable).with_name("garden"))
COMMANDS = (["review", "--json"], ["diff", "--json"], ["health", "--json"])


def time_commands(root: Path) -> dict[str, dict]:
    results = {}
    env = dict(os.environ)
    env.pop("GARDEN_DEBUG", None)
    for args in COMMANDS:
        clock = time.perf_counter()
        done = subprocess.run([GARDEN_BIN, *args], cwd=root, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - clock
        if done.returncode != 0:
            raise SystemExit(f"garden {' '.join(args)} failed: {done.stderr[-500:]}")
        payload = json.loads(done.stdout)
        size = (sum(len(g["proposals"]) for g in payload) if args[0] == "review"
                else len(payload["patterns"]) if args[0] == "diff" else payload["links"])
        what = {"review": "pending proposals", "diff": "blocks changed", "health": "links"}[args[0]]
        results[args[0]] = {"seconds": round(seconds, 2), "items": size, "what": what,
                            "output_mb": round(len(done.stdout) / 1e6, 1)}
    return results


def bench(name: str, root: Path) -> dict:
    tend_seconds, summary = tend_once(root)
    return {"garden": name, "patterns": summary["patterns"], "tend_seconds": round(tend_seconds, 1),
            "commands": time_commands(root)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus" / "patterns")
    parser.add_argument("--big", type=int, default=20_000)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        raise SystemExit(f"corpus folder not found: {args.corpus} (pass --corpus DIR)")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_curate_") as tmp:
        sample = Path(tmp) / "sample"
        shutil.copytree(args.corpus, sample / "patterns")
        results.append(bench("corpus sample", sample))
        if not args.skip_big:
            big = Path(tmp) / "big"
            write_garden(args.corpus, big / "patterns", args.big)
            results.append(bench(f"generated {args.big:,}", big))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"python {platform.python_version()}  cpus: {os.cpu_count()}  load: {os.getloadavg()[0]:.2f}")
    print(f"{'garden':<20} {'command':<8} {'seconds':>8}  what")
    for r in results:
        print(f"{r['garden']:<20} {'(tend)':<8} {r['tend_seconds']:>8}  {r['patterns']:,} patterns, in process")
        for command, c in r["commands"].items():
            print(f"{r['garden']:<20} {command:<8} {c['seconds']:>8}  {c['items']:,} {c['what']} "
                  f"({c['output_mb']} MB of JSON)")


if __name__ == "__main__":
    main()
