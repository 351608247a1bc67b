"""`garden health` and `garden report`: the garden's shape, and a run as one HTML page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from rich.text import Text

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, out
from cli.log import open_garden
from events.projection import load_state
from events.store import EventStore
from flows import curate
from flows.report import html_report
from garden.errors import display_path, escape_text
from garden.health import garden_health
from garden.settings import load_settings


@handle_errors
def health(garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """The garden's health: links and entities per pattern, confidences, link types, targets
    missing from the garden, links repeating curated ones, near-duplicate entities, patterns
    never tended, and how link targets spread over the library (flagging concentration)."""
    settings = load_settings(garden=garden, db=db)
    found = open_garden(settings)
    blocks: dict = {}
    tended: dict = {}
    reassessed: dict = {}
    if settings.db.exists():
        with EventStore(settings.db, create=False) as store:
            state = load_state(store)
            for slug in found.patterns:
                known = state.patterns.get(slug) or {}
                blocks[slug], tended[slug] = known.get("block"), known.get("tended")
                reassessed[slug] = known.get("reassessed")
    else:  # no log yet: the files are all there is
        blocks = {s: p.block.model_dump(mode="json") if p.block else None for s, p in found.patterns.items()}
    report = garden_health(found, blocks, tended, reassessed)
    if json_out:
        out.print_json(json.dumps(report))
        return
    table = Table(title=f"garden health: {display_path(settings.garden)}", title_justify="left")
    table.add_column("")
    table.add_column("value")
    for key in ("patterns", "with_block", "links"):
        table.add_row(key.replace("_", " "), str(report[key]))
    for key in ("links_per_pattern", "entities_per_pattern"):
        table.add_row(key.replace("_", " "), ", ".join(f"{k} {v}" for k, v in report[key].items()))
    table.add_row("confidence histogram", ", ".join(f"{k}: {v}" for k, v in report["confidence_histogram"].items()))
    table.add_row("link types", Text(escape_text(", ".join(f"{k} {v}" for k, v in report["link_types"].items()))))
    for key in ("missing_targets", "curated_repeats", "near_duplicate_entities", "never_tended"):
        table.add_row(key.replace("_", " "), str(report[key]["count"]))
    left = report["inherited_unreassessed"]
    table.add_row("inherited, not yet re-assessed", f"{left['count']} ({left['links']} links, {left['entities']} entities)")
    out.print(table)
    letters = report["targets_by_first_letter"]
    spread = Table(title="link targets by first letter of the slug (share of all machine links / of the "
                         f"library; total variation {letters['total_variation']:.2f})", title_justify="left")
    for letter in sorted(letters["library"]):
        spread.add_column(letter, justify="right")
    spread.add_row(*[f"{letters['links'].get(k, 0):.0%}" for k in sorted(letters["library"])])
    spread.add_row(*[f"{letters['library'][k]:.0%}" for k in sorted(letters["library"])])
    out.print(spread)
    for flag in report["flags"]:
        err.print(f"[yellow]warning:[/yellow] {flag}", markup=True)
    for key in ("missing_targets", "curated_repeats", "near_duplicate_entities"):
        for example in report[key]["examples"][:5]:
            out.print(f"  {key.replace('_', ' ')}: {escape_text(example)}", markup=False)


@handle_errors
def report(
    run: Annotated[Optional[str], typer.Argument(help="The run. [default: the last tend, not a curator's run]", show_default=False)] = None,
    html_file: Annotated[Path, typer.Option("--html", help="Write the page here.", dir_okay=False)] = Path("garden-report.html"),
    garden: GardenOption = None,
    db: DbOption = None,
) -> None:
    """One self-contained HTML page (no network fetches) with a run's summary, the diff of every
    block it changed, and the pending proposals: for curators who would rather look. Without
    RUN, the last tend (the night's run, not the morning's accepts)."""
    settings = load_settings(garden=garden, db=db)
    with EventStore(settings.db, create=False) as store:
        chosen = curate.resolve_run(store, run) if run else curate.last_tend(store)
        changes = curate.run_changes(store, chosen)
        diffs = curate.run_diff(changes)
        state = load_state(store)
        pending = curate.pending_by_pattern(state)
        pending_diffs = {slug: curate.review_diff(state, slug, ps) for slug, ps in pending.items()}
        about = curate.describe_run(store, changes.run_id)
    which = about if run else f"the last tend: {about} (`garden report RUN` shows another run)"
    page = html_report(changes.run_id, changes.counts, diffs, pending, pending_diffs, which=which)
    html_file.write_text(page, "utf-8")
    out.print(f"wrote {display_path(html_file)}: run {changes.run_id} ({'given' if run else 'the last tend'}), "
              f"{len(diffs)} blocks changed, {sum(len(p) for p in pending.values())} pending proposals",
              markup=False)
