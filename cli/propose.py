"""`garden propose`: run a proposer over the garden and record every proposal as events."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, out
from cli.log import locked_garden
from events.projection import load_state
from events.queries import record_observation
from flows.propose import budget_of, build_requests, make_proposer, propose_requests
from flows.run import recorded_run
from garden.candidates import rank_patterns
from garden.settings import load_settings

ProposerOption = Annotated[
    Optional[str],
    typer.Option("--proposer", help="offline (default: no key, no network) or llm (OpenAI-compatible; "
                 "needs OPENAI_API_KEY and GARDEN_MODEL, optional OPENAI_BASE_URL).", show_default=False),
]
PatternOption = Annotated[
    Optional[list[str]],
    typer.Option("--pattern", help="Only this pattern (repeat for more). Default: every pattern."),
]


@handle_errors
def propose(proposer: ProposerOption = None, pattern: PatternOption = None,
            garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """Ask a proposer for new inferred links and entities, and record every proposal.

    Each proposal (valid or not) becomes an event; nothing is accepted, pruned or written to
    the files (the nightly `garden tend` does that). The garden is observed first.
    """
    settings = load_settings(garden=garden, db=db, proposer=proposer)
    proposals: list[dict] = []

    def collect(events) -> None:
        for e in events:
            if e.type in ("LinkProposed", "EntityProposed", "LinkRescored", "ProposalRejected"):
                proposals.append({"seq_id": e.id, "slug": e.slug, **e.payload.model_dump(mode="json")})

    with locked_garden(settings, create=True) as (store, found):
        chosen = make_proposer(settings, store)
        options = {"command": "propose", "patterns": pattern or "all"}
        with recorded_run(store, chosen.name, chosen.model, options=options) as run:
            record_observation(store, found, run.run_id)
            state = load_state(store)
            ranking = rank_patterns(found.patterns.values(), k=settings.candidates)
            requests = build_requests(found, state, ranking, pattern or sorted(found.patterns),
                                      settings.candidates)
            tally = propose_requests(store.append, requests, chosen, found.patterns.keys(),
                                     budget_of(settings), run.run_id, collect, fits=state.fits,
                                     state=state, ranking=ranking)
            run.counts.update(tally.counts())
    if json_out:
        out.print_json(json.dumps({"run_id": run.run_id, "proposer": chosen.name, "model": chosen.model,
                                   "counts": tally.counts(), "errors": tally.errors,
                                   "proposals": proposals}))
        return
    table = Table(title=f"proposals (run {run.run_id})", title_justify="left")
    for column in ("pattern", "proposal", "score", "reason"):
        table.add_column(column, overflow="fold")
    for p in proposals:
        if p["type"] == "LinkProposed":
            table.add_row(p["slug"], f"-> {p['target']} ({p['link_type']})", f"{p['confidence']:.2f}", p["reason"])
        elif p["type"] == "EntityProposed":
            table.add_row(p["slug"], f"entity {p['entity_id']} ({p['entity_type']})", f"{p['relevance']:.2f}", p["label"])
        elif p["type"] == "LinkRescored":
            table.add_row(p["slug"], f"rescore -> {p['target']} ({p['link_type']})",
                          f"{p['old_confidence']} -> {p['new_confidence']}", p.get("reason") or "")
        else:
            table.add_row(p["slug"], "[red]rejected[/red]", "", p["reason"])
    out.print(table)
    for line in tally.errors:
        err.print(f"[yellow]failed:[/yellow] {line} (asked again next run)", markup=True)
    c = tally.counts()
    out.print(f"{c['asked']} patterns asked: {c['links']} links and {c['entities']} entities proposed, "
              f"{c['rescored']} re-assessed, {c['invalid']} invalid, {c['failed']} failed, "
              f"{c['deferred']} deferred; {c['requests']} requests ({c['cache_hits']} cached), "
              f"{c['prompt_tokens'] + c['completion_tokens']} tokens")
