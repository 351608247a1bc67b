"""What curators and maintainers do: review, accept or reject, lift a rejection, diff and revert
a run. Each action is a run of its own in the log (proposer `curator`), so it can be diffed and
reverted like a nightly one; nothing is ever edited in place.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from events.projection import load_state
from events.queries import list_runs
from garden.state import PatternState, State, apply, entity_key, link_key, proposal_key
from events.store import EventStore, row_to_event
from flows.recording import catch_up, observe, recorder
from flows.run import close_orphaned_runs, recorded_run
from flows.writing import needs_write, write_changed_blocks
from garden.catalog import Garden
from garden.errors import GardenError, UnknownPatternError
from garden.event import (
    BlockRestored,
    EntityPruned,
    Event,
    LinkPruned,
    ProposalAccepted,
    ProposalRejected,
    ProposalReopened,
    RejectionLifted,
    RunReverted,
    event,
)
from garden.model import as_block
from garden.revert import block_diff, changed_items, restore_items
from garden.sample import band_of, stratified_sample
from garden.writer import remove_stale_temp_files


# --- review ---------------------------------------------------------------------------------


def pending_by_pattern(state: State, pattern: str | None = None, run: str | None = None,
                       min_confidence: float | None = None) -> dict[str, dict[str, dict]]:
    """Pending proposals, filtered, grouped by pattern (patterns in slug order)."""
    found: dict[str, dict[str, dict]] = {}
    slugs = [pattern] if pattern else sorted(state.patterns)
    for slug in slugs:
        known = state.patterns.get(slug)
        if not known:
            continue
        chosen = {}
        for pid, p in sorted(known.pending.items(), key=lambda kv: kv[1]["seq"]):
            score = proposal_score(p)
            if run and p.get("run_id") != run:
                continue
            if min_confidence is not None and score < min_confidence:
                continue
            chosen[pid] = p
        if chosen:
            found[slug] = chosen
    return found


QUEUE_ORDERS = ("uncertain", "pattern", "confidence")


def review_queue(state: State, pattern: str | None = None, run: str | None = None,
                 min_confidence: float | None = None, max_confidence: float | None = None,
                 kind: str | None = None, proposer: str | None = None,
                 order: str = "pattern") -> list[tuple[str, str, dict]]:
    """Pending proposals one by one, as (slug, id, proposal), filtered and ordered for a curator:
    "pattern" (by pattern, each pattern's in the order proposed), "uncertain" (the score nearest
    one in two first: link confidences are calibrated keep rates, so these are the decisions the
    machine knows least about; ties by pattern) or "confidence" (highest first)."""
    if order not in QUEUE_ORDERS:
        raise GardenError(f"order must be one of {', '.join(QUEUE_ORDERS)}, not {order!r}")
    queue = [(slug, pid, p) for slug, ps in pending_by_pattern(state, pattern, run, min_confidence).items()
             for pid, p in ps.items()
             if (kind is None or p["kind"] == kind) and (proposer is None or p.get("proposer") == proposer)
             and (max_confidence is None or proposal_score(p) <= max_confidence)]
    if order == "uncertain":
        queue.sort(key=lambda item: abs(proposal_score(item[2]) - 0.5))  # stable: pattern order in ties
    elif order == "confidence":
        queue.sort(key=lambda item: -proposal_score(item[2]))
    return queue


def proposal_score(p: dict) -> float:
    """A proposal's score: a link's confidence, an entity's relevance, a proposed prune's item's
    re-assessed score (0 when it has none)."""
    if p["kind"] == "prune":
        return p.get("score") or 0.0
    return p["confidence"] if p["kind"] == "link" else p["relevance"]


PREVIEW_ACTOR = "curator:(preview)"  # who decides in a preview: a curator, as the real decision


def review_diff(state: State, slug: str, proposals: dict[str, dict]) -> list[str]:
    """What accepting these pending proposals would change in the block, as a diff: the
    decisions accepting records, applied to a copy of the pattern's state."""
    known = state.patterns[slug]
    accepted = known.preview(slug, [event(ProposalAccepted(proposal_id=pid, rule="curator"), slug=slug,
                                          actor=PREVIEW_ACTOR) for pid in proposals])
    return block_diff(slug, known.block, accepted.block)


def pending_duplicates(state: State) -> dict[str, dict]:
    """Suspected duplicate patterns waiting for a curator (merge candidates), by suspicion id,
    the most confident first."""
    waiting = [e for e in state.duplicates.values() if e["status"] == "pending"]
    return {e["id"]: e for e in sorted(waiting, key=lambda e: (-e["confidence"], e["seq"]))}


def describe_duplicate(entry: dict, titles: dict[str, str]) -> dict[str, Any]:
    """A merge candidate as review shows it: both patterns with their titles."""
    a, b = entry["slugs"]
    return {"id": entry["id"], "kind": "duplicate", "slug": entry["slug"], "other": entry["other"], "slugs": [a, b],
            "titles": [titles.get(a, a), titles.get(b, b)], "confidence": entry["confidence"],
            "reason": entry["reason"], "proposer": entry["proposer"], "model": entry["model"],
            "evidence": entry["evidence"], "run_id": entry["run_id"]}


# --- sampled review: the machine's items, whatever the policy did -----------------------------

_PROPOSED = ("LinkProposed", "EntityProposed")
POLICY_ACTOR = "pruner"  # who records the policy's decisions (garden.policy.decide)


