"""Benchmark: the curator's commands on the 3,600-pattern generated garden, as a user runs them.

Run from the repo root:

    .venv/bin/python scripts/bench_commands.py [--corpus DIR] [--patterns N] [--repeat K] [--json]
                                               [--keep DIR | --reuse DIR] [--skip-tend-revert]

It builds a garden of N patterns (default 3,600) generated from the corpus (default
../shared/corpus/patterns) by scripts/_generate.py, tends it once without Prefect (flows.tending's
steps, in this process: the same events a nightly run records), then times each command as a
subprocess, wall clock, Python start-up and imports included:

- `python -c pass` and `garden --help`: the interpreter's bare start and the CLI's imports, to
  subtract (the issue's target is each command within 1 s plus the interpreter's start);
- `garden review --json` (every pending proposal with its diff: the heaviest review);
- `garden health --json`;
- `garden accept ID --json` (the first pending proposal review listed);
- `garden revert RUN --json` of that accept's run, and then of the tend's own run (every block
  the tend changed put back and written: a much bigger revert, shown apart).

Read-only commands run K times (default 3) and show the fastest; accept and revert run once.
The commands run on a copy of the tended garden; --keep DIR builds and tends it in DIR and leaves
it there as the tend left it, and --reuse DIR times a copy of a garden built that way (skipping
the build and the tend). Nothing is written into
the corpus.
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
TARGET = 1.0  # seconds above the interpreter's start


def build(corpus: Path, root: Path, n: int) -> dict:
    """Generate the garden in root/patterns and tend it once, in this process."""
    clock = time.perf_counter()
    write_garden(corpus, root / "patterns", n)
    written = time.perf_counter() - clock
    seconds, summary = tend_once(root)
    return {"patterns": summary["patterns"], "tend_run": summary["run_id"],
            "generate_seconds": round(written, 1), "tend_seconds": round(seconds, 1)}


def timed(args: list[str], root: Path, repeat: int = 1) -> tuple[float, str]:
    """The fastest of `repeat` runs of a command in `root`, and its stdout; any failure stops."""
    env = dict(os.environ)
    env.pop("GARDEN_DEBUG", None)
    best, stdout = float("inf"), ""
    for _ in range(repeat):
        clock = time.perf_counter()
        done = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - clock
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({done.returncode}): {done.stderr[-800:]}")
        best, stdout = min(best, seconds), done.stdout
    return best, stdout


def time_commands(root: Path, tend_run: str, repeat: int, tend_revert: bool) -> list[dict]:
    rows: list[dict] = []

    def row(name: str, seconds: float, note: str = "", target: bool = True) -> None:
        rows.append({"command": name, "seconds": round(seconds, 3), "note": note, "target": target})

    seconds, _ = timed([sys.executable, "-c", "pass"], root, repeat)
    row("python -c pass", seconds, "the interpreter's bare start", target=False)
    seconds, _ = timed([GARDEN_BIN, "--help"], root, repeat)
    row("garden --help", seconds, "start and the CLI's imports", target=False)

    seconds, stdout = timed([GARDEN_BIN, "review", "--json"], root, repeat)
    groups = json.loads(stdout)
    pending = [p["id"] for g in groups for p in g["proposals"]]
    row("garden review --json", seconds, f"{len(pending):,} pending in {len(groups):,} patterns, "
        f"{len(stdout) / 1e6:.1f} MB")
    seconds, stdout = timed([GARDEN_BIN, "health", "--json"], root, repeat)
    row("garden health --json", seconds, f"{json.loads(stdout)['links']:,} links")
    if not pending:
        raise SystemExit("the tend left nothing pending: nothing to accept")

    seconds, stdout = timed([GARDEN_BIN, "accept", pending[0], "--json"], root)
    accepted = json.loads(stdout)
    row("garden accept ID", seconds, f"{pending[0]}: {len(accepted['written'])} files written")
    seconds, stdout = timed([GARDEN_BIN, "revert", accepted["run_id"], "--json"], root)
    row("garden revert RUN (the accept)", seconds, f"{len(json.loads(stdout)['written'])} files written")
    if tend_revert:
        seconds, stdout = timed([GARDEN_BIN, "revert", tend_run, "--json"], root)
        row("garden revert RUN (the tend)", seconds,
            f"{len(json.loads(stdout)['written']):,} files written", target=False)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "corpus" / "patterns")
    parser.add_argument("--patterns", type=int, default=3_600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="build the garden here and leave it")
    parser.add_argument("--reuse", type=Path, help="time a copy of a garden built with --keep")
    parser.add_argument("--skip-tend-revert", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_commands_") as tmp:
        source = args.reuse or args.keep or Path(tmp) / "built"
        if args.reuse:
            built = json.loads((source / "bench.json").read_text())
        else:
            if not args.corpus.is_dir():
                raise SystemExit(f"corpus folder not found: {args.corpus} (pass --corpus DIR)")
            if args.keep and args.keep.exists():
                raise SystemExit(f"{args.keep} exists; remove it or pass --reuse {args.keep}")
            built = build(args.corpus, source, args.patterns)
            (source / "bench.json").write_text(json.dumps(built))
        root = Path(tmp) / "garden"  # the commands change the garden: time a copy
        shutil.copytree(source, root)
        commands = time_commands(root, built["tend_run"], args.repeat, not args.skip_tend_revert)
    start = next(r["seconds"] for r in commands if r["command"] == "python -c pass")
    for r in commands:
        r["over_start"] = round(r["seconds"] - start, 3)
        r["within_target"] = r["over_start"] <= TARGET if r["target"] else None
    result = {"python": platform.python_version(), "cpus": os.cpu_count(),
              "load": round(os.getloadavg()[0], 2), **built, "commands": commands}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"python {result['python']}  cpus: {result['cpus']}  load: {result['load']:.2f}  "
          f"{built['patterns']:,} patterns, tended in {built['tend_seconds']} s (in process)")
    print(f"{'command':<32} {'seconds':>8} {'- start':>8}  {'<= 1 s':<6}  note")
    for r in commands:
        ok = "" if r["within_target"] is None else "yes" if r["within_target"] else "NO"
        print(f"{r['command']:<32} {r['seconds']:>8.2f} {r['over_start']:>8.2f}  {ok:<6}  {r['note']}")


if __name__ == "__main__":
    main()
