"""Benchmark: the event store at scale (append, full replay, snapshot load, chain check, size).

Run from the repo root (it prints figures; it is not a test):

    .venv/bin/python scripts/bench_events.py [--events N] [--patterns P] [--batch B]
                                             [--scatter] [--db PATH] [--keep] [--json]

It builds a realistic log with the real payload models and `garden.event.event(...)`: one
GardenObserved per pattern (5 entities, 3 communities, 8 inferred links shaped like
`GardenBlock.model_dump(mode="json")`, ~1.5 KB of block text), then the MIX, visiting patterns
in slug order ~10 events at a time as a pipeline run would (`--scatter`: a random pattern per
event); decisions, rescores and prunes name an earlier proposal or a link the pattern holds.
Runs of 50,000 events open with RunStarted and close with RunCompleted. Events are made batch
by batch outside the timed regions; their making (the benchmark's own random draws and the
building) is reported on its own line. Building alone is timed on a sample of the stream (every
100th event): each payload model made again from its values, and `event(...)` around it, as our
code builds them; beside it, one LinkProposed validated against `model_construct`.

Measured: (1) append of every batch via `EventStore.append`; (2) full replay,
`load_state(store, use_snapshots=False)`; (3) current-state load: a snapshot saved at head,
1,000 more events appended, then `load_state(store)`; (4) `verify_chain()`; (5) database size
(db + -wal), bytes/event and peak RSS.

Goals (2-core machine): append >= 100,000 events/s, building >= 100,000 events/s (no slower
than appending them), full replay <= 10 s, current load <= 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import itertools
import json
import os
import platform
import random
import resource
import shutil
import tempfile
import time
import timeit
from pathlib import Path

from events.projection import FOLD_VERSION, load_state
from events.store import EventStore
from garden.event import (BlockWritten, EntityProposed, GardenObserved, LinkProposed, LinkPruned,
                          LinkRescored, ProposalAccepted, ProposalRejected, RunCompleted,
                          RunStarted, event, new_id)
from garden.model import LINK_TYPES, Community, Entity, GardenBlock, InferredLink

RUN_EVENTS = 50_000  # RunStarted + body + RunCompleted
TAIL = 1_000  # events appended after the snapshot
SAMPLE = 100  # every SAMPLE-th event is built again, alone, to time building
GROUP = 10  # mean events per pattern visit
MIX = [("LinkProposed", .40), ("ProposalAccepted", .15), ("ProposalRejected", .10),
       ("LinkRescored", .15), ("LinkPruned", .05), ("EntityProposed", .10), ("BlockWritten", .05)]
MODEL = "claude-sonnet-4-5"


def digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def reason(rng: random.Random, words: list[str]) -> str:
    return "Shared focus on {}, {}.".format(*rng.sample(words, 2))


def observed(slug: str, slugs: list[str], rng: random.Random, words: list[str]) -> GardenObserved:
    score = lambda: round(rng.random(), 2)  # noqa: E731
    block = GardenBlock(
        last_pruned=dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(300)),
        entities=[Entity(id=f"ent-{w}", type=rng.choice(["concept", "tool", "practice"]),
                         label=w.replace("-", " ").title(), relevance=score())
                  for w in rng.sample(words, 5)],
        communities=[Community(id=f"com-{rng.randrange(400)}", label=f"{rng.choice(words)} cluster",
                               source="leiden", confidence=score()) for _ in range(3)],
        inferred_links=[InferredLink(target=t, type=rng.choice(LINK_TYPES), confidence=score(),
                                     reason=reason(rng, words)) for t in rng.sample(slugs, 8)],
    ).model_dump(mode="json")
    text = ["graph_garden:", f"  last_pruned: {block['last_pruned']}"]
    for key in ("entities", "communities", "inferred_links"):
        text += [f"  {key}:"] + ["    - {" + ", ".join(f"{k}: {v}" for k, v in item.items()) + "}"
                                 for item in block[key]]
    return GardenObserved(path=f"patterns/{slug}.md", format="v7.1", content_hash=digest(slug, 1),
                          text_hash=digest(slug, 2), block=block, block_text="\n".join(text) + "\n")


def generate(n_patterns: int, scatter: bool = False, seed: int = 1):
    """An endless, deterministic stream of events: observations first, then the mix.

    Like a pipeline run, the mix visits the patterns in slug order, ~GROUP events at each (or,
    with `scatter`, draws a random pattern for every event: the worst case for the slug index).
    """
    rng = random.Random(seed)
    words = [f"{a}-{b}" for a in ("data", "event", "cache", "graph", "queue", "schema", "retry",
                                  "batch", "stream", "index") for b in ("store", "log", "flow",
                                  "model", "check", "sync", "view", "plan", "lock", "shard")]
    slugs = sorted(f"{rng.choice(words)}-{i:05d}" for i in range(n_patterns))
    links = {s: [] for s in slugs}  # slug -> [target, link_type, confidence] it holds
    pending = {s: [] for s in slugs}  # slug -> [(proposal id, payload)]
    kinds, weights = zip(*MIX)
    made = cursor = left = 0
    while True:
        run_id = new_id()
        yield event(RunStarted(proposer="llm", model=MODEL, policy={"auto_accept": 0.85},
                               options={"batch": 50}), run_id=run_id)
        counts: dict[str, int] = {}
        for _ in range(RUN_EVENTS - 2):
            if made < n_patterns:
                slug = slugs[made]
                payload = observed(slug, slugs, rng, words)
                links[slug] = [[x["target"], x["type"], x["confidence"]]
                               for x in payload.block["inferred_links"]]
            else:
                if left == 0:
                    cursor, left = (cursor + 1) % n_patterns, rng.randint(1, 2 * GROUP - 1)
                left -= 1
                slug = rng.choice(slugs) if scatter else slugs[cursor]
                payload = mixed(rng.choices(kinds, weights)[0], slug, slugs, words, links[slug],
                                pending[slug], rng)
            made += 1
            counts[payload.type] = counts.get(payload.type, 0) + 1
            ev = event(payload, slug=slug, run_id=run_id, actor="pipeline")
            if payload.type in ("LinkProposed", "EntityProposed"):
                pending[slug].append((ev.id, payload))
            yield ev
        yield event(RunCompleted(counts=counts), run_id=run_id)


def mixed(kind, slug, slugs, words, links, pending, rng):
    if kind in ("ProposalAccepted", "ProposalRejected") and pending:
        proposal_id, proposal = pending.pop(rng.randrange(len(pending)))
        if kind == "ProposalRejected":
            return ProposalRejected(proposal_id=proposal_id, reason="confidence below 0.6")
        if proposal.type == "LinkProposed" and not any(
                link[:2] == [proposal.target, proposal.link_type] for link in links):
            links.append([proposal.target, proposal.link_type, proposal.confidence])
        return ProposalAccepted(proposal_id=proposal_id, rule="auto_accept >= 0.85")
    if kind == "LinkRescored" and links:
        link = rng.choice(links)
        new = round(rng.random(), 2)
        payload = LinkRescored(target=link[0], link_type=link[1], old_confidence=link[2],
                               new_confidence=new, reason="re-scored against neighbours",
                               proposer="llm")
        link[2] = new
        return payload
    if kind == "LinkPruned" and links:
        target, link_type, confidence = links.pop(rng.randrange(len(links)))
        return LinkPruned(target=target, link_type=link_type, rule="confidence < 0.4",
                          values={"confidence": confidence, "age_days": rng.randrange(400)})
    if kind == "EntityProposed":
        w = rng.choice(words)
        return EntityProposed(entity_id=f"ent-{w}", entity_type="concept", label=w.title(),
                              relevance=round(rng.random(), 2), proposer="llm", model=MODEL)
    if kind == "BlockWritten":
        return BlockWritten(path=f"patterns/{slug}.md", content_hash=digest(slug, rng.random()),
                            previous_hash=digest(slug, 1), last_pruned=dt.date(2025, 11, 1))
    return LinkProposed(target=rng.choice(slugs), link_type=rng.choice(LINK_TYPES),
                        confidence=round(rng.random(), 2), reason=reason(rng, words),
                        proposer="llm", model=MODEL)


class Clock:
    """Wall and CPU (user + system, this process only) seconds, summed over the calls it times."""

    def __init__(self):
        self.wall = self.cpu = 0.0

    def __call__(self, fn, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args)
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        return result


def bench(args, path: Path) -> dict:
    stream = generate(args.patterns, args.scatter)
    r: dict = {"events": args.events, "patterns": args.patterns, "batch": args.batch,
               "scatter": args.scatter}

    def record(key: str, clock: Clock, events: int | None = None) -> None:
        r.update({f"{key}_s": clock.wall, f"{key}_cpu_s": clock.cpu})
        if events:
            r[f"{key}_eps"] = events / clock.wall

    with EventStore(path) as store:
        build, append, done, sample = Clock(), Clock(), 0, []
        while done < args.events:
            batch = build(list, itertools.islice(stream, min(args.batch, args.events - done)))
            done += append(store.append, batch).appended
            sample += batch[::SAMPLE]
        record("build", build, done)
        record("append", append, done)
        r.update(building(sample))
        state = (clock := Clock())(lambda: load_state(store, use_snapshots=False))
        record("replay", clock, state.seq)
        r["pending"] = sum(len(p.pending) for p in state.patterns.values())
        encoded = (clock := Clock())(lambda: list(state.patterns.encoded()))
        clock(store.save_snapshot, state.seq, FOLD_VERSION, encoded)
        record("snapshot_save", clock)
        r["snapshot_bytes"] = sum(len(data) for _, data in encoded)
        del state, encoded
        store.append(list(itertools.islice(stream, TAIL)))
        state = (clock := Clock())(load_state, store)
        assert state.seq == store.head_seq() == args.events + TAIL, "current state is not at head"
        record("load", clock)
        broken = (clock := Clock())(store.verify_chain)
        assert broken is None, f"chain broken: {broken}"
        record("verify", clock, state.seq)
        wal = Path(f"{path}-wal")
        r.update(db_bytes=path.stat().st_size, wal_bytes=wal.stat().st_size if wal.exists() else 0)
        r["bytes_per_event"] = (r["db_bytes"] + r["wal_bytes"]) / state.seq
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return r


def building(sample: list) -> dict:
    """Events per second for building the sampled events again from their values (the payload
    model, then `event(...)`), and a LinkProposed's construction validated and not."""
    recipes = [(type(e.payload), {name: getattr(e.payload, name) for name in e.payload.model_fields_set},
                e.slug, e.run_id, e.actor) for e in sample]

    def rebuild():
        return [event(kind(**values), slug=slug, run_id=run_id, actor=actor)
                for kind, values, slug, run_id, actor in recipes]

    # Best of 3, each of ~100,000 events, with the garbage collector on, as in use; what the
    # benchmark itself holds (its record of every pending proposal, ...) is frozen first, so the
    # collections walk what building makes, not a heap no tend has.
    rounds, seconds, cpu = max(1, 100_000 // len(recipes)), float("inf"), float("inf")
    gc.freeze()
    try:
        for _ in range(3):
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(rounds):
                rebuild()
            seconds = min(seconds, (time.perf_counter() - start) / rounds)
            cpu = min(cpu, (time.process_time() - start_cpu) / rounds)
    finally:
        gc.unfreeze()
    link = next(values for kind, values, *_ in recipes if kind is LinkProposed)
    per_call = lambda fn: min(timeit.repeat(lambda: fn(**link), number=20_000, repeat=3)) / 20_000  # noqa: E731
    return {"rebuild_eps": len(recipes) / seconds, "rebuild_cpu_eps": len(recipes) / cpu,
            "rebuild_sample": len(recipes),
            "link_validated_us": per_call(LinkProposed) * 1e6,
            "link_construct_us": per_call(LinkProposed.model_construct) * 1e6}


def table(r: dict) -> list[tuple[str, str, str, str]]:
    n, met = f"{r['events']:,}", lambda ok: "yes" if ok else "NO"

    def secs(key: str) -> str:
        rate = f", {r[key + '_eps']:,.0f} events/s" if key + "_eps" in r else ""
        return f"{r[key + '_s']:.2f} s (cpu {r[key + '_cpu_s']:.2f} s){rate}"

    return [
        (f"make {n} events (random draws + building)", secs("build"), "-", "-"),
        (f"  building alone (payload + event(), {r['rebuild_sample']:,} sampled)",
         f"{r['rebuild_eps']:,.0f} events/s (cpu: {r['rebuild_cpu_eps']:,.0f} events/s)",
         ">= 100,000 events/s", met(r["rebuild_eps"] >= 100_000)),
        ("  one LinkProposed: validated / model_construct",
         f"{r['link_validated_us']:.2f} us / {r['link_construct_us']:.2f} us", "-", "-"),
        (f"append {n} events, batches of {r['batch']:,}", secs("append"), ">= 100,000 events/s",
         met(r["append_eps"] >= 100_000)),
        (f"full replay of {n} events (no snapshot)", secs("replay"), "<= 10 s",
         met(r["replay_s"] <= 10)),
        ("  pending proposals in the state", f"{r['pending']:,}", "-", "-"),
        ("snapshot at head: to_json + save", secs("snapshot_save"), "-", "-"),
        ("  snapshot size", f"{r['snapshot_bytes'] / 1e6:.1f} MB", "-", "-"),
        (f"current-state load (snapshot + {TAIL:,} events)", secs("load"), "<= 1 s",
         met(r["load_s"] <= 1)),
        ("verify_chain", secs("verify"), "-", "-"),
        ("database size (db + -wal)", f"{(r['db_bytes'] + r['wal_bytes']) / 1e6:.1f} MB "
         f"({r['wal_bytes'] / 1e6:.1f} MB wal), {r['bytes_per_event']:,.0f} bytes/event", "-", "-"),
        ("peak RSS", f"{r['peak_rss_mb']:,.0f} MB", "-", "-"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--patterns", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--scatter", action="store_true",
                        help="a random pattern for every event (worst case for the slug index)")
    parser.add_argument("--db", type=Path, help="database path (default: in a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.events < args.patterns:
        parser.error("--events must be at least --patterns (one GardenObserved per pattern)")
    if args.db and args.db.exists():
        parser.error(f"{args.db} exists; the benchmark needs a new database")
    folder = None if args.db else Path(tempfile.mkdtemp(prefix="bench_events_"))
    path = args.db or folder / "events.db"
    load_before = os.getloadavg()[0]
    try:
        r = bench(args, path)
    finally:
        if folder and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    meta = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "db": str(path),
            "load_avg_1min": [load_before, os.getloadavg()[0]]}
    if args.json:
        print(json.dumps({**meta, "results": r}, indent=2))
        return
    kept = "" if args.keep or args.db else " (removed)"
    spread = " (scattered)" if args.scatter else ""
    print(f"python {meta['python']}  cpus: {meta['cpu_count']}  load average (1 min) "
          f"before/after: {load_before:.2f}/{meta['load_avg_1min'][1]:.2f}  "
          f"(cpu = this process's user + system time)\n"
          f"events: {r['events']:,}  patterns: {r['patterns']:,}{spread}  db: {path}{kept}\n")
    rows = [("figure", "value", "goal", "met?")] + table(r)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