@dataclass
class MachineItem:
    """A link or entity a proposer proposed that a curator may still decide: pending, accepted by
    the policy (and still in the block), or rejected by the policy (and not in the block)."""

    id: str
    slug: str
    proposal: dict  # as the projection holds a pending one
    policy: str  # "pending", "accepted" or "rejected"
    rule: str | None = None  # the policy's rule (accepted) or reason (rejected)
    held: dict | None = None  # the item in the block now (accepted by the policy)

    @property
    def score(self) -> float:
        return proposal_score(self.proposal)

    def to_dict(self, pattern: PatternState) -> dict:
        p = self.proposal
        found = {"id": self.id, "slug": self.slug, "kind": p["kind"], "proposer": p["proposer"],
                 "model": p.get("model"), "confidence": self.score, "policy": self.policy, "rule": self.rule,
                 "band": list(band_of(self.score)), **p}
        if p["kind"] == "entity":
            found["entity"] = p["entity_id"]
        if self.held is not None:
            found["current"] = self.held.get("confidence" if p["kind"] == "link" else "relevance")
        found["diff"] = "\n".join(self.overruled_diff(pattern))
        return found

    def overruled_diff(self, pattern: PatternState) -> list[str]:
        """What a curator's decision against the policy (accepting, for a pending proposal)
        would change in the block: the events that decision records, applied to a copy."""
        events = [event(payload, slug=self.slug, actor=PREVIEW_ACTOR)
                  for payload in _on_policy_decision(self, self.policy != "accepted", None)]
        return block_diff(self.slug, pattern.block, pattern.preview(self.slug, events).block)


def machine_items(store: EventStore, state: State, slug: str | None = None) -> dict[str, MachineItem]:
    """What a curator may decide among everything proposers proposed (of one pattern, or all),
    by proposal id, in the order proposed. An item (a pattern's link or entity) speaks through
    its newest proposal: none is offered whose newest proposal a curator decided (even to
    confirm it) or a revert withdrew, nor one whose pattern the log no longer has, nor a policy
    accept whose item has left the block since (pruned, edited out), nor a policy rejection
    whose item is in the block now."""
    proposals: dict[str, tuple[str, dict]] = {}
    decisions: dict[str, Event] = {}
    curated: set[str] = set()
    for row in store.rows(slug=slug, types=_PROPOSED + ("ProposalAccepted", "ProposalRejected",
                                                        "ProposalReopened")):
        e = row_to_event(row)
        p = e.payload
        if p.type in _PROPOSED:
            proposal = p.model_dump(exclude={"type"})
            proposal.update(kind="link" if p.type == "LinkProposed" else "entity", seq=e.seq, run_id=e.run_id,
                            actor=e.actor, at=e.recorded_at)
            proposals[e.id] = (e.slug, proposal)
        elif p.proposal_id in proposals:
            if p.type == "ProposalReopened":  # a revert undid the decision
                decisions.pop(p.proposal_id, None)
                continue
            decisions[p.proposal_id] = e
            if e.actor.startswith("curator:"):
                curated.add(p.proposal_id)
    newest = {(where, proposal_key(proposal)): pid for pid, (where, proposal) in proposals.items()}
    found: dict[str, MachineItem] = {}
    for (where, _), pid in sorted(newest.items(), key=lambda kv: proposals[kv[1]][1]["seq"]):
        known = state.patterns.get(where)
        if known is None or pid in curated:
            continue
        proposal = proposals[pid][1]
        if pid in known.pending:
            found[pid] = MachineItem(pid, where, proposal, "pending")
            continue
        decision = decisions.get(pid)
        if decision is None or decision.actor != POLICY_ACTOR:
            continue  # superseded while pending, or withdrawn by a revert
        accepted = decision.type == "ProposalAccepted"
        held = held_item(known.block, proposal)
        if accepted == (held is not None):
            found[pid] = MachineItem(pid, where, proposal, "accepted" if accepted else "rejected",
                                     decision.payload.rule if accepted else decision.payload.reason, held)
    return found


def held_item(block: dict | None, proposal: dict) -> dict | None:
    """The block's item a link or entity proposal is about, if the block holds it."""
    if proposal["kind"] == "link":
        items, match = (block or {}).get("inferred_links") or [], {"target": proposal["target"],
                                                                     "type": proposal["link_type"]}
    else:
        items, match = (block or {}).get("entities") or [], {"id": proposal["entity_id"]}
    return next((i for i in items if all(i.get(k) == v for k, v in match.items())), None)


def sample_review(store: EventStore, state: State, n: int, seed: int,
                  proposer: str | None = None) -> tuple[list[MachineItem], int, int]:
    """A stratified sample of `n` of the machine's items (see `garden.sample`: by kind and band
    of 0.1), the items it was drawn from and their strata counted."""
    # In the order of what they are about, not of the log: the same garden and seed draw the same
    # sample however a model's concurrent answers happened to be appended.
    items = sorted((i for i in machine_items(store, state).values() if proposer in (None, i.proposal["proposer"])),
                   key=lambda i: (i.slug, proposal_key(i.proposal)))

    def stratum(item: MachineItem) -> tuple[str, tuple[float, float]]:
        return item.proposal["kind"], band_of(item.score)

    return stratified_sample(items, n, seed, stratum), len(items), len({stratum(i) for i in items})


