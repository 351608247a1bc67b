"""The log commands: observe, runs, history, replay, verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, open_app, out, print_json
from events.heads import parse_given_head
from garden.errors import display_path, escape_text
from garden.event import Event


@handle_errors
def observe(garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """Record the garden's current blocks in the log, and nothing else.

    A pattern seen for the first time is recorded as GardenObserved; a file changed since the
    log last saw it as ExternalEditObserved (the person's edit wins). Every tend starts with
    this step.
    """
    app = open_app(garden, db)
    summary = app.observe()
    if json_out:
        print_json(summary)
    else:
        out.print(f"observed {summary['patterns']} patterns: {summary['observed']} new, "
                  f"{summary['external_edits']} edited outside graph-garden, "
                  f"{summary['recorded']} events recorded in {display_path(app.settings.db)}")


@handle_errors
def runs(garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """The runs, newest first: id, start, end, status, proposer and counts.

    A tend's accepted and rejected count every decision it made (rejected includes the invalid
    answers); its pending is what waits for a curator in the whole garden after it. On a
    garden's first tend: proposed + invalid = accepted + rejected + pending."""
    found = open_app(garden, db).runs()
    if json_out:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        out.print("no runs yet")
        return
    table = Table()
    table.add_column("run", no_wrap=True, min_width=26)
    for column in ("started", "ended", "status", "proposer", "counts"):
        table.add_column(column)
    for r in found:
        counts = _short_counts(r.counts)
        table.add_row(r.run_id, _short(r.started)[5:16], _short(r.ended)[5:16], r.status,
                      r.proposer + (f"/{r.model}" if r.model else ""), counts)
    out.print(table)


SHOWN_COUNTS = ("tended", "asked", "proposed", "links", "entities", "accepted", "rejected", "pending",
                "restored", "withdrawn", "reopened", "redecided", "files_written", "failed", "errors")


def _short_counts(counts: dict) -> str:
    """A run's counts in a line. A tend's rejected include the invalid answers, and its pending
    is what waits in the whole garden after it: on a first tend, proposed + invalid = accepted
    + rejected + pending."""
    shown = []
    for key in SHOWN_COUNTS:
        if counts.get(key) or (key == "pending" and "pending" in counts):
            shown.append(f"{key.replace('_', ' ')} {counts[key]}"
                         + (f" ({counts['invalid']} invalid)" if key == "rejected" and counts.get("invalid") else ""))
    pruned = sum((counts.get("pruned") or {}).values()) if isinstance(counts.get("pruned"), dict) else 0
    if pruned:
        shown.append(f"pruned {pruned}")
    return ", ".join(shown)


