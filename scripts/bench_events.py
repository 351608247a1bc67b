"""Benchmark: the event store at scale (append, full replay, snapshot load, chain check, size).

Run from the repo root (it prints figures; it is not a test):

    .venv/bin/python scripts/bench_events.py [--events N] [--patterns P] [--batch B]
                                             [--db PATH] [--keep] [--json]

It builds a realistic log with the real payload models and `garden.event.event(...)`: one
GardenObserved per pattern (5 entities, 3 communities, 8 inferred links shaped like
`GardenBlock.model_dump(mode="json")`, ~1.5 KB of block text), then a mix over random patterns
(see MIX; decisions, rescores and prunes name an earlier proposal or a link the pattern holds), in
runs of 50,000 events between RunStarted and RunCompleted. Events are built batch by batch outside
the timed regions; their construction time is reported on its own line. Measured: (1) append of
every batch via `EventStore.append`; (2) full replay, `load_state(store, use_snapshots=False)`;
(3) current-state load: a snapshot saved at head, 1,000 more events appended, `load_state(store)`;
(4) `verify_chain()`; (5) database size (db + -wal), bytes/event and peak RSS.

Goals (2-core machine): append >= 100,000 events/s, full replay <= 10 s, current load <= 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from pathlib import Path

from events.projection import FOLD_VERSION, load_state
from events.store import EventStore
from garden.event import (BlockWritten, EntityProposed, GardenObserved, LinkProposed, LinkPruned,
                          LinkRescored, ProposalAccepted, ProposalRejected, RunCompleted,
                          RunStarted, event, new_id)
from garden.model import LINK_TYPES, Community, Entity, GardenBlock, InferredLink

RUN_EVENTS = 50_000  # RunStarted + body + RunCompleted
TAIL = 1_000  # events appended after the snapshot
MIX = [("LinkProposed", .40), ("ProposalAccepted", .15), ("ProposalRejected", .10),
       ("LinkRescored", .15), ("LinkPruned", .05), ("EntityProposed", .10), ("BlockWritten", .05)]
MODEL = "claude-sonnet-4-5"
REASON = "Shared focus on {a}, {b}."


def digest(*parts) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def reason(rng: random.Random, words: list[str]) -> str:
    a, b = rng.sample(words, 2)
    return REASON.format(a=a, b=b)


def observed(slug: str, slugs: list[str], rng: random.Random, words: list[str]) -> GardenObserved:
    block = GardenBlock(
        last_pruned=dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(300)),
        entities=[Entity(id=f"ent-{w}", type=rng.choice(["concept", "tool", "practice"]),
                         label=w.replace("-", " ").title(), relevance=round(rng.random(), 2))
                  for w in rng.sample(words, 5)],
        communities=[Community(id=f"com-{rng.randrange(400)}", label=f"{rng.choice(words)} cluster",
                               source="leiden", confidence=round(rng.random(), 2)) for _ in range(3)],
        inferred_links=[InferredLink(target=t, type=rng.choice(LINK_TYPES),
                                     confidence=round(rng.uniform(.5, 1), 2), reason=reason(rng, words))
                        for t in rng.sample(slugs, 8)],
    ).model_dump(mode="json")
    text = ["graph_garden:", f"  last_pruned: {block['last_pruned']}", "  entities:"]
    text += [f"    - {{id: {e['id']}, type: {e['type']}, label: {e['label']}, relevance: "
             f"{e['relevance']}}}" for e in block["entities"]]
    text += ["  communities:"] + [f"    - {{id: {c['id']}, label: {c['label']}, source: leiden, "
                                  f"confidence: {c['confidence']}}}" for c in block["communities"]]
    text += ["  inferred_links:"] + [f"    - {{target: {x['target']}, type: {x['type']}, confidence: "
                                     f"{x['confidence']}, reason: {x['reason']}}}"
                                     for x in block["inferred_links"]]
    return GardenObserved(path=f"patterns/{slug}.md", format="v7.1", content_hash=digest(slug, 1),
                          text_hash=digest(slug, 2), block=block, block_text="\n".join(text) + "\n")


def generate(n_patterns: int, seed: int = 1):
    """An endless, deterministic stream of events: observations first, then the mix."""
    rng = random.Random(seed)
    words = [f"{a}-{b}" for a in ("data", "event", "cache", "graph", "queue", "schema", "retry",
                                  "batch", "stream", "index") for b in ("store", "log", "flow",
                                  "model", "check", "sync", "view", "plan", "lock", "shard")]
    slugs = [f"{rng.choice(words)}-{i:05d}" for i in range(n_patterns)]
    links = {s: [] for s in slugs}  # slug -> [target, link_type, confidence] it holds
    pending = {s: [] for s in slugs}  # slug -> [(proposal id, payload)]
    kinds, weights = zip(*MIX)
    made = 0
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
                slug = rng.choice(slugs)
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
        if proposal.type == "LinkProposed":
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


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def bench(args, path: Path) -> dict:
    stream = generate(args.patterns)
    r: dict = {"events": args.events, "patterns": args.patterns, "batch": args.batch}
    build = append = 0.0
    with EventStore(path) as store:
        done = 0
        while done < args.events:
            batch, took = timed(list, itertools.islice(stream, min(args.batch, args.events - done)))
            build += took
            result, took = timed(store.append, batch)
            append += took
            done += result.appended
        r.update(build_s=build, build_eps=done / build, append_s=append, append_eps=done / append)
        state, took = timed(lambda: load_state(store, use_snapshots=False))
        r.update(replay_s=took, replay_eps=state.seq / took, pending=sum(
            len(p["pending"]) for p in state.patterns.values()))
        snapshot, took = timed(state.to_json)
        store.save_snapshot(state.seq, FOLD_VERSION, snapshot)
        r.update(snapshot_json_s=took, snapshot_bytes=len(snapshot.encode()))
        del state, snapshot
        store.append(list(itertools.islice(stream, TAIL)))
        state, took = timed(load_state, store)
        assert state.seq == store.head_seq() == args.events + TAIL, "current state is not at head"
        r.update(load_s=took)
        broken, took = timed(store.verify_chain)
        assert broken is None, f"chain broken: {broken}"
        r.update(verify_s=took, verify_eps=state.seq / took)
        size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        r.update(db_bytes=size, bytes_per_event=size / state.seq)
    r["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return r


def table(r: dict) -> list[tuple[str, str, str, str]]:
    def met(ok: bool) -> str:
        return "yes" if ok else "NO"

    n = f"{r['events']:,}"
    return [
        (f"build {n} events (not the store's cost)", f"{r['build_s']:.1f} s, {r['build_eps']:,.0f}/s", "-", "-"),
        (f"append {n} events, batches of {r['batch']:,}", f"{r['append_s']:.2f} s, {r['append_eps']:,.0f}/s",
         ">= 100,000/s", met(r["append_eps"] >= 100_000)),
        (f"full replay of {n} events (no snapshot)", f"{r['replay_s']:.2f} s, {r['replay_eps']:,.0f}/s",
         "<= 10 s", met(r["replay_s"] <= 10)),
        ("  pending proposals in the state", f"{r['pending']:,}", "-", "-"),
        ("snapshot: State.to_json at head", f"{r['snapshot_json_s']:.2f} s", "-", "-"),
        ("snapshot size", f"{r['snapshot_bytes'] / 1e6:.1f} MB", "-", "-"),
        (f"current-state load (snapshot + {TAIL:,} events)", f"{r['load_s']:.2f} s", "<= 1 s",
         met(r["load_s"] <= 1)),
        ("verify_chain", f"{r['verify_s']:.2f} s, {r['verify_eps']:,.0f}/s", "-", "-"),
        ("database size (db + -wal)", f"{r['db_bytes'] / 1e6:.1f} MB, {r['bytes_per_event']:.0f} B/event",
         "-", "-"),
        ("peak RSS", f"{r['peak_rss_mb']:.0f} MB", "-", "-"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--patterns", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--db", type=Path, help="database path (default: in a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.events < args.patterns:
        parser.error("--events must be at least --patterns (one GardenObserved per pattern)")
    folder = None if args.db else Path(tempfile.mkdtemp(prefix="bench_events_"))
    path = args.db or folder / "events.db"
    try:
        r = bench(args, path)
    finally:
        if folder and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    meta = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "db": str(path)}
    if args.json:
        print(json.dumps({**meta, "results": r}, indent=2))
        return
    print(f"python {meta['python']}  cpus: {meta['cpu_count']}  events: {r['events']:,}  "
          f"patterns: {r['patterns']:,}  db: {path}{'' if args.keep or args.db else ' (removed)'}\n")
    rows = [("figure", "value", "goal", "met?")] + table(r)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    main()
