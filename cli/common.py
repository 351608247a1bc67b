"""What every command shares: the common options, the consoles, and error handling."""

from __future__ import annotations

import functools
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer
from rich.console import Console

from flows.app import GardenApp
from garden.errors import GardenError
from garden.settings import load_settings

GardenOption = Annotated[
    Optional[Path],
    typer.Option("--garden", help="The pattern folder. [default: ./patterns, or GARDEN_GARDEN]",
                 file_okay=False, show_default=False),
]
DbOption = Annotated[
    Optional[Path],
    typer.Option("--db", help="The event database. [default: ./.garden/events.db, or GARDEN_DB]",
                 dir_okay=False, show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON, for scripts.")]

# Piped output is read by people too (and by grep): tables get a wide line instead of 80 columns.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data) -> None:
    """`--json` output: the text rich's `print_json` gives without a terminal (indent 2, not
    ASCII-escaped), written at once: rich renders a big payload segment by segment, seconds for
    a review of thousands of proposals."""
    try:  # orjson writes the same text (2-space indent, ": ", UTF-8) a few times faster
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a value orjson has no type for (an integer beyond 64 bits, say)
        # (a file name decoded with surrogateescape goes back to its own bytes)
        text = (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8", "surrogateescape")
    sys.stdout.flush()
    sys.stdout.buffer.write(text)
    sys.stdout.flush()


def open_app(garden: Path | None, db: Path | None, proposer: str | None = None, *,
             keep_state: bool = False) -> GardenApp:
    """The application over the garden and log the options (or the environment) name; what it
    says on the way is printed on stderr. `keep_state`: for a server (see GardenApp)."""
    settings = load_settings(garden=garden, db=db, proposer=proposer)
    return GardenApp(settings, on_note=lambda text: err.print(f"[yellow]note:[/yellow] {text}"),
                     keep_state=keep_state)


def handle_errors(func):
    """Decorator for commands: a GardenError is a message, anything else a reported bug."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except GardenError as e:
            typer.echo(f"error: {e}", err=True)
            if kwargs.get("json_out"):  # a script reading stdout learns of it too
                typer.echo(json.dumps({"error": str(e), **getattr(e, "details", {})}))
            raise typer.Exit(getattr(e, "exit_code", 1)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:  # `garden ... | head`: the reader left; nothing to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception:
            if os.environ.get("GARDEN_DEBUG") == "1":
                raise
            typer.echo(
                "internal error: graph-garden hit a bug; run again with GARDEN_DEBUG=1 "
                "for the traceback and please report it",
                err=True,
            )
            typer.echo("".join(traceback.format_exception_only(*sys.exc_info()[:2])).strip(), err=True)
            raise typer.Exit(70) from None

    return wrapper
