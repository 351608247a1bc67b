"""Benchmark: what one default tend of a fresh copy of the corpus does to the machine-written graph.

Run from the repo root:

    .venv/bin/python scripts/bench_cleanup.py [--corpus DIR] [--json] [--no-reassess]

It copies the corpus (default ../shared/corpus/patterns) to a temporary folder, reads every
`graph_garden` block, tends it once in this process (offline proposer, default policy, the steps
`garden tend` runs without Prefect: `tending.start_tend`, `run_steps`, `finish_tend`), reads the
blocks again, then tends a second time and runs `garden verify` and `garden replay --check` on
the copy. It prints, before and after the first tend:

- machine links: every `inferred_links` item of every block;
- share of their targets on slugs beginning with "a";
- total variation distance between the first letters of those targets and of the library's slugs
  (half the sum of the absolute differences of the two shares, over all letters);
- links whose target is not a slug of the garden;
- machine links per pattern (all links / all patterns);
- pending proposals per pattern (after the tend; before it, none);
and the first tend's seconds (in process, without Prefect; `--no-reassess` gives the same tend
without the re-assessment step, for its cost), its prunes by rule, the files the
second tend wrote (goal 0), and the exit status of verify and replay --check (goal 0).
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
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from events.projection import load_state  # noqa: E402
from events.store import EventStore  # noqa: E402
from flows import tending  # noqa: E402
from garden.catalog import load_garden  # noqa: E402
from garden.policy import Policy  # noqa: E402
from garden.settings import load_settings  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "patterns"
GARDEN = Path(sys.executable).with_name("garden")
TODAY = dt.date(2026, 11, 22)


def graph_figures(garden_dir: Path) -> dict:
    """The machine-written graph of the files as they are."""
    garden = load_garden(garden_dir, cache=None)
    slugs = sorted(garden.patterns)
    targets = [link.target for p in garden.patterns.values() if p.block for link in p.block.inferred_links]
    letters = Counter(t[:1] for t in targets)
    library = Counter(s[:1] for s in slugs)
    n, m = len(targets), len(slugs)
    tvd = 0.5 * sum(abs(letters[k] / n - library[k] / m) for k in set(letters) | set(library)) if n and m else 0.0
    return {
        "patterns": m,
        "machine_links": n,
        "share_on_a": round(letters["a"] / n, 4) if n else 0.0,
        "tvd_first_letters": round(tvd, 4),
        "links_to_missing_slugs": sum(1 for t in targets if t not in garden.known_slugs),
        "machine_links_per_pattern": round(n / m, 2) if m else 0.0,
    }


def tend_once(policy: Policy) -> dict:
    settings = load_settings(garden=Path("patterns"), db=Path(".garden/events.db"))
    with EventStore(settings.db) as store:
        tend = tending.start_tend(settings, policy, store, today=TODAY)
        tending.run_steps(tend)
        return tending.finish_tend(tend)


def pending_per_pattern(db: Path, patterns: int) -> float:
    with EventStore(db) as store:
        state = load_state(store)
        pending = sum(len(state.patterns[s].pending) for s in state.patterns)
    return round(pending / patterns, 2) if patterns else 0.0


def cli_status(*args: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GARDEN_")}
    done = subprocess.run([str(GARDEN), *args, "--garden", "patterns", "--db", ".garden/events.db"],
                          capture_output=True, text=True, env=env)
    if done.returncode:
        print(f"garden {' '.join(args)}: exit {done.returncode}\n{done.stdout[-2000:]}{done.stderr[-2000:]}",
              file=sys.stderr)
    return done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-reassess", action="store_true",
                        help="tend without re-assessing existing items (to measure what re-assessment costs)")
    args = parser.parse_args()
    if args.no_reassess:
        tending.reassess_requests = lambda *_: None
    if not args.corpus.is_dir():
        sys.exit(f"{args.corpus}: no such folder; pass --corpus DIR")
    os.environ["GARDEN_CACHE"] = "false"
    policy = Policy()
    with tempfile.TemporaryDirectory(prefix="bench-cleanup-") as tmp:
        root = Path(tmp)
        shutil.copytree(args.corpus, root / "patterns")
        os.chdir(root)
        before = graph_figures(root / "patterns")
        before["pending_per_pattern"] = 0.0
        clock = time.perf_counter()
        first = tend_once(policy)
        seconds = round(time.perf_counter() - clock, 2)
        after = graph_figures(root / "patterns")
        after["pending_per_pattern"] = pending_per_pattern(root / ".garden/events.db", after["patterns"])
        second = tend_once(policy)
        result = {
            "corpus": str(args.corpus),
            "before": before,
            "after": after,
            "first_tend": {"seconds": seconds, "files_written": first["files_written"],
                           "rescored": first.get("rescored"), "pruned": first["pruned"],
                           "accepted": first["accepted"], "pending": first["pending"],
                           "prunes_proposed": first.get("prunes_proposed", 0),
                           "prunes_deferred": sum((first.get("prunes_deferred") or {}).values())},
            "second_tend_files_written": second["files_written"],
            "verify_exit": cli_status("verify"),
            "replay_check_exit": cli_status("replay", "--check"),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"corpus: {result['corpus']} ({after['patterns']} patterns)")
    print(f"{'':32} {'before':>10} {'after':>10}")
    for key in ("machine_links", "share_on_a", "tvd_first_letters", "links_to_missing_slugs",
                "machine_links_per_pattern", "pending_per_pattern"):
        print(f"{key:32} {before[key]:>10} {after[key]:>10}")
    t = result["first_tend"]
    print(f"first tend: {t['seconds']} s in process, {t['files_written']} files written, "
          f"{t['rescored']} re-assessed, {t['accepted']} accepted, {t['pending']} pending, "
          f"{t['prunes_proposed']} prunes proposed to a curator, {t['prunes_deferred']} prunes deferred")
    print("pruned by rule: " + (", ".join(f"{k} {v}" for k, v in t["pruned"].items()) or "none"))
    print(f"second tend: {result['second_tend_files_written']} files written")
    print(f"garden verify: exit {result['verify_exit']}; garden replay --check: exit {result['replay_check_exit']}")


if __name__ == "__main__":
    main()
