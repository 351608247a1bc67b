"""The `garden` command: thin subcommands over the library.

Each command parses its options, makes one call of the application (`flows.app.GardenApp`), and
prints the result. The project's own errors (`GardenError`) become one line on stderr and their
`exit_code` (1, or 2 when the lock is held; 2 for usage too); anything else is a bug and says so
(status 70), with the traceback when GARDEN_DEBUG=1.
"""

from __future__ import annotations

import sys

import typer

from cli import check, curate, health, log, propose, serve, tend
from garden.errors import GardenError

app = typer.Typer(
    name="garden",
    help=(
        "Tend the machine-written graph (graph_garden blocks) of a Markdown pattern library.\n\n"
        "Defaults: the garden is ./patterns, the event log ./.garden/events.db; "
        "--garden/--db or GARDEN_GARDEN/GARDEN_DB change them."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)



@app.callback()
def main() -> None:
    """Tend the machine-written graph (graph_garden blocks) of a Markdown pattern library."""


# The main job first, then what curators and maintainers use, then the log's own tools.
app.command("tend")(tend.tend)
app.command("check")(check.check)
app.command("propose")(propose.propose)
app.command("review")(curate.review)
app.command("accept")(curate.accept)
app.command("reject")(curate.reject)
app.command("lift")(curate.lift)
app.command("diff")(curate.diff)
app.command("revert")(curate.revert)
app.command("serve")(serve.serve)
app.command("runs")(log.runs)
app.command("history")(log.history)
app.command("health")(health.health)
app.command("report")(health.report)
app.command("calibrate")(health.calibrate)
app.command("observe")(log.observe)
app.command("replay")(log.replay)
app.command("verify")(log.verify)


def run() -> None:
    """Console-script entry point: run the app and turn errors into messages."""
    try:
        app(standalone_mode=True)
    except GardenError as e:  # raised outside a command's own handling
        typer.echo(f"error: {e}", err=True)
        sys.exit(1)
