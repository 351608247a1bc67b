"""Benchmark: curated references given by pattern id (`pat_...`) on a corpus, before and after
graph-garden resolves them to slugs.

Run from the repo root:

    .venv/bin/python scripts/bench_curated_ids.py [--corpus DIR] [--before REF] [--json]

It prints:

- curated references given as ids, how many name a pattern of the corpus (resolved) and how many
  do not (each a `garden check` warning), read by this checkout's code;
- the curated-repeat count of `garden health --json` on a fresh copy of the corpus (no log:
  the files' own blocks), by the code of git ref REF (default: main) and by this checkout's;
- the same count after one default tend (offline proposer, default policy, the steps `garden tend`
  runs without Prefect) of another fresh copy, by each code; and the links the old code's tend
  wrote that repeat a curated relationship given by id (its copy counted by this checkout's code).

Each code runs in a child process whose import path starts with that code's tree (REF's is
exported with `git archive` to a temporary folder). Everything happens in temporary folders:
nothing is written into the corpus or the repository.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "patterns"
TODAY = dt.date(2026, 11, 22)


def _run_cli(code: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """`garden ARGS` with the CLI of the code tree `code`."""
    program = f"import sys; sys.path.insert(0, {str(code)!r}); from cli.main import run; run()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARDEN_")}
    env["GARDEN_CACHE"] = "false"
    return subprocess.run([sys.executable, "-c", program, *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


def _curated_repeats(code: Path, cwd: Path) -> int:
    done = _run_cli(code, cwd, "health", "--json", "--garden", "patterns", "--db", ".garden/events.db")
    if done.returncode:
        sys.exit(f"garden health: exit {done.returncode}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)["curated_repeats"]["count"]


def worker(code: Path, root: Path) -> None:
    """In a child process: one default tend of the garden in `root` with the code in `code`."""
    sys.path.insert(0, str(code))
    from events.store import EventStore
    from flows import tending
    from garden.policy import Policy
    from garden.settings import load_settings

    os.chdir(root)
    settings = load_settings(garden=Path("patterns"), db=Path(".garden/events.db"))
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, Policy(), store, today=TODAY)
        tending.run_steps(tend)
        tending.finish_tend(tend)


def figures_for(code: Path, corpus: Path, reader: Path | None = None) -> dict:
    """Curated repeats on a fresh copy, and after one default tend of another fresh copy (also
    as the code in `reader` counts them, which sees the id-given curated relationships)."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-curated-ids-") as tmp:
        root = Path(tmp)
        shutil.copytree(corpus, root / "patterns")
        out["curated_repeats_fresh"] = _curated_repeats(code, root)
    with tempfile.TemporaryDirectory(prefix="bench-curated-ids-") as tmp:
        root = Path(tmp)
        shutil.copytree(corpus, root / "patterns")
        env = {k: v for k, v in os.environ.items() if not k.startswith("GARDEN_")}
        env["GARDEN_CACHE"] = "false"
        done = subprocess.run([sys.executable, __file__, "--worker", str(code), str(root)], env=env,
                              capture_output=True, text=True)
        if done.returncode:
            sys.exit(f"tend with {code}: exit {done.returncode}\n{done.stderr[-3000:]}")
        out["curated_repeats_after_tend"] = _curated_repeats(code, root)
        if reader is not None:
            out["curated_repeats_after_tend_read_by_ids"] = _curated_repeats(reader, root)
        verify = _run_cli(code, root, "verify", "--garden", "patterns", "--db", ".garden/events.db")
        out["verify_exit"] = verify.returncode
    return out


def id_figures(corpus: Path) -> dict:
    """The ids of the corpus as this checkout reads them (from a copy: no parse cache is left)."""
    sys.path.insert(0, str(REPO))
    from garden.catalog import load_garden

    with tempfile.TemporaryDirectory(prefix="bench-curated-ids-") as tmp:
        shutil.copytree(corpus, Path(tmp) / "patterns")
        garden = load_garden(Path(tmp) / "patterns", cache=None)
    files = sum(1 for p in garden.patterns.values() if p.curated_ids)
    return {"id_references": garden.id_references, "files": files, "resolved": garden.id_references_resolved,
            "unresolved": garden.id_references - garden.id_references_resolved}


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        worker(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--before", default="main", help="git ref of the code before the change")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    corpus = args.corpus.resolve()
    if not corpus.is_dir():
        sys.exit(f"{args.corpus}: no such folder; pass --corpus DIR")
    result = {"corpus": str(args.corpus), "ids": id_figures(corpus)}
    with tempfile.TemporaryDirectory(prefix="bench-curated-ids-code-") as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before], capture_output=True)
        if archive.returncode:
            sys.exit(f"git archive {args.before}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        result["before"] = {"code": args.before, **figures_for(Path(tmp), corpus, reader=REPO)}
    result["after"] = {"code": "this checkout", **figures_for(REPO, corpus)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    ids = result["ids"]
    print(f"corpus: {result['corpus']}")
    print(f"curated references by pattern id: {ids['id_references']} in {ids['files']} files; "
          f"{ids['resolved']} resolved, {ids['unresolved']} name no pattern of the corpus")
    print(f"{'curated repeats (garden health)':40} {'before (' + args.before + ')':>16} {'after':>8}")
    for key, label in (("curated_repeats_fresh", "fresh copy"),
                       ("curated_repeats_after_tend", "after one default tend")):
        print(f"  {label:38} {result['before'][key]:>16} {result['after'][key]:>8}")
    print(f"  {'after the tend, counted with ids':38} "
          f"{result['before']['curated_repeats_after_tend_read_by_ids']:>16} "
          f"{result['after']['curated_repeats_after_tend']:>8}")
    print(f"garden verify after the tend: exit {result['before']['verify_exit']} (before), "
          f"{result['after']['verify_exit']} (after)")


if __name__ == "__main__":
    main()
