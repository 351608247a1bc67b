"""Benchmark: `garden tend` with the default task runner against `--task-runner dask` (1 and 2
local workers), on one generated garden.

Run from the repo root (the dask extra installed: pip install -e '.[dask]'):

    .venv/bin/python scripts/bench_dask.py [--patterns 20000] [--workers 1,2] [--repeat 1]
        [--proposer offline|llm] [--latency 0.2] [--corpus DIR] [--json]

It writes a garden of `--patterns` patterns generated from the corpus (scripts/_generate.py,
default ../shared/corpus/patterns) into a temporary folder, then tends a fresh copy of it once per
runner and repeat: `garden tend --json --today 2026-11-22` as a subprocess, all of them on one
`prefect server start` of a fresh PREFECT_HOME (so Prefect's start-up is not in the figures).
Per runner it prints the wall seconds (the best of the repeats) and the stages of the JSON
summary; "propose" is where the Dask workers work, "cluster" the local cluster's start.

`--proposer llm` tends against the fake OpenAI-compatible server (tests/fake_openai.py, in this
process) answering after `--latency` seconds: the case a cluster is for (a model's answers take
seconds, the workers wait in parallel). The load (`uptime`) is printed before and after: the
figures are only as quiet as the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # fake_openai

from _generate import write_garden

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "patterns"
GARDEN = Path(sys.executable).with_name("garden")
TODAY = "2026-11-22"
STAGES = ("load", "cluster", "observe", "choose_and_rank", "propose", "decide_and_prune", "write", "snapshot")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def tend(garden: Path, env: dict[str, str], runner: list[str]) -> dict:
    clock = time.perf_counter()
    done = subprocess.run([str(GARDEN), "tend", "--json", "--today", TODAY, *runner], cwd=garden, env=env,
                          capture_output=True, text=True)
    wall = time.perf_counter() - clock
    if done.returncode != 0:
        sys.exit(f"garden tend {' '.join(runner)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    return {"wall_s": round(wall, 2), "timings": summary["timings"], "tended": summary["tended"],
            "proposed": summary["proposed"], "files_written": summary["files_written"]}


def start_prefect(env: dict[str, str], tmp: Path) -> subprocess.Popen:
    """One `prefect server start` for every tend (a fresh PREFECT_HOME, migrated here), its URL
    put in `env`: the tends compare runners, not Prefect's start-up."""
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    prefect = subprocess.Popen([str(GARDEN.with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=open(tmp / "prefect.log", "w"))
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{env['PREFECT_API_URL']}/health", timeout=2):
                return prefect
        except OSError:
            time.sleep(0.5)
    prefect.kill()
    sys.exit("prefect server did not start: " + (tmp / "prefect.log").read_text()[-2000:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patterns", type=int, default=20_000)
    parser.add_argument("--workers", default="1,2", help="Dask worker counts to try, comma-separated")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--proposer", choices=("offline", "llm"), default="offline")
    parser.add_argument("--latency", type=float, default=0.2, help="--proposer llm: seconds per answer")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        sys.exit(f"{args.corpus}: no such folder; pass --corpus DIR")
    runners = {"default": []} | {f"dask x{n}": ["--task-runner", "dask", "--dask-workers", n]
                                 for n in args.workers.split(",")}
    results: dict[str, list[dict]] = {name: [] for name in runners}
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        tmp = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GARDEN_", "PREFECT_", "OPENAI_"))}
        env.update(PREFECT_HOME=str(tmp / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_LOGGING_LEVEL="WARNING", GARDEN_CACHE="false")
        clock = time.perf_counter()
        write_garden(args.corpus, tmp / "source" / "patterns", args.patterns)
        generated = time.perf_counter() - clock
        prefect = start_prefect(env, tmp)
        server = None
        if args.proposer == "llm":
            from fake_openai import fake_openai

            server = fake_openai(latency=args.latency)
            env.update(OPENAI_API_KEY="sk-bench", OPENAI_BASE_URL=server.__enter__().base_url,
                       GARDEN_MODEL="fake-model", GARDEN_PROPOSER="llm")
        before = load()
        try:
            for _ in range(args.repeat):
                for name, runner in runners.items():
                    garden = tmp / name.replace(" ", "")
                    shutil.rmtree(garden, ignore_errors=True)
                    shutil.copytree(tmp / "source", garden)
                    results[name].append(tend(garden, env, runner))
                    print(f"  {name}: {results[name][-1]['wall_s']:.1f} s", file=sys.stderr, flush=True)
        finally:
            if server is not None:
                server.__exit__(None, None, None)
            prefect.terminate()
            prefect.wait(30)
        after = load()
    best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in results.items()}
    meta = {"patterns": args.patterns, "proposer": args.proposer, "repeat": args.repeat, "cpus": os.cpu_count(),
            "generated_s": round(generated, 1), "load_before": before, "load_after": after}
    if args.proposer == "llm":
        meta["latency_s"] = args.latency
    if args.json:
        print(json.dumps({**meta, "best": best, "runs": results}, indent=2))
        return 0
    print(f"garden tend of {args.patterns:,} generated patterns, {args.proposer} proposer"
          + (f" ({args.latency} s an answer)" if args.proposer == "llm" else "")
          + f"; best of {args.repeat}; {os.cpu_count()} CPUs; load {before} before, {after} after")
    print(f"{'runner':<10} {'wall s':>8} " + " ".join(f"{s:>10}" for s in STAGES))
    for name, r in best.items():
        cells = " ".join(f"{r['timings'].get(s, 0):>10.1f}" if s in r["timings"] else f"{'-':>10}" for s in STAGES)
        print(f"{name:<10} {r['wall_s']:>8.1f} {cells}")
    default = best["default"]["timings"]["propose"]
    for name, r in best.items():
        if name != "default":
            print(f"propose stage, {name} against default: {default / r['timings']['propose']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