def decidable_by_policy(store: EventStore, state: State, ids: list[str]) -> dict[str, MachineItem]:
    """Of `ids` (none pending), those the policy decided that a curator may still decide."""
    found: dict[str, MachineItem] = {}
    by_slug: dict[str, dict[str, MachineItem]] = {}
    for pid in ids:
        stored = store.get(pid)
        if stored is None or stored.type not in _PROPOSED or stored.slug not in state.patterns:
            continue
        if stored.slug not in by_slug:
            by_slug[stored.slug] = machine_items(store, state, stored.slug)
        item = by_slug[stored.slug].get(pid)
        if item is not None and item.policy != "pending":
            found[pid] = item
    return found


# --- what a command names must exist -------------------------------------------------------


def require_pattern(state: State, slug: str) -> None:
    if slug not in state.patterns:
        raise UnknownPatternError(slug)


def require_run(store: EventStore, run_id: str) -> str:
    """The run id, upper-cased, if the log has such a run (a GardenError naming it if not)."""
    run_id = run_id.upper()
    if not any(True for _ in store.rows(run_id=run_id, types=("RunStarted",))):
        raise GardenError(f"no run {run_id} in the log; `garden runs` lists them")
    return run_id


# --- decisions ------------------------------------------------------------------------------


def explain_not_pending(store: EventStore, state: State, proposal_id: str) -> str:
    """Why an id cannot be decided (it is not pending), in words a curator can act on."""
    for slug in state.patterns:
        newer = state.patterns[slug].superseded.get(proposal_id)
        if newer:
            return (f"proposal {proposal_id} was superseded by {newer} (a later proposal of the same "
                    f"link or entity on {slug}); decide {newer} instead")
    stored = store.get(proposal_id)
    if stored is None:
        return f"no proposal {proposal_id} in the log (`garden review` lists the pending ones)"
    if stored.type == "DuplicateSuspected":
        entry = state.duplicates.get("|".join(sorted((stored.slug, stored.payload.other)))) or {}
        if entry.get("id") != proposal_id:
            return f"duplicate suspicion {proposal_id} was superseded by {entry.get('id')}; decide that one instead"
        return (f"duplicate suspicion {proposal_id} ({stored.slug} ~ {stored.payload.other}) was already "
                f"{entry['status']} by {entry.get('decided_by')}")
    if stored.type not in ("LinkProposed", "EntityProposed"):
        return f"{proposal_id} is a {stored.type} event, not a proposal"
    # The decision in force is the newest: an older one a revert undid (ProposalReopened) is history.
    for row in store.rows(slug=stored.slug, types=("ProposalAccepted", "ProposalRejected"), after=stored.seq,
                          newest_first=True):
        decision = row_to_event(row)
        if decision.payload.proposal_id == proposal_id:
            verb = "accepted" if decision.type == "ProposalAccepted" else "rejected"
            if decision.actor == POLICY_ACTOR:
                return (f"proposal {proposal_id} was {verb} by the policy (event #{decision.seq}) and no "
                        "longer stands for its item (pruned, edited or proposed again since): nothing "
                        "to decide")
            return (f"proposal {proposal_id} was already {verb} (event #{decision.seq} by "
                    f"{decision.actor}, {decision.recorded_at[:16].replace('T', ' ')})")
    return f"proposal {proposal_id} is no longer pending"


