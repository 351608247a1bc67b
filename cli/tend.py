"""`garden tend`: the main job, one run of the Prefect flow, here and now."""

from __future__ import annotations

import datetime as dt
import enum
import sys
from typing import Annotated, Optional

import typer
from rich.table import Table

from cli.common import DbOption, GardenOption, JsonOption, err, handle_errors, open_app, out, print_json
from cli.propose import PatternOption, ProposerOption
from garden.errors import GardenError


class TaskRunner(str, enum.Enum):
    default = "default"
    dask = "dask"


@handle_errors
def tend(
    proposer: ProposerOption = None,
    limit: Annotated[Optional[int], typer.Option(help="Tend at most N patterns this run (the rest wait their turn).", min=1)] = None,
    pattern: PatternOption = None,
    today: Annotated[Optional[str], typer.Option(help="The run's date for last_pruned (YYYY-MM-DD). Default: today.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Propose and decide, report, and record or write nothing.")] = False,
    task_runner: Annotated[TaskRunner, typer.Option(help="Where proposal batches are asked: here (default) or on a Dask cluster (dask; pip install 'graph-garden[dask]').")] = TaskRunner.default,
    dask_address: Annotated[Optional[str], typer.Option(help="With --task-runner dask: the Dask scheduler, tcp://HOST:PORT. Default: a local cluster.")] = None,
    dask_workers: Annotated[int, typer.Option(help="With --task-runner dask and no --dask-address: worker processes of the local cluster.", min=1)] = 2,
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
    result = open_app(garden, db, proposer).tend(limit=limit, patterns=pattern, today=today, dry_run=dry_run,
                                                  progress=sys.stderr.isatty() and not json_out,
                                                  task_runner=task_runner.value, dask_address=dask_address,
                                                  dask_workers=dask_workers)
    if json_out:
        print_json(result)
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

