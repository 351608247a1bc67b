"""`garden propose`: run a proposer over the garden and record every proposal as events."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, open_app, out, print_json

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
    result = open_app(garden, db, proposer).propose(pattern)
    proposals, tally, run_id = result.proposals, result.tally, result.run_id
    if json_out:
        print_json(result.to_dict())
        return
    table = Table(title=f"proposals (run {run_id})", title_justify="left")
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