@dataclass
class Finished:
    """Writes that killed (or failed) commands left undone, made by a run of their own."""

    run_id: str
    runs: dict[str, str]  # killed run -> its command ("tend" for a tend)
    written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class CuratorResult:
    run_id: str
    decided: list[dict[str, Any]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    finished: Finished | None = None  # what a killed command had left unwritten, written first

    def to_dict(self) -> dict:
        return {**self.__dict__, "finished": self.finished.to_dict() if self.finished else None}


def select_proposals(store: EventStore, state: State, ids: list[str] | None, pattern: str | None,
                     run: str | None) -> list[tuple[str, str]]:
    """(slug, proposal id) for what a curator named; any unusable id stops everything."""
    if bool(ids) + bool(pattern) + bool(run) != 1:
        raise GardenError("name the proposals: IDs, or --pattern SLUG, or --run RUN (one of them)")
    if ids:
        where = pending_where(store, state, ids)
        where.update({pid: entry["slug"] for pid, entry in pending_duplicates(state).items()})
        where.update({pid: item.slug for pid, item in
                      decidable_by_policy(store, state, [pid for pid in ids if pid not in where]).items()})
        problems = [explain_not_pending(store, state, pid) for pid in ids if pid not in where]
        if problems:
            raise GardenError("; ".join(problems) + "; nothing was decided")
        return [(where[pid], pid) for pid in ids]
    if pattern:
        require_pattern(state, pattern)
    if run:
        require_run(store, run)
    chosen = pending_by_pattern(state, pattern=pattern, run=run)
    if not chosen:
        raise GardenError(f"nothing pending for {'pattern ' + pattern if pattern else 'run ' + run}")
    return [(slug, pid) for slug, proposals in chosen.items() for pid in proposals]


def pending_where(store: EventStore, state: State, ids: list[str]) -> dict[str, str]:
    """Of `ids`, the pending proposals, each with its pattern: the proposal's event names the
    pattern, so only the patterns named are looked at (not the whole garden's state)."""
    where = {}
    for pid in ids:
        stored = store.get(pid)
        if stored is not None and stored.slug in state.patterns and pid in pending_of(state, stored.slug):
            where[pid] = stored.slug
    return where


def pending_of(state: State, slug: str) -> dict[str, dict]:
    """A pattern's pending proposals by id (none for a pattern the log does not have)."""
    known = state.patterns.get(slug)
    return known.pending if known else {}


def decide_proposals(store: EventStore, garden: Garden, chosen: list[tuple[str, str]], accept: bool,
                     by: str, note: str | None, write: bool = True,
                     today: dt.date | None = None, *, state: State) -> CuratorResult:
    """Record a curator's decision on each chosen proposal, then write the changed blocks.

    A proposal the policy decided (a sampled review) is decided too: overruling the policy
    changes the block (an accept adds the item, a reject prunes it), confirming it does not.
    `state`: the log's state, kept current here."""
    actor = f"curator:{by}"
    today = today or dt.date.today()
    command = "accept" if accept else "reject"
    record = recorder(store, state)
    with recorded_run(store, "curator", None, options={"command": command, "by": by, "note": note}) as run:
        observe(store, garden, state, run.run_id)
        by_policy = decidable_by_policy(store, state, [pid for slug, pid in chosen
                                                       if pid not in state.patterns[slug].pending])
        result = CuratorResult(run.run_id)
        events, changed, confirmed = [], set(), 0
        duplicates = pending_duplicates(state)
        for slug, pid in chosen:
            proposal = state.patterns[slug].pending.get(pid)
            if pid in duplicates:  # a merge candidate: a label for a curator, never in a block
                proposal = duplicates[pid]
                payload = (ProposalAccepted(proposal_id=pid, rule="curator: confirmed duplicate", note=note)
                           if accept else ProposalRejected(proposal_id=pid, reason="curator: not the same idea",
                                                           note=note))
                events.append(event(payload, slug=slug, run_id=run.run_id, actor=actor))
                decided = {"policy": "pending", "changes_block": False,
                           "effect": "confirmed duplicate, a merge candidate; the files are unchanged" if accept
                           else "not the same idea; the files are unchanged"}
            elif proposal is not None:
                payload = (ProposalAccepted(proposal_id=pid, rule="curator", note=note) if accept
                           else ProposalRejected(proposal_id=pid, reason="curator", note=note))
                events.append(event(payload, slug=slug, run_id=run.run_id, actor=actor))
                decided = {"policy": "pending", "effect": None, "changes_block": accept}
            elif pid in by_policy:
                item = by_policy[pid]
                proposal = item.proposal
                events += [event(payload, slug=slug, run_id=run.run_id, actor=actor)
                           for payload in _on_policy_decision(item, accept, note)]
                overrules = item.policy != ("accepted" if accept else "rejected")
                confirmed += not overrules
                decided = {"policy": item.policy, "effect": _EFFECTS[accept, item.policy],
                           "changes_block": overrules}
            else:  # decided or changed while the lock was being taken
                raise GardenError(explain_not_pending(store, state, pid) + "; nothing was decided")
            if decided["changes_block"]:
                changed.add(slug)
            result.decided.append({"id": pid, "slug": slug, "decision": command, **decided, **_describe(proposal)})
        record(events)
        if changed and write:
            result.written, result.errors = write_changed_blocks(
                record, garden, state, today, run.run_id, only=changed)
        run.counts.update({"accepted" if accept else "rejected": len(chosen),
                           "files_written": len(result.written), "errors": len(result.errors)})
        if confirmed:
            run.counts["confirmed"] = confirmed
    return result


_EFFECTS = {(True, "rejected"): "over the policy's rejection",
            (False, "accepted"): "over the policy's accept: pruned",
            (True, "accepted"): "confirms the policy's accept; the file is unchanged",
            (False, "rejected"): "confirms the policy's rejection; the file is unchanged"}


def _on_policy_decision(item: MachineItem, accept: bool, note: str | None) -> list:
    """A curator's decision on what the policy decided, as payloads: a confirmation, or the
    policy overruled (over its accept, the item is pruned first, by the curator)."""
    if item.policy == "pending":
        return [ProposalAccepted(proposal_id=item.id, rule="curator", note=note) if accept
                else ProposalRejected(proposal_id=item.id, reason="curator", note=note)]
    p, known = item.proposal, {"policy": item.policy, "proposal": item.proposal}
    if accept:
        rule = ("curator, confirming the policy's accept" if item.policy == "accepted"
                else "curator, over the policy's rejection")
        return [ProposalAccepted(proposal_id=item.id, rule=rule, note=note, **known)]
    if item.policy == "rejected":
        return [ProposalRejected(proposal_id=item.id, reason="curator, confirming the policy's rejection",
                                 note=note, **known)]
    values = {"proposal_id": item.id}
    prune = (LinkPruned(target=p["target"], link_type=p["link_type"], rule="curator", values=values,
                        confidence=item.held.get("confidence")) if p["kind"] == "link"
             else EntityPruned(entity_id=p["entity_id"], rule="curator", values=values,
                               relevance=item.held.get("relevance")))
    return [prune, ProposalRejected(proposal_id=item.id, reason="curator, over the policy's accept", note=note,
                                    **known)]


def decide(store: EventStore, garden: Garden, state: State, ids: list[str] | None, pattern: str | None,
           run: str | None, accept: bool, by: str, note: str | None, write: bool = True,
           today: dt.date | None = None) -> CuratorResult:
    """What `garden accept` / `reject` (and each key of an interactive review) do, holding the
    garden's lock, after `finish_unfinished`: choose the proposals named, decide, write.

    `garden` must be read after the lock was taken: a garden read before another command wrote
    would make that command's writes look like a person's edits. `state` is kept current."""
    chosen = select_proposals(store, catch_up(store, state), [i.upper() for i in ids or []], pattern,
                              run and run.upper())
    return decide_proposals(store, garden, chosen, accept, by, note, write=write, today=today, state=state)


def _describe(p: dict) -> dict:
    if "slugs" in p:  # a duplicate suspicion
        return {"what": f"duplicate of {p['other']}", "score": p["confidence"]}
    if p["kind"] == "prune":
        return {"what": f"prune {prune_target(p)} ({p['rule']})", "score": proposal_score(p)}
    if p["kind"] == "link":
        return {"what": f"link -> {p['target']} ({p['link_type']})", "score": p["confidence"]}
    return {"what": f"entity {p['entity_id']} ({p['entity_type']})", "score": p["relevance"]}


def prune_target(p: dict) -> str:
    """What a proposed prune would remove, as a curator reads it."""
    return f"link -> {p['target']} ({p['link_type']})" if p["item"] == "link" else f"entity {p['entity_id']}"


def lift_rejection(store: EventStore, state: State, slug: str, target: str | None, link_type: str | None,
                   entity: str | None, by: str, note: str | None) -> str:
    require_pattern(state, slug)
    known = state.patterns.get(slug)
    key = entity_key(entity) if entity else link_key(target, link_type)
    if not known or key not in known.declined:
        raise GardenError(f"{slug}: no curator rejection of {key.replace('|', ' ')} to lift")
    with recorded_run(store, "curator", None, options={"command": "lift", "by": by}) as run:
        lifted = RejectionLifted(target=target, link_type=link_type, entity_id=entity, note=note)
        recorder(store, state)([event(lifted, slug=slug, run_id=run.run_id, actor=f"curator:{by}")])
    return run.run_id


# --- finishing what a killed command started -----------------------------------------------

# The events after which a pattern's block in the log may be ahead of its file.
_BLOCK_CHANGES = ("ProposalAccepted", "LinkRescored", "LinkPruned", "EntityPruned", "CommunityPruned",
                  "BlockRestored", "BlockWriteStarted")


def unfinished_runs(store: EventStore) -> dict[str, dict]:
    """Runs that did not complete (killed, interrupted, failed) whose writes no later run
    finished, by run id, with their RunStarted options. A completed tend writes every block the
    log changed, so only what failed after the last one counts. One pass over the runs' events."""
    options: dict[str, dict] = {}
    failed: dict[str, dict] = {}
    ended: set[str] = set()
    for row in store.rows(types=("RunStarted", "RunCompleted", "RunFailed")):
        run_id = row[4]
        if row[2] == "RunStarted":
            options[run_id] = row_to_event(row).payload.options or {}
            continue
        ended.add(run_id)
        started = options.get(run_id, {"command": None})
        if row[2] == "RunFailed":
            failed[run_id] = started
        elif "command" not in started:
            failed.clear()  # a tend completed
        else:
            done = started.get("finishing")
            for earlier in [done] if isinstance(done, str) else done or []:
                failed.pop(earlier, None)
    # Runs that never ended were killed (the caller holds the lock: none is still going).
    failed.update({run_id: started for run_id, started in options.items() if run_id not in ended})
    return failed


def settle(store: EventStore, garden: Garden, state: State) -> None:
    """Close the runs a killed process left open, remove its temporary files, and record what
    the files hold now (a write whose confirmation was cut off is recognised as ours)."""
    close_orphaned_runs(store)
    remove_stale_temp_files(garden.root)
    observe(store, garden, state)


def finish_unfinished(store: EventStore, garden: Garden, by: str, state: State, today: dt.date | None = None,
                      settled: bool = False) -> Finished | None:
    """Settle what killed commands left half done, before a command writes anything.

    Called holding the garden's lock, with the garden read under it. When a run did not
    complete: runs a killed process left open are closed, its temporary files removed, writes
    whose confirmation was cut off recognised (the observation), and every block such a run
    changed whose file is still behind the log written now (as the run would have: stamped, or
    exactly as a revert left it). None when there was nothing to write. `settled`: the caller
    has just called `settle`."""
    killed = unfinished_runs(store)
    if not killed:
        return None
    if not settled:
        settle(store, garden, state)
    catch_up(store, state)
    todo: dict[bool, set[str]] = {True: set(), False: set()}  # stamp -> slugs behind their file
    runs: dict[str, str] = {}  # the killed runs with something to finish -> their command
    for run_id, options in killed.items():
        stamp = options.get("command") != "revert"
        for slug in {row[3] for row in store.rows(run_id=run_id, types=_BLOCK_CHANGES)}:
            if slug in garden.patterns and slug in state.patterns and _behind(state, garden, slug, stamp):
                todo[stamp].add(slug)
                runs[run_id] = options.get("command") or "tend"
    if not runs:
        return None
    with recorded_run(store, "curator", None, options={"command": "finish", "finishing": sorted(killed),
                                                         "by": by}) as run:
        finished = Finished(run.run_id, runs)
        for stamp, slugs in todo.items():
            if slugs:
                written, errors = write_changed_blocks(recorder(store, state), garden, state,
                                                       today or dt.date.today(), run.run_id, only=slugs,
                                                       stamp=stamp)
                finished.written += written
                finished.errors += errors
        run.counts.update({"files_written": len(finished.written), "errors": len(finished.errors)})
    return finished


def _behind(state: State, garden: Garden, slug: str, stamp: bool) -> bool:
    return needs_write(state.block(slug), garden.patterns[slug].block)


# --- diff and revert ------------------------------------------------------------------------


@dataclass
class RunChanges:
    run_id: str
    first_seq: int
    last_seq: int
    before: State
    after: State
    slugs: list[str]  # patterns whose block the run changed
    counts: dict[str, int]


_COUNTED = {"ProposalAccepted": "accepted", "ProposalRejected": "rejected", "LinkProposed": "proposed",
            "EntityProposed": "proposed", "LinkRescored": "rescored", "EntityRescored": "rescored",
            "PruneProposed": "prunes proposed", "BlockRestored": "restored",
            "BlockWritten": "files written"}


def resolve_run(store: EventStore, run_id: str | None) -> str:
    if run_id:
        return require_run(store, run_id)
    runs = list_runs(store)
    if not runs:
        raise GardenError("no runs in the log yet")
    return runs[0].run_id


def describe_run(store: EventStore, run_id: str) -> str:
    """A run in a few words: what it was, when it started and how it ended."""
    run = next((r for r in list_runs(store) if r.run_id == run_id), None)
    started = next(store.rows(run_id=run_id, types=("RunStarted",)), None)
    if run is None or started is None:
        return f"run {run_id}"
    options = row_to_event(started).payload.options or {}
    command = options.get("command")
    what = (f"garden {command}" + (f" by {options['by']}" if options.get("by") else "") if command
            else f"a tend ({run.proposer}" + (f"/{run.model})" if run.model else ")"))
    when = (run.started or "")[:16].replace("T", " ")
    return f"run {run_id}, {what}, started {when} UTC, {run.status}"


def last_tend(store: EventStore) -> str:
    """The newest tend (a nightly or `garden tend` run, not a curator's or `garden propose`)."""
    for row in store.rows(types=("RunStarted",), newest_first=True):
        if "command" not in (row_to_event(row).payload.options or {}):
            return row[4]
    raise GardenError("no tend in the log yet; run `garden tend` (or give a run: `garden runs` lists them)")


def run_changes(store: EventStore, run_id: str | None) -> RunChanges:
    """What a run did, rebuilt from the events alone: the state before and after it (two
    historical points of the log, each folded from the snapshot nearest before it)."""
    run_id = resolve_run(store, run_id)
    # A killed run's RunFailed is recorded later, by whoever finds it: it changes no block.
    seqs = [row[0] for row in store.rows(run_id=run_id) if row[2] != "RunFailed"]
    if not seqs:
        raise GardenError(f"no run {run_id} in the log; `garden runs` lists them")
    first, last = seqs[0], seqs[-1]
    # What the run found in the files (its observation) is where it started from.
    before, after = load_state(store, first - 1), load_state(store, last)
    for row in store.rows(run_id=run_id, types=("GardenObserved", "ExternalEditObserved")):
        apply(before, row)
    _confirm_cut_off_writes(store, run_id, after, last)
    counts: Counter = Counter()
    touched: set[str] = set()
    for row in store.rows(run_id=run_id):
        e = row_to_event(row)
        kind = e.type
        if kind.endswith("Pruned"):
            counts[f"pruned: {e.payload.rule}"] += 1
        elif kind in _COUNTED:
            counts[_COUNTED[kind]] += 1
        if e.slug:
            touched.add(e.slug)
    slugs = [s for s in sorted(touched)
             if _block(before, s) != _block(after, s)]
    return RunChanges(run_id, first, last, before, after, slugs, dict(sorted(counts.items())))


def _confirm_cut_off_writes(store: EventStore, run_id: str, after: State, last: int) -> None:
    """Writes the run made whose confirmation a crash cut off, confirmed by a later observation
    (the file had the new bytes): part of the run, stamp and all."""
    for slug in {row[3] for row in store.rows(run_id=run_id, types=("BlockWriteStarted",))}:
        intent = after.patterns[slug].write_intent
        if not intent:
            continue
        for row in store.rows(slug=slug, types=("BlockWritten",), after=last):
            if row_to_event(row).payload.content_hash == intent.content_hash:
                apply(after, row)
                break


def _block(state: State, slug: str) -> dict | None:
    block = state.block(slug)
    return None if block is None else block.model_dump(mode="json")


def run_diff(changes: RunChanges) -> dict[str, list[str]]:
    return {slug: block_diff(slug, _block(changes.before, slug), _block(changes.after, slug))
            for slug in changes.slugs}


@dataclass
class RevertPlan:
    run_id: str
    restores: dict[str, tuple[dict | None, list[str]]]  # slug -> (block, restored item keys)
    conflicts: dict[str, list[str]]
    withdrawn: list[tuple[str, str]]  # (slug, proposal id) still pending from the run
    reopened: list[tuple[str, str, dict, str | None]]  # (slug, id, proposal, declined mark) the run decided
    redecided: list[Event] = field(default_factory=list)  # decisions the run (a revert) had undone, again
    texts: dict[str, str | None] = field(default_factory=dict)  # slug -> exact block text before the run
    finishing: str | None = None  # the earlier revert whose writes this one makes (nothing else)
    # Blocks a decision made again must leave as they are now (re-accepting a link a later run
    # pruned does not bring it back): slug -> block.
    kept: dict[str, dict | None] = field(default_factory=dict)
    withdrawn_suspicions: list[tuple[str, str]] = field(default_factory=list)  # duplicate suspicions the run made


_PROPOSAL_KINDS = ("LinkProposed", "EntityProposed", "PruneProposed")  # what may wait for a curator


def plan_revert(store: EventStore, run_id: str, now: State) -> RevertPlan:
    """What undoing a run takes, against the log as it is now (`now`, kept current; observe the
    files first, so a person's edit since the run counts as a later change, not as something to
    overwrite)."""
    known = {r.run_id: r for r in list_runs(store)}
    run = known.get(run_id.upper())
    if run is not None and run.status == "reverted":
        raise GardenError(f"run {run.run_id} was already reverted by run {run.reverted_by}; "
                          f"revert {run.reverted_by} to restore it")
    if run is not None and run.status == "running":
        raise GardenError(f"run {run.run_id} has not finished; revert it once it has")
    changes = run_changes(store, run_id)
    catch_up(store, now)
    restores, conflicts = {}, {}
    for slug in changes.slugs:
        before, after, current = _block(changes.before, slug), _block(changes.after, slug), _block(now, slug)
        run_keys = changed_items(before, after)
        later = run_keys & changed_items(after, current)
        if later:
            conflicts[slug] = sorted(later)
        restores[slug] = (restore_items(current, before, after, run_keys), sorted(run_keys))
    texts = {slug: _text_before(changes.before, slug, block) for slug, (block, _) in restores.items()}
    proposed_in = sorted({row[3] for row in store.rows(run_id=changes.run_id, types=_PROPOSAL_KINDS)})
    withdrawn = [(slug, pid) for where in proposed_in
                 for slug, pending in pending_by_pattern(now, where, run=changes.run_id).items() for pid in pending]
    suspicions = [(entry["slug"], pid) for pid, entry in pending_duplicates(now).items()
                  if entry["run_id"] == changes.run_id]
    reopened = _decisions_to_reopen(store, changes, now, conflicts)
    redecided = _decisions_to_redo(store, changes, now, conflicts)
    kept = {d.slug: _block(now, d.slug) for d in redecided if d.slug not in restores}
    return RevertPlan(changes.run_id, restores, conflicts, withdrawn, reopened, redecided, texts, kept=kept,
                      withdrawn_suspicions=suspicions)


def _text_before(before: State, slug: str, block: dict | None) -> str | None:
    """The exact text the block had in the file when the run began, if `block` is that block
    (later observations, of a body edit say, keep only the newest text)."""
    seen = before.patterns.get(slug)
    if block is None or seen is None:
        return None
    return seen.exact_text(as_block(block))


def _decisions_to_reopen(store: EventStore, changes: RunChanges, now: State,
                         conflicts: dict[str, list[str]]) -> list[tuple[str, str, dict, str | None]]:
    """The run's decisions on proposals that were pending before it (a curator's accept or
    reject, a revert's withdrawal): undone, so each is pending again as it was."""
    found = []
    suspicions = pending_duplicates(changes.before)
    for row in store.rows(run_id=changes.run_id, types=("ProposalAccepted", "ProposalRejected")):
        decision = row_to_event(row)
        slug, pid = decision.slug, decision.payload.proposal_id
        suspicion = suspicions.get(pid)
        if suspicion is not None:  # a duplicate suspicion decided by the run: pending again
            again = (now.duplicates.get("|".join(suspicion["slugs"])) or {}).get("status") == "pending"
            if again:
                conflicts.setdefault(slug, []).append(f"duplicate suspicion {pid} (pending again, or suspected anew since)")
            else:
                found.append((slug, pid, suspicion, None))
            continue
        proposal = (changes.before.patterns[slug].pending.get(pid) if slug in changes.before.patterns else None)
        if proposal is None:
            continue  # proposed by the run itself: its revert withdraws it
        current = now.patterns[slug].pending if slug in now.patterns else {}
        key = proposal_key(proposal)
        newer = [other for other, p in current.items() if proposal_key(p) == key]
        if pid in current or newer:
            conflicts.setdefault(slug, []).append(f"proposal {pid} (pending again, or proposed anew since)")
            continue
        declined = changes.before.patterns[slug].declined.get(key)
        found.append((slug, pid, proposal, declined))
    return found


def _decisions_to_redo(store: EventStore, changes: RunChanges, now: State,
                       conflicts: dict[str, list[str]]) -> list[Event]:
    """The decisions a run (itself a revert) reopened, made again as they were: reverting the
    revert of a curator's accept accepts the proposal once more, and so on."""
    redo = []
    for row in store.rows(run_id=changes.run_id, types=("ProposalReopened",)):
        reopened = row_to_event(row)
        slug, pid = reopened.slug, reopened.payload.proposal_id
        if (slug not in now.patterns or pid not in now.patterns[slug].pending) and pid not in pending_duplicates(now):
            conflicts.setdefault(slug, []).append(f"proposal {pid} (decided again since)")
            continue
        earlier = [row_to_event(r) for r in store.rows(slug=slug, types=("ProposalAccepted", "ProposalRejected"),
                                                         until=changes.first_seq - 1)]
        original = next((d for d in reversed(earlier) if d.payload.proposal_id == pid), None)
        if original is not None:
            redo.append(original)
    return redo


def revert(store: EventStore, garden: Garden, run_id: str, by: str, note: str | None, force: bool,
           write: bool = True, today: dt.date | None = None, *,
           state: State) -> tuple[RevertPlan, CuratorResult]:
    """Observe the files, plan the revert of `run_id`, and carry it out (see `revert_run`).

    Called holding the garden's lock: a run without an end is one whose process was killed.
    `state`: the log's state, kept current here."""
    settle(store, garden, state)
    unfinished = _finish_revert(store, garden, state, run_id.upper(), by, write, today)
    if unfinished is not None:
        return unfinished
    finished = finish_unfinished(store, garden, by, state, today, settled=True)
    plan = plan_revert(store, run_id, state)
    result = revert_run(store, garden, state, plan, by, note, force, write, today)
    result.finished = finished
    return plan, result


def _finish_revert(store: EventStore, garden: Garden, state: State, run_id: str, by: str, write: bool,
                   today: dt.date | None) -> tuple[RevertPlan, CuratorResult] | None:
    """A run already reverted whose revert could not write every file (one was missing, say):
    those files written now, as the revert left them in the log. None when there are none."""
    run = next((r for r in list_runs(store) if r.run_id == run_id), None)
    if run is None or run.status != "reverted" or not write:
        return None
    catch_up(store, state)
    slugs = {row[3] for row in store.rows(run_id=run.reverted_by, types=("BlockRestored",))}
    behind = {slug for slug in slugs if slug in garden.patterns and slug in state.patterns
              and garden.patterns[slug].block != state.block(slug)}
    missing = {slug for slug in slugs if slug not in garden.patterns}
    if not behind and not missing:
        return None
    plan = RevertPlan(run_id, {}, {}, [], [], finishing=run.reverted_by)
    with recorded_run(store, "curator", None, options={"command": "revert", "run": run_id, "by": by,
                                                         "finishing": run.reverted_by}) as new:
        result = CuratorResult(new.run_id)
        result.written, result.errors = write_changed_blocks(
            recorder(store, state), garden, state, today or dt.date.today(), new.run_id, only=behind | missing,
            stamp=False)
        new.counts.update({"files_written": len(result.written), "errors": len(result.errors)})
    return plan, result


def revert_run(store: EventStore, garden: Garden, state: State, plan: RevertPlan, by: str, note: str | None,
               force: bool, write: bool = True, today: dt.date | None = None) -> CuratorResult:
    """Compensating events for the plan, then the files written back exactly as they were (their
    own last_pruned, their original text where the block is the one first seen)."""
    if plan.conflicts and not force:
        lines = [f"{slug}: {', '.join(keys)}" for slug, keys in plan.conflicts.items()]
        error = GardenError(f"later events changed what run {plan.run_id} changed; nothing was reverted "
                            "(--force restores the run's versions anyway):\n  " + "\n  ".join(lines))
        error.details = {"reverted_run": plan.run_id, "conflicts": plan.conflicts}
        raise error
    actor = f"curator:{by}"
    with recorded_run(store, "curator", None, options={"command": "revert", "run": plan.run_id,
                                                         "by": by, "note": note}) as run:
        observe(store, garden, state, run.run_id)
        record = recorder(store, state)
        # Decisions made again come first: the restored blocks that follow are the final word.
        events = [event(d.payload.model_copy(update={"note": note or d.payload.note}), slug=d.slug,
                        run_id=run.run_id, actor=actor if d.actor.startswith("curator:") else d.actor)
                  for d in plan.redecided]
        blocks = {**{slug: (block, []) for slug, block in plan.kept.items()}, **plan.restores}
        events += [event(BlockRestored(block=block, reverted_run=plan.run_id, restored=keys,
                                       block_text=plan.texts.get(slug)),
                         slug=slug, run_id=run.run_id, actor=actor)
                   for slug, (block, keys) in blocks.items()]
        events += [event(ProposalRejected(proposal_id=pid, reason=f"run {plan.run_id} reverted", note=note),
                         slug=slug, run_id=run.run_id, actor="system")
                   for slug, pid in plan.withdrawn + plan.withdrawn_suspicions]
        events += [event(ProposalReopened(proposal_id=pid, proposal=proposal, declined=declined,
                                          reverted_run=plan.run_id),
                         slug=slug, run_id=run.run_id, actor=actor)
                   for slug, pid, proposal, declined in plan.reopened]
        events.append(event(RunReverted(reverted_run=plan.run_id, note=note), run_id=run.run_id, actor=actor))
        record(events)
        result = CuratorResult(run.run_id, decided=[{"slug": s, "restored": keys}
                                                     for s, (_, keys) in plan.restores.items()])
        if write:
            result.written, result.errors = write_changed_blocks(
                record, garden, state, today or dt.date.today(), run.run_id,
                only=set(blocks), stamp=False)
        run.counts.update({"restored": len(plan.restores), "withdrawn": len(plan.withdrawn),
                           "reopened": len(plan.reopened), "redecided": len(plan.redecided),
                           "files_written": len(result.written), "errors": len(result.errors)})
    return result


def default_curator() -> str:
    """git's user.name, else the login name."""
    import getpass
    import subprocess

    try:
        name = subprocess.run(["git", "config", "user.name"], capture_output=True, text=True,
                              timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    return name or getpass.getuser()
