"""`garden check`: validate every file of the garden and report each problem."""

from __future__ import annotations


import typer
from rich.markup import escape
from rich.table import Table

from cli.common import DbOption, GardenOption, JsonOption, handle_errors, open_app, out, print_json
from garden.errors import display_path, escape_text

LABELS = {
    "files": "files read",
    "patterns": "patterns",
    "v7_1": "  v7.1 format",
    "legacy": "  older format",
    "with_block": "  with a graph_garden block",
    "skipped": "not patterns (skipped)",
    "files_with_errors": "files with errors",
    "errors": "errors",
    "warnings": "warnings",
}


@handle_errors
def check(garden: GardenOption = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """Validate every pattern file in the garden.

    Prints each problem as path:line:col: level: message, then a summary. Exit status 1 if any
    file has an error; warnings alone (legacy variants that are read and normalised) exit 0.
    Nothing is written (but the parse cache beside the log, see --db).
    """
    app = open_app(garden, db)
    result = app.check()
    settings = app.settings
    summary = result.summary()
    if json_out:
        payload = {
            "garden": display_path(settings.garden),
            "ok": not result.errors,
            "summary": summary,
            "problems": [p.to_dict() for p in result.problems],
        }
        print_json(payload)
    else:
        for problem in result.problems:
            # What a file says is escaped twice: control characters (a newline would forge a
            # line) and rich's markup (a "[link=...]" in a slug would become one).
            colour = "red" if problem.level == "error" else "yellow"
            out.print(
                f"{escape(escape_text(problem.path))}:{problem.line}:{problem.col}: "
                f"[{colour}]{problem.level}[/{colour}]: {escape(escape_text(problem.message))}",
                markup=True,
                highlight=False,
            ) if out.is_terminal else typer.echo(str(problem))
        table = Table(title=f"garden check: {display_path(settings.garden)}", title_justify="left")
        table.add_column("")
        table.add_column("count", justify="right")
        for key, label in LABELS.items():
            table.add_row(label, str(summary[key]))
        out.print(table)
    if result.errors:
        raise typer.Exit(1)
