"""Curator and maintainer commands: review, accept, reject, lift, diff, revert."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, out
from cli.log import open_garden
from events.projection import load_state
from events.store import EventStore
from flows import curate
from flows.lock import garden_lock
from garden.errors import GardenError
from garden.settings import load_settings

ByOption = Annotated[Optional[str], typer.Option("--by", help="Who decides. [default: git's user.name, else the login name]", show_default=False)]
NoteOption = Annotated[Optional[str], typer.Option("--note", help="Why (kept in the log).")]
NoWriteOption = Annotated[bool, typer.Option("--no-write", help="Record the decision; write the files at the next tend.")]
PatternOpt = Annotated[Optional[str], typer.Option("--pattern", help="Only this pattern.")]
RunOpt = Annotated[Optional[str], typer.Option("--run", help="Only proposals made by this run.")]


def print_diff(lines: list[str]) -> None:
    for line in lines:
        style = ("green" if line.startswith("+") and not line.startswith("+++") else
                 "red" if line.startswith("-") and not line.startswith("---") else
                 "cyan" if line.startswith("@@") else None)
        out.print(line, style=style, markup=False, highlight=False)


def describe(pid: str, p: dict) -> str:
    who = p.get("proposer", "?") + (f"/{p['model']}" if p.get("model") else "")
    if p["kind"] == "prune":  # accept: prune it; reject: keep it
        owner = "accepted by a curator" if p["owner"] == "curator" else "written by hand"
        return (f"{pid}  prune {curate.prune_target(p)}  re-assessed {curate.proposal_score(p):.2f}  "
                f"({owner})\n    {p['rule']} {json.dumps(p['values'])}: accept prunes it, reject keeps it")
    if p["kind"] == "link":
        return (f"{pid}  link -> {p['target']} ({p['link_type']})  confidence {p['confidence']:.2f}  "
                f"by {who}\n    {p['reason']}")
    return (f"{pid}  entity {p['entity_id']} ({p['entity_type']}) \"{p['label']}\"  relevance "
            f"{p['relevance']:.2f}  by {who}")


@handle_errors
def review(
    pattern: PatternOpt = None, run: RunOpt = None,
    min_confidence: Annotated[Optional[float], typer.Option("--min-confidence", help="Only proposals at or above this score.")] = None,
    interactive: Annotated[Optional[bool], typer.Option("--interactive/--list", help="Step through the proposals (default on a terminal) or only list them.", show_default=False)] = None,
    by: ByOption = None, garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False,
) -> None:
    """The pending proposals, by pattern, with the diff of the block as accepting them would
    leave it. On a terminal, step through them: [a]ccept, [r]eject with a note, [s]kip, [q]uit."""
    settings = load_settings(garden=garden, db=db)
    with EventStore(settings.db, create=False) as store:
        state = load_state(store)
        found = curate.pending_by_pattern(state, pattern, run and run.upper(), min_confidence)
        if json_out:
            out.print_json(json.dumps([{"slug": slug, "proposals": [{"id": pid, **p} for pid, p in ps.items()],
                                        "diff": "\n".join(curate.review_diff(state, slug, ps))}
                                       for slug, ps in found.items()]))
            return
        if not found:
            out.print("nothing pending")
            return
        if interactive is None:
            interactive = sys.stdin.isatty() and sys.stdout.isatty()
        decisions: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
        notes: dict[str, str] = {}
        for slug, proposals in found.items():
            out.print(f"\n[bold]{slug}[/bold]: {len(proposals)} pending", markup=True)
            print_diff(curate.review_diff(state, slug, proposals))
            for pid, p in proposals.items():
                out.print(describe(pid, p), markup=False, highlight=False)
                if not interactive:
                    continue
                answer = typer.prompt("  [a]ccept, [r]eject, [s]kip, [q]uit", default="s").strip().lower()[:1]
                if answer == "q":
                    break
                if answer in ("a", "r"):
                    decisions[answer == "a"].append((slug, pid))
                    if answer == "r":
                        notes[pid] = typer.prompt("  note (why)", default="", show_default=False)
            else:
                continue
            break
    if not interactive or not (decisions[True] or decisions[False]):
        if interactive:
            out.print("no decisions")
        else:
            err.print(f"{sum(len(p) for p in found.values())} pending in {len(found)} patterns; "
                      "decide with `garden accept ID ...` / `garden reject ID ... --note TEXT`")
        return
    found_garden = open_garden(settings)
    who = by or curate.default_curator()
    with garden_lock(settings.db), EventStore(settings.db) as store:
        for accept, chosen in decisions.items():
            if not chosen:
                continue
            if accept:
                result = curate.decide_proposals(store, found_garden, chosen, True, who, None)
                out.print(f"accepted {len(chosen)}; {len(result.written)} files written")
            else:
                for slug, pid in chosen:  # each rejection keeps its own note
                    curate.decide_proposals(store, found_garden, [(slug, pid)], False, who, notes.get(pid) or None)
                out.print(f"rejected {len(chosen)}")


def _decide(accept: bool, ids, pattern, run, by, note, no_write, garden, db, json_out) -> None:
    settings = load_settings(garden=garden, db=db)
    found = open_garden(settings)
    with garden_lock(settings.db), EventStore(settings.db, create=False) as store:
        state = load_state(store)
        chosen = curate.select_proposals(store, state, [i.upper() for i in ids or []], pattern,
                                         run and run.upper())
        result = curate.decide_proposals(store, found, chosen, accept, by or curate.default_curator(),
                                         note, write=not no_write)
    if json_out:
        out.print_json(json.dumps(result.to_dict()))
    else:
        verb = "accepted" if accept else "rejected"
        for d in result.decided:
            out.print(f"{verb} {d['id']} ({d['slug']}: {d['what']}, {d['score']:.2f})", markup=False)
        if accept:
            out.print(f"{len(result.written)} files written" + (" (--no-write: at the next tend)" if no_write else ""))
        for line in result.errors:
            err.print(f"error: {line}", markup=False)
    if result.errors:
        raise typer.Exit(1)


IdsArg = Annotated[Optional[list[str]], typer.Argument(help="Proposal ids (from `garden review`).", show_default=False)]


@handle_errors
def accept(ids: IdsArg = None, pattern: PatternOpt = None, run: RunOpt = None, by: ByOption = None,
           note: NoteOption = None, no_write: NoWriteOption = False, garden: GardenOption = None,
           db: DbOption = None, json_out: JsonOption = False) -> None:
    """Accept proposals (by id, or all pending of a pattern or run) and write the changed blocks.

    An id already decided, superseded or unknown is reported and nothing changes."""
    _decide(True, ids, pattern, run, by, note, no_write, garden, db, json_out)


@handle_errors
def reject(ids: IdsArg = None, pattern: PatternOpt = None, run: RunOpt = None, by: ByOption = None,
           note: NoteOption = None, garden: GardenOption = None, db: DbOption = None,
           json_out: JsonOption = False) -> None:
    """Reject proposals. A rejected link or entity is not proposed again for the pattern until
    its text changes or `garden lift` lets it."""
    _decide(False, ids, pattern, run, by, note, True, garden, db, json_out)


@handle_errors
def lift(
    slug: Annotated[str, typer.Argument(help="The pattern.")],
    target: Annotated[Optional[str], typer.Option(help="The rejected link's target.")] = None,
    link_type: Annotated[Optional[str], typer.Option("--type", help="The rejected link's type.")] = None,
    entity: Annotated[Optional[str], typer.Option(help="The rejected entity id.")] = None,
    by: ByOption = None, note: NoteOption = None, db: DbOption = None,
) -> None:
    """Let a rejected link (--target and --type) or entity (--entity) be proposed again."""
    if bool(entity) == bool(target and link_type):
        raise GardenError("give --target and --type for a link, or --entity for an entity")
    settings = load_settings(db=db)
    with garden_lock(settings.db), EventStore(settings.db, create=False) as store:
        run_id = curate.lift_rejection(store, load_state(store), slug, target, link_type, entity,
                                       by or curate.default_curator(), note)
    out.print(f"lifted (run {run_id}): it may be proposed again")


@handle_errors
def diff(
    run: Annotated[Optional[str], typer.Argument(help="The run (default: the last one).", show_default=False)] = None,
    db: DbOption = None, json_out: JsonOption = False,
) -> None:
    """The unified diff of every block a run changed, rebuilt from the log, and per-rule counts."""
    settings = load_settings(db=db)
    with EventStore(settings.db, create=False) as store:
        changes = curate.run_changes(store, run)
        diffs = curate.run_diff(changes)
    if json_out:
        out.print_json(json.dumps({"run_id": changes.run_id, "counts": changes.counts,
                                   "patterns": {slug: "\n".join(lines) for slug, lines in diffs.items()}}))
        return
    for lines in diffs.values():
        print_diff(lines)
    summary = ", ".join(f"{k} {v}" for k, v in changes.counts.items()) or "no changes"
    err.print(f"run {changes.run_id}: {len(diffs)} blocks changed; {summary}")


@handle_errors
def revert(
    run: Annotated[str, typer.Argument(help="The run to undo (`garden runs` lists them).")],
    by: ByOption = None, note: NoteOption = None,
    force: Annotated[bool, typer.Option("--force", help="Restore even items later runs changed again.")] = False,
    no_write: NoWriteOption = False, garden: GardenOption = None, db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Undo a run: compensating events put back every block item it changed (its additions
    removed, its prunes restored), then the files are written. Reverting a revert restores the
    run. If later events changed the same items, lists the conflicts and stops, unless --force."""
    settings = load_settings(garden=garden, db=db)
    found = open_garden(settings)
    with garden_lock(settings.db), EventStore(settings.db, create=False) as store:
        plan, result = curate.revert(store, found, run.upper(), by or curate.default_curator(), note,
                                     force, write=not no_write)
    if json_out:
        out.print_json(json.dumps({**result.to_dict(), "reverted_run": plan.run_id, "finishing": plan.finishing,
                                   "conflicts": plan.conflicts,
                                   "withdrawn": [pid for _, pid in plan.withdrawn],
                                   "reopened": [pid for _, pid, _, _ in plan.reopened],
                                   "redecided": [d.payload.proposal_id for d in plan.redecided]}))
    elif plan.finishing:
        out.print(f"{plan.run_id} was reverted by {plan.finishing}; {len(result.written)} of its files "
                  f"were not yet as that revert left them (a failed or --no-write write) and are "
                  f"written now (as run {result.run_id})")
        for line in result.errors:
            err.print(f"error: {line}", markup=False)
    else:
        out.print(f"reverted {plan.run_id} (as run {result.run_id}): {len(plan.restores)} blocks restored, "
                  f"{len(plan.withdrawn)} pending proposals withdrawn, {len(plan.reopened)} decisions "
                  f"undone (pending again), {len(plan.redecided)} decisions made again, "
                  f"{len(result.written)} files written")
        for line in result.errors:
            err.print(f"error: {line}", markup=False)
    if result.errors and not no_write:
        err.print(f"the log holds the revert; put the files back (unedited) and run `garden revert "
                  f"{plan.run_id}` again to write them", markup=False)
    if result.errors:
        raise typer.Exit(1)
