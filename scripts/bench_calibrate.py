"""Benchmark: `garden calibrate` on a garden with 20,000 curator-labelled items, and how many
labels a useful estimate needs.

Run from the repo root:

    .venv/bin/python scripts/bench_calibrate.py [--items N] [--repeat R] [--json]

It builds an event log in a temporary folder (nothing else is touched): N proposals (default
20,000: 60% offline links, 20% offline entities, 20% LLM links) and a scripted curator's decision
on each, kept with a known probability by confidence band (the rule of tests/test_calibrate.py),
appended through events.store.EventStore in batches of 2,000 events. Then it times, R times each
(the median is printed):

- `garden calibrate --json` and `garden calibrate --write --json` as subprocesses, as a user runs
  them (Python start-up and imports included); `--write` appends its CalibrationFitted events, so
  each repeat writes fits again, as a curator who re-ran it would;
- the pieces alone, in this process: reading the labels from the log (`curator_labels`), the bands,
  the recommended thresholds, the isotonic fits.

Last, the width of the 95% Wilson interval of a precision at 50, 100 and 300 labels, for
precisions 0.5, 0.7 and 0.9: how many labels it takes to say something useful.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from events.queries import curator_labels
from events.store import EventStore
from garden.event import EntityProposed, LinkProposed, ProposalAccepted, ProposalRejected, event
from garden.precision import bands, fit_isotonic, groups, recommend, wilson

GARDEN_BIN = str(Path(sys.executable).with_name("garden"))
RULE = ((0.0, 0.4, 0.02), (0.4, 0.6, 0.30), (0.6, 0.8, 0.70), (0.8, 1.0, 0.97))
BATCH = 2_000


def keep_rate(confidence: float) -> float:
    return next(p for low, high, p in RULE if low <= confidence < high or (high == 1.0 and confidence == 1.0))


def build_log(db: Path, items: int, seed: int = 13) -> None:
    rnd = random.Random(seed)
    batch: list = []
    with EventStore(db) as store:
        for n in range(items):
            confidence = round(rnd.random(), 3)
            share = n / items
            if share < 0.6:
                payload = LinkProposed(target=f"t{n}", link_type="complementary", confidence=confidence,
                                       reason="scripted", proposer="offline", model="tfidf-v1")
            elif share < 0.8:
                payload = EntityProposed(entity_id=f"e{n}", entity_type="concept", label=f"E{n}",
                                         relevance=confidence, proposer="offline", model="tfidf-v1")
            else:
                payload = LinkProposed(target=f"t{n}", link_type="enables", confidence=confidence, reason="scripted",
                                       proposer="llm", model="gpt-test", prompt_version="graph-garden-prompt-2")
            slug = f"p{n % 500}"  # patterns the log never observed: the labels are all that matters here
            proposal = event(payload, slug=slug, actor=f"proposer:{payload.proposer}/{payload.model}")
            kept = rnd.random() < keep_rate(confidence)
            decision = (ProposalAccepted(proposal_id=proposal.id, rule="curator") if kept
                        else ProposalRejected(proposal_id=proposal.id, reason="curator"))
            batch += [proposal, event(decision, slug=slug, actor="curator:bench")]
            if len(batch) >= BATCH:
                store.append(batch)
                batch = []
        if batch:
            store.append(batch)


def timed(fn, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict = {"items": args.items, "python": platform.python_version(), "machine": platform.machine()}
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp:
        root = Path(tmp)
        (root / "patterns").mkdir()
        db = root / ".garden" / "events.db"
        db.parent.mkdir()
        start = time.perf_counter()
        build_log(db, args.items)
        figures["build_log_s"] = round(time.perf_counter() - start, 2)

        def run(*command: str) -> dict:
            done = subprocess.run([GARDEN_BIN, "calibrate", *command, "--json"], cwd=root, capture_output=True,
                                  text=True, check=True)
            return json.loads(done.stdout)

        figures["calibrate_json_s"], shown = timed(lambda: run(), args.repeat)
        figures["labels_read"] = shown["labels"]
        figures["calibrate_write_json_s"], written = timed(lambda: run("--write", "--by", "bench"), args.repeat)
        figures["fits_written"] = [f["key"] for f in written["written"]["written"]]
        with EventStore(db, create=False) as store:
            figures["curator_labels_s"], labels = timed(lambda: curator_labels(store), args.repeat)
        figures["bands_s"], _ = timed(lambda: bands(labels), args.repeat)
        by_key = groups(labels)
        figures["recommend_s"], _ = timed(lambda: [recommend(found) for found in by_key.values()], args.repeat)
        figures["fit_isotonic_s"], fits = timed(lambda: [fit_isotonic(found) for found in by_key.values()],
                                                args.repeat)
        figures["breakpoints"] = [len(f) for f in fits]
    widths = {}
    for precision in (0.5, 0.7, 0.9):
        for n in (50, 100, 300):
            low, high = wilson(round(precision * n), n)
            widths[f"p={precision} n={n}"] = round(high - low, 3)
    figures["wilson_width_95"] = widths
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{args.items:,} labelled items (log built in {figures['build_log_s']} s), median of {args.repeat}:")
    for name in ("calibrate_json_s", "calibrate_write_json_s", "curator_labels_s", "bands_s", "recommend_s",
                 "fit_isotonic_s"):
        print(f"  {name[:-2].replace('_', ' '):<24} {figures[name]:.3f} s")
    print(f"  fits written: {', '.join(figures['fits_written'])}; breakpoints per fit: {figures['breakpoints']}")
    print("95% Wilson interval width (labels n, precision p):")
    print("  n     " + "  ".join(f"p={p}" for p in (0.5, 0.7, 0.9)))
    for n in (50, 100, 300):
        print(f"  {n:<5} " + "  ".join(f"{widths[f'p={p} n={n}']:.3f}" for p in (0.5, 0.7, 0.9)))


if __name__ == "__main__":
    main()
