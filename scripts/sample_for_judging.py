"""Draw a blind-judgement sample from a tended garden: a judge sheet and its key.

    .venv/bin/python scripts/sample_for_judging.py --garden DIR --db DIR/../events.db --n 50 --out OUT

For links and, separately, entities it draws up to N items at random from each source group:

    links:    inherited kept (in a block, never proposed in this log), inherited pruned (pruned
              by a tend, never proposed in this log), <proposer> accepted, <proposer> pending,
              <proposer> rejected (by the policy), random pairs (control)
    entities: inherited kept, inherited pruned, <proposer> accepted, <proposer> pending,
              <proposer> rejected, random (another pattern's entity put on this pattern: control)

and writes two files in OUT:
- `sheet.jsonl`: one item a line, shuffled: its id, and for a link the two patterns' titles and
  summaries and the link type; for an entity the pattern's title and summary and the entity's
  label and type. No source, no score, nothing that orders the items.
- `key.json`: item id -> group, confidence (or relevance), and the slugs, for the lead only.

Items whose pattern or target is not in the garden are left out (a judge needs both texts), and
counted in the printed summary. The draw is seeded (--seed) so a sample can be drawn again.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from events.projection import load_state  # noqa: E402
from events.store import EventStore  # noqa: E402
from garden.catalog import load_garden  # noqa: E402


def proposals(store: EventStore) -> tuple[dict, dict, list, dict]:
    """Every proposal in the log by id, how it ended ("accepted", "rejected"; else pending),
    every prune (slug, payload), and each entity's (label, type) as first observed."""
    found, ended, pruned, labels = {}, {}, [], {}
    for e in store.events(types=["LinkProposed", "EntityProposed", "ProposalAccepted", "ProposalRejected",
                                 "LinkPruned", "EntityPruned", "GardenObserved"]):
        p = e.payload
        if p.type == "GardenObserved":  # the block as first seen: the labels of what a tend pruned
            for entity in (p.block or {}).get("entities") or []:
                labels.setdefault((e.slug, entity["id"]), (entity.get("label") or entity["id"],
                                                           entity.get("type") or "?"))
        elif p.type in ("LinkProposed", "EntityProposed"):
            found[e.id] = (e.slug, p)
        elif p.type in ("LinkPruned", "EntityPruned"):
            pruned.append((e.slug, p))
        elif p.proposal_id in found:
            ended[p.proposal_id] = "accepted" if p.type == "ProposalAccepted" else "rejected"
    return found, ended, pruned, labels


def groups(garden, state, found, ended, pruned, labels, rnd: random.Random) -> tuple[dict, dict]:
    links, entities = defaultdict(list), defaultdict(list)
    proposed_links, proposed_entities = {}, {}
    for pid, (slug, p) in found.items():
        outcome = ended.get(pid, "pending")
        if p.type == "LinkProposed":
            proposed_links[(slug, p.target, p.link_type)] = p.proposer
            if outcome != "accepted":
                links[f"{p.proposer} {outcome}"].append((slug, p.target, p.link_type, p.confidence))
        else:
            proposed_entities[(slug, p.entity_id)] = p.proposer
            if outcome != "accepted":
                entities[f"{p.proposer} {outcome}"].append((slug, p.entity_id, p.label, p.entity_type, p.relevance))
    all_entities = []
    for slug, p in pruned:
        if p.type == "LinkPruned" and (slug, p.target, p.link_type) not in proposed_links:
            links["inherited pruned"].append((slug, p.target, p.link_type, p.confidence))
        elif p.type == "EntityPruned" and (slug, p.entity_id) not in proposed_entities:
            label, kind = labels.get((slug, p.entity_id), (p.entity_id, "?"))
            entities["inherited pruned"].append((slug, p.entity_id, label, kind, p.relevance))
    for slug, known in sorted(state.patterns.items()):
        block = known.block or {}
        for link in block.get("inferred_links") or []:
            proposer = proposed_links.get((slug, link["target"], link.get("type")))
            group = f"{proposer} accepted" if proposer else "inherited kept"
            links[group].append((slug, link["target"], link.get("type") or "?", link.get("confidence")))
        for entity in block.get("entities") or []:
            proposer = proposed_entities.get((slug, entity["id"]))
            group = f"{proposer} accepted" if proposer else "inherited kept"
            item = (slug, entity["id"], entity.get("label") or entity["id"], entity.get("type") or "?",
                    entity.get("relevance"))
            entities[group].append(item)
            all_entities.append(item)
    slugs = sorted(garden.patterns)
    types = [l[2] for group in links.values() for l in group] or ["complementary"]
    pairs = set()
    while len(pairs) < min(5000, len(slugs) * (len(slugs) - 1)) and len(slugs) > 1:
        a, b = rnd.sample(slugs, 2)
        pairs.add((a, b))
        if len(pairs) >= 2000:
            break
    links["random pairs"] = [(a, b, rnd.choice(types), None) for a, b in sorted(pairs)]
    if all_entities and slugs:
        entities["random"] = [(rnd.choice(slugs), e[1], e[2], e[3], None)
                              for e in rnd.sample(all_entities, min(2000, len(all_entities)))]
    return links, entities


