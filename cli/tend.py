"""`garden tend`: the main job, one run of the Prefect flow, here and now."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, out
from cli.propose import PatternOption, ProposerOption
from events.parse_cache import open_parse_cache
from flows.lock import LockedError
from flows.propose import make_proposer
from garden.errors import GardenError, display_path
from garden.settings import load_settings

# Prefect's temporary local server, quietly: no telemetry (there is no network), and only
# warnings from Prefect's own loggers on the terminal. A user's own settings win.
PREFECT_QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LOG_PRINTS": "false",
}


@handle_errors
def tend(
    proposer: ProposerOption = None,
    limit: Annotated[Optional[int], typer.Option(help="Tend at most N patterns this run (the rest wait their turn).", min=1)] = None,
    pattern: PatternOption = None,
    today: Annotated[Optional[str], typer.Option(help="The run's date for last_pruned (YYYY-MM-DD). Default: today.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Propose and decide, report, and record or write nothing.")] = False,
    garden: GardenOption = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Tend the garden once: observe the files, propose new links and entities, accept or
    reject by the policy, prune, and write the changed blocks back.

    Runs the same Prefect flow as the nightly deployment (prefect.yaml). Without a Prefect
    server configured (PREFECT_API_URL) it starts a temporary local one that ends with it; no
    key is needed with the default offline proposer. Exit status: 0 done, 1 error, 2 another
    tend holds the lock.
    """
    if today is not None:
        try:
            dt.date.fromisoformat(today)
        except ValueError:
            raise GardenError(f"--today {today!r}: give a date like 2026-11-22") from None
    settings = load_settings(garden=garden, db=db, proposer=proposer)
    # Mistakes in the arguments are said at once, before Prefect starts.
    if not settings.garden.is_dir():
        raise GardenError(f"{display_path(settings.garden)}: no such folder; pass --garden DIR")
    if pattern:
        _check_patterns(settings, pattern)
    make_proposer(settings)  # a missing key or model
    os.environ["GARDEN_CLI"] = "1"
    for key, value in PREFECT_QUIET.items():
        os.environ.setdefault(key, value)
    if sys.stderr.isatty() and not json_out:
        os.environ["GARDEN_PROGRESS"] = "1"  # a line per step: a big garden takes minutes
    from flows.server import prefect_server

    with prefect_server():  # the configured server, checked; or a temporary one, ours alone
        from flows.tend import tend_flow

        state = tend_flow(garden=str(settings.garden), db=str(settings.db), proposer=settings.proposer,
                          limit=limit, patterns=pattern, today=today, dry_run=dry_run, return_state=True)
        if state.is_failed():
            message = state.message or "the tend failed"
            if message.startswith(LockedError.prefix):
                raise LockedError(message)
            raise GardenError(message)
        result = state.result()
    if json_out:
        out.print_json(json.dumps(result))
        return
    from flows.report import summary_rows

    title = f"garden tend {'(dry run) ' if result['dry_run'] else ''}{result['run_id']}"
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("count", justify="right")
    for label, value in summary_rows(result):
        table.add_row(label, value)
    out.print(table)
    for line in result.get("error_lines") or []:
        err.print(f"[yellow]error:[/yellow] {line}", markup=True, highlight=False)
    for line in result.get("note_lines") or []:
        err.print(f"note: {line}", markup=False, highlight=False)


def _check_patterns(settings, slugs: list[str]) -> None:
    """Every --pattern names a pattern of the garden (the tend's own load then hits the parse
    cache)."""
    from garden.catalog import load_garden

    load_garden(settings.garden, keep_bodies=False, cache=open_parse_cache(settings)).require(slugs)