def _short(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") if stamp else ""


@handle_errors
def history(
    slug: Annotated[str, typer.Argument(help="The pattern whose timeline to show.")],
    target: Annotated[Optional[str], typer.Option(help="Only the link to this pattern.")] = None,
    entity: Annotated[Optional[str], typer.Option(help="Only this entity id.")] = None,
    garden: GardenOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """The timeline of one pattern: what was proposed, by whom, decided, pruned, written.

    Answers "why is this link here?": `garden history SLUG --target OTHER`.
    """
    found = open_app(garden, db).history(slug, target, entity)
    if json_out:
        print_json([e.model_dump(mode="json") for e in found])
        return
    if not found:
        out.print(f"nothing in the log about {slug} and {target or entity}")
        return
    for e in found:
        out.print(f"#{e.seq:<6} {_short(e.recorded_at)}  {e.actor:<24} {escape_text(describe_event(e))}",
                  markup=False)


def describe_event(e: Event) -> str:
    """One event as a curator reads it."""
    p = e.payload
    match p.type:
        case "GardenObserved":
            block = p.block or {}
            return (f"first seen: {len(block.get('inferred_links') or [])} links, "
                    f"{len(block.get('entities') or [])} entities" if p.block else "first seen, no block")
        case "ExternalEditObserved":
            text = "edited outside graph-garden" + (" (block changed; the edit wins)" if p.block_changed else "")
            if p.kept:
                text += f"; kept on top of the edit, to be written: {', '.join(p.kept)}"
            if p.yielded:
                text += f"; the edit wins over: {', '.join(p.yielded)}"
            return text
        case "LinkProposed":
            return f"proposed link -> {p.target} ({p.link_type}, {p.confidence:.2f}): {p.reason}  [{e.id}]"
        case "EntityProposed":
            return f"proposed entity {p.entity_id} ({p.entity_type}, {p.relevance:.2f}) \"{p.label}\"  [{e.id}]"
        case "ProposalAccepted":
            return f"accepted {p.proposal_id} ({p.rule})" + (f": {p.note}" if p.note else "")
        case "ProposalRejected":
            what = p.proposal_id or json.dumps(p.item, ensure_ascii=False)[:80]
            return f"rejected {what}: {p.reason}" + (f" ({p.note})" if p.note else "")
        case "LinkRescored":
            return f"rescored -> {p.target} ({p.link_type}): {p.old_confidence} -> {p.new_confidence}"
        case "EntityRescored":
            return f"rescored entity {p.entity_id}: {p.old_relevance} -> {p.new_relevance}" + (f" ({p.reason})" if p.reason else "")
        case "DuplicateSuspected":
            return (f"suspected duplicate: {e.slug} ~ {p.other} ({p.confidence:.2f}, a merge candidate): "
                    f"{p.reason}  [{e.id}]")
        case "PruneProposed":
            what = f"link -> {p.target} ({p.link_type})" if p.item == "link" else f"entity {p.entity_id}"
            return f"proposed prune of {what} by {p.rule} {json.dumps(p.values)}: for a curator  [{e.id}]"
        case "LinkPruned":
            return f"pruned link -> {p.target} ({p.link_type}) by {p.rule} {json.dumps(p.values)}"
        case "EntityPruned":
            return f"pruned entity {p.entity_id} by {p.rule} {json.dumps(p.values)}"
        case "CommunityPruned":
            return f"pruned community {p.community_id} by {p.rule} {json.dumps(p.values)}"
        case "BlockWriteStarted":
            return "writing the block"
        case "BlockWritten":
            return "block written" + (f" (last_pruned {p.last_pruned})" if p.last_pruned else "")
        case "BlockRestored":
            return f"block restored (revert of run {p.reverted_run}): {', '.join(p.restored)}"
        case "ProposalReopened":
            return f"decision on {p.proposal_id} undone (revert of run {p.reverted_run}); pending again"
        case "RejectionLifted":
            return f"rejection lifted: {p.entity_id or f'{p.target} ({p.link_type})'}"
        case "ProposerCalled":
            if p.outcome == "ok":
                return (f"asked {p.proposer}: {p.proposed} proposed, {p.rejected} invalid"
                        + (" (cached)" if p.cache_hit else ""))
            return f"asked {p.proposer}: failed: {p.error}"
        case "ProposalDeferred":
            return f"deferred: {p.reason}"
    return p.type


@handle_errors
def replay(
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Write the replayed garden here (a new or empty folder).", file_okay=False)] = None,
    until: Annotated[Optional[str], typer.Option(help="Stop at this point: a sequence number, a run id, or an ISO time.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Compare the projection with the files in place; write nothing.")] = False,
    garden: GardenOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Rebuild the garden from the log: as it is now, or as it was at --until.

    Each file keeps its body and the rest of its frontmatter as they are now; only the
    graph_garden block comes from the log. With --check, list every difference between the
    projection and the files in place (exit 1 if any).
    """
    replayed = open_app(garden, db).replay(out_dir, until, check)
    if check:
        differences = replayed.differences
        if json_out:
            print_json({"seq": replayed.seq, "differences": [d.to_dict() for d in differences]})
        else:
            for d in differences:
                out.print(str(d), markup=False)
            out.print(f"{len(differences)} difference(s) between the files and the log at #{replayed.seq}")
        if differences:
            raise typer.Exit(1)
        return
    if json_out:
        print_json({"seq": replayed.seq, "out": str(out_dir), "patterns": replayed.written})
    else:
        out.print(f"replayed {replayed.written} patterns as of event #{replayed.seq} into {display_path(out_dir)}")


HeadOption = Annotated[
    Optional[list[str]],
    typer.Option("--head", help="A head kept elsewhere, SEQ:HASH (at least 12 hex digits of the hash), "
                 "that must still be in the log. Repeat for more.", show_default=False),
]


@handle_errors
def verify(garden: GardenOption = None, db: DbOption = None, head: HeadOption = None,
           json_out: JsonOption = False) -> None:
    """Check the log: its hash chain, every payload's schema, SQLite's integrity, that every
    published head (the head file, and --head) is still in it, the MACs when GARDEN_LOG_KEY is
    set, and that the files equal the projection. Exit 1 on any problem, naming the first broken
    event."""
    given = [parse_given_head(text) for text in head or []]
    report = open_app(garden, db).verify(given)
    if json_out:
        print_json(report.to_dict())
    else:
        for line in report.integrity:
            out.print(f"database: {line}", markup=False)
        if report.chain:
            out.print(f"hash chain broken at {report.chain}", markup=False)
        for line in report.heads:
            out.print(line, markup=False)
        if report.macs and report.macs.problem:
            out.print(report.macs.problem, markup=False)
        for line in report.schema:
            out.print(line, markup=False)
        for d in report.differences:
            out.print(f"{d} (projection differs)", markup=False)
        for line in report.warnings:
            err.print(f"warning: {line}", markup=False)
        verdict = "ok" if report.ok else "FAILED"
        out.print(f"verify {verdict}: {report.events} events, chain "
                  f"{'broken' if report.chain else 'intact'}, {_heads_phrase(report)}, "
                  f"{_macs_phrase(report)}, {len(report.differences)} file difference(s)", markup=False)
    if not report.ok:
        raise typer.Exit(1)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _heads_phrase(report) -> str:
    if report.heads:
        return _plural(len(report.heads), "head problem")
    n, given = report.heads_checked, report.heads_given
    if not n:
        return "no published head" + (", --head matches" if given else "")
    if given:
        return f"{_plural(n, 'published head')} and --head match"
    return f"{_plural(n, 'published head')} match" + ("es" if n == 1 else "")


def _macs_phrase(report) -> str:
    macs = report.macs
    if macs is None:
        return "MACs not checked (GARDEN_LOG_KEY is not set)"
    if macs.problem:
        return "MACs wrong"
    older = f" ({macs.unmaced_before} older without)" if macs.unmaced_before else ""
    return f"MACs checked on {_plural(macs.checked, 'event')}{older}"