def pattern_view(garden, slug: str) -> dict:
    p = garden.patterns[slug]
    return {"title": p.title, "summary": p.summary}


def draw(garden, links, entities, n: int, rnd: random.Random) -> tuple[list, dict, dict]:
    items, skipped = [], defaultdict(int)
    for group, found in sorted(links.items()):
        usable = [l for l in found if l[0] in garden.patterns and l[1] in garden.patterns and l[0] != l[1]]
        skipped[f"links {group}"] += len(found) - len(usable)
        for slug, target, kind, confidence in rnd.sample(usable, min(n, len(usable))):
            items.append(({"kind": "link", "from": pattern_view(garden, slug), "to": pattern_view(garden, target),
                           "type": kind},
                          {"group": group, "kind": "link", "slug": slug, "target": target, "type": kind,
                           "confidence": confidence}))
    for group, found in sorted(entities.items()):
        usable = [e for e in found if e[0] in garden.patterns]
        skipped[f"entities {group}"] += len(found) - len(usable)
        for slug, entity_id, label, kind, relevance in rnd.sample(usable, min(n, len(usable))):
            items.append(({"kind": "entity", "pattern": pattern_view(garden, slug), "label": label, "type": kind},
                          {"group": group, "kind": "entity", "slug": slug, "entity_id": entity_id,
                           "relevance": relevance}))
    rnd.shuffle(items)
    sheet, key = [], {}
    for number, (shown, secret) in enumerate(items, 1):
        item_id = f"item-{number:04d}"
        sheet.append({"id": item_id, **shown})
        key[item_id] = secret
    drawn = defaultdict(int)
    for secret in key.values():
        drawn[f"{'links' if secret['kind'] == 'link' else 'entities'} {secret['group']}"] += 1
    return sheet, key, {"drawn": dict(sorted(drawn.items())),
                        "left_out_not_in_garden": {k: v for k, v in sorted(skipped.items()) if v}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--garden", type=Path, required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--n", type=int, default=50, help="items per group (links and entities each)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)
    rnd = random.Random(args.seed)
    garden = load_garden(args.garden, keep_bodies=False)
    with EventStore(args.db, create=False) as store:
        state = load_state(store)
        found, ended, pruned, labels = proposals(store)
    links, entities = groups(garden, state, found, ended, pruned, labels, rnd)
    sheet, key, counts = draw(garden, links, entities, args.n, rnd)
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "sheet.jsonl", "w", encoding="utf-8") as f:
        for item in sheet:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    (args.out / "key.json").write_text(json.dumps(key, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(json.dumps({"items": len(sheet), **counts}, indent=1))
    print(f"wrote {args.out / 'sheet.jsonl'} (for judges) and {args.out / 'key.json'} (for the lead)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
